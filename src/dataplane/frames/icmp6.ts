/**
 * ICMPv6 (RFC 4443) as a router sends it: the checksum over the IPv6 pseudo-header (RFC 4443
 * §2.3, RFC 8200 §8.1), echo replies built in place (§4.2), and error messages (§3) quoting the
 * invoking packet up to the IPv6 minimum MTU (§2.4 (c)) under the §2.4 (e) suppression rules.
 * Neighbor Discovery lives in `nd.ts`.
 *
 * The pseudo-header uses the IPv6 header's destination; packets with a Routing header (whose
 * final destination differs) are not handled here.
 */
import { copyBytes, nameLookup, put16, put32, u16 } from './bytes.ts';
import { finish, incremental, pseudoHeader6, sum16 } from './checksum.ts';
import {
  IPV6_DEFAULT_HOP_LIMIT,
  IPV6_DST_OFFSET,
  IPV6_HEADER_LENGTH,
  IPV6_MIN_MTU,
  IPV6_SRC_OFFSET,
  checkIPv6,
  isIPv6Multicast,
  isIPv6Unspecified,
  newUpperLayer,
  swapIPv6Addresses,
  upperLayer,
  writeIPv6Header,
  type Ipv6HeaderFields,
} from './ipv6.ts';
import { IpProto } from './proto.ts';

export const Icmp6Type = {
  DEST_UNREACHABLE: 1, // RFC 4443 §3.1
  PACKET_TOO_BIG: 2, // §3.2
  TIME_EXCEEDED: 3, // §3.3
  PARAMETER_PROBLEM: 4, // §3.4
  ECHO_REQUEST: 128, // §4.1
  ECHO_REPLY: 129, // §4.2
  ROUTER_SOLICITATION: 133, // RFC 4861 §4.1
  ROUTER_ADVERTISEMENT: 134, // RFC 4861 §4.2
  NEIGHBOR_SOLICITATION: 135, // RFC 4861 §4.3
  NEIGHBOR_ADVERTISEMENT: 136, // RFC 4861 §4.4
  REDIRECT: 137, // RFC 4861 §4.5
} as const;
export const icmp6TypeName = nameLookup(Icmp6Type);

/** Destination Unreachable codes (RFC 4443 §3.1). */
export const Unreach6Code = {
  NO_ROUTE: 0,
  ADMIN_PROHIBITED: 1,
  BEYOND_SCOPE: 2,
  ADDRESS_UNREACHABLE: 3,
  PORT_UNREACHABLE: 4,
  SOURCE_POLICY_FAILED: 5,
  REJECT_ROUTE: 6,
} as const;
export const unreach6CodeName = nameLookup(Unreach6Code);

/** Time Exceeded codes (RFC 4443 §3.3). */
export const TimeExceeded6Code = {
  HOP_LIMIT: 0,
  REASSEMBLY: 1,
} as const;

/** Parameter Problem codes (RFC 4443 §3.4). */
export const ParamProblem6Code = {
  ERRONEOUS_HEADER: 0,
  UNRECOGNIZED_NEXT_HEADER: 1,
  UNRECOGNIZED_OPTION: 2,
} as const;

export const ICMP6_HEADER_LENGTH = 8;

/** Negative results of `echoReplyInPlace6` (range -50 .. -59); IPv6 failures pass through. */
export const Icmp6Error = {
  TOO_SHORT: -50,
  NOT_ICMP6: -51,
  NOT_ECHO_REQUEST: -52,
  BAD_CHECKSUM: -53,
  FRAGMENT: -54,
  NEED_SOURCE: -55, // request to a multicast address and no unicast reply source given
} as const;
export const icmp6ErrorName = nameLookup(Icmp6Error);

