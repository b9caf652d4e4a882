// Zone firewall (src/dataplane/acl/zones.ts) and its flow table (flow-table.ts): a three-tier
// web / app / db tenant on a virtual clock, IPv4 and IPv6, return traffic, TCP state timeouts,
// a full table, and the flow table against a Map-based model (fast-check, fixed seed).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parsePrefix } from '../../src/lib/ip.ts';
import { FlowTable, KEY_WORDS } from '../../src/dataplane/acl/flow-table.ts';
import { DataplanePolicyError } from '../../src/dataplane/acl/match.ts';
import { buildProbe, type ProbeDesc } from '../../src/dataplane/acl/probe.ts';
import {
  VERDICT,
  ZoneFirewall,
  verdictAllows,
  verdictName,
  type ZoneFirewallOptions,
} from '../../src/dataplane/acl/zones.ts';
import type { PacketMatch, ZonePolicy, ZoneRule } from '../../src/dataplane/types.ts';

const SEED = 20250114;

const WEB = 0;
const APP = 1;
const DB = 2;
const NONE = -1;
const CTX = 7;

const S = 1000; // ms per second
const TIMEOUTS = { tcpEstablished: 3600, tcpTransitory: 30, udp: 60, icmp: 10 };

const tcpTo = (port: number, extra: PacketMatch = {}): PacketMatch => ({
  protocol: 'tcp',
  destinationPorts: [{ from: port, to: port }],
  ...extra,
});

const RULES: ZoneRule[] = [
  { name: 'web-app', from: 'web', to: 'app', action: 'allow', match: tcpTo(8080) },
  { name: 'web-app-ping', from: 'web', to: 'app', action: 'allow', match: { protocol: 'icmp' } },
  { name: 'web-app-ping6', from: 'web', to: 'app', action: 'allow', match: { protocol: 'icmpv6' } },
  { name: 'app-db', from: 'app', to: 'db', action: 'allow', match: tcpTo(5432) },
  { name: 'app-db-deny', from: 'app', to: 'db', action: 'deny', match: {} },
  { name: 'any-web-https', from: '*', to: 'web', action: 'allow', match: tcpTo(443) },
  {
    name: 'web-db-dns6',
    from: 'web',
    to: 'db',
    action: 'allow',
    match: {
      protocol: 'udp',
      source: [parsePrefix('2001:db8:1::/48')],
      destinationPorts: [{ from: 53, to: 53 }],
    },
  },
];

function policy(over: Partial<ZonePolicy> = {}, flows: Partial<ZonePolicy['flows']> = {}): ZonePolicy {
  return {
    zones: ['web', 'app', 'db'],
    defaultAction: 'deny',
    intraZone: 'allow',
    rules: RULES,
    flows: { max: 1000, ...TIMEOUTS, ...flows },
    self: { icmp: true, bgpPeers: [], bfdPeers: [], allow: [] },
    ...over,
  };
}

function firewall(
  over: Partial<ZonePolicy> = {},
  flows: Partial<ZonePolicy['flows']> = {},
  opts: ZoneFirewallOptions = {},
): ZoneFirewall {
  return new ZoneFirewall(policy(over, flows), undefined, { hashSeed: SEED, ...opts });
}

/** Checks one described packet; returns the verdict's name for readable failures. */
function check(fw: ZoneFirewall, d: ProbeDesc, from: number, to: number, now: number, ctx = CTX): string {
  return verdictName(fw.check(buildProbe(d), ctx, from, to, now));
}

const web = '10.0.1.10';
const app = '10.0.2.20';
const db = '10.0.3.30';
const web6 = '2001:db8:1::10';
const app6 = '2001:db8:2::20';
const db6 = '2001:db8:3::30';

const syn = (src: string, dst: string, sport: number, dport: number): ProbeDesc => ({
  src,
  dst,
  proto: 'tcp',
  sport,
  dport,
  flags: 'S',
});
const tcp = (src: string, dst: string, sport: number, dport: number, flags: string): ProbeDesc => ({
  src,
  dst,
  proto: 'tcp',
  sport,
  dport,
  flags,
});
const udp = (src: string, dst: string, sport: number, dport: number): ProbeDesc => ({
  src,
  dst,
  proto: 'udp',
  sport,
  dport,
});

