/**
 * `vce controller` as a child process (`node bin/vce.js controller ...`) for tests that kill it:
 * crash tests run it with `VCE_CRASH_BEFORE_STEP` and watch it die by SIGKILL, then start it
 * again on the same store file and port.
 *
 * Owns: the spawn (never a shell; the crash variable set only when asked for, removed otherwise),
 * the captured stdout/stderr (kept in memory for error messages), readiness (the controller's
 * "vce controller started" log line, or a failure carrying the output when the process exits
 * first), the exit event (code or signal), and a registry that SIGKILLs the children still
 * running when the test process exits. Processes are signalled by PID only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const BIN = join(ROOT, 'bin', 'vce.js');

export interface ControllerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ControllerProcessOptions {
  /** SQLite store file. */
  readonly file: string;
  readonly port: number;
  readonly token: string;
  /** `VCE_CRASH_BEFORE_STEP` (`STEP` or `STEP:N`); absent: the variable is removed. */
  readonly crashBeforeStep?: string;
  /** How long to wait for the "started" log line (default 20 000 ms). */
  readonly readyTimeoutMs?: number;
}

export interface ControllerProcess {
  readonly pid: number;
  readonly url: string;
  /** Whether the controller won the leadership when it started (it runs the workflows). */
  readonly leader: boolean;
  /** Resolves once the process has exited. */
  readonly exited: Promise<ControllerExit>;
  alive(): boolean;
  /** The captured stdout and stderr (the last `maxChars` characters). */
  output(maxChars?: number): string;
  /** SIGTERM and wait for the exit (SIGKILL after `graceMs`, default 5 000). */
  stop(graceMs?: number): Promise<ControllerExit>;
}

const children = new Set<ChildProcess>();
let hooked = false;

function killChildrenNow(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
}

/** Starts `vce controller` and resolves once it serves its API. */
export async function startControllerProcess(o: ControllerProcessOptions): Promise<ControllerProcess> {
  if (!hooked) {
    hooked = true;
    process.on('exit', killChildrenNow);
  }
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['VCE_CRASH_BEFORE_STEP'];
  if (o.crashBeforeStep !== undefined) env['VCE_CRASH_BEFORE_STEP'] = o.crashBeforeStep;
  const child = spawn(
    process.execPath,
    [BIN, 'controller', '--store', `sqlite:${o.file}`, '--listen', `127.0.0.1:${o.port}`, '--token', o.token],
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.add(child);
  let out = '';
  const keep = 200_000;
  const append = (b: Buffer): void => {
    out += b.toString('utf8');
    if (out.length > keep * 2) out = out.slice(-keep);
  };
  child.stderr.on('data', append);
  let exit: ControllerExit | undefined;
  const exited = new Promise<ControllerExit>((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      exit = { code, signal };
      resolve(exit);
    });
  });
  child.once('error', (e) => append(Buffer.from(`spawn error: ${e.message}\n`)));
  const output = (maxChars = 6000): string => out.slice(-maxChars);

  // ready: the pino line of run.ts, `{"msg":"vce controller started","leader":...}`
  const started = new Promise<boolean>((resolve) => {
    let line = '';
    child.stdout.on('data', (b: Buffer) => {
      append(b);
      line += b.toString('utf8');
      let i: number;
      while ((i = line.indexOf('\n')) >= 0) {
        const l = line.slice(0, i);
        line = line.slice(i + 1);
        if (!l.includes('"vce controller started"')) continue;
        try {
          resolve((JSON.parse(l) as { leader?: boolean }).leader === true);
        } catch {
          resolve(false);
        }
      }
    });
  });
  const timeoutMs = o.readyTimeoutMs ?? 20_000;
  let timer: NodeJS.Timeout | undefined;
  const ready = await Promise.race([
    started.then((leader) => ({ leader })),
    exited.then((e) => ({ exit: e })),
    new Promise<{ timeout: true }>((resolve) => {
      timer = setTimeout(() => resolve({ timeout: true }), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (!('leader' in ready)) {
    if (!('exit' in ready)) {
      child.kill('SIGKILL');
      await exited;
    }
    throw new Error(
      `vce controller (${o.crashBeforeStep ?? 'no crash'}) did not start: ${
        'exit' in ready ? `exited ${JSON.stringify(ready.exit)}` : `no "started" line in ${timeoutMs} ms`
      }\n--- output ---\n${output()}`,
    );
  }
  let stopping: Promise<ControllerExit> | undefined;
  return {
    pid: child.pid!,
    url: `http://127.0.0.1:${o.port}`,
    leader: ready.leader,
    exited,
    alive: () => exit === undefined,
    output,
    stop: (graceMs = 5000) => {
      stopping ??= (async () => {
        if (exit !== undefined) return exit;
        child.kill('SIGTERM');
        let t: NodeJS.Timeout | undefined;
        const r = await Promise.race([
          exited,
          new Promise<undefined>((resolve) => {
            t = setTimeout(() => resolve(undefined), graceMs);
          }),
        ]);
        clearTimeout(t);
        if (r !== undefined) return r;
        child.kill('SIGKILL');
        return exited;
      })();
      return stopping;
    },
  };
}

export interface ApiResult {
  status: number;
  body: Record<string, unknown>;
}

/** One JSON request to a controller's API with a bearer token (empty answers become `{}`). */
export async function callApi(
  base: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<ApiResult> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown> };
}
