// Longest-prefix-match FIB (src/dataplane/fib): fixed edge cases for IPv4 and IPv6, then
// differential property tests against the linear scan in lpm-naive.ts (random insert/delete
// sequences over nested, overlapping prefixes; lookups at prefix edges and at random), then
// seeded bulk runs that push the trie through its root widenings (8 -> 16 -> 24 bits) and back.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Lpm4 } from '../../src/dataplane/fib/lpm4.ts';
import { Lpm6 } from '../../src/dataplane/fib/lpm6.ts';
import { FibUsageError } from '../../src/dataplane/fib/stride-trie.ts';
import { NaiveLpm4, NaiveLpm6 } from './lpm-naive.ts';

const SEED = 20261126;

function ip4(s: string): number {
  const p = s.split('.').map(Number);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

/** '2001:db8::1' -> 16 bytes (test helper: full or '::'-compressed forms). */
function ip6(s: string): Uint8Array {
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head === '' || head === undefined ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 255;
  });
  return out;
}

/** A packet-like buffer with the address at offset 38 (Ethernet + IPv6 destination). */
function inPacket(addr: Uint8Array): Uint8Array {
  const buf = new Uint8Array(64).fill(0xa5);
  buf.set(addr, 38);
  return buf;
}

/** Small seeded PRNG (xorshift32) for the bulk runs. */
function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

