/**
 * VXLAN header (RFC 7348 §5): 8 bytes after the outer UDP header, I flag 0x08 in the first
 * byte, 24-bit VNI in bytes 4-6. Reserved bits are written as zero and ignored on receipt.
 */
import { nameLookup } from './bytes.ts';

export const VXLAN_PORT = 4789; // RFC 7348 §5, IANA
export const VXLAN_HEADER_LENGTH = 8;
export const VXLAN_FLAG_I = 0x08; // "I" flag: VNI valid
/** Outer Ethernet (untagged) + IPv4 + UDP + VXLAN bytes added to the inner frame. */
export const VXLAN_OVERHEAD_IPV4 = 14 + 20 + 8 + VXLAN_HEADER_LENGTH;

/** Negative results of `parseVxlan` (range -80 .. -89). */
export const VxlanError = {
  TOO_SHORT: -80,
  NO_I_FLAG: -81, // RFC 7348 §5: I flag MUST be set
} as const;
export const vxlanErrorName = nameLookup(VxlanError);

/** Writes the header for `vni`; returns the offset of the inner Ethernet frame. */
export function writeVxlan(buf: Uint8Array, off: number, vni: number): number {
  buf[off] = VXLAN_FLAG_I;
  buf[off + 1] = 0;
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  buf[off + 4] = vni >>> 16;
  buf[off + 5] = vni >>> 8;
  buf[off + 6] = vni;
  buf[off + 7] = 0;
  return off + VXLAN_HEADER_LENGTH;
}

/** Returns the VNI (>= 0) of the header at `buf[off, end)` or a `VxlanError`; inner frame at off + 8. */
export function parseVxlan(buf: Uint8Array, off: number, end: number): number {
  if (end - off < VXLAN_HEADER_LENGTH) return VxlanError.TOO_SHORT;
  if ((buf[off]! & VXLAN_FLAG_I) === 0) return VxlanError.NO_I_FLAG;
  return (buf[off + 4]! << 16) | (buf[off + 5]! << 8) | buf[off + 6]!;
}
