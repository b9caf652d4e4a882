/**
 * Interop harness basics shared by the gobgpd, BIRD, FRR and ExaBGP wrappers.
 *
 * Owns: free ports, temp dirs, the daemon process wrapper (log capture, readiness polling,
 * SIGTERM-then-SIGKILL stop, a module-level registry killed on exit), the `waitFor` polling
 * helper, `requireDaemon` (missing binary = skip locally, failure in CI) and the route
 * normalisation every wrapper uses so routes read from different daemons compare with `toEqual`.
 *
 * Invariants:
 * - Never sleep for a fixed time: everything polls with short intervals and fails with context.
 * - Every daemon runs in its own process group inside its own temp dir; `stop()` kills the group
 *   by PID (never by name) and removes the dir (set VCE_INTEROP_KEEP=1 to keep logs and configs).
 * - Speakers use distinct 127.0.0.x addresses (Linux routes all of 127/8 to `lo`); IPv6 uses
 *   `::1` only (IPv6 routes ride MP-BGP over the IPv4 sessions).
 * - Loopback IPv4 next hops are poison for real daemons: gobgpd 3.10 treats an UPDATE whose
 *   NEXT_HOP is in 127/8 as withdraw, FRR resets the session ("martian next hop") unless
 *   `bgp allow-martian-nexthop` (which the FRR wrapper sets). So every speaker advertises a
 *   TEST-NET next hop by default: see `defaultNextHops`.
 */
