// Path attribute codecs: each attribute three ways, AS4 bridging (RFC 6793), MP_REACH/MP_UNREACH
// (RFC 4760, RFC 2545, RFC 4364), text forms, and random round trips. RFC 7606 rules: wire-rfc7606.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { hex, toHex } from '../../src/lib/bytes.ts';
import { parseAddress } from '../../src/lib/ip.ts';
import { DEFAULT_CODEC_CONTEXT, type CodecContext, type PathAttributes } from '../../src/bgp/wire/types.ts';
import { attributesLength, decodeAttributes, encodeAttributes } from '../../src/bgp/wire/attributes.ts';
import {
  formatAsPath,
  formatCommunity,
  formatExtCommunity,
  formatLargeCommunity,
  parseAsPath,
  parseCommunity,
  parseExtCommunity,
  parseLargeCommunity,
} from '../../src/bgp/wire/communities.ts';
import { reconcileAs4Path } from '../../src/bgp/wire/as-path.ts';
import { AS_TRANS } from '../../src/bgp/wire/constants.ts';

const SEED = 4271;
const ctx = (o: Partial<CodecContext> = {}): CodecContext => ({ ...DEFAULT_CODEC_CONTEXT, ...o });
const EBGP = ctx();
const IBGP = ctx({ ebgp: false });
const ip = (s: string): Uint8Array => parseAddress(s);

describe('a full eBGP attribute set (RFC 4271 §4.3, §5)', () => {
  const bytes = hex`
    40 01 01 00                                        # ORIGIN IGP
    40 02 0e 02 03 00 00 fd e9 00 00 fd ea 00 00 fd eb # AS_PATH AS_SEQUENCE 65001 65002 65003
    40 03 04 c0 00 02 01                               # NEXT_HOP 192.0.2.1
    80 04 04 00 00 00 64                               # MULTI_EXIT_DISC 100
    40 06 00                                           # ATOMIC_AGGREGATE
    c0 07 08 00 00 fd e9 c0 00 02 01                   # AGGREGATOR 65001 192.0.2.1
    c0 08 08 fd e8 00 64 ff ff ff 01                   # COMMUNITIES 65000:100 no-export
    c0 10 10                                           # EXTENDED_COMMUNITIES, 16 bytes (RFC 4360)
       00 02 fd e8 00 00 00 64                         #   rt:65000:100
       01 03 c0 00 02 01 00 07                         #   ro:192.0.2.1:7
    c0 20 0c 00 00 fd e8 00 00 00 01 00 00 00 02       # LARGE_COMMUNITY 65000:1:2 (RFC 8092)
    c0 23 04 00 00 fd e8                               # OTC 65000 (RFC 9234)
    e0 63 02 ab cd                                     # unknown 99, optional transitive, Partial
  `;
  const attrs: PathAttributes = {
    origin: 0,
    asPath: [{ type: 2, asns: [65001, 65002, 65003] }],
    nextHop: ip('192.0.2.1'),
    med: 100,
    atomicAggregate: true,
    aggregator: { asn: 65001, address: ip('192.0.2.1') },
    communities: [parseCommunity('65000:100'), parseCommunity('no-export')],
    extCommunities: [parseExtCommunity('rt:65000:100'), parseExtCommunity('ro:192.0.2.1:7')],
    largeCommunities: [{ global: 65000, local1: 1, local2: 2 }],
    otc: 65000,
    unknown: [{ flags: 0xe0, code: 99, value: hex`ab cd` }],
  };
  it('decodes to PathAttributes', () => {
    const d = decodeAttributes(bytes, EBGP, true);
    expect(d.errors).toEqual([]);
    expect(d.action).toBeUndefined();
    expect(d.attrs).toEqual(attrs);
  });
  it('encodes to exact bytes in type-code order', () => {
    expect(toHex(encodeAttributes(attrs, EBGP))).toBe(toHex(bytes));
    expect(attributesLength(attrs, EBGP)).toBe(bytes.length);
  });
  it('round trips byte-exact', () => {
    expect(encodeAttributes(decodeAttributes(bytes, EBGP, true).attrs, EBGP)).toEqual(bytes);
  });
  it('keeps byte fields as views into the input (no copies)', () => {
    const d = decodeAttributes(bytes, EBGP, true);
    expect(d.attrs.nextHop!.buffer).toBe(bytes.buffer);
    expect(d.attrs.extCommunities![0]!.buffer).toBe(bytes.buffer);
  });
});

