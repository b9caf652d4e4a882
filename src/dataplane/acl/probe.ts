/**
 * Synthetic packets from a description, for the API's "would this packet pass?" queries, the
 * tests and the benchmarks: `buildProbe` writes a real IPv4 / IPv6 packet (header, transport
 * header, an ICMP error's quoted packet) and fills a `PacketInfo` the way the forwarder does.
 * Not on the data path: it allocates.
 */
import { parseAddress, ipv4ToNumber } from '../../lib/ip.ts';
import { newPacketInfo, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, type PacketInfo } from '../packet.ts';
import type { Protocol } from '../types.ts';
import { protocolNumber } from './match.ts';

export interface ProbeDesc {
  readonly src: string;
  readonly dst: string;
  readonly proto: Protocol;
  readonly sport?: number;
  readonly dport?: number;
  /** TCP flags as letters (`S`, `SA`, `A`, `FA`, `R`, `P`, `U`) or the flags byte; default `A`. */
  readonly flags?: string | number;
  readonly icmpType?: number;
  readonly icmpCode?: number;
  readonly icmpId?: number;
  readonly dscp?: number;
  /** Total IP length; padded with zeros beyond the headers. Default: the headers only. */
  readonly length?: number;
  /** IPv4 TTL / IPv6 hop limit; default 64. */
  readonly ttl?: number;
  /** A non-first fragment: no transport header (`l4 = -1`). */
  readonly fragment?: boolean;
  /** ICMP errors: the packet quoted after the ICMP header (whole, headers only). */
  readonly quote?: ProbeDesc;
}

const FLAG_BITS: Readonly<Record<string, number>> = { F: 1, S: 2, R: 4, P: 8, A: 16, U: 32 };

function flagsByte(f: string | number | undefined): number {
  if (f === undefined) return 16;
  if (typeof f === 'number') return f & 0xff;
  let b = 0;
  for (const c of f.toUpperCase()) b |= FLAG_BITS[c] ?? 0;
  return b;
}

function checksum(b: Uint8Array, off: number, len: number): number {
  let sum = 0;
  for (let i = 0; i < len; i += 2) sum += (b[off + i]! << 8) | (b[off + i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** The packet bytes of `d` (no link-layer header). */
export function probeBytes(d: ProbeDesc): Uint8Array {
  const src = parseAddress(d.src);
  const dst = parseAddress(d.dst);
  if (src.length !== dst.length) throw new RangeError(`probe ${d.src} -> ${d.dst}: mixed families`);
  const v4 = src.length === 4;
  const proto = protocolNumber(d.proto);
  const ipLen = v4 ? 20 : 40;
  const quote = d.quote === undefined ? undefined : probeBytes(d.quote);
  let l4Len = 0;
  if (d.fragment !== true) {
    if (proto === PROTO_TCP) l4Len = 20;
    else if (proto === PROTO_UDP) l4Len = 8;
    else if (proto === PROTO_ICMP || proto === PROTO_ICMPV6) l4Len = 8 + (quote?.length ?? 0);
  }
  const total = Math.max(d.length ?? 0, ipLen + l4Len);
  const b = new Uint8Array(total);
  const tc = (d.dscp ?? 0) << 2;
  const ttl = d.ttl ?? 64;
  if (v4) {
    b[0] = 0x45;
    b[1] = tc;
    b[2] = total >> 8;
    b[3] = total & 0xff;
    if (d.fragment === true) b[7] = 100; // fragment offset 100 * 8 bytes
    b[8] = ttl;
    b[9] = proto;
    b.set(src, 12);
    b.set(dst, 16);
    const c = checksum(b, 0, 20);
    b[10] = c >> 8;
    b[11] = c & 0xff;
  } else {
    b[0] = 0x60 | (tc >> 4);
    b[1] = (tc & 0x0f) << 4;
    b[4] = (total - 40) >> 8;
    b[5] = (total - 40) & 0xff;
    b[6] = d.fragment === true ? 44 : proto; // a fragment header would follow (not written)
    b[7] = ttl;
    b.set(src, 8);
    b.set(dst, 24);
  }
  if (l4Len === 0) return b;
  const o = ipLen;
  if (proto === PROTO_TCP || proto === PROTO_UDP) {
    const sport = d.sport ?? 0;
    const dport = d.dport ?? 0;
    b[o] = sport >> 8;
    b[o + 1] = sport & 0xff;
    b[o + 2] = dport >> 8;
    b[o + 3] = dport & 0xff;
    if (proto === PROTO_TCP) {
      b[o + 12] = 5 << 4;
      b[o + 13] = flagsByte(d.flags);
    } else {
      b[o + 4] = (total - ipLen) >> 8;
      b[o + 5] = (total - ipLen) & 0xff;
    }
  } else {
    b[o] = d.icmpType ?? 0;
    b[o + 1] = d.icmpCode ?? 0;
    b[o + 4] = (d.icmpId ?? 0) >> 8;
    b[o + 5] = (d.icmpId ?? 0) & 0xff;
    if (quote !== undefined) b.set(quote, o + 8);
  }
  return b;
}

/** Fills `p` (a new one by default) from the bytes of `d`, as the forwarder's parser would. */
export function buildProbe(d: ProbeDesc, p: PacketInfo = newPacketInfo()): PacketInfo {
  const b = probeBytes(d);
  const v4 = b[0]! >> 4 === 4;
  p.family = v4 ? 4 : 6;
  p.buf = b;
  p.l3 = 0;
  p.srcOff = v4 ? 12 : 8;
  p.dstOff = v4 ? 16 : 24;
  p.src4 = v4 ? ipv4ToNumber(b, 12) : 0;
  p.dst4 = v4 ? ipv4ToNumber(b, 16) : 0;
  p.proto = protocolNumber(d.proto);
  p.dscp = (d.dscp ?? 0) & 0x3f;
  p.length = b.length;
  p.sport = 0;
  p.dport = 0;
  p.icmpType = -1;
  p.icmpCode = -1;
  p.icmpId = -1;
  p.tcpFlags = 0;
  p.l4 = d.fragment === true ? -1 : v4 ? 20 : 40;
  if (p.l4 < 0) return p;
  const o = p.l4;
  if (p.proto === PROTO_TCP || p.proto === PROTO_UDP) {
    p.sport = (b[o]! << 8) | b[o + 1]!;
    p.dport = (b[o + 2]! << 8) | b[o + 3]!;
    if (p.proto === PROTO_TCP) p.tcpFlags = b[o + 13]!;
  } else if (p.proto === PROTO_ICMP || p.proto === PROTO_ICMPV6) {
    p.icmpType = b[o]!;
    p.icmpCode = b[o + 1]!;
    p.icmpId = (b[o + 4]! << 8) | b[o + 5]!;
  } else {
    p.l4 = o;
  }
  return p;
}
