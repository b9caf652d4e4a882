/**
 * IPv4 header (RFC 791 §3.1): validation per RFC 1812 §5.2.2, field accessors, in-place TTL and
 * DSCP rewrites with incremental checksum update (RFC 1624), and a header writer.
 *
 * `checkIPv4` runs the RFC 1812 §5.2.2 checks cheapest first (the checksum pass last); the
 * accessors assume a header that passed it. Options are kept, never written.
 */
import { finish, incremental, sum16 } from './checksum.ts';
import { nameLookup, put16, put32, u16, u32 } from './bytes.ts';

export const IPV4_VERSION = 4;
export const IPV4_MIN_HEADER_LENGTH = 20; // IHL 5 (RFC 791 §3.1)
export const IPV4_SRC_OFFSET = 12;
export const IPV4_DST_OFFSET = 16;
export const IPV4_CHECKSUM_OFFSET = 10;
export const IPV4_DEFAULT_TTL = 64; // IANA "ip-parameters", RFC 1700

export const IPV4_FLAG_DF = 0x4000; // Don't Fragment (RFC 791 §3.1 Flags bit 1)
export const IPV4_FLAG_MF = 0x2000; // More Fragments (bit 2)
export const IPV4_OFFSET_MASK = 0x1fff; // Fragment Offset, 8-octet units

/** Negative results of `checkIPv4` (range -20 .. -29); RFC 1812 §5.2.2 numbering in comments. */
export const Ipv4Reason = {
  TOO_SHORT: -20, // (1) fewer than 20 bytes, or fewer than IHL*4
  BAD_CHECKSUM: -21, // (2)
  BAD_VERSION: -22, // (3)
  BAD_IHL: -23, // (4) IHL < 5
  BAD_TOTAL_LENGTH: -24, // (5) total length < IHL*4 or > the bytes received
} as const;
export const reasonName = nameLookup(Ipv4Reason);

/** Validates the header at `buf[off, end)`; returns the header length (IHL*4) or an `Ipv4Reason`. */
export function checkIPv4(buf: Uint8Array, off: number, end: number): number {
  const avail = end - off;
  if (avail < IPV4_MIN_HEADER_LENGTH) return Ipv4Reason.TOO_SHORT;
  const b0 = buf[off]!;
  if (b0 >>> 4 !== IPV4_VERSION) return Ipv4Reason.BAD_VERSION;
  const hl = (b0 & 0x0f) << 2;
  if (hl < IPV4_MIN_HEADER_LENGTH) return Ipv4Reason.BAD_IHL;
  if (hl > avail) return Ipv4Reason.TOO_SHORT;
  const total = u16(buf, off + 2);
  if (total < hl || total > avail) return Ipv4Reason.BAD_TOTAL_LENGTH;
  if (sum16(buf, off, hl) !== 0xffff) return Ipv4Reason.BAD_CHECKSUM;
  return hl;
}

export function ipv4HeaderLength(buf: Uint8Array, off: number): number {
  return (buf[off]! & 0x0f) << 2;
}
export function ipv4Dscp(buf: Uint8Array, off: number): number {
  return buf[off + 1]! >>> 2; // RFC 2474 §3
}
export function ipv4Ecn(buf: Uint8Array, off: number): number {
  return buf[off + 1]! & 3; // RFC 3168 §5
}
export function ipv4TotalLength(buf: Uint8Array, off: number): number {
  return u16(buf, off + 2);
}
export function ipv4Id(buf: Uint8Array, off: number): number {
  return u16(buf, off + 4);
}
export function ipv4DontFragment(buf: Uint8Array, off: number): boolean {
  return (buf[off + 6]! & 0x40) !== 0;
}
export function ipv4MoreFragments(buf: Uint8Array, off: number): boolean {
  return (buf[off + 6]! & 0x20) !== 0;
}
/** Fragment Offset in 8-octet units (multiply by 8 for bytes). */
export function ipv4FragmentOffset(buf: Uint8Array, off: number): number {
  return u16(buf, off + 6) & IPV4_OFFSET_MASK;
}
/** MF set or a non-zero offset: part of a fragmented datagram. */
export function ipv4IsFragment(buf: Uint8Array, off: number): boolean {
  return (u16(buf, off + 6) & (IPV4_FLAG_MF | IPV4_OFFSET_MASK)) !== 0;
}
export function ipv4Ttl(buf: Uint8Array, off: number): number {
  return buf[off + 8]!;
}
export function ipv4Protocol(buf: Uint8Array, off: number): number {
  return buf[off + 9]!;
}
export function ipv4Checksum(buf: Uint8Array, off: number): number {
  return u16(buf, off + IPV4_CHECKSUM_OFFSET);
}
export function ipv4Src(buf: Uint8Array, off: number): number {
  return u32(buf, off + IPV4_SRC_OFFSET);
}
export function ipv4Dst(buf: Uint8Array, off: number): number {
  return u32(buf, off + IPV4_DST_OFFSET);
}

