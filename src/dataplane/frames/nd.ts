/**
 * IPv6 Neighbor Discovery (RFC 4861) for a router: parsing RS/RA/NS/NA with their options into
 * one reusable `NdInfo` after the validity checks of §6.1.1, §6.1.2, §7.1.1 and §7.1.2 (and
 * RFC 6980 §5: no fragments), writers for NS, NA and RA (hop limit 255), and the address
 * helpers: solicited-node multicast (RFC 4291 §2.7.1), the Ethernet multicast MAC (RFC 2464 §7)
 * and the EUI-64 link-local address (RFC 4291 §2.5.1, App. A; RFC 2464 §4-5).
 *
 * Offsets in `NdInfo` point into the parsed buffer (valid until it is reused); -1 means absent.
 */
import { copyBytes, nameLookup, put16, put32, u16, u32 } from './bytes.ts';
import { Icmp6Type, icmp6ChecksumValid, setIcmp6Checksum } from './icmp6.ts';
import {
  IPV6_DST_OFFSET,
  IPV6_HEADER_LENGTH,
  IPV6_SRC_OFFSET,
  checkIPv6,
  isIPv6LinkLocal,
  isIPv6Multicast,
  isIPv6Unspecified,
  newUpperLayer,
  upperLayer,
  writeIPv6Header,
  type Ipv6HeaderFields,
} from './ipv6.ts';
import { IpProto } from './proto.ts';

export const ND_HOP_LIMIT = 255; // RFC 4861 §6.1.1, §7.1.1: sent and required on receipt

/** Option types (RFC 4861 §4.6). */
export const NdOption = {
  SOURCE_LLA: 1, // §4.6.1
  TARGET_LLA: 2, // §4.6.1
  PREFIX_INFORMATION: 3, // §4.6.2
  REDIRECTED_HEADER: 4, // §4.6.3
  MTU: 5, // §4.6.4
} as const;
export const ndOptionName = nameLookup(NdOption);

export const RA_FLAG_MANAGED = 0x80; // M (RFC 4861 §4.2)
export const RA_FLAG_OTHER = 0x40; // O
export const NA_FLAG_ROUTER = 0x80; // R (RFC 4861 §4.4), in the first byte after the checksum
export const NA_FLAG_SOLICITED = 0x40; // S
export const NA_FLAG_OVERRIDE = 0x20; // O
export const PREFIX_FLAG_ON_LINK = 0x80; // L (RFC 4861 §4.6.2)
export const PREFIX_FLAG_AUTONOMOUS = 0x40; // A

/** Negative results of `parseNd` (range -60 .. -79); IPv6 failures pass through. */
export const NdError = {
  TOO_SHORT: -60, // ICMP length below the message's minimum
  NOT_ND: -61, // not ICMPv6 types 133-136
  BAD_HOP_LIMIT: -62, // not 255
  BAD_CODE: -63, // not 0
  BAD_CHECKSUM: -64,
  BAD_OPTION_LENGTH: -65, // zero, or running past the message
  MULTICAST_TARGET: -66, // NS/NA target is multicast (§7.1.1, §7.1.2)
  UNSPECIFIED_WITH_SLLA: -67, // source :: with a source LLA option (§6.1.1, §7.1.1)
  RA_SOURCE_NOT_LINK_LOCAL: -68, // §6.1.2
  SOLICITED_TO_MULTICAST: -69, // NA with S set to a multicast destination (§7.1.2)
  DAD_NOT_SOLICITED_NODE: -70, // NS from :: not to a solicited-node address (§7.1.1)
  FRAGMENT: -71, // RFC 6980 §5
} as const;
export const ndErrorName = nameLookup(NdError);

export interface NdPrefix {
  /** Offset of the 16-byte prefix in the buffer. */
  prefixOff: number;
  prefixLength: number;
  onLink: boolean;
  autonomous: boolean;
  validLifetime: number;
  preferredLifetime: number;
}

