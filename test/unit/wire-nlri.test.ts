// NLRI codecs (RFC 4271 §4.3, RFC 4760 §5, RFC 7911 §3, RFC 4364 §4.3.4, RFC 8277 §2) and RDs.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { hex, toHex } from '../../src/lib/bytes.ts';
import { makePrefix, parseAddress, parsePrefix, type Prefix } from '../../src/lib/ip.ts';
import { AFI_SAFIS, type AfiSafiName } from '../../src/bgp/wire/constants.ts';
import { UpdateError } from '../../src/bgp/wire/errors.ts';
import type { Nlri } from '../../src/bgp/wire/types.ts';
import {
  decodeNlri,
  encodeNlri,
  forEachIPv4Prefix,
  nlriLength,
  WITHDRAW_LABEL,
} from '../../src/bgp/wire/nlri.ts';
import { formatRd, parseRd } from '../../src/bgp/wire/rd.ts';

const SEED = 7606;
const p = (s: string): Prefix => parsePrefix(s);

function collect(bytes: Uint8Array, addPath: boolean): [string, number, number][] {
  const out: [string, number, number][] = [];
  forEachIPv4Prefix(bytes, addPath, (a, l, id) => out.push([a.toString(16), l, id]));
  return out;
}

function actionOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof UpdateError) return e.action;
    throw e;
  }
  return undefined;
}

describe('IPv4 unicast NLRI (RFC 4271 §4.3)', () => {
  const bytes = hex`
    18 c0 00 02        # 192.0.2.0/24
    10 0a 01           # 10.1.0.0/16
    20 c6 33 64 01     # 198.51.100.1/32
    00                 # 0.0.0.0/0
  `;
  const items: Nlri[] = [
    { prefix: p('192.0.2.0/24') },
    { prefix: p('10.1.0.0/16') },
    { prefix: p('198.51.100.1/32') },
    { prefix: p('0.0.0.0/0') },
  ];

  it('decodes to route keys', () => {
    expect(decodeNlri(bytes, 'ipv4-unicast', false)).toEqual(items);
  });
  it('encodes to exact bytes', () => {
    expect(toHex(encodeNlri(items, 'ipv4-unicast', false))).toBe(toHex(bytes));
  });
  it('round trips', () => {
    expect(encodeNlri(decodeNlri(bytes, 'ipv4-unicast', false), 'ipv4-unicast', false)).toEqual(bytes);
  });
  it('fast path yields (uint32, len, 0) without ADD-PATH', () => {
    expect(collect(bytes, false)).toEqual([
      ['c0000200', 24, 0],
      ['a010000', 16, 0],
      ['c6336401', 32, 0],
      ['0', 0, 0],
    ]);
  });
  it('masks host bits beyond the length (liberal on receipt)', () => {
    const b = hex`17 c0 00 03  # 192.0.3.0/23 on the wire: bit 24 set`;
    expect(decodeNlri(b, 'ipv4-unicast', false)).toEqual([{ prefix: p('192.0.2.0/23') }]);
    expect(collect(b, false)).toEqual([['c0000200', 23, 0]]);
  });
  it('never sends host bits', () => {
    const loose: Nlri = { prefix: { afi: 1, addr: Uint8Array.of(192, 0, 3, 255), len: 23 } };
    expect(toHex(encodeNlri([loose], 'ipv4-unicast', false))).toBe('17c00002');
  });
  it('nlriLength matches the encoding', () => {
    for (const it of items)
      expect(nlriLength(it, 'ipv4-unicast', false)).toBe(encodeNlri([it], 'ipv4-unicast', false).length);
  });
});

