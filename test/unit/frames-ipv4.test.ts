/**
 * IPv4 header and ICMPv4 (src/dataplane/frames/ipv4.ts, icmp4.ts): RFC 1812 §5.2.2 checks one
 * by one, accessors, in-place TTL / DSCP rewrites checked against full recomputation, the header
 * writer to exact bytes, echo replies built in place (checksums computed independently with a
 * Python one-liner over the same bytes), ICMP errors with the 576-byte quoting rule, and random
 * bytes never throwing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hex, toHex } from '../../src/lib/bytes.ts';
import { verifies } from '../../src/dataplane/frames/checksum.ts';
import {
  Ipv4Reason,
  checkIPv4,
  decrementTtl,
  ipv4Checksum,
  ipv4DontFragment,
  ipv4Dscp,
  ipv4Dst,
  ipv4Ecn,
  ipv4FragmentOffset,
  ipv4HeaderLength,
  ipv4Id,
  ipv4IsFragment,
  ipv4MoreFragments,
  ipv4Protocol,
  ipv4Src,
  ipv4TotalLength,
  ipv4Ttl,
  reasonName,
  setDscp,
  setIPv4Checksum,
  writeIPv4Header,
} from '../../src/dataplane/frames/ipv4.ts';
import {
  ICMP_ERROR_DSCP,
  ICMP_ERROR_MAX_LENGTH,
  IcmpError,
  IcmpType,
  TimeExceededCode,
  UnreachCode,
  echoReplyInPlace,
  fragNeededRest,
  icmpErrorName,
  mayGenerateIcmpError,
  writeIcmpError,
} from '../../src/dataplane/frames/icmp4.ts';

const SEED = 791;

/** 192.168.0.1 -> 192.168.0.199 UDP, checksum b861 (a widely quoted example header). */
const HEADER = hex`
  45          # version 4, IHL 5
  00          # DSCP 0, ECN 0
  00 73       # total length 115
  00 00       # id
  40 00       # DF, offset 0
  40          # TTL 64
  11          # UDP
  b8 61       # header checksum
  c0 a8 00 01 # 192.168.0.1
  c0 a8 00 c7 # 192.168.0.199
`;

function packet(header: Uint8Array, total: number): Uint8Array {
  const b = new Uint8Array(total);
  b.set(header);
  return b;
}

describe('checkIPv4 (RFC 1812 §5.2.2)', () => {
  it('accepts a valid header and returns its length', () => {
    const p = packet(HEADER, 0x73);
    expect(checkIPv4(p, 0, p.length)).toBe(20);
    // Ethernet padding after the datagram is fine
    const padded = packet(HEADER, 0x73 + 10);
    expect(checkIPv4(padded, 0, padded.length)).toBe(20);
  });

  it('rejects each malformation with its reason', () => {
    const p = packet(HEADER, 0x73);
    expect(checkIPv4(p, 0, 19)).toBe(Ipv4Reason.TOO_SHORT);
    const v6 = Uint8Array.from(p);
    v6[0] = 0x65;
    expect(checkIPv4(v6, 0, v6.length)).toBe(Ipv4Reason.BAD_VERSION);
    const ihl4 = Uint8Array.from(p);
    ihl4[0] = 0x44;
    expect(checkIPv4(ihl4, 0, ihl4.length)).toBe(Ipv4Reason.BAD_IHL);
    const ihl15 = Uint8Array.from(p.subarray(0, 40));
    ihl15[0] = 0x4f;
    expect(checkIPv4(ihl15, 0, 40)).toBe(Ipv4Reason.TOO_SHORT);
    expect(checkIPv4(p, 0, 0x72)).toBe(Ipv4Reason.BAD_TOTAL_LENGTH);
    const tl = Uint8Array.from(p);
    tl[3] = 19;
    tl[2] = 0;
    setIPv4Checksum(tl, 0);
    expect(checkIPv4(tl, 0, tl.length)).toBe(Ipv4Reason.BAD_TOTAL_LENGTH);
    const ck = Uint8Array.from(p);
    ck[11] = ck[11]! ^ 1;
    expect(checkIPv4(ck, 0, ck.length)).toBe(Ipv4Reason.BAD_CHECKSUM);
    expect(reasonName(Ipv4Reason.BAD_CHECKSUM)).toBe('BAD_CHECKSUM');
    expect(reasonName(-999)).toBe('unknown(-999)');
  });
});

