/**
 * OPEN and capabilities (RFC 4271 §4.2, §6.2; RFC 5492; RFC 9072; capability formats from RFC 4760,
 * 2918, 8654, 4724/8538, 6793, 7911, 7313 and draft-walton-bgp-hostname-capability). Each codec
 * three ways (decode, exact encode, round trip), every error path, and fast-check properties.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hex, toHex } from '../../src/lib/bytes.ts';
import {
  decodeCapabilities,
  decodeCapability,
  encodeCapability,
  findCapabilities,
} from '../../src/bgp/wire/capabilities.ts';
import { LocalUsageError, NotificationError } from '../../src/bgp/wire/errors.ts';
import { decodeOpen, encodeOpen } from '../../src/bgp/wire/open.ts';
import type { Capability, OpenMessage } from '../../src/bgp/wire/types.ts';

const SEED = 42;
const MARKER = 'ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff';

/** An FRR-style OPEN: every capability grouped in one Capabilities parameter. */
const FRR_OPEN = hex`
  ${MARKER}     # marker
  00 58         # length 88
  01            # type OPEN
  04            # version 4
  fd e8         # My AS 65000
  00 b4         # hold time 180
  0a 00 00 01   # BGP Identifier 10.0.0.1
  3b            # optional parameters length 59
  02 39         # parameter type 2 Capabilities, length 57
  01 04 00 01 00 01   # MP (1): AFI 1 IPv4, reserved, SAFI 1 unicast
  01 04 00 02 00 01   # MP (1): AFI 2 IPv6, reserved, SAFI 1 unicast
  02 00               # Route Refresh (2)
  80 00               # Route Refresh, Cisco pre-standard (128): kept as unknown
  46 00               # Enhanced Route Refresh (70)
  41 04 00 00 fd e8   # 4-octet AS (65): 65000
  06 00               # Extended Message (6)
  40 0a               # Graceful Restart (64), length 10
    40 78             #   R=0, N=1 (RFC 8538), restart time 120 s
    00 01 01 80       #   IPv4 unicast, F=1 (forwarding preserved)
    00 02 01 00       #   IPv6 unicast, F=0
  45 08               # ADD-PATH (69), length 8
    00 01 01 03       #   IPv4 unicast, send/receive 3 (both)
    00 02 01 01       #   IPv6 unicast, send/receive 1 (receive)
  49 07               # FQDN (73), length 7
    02 72 31          #   hostname length 2, "r1"
    03 6c 61 62       #   domain length 3, "lab"
`;

const FRR_OPEN_DECODED: OpenMessage = {
  type: 'open',
  version: 4,
  myAs: 65000,
  holdTime: 180,
  bgpId: 0x0a000001,
  capabilities: [
    { code: 1, afi: 1, safi: 1 },
    { code: 1, afi: 2, safi: 1 },
    { code: 2 },
    { code: 128, value: new Uint8Array(0), unknown: true },
    { code: 70 },
    { code: 65, asn: 65000 },
    { code: 6 },
    {
      code: 64,
      restartState: false,
      notification: true,
      restartTime: 120,
      families: [
        { afi: 1, safi: 1, forwardingState: true },
        { afi: 2, safi: 1, forwardingState: false },
      ],
    },
    {
      code: 69,
      families: [
        { afi: 1, safi: 1, sendReceive: 3 },
        { afi: 2, safi: 1, sendReceive: 1 },
      ],
    },
    { code: 73, hostname: 'r1', domain: 'lab' },
  ],
  otherParams: [],
};

/** A GoBGP-style OPEN from a 4-byte AS: one capability per Capabilities parameter. */
const GOBGP_OPEN = hex`
  ${MARKER}     # marker
  00 31         # length 49
  01            # type OPEN
  04            # version 4
  5b a0         # My AS 23456 (AS_TRANS, RFC 6793 §9)
  00 5a         # hold time 90
  c6 33 64 01   # BGP Identifier 198.51.100.1
  14            # optional parameters length 20
  02 06 01 04 00 01 00 01   # Capabilities: MP IPv4 unicast
  02 02 02 00               # Capabilities: Route Refresh
  02 06 41 04 00 03 0d 41   # Capabilities: 4-octet AS 200001
`;

