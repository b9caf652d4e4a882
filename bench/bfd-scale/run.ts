/**
 * BFD scale benchmark: how short an interval N single-hop sessions hold without false downs, and
 * how the detection time is distributed when the peer dies.
 *
 *   npx tsx bench/bfd-scale/run.ts [--sessions 100] [--intervals 100,50,30,20,10] [--minutes 10]
 *                                  [--trial-minutes 1] [--reference 300] [--out path.json]
 *
 * Two child Node processes (each its own event loop, like two real systems), each with one
 * BfdManager on UDP 14784 (single hop) / 15784 (multihop, unused):
 *   side A: local 127.0.8.i  ── session i ──  side B: local 127.0.9.i     (i = 1..N)
 * One manager holds every local address (one receive + one transmit socket per address).
 *
 * Phases:
 * 1. Sweep: for each interval T (desired min TX = required min RX = T, detect mult 3): both sides
 *    acquire N sessions, wait until all 2N are Up, then run `--trial-minutes` counting 'down'
 *    events (false downs), CPU of each process (process.cpuUsage) and event-loop delay
 *    (perf_hooks.monitorEventLoopDelay, 2 ms resolution). Then both managers close.
 * 2. Confirm: the shortest T with zero false downs runs once more for `--minutes`.
 * 3. Detection: at that T and at `--reference` ms, all N Up, then side B gets SIGKILL; for every
 *    session on side A, the time from the kill to its 'down' event (CLOCK_MONOTONIC via
 *    process.hrtime, which is shared between processes) against the theoretical 3 × T.
 *
 * Prints a table and writes JSON to bench/results/bfd-scale-<date>.json. Children are tracked by
 * PID and killed by PID on exit.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { BfdManager, type BfdStateChange } from '../../src/bfd/transport.ts';

const PORT = 14784;
const MH_PORT = 15784;
const MULT = 3;
/** Event-loop delay sampling interval; subtracted from the reported delays. */
const ELD_RES_MS = 2;
const SELF = fileURLToPath(import.meta.url);

const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

const addrA = (i: number): string => `127.0.8.${i}`;
const addrB = (i: number): string => `127.0.9.${i}`;

// ----------------------------------------------------------------------------------- messages

type ToChild =
  | { cmd: 'start'; id: number; n: number; intervalMs: number }
  | { cmd: 'reset'; id: number }
  | { cmd: 'stats'; id: number }
  | { cmd: 'stop'; id: number };

interface ChildStats {
  side: string;
  up: number;
  downs: number;
  downTimes: number[];
  cpuPct: number;
  cpuUserMs: number;
  cpuSysMs: number;
  wallMs: number;
  eld: { p50: number; p99: number; max: number; mean: number };
  sent: number;
  received: number;
  sendErrors: number;
  downDiags: Record<string, number>;
}

type FromChild =
  | { ev: 'ready' }
  | { ev: 'ack'; id: number }
  | { ev: 'allUp'; at: number }
  | { ev: 'stats'; id: number; stats: ChildStats }
  | { ev: 'error'; message: string };

// -------------------------------------------------------------------------------------- child

