/**
 * MP_REACH_NLRI and MP_UNREACH_NLRI values (RFC 4760 §3, §4): the per-UPDATE family, next hop
 * and raw NLRI. The NLRI bytes stay raw views here; `decodeNlri(..., 'mp')` reads them.
 *
 * Next hop lengths accepted per family:
 *   ipv4-unicast 4, or 16/32 for an IPv6 next hop (RFC 8950 §3)
 *   ipv6-unicast 16, or 32 with a link-local address (RFC 2545 §3)
 *   ipv4-vpn     12 = RD + IPv4 (RFC 4364 §4.3.2), or 24/48 with IPv6 (RFC 8950 §3)
 *   ipv6-vpn     24 = RD + IPv6, or 48 with RD + link-local (RFC 4659 §3.2.1.1)
 * The RD in a VPN next hop is zero on send and ignored on receipt. Families vce does not speak are
 * returned with the next hop bytes as received, for the caller to ignore.
 *
 * Malformed values return a reason string; the caller applies RFC 7606 §7.11 / §5.3 (session
 * reset). Encoders write exactly `mpReachHeadLength` bytes.
 */
import type { Writer } from '../../lib/bytes.ts';
import { Safi, afiSafiName, type AfiSafiName } from './constants.ts';
import { LocalUsageError } from './errors.ts';
import type { MpReach, MpUnreach } from './types.ts';
import { RD_LENGTH } from './rd.ts';

const NEXT_HOP_LENGTHS: Readonly<Record<AfiSafiName, readonly number[]>> = {
  'ipv4-unicast': [4, 16, 32],
  'ipv6-unicast': [16, 32],
  'ipv4-vpn': [12, 24, 48],
  'ipv6-vpn': [24, 48],
};

function u16(v: Uint8Array, o: number): number {
  return (v[o]! << 8) | v[o + 1]!;
}

/** RFC 4760 §3: AFI(2) SAFI(1) NH-len(1) NH Reserved(1) NLRI. */
export function decodeMpReach(v: Uint8Array): MpReach | string {
  if (v.length < 5) return `length ${v.length} < 5`; // RFC 7606 §5.3
  const afi = u16(v, 0);
  const safi = v[2]!;
  const nhLen = v[3]!;
  if (5 + nhLen > v.length) return `next hop length ${nhLen} overruns the attribute`;
  const nh = v.subarray(4, 4 + nhLen);
  const nlri = v.subarray(5 + nhLen);
  const family = afiSafiName(afi, safi);
  if (family === undefined) return { afi, safi, nextHop: nh, nlri };
  if (!NEXT_HOP_LENGTHS[family].includes(nhLen)) {
    return `next hop length ${nhLen} is inconsistent with ${family}`; // RFC 7606 §7.11
  }
  const rd = safi === Safi.MPLS_VPN ? RD_LENGTH : 0;
  const addrLen = nhLen === 4 + rd ? 4 : 16;
  const nextHop = nh.subarray(rd, rd + addrLen);
  if (nhLen === 2 * (rd + 16)) {
    return { afi, safi, nextHop, linkLocalNextHop: nh.subarray(2 * rd + 16, 2 * rd + 32), nlri };
  }
  return { afi, safi, nextHop, nlri };
}

/** RFC 4760 §4: AFI(2) SAFI(1) NLRI. */
export function decodeMpUnreach(v: Uint8Array): MpUnreach | string {
  if (v.length < 3) return `length ${v.length} < 3`; // RFC 7606 §5.3
  return { afi: u16(v, 0), safi: v[2]!, nlri: v.subarray(3) };
}

function nextHopFieldLength(safi: number, nextHop: Uint8Array, linkLocal: Uint8Array | undefined): number {
  const rd = safi === Safi.MPLS_VPN ? RD_LENGTH : 0;
  const n = rd + nextHop.length + (linkLocal === undefined ? 0 : rd + linkLocal.length);
  if (n > 255) throw new LocalUsageError(`next hop field of ${n} bytes`);
  return n;
}

/** Bytes of the MP_REACH_NLRI value before its NLRI: AFI, SAFI, next hop, reserved. */
export function mpReachHeadLength(safi: number, nextHop: Uint8Array, linkLocal?: Uint8Array): number {
  return 5 + nextHopFieldLength(safi, nextHop, linkLocal);
}

/** Writes AFI, SAFI, the next hop (VPN: each address behind a zero RD, RFC 4364 §4.3.2), reserved. */
export function encodeMpReachHead(
  w: Writer,
  afi: number,
  safi: number,
  nextHop: Uint8Array,
  linkLocal?: Uint8Array,
): void {
  const vpn = safi === Safi.MPLS_VPN;
  w.u16(afi)
    .u8(safi)
    .u8(nextHopFieldLength(safi, nextHop, linkLocal));
  if (vpn) w.u32(0).u32(0);
  w.bytes(nextHop);
  if (linkLocal !== undefined) {
    if (vpn) w.u32(0).u32(0);
    w.bytes(linkLocal);
  }
  w.u8(0); // RFC 4760 §3: Reserved (formerly the SNPA count)
}