/** The same OPEN as we encode it: one grouped Capabilities parameter. */
const GOBGP_OPEN_GROUPED = hex`
  ${MARKER}     # marker
  00 2d         # length 45
  01            # type OPEN
  04 5b a0 00 5a c6 33 64 01  # version, My AS, hold time, BGP Identifier
  10            # optional parameters length 16
  02 0e         # Capabilities, length 14
  01 04 00 01 00 01   # MP IPv4 unicast
  02 00               # Route Refresh
  41 04 00 03 0d 41   # 4-octet AS 200001
`;

const LONG_HOST = 'a'.repeat(250);

/** RFC 9072: capabilities longer than 255 bytes force the extended optional parameters format. */
const EXTENDED_OPEN = hex`
  ${MARKER}     # marker
  01 33         # length 307
  01            # type OPEN
  04            # version 4
  fd e9         # My AS 65001
  00 5a         # hold time 90
  0a 00 00 02   # BGP Identifier 10.0.0.2
  ff            # Non-Ext OP Len 255
  ff            # Non-Ext OP Type 255: extended format follows (RFC 9072 §2)
  01 13         # Extended Opt. Parm. Length 275
  02            # parameter type 2 Capabilities
  01 10         # parameter length 272 (two octets in the extended format)
  01 04 00 01 00 01   # MP IPv4 unicast
  01 04 00 02 00 01   # MP IPv6 unicast
  41 04 00 00 fd e9   # 4-octet AS 65001
  49 fc               # FQDN, length 252
    fa ${'61 '.repeat(250)}  # hostname length 250, "aaa…a"
    00                # domain length 0
`;

function open(fields: Partial<Omit<OpenMessage, 'type'>> = {}): Omit<OpenMessage, 'type'> {
  return { version: 4, myAs: 65000, holdTime: 90, bgpId: 1, capabilities: [], otherParams: [], ...fields };
}

function bodyOf(msg: Uint8Array): Uint8Array {
  return msg.subarray(19);
}

function notification(f: () => unknown): NotificationError {
  try {
    f();
  } catch (e) {
    if (e instanceof NotificationError) return e;
    throw e;
  }
  throw new Error('expected a NotificationError');
}

describe('OPEN: FRR-style vector', () => {
  it('decodes to the object', () => {
    expect(decodeOpen(bodyOf(FRR_OPEN))).toEqual(FRR_OPEN_DECODED);
  });

  it('encodes to the exact bytes', () => {
    expect(toHex(encodeOpen(FRR_OPEN_DECODED))).toBe(toHex(FRR_OPEN));
  });

  it('round trips', () => {
    const again = decodeOpen(bodyOf(encodeOpen(decodeOpen(bodyOf(FRR_OPEN)))));
    expect(again).toEqual(FRR_OPEN_DECODED);
  });

  it('narrows known capabilities with findCapabilities', () => {
    const caps = FRR_OPEN_DECODED.capabilities;
    expect(findCapabilities(caps, 65)).toEqual([{ code: 65, asn: 65000 }]);
    expect(findCapabilities(caps, 1).map((c) => c.afi)).toEqual([1, 2]);
    expect(findCapabilities([{ code: 65, value: hex`00`, unknown: true }], 65)).toEqual([]);
  });
});

describe('OPEN: GoBGP-style vector (one capability per parameter, 4-byte AS)', () => {
  const decoded: OpenMessage = {
    type: 'open',
    version: 4,
    myAs: 23456,
    holdTime: 90,
    bgpId: 0xc6336401,
    capabilities: [{ code: 1, afi: 1, safi: 1 }, { code: 2 }, { code: 65, asn: 200001 }],
    otherParams: [],
  };

  it('decodes several Capabilities parameters into one list', () => {
    expect(decodeOpen(bodyOf(GOBGP_OPEN))).toEqual(decoded);
  });

  it('encodes grouped into one parameter', () => {
    expect(toHex(encodeOpen(decoded))).toBe(toHex(GOBGP_OPEN_GROUPED));
    expect(decodeOpen(bodyOf(GOBGP_OPEN_GROUPED))).toEqual(decoded);
  });
});

