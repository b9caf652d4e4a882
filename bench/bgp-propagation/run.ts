/**
 * BGP propagation benchmark: how fast does a DUT pass N IPv4 prefixes from one eBGP peer to another?
 *
 *   tester (AS 65001, 127.0.0.11) -> DUT (AS 65000, 127.0.0.10:P) -> monitor (AS 65002, 127.0.0.12)
 *
 * t0 = the tester writes the first UPDATE byte; t1 = the monitor has seen every one of the N
 * prefixes. Reported: seconds, prefixes/s, the DUT's peak RSS (VmHWM read from /proc at t1, before
 * the DUT is stopped), the DUT's CPU seconds and the harness's own CPU seconds over [t0, t1].
 *
 * Usage:
 *   npx tsx bench/bgp-propagation/run.ts --n 100000,1000000 --dut bird,frr,gobgp,vce [--runs 1]
 *     [--timeout 600] [--seed 1] [--quiet-wait 120] [--out FILE | --no-json]
 * DUT `relay` is a byte relay that shows the harness floor. Before each run the harness waits up to
 * --quiet-wait seconds for the CPUs to be mostly idle (other work on the machine skews results) and
 * records how busy they were. Results: a markdown table on stdout and
 * JSON in bench/results/bgp-propagation-<date>.json.
 *
 * Invariants: one DUT process at a time; every process is stopped by PID and every temp directory
 * removed, also on timeout, error and Ctrl-C. The harness shares no code with src/bgp.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  DUT_ADDR,
  DUTS,
  MONITOR_ADDR,
  MONITOR_AS,
  REPO_ROOT,
  TESTER_ADDR,
  TESTER_AS,
  TESTER_NEXT_HOP,
  cpuSeconds,
  memoryKiB,
  running,
  type Dut,
} from './duts.ts';
import { buildWorkload, Framer, ip4, MSG_UPDATE, NlriCounter, Peer, type Workload } from './lib.ts';

type Status = 'ok' | 'timeout' | 'skipped' | 'error';

interface RunResult {
  dut: string;
  version: string;
  n: number;
  run: number;
  status: Status;
  message?: string;
  seconds?: number;
  prefixesPerSecond?: number;
  peakRssMiB?: number;
  dutCpuSeconds?: number;
  harnessCpuSeconds?: number;
  seen: number;
  repeats: number;
  unexpected: number;
  updatesReceived: number;
  /** Fraction of the machine's CPUs busy with other work just before the run. */
  busyBefore?: number;
}

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '100000' },
    dut: { type: 'string', default: 'bird,frr,gobgp,vce' },
    runs: { type: 'string', default: '1' },
    timeout: { type: 'string', default: '600' },
    seed: { type: 'string', default: '1' },
    out: { type: 'string' },
    'no-json': { type: 'boolean', default: false },
    'quiet-wait': { type: 'string', default: '120' },
  },
});

const sizes = values.n.split(',').map((s) => Number(s.trim()));
const dutNames = values.dut.split(',').map((s) => s.trim());
const runs = Number(values.runs);
const timeoutMs = Number(values.timeout) * 1000;
const seed = Number(values.seed);
for (const n of sizes) if (!Number.isInteger(n) || n < 1) throw new Error(`bad --n ${n}`);
for (const d of dutNames)
  if (DUTS[d] === undefined) throw new Error(`unknown DUT ${d} (${Object.keys(DUTS).join(', ')})`);

const tempDirs = new Set<string>();
function cleanupAndExit(code: number): void {
  for (const [pid, child] of running) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    child.unref();
  }
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  process.exit(code);
}
process.on('SIGINT', () => cleanupAndExit(130));
process.on('SIGTERM', () => cleanupAndExit(143));

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Fraction of all CPUs busy over `ms` (from /proc/stat), to tell whether the machine is quiet. */
async function busyFraction(ms: number): Promise<number> {
  const sample = (): { idle: number; total: number } => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    return { idle: f[3]! + (f[4] ?? 0), total };
  };
  const a = sample();
  await new Promise((r) => setTimeout(r, ms));
  const b = sample();
  return b.total === a.total ? 0 : 1 - (b.idle - a.idle) / (b.total - a.total);
}

/** Waits (at most `maxMs`) until other work leaves the CPUs mostly idle; returns the last busy fraction. */
async function waitQuiet(maxMs: number): Promise<number> {
  const until = Date.now() + maxMs;
  let busy = await busyFraction(500);
  while (busy > 0.15 && Date.now() < until) busy = await busyFraction(1000);
  return busy;
}

/** CPU seconds of this process (tester + monitor) since `from`. */
function cpuSince(from: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1e6;
}

