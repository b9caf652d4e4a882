/**
 * Route Distinguishers (RFC 4364 §4.2): 8 bytes, a 2-byte type then a 6-byte value.
 *
 *   type 0: 2-byte ASN administrator, 4-byte assigned number   "65000:100"
 *   type 1: IPv4 address administrator, 2-byte assigned number "192.0.2.1:100"
 *   type 2: 4-byte ASN administrator, 2-byte assigned number   "4200000000:100"
 *
 * Any other type is written and read as "0x" followed by the 16 hex digits of the 8 bytes, so
 * `parseRd(formatRd(rd))` returns the same bytes for every RD. A type 2 RD whose ASN fits in
 * 16 bits is written with an `L` suffix ("100L:5"), as Junos does, to keep that round trip.
 * Strings exist only at the edges (config, API, `show`); the codecs carry the 8 bytes.
 */
import { formatIPv4, parseIPv4 } from '../../lib/ip.ts';
import { toHex } from '../../lib/bytes.ts';
import { LocalUsageError } from './errors.ts';

export const RD_LENGTH = 8; // RFC 4364 §4.2

export const RdType = {
  AS2: 0, // RFC 4364 §4.2 type 0
  IPV4: 1, // type 1
  AS4: 2, // type 2
} as const;

function u16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

function u32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

/** "65000:100", "192.0.2.1:100", "4200000000:100", or "0x<16 hex digits>" for other types. */
export function formatRd(rd: Uint8Array): string {
  if (rd.length !== RD_LENGTH) return `0x${toHex(rd)}`;
  switch (u16(rd, 0)) {
    case RdType.AS2:
      return `${u16(rd, 2)}:${u32(rd, 4)}`;
    case RdType.IPV4:
      return `${formatIPv4(rd, 2)}:${u16(rd, 6)}`;
    case RdType.AS4: {
      const asn = u32(rd, 2);
      return `${asn}${asn <= 0xffff ? 'L' : ''}:${u16(rd, 6)}`;
    }
    default:
      return `0x${toHex(rd)}`;
  }
}

function num(s: string, max: number, whole: string): number {
  if (!/^\d{1,10}$/.test(s)) throw new LocalUsageError(`bad route distinguisher: ${whole}`);
  const n = Number(s);
  if (n > max) throw new LocalUsageError(`bad route distinguisher (${s} > ${max}): ${whole}`);
  return n;
}

/** Parses the forms `formatRd` writes; picks type 0 for a 16-bit ASN, type 2 for a larger one. */
export function parseRd(s: string): Uint8Array {
  const out = new Uint8Array(RD_LENGTH);
  const v = new DataView(out.buffer);
  if (/^0x[0-9a-fA-F]{16}$/.test(s)) {
    for (let i = 0; i < RD_LENGTH; i++) out[i] = parseInt(s.slice(2 + i * 2, 4 + i * 2), 16);
    return out;
  }
  const colon = s.lastIndexOf(':');
  if (colon <= 0) throw new LocalUsageError(`bad route distinguisher: ${s}`);
  const admin = s.slice(0, colon);
  const assigned = s.slice(colon + 1);
  if (admin.includes('.')) {
    let ip: Uint8Array;
    try {
      ip = parseIPv4(admin);
    } catch {
      throw new LocalUsageError(`bad route distinguisher: ${s}`);
    }
    v.setUint16(0, RdType.IPV4);
    out.set(ip, 2);
    v.setUint16(6, num(assigned, 0xffff, s));
    return out;
  }
  const forced4 = admin.endsWith('L') || admin.endsWith('l');
  const asn = num(forced4 ? admin.slice(0, -1) : admin, 0xffffffff, s);
  if (!forced4 && asn <= 0xffff) {
    v.setUint16(0, RdType.AS2);
    v.setUint16(2, asn);
    v.setUint32(4, num(assigned, 0xffffffff, s));
  } else {
    v.setUint16(0, RdType.AS4);
    v.setUint32(2, asn);
    v.setUint16(6, num(assigned, 0xffff, s));
  }
  return out;
}
