/**
 * Micro-benchmark of the data plane's longest-prefix-match FIB (src/dataplane/fib).
 *
 * Tables (seeded, so every run builds the same ones):
 *   IPv4  1,000,000 distinct prefixes, internet-like lengths: ~63 % /24, 21.5 % /22-/23,
 *         13 % /16-/21, 0.3 % /8-/15, 2 % /25-/32; placed inside 40,000 "allocated" /16s
 *         (shorter ones anywhere in 1/8-223/8)
 *   IPv6  200,000 distinct prefixes: ~50 % /48, 40 % /32-/44, 8 % /56-/64, 1 % /128, 1 % /19-/31;
 *         inside 30,000 /32 allocations under 48 RIR-like /16s (2001, 2400-240f, 2600-260f, ...)
 * Measured, each the median of RUNS runs after a warm-up run:
 *   lookup/s  single thread, over 4M precomputed addresses: "hit" = random host in a random
 *             table prefix, "uniform" = uniformly random addresses (IPv6: under 2000::/4)
 *   insert/s  building the whole table into a fresh FIB (growth and root rebuilds included)
 *   delete/s  removing every prefix in random order from a full FIB
 *   memory    memoryBytes() and the RSS delta of one built table (after GC), and the same for a
 *             10-route table and for 1,000 contexts of 10 IPv4 + 10 IPv6 routes
 * Run: npx tsx bench/lpm.ts   (--quick: 3 runs and no 24-bit-root IPv4 pass unless --dir24)
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { Lpm4 } from '../src/dataplane/fib/lpm4.ts';
import { Lpm6 } from '../src/dataplane/fib/lpm6.ts';
import type { LpmOptions } from '../src/dataplane/fib/stride-trie.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const QUICK = process.argv.includes('--quick');
const RUNS = QUICK ? 3 : 7;
const N4 = 1_000_000;
const N6 = 200_000;
const PROBES = 4_000_000;

function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

function time(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** Warm-up run, then RUNS timed runs; returns the median seconds. */
function measure(fn: () => void): number {
  fn();
  const xs: number[] = [];
  for (let r = 0; r < RUNS; r++) xs.push(time(fn));
  return median(xs);
}

function rss(): number {
  gc();
  gc();
  return process.memoryUsage().rss;
}

// ---- IPv4 table -------------------------------------------------------------------------------

interface Table4 {
  addr: Uint32Array;
  len: Uint8Array;
  value: Int32Array;
}

function pickLen4(r: number): number {
  const p = r % 10_000;
  if (p < 6300) return 24;
  if (p < 7350) return 23;
  if (p < 8450) return 22;
  if (p < 8850) return 21;
  if (p < 9250) return 20;
  if (p < 9500) return 19;
  if (p < 9620) return 18;
  if (p < 9700) return 17;
  if (p < 9770) return 16;
  if (p < 9800) return 8 + (r % 8);
  return 25 + ((r >>> 14) % 8);
}

function buildTable4(): Table4 {
  const next = rng(0x4c504d34);
  const slash16 = new Uint32Array(40_000);
  const seen16 = new Set<number>();
  for (let i = 0; i < slash16.length;) {
    const hi = ((1 + (next() % 223)) << 8) | (next() & 255);
    if (hi >>> 8 === 10 || hi >>> 8 === 127 || seen16.has(hi)) continue;
    seen16.add(hi);
    slash16[i++] = hi;
  }
  const t: Table4 = { addr: new Uint32Array(N4), len: new Uint8Array(N4), value: new Int32Array(N4) };
  const seen = new Set<number>();
  for (let i = 0; i < N4;) {
    const len = pickLen4(next());
    let a: number;
    if (len < 16) a = ((1 + (next() % 223)) << 24) | (next() & 0xffffff);
    else a = (slash16[next() % slash16.length]! << 16) | (next() & 0xffff);
    a = (a & (-1 << (32 - len))) >>> 0;
    const key = a * 64 + len; // exact in a double
    if (seen.has(key)) continue;
    seen.add(key);
    t.addr[i] = a;
    t.len[i] = len;
    t.value[i] = 1 + (i % 65_535);
    i++;
  }
  return t;
}

function fill4(t: Table4, options: LpmOptions): Lpm4 {
  const f = new Lpm4(options);
  for (let i = 0; i < t.addr.length; i++) f.set(t.addr[i]!, t.len[i]!, t.value[i]!);
  return f;
}

