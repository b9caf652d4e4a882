#!/usr/bin/env node
// Entry point. Runs the compiled JavaScript in dist/ (built by `npm ci` through the `prepare`
// script) when it is up to date with src/; otherwise runs the TypeScript sources through tsx's
// loader, so a developer never runs a stale build. The compiled form starts faster and uses
// ~35 MiB less memory (no in-process TypeScript transform).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'dist', 'cli', 'main.js');

function newestSource(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

if (process.env.VCE_FROM_SOURCE !== '1' && existsSync(built) && statSync(built).mtimeMs >= newestSource(join(root, 'src'))) {
  await import(built);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