/** The monitor's parse cost with no sockets: frame and count the whole stream from memory. */
function selfCheck(w: Workload): { cpuMs: number; seen: number } {
  w.expected.clearSeen();
  const counter = new NlriCounter(w.expected);
  const framer = new Framer((type, buf, start, end) => {
    if (type === MSG_UPDATE) counter.update(buf, start, end);
  });
  const c0 = process.cpuUsage();
  for (let off = 0; off < w.stream.length; off += 65536) {
    framer.push(w.stream.subarray(off, Math.min(w.stream.length, off + 65536)));
  }
  const cpuMs = cpuSince(c0) * 1000;
  w.expected.clearSeen();
  return { cpuMs, seen: counter.seen };
}

/** The first error-looking line of a log plus its last lines (stack traces are long). */
function summarizeLog(log: string): string {
  const lines = log.split('\n');
  const first = lines.find((l) => /error|fatal|cannot|failed/i.test(l));
  const last = lines.slice(-4);
  return (first !== undefined && !last.includes(first) ? [first, '...', ...last] : last).join('\n');
}

async function runOne(dut: Dut, version: string, w: Workload, run: number): Promise<RunResult> {
  const base = {
    dut: dut.name,
    version,
    n: w.n,
    run,
    seen: 0,
    repeats: 0,
    unexpected: 0,
    updatesReceived: 0,
  };
  const dir = mkdtempSync(join(tmpdir(), `vce-bench-${dut.name}-`));
  tempDirs.add(dir);
  const port = await freePort(DUT_ADDR);
  const apiPort = await freePort('127.0.0.1');
  const proc = dut.start({ dir, port, apiPort });
  const monitor = new Peer({
    asn: MONITOR_AS,
    bgpId: ip4(MONITOR_ADDR),
    localAddress: MONITOR_ADDR,
    remoteAddress: DUT_ADDR,
    remotePort: port,
  });
  const tester = new Peer({
    asn: TESTER_AS,
    bgpId: ip4(TESTER_ADDR),
    localAddress: TESTER_ADDR,
    remoteAddress: DUT_ADDR,
    remotePort: port,
  });
  w.expected.clearSeen();
  const counter = new NlriCounter(w.expected);
  const collect = (): Pick<RunResult, 'seen' | 'repeats' | 'unexpected' | 'updatesReceived'> => ({
    seen: counter.seen,
    repeats: counter.repeats,
    unexpected: counter.unexpected,
    updatesReceived: counter.updates,
  });
  let phase: 'startup' | 'run' = 'startup';
  let timer: NodeJS.Timeout | undefined;
  let poll: NodeJS.Timeout | undefined;
  try {
    const startDeadline = Date.now() + 30_000;
    await monitor.establish(startDeadline, proc.exited);
    await tester.establish(startDeadline, proc.exited);
    phase = 'run';

    let t1 = 0;
    const finished = new Promise<void>((resolve, reject) => {
      monitor.onMessage = (type, buf, start, end) => {
        if (type !== MSG_UPDATE) return;
        counter.update(buf, start, end);
        if (counter.seen === w.n && t1 === 0) {
          t1 = performance.now();
          resolve();
        }
      };
      monitor.onError = (e) => reject(new Error(`monitor: ${e.message}`));
      tester.onError = (e) => reject(new Error(`tester: ${e.message}`));
      timer = setTimeout(() => reject(new Error('timeout')), timeoutMs);
      poll = setInterval(() => {
        const why = proc.exited();
        if (why !== undefined) reject(new Error(`DUT ${why}`));
      }, 100);
    });
    const dutCpu0 = cpuSeconds(proc.pid) ?? 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const sending = tester.send(w.stream);
    sending.catch(() => undefined); // surfaced by onError / the DUT poll
    await finished;
    const harnessCpu = cpuSince(cpu0);
    const mem = memoryKiB(proc.pid);
    const dutCpu = cpuSeconds(proc.pid);
    const seconds = (t1 - t0) / 1000;
    return {
      ...base,
      ...collect(),
      status: 'ok',
      seconds,
      prefixesPerSecond: w.n / seconds,
      ...(mem === undefined ? {} : { peakRssMiB: mem.hwm / 1024 }),
      ...(dutCpu === undefined ? {} : { dutCpuSeconds: dutCpu - dutCpu0 }),
      harnessCpuSeconds: harnessCpu,
    };
  } catch (e) {
    const msg = (e as Error).message;
    const mem = memoryKiB(proc.pid);
    const tail = summarizeLog(proc.logTail(40));
    if (phase === 'startup' && dut.name === 'vce') {
      return {
        ...base,
        status: 'skipped',
        message: `vce agent did not come up (bin/vce.js: ${msg})${tail === '' ? '' : `; log:\n${tail}`}`,
      };
    }
    return {
      ...base,
      ...collect(),
      status: msg === 'timeout' ? 'timeout' : 'error',
      message: `${phase}: ${msg}${tail === '' ? '' : `; log:\n${tail}`}`,
      ...(mem === undefined ? {} : { peakRssMiB: mem.hwm / 1024 }),
    };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    if (poll !== undefined) clearInterval(poll);
    monitor.close();
    tester.close();
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
  }
}