export interface NdInfo {
  /** 133 RS, 134 RA, 135 NS, 136 NA. */
  type: number;
  icmpOff: number;
  icmpLength: number;
  // RA (§4.2)
  curHopLimit: number;
  managed: boolean;
  other: boolean;
  routerLifetime: number;
  reachableTime: number;
  retransTimer: number;
  // NA (§4.4)
  router: boolean;
  solicited: boolean;
  override: boolean;
  /** NS / NA target address offset. */
  targetOff: number;
  /** Offsets of the 6-byte MAC in the link-layer address options. */
  sourceLlaOff: number;
  targetLlaOff: number;
  /** RA MTU option value, -1 when absent. */
  mtu: number;
  /** RA prefix information options: the first `prefixCount` entries are valid. */
  prefixes: NdPrefix[];
  prefixCount: number;
  /** Prefix options beyond the capacity of `prefixes`. */
  prefixesDropped: number;
}

export function newNdInfo(maxPrefixes = 8): NdInfo {
  const prefixes: NdPrefix[] = [];
  for (let i = 0; i < maxPrefixes; i++) {
    prefixes.push({
      prefixOff: -1,
      prefixLength: 0,
      onLink: false,
      autonomous: false,
      validLifetime: 0,
      preferredLifetime: 0,
    });
  }
  return {
    type: 0,
    icmpOff: 0,
    icmpLength: 0,
    curHopLimit: 0,
    managed: false,
    other: false,
    routerLifetime: 0,
    reachableTime: 0,
    retransTimer: 0,
    router: false,
    solicited: false,
    override: false,
    targetOff: -1,
    sourceLlaOff: -1,
    targetLlaOff: -1,
    mtu: -1,
    prefixes,
    prefixCount: 0,
    prefixesDropped: 0,
  };
}

/** Minimum ICMP length per type (§4.1-§4.4), 0 for types that are not parsed here. */
function minLength(type: number): number {
  switch (type) {
    case Icmp6Type.ROUTER_SOLICITATION:
      return 8;
    case Icmp6Type.ROUTER_ADVERTISEMENT:
      return 16;
    case Icmp6Type.NEIGHBOR_SOLICITATION:
    case Icmp6Type.NEIGHBOR_ADVERTISEMENT:
      return 24;
    default:
      return 0;
  }
}

/** ff02::1:ff00:0/104 (RFC 4291 §2.7.1). */
function isSolicitedNode(buf: Uint8Array, a: number): boolean {
  if (buf[a] !== 0xff || buf[a + 1] !== 0x02) return false;
  for (let i = 2; i < 11; i++) if (buf[a + i] !== 0) return false;
  return buf[a + 11] === 1 && buf[a + 12] === 0xff;
}

const SCRATCH = newUpperLayer();

/**
 * Parses and validates the ND message in the IPv6 packet at `buf[off, end)`; returns the offset
 * after the ICMP message or an `NdError` / `Ipv6Reason`. Unknown options are skipped (§4.6);
 * known options of the wrong size are ignored.
 */
