/**
 * MPLS label stack entries (RFC 3032 §2.1): 20-bit label, 3-bit Traffic Class (RFC 5462, used
 * for E-LSP QoS per RFC 3270), bottom-of-stack bit and TTL. Carried over UDP per RFC 7510.
 */
import { nameLookup } from './bytes.ts';

export const MPLS_IN_UDP_PORT = 6635; // RFC 7510 §3, IANA
export const MPLS_LABEL_LENGTH = 4;

/** Reserved label values (RFC 3032 §2.1; RFC 6790 for 7). */
export const MplsLabel = {
  IPV4_EXPLICIT_NULL: 0,
  ROUTER_ALERT: 1,
  IPV6_EXPLICIT_NULL: 2,
  IMPLICIT_NULL: 3, // signalled only, never on the wire
  ENTROPY_LABEL_INDICATOR: 7,
} as const;
export const mplsLabelName = nameLookup(MplsLabel);
export const IPV4_EXPLICIT_NULL = MplsLabel.IPV4_EXPLICIT_NULL;
export const IPV6_EXPLICIT_NULL = MplsLabel.IPV6_EXPLICIT_NULL;

/** Negative results of `parseLabel` / `skipLabelStack` (range -100 .. -109). */
export const MplsError = {
  TOO_SHORT: -100,
  STACK_TOO_DEEP: -101, // no bottom-of-stack within the depth limit
} as const;
export const mplsErrorName = nameLookup(MplsError);

export interface MplsEntry {
  label: number;
  tc: number;
  bottom: boolean;
  ttl: number;
}

export function newMplsEntry(): MplsEntry {
  return { label: 0, tc: 0, bottom: false, ttl: 0 };
}

/** Writes one label stack entry; returns the offset after it. */
export function writeLabel(
  buf: Uint8Array,
  off: number,
  label: number,
  tc: number,
  bottom: boolean,
  ttl: number,
): number {
  buf[off] = label >>> 12;
  buf[off + 1] = label >>> 4;
  buf[off + 2] = ((label & 0x0f) << 4) | ((tc & 7) << 1) | (bottom ? 1 : 0);
  buf[off + 3] = ttl;
  return off + MPLS_LABEL_LENGTH;
}

/** Reads the entry at `off` into `out`; returns the offset after it or `MplsError.TOO_SHORT`. */
export function parseLabel(buf: Uint8Array, off: number, end: number, out: MplsEntry): number {
  if (end - off < MPLS_LABEL_LENGTH) return MplsError.TOO_SHORT;
  const b2 = buf[off + 2]!;
  out.label = (buf[off]! << 12) | (buf[off + 1]! << 4) | (b2 >>> 4);
  out.tc = (b2 >>> 1) & 7;
  out.bottom = (b2 & 1) === 1;
  out.ttl = buf[off + 3]!;
  return off + MPLS_LABEL_LENGTH;
}

/** Offset after the bottom-of-stack entry, or an `MplsError`. */
export function skipLabelStack(buf: Uint8Array, off: number, end: number, maxDepth = 16): number {
  let p = off;
  for (let i = 0; i < maxDepth; i++) {
    if (end - p < MPLS_LABEL_LENGTH) return MplsError.TOO_SHORT;
    const bottom = (buf[p + 2]! & 1) === 1;
    p += MPLS_LABEL_LENGTH;
    if (bottom) return p;
  }
  return MplsError.STACK_TOO_DEEP;
}
