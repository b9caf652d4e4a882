/**
 * The Linux renderer's I/O shell: reads what the kernel holds, plans the difference against a
 * rendered desired state (`linux-plan.ts`) and runs it, optionally inside a named network
 * namespace (`ip -n NS`, `bridge -n NS`, `ip netns exec NS nft|sysctl`).
 *
 * Reads: `ip -j -d link show`, `ip -j addr show`, `ip -4|-6 -j route show table all`,
 * `ip -4|-6 -j rule show`, `bridge -j fdb show`, `ip [-6] -j fou show` and `ip -M -j route show`
 * (both empty when the kernel lacks FOU / MPLS), `nft list table inet vce` (its comment carries the
 * hash of the applied table), `sysctl -n KEY` for the keys the desired state sets.
 *
 * Writes, each only when the plan has lines for it, in this order: `ip -batch -` (stdin; plus one
 * `ip -6 -batch -` and one `ip -M -batch -` for the lines that need the family option),
 * `bridge -batch -` (VXLAN flood entries), `nft -f -` (replaces `table inet vce` in one
 * transaction), `sysctl -w` (after nft: the conntrack sysctls exist once conntrack is loaded).
 * Processes are started with argument arrays (`execFile` / `spawn`), never through a shell. A
 * failing batch stops at its first failing line (`ip -batch` without `-force`); the next apply
 * re-reads the kernel and plans again, so a partial apply converges.
 */
import { spawn } from 'node:child_process';
import { LinuxApplyError } from './linux-errors.ts';
import { NFT_TABLE } from './linux-nft.ts';
import {
  nftHashFromListing,
  parseAddresses,
  parseFdb,
  parseFou,
  parseLinks,
  parseMplsRoutes,
  parseRoutes,
  parseRules,
  planLinuxFull,
  type LinuxCurrent,
  type LinuxPlan,
} from './linux-plan.ts';
import { emptyLinuxDesired, linuxOwnership, type LinuxDesired, type LinuxOwnership } from './linux-spec.ts';

export { planIsEmpty, planLinux, planLinuxFull, type LinuxCurrent, type LinuxPlan } from './linux-plan.ts';

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `cmd args` with `input` on stdin; resolves with the exit status (never rejects on one). */
export type Exec = (cmd: string, args: readonly string[], input?: string) => Promise<ExecResult>;

export interface LinuxTarget {
  /** Named network namespace (`ip netns add NAME`); the current namespace when undefined. */
  readonly netns?: string;
  /** Replaces process spawning (tests, dry runs). */
  readonly exec?: Exec;
}