describe('iBGP-only attributes (RFC 4271 §5.1.5, RFC 4456 §8)', () => {
  const bytes = hex`
    40 01 01 02                # ORIGIN INCOMPLETE
    40 02 00                   # AS_PATH empty (locally originated)
    40 03 04 0a 00 00 01       # NEXT_HOP 10.0.0.1
    40 05 04 00 00 00 c8       # LOCAL_PREF 200
    80 09 04 0a 00 00 02       # ORIGINATOR_ID 10.0.0.2
    80 0a 08 0a 00 00 03 0a 00 00 04   # CLUSTER_LIST 10.0.0.3 10.0.0.4
  `;
  const attrs: PathAttributes = {
    origin: 2,
    asPath: [],
    nextHop: ip('10.0.0.1'),
    localPref: 200,
    originatorId: 0x0a000002,
    clusterList: [0x0a000003, 0x0a000004],
  };
  it('decodes', () => expect(decodeAttributes(bytes, IBGP, true)).toEqual({ attrs, errors: [] }));
  it('encodes', () => expect(toHex(encodeAttributes(attrs, IBGP))).toBe(toHex(bytes)));
  it('round trips', () =>
    expect(encodeAttributes(decodeAttributes(bytes, IBGP, true).attrs, IBGP)).toEqual(bytes));
});

