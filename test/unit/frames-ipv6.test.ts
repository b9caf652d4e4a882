/**
 * IPv6, ICMPv6 and Neighbor Discovery (src/dataplane/frames/ipv6.ts, icmp6.ts, nd.ts). ICMPv6
 * checksums in the vectors were computed independently (Python: 16-bit word sum over the
 * pseudo-header of RFC 8200 §8.1 and the message, folded and complemented); the tshark test
 * (frames-tshark.test.ts) checks the writers' output once more.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hex, toHex } from '../../src/lib/bytes.ts';
import { formatIPv6, parseIPv6 } from '../../src/lib/ip.ts';
import { parseMac } from '../../src/dataplane/frames/ethernet.ts';
import {
  Ipv6Reason,
  checkIPv6,
  decrementHopLimit,
  ipv6Dscp,
  ipv6Ecn,
  ipv6FlowLabel,
  ipv6HopLimit,
  ipv6NextHeader,
  ipv6PayloadLength,
  ipv6ReasonName,
  ipv6TrafficClass,
  isIPv6LinkLocal,
  newUpperLayer,
  setDscp,
  upperLayer,
  writeIPv6Header,
} from '../../src/dataplane/frames/ipv6.ts';
import {
  Icmp6Error,
  Icmp6Type,
  ParamProblem6Code,
  TimeExceeded6Code,
  Unreach6Code,
  echoReplyInPlace6,
  icmp6ChecksumValid,
  mayGenerateIcmp6Error,
  setIcmp6Checksum,
  writeIcmp6Error,
} from '../../src/dataplane/frames/icmp6.ts';
import {
  ALL_NODES,
  NA_FLAG_OVERRIDE,
  NA_FLAG_ROUTER,
  NA_FLAG_SOLICITED,
  NdError,
  linkLocalFromMac,
  multicastMac,
  ndErrorName,
  newNdInfo,
  parseNd,
  raLength,
  solicitedNodeAddress,
  writeNa,
  writeNs,
  writeRa,
  type RaFields,
} from '../../src/dataplane/frames/nd.ts';

const SEED = 8200;
const MAC1 = parseMac('02:00:00:00:00:01');
const MAC2 = parseMac('02:00:00:00:00:02');
const A1 = parseIPv6('2001:db8::1');
const A2 = parseIPv6('2001:db8::2');
const LL1 = parseIPv6('fe80::1');

const ECHO_REQUEST = hex`
  60 00 00 00                                       # version 6, TC 0, flow 0
  00 0c  3a  40                                     # payload 12, ICMPv6, hop limit 64
  fe 80 00 00 00 00 00 00  00 00 00 00 00 00 00 01  # fe80::1
  fe 80 00 00 00 00 00 00  00 00 00 00 00 00 00 02  # fe80::2
  80 00 ab b8  12 34 00 01  61 62 63 64             # echo request id 0x1234 seq 1 "abcd"
`;
const ECHO_REPLY = hex`
  60 00 00 00  00 0c 3a 40
  fe 80 00 00 00 00 00 00  00 00 00 00 00 00 00 02
  fe 80 00 00 00 00 00 00  00 00 00 00 00 00 00 01
  81 00 aa b8  12 34 00 01  61 62 63 64
`;
const NS = hex`
  60 00 00 00  00 20 3a ff                          # payload 32, hop limit 255
  20 01 0d b8 00 00 00 00  00 00 00 00 00 00 00 01  # 2001:db8::1
  ff 02 00 00 00 00 00 00  00 00 00 01 ff 00 00 02  # solicited-node of 2001:db8::2
  87 00 1c 27  00 00 00 00                          # NS, checksum 1c27
  20 01 0d b8 00 00 00 00  00 00 00 00 00 00 00 02  # target 2001:db8::2
  01 01  02 00 00 00 00 01                          # source LLA 02:00:00:00:00:01
`;
const NA = hex`
  60 00 00 00  00 20 3a ff
  20 01 0d b8 00 00 00 00  00 00 00 00 00 00 00 02
  20 01 0d b8 00 00 00 00  00 00 00 00 00 00 00 01
  88 00 8a 71  60 00 00 00                          # NA, S and O set
  20 01 0d b8 00 00 00 00  00 00 00 00 00 00 00 02
  02 01  02 00 00 00 00 02                          # target LLA 02:00:00:00:00:02
`;
const RA = hex`
  60 00 00 00  00 40 3a ff
  fe 80 00 00 00 00 00 00  00 00 00 00 00 00 00 01  # fe80::1
  ff 02 00 00 00 00 00 00  00 00 00 00 00 00 00 01  # ff02::1
  86 00 ed da                                       # RA
  40  40  07 08                                     # cur hop limit 64, O flag, lifetime 1800
  00 00 00 00  00 00 00 00                          # reachable, retrans
  01 01  02 00 00 00 00 01                          # source LLA
  05 01  00 00  00 00 05 aa                         # MTU 1450
  03 04  40  c0                                     # prefix /64, L and A
  00 27 8d 00  00 09 3a 80  00 00 00 00             # valid 30 days, preferred 7 days
  20 01 0d b8 00 01 00 00  00 00 00 00 00 00 00 00  # 2001:db8:1::
`;
const RS = hex`
  60 00 00 00  00 10 3a ff
  fe 80 00 00 00 00 00 00  00 00 00 00 00 00 00 02
  ff 02 00 00 00 00 00 00  00 00 00 00 00 00 00 02
  85 00 7a 2a  00 00 00 00
  01 01  02 00 00 00 00 02
`;
const DAD_NS = hex`
  60 00 00 00  00 18 3a ff
  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  # ::
  ff 02 00 00 00 00 00 00  00 00 00 01 ff 00 00 02
  87 00 4c eb  00 00 00 00
  20 01 0d b8 00 00 00 00  00 00 00 00 00 00 00 02
`;

const RA_FIELDS: RaFields = {
  curHopLimit: 64,
  managed: false,
  other: true,
  routerLifetime: 1800,
  reachableTime: 0,
  retransTimer: 0,
  sourceMac: MAC1,
  mtu: 1450,
  prefixes: [
    {
      prefix: parseIPv6('2001:db8:1::ffff'), // host bits are cleared on the wire
      prefixLength: 64,
      onLink: true,
      autonomous: true,
      validLifetime: 2592000,
      preferredLifetime: 604800,
    },
  ],
};

describe('IPv6 header', () => {
  it('checkIPv6 accepts and rejects', () => {
    expect(checkIPv6(ECHO_REQUEST, 0, ECHO_REQUEST.length)).toBe(40);
    expect(checkIPv6(ECHO_REQUEST, 0, 39)).toBe(Ipv6Reason.TOO_SHORT);
    expect(checkIPv6(ECHO_REQUEST, 0, 51)).toBe(Ipv6Reason.BAD_PAYLOAD_LENGTH);
    const v4 = Uint8Array.from(ECHO_REQUEST);
    v4[0] = 0x45;
    expect(checkIPv6(v4, 0, v4.length)).toBe(Ipv6Reason.BAD_VERSION);
    expect(ipv6ReasonName(Ipv6Reason.EXT_TRUNCATED)).toBe('EXT_TRUNCATED');
  });

  it('accessors', () => {
    const h = hex`6b 8a bc de  01 00 11 05`; // TC 0xb8 (EF, ECN 0), flow 0xabcde
    expect(ipv6TrafficClass(h, 0)).toBe(0xb8);
    expect(ipv6Dscp(h, 0)).toBe(46);
    expect(ipv6Ecn(h, 0)).toBe(0);
    expect(ipv6FlowLabel(h, 0)).toBe(0xabcde);
    expect(ipv6PayloadLength(h, 0)).toBe(256);
    expect(ipv6NextHeader(h, 0)).toBe(17);
    expect(ipv6HopLimit(h, 0)).toBe(5);
    expect(isIPv6LinkLocal(LL1, 0)).toBe(true);
    expect(isIPv6LinkLocal(A1, 0)).toBe(false);
  });

  it('writeIPv6Header to exact bytes and round trip', () => {
    const b = new Uint8Array(52);
    expect(
      writeIPv6Header(b, 0, {
        src: LL1,
        dst: parseIPv6('fe80::2'),
        nextHeader: 58,
        hopLimit: 64,
        payloadLength: 12,
      }),
    ).toBe(40);
    expect(toHex(b.subarray(0, 40))).toBe(toHex(ECHO_REQUEST.subarray(0, 40)));
    writeIPv6Header(b, 0, {
      src: b,
      srcOff: 24,
      dst: A1,
      nextHeader: 17,
      hopLimit: 1,
      dscp: 46,
      ecn: 3,
      flowLabel: 0xfffff,
      payloadLength: 12,
    });
    expect(toHex(b.subarray(0, 8))).toBe('6bbfffff000c1101');
    expect([ipv6Dscp(b, 0), ipv6Ecn(b, 0), ipv6FlowLabel(b, 0)]).toEqual([46, 3, 0xfffff]);
    expect(formatIPv6(b, 8)).toBe('fe80::2');
  });

  it(`setDscp keeps ECN and the flow label; decrementHopLimit stops at 1 (seed ${SEED})`, () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 8, maxLength: 8 }),
        fc.integer({ min: 0, max: 63 }),
        (h0, dscp) => {
          const h = Uint8Array.from(h0);
          h[0] = 0x60 | (h[0]! & 0x0f);
          const ecn = ipv6Ecn(h, 0);
          const fl = ipv6FlowLabel(h, 0);
          const hl = ipv6HopLimit(h, 0);
          setDscp(h, 0, dscp);
          expect([h[0] >>> 4, ipv6Dscp(h, 0), ipv6Ecn(h, 0), ipv6FlowLabel(h, 0)]).toEqual([
            6,
            dscp,
            ecn,
            fl,
          ]);
          expect(decrementHopLimit(h, 0)).toBe(hl <= 1 ? 0 : hl - 1);
          expect(ipv6HopLimit(h, 0)).toBe(hl <= 1 ? hl : hl - 1);
        },
      ),
      { seed: SEED, numRuns: 500 },
    );
  });
});

/** A packet with the given extension header bytes between the fixed header and a UDP header. */
function withExt(
  firstNh: number,
  ext: Uint8Array,
  tail = hex`30 39 00 35 00 08 00 00`,
  src = A1,
  dst = A2,
): Uint8Array {
  const b = new Uint8Array(40 + ext.length + tail.length);
  writeIPv6Header(b, 0, {
    src,
    dst,
    nextHeader: firstNh,
    hopLimit: 64,
    payloadLength: ext.length + tail.length,
  });
  b.set(ext, 40);
  b.set(tail, 40 + ext.length);
  return b;
}