describe('verdict codes', () => {
  it('have names and split into allow / deny at DENY_RULE', () => {
    expect(verdictName(VERDICT.ALLOW_ESTABLISHED)).toBe('ALLOW_ESTABLISHED');
    expect(verdictName(VERDICT.DENY_FLOW_TABLE_FULL)).toBe('DENY_FLOW_TABLE_FULL');
    expect(verdictName(99)).toBe('VERDICT_99');
    for (const [name, v] of Object.entries(VERDICT)) expect(verdictAllows(v)).toBe(name.startsWith('ALLOW_'));
    expect(ZoneFirewall.DENY_RULE).toBe(VERDICT.DENY_RULE);
  });
});

describe('three-tier zone policy (IPv4)', () => {
  it('web -> app on tcp/8080 only, with return traffic', () => {
    const fw = firewall();
    expect(check(fw, syn(web, app, 40000, 8080), WEB, APP, 0)).toBe('ALLOW_NEW');
    expect(fw.lastRule).toBe(0);
    expect(check(fw, tcp(app, web, 8080, 40000, 'SA'), APP, WEB, 1)).toBe('ALLOW_ESTABLISHED');
    expect(check(fw, tcp(web, app, 40000, 8080, 'A'), WEB, APP, 2)).toBe('ALLOW_ESTABLISHED');
    expect(check(fw, tcp(app, web, 8080, 40000, 'PA'), APP, WEB, 3)).toBe('ALLOW_ESTABLISHED');
    expect(check(fw, syn(web, app, 40001, 22), WEB, APP, 4)).toBe('DENY_DEFAULT');
    expect(fw.lastRule).toBe(-1);
    expect(check(fw, udp(web, app, 40001, 8080), WEB, APP, 5)).toBe('DENY_DEFAULT');
  });

  it('app -> db denied by rule except tcp/5432', () => {
    const fw = firewall();
    expect(check(fw, syn(app, db, 50000, 5432), APP, DB, 0)).toBe('ALLOW_NEW');
    expect(check(fw, tcp(db, app, 5432, 50000, 'SA'), DB, APP, 1)).toBe('ALLOW_ESTABLISHED');
    expect(check(fw, syn(app, db, 50001, 3306), APP, DB, 2)).toBe('DENY_RULE');
    expect(fw.lastRule).toBe(4);
    expect(check(fw, udp(app, db, 50001, 5432), APP, DB, 3)).toBe('DENY_RULE');
    expect(fw.ruleCounters().find((r) => r.rule === 'app-db-deny')?.hits).toBe(2);
  });

  it('the reverse new connection db -> app is denied', () => {
    const fw = firewall();
    expect(check(fw, syn(app, db, 50000, 5432), APP, DB, 0)).toBe('ALLOW_NEW');
    expect(check(fw, syn(db, app, 5432, 50000), DB, APP, 1)).toBe('ALLOW_ESTABLISHED'); // same tuple: part of the flow
    expect(check(fw, syn(db, app, 40000, 5432), DB, APP, 2)).toBe('DENY_DEFAULT');
    expect(check(fw, syn(db, app, 40000, 8080), DB, APP, 3)).toBe('DENY_DEFAULT');
  });

  it('ICMP echo reply passes as return traffic, only for the recorded identifier', () => {
    const fw = firewall();
    const echo = (src: string, dst: string, type: number, id: number): ProbeDesc => ({
      src,
      dst,
      proto: 'icmp',
      icmpType: type,
      icmpId: id,
    });
    expect(check(fw, echo(web, app, 8, 77), WEB, APP, 0)).toBe('ALLOW_NEW');
    expect(check(fw, echo(app, web, 0, 77), APP, WEB, 1)).toBe('ALLOW_ESTABLISHED');
    expect(check(fw, echo(app, web, 0, 78), APP, WEB, 2)).toBe('DENY_DEFAULT');
    expect(check(fw, echo(app, web, 8, 77), APP, WEB, 3)).toBe('ALLOW_ESTABLISHED'); // same key: request type normalised
    expect(check(fw, echo(app, db, 8, 77), APP, DB, 4)).toBe('DENY_RULE');
    // The echo flow expires after the ICMP timeout.
    expect(check(fw, echo(app, web, 0, 77), APP, WEB, 4 + TIMEOUTS.icmp * S)).toBe('DENY_DEFAULT');
  });

  it('ICMP errors quoting a recorded flow pass as related', () => {
    const fw = firewall();
    const first = syn(web, app, 40000, 8080);
    expect(check(fw, first, WEB, APP, 0)).toBe('ALLOW_NEW');
    const unreachable = (quote: ProbeDesc, type = 3): ProbeDesc => ({
      src: app,
      dst: web,
      proto: 'icmp',
      icmpType: type,
      icmpCode: 4,
      quote,
    });
    expect(check(fw, unreachable(first), APP, WEB, 1)).toBe('ALLOW_RELATED');
    expect(check(fw, unreachable(first, 11), APP, WEB, 1)).toBe('ALLOW_RELATED');
    expect(check(fw, unreachable(syn(web, app, 40009, 8080)), APP, WEB, 2)).toBe('DENY_DEFAULT');
    expect(check(fw, unreachable(first, 5), APP, WEB, 3)).toBe('DENY_DEFAULT'); // redirect: not an error we relate
    // A truncated quote is not related (and does not throw).
    const trunc = buildProbe(unreachable(first));
    trunc.length = 20 + 8 + 10;
    expect(verdictName(fw.check(trunc, CTX, APP, WEB, 4))).toBe('DENY_DEFAULT');
  });

  it('intra-zone traffic gets the intra-zone verdict, untracked', () => {
    const fw = firewall();
    expect(check(fw, syn('10.0.1.1', '10.0.1.2', 1, 22), WEB, WEB, 0)).toBe('ALLOW_INTRA_ZONE');
    expect(check(fw, udp('10.9.0.1', '10.9.0.2', 1, 2), NONE, NONE, 0)).toBe('ALLOW_INTRA_ZONE');
    expect(fw.stats().flows).toBe(0);
    const closed = firewall({ intraZone: 'deny' });
    expect(check(closed, syn('10.0.1.1', '10.0.1.2', 1, 22), WEB, WEB, 0)).toBe('DENY_INTRA_ZONE');
    expect(check(closed, syn('10.0.1.1', '10.0.1.2', 1, 22), 17, NONE, 0)).toBe('DENY_INTRA_ZONE'); // out of range = no zone
  });

  it('`*` matches any zone but not "no zone"', () => {
    const fw = firewall();
    expect(check(fw, syn(app, web, 1000, 443), APP, WEB, 0)).toBe('ALLOW_NEW');
    expect(check(fw, syn(db, web, 1000, 443), DB, WEB, 0)).toBe('ALLOW_NEW');
    expect(check(fw, syn('192.0.2.1', web, 1000, 443), NONE, WEB, 0)).toBe('DENY_DEFAULT');
    expect(check(fw, syn(web, db, 1000, 443), WEB, DB, 0)).toBe('DENY_DEFAULT');
  });

  it('default allow still records flows, so return traffic passes deny rules', () => {
    const rules: ZoneRule[] = [{ from: 'db', to: 'web', action: 'deny', match: {} }];
    const fw = firewall({ defaultAction: 'allow', rules });
    expect(check(fw, udp(web, db, 5000, 53), WEB, DB, 0)).toBe('ALLOW_NEW');
    expect(check(fw, udp(db, web, 53, 5000), DB, WEB, 1)).toBe('ALLOW_ESTABLISHED');
    expect(check(fw, udp(db, web, 53, 5001), DB, WEB, 2)).toBe('DENY_RULE');
    expect(check(fw, udp('192.0.2.1', web, 53, 5001), NONE, WEB, 3)).toBe('ALLOW_NEW');
  });

  it('flows are per routing context', () => {
    const fw = firewall();
    expect(check(fw, syn(web, app, 40000, 8080), WEB, APP, 0, 1)).toBe('ALLOW_NEW');
    expect(check(fw, tcp(app, web, 8080, 40000, 'SA'), APP, WEB, 1, 1)).toBe('ALLOW_ESTABLISHED');
    expect(check(fw, tcp(app, web, 8080, 40000, 'SA'), APP, WEB, 1, 2)).toBe('DENY_INVALID');
  });

  it('other protocols are tracked by addresses, fragments of TCP/UDP are not', () => {
    const fw = firewall({
      defaultAction: 'deny',
      rules: [{ from: 'web', to: 'app', action: 'allow', match: { protocol: 47 } }],
    });
    expect(check(fw, { src: web, dst: app, proto: 47 }, WEB, APP, 0)).toBe('ALLOW_NEW');
    expect(check(fw, { src: app, dst: web, proto: 47 }, APP, WEB, 1)).toBe('ALLOW_ESTABLISHED');
    expect(check(fw, { src: app, dst: web, proto: 47, fragment: true }, APP, WEB, 1)).toBe(
      'ALLOW_ESTABLISHED',
    );
    const fw2 = firewall();
    expect(check(fw2, { ...udp(web, app, 1, 8080), fragment: true }, WEB, APP, 0)).toBe('DENY_DEFAULT');
    const open = firewall({
      rules: [{ from: 'web', to: 'app', action: 'allow', match: { protocol: 'udp' } }],
    });
    expect(check(open, { ...udp(web, app, 1, 8080), fragment: true }, WEB, APP, 0)).toBe('ALLOW_UNTRACKED');
  });
});

