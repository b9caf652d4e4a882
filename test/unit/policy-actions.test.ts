// Policy actions (src/bgp/policy/actions.ts): every bgp-action, the identity rule (no change ->
// the same attrs object) and immutability of the input (deep-frozen, and snapshot-compared because
// typed arrays cannot be frozen).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAddress } from '../../src/lib/ip.ts';
import { compilePolicies } from '../../src/bgp/policy/index.ts';
import type { AsPathSegment, PathAttributes } from '../../src/bgp/wire/types.ts';
import { apply, BASE_ATTRS, comm, deepFreeze, route, SETS } from './policy-helpers.ts';

const SEED = 4271;

const withAttrs = (over: Partial<PathAttributes>) => route({ attrs: { ...BASE_ATTRS, ...over } });

describe('scalar actions', () => {
  it('set-local-pref; the same value keeps the input object', () => {
    expect(apply({ 'set-local-pref': 200 }).attrs.localPref).toBe(200);
    const r = route();
    expect(apply({ 'set-local-pref': 100 }, r).attrs).toBe(r.attrs);
  });
  it.each<[number | string, number | undefined, number]>([
    [50, 10, 50],
    ['50', 10, 50],
    ['+10', 10, 20],
    ['-3', 10, 7],
    ['-30', 10, 0], // clamped at 0
    ['+1', 0xffffffff, 0xffffffff], // clamped at 2^32-1
    ['+10', undefined, 10], // a missing MED counts as 0
  ])('set-med %s on %s -> %s', (action, med, want) => {
    expect(apply({ 'set-med': action }, withAttrs({ med })).attrs.med).toBe(want);
  });
  it('set-med +0 and an equal value keep the input object', () => {
    const r = route();
    expect(apply({ 'set-med': '+0' }, r).attrs).toBe(r.attrs);
    expect(apply({ 'set-med': 10 }, r).attrs).toBe(r.attrs);
  });
  it('set-route-origin', () => {
    expect(apply({ 'set-route-origin': 'incomplete' }).attrs.origin).toBe(2);
    const r = route();
    expect(apply({ 'set-route-origin': 'igp' }, r).attrs).toBe(r.attrs);
  });
});

describe('set-next-hop', () => {
  it('self sets nextHopSelf and leaves the attrs alone', () => {
    const r = route();
    const res = apply({ 'set-next-hop': 'self' }, r);
    expect(res.nextHopSelf).toBe(true);
    expect(res.nextHop).toBeUndefined();
    expect(res.attrs).toBe(r.attrs);
  });
  it('an IPv4 address on ipv4-unicast is written to NEXT_HOP and reported', () => {
    const res = apply({ 'set-next-hop': '198.51.100.1' });
    expect(res.attrs.nextHop).toEqual(Uint8Array.of(198, 51, 100, 1));
    expect(res.nextHop).toEqual(Uint8Array.of(198, 51, 100, 1));
    expect(res.nextHopSelf).toBeUndefined();
  });
  it('the same address keeps the input object', () => {
    const r = route();
    expect(apply({ 'set-next-hop': '192.0.2.1' }, r).attrs).toBe(r.attrs);
  });
  it('other families: reported for MP_REACH_NLRI only', () => {
    const r = route({ family: 'ipv6-unicast' });
    const res = apply({ 'set-next-hop': '2001:db8::99' }, r);
    expect(res.attrs).toBe(r.attrs);
    expect(res.nextHop).toEqual(parseAddress('2001:db8::99'));
  });
  it('the last next-hop action in the chain wins', () => {
    const book = compilePolicies({
      'policy-definitions': [
        { name: 'a', statements: [{ actions: { 'bgp-actions': { 'set-next-hop': '198.51.100.1' } } }] },
        { name: 'b', statements: [{ actions: { 'bgp-actions': { 'set-next-hop': 'self' } } }] },
      ],
    });
    const res = book.evaluate(['a', 'b'], route(), true);
    expect(res.nextHopSelf).toBe(true);
    expect(res.nextHop).toBeUndefined();
    expect(book.evaluate(['b', 'a'], route(), true).nextHopSelf).toBeUndefined();
  });
});