describe('Lpm4 fixed cases', () => {
  it('is empty at first: every lookup misses', () => {
    const t = new Lpm4();
    expect(t.size).toBe(0);
    expect(t.lookup(0)).toBe(0);
    expect(t.lookup(0xffffffff)).toBe(0);
    expect(t.get(0, 0)).toBe(0);
    expect([...t.entries()]).toEqual([]);
  });

  it('a /0 matches everything, including 0.0.0.0 and 255.255.255.255', () => {
    const t = new Lpm4();
    t.set(ip4('10.1.2.3'), 0, 7); // host bits ignored: this is 0.0.0.0/0
    expect(t.get(0, 0)).toBe(7);
    for (const a of [0, 1, ip4('10.0.0.1'), ip4('128.0.0.0'), 0xffffffff]) expect(t.lookup(a)).toBe(7);
    expect([...t.entries()]).toEqual([[0, 0, 7]]);
  });

  it('a /32 matches only its address', () => {
    const t = new Lpm4();
    t.set(0xffffffff, 32, 9);
    t.set(0, 32, 3);
    expect(t.lookup(0xffffffff)).toBe(9);
    expect(t.lookup(0xfffffffe)).toBe(0);
    expect(t.lookup(0)).toBe(3);
    expect(t.lookup(1)).toBe(0);
  });

  it('nested prefixes: the longest wins, and a delete restores the covering route', () => {
    const t = new Lpm4();
    t.set(ip4('0.0.0.0'), 0, 1);
    t.set(ip4('10.0.0.0'), 8, 2);
    t.set(ip4('10.1.0.0'), 16, 3);
    t.set(ip4('10.1.2.0'), 23, 4);
    t.set(ip4('10.1.2.0'), 24, 5);
    t.set(ip4('10.1.2.128'), 25, 6);
    t.set(ip4('10.1.2.3'), 32, 7);
    const at = (s: string): number => t.lookup(ip4(s));
    expect([at('11.0.0.0'), at('10.2.0.0'), at('10.1.4.0'), at('10.1.3.9')]).toEqual([1, 2, 3, 4]);
    expect([at('10.1.2.0'), at('10.1.2.200'), at('10.1.2.3'), at('10.1.2.4')]).toEqual([5, 6, 7, 5]);
    expect(t.delete(ip4('10.1.2.0'), 24)).toBe(true);
    expect([at('10.1.2.0'), at('10.1.2.3'), at('10.1.2.200')]).toEqual([4, 7, 6]);
    expect(t.delete(ip4('10.1.2.0'), 23)).toBe(true);
    expect([at('10.1.2.0'), at('10.1.3.0'), at('10.1.2.3')]).toEqual([3, 3, 7]);
    expect(t.delete(ip4('10.1.0.0'), 16)).toBe(true);
    expect([at('10.1.2.0'), at('10.1.2.129')]).toEqual([2, 6]);
    expect(t.delete(ip4('10.0.0.0'), 8)).toBe(true);
    expect([at('10.1.2.0'), at('10.1.2.3')]).toEqual([1, 7]);
    expect(t.delete(0, 0)).toBe(true);
    expect([at('10.1.2.0'), at('10.1.2.3'), at('10.1.2.255')]).toEqual([0, 7, 6]);
    expect(t.size).toBe(2);
  });

  it('a shorter prefix added later does not hide longer ones', () => {
    const t = new Lpm4();
    t.set(ip4('192.168.1.0'), 24, 5);
    t.set(ip4('192.168.1.7'), 32, 6);
    t.set(ip4('192.168.0.0'), 16, 4);
    t.set(ip4('192.0.0.0'), 8, 3);
    expect(t.lookup(ip4('192.168.1.7'))).toBe(6);
    expect(t.lookup(ip4('192.168.1.8'))).toBe(5);
    expect(t.lookup(ip4('192.168.2.8'))).toBe(4);
    expect(t.lookup(ip4('192.1.2.8'))).toBe(3);
  });

  it('replaces a value in place (size unchanged) and ignores host bits', () => {
    const t = new Lpm4();
    t.set(ip4('172.16.0.0'), 12, 1);
    t.set(ip4('172.31.255.255'), 12, 2);
    expect(t.size).toBe(1);
    expect(t.get(ip4('172.16.0.0'), 12)).toBe(2);
    expect(t.get(ip4('172.20.1.1'), 12)).toBe(2);
    expect(t.lookup(ip4('172.20.1.1'))).toBe(2);
    expect(t.get(ip4('172.16.0.0'), 13)).toBe(0);
    expect(t.delete(ip4('172.17.0.0'), 12)).toBe(true); // same prefix once masked
    expect(t.delete(ip4('172.16.0.0'), 12)).toBe(false);
    expect(t.size).toBe(0);
  });

  it('accepts signed 32-bit addresses like unsigned ones', () => {
    const t = new Lpm4();
    t.set(ip4('200.0.0.0') | 0, 8, 4);
    expect(t.lookup(ip4('200.1.2.3'))).toBe(4);
    expect(t.lookup(ip4('200.1.2.3') | 0)).toBe(4);
    expect([...t.entries()]).toEqual([[ip4('200.0.0.0'), 8, 4]]);
  });

  it('deleting an absent prefix changes nothing', () => {
    const t = new Lpm4();
    t.set(ip4('10.0.0.0'), 8, 2);
    expect(t.delete(ip4('10.0.0.0'), 9)).toBe(false);
    expect(t.delete(ip4('10.1.0.0'), 16)).toBe(false);
    expect(t.lookup(ip4('10.1.0.0'))).toBe(2);
    expect(t.size).toBe(1);
  });

  it('keeps a lone prefix as a leaf record, frees nodes when prefixes go, and reuses them', () => {
    const t = new Lpm4();
    t.set(ip4('10.1.2.3'), 32, 1);
    expect(t.stats()).toMatchObject({ nodes: 0, leaves: 1 });
    t.set(ip4('10.1.2.4'), 32, 2); // two /32s in one /24: nodes for bits 8-16, 16-24, 24-32
    expect(t.stats()).toMatchObject({ nodes: 3, leaves: 0 });
    const bytes = t.memoryBytes();
    expect([t.lookup(ip4('10.1.2.3')), t.lookup(ip4('10.1.2.4')), t.lookup(ip4('10.1.2.5'))]).toEqual([
      1, 2, 0,
    ]);
    t.delete(ip4('10.1.2.3'), 32);
    expect(t.stats()).toMatchObject({ nodes: 0, leaves: 1 });
    expect([t.lookup(ip4('10.1.2.3')), t.lookup(ip4('10.1.2.4'))]).toEqual([0, 2]);
    t.set(ip4('10.0.0.0'), 8, 7); // lands in the root, becomes the record's cover
    expect([t.lookup(ip4('10.1.2.3')), t.lookup(ip4('10.1.2.4'))]).toEqual([7, 2]);
    t.delete(ip4('10.1.2.4'), 32);
    expect(t.stats()).toMatchObject({ nodes: 0, leaves: 0 });
    expect(t.lookup(ip4('10.1.2.4'))).toBe(7);
    t.set(ip4('11.1.2.3'), 32, 1);
    t.set(ip4('11.1.2.4'), 32, 1);
    expect(t.memoryBytes()).toBe(bytes);
  });

  it('rejects bad lengths and values with FibUsageError', () => {
    const t = new Lpm4();
    expect(() => t.set(0, 33, 1)).toThrow(FibUsageError);
    expect(() => t.set(0, -1, 1)).toThrow(FibUsageError);
    expect(() => t.set(0, 8, 0)).toThrow(FibUsageError);
    expect(() => t.set(0, 8, 0x80000000)).toThrow(FibUsageError);
    expect(() => t.set(0, 8, 1.5)).toThrow(FibUsageError);
    expect(() => t.get(0, 40)).toThrow(FibUsageError);
    expect(t.size).toBe(0);
  });

  it('keeps a small table small', () => {
    const t = new Lpm4();
    const empty = t.memoryBytes();
    expect(empty).toBeLessThan(4096);
    t.set(0, 0, 1);
    t.set(ip4('10.0.0.0'), 8, 2);
    for (let i = 0; i < 6; i++) t.set(ip4(`10.0.${i}.0`), 24, 3 + i);
    t.set(ip4('192.168.1.0'), 24, 10);
    t.set(ip4('192.168.1.1'), 32, 11);
    expect(t.size).toBe(10);
    expect(t.stats().rootBits).toBe(8);
    expect(t.memoryBytes()).toBeLessThan(16 * 1024);
    t.clear();
    expect(t.size).toBe(0);
    expect(t.lookup(ip4('10.0.1.1'))).toBe(0);
    expect(t.memoryBytes()).toBe(empty);
  });
});