function fmtNum(v: number | undefined, digits: number): string {
  return v === undefined ? '-' : v.toFixed(digits);
}

function table(results: RunResult[]): string {
  const head = [
    'DUT',
    'version',
    'N',
    'seconds',
    'prefixes/s',
    'peak RSS MiB',
    'DUT CPU s',
    'harness CPU s',
    'status',
  ];
  const rows = results.map((r) => [
    r.dut,
    r.version,
    String(r.n),
    fmtNum(r.seconds, 2),
    r.prefixesPerSecond === undefined ? '-' : Math.round(r.prefixesPerSecond).toLocaleString('en-US'),
    fmtNum(r.peakRssMiB, 0),
    fmtNum(r.dutCpuSeconds, 2),
    fmtNum(r.harnessCpuSeconds, 2),
    r.status === 'ok' ? 'ok' : `${r.status} (${r.seen}/${r.n} seen)`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

function resultsPath(): string {
  if (values.out !== undefined) return values.out;
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const date = new Date().toISOString().slice(0, 10);
  let path = join(dir, `bgp-propagation-${date}.json`);
  for (let i = 2; existsSync(path); i++) path = join(dir, `bgp-propagation-${date}-${i}.json`);
  return path;
}

async function main(): Promise<void> {
  const machine = {
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
  };
  console.log(
    `machine: ${machine.cpus} CPUs, ${machine.cpuModel}, ${machine.memoryGiB} GiB, Linux ${machine.kernel}`,
  );
  const versions = new Map<string, string | undefined>();
  for (const d of dutNames) versions.set(d, DUTS[d]!.version());

  const results: RunResult[] = [];
  const workloads: Record<string, unknown>[] = [];
  for (const n of sizes) {
    const g0 = performance.now();
    const w = buildWorkload(n, seed, ip4(TESTER_NEXT_HOP));
    const genMs = performance.now() - g0;
    const check = selfCheck(w);
    if (check.seen !== n) throw new Error(`self-check: the monitor counted ${check.seen} of ${n}`);
    console.log(
      `workload N=${n}: ${w.updates} UPDATEs, ${(w.stream.length / 2 ** 20).toFixed(1)} MiB, built in ` +
        `${genMs.toFixed(0)} ms; monitor parse from memory: ${check.cpuMs.toFixed(1)} ms CPU`,
    );
    workloads.push({
      n,
      seed,
      updates: w.updates,
      attributeSets: w.attributeSets,
      bytes: w.stream.length,
      lengths: Object.fromEntries(w.lengths.flatMap((c, len) => (c > 0 ? [[`/${len}`, c]] : []))),
      monitorParseCpuMs: check.cpuMs,
    });
    for (const name of dutNames) {
      const dut = DUTS[name]!;
      const version = versions.get(name);
      for (let run = 1; run <= runs; run++) {
        if (version === undefined) {
          results.push({
            dut: name,
            version: '-',
            n,
            run,
            status: 'skipped',
            message: `${name} is not installed`,
            seen: 0,
            repeats: 0,
            unexpected: 0,
            updatesReceived: 0,
          });
          console.log(`${name}: not installed, skipped`);
          continue;
        }
        const busy = await waitQuiet(Number(values['quiet-wait']) * 1000);
        process.stdout.write(
          `${name} N=${n} run ${run}/${runs} (machine ${Math.round(busy * 100)} % busy) ... `,
        );
        const r = { ...(await runOne(dut, version, w, run)), busyBefore: busy };
        results.push(r);
        console.log(
          r.status === 'ok'
            ? `${r.seconds!.toFixed(2)} s, ${fmtNum(r.peakRssMiB, 0)} MiB, ${r.updatesReceived} UPDATEs received`
            : `${r.status}: ${r.message ?? ''}`,
        );
      }
    }
  }
  console.log(`\n${table(results)}\n`);
  if (!values['no-json']) {
    const path = resultsPath();
    const doc = {
      benchmark: 'bgp-propagation',
      date: new Date().toISOString(),
      command: `npx tsx bench/bgp-propagation/run.ts ${process.argv.slice(2).join(' ')}`,
      machine,
      topology: {
        tester: `${TESTER_ADDR} AS ${TESTER_AS}, NEXT_HOP ${TESTER_NEXT_HOP}`,
        dut: `${DUT_ADDR} AS 65000`,
        monitor: `${MONITOR_ADDR} AS ${MONITOR_AS}`,
      },
      workloads,
      results,
    };
    writeFileSync(path, `${JSON.stringify(doc, null, 2)}\n`);
    console.log(`results: ${path}`);
  }
}

main().then(
  () => cleanupAndExit(0),
  (e: unknown) => {
    console.error(e);
    cleanupAndExit(1);
  },
);