describe('upperLayer (RFC 8200 §4)', () => {
  const ul = newUpperLayer();

  it('no extension headers', () => {
    const b = withExt(17, new Uint8Array(0));
    expect(upperLayer(b, 0, b.length, ul)).toBe(40);
    expect(ul).toMatchObject({ protocol: 17, offset: 40, fragmentOff: -1 });
  });

  it('hop-by-hop, destination options, routing, first fragment', () => {
    const ext = hex`
      3c 00  01 04 00 00 00 00              # HBH -> dest opts, 8 bytes (PadN)
      2b 01  01 0c 00 00 00 00  00 00 00 00 00 00 00 00   # dest opts -> routing, 16 bytes
      2c 00  00 00 00 00 00 00              # routing (type 0, segs 0) -> fragment, 8 bytes
      11 00  00 01  de ad be ef             # fragment -> UDP, offset 0, M=1, id deadbeef
    `;
    const b = withExt(0, ext);
    expect(upperLayer(b, 0, b.length, ul)).toBe(80);
    expect(ul).toEqual({
      protocol: 17,
      offset: 80,
      fragmentOff: 72,
      fragmentOffset: 0,
      moreFragments: true,
      fragmentId: 0xdeadbeef,
    });
  });

  it('non-first fragment has no upper-layer header', () => {
    const b = withExt(44, hex`11 00  00 a8  00 00 00 07`); // offset 21 (168 bytes), M=0
    expect(upperLayer(b, 0, b.length, ul)).toBe(48);
    expect(ul).toMatchObject({
      protocol: 17,
      offset: -1,
      fragmentOffset: 21,
      moreFragments: false,
      fragmentId: 7,
    });
  });

  it('no next header (59) and AH (RFC 4302 length units)', () => {
    const none = withExt(60, hex`3b 00 01 04 00 00 00 00`, new Uint8Array(0));
    expect(upperLayer(none, 0, none.length, ul)).toBe(48);
    expect(ul).toMatchObject({ protocol: 59, offset: 48 });
    const ah = withExt(51, hex`3a 04 00 00  00 00 01 00  00 00 00 01  00 00 00 00 00 00 00 00 00 00 00 00`);
    expect(upperLayer(ah, 0, ah.length, ul)).toBe(64);
    expect(ul).toMatchObject({ protocol: 58, offset: 64 });
  });

  it('errors: truncated chain, hop-by-hop not first', () => {
    const trunc = withExt(60, hex`11 02 00 00 00 00 00 00`, new Uint8Array(0)); // claims 24 bytes
    expect(upperLayer(trunc, 0, trunc.length, ul)).toBe(Ipv6Reason.EXT_TRUNCATED);
    const late = withExt(60, hex`00 00 01 04 00 00 00 00  11 00 01 04 00 00 00 00`);
    expect(upperLayer(late, 0, late.length, ul)).toBe(Ipv6Reason.HOP_BY_HOP_NOT_FIRST);
    const shortFrag = withExt(44, hex`11 00 00 00`, new Uint8Array(0));
    expect(upperLayer(shortFrag, 0, shortFrag.length, ul)).toBe(Ipv6Reason.EXT_TRUNCATED);
  });
});