function child(side: 'A' | 'B'): void {
  const send = (m: FromChild): void => void process.send?.(m);
  let mgr: BfdManager | undefined;
  let n = 0;
  let upSet = new Set<string>();
  let downs = 0;
  let downTimes: number[] = [];
  let downDiags: Record<string, number> = {};
  let allUpReported = false;
  const eld = monitorEventLoopDelay({ resolution: ELD_RES_MS });
  eld.enable();
  let cpu0 = process.cpuUsage();
  let wall0 = nowMs();
  let base = { sent: 0, received: 0, sendErrors: 0 };

  const reset = (): void => {
    downs = 0;
    downTimes = [];
    downDiags = {};
    eld.reset();
    cpu0 = process.cpuUsage();
    wall0 = nowMs();
    base = mgr === undefined ? { sent: 0, received: 0, sendErrors: 0 } : { ...mgr.stats };
  };

  const stats = (): ChildStats => {
    const c = process.cpuUsage(cpu0);
    const wall = nowMs() - wall0;
    const s = mgr?.stats ?? { sent: 0, received: 0, sendErrors: 0 };
    return {
      side,
      up: upSet.size,
      downs,
      downTimes,
      cpuPct: ((c.user + c.system) / 1000 / wall) * 100,
      cpuUserMs: c.user / 1000,
      cpuSysMs: c.system / 1000,
      wallMs: wall,
      // The histogram records the time between samples, which includes the sampling interval.
      eld: {
        p50: Math.max(0, eld.percentile(50) / 1e6 - ELD_RES_MS),
        p99: Math.max(0, eld.percentile(99) / 1e6 - ELD_RES_MS),
        max: Math.max(0, eld.max / 1e6 - ELD_RES_MS),
        mean: Math.max(0, eld.mean / 1e6 - ELD_RES_MS),
      },
      sent: s.sent - base.sent,
      received: s.received - base.received,
      sendErrors: s.sendErrors - base.sendErrors,
      downDiags,
    };
  };

  process.on('message', (raw) => {
    const m = raw as ToChild;
    void (async () => {
      try {
        if (m.cmd === 'start') {
          n = m.n;
          upSet = new Set();
          allUpReported = false;
          mgr = new BfdManager({ singleHopPort: PORT, multihopPort: MH_PORT });
          mgr.on('error', (e) => send({ ev: 'error', message: e.message }));
          mgr.on('up', (c: BfdStateChange) => {
            upSet.add(c.localAddress);
            if (!allUpReported && upSet.size === n) {
              allUpReported = true;
              send({ ev: 'allUp', at: nowMs() });
            }
          });
          mgr.on('down', (c: BfdStateChange) => {
            upSet.delete(c.localAddress);
            downs++;
            downTimes.push(nowMs());
            downDiags[c.diagName] = (downDiags[c.diagName] ?? 0) + 1;
          });
          reset();
          const us = m.intervalMs * 1000;
          for (let i = 1; i <= n; i++) {
            const [local, peer] = side === 'A' ? [addrA(i), addrB(i)] : [addrB(i), addrA(i)];
            await mgr.acquire(peer, {
              localAddress: local,
              desiredMinTxUs: us,
              requiredMinRxUs: us,
              detectMult: MULT,
            });
          }
        } else if (m.cmd === 'reset') {
          reset();
        } else if (m.cmd === 'stats') {
          send({ ev: 'stats', id: m.id, stats: stats() });
          return;
        } else if (m.cmd === 'stop') {
          await mgr?.close();
          mgr = undefined;
        }
        send({ ev: 'ack', id: m.id });
      } catch (e) {
        send({ ev: 'error', message: e instanceof Error ? e.message : String(e) });
      }
    })();
  });
  process.on('disconnect', () => process.exit(0));
  send({ ev: 'ready' });
}

// ------------------------------------------------------------------------------------- parent

interface Side {
  name: 'A' | 'B';
  proc: ChildProcess;
  allUpAt: number | undefined;
  errors: string[];
  waiters: Map<number, (m: FromChild) => void>;
}

const running = new Set<ChildProcess>();
let nextId = 1;

function killAll(): void {
  for (const p of running) {
    if (p.pid !== undefined && p.exitCode === null && p.signalCode === null) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });

function spawnSide(name: 'A' | 'B'): Promise<Side> {
  const proc = fork(SELF, ['--child', name], { execArgv: process.execArgv, stdio: 'inherit' });
  running.add(proc);
  proc.on('exit', () => running.delete(proc));
  const side: Side = { name, proc, allUpAt: undefined, errors: [], waiters: new Map() };
  return new Promise((resolve, reject) => {
    proc.on('message', (raw) => {
      const m = raw as FromChild;
      if (m.ev === 'ready') resolve(side);
      else if (m.ev === 'allUp') side.allUpAt = m.at;
      else if (m.ev === 'error') side.errors.push(m.message);
      else {
        const w = side.waiters.get(m.id);
        side.waiters.delete(m.id);
        w?.(m);
      }
    });
    proc.once('exit', (code, sig) => reject(new Error(`side ${name} exited (${code ?? sig})`)));
  });
}