describe('IPv6 rules', () => {
  it('web -> app tcp/8080 and its return traffic', () => {
    const fw = firewall();
    expect(check(fw, syn(web6, app6, 40000, 8080), WEB, APP, 0)).toBe('ALLOW_NEW');
    expect(check(fw, tcp(app6, web6, 8080, 40000, 'SA'), APP, WEB, 1)).toBe('ALLOW_ESTABLISHED');
    expect(check(fw, tcp(web6, app6, 40000, 8080, 'A'), WEB, APP, 2)).toBe('ALLOW_ESTABLISHED');
    expect(check(fw, syn(app6, web6, 40000, 8080), APP, WEB, 3)).toBe('DENY_DEFAULT'); // a new connection back
  });

  it('a source-prefix rule matches only its IPv6 sources', () => {
    const fw = firewall();
    expect(check(fw, udp(web6, db6, 5353, 53), WEB, DB, 0)).toBe('ALLOW_NEW');
    expect(check(fw, udp(db6, web6, 53, 5353), DB, WEB, 1)).toBe('ALLOW_ESTABLISHED');
    expect(check(fw, udp('2001:db8:9::1', db6, 5353, 53), WEB, DB, 0)).toBe('DENY_DEFAULT');
    expect(check(fw, udp(web, db, 5353, 53), WEB, DB, 0)).toBe('DENY_DEFAULT');
  });

  it('ICMPv6 echo and packet-too-big related to a flow', () => {
    const fw = firewall();
    expect(check(fw, { src: web6, dst: app6, proto: 'icmpv6', icmpType: 128, icmpId: 5 }, WEB, APP, 0)).toBe(
      'ALLOW_NEW',
    );
    expect(check(fw, { src: app6, dst: web6, proto: 'icmpv6', icmpType: 129, icmpId: 5 }, APP, WEB, 1)).toBe(
      'ALLOW_ESTABLISHED',
    );
    const first = syn(web6, app6, 40000, 8080);
    expect(check(fw, first, WEB, APP, 2)).toBe('ALLOW_NEW');
    const tooBig = { src: '2001:db8:2::1', dst: web6, proto: 'icmpv6', icmpType: 2, quote: first } as const;
    expect(check(fw, tooBig, APP, WEB, 3)).toBe('ALLOW_RELATED');
  });
});