describe('OPEN: RFC 9072 extended optional parameters length', () => {
  const decoded: OpenMessage = {
    type: 'open',
    version: 4,
    myAs: 65001,
    holdTime: 90,
    bgpId: 0x0a000002,
    capabilities: [
      { code: 1, afi: 1, safi: 1 },
      { code: 1, afi: 2, safi: 1 },
      { code: 65, asn: 65001 },
      { code: 73, hostname: LONG_HOST, domain: '' },
    ],
    otherParams: [],
  };

  it('decodes', () => {
    expect(decodeOpen(bodyOf(EXTENDED_OPEN))).toEqual(decoded);
  });

  it('encodes to the exact bytes when parameters exceed 255 bytes', () => {
    expect(toHex(encodeOpen(decoded))).toBe(toHex(EXTENDED_OPEN));
  });

  it('round trips', () => {
    expect(decodeOpen(bodyOf(encodeOpen(decoded)))).toEqual(decoded);
  });

  it('accepts the extended format even when not needed', () => {
    const body = hex`
      04 fd e9 00 5a 0a 00 00 02  # version 4, AS 65001, hold 90, id 10.0.0.2
      ff ff 00 0b   # Non-Ext OP Len 255, Non-Ext OP Type 255, Extended length 11
      02 00 08      # Capabilities, length 8
      01 04 00 01 00 01  # MP IPv4 unicast
      02 00              # Route Refresh
    `;
    expect(decodeOpen(body).capabilities).toEqual([{ code: 1, afi: 1, safi: 1 }, { code: 2 }]);
  });

  it('uses the plain format up to exactly 255 bytes of parameters, extended from 256', () => {
    const fits = open({ capabilities: [{ code: 200, value: new Uint8Array(251), unknown: true }] });
    const plain = encodeOpen(fits);
    expect(plain.length).toBe(19 + 10 + 255);
    expect(toHex(plain.subarray(28, 32))).toBe('ff02fdc8'); // Opt Parm Len 255, type 2, len 253, cap 200
    expect(decodeOpen(bodyOf(plain))).toEqual({ type: 'open', ...fits });

    const over = open({ capabilities: [{ code: 200, value: new Uint8Array(252), unknown: true }] });
    const ext = encodeOpen(over);
    expect(toHex(ext.subarray(28, 34))).toBe('ffff0101' + '0200'); // ext length 257, type 2, len 0x00fe…
    expect(decodeOpen(bodyOf(ext))).toEqual({ type: 'open', ...over });
  });
});

describe('OPEN: other optional parameters', () => {
  it('keeps unknown parameter types raw in otherParams, in both formats', () => {
    const body = hex`
      04 fd e8 00 5a 00 00 00 01  # version 4, AS 65000, hold 90, id 0.0.0.1
      08            # optional parameters length 8
      01 02 ab cd   # parameter type 1 (deprecated Authentication), length 2, kept raw
      02 02 02 00   # Capabilities, length 2: Route Refresh
    `;
    expect(decodeOpen(body)).toEqual({
      type: 'open',
      ...open({ bgpId: 1, otherParams: [{ type: 1, value: hex`ab cd` }], capabilities: [{ code: 2 }] }),
    });
    const ok = open({ otherParams: [{ type: 1, value: hex`ab cd` }], capabilities: [{ code: 2 }] });
    expect(decodeOpen(bodyOf(encodeOpen(ok)))).toEqual({ type: 'open', ...ok });
  });

  it('encodes an OPEN without capabilities with no parameters at all', () => {
    expect(toHex(encodeOpen(open()))).toBe(
      toHex(hex`${MARKER} 00 1d 01  04 fd e8 00 5a 00 00 00 01  00  # length 29, Opt Parm Len 0`),
    );
  });
});

