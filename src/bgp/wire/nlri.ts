/**
 * NLRI on the wire: prefixes in the UPDATE's Withdrawn Routes and NLRI fields and inside
 * MP_REACH_NLRI / MP_UNREACH_NLRI, for the families vce speaks.
 *
 * - RFC 4271 §4.3: <length in bits, prefix in ceil(length/8) bytes>.
 * - RFC 4760 §5: the same encoding per (AFI, SAFI) inside the MP attributes.
 * - RFC 7911 §3: with ADD-PATH, a 4-byte Path Identifier precedes each prefix.
 * - RFC 4364 §4.3.4 / RFC 8277 §2: labeled VPN NLRI: the length counts the label stack (3 bytes
 *   per label: label << 4 | BoS), the 8-byte RD (RFC 4364 §4.2) and the prefix bits.
 *
 * Invariants: decoding never copies the input except for the prefix address itself (masked,
 * host bits beyond the length cleared: we are liberal in what we accept); `rd` is a view into the
 * input. Syntax errors throw `UpdateError` with the RFC 7606 §5.3 action for where the NLRI came
 * from: the NLRI and Withdrawn Routes fields -> 'session-reset' (§3.i, §3.j); inside MP_REACH /
 * MP_UNREACH -> 'afi-safi-disable' (§5.3 and §7.11 allow it instead of a reset; the caller knows the
 * family to disable). `forEachIPv4Prefix` is the allocation-free hot path for IPv4 unicast.
 */
import { Writer } from '../../lib/bytes.ts';
import { AFI_IPV4, AFI_IPV6, type Afi } from '../../lib/ip.ts';
import { UpdateErrorSubcode, type AfiSafiName } from './constants.ts';
import { LocalUsageError, UpdateError, type UpdateErrorAction } from './errors.ts';
import type { Nlri } from './types.ts';
import { RD_LENGTH } from './rd.ts';

/** Where an NLRI block was found; decides the RFC 7606 action for a syntax error. */
export type NlriWhere = 'nlri' | 'mp';

/** RFC 8277 §2.4: the label value a withdrawal carries for compatibility (no BoS bit). */
export const WITHDRAW_LABEL = 0x800000;
const LABEL_BYTES = 3;
const BOS = 0x000001;

interface FamilyShape {
  readonly afi: Afi;
  readonly addrBytes: number; // 4 or 16
  readonly maxBits: number; // 32 or 128
  readonly vpn: boolean; // labels + RD before the prefix
}

const FAMILY: Readonly<Record<AfiSafiName, FamilyShape>> = {
  'ipv4-unicast': { afi: AFI_IPV4, addrBytes: 4, maxBits: 32, vpn: false },
  'ipv6-unicast': { afi: AFI_IPV6, addrBytes: 16, maxBits: 128, vpn: false },
  'ipv4-vpn': { afi: AFI_IPV4, addrBytes: 4, maxBits: 32, vpn: true },
  'ipv6-vpn': { afi: AFI_IPV6, addrBytes: 16, maxBits: 128, vpn: true },
};

function nlriError(where: NlriWhere, family: AfiSafiName, offset: number, why: string): UpdateError {
  // RFC 7606 §5.3: NLRI / Withdrawn Routes field -> session reset (Invalid Network Field, RFC 4271
  // §6.3); MP_REACH/MP_UNREACH -> AFI/SAFI disable (RFC 4760 §7, Optional Attribute Error).
  const action: UpdateErrorAction = where === 'nlri' ? 'session-reset' : 'afi-safi-disable';
  const subcode =
    where === 'nlri' ? UpdateErrorSubcode.INVALID_NETWORK_FIELD : UpdateErrorSubcode.OPTIONAL_ATTRIBUTE_ERROR;
  return new UpdateError(action, subcode, `${family} NLRI at offset ${offset}: ${why}`);
}

/**
 * Walks an IPv4 unicast NLRI block calling `cb(addr, len, pathId)` with the address as an unsigned
 * 32-bit number, host bits cleared; pathId is 0 without ADD-PATH. No allocation per prefix.
 */
export function forEachIPv4Prefix(
  bytes: Uint8Array,
  addPath: boolean,
  cb: (addr: number, len: number, pathId: number) => void,
  where: NlriWhere = 'nlri',
): void {
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    let pathId = 0;
    if (addPath) {
      if (i + 5 > n) throw nlriError(where, 'ipv4-unicast', i, 'truncated path identifier'); // RFC 7911 §3
      pathId = ((bytes[i]! << 24) | (bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!) >>> 0;
      i += 4;
    }
    const len = bytes[i]!;
    // RFC 7606 §5.3: a length greater than 32, or one that overruns the field, is a syntax error.
    if (len > 32) throw nlriError(where, 'ipv4-unicast', i, `prefix length ${len} > 32`);
    const nb = (len + 7) >> 3;
    if (i + 1 + nb > n) throw nlriError(where, 'ipv4-unicast', i, `prefix overruns the field`);
    let addr = 0;
    if (nb > 0) addr = bytes[i + 1]! << 24;
    if (nb > 1) addr |= bytes[i + 2]! << 16;
    if (nb > 2) addr |= bytes[i + 3]! << 8;
    if (nb > 3) addr |= bytes[i + 4]!;
    addr = len === 0 ? 0 : (addr & (-1 << (32 - len))) >>> 0;
    cb(addr, len, pathId);
    i += 1 + nb;
  }
}

