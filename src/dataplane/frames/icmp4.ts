/**
 * ICMP for IPv4 (RFC 792) as a router sends it: echo replies built in place from echo requests
 * (RFC 1122 §3.2.2.6) and error messages that quote the offending packet as RFC 1812 §4.3.2.3
 * asks (as much as fits in 576 bytes), with the suppression rules of RFC 1812 §4.3.2.7.
 * Packet Too Big's next-hop MTU follows RFC 1191 §4.
 */
import { copyBytes, nameLookup, put16, put32, u16 } from './bytes.ts';
import { finish, incremental, sum16, verifies } from './checksum.ts';
import {
  IPV4_CHECKSUM_OFFSET,
  IPV4_DEFAULT_TTL,
  IPV4_MIN_HEADER_LENGTH,
  checkIPv4,
  ipv4FragmentOffset,
  ipv4HeaderLength,
  ipv4IsFragment,
  setIPv4Checksum,
  swapIPv4Addresses,
  writeIPv4Header,
  type Ipv4HeaderFields,
} from './ipv4.ts';
import { IpProto } from './proto.ts';

export const IcmpType = {
  ECHO_REPLY: 0, // RFC 792
  DEST_UNREACHABLE: 3,
  SOURCE_QUENCH: 4, // deprecated by RFC 6633
  REDIRECT: 5,
  ECHO: 8,
  ROUTER_ADVERTISEMENT: 9, // RFC 1256
  ROUTER_SOLICITATION: 10, // RFC 1256
  TIME_EXCEEDED: 11,
  PARAMETER_PROBLEM: 12,
  TIMESTAMP: 13,
  TIMESTAMP_REPLY: 14,
} as const;
export const icmpTypeName = nameLookup(IcmpType);

/** Destination Unreachable codes (RFC 792; RFC 1812 §5.2.7.1 for 13). */
export const UnreachCode = {
  NET: 0,
  HOST: 1,
  PROTOCOL: 2,
  PORT: 3,
  FRAG_NEEDED: 4, // with the next-hop MTU (RFC 1191 §4)
  SOURCE_ROUTE_FAILED: 5,
  ADMIN_PROHIBITED: 13, // Communication Administratively Prohibited
} as const;
export const unreachCodeName = nameLookup(UnreachCode);

export const TimeExceededCode = {
  TTL: 0, // time to live exceeded in transit
  REASSEMBLY: 1, // fragment reassembly time exceeded
} as const;

export const ICMP_HEADER_LENGTH = 8;
export const ICMP_ERROR_MAX_LENGTH = 576; // RFC 1812 §4.3.2.3: the whole IP datagram
/** RFC 1812 §4.3.2.5: error messages SHOULD carry precedence 6 (CS6, DSCP 48). */
export const ICMP_ERROR_DSCP = 48;

/** Negative results of `echoReplyInPlace` (range -40 .. -49); IPv4 failures pass through. */
export const IcmpError = {
  TOO_SHORT: -40, // ICMP message shorter than 8 bytes
  NOT_ICMP: -41,
  NOT_ECHO_REQUEST: -42,
  BAD_CHECKSUM: -43,
  FRAGMENT: -44, // a fragment: needs reassembly first
} as const;
export const icmpErrorName = nameLookup(IcmpError);

/** The 4-byte "rest of header" of Fragmentation Needed: next-hop MTU in the low 16 bits (RFC 1191 §4). */
export function fragNeededRest(mtu: number): number {
  return mtu & 0xffff;
}

/**
 * Turns the ICMP Echo Request in the IPv4 packet at `buf[off, end)` into an Echo Reply in place
 * (RFC 792; RFC 1122 §3.2.2.6): addresses swapped, type 0, TTL reset, checksums updated per
 * RFC 1624. IP options are removed (a source route would need reversing), moving the message
 * up. Returns the offset after the reply or an `IcmpError` / `Ipv4Reason`.
 */
export function echoReplyInPlace(buf: Uint8Array, off: number, end: number, ttl = IPV4_DEFAULT_TTL): number {
  const hl = checkIPv4(buf, off, end);
  if (hl < 0) return hl;
  if (buf[off + 9] !== IpProto.ICMP) return IcmpError.NOT_ICMP;
  if (ipv4IsFragment(buf, off)) return IcmpError.FRAGMENT;
  const total = u16(buf, off + 2);
  let icmpOff = off + hl;
  const icmpLen = total - hl;
  if (icmpLen < ICMP_HEADER_LENGTH) return IcmpError.TOO_SHORT;
  if (buf[icmpOff] !== IcmpType.ECHO) return IcmpError.NOT_ECHO_REQUEST;
  if (!verifies(buf, icmpOff, icmpLen)) return IcmpError.BAD_CHECKSUM; // RFC 1122 §3.2.2
  swapIPv4Addresses(buf, off);
  const code = buf[icmpOff + 1]!;
  buf[icmpOff] = IcmpType.ECHO_REPLY;
  put16(buf, icmpOff + 2, incremental(u16(buf, icmpOff + 2), (IcmpType.ECHO << 8) | code, code));
  if (hl > IPV4_MIN_HEADER_LENGTH) {
    buf.copyWithin(off + IPV4_MIN_HEADER_LENGTH, icmpOff, icmpOff + icmpLen);
    icmpOff = off + IPV4_MIN_HEADER_LENGTH;
    buf[off] = 0x45;
    put16(buf, off + 2, IPV4_MIN_HEADER_LENGTH + icmpLen);
    buf[off + 8] = ttl;
    setIPv4Checksum(buf, off);
  } else {
    const old = buf[off + 8]!;
    buf[off + 8] = ttl;
    const proto = IpProto.ICMP;
    put16(
      buf,
      off + IPV4_CHECKSUM_OFFSET,
      incremental(u16(buf, off + IPV4_CHECKSUM_OFFSET), (old << 8) | proto, (ttl << 8) | proto),
    );
  }
  return icmpOff + icmpLen;
}