/** Checksum of the ICMPv6 message `buf[icmpOff, +len)` whose checksum field is zero. */
export function icmp6Checksum(buf: Uint8Array, ipOff: number, icmpOff: number, len: number): number {
  const pseudo = pseudoHeader6(buf, ipOff + IPV6_SRC_OFFSET, ipOff + IPV6_DST_OFFSET, IpProto.ICMPV6, len);
  return finish(sum16(buf, icmpOff, len, pseudo));
}

/** Zeroes and fills the checksum field of the message at `icmpOff`. */
export function setIcmp6Checksum(buf: Uint8Array, ipOff: number, icmpOff: number, len: number): void {
  put16(buf, icmpOff + 2, 0);
  put16(buf, icmpOff + 2, icmp6Checksum(buf, ipOff, icmpOff, len));
}

/** True when the message (checksum field included) sums to 0xffff with the pseudo-header. */
export function icmp6ChecksumValid(buf: Uint8Array, ipOff: number, icmpOff: number, len: number): boolean {
  const pseudo = pseudoHeader6(buf, ipOff + IPV6_SRC_OFFSET, ipOff + IPV6_DST_OFFSET, IpProto.ICMPV6, len);
  return sum16(buf, icmpOff, len, pseudo) === 0xffff;
}

const SCRATCH = newUpperLayer();

/**
 * Turns the Echo Request in the IPv6 packet at `buf[off, end)` into an Echo Reply in place
 * (RFC 4443 §4.2): type 129, addresses swapped, hop limit reset, extension headers removed.
 * A request to a multicast address needs `replySrc` (one of our unicast addresses, §4.2), which
 * may also be given for any request. Returns the offset after the reply or an `Icmp6Error` /
 * `Ipv6Reason`.
 */
export function echoReplyInPlace6(
  buf: Uint8Array,
  off: number,
  end: number,
  hopLimit = IPV6_DEFAULT_HOP_LIMIT,
  replySrc?: Uint8Array,
): number {
  const r = checkIPv6(buf, off, end);
  if (r < 0) return r;
  const ul = upperLayer(buf, off, end, SCRATCH);
  if (ul < 0) return ul;
  if (SCRATCH.fragmentOff >= 0) return Icmp6Error.FRAGMENT;
  if (SCRATCH.protocol !== IpProto.ICMPV6) return Icmp6Error.NOT_ICMP6;
  let icmpOff = SCRATCH.offset;
  const len = off + IPV6_HEADER_LENGTH + u16(buf, off + 4) - icmpOff;
  if (len < ICMP6_HEADER_LENGTH) return Icmp6Error.TOO_SHORT;
  if (buf[icmpOff] !== Icmp6Type.ECHO_REQUEST) return Icmp6Error.NOT_ECHO_REQUEST;
  if (!icmp6ChecksumValid(buf, off, icmpOff, len)) return Icmp6Error.BAD_CHECKSUM;
  if (replySrc === undefined && isIPv6Multicast(buf, off + IPV6_DST_OFFSET)) return Icmp6Error.NEED_SOURCE;
  if (icmpOff !== off + IPV6_HEADER_LENGTH) {
    buf.copyWithin(off + IPV6_HEADER_LENGTH, icmpOff, icmpOff + len);
    icmpOff = off + IPV6_HEADER_LENGTH;
    put16(buf, off + 4, len);
    buf[off + 6] = IpProto.ICMPV6;
  }
  swapIPv6Addresses(buf, off);
  buf[off + 7] = hopLimit;
  const code = buf[icmpOff + 1]!;
  buf[icmpOff] = Icmp6Type.ECHO_REPLY;
  if (replySrc === undefined) {
    // Swapping addresses leaves the pseudo-header sum unchanged: only the type word moved.
    const ck = u16(buf, icmpOff + 2);
    put16(
      buf,
      icmpOff + 2,
      incremental(ck, (Icmp6Type.ECHO_REQUEST << 8) | code, (Icmp6Type.ECHO_REPLY << 8) | code),
    );
  } else {
    copyBytes(buf, off + IPV6_SRC_OFFSET, replySrc, 0, 16);
    setIcmp6Checksum(buf, off, icmpOff, len);
  }
  return icmpOff + len;
}