describe('ADD-PATH NLRI (RFC 7911 §3)', () => {
  const bytes = hex`
    00 00 00 01  18 c0 00 02   # path id 1, 192.0.2.0/24
    00 00 00 02  18 c0 00 02   # path id 2, same prefix
    ff ff ff ff  08 0a         # path id 4294967295, 10.0.0.0/8
  `;
  const items: Nlri[] = [
    { prefix: p('192.0.2.0/24'), pathId: 1 },
    { prefix: p('192.0.2.0/24'), pathId: 2 },
    { prefix: p('10.0.0.0/8'), pathId: 0xffffffff },
  ];
  it('decodes', () => expect(decodeNlri(bytes, 'ipv4-unicast', true)).toEqual(items));
  it('encodes', () => expect(toHex(encodeNlri(items, 'ipv4-unicast', true))).toBe(toHex(bytes)));
  it('fast path carries the path id', () => {
    expect(collect(bytes, true)).toEqual([
      ['c0000200', 24, 1],
      ['c0000200', 24, 2],
      ['a000000', 8, 0xffffffff],
    ]);
  });
  it('IPv6 with path ids round trips', () => {
    const b = hex`00 00 00 07  40 20 01 0d b8 00 00 00 01   # id 7, 2001:db8:0:1::/64`;
    const d = decodeNlri(b, 'ipv6-unicast', true);
    expect(d).toEqual([{ prefix: p('2001:db8:0:1::/64'), pathId: 7 }]);
    expect(encodeNlri(d, 'ipv6-unicast', true)).toEqual(b);
  });
});

describe('IPv6 unicast NLRI (RFC 4760 §5)', () => {
  const bytes = hex`
    40 20 01 0d b8 00 00 00 01                         # 2001:db8:0:1::/64
    80 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 # 2001:db8::1/128
    00                                                 # ::/0
  `;
  const items: Nlri[] = [
    { prefix: p('2001:db8:0:1::/64') },
    { prefix: p('2001:db8::1/128') },
    { prefix: p('::/0') },
  ];
  it('decodes', () => expect(decodeNlri(bytes, 'ipv6-unicast', false)).toEqual(items));
  it('encodes', () => expect(toHex(encodeNlri(items, 'ipv6-unicast', false))).toBe(toHex(bytes)));
  it('round trips', () =>
    expect(encodeNlri(decodeNlri(bytes, 'ipv6-unicast', false), 'ipv6-unicast', false)).toEqual(bytes));
});

describe('labeled VPN NLRI (RFC 4364 §4.3.4, RFC 8277 §2)', () => {
  const v4 = hex`
    70                        # 112 bits = label 24 + RD 64 + prefix 24
    00 06 41                  # label 100 (100 << 4 | BoS)
    00 00 fd e8 00 00 00 64   # RD type 0 65000:100
    0a 01 01                  # 10.1.1.0/24
  `;
  const v4Item: Nlri = { prefix: p('10.1.1.0/24'), rd: parseRd('65000:100'), labels: [100] };
  it('IPv4 VPN decodes', () => expect(decodeNlri(v4, 'ipv4-vpn', false)).toEqual([v4Item]));
  it('IPv4 VPN encodes', () => expect(toHex(encodeNlri([v4Item], 'ipv4-vpn', false))).toBe(toHex(v4)));
  it('IPv4 VPN round trips', () =>
    expect(encodeNlri(decodeNlri(v4, 'ipv4-vpn', false), 'ipv4-vpn', false)).toEqual(v4));

  const v6 = hex`
    b0                        # 176 bits = 2 labels 48 + RD 64 + prefix 64
    00 01 00                  # label 16, not bottom of stack
    00 01 11                  # label 17, BoS
    00 01 c0 00 02 01 00 07   # RD type 1 192.0.2.1:7
    20 01 0d b8 00 00 00 00   # 2001:db8::/64
  `;
  const v6Item: Nlri = { prefix: p('2001:db8::/64'), rd: parseRd('192.0.2.1:7'), labels: [16, 17] };
  it('IPv6 VPN with a two-label stack decodes', () =>
    expect(decodeNlri(v6, 'ipv6-vpn', false)).toEqual([v6Item]));
  it('IPv6 VPN encodes', () => expect(toHex(encodeNlri([v6Item], 'ipv6-vpn', false))).toBe(toHex(v6)));

  const withdraw = hex`
    00 00 00 09               # ADD-PATH id 9
    70                        # 112 bits
    80 00 00                  # RFC 8277 §2.4 compatibility value 0x800000
    00 02 fa 56 ea 00 00 64   # RD type 2 4200000000:100
    c0 00 02                  # 192.0.2.0/24
  `;
  const wItem: Nlri = { prefix: p('192.0.2.0/24'), pathId: 9, rd: parseRd('4200000000:100'), labels: [] };
  it('withdrawal label 0x800000 decodes as no labels', () => {
    expect(decodeNlri(withdraw, 'ipv4-vpn', true, 'mp')).toEqual([wItem]);
  });
  it('no labels encode as 0x800000', () => {
    expect(toHex(encodeNlri([wItem], 'ipv4-vpn', true))).toBe(toHex(withdraw));
    expect(WITHDRAW_LABEL).toBe(0x800000);
  });
  it('a missing RD encodes as zero', () => {
    const b = encodeNlri([{ prefix: p('10.0.0.0/8'), labels: [3] }], 'ipv4-vpn', false);
    expect(toHex(b)).toBe('60' + '000031' + '0000000000000000' + '0a'); // 96 bits, label 3 BoS, RD 0, 10/8
  });
  it('rejects a label stack without bottom of stack', () => {
    expect(actionOf(() => decodeNlri(hex`30 00 01 00 00 01 00`, 'ipv4-vpn', false, 'mp'))).toBe(
      'afi-safi-disable',
    );
  });
  it('rejects a length too short for the RD', () => {
    expect(actionOf(() => decodeNlri(hex`38 00 06 41 00 00 00 00`, 'ipv4-vpn', false, 'mp'))).toBe(
      'afi-safi-disable',
    );
  });
  it('rejects a prefix beyond 32 bits after labels and RD', () => {
    expect(
      actionOf(() => decodeNlri(hex`79 00 06 41 0000fde800000064 0a010101 01`, 'ipv4-vpn', false, 'mp')),
    ).toBe('afi-safi-disable');
  });
});