describe('ICMPv6 echo', () => {
  it('the request vector checksum verifies', () => {
    expect(icmp6ChecksumValid(ECHO_REQUEST, 0, 40, 12)).toBe(true);
  });

  it('builds the exact reply in place', () => {
    const b = Uint8Array.from(ECHO_REQUEST);
    expect(echoReplyInPlace6(b, 0, b.length)).toBe(52);
    expect(toHex(b)).toBe(toHex(ECHO_REPLY));
  });

  it('a request to a multicast address needs a unicast reply source (RFC 4443 §4.2)', () => {
    const b = Uint8Array.from(ECHO_REQUEST);
    b.set(ALL_NODES, 24);
    setIcmp6Checksum(b, 0, 40, 12);
    expect(echoReplyInPlace6(Uint8Array.from(b), 0, 52)).toBe(Icmp6Error.NEED_SOURCE);
    expect(echoReplyInPlace6(b, 0, 52, 64, LL1)).toBe(52);
    expect(formatIPv6(b, 8)).toBe('fe80::1');
    expect(formatIPv6(b, 24)).toBe('fe80::1');
    expect(b[40]).toBe(Icmp6Type.ECHO_REPLY);
    expect(icmp6ChecksumValid(b, 0, 40, 12)).toBe(true);
  });

  it('strips extension headers from the reply', () => {
    // the ICMPv6 checksum does not cover extension headers: the request's message is reused as is
    const b = withExt(60, hex`3a 00 01 04 00 00 00 00`, ECHO_REQUEST.subarray(40), LL1, parseIPv6('fe80::2'));
    expect(echoReplyInPlace6(b, 0, b.length)).toBe(52);
    expect(toHex(b.subarray(0, 52))).toBe(toHex(ECHO_REPLY));
  });

  it('errors', () => {
    const reply = Uint8Array.from(ECHO_REPLY);
    expect(echoReplyInPlace6(reply, 0, 52)).toBe(Icmp6Error.NOT_ECHO_REQUEST);
    const bad = Uint8Array.from(ECHO_REQUEST);
    bad[51] = bad[51]! ^ 1;
    expect(echoReplyInPlace6(bad, 0, 52)).toBe(Icmp6Error.BAD_CHECKSUM);
    const udp = Uint8Array.from(ECHO_REQUEST);
    udp[6] = 17;
    expect(echoReplyInPlace6(udp, 0, 52)).toBe(Icmp6Error.NOT_ICMP6);
    const frag = withExt(44, hex`3a 00 00 01 00 00 00 01`, ECHO_REQUEST.subarray(40));
    expect(echoReplyInPlace6(frag, 0, frag.length)).toBe(Icmp6Error.FRAGMENT);
    const short = withExt(58, new Uint8Array(0), hex`80 00 00 00`);
    expect(echoReplyInPlace6(short, 0, short.length)).toBe(Icmp6Error.TOO_SHORT);
  });
});

