/**
 * Benchmark of the controller store backends (src/controller/store): SQLite (a file in the OS
 * temp dir; WAL, synchronous=FULL, so every commit is an fsync) and etcd (a single local member
 * started by the interop harness, data dir in the OS temp dir).
 *
 * Measured per backend:
 *   put/s          sequential awaited puts of a 100-byte value (single writer, 1 in flight)
 *   put/s x16      the same with 16 puts in flight (pipelining; shows per-call latency vs fsync)
 *   txn/s          sequential CAS txns: compare the counter's modRevision, put it, use the result
 *   range 10k      reading 10,000 keys of ~100 bytes by prefix: all at once, and in pages of 1,000
 *                  (median of RUNS)
 *   watch latency  put -> onEvents on a prefix watch of the same client, sequential, p50 / p99
 * Run: npx tsx bench/store.ts [--quick] [--backend sqlite|etcd]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEtcdKv } from '../src/controller/store/etcd.ts';
import { openSqliteKv } from '../src/controller/store/sqlite.ts';
import type { Kv, Op, WatchEvent } from '../src/controller/store/types.ts';
import { etcdAvailable, startEtcd, type EtcdMember } from '../test/interop/harness/etcd.ts';

const QUICK = process.argv.includes('--quick');
const only = (() => {
  const i = process.argv.indexOf('--backend');
  return i < 0 ? undefined : process.argv[i + 1];
})();
const SECONDS = QUICK ? 1 : 3;
const RUNS = QUICK ? 3 : 7;
const RANGE_KEYS = 10_000;
const LATENCY_SAMPLES = QUICK ? 200 : 1000;
const VALUE = 'v'.repeat(100);

interface Row {
  backend: string;
  putPerS: number;
  putPar16PerS: number;
  txnPerS: number;
  rangeAllMs: number;
  rangePagedMs: number;
  watchP50Ms: number;
  watchP99Ms: number;
}

function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** Runs `op` repeatedly for SECONDS with `inFlight` concurrent loops; returns ops/s. */
async function rate(inFlight: number, op: (i: number) => Promise<unknown>): Promise<number> {
  let n = 0;
  const t0 = nowMs();
  const deadline = t0 + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (nowMs() < deadline) await op(n++);
    }),
  );
  return n / ((nowMs() - t0) / 1000);
}

async function bench(name: string, kv: Kv): Promise<Row> {
  const putPerS = await rate(1, (i) => kv.put(`bench/put/${i % 1000}`, VALUE));
  const putPar16PerS = await rate(16, (i) => kv.put(`bench/par/${i % 1000}`, VALUE));

  let last = (await kv.txn([], [{ type: 'put', key: 'bench/counter', value: '0' }])).revision;
  let count = 0;
  const txnPerS = await rate(1, async () => {
    const res = await kv.txn(
      [{ key: 'bench/counter', modRevision: last }],
      [{ type: 'put', key: 'bench/counter', value: String(++count) }],
    );
    if (!res.succeeded) throw new Error('CAS failed with a single writer');
    last = res.revision;
  });

  for (let i = 0; i < RANGE_KEYS; i += 100) {
    const ops: Op[] = [];
    for (let j = i; j < i + 100; j++)
      ops.push({ type: 'put', key: `bench/range/${String(j).padStart(6, '0')}`, value: VALUE });
    await kv.txn([], ops);
  }
  const all: number[] = [];
  const paged: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    let t0 = nowMs();
    const res = await kv.range('bench/range/');
    all.push(nowMs() - t0);
    if (res.entries.length !== RANGE_KEYS) throw new Error(`range returned ${res.entries.length}`);
    t0 = nowMs();
    let after: string | undefined;
    let got = 0;
    for (;;) {
      const page = await kv.range(
        'bench/range/',
        after === undefined ? { limit: 1000 } : { limit: 1000, after },
      );
      got += page.entries.length;
      if (!page.more) break;
      after = page.entries.at(-1)!.key;
    }
    paged.push(nowMs() - t0);
    if (got !== RANGE_KEYS) throw new Error(`paged range returned ${got}`);
  }

  let resolveEvent: ((e: WatchEvent) => void) | undefined;
  const watch = await kv.watch('bench/watch/', 0, {
    onEvents: (evs) => resolveEvent?.(evs[0]!),
    onError: (e) => {
      throw e;
    },
  });
  const latencies: number[] = [];
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const seen = new Promise<WatchEvent>((resolve) => (resolveEvent = resolve));
    const t0 = nowMs();
    await kv.put('bench/watch/k', String(i));
    await seen;
    latencies.push(nowMs() - t0);
  }
  watch.cancel();

  return {
    backend: name,
    putPerS,
    putPar16PerS,
    txnPerS,
    rangeAllMs: median(all),
    rangePagedMs: median(paged),
    watchP50Ms: percentile(latencies, 50),
    watchP99Ms: percentile(latencies, 99),
  };
}

function printTable(rows: Row[]): void {
  const header = [
    'backend',
    'put/s',
    'put/s x16',
    'txn/s',
    'range 10k ms',
    'paged 10k ms',
    'watch p50 ms',
    'watch p99 ms',
  ];
  const cells = rows.map((r) => [
    r.backend,
    r.putPerS.toFixed(0),
    r.putPar16PerS.toFixed(0),
    r.txnPerS.toFixed(0),
    r.rangeAllMs.toFixed(1),
    r.rangePagedMs.toFixed(1),
    r.watchP50Ms.toFixed(2),
    r.watchP99Ms.toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]): string =>
    `| ${c.map((x, i) => (i === 0 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  for (const c of cells) console.log(line(c));
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  if (only === undefined || only === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'vce-bench-store-'));
    try {
      const kv = await openSqliteKv(join(dir, 'bench.db'));
      rows.push(await bench('sqlite', kv));
      await kv.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  if (only === undefined || only === 'etcd') {
    if (!etcdAvailable()) {
      console.error('etcd not installed: skipping the etcd backend');
    } else {
      let etcd: EtcdMember | undefined;
      try {
        etcd = await startEtcd('bench');
        const kv = await openEtcdKv([etcd.clientUrl], { prefix: 'bench/' });
        rows.push(await bench('etcd 3.4 (1 member)', kv));
        await kv.close();
      } finally {
        await etcd?.stop();
      }
    }
  }
  console.log(
    `\nstore benchmark (${SECONDS} s per rate, ${RUNS} range runs, ${LATENCY_SAMPLES} watch samples)\n`,
  );
  printTable(rows);
}

await main();