/** A command without its id (Omit distributed over the union). */
type Command = ToChild extends infer C ? (C extends unknown ? Omit<C, 'id'> : never) : never;

function call(side: Side, msg: Command): Promise<FromChild> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`side ${side.name}: ${msg.cmd} timed out`)), 60_000);
    side.waiters.set(id, (m) => {
      clearTimeout(t);
      resolve(m);
    });
    side.proc.send({ ...msg, id });
  });
}

async function statsOf(side: Side): Promise<ChildStats> {
  const m = await call(side, { cmd: 'stats' });
  if (m.ev !== 'stats') throw new Error('bad stats reply');
  return m.stats;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Starts N sessions on both sides at T ms and waits until all are Up on both (or times out). */
async function bringUp(a: Side, b: Side, n: number, intervalMs: number): Promise<number | undefined> {
  a.allUpAt = b.allUpAt = undefined;
  const t0 = nowMs();
  await Promise.all([call(a, { cmd: 'start', n, intervalMs }), call(b, { cmd: 'start', n, intervalMs })]);
  const deadline = t0 + 30_000;
  while (nowMs() < deadline) {
    if (a.allUpAt !== undefined && b.allUpAt !== undefined) return Math.max(a.allUpAt, b.allUpAt) - t0;
    await sleep(50);
  }
  return undefined;
}

async function stopBoth(a: Side, b: Side): Promise<void> {
  await Promise.all([call(a, { cmd: 'stop' }), call(b, { cmd: 'stop' })]);
  await sleep(300); // AdminDown packets and socket closes settle
}

interface TrialResult {
  intervalMs: number;
  minutes: number;
  kind: 'sweep' | 'confirm';
  upAfterMs: number | undefined;
  falseDowns: number;
  /** Groups of false downs more than 1 s apart (one per stall). */
  downBursts?: number;
  a?: ChildStats;
  b?: ChildStats;
  load: number[];
}

async function trial(
  a: Side,
  b: Side,
  n: number,
  intervalMs: number,
  minutes: number,
  kind: TrialResult['kind'],
): Promise<TrialResult> {
  const upAfterMs = await bringUp(a, b, n, intervalMs);
  if (upAfterMs === undefined) {
    const [sa, sb] = await Promise.all([statsOf(a), statsOf(b)]);
    await stopBoth(a, b);
    return {
      intervalMs,
      minutes,
      kind,
      upAfterMs,
      falseDowns: -1,
      a: sa,
      b: sb,
      load: loadavg(),
    };
  }
  await sleep(1000); // settle after the bring-up burst
  await Promise.all([call(a, { cmd: 'reset' }), call(b, { cmd: 'reset' })]);
  const end = nowMs() + minutes * 60_000;
  while (nowMs() < end) await sleep(Math.min(5000, end - nowMs()));
  const [sa, sb] = await Promise.all([statsOf(a), statsOf(b)]);
  const load = loadavg();
  await stopBoth(a, b);
  // Downs within 1 s of each other come from one stall (all sessions of a frozen loop expire together).
  const times = [...sa.downTimes, ...sb.downTimes].sort((x, y) => x - y);
  const downBursts = times.filter((t, i) => i === 0 || t - (times[i - 1] ?? 0) > 1000).length;
  return {
    intervalMs,
    minutes,
    kind,
    upAfterMs,
    falseDowns: sa.downs + sb.downs,
    downBursts,
    a: { ...sa, downTimes: [] },
    b: { ...sb, downTimes: [] },
    load,
  };
}

interface DetectionResult {
  intervalMs: number;
  theoreticalMs: number;
  sessions: number;
  detected: number;
  minMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
  diags: Record<string, number>;
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, i)] ?? NaN;
}