describe('ICMPv6 errors (RFC 4443 §3)', () => {
  const ROUTER = parseIPv6('2001:db8::fe');

  it('packet too big to exact bytes (checksum from Python)', () => {
    const out = new Uint8Array(200);
    const end = writeIcmp6Error(
      out,
      0,
      Icmp6Type.PACKET_TOO_BIG,
      0,
      ROUTER,
      A1,
      ECHO_REQUEST,
      0,
      52,
      64,
      1280,
    );
    expect(end).toBe(40 + 8 + 52);
    expect(toHex(out.subarray(0, end))).toBe(
      toHex(hex`
        60 00 00 00  00 3c 3a 40
        20 01 0d b8 00 00 00 00  00 00 00 00 00 00 00 fe
        20 01 0d b8 00 00 00 00  00 00 00 00 00 00 00 01
        02 00 02 12  00 00 05 00     # packet too big, MTU 1280
        ${toHex(ECHO_REQUEST)}
      `),
    );
  });

  it('quotes at most what fits in 1280 bytes, even from an overlapping buffer', () => {
    const b = new Uint8Array(3000).map((_, i) => (i * 7) & 0xff);
    const original = Uint8Array.from(b.subarray(10, 1510));
    const end = writeIcmp6Error(
      b,
      0,
      Icmp6Type.DEST_UNREACHABLE,
      Unreach6Code.NO_ROUTE,
      ROUTER,
      A1,
      b,
      10,
      1500,
    );
    expect(end).toBe(1280);
    expect(ipv6PayloadLength(b, 0)).toBe(1240);
    expect(toHex(b.subarray(48, 1280))).toBe(toHex(original.subarray(0, 1232)));
    expect(icmp6ChecksumValid(b, 0, 40, 1240)).toBe(true);
  });

  it('mayGenerateIcmp6Error follows RFC 4443 §2.4 (e)', () => {
    const req = Uint8Array.from(ECHO_REQUEST);
    const te = Icmp6Type.TIME_EXCEEDED;
    expect(mayGenerateIcmp6Error(req, 0, 52, te, TimeExceeded6Code.HOP_LIMIT)).toBe(true);
    expect(mayGenerateIcmp6Error(req, 0, 52, te, 0, true)).toBe(false);
    expect(mayGenerateIcmp6Error(req, 0, 52, Icmp6Type.PACKET_TOO_BIG, 0, true)).toBe(true);
    expect(
      mayGenerateIcmp6Error(
        req,
        0,
        52,
        Icmp6Type.PARAMETER_PROBLEM,
        ParamProblem6Code.UNRECOGNIZED_OPTION,
        true,
      ),
    ).toBe(true);
    const err = Uint8Array.from(ECHO_REQUEST);
    err[40] = Icmp6Type.DEST_UNREACHABLE;
    expect(mayGenerateIcmp6Error(err, 0, 52, te, 0)).toBe(false);
    const redirect = Uint8Array.from(ECHO_REQUEST);
    redirect[40] = Icmp6Type.REDIRECT;
    expect(mayGenerateIcmp6Error(redirect, 0, 52, te, 0)).toBe(false);
    const mcastDst = Uint8Array.from(ECHO_REQUEST);
    mcastDst.set(ALL_NODES, 24);
    expect(mayGenerateIcmp6Error(mcastDst, 0, 52, te, 0)).toBe(false);
    expect(mayGenerateIcmp6Error(mcastDst, 0, 52, Icmp6Type.PACKET_TOO_BIG, 0)).toBe(true);
    const unspec = Uint8Array.from(ECHO_REQUEST);
    unspec.fill(0, 8, 24);
    expect(mayGenerateIcmp6Error(unspec, 0, 52, Icmp6Type.PACKET_TOO_BIG, 0)).toBe(false);
  });
});