describe('set-community', () => {
  const c100 = comm(65000, 100);
  const NO_EXPORT = 0xffffff01;
  it('add appends what is missing, once', () => {
    const res = apply({
      'set-community': { method: 'add', communities: ['65000:1', '65000:100', '65000:1', 'no-advertise'] },
    });
    expect(res.attrs.communities).toEqual([c100, NO_EXPORT, comm(65000, 1), 0xffffff02]);
  });
  it('add of present values, remove of absent ones, replace by the same list keep the input object', () => {
    const r = route();
    expect(apply({ 'set-community': { method: 'add', communities: ['65000:100'] } }, r).attrs).toBe(r.attrs);
    expect(apply({ 'set-community': { method: 'remove', communities: ['65000:5'] } }, r).attrs).toBe(r.attrs);
    expect(
      apply({ 'set-community': { method: 'replace', communities: ['65000:100', 'no-export'] } }, r).attrs,
    ).toBe(r.attrs);
    const none = withAttrs({ communities: undefined });
    expect(apply({ 'set-community': { method: 'remove', communities: ['65000:100'] } }, none).attrs).toBe(
      none.attrs,
    );
    expect(apply({ 'set-community': { method: 'replace', communities: [] } }, none).attrs).toBe(none.attrs);
  });
  it('add on a route without communities creates the attribute', () => {
    const res = apply(
      { 'set-community': { method: 'add', communities: [7] } },
      withAttrs({ communities: undefined }),
    );
    expect(res.attrs.communities).toEqual([7]);
  });
  it('remove by literal, by regex, by set reference', () => {
    expect(
      apply({ 'set-community': { method: 'remove', communities: ['no-export'] } }).attrs.communities,
    ).toEqual([c100]);
    expect(
      apply({ 'set-community': { method: 'remove', communities: ['^65000:'] } }).attrs.communities,
    ).toEqual([NO_EXPORT]);
    expect(
      apply({ 'set-community': { method: 'remove', 'community-set-ref': 'c-wk-re' } }).attrs.communities,
    ).toEqual([c100]);
  });
  it('removing every value, or replacing by an empty list, removes the attribute', () => {
    const all = apply({ 'set-community': { method: 'remove', 'community-set-ref': 'c-both' } }).attrs;
    expect('communities' in all).toBe(false);
    const empty = apply({ 'set-community': { method: 'replace', communities: [] } }).attrs;
    expect('communities' in empty).toBe(false);
  });
  it('replace by a literal list or a literal set', () => {
    expect(apply({ 'set-community': { method: 'replace', communities: ['1:2'] } }).attrs.communities).toEqual(
      [comm(1, 2)],
    );
    expect(
      apply({ 'set-community': { method: 'replace', 'community-set-ref': 'c-other' } }).attrs.communities,
    ).toEqual([comm(65000, 999)]);
  });

  it(`add/remove/replace agree with a naive model (seed ${SEED})`, () => {
    const value = fc.constantFrom(comm(65000, 1), comm(65000, 2), comm(65001, 1), 0xffffff01, 0xffff029a);
    const text = (n: number) => `${n >>> 16}:${n & 0xffff}`;
    fc.assert(
      fc.property(
        fc.option(fc.uniqueArray(value, { maxLength: 5 }), { nil: undefined }),
        fc.constantFrom('add', 'remove', 'replace'),
        fc.array(value, { maxLength: 4 }),
        (have, method, given) => {
          const r = withAttrs({ communities: have });
          if (given.length === 0 && method !== 'replace') return;
          const res = apply({ 'set-community': { method, communities: given.map(text) } }, r);
          const cur = have ?? [];
          const uniq = [...new Set(given)];
          const want =
            method === 'add'
              ? [...cur, ...uniq.filter((g) => !cur.includes(g))]
              : method === 'remove'
                ? cur.filter((c) => !given.includes(c))
                : uniq;
          expect(res.attrs.communities ?? []).toEqual(want);
          const same = want.length === cur.length && want.every((w, i) => w === cur[i]);
          expect(res.attrs === r.attrs).toBe(same);
        },
      ),
      { seed: SEED, numRuns: 500 },
    );
  });
});

