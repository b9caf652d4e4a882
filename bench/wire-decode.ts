/**
 * Micro-benchmark of the UPDATE receive path: 100,000 synthetic IPv4 unicast UPDATEs with 10
 * prefixes each (1M prefixes), every UPDATE with its own attribute set (the worst case for
 * attribute decoding: no interning hits). Times, best of several warm runs:
 *   split      framing walk + splitUpdate
 *   nlri       forEachIPv4Prefix over every NLRI field (no allocation per prefix)
 *   attrs      decodeAttributes once per UPDATE (RFC 7606 checks included)
 *   receive    all three together, as the session core would run them
 *   pack       packUpdates building the 100k messages from prepared inputs (the send side)
 * Run: npx tsx bench/wire-decode.ts
 */
import { HEADER_LENGTH } from '../src/bgp/wire/constants.ts';
import { DEFAULT_CODEC_CONTEXT, type Nlri, type PathAttributes } from '../src/bgp/wire/types.ts';
import { decodeAttributes } from '../src/bgp/wire/attributes.ts';
import { forEachIPv4Prefix } from '../src/bgp/wire/nlri.ts';
import { packUpdates, splitUpdate } from '../src/bgp/wire/update.ts';

const UPDATES = 100_000;
const PER_UPDATE = 10;
const RUNS = 7;
const ctx = DEFAULT_CODEC_CONTEXT;
const nextHop = Uint8Array.of(192, 0, 2, 1);

function attrsFor(i: number): PathAttributes {
  return {
    origin: 0,
    asPath: [{ type: 2, asns: [65001, 64512 + (i % 1000), 4200000000 + (i % 7), 3356 + (i % 13)] }],
    med: i % 500,
    communities: [(65001 << 16) | (i & 0xffff), 0xffffff01],
    largeCommunities: i % 4 === 0 ? [{ global: 65001, local1: i, local2: 1 }] : undefined,
  };
}

interface Input {
  readonly attrs: PathAttributes;
  readonly items: Nlri[];
}

function inputs(): Input[] {
  const out: Input[] = [];
  for (let i = 0; i < UPDATES; i++) {
    const items: Nlri[] = [];
    for (let k = 0; k < PER_UPDATE; k++) {
      const n = i * PER_UPDATE + k;
      items.push({
        prefix: { afi: 1, addr: Uint8Array.of(10 + (n >>> 16), (n >>> 8) & 0xff, n & 0xff, 0), len: 24 },
      });
    }
    out.push({ attrs: attrsFor(i), items });
  }
  return out;
}

function pack(input: readonly Input[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const { attrs, items } of input) {
    for (const m of packUpdates({
      family: 'ipv4-unicast',
      attributes: attrs,
      nextHop,
      items,
      ctx,
      maxLength: 4096,
    })) {
      out.push(m);
    }
  }
  return out;
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const c of chunks) total += c.length;
  const stream = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    stream.set(c, off);
    off += c.length;
  }
  return stream;
}

let sink = 0;

function walk(stream: Uint8Array, nlri: boolean, attrs: boolean): void {
  const cb = (addr: number, len: number): void => {
    sink = (sink + addr + len) | 0;
  };
  for (let off = 0; off < stream.length;) {
    const len = (stream[off + 16]! << 8) | stream[off + 17]!;
    const u = splitUpdate(stream.subarray(off + HEADER_LENGTH, off + len));
    if (nlri) forEachIPv4Prefix(u.nlri, false, cb);
    if (attrs) sink = (sink + (decodeAttributes(u.attributes, ctx, u.nlri.length > 0).attrs.med ?? 0)) | 0;
    off += len;
  }
}

function time(name: string, f: () => void, perOps: number, perWhat: string): void {
  const ms: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = performance.now();
    f();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  const best = ms[0]!;
  const median = ms[Math.floor(ms.length / 2)]!;
  const ns = ((best * 1e6) / perOps).toFixed(0);
  console.log(
    `${name.padEnd(8)} best ${best.toFixed(1).padStart(6)} ms  median ${median.toFixed(1).padStart(6)} ms  ${ns.padStart(5)} ns/${perWhat}`,
  );
}

const input = inputs();
const stream = concat(pack(input));
console.log(
  `${UPDATES} UPDATEs x ${PER_UPDATE} prefixes, ${(stream.length / 1048576).toFixed(1)} MiB, Node ${process.version}`,
);
time('pack', () => void pack(input), UPDATES, 'update (encodeAttributes + 10 NLRI + framing)');
time('split', () => walk(stream, false, false), UPDATES, 'update');
time('nlri', () => walk(stream, true, false), UPDATES * PER_UPDATE, 'prefix (incl. split)');
time('attrs', () => walk(stream, false, true), UPDATES, 'update (incl. split)');
time('receive', () => walk(stream, true, true), UPDATES * PER_UPDATE, 'prefix');
if (sink === 42) console.log('');