describe('flow timeouts and TCP state (virtual clock)', () => {
  const up = (fw: ZoneFirewall, t: number): void => {
    expect(check(fw, syn(web, app, 40000, 8080), WEB, APP, t)).toBe('ALLOW_NEW');
    expect(check(fw, tcp(app, web, 8080, 40000, 'SA'), APP, WEB, t + 1)).toBe('ALLOW_ESTABLISHED');
  };

  it('a UDP flow lives `udp` seconds after its last packet', () => {
    const fw = firewall();
    expect(check(fw, udp(app, db, 1000, 5432), APP, DB, 0)).toBe('DENY_RULE');
    expect(check(fw, udp(web6, db6, 1000, 53), WEB, DB, 0)).toBe('ALLOW_NEW');
    expect(check(fw, udp(db6, web6, 53, 1000), DB, WEB, 60 * S - 1)).toBe('ALLOW_ESTABLISHED'); // refreshes
    expect(check(fw, udp(db6, web6, 53, 1000), DB, WEB, 120 * S - 2)).toBe('ALLOW_ESTABLISHED');
    expect(check(fw, udp(db6, web6, 53, 1000), DB, WEB, 180 * S - 2)).toBe('DENY_DEFAULT');
    expect(fw.stats().expiries).toBe(1);
  });

  it('established TCP keeps the long timeout; SYN-only expires after the transitory one', () => {
    const fw = firewall();
    up(fw, 0);
    expect(check(fw, tcp(web, app, 40000, 8080, 'A'), WEB, APP, 1 + 3000 * S)).toBe('ALLOW_ESTABLISHED');
    expect(check(fw, syn(web, app, 40001, 8080), WEB, APP, 0)).toBe('ALLOW_NEW');
    expect(check(fw, tcp(app, web, 8080, 40001, 'SA'), APP, WEB, 30 * S)).toBe('DENY_INVALID');
  });

  it('FIN shortens the timeout to the transitory one', () => {
    const fw = firewall();
    up(fw, 0);
    expect(check(fw, tcp(web, app, 40000, 8080, 'FA'), WEB, APP, 10)).toBe('ALLOW_ESTABLISHED');
    expect(check(fw, tcp(app, web, 8080, 40000, 'A'), APP, WEB, 10 + 30 * S - 1)).toBe('ALLOW_ESTABLISHED');
    expect(check(fw, tcp(app, web, 8080, 40000, 'A'), APP, WEB, 10 + 60 * S - 1)).toBe('DENY_INVALID');
  });

  it('RST shortens the timeout to the transitory one', () => {
    const fw = firewall();
    up(fw, 0);
    expect(check(fw, tcp(app, web, 8080, 40000, 'R'), APP, WEB, 10)).toBe('ALLOW_ESTABLISHED');
    expect(check(fw, tcp(web, app, 40000, 8080, 'A'), WEB, APP, 10 + 30 * S)).toBe('DENY_INVALID');
  });

  it('a plain SYN on a closing flow is a new connection, judged by the rules', () => {
    const fw = firewall();
    up(fw, 0);
    expect(check(fw, tcp(web, app, 40000, 8080, 'R'), WEB, APP, 5)).toBe('ALLOW_ESTABLISHED');
    expect(check(fw, syn(app, web, 8080, 40000), APP, WEB, 6)).toBe('DENY_DEFAULT'); // the reverse is not allowed
    expect(check(fw, syn(web, app, 40000, 8080), WEB, APP, 7)).toBe('ALLOW_NEW');
  });

  it('strict TCP refuses to pick up a connection; loose TCP picks it up', () => {
    expect(check(firewall(), tcp(web, app, 40000, 8080, 'A'), WEB, APP, 0)).toBe('DENY_INVALID');
    expect(check(firewall(), tcp(web, app, 40000, 8080, 'SF'), WEB, APP, 0)).toBe('DENY_INVALID');
    const loose = firewall({}, {}, { strictTcp: false });
    expect(check(loose, tcp(web, app, 40000, 8080, 'A'), WEB, APP, 0)).toBe('ALLOW_NEW');
    expect(check(loose, tcp(app, web, 8080, 40000, 'A'), APP, WEB, 1)).toBe('ALLOW_ESTABLISHED');
    expect(check(loose, tcp(web, app, 40000, 22, 'A'), WEB, APP, 0)).toBe('DENY_DEFAULT');
    // picked up established: the long timeout applies
    expect(check(loose, tcp(app, web, 8080, 40000, 'A'), APP, WEB, 1 + 1000 * S)).toBe('ALLOW_ESTABLISHED');
  });

  it('sweep reclaims expired flows within its budget', () => {
    const fw = firewall();
    for (let i = 0; i < 100; i++)
      expect(check(fw, udp(web6, db6, 1000 + i, 53), WEB, DB, i)).toBe('ALLOW_NEW');
    expect(fw.stats().flows).toBe(100);
    expect(fw.sweep(60 * S + 49, 1 << 20)).toBe(50);
    expect(fw.stats()).toMatchObject({ flows: 50, inserts: 100, expiries: 50 });
    let removed = 0;
    for (let i = 0; i < 2048; i += 16) removed += fw.sweep(1e9, 16);
    expect(removed).toBe(50);
    expect(fw.stats().flows).toBe(0);
  });
});

