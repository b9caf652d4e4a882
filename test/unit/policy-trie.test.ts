// Prefix-set trie (src/bgp/policy/prefix-trie.ts): fixed cases, then a differential test against a
// naive linear scan over random entries and queries, IPv4 and IPv6, through the trie and through
// a compiled policy book.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { makePrefix, parsePrefix, prefixContains, type Prefix } from '../../src/lib/ip.ts';
import { compilePolicies } from '../../src/bgp/policy/index.ts';
import { DualPrefixTrie, PrefixTrie } from '../../src/bgp/policy/prefix-trie.ts';
import type { PolicyRoute } from '../../src/bgp/policy/types.ts';

const SEED = 20240611;

interface Entry {
  readonly prefix: Prefix;
  readonly lo: number;
  readonly hi: number;
}

function naive(entries: readonly Entry[], q: Prefix): boolean {
  return entries.some((e) => q.len >= e.lo && q.len <= e.hi && prefixContains(e.prefix, q));
}

/** The first `n` bits of `a`, the rest from `b`. */
function mixBits(a: Uint8Array, b: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const bitsFromA = Math.max(0, Math.min(8, n - i * 8));
    const m = bitsFromA === 0 ? 0 : (0xff << (8 - bitsFromA)) & 0xff;
    out[i] = (a[i]! & m) | (b[i]! & ~m & 0xff);
  }
  return out;
}

describe('PrefixTrie fixed cases', () => {
  const t = new DualPrefixTrie();
  t.add(parsePrefix('10.0.0.0/8'), 16, 24);
  t.add(parsePrefix('192.0.2.0/24'), 24, 24);
  t.add(parsePrefix('0.0.0.0/0'), 0, 0);
  t.add(parsePrefix('2001:db8::/32'), 48, 64);

  it.each([
    ['10.1.0.0/16', true],
    ['10.1.2.0/24', true],
    ['10.0.0.0/8', false], // shorter than 16
    ['10.1.2.0/25', false], // longer than 24
    ['11.0.0.0/16', false],
    ['192.0.2.0/24', true],
    ['192.0.2.0/25', false],
    ['0.0.0.0/0', true],
    ['2001:db8:1::/48', true],
    ['2001:db8:1:2::/64', true],
    ['2001:db8::/32', false],
    ['2001:db9::/48', false],
    ['::/0', false], // the IPv4 default does not leak into IPv6
  ])('%s -> %s', (p, want) => {
    expect(t.matches(parsePrefix(p))).toBe(want);
  });

  it('matches host addresses as full-length prefixes', () => {
    const n = new DualPrefixTrie();
    n.add(parsePrefix('192.0.2.1/32'), 32, 32);
    n.add(parsePrefix('2001:db8::/64'), 128, 128);
    expect(n.matchesAddress(Uint8Array.of(192, 0, 2, 1))).toBe(true);
    expect(n.matchesAddress(Uint8Array.of(192, 0, 2, 2))).toBe(false);
    expect(n.matchesAddress(parsePrefix('2001:db8::5/128').addr)).toBe(true);
    expect(n.matchesAddress(new Uint8Array(5))).toBe(false);
  });

  it('counts entries', () => {
    const v4 = new PrefixTrie(32);
    v4.add(Uint8Array.of(10, 0, 0, 0), 8, 8, 32);
    expect(v4.size).toBe(1);
    expect(v4.matches(Uint8Array.of(10, 9, 9, 9), 32)).toBe(true);
  });
});