describe('set-ext-community and set-large-community', () => {
  it('extended: add, remove by regex, replace, set reference under either key', () => {
    const added = apply({
      'set-ext-community': { method: 'add', communities: ['rt:65000:2', 'rt:192.0.2.1:7'] },
    });
    expect(added.attrs.extCommunities).toEqual([
      Uint8Array.of(0, 2, 0xfd, 0xe8, 0, 0, 0, 1),
      Uint8Array.of(0, 2, 0xfd, 0xe8, 0, 0, 0, 2),
      Uint8Array.of(1, 2, 192, 0, 2, 1, 0, 7),
    ]);
    const removed = apply({ 'set-ext-community': { method: 'remove', communities: ['^rt:65000:'] } });
    expect('extCommunities' in removed.attrs).toBe(false);
    const replaced = apply({ 'set-ext-community': { method: 'replace', 'ext-community-set-ref': 'rt-ip' } });
    expect(replaced.attrs.extCommunities).toEqual([Uint8Array.of(1, 2, 192, 0, 2, 1, 0, 7)]);
    const r = route();
    expect(apply({ 'set-ext-community': { method: 'add', 'community-set-ref': 'rts' } }, r).attrs).toBe(
      r.attrs,
    );
  });
  it('large: add, remove, replace, identity', () => {
    const added = apply({ 'set-large-community': { method: 'add', communities: ['1:2:3'] } });
    expect(added.attrs.largeCommunities).toEqual([
      { global: 65000, local1: 1, local2: 2 },
      { global: 1, local1: 2, local2: 3 },
    ]);
    expect(
      'largeCommunities' in
        apply({ 'set-large-community': { method: 'remove', 'large-community-set-ref': 'l-re' } }).attrs,
    ).toBe(false);
    expect(
      apply({ 'set-large-community': { method: 'replace', communities: ['9:9:9'] } }).attrs.largeCommunities,
    ).toEqual([{ global: 9, local1: 9, local2: 9 }]);
    const r = route();
    expect(apply({ 'set-large-community': { method: 'replace', communities: ['65000:1:2'] } }, r).attrs).toBe(
      r.attrs,
    );
  });
});

describe('set-as-path-prepend', () => {
  const seq = (...asns: number[]): AsPathSegment => ({ type: 2, asns });
  it.each<[unknown, AsPathSegment[] | undefined, AsPathSegment[]]>([
    [{ asn: 65000 }, [seq(65001, 65002)], [seq(65000, 65001, 65002)]],
    [{ asn: 65000, 'repeat-n': 3 }, [seq(65001)], [seq(65000, 65000, 65000, 65001)]],
    [{ asn: 'last-as', 'repeat-n': 2 }, [seq(65001, 65002)], [seq(65001, 65001, 65001, 65002)]],
    [{ asn: 65000 }, undefined, [seq(65000)]],
    [{ asn: 65000 }, [{ type: 1, asns: [1, 2] }], [seq(65000), { type: 1, asns: [1, 2] }]],
    [
      { asn: 'last-as' },
      [{ type: 3, asns: [64512] }, seq(65009)],
      [seq(65009), { type: 3, asns: [64512] }, seq(65009)],
    ],
    [
      { asn: 7, 'repeat-n': 2 },
      [seq(...new Array<number>(254).fill(1))],
      [seq(7, 7), seq(...new Array<number>(254).fill(1))],
    ],
  ])('%j on %j', (action, asPath, want) => {
    expect(apply({ 'set-as-path-prepend': action }, withAttrs({ asPath })).attrs.asPath).toEqual(want);
  });
  it('last-as is a no-op without a leading AS_SEQUENCE', () => {
    for (const asPath of [undefined, [], [{ type: 1 as const, asns: [1, 2] }]]) {
      const r = withAttrs({ asPath });
      expect(apply({ 'set-as-path-prepend': { asn: 'last-as' } }, r).attrs).toBe(r.attrs);
    }
  });
});

