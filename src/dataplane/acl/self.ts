/**
 * Control-plane protection (draft §9: the vCE protects itself): which packets addressed to one of
 * the vCE's own addresses reach the local stack. The forwarder calls `check` only for packets
 * whose destination is ours; ARP is not IP and never comes here.
 *
 * Allowed (a union, everything else denied):
 * - ICMPv6 router/neighbour discovery, types 133-137 (RFC 4861 §4), always when the hop limit is
 *   255, never otherwise (RFC 4861 §6.1, §7.1.1: such a message may come from off-link);
 * - ICMP / ICMPv6 of any type when `icmp` is set;
 * - BGP: TCP with destination or source port 179 (RFC 4271 §8.2.1: either side may open) from a
 *   `bgpPeers` address;
 * - BFD: UDP to 3784 (RFC 5881 §4, single hop) or 4784 (RFC 5883 §2, multihop) from a `bfdPeers`
 *   address; UDP to 3785 (echo, RFC 5881 §4) from a BFD peer or from the destination address
 *   itself (our own echo packets come back with our address as source);
 * - any packet matching one of the `allow` matches.
 */
import { PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, type PacketInfo } from '../packet.ts';
import type { SelfPolicy } from '../types.ts';
import { CompiledMatch, DataplanePolicyError } from './match.ts';

export const BGP_PORT = 179; // RFC 4271 §8.2.1
export const BFD_CONTROL_PORT = 3784; // RFC 5881 §4
export const BFD_ECHO_PORT = 3785; // RFC 5881 §4
export const BFD_MULTIHOP_PORT = 4784; // RFC 5883 §2
const ND_FIRST = 133; // Router Solicitation, RFC 4861 §4.1
const ND_LAST = 137; // Redirect, RFC 4861 §4.5

/** A set of addresses: IPv4 as uint32 numbers, IPv6 as 4-word groups. Linear scan (a few peers). */
class AddressSet {
  private readonly v4: Float64Array;
  private readonly v6: Int32Array;

  constructor(list: readonly Uint8Array[], path: string) {
    const v4: number[] = [];
    const v6: number[] = [];
    list.forEach((a, i) => {
      if (a.length === 4) v4.push(((a[0]! << 24) | (a[1]! << 16) | (a[2]! << 8) | a[3]!) >>> 0);
      else if (a.length === 16)
        for (let w = 0; w < 16; w += 4)
          v6.push((a[w]! << 24) | (a[w + 1]! << 16) | (a[w + 2]! << 8) | a[w + 3]!);
      else throw new DataplanePolicyError(`${path}[${i}]`, `address of ${a.length} bytes`);
    });
    this.v4 = Float64Array.from(v4);
    this.v6 = Int32Array.from(v6);
  }

  hasSource(p: PacketInfo): boolean {
    if (p.family === 4) {
      const a = p.src4;
      for (let i = 0; i < this.v4.length; i++) if (this.v4[i] === a) return true;
      return false;
    }
    const t = this.v6;
    if (t.length === 0) return false;
    const b = p.buf;
    const o = p.srcOff;
    const a0 = (b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!;
    for (let i = 0; i < t.length; i += 4) {
      if (t[i] !== a0) continue;
      let same = true;
      for (let w = 1; w < 4 && same; w++) {
        const q = o + w * 4;
        same = t[i + w] === ((b[q]! << 24) | (b[q + 1]! << 16) | (b[q + 2]! << 8) | b[q + 3]!);
      }
      if (same) return true;
    }
    return false;
  }
}

function sourceIsDestination(p: PacketInfo): boolean {
  if (p.family === 4) return p.src4 === p.dst4;
  const b = p.buf;
  for (let i = 0; i < 16; i++) if (b[p.srcOff + i] !== b[p.dstOff + i]) return false;
  return true;
}

export class SelfGuard {
  private readonly icmp: boolean;
  private readonly bgpPeers: AddressSet;
  private readonly bfdPeers: AddressSet;
  private readonly allow: CompiledMatch[];

  constructor(policy: SelfPolicy) {
    this.icmp = policy.icmp;
    this.bgpPeers = new AddressSet(policy.bgpPeers, 'zones.self.bgpPeers');
    this.bfdPeers = new AddressSet(policy.bfdPeers, 'zones.self.bfdPeers');
    this.allow = policy.allow.map((m, i) => new CompiledMatch(m, `zones.self.allow[${i}]`));
  }

  /** True when `p`, addressed to one of our own addresses, may reach the local stack. */
  check(p: PacketInfo): boolean {
    const proto = p.proto;
    if (proto === PROTO_ICMPV6 && p.family === 6) {
      if (p.icmpType >= ND_FIRST && p.icmpType <= ND_LAST) return p.buf[p.l3 + 7] === 255; // RFC 4861 §7.1.1
      if (this.icmp) return true;
    } else if (proto === PROTO_ICMP && p.family === 4) {
      if (this.icmp) return true;
    } else if (proto === PROTO_TCP && p.l4 >= 0) {
      if ((p.dport === BGP_PORT || p.sport === BGP_PORT) && this.bgpPeers.hasSource(p)) return true;
    } else if (proto === PROTO_UDP && p.l4 >= 0) {
      const d = p.dport;
      if ((d === BFD_CONTROL_PORT || d === BFD_MULTIHOP_PORT) && this.bfdPeers.hasSource(p)) return true;
      if (d === BFD_ECHO_PORT && (sourceIsDestination(p) || this.bfdPeers.hasSource(p))) return true;
    }
    const allow = this.allow;
    for (let i = 0; i < allow.length; i++) if (allow[i]!.matches(p)) return true;
    return false;
  }
}
