/**
 * TCP and UDP header fields the forwarder reads (ports, TCP flags) and the UDP header it writes
 * for tunnel encapsulation (RFC 768). UDP checksum helpers cover both pseudo-headers; a zero
 * checksum is allowed over IPv4 (RFC 768) and for tunnels over IPv6 (RFC 6935, RFC 6936).
 */
import { nameLookup, put16, u16 } from './bytes.ts';
import { finish, pseudoHeader4, pseudoHeader6, sum16 } from './checksum.ts';
import { IPV4_DST_OFFSET, IPV4_SRC_OFFSET } from './ipv4.ts';
import { IPV6_DST_OFFSET, IPV6_SRC_OFFSET } from './ipv6.ts';
import { IpProto } from './proto.ts';

export const UDP_HEADER_LENGTH = 8;
export const TCP_MIN_HEADER_LENGTH = 20;

/** TCP flag bits in header byte 13 (RFC 9293 §3.1; RFC 3168 §6.1 for ECE/CWR). */
export const TcpFlag = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;
export const tcpFlagName = nameLookup(TcpFlag);

/** Negative results of `checkUdp` (range -110 .. -119). */
export const UdpError = {
  TOO_SHORT: -110,
  BAD_LENGTH: -111, // length < 8 or > the bytes available
} as const;
export const udpErrorName = nameLookup(UdpError);

/** Source port of a TCP or UDP header at `off`. */
export function srcPort(buf: Uint8Array, off: number): number {
  return u16(buf, off);
}
/** Destination port of a TCP or UDP header at `off`. */
export function dstPort(buf: Uint8Array, off: number): number {
  return u16(buf, off + 2);
}
export function tcpFlags(buf: Uint8Array, off: number): number {
  return buf[off + 13]!;
}
/** TCP header length in bytes (Data Offset * 4). */
export function tcpHeaderLength(buf: Uint8Array, off: number): number {
  return (buf[off + 12]! >>> 4) << 2;
}
export function udpLength(buf: Uint8Array, off: number): number {
  return u16(buf, off + 4);
}
export function udpChecksum(buf: Uint8Array, off: number): number {
  return u16(buf, off + 6);
}

/** Validates the UDP header at `buf[off, end)`; returns its length field or a `UdpError`. */
export function checkUdp(buf: Uint8Array, off: number, end: number): number {
  if (end - off < UDP_HEADER_LENGTH) return UdpError.TOO_SHORT;
  const len = u16(buf, off + 4);
  if (len < UDP_HEADER_LENGTH || len > end - off) return UdpError.BAD_LENGTH;
  return len;
}

/** Writes a UDP header (`length` includes the 8 header bytes); returns the payload offset. */
export function writeUdpHeader(
  buf: Uint8Array,
  off: number,
  sport: number,
  dport: number,
  length: number,
  checksum = 0,
): number {
  put16(buf, off, sport);
  put16(buf, off + 2, dport);
  put16(buf, off + 4, length);
  put16(buf, off + 6, checksum);
  return off + UDP_HEADER_LENGTH;
}

/** Computes and stores the UDP checksum of the datagram at `udpOff` inside IPv4 at `ipOff`. */
export function setUdpChecksum4(buf: Uint8Array, ipOff: number, udpOff: number): void {
  const len = u16(buf, udpOff + 4);
  put16(buf, udpOff + 6, 0);
  const ps = pseudoHeader4(buf, ipOff + IPV4_SRC_OFFSET, ipOff + IPV4_DST_OFFSET, IpProto.UDP, len);
  const ck = finish(sum16(buf, udpOff, len, ps));
  put16(buf, udpOff + 6, ck === 0 ? 0xffff : ck); // RFC 768: zero is sent as all ones
}

/** As `setUdpChecksum4` with the IPv6 pseudo-header (RFC 8200 §8.1). */
export function setUdpChecksum6(buf: Uint8Array, ipOff: number, udpOff: number): void {
  const len = u16(buf, udpOff + 4);
  put16(buf, udpOff + 6, 0);
  const ps = pseudoHeader6(buf, ipOff + IPV6_SRC_OFFSET, ipOff + IPV6_DST_OFFSET, IpProto.UDP, len);
  const ck = finish(sum16(buf, udpOff, len, ps));
  put16(buf, udpOff + 6, ck === 0 ? 0xffff : ck);
}

/**
 * A tunnel's UDP source port from a hash of the inner flow, in the dynamic range 49152-65535
 * (RFC 7348 §5, RFC 8086 §3.2.1, RFC 7510 §3).
 */
export function tunnelSourcePort(flowHash: number): number {
  return 49152 | (flowHash & 0x3fff);
}