describe('flow table full', () => {
  it('refuses new flows beyond `max`, counts them, and recovers when flows expire', () => {
    const fw = firewall({}, { max: 3 });
    for (let i = 0; i < 3; i++)
      expect(check(fw, syn(web, app, 40000 + i, 8080), WEB, APP, 0)).toBe('ALLOW_NEW');
    expect(check(fw, syn(web, app, 40003, 8080), WEB, APP, 1)).toBe('DENY_FLOW_TABLE_FULL');
    expect(check(fw, syn(web, app, 40001, 8080), WEB, APP, 1)).toBe('ALLOW_ESTABLISHED'); // existing flows still pass
    expect(check(fw, syn(web, app, 40004, 22), WEB, APP, 1)).toBe('DENY_DEFAULT'); // rules first
    expect(fw.stats()).toMatchObject({ flows: 3, maxFlows: 3, tableFull: 1 });
    expect(fw.stats().verdicts.DENY_FLOW_TABLE_FULL).toBe(1);
    // SYN-only flows expire after the transitory timeout; the insert reclaims them.
    expect(check(fw, syn(web, app, 40003, 8080), WEB, APP, 30 * S + 1)).toBe('ALLOW_NEW');
    expect(fw.stats().flows).toBeLessThanOrEqual(3);
  });

  it('adoptFlows carries live flows into a reconfigured firewall', () => {
    const old = firewall();
    expect(check(old, syn(web, app, 40000, 8080), WEB, APP, 0)).toBe('ALLOW_NEW');
    expect(check(old, udp(web6, db6, 1, 53), WEB, DB, 0)).toBe('ALLOW_NEW');
    const next = firewall({ rules: [] });
    expect(next.adoptFlows(old, 10)).toBe(2);
    expect(check(next, tcp(app, web, 8080, 40000, 'SA'), APP, WEB, 11)).toBe('ALLOW_ESTABLISHED');
    expect(check(next, udp(db6, web6, 53, 1), DB, WEB, 12)).toBe('ALLOW_ESTABLISHED');
    expect(check(next, syn(web, app, 40001, 8080), WEB, APP, 13)).toBe('DENY_DEFAULT');
  });
});