function hitProbes4(t: Table4, next: () => number): Uint32Array {
  const out = new Uint32Array(PROBES);
  for (let i = 0; i < PROBES; i++) {
    const k = next() % t.addr.length;
    const l = t.len[k]!;
    out[i] = (t.addr[k]! | (l === 32 ? 0 : next() & (-1 >>> l))) >>> 0;
  }
  return out;
}

let sink = 0;

function lookups4(f: Lpm4, probes: Uint32Array): number {
  let s = 0;
  for (let i = 0; i < probes.length; i++) s = (s + f.lookup(probes[i]!)) | 0;
  return s;
}

// ---- IPv6 table -------------------------------------------------------------------------------

interface Table6 {
  addr: Uint8Array; // 16 bytes per prefix
  len: Uint8Array;
  value: Int32Array;
}

const RIR16 = [0x2001, 0x2003, 0x2c0f];
for (let i = 0; i < 15; i++) RIR16.push(0x2400 + i, 0x2600 + i, 0x2a00 + i);

function pickLen6(r: number): number {
  const p = r % 1000;
  if (p < 500) return 48;
  if (p < 650) return 32;
  if (p < 750) return 33 + ((r >>> 10) % 8); // /33-/40
  if (p < 900) return 41 + ((r >>> 10) % 4); // /41-/44
  if (p < 930) return 56;
  if (p < 960) return 64;
  if (p < 980) return 57 + ((r >>> 10) % 7);
  if (p < 990) return 128;
  return 19 + ((r >>> 10) % 13); // /19-/31
}

function maskBytes(a: Uint8Array, off: number, len: number): void {
  for (let i = 0; i < 16; i++) {
    const bits = Math.max(0, Math.min(8, len - i * 8));
    a[off + i] = a[off + i]! & ((0xff00 >> bits) & 0xff);
  }
}

function buildTable6(): Table6 {
  const next = rng(0x4c504d36);
  const alloc = new Uint32Array(30_000); // the /32s: first 32 bits
  const seenA = new Set<number>();
  for (let i = 0; i < alloc.length;) {
    const a = ((RIR16[next() % RIR16.length]! << 16) | (next() & 0xffff)) >>> 0;
    if (seenA.has(a)) continue;
    seenA.add(a);
    alloc[i++] = a;
  }
  const t: Table6 = { addr: new Uint8Array(N6 * 16), len: new Uint8Array(N6), value: new Int32Array(N6) };
  const seen = new Set<string>();
  const tmp = new Uint8Array(16);
  for (let i = 0; i < N6;) {
    const len = pickLen6(next());
    const a32 = alloc[next() % alloc.length]!;
    const w = [a32, next(), next(), next()];
    for (let j = 0; j < 4; j++) {
      tmp[j * 4] = w[j]! >>> 24;
      tmp[j * 4 + 1] = (w[j]! >>> 16) & 255;
      tmp[j * 4 + 2] = (w[j]! >>> 8) & 255;
      tmp[j * 4 + 3] = w[j]! & 255;
    }
    maskBytes(tmp, 0, len);
    const key = `${Buffer.from(tmp).toString('hex')}/${len}`;
    if (seen.has(key)) continue;
    seen.add(key);
    t.addr.set(tmp, i * 16);
    t.len[i] = len;
    t.value[i] = 1 + (i % 65_535);
    i++;
  }
  return t;
}

function fill6(t: Table6): Lpm6 {
  const f = new Lpm6();
  for (let i = 0; i < t.len.length; i++) f.set(t.addr.subarray(i * 16, i * 16 + 16), t.len[i]!, t.value[i]!);
  return f;
}

function hitProbes6(t: Table6, next: () => number): Uint8Array {
  const out = new Uint8Array(PROBES * 16);
  for (let i = 0; i < PROBES; i++) {
    const k = next() % t.len.length;
    const l = t.len[k]!;
    for (let b = 0; b < 16; b++) {
      const bits = Math.max(0, Math.min(8, l - b * 8));
      const m = (0xff00 >> bits) & 0xff;
      out[i * 16 + b] = (t.addr[k * 16 + b]! & m) | (next() & ~m & 0xff);
    }
  }
  return out;
}

function uniformProbes6(next: () => number): Uint8Array {
  const out = new Uint8Array(PROBES * 16);
  for (let i = 0; i < out.length; i++) out[i] = next() & 255;
  for (let i = 0; i < PROBES; i++) out[i * 16] = 0x20 | (out[i * 16]! & 0x0f); // 2000::/4
  return out;
}