/**
 * Decrements the TTL with an RFC 1624 checksum update and returns the new TTL. A packet that
 * arrives with TTL <= 1 must not be forwarded (RFC 1812 §5.3.1): it is left untouched (so an
 * ICMP Time Exceeded can quote it as received) and 0 is returned.
 */
export function decrementTtl(buf: Uint8Array, off: number): number {
  const ttl = buf[off + 8]!;
  if (ttl <= 1) return 0;
  const proto = buf[off + 9]!;
  const ck = u16(buf, off + IPV4_CHECKSUM_OFFSET);
  buf[off + 8] = ttl - 1;
  put16(buf, off + IPV4_CHECKSUM_OFFSET, incremental(ck, (ttl << 8) | proto, ((ttl - 1) << 8) | proto));
  return ttl - 1;
}

/** Rewrites the DSCP (RFC 2474 §3), keeping the ECN bits (RFC 3168 §5), checksum per RFC 1624. */
export function setDscp(buf: Uint8Array, off: number, dscp: number): void {
  const b0 = buf[off]!;
  const tos = buf[off + 1]!;
  const next = ((dscp & 0x3f) << 2) | (tos & 3);
  if (next === tos) return;
  const ck = u16(buf, off + IPV4_CHECKSUM_OFFSET);
  buf[off + 1] = next;
  put16(buf, off + IPV4_CHECKSUM_OFFSET, incremental(ck, (b0 << 8) | tos, (b0 << 8) | next));
}

/** Recomputes the header checksum from scratch (after edits that `incremental` does not cover). */
export function setIPv4Checksum(buf: Uint8Array, off: number): void {
  const hl = ipv4HeaderLength(buf, off);
  put16(buf, off + IPV4_CHECKSUM_OFFSET, 0);
  put16(buf, off + IPV4_CHECKSUM_OFFSET, finish(sum16(buf, off, hl)));
}

/** Exchanges source and destination; the checksum is unchanged (the sum commutes). */
export function swapIPv4Addresses(buf: Uint8Array, off: number): void {
  for (let i = 0; i < 4; i++) {
    const a = buf[off + IPV4_SRC_OFFSET + i]!;
    buf[off + IPV4_SRC_OFFSET + i] = buf[off + IPV4_DST_OFFSET + i]!;
    buf[off + IPV4_DST_OFFSET + i] = a;
  }
}

/** Fields of a header without options. Reuse one object per caller on the hot path. */
export interface Ipv4HeaderFields {
  /** Addresses as unsigned 32-bit numbers. */
  src: number;
  dst: number;
  proto: number;
  ttl: number;
  dscp: number;
  ecn?: number;
  id: number;
  dontFragment?: boolean;
  /** Bytes after the 20-byte header (total length = 20 + payloadLength). */
  payloadLength: number;
}

/** Writes a 20-byte header with its checksum; returns the payload offset. */
export function writeIPv4Header(buf: Uint8Array, off: number, h: Ipv4HeaderFields): number {
  buf[off] = 0x45; // version 4, IHL 5
  buf[off + 1] = ((h.dscp & 0x3f) << 2) | ((h.ecn ?? 0) & 3);
  put16(buf, off + 2, IPV4_MIN_HEADER_LENGTH + h.payloadLength);
  put16(buf, off + 4, h.id);
  put16(buf, off + 6, h.dontFragment === true ? IPV4_FLAG_DF : 0);
  buf[off + 8] = h.ttl;
  buf[off + 9] = h.proto;
  put16(buf, off + IPV4_CHECKSUM_OFFSET, 0);
  put32(buf, off + IPV4_SRC_OFFSET, h.src);
  put32(buf, off + IPV4_DST_OFFSET, h.dst);
  put16(buf, off + IPV4_CHECKSUM_OFFSET, finish(sum16(buf, off, IPV4_MIN_HEADER_LENGTH)));
  return off + IPV4_MIN_HEADER_LENGTH;
}