describe('OPEN errors (RFC 4271 §6.2, §6.1; RFC 6286; RFC 9072)', () => {
  const FIXED = '04 fd e8 00 5a 0a 00 00 01'; // version 4, AS 65000, hold 90, id 10.0.0.1

  it.each([
    ['version 3 → (2, 1), data = supported version 4', hex`03 fd e8 00 5a 0a 00 00 01 00`, 2, 1, '0004'],
    ['version 5 → (2, 1)', hex`05`, 2, 1, '0004'],
    ['hold time 1 → (2, 6)', hex`04 fd e8 00 01 0a 00 00 01 00`, 2, 6, ''],
    ['hold time 2 → (2, 6)', hex`04 fd e8 00 02 0a 00 00 01 00`, 2, 6, ''],
    ['BGP Identifier 0 → (2, 3)', hex`04 fd e8 00 5a 00 00 00 00 00`, 2, 3, ''],
    ['empty body → (1, 2)', hex``, 1, 2, '0013'],
    ['body of 9 → (1, 2)', hex`${FIXED}`, 1, 2, '001c'],
    [
      'Opt Parm Len beyond the body → (1, 2)',
      hex`${FIXED} 05 02 02 02 00 # 5 announced, 4 present`,
      1,
      2,
      '0021',
    ],
    ['bytes after the parameters → (1, 2)', hex`${FIXED} 02 02 00 ff`, 1, 2, '0020'],
    ['extended length truncated → (1, 2)', hex`${FIXED} ff ff 00`, 1, 2, '001f'],
    ['extended length mismatch → (1, 2)', hex`${FIXED} ff ff 00 05 02 00 02 02 00 ee`, 1, 2, '0026'],
    ['parameter header truncated → (2, 0)', hex`${FIXED} 01 02`, 2, 0, ''],
    ['extended parameter header truncated → (2, 0)', hex`${FIXED} ff ff 00 02 02 00`, 2, 0, ''],
    ['parameter overruns → (2, 0)', hex`${FIXED} 03 02 02 02`, 2, 0, ''],
    ['capability header truncated → (2, 0)', hex`${FIXED} 03 02 01 02`, 2, 0, ''],
    ['capability overruns its parameter → (2, 0)', hex`${FIXED} 04 02 02 01 04`, 2, 0, ''],
    ['MP capability of length 3 → (2, 0)', hex`${FIXED} 07 02 05 01 03 00 01 00`, 2, 0, ''],
    ['4-octet AS capability of length 2 → (2, 0)', hex`${FIXED} 06 02 04 41 02 fd e8`, 2, 0, ''],
    ['Route Refresh capability of length 1 → (2, 0)', hex`${FIXED} 05 02 03 02 01 00`, 2, 0, ''],
    ['Extended Message capability of length 1 → (2, 0)', hex`${FIXED} 05 02 03 06 01 00`, 2, 0, ''],
    ['Enhanced RR capability of length 1 → (2, 0)', hex`${FIXED} 05 02 03 46 01 00`, 2, 0, ''],
    ['GR capability of length 1 → (2, 0)', hex`${FIXED} 05 02 03 40 01 00`, 2, 0, ''],
    ['GR capability of length 5 → (2, 0)', hex`${FIXED} 09 02 07 40 05 00 78 00 01 01`, 2, 0, ''],
    ['ADD-PATH capability of length 3 → (2, 0)', hex`${FIXED} 07 02 05 45 03 00 01 01`, 2, 0, ''],
    ['FQDN hostname overruns → (2, 0)', hex`${FIXED} 07 02 05 49 03 05 61 00`, 2, 0, ''],
    ['FQDN domain length missing → (2, 0)', hex`${FIXED} 06 02 04 49 02 01 61`, 2, 0, ''],
    ['FQDN with trailing bytes → (2, 0)', hex`${FIXED} 08 02 06 49 04 01 61 00 ee`, 2, 0, ''],
  ])('%s', (_name, body, code, subcode, data) => {
    const e = notification(() => decodeOpen(body));
    expect([e.errorCode, e.subcode]).toEqual([code, subcode]);
    expect(toHex(e.data)).toBe(data);
  });

  it('accepts hold time 0 and 3, and any non-zero BGP Identifier', () => {
    expect(decodeOpen(hex`04 fd e8 00 00 ff ff ff ff 00`).holdTime).toBe(0);
    expect(decodeOpen(hex`04 fd e8 00 03 00 00 00 01 00`).bgpId).toBe(1);
    expect(decodeOpen(hex`04 fd e8 00 03 ff ff ff ff 00`).bgpId).toBe(0xffffffff);
  });
});