describe('policy errors', () => {
  it('unknown zones, bad timeouts and bad matches are DataplanePolicyError', () => {
    const bad = (over: Partial<ZonePolicy>, flows: Partial<ZonePolicy['flows']> = {}): unknown => {
      try {
        firewall(over, flows);
      } catch (e) {
        return e;
      }
      return undefined;
    };
    const e1 = bad({ rules: [{ from: 'web', to: 'dmz', action: 'allow', match: {} }] });
    expect(e1).toBeInstanceOf(DataplanePolicyError);
    expect((e1 as DataplanePolicyError).path).toBe('zones.rules[0].to');
    expect(bad({}, { udp: 0 })).toBeInstanceOf(DataplanePolicyError);
    expect(bad({}, { max: 0 })).toBeInstanceOf(DataplanePolicyError);
    const e2 = bad({
      rules: [{ from: '*', to: '*', action: 'deny', match: { destinationPorts: [{ from: 9, to: 1 }] } }],
    });
    expect((e2 as DataplanePolicyError).path).toBe('zones.rules[0].match.destinationPorts[0]');
    expect(bad({ zones: ['a', 'a'] })).toBeInstanceOf(DataplanePolicyError);
  });
});

describe(`FlowTable against a Map model (seed ${SEED})`, () => {
  type Op =
    | { readonly op: 'insert' | 'touch'; readonly k: number; readonly ttl: number }
    | { readonly op: 'find' | 'remove'; readonly k: number }
    | { readonly op: 'advance'; readonly dt: number }
    | { readonly op: 'sweep'; readonly budget: number };

  const KEYS = 60;
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record({
        op: fc.constant('insert' as const),
        k: fc.nat(KEYS - 1),
        ttl: fc.integer({ min: 1, max: 100 }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant('touch' as const),
        k: fc.nat(KEYS - 1),
        ttl: fc.integer({ min: 1, max: 100 }),
      }),
    },
    { weight: 4, arbitrary: fc.record({ op: fc.constant('find' as const), k: fc.nat(KEYS - 1) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('remove' as const), k: fc.nat(KEYS - 1) }) },
    {
      weight: 3,
      arbitrary: fc.record({ op: fc.constant('advance' as const), dt: fc.integer({ min: 0, max: 30 }) }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ op: fc.constant('sweep' as const), budget: fc.integer({ min: 1, max: 40 }) }),
    },
  );

  /** Spreads key `k` over all the words (IPv6-like), so comparisons look at every word. */
  function setKey(t: FlowTable, k: number): void {
    for (let w = 0; w < KEY_WORDS; w++) t.key[w] = Math.imul(k + 1, 0x9e3779b1 + w * 2) >>> (w & 3);
  }

  it('finds exactly the live entries, refuses exactly when `max` are live, never breaks probing', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.array(opArb, { minLength: 50, maxLength: 400, size: 'max' }),
        (max, ops) => {
          // Capacity <= 64 slots: the insert's bounded reclaim (64 slots) covers the whole table,
          // so a refusal means `max` live entries exactly.
          const t = new FlowTable(max, SEED);
          const model = new Map<number, number>();
          let now = 0;
          const live = (): number => [...model.values()].filter((e) => e > now).length;
          for (const o of ops) {
            if (o.op === 'advance') now += o.dt;
            else if (o.op === 'sweep') t.sweep(now, o.budget);
            else {
              setKey(t, o.k);
              const slot = t.find(now);
              const exp = model.get(o.k);
              const isLive = exp !== undefined && exp > now;
              expect(slot >= 0).toBe(isLive);
              if (slot >= 0) expect(t.expiry[slot]).toBe(exp);
              if (o.op === 'insert' && !isLive) {
                const before = live();
                const s = t.insert(now, now + o.ttl, 1 + (o.k % 200));
                expect(s < 0).toBe(before >= max);
                if (s >= 0) model.set(o.k, now + o.ttl);
              } else if (o.op === 'touch' && slot >= 0) {
                t.expiry[slot] = now + o.ttl;
                model.set(o.k, now + o.ttl);
              } else if (o.op === 'remove' && slot >= 0) {
                t.remove(slot);
                model.delete(o.k);
              }
            }
            expect(t.verify()).toBeUndefined();
            expect(t.count).toBeLessThanOrEqual(max);
            expect(t.count).toBeGreaterThanOrEqual(live());
          }
          t.sweep(now, t.capacity);
          expect(t.count).toBe(live());
          expect(t.verify()).toBeUndefined();
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('keeps every live entry reachable through long churn in a big table', () => {
    const t = new FlowTable(5000, SEED);
    const model = new Map<number, number>();
    let x = SEED;
    const rnd = (): number => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return x >>> 8;
    };
    const end = 20000;
    for (let now = 0; now < end; now++) {
      const k = rnd() % 20000;
      setKey(t, k);
      const ttl = 1 + (rnd() % 3000);
      if (t.find(now) < 0 && t.insert(now, now + ttl, 1) >= 0) model.set(k, now + ttl);
      if (now % 100 === 0) t.sweep(now, 256);
    }
    expect(t.verify()).toBeUndefined();
    for (const [k, exp] of model) {
      setKey(t, k);
      expect(t.find(end) >= 0).toBe(exp > end);
    }
    expect(t.refused).toBe(0);
    expect(t.inserts).toBeGreaterThan(15000);
  });
});