function lookups6(f: Lpm6, probes: Uint8Array): number {
  let s = 0;
  for (let off = 0; off < probes.length; off += 16) s = (s + f.lookup(probes, off)) | 0;
  return s;
}

// ---- Small tables -----------------------------------------------------------------------------

/** A vCE-like context: default, a few connected /24s and /32s, a /16 aggregate. */
function small4(seed: number): Lpm4 {
  const next = rng(seed);
  const f = new Lpm4();
  f.set(0, 0, 1);
  f.set(0x0a000000 | ((next() & 255) << 16), 16, 2);
  for (let i = 0; i < 5; i++) f.set(0x0a000000 | (next() & 0xffff00), 24, 3 + i);
  for (let i = 0; i < 3; i++) f.set(0xc0a80000 | (next() & 0xffff), 32, 8 + i);
  return f;
}

function small6(seed: number): Lpm6 {
  const next = rng(seed);
  const f = new Lpm6();
  const a = new Uint8Array(16);
  f.set(a, 0, 1);
  a[0] = 0xfd;
  a[1] = next() & 255;
  f.set(a, 48, 2);
  for (let i = 0; i < 5; i++) {
    a[6] = next() & 255;
    a[7] = next() & 255;
    f.set(a, 64, 3 + i);
  }
  for (let i = 0; i < 3; i++) {
    a[15] = next() & 255;
    f.set(a, 128, 8 + i);
  }
  return f;
}

// ---- Run --------------------------------------------------------------------------------------

const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
const mib = (b: number): string => (b / 1048576).toFixed(1);
const rows: string[][] = [];

const t4 = buildTable4();
const probes4 = (() => {
  const next = rng(7);
  const hit = hitProbes4(t4, next);
  const uni = new Uint32Array(PROBES);
  for (let i = 0; i < PROBES; i++) uni[i] = next();
  return { hit, uni };
})();

function run4(label: string, options: LpmOptions): void {
  const { hit, uni } = probes4;
  const next = rng(8);
  const before = rss();
  const f = fill4(t4, options);
  const after = rss();
  const shape = f.stats();
  let hitRate = 0;
  for (let i = 0; i < 100_000; i++) if (f.lookup(uni[i]!) !== 0) hitRate++;
  const tHit = measure(() => (sink ^= lookups4(f, hit)));
  const tUni = measure(() => (sink ^= lookups4(f, uni)));
  const tIns = measure(() => void fill4(t4, options));
  const order = new Uint32Array(N4);
  for (let i = 0; i < N4; i++) order[i] = i;
  for (let i = N4 - 1; i > 0; i--) {
    const j = next() % (i + 1);
    const x = order[i]!;
    order[i] = order[j]!;
    order[j] = x;
  }
  const dels: number[] = [];
  for (let r = 0; r <= RUNS; r++) {
    const g = fill4(t4, options);
    const s = time(() => {
      for (let i = 0; i < N4; i++) {
        const k = order[i]!;
        g.delete(t4.addr[k]!, t4.len[k]!);
      }
    });
    if (g.size !== 0) throw new Error('delete left prefixes behind');
    if (r > 0) dels.push(s);
  }
  const shapeNote = `${shape.rootBits}-bit root, ${fmt(shape.nodes)} nodes, ${fmt(shape.leaves)} leaf records`;
  rows.push([`IPv4 ${label}`, `${fmt(N4)} prefixes`, '', shapeNote]);
  rows.push(['', 'lookup/s, hit', fmt(PROBES / tHit), `${((1e9 * tHit) / PROBES).toFixed(1)} ns`]);
  rows.push([
    '',
    'lookup/s, uniform',
    fmt(PROBES / tUni),
    `${((1e9 * tUni) / PROBES).toFixed(1)} ns; ${(hitRate / 1000).toFixed(0)} % routed`,
  ]);
  rows.push(['', 'insert/s', fmt(N4 / tIns), `full build ${(tIns * 1000).toFixed(0)} ms`]);
  rows.push(['', 'delete/s', fmt(N4 / median(dels)), `full teardown ${(median(dels) * 1000).toFixed(0)} ms`]);
  rows.push([
    '',
    'memoryBytes',
    `${mib(f.memoryBytes())} MiB`,
    `${(f.memoryBytes() / N4).toFixed(1)} B/prefix`,
  ]);
  rows.push(['', 'RSS delta', `${mib(after - before)} MiB`, '']);
  sink ^= f.lookup(1);
}