describe('NLRI syntax errors (RFC 7606 §5.3)', () => {
  const cases: [string, Uint8Array, AfiSafiName, boolean][] = [
    ['IPv4 length 33', hex`21 c0 00 02 00 00`, 'ipv4-unicast', false],
    ['IPv4 prefix overruns the field', hex`18 c0 00`, 'ipv4-unicast', false],
    ['truncated path identifier', hex`00 00 01`, 'ipv4-unicast', true],
    ['path identifier without a length', hex`00 00 00 01`, 'ipv4-unicast', true],
    ['IPv6 length 129', hex`81 ${'00'.repeat(17)}`, 'ipv6-unicast', false],
  ];
  for (const [name, bytes, family, addPath] of cases) {
    it(`${name}: session-reset in the NLRI field, afi-safi-disable in MP_REACH`, () => {
      expect(actionOf(() => decodeNlri(bytes, family, addPath))).toBe('session-reset');
      expect(actionOf(() => decodeNlri(bytes, family, addPath, 'mp'))).toBe('afi-safi-disable');
      if (family === 'ipv4-unicast') {
        expect(actionOf(() => forEachIPv4Prefix(bytes, addPath, () => undefined))).toBe('session-reset');
      }
    });
  }
  it('uses Invalid Network Field (10) for the NLRI field', () => {
    try {
      decodeNlri(hex`21 00 00 00 00 00`, 'ipv4-unicast', false);
    } catch (e) {
      expect((e as UpdateError).subcode).toBe(10);
    }
  });
});

describe('route distinguishers (RFC 4364 §4.2)', () => {
  const cases: [string, string][] = [
    ['65000:100', '0000fde800000064'],
    ['65000:4294967295', '0000fde8ffffffff'],
    ['192.0.2.1:100', '0001c00002010064'],
    ['4200000000:100', '0002fa56ea000064'],
    ['100L:5', '0002000000640005'],
    ['0x0003000000000001', '0003000000000001'],
  ];
  for (const [text, bytes] of cases) {
    it(`${text} <-> ${bytes}`, () => {
      expect(toHex(parseRd(text))).toBe(bytes);
      expect(formatRd(hex(bytes))).toBe(text);
    });
  }
  it('rejects bad input with LocalUsageError', () => {
    for (const bad of ['', '65000', 'a:1', '192.0.2.1:70000', '4200000000:70000', '1:2:3', '0x12']) {
      expect(() => parseRd(bad)).toThrow(/route distinguisher/);
    }
  });
});

