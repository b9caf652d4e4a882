/**
 * Ethernet II framing with IEEE 802.1Q C-tags and 802.1ad S-tags (QinQ), plus MAC address
 * helpers. `parseEthernet` fills a reusable `EthInfo` and returns the payload offset or a
 * negative `EthError`; `writeEthernet` writes a header and returns the offset after it.
 *
 * Tag conventions (both directions): a single tag is reported and written as `innerVlan` with
 * `outerVlan === -1`; QinQ puts the S-tag (or the first of two 0x8100 tags) in `outerVlan`. A
 * lone 0x88a8 S-tag is reported as `outerVlan`. VID 0 (priority-tagged) is reported as 0.
 * EtherType values: IEEE Registration Authority; IANA "ieee-802-numbers".
 */
import { AddressError } from '../../lib/ip.ts';
import { copyBytes, nameLookup, put16, u16 } from './bytes.ts';

export const ETHERTYPE_IPV4 = 0x0800; // RFC 894
export const ETHERTYPE_ARP = 0x0806; // RFC 826
export const ETHERTYPE_TEB = 0x6558; // Transparent Ethernet Bridging (RFC 1701, RFC 7637 §3.2)
export const ETHERTYPE_VLAN = 0x8100; // IEEE 802.1Q customer tag (C-tag)
export const ETHERTYPE_IPV6 = 0x86dd; // RFC 2464 §3
export const ETHERTYPE_MPLS_UNICAST = 0x8847; // RFC 3032 §5
export const ETHERTYPE_QINQ = 0x88a8; // IEEE 802.1ad service tag (S-tag)

export const EtherType = {
  IPV4: ETHERTYPE_IPV4,
  ARP: ETHERTYPE_ARP,
  TEB: ETHERTYPE_TEB,
  VLAN: ETHERTYPE_VLAN,
  IPV6: ETHERTYPE_IPV6,
  MPLS_UNICAST: ETHERTYPE_MPLS_UNICAST,
  QINQ: ETHERTYPE_QINQ,
} as const;
export const etherTypeName = nameLookup(EtherType);

export const ETH_ADDR_LENGTH = 6;
export const ETH_HEADER_LENGTH = 14;
export const VLAN_TAG_LENGTH = 4;

/** Negative results of `parseEthernet` (range -1 .. -9). */
export const EthError = {
  TOO_SHORT: -1, // fewer than 14 bytes
  TAG_TRUNCATED: -2, // a TPID without its TCI and next EtherType
  TOO_MANY_TAGS: -3, // a third VLAN tag
  BAD_TAG_ORDER: -4, // 0x8100 followed by 0x88a8
} as const;
export const ethErrorName = nameLookup(EthError);

export interface EthInfo {
  dstOff: number;
  srcOff: number;
  /** S-tag VID (QinQ, or a lone 802.1ad tag); -1 when absent. */
  outerVlan: number;
  /** C-tag VID (the only tag of a single-tagged frame); -1 when absent. */
  innerVlan: number;
  /** PCP of the outermost tag (IEEE 802.1Q §6.9.3); 0 when untagged. */
  pcp: number;
  etherType: number;
  payloadOff: number;
}

export function newEthInfo(): EthInfo {
  return { dstOff: 0, srcOff: 0, outerVlan: -1, innerVlan: -1, pcp: 0, etherType: 0, payloadOff: 0 };
}

function isTpid(t: number): boolean {
  return t === ETHERTYPE_VLAN || t === ETHERTYPE_QINQ;
}

/** Parses the header of the frame in `buf[off, end)`; returns `out.payloadOff` or an `EthError`. */
export function parseEthernet(buf: Uint8Array, off: number, end: number, out: EthInfo): number {
  if (end - off < ETH_HEADER_LENGTH) return EthError.TOO_SHORT;
  out.dstOff = off;
  out.srcOff = off + ETH_ADDR_LENGTH;
  out.outerVlan = -1;
  out.innerVlan = -1;
  out.pcp = 0;
  let p = off + 12; // at a TPID or the EtherType
  let t = u16(buf, p);
  if (isTpid(t)) {
    if (end - p < 6) return EthError.TAG_TRUNCATED;
    const first = t;
    const tci = u16(buf, p + 2);
    out.pcp = tci >>> 13;
    p += VLAN_TAG_LENGTH;
    t = u16(buf, p);
    if (t === ETHERTYPE_VLAN) {
      // 802.1ad S-tag + C-tag, or the pre-standard 0x8100/0x8100 double tag.
      if (end - p < 6) return EthError.TAG_TRUNCATED;
      out.outerVlan = tci & 0x0fff;
      out.innerVlan = u16(buf, p + 2) & 0x0fff;
      p += VLAN_TAG_LENGTH;
      t = u16(buf, p);
      if (isTpid(t)) return EthError.TOO_MANY_TAGS;
    } else if (t === ETHERTYPE_QINQ) {
      return first === ETHERTYPE_QINQ ? EthError.TOO_MANY_TAGS : EthError.BAD_TAG_ORDER;
    } else if (first === ETHERTYPE_VLAN) {
      out.innerVlan = tci & 0x0fff;
    } else {
      out.outerVlan = tci & 0x0fff;
    }
  }
  out.etherType = t;
  out.payloadOff = p + 2;
  return p + 2;
}