describe('Neighbor Discovery (RFC 4861)', () => {
  const nd = newNdInfo(2);

  it('helpers: solicited-node address, multicast MAC, EUI-64 link-local', () => {
    const sn = solicitedNodeAddress(parseIPv6('2001:db8::abcd:1234:5678'), new Uint8Array(16));
    expect(formatIPv6(sn)).toBe('ff02::1:ff34:5678');
    const out = new Uint8Array(8);
    multicastMac(sn, out, 0, 2);
    expect(toHex(out)).toBe('0000' + '3333ff345678');
    // RFC 4291 App. A: U/L bit inverted, ff:fe in the middle (RFC 7042's documentation MAC)
    expect(formatIPv6(linkLocalFromMac(parseMac('00:00:5e:00:53:01')))).toBe('fe80::200:5eff:fe00:5301');
    expect(formatIPv6(linkLocalFromMac(MAC1))).toBe('fe80::ff:fe00:1');
  });

  it('parses the NS vector', () => {
    expect(parseNd(NS, 0, NS.length, nd)).toBe(72);
    expect(nd).toMatchObject({
      type: 135,
      icmpOff: 40,
      icmpLength: 32,
      targetOff: 48,
      sourceLlaOff: 66,
      targetLlaOff: -1,
    });
    expect(toHex(NS.subarray(nd.sourceLlaOff, nd.sourceLlaOff + 6))).toBe(toHex(MAC1));
  });

  it('writeNs produces the NS vector (solicited-node destination, source LLA)', () => {
    const b = new Uint8Array(100);
    expect(writeNs(b, 4, A1, A2, MAC1)).toBe(76);
    expect(toHex(b.subarray(4, 76))).toBe(toHex(NS));
    const mac = multicastMac(b, new Uint8Array(6), 4 + 24);
    expect(toHex(mac)).toBe('3333ff000002');
  });

  it('DAD NS: from ::, no source LLA even if a MAC is given (RFC 4861 §4.3)', () => {
    const b = new Uint8Array(100);
    expect(writeNs(b, 0, new Uint8Array(16), A2, MAC1)).toBe(64);
    expect(toHex(b.subarray(0, 64))).toBe(toHex(DAD_NS));
    expect(parseNd(DAD_NS, 0, 64, nd)).toBe(64);
    expect(nd.sourceLlaOff).toBe(-1);
  });

  it('unicast NS (NUD) goes to the given destination', () => {
    const b = new Uint8Array(100);
    const end = writeNs(b, 0, A1, A2, MAC1, A2);
    expect(formatIPv6(b, 24)).toBe('2001:db8::2');
    expect(parseNd(b, 0, end, nd)).toBe(end);
  });

  it('NA: vector, writer, flags', () => {
    expect(parseNd(NA, 0, NA.length, nd)).toBe(72);
    expect(nd).toMatchObject({
      type: 136,
      router: false,
      solicited: true,
      override: true,
      targetOff: 48,
      targetLlaOff: 66,
    });
    const b = new Uint8Array(72);
    expect(writeNa(b, 0, A2, A1, A2, NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE, MAC2)).toBe(72);
    expect(toHex(b)).toBe(toHex(NA));
    const r = new Uint8Array(64);
    expect(writeNa(r, 0, A2, ALL_NODES, A2, NA_FLAG_ROUTER | NA_FLAG_OVERRIDE)).toBe(64);
    expect(parseNd(r, 0, 64, nd)).toBe(64);
    expect(nd).toMatchObject({ router: true, solicited: false, override: true, targetLlaOff: -1 });
  });

  it('RA: vector, writer (prefix host bits cleared), options', () => {
    expect(parseNd(RA, 0, RA.length, nd)).toBe(104);
    expect(nd).toMatchObject({
      type: 134,
      curHopLimit: 64,
      managed: false,
      other: true,
      routerLifetime: 1800,
      reachableTime: 0,
      retransTimer: 0,
      sourceLlaOff: 58,
      mtu: 1450,
      prefixCount: 1,
      prefixesDropped: 0,
    });
    expect(nd.prefixes[0]).toMatchObject({
      prefixLength: 64,
      onLink: true,
      autonomous: true,
      validLifetime: 2592000,
      preferredLifetime: 604800,
    });
    expect(formatIPv6(RA, nd.prefixes[0]!.prefixOff)).toBe('2001:db8:1::');
    const b = new Uint8Array(104);
    expect(raLength(RA_FIELDS)).toBe(64);
    expect(writeRa(b, 0, LL1, ALL_NODES, RA_FIELDS)).toBe(104);
    expect(toHex(b)).toBe(toHex(RA));
  });

  it('RA: more prefixes than the info object holds are counted, M flag, no options', () => {
    const p = RA_FIELDS.prefixes![0]!;
    const ra: RaFields = {
      ...RA_FIELDS,
      managed: true,
      sourceMac: undefined,
      mtu: undefined,
      prefixes: [p, p, p],
    };
    const b = new Uint8Array(200);
    const end = writeRa(b, 0, LL1, ALL_NODES, ra);
    expect(end).toBe(40 + 16 + 96);
    expect(parseNd(b, 0, end, nd)).toBe(end);
    expect(nd).toMatchObject({
      managed: true,
      other: true,
      sourceLlaOff: -1,
      mtu: -1,
      prefixCount: 2,
      prefixesDropped: 1,
    });
  });

  it('RS vector', () => {
    expect(parseNd(RS, 0, RS.length, nd)).toBe(56);
    expect(nd).toMatchObject({ type: 133, sourceLlaOff: 50 });
  });

  it('validity checks (§6.1, §7.1)', () => {
    const mut = (v: Uint8Array, f: (b: Uint8Array) => void): Uint8Array => {
      const b = Uint8Array.from(v);
      f(b);
      return b;
    };
    expect(
      parseNd(
        mut(NS, (b) => (b[7] = 64)),
        0,
        72,
        nd,
      ),
    ).toBe(NdError.BAD_HOP_LIMIT);
    expect(
      parseNd(
        mut(NS, (b) => (b[41] = 1)),
        0,
        72,
        nd,
      ),
    ).toBe(NdError.BAD_CODE);
    expect(
      parseNd(
        mut(NS, (b) => (b[71] = b[71]! ^ 1)),
        0,
        72,
        nd,
      ),
    ).toBe(NdError.BAD_CHECKSUM);
    expect(parseNd(ECHO_REQUEST, 0, 52, nd)).toBe(NdError.NOT_ND);
    expect(ndErrorName(NdError.NOT_ND)).toBe('NOT_ND');
    // the rest are built with the writers so that checksums are right
    const b = new Uint8Array(200);
    let end = writeNs(b, 0, A1, parseIPv6('ff02::1'), MAC1);
    expect(parseNd(b, 0, end, nd)).toBe(NdError.MULTICAST_TARGET);
    end = writeNa(b, 0, A2, ALL_NODES, A2, NA_FLAG_SOLICITED);
    expect(parseNd(b, 0, end, nd)).toBe(NdError.SOLICITED_TO_MULTICAST);
    end = writeRa(b, 0, A1, ALL_NODES, RA_FIELDS);
    expect(parseNd(b, 0, end, nd)).toBe(NdError.RA_SOURCE_NOT_LINK_LOCAL);
    end = writeNs(b, 0, new Uint8Array(16), A2, undefined, A2);
    expect(parseNd(b, 0, end, nd)).toBe(NdError.DAD_NOT_SOLICITED_NODE);
    const badOpt = (len: number): number => {
      const z = Uint8Array.from(NS);
      z[65] = len;
      setIcmp6Checksum(z, 0, 40, 32);
      return parseNd(z, 0, z.length, nd);
    };
    expect(badOpt(0)).toBe(NdError.BAD_OPTION_LENGTH);
    expect(badOpt(2)).toBe(NdError.BAD_OPTION_LENGTH); // runs past the message
    expect(badOpt(1)).toBe(72);
    const slla = Uint8Array.from(DAD_NS.subarray(0, 64));
    const withSlla = new Uint8Array(72);
    withSlla.set(slla);
    withSlla.set(hex`01 01 02 00 00 00 00 01`, 64);
    withSlla[5] = 32;
    setIcmp6Checksum(withSlla, 0, 40, 32);
    expect(parseNd(withSlla, 0, 72, nd)).toBe(NdError.UNSPECIFIED_WITH_SLLA);
    const frag = withExt(44, hex`3a 00 00 00 00 00 00 01`, NS.subarray(40), A1, NS.subarray(24, 40));
    frag[7] = 255;
    expect(parseNd(frag, 0, frag.length, nd)).toBe(NdError.FRAGMENT);
    const shortNs = Uint8Array.from(NS.subarray(0, 60));
    shortNs[5] = 20;
    setIcmp6Checksum(shortNs, 0, 40, 20);
    expect(parseNd(shortNs, 0, 60, nd)).toBe(NdError.TOO_SHORT);
  });
});