export function parseNd(buf: Uint8Array, off: number, end: number, out: NdInfo): number {
  const r = checkIPv6(buf, off, end);
  if (r < 0) return r;
  const ul = upperLayer(buf, off, end, SCRATCH);
  if (ul < 0) return ul;
  if (SCRATCH.fragmentOff >= 0) return NdError.FRAGMENT;
  if (SCRATCH.protocol !== IpProto.ICMPV6) return NdError.NOT_ND;
  const icmpOff = SCRATCH.offset;
  const msgEnd = off + IPV6_HEADER_LENGTH + u16(buf, off + 4);
  const len = msgEnd - icmpOff;
  if (len < 4) return NdError.TOO_SHORT;
  const type = buf[icmpOff]!;
  const min = minLength(type);
  if (min === 0) return NdError.NOT_ND;
  if (buf[off + 7] !== ND_HOP_LIMIT) return NdError.BAD_HOP_LIMIT;
  if (buf[icmpOff + 1] !== 0) return NdError.BAD_CODE;
  if (len < min) return NdError.TOO_SHORT;
  if (!icmp6ChecksumValid(buf, off, icmpOff, len)) return NdError.BAD_CHECKSUM;

  out.type = type;
  out.icmpOff = icmpOff;
  out.icmpLength = len;
  out.targetOff = -1;
  out.sourceLlaOff = -1;
  out.targetLlaOff = -1;
  out.mtu = -1;
  out.prefixCount = 0;
  out.prefixesDropped = 0;
  out.curHopLimit = 0;
  out.managed = false;
  out.other = false;
  out.routerLifetime = 0;
  out.reachableTime = 0;
  out.retransTimer = 0;
  out.router = false;
  out.solicited = false;
  out.override = false;

  const srcUnspecified = isIPv6Unspecified(buf, off + IPV6_SRC_OFFSET);
  if (type === Icmp6Type.ROUTER_ADVERTISEMENT) {
    if (!isIPv6LinkLocal(buf, off + IPV6_SRC_OFFSET)) return NdError.RA_SOURCE_NOT_LINK_LOCAL;
    out.curHopLimit = buf[icmpOff + 4]!;
    out.managed = (buf[icmpOff + 5]! & RA_FLAG_MANAGED) !== 0;
    out.other = (buf[icmpOff + 5]! & RA_FLAG_OTHER) !== 0;
    out.routerLifetime = u16(buf, icmpOff + 6);
    out.reachableTime = u32(buf, icmpOff + 8);
    out.retransTimer = u32(buf, icmpOff + 12);
  } else if (type === Icmp6Type.NEIGHBOR_SOLICITATION || type === Icmp6Type.NEIGHBOR_ADVERTISEMENT) {
    out.targetOff = icmpOff + 8;
    if (isIPv6Multicast(buf, out.targetOff)) return NdError.MULTICAST_TARGET;
    if (type === Icmp6Type.NEIGHBOR_ADVERTISEMENT) {
      const f = buf[icmpOff + 4]!;
      out.router = (f & NA_FLAG_ROUTER) !== 0;
      out.solicited = (f & NA_FLAG_SOLICITED) !== 0;
      out.override = (f & NA_FLAG_OVERRIDE) !== 0;
      if (out.solicited && isIPv6Multicast(buf, off + IPV6_DST_OFFSET)) return NdError.SOLICITED_TO_MULTICAST;
    } else if (srcUnspecified && !isSolicitedNode(buf, off + IPV6_DST_OFFSET)) {
      return NdError.DAD_NOT_SOLICITED_NODE;
    }
  }

  for (let p = icmpOff + min; p < msgEnd;) {
    if (msgEnd - p < 2) return NdError.BAD_OPTION_LENGTH;
    const t = buf[p]!;
    const l = buf[p + 1]! << 3;
    if (l === 0 || l > msgEnd - p) return NdError.BAD_OPTION_LENGTH; // §4.6
    if (t === NdOption.SOURCE_LLA && l === 8) {
      out.sourceLlaOff = p + 2;
    } else if (t === NdOption.TARGET_LLA && l === 8) {
      out.targetLlaOff = p + 2;
    } else if (type === Icmp6Type.ROUTER_ADVERTISEMENT) {
      if (t === NdOption.MTU && l === 8) {
        out.mtu = u32(buf, p + 4);
      } else if (t === NdOption.PREFIX_INFORMATION && l === 32) {
        if (out.prefixCount < out.prefixes.length) {
          const px = out.prefixes[out.prefixCount++]!;
          px.prefixLength = buf[p + 2]!;
          px.onLink = (buf[p + 3]! & PREFIX_FLAG_ON_LINK) !== 0;
          px.autonomous = (buf[p + 3]! & PREFIX_FLAG_AUTONOMOUS) !== 0;
          px.validLifetime = u32(buf, p + 4);
          px.preferredLifetime = u32(buf, p + 8);
          px.prefixOff = p + 16;
        } else {
          out.prefixesDropped++;
        }
      }
    }
    p += l;
  }
  if (srcUnspecified && out.sourceLlaOff >= 0) return NdError.UNSPECIFIED_WITH_SLLA;
  return msgEnd;
}

/** Writes ff02::1:ffXX:XXXX for the target address's low 24 bits into `out`; returns `out`. */
export function solicitedNodeAddress(
  target: Uint8Array,
  out: Uint8Array,
  targetOff = 0,
  outOff = 0,
): Uint8Array {
  const a = target[targetOff + 13]!;
  const b = target[targetOff + 14]!;
  const c = target[targetOff + 15]!;
  out.fill(0, outOff, outOff + 16);
  out[outOff] = 0xff;
  out[outOff + 1] = 0x02;
  out[outOff + 11] = 0x01;
  out[outOff + 12] = 0xff;
  out[outOff + 13] = a;
  out[outOff + 14] = b;
  out[outOff + 15] = c;
  return out;
}

