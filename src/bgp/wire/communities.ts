/**
 * Text forms of communities and AS paths, for config, API and `show` (never the hot path).
 *
 * - RFC 1997: a community is a uint32 written "ASN:value"; well-known ones by name (RFC 1997,
 *   RFC 8326 graceful-shutdown, RFC 7999 blackhole).
 * - RFC 8092 §3: a large community is three uint32 written "global:local1:local2".
 * - RFC 4360 §3-§5, RFC 5668 §2, RFC 7153 §5.2: extended communities. Route Target (subtype 0x02)
 *   and Route Origin (0x03) of the two-octet-AS (0x00), IPv4 (0x01) and four-octet-AS (0x02)
 *   types are named "rt:" / "ro:"; their non-transitive variants (type | 0x40) "rt-nt:" / "ro-nt:".
 *   A four-octet-AS value whose ASN fits 16 bits is written "100L:5" to stay distinct from type 0.
 *   Everything else is "0x" plus 16 hex digits. Every `format*` output parses back to the input.
 *
 * Parse errors throw `LocalUsageError` (bad local input, never peer bytes).
 */
import { toHex } from '../../lib/bytes.ts';
import { formatIPv4, parseIPv4 } from '../../lib/ip.ts';
import { WellKnownCommunity } from './constants.ts';
import { LocalUsageError } from './errors.ts';
import type { LargeCommunity } from './types.ts';

export { formatAsPath, parseAsPath } from './as-path.ts';

const WELL_KNOWN: readonly (readonly [string, number])[] = [
  ['no-export', WellKnownCommunity.NO_EXPORT],
  ['no-advertise', WellKnownCommunity.NO_ADVERTISE],
  ['no-export-subconfed', WellKnownCommunity.NO_EXPORT_SUBCONFED],
  ['graceful-shutdown', WellKnownCommunity.GRACEFUL_SHUTDOWN],
  ['blackhole', WellKnownCommunity.BLACKHOLE],
];
const NAME_OF = new Map<number, string>(WELL_KNOWN.map(([n, v]) => [v, n]));
const VALUE_OF = new Map<string, number>(WELL_KNOWN);

function uint(tok: string, max: number, whole: string, what: string): number {
  if (!/^\d{1,10}$/.test(tok)) throw new LocalUsageError(`bad ${what}: ${whole}`);
  const n = Number(tok);
  if (n > max) throw new LocalUsageError(`bad ${what} (${tok} > ${max}): ${whole}`);
  return n;
}

// ---------------------------------------------------------------- RFC 1997 communities

export function formatCommunity(n: number): string {
  return NAME_OF.get(n >>> 0) ?? `${n >>> 16}:${n & 0xffff}`;
}

/** "65000:100", a well-known name, or a plain uint32. */
export function parseCommunity(s: string): number {
  const named = VALUE_OF.get(s.toLowerCase());
  if (named !== undefined) return named;
  const parts = s.split(':');
  if (parts.length === 1) return uint(s, 0xffffffff, s, 'community');
  if (parts.length !== 2) throw new LocalUsageError(`bad community: ${s}`);
  const hi = uint(parts[0]!, 0xffff, s, 'community');
  const lo = uint(parts[1]!, 0xffff, s, 'community');
  return ((hi << 16) | lo) >>> 0;
}

// ---------------------------------------------------------------- RFC 8092 large communities

export function formatLargeCommunity(c: LargeCommunity): string {
  return `${c.global}:${c.local1}:${c.local2}`;
}

export function parseLargeCommunity(s: string): LargeCommunity {
  const parts = s.split(':');
  if (parts.length !== 3) throw new LocalUsageError(`bad large community: ${s}`);
  const [g, l1, l2] = parts.map((p) => uint(p, 0xffffffff, s, 'large community')) as [number, number, number];
  return { global: g, local1: l1, local2: l2 };
}

// ---------------------------------------------------------------- RFC 4360 extended communities