/** Types 0-127 are errors (RFC 4443 §2.1). */
export function isIcmp6Error(type: number): boolean {
  return type < 128;
}

/**
 * RFC 4443 §2.4 (e): may we answer the (checked) packet at `off` with an error of `type`/`code`?
 * Never for ICMPv6 errors or Redirects (e.1, e.2), nor for sources that do not identify one node
 * (e.6: unspecified, multicast); for multicast destinations or link-layer multicast/broadcast
 * frames (e.3-e.5) only Packet Too Big and Parameter Problem code 2.
 */
export function mayGenerateIcmp6Error(
  buf: Uint8Array,
  off: number,
  end: number,
  type: number,
  code: number,
  linkMulticast = false,
): boolean {
  if (isIPv6Unspecified(buf, off + IPV6_SRC_OFFSET) || isIPv6Multicast(buf, off + IPV6_SRC_OFFSET))
    return false;
  const multicastOk =
    type === Icmp6Type.PACKET_TOO_BIG ||
    (type === Icmp6Type.PARAMETER_PROBLEM && code === ParamProblem6Code.UNRECOGNIZED_OPTION);
  if ((linkMulticast || isIPv6Multicast(buf, off + IPV6_DST_OFFSET)) && !multicastOk) return false;
  if (upperLayer(buf, off, end, SCRATCH) < 0) return true; // malformed chain: may answer (Parameter Problem)
  if (SCRATCH.protocol === IpProto.ICMPV6 && SCRATCH.offset >= 0 && SCRATCH.offset < end) {
    const t = buf[SCRATCH.offset]!;
    if (isIcmp6Error(t) || t === Icmp6Type.REDIRECT) return false;
  }
  return true;
}

const ERR_HDR: Ipv6HeaderFields = {
  src: new Uint8Array(16),
  dst: new Uint8Array(16),
  nextHeader: IpProto.ICMPV6,
  hopLimit: 0,
  payloadLength: 0,
};

/**
 * Writes an IPv6 packet carrying an ICMPv6 error at `off`: `src`/`dst` are 16-byte arrays (not
 * views into the region being written), then type, code, checksum, the 4-byte `restOfHeader`
 * (the MTU for Packet Too Big, the pointer for Parameter Problem) and as much of
 * `original[origOff, +origLen)` as keeps the packet within 1280 bytes (RFC 4443 §2.4 (c)).
 * `original` may be `buf`, even overlapping the output. Returns the offset after the packet.
 */
export function writeIcmp6Error(
  buf: Uint8Array,
  off: number,
  type: number,
  code: number,
  src: Uint8Array,
  dst: Uint8Array,
  original: Uint8Array,
  origOff: number,
  origLen: number,
  hopLimit = IPV6_DEFAULT_HOP_LIMIT,
  restOfHeader = 0,
): number {
  const quote = Math.max(
    0,
    Math.min(origLen, original.length - origOff, IPV6_MIN_MTU - IPV6_HEADER_LENGTH - ICMP6_HEADER_LENGTH),
  );
  const icmpOff = off + IPV6_HEADER_LENGTH;
  copyBytes(buf, icmpOff + ICMP6_HEADER_LENGTH, original, origOff, quote);
  ERR_HDR.src = src;
  ERR_HDR.dst = dst;
  ERR_HDR.hopLimit = hopLimit;
  ERR_HDR.payloadLength = ICMP6_HEADER_LENGTH + quote;
  writeIPv6Header(buf, off, ERR_HDR);
  buf[icmpOff] = type;
  buf[icmpOff + 1] = code;
  put32(buf, icmpOff + 4, restOfHeader);
  setIcmp6Checksum(buf, off, icmpOff, ICMP6_HEADER_LENGTH + quote);
  return icmpOff + ICMP6_HEADER_LENGTH + quote;
}
