/**
 * GRE (RFC 2784) with the Key and Sequence Number extensions (RFC 2890), NVGRE's use of the key
 * for a 24-bit Virtual Subnet ID and 8-bit FlowID (RFC 7637 §3.2), carried in UDP per RFC 8086.
 *
 * Receive rules: version MUST be 0 (RFC 2784 §2.3.1); bits 1-5 of Reserved0 other than K and S
 * MUST be zero (§2.3, RFC 2890 §2); bits 6-12 are ignored; a present checksum is verified.
 */
import { nameLookup, put16, put32, u16, u32 } from './bytes.ts';
import { finish, sum16 } from './checksum.ts';
import { ETHERTYPE_TEB } from './ethernet.ts';

export const GRE_IN_UDP_PORT = 4754; // RFC 8086 §3, IANA "gre-in-udp"
export const GRE_FLAG_C = 0x8000; // Checksum Present (RFC 2784 §2.2)
export const GRE_FLAG_K = 0x2000; // Key Present (RFC 2890 §2)
export const GRE_FLAG_S = 0x1000; // Sequence Number Present (RFC 2890 §2)
/** Reserved0 bits 1, 4 and 5: a receiver MUST discard when set (RFC 2784 §2.3). */
export const GRE_MUST_BE_ZERO = 0x4000 | 0x0800 | 0x0400;
export const GRE_VERSION_MASK = 0x0007;
export const GRE_PROTO_TEB = ETHERTYPE_TEB; // 0x6558, NVGRE (RFC 7637 §3.2)
export const NVGRE_HEADER_LENGTH = 8;

/** Negative results of `parseGre` (range -90 .. -99). */
export const GreError = {
  TOO_SHORT: -90,
  BAD_VERSION: -91,
  RESERVED_BITS: -92,
  BAD_CHECKSUM: -93,
} as const;
export const greErrorName = nameLookup(GreError);

export interface GreInfo {
  /** The 16-bit flags-and-version word. */
  flags: number;
  protocol: number;
  checksumPresent: boolean;
  hasKey: boolean;
  /** Key (unsigned 32-bit; NVGRE: VSID << 8 | FlowID), 0 when absent. */
  key: number;
  hasSeq: boolean;
  /** Sequence number (unsigned 32-bit), 0 when absent. */
  seq: number;
  payloadOff: number;
}

export function newGreInfo(): GreInfo {
  return {
    flags: 0,
    protocol: 0,
    checksumPresent: false,
    hasKey: false,
    key: 0,
    hasSeq: false,
    seq: 0,
    payloadOff: 0,
  };
}

/**
 * Parses the GRE packet `buf[off, end)` (`end` = end of the GRE packet; the checksum covers it
 * all); returns the payload offset or a `GreError`.
 */
export function parseGre(buf: Uint8Array, off: number, end: number, out: GreInfo): number {
  if (end - off < 4) return GreError.TOO_SHORT;
  const w = u16(buf, off);
  if ((w & GRE_VERSION_MASK) !== 0) return GreError.BAD_VERSION;
  if ((w & GRE_MUST_BE_ZERO) !== 0) return GreError.RESERVED_BITS;
  const c = (w & GRE_FLAG_C) !== 0;
  const k = (w & GRE_FLAG_K) !== 0;
  const s = (w & GRE_FLAG_S) !== 0;
  const hl = 4 + (c ? 4 : 0) + (k ? 4 : 0) + (s ? 4 : 0);
  if (end - off < hl) return GreError.TOO_SHORT;
  if (c && sum16(buf, off, end - off) !== 0xffff) return GreError.BAD_CHECKSUM; // RFC 2784 §2.5
  let p = off + 4 + (c ? 4 : 0);
  out.flags = w;
  out.protocol = u16(buf, off + 2);
  out.checksumPresent = c;
  out.hasKey = k;
  out.key = 0;
  out.hasSeq = s;
  out.seq = 0;
  if (k) {
    out.key = u32(buf, p);
    p += 4;
  }
  if (s) {
    out.seq = u32(buf, p);
    p += 4;
  }
  out.payloadOff = p;
  return p;
}

/**
 * Writes a GRE header: checksum field (zero; fill with `setGreChecksum` once the payload is in
 * place) when `checksum`, key when `key >= 0`, sequence number when `seq >= 0`. Returns the
 * payload offset.
 */
export function writeGre(
  buf: Uint8Array,
  off: number,
  protocol: number,
  key = -1,
  seq = -1,
  checksum = false,
): number {
  put16(buf, off, (checksum ? GRE_FLAG_C : 0) | (key >= 0 ? GRE_FLAG_K : 0) | (seq >= 0 ? GRE_FLAG_S : 0));
  put16(buf, off + 2, protocol);
  let p = off + 4;
  if (checksum) {
    put32(buf, p, 0); // checksum + Reserved1
    p += 4;
  }
  if (key >= 0) {
    put32(buf, p, key);
    p += 4;
  }
  if (seq >= 0) {
    put32(buf, p, seq);
    p += 4;
  }
  return p;
}

/** Fills the checksum of a GRE packet written with `checksum = true`, spanning `buf[off, end)`. */
export function setGreChecksum(buf: Uint8Array, off: number, end: number): void {
  put16(buf, off + 4, 0);
  put16(buf, off + 4, finish(sum16(buf, off, end - off)));
}

/** NVGRE header (RFC 7637 §3.2): K set, C and S clear, protocol 0x6558, key = VSID << 8 | FlowID. */
export function writeNvgre(buf: Uint8Array, off: number, vsid: number, flowId = 0): number {
  buf[off] = GRE_FLAG_K >>> 8;
  buf[off + 1] = 0;
  put16(buf, off + 2, GRE_PROTO_TEB);
  put32(buf, off + 4, (((vsid & 0xffffff) << 8) | (flowId & 0xff)) >>> 0);
  return off + NVGRE_HEADER_LENGTH;
}

/** The 24-bit VSID of an NVGRE key. */
export function nvgreVsid(key: number): number {
  return key >>> 8;
}

/** The 8-bit FlowID of an NVGRE key. */
export function nvgreFlowId(key: number): number {
  return key & 0xff;
}
