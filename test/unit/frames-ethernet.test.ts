/**
 * Ethernet / 802.1Q / 802.1ad framing and ARP (src/dataplane/frames/ethernet.ts, arp.ts):
 * annotated vectors decoded, encoded to exact bytes and round-tripped; random bytes never throw.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hex, toHex } from '../../src/lib/bytes.ts';
import { AddressError } from '../../src/lib/ip.ts';
import {
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  ETHERTYPE_VLAN,
  EthError,
  ethErrorName,
  ethHeaderLength,
  etherTypeName,
  formatMac,
  isBroadcast,
  isMulticast,
  macEquals,
  newEthInfo,
  parseEthernet,
  parseMac,
  writeEthernet,
} from '../../src/dataplane/frames/ethernet.ts';
import {
  ArpError,
  ArpOp,
  arpErrorName,
  isGratuitousArp,
  newArpInfo,
  parseArp,
  writeArp,
} from '../../src/dataplane/frames/arp.ts';

const SEED = 8021;
const DST = parseMac('02:00:00:00:00:02');
const SRC = parseMac('02:00:00:00:00:01');

const UNTAGGED = hex`
  02 00 00 00 00 02   # dst
  02 00 00 00 00 01   # src
  08 00               # IPv4
`;
const DOT1Q = hex`
  02 00 00 00 00 02  02 00 00 00 00 01
  81 00  a0 64        # 802.1Q, PCP 5, VID 100
  86 dd               # IPv6
`;
const QINQ = hex`
  02 00 00 00 00 02  02 00 00 00 00 01
  88 a8  60 0a        # 802.1ad S-tag, PCP 3, VID 10
  81 00  60 c8        # 802.1Q C-tag, PCP 3, VID 200
  08 06               # ARP
`;
const DOUBLE_8100 = hex`
  02 00 00 00 00 02  02 00 00 00 00 01
  81 00  00 0a        # first 802.1Q tag, VID 10
  81 00  0f fe        # second 802.1Q tag, VID 4094
  08 00
`;
const S_TAG_ONLY = hex`
  02 00 00 00 00 02  02 00 00 00 00 01
  88 a8  e0 07        # 802.1ad, PCP 7, VID 7
  08 00
`;

describe('parseEthernet', () => {
  const e = newEthInfo();

  it('untagged', () => {
    expect(parseEthernet(UNTAGGED, 0, UNTAGGED.length, e)).toBe(14);
    expect(e).toEqual({
      dstOff: 0,
      srcOff: 6,
      outerVlan: -1,
      innerVlan: -1,
      pcp: 0,
      etherType: ETHERTYPE_IPV4,
      payloadOff: 14,
    });
  });

  it('single 802.1Q tag is reported as innerVlan', () => {
    expect(parseEthernet(DOT1Q, 0, DOT1Q.length, e)).toBe(18);
    expect(e).toMatchObject({ outerVlan: -1, innerVlan: 100, pcp: 5, etherType: ETHERTYPE_IPV6 });
  });

  it('QinQ 0x88a8 + 0x8100', () => {
    expect(parseEthernet(QINQ, 0, QINQ.length, e)).toBe(22);
    expect(e).toMatchObject({ outerVlan: 10, innerVlan: 200, pcp: 3, etherType: ETHERTYPE_ARP });
  });

  it('double 0x8100 tag is accepted as QinQ', () => {
    expect(parseEthernet(DOUBLE_8100, 0, DOUBLE_8100.length, e)).toBe(22);
    expect(e).toMatchObject({ outerVlan: 10, innerVlan: 4094, etherType: ETHERTYPE_IPV4 });
  });

  it('a lone S-tag is reported as outerVlan', () => {
    expect(parseEthernet(S_TAG_ONLY, 0, S_TAG_ONLY.length, e)).toBe(18);
    expect(e).toMatchObject({ outerVlan: 7, innerVlan: -1, pcp: 7 });
  });

  it('honours the offset', () => {
    const b = new Uint8Array(5 + QINQ.length);
    b.set(QINQ, 5);
    expect(parseEthernet(b, 5, b.length, e)).toBe(27);
    expect(e).toMatchObject({ dstOff: 5, srcOff: 11, payloadOff: 27 });
  });

  it('errors', () => {
    expect(parseEthernet(UNTAGGED, 0, 13, e)).toBe(EthError.TOO_SHORT);
    expect(parseEthernet(DOT1Q, 0, 17, e)).toBe(EthError.TAG_TRUNCATED);
    expect(parseEthernet(QINQ, 0, 21, e)).toBe(EthError.TAG_TRUNCATED);
    const triple = hex`${toHex(QINQ.subarray(0, 20))} 81 00 00 01 08 00`;
    expect(parseEthernet(triple, 0, triple.length, e)).toBe(EthError.TOO_MANY_TAGS);
    const reversed = hex`02 00 00 00 00 02 02 00 00 00 00 01  81 00 00 01  88 a8 00 02  08 00`;
    expect(parseEthernet(reversed, 0, reversed.length, e)).toBe(EthError.BAD_TAG_ORDER);
    expect(ethErrorName(EthError.BAD_TAG_ORDER)).toBe('BAD_TAG_ORDER');
    expect(etherTypeName(0x88a8)).toBe('QINQ');
    expect(etherTypeName(0x1234)).toBe('unknown(4660)');
  });
});

describe('writeEthernet', () => {
  it('untagged, 802.1Q (single VLAN as innerVlan), QinQ, double 0x8100 to exact bytes', () => {
    const b = new Uint8Array(32);
    expect(writeEthernet(b, 0, DST, SRC, ETHERTYPE_IPV4)).toBe(14);
    expect(toHex(b.subarray(0, 14))).toBe(toHex(UNTAGGED));
    expect(writeEthernet(b, 0, DST, SRC, ETHERTYPE_IPV6, -1, 100, undefined, 5)).toBe(18);
    expect(toHex(b.subarray(0, 18))).toBe(toHex(DOT1Q));
    expect(writeEthernet(b, 0, DST, SRC, ETHERTYPE_ARP, 10, 200, 0x88a8, 3)).toBe(22);
    expect(toHex(b.subarray(0, 22))).toBe(toHex(QINQ));
    expect(writeEthernet(b, 0, DST, SRC, ETHERTYPE_IPV4, 10, 4094, ETHERTYPE_VLAN)).toBe(22);
    expect(toHex(b.subarray(0, 22))).toBe(toHex(DOUBLE_8100));
    expect(ethHeaderLength()).toBe(14);
    expect(ethHeaderLength(-1, 5)).toBe(18);
    expect(ethHeaderLength(1, 5)).toBe(22);
  });

  it(`round trip for any tags (seed ${SEED})`, () => {
    const e = newEthInfo();
    fc.assert(
      fc.property(
        fc.integer({ min: -1, max: 4095 }),
        fc.integer({ min: -1, max: 4095 }),
        fc.integer({ min: 0, max: 7 }),
        fc.constantFrom(0x0800, 0x86dd, 0x0806, 0x8847),
        fc.nat(8),
        (outer, inner, pcp, et, at) => {
          const b = new Uint8Array(40);
          const end = writeEthernet(b, at, DST, SRC, et, outer, inner, 0x88a8, pcp);
          expect(end).toBe(at + ethHeaderLength(outer, inner));
          expect(parseEthernet(b, at, end, e)).toBe(end);
          expect(e.outerVlan).toBe(outer);
          expect(e.innerVlan).toBe(inner);
          expect(e.pcp).toBe(outer >= 0 || inner >= 0 ? pcp : 0);
          expect(e.etherType).toBe(et);
          expect(macEquals(b, e.dstOff, DST)).toBe(true);
          expect(macEquals(b, e.srcOff, SRC)).toBe(true);
        },
      ),
      { seed: SEED, numRuns: 500 },
    );
  });
});

describe('MAC helpers', () => {
  it('broadcast / multicast / equality / format / parse', () => {
    const b = hex`ff ff ff ff ff ff  33 33 ff 00 00 02  02 00 00 00 00 01`;
    expect(isBroadcast(b, 0)).toBe(true);
    expect(isMulticast(b, 0)).toBe(true);
    expect(isBroadcast(b, 6)).toBe(false);
    expect(isMulticast(b, 6)).toBe(true);
    expect(isMulticast(b, 12)).toBe(false);
    expect(macEquals(b, 12, SRC)).toBe(true);
    expect(macEquals(b, 12, DST)).toBe(false);
    expect(formatMac(b, 6)).toBe('33:33:ff:00:00:02');
    expect(toHex(parseMac('0A-0b-0C-0d-0E-0f'))).toBe('0a0b0c0d0e0f');
    expect(() => parseMac('02:00:00:00:00')).toThrow(AddressError);
    expect(() => parseMac('02:00:00:00:00:zz')).toThrow(AddressError);
  });
});

const ARP_REQUEST = hex`
  00 01          # hardware type Ethernet
  08 00          # protocol IPv4
  06 04          # hln 6, pln 4
  00 01          # op request
  02 00 00 00 00 01   c0 00 02 01   # sender 02:00:00:00:00:01 192.0.2.1
  00 00 00 00 00 00   c0 00 02 02   # target unknown, 192.0.2.2
`;

describe('ARP', () => {
  const a = newArpInfo();

  it('decodes a request', () => {
    expect(parseArp(ARP_REQUEST, 0, ARP_REQUEST.length, a)).toBe(28);
    expect(a).toEqual({
      op: ArpOp.REQUEST,
      senderMacOff: 8,
      senderIp: 0xc0000201,
      targetMacOff: 18,
      targetIp: 0xc0000202,
    });
    expect(isGratuitousArp(a)).toBe(false);
  });

  it('encodes a request to exact bytes and a reply that round-trips', () => {
    const b = new Uint8Array(40);
    expect(writeArp(b, 0, ArpOp.REQUEST, SRC, 0xc0000201, undefined, 0xc0000202)).toBe(28);
    expect(toHex(b.subarray(0, 28))).toBe(toHex(ARP_REQUEST));
    expect(writeArp(b, 4, ArpOp.REPLY, DST, 0xc0000202, SRC, 0xc0000201)).toBe(32);
    expect(parseArp(b, 4, 32, a)).toBe(32);
    expect(a.op).toBe(ArpOp.REPLY);
    expect(macEquals(b, a.senderMacOff, DST)).toBe(true);
    expect(macEquals(b, a.targetMacOff, SRC)).toBe(true);
    expect(a.senderIp).toBe(0xc0000202);
  });

  it('gratuitous ARP: sender IP = target IP, not a 0.0.0.0 probe (RFC 5227 §3)', () => {
    const b = new Uint8Array(28);
    writeArp(b, 0, ArpOp.REQUEST, SRC, 0xc0000201, undefined, 0xc0000201);
    parseArp(b, 0, 28, a);
    expect(isGratuitousArp(a)).toBe(true);
    writeArp(b, 0, ArpOp.REQUEST, SRC, 0, undefined, 0);
    parseArp(b, 0, 28, a);
    expect(isGratuitousArp(a)).toBe(false);
  });

  it('errors', () => {
    const bad = (i: number, v: number): Uint8Array => {
      const b = Uint8Array.from(ARP_REQUEST);
      b[i] = v;
      return b;
    };
    expect(parseArp(ARP_REQUEST, 0, 27, a)).toBe(ArpError.TOO_SHORT);
    expect(parseArp(bad(1, 6), 0, 28, a)).toBe(ArpError.BAD_HARDWARE);
    expect(parseArp(bad(2, 0x86), 0, 28, a)).toBe(ArpError.BAD_PROTOCOL);
    expect(parseArp(bad(5, 16), 0, 28, a)).toBe(ArpError.BAD_LENGTHS);
    expect(parseArp(bad(7, 3), 0, 28, a)).toBe(ArpError.BAD_OP);
    expect(arpErrorName(ArpError.BAD_OP)).toBe('BAD_OP');
  });
});

describe(`random bytes never throw (seed ${SEED})`, () => {
  it('parseEthernet and parseArp return an offset or a known code', () => {
    const e = newEthInfo();
    const a = newArpInfo();
    const ethCodes = new Set<number>(Object.values(EthError));
    const arpCodes = new Set<number>(Object.values(ArpError));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(70), fc.nat(70), (b, o, l) => {
        const end = Math.min(b.length, o + l);
        const r = parseEthernet(b, o, end, e);
        expect(r >= 0 ? r <= end : ethCodes.has(r)).toBe(true);
        const s = parseArp(b, o, end, a);
        expect(s >= 0 ? s <= end : arpCodes.has(s)).toBe(true);
      }),
      { seed: SEED, numRuns: 5000 },
    );
  });
});