/** 33:33 + the low 32 bits of an IPv6 multicast address (RFC 2464 §7); returns `out`. */
export function multicastMac(ipv6: Uint8Array, out: Uint8Array, ipOff = 0, outOff = 0): Uint8Array {
  out[outOff] = 0x33;
  out[outOff + 1] = 0x33;
  out[outOff + 2] = ipv6[ipOff + 12]!;
  out[outOff + 3] = ipv6[ipOff + 13]!;
  out[outOff + 4] = ipv6[ipOff + 14]!;
  out[outOff + 5] = ipv6[ipOff + 15]!;
  return out;
}

/** fe80::/64 with the modified EUI-64 interface identifier of `mac` (U/L bit inverted, ff:fe inserted). */
export function linkLocalFromMac(mac: Uint8Array, macOff = 0): Uint8Array {
  const out = new Uint8Array(16);
  out[0] = 0xfe;
  out[1] = 0x80;
  out[8] = mac[macOff]! ^ 0x02;
  out[9] = mac[macOff + 1]!;
  out[10] = mac[macOff + 2]!;
  out[11] = 0xff;
  out[12] = 0xfe;
  out[13] = mac[macOff + 3]!;
  out[14] = mac[macOff + 4]!;
  out[15] = mac[macOff + 5]!;
  return out;
}

/** ff02::1 and ff02::2 (RFC 4291 §2.7.1). Shared: do not modify. */
export const ALL_NODES = Uint8Array.of(0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);
export const ALL_ROUTERS = Uint8Array.of(0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2);

const HDR: Ipv6HeaderFields = {
  src: ALL_NODES,
  dst: ALL_NODES,
  nextHeader: IpProto.ICMPV6,
  hopLimit: ND_HOP_LIMIT,
  payloadLength: 0,
};

function writeLlaOption(buf: Uint8Array, p: number, type: number, mac: Uint8Array): number {
  buf[p] = type;
  buf[p + 1] = 1; // 8 octets
  copyBytes(buf, p + 2, mac, 0, 6);
  return p + 8;
}

function writeHeader(
  buf: Uint8Array,
  off: number,
  src: Uint8Array,
  dst: Uint8Array,
  icmpLen: number,
): number {
  HDR.src = src;
  HDR.dst = dst;
  HDR.payloadLength = icmpLen;
  return writeIPv6Header(buf, off, HDR);
}

/**
 * Writes an IPv6 Neighbor Solicitation (§4.3) for `target` from `src` to `dst`, by default the
 * target's solicited-node address (address resolution, §7.2.2). The source link-layer address
 * option carries `sourceMac` unless `src` is unspecified (DAD, where it MUST NOT appear). The
 * Ethernet destination is `multicastMac(buf, mac, off + 24)`. Returns the offset after it.
 */
export function writeNs(
  buf: Uint8Array,
  off: number,
  src: Uint8Array,
  target: Uint8Array,
  sourceMac?: Uint8Array,
  dst?: Uint8Array,
): number {
  const slla = sourceMac !== undefined && !isIPv6Unspecified(src, 0);
  const len = 24 + (slla ? 8 : 0);
  const icmp = writeHeader(buf, off, src, dst ?? target, len);
  if (dst === undefined) solicitedNodeAddress(target, buf, 0, off + IPV6_DST_OFFSET);
  buf[icmp] = Icmp6Type.NEIGHBOR_SOLICITATION;
  buf[icmp + 1] = 0;
  put32(buf, icmp + 4, 0); // reserved
  copyBytes(buf, icmp + 8, target, 0, 16);
  if (slla) writeLlaOption(buf, icmp + 24, NdOption.SOURCE_LLA, sourceMac);
  setIcmp6Checksum(buf, off, icmp, len);
  return icmp + len;
}

/**
 * Writes a Neighbor Advertisement (§4.4): `flags` from NA_FLAG_ROUTER | NA_FLAG_SOLICITED |
 * NA_FLAG_OVERRIDE, with a target link-layer address option when `targetMac` is given.
 */