import { execFile, spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, closeSync, openSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

// ---------------------------------------------------------------------------------------------
// Shared route and neighbour shapes

/** Address families the harness knows how to configure (names follow gobgp/OpenConfig). */
export type Family = 'ipv4-unicast' | 'ipv6-unicast' | 'ipv4-vpn' | 'ipv6-vpn';

export type Origin = 'igp' | 'egp' | 'incomplete';

/** Canonical BGP FSM states (RFC 4271 §8.2.2), lower case. */
export type SessionState = 'idle' | 'connect' | 'active' | 'opensent' | 'openconfirm' | 'established';

/**
 * A route as any daemon reports it, normalised so two daemons' views compare with `toEqual`:
 * addresses in canonical text (IPv6 per WHATWG/RFC 5952 compression, IPv4-mapped as
 * `::ffff:7f00:1`), communities sorted numerically, extended communities as `rt:ASN:N`,
 * `rt:IP:N`, `soo:...` (4-octet ASNs in asplain), otherwise `raw:<16 hex digits>`.
 * `asPath` flattens AS_SEQUENCE segments (AS_SET members are appended in the order shown).
 */
export interface NormalizedRoute {
  prefix: string;
  nextHop: string;
  asPath: number[];
  origin?: Origin;
  med?: number;
  localPref?: number;
  communities: string[];
  largeCommunities: string[];
  extCommunities: string[];
  /** VPN families only: route distinguisher as `ASN:N` or `IP:N`. */
  rd?: string;
  /** VPN families only: MPLS label stack. */
  labels?: number[];
}

/** Attributes for a route injected into a daemon (`addRoute`). */
export interface RouteAttrs {
  /**
   * Next hop to advertise. gobgp and ExaBGP use it verbatim (default: the daemon's next-hop
   * address for the family). BIRD and FRR originate routes and always advertise their own
   * next-hop address (`SpeakerConfig.nextHop`) to eBGP peers.
   */
  nextHop?: string;
  communities?: string[];
  largeCommunities?: string[];
  /** `rt:65000:1`, `rt:192.0.2.1:7`, `rt:4200000000:7`, `soo:65000:1`. */
  extCommunities?: string[];
  med?: number;
  localPref?: number;
  /** AS numbers to put in front of the daemon's own AS (origin last). */
  asPath?: number[];
  origin?: Origin;
  /** VPN families: route distinguisher (`65000:1` or `192.0.2.1:1`). */
  rd?: string;
  /** VPN families: MPLS label. */
  label?: number;
}

export interface NeighborSpec {
  /** Peer address (the other speaker's 127.0.0.x). */
  address: string;
  /** Peer's BGP port (default 179). */
  port?: number;
  peerAsn: number;
  /** Only accept the connection, never dial. */
  passive?: boolean;
  families: Family[];
  /** Seconds (default 90); keepalive is a third of it. */
  holdTime?: number;
  /** Seconds between connection attempts (default 1, so sessions come up fast). */
  connectRetry?: number;
  /** Route-server client: no own-AS prepend, next hop untouched (gobgp, BIRD, FRR). */
  routeServerClient?: boolean;
  /** TCP-MD5 password (RFC 2385). */
  password?: string;
  /** BIRD/FRR protocol or description name (default derived from the address). */
  name?: string;
}

/** Common configuration of a real speaker under the harness. */
export interface SpeakerConfig {
  asn: number;
  routerId: string;
  /** 127.0.0.x address the daemon binds and sources its sessions from. */
  listenAddress: string;
  listenPort: number;
  neighbors: NeighborSpec[];
  /** Next-hop-self addresses it advertises (default: `defaultNextHops(listenAddress)`). */
  nextHop?: { ipv4?: string; ipv6?: string };
}

/**
 * TEST-NET next hops for a speaker on 127.0.0.N: `198.51.100.N` (RFC 5737) and
 * `2001:db8:ffff::N` (RFC 3849). Not routable here, and daemons that cannot resolve them keep
 * the routes anyway (BIRD marks them unreachable, FRR without zebra treats all as valid).
 */
export function defaultNextHops(listenAddress: string): { ipv4: string; ipv6: string } {
  const last = listenAddress.split('.').at(-1) ?? '1';
  const n = /^\d+$/.test(last) ? Number(last) : 1;
  return { ipv4: `198.51.100.${n}`, ipv6: `2001:db8:ffff::${n.toString(16)}` };
}

export function resolveNextHops(cfg: Pick<SpeakerConfig, 'listenAddress' | 'nextHop'>): {
  ipv4: string;
  ipv6: string;
} {
  const d = defaultNextHops(cfg.listenAddress);
  return { ipv4: cfg.nextHop?.ipv4 ?? d.ipv4, ipv6: cfg.nextHop?.ipv6 ?? d.ipv6 };
}

export function isIpv6Family(family: Family): boolean {
  return family === 'ipv6-unicast' || family === 'ipv6-vpn';
}

export function isVpnFamily(family: Family): boolean {
  return family === 'ipv4-vpn' || family === 'ipv6-vpn';
}

// ---------------------------------------------------------------------------------------------
// Normalisation helpers

/** Canonical text of an IPv4/IPv6 address (IPv6 compressed per the WHATWG URL serializer). */
export function canonicalAddress(addr: string): string {
  const a = addr.trim();
  if (!a.includes(':')) return a;
  try {
    return new URL(`http://[${a}]/`).hostname.slice(1, -1);
  } catch {
    return a.toLowerCase();
  }
}

/** Canonical next hop; an IPv4 next hop shown for an IPv6 route becomes IPv4-mapped IPv6. */
export function canonicalNextHop(addr: string, family: Family): string {
  const a = addr.trim();
  if (isIpv6Family(family) && !a.includes(':') && a.includes('.')) return canonicalAddress(`::ffff:${a}`);
  return canonicalAddress(a);
}

/** Canonical prefix text (`2001:DB8::/32` -> `2001:db8::/32`). */
export function canonicalPrefix(prefix: string): string {
  const slash = prefix.lastIndexOf('/');
  if (slash < 0) return canonicalAddress(prefix);
  return `${canonicalAddress(prefix.slice(0, slash))}/${prefix.slice(slash + 1)}`;
}

/** Sorts `a:b[:c]` strings by their numeric parts (non-numeric parts compare as text). */
export function sortColonNumbers(values: Iterable<string>): string[] {
  const key = (s: string): (number | string)[] => s.split(':').map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  return [...values].sort((x, y) => {
    const a = key(x);
    const b = key(y);
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const p = a[i];
      const q = b[i];
      if (p === q) continue;
      if (p === undefined) return -1;
      if (q === undefined) return 1;
      if (typeof p === 'number' && typeof q === 'number') return p - q;
      if (typeof p === 'number') return -1; // numbers (ASNs) before addresses/text
      if (typeof q === 'number') return 1;
      return p < q ? -1 : 1;
    }
    return 0;
  });
}

