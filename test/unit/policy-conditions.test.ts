// Policy conditions and chain semantics (src/bgp/policy/conditions.ts, book.ts).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseAddress, parsePrefix } from '../../src/lib/ip.ts';
import { ACCEPT_ALL, compilePolicies, REJECT_ALL } from '../../src/bgp/policy/index.ts';
import { LocalUsageError } from '../../src/bgp/wire/errors.ts';
import type { AsPathSegment, PathAttributes } from '../../src/bgp/wire/types.ts';
import { BASE_ATTRS, comm, matches, one, route, SETS } from './policy-helpers.ts';

const SEED = 8212;

const withPath = (asPath: AsPathSegment[]): PathAttributes => ({ ...BASE_ATTRS, asPath });

describe('match-prefix-set', () => {
  it.each([
    ['10.1.0.0/16', 'any', true],
    ['10.1.2.0/24', 'any', true],
    ['10.0.0.0/8', 'any', false],
    ['10.1.2.128/25', 'any', false],
    ['2001:db8::/32', 'any', true],
    ['2001:db8:1::/48', 'any', false],
    ['10.0.0.0/8', 'invert', true],
    ['10.1.0.0/16', 'invert', false],
  ])('%s with %s -> %s', (p, opt, want) => {
    const prefix = parsePrefix(p);
    const r = route({ prefix, family: prefix.afi === 1 ? 'ipv4-unicast' : 'ipv6-unicast' });
    expect(matches({ 'match-prefix-set': { 'prefix-set': 'customer', 'match-set-options': opt } }, r)).toBe(
      want,
    );
  });
});

describe('match-neighbor-set', () => {
  const c = (opt: string) => ({ 'match-neighbor-set': { 'neighbor-set': 'pes', 'match-set-options': opt } });
  it.each([
    ['192.0.2.1', 'any', true],
    ['2001:db8::1', 'any', true],
    ['198.51.100.77', 'any', true], // a prefix member
    ['192.0.2.2', 'any', false],
    ['192.0.2.2', 'invert', true],
    ['192.0.2.1', 'invert', false],
  ])('%s with %s -> %s', (n, opt, want) => {
    expect(matches(c(opt), route({ neighbor: parseAddress(n) }))).toBe(want);
  });
  it('a route without a neighbour (local) matches only invert', () => {
    const local = route({ neighbor: undefined });
    expect(matches(c('any'), local)).toBe(false);
    expect(matches(c('invert'), local)).toBe(true);
  });
});

describe('match-community-set', () => {
  const c = (set: string, opt = 'any') => ({
    'match-community-set': { 'community-set': set, 'match-set-options': opt },
  });
  it.each([
    ['c-lit', 'any', true],
    ['c-other', 'any', false],
    ['c-both', 'all', true],
    ['c-mixed', 'all', false], // 65000:9xx is not on the route
    ['c-mixed', 'any', true],
    ['c-re', 'any', true],
    ['c-wk-re', 'any', true], // regexes see no-export as 65535:65281
    ['c-other', 'invert', true],
    ['c-lit', 'invert', false],
    ['c-re', 'invert', false],
  ])('%s with %s -> %s', (set, opt, want) => {
    expect(matches(c(set, opt))).toBe(want);
  });
  it('a route without communities: any false, all false, invert true', () => {
    const r = route({ attrs: { ...BASE_ATTRS, communities: undefined } });
    expect(matches(c('c-lit', 'any'), r)).toBe(false);
    expect(matches(c('c-lit', 'all'), r)).toBe(false);
    expect(matches(c('c-lit', 'invert'), r)).toBe(true);
  });
  it('regex members match per value, not against a joined list', () => {
    const r = route({ attrs: { ...BASE_ATTRS, communities: [comm(65001, 1)] } });
    expect(matches(c('c-re'), r)).toBe(false);
  });
});

