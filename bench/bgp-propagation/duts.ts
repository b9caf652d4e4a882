/**
 * Devices under test for the propagation benchmark: how to configure, start, measure and stop each
 * one. Every DUT listens on 127.0.0.10:<port> as AS 65000 with two passive eBGP neighbours, the
 * tester (127.0.0.11, AS 65001) and the monitor (127.0.0.12, AS 65002), accepts and exports
 * everything, and re-advertises with next-hop-self (eBGP prepends 65000).
 *
 * Invariants: every process is started here with its own temp directory, is tracked by PID in
 * `running`, and is stopped by PID (SIGTERM, then SIGKILL after a grace period). Nothing is left in
 * the background; the temp directory is removed by the caller.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DUT_ADDR = '127.0.0.10';
export const TESTER_ADDR = '127.0.0.11';
export const MONITOR_ADDR = '127.0.0.12';
/**
 * The NEXT_HOP the tester announces. Not its own 127.0.0.11: FRR rejects 127/8 next hops as martian
 * (NOTIFICATION 3/8). A TEST-NET-1 address works everywhere, and every DUT rewrites it (next-hop-self).
 */
export const TESTER_NEXT_HOP = '192.0.2.11';
export const DUT_AS = 65000;
export const TESTER_AS = 65001;
export const MONITOR_AS = 65002;

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface DutContext {
  /** A fresh temp directory owned by this run. */
  readonly dir: string;
  /** BGP listen port on DUT_ADDR. */
  readonly port: number;
  /** A free TCP port for a management API, where the DUT has one. */
  readonly apiPort: number;
}

export interface DutProcess {
  readonly pid: number;
  /** Undefined while running, else why it ended. */
  readonly exited: () => string | undefined;
  /** The last lines of the DUT's own log/stdout/stderr, for error messages. */
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

export interface Dut {
  readonly name: string;
  /** A one-line version string, or undefined when the DUT is not installed. */
  version(): string | undefined;
  start(ctx: DutContext): DutProcess;
}

/** Every process started by this module and not yet reaped, by PID. */
export const running = new Map<number, ChildProcess>();

function firstLine(cmd: string, args: string[]): string | undefined {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  if (r.error !== undefined) return undefined;
  const text = `${r.stdout}\n${r.stderr}`
    .split('\n')
    .map((l) => l.trim())
    .find((l) => /version/i.test(l));
  return text;
}

function launch(cmd: string, args: string[], ctx: DutContext, logName: string, cwd = ctx.dir): DutProcess {
  const logPath = join(ctx.dir, logName);
  const fd = openSync(logPath, 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], cwd });
  closeSync(fd);
  let exit: string | undefined;
  child.on('error', (e) => {
    exit = `failed to start ${cmd}: ${e.message}`;
  });
  const pid = child.pid;
  if (pid === undefined) {
    return {
      pid: -1,
      exited: () => exit ?? `failed to start ${cmd}`,
      logTail: () => '',
      stop: () => Promise.resolve(),
    };
  }
  running.set(pid, child);
  const done = new Promise<void>((resolve) => {
    child.on('exit', (code, signal) => {
      exit = `exited with ${signal ?? `code ${code}`}`;
      running.delete(pid);
      resolve();
    });
  });
  return {
    pid,
    exited: () => exit,
    logTail: (lines = 15) => {
      if (!existsSync(logPath)) return '';
      return readFileSync(logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    },
    stop: async () => {
      if (exit !== undefined) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (exit === undefined) child.kill('SIGKILL');
      }, 5000);
      await done;
      clearTimeout(timer);
    },
  };
}

// ---------------------------------------------------------------- BIRD 2
const bird: Dut = {
  name: 'bird',
  version: () => firstLine('bird', ['--version']),
  start(ctx) {
    const proto = (name: string, addr: string, asn: number): string => `
protocol bgp ${name} {
  local ${DUT_ADDR} port ${ctx.port} as ${DUT_AS};
  neighbor ${addr} port ${ctx.port} as ${asn};
  passive on;
  multihop;
  ipv4 { import all; export all; next hop self; igp table igp4; };
}`;
    const conf = `# vce propagation benchmark DUT
log "${join(ctx.dir, 'bird.log')}" { warning, error, fatal };
router id ${DUT_ADDR};
protocol device { }
# BIRD refuses direct eBGP neighbours in 127/8 (host scope), so the sessions are multihop and the
# tester's NEXT_HOP is resolved recursively through this table, as a router would through its IGP.
ipv4 table igp4;
protocol static nexthops { ipv4 { table igp4; }; route ${TESTER_NEXT_HOP}/32 via "lo"; }
${proto('tester', TESTER_ADDR, TESTER_AS)}
${proto('monitor', MONITOR_ADDR, MONITOR_AS)}
`;
    const path = join(ctx.dir, 'bird.conf');
    writeFileSync(path, conf);
    return launch(
      'bird',
      ['-f', '-c', path, '-s', join(ctx.dir, 'bird.ctl'), '-P', join(ctx.dir, 'bird.pid')],
      ctx,
      'bird.out',
    );
  },
};