describe('immutability and identity', () => {
  const EVERYTHING = {
    'set-route-origin': 'egp',
    'set-local-pref': 5,
    'set-med': '+5',
    'set-community': { method: 'add', communities: ['1:1'] },
    'set-ext-community': { method: 'remove', 'community-set-ref': 'rt-re' },
    'set-large-community': { method: 'replace', communities: ['1:1:1'] },
    'set-as-path-prepend': { asn: 'last-as', 'repeat-n': 2 },
    'set-next-hop': '203.0.113.9',
  };

  it('never mutates the (deep-frozen) input, and returns a new object when something changed', () => {
    const r = route();
    const before = structuredClone(r.attrs);
    const res = apply(EVERYTHING, r);
    expect(r.attrs).toEqual(before);
    expect(res.attrs).not.toBe(r.attrs);
    expect(res.attrs).toMatchObject({ origin: 1, localPref: 5, med: 15 });
    expect(res.attrs.asPath).toEqual([{ type: 2, asns: [65001, 65001, 65001, 65002] }]);
  });

  it(`random attrs: input untouched; result identity iff no value changed (seed ${SEED})`, () => {
    const community = fc.constantFrom(comm(1, 1), comm(65000, 100), 0xffffff01);
    const attrs = fc.record(
      {
        origin: fc.constantFrom(0, 1, 2),
        localPref: fc.constantFrom(5, 100),
        med: fc.constantFrom(0, 10),
        asPath: fc.array(
          fc.record({
            type: fc.constantFrom<1 | 2>(1, 2),
            asns: fc.array(fc.constantFrom(1, 65001), { minLength: 1, maxLength: 3 }),
          }),
          { maxLength: 3 },
        ),
        communities: fc.uniqueArray(community, { maxLength: 3 }),
        largeCommunities: fc.constantFrom(
          [{ global: 1, local1: 1, local2: 1 }],
          [{ global: 2, local1: 2, local2: 2 }],
        ),
        nextHop: fc.constantFrom(Uint8Array.of(203, 0, 113, 9), Uint8Array.of(192, 0, 2, 1)),
      },
      { requiredKeys: [] },
    );
    const actionKeys = fc.subarray(Object.keys(EVERYTHING) as (keyof typeof EVERYTHING)[]);
    fc.assert(
      fc.property(attrs, actionKeys, (a, keys) => {
        const frozen = deepFreeze(a);
        const before = structuredClone(frozen);
        const chosen = Object.fromEntries(keys.map((k) => [k, EVERYTHING[k]]));
        const res = apply(chosen, route({ attrs: frozen }));
        expect(frozen).toEqual(before);
        // A value-level comparison decides whether anything changed (ignoring key presence of undefined).
        const norm = (x: PathAttributes) =>
          JSON.stringify(x, (_k, v: unknown) => (v instanceof Uint8Array ? [...v] : v));
        expect(res.attrs === frozen).toBe(norm(res.attrs) === norm(frozen));
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('a chain of no-op actions returns the input object', () => {
    const book = compilePolicies({
      'defined-sets': SETS,
      'policy-definitions': [
        {
          name: 'noop',
          statements: [
            { actions: { 'bgp-actions': { 'set-local-pref': 100, 'set-med': '+0' } } },
            {
              actions: {
                'bgp-actions': { 'set-community': { method: 'add', 'community-set-ref': 'c-both' } },
              },
            },
          ],
        },
      ],
    });
    const r = route();
    const res = book.evaluate(['noop', 'noop'], r, true);
    expect(res).toEqual({ accept: true, attrs: r.attrs });
    expect(res.attrs).toBe(r.attrs);
  });
});