function familyArbs(bytes: 4 | 16) {
  const bits = bytes * 8;
  // A small pool of leading bytes so that entries and queries overlap often.
  const addr = fc
    .tuple(fc.constantFrom(10, 172, 192), fc.uint8Array({ minLength: bytes - 1, maxLength: bytes - 1 }))
    .map(([first, rest]) => {
      const a = new Uint8Array(bytes);
      a[0] = first;
      a.set(rest, 1);
      // Keep the second byte in a tiny range too: more shared paths below /16.
      a[1] = a[1]! & 3;
      return a;
    });
  const entry = fc
    .tuple(addr, fc.nat(bits), fc.nat(bits), fc.nat(bits))
    .map(([a, plen, loOff, span]): Entry => {
      const prefix = makePrefix(a, plen);
      const lo = plen + (loOff % (bits - plen + 1));
      const hi = lo + (span % (bits - lo + 1));
      return { prefix, lo, hi };
    });
  const query = fc.tuple(fc.nat(), addr, fc.nat(bits), fc.boolean());
  return { entry, query, bits };
}

describe.each([4, 16] as const)('PrefixTrie vs linear scan, %i-byte addresses', (bytes) => {
  const { entry, query, bits } = familyArbs(bytes);

  it(`agrees on random entries and queries (seed ${SEED})`, () => {
    fc.assert(
      fc.property(
        fc.array(entry, { maxLength: 40 }),
        fc.array(query, { maxLength: 60 }),
        (entries, queries) => {
          const trie = new PrefixTrie(bits as 32 | 128);
          for (const e of entries) trie.add(e.prefix.addr, e.prefix.len, e.lo, e.hi);
          for (const [pick, random, len, derive] of queries) {
            // Half the queries are derived from an entry (same leading bits) to hit the ranges.
            const base = entries.length > 0 && derive ? entries[pick % entries.length]! : undefined;
            const a = base === undefined ? random : mixBits(base.prefix.addr, random, base.prefix.len);
            const qlen = base === undefined ? len : base.lo + (len % (bits - base.lo + 1));
            const q = makePrefix(a, qlen);
            expect(trie.matches(q.addr, q.len), `query ${q.len}`).toBe(naive(entries, q));
          }
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });
});

describe('prefix-set through a compiled book', () => {
  it(`agrees with the linear scan for mixed IPv4/IPv6 sets (seed ${SEED})`, () => {
    const v4 = familyArbs(4);
    const v6 = familyArbs(16);
    const entries = fc.array(fc.oneof(v4.entry, v6.entry), { minLength: 1, maxLength: 30 });
    fc.assert(
      fc.property(entries, fc.array(fc.oneof(v4.query, v6.query), { maxLength: 30 }), (es, qs) => {
        const text = (p: Prefix): string =>
          p.addr.length === 4
            ? `${[...p.addr].join('.')}/${p.len}`
            : `${[...p.addr]
                .map((b) => b.toString(16).padStart(2, '0'))
                .join('')
                .replace(/(.{4})(?!$)/g, '$1:')}/${p.len}`;
        const book = compilePolicies({
          'defined-sets': {
            'prefix-sets': [
              {
                name: 'p',
                // Alternate the object form and the ge/le shorthand.
                prefixes: es.map((e, i) =>
                  i % 2 === 0
                    ? { prefix: text(e.prefix), 'masklength-range': `${e.lo}..${e.hi}` }
                    : `${text(e.prefix)} ge ${e.lo} le ${e.hi}`,
                ),
              },
            ],
          },
          'policy-definitions': [
            {
              name: 'only-p',
              statements: [
                {
                  conditions: { 'match-prefix-set': { 'prefix-set': 'p' } },
                  actions: { 'policy-result': 'accept-route' },
                },
              ],
            },
          ],
        });
        for (const [pick, random, len] of qs) {
          const base = es[pick % es.length]!;
          const bits = random.length * 8;
          const a =
            base.prefix.addr.length === random.length
              ? mixBits(base.prefix.addr, random, base.prefix.len)
              : random;
          const q = makePrefix(a, len % (bits + 1));
          const route: PolicyRoute = {
            prefix: q,
            family: bits === 32 ? 'ipv4-unicast' : 'ipv6-unicast',
            attrs: {},
          };
          expect(book.evaluate(['only-p'], route, false).accept).toBe(naive(es, q));
        }
      }),
      { seed: SEED, numRuns: 150 },
    );
  });
});