describe('accessors', () => {
  it('read every field', () => {
    const h = hex`
      46 b9 01 00  ab cd 20 05  01 06 00 00  0a 00 00 01  0a 00 00 02
      01 01 01 01   # 4 bytes of options (IHL 6)
    `;
    expect(ipv4HeaderLength(h, 0)).toBe(24);
    expect(ipv4Dscp(h, 0)).toBe(46); // EF
    expect(ipv4Ecn(h, 0)).toBe(1);
    expect(ipv4TotalLength(h, 0)).toBe(256);
    expect(ipv4Id(h, 0)).toBe(0xabcd);
    expect(ipv4DontFragment(h, 0)).toBe(false);
    expect(ipv4MoreFragments(h, 0)).toBe(true);
    expect(ipv4FragmentOffset(h, 0)).toBe(5);
    expect(ipv4IsFragment(h, 0)).toBe(true);
    expect(ipv4Ttl(h, 0)).toBe(1);
    expect(ipv4Protocol(h, 0)).toBe(6);
    expect(ipv4Checksum(h, 0)).toBe(0);
    expect(ipv4Src(h, 0)).toBe(0x0a000001);
    expect(ipv4Dst(h, 0)).toBe(0x0a000002);
    expect(ipv4DontFragment(HEADER, 0)).toBe(true);
    expect(ipv4IsFragment(HEADER, 0)).toBe(false);
  });
});

describe('in-place rewrites', () => {
  it('decrementTtl updates the checksum incrementally', () => {
    const h = Uint8Array.from(HEADER);
    expect(decrementTtl(h, 0)).toBe(63);
    expect(ipv4Ttl(h, 0)).toBe(63);
    expect(verifies(h, 0, 20)).toBe(true);
    expect(ipv4Checksum(h, 0)).toBe(0xb961);
  });

  it('decrementTtl leaves an expiring packet untouched and returns 0 (RFC 1812 §5.3.1)', () => {
    const h = Uint8Array.from(HEADER);
    h[8] = 1;
    setIPv4Checksum(h, 0);
    const before = toHex(h);
    expect(decrementTtl(h, 0)).toBe(0);
    expect(toHex(h)).toBe(before);
  });

  it('setDscp keeps ECN and the checksum valid', () => {
    const h = Uint8Array.from(HEADER);
    h[1] = 0x03; // ECN CE
    setIPv4Checksum(h, 0);
    setDscp(h, 0, 46);
    expect(h[1]).toBe(0xbb);
    expect(verifies(h, 0, 20)).toBe(true);
  });

  it(`TTL and DSCP rewrites equal full recomputation on random headers (seed ${SEED})`, () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 20, maxLength: 20 }),
        fc.integer({ min: 2, max: 255 }),
        fc.integer({ min: 0, max: 63 }),
        (h0, ttl, dscp) => {
          const h = Uint8Array.from(h0);
          h[0] = 0x45;
          h[8] = ttl;
          setIPv4Checksum(h, 0);
          const ecn = h[1]! & 3;
          expect(decrementTtl(h, 0)).toBe(ttl - 1);
          setDscp(h, 0, dscp);
          expect(ipv4Dscp(h, 0)).toBe(dscp);
          expect(ipv4Ecn(h, 0)).toBe(ecn);
          const inc = ipv4Checksum(h, 0);
          setIPv4Checksum(h, 0);
          expect(inc).toBe(ipv4Checksum(h, 0));
        },
      ),
      { seed: SEED, numRuns: 2000 },
    );
  });
});

describe('writeIPv4Header', () => {
  it('encodes to exact bytes', () => {
    const b = new Uint8Array(20);
    const end = writeIPv4Header(b, 0, {
      src: 0xc0a80001,
      dst: 0xc0a800c7,
      proto: 17,
      ttl: 64,
      dscp: 0,
      id: 0,
      dontFragment: true,
      payloadLength: 0x73 - 20,
    });
    expect(end).toBe(20);
    expect(toHex(b)).toBe(toHex(HEADER));
  });

  it(`round trip through checkIPv4 and the accessors (seed ${SEED})`, () => {
    fc.assert(
      fc.property(
        fc.record({
          src: fc.nat(0xffffffff),
          dst: fc.nat(0xffffffff),
          proto: fc.integer({ min: 0, max: 255 }),
          ttl: fc.integer({ min: 0, max: 255 }),
          dscp: fc.integer({ min: 0, max: 63 }),
          ecn: fc.integer({ min: 0, max: 3 }),
          id: fc.integer({ min: 0, max: 0xffff }),
          dontFragment: fc.boolean(),
          payloadLength: fc.integer({ min: 0, max: 200 }),
        }),
        fc.nat(5),
        (h, at) => {
          const b = new Uint8Array(at + 20 + h.payloadLength);
          expect(writeIPv4Header(b, at, h)).toBe(at + 20);
          expect(checkIPv4(b, at, b.length)).toBe(20);
          expect([ipv4Src(b, at), ipv4Dst(b, at), ipv4Protocol(b, at), ipv4Ttl(b, at)]).toEqual([
            h.src,
            h.dst,
            h.proto,
            h.ttl,
          ]);
          expect([ipv4Dscp(b, at), ipv4Ecn(b, at), ipv4Id(b, at), ipv4DontFragment(b, at)]).toEqual([
            h.dscp,
            h.ecn,
            h.id,
            h.dontFragment,
          ]);
          expect(ipv4TotalLength(b, at)).toBe(20 + h.payloadLength);
        },
      ),
      { seed: SEED, numRuns: 500 },
    );
  });
});

