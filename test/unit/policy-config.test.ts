// Policy config validation (every error is a PolicyConfigError naming the exact path) and the
// Cisco AS path regex translation.
import { describe, expect, it } from 'vitest';
import { compilePolicies, PolicyConfigError } from '../../src/bgp/policy/index.ts';
import { looksLikeRegex, translateAsPathRegex } from '../../src/bgp/policy/regex.ts';
import { SETS } from './policy-helpers.ts';

const P = 'policies.policy-definitions[0].statements[0]';
const DS = 'policies.defined-sets';
const BGP = `${DS}.bgp-defined-sets`;

/** A config with the shared sets and one policy whose first statement is `statement`. */
function withStatement(statement: unknown): unknown {
  return { 'defined-sets': SETS, 'policy-definitions': [{ name: 'p', statements: [statement] }] };
}

function withSets(sets: unknown): unknown {
  return { 'defined-sets': sets };
}

function errorOf(cfg: unknown): PolicyConfigError {
  try {
    compilePolicies(cfg);
  } catch (e) {
    if (e instanceof PolicyConfigError) return e;
    throw e;
  }
  throw new Error('compiled without error');
}

describe('config errors name the path', () => {
  it.each<[string, unknown, string, RegExp]>([
    ['section not an object', [], 'policies', /expected an object, got a list/],
    ['unknown top-level key', { 'policy-definition': [] }, 'policies.policy-definition', /unknown key/],
    [
      'unknown defined-sets key',
      withSets({ 'prefix-set': [] }),
      `${DS}.prefix-set`,
      /expected one of: prefix-sets/,
    ],
    ['prefix-sets not a list', withSets({ 'prefix-sets': {} }), `${DS}.prefix-sets`, /expected a list/],
    [
      'set without name',
      withSets({ 'prefix-sets': [{ prefixes: [] }] }),
      `${DS}.prefix-sets[0].name`,
      /missing/,
    ],
    [
      'duplicate set name',
      withSets({ 'prefix-sets': [{ name: 'a' }, { name: 'a' }] }),
      `${DS}.prefix-sets[1].name`,
      /duplicate set name "a"/,
    ],
    [
      'bad prefix',
      withSets({ 'prefix-sets': [{ name: 'a', prefixes: [{ prefix: '10.0.0.0/33' }] }] }),
      `${DS}.prefix-sets[0].prefixes[0].prefix`,
      /too long/,
    ],
    [
      'host bits set',
      withSets({ 'prefix-sets': [{ name: 'a', prefixes: ['10.0.0.1/8'] }] }),
      `${DS}.prefix-sets[0].prefixes[0]`,
      /host bits/,
    ],
    [
      'range below the prefix length',
      withSets({
        'prefix-sets': [{ name: 'a', prefixes: [{ prefix: '10.0.0.0/8', 'masklength-range': '4..24' }] }],
      }),
      `${DS}.prefix-sets[0].prefixes[0].masklength-range`,
      /starts below the prefix length 8/,
    ],
    [
      'range reversed',
      withSets({
        'prefix-sets': [{ name: 'a', prefixes: [{ prefix: '10.0.0.0/8', 'masklength-range': '24..16' }] }],
      }),
      `${DS}.prefix-sets[0].prefixes[0].masklength-range`,
      /empty/,
    ],
    [
      'range too long',
      withSets({ 'prefix-sets': [{ name: 'a', prefixes: ['2001:db8::/32 le 129'] }] }),
      `${DS}.prefix-sets[0].prefixes[0]`,
      /exceeds 128 bits/,
    ],
    [
      'bad range syntax',
      withSets({
        'prefix-sets': [{ name: 'a', prefixes: [{ prefix: '10.0.0.0/8', 'masklength-range': '16-24' }] }],
      }),
      `${DS}.prefix-sets[0].prefixes[0].masklength-range`,
      /"exact" or "lo..hi"/,
    ],
    [
      'bad shorthand',
      withSets({ 'prefix-sets': [{ name: 'a', prefixes: ['10.0.0.0/8 lt 24'] }] }),
      `${DS}.prefix-sets[0].prefixes[0]`,
      /ge N/,
    ],
    [
      'unknown prefix entry key',
      withSets({ 'prefix-sets': [{ name: 'a', prefixes: [{ prefix: '10.0.0.0/8', le: 24 }] }] }),
      `${DS}.prefix-sets[0].prefixes[0].le`,
      /unknown key/,
    ],
    [
      'bad neighbour address',
      withSets({ 'neighbor-sets': [{ name: 'n', addresses: ['192.0.2.300'] }] }),
      `${DS}.neighbor-sets[0].addresses[0]`,
      /not an IPv4 address/,
    ],
    [
      'bad community',
      withSets({ 'bgp-defined-sets': { 'community-sets': [{ name: 'c', members: ['65536:1'] }] } }),
      `${BGP}.community-sets[0].members[0]`,
      /community/,
    ],
    [
      'bad community regex',
      withSets({ 'bgp-defined-sets': { 'community-sets': [{ name: 'c', members: ['^65000:(.*$'] }] } }),
      `${BGP}.community-sets[0].members[0]`,
      /bad regex/,
    ],
    [
      'bad extended community',
      withSets({ 'bgp-defined-sets': { 'ext-community-sets': [{ name: 'x', members: ['xx:1:2'] }] } }),
      `${BGP}.ext-community-sets[0].members[0]`,
      /extended community/,
    ],
    [
      'bad large community',
      withSets({ 'bgp-defined-sets': { 'large-community-sets': [{ name: 'l', members: ['1:2'] }] } }),
      `${BGP}.large-community-sets[0].members[0]`,
      /large community/,
    ],
    [
      'bad AS path regex',
      withSets({ 'bgp-defined-sets': { 'as-path-sets': [{ name: 'a', members: ['_650[01_'] }] } }),
      `${BGP}.as-path-sets[0].members[0]`,
      /bad AS path regex "_650\[01_"/,
    ],
    [
      'unknown bgp-defined-sets key',
      withSets({ 'bgp-defined-sets': { 'community-set': [] } }),
      `${BGP}.community-set`,
      /unknown key/,
    ],
    [
      'policy without name',
      { 'policy-definitions': [{ statements: [] }] },
      'policies.policy-definitions[0].name',
      /missing/,
    ],
    [
      'built-in policy name',
      { 'policy-definitions': [{ name: 'accept-all' }] },
      'policies.policy-definitions[0].name',
      /built-in/,
    ],
    [
      'duplicate policy name',
      { 'policy-definitions': [{ name: 'a' }, { name: 'a' }] },
      'policies.policy-definitions[1].name',
      /duplicate policy name/,
    ],
    [
      'duplicate statement name',
      { 'policy-definitions': [{ name: 'a', statements: [{ name: 's' }, { name: 's' }] }] },
      'policies.policy-definitions[0].statements[1].name',
      /duplicate statement name/,
    ],
    ['unknown statement key', withStatement({ name: 's', condition: {} }), `${P}.condition`, /unknown key/],
    [
      'unknown condition',
      withStatement({ conditions: { 'match-prefix': {} } }),
      `${P}.conditions.match-prefix`,
      /unknown key/,
    ],
    [
      'unknown prefix set',
      withStatement({ conditions: { 'match-prefix-set': { 'prefix-set': 'nope' } } }),
      `${P}.conditions.match-prefix-set.prefix-set`,
      /unknown prefix-set "nope" \(defined: customer\)/,
    ],
    [
      'all is not an option for prefix sets',
      withStatement({
        conditions: { 'match-prefix-set': { 'prefix-set': 'customer', 'match-set-options': 'all' } },
      }),
      `${P}.conditions.match-prefix-set.match-set-options`,
      /expected one of any, invert/,
    ],
    [
      'unknown community set',
      withStatement({ conditions: { 'match-community-set': { 'community-set': 'nope' } } }),
      `${P}.conditions.match-community-set.community-set`,
      /unknown community-set "nope"/,
    ],
    [
      'ext set looked up among ext sets only',
      withStatement({ conditions: { 'match-ext-community-set': { 'ext-community-set': 'c-lit' } } }),
      `${P}.conditions.match-ext-community-set.ext-community-set`,
      /unknown ext-community-set "c-lit"/,
    ],
    [
      'unknown as-path set',
      withStatement({
        conditions: { 'match-as-path-set': { 'as-path-set': 'nope', 'match-set-options': 'all' } },
      }),
      `${P}.conditions.match-as-path-set.as-path-set`,
      /unknown as-path-set/,
    ],
    [
      'bad family',
      withStatement({ conditions: { 'afi-safi-in': ['ipv4-unicast', 'l2vpn-evpn'] } }),
      `${P}.conditions.afi-safi-in[1]`,
      /expected one of ipv4-unicast/,
    ],
    [
      'bad as-path-length operator',
      withStatement({ conditions: { 'as-path-length': { operator: 'lt', value: 3 } } }),
      `${P}.conditions.as-path-length.operator`,
      /eq, ge, le/,
    ],
    [
      'bad route-type',
      withStatement({ conditions: { 'route-type': 'ibgp' } }),
      `${P}.conditions.route-type`,
      /internal, external, local/,
    ],
    [
      'bad policy-result',
      withStatement({ actions: { 'policy-result': 'accept' } }),
      `${P}.actions.policy-result`,
      /accept-route, reject-route, next-statement/,
    ],
    [
      'unknown action key',
      withStatement({ actions: { 'set-med': 5 } }),
      `${P}.actions.set-med`,
      /unknown key/,
    ],
    [
      'unknown bgp action',
      withStatement({ actions: { 'bgp-actions': { 'set-weight': 5 } } }),
      `${P}.actions.bgp-actions.set-weight`,
      /unknown key/,
    ],
    [
      'bad med',
      withStatement({ actions: { 'bgp-actions': { 'set-med': '*2' } } }),
      `${P}.actions.bgp-actions.set-med`,
      /expected a uint32, "\+N" or "-N", got "\*2"/,
    ],
    [
      'med out of range',
      withStatement({ actions: { 'bgp-actions': { 'set-med': 4294967296 } } }),
      `${P}.actions.bgp-actions.set-med`,
      /out of range/,
    ],
    [
      'bad local-pref',
      withStatement({ actions: { 'bgp-actions': { 'set-local-pref': 1.5 } } }),
      `${P}.actions.bgp-actions.set-local-pref`,
      /expected an integer/,
    ],
    [
      'bad next hop',
      withStatement({ actions: { 'bgp-actions': { 'set-next-hop': 'peer' } } }),
      `${P}.actions.bgp-actions.set-next-hop`,
      /not an IPv4 address/,
    ],
    [
      'bad community method',
      withStatement({
        actions: { 'bgp-actions': { 'set-community': { method: 'set', communities: ['1:1'] } } },
      }),
      `${P}.actions.bgp-actions.set-community.method`,
      /add, remove, replace/,
    ],
    [
      'add with a regex',
      withStatement({
        actions: { 'bgp-actions': { 'set-community': { method: 'add', communities: ['^1:.*'] } } },
      }),
      `${P}.actions.bgp-actions.set-community.communities`,
      /only allowed with method "remove"/,
    ],
    [
      'replace with a regex set',
      withStatement({
        actions: { 'bgp-actions': { 'set-community': { method: 'replace', 'community-set-ref': 'c-re' } } },
      }),
      `${P}.actions.bgp-actions.set-community.community-set-ref`,
      /has regex members/,
    ],
    [
      'unknown community set reference',
      withStatement({
        actions: { 'bgp-actions': { 'set-community': { method: 'remove', 'community-set-ref': 'x' } } },
      }),
      `${P}.actions.bgp-actions.set-community.community-set-ref`,
      /unknown community set "x"/,
    ],
    [
      'both a list and a reference',
      withStatement({
        actions: {
          'bgp-actions': {
            'set-community': { method: 'remove', communities: ['1:1'], 'community-set-ref': 'c-lit' },
          },
        },
      }),
      `${P}.actions.bgp-actions.set-community.communities`,
      /not both/,
    ],
    [
      'neither a list nor a reference',
      withStatement({ actions: { 'bgp-actions': { 'set-large-community': { method: 'add' } } } }),
      `${P}.actions.bgp-actions.set-large-community.communities`,
      /missing/,
    ],
    [
      'bad community in an action',
      withStatement({
        actions: { 'bgp-actions': { 'set-community': { method: 'add', communities: ['1:2:3'] } } },
      }),
      `${P}.actions.bgp-actions.set-community.communities[0]`,
      /community/,
    ],
    [
      'prepend asn 0',
      withStatement({ actions: { 'bgp-actions': { 'set-as-path-prepend': { asn: 0 } } } }),
      `${P}.actions.bgp-actions.set-as-path-prepend.asn`,
      /out of range 1\.\./,
    ],
    [
      'prepend repeat too large',
      withStatement({ actions: { 'bgp-actions': { 'set-as-path-prepend': { asn: 1, 'repeat-n': 256 } } } }),
      `${P}.actions.bgp-actions.set-as-path-prepend.repeat-n`,
      /out of range 1\.\.255/,
    ],
  ])('%s', (_name, cfg, path, message) => {
    const e = errorOf(cfg);
    expect(e.path).toBe(path);
    expect(e.reason).toMatch(message);
    expect(e.message).toBe(`${path}: ${e.reason}`);
    expect(e.code).toBe('POLICY_CONFIG');
  });

  it('a custom base path prefixes every error', () => {
    try {
      compilePolicies({ 'defined-sets': 5 }, 'config.routing.policies');
      expect.unreachable();
    } catch (e) {
      expect((e as PolicyConfigError).path).toBe('config.routing.policies.defined-sets');
    }
  });

  it('an absent section compiles to the built-ins', () => {
    expect(compilePolicies(undefined).names()).toEqual(['accept-all', 'reject-all']);
    expect(compilePolicies(null).names()).toEqual(['accept-all', 'reject-all']);
    expect(compilePolicies({}).names()).toEqual(['accept-all', 'reject-all']);
  });

  it('accepts YAML numbers where text is expected', () => {
    const book = compilePolicies({
      'defined-sets': {
        'bgp-defined-sets': {
          'community-sets': [{ name: 'c', members: [4259840100] }],
          'as-path-sets': [{ name: 'a', members: [65001] }],
        },
      },
    });
    expect(book.names()).toHaveLength(2);
  });
});

describe('regex helpers', () => {
  it.each([
    ['65000:100', false],
    ['no-export', false],
    ['rt:192.0.2.1:100', true], // callers try the literal parse first
    ['^65000:.*$', true],
    ['65000:1..', true],
    ['65000:[0-9]+', true],
  ])('looksLikeRegex(%s) = %s', (s, want) => {
    expect(looksLikeRegex(s)).toBe(want);
  });

  it.each([
    ['^65001_', '^65001(?:^|$|[ {}()\\[\\],])'],
    ['_65002$', '(?:^|$|[ {}()\\[\\],])65002$'],
    ['[_]', '[_]'], // inside a class: literal
    ['\\_', '\\_'], // escaped: literal
    ['[^_]_', '[^_](?:^|$|[ {}()\\[\\],])'],
  ])('translateAsPathRegex(%s)', (src, want) => {
    expect(translateAsPathRegex(src)).toBe(want);
  });
});