export const spawnExec: Exec = (cmd, args, input) =>
  new Promise((resolve, reject) => {
    const c = spawn(cmd, [...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    c.stdout.on('data', (d: Buffer) => out.push(d));
    c.stderr.on('data', (d: Buffer) => err.push(d));
    c.on('error', reject);
    c.on('close', (code, signal) =>
      resolve({
        code: code ?? (signal !== null ? 128 : 1),
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      }),
    );
    c.stdin.on('error', () => undefined); // the process may exit before reading all of stdin
    c.stdin.end(input ?? '');
  });

/** `ip` / `bridge` take `-n NS`; nft and sysctl run under `ip netns exec NS`. */
function command(
  t: LinuxTarget,
  tool: 'ip' | 'bridge' | 'nft' | 'sysctl',
  args: readonly string[],
): [string, string[]] {
  if (t.netns === undefined) return [tool, [...args]];
  if (tool === 'ip' || tool === 'bridge') return [tool, ['-n', t.netns, ...args]];
  return ['ip', ['netns', 'exec', t.netns, tool, ...args]];
}

async function run(
  t: LinuxTarget,
  tool: 'ip' | 'bridge' | 'nft' | 'sysctl',
  args: readonly string[],
  input?: string,
): Promise<ExecResult> {
  const [cmd, argv] = command(t, tool, args);
  return (t.exec ?? spawnExec)(cmd, argv, input);
}

async function must(
  t: LinuxTarget,
  tool: 'ip' | 'bridge' | 'nft' | 'sysctl',
  args: readonly string[],
  input?: string,
): Promise<string> {
  const r = await run(t, tool, args, input);
  if (r.code !== 0) throw new LinuxApplyError(command(t, tool, args).flat(), r.code, r.stderr);
  return r.stdout;
}

/** Output of an optional reading: '' when the kernel lacks the feature. */
async function optional(t: LinuxTarget, tool: 'ip' | 'bridge', args: readonly string[]): Promise<string> {
  const r = await run(t, tool, args);
  return r.code === 0 ? r.stdout : '';
}

/** Reads the kernel state the plan needs; `sysctlKeys` are the keys to read. */
export async function readLinuxState(
  t: LinuxTarget,
  sysctlKeys: readonly string[] = [],
): Promise<LinuxCurrent> {
  const [links, addrs, r4, r6, u4, u6, fdb, fou4, fou6, mpls, nft, ...sys] = await Promise.all([
    must(t, 'ip', ['-j', '-d', 'link', 'show']),
    must(t, 'ip', ['-j', 'addr', 'show']),
    must(t, 'ip', ['-4', '-j', 'route', 'show', 'table', 'all']),
    must(t, 'ip', ['-6', '-j', 'route', 'show', 'table', 'all']),
    must(t, 'ip', ['-4', '-j', 'rule', 'show']),
    must(t, 'ip', ['-6', '-j', 'rule', 'show']),
    optional(t, 'bridge', ['-j', 'fdb', 'show']),
    optional(t, 'ip', ['-j', 'fou', 'show']),
    optional(t, 'ip', ['-6', '-j', 'fou', 'show']),
    optional(t, 'ip', ['-M', '-j', 'route', 'show']),
    run(t, 'nft', ['list', 'table', 'inet', NFT_TABLE]),
    ...sysctlKeys.map((k) => run(t, 'sysctl', ['-n', k])),
  ]);
  let nftHash: string | undefined;
  if (nft.code === 0) nftHash = nftHashFromListing(nft.stdout);
  else if (!/No such file or directory/.test(nft.stderr))
    throw new LinuxApplyError(
      command(t, 'nft', ['list', 'table', 'inet', NFT_TABLE]).flat(),
      nft.code,
      nft.stderr,
    );
  const sysctls: Record<string, string | undefined> = {};
  sysctlKeys.forEach((k, i) => {
    const r = sys[i]!;
    sysctls[k] = r.code === 0 ? r.stdout.trim() : undefined;
  });
  return {
    links: parseLinks(links),
    addresses: parseAddresses(addrs),
    routes: [...parseRoutes(r4, 4), ...parseRoutes(r6, 6)],
    rules: [...parseRules(u4, 4), ...parseRules(u6, 6)],
    fdb: parseFdb(fdb),
    fou: [...parseFou(fou4, 4), ...parseFou(fou6, 6)],
    mplsRoutes: parseMplsRoutes(mpls),
    sysctls,
    nftHash,
  };
}

/** Splits plan lines by their family option: '' (none), '-6', '-M'; order kept inside each. */
export function batchesOf(lines: readonly string[]): { option: '' | '-6' | '-M'; lines: string[] }[] {
  const groups = { '': [] as string[], '-6': [] as string[], '-M': [] as string[] };
  for (const l of lines) {
    const m = /^(-6|-M) (.*)$/.exec(l);
    if (m === null) groups[''].push(l);
    else groups[m[1] as '-6' | '-M'].push(m[2]!);
  }
  return (['', '-6', '-M'] as const)
    .filter((o) => groups[o].length > 0)
    .map((option) => ({ option, lines: groups[option] }));
}

/** Runs a plan (see the module comment for the order). */
export async function runLinuxPlan(t: LinuxTarget, plan: LinuxPlan): Promise<void> {
  for (const b of batchesOf(plan.ip))
    await must(t, 'ip', [...(b.option === '' ? [] : [b.option]), '-batch', '-'], b.lines.join('\n') + '\n');
  if (plan.bridge.length > 0) await must(t, 'bridge', ['-batch', '-'], plan.bridge.join('\n') + '\n');
  if (plan.nft !== undefined) await must(t, 'nft', ['-f', '-'], plan.nft);
  if (plan.sysctl.length > 0)
    await must(t, 'sysctl', ['-q', '-w', ...plan.sysctl.map(([k, v]) => `${k}=${v}`)]);
}

/** Reads the kernel, plans against `desired`, runs the plan; returns what it ran. */
export async function applyLinux(desired: LinuxDesired, t: LinuxTarget = {}): Promise<LinuxPlan> {
  const current = await readLinuxState(t, Object.keys(desired.sysctls));
  const plan = planLinuxFull(current, desired);
  await runLinuxPlan(t, plan);
  return plan;
}

/** Removes everything we own (links, routes and rules in our ranges, FOU ports, the nft table). */
export async function removeLinux(
  t: LinuxTarget = {},
  ownership: LinuxOwnership = linuxOwnership(),
): Promise<LinuxPlan> {
  return applyLinux(emptyLinuxDesired(ownership), t);
}