/** `64086.59904` (asdot) and `4200000000L` -> `4200000000`; other strings unchanged. */
export function asplain(admin: string): string {
  if (/^\d+L$/.test(admin)) return admin.slice(0, -1); // ExaBGP prints 4-octet ASNs as 4200000000L
  const m = /^(\d+)\.(\d+)$/.exec(admin);
  if (m === null) return admin;
  return String(Number(m[1]) * 65536 + Number(m[2]));
}

/**
 * Canonical extended community from a `kind`, `admin` and `assigned` triple in any daemon's
 * spelling (`target`/`RT`/`rt`, `origin`/`SoO`/`soo`).
 */
export function canonicalExtCommunity(kind: string, admin: string, assigned: string): string {
  const k = kind.toLowerCase();
  const name = k === 'target' || k === 'rt' ? 'rt' : k === 'origin' || k === 'soo' ? 'soo' : k;
  return `${name}:${asplain(admin.trim())}:${assigned.trim()}`;
}

/** Parses `rt:ASN:N` / `soo:IP:N` as given to `addRoute`. */
export function parseExtCommunity(s: string): { kind: 'rt' | 'soo'; admin: string; assigned: string } {
  const m = /^(rt|soo):(.+):(\d+)$/.exec(s);
  if (m === null || m[1] === undefined || m[2] === undefined || m[3] === undefined) {
    throw new Error(`unsupported extended community ${JSON.stringify(s)} (want rt:X:N or soo:X:N)`);
  }
  return { kind: m[1] as 'rt' | 'soo', admin: asplain(m[2]), assigned: m[3] };
}

/** Fills the list fields and sorts them, so routes from different daemons compare equal. */
export function finishRoute(
  r: Partial<NormalizedRoute> & { prefix: string; nextHop: string },
): NormalizedRoute {
  const out: NormalizedRoute = {
    prefix: r.prefix,
    nextHop: r.nextHop,
    asPath: r.asPath ?? [],
    communities: sortColonNumbers(r.communities ?? []),
    largeCommunities: sortColonNumbers(r.largeCommunities ?? []),
    extCommunities: sortColonNumbers(r.extCommunities ?? []),
  };
  if (r.origin !== undefined) out.origin = r.origin;
  if (r.med !== undefined) out.med = r.med;
  if (r.localPref !== undefined) out.localPref = r.localPref;
  if (r.rd !== undefined) out.rd = r.rd;
  if (r.labels !== undefined) out.labels = r.labels;
  return out;
}

export function findRoute(
  routes: NormalizedRoute[],
  prefix: string,
  rd?: string,
): NormalizedRoute | undefined {
  const p = canonicalPrefix(prefix);
  return routes.find((r) => r.prefix === p && (rd === undefined || r.rd === rd));
}

// ---------------------------------------------------------------------------------------------
// Small utilities

/** A TCP port that was free on `host` a moment ago (bind :0, read it, close). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('freePort: no port assigned'))));
    });
  });
}

/** A UDP port free right now on `host` (bind 0, read it, close). */
export async function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, host, () => resolve());
  });
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** A fresh directory under the OS temp dir, named `vce-<prefix>-XXXXXX`. */
export function tmpDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `vce-${prefix.replace(/[^A-Za-z0-9_.-]/g, '_')}-`));
}

/** Message of an unknown thrown value. */
export function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'string') return e;
  try {
    return JSON.stringify(e);
  } catch {
    return 'unknown error';
  }
}