export function writeNa(
  buf: Uint8Array,
  off: number,
  src: Uint8Array,
  dst: Uint8Array,
  target: Uint8Array,
  flags: number,
  targetMac?: Uint8Array,
): number {
  const len = 24 + (targetMac !== undefined ? 8 : 0);
  const icmp = writeHeader(buf, off, src, dst, len);
  buf[icmp] = Icmp6Type.NEIGHBOR_ADVERTISEMENT;
  buf[icmp + 1] = 0;
  put32(buf, icmp + 4, (flags & 0xe0) << 24);
  copyBytes(buf, icmp + 8, target, 0, 16);
  if (targetMac !== undefined) writeLlaOption(buf, icmp + 24, NdOption.TARGET_LLA, targetMac);
  setIcmp6Checksum(buf, off, icmp, len);
  return icmp + len;
}

export interface RaPrefix {
  /** 16 bytes; bits past `prefixLength` are written as zero (§4.6.2). */
  prefix: Uint8Array;
  prefixLength: number;
  onLink: boolean;
  autonomous: boolean;
  /** Seconds; 0xffffffff is infinity. */
  validLifetime: number;
  preferredLifetime: number;
}

export interface RaFields {
  curHopLimit: number;
  managed: boolean;
  other: boolean;
  /** Seconds; 0 = not a default router (§4.2). */
  routerLifetime: number;
  /** Milliseconds; 0 = unspecified. */
  reachableTime: number;
  retransTimer: number;
  sourceMac?: Uint8Array;
  mtu?: number;
  prefixes?: readonly RaPrefix[];
}

/** Bytes of the ICMPv6 part of an RA with these fields. */
export function raLength(ra: RaFields): number {
  return (
    16 +
    (ra.sourceMac !== undefined ? 8 : 0) +
    (ra.mtu !== undefined ? 8 : 0) +
    32 * (ra.prefixes?.length ?? 0)
  );
}

/**
 * Writes a Router Advertisement (§4.2) from `src` (our link-local address, §6.1.2) to `dst`
 * (ff02::1 unsolicited, §6.2.4): options in the order source LLA, MTU, prefixes.
 */
export function writeRa(
  buf: Uint8Array,
  off: number,
  src: Uint8Array,
  dst: Uint8Array,
  ra: RaFields,
): number {
  const len = raLength(ra);
  const icmp = writeHeader(buf, off, src, dst, len);
  buf[icmp] = Icmp6Type.ROUTER_ADVERTISEMENT;
  buf[icmp + 1] = 0;
  buf[icmp + 4] = ra.curHopLimit;
  buf[icmp + 5] = (ra.managed ? RA_FLAG_MANAGED : 0) | (ra.other ? RA_FLAG_OTHER : 0);
  put16(buf, icmp + 6, ra.routerLifetime);
  put32(buf, icmp + 8, ra.reachableTime);
  put32(buf, icmp + 12, ra.retransTimer);
  let p = icmp + 16;
  if (ra.sourceMac !== undefined) p = writeLlaOption(buf, p, NdOption.SOURCE_LLA, ra.sourceMac);
  if (ra.mtu !== undefined) {
    buf[p] = NdOption.MTU;
    buf[p + 1] = 1;
    put16(buf, p + 2, 0);
    put32(buf, p + 4, ra.mtu);
    p += 8;
  }
  const pxs = ra.prefixes;
  for (let k = 0; pxs !== undefined && k < pxs.length; k++) {
    const px = pxs[k]!;
    buf[p] = NdOption.PREFIX_INFORMATION;
    buf[p + 1] = 4;
    buf[p + 2] = px.prefixLength;
    buf[p + 3] = (px.onLink ? PREFIX_FLAG_ON_LINK : 0) | (px.autonomous ? PREFIX_FLAG_AUTONOMOUS : 0);
    put32(buf, p + 4, px.validLifetime);
    put32(buf, p + 8, px.preferredLifetime);
    put32(buf, p + 12, 0); // Reserved2
    for (let i = 0; i < 16; i++) {
      const bits = px.prefixLength - i * 8;
      const mask = bits >= 8 ? 0xff : bits <= 0 ? 0 : (0xff << (8 - bits)) & 0xff;
      buf[p + 16 + i] = px.prefix[i]! & mask;
    }
    p += 32;
  }
  setIcmp6Checksum(buf, off, icmp, len);
  return p;
}
