/**
 * IPv6 header (RFC 8200 §3): validation, accessors, the walk over extension headers to the
 * upper-layer header (RFC 8200 §4, RFC 7045), in-place hop-limit and DSCP rewrites (no header
 * checksum in IPv6) and a header writer. Jumbograms (RFC 2675) are not supported: payload
 * length 0 is taken literally.
 */
import { copyBytes, nameLookup, put16, u16 } from './bytes.ts';
import { IpProto } from './proto.ts';

export const IPV6_VERSION = 6;
export const IPV6_HEADER_LENGTH = 40;
export const IPV6_SRC_OFFSET = 8;
export const IPV6_DST_OFFSET = 24;
export const IPV6_MIN_MTU = 1280; // RFC 8200 §5
export const IPV6_DEFAULT_HOP_LIMIT = 64; // IANA "ipv6-parameters"

/** Negative results of `checkIPv6` and `upperLayer` (range -30 .. -39). */
export const Ipv6Reason = {
  TOO_SHORT: -30, // fewer than 40 bytes
  BAD_VERSION: -31,
  BAD_PAYLOAD_LENGTH: -32, // 40 + payload length > the bytes received
  EXT_TRUNCATED: -33, // an extension header runs past the payload
  HOP_BY_HOP_NOT_FIRST: -34, // RFC 8200 §4.1: only immediately after the IPv6 header
} as const;
export const ipv6ReasonName = nameLookup(Ipv6Reason);

/** Validates the fixed header at `buf[off, end)`; returns 40 or an `Ipv6Reason`. */
export function checkIPv6(buf: Uint8Array, off: number, end: number): number {
  const avail = end - off;
  if (avail < IPV6_HEADER_LENGTH) return Ipv6Reason.TOO_SHORT;
  if (buf[off]! >>> 4 !== IPV6_VERSION) return Ipv6Reason.BAD_VERSION;
  if (IPV6_HEADER_LENGTH + u16(buf, off + 4) > avail) return Ipv6Reason.BAD_PAYLOAD_LENGTH;
  return IPV6_HEADER_LENGTH;
}

export function ipv6TrafficClass(buf: Uint8Array, off: number): number {
  return ((buf[off]! & 0x0f) << 4) | (buf[off + 1]! >>> 4);
}
export function ipv6Dscp(buf: Uint8Array, off: number): number {
  return ipv6TrafficClass(buf, off) >>> 2; // RFC 2474 §3
}
export function ipv6Ecn(buf: Uint8Array, off: number): number {
  return (buf[off + 1]! >>> 4) & 3; // RFC 3168 §5
}
export function ipv6FlowLabel(buf: Uint8Array, off: number): number {
  return ((buf[off + 1]! & 0x0f) << 16) | (buf[off + 2]! << 8) | buf[off + 3]!;
}
export function ipv6PayloadLength(buf: Uint8Array, off: number): number {
  return u16(buf, off + 4);
}
export function ipv6NextHeader(buf: Uint8Array, off: number): number {
  return buf[off + 6]!;
}
export function ipv6HopLimit(buf: Uint8Array, off: number): number {
  return buf[off + 7]!;
}
/** ff00::/8 (RFC 4291 §2.7); `addrOff` points at an address. */
export function isIPv6Multicast(buf: Uint8Array, addrOff: number): boolean {
  return buf[addrOff] === 0xff;
}
/** fe80::/10 (RFC 4291 §2.5.6). */
export function isIPv6LinkLocal(buf: Uint8Array, addrOff: number): boolean {
  return buf[addrOff] === 0xfe && (buf[addrOff + 1]! & 0xc0) === 0x80;
}
/** :: (RFC 4291 §2.5.2). */
export function isIPv6Unspecified(buf: Uint8Array, addrOff: number): boolean {
  for (let i = 0; i < 16; i++) if (buf[addrOff + i] !== 0) return false;
  return true;
}

/** Result of `upperLayer`; reuse one per caller. */
export interface UpperLayer {
  /** Upper-layer protocol: the first Next Header that is not an extension header (59: none). */
  protocol: number;
  /** Offset of the upper-layer header; -1 in a non-first fragment (it has none). */
  offset: number;
  /** Offset of the Fragment header, -1 when absent. */
  fragmentOff: number;
  /** Fragment Offset in 8-octet units (0 in the first fragment and unfragmented packets). */
  fragmentOffset: number;
  moreFragments: boolean;
  fragmentId: number;
}

export function newUpperLayer(): UpperLayer {
  return { protocol: 0, offset: -1, fragmentOff: -1, fragmentOffset: 0, moreFragments: false, fragmentId: 0 };
}

/**
 * Walks the extension headers of the packet at `off` (fixed header already checked) and fills
 * `out`; returns the offset after the last extension header (>= 0) or an `Ipv6Reason`. The walk
 * stops at the first non-extension Next Header, at 59 (RFC 8200 §4.7), at ESP (50, opaque) and
 * after a Fragment header whose offset is non-zero. The payload length bounds the walk.
 */