// ---------------------------------------------------------------- FRR bgpd (standalone, no zebra)
const FRR_BGPD = '/usr/lib/frr/bgpd';
const frr: Dut = {
  name: 'frr',
  version: () => (existsSync(FRR_BGPD) ? firstLine(FRR_BGPD, ['--version']) : undefined),
  start(ctx) {
    const nb = (addr: string, asn: number): string =>
      ` neighbor ${addr} remote-as ${asn}\n neighbor ${addr} passive\n neighbor ${addr} timers 30 180\n`;
    const conf = `! vce propagation benchmark DUT
frr defaults traditional
hostname dut
log file ${join(ctx.dir, 'bgpd.log')} warnings
!
router bgp ${DUT_AS}
 bgp router-id ${DUT_ADDR}
 no bgp ebgp-requires-policy
 no bgp network import-check
${nb(TESTER_ADDR, TESTER_AS)}${nb(MONITOR_ADDR, MONITOR_AS)} !
 address-family ipv4 unicast
  neighbor ${TESTER_ADDR} next-hop-self
  neighbor ${MONITOR_ADDR} next-hop-self
 exit-address-family
!
`;
    const path = join(ctx.dir, 'bgpd.conf');
    writeFileSync(path, conf);
    return launch(
      FRR_BGPD,
      [
        '-f',
        path,
        '-i',
        join(ctx.dir, 'bgpd.pid'),
        '--vty_socket',
        ctx.dir,
        '-P',
        '0',
        '-Z',
        '-n',
        '-S',
        '-p',
        String(ctx.port),
        '-l',
        DUT_ADDR,
      ],
      ctx,
      'bgpd.out',
    );
  },
};

// ---------------------------------------------------------------- GoBGP
const gobgp: Dut = {
  name: 'gobgp',
  version: () => firstLine('gobgpd', ['--version']),
  start(ctx) {
    const nb = (addr: string, asn: number): string => `
[[neighbors]]
  [neighbors.config]
    neighbor-address = "${addr}"
    peer-as = ${asn}
  [neighbors.transport.config]
    passive-mode = true
    local-address = "${DUT_ADDR}"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
`;
    const conf = `# vce propagation benchmark DUT
[global.config]
  as = ${DUT_AS}
  router-id = "${DUT_ADDR}"
  port = ${ctx.port}
  local-address-list = ["${DUT_ADDR}"]
[global.apply-policy.config]
  default-import-policy = "accept-route"
  default-export-policy = "accept-route"
${nb(TESTER_ADDR, TESTER_AS)}${nb(MONITOR_ADDR, MONITOR_AS)}`;
    const path = join(ctx.dir, 'gobgpd.toml');
    writeFileSync(path, conf);
    return launch(
      'gobgpd',
      [
        '-f',
        path,
        '-t',
        'toml',
        '--api-hosts',
        `127.0.0.1:${ctx.apiPort}`,
        '--pprof-disable',
        '-l',
        'warn',
        '-p',
      ],
      ctx,
      'gobgpd.out',
    );
  },
};

// ---------------------------------------------------------------- vce (our own agent)
const VCE_BIN = join(REPO_ROOT, 'bin', 'vce.js');
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version?: string };
  const rev = spawnSync('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  const sha = rev.status === 0 ? ` (${rev.stdout.trim()})` : '';
  return `vce ${pkg.version ?? '?'}${sha}`;
}
const vce: Dut = {
  name: 'vce',
  version: () => (existsSync(VCE_BIN) ? packageVersion() : undefined),
  start(ctx) {
    const nb = (addr: string, asn: number): string =>
      `    - { address: ${addr}, peer-asn: ${asn}, passive: true, afi-safis: [ipv4-unicast], import-policy: accept-all, export-policy: accept-all }\n`;
    const conf = `# vce propagation benchmark DUT
router-id: ${DUT_ADDR}
api: { listen: 127.0.0.1:${ctx.apiPort} }
bgp:
  asn: ${DUT_AS}
  listen: { address: ${DUT_ADDR}, port: ${ctx.port} }
  neighbors:
${nb(TESTER_ADDR, TESTER_AS)}${nb(MONITOR_ADDR, MONITOR_AS)}`;
    const path = join(ctx.dir, 'vce.yaml');
    writeFileSync(path, conf);
    // VCE_NODE_ARGS adds node flags for profiling, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    const nodeArgs = (process.env['VCE_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
    return launch(
      process.execPath,
      [...nodeArgs, VCE_BIN, 'agent', '--config', path],
      ctx,
      'vce.out',
      REPO_ROOT,
    );
  },
};

// ---------------------------------------------------------------- trivial relay (harness floor)
const RELAY = fileURLToPath(new URL('./relay.ts', import.meta.url));
const relay: Dut = {
  name: 'relay',
  version: () => 'byte relay (harness floor)',
  start(ctx) {
    return launch(
      process.execPath,
      ['--import', 'tsx', RELAY, '--address', DUT_ADDR, '--port', String(ctx.port), '--tester', TESTER_ADDR],
      ctx,
      'relay.out',
      REPO_ROOT, // so that `--import tsx` resolves
    );
  },
};

export const DUTS: Record<string, Dut> = { bird, frr, gobgp, vce, relay };

/** Peak resident set (VmHWM) and current RSS of a PID in KiB, from /proc (Linux). */
export function memoryKiB(pid: number): { hwm: number; rss: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwm = /VmHWM:\s+(\d+) kB/.exec(s);
    const rss = /VmRSS:\s+(\d+) kB/.exec(s);
    if (hwm === null || rss === null) return undefined;
    return { hwm: Number(hwm[1]), rss: Number(rss[1]) };
  } catch {
    return undefined;
  }
}

const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const v = Number(r.stdout);
  return r.status === 0 && v > 0 ? v : 100;
})();

/** User + system CPU seconds of a PID so far (all its threads), from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime is field 14, stime field 15.
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}