describe('match-ext-community-set and match-large-community-set', () => {
  const ext = (set: string, opt = 'any') => ({
    'match-ext-community-set': { 'ext-community-set': set, 'match-set-options': opt },
  });
  const large = (set: string, opt = 'any') => ({
    'match-large-community-set': { 'large-community-set': set, 'match-set-options': opt },
  });
  it('extended: literal, regex, IPv4-specific literal, invert', () => {
    expect(matches(ext('rts'))).toBe(true);
    expect(matches(ext('rt-re'))).toBe(true);
    expect(matches(ext('rt-ip'))).toBe(false);
    expect(matches(ext('rts', 'invert'))).toBe(false);
    const ipRt = Uint8Array.of(1, 2, 192, 0, 2, 1, 0, 7);
    expect(matches(ext('rt-ip'), route({ attrs: { ...BASE_ATTRS, extCommunities: [ipRt] } }))).toBe(true);
  });
  it('large: literal, regex, all, invert', () => {
    expect(matches(large('l1'))).toBe(true);
    expect(matches(large('l-re', 'all'))).toBe(true);
    expect(matches(large('l1', 'invert'))).toBe(false);
    const other = route({
      attrs: { ...BASE_ATTRS, largeCommunities: [{ global: 65000, local1: 2, local2: 2 }] },
    });
    expect(matches(large('l1'), other)).toBe(false);
    expect(matches(large('l-re'), other)).toBe(false);
  });
});

describe('match-as-path-set (Cisco regex)', () => {
  const c = (set: string, opt = 'any') => ({
    'match-as-path-set': { 'as-path-set': set, 'match-set-options': opt },
  });
  const seq = (...asns: number[]): AsPathSegment => ({ type: 2, asns });
  const set = (...asns: number[]): AsPathSegment => ({ type: 1, asns });
  it.each<[string, AsPathSegment[], string, boolean]>([
    ['from-65001', [seq(65001, 65002)], 'any', true],
    ['from-65001', [seq(165001, 65002)], 'any', false], // `_` is a delimiter, not a substring
    ['from-65001', [seq(65002, 65001)], 'any', false],
    ['to-65002', [seq(65001, 65002)], 'any', true],
    ['via-65003', [seq(65001), set(65003, 65004)], 'any', true], // inside an AS_SET: "{65003,"
    ['via-65003', [seq(65001), set(65004, 65003)], 'any', true], // ",65003}"
    ['via-65003', [{ type: 3, asns: [65003] }], 'any', true], // confed "(65003)"
    ['via-65003', [seq(650030)], 'any', false],
    ['both', [seq(65001, 65002)], 'all', true],
    ['both', [seq(65001, 65009)], 'all', false],
    ['both', [seq(65001, 65009)], 'any', true],
    ['both', [seq(65009)], 'invert', true],
    ['both', [seq(65001)], 'invert', false],
    ['empty', [], 'any', true],
  ])('%s on %j with %s -> %s', (name, path, opt, want) => {
    expect(matches(c(name, opt), route({ attrs: withPath(path) }))).toBe(want);
  });
  it('a route without AS_PATH is the empty path', () => {
    expect(matches(c('empty'), route({ attrs: { ...BASE_ATTRS, asPath: undefined } }))).toBe(true);
  });

  it(`_N_ matches exactly the paths that contain N (seed ${SEED})`, () => {
    const pool = [1, 11, 65001, 165001, 4200000000];
    const segment = fc.record({
      type: fc.constantFrom<1 | 2 | 3 | 4>(1, 2, 3, 4),
      asns: fc.array(fc.constantFrom(...pool), { minLength: 1, maxLength: 4 }),
    });
    const books = new Map(
      pool.map((n) => [
        n,
        compilePolicies({
          'defined-sets': { 'bgp-defined-sets': { 'as-path-sets': [{ name: 'a', members: [`_${n}_`] }] } },
          'policy-definitions': [
            {
              name: 'p',
              statements: [
                {
                  conditions: { 'match-as-path-set': { 'as-path-set': 'a' } },
                  actions: { 'policy-result': 'accept-route' },
                },
              ],
            },
          ],
        }),
      ]),
    );
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 5 }), fc.constantFrom(...pool), (path, n) => {
        const want = path.some((s) => s.asns.includes(n));
        expect(books.get(n)!.evaluate(['p'], route({ attrs: withPath(path) }), false).accept).toBe(want);
      }),
      { seed: SEED, numRuns: 500 },
    );
  });
});