/** Decodes an NLRI block of one family into route keys. RFC 4271 §4.3, RFC 4760 §5, RFC 7911 §3. */
export function decodeNlri(
  bytes: Uint8Array,
  family: AfiSafiName,
  addPath: boolean,
  where: NlriWhere = 'nlri',
): Nlri[] {
  const shape = FAMILY[family];
  const out: Nlri[] = [];
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const start = i;
    let pathId: number | undefined;
    if (addPath) {
      if (i + 5 > n) throw nlriError(where, family, start, 'truncated path identifier');
      pathId = ((bytes[i]! << 24) | (bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!) >>> 0;
      i += 4;
    }
    let bits = bytes[i++]!;
    const end = i + ((bits + 7) >> 3);
    if (end > n) throw nlriError(where, family, start, `length ${bits} overruns the field`);
    let labels: number[] | undefined;
    let rd: Uint8Array | undefined;
    if (shape.vpn) {
      // RFC 8277 §2: labels until the bottom-of-stack bit; RFC 8277 §2.4: 0x800000 in a withdrawal.
      labels = [];
      for (;;) {
        if (bits < 24 || i + LABEL_BYTES > end)
          throw nlriError(where, family, start, 'truncated label stack');
        const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
        i += LABEL_BYTES;
        bits -= 24;
        if (v === WITHDRAW_LABEL && labels.length === 0) break;
        labels.push(v >>> 4);
        if ((v & BOS) !== 0) break;
      }
      // RFC 4364 §4.3.4: the 8-byte RD follows the labels.
      if (bits < 64) throw nlriError(where, family, start, 'truncated route distinguisher');
      rd = bytes.subarray(i, i + RD_LENGTH);
      i += RD_LENGTH;
      bits -= 64;
    }
    if (bits > shape.maxBits)
      throw nlriError(where, family, start, `prefix length ${bits} > ${shape.maxBits}`);
    const addr = new Uint8Array(shape.addrBytes);
    const nb = end - i;
    for (let k = 0; k < nb; k++) addr[k] = bytes[i + k]!;
    if (bits & 7) addr[nb - 1] = addr[nb - 1]! & (0xff << (8 - (bits & 7))); // be liberal: mask host bits
    i = end;
    const prefix = { afi: shape.afi, addr, len: bits };
    if (shape.vpn) {
      out.push(pathId === undefined ? { prefix, rd, labels } : { prefix, pathId, rd, labels });
    } else {
      out.push(pathId === undefined ? { prefix } : { prefix, pathId });
    }
  }
  return out;
}

function checkItem(item: Nlri, shape: FamilyShape, family: AfiSafiName): void {
  const p = item.prefix;
  if (p.afi !== shape.afi || p.len < 0 || p.len > shape.maxBits || p.addr.length < (p.len + 7) >> 3) {
    throw new LocalUsageError(`prefix does not belong to ${family}`);
  }
  if (shape.vpn && item.rd !== undefined && item.rd.length !== RD_LENGTH) {
    throw new LocalUsageError('route distinguisher must be 8 bytes');
  }
}

/** Bytes `item` takes on the wire for `family`. */
export function nlriLength(item: Nlri, family: AfiSafiName, addPath: boolean): number {
  const shape = FAMILY[family];
  const prefixBytes = (item.prefix.len + 7) >> 3;
  let n = 1 + prefixBytes + (addPath ? 4 : 0);
  if (shape.vpn) n += LABEL_BYTES * Math.max(1, item.labels?.length ?? 0) + RD_LENGTH;
  return n;
}

/** Writes one route key; a VPN key without labels is sent with the RFC 8277 §2.4 withdraw value. */
export function encodeNlriInto(w: Writer, item: Nlri, family: AfiSafiName, addPath: boolean): void {
  const shape = FAMILY[family];
  checkItem(item, shape, family);
  const len = item.prefix.len;
  if (addPath) w.u32(item.pathId ?? 0); // RFC 7911 §3
  if (shape.vpn) {
    const labels = item.labels ?? [];
    const bits = LABEL_BYTES * 8 * Math.max(1, labels.length) + RD_LENGTH * 8 + len;
    if (bits > 255) throw new LocalUsageError(`labeled NLRI of ${bits} bits does not fit its length byte`);
    w.u8(bits);
    if (labels.length === 0) {
      w.u8(WITHDRAW_LABEL >>> 16)
        .u8(0)
        .u8(0);
    } else {
      for (let k = 0; k < labels.length; k++) {
        const v = ((labels[k]! & 0xfffff) << 4) | (k === labels.length - 1 ? BOS : 0);
        w.u8(v >>> 16)
          .u8((v >>> 8) & 0xff)
          .u8(v & 0xff);
      }
    }
    if (item.rd === undefined) w.u32(0).u32(0);
    else w.bytes(item.rd);
  } else {
    w.u8(len);
  }
  const nb = (len + 7) >> 3;
  if (nb === 0) return;
  const addr = item.prefix.addr;
  const buf = w.buf;
  const at = w.pos;
  for (let k = 0; k < nb; k++) buf[at + k] = addr[k]!; // a loop beats subarray + set for <= 16 bytes
  if (len & 7) buf[at + nb - 1] = buf[at + nb - 1]! & (0xff << (8 - (len & 7))); // never send host bits
  w.pos = at + nb;
}

/** Encodes route keys of one family into a fresh NLRI block (length computed first, one write). */
export function encodeNlri(items: readonly Nlri[], family: AfiSafiName, addPath: boolean): Uint8Array {
  let size = 0;
  for (const it of items) size += nlriLength(it, family, addPath);
  const w = new Writer(size);
  for (const it of items) encodeNlriInto(w, it, family, addPath);
  return w.finish();
}