describe('Lpm6 fixed cases', () => {
  const at = (t: Lpm6, s: string): number => t.lookup(inPacket(ip6(s)), 38);

  it('/0, /128 and the all-zero and all-ones addresses', () => {
    const t = new Lpm6();
    const ones = new Uint8Array(16).fill(255);
    expect(t.lookup(inPacket(ones), 38)).toBe(0);
    t.set(ones, 128, 5);
    t.set(new Uint8Array(16), 128, 6);
    expect(t.lookup(inPacket(ones), 38)).toBe(5);
    expect(at(t, '::')).toBe(6);
    expect(at(t, '::1')).toBe(0);
    t.set(ip6('2001:db8::1'), 0, 1); // host bits ignored: ::/0
    expect(t.get(new Uint8Array(16), 0)).toBe(1);
    expect(at(t, '::1')).toBe(1);
    expect(at(t, 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe')).toBe(1);
    expect(t.lookup(inPacket(ones), 38)).toBe(5);
  });

  it('nested prefixes and deletes that restore the covering route', () => {
    const t = new Lpm6();
    t.set(ip6('2001:db8::'), 32, 2);
    t.set(ip6('2001:db8:1::'), 48, 3);
    t.set(ip6('2001:db8:1:2::'), 63, 4);
    t.set(ip6('2001:db8:1:2::'), 64, 5);
    t.set(ip6('2001:db8:1:2::42'), 128, 6);
    expect(at(t, '2001:db8:ffff::1')).toBe(2);
    expect(at(t, '2001:db8:1:3::1')).toBe(4);
    expect(at(t, '2001:db8:1:2::1')).toBe(5);
    expect(at(t, '2001:db8:1:2::42')).toBe(6);
    expect(at(t, '2001:db9::')).toBe(0);
    expect(t.delete(ip6('2001:db8:1:2::'), 64)).toBe(true);
    expect(at(t, '2001:db8:1:2::1')).toBe(4);
    expect(t.delete(ip6('2001:db8:1:2::'), 63)).toBe(true);
    expect(at(t, '2001:db8:1:2::1')).toBe(3);
    expect(t.delete(ip6('2001:db8:1::'), 48)).toBe(true);
    expect(at(t, '2001:db8:1:2::1')).toBe(2);
    expect(at(t, '2001:db8:1:2::42')).toBe(6);
    expect(t.delete(ip6('2001:db8:1::'), 48)).toBe(false);
    expect(t.size).toBe(2);
  });

  it('replace, host bits, entries, exact get', () => {
    const t = new Lpm6();
    t.set(ip6('2001:db8:0fff:bbbb::1'), 36, 7);
    t.set(ip6('2001:db8::'), 36, 8);
    expect(t.size).toBe(1);
    expect(t.get(ip6('2001:db8:0fff::'), 36)).toBe(8);
    expect(t.get(ip6('2001:db8::'), 35)).toBe(0);
    const e = [...t.entries()];
    expect(e).toHaveLength(1);
    expect(e[0]![0]).toEqual(ip6('2001:db8::'));
    expect(e[0]!.slice(1)).toEqual([36, 8]);
  });

  it('keeps a lone long prefix as a leaf record, expands it and folds it back', () => {
    const t = new Lpm6();
    t.set(ip6('2001:db8:1::'), 48, 3);
    expect(t.stats()).toMatchObject({ nodes: 0, leaves: 1 });
    expect(at(t, '2001:db8:1::5')).toBe(3);
    expect(at(t, '2001:db8:2::5')).toBe(0);
    t.set(ip6('2001::'), 16, 1); // pushed into the record's cover
    expect(at(t, '2001:db8:2::5')).toBe(1);
    expect(at(t, '2001:db8:1::5')).toBe(3);
    t.set(ip6('2001:db8:1::'), 48, 4); // value replaced inside the record
    expect(at(t, '2001:db8:1::5')).toBe(4);
    t.set(ip6('2001:db8:1:7700::'), 56, 5); // second prefix: the record becomes nodes
    expect(t.stats().nodes).toBeGreaterThan(0);
    expect(at(t, '2001:db8:1:7700::1')).toBe(5);
    expect(at(t, '2001:db8:1:7800::1')).toBe(4);
    expect(at(t, '2001:db8:2::5')).toBe(1);
    t.delete(ip6('2001:db8:1::'), 48); // the /56 alone below the /16's node: one record
    expect(t.stats()).toMatchObject({ nodes: 1, leaves: 1 });
    expect(at(t, '2001:db8:1:7700::1')).toBe(5);
    expect(at(t, '2001:db8:1:7800::1')).toBe(1);
    t.delete(ip6('2001::'), 16); // cover restored to nothing, the node folded away
    expect(t.stats()).toMatchObject({ nodes: 0, leaves: 1 });
    expect(at(t, '2001:db8:1:7800::1')).toBe(0);
    expect(at(t, '2001:db8:1:7700::1')).toBe(5);
    t.delete(ip6('2001:db8:1:7700::'), 56);
    expect(t.stats()).toMatchObject({ nodes: 0, leaves: 0 });
  });

  it('rejects bad lengths, values and address sizes', () => {
    const t = new Lpm6();
    expect(() => t.set(new Uint8Array(16), 129, 1)).toThrow(FibUsageError);
    expect(() => t.set(new Uint8Array(16), 64, 0)).toThrow(FibUsageError);
    expect(() => t.set(new Uint8Array(4), 0, 1)).toThrow(FibUsageError);
    expect(() => new Lpm6({ minRootBits: 24 })).toThrow(FibUsageError);
    expect(() => new Lpm4({ minRootBits: 16, maxRootBits: 8 })).toThrow(FibUsageError);
    expect(new Lpm4({ minRootBits: 24 }).stats().rootBits).toBe(24);
  });

  it('keeps a small table small', () => {
    const t = new Lpm6();
    t.set(new Uint8Array(16), 0, 1);
    for (let i = 0; i < 7; i++) t.set(ip6(`2001:db8:${i}::`), 48, 2 + i);
    t.set(ip6('fd00::1'), 128, 9);
    t.set(ip6('fe80::'), 64, 10);
    expect(t.size).toBe(10);
    expect(t.memoryBytes()).toBeLessThan(64 * 1024);
  });
});

// ---- Differential property tests ----------------------------------------------------------

interface Op {
  readonly kind: 'set' | 'del' | 'del-known';
  readonly base: number;
  readonly flipBit: number | null;
  readonly len: number;
  readonly value: number;
  readonly pick: number;
}

function opArb(maxLen: number, lens: number[]): fc.Arbitrary<Op> {
  return fc.record({
    kind: fc.constantFrom<Op['kind']>('set', 'set', 'set', 'del', 'del-known', 'del-known'),
    base: fc.nat(5),
    flipBit: fc.option(fc.nat(maxLen - 1), { freq: 2 }),
    len: fc.oneof(fc.constantFrom(...lens), fc.integer({ min: 0, max: maxLen })),
    value: fc.oneof(fc.integer({ min: 1, max: 20 }), fc.constant(0x7fffffff)),
    pick: fc.nat(),
  });
}

const addr4Arb = fc.oneof(
  fc.constantFrom(0, 0xffffffff, 0x0a000000, 0x80000000),
  fc.integer({ min: 0, max: 0xffffffff }),
);
const addr6Arb = fc.oneof(
  fc.constantFrom(new Uint8Array(16), new Uint8Array(16).fill(255), ip6('2001:db8::')),
  fc.uint8Array({ minLength: 16, maxLength: 16 }),
);

function checkAll4(t: Lpm4, n: NaiveLpm4, extra: readonly number[]): void {
  const probes = [...extra];
  for (const e of n.list) {
    const last = (e.addr | (e.len === 32 ? 0 : -1 >>> e.len)) >>> 0;
    probes.push(e.addr, last, (e.addr - 1) >>> 0, (last + 1) >>> 0);
  }
  for (const a of probes) expect(t.lookup(a), `lookup ${a}`).toBe(n.lookup(a));
  expect(t.size).toBe(n.list.length);
  for (const e of n.list) expect(t.get(e.addr, e.len)).toBe(e.value);
  const got = [...t.entries()].map(([a, l, v]) => `${a}/${l}=${v}`).sort();
  expect(got).toEqual(n.list.map((e) => `${e.addr}/${e.len}=${e.value}`).sort());
}

describe.each([
  ['8-bit root', {}, 400],
  ['16-bit root', { minRootBits: 16 }, 100],
] as const)('Lpm4 against the linear scan, %s', (_name, options, numRuns) => {
  it(`agrees after random insert/delete sequences (seed ${SEED})`, () => {
    fc.assert(
      fc.property(
        fc.array(addr4Arb, { minLength: 6, maxLength: 6 }),
        fc.array(opArb(32, [0, 1, 7, 8, 9, 15, 16, 17, 23, 24, 25, 31, 32]), { minLength: 1, maxLength: 80 }),
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 20 }),
        (bases, ops, randomProbes) => {
          const t = new Lpm4(options);
          const n = new NaiveLpm4();
          const known: [number, number][] = [];
          for (const op of ops) {
            let addr = bases[op.base]!;
            if (op.flipBit !== null) addr = (addr ^ (1 << op.flipBit)) >>> 0;
            let len = op.len;
            if (op.kind === 'del-known' && known.length > 0) [addr, len] = known[op.pick % known.length]!;
            if (op.kind === 'set') {
              t.set(addr, len, op.value);
              n.set(addr, len, op.value);
              known.push([addr, len]);
            } else {
              expect(t.delete(addr, len)).toBe(n.delete(addr, len));
            }
            const first = NaiveLpm4.mask(addr, len);
            for (const a of [addr, first, (first - 1) >>> 0, ...bases]) expect(t.lookup(a)).toBe(n.lookup(a));
          }
          checkAll4(t, n, [...bases, ...randomProbes]);
          // Canonical shape: the same nodes as a table built from scratch with what is left.
          const fresh = new Lpm4(options);
          for (const [a, l, v] of t.entries()) fresh.set(a, l, v);
          expect({ ...t.stats(), nodeCapacity: 0 }).toEqual({ ...fresh.stats(), nodeCapacity: 0 });
          // Delete everything left: the trie must come back to empty with no live node.
          for (const e of [...n.list]) {
            expect(t.delete(e.addr, e.len)).toBe(true);
            n.delete(e.addr, e.len);
          }
          expect(t.size).toBe(0);
          expect(t.stats()).toMatchObject({ nodes: 0, leaves: 0 });
          for (const a of bases) expect(t.lookup(a)).toBe(0);
        },
      ),
      { seed: SEED, numRuns },
    );
  });
});