describe('afi-safi-in, as-path-length, route-type', () => {
  it('afi-safi-in', () => {
    expect(matches({ 'afi-safi-in': ['ipv4-unicast', 'ipv4-vpn'] })).toBe(true);
    expect(matches({ 'afi-safi-in': ['ipv6-unicast'] })).toBe(false);
  });
  it('as-path-length counts an AS_SET as 1 and confederation segments as 0', () => {
    const attrs = withPath([
      { type: 3, asns: [64512, 64513] },
      { type: 2, asns: [65001, 65002] },
      { type: 1, asns: [65003, 65004, 65005] },
    ]);
    const r = route({ attrs });
    const len = (operator: string, value: number) => matches({ 'as-path-length': { operator, value } }, r);
    expect(len('eq', 3)).toBe(true);
    expect(len('eq', 4)).toBe(false);
    expect(len('ge', 3)).toBe(true);
    expect(len('ge', 4)).toBe(false);
    expect(len('le', 3)).toBe(true);
    expect(len('le', 2)).toBe(false);
    expect(matches({ 'as-path-length': { operator: 'eq', value: 0 } }, route({ attrs: { origin: 0 } }))).toBe(
      true,
    );
  });
  it('route-type; a route without a type never matches', () => {
    expect(matches({ 'route-type': 'external' })).toBe(true);
    expect(matches({ 'route-type': 'internal' })).toBe(false);
    expect(matches({ 'route-type': 'local' }, route({ routeType: 'local' }))).toBe(true);
    expect(matches({ 'route-type': 'external' }, route({ routeType: undefined }))).toBe(false);
  });
  it('all conditions must hold; no conditions always holds', () => {
    const both = { 'afi-safi-in': ['ipv4-unicast'], 'route-type': 'internal' };
    expect(matches(both)).toBe(false);
    expect(matches({ ...both, 'route-type': 'external' })).toBe(true);
    expect(matches(undefined)).toBe(true);
    expect(matches({})).toBe(true);
  });
});

describe('chains', () => {
  const book = compilePolicies({
    'defined-sets': SETS,
    'policy-definitions': [
      {
        name: 'tag',
        statements: [{ name: 'mark', actions: { 'bgp-actions': { 'set-local-pref': 300 } } }],
      },
      {
        name: 'accept-customer',
        statements: [
          {
            name: 'yes',
            conditions: { 'match-prefix-set': { 'prefix-set': 'customer' } },
            actions: { 'policy-result': 'accept-route' },
          },
        ],
      },
      {
        name: 'reject-other',
        statements: [
          {
            name: 'no',
            conditions: { 'match-community-set': { 'community-set': 'c-other' } },
            actions: { 'policy-result': 'reject-route' },
          },
        ],
      },
      {
        name: 'two-step',
        statements: [
          {
            name: 'add',
            actions: { 'bgp-actions': { 'set-community': { method: 'add', communities: ['65000:999'] } } },
          },
          {
            name: 'see',
            conditions: { 'match-community-set': { 'community-set': 'c-other' } },
            actions: { 'bgp-actions': { 'set-med': 77 }, 'policy-result': 'accept-route' },
          },
        ],
      },
    ],
  });
  const outside = route({ prefix: parsePrefix('172.16.0.0/16') });

  it('accept-route ends the whole chain', () => {
    expect(book.evaluate(['accept-customer', REJECT_ALL], route(), false).accept).toBe(true);
  });
  it('reject-route ends the whole chain', () => {
    const r = route({ attrs: { ...BASE_ATTRS, communities: [comm(65000, 999)] } });
    expect(book.evaluate(['reject-other', ACCEPT_ALL], r, true).accept).toBe(false);
  });
  it('falling off a policy continues with the next one, then the default', () => {
    expect(book.evaluate(['accept-customer', 'reject-other'], outside, true).accept).toBe(true);
    expect(book.evaluate(['accept-customer', 'reject-other'], outside, false).accept).toBe(false);
    expect(book.evaluate(['accept-customer', ACCEPT_ALL], outside, false).accept).toBe(true);
    expect(book.evaluate([], outside, false).accept).toBe(false);
    expect(book.evaluate([], outside, true).attrs).toBe(outside.attrs);
  });
  it('actions before an accept, or a default accept, are kept; a reject returns the input attrs', () => {
    expect(book.evaluate(['tag', 'accept-customer'], route(), false).attrs.localPref).toBe(300);
    expect(book.evaluate(['tag'], outside, true).attrs.localPref).toBe(300);
    const rejected = book.evaluate(['tag'], outside, false);
    expect(rejected.accept).toBe(false);
    expect(rejected.attrs).toBe(outside.attrs);
  });
  it('a statement sees the changes of earlier statements', () => {
    const res = book.evaluate(['two-step'], route(), false);
    expect(res.accept).toBe(true);
    expect(res.attrs.med).toBe(77);
  });
  it('built-ins', () => {
    expect(book.has(ACCEPT_ALL) && book.has(REJECT_ALL)).toBe(true);
    expect(book.evaluate([ACCEPT_ALL], route(), false)).toEqual({ accept: true, attrs: route().attrs });
    expect(book.evaluate([REJECT_ALL], route(), true).accept).toBe(false);
    expect(book.names()).toEqual([
      ACCEPT_ALL,
      REJECT_ALL,
      'tag',
      'accept-customer',
      'reject-other',
      'two-step',
    ]);
  });
  it('an unknown policy name is a LocalUsageError', () => {
    expect(() => book.evaluate(['nope'], route(), true)).toThrow(LocalUsageError);
    expect(() => book.dependsOnPrefix(['nope'])).toThrow(LocalUsageError);
  });
  it('dependsOnPrefix and dependencies', () => {
    expect(book.dependsOnPrefix(['tag', 'reject-other'])).toBe(false);
    expect(book.dependsOnPrefix(['tag', 'accept-customer'])).toBe(true);
    expect(book.dependsOnPrefix([ACCEPT_ALL])).toBe(false);
    expect(
      one({ 'match-neighbor-set': { 'neighbor-set': 'pes' }, 'afi-safi-in': ['ipv4-unicast'] }).dependencies([
        'p',
      ]),
    ).toEqual({
      prefix: false,
      family: true,
      neighbor: true,
      routeType: false,
    });
    expect(one({ 'route-type': 'local' }).dependencies(['p']).routeType).toBe(true);
  });
});

