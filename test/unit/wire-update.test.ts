// UPDATE messages: split (RFC 4271 §4.3), build, pack for the Adj-RIB-Out, End-of-RIB (RFC 4724 §2).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { hex, toHex } from '../../src/lib/bytes.ts';
import { makePrefix, parseAddress, parsePrefix } from '../../src/lib/ip.ts';
import { AFI_SAFIS, type AfiSafiName } from '../../src/bgp/wire/constants.ts';
import { LocalUsageError } from '../../src/bgp/wire/errors.ts';
import {
  DEFAULT_CODEC_CONTEXT,
  type CodecContext,
  type Nlri,
  type PathAttributes,
} from '../../src/bgp/wire/types.ts';
import { decodeAttributes } from '../../src/bgp/wire/attributes.ts';
import { decodeNlri } from '../../src/bgp/wire/nlri.ts';
import { parseRd } from '../../src/bgp/wire/rd.ts';
import {
  encodeEndOfRib,
  encodeUpdate,
  isEndOfRib,
  packUpdates,
  splitUpdate,
} from '../../src/bgp/wire/update.ts';

const SEED = 4724;
const MARKER = 'ff'.repeat(16);
const ctx = (o: Partial<CodecContext> = {}): CodecContext => ({ ...DEFAULT_CODEC_CONTEXT, ...o });
const ip = (s: string): Uint8Array => parseAddress(s);

describe('splitUpdate / encodeUpdate (RFC 4271 §4.3)', () => {
  const body = hex`
    00 03                                  # Withdrawn Routes Length 3
    10 0a 02                               #   10.2.0.0/16
    00 14                                  # Total Path Attribute Length 20
    40 01 01 00                            #   ORIGIN IGP
    40 02 06 02 01 00 00 fd e9             #   AS_PATH 65001
    40 03 04 c0 00 02 01                   #   NEXT_HOP 192.0.2.1
    18 c0 00 02                            # NLRI 192.0.2.0/24
  `;
  it('splits into views of the three parts', () => {
    const u = splitUpdate(body);
    expect(u.type).toBe('update');
    expect(toHex(u.withdrawn)).toBe('100a02');
    expect(u.attributes.length).toBe(20);
    expect(toHex(u.nlri)).toBe('18c00002');
    expect(u.attributes.buffer).toBe(body.buffer);
  });
  it('builds the full message with the header', () => {
    const u = splitUpdate(body);
    const msg = encodeUpdate({ withdrawn: u.withdrawn, attributes: u.attributes, nlri: u.nlri });
    expect(toHex(msg)).toBe(`${MARKER}003202${toHex(body)}`); // 19 + 31 = 50 bytes, type 2
    expect(splitUpdate(msg.subarray(19))).toEqual(u);
  });
  it('accepts an UPDATE with empty parts', () => {
    expect(splitUpdate(hex`00 00 00 00`)).toEqual({
      type: 'update',
      withdrawn: new Uint8Array(0),
      attributes: new Uint8Array(0),
      nlri: new Uint8Array(0),
    });
  });
});

describe('End-of-RIB (RFC 4724 §2)', () => {
  it('IPv4 unicast: an empty UPDATE', () => {
    const m = encodeEndOfRib('ipv4-unicast');
    expect(toHex(m)).toBe(`${MARKER}0017020000` + '0000');
    expect(isEndOfRib(splitUpdate(m.subarray(19)))).toBe('ipv4-unicast');
  });
  it('other families: only an empty MP_UNREACH_NLRI', () => {
    const m = encodeEndOfRib('ipv6-vpn');
    expect(toHex(m)).toBe(`${MARKER}001d02` + '0000 0006 800f03 0002 80'.replace(/ /g, ''));
    const u = splitUpdate(m.subarray(19));
    expect(isEndOfRib(u)).toBe('ipv6-vpn');
    expect(isEndOfRib(u, decodeAttributes(u.attributes, ctx(), false))).toBe('ipv6-vpn');
    for (const f of AFI_SAFIS) expect(isEndOfRib(splitUpdate(encodeEndOfRib(f).subarray(19)))).toBe(f);
  });
  it('accepts Extended Length on the marker attribute', () => {
    expect(isEndOfRib(splitUpdate(hex`00 00 00 07 90 0f 00 03 00 02 01`))).toBe('ipv6-unicast');
  });
  it('is not End-of-RIB with withdrawals, NLRI, other attributes or MP NLRI', () => {
    expect(isEndOfRib(splitUpdate(hex`00 02 08 0a 00 00`))).toBeUndefined();
    expect(isEndOfRib(splitUpdate(hex`00 00 00 00 08 0a`))).toBeUndefined();
    expect(isEndOfRib(splitUpdate(hex`00 00 00 0a 80 0f 03 00 02 01 40 01 01 00`))).toBeUndefined();
    expect(isEndOfRib(splitUpdate(hex`00 00 00 08 80 0f 05 00 02 01 08 0a`))).toBeUndefined();
    expect(isEndOfRib(splitUpdate(hex`00 00 00 06 80 0f 03 00 19 46`))).toBeUndefined(); // EVPN: not ours
  });
});

