// Shared helpers for the policy tests: deep freezing, routes and one-statement books.
import { parseAddress, parsePrefix } from '../../src/lib/ip.ts';
import { compilePolicies, type PolicyBook } from '../../src/bgp/policy/index.ts';
import type { PolicyRoute } from '../../src/bgp/policy/types.ts';
import type { PathAttributes } from '../../src/bgp/wire/types.ts';

/** Freezes objects and arrays all the way down (typed arrays cannot be frozen: callers snapshot). */
export function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !ArrayBuffer.isView(v) && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** A standard community as its uint32 value. */
export function comm(asn: number, value: number): number {
  return asn * 0x10000 + value;
}

export const BASE_ATTRS: PathAttributes = deepFreeze({
  origin: 0,
  asPath: [{ type: 2, asns: [65001, 65002] }],
  nextHop: Uint8Array.of(192, 0, 2, 1),
  med: 10,
  localPref: 100,
  communities: [comm(65000, 100), 0xffffff01],
  extCommunities: [Uint8Array.of(0, 2, 0xfd, 0xe8, 0, 0, 0, 1)], // rt:65000:1
  largeCommunities: [{ global: 65000, local1: 1, local2: 2 }],
});

export function route(over: Partial<PolicyRoute> = {}): PolicyRoute {
  const attrs = deepFreeze(over.attrs ?? BASE_ATTRS);
  return {
    prefix: parsePrefix('10.1.0.0/16'),
    family: 'ipv4-unicast',
    neighbor: parseAddress('192.0.2.1'),
    routeType: 'external',
    ...over,
    attrs,
  };
}

export const SETS = {
  'prefix-sets': [
    {
      name: 'customer',
      prefixes: [{ prefix: '10.0.0.0/8', 'masklength-range': '16..24' }, { prefix: '2001:db8::/32' }],
    },
  ],
  'neighbor-sets': [{ name: 'pes', addresses: ['192.0.2.1', '2001:db8::1', '198.51.100.0/24'] }],
  'bgp-defined-sets': {
    'community-sets': [
      { name: 'c-lit', members: ['65000:100'] },
      { name: 'c-both', members: ['65000:100', 'no-export'] },
      { name: 'c-re', members: ['^65000:.*$'] },
      { name: 'c-wk-re', members: ['^65535:65281$'] },
      { name: 'c-other', members: ['65000:999'] },
      { name: 'c-mixed', members: ['65000:100', '^65000:9..$'] },
    ],
    'ext-community-sets': [
      { name: 'rts', members: ['rt:65000:1'] },
      { name: 'rt-re', members: ['^rt:65000:'] },
      { name: 'rt-ip', members: ['rt:192.0.2.1:7'] },
    ],
    'large-community-sets': [
      { name: 'l1', members: ['65000:1:2'] },
      { name: 'l-re', members: ['^65000:1:.*'] },
    ],
    'as-path-sets': [
      { name: 'from-65001', members: ['^65001_'] },
      { name: 'to-65002', members: ['_65002$'] },
      { name: 'via-65003', members: ['_65003_'] },
      { name: 'both', members: ['^65001_', '_65002$'] },
      { name: 'empty', members: ['^$'] },
    ],
  },
};

/** A book whose policy `p` has one statement with these conditions and actions. */
export function one(conditions: unknown, actions: unknown = { 'policy-result': 'accept-route' }): PolicyBook {
  return compilePolicies({
    'defined-sets': SETS,
    'policy-definitions': [{ name: 'p', statements: [{ name: 's', conditions, actions }] }],
  });
}

/** Does the one-statement policy accept the route (default reject)? */
export function matches(conditions: unknown, r: PolicyRoute = route()): boolean {
  return one(conditions).evaluate(['p'], r, false).accept;
}

/** Applies the actions (accepting) and returns the result. */
export function apply(bgpActions: unknown, r: PolicyRoute = route()) {
  return one(undefined, { 'bgp-actions': bgpActions, 'policy-result': 'accept-route' }).evaluate(
    ['p'],
    r,
    false,
  );
}