run4('(default)', {});
if (!QUICK || process.argv.includes('--dir24')) run4('{ minRootBits: 24 }', { minRootBits: 24 });

{
  const t6 = buildTable6();
  const next = rng(9);
  const hit = hitProbes6(t6, next);
  const uni = uniformProbes6(next);
  const before = rss();
  const f = fill6(t6);
  const after = rss();
  const shape = f.stats();
  let hitRate = 0;
  for (let i = 0; i < 100_000; i++) if (f.lookup(uni, i * 16) !== 0) hitRate++;
  const tHit = measure(() => (sink ^= lookups6(f, hit)));
  const tUni = measure(() => (sink ^= lookups6(f, uni)));
  const tIns = measure(() => void fill6(t6));
  const order = new Uint32Array(N6);
  for (let i = 0; i < N6; i++) order[i] = i;
  for (let i = N6 - 1; i > 0; i--) {
    const j = next() % (i + 1);
    const x = order[i]!;
    order[i] = order[j]!;
    order[j] = x;
  }
  const dels: number[] = [];
  for (let r = 0; r <= RUNS; r++) {
    const g = fill6(t6);
    const s = time(() => {
      for (let i = 0; i < N6; i++) {
        const k = order[i]!;
        g.delete(t6.addr.subarray(k * 16, k * 16 + 16), t6.len[k]!);
      }
    });
    if (g.size !== 0) throw new Error('delete left prefixes behind');
    if (r > 0) dels.push(s);
  }
  rows.push([
    'IPv6',
    `${fmt(N6)} prefixes`,
    '',
    `${shape.rootBits}-bit root, ${fmt(shape.nodes)} nodes, ${fmt(shape.leaves)} leaf records`,
  ]);
  rows.push(['', 'lookup/s, hit', fmt(PROBES / tHit), `${((1e9 * tHit) / PROBES).toFixed(1)} ns`]);
  rows.push([
    '',
    'lookup/s, uniform 2000::/4',
    fmt(PROBES / tUni),
    `${((1e9 * tUni) / PROBES).toFixed(1)} ns; ${(hitRate / 1000).toFixed(0)} % routed`,
  ]);
  rows.push(['', 'insert/s', fmt(N6 / tIns), `full build ${(tIns * 1000).toFixed(0)} ms`]);
  rows.push(['', 'delete/s', fmt(N6 / median(dels)), `full teardown ${(median(dels) * 1000).toFixed(0)} ms`]);
  rows.push([
    '',
    'memoryBytes',
    `${mib(f.memoryBytes())} MiB`,
    `${(f.memoryBytes() / N6).toFixed(1)} B/prefix`,
  ]);
  rows.push(['', 'RSS delta', `${mib(after - before)} MiB`, '']);
  sink ^= f.lookup(hit, 0);
}

{
  const a = small4(1);
  const b = small6(1);
  if (a.size !== 10 || b.size !== 10) throw new Error('small tables must hold 10 routes');
  const empty4 = new Lpm4().memoryBytes();
  const empty6 = new Lpm6().memoryBytes();
  rows.push(['small', 'empty Lpm4 / Lpm6 memoryBytes', `${fmt(empty4)} B / ${fmt(empty6)} B`, '']);
  rows.push([
    '',
    '10-route Lpm4 / Lpm6 memoryBytes',
    `${fmt(a.memoryBytes())} B / ${fmt(b.memoryBytes())} B`,
    `${a.stats().nodes} / ${b.stats().nodes} nodes`,
  ]);
  const keep: (Lpm4 | Lpm6)[] = [];
  const before = rss();
  let bytes = 0;
  for (let i = 0; i < 1000; i++) {
    const x = small4(i + 2);
    const y = small6(i + 2);
    bytes += x.memoryBytes() + y.memoryBytes();
    keep.push(x, y);
  }
  const after = rss();
  rows.push([
    '',
    '1,000 contexts x (10 v4 + 10 v6 routes)',
    `${mib(bytes)} MiB memoryBytes`,
    `RSS delta ${mib(after - before)} MiB (${fmt((after - before) / 1000)} B/context)`,
  ]);
  sink ^= keep.length;
}

console.log(`node ${process.version}, ${RUNS} runs per figure (median), ${fmt(PROBES)} lookups per run\n`);
console.log('| table | measure | result | note |');
console.log('|---|---|---|---|');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
if (sink === 0x12345678) console.log('');