export function upperLayer(buf: Uint8Array, off: number, end: number, out: UpperLayer): number {
  const limit = Math.min(end, off + IPV6_HEADER_LENGTH + u16(buf, off + 4));
  let nh = buf[off + 6]!;
  let p = off + IPV6_HEADER_LENGTH;
  out.fragmentOff = -1;
  out.fragmentOffset = 0;
  out.moreFragments = false;
  out.fragmentId = 0;
  for (;;) {
    if (nh === IpProto.HOPOPT && p !== off + IPV6_HEADER_LENGTH) return Ipv6Reason.HOP_BY_HOP_NOT_FIRST;
    if (nh === IpProto.IPV6_FRAG) {
      // RFC 8200 §4.5: 8 bytes, offset in the top 13 bits of bytes 2-3, M flag in bit 0.
      if (limit - p < 8) return Ipv6Reason.EXT_TRUNCATED;
      const w = u16(buf, p + 2);
      out.fragmentOff = p;
      out.fragmentOffset = w >>> 3;
      out.moreFragments = (w & 1) === 1;
      out.fragmentId = ((buf[p + 4]! << 24) | (buf[p + 5]! << 16) | (buf[p + 6]! << 8) | buf[p + 7]!) >>> 0;
      nh = buf[p]!;
      p += 8;
      if (out.fragmentOffset !== 0) {
        out.protocol = nh;
        out.offset = -1;
        return p;
      }
      continue;
    }
    let len: number;
    if (
      nh === IpProto.HOPOPT ||
      nh === IpProto.IPV6_ROUTE ||
      nh === IpProto.IPV6_OPTS ||
      nh === IpProto.MOBILITY ||
      nh === IpProto.HIP ||
      nh === IpProto.SHIM6
    ) {
      // RFC 8200 §4.3, §4.4, §4.6 (and RFC 6275, 7401, 5533): length in 8-octet units, not counting the first 8.
      if (limit - p < 8) return Ipv6Reason.EXT_TRUNCATED;
      len = (buf[p + 1]! + 1) << 3;
    } else if (nh === IpProto.AH) {
      // RFC 4302 §2.2: length in 4-octet units, minus 2.
      if (limit - p < 8) return Ipv6Reason.EXT_TRUNCATED;
      len = (buf[p + 1]! + 2) << 2;
    } else {
      out.protocol = nh;
      out.offset = p;
      return p;
    }
    if (limit - p < len) return Ipv6Reason.EXT_TRUNCATED;
    nh = buf[p]!;
    p += len;
  }
}

/**
 * Decrements the hop limit and returns the new value. A packet arriving with hop limit <= 1 is
 * not forwarded (RFC 8200 §3, RFC 4443 §3.3): left untouched and 0 returned.
 */
export function decrementHopLimit(buf: Uint8Array, off: number): number {
  const hl = buf[off + 7]!;
  if (hl <= 1) return 0;
  buf[off + 7] = hl - 1;
  return hl - 1;
}

/** Rewrites the DSCP (upper 6 bits of the traffic class), keeping ECN. */
export function setDscp(buf: Uint8Array, off: number, dscp: number): void {
  const tc = ((dscp & 0x3f) << 2) | ((buf[off + 1]! >>> 4) & 3);
  buf[off] = (buf[off]! & 0xf0) | (tc >>> 4);
  buf[off + 1] = ((tc & 0x0f) << 4) | (buf[off + 1]! & 0x0f);
}

/** Fields of a fixed header; reuse one object per caller. Addresses are 16 bytes at `*Off`. */
export interface Ipv6HeaderFields {
  src: Uint8Array;
  srcOff?: number;
  dst: Uint8Array;
  dstOff?: number;
  nextHeader: number;
  hopLimit: number;
  dscp?: number;
  ecn?: number;
  flowLabel?: number;
  /** Bytes after the 40-byte header. */
  payloadLength: number;
}

/** Writes the 40-byte header; returns the offset after it. */
export function writeIPv6Header(buf: Uint8Array, off: number, h: Ipv6HeaderFields): number {
  const tc = (((h.dscp ?? 0) & 0x3f) << 2) | ((h.ecn ?? 0) & 3);
  const fl = (h.flowLabel ?? 0) & 0xfffff;
  buf[off] = (IPV6_VERSION << 4) | (tc >>> 4);
  buf[off + 1] = ((tc & 0x0f) << 4) | (fl >>> 16);
  put16(buf, off + 2, fl & 0xffff);
  put16(buf, off + 4, h.payloadLength);
  buf[off + 6] = h.nextHeader;
  buf[off + 7] = h.hopLimit;
  copyBytes(buf, off + IPV6_SRC_OFFSET, h.src, h.srcOff ?? 0, 16);
  copyBytes(buf, off + IPV6_DST_OFFSET, h.dst, h.dstOff ?? 0, 16);
  return off + IPV6_HEADER_LENGTH;
}

/** Exchanges source and destination in place. */
export function swapIPv6Addresses(buf: Uint8Array, off: number): void {
  for (let i = 0; i < 16; i++) {
    const a = buf[off + IPV6_SRC_OFFSET + i]!;
    buf[off + IPV6_SRC_OFFSET + i] = buf[off + IPV6_DST_OFFSET + i]!;
    buf[off + IPV6_DST_OFFSET + i] = a;
  }
}