describe('2-byte AS peers and AS4 reconciliation (RFC 6793)', () => {
  const OLD = ctx({ as4: false });
  it('§4.2.3: merges AS4_PATH and AS4_AGGREGATOR when AGGREGATOR carries AS_TRANS', () => {
    const bytes = hex`
      40 01 01 00                                  # ORIGIN IGP
      40 02 08 02 03 fd e9 5b a0 fd eb             # AS_PATH (2-byte) 65001 AS_TRANS 65003
      40 03 04 c0 00 02 01                         # NEXT_HOP
      c0 07 06 5b a0 c0 00 02 01                   # AGGREGATOR (2-byte) AS_TRANS 192.0.2.1
      c0 11 0a 02 02 fa 56 ea 00 00 00 fd eb       # AS4_PATH 4200000000 65003 (shorter: a 2-byte hop prepended since)
      c0 12 08 fa 56 ea 00 c0 00 02 01             # AS4_AGGREGATOR 4200000000 192.0.2.1
    `;
    const d = decodeAttributes(bytes, OLD, true);
    expect(d.errors).toEqual([]);
    expect(d.attrs.asPath).toEqual([{ type: 2, asns: [65001, 4200000000, 65003] }]);
    expect(d.attrs.aggregator).toEqual({ asn: 4200000000, address: ip('192.0.2.1') });
    expect(Object.keys(d.attrs)).not.toContain('as4Path');
  });
  it('§4.2.3: an AGGREGATOR other than AS_TRANS makes AS4_PATH and AS4_AGGREGATOR ignored', () => {
    const bytes = hex`
      40 02 06 02 02 fd e9 5b a0                   # AS_PATH 65001 AS_TRANS
      c0 07 06 fd e9 c0 00 02 01                   # AGGREGATOR 65001 (an OLD speaker aggregated)
      c0 11 06 02 01 fa 56 ea 00                   # AS4_PATH 4200000000
      c0 12 08 fa 56 ea 00 c0 00 02 01             # AS4_AGGREGATOR
    `;
    const d = decodeAttributes(bytes, OLD, false);
    expect(d.attrs.asPath).toEqual([{ type: 2, asns: [65001, AS_TRANS] }]);
    expect(d.attrs.aggregator!.asn).toBe(65001);
  });
  it('§4.2.3: an AS4_PATH longer than AS_PATH is ignored', () => {
    const bytes = hex`
      40 02 04 02 01 5b a0                         # AS_PATH AS_TRANS
      c0 11 0a 02 02 fa 56 ea 00 fa 56 ea 01       # AS4_PATH with two ASNs
    `;
    expect(decodeAttributes(bytes, OLD, false).attrs.asPath).toEqual([{ type: 2, asns: [AS_TRANS] }]);
  });
  it('§4.2.3: counts AS_SET as one and takes leading confederation segments', () => {
    const asPath = parseAsPath('(65100) 65001 65002 {65003,65004}');
    const as4Path = parseAsPath('4200000000 {65003,65004}');
    expect(formatAsPath(reconcileAs4Path(asPath, as4Path))).toBe('(65100) 65001 4200000000 {65003,65004}');
  });
  it('§4.2.2: encodes AS_TRANS plus AS4_PATH / AS4_AGGREGATOR toward an OLD speaker', () => {
    const attrs: PathAttributes = {
      origin: 0,
      asPath: [{ type: 2, asns: [65001, 4200000000, 65003] }],
      aggregator: { asn: 4200000000, address: ip('192.0.2.1') },
    };
    const bytes = hex`
      40 01 01 00                                        # ORIGIN IGP
      40 02 08 02 03 fd e9 5b a0 fd eb                   # AS_PATH 65001 AS_TRANS 65003
      c0 07 06 5b a0 c0 00 02 01                         # AGGREGATOR AS_TRANS
      c0 11 0e 02 03 00 00 fd e9 fa 56 ea 00 00 00 fd eb # AS4_PATH, the whole path
      c0 12 08 fa 56 ea 00 c0 00 02 01                   # AS4_AGGREGATOR
    `;
    expect(toHex(encodeAttributes(attrs, OLD))).toBe(toHex(bytes));
    expect(decodeAttributes(bytes, OLD, false).attrs).toEqual(attrs);
  });
  it('§4.2.2: no AS4_PATH when every ASN fits 16 bits; confederation segments stay out of it', () => {
    expect(toHex(encodeAttributes({ asPath: parseAsPath('65001 65002') }, OLD))).toBe(
      '400206' + '0202fde9fdea',
    );
    const attrs: PathAttributes = { asPath: parseAsPath('(65100) 4200000000') };
    const bytes = hex`
      40 02 08 03 01 fe 4c 02 01 5b a0             # AS_PATH (65100) AS_TRANS
      c0 11 06 02 01 fa 56 ea 00                   # AS4_PATH 4200000000, no confed segment
    `;
    const oldIbgp = ctx({ as4: false, ebgp: false });
    expect(toHex(encodeAttributes(attrs, oldIbgp))).toBe(toHex(bytes));
    expect(decodeAttributes(bytes, oldIbgp, false).attrs).toEqual(attrs);
  });
  it('2-byte AGGREGATOR without AS4 companions decodes as is', () => {
    const d = decodeAttributes(hex`c0 07 06 fd e9 c0 00 02 01`, OLD, false);
    expect(d.attrs.aggregator).toEqual({ asn: 65001, address: ip('192.0.2.1') });
  });
});