// ---------------------------------------------------------------- properties

const FAMILY_BITS: Record<AfiSafiName, number> = {
  'ipv4-unicast': 32,
  'ipv6-unicast': 128,
  'ipv4-vpn': 32,
  'ipv6-vpn': 128,
};

function nlriArb(family: AfiSafiName, addPath: boolean): fc.Arbitrary<Nlri> {
  const bits = FAMILY_BITS[family];
  const prefix = fc
    .tuple(fc.uint8Array({ minLength: bits / 8, maxLength: bits / 8 }), fc.integer({ min: 0, max: bits }))
    .map(([a, l]) => makePrefix(a, l));
  const pathId = fc.integer({ min: 0, max: 0xffffffff });
  const vpn = family.endsWith('vpn');
  // A label stack whose first label is 0x80000 (with BoS clear) reads as the withdraw value.
  const labels = fc
    .array(fc.integer({ min: 0, max: 0xfffff }), { minLength: 0, maxLength: bits === 32 ? 3 : 2 })
    .filter((l) => !(l.length > 1 && l[0] === 0x80000));
  const rd = fc.uint8Array({ minLength: 8, maxLength: 8 });
  return fc.record({ prefix, pathId, labels, rd }).map((r) => {
    const base: Nlri = addPath ? { prefix: r.prefix, pathId: r.pathId } : { prefix: r.prefix };
    return vpn ? { ...base, rd: r.rd, labels: r.labels } : base;
  });
}

describe(`NLRI properties (fast-check seed ${SEED})`, () => {
  for (const family of AFI_SAFIS) {
    for (const addPath of [false, true]) {
      it(`${family}${addPath ? ' add-path' : ''}: encode -> decode is the identity`, () => {
        fc.assert(
          fc.property(fc.array(nlriArb(family, addPath), { maxLength: 20 }), (items) => {
            const bytes = encodeNlri(items, family, addPath);
            let size = 0;
            for (const i of items) size += nlriLength(i, family, addPath);
            expect(bytes.length).toBe(size);
            expect(decodeNlri(bytes, family, addPath, 'mp')).toEqual(items);
          }),
          { seed: SEED, numRuns: 200 },
        );
      });
      it(`${family}${addPath ? ' add-path' : ''}: random bytes only ever throw UpdateError`, () => {
        fc.assert(
          fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
            for (const where of ['nlri', 'mp'] as const) {
              try {
                decodeNlri(bytes, family, addPath, where);
              } catch (e) {
                expect(e).toBeInstanceOf(UpdateError);
              }
            }
          }),
          { seed: SEED, numRuns: 500 },
        );
      });
    }
  }
  it('forEachIPv4Prefix agrees with decodeNlri on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.boolean(), (bytes, addPath) => {
        let slow: [string, number, number][] | string;
        let fast: [string, number, number][] | string;
        try {
          slow = decodeNlri(bytes, 'ipv4-unicast', addPath).map((n) => [
            toHex(n.prefix.addr).replace(/^0+(?=.)/, ''),
            n.prefix.len,
            n.pathId ?? 0,
          ]);
        } catch (e) {
          slow = (e as UpdateError).action;
        }
        try {
          fast = collect(bytes, addPath);
        } catch (e) {
          fast = (e as UpdateError).action;
        }
        expect(fast).toEqual(slow);
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });
  it('RD text round trips for every type', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.integer({ min: 0, max: 3 }), (b, t) => {
        const rd = Uint8Array.from(b);
        rd[0] = 0;
        rd[1] = t;
        expect(parseRd(formatRd(rd))).toEqual(rd);
      }),
      { seed: SEED },
    );
  });
  it('parseAddress helper sanity', () =>
    expect(parseAddress('192.0.2.1')).toEqual(Uint8Array.of(192, 0, 2, 1)));
});