/** Echo request 10.0.0.1 -> 10.0.0.2, id 0x1234 seq 1, data "abcd"; checksums from Python. */
const ECHO_REQUEST = hex`
  45 00 00 20  00 01 00 00  40 01 66 da  0a 00 00 01  0a 00 00 02
  08 00 21 04  12 34 00 01  61 62 63 64
`;
const ECHO_REPLY = hex`
  45 00 00 20  00 01 00 00  40 01 66 da  0a 00 00 02  0a 00 00 01
  00 00 29 04  12 34 00 01  61 62 63 64
`;

describe('ICMP echo reply in place', () => {
  it('turns the request into the exact reply', () => {
    const b = Uint8Array.from(ECHO_REQUEST);
    expect(echoReplyInPlace(b, 0, b.length)).toBe(32);
    expect(toHex(b)).toBe(toHex(ECHO_REPLY));
  });

  it('resets the TTL with an incremental checksum update', () => {
    const b = Uint8Array.from(ECHO_REQUEST);
    b[8] = 3;
    setIPv4Checksum(b, 0);
    expect(echoReplyInPlace(b, 0, b.length, 128)).toBe(32);
    expect(ipv4Ttl(b, 0)).toBe(128);
    expect(ipv4Checksum(b, 0)).toBe(0x26da);
  });

  it('strips IP options, moving the ICMP message up', () => {
    const opt = hex`
      46 00 00 24  00 01 00 00  40 01 00 00  0a 00 00 01  0a 00 00 02
      01 01 01 00                                   # NOP NOP NOP EOL
      08 00 21 04  12 34 00 01  61 62 63 64
    `;
    setIPv4Checksum(opt, 0);
    expect(echoReplyInPlace(opt, 0, opt.length)).toBe(32);
    expect(toHex(opt.subarray(0, 32))).toBe(toHex(ECHO_REPLY));
  });

  it('errors', () => {
    const notEcho = Uint8Array.from(ECHO_REPLY);
    expect(echoReplyInPlace(notEcho, 0, 32)).toBe(IcmpError.NOT_ECHO_REQUEST);
    const badSum = Uint8Array.from(ECHO_REQUEST);
    badSum[27] = badSum[27]! ^ 0xff;
    expect(echoReplyInPlace(badSum, 0, 32)).toBe(IcmpError.BAD_CHECKSUM);
    const udp = Uint8Array.from(ECHO_REQUEST);
    udp[9] = 17;
    setIPv4Checksum(udp, 0);
    expect(echoReplyInPlace(udp, 0, 32)).toBe(IcmpError.NOT_ICMP);
    const frag = Uint8Array.from(ECHO_REQUEST);
    frag[6] = 0x20;
    setIPv4Checksum(frag, 0);
    expect(echoReplyInPlace(frag, 0, 32)).toBe(IcmpError.FRAGMENT);
    const short = hex`45 00 00 1b  00 01 00 00  40 01 00 00  0a 00 00 01  0a 00 00 02  08 00 00 00 00 00 00`;
    setIPv4Checksum(short, 0);
    expect(echoReplyInPlace(short, 0, short.length)).toBe(IcmpError.TOO_SHORT);
    expect(echoReplyInPlace(ECHO_REQUEST, 0, 10)).toBe(Ipv4Reason.TOO_SHORT);
    expect(icmpErrorName(IcmpError.FRAGMENT)).toBe('FRAGMENT');
  });
});