describe('packUpdates exact bytes', () => {
  const attrs: PathAttributes = { origin: 0, asPath: [{ type: 2, asns: [65001] }] };
  const c = ctx();
  it('IPv4 unicast announcement: NEXT_HOP attribute and the NLRI field', () => {
    const msgs = packUpdates({
      family: 'ipv4-unicast',
      attributes: attrs,
      nextHop: ip('192.0.2.1'),
      items: [{ prefix: parsePrefix('192.0.2.0/24') }, { prefix: parsePrefix('10.0.0.0/8') }],
      ctx: c,
      maxLength: 4096,
    });
    expect(msgs.map(toHex)).toEqual([
      `${MARKER}003102` +
        '0000' + // no withdrawn routes
        '0014' + // 20 bytes of attributes
        '40010100' +
        '400206020100' +
        '00fde9' +
        '400304c0000201' +
        '18c00002' + // 192.0.2.0/24
        '080a', // 10.0.0.0/8
    ]);
  });
  it('IPv4 unicast withdrawal: the Withdrawn Routes field, no attributes', () => {
    const msgs = packUpdates({
      family: 'ipv4-unicast',
      attributes: undefined,
      items: [{ prefix: parsePrefix('192.0.2.0/24') }],
      ctx: c,
      maxLength: 4096,
    });
    expect(msgs.map(toHex)).toEqual([`${MARKER}001b02` + '0004' + '18c00002' + '0000']);
  });
  it('IPv6 unicast announcement: MP_REACH_NLRI first, no NEXT_HOP attribute', () => {
    const msgs = packUpdates({
      family: 'ipv6-unicast',
      attributes: { ...attrs, nextHop: ip('192.0.2.1') },
      nextHop: ip('2001:db8::1'),
      items: [{ prefix: parsePrefix('2001:db8:0:1::/64') }],
      ctx: c,
      maxLength: 4096,
    });
    expect(msgs.map(toHex)).toEqual([
      `${MARKER}004502` +
        '0000' +
        '002e' + // 46 bytes of attributes: MP_REACH_NLRI 3 + 30, ORIGIN 4, AS_PATH 9
        '800e' +
        '1e' +
        '0002' +
        '01' +
        '10' +
        '20010db8000000000000000000000001' +
        '00' +
        '4020010db800000001' +
        '40010100' +
        '400206020100' +
        '00fde9',
    ]);
  });
  it('IPv4 VPN withdrawal: MP_UNREACH_NLRI with the RFC 8277 withdraw label', () => {
    const msgs = packUpdates({
      family: 'ipv4-vpn',
      attributes: undefined,
      items: [{ prefix: parsePrefix('10.1.1.0/24'), rd: parseRd('65000:100'), labels: [] }],
      ctx: c,
      maxLength: 4096,
    });
    expect(msgs.map(toHex)).toEqual([
      `${MARKER}002c02` +
        '0000' +
        '0015' +
        '800f12' +
        '0001' +
        '80' +
        '70' +
        '800000' +
        '0000fde800000064' +
        '0a0101',
    ]);
  });
  it('returns no message for no items', () => {
    expect(
      packUpdates({ family: 'ipv4-unicast', attributes: undefined, items: [], ctx: c, maxLength: 4096 }),
    ).toEqual([]);
  });
  it('refuses what cannot be sent', () => {
    const item = { prefix: parsePrefix('10.0.0.0/8') };
    expect(() =>
      packUpdates({ family: 'ipv4-unicast', attributes: attrs, items: [item], ctx: c, maxLength: 4096 }),
    ).toThrow(LocalUsageError); // no next hop
    expect(() =>
      packUpdates({
        family: 'ipv4-unicast',
        attributes: { ...attrs, communities: Array.from({ length: 1100 }, (_, i) => i) },
        nextHop: ip('192.0.2.1'),
        items: [item],
        ctx: c,
        maxLength: 4096,
      }),
    ).toThrow(LocalUsageError); // attributes alone exceed the message
  });
  it('fills 4096-byte messages with 1000 /24s and keeps the order', () => {
    const items: Nlri[] = Array.from({ length: 1000 }, (_, i) => ({
      prefix: makePrefix(Uint8Array.of(10, i >> 8, i & 0xff, 0), 24),
    }));
    const msgs = packUpdates({
      family: 'ipv4-unicast',
      attributes: attrs,
      nextHop: ip('192.0.2.1'),
      items,
      ctx: c,
      maxLength: 4096,
    });
    // 4096 - 19 - 4 - 20 bytes of attributes = 4053 = 1013 prefixes of 4 bytes: one message.
    expect(msgs.length).toBe(1);
    const small = packUpdates({
      family: 'ipv4-unicast',
      attributes: attrs,
      nextHop: ip('192.0.2.1'),
      items,
      ctx: c,
      maxLength: 1000,
    });
    expect(small.length).toBe(Math.ceil(1000 / Math.floor((1000 - 43) / 4)));
    expect(small.every((m) => m.length <= 1000)).toBe(true);
  });
});