/** Types that are errors (RFC 1812 §4.3.2.7 never answers them); the rest are queries. */
function isIcmpErrorType(t: number): boolean {
  return (
    t === IcmpType.DEST_UNREACHABLE ||
    t === IcmpType.SOURCE_QUENCH ||
    t === IcmpType.REDIRECT ||
    t === IcmpType.TIME_EXCEEDED ||
    t === IcmpType.PARAMETER_PROBLEM
  );
}

/** 0.0.0.0/8, 127/8, 224/4 (multicast) and 240/4 (incl. 255.255.255.255): not a host source. */
function invalidSource(a: number): boolean {
  return a === 0 || a === 127 || a >= 224;
}

/**
 * RFC 1812 §4.3.2.7: may a router answer the (checked) packet at `off` with an ICMP error?
 * Not for ICMP errors, non-initial fragments, IP broadcast / multicast destinations, frames
 * that arrived as link-layer broadcast or multicast, or invalid sources. Directed (subnet)
 * broadcasts need the interface's prefixes; the caller checks those.
 */
export function mayGenerateIcmpError(
  buf: Uint8Array,
  off: number,
  end: number,
  linkMulticast = false,
): boolean {
  if (linkMulticast) return false;
  if (ipv4FragmentOffset(buf, off) !== 0) return false;
  const d = buf[off + 16]!;
  if (d >= 224) return false; // multicast, class E, limited broadcast
  if (invalidSource(buf[off + 12]!)) return false;
  if (buf[off + 9] === IpProto.ICMP) {
    const icmpOff = off + ipv4HeaderLength(buf, off);
    if (icmpOff >= end) return false;
    if (isIcmpErrorType(buf[icmpOff]!)) return false;
  }
  return true;
}

/** Reused header fields (single-threaded; never escapes this module). */
const ERR_HDR: Ipv4HeaderFields = {
  src: 0,
  dst: 0,
  proto: IpProto.ICMP,
  ttl: 0,
  dscp: ICMP_ERROR_DSCP,
  id: 0,
  payloadLength: 0,
};

/**
 * Writes an IPv4 packet carrying an ICMP error at `off`: header from `srcAddr` to `dstAddr`
 * (unsigned 32-bit), DSCP CS6, id 0, then type, code, checksum, the 4-byte `restOfHeader`
 * (`fragNeededRest(mtu)` for 3/4, pointer << 24 for 12) and as many bytes of
 * `original[origOff, origOff + origLen)` as keep the datagram within 576 bytes. `original` may be
 * `buf`, even overlapping the output. Returns the offset after the packet.
 */
export function writeIcmpError(
  buf: Uint8Array,
  off: number,
  type: number,
  code: number,
  srcAddr: number,
  dstAddr: number,
  original: Uint8Array,
  origOff: number,
  origLen: number,
  ttl = IPV4_DEFAULT_TTL,
  restOfHeader = 0,
): number {
  const quote = Math.max(
    0,
    Math.min(
      origLen,
      original.length - origOff,
      ICMP_ERROR_MAX_LENGTH - IPV4_MIN_HEADER_LENGTH - ICMP_HEADER_LENGTH,
    ),
  );
  const icmpOff = off + IPV4_MIN_HEADER_LENGTH;
  // Quote first: the original may sit where the headers go.
  copyBytes(buf, icmpOff + ICMP_HEADER_LENGTH, original, origOff, quote);
  ERR_HDR.src = srcAddr;
  ERR_HDR.dst = dstAddr;
  ERR_HDR.ttl = ttl;
  ERR_HDR.payloadLength = ICMP_HEADER_LENGTH + quote;
  writeIPv4Header(buf, off, ERR_HDR);
  buf[icmpOff] = type;
  buf[icmpOff + 1] = code;
  put16(buf, icmpOff + 2, 0);
  put32(buf, icmpOff + 4, restOfHeader);
  put16(buf, icmpOff + 2, finish(sum16(buf, icmpOff, ICMP_HEADER_LENGTH + quote)));
  return icmpOff + ICMP_HEADER_LENGTH + quote;
}