async function detection(a: Side, n: number, intervalMs: number): Promise<DetectionResult> {
  // Side B is killed at the end, so every measurement starts its own.
  const b = await spawnSide('B');
  const upAfter = await bringUp(a, b, n, intervalMs);
  if (upAfter === undefined) throw new Error(`detection at ${intervalMs} ms: sessions did not all come up`);
  await sleep(Math.max(2000, 10 * intervalMs));
  await call(a, { cmd: 'reset' });
  const exited = new Promise((r) => b.proc.once('exit', r));
  const killAt = nowMs();
  process.kill(b.proc.pid ?? -1, 'SIGKILL');
  await exited;
  const deadline = nowMs() + Math.max(3000, 10 * MULT * intervalMs);
  let s = await statsOf(a);
  while (s.downs < n && nowMs() < deadline) {
    await sleep(Math.max(20, intervalMs));
    s = await statsOf(a);
  }
  await call(a, { cmd: 'stop' });
  const d = s.downTimes.map((t) => t - killAt).sort((x, y) => x - y);
  return {
    intervalMs,
    theoreticalMs: MULT * intervalMs,
    sessions: n,
    detected: d.length,
    minMs: d[0] ?? NaN,
    p50Ms: pct(d, 50),
    p99Ms: pct(d, 99),
    maxMs: d[d.length - 1] ?? NaN,
    meanMs: d.reduce((x, y) => x + y, 0) / (d.length || 1),
    diags: s.downDiags,
  };
}

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? (process.argv[i + 1] as string) : def;
}

const f1 = (x: number | undefined): string => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(1));