function checkAll6(t: Lpm6, n: NaiveLpm6, extra: readonly Uint8Array[]): void {
  const probes = [...extra];
  for (const e of n.list) {
    const last = e.addr.slice();
    for (let i = 0; i < 16; i++) last[i] = last[i]! | (0xff >> Math.max(0, Math.min(8, e.len - i * 8)));
    probes.push(e.addr, last);
  }
  for (const a of probes) expect(t.lookup(inPacket(a), 38)).toBe(n.lookup(a));
  expect(t.size).toBe(n.list.length);
  for (const e of n.list) expect(t.get(e.addr, e.len)).toBe(e.value);
  const hex = (a: Uint8Array): string => Buffer.from(a).toString('hex');
  const got = [...t.entries()].map(([a, l, v]) => `${hex(a)}/${l}=${v}`).sort();
  expect(got).toEqual(n.list.map((e) => `${hex(e.addr)}/${e.len}=${e.value}`).sort());
}

describe('Lpm6 against the linear scan', () => {
  it(`agrees after random insert/delete sequences (seed ${SEED})`, () => {
    fc.assert(
      fc.property(
        fc.array(addr6Arb, { minLength: 6, maxLength: 6 }),
        fc.array(opArb(128, [0, 1, 8, 15, 16, 17, 24, 32, 44, 47, 48, 49, 56, 63, 64, 65, 127, 128]), {
          minLength: 1,
          maxLength: 60,
        }),
        fc.array(fc.uint8Array({ minLength: 16, maxLength: 16 }), { maxLength: 10 }),
        (bases, ops, randomProbes) => {
          const t = new Lpm6();
          const n = new NaiveLpm6();
          const known: [Uint8Array, number][] = [];
          for (const op of ops) {
            let addr: Uint8Array = bases[op.base]!.slice();
            if (op.flipBit !== null)
              addr[op.flipBit >> 3] = addr[op.flipBit >> 3]! ^ (0x80 >> (op.flipBit & 7));
            let len = op.len;
            if (op.kind === 'del-known' && known.length > 0) [addr, len] = known[op.pick % known.length]!;
            if (op.kind === 'set') {
              t.set(addr, len, op.value);
              n.set(addr, len, op.value);
              known.push([addr, len]);
            } else {
              expect(t.delete(addr, len)).toBe(n.delete(addr, len));
            }
            for (const a of [addr, NaiveLpm6.mask(addr, len), ...bases])
              expect(t.lookup(inPacket(a), 38)).toBe(n.lookup(a));
          }
          checkAll6(t, n, [...bases, ...randomProbes]);
          // Canonical shape: as many nodes and leaf records as a table built from scratch.
          const fresh = new Lpm6();
          for (const [a, l, v] of t.entries()) fresh.set(a, l, v);
          expect({ ...t.stats(), nodeCapacity: 0 }).toEqual({ ...fresh.stats(), nodeCapacity: 0 });
          for (const e of [...n.list]) {
            expect(t.delete(e.addr, e.len)).toBe(true);
            n.delete(e.addr, e.len);
          }
          expect(t.size).toBe(0);
          expect(t.stats()).toMatchObject({ nodes: 0, leaves: 0 });
        },
      ),
      { seed: SEED, numRuns: 250 },
    );
  });
});