describe('capabilities, each three ways', () => {
  const vectors: [string, Uint8Array, Capability][] = [
    [
      'MP IPv4 VPN (RFC 4760 §8)',
      hex`01 04  00 01 00 80 # AFI 1, reserved, SAFI 128`,
      { code: 1, afi: 1, safi: 128 },
    ],
    ['Route Refresh (RFC 2918 §2)', hex`02 00`, { code: 2 }],
    ['Extended Message (RFC 8654 §3)', hex`06 00`, { code: 6 }],
    ['Enhanced Route Refresh (RFC 7313 §3.1)', hex`46 00`, { code: 70 }],
    [
      'Graceful Restart, R=1 N=0 4095 s, one family (RFC 4724 §3)',
      hex`
        40 06        # Graceful Restart, length 6
        8f ff        # R bit, time 4095
        00 02 80 80  # IPv6 VPN, F=1
      `,
      {
        code: 64,
        restartState: true,
        notification: false,
        restartTime: 4095,
        families: [{ afi: 2, safi: 128, forwardingState: true }],
      },
    ],
    [
      'Graceful Restart, helper only (no families)',
      hex`40 02  00 00`,
      { code: 64, restartState: false, notification: false, restartTime: 0, families: [] },
    ],
    ['4-octet AS 4200000000 (RFC 6793 §3)', hex`41 04  fa 56 ea 00`, { code: 65, asn: 4200000000 }],
    [
      'ADD-PATH send for IPv4 unicast (RFC 7911 §4)',
      hex`45 04  00 01 01 02 # AFI 1, SAFI 1, send`,
      { code: 69, families: [{ afi: 1, safi: 1, sendReceive: 2 }] },
    ],
    [
      'FQDN with UTF-8',
      hex`
        49 08        # FQDN, length 8
        03 72 c3 a9  # "ré"
        03 6c 61 62  # "lab"
      `,
      { code: 73, hostname: 'ré', domain: 'lab' },
    ],
    [
      'unknown code 5 (Extended Next Hop, not interpreted)',
      hex`05 06  00 01 00 01 00 02`,
      { code: 5, value: hex`00 01 00 01 00 02`, unknown: true },
    ],
  ];

  it.each(vectors)('%s', (_name, bytes, cap) => {
    expect(decodeCapability(bytes)).toEqual(cap);
    expect(toHex(encodeCapability(cap))).toBe(toHex(bytes));
    expect(decodeCapability(encodeCapability(cap))).toEqual(cap);
  });

  it('keeps an ADD-PATH capability with a Send/Receive value outside 1..3 as unknown', () => {
    const bytes = hex`45 08  00 01 01 01  00 02 01 04 # 4 is undefined`;
    expect(decodeCapability(bytes)).toEqual({ code: 69, value: bytes.subarray(2), unknown: true });
  });

  it('decodeCapability wants exactly one TLV', () => {
    expect(() => decodeCapability(hex`02 00 06 00`)).toThrow(NotificationError);
    expect(decodeCapabilities(hex`02 00 06 00`)).toEqual([{ code: 2 }, { code: 6 }]);
  });

  it('refuses to encode values that do not fit (local misuse)', () => {
    const gr = {
      code: 64,
      restartState: false,
      notification: false,
      restartTime: 4096,
      families: [],
    } as const;
    expect(() => encodeCapability(gr)).toThrow(LocalUsageError);
    expect(() => encodeCapability({ code: 73, hostname: 'x'.repeat(256), domain: '' })).toThrow(
      LocalUsageError,
    );
    expect(() => encodeCapability({ code: 9, value: new Uint8Array(256), unknown: true })).toThrow(
      LocalUsageError,
    );
    expect(() => encodeOpen(open({ otherParams: [{ type: 255, value: hex`` }] }))).toThrow(LocalUsageError);
    expect(() => encodeOpen(open({ myAs: 70000 }))).toThrow(LocalUsageError);
    const huge = Array.from({ length: 17 }, (): Capability => ({
      code: 9,
      value: new Uint8Array(255),
      unknown: true,
    }));
    expect(() => encodeOpen(open({ capabilities: huge }))).toThrow(/4096/);
  });
});