async function main(): Promise<void> {
  const n = Number(arg('sessions', '100'));
  const intervals = arg('intervals', '100,50,30,20,10')
    .split(',')
    .map(Number)
    .sort((x, y) => y - x);
  const minutes = Number(arg('minutes', '10'));
  const trialMinutes = Number(arg('trial-minutes', '1'));
  const reference = Number(arg('reference', '300'));
  if (!(n >= 1 && n <= 254)) throw new Error('--sessions must be 1..254');
  const date = new Date().toISOString().slice(0, 10);
  let out = arg('out', `bench/results/bfd-scale-${date}.json`);
  for (let k = 2; existsSync(out) && arg('out', '') === ''; k++)
    out = `bench/results/bfd-scale-${date}-${k}.json`;
  const started = new Date().toISOString();
  const env = { nproc: cpus().length, cpu: cpus()[0]?.model, node: process.version, loadStart: loadavg() };
  console.log(
    `bfd-scale: ${n} sessions, intervals ${intervals.join(',')} ms, trial ${trialMinutes} min, confirm ${minutes} min; ` +
      `nproc ${env.nproc}, load ${env.loadStart.map((l) => l.toFixed(2)).join(' ')}`,
  );

  const a = await spawnSide('A');
  const b = await spawnSide('B');
  const trials: TrialResult[] = [];
  for (const t of intervals) {
    const r = await trial(a, b, n, t, trialMinutes, 'sweep');
    trials.push(r);
    console.log(
      `  sweep T=${t} ms: up after ${f1(r.upAfterMs)} ms, false downs ${r.falseDowns}, ` +
        `cpu A ${f1(r.a?.cpuPct)}% B ${f1(r.b?.cpuPct)}%, eld p99 A ${f1(r.a?.eld.p99)} B ${f1(r.b?.eld.p99)} ms, ` +
        `load ${r.load.map((l) => l.toFixed(2)).join(' ')}`,
    );
  }
  const ok = trials.filter((r) => r.falseDowns === 0).map((r) => r.intervalMs);
  const best = ok.length > 0 ? Math.min(...ok) : undefined;
  let confirm: TrialResult | undefined;
  if (best !== undefined && minutes > 0) {
    confirm = await trial(a, b, n, best, minutes, 'confirm');
    trials.push(confirm);
    console.log(`  confirm T=${best} ms for ${minutes} min: false downs ${confirm.falseDowns}`);
  }
  // Detection: side B is killed, so it is respawned for each measurement.
  const detections: DetectionResult[] = [];
  b.proc.kill('SIGKILL');
  for (const t of [...new Set([best ?? intervals[0] ?? 100, reference])]) {
    const d = await detection(a, n, t);
    detections.push(d);
    console.log(`  detection T=${t} ms: p50 ${f1(d.p50Ms)} ms, max ${f1(d.maxMs)} ms`);
  }
  a.proc.kill('SIGKILL');

  const loadEnd = loadavg();
  // ------------------------------------------------------------------------------ table
  const lines: string[] = [];
  lines.push(
    `BFD scale: ${n} single-hop sessions, two Node processes, detect mult ${MULT}, nproc ${env.nproc}, ` +
      `load at start ${env.loadStart.map((l) => l.toFixed(2)).join('/')}, at end ${loadEnd.map((l) => l.toFixed(2)).join('/')}`,
  );
  lines.push('');
  lines.push(
    '| T (ms) | trial | all Up after (ms) | false downs (bursts) | CPU A % | CPU B % | pkts/s A tx/rx | loop delay A p50/p99/max (ms) | loop delay B p50/p99/max (ms) | load 1m |',
  );
  lines.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of trials) {
    const pps =
      r.a === undefined
        ? '-'
        : `${Math.round(r.a.sent / (r.a.wallMs / 1000))}/${Math.round(r.a.received / (r.a.wallMs / 1000))}`;
    const eld = (s: ChildStats | undefined): string =>
      s === undefined ? '-' : `${f1(s.eld.p50)}/${f1(s.eld.p99)}/${f1(s.eld.max)}`;
    lines.push(
      `| ${r.intervalMs} | ${r.kind} ${r.minutes} min | ${f1(r.upAfterMs)} | ${r.falseDowns < 0 ? 'not all Up' : `${r.falseDowns} (${r.downBursts ?? 0})`} | ` +
        `${f1(r.a?.cpuPct)} | ${f1(r.b?.cpuPct)} | ${pps} | ${eld(r.a)} | ${eld(r.b)} | ${r.load[0]?.toFixed(2)} |`,
    );
  }
  lines.push('');
  lines.push(
    `Shortest T with zero false downs over ${trialMinutes} min: ${best ?? 'none'} ms` +
      (confirm !== undefined ? `; ${minutes}-min confirmation: ${confirm.falseDowns} false downs` : ''),
  );
  lines.push('');
  lines.push('| T (ms) | theoretical 3×T (ms) | detected | min | p50 | p99 | max | mean (ms) | diag |');
  lines.push('|---|---|---|---|---|---|---|---|---|');
  for (const d of detections)
    lines.push(
      `| ${d.intervalMs} | ${d.theoreticalMs} | ${d.detected}/${d.sessions} | ${f1(d.minMs)} | ${f1(d.p50Ms)} | ` +
        `${f1(d.p99Ms)} | ${f1(d.maxMs)} | ${f1(d.meanMs)} | ${Object.entries(d.diags)
          .map(([k, v]) => `${k}×${v}`)
          .join(' ')} |`,
    );
  const table = lines.join('\n');
  console.log(`\n${table}`);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    out,
    `${JSON.stringify(
      {
        bench: 'bfd-scale',
        started,
        finished: new Date().toISOString(),
        command: `npx tsx bench/bfd-scale/run.ts ${process.argv.slice(2).join(' ')}`.trim(),
        env: { ...env, loadEnd },
        sessions: n,
        detectMult: MULT,
        ports: { singleHop: PORT, multihop: MH_PORT },
        trials,
        bestIntervalMs: best ?? null,
        confirm: confirm ?? null,
        detections,
        table,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`\nwrote ${out}`);
}

const ci = process.argv.indexOf('--child');
if (ci >= 0) {
  child(process.argv[ci + 1] === 'B' ? 'B' : 'A');
} else {
  main().then(
    () => {
      killAll();
      process.exit(0);
    },
    (e: unknown) => {
      console.error(e);
      killAll();
      process.exit(1);
    },
  );
}