export const ExtCommunityType = {
  TWO_OCTET_AS: 0x00, // RFC 4360 §3.1
  IPV4_ADDRESS: 0x01, // RFC 4360 §3.2
  FOUR_OCTET_AS: 0x02, // RFC 5668 §2
  NON_TRANSITIVE: 0x40, // RFC 4360 §2 T bit
} as const;

export const ExtCommunitySubtype = {
  ROUTE_TARGET: 0x02, // RFC 4360 §4
  ROUTE_ORIGIN: 0x03, // RFC 4360 §5
} as const;

const SUBTYPE_NAME: Readonly<Record<number, string>> = { 0x02: 'rt', 0x03: 'ro' };

export function formatExtCommunity(b: Uint8Array): string {
  if (b.length !== 8) return `0x${toHex(b)}`;
  const type = b[0]!;
  const base = type & ~ExtCommunityType.NON_TRANSITIVE;
  const name = SUBTYPE_NAME[b[1]!];
  if (name === undefined || base > ExtCommunityType.FOUR_OCTET_AS) return `0x${toHex(b)}`;
  const v = new DataView(b.buffer, b.byteOffset, 8);
  const tag = `${name}${type & ExtCommunityType.NON_TRANSITIVE ? '-nt' : ''}`;
  switch (base) {
    case ExtCommunityType.TWO_OCTET_AS:
      return `${tag}:${v.getUint16(2)}:${v.getUint32(4)}`;
    case ExtCommunityType.IPV4_ADDRESS:
      return `${tag}:${formatIPv4(b, 2)}:${v.getUint16(6)}`;
    default: {
      const asn = v.getUint32(2);
      return `${tag}:${asn}${asn <= 0xffff ? 'L' : ''}:${v.getUint16(6)}`;
    }
  }
}

/** Parses "rt:65000:100", "ro-nt:192.0.2.1:7", "rt:4200000000:100", "rt:100L:5" or "0x<16 hex>". */
export function parseExtCommunity(s: string): Uint8Array {
  const out = new Uint8Array(8);
  const v = new DataView(out.buffer);
  if (/^0x[0-9a-fA-F]{16}$/.test(s)) {
    for (let i = 0; i < 8; i++) out[i] = parseInt(s.slice(2 + i * 2, 4 + i * 2), 16);
    return out;
  }
  const m = /^(rt|ro)(-nt)?:(.+):([^:]+)$/.exec(s);
  if (m === null) throw new LocalUsageError(`bad extended community: ${s}`);
  const subtype = m[1] === 'rt' ? ExtCommunitySubtype.ROUTE_TARGET : ExtCommunitySubtype.ROUTE_ORIGIN;
  const nt = m[2] === undefined ? 0 : ExtCommunityType.NON_TRANSITIVE;
  const admin = m[3]!;
  const local = m[4]!;
  out[1] = subtype;
  if (admin.includes('.')) {
    let ip: Uint8Array;
    try {
      ip = parseIPv4(admin);
    } catch {
      throw new LocalUsageError(`bad extended community: ${s}`);
    }
    out[0] = ExtCommunityType.IPV4_ADDRESS | nt;
    out.set(ip, 2);
    v.setUint16(6, uint(local, 0xffff, s, 'extended community'));
    return out;
  }
  const forced4 = /[lL]$/.test(admin);
  const asn = uint(forced4 ? admin.slice(0, -1) : admin, 0xffffffff, s, 'extended community');
  if (!forced4 && asn <= 0xffff) {
    out[0] = ExtCommunityType.TWO_OCTET_AS | nt;
    v.setUint16(2, asn);
    v.setUint32(4, uint(local, 0xffffffff, s, 'extended community'));
  } else {
    out[0] = ExtCommunityType.FOUR_OCTET_AS | nt;
    v.setUint32(2, asn);
    v.setUint16(6, uint(local, 0xffff, s, 'extended community'));
  }
  return out;
}