describe('MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760 §3, §4)', () => {
  it('IPv6 with a link-local next hop (RFC 2545 §3)', () => {
    const bytes = hex`
      80 0e 2e                                          # optional, MP_REACH_NLRI, 46 bytes
      00 02 01                                          # AFI 2, SAFI 1
      20                                                # next hop length 32
      20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01   # 2001:db8::1
      fe 80 00 00 00 00 00 00 00 00 00 00 00 00 00 01   # fe80::1
      00                                                # reserved
      40 20 01 0d b8 00 00 00 01                        # 2001:db8:0:1::/64
      40 01 01 00                                       # ORIGIN IGP
      40 02 00                                          # AS_PATH empty
    `;
    const d = decodeAttributes(bytes, IBGP, false);
    const reach = {
      afi: 2,
      safi: 1,
      nextHop: ip('2001:db8::1'),
      linkLocalNextHop: ip('fe80::1'),
      nlri: hex`40 20 01 0d b8 00 00 00 01`,
    };
    expect(d.mpReach).toEqual(reach);
    // iBGP: LOCAL_PREF missing -> treat-as-withdraw (RFC 7606 §3.d); the rest decodes.
    expect(d.action).toBe('treat-as-withdraw');
    expect(d.attrs).toEqual({ origin: 0, asPath: [] });
    expect(toHex(encodeAttributes(d.attrs, IBGP, { reach }))).toBe(toHex(bytes));
  });
  it('IPv4 VPN next hop carries a zero RD (RFC 4364 §4.3.2)', () => {
    const bytes = hex`
      80 0e 20                                          # MP_REACH_NLRI, 32 bytes
      00 01 80                                          # AFI 1, SAFI 128
      0c 00 00 00 00 00 00 00 00 c0 00 02 01            # next hop: RD 0 + 192.0.2.1
      00                                                # reserved
      70 00 06 41 00 00 fd e8 00 00 00 64 0a 01 01      # label 100, RD 65000:100, 10.1.1.0/24
    `;
    const d = decodeAttributes(bytes, EBGP, false);
    expect(d.mpReach).toEqual({ afi: 1, safi: 128, nextHop: ip('192.0.2.1'), nlri: bytes.subarray(20) });
    expect(toHex(encodeAttributes({}, EBGP, { reach: d.mpReach! }))).toBe(toHex(bytes));
  });
  it('IPv6 VPN next hop with link-local: 48 bytes (RFC 4659 §3.2.1.1)', () => {
    const reach = {
      afi: 2,
      safi: 128,
      nextHop: ip('2001:db8::1'),
      linkLocalNextHop: ip('fe80::1'),
      nlri: hex``,
    };
    const bytes = encodeAttributes({}, EBGP, { reach });
    expect(toHex(bytes.subarray(0, 7))).toBe('800e3500028030'); // 53 bytes, next hop length 48
    expect(decodeAttributes(bytes, EBGP, false).mpReach).toEqual(reach);
  });
  it('MP_UNREACH_NLRI', () => {
    const bytes = hex`80 0f 0c 00 02 01 40 20 01 0d b8 00 00 00 01  # AFI 2 SAFI 1, 2001:db8:0:1::/64`;
    const d = decodeAttributes(bytes, EBGP, false);
    expect(d).toEqual({ attrs: {}, mpUnreach: { afi: 2, safi: 1, nlri: bytes.subarray(6) }, errors: [] });
    expect(encodeAttributes({}, EBGP, { unreach: d.mpUnreach! })).toEqual(bytes);
  });
  it('puts MP_REACH_NLRI and MP_UNREACH_NLRI first (RFC 7606 §5.1)', () => {
    const out = encodeAttributes({ origin: 0 }, EBGP, {
      reach: { afi: 1, safi: 1, nextHop: ip('192.0.2.1'), nlri: hex`18 c0 00 02` },
      unreach: { afi: 1, safi: 1, nlri: hex`08 0a` },
    });
    expect(toHex(out)).toBe(
      '800e0d000101' + '04c0000201' + '00' + '18c00002' + '800f05000101080a' + '40010100',
    );
  });
  it('passes unknown families through with the raw next hop', () => {
    const d = decodeAttributes(hex`80 0e 07 00 19 46 01 aa 00 00  # AFI 25 SAFI 70 (EVPN)`, EBGP, false);
    expect(d.mpReach).toEqual({ afi: 25, safi: 70, nextHop: hex`aa`, nlri: hex`00` });
  });
});