/** Header length for the given tags (-1 = absent). */
export function ethHeaderLength(outerVlan = -1, innerVlan = -1): number {
  return ETH_HEADER_LENGTH + (outerVlan >= 0 ? VLAN_TAG_LENGTH : 0) + (innerVlan >= 0 ? VLAN_TAG_LENGTH : 0);
}

/**
 * Writes dst, src, optional tags and the EtherType; returns the payload offset. One VLAN:
 * pass it as `innerVlan` (an 802.1Q tag). QinQ: `outerVlan` with `outerTpid` (0x88a8, or 0x8100
 * for a double 802.1Q tag) then `innerVlan` with 0x8100. `pcp` goes into every tag written.
 */
export function writeEthernet(
  buf: Uint8Array,
  off: number,
  dstMac: Uint8Array,
  srcMac: Uint8Array,
  etherType: number,
  outerVlan = -1,
  innerVlan = -1,
  outerTpid: number = ETHERTYPE_QINQ,
  pcp = 0,
): number {
  copyBytes(buf, off, dstMac, 0, ETH_ADDR_LENGTH);
  copyBytes(buf, off + 6, srcMac, 0, ETH_ADDR_LENGTH);
  let p = off + 12;
  const prio = (pcp & 7) << 13;
  if (outerVlan >= 0) {
    put16(buf, p, outerTpid);
    put16(buf, p + 2, prio | (outerVlan & 0x0fff));
    p += VLAN_TAG_LENGTH;
  }
  if (innerVlan >= 0) {
    put16(buf, p, ETHERTYPE_VLAN);
    put16(buf, p + 2, prio | (innerVlan & 0x0fff));
    p += VLAN_TAG_LENGTH;
  }
  put16(buf, p, etherType);
  return p + 2;
}

/** ff:ff:ff:ff:ff:ff. */
export function isBroadcast(buf: Uint8Array, off: number): boolean {
  return (buf[off]! & buf[off + 1]! & buf[off + 2]! & buf[off + 3]! & buf[off + 4]! & buf[off + 5]!) === 0xff;
}

/** Group bit (I/G, least significant bit of the first octet) set; includes broadcast. */
export function isMulticast(buf: Uint8Array, off: number): boolean {
  return (buf[off]! & 1) === 1;
}

export function macEquals(buf: Uint8Array, off: number, mac: Uint8Array, macOff = 0): boolean {
  return (
    buf[off] === mac[macOff] &&
    buf[off + 1] === mac[macOff + 1] &&
    buf[off + 2] === mac[macOff + 2] &&
    buf[off + 3] === mac[macOff + 3] &&
    buf[off + 4] === mac[macOff + 4] &&
    buf[off + 5] === mac[macOff + 5]
  );
}

/** "02:00:5e:10:00:01" (lower case). Edge use only: allocates a string. */
export function formatMac(buf: Uint8Array, off = 0): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += (i === 0 ? '' : ':') + buf[off + i]!.toString(16).padStart(2, '0');
  return s;
}

/** Parses "aa:bb:cc:dd:ee:ff" or "aa-bb-cc-dd-ee-ff"; throws `AddressError`. */
export function parseMac(s: string): Uint8Array {
  const parts = s.split(/[:-]/);
  if (parts.length !== 6) throw new AddressError(`not a MAC address: ${s}`);
  const out = new Uint8Array(6);
  for (let i = 0; i < 6; i++) {
    const p = parts[i]!;
    if (!/^[0-9a-fA-F]{2}$/.test(p)) throw new AddressError(`not a MAC address: ${s}`);
    out[i] = parseInt(p, 16);
  }
  return out;
}