describe('the README example', () => {
  it('compiles from YAML and runs', () => {
    const doc = parseYaml(`
policies:
  defined-sets:
    prefix-sets:
      - name: customer
        prefixes: [ { prefix: 10.0.0.0/8, masklength-range: "16..24" }, { prefix: "2001:db8::/32" }, "192.168.0.0/16 le 24", "172.16.0.0/12 ge 16 le 24" ]
    neighbor-sets: [ { name: pes, addresses: [192.0.2.1, "2001:db8::1"] } ]
    bgp-defined-sets:
      community-sets: [ { name: c1, members: ["65000:100", "no-export", "^65000:.*$"] } ]
      ext-community-sets: [ { name: rts, members: ["rt:65000:1"] } ]
      large-community-sets: [ { name: l1, members: ["65000:1:2"] } ]
      as-path-sets: [ { name: from-65001, members: ["^65001_", "_65002$"] } ]
  policy-definitions:
    - name: from-pe
      statements:
        - name: s1
          conditions:
            match-prefix-set: { prefix-set: customer, match-set-options: any }
            match-neighbor-set: { neighbor-set: pes }
            match-community-set: { community-set: c1, match-set-options: all }
            match-ext-community-set: { ext-community-set: rts }
            match-large-community-set: { large-community-set: l1 }
            match-as-path-set: { as-path-set: from-65001, match-set-options: any }
            afi-safi-in: [ipv4-unicast]
            as-path-length: { operator: le, value: 3 }
            route-type: external
          actions:
            policy-result: accept-route
            bgp-actions:
              set-local-pref: 200
              set-med: "+10"
              set-next-hop: self
              set-community: { method: remove, community-set-ref: c1 }
              set-as-path-prepend: { asn: last-as, repeat-n: 2 }
`) as { policies: unknown };
    const book = compilePolicies(doc.policies);
    const r = route({
      attrs: { ...BASE_ATTRS, communities: [comm(65000, 100), 0xffffff01, comm(65000, 7)] },
    });
    const res = book.evaluate(['from-pe'], r, false);
    expect(res.accept).toBe(true);
    expect(res.nextHopSelf).toBe(true);
    expect(res.attrs).toMatchObject({
      localPref: 200,
      med: 20,
      asPath: [{ type: 2, asns: [65001, 65001, 65001, 65002] }],
    });
    expect(res.attrs.communities).toBeUndefined();
    expect('communities' in res.attrs).toBe(false);
    const at = (p: string) => book.evaluate(['from-pe'], route({ prefix: parsePrefix(p) }), false).accept;
    expect(at('192.168.1.0/24')).toBe(true);
    expect(at('192.168.1.0/25')).toBe(false);
    expect(at('172.16.5.0/24')).toBe(true);
    expect(at('172.16.0.0/12')).toBe(false);
  });
});