describe('ICMP errors', () => {
  it('time exceeded quoting a short packet whole, to exact bytes (checksums from Python)', () => {
    const out = new Uint8Array(100);
    const end = writeIcmpError(
      out,
      0,
      IcmpType.TIME_EXCEEDED,
      TimeExceededCode.TTL,
      0x0a0000fe,
      0x0a000001,
      ECHO_REQUEST,
      0,
      32,
    );
    expect(end).toBe(20 + 8 + 32);
    expect(toHex(out.subarray(0, end))).toBe(
      toHex(hex`
        45 c0 00 3c  00 00 00 00  40 01 65 03   # DSCP CS6 (RFC 1812 §4.3.2.5), ICMP, id 0
        0a 00 00 fe  0a 00 00 01                # 10.0.0.254 -> 10.0.0.1
        0b 00 f4 ff  00 00 00 00                # time exceeded, TTL; unused
        ${toHex(ECHO_REQUEST)}                  # the whole original datagram
      `),
    );
    expect(ipv4Dscp(out, 0)).toBe(ICMP_ERROR_DSCP);
  });

  it('quotes at most what fits in 576 bytes (RFC 1812 §4.3.2.3)', () => {
    const big = new Uint8Array(1500).map((_, i) => i & 0xff);
    const out = new Uint8Array(2000);
    const end = writeIcmpError(
      out,
      10,
      IcmpType.DEST_UNREACHABLE,
      UnreachCode.HOST,
      1,
      2,
      big,
      0,
      big.length,
    );
    expect(end - 10).toBe(ICMP_ERROR_MAX_LENGTH);
    expect(ipv4TotalLength(out, 10)).toBe(576);
    expect(verifies(out, 30, 556)).toBe(true);
    expect(toHex(out.subarray(38, end))).toBe(toHex(big.subarray(0, 548)));
  });

  it('frag needed carries the next-hop MTU (RFC 1191 §4)', () => {
    const out = new Uint8Array(100);
    writeIcmpError(
      out,
      0,
      IcmpType.DEST_UNREACHABLE,
      UnreachCode.FRAG_NEEDED,
      1,
      2,
      ECHO_REQUEST,
      0,
      32,
      64,
      fragNeededRest(1400),
    );
    expect(toHex(out.subarray(20, 28)).slice(0, 4)).toBe('0304');
    expect(toHex(out.subarray(24, 28))).toBe('00000578');
  });

  it('the original may overlap the output in the same buffer', () => {
    const b = new Uint8Array(200);
    b.set(ECHO_REQUEST, 14);
    const end = writeIcmpError(
      b,
      0,
      IcmpType.DEST_UNREACHABLE,
      UnreachCode.ADMIN_PROHIBITED,
      1,
      2,
      b,
      14,
      32,
    );
    expect(toHex(b.subarray(28, end))).toBe(toHex(ECHO_REQUEST));
    expect(verifies(b, 20, end - 20)).toBe(true);
  });

  it('mayGenerateIcmpError follows RFC 1812 §4.3.2.7', () => {
    const ok = Uint8Array.from(ECHO_REQUEST);
    expect(mayGenerateIcmpError(ok, 0, 32)).toBe(true);
    expect(mayGenerateIcmpError(ok, 0, 32, true)).toBe(false); // link-layer broadcast
    const errMsg = Uint8Array.from(ECHO_REQUEST);
    errMsg[20] = IcmpType.DEST_UNREACHABLE;
    expect(mayGenerateIcmpError(errMsg, 0, 32)).toBe(false);
    const mcast = Uint8Array.from(ECHO_REQUEST);
    mcast[16] = 224;
    expect(mayGenerateIcmpError(mcast, 0, 32)).toBe(false);
    const bcast = Uint8Array.from(ECHO_REQUEST);
    bcast.fill(255, 16, 20);
    expect(mayGenerateIcmpError(bcast, 0, 32)).toBe(false);
    const frag = Uint8Array.from(ECHO_REQUEST);
    frag[7] = 1;
    expect(mayGenerateIcmpError(frag, 0, 32)).toBe(false);
    const loop = Uint8Array.from(ECHO_REQUEST);
    loop[12] = 127;
    expect(mayGenerateIcmpError(loop, 0, 32)).toBe(false);
    const zero = Uint8Array.from(ECHO_REQUEST);
    zero.fill(0, 12, 16);
    expect(mayGenerateIcmpError(zero, 0, 32)).toBe(false);
  });
});

describe(`random bytes never throw (seed ${SEED})`, () => {
  it('checkIPv4 and echoReplyInPlace return a length or a known code', () => {
    const codes = new Set<number>([...Object.values(Ipv4Reason), ...Object.values(IcmpError)]);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.nat(8), fc.boolean(), (b0, o, fix) => {
        const b = Uint8Array.from(b0);
        if (fix && b.length >= o + 20) {
          // make it likely to pass the header checks so the ICMP path is exercised
          b[o] = 0x45;
          b[o + 2] = 0;
          b[o + 3] = b.length - o;
          b[o + 6] = 0;
          b[o + 7] = 0;
          b[o + 9] = 1;
          setIPv4Checksum(b, o);
        }
        const r = checkIPv4(b, o, b.length);
        expect(r >= 0 ? r >= 20 : codes.has(r)).toBe(true);
        const e = echoReplyInPlace(b, o, b.length);
        expect(e >= 0 ? e <= b.length : codes.has(e)).toBe(true);
        if (r >= 0) mayGenerateIcmpError(b, o, b.length);
      }),
      { seed: SEED, numRuns: 5000 },
    );
  });
});