describe('wire details', () => {
  it('uses Extended Length only above 255 bytes', () => {
    const communities = Array.from({ length: 64 }, (_, i) => i);
    const out = encodeAttributes({ communities }, EBGP);
    expect(toHex(out.subarray(0, 4))).toBe('d0080100'); // flags 0xc0 | 0x10, length 256
    expect(decodeAttributes(out, EBGP, false).attrs.communities).toEqual(communities);
    expect(toHex(encodeAttributes({ communities: communities.slice(0, 63) }, EBGP).subarray(0, 3))).toBe(
      'c008fc',
    );
  });
  it('accepts Extended Length on short values', () => {
    expect(decodeAttributes(hex`50 01 00 01 02`, EBGP, false).attrs.origin).toBe(2);
  });
  it('splits AS_PATH segments longer than 255 ASNs', () => {
    const asns = Array.from({ length: 300 }, (_, i) => 64512 + i);
    const out = encodeAttributes({ asPath: [{ type: 2, asns }] }, EBGP);
    expect(toHex(out.subarray(0, 6))).toBe('500204b402ff'); // 1204 bytes; first segment 255 ASNs
    expect(decodeAttributes(out, EBGP, false).attrs.asPath).toEqual([
      { type: 2, asns: asns.slice(0, 255) },
      { type: 2, asns: asns.slice(255) },
    ]);
  });
  it('never sends empty list attributes', () => {
    expect(
      encodeAttributes({ communities: [], largeCommunities: [], extCommunities: [], clusterList: [] }, EBGP),
    ).toEqual(new Uint8Array(0));
  });
  it('sets Partial on unknown optional transitive attributes only', () => {
    const out = encodeAttributes(
      {
        unknown: [
          { flags: 0xc0, code: 99, value: hex`01` },
          { flags: 0x80, code: 40, value: hex`02` },
          { flags: 0xd0, code: 200, value: hex`03` },
        ],
      },
      EBGP,
    );
    expect(toHex(out)).toBe('80280102' + 'e0630101' + 'e0c80103');
  });
  it('does not mutate its input', () => {
    const attrs: PathAttributes = Object.freeze({
      asPath: Object.freeze([Object.freeze({ type: 2 as const, asns: Object.freeze([4200000000]) })]),
      unknown: Object.freeze([
        { flags: 0xc0, code: 99, value: hex`01` },
        { flags: 0xc0, code: 50, value: hex`02` },
      ]),
    });
    const before = JSON.stringify(attrs);
    encodeAttributes(attrs, ctx({ as4: false }));
    expect(JSON.stringify(attrs)).toBe(before);
  });
});

describe('text forms', () => {
  it('communities (RFC 1997, RFC 8326, RFC 7999)', () => {
    const cases: [string, number][] = [
      ['65000:100', 0xfde80064],
      ['no-export', 0xffffff01],
      ['no-advertise', 0xffffff02],
      ['no-export-subconfed', 0xffffff03],
      ['graceful-shutdown', 0xffff0000],
      ['blackhole', 0xffff029a],
      ['0:0', 0],
    ];
    for (const [s, n] of cases) {
      expect(formatCommunity(n)).toBe(s);
      expect(parseCommunity(s)).toBe(n);
    }
    expect(parseCommunity('4294967295')).toBe(0xffffffff);
    expect(() => parseCommunity('65536:1')).toThrow(/community/);
  });
  it('large communities (RFC 8092)', () => {
    expect(formatLargeCommunity({ global: 4200000000, local1: 1, local2: 2 })).toBe('4200000000:1:2');
    expect(parseLargeCommunity('4200000000:1:2')).toEqual({ global: 4200000000, local1: 1, local2: 2 });
    expect(() => parseLargeCommunity('1:2')).toThrow(/large community/);
  });
  it('extended communities (RFC 4360, RFC 5668)', () => {
    const cases: [string, string][] = [
      ['rt:65000:100', '0002fde800000064'],
      ['ro:65000:100', '0003fde800000064'],
      ['rt:192.0.2.1:100', '0102c00002010064'],
      ['ro:192.0.2.1:100', '0103c00002010064'],
      ['rt:4200000000:100', '0202fa56ea000064'],
      ['rt:100L:5', '0202000000640005'],
      ['rt-nt:65000:100', '4002fde800000064'],
      ['ro-nt:192.0.2.1:7', '4103c00002010007'],
      ['rt-nt:4200000000:1', '4202fa56ea000001'],
      ['0x030c000000000008', '030c000000000008'], // encapsulation: not named
    ];
    for (const [s, h] of cases) {
      expect(toHex(parseExtCommunity(s))).toBe(h);
      expect(formatExtCommunity(hex(h))).toBe(s);
    }
    expect(() => parseExtCommunity('xx:1:2')).toThrow(/extended community/);
  });
  it('AS paths', () => {
    const s = '65001 65002 {65003,65004} (65005 65006) [65007,65008]';
    const segs = parseAsPath(s);
    expect(segs).toEqual([
      { type: 2, asns: [65001, 65002] },
      { type: 1, asns: [65003, 65004] },
      { type: 3, asns: [65005, 65006] },
      { type: 4, asns: [65007, 65008] },
    ]);
    expect(formatAsPath(segs)).toBe(s);
    expect(formatAsPath([])).toBe('');
    expect(() => parseAsPath('65001 x')).toThrow(/AS path/);
  });
});