// ---------------------------------------------------------------- properties

const BITS: Record<AfiSafiName, number> = {
  'ipv4-unicast': 32,
  'ipv6-unicast': 128,
  'ipv4-vpn': 32,
  'ipv6-vpn': 128,
};

function itemsArb(family: AfiSafiName, addPath: boolean): fc.Arbitrary<Nlri[]> {
  const bits = BITS[family];
  const vpn = family.endsWith('vpn');
  const item = fc
    .record({
      addr: fc.uint8Array({ minLength: bits / 8, maxLength: bits / 8 }),
      len: fc.integer({ min: 0, max: bits }),
      pathId: fc.integer({ min: 0, max: 0xffffffff }),
      rd: fc.uint8Array({ minLength: 8, maxLength: 8 }),
      label: fc.integer({ min: 0, max: 0xfffff }),
    })
    .map((r): Nlri => {
      const base: Nlri = { prefix: makePrefix(r.addr, r.len), ...(addPath ? { pathId: r.pathId } : {}) };
      return vpn ? { ...base, rd: r.rd, labels: [r.label] } : base;
    });
  return fc.array(item, { minLength: 1, maxLength: 400 });
}

/** Reads packed messages back as a receiver would. */
function unpack(
  msgs: Uint8Array[],
  family: AfiSafiName,
  c: CodecContext,
  withdraw: boolean,
  max: number,
): Nlri[] {
  const addPath = c.addPathTx.has(family);
  const out: Nlri[] = [];
  for (const m of msgs) {
    expect(m.length).toBeLessThanOrEqual(max);
    expect(toHex(m.subarray(0, 16))).toBe(MARKER);
    expect((m[16]! << 8) | m[17]!).toBe(m.length);
    expect(m[18]).toBe(2);
    const u = splitUpdate(m.subarray(19));
    const d = decodeAttributes(u.attributes, c, u.nlri.length > 0);
    expect(d.errors).toEqual([]);
    if (family === 'ipv4-unicast') {
      out.push(...decodeNlri(withdraw ? u.withdrawn : u.nlri, family, addPath));
    } else {
      const mp = withdraw ? d.mpUnreach : d.mpReach;
      out.push(...decodeNlri(mp!.nlri, family, addPath, 'mp'));
    }
  }
  return out;
}

describe(`packUpdates properties (fast-check seed ${SEED})`, () => {
  const attrs: PathAttributes = {
    origin: 0,
    asPath: [{ type: 2, asns: [65001, 4200000000] }],
    localPref: 100,
    communities: [1, 2, 3],
  };
  const nextHops: Record<AfiSafiName, Uint8Array> = {
    'ipv4-unicast': ip('192.0.2.1'),
    'ipv6-unicast': ip('2001:db8::1'),
    'ipv4-vpn': ip('192.0.2.1'),
    'ipv6-vpn': ip('2001:db8::1'),
  };
  for (const family of AFI_SAFIS) {
    it(`${family}: every message fits and the items come back exactly`, () => {
      const input = fc.boolean().chain((addPath) =>
        fc.record({
          addPath: fc.constant(addPath),
          items: itemsArb(family, addPath),
          withdraw: fc.boolean(),
          as4: fc.boolean(),
          maxLength: fc.oneof(fc.integer({ min: 256, max: 4096 }), fc.constant(65535)),
          linkLocal: fc.boolean(),
        }),
      );
      fc.assert(
        fc.property(input, ({ addPath, items, withdraw, as4, maxLength, linkLocal }) => {
          const c = ctx({ ebgp: false, as4, addPathTx: new Set(addPath ? [family] : []) });
          const msgs = packUpdates({
            family,
            attributes: withdraw ? undefined : attrs,
            nextHop: nextHops[family],
            ...(linkLocal && family.startsWith('ipv6') ? { linkLocalNextHop: ip('fe80::1') } : {}),
            items,
            ctx: c,
            maxLength,
          });
          expect(unpack(msgs, family, c, withdraw, maxLength)).toEqual(items);
          if (!withdraw) {
            const first = decodeAttributes(splitUpdate(msgs[0]!.subarray(19)).attributes, c, true).attrs;
            expect({ ...first, nextHop: undefined }).toEqual({ ...attrs, nextHop: undefined });
          }
        }),
        { seed: SEED, numRuns: 100 },
      );
    });
  }
});