describe(`random bytes never throw (seed ${SEED})`, () => {
  it('checkIPv6, upperLayer, echoReplyInPlace6, parseNd, mayGenerateIcmp6Error', () => {
    const codes = new Set<number>([
      ...Object.values(Ipv6Reason),
      ...Object.values(Icmp6Error),
      ...Object.values(NdError),
    ]);
    const ul = newUpperLayer();
    const nd = newNdInfo();
    const seeds = [ECHO_REQUEST, NS, NA, RA, RS];
    fc.assert(
      fc.property(
        fc.constantFrom(...seeds),
        fc.array(fc.tuple(fc.nat(120), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        fc.nat(130),
        (base, muts, cut) => {
          const b = Uint8Array.from(base);
          for (const [i, v] of muts) if (i < b.length) b[i] = v;
          const end = Math.min(b.length, cut);
          const r = checkIPv6(b, 0, end);
          expect(r === 40 || codes.has(r)).toBe(true);
          if (r === 40) {
            const u = upperLayer(b, 0, end, ul);
            expect(u >= 0 || codes.has(u)).toBe(true);
            mayGenerateIcmp6Error(b, 0, end, 1, 0);
          }
          const n = parseNd(Uint8Array.from(b), 0, end, nd);
          expect(n >= 0 ? n <= end : codes.has(n)).toBe(true);
          const e = echoReplyInPlace6(b, 0, end);
          expect(e >= 0 ? e <= end : codes.has(e)).toBe(true);
        },
      ),
      { seed: SEED, numRuns: 5000 },
    );
  });

  it('parsers on pure noise', () => {
    const ul = newUpperLayer();
    const nd = newNdInfo();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (b) => {
        if (checkIPv6(b, 0, b.length) === 40) upperLayer(b, 0, b.length, ul);
        parseNd(b, 0, b.length, nd);
        echoReplyInPlace6(b, 0, b.length);
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });
});