export function sleepMs(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a CLI (gobgp, birdc, vtysh) and returns its output; rejects with stderr on failure. */
export function run(cmd: string, args: readonly string[], timeoutMs = 10_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null) {
        const detail = `${stderr}${stdout}`.trim().split('\n').slice(-10).join('\n');
        reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${detail}`));
        return;
      }
      resolve({ stdout, stderr });
    });
  });
}

export interface WaitForOptions {
  /** Default 10 000 ms. */
  timeoutMs?: number;
  /** What is awaited, for the error message ("gobgp session 127.0.0.3 established"). */
  what: string;
  /** Poll interval, default 75 ms. */
  intervalMs?: number;
  /** Extra context appended to the timeout error (e.g. the current RIB). */
  describe?: () => Promise<string> | string;
}

/**
 * Polls `fn` until it returns something other than `undefined` and returns that. Errors thrown
 * by `fn` count as "not yet" (a CLI racing a starting daemon); the last one is reported.
 */
export async function waitFor<T>(fn: () => Promise<T | undefined>, opts: WaitForOptions): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const interval = opts.intervalMs ?? 75;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) break;
    await sleepMs(Math.min(interval, Math.max(1, deadline - Date.now())));
  }
  let msg = `timed out after ${timeoutMs} ms waiting for ${opts.what}`;
  if (lastError !== undefined) msg += `\nlast error: ${errorText(lastError)}`;
  if (opts.describe !== undefined) {
    try {
      msg += `\n${await opts.describe()}`;
    } catch (e) {
      msg += `\n(describe failed: ${errorText(e)})`;
    }
  }
  throw new Error(msg);
}

/**
 * Whether `binary` (a name on PATH or an absolute path) is installed. Missing: in CI
 * (`CI=true`) this throws, so the file fails instead of silently skipping; locally it returns
 * false for `describe.skipIf(!requireDaemon(...))`.
 */
export function requireDaemon(binary: string): boolean {
  const candidates = binary.includes('/')
    ? [binary]
    : (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin')
        .split(delimiter)
        .concat(['/usr/sbin', '/sbin', '/usr/lib/frr'])
        .map((d) => join(d, binary));
  for (const c of candidates) {
    try {
      accessSync(c, fsConstants.X_OK);
      return true;
    } catch {
      // try the next directory
    }
  }
  if (process.env.CI === 'true') {
    throw new Error(
      `interop: required daemon binary "${binary}" is not installed (run: bash scripts/install-deps)`,
    );
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Daemon process wrapper

export interface StartDaemonOptions {
  /** Short name for logs and errors ("gobgpd", "bird"). */
  name: string;
  cmd: string;
  args: readonly string[];
  /** Working and temp dir; created with `tmpDir(name)` when absent. Removed by `stop()`. */
  dir?: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Polled with short backoff until true (errors count as "not yet"). */
  readyCheck: () => Promise<boolean>;
  /** Default 10 000 ms. */
  readyTimeoutMs?: number;
  /** Paths outside `dir` the daemon leaves behind (by PID), removed with it. */
  leftovers?: (pid: number) => string[];
}

export interface DaemonHandle {
  name: string;
  pid: number;
  dir: string;
  logFile: string;
  /** Whether the process is still running. */
  alive(): boolean;
  /** Last `lines` lines of the captured stdout/stderr. */
  logTail(lines?: number): Promise<string>;
  /** SIGTERM, SIGKILL after 3 s, then removes the dir (kept when VCE_INTEROP_KEEP=1). */
  stop(): Promise<void>;
}

interface Tracked {
  pid: number;
  /** The temp dir and any leftovers, removed when the daemon goes. */
  paths: string[];
  exited: boolean;
}

const keepDirs = (): boolean => process.env.VCE_INTEROP_KEEP === '1';

const running = new Set<Tracked>();
let exitHooksInstalled = false;

/**
 * Signals the daemon's process group (it leads one: detached spawn), falling back to the PID
 * itself only while the daemon is known to be alive (never a possibly reused PID).
 */
function killGroup(pid: number, signal: NodeJS.Signals, leaderAlive = true): void {
  try {
    process.kill(-pid, signal);
  } catch {
    if (!leaderAlive) return;
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Synchronous (runs in 'exit' and signal handlers): SIGKILL every group, remove the dirs. */
function killAllNow(): void {
  for (const t of running) {
    if (!t.exited) killGroup(t.pid, 'SIGKILL');
    if (!keepDirs()) for (const p of t.paths) rmSync(p, { recursive: true, force: true });
  }
  running.clear();
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', killAllNow);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAllNow();
      process.removeListener(sig, onSignal);
      // Keep the default behaviour (terminate) when nobody else handles the signal.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

async function readTail(file: string, lines: number): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Spawns a daemon in the foreground, logs to `<dir>/<name>.log`, resolves once ready. */
export async function startDaemon(opts: StartDaemonOptions): Promise<DaemonHandle> {
  installExitHooks();
  const dir = opts.dir ?? (await tmpDir(opts.name));
  const logFile = join(dir, `${opts.name}.log`);
  const fd = openSync(logFile, 'a');
  const started = Date.now();
  const child = (() => {
    try {
      return spawn(opts.cmd, opts.args, {
        cwd: opts.cwd ?? dir,
        env: opts.env ?? process.env,
        stdio: ['ignore', fd, fd],
        detached: true,
      });
    } finally {
      closeSync(fd);
    }
  })();
  const pid = child.pid;
  if (pid === undefined) {
    const err = await new Promise<string>((resolve) => child.once('error', (e) => resolve(e.message)));
    throw new Error(`${opts.name}: failed to spawn ${opts.cmd}: ${err}`);
  }
  const tracked: Tracked = { pid, paths: [dir, ...(opts.leftovers?.(pid) ?? [])], exited: false };
  running.add(tracked);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      tracked.exited = true;
      running.delete(tracked);
      resolve();
    });
  });
  child.once('error', () => undefined);

  let stopping: Promise<void> | undefined;
  const handle: DaemonHandle = {
    name: opts.name,
    pid,
    dir,
    logFile,
    alive: () => !tracked.exited,
    logTail: (lines = 40) => readTail(logFile, lines),
    stop: () => {
      stopping ??= (async () => {
        if (!tracked.exited) {
          killGroup(pid, 'SIGTERM');
          const timer = new Promise<'timeout'>((resolve) =>
            setTimeout(() => resolve('timeout'), 3000).unref(),
          );
          if ((await Promise.race([exited.then(() => 'exited' as const), timer])) === 'timeout') {
            killGroup(pid, 'SIGKILL');
            await exited;
          }
        }
        killGroup(pid, 'SIGKILL', false); // stragglers left in the group (helper processes)
        if (!keepDirs()) {
          await Promise.all(tracked.paths.map((p) => rm(p, { recursive: true, force: true })));
        }
      })();
      return stopping;
    },
  };

  const timeoutMs = opts.readyTimeoutMs ?? 10_000;
  let delay = 20;
  let lastError: unknown;
  for (;;) {
    if (tracked.exited) {
      const tail = await readTail(logFile, 40);
      await handle.stop();
      throw new Error(
        `${opts.name} exited during startup (${opts.cmd} ${opts.args.join(' ')})\n--- log tail ---\n${tail}`,
      );
    }
    try {
      if (await opts.readyCheck()) break;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() - started > timeoutMs) {
      const tail = await readTail(logFile, 40);
      await handle.stop();
      const last = lastError instanceof Error ? `\nlast check error: ${lastError.message}` : '';
      throw new Error(`${opts.name} not ready after ${timeoutMs} ms${last}\n--- log tail ---\n${tail}`);
    }
    await sleepMs(delay);
    delay = Math.min(200, Math.round(delay * 1.5));
  }
  return handle;
}

/** Stops every handle, collecting failures instead of stopping at the first. */
export async function stopAll(...handles: ({ stop(): Promise<void> } | undefined)[]): Promise<void> {
  const results = await Promise.allSettled(
    handles.map((h) => (h === undefined ? Promise.resolve() : h.stop())),
  );
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length > 0) throw new Error(`stopAll: ${failed.map((f) => errorText(f.reason)).join('; ')}`);
}