// ---- Bulk runs through the root widenings -----------------------------------------------------

describe('root widening', () => {
  it(`IPv4: 8 -> 16 -> 24-bit root keeps every answer, deletes back to empty (seed ${SEED})`, () => {
    const next = rng(SEED);
    const t = new Lpm4();
    const n = new NaiveLpm4();
    const added: [number, number][] = [];
    const add = (addr: number, len: number): void => {
      const v = 1 + (next() % 1000);
      t.set(addr, len, v);
      n.set(addr, len, v);
      added.push([NaiveLpm4.mask(addr, len), len]);
    };
    // A few short covering routes, then in each of 34,000 distinct /16s two /32s sharing a
    // /24 (two nodes: bits 16-24 and 24-32), and in every third one a /17-/24 as well. That is
    // enough nodes to widen the root twice.
    add(0, 0);
    for (let i = 0; i < 40; i++) add(next(), 4 + (next() % 12));
    const rootBits: number[] = [t.stats().rootBits];
    for (let i = 0; i < 34_000; i++) {
      const hi = (i * 0x9e37) & 0xffff;
      const x = ((hi << 16) | (next() & 0xff00)) >>> 0;
      const a = next() & 0x7f;
      add(x | a, 32);
      add(x | (a + 1 + (next() % 100)), 32);
      if (i % 3 === 0) add(((hi << 16) | (next() & 0xffff)) >>> 0, 17 + (next() % 8));
      const rb = t.stats().rootBits;
      if (rb !== rootBits[rootBits.length - 1]) rootBits.push(rb);
    }
    expect(rootBits).toEqual([8, 16, 24]);
    // Naive lookups are O(n): sample.
    const check = (count: number): void => {
      for (let k = 0; k < count; k++) {
        const [a, l] = added[next() % added.length]!;
        const probe = (a | (l === 32 ? 0 : next() & (-1 >>> l))) >>> 0;
        expect(t.lookup(probe)).toBe(n.lookup(probe));
        const r = next();
        expect(t.lookup(r)).toBe(n.lookup(r));
      }
    };
    check(60);
    expect(t.size).toBe(n.list.length);
    // Delete in a shuffled order, checking as we go; the short covers last-ish at random.
    for (let i = added.length - 1; i > 0; i--) {
      const j = next() % (i + 1);
      [added[i], added[j]] = [added[j]!, added[i]!];
    }
    const order = [...added];
    for (let i = 0; i < order.length; i++) {
      const [a, l] = order[i]!;
      expect(t.delete(a, l)).toBe(n.delete(a, l));
      if (i % 25_000 === 0) check(10);
    }
    expect(t.size).toBe(0);
    expect(t.stats()).toMatchObject({ nodes: 0, leaves: 0 });
    expect(t.lookup(next())).toBe(0);
  });

  it(`IPv6: 8 -> 16-bit root keeps every answer (seed ${SEED})`, () => {
    const next = rng(SEED + 1);
    const t = new Lpm6();
    const n = new NaiveLpm6();
    const added: [Uint8Array, number][] = [];
    const rootBits: number[] = [t.stats().rootBits];
    for (let i = 0; i < 3000; i++) {
      const a = new Uint8Array(16);
      for (let b = 0; b < 16; b++) a[b] = next() & 255;
      a[0] = 0x20 + (i % 16);
      a[1] = (i * 7) & 255;
      const len = [16, 24, 32, 40, 48, 56, 64, 128][next() % 8]! - (next() % 3);
      const v = 1 + (next() % 1000);
      t.set(a, len, v);
      n.set(a, len, v);
      added.push([NaiveLpm6.mask(a, len), len]);
      const rb = t.stats().rootBits;
      if (rb !== rootBits[rootBits.length - 1]) rootBits.push(rb);
    }
    expect(rootBits).toEqual([8, 16]);
    for (let k = 0; k < 300; k++) {
      const [a] = added[next() % added.length]!;
      const probe = a.slice();
      probe[15] = next() & 255;
      expect(t.lookup(inPacket(probe), 38)).toBe(n.lookup(probe));
    }
    for (const [a, l] of added.slice(0, 1500)) expect(t.delete(a, l)).toBe(n.delete(a, l));
    for (let k = 0; k < 300; k++) {
      const [a] = added[next() % added.length]!;
      expect(t.lookup(inPacket(a), 38)).toBe(n.lookup(a));
    }
    expect(t.size).toBe(n.list.length);
  });
});