// ---------------------------------------------------------------- properties
const family = { afi: fc.integer({ min: 0, max: 0xffff }), safi: fc.integer({ min: 0, max: 0xff }) };
const shortText = fc
  .string({ unit: 'grapheme', maxLength: 12 })
  .filter((s) => new TextEncoder().encode(s).length <= 120);
const arbCapability: fc.Arbitrary<Capability> = fc.oneof(
  fc.record({ code: fc.constant(1 as const), ...family }),
  fc.constantFrom<Capability>({ code: 2 }, { code: 6 }, { code: 70 }),
  fc.record({
    code: fc.constant(64 as const),
    restartState: fc.boolean(),
    notification: fc.boolean(),
    restartTime: fc.integer({ min: 0, max: 4095 }),
    families: fc.array(fc.record({ ...family, forwardingState: fc.boolean() }), { maxLength: 8 }),
  }),
  fc.record({ code: fc.constant(65 as const), asn: fc.integer({ min: 0, max: 0xffffffff }) }),
  fc.record({
    code: fc.constant(69 as const),
    families: fc.array(fc.record({ ...family, sendReceive: fc.constantFrom<1 | 2 | 3>(1, 2, 3) }), {
      maxLength: 8,
    }),
  }),
  fc.record({ code: fc.constant(73 as const), hostname: shortText, domain: shortText }),
  fc.record({
    code: fc.constantFrom(3, 5, 9, 66, 71, 128, 200, 255),
    value: fc.uint8Array({ maxLength: 40 }),
    unknown: fc.constant(true as const),
  }),
);
const arbOpen = fc.record({
  version: fc.constant(4),
  myAs: fc.integer({ min: 0, max: 0xffff }),
  holdTime: fc.oneof(fc.constant(0), fc.integer({ min: 3, max: 0xffff })),
  bgpId: fc.integer({ min: 1, max: 0xffffffff }),
  capabilities: fc.array(arbCapability, { maxLength: 12 }),
  otherParams: fc.array(
    fc.record({
      type: fc.integer({ min: 0, max: 254 }).filter((t) => t !== 2),
      value: fc.uint8Array({ maxLength: 60 }),
    }),
    { maxLength: 3 },
  ),
});

describe('properties', () => {
  it(`encode → decode round trips random OPENs (seed ${SEED})`, () => {
    fc.assert(
      fc.property(arbOpen, (o) => {
        const bytes = encodeOpen(o);
        expect((bytes[16]! << 8) | bytes[17]!).toBe(bytes.length);
        expect(decodeOpen(bytes.subarray(19))).toEqual({ type: 'open', ...o });
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });

  it(`random bytes only ever throw NotificationError (seed ${SEED})`, () => {
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 80 }),
      // A plausible fixed part so that parameter and capability parsing is reached.
      fc
        .tuple(fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.uint8Array({ maxLength: 80 }), fc.boolean())
        .map(([fixed, rest, ext]) => {
          const head = ext ? [0xff, 0xff, rest.length >>> 8, rest.length & 0xff] : [rest.length & 0xff];
          return Uint8Array.from([4, ...fixed, ...head, ...rest]);
        }),
    );
    fc.assert(
      fc.property(body, (b) => {
        try {
          decodeOpen(b);
        } catch (e) {
          if (!(e instanceof NotificationError)) throw e;
        }
      }),
      { seed: SEED, numRuns: 5000 },
    );
  });
});