// ---------------------------------------------------------------- random round trips

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const addr4 = fc.uint8Array({ minLength: 4, maxLength: 4 });

function attrsArb(maxAsn: number, confedMaxAsn: number): fc.Arbitrary<PathAttributes> {
  const asn = fc.integer({ min: 0, max: maxAsn });
  const plain = fc.record({
    type: fc.constantFrom(1 as const, 2 as const),
    asns: fc.array(asn, { minLength: 1, maxLength: 8 }),
  });
  const confed = fc.record({
    type: fc.constantFrom(3 as const, 4 as const),
    asns: fc.array(fc.integer({ min: 0, max: confedMaxAsn }), { minLength: 1, maxLength: 4 }),
  });
  // Confederation segments only lead the path (where RFC 6793 §4.2.3 can put them back).
  const asPath = fc
    .tuple(fc.array(confed, { maxLength: 2 }), fc.array(plain, { maxLength: 4 }))
    .map(([c, p]) => [...c, ...p]);
  const unknown = fc
    .uniqueArray(fc.integer({ min: 36, max: 254 }), { maxLength: 3 })
    .chain((codes) =>
      fc.tuple(
        ...codes
          .sort((a, b) => a - b)
          .map((code) => fc.uint8Array({ maxLength: 300 }).map((value) => ({ flags: 0xe0, code, value }))),
      ),
    );
  return fc.record(
    {
      origin: fc.integer({ min: 0, max: 2 }),
      asPath,
      nextHop: addr4,
      med: u32,
      localPref: u32,
      atomicAggregate: fc.constant(true),
      aggregator: fc.record({ asn, address: addr4 }),
      communities: fc.array(u32, { minLength: 1, maxLength: 70 }),
      originatorId: u32,
      clusterList: fc.array(u32, { minLength: 1, maxLength: 5 }),
      extCommunities: fc.array(fc.uint8Array({ minLength: 8, maxLength: 8 }), { minLength: 1, maxLength: 5 }),
      largeCommunities: fc.array(fc.record({ global: u32, local1: u32, local2: u32 }), {
        minLength: 1,
        maxLength: 25,
      }),
      otc: u32,
      unknown: unknown.filter((u) => u.length > 0),
    },
    { requiredKeys: [] },
  );
}

describe(`attribute round trips (fast-check seed ${SEED})`, () => {
  const cases: [string, CodecContext, number, number][] = [
    ['4-byte AS session', ctx({ ebgp: false }), 0xffffffff, 0xffffffff],
    ['2-byte AS session, 16-bit ASNs', ctx({ ebgp: false, as4: false }), 0xffff, 0xffff],
    ['2-byte AS session, 32-bit ASNs through AS4_PATH', ctx({ ebgp: false, as4: false }), 0xffffffff, 0xffff],
  ];
  for (const [name, c, maxAsn, confedMax] of cases) {
    it(`${name}: encode -> decode is the identity`, () => {
      fc.assert(
        fc.property(attrsArb(maxAsn, confedMax), (attrs) => {
          const bytes = encodeAttributes(attrs, c);
          expect(bytes.length).toBe(attributesLength(attrs, c));
          const d = decodeAttributes(bytes, c, false);
          expect(d.errors).toEqual([]);
          expect(d.attrs).toEqual(attrs);
        }),
        { seed: SEED, numRuns: 300 },
      );
    });
  }
});
