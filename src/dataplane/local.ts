/**
 * What the forwarder answers itself: ARP (RFC 826) for its addresses and address resolution of
 * next hops, IPv6 neighbour discovery (RFC 4861: NS/NA, RS and periodic RA so VMs get a default
 * route), ICMP / ICMPv6 echo to its addresses, and the ICMP errors a router sends (RFC 1812
 * §4.3.2, RFC 4443 §2.4): time exceeded, unreachable, fragmentation needed / packet too big,
 * limited by a token bucket. Traffic to the vCE's own addresses passes the self policy first
 * (draft §9: the vCE protects itself from its VMs).
 */
import { copyOut } from '../lib/bytes.ts';
import * as eth from './frames/ethernet.ts';
import * as arp from './frames/arp.ts';
import * as icmp4 from './frames/icmp4.ts';
import * as icmp6 from './frames/icmp6.ts';
import * as nd from './frames/nd.ts';
import { DROP } from './counters.ts';
import { PROTO_ICMP, PROTO_ICMPV6, PROTO_UDP, type PacketInfo } from './packet.ts';
import type { Forwarder, Iface } from './forwarder.ts';
import type { Neighbor } from './neighbors.ts';
import { NH_FORWARD } from './routes.ts';

/** Headroom left in front of frames we build (the tunnel header goes there). */
const HEAD = 16;
const BROADCAST = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
const RA_INTERVAL_MS = 30_000;
const RA_ROUTER_LIFETIME_S = 1800;

export type IcmpErrorKind = 'time-exceeded' | 'no-route' | 'reject' | 'too-big' | 'port-unreachable';

export class LocalStack {
  private readonly arpInfo = arp.newArpInfo();
  private readonly ndInfo = nd.newNdInfo();
  private tokens: number;
  private lastRefill = 0;
  private nextRa = 0;
  private readonly mcastMac = new Uint8Array(6);

  constructor(
    private readonly fwd: Forwarder,
    private readonly icmpRate: number,
  ) {
    this.tokens = icmpRate;
  }

  // ------------------------------------------------------------------ ARP

  arp(f: Iface, buf: Uint8Array, off: number, end: number, srcMacOff: number, ep: number, now: number): void {
    const a = this.arpInfo;
    if (arp.parseArp(buf, off, end, a) < 0) return this.fwd.counters.drop(f.index, DROP['bad-header']);
    const forUs = f.addrs4.includes(a.targetIp);
    // RFC 826 merge: update an existing entry; create one only when we are the target.
    const q = this.fwd.neighbors.learn(
      f.index,
      a.senderIp,
      undefined,
      0,
      buf,
      a.senderMacOff,
      ep,
      now,
      forUs,
    );
    if (q !== undefined) this.fwd.flushWaiting(f, this.fwd.neighbors.get4(f.index, a.senderIp)!, q);
    if (!forUs || a.op !== arp.ArpOp.REQUEST) return;
    const frame = new Uint8Array(HEAD + 22 + arp.ARP_LENGTH); // room for two VLAN tags
    const sender = copyOut(buf, a.senderMacOff, a.senderMacOff + 6);
    const p = eth.writeEthernet(
      frame,
      HEAD,
      buf.subarray(srcMacOff, srcMacOff + 6),
      f.mac,
      eth.ETHERTYPE_ARP,
      ...this.tags(f),
    );
    const e = arp.writeArp(frame, p, arp.ArpOp.REPLY, f.mac, a.targetIp, sender, a.senderIp);
    this.fwd.sendFrame(f, frame, HEAD, e - HEAD, ep);
  }

  private tags(f: Iface): [number, number] {
    if (f.cfg.kind === 'qinq') return [f.cfg.outerVlan!, f.cfg.vlan!];
    if (f.cfg.kind === 'vlan') return [-1, f.cfg.vlan!];
    return [-1, -1];
  }

  /** Resolution request for a waiting next hop: ARP request (broadcast) or NS (solicited-node). */
  solicit(n: Neighbor): void {
    const f = this.fwd.iface(n.iface);
    if (n.addr6 === undefined) {
      const src = f.addrs4.find((a) => sameSubnet(f, a, n.addr4)) ?? f.addrs4[0];
      if (src === undefined) return;
      const frame = new Uint8Array(HEAD + 22 + arp.ARP_LENGTH); // room for two VLAN tags
      const p = eth.writeEthernet(frame, HEAD, BROADCAST, f.mac, eth.ETHERTYPE_ARP, ...this.tags(f));
      const e = arp.writeArp(frame, p, arp.ArpOp.REQUEST, f.mac, src, undefined, n.addr4);
      return this.fwd.sendFrame(f, frame, HEAD, e - HEAD, n.remote);
    }
    const frame = new Uint8Array(HEAD + 14 + 8 + 40 + 32);
    const p = eth.writeEthernet(frame, HEAD, BROADCAST, f.mac, eth.ETHERTYPE_IPV6, ...this.tags(f));
    const src = isLinkLocal(n.addr6) ? f.addrs6[0]! : (f.addrs6.find((a) => !isLinkLocal(a)) ?? f.addrs6[0]!);
    const e = nd.writeNs(frame, p, src, n.addr6, f.mac);
    nd.multicastMac(frame, frame, p + 24, HEAD); // Ethernet destination from the IPv6 one
    this.fwd.sendFrame(f, frame, HEAD, e - HEAD, n.remote);
  }

  // ------------------------------------------------------------------ to us

  ipv4ToUs(f: Iface, p: PacketInfo, now: number): void {
    if (p.proto === PROTO_ICMP && p.icmpType === icmp4.IcmpType.ECHO) {
      if (!this.fwd.self.check(p)) return this.fwd.counters.drop(f.index, DROP['self-denied']);
      const end = icmp4.echoReplyInPlace(p.buf, p.l3, p.l3 + p.length);
      if (end < 0) return this.fwd.counters.drop(f.index, DROP['bad-header']);
      return this.routeBack(f, 4, p.buf, p.l3, end - p.l3, now);
    }
    if (!this.fwd.self.check(p)) return this.fwd.counters.drop(f.index, DROP['self-denied']);
    // Allowed but nothing listens in the forwarder (BGP and BFD use the host's sockets):
    // UDP gets port unreachable (the last hop of a traceroute), the rest is dropped.
    if (p.proto === PROTO_UDP) return this.icmpError(f, p, now, 'port-unreachable');
    this.fwd.counters.drop(f.index, DROP.unsupported);
  }

  ipv6ToUs(f: Iface, p: PacketInfo, now: number, ep: number): void {
    const buf = p.buf;
    if (p.proto === PROTO_ICMPV6 && p.icmpType >= 133 && p.icmpType <= 136) return this.nd(f, p, now, ep);
    if (buf[p.l3 + 24] === 0xff) {
      // other multicast (MLD, ...): not for a router of this kind
      if (p.proto === PROTO_ICMPV6 && p.icmpType === icmp6.Icmp6Type.ECHO_REQUEST)
        return this.echo6(f, p, now);
      return this.fwd.counters.drop(f.index, DROP.unsupported);
    }
    if (p.proto === PROTO_ICMPV6 && p.icmpType === icmp6.Icmp6Type.ECHO_REQUEST) return this.echo6(f, p, now);
    if (!this.fwd.self.check(p)) return this.fwd.counters.drop(f.index, DROP['self-denied']);
    if (p.proto === PROTO_UDP) return this.icmpError(f, p, now, 'port-unreachable');
    this.fwd.counters.drop(f.index, DROP.unsupported);
  }

  private echo6(f: Iface, p: PacketInfo, now: number): void {
    if (!this.fwd.self.check(p)) return this.fwd.counters.drop(f.index, DROP['self-denied']);
    const mcast = p.buf[p.l3 + 24] === 0xff;
    const src = mcast ? this.source6(f, p.buf, p.l3 + 8) : undefined;
    const end = icmp6.echoReplyInPlace6(p.buf, p.l3, p.l3 + p.length, 64, src);
    if (end < 0) return this.fwd.counters.drop(f.index, DROP['bad-header']);
    this.routeBack(f, 6, p.buf, p.l3, end - p.l3, now);
  }

  private nd(f: Iface, p: PacketInfo, now: number, ep: number): void {
    const n = this.ndInfo;
    const buf = p.buf;
    if (nd.parseNd(buf, p.l3, p.l3 + p.length, n) < 0)
      return this.fwd.counters.drop(f.index, DROP['bad-header']);
    const nbr = this.fwd.neighbors;
    const srcOff = p.l3 + 8;
    const unspecified = isZero(buf, srcOff);
    if (n.type === icmp6.Icmp6Type.NEIGHBOR_SOLICITATION) {
      if (!this.fwd.isOwn6(f, buf, n.targetOff)) return; // not ours (DAD of a VM, someone else)
      if (unspecified) return; // DAD probe for our address: we keep it (RFC 4862 §5.4.3 is the VM's job)
      if (n.sourceLlaOff >= 0) {
        const q = nbr.learn(f.index, -1, buf, srcOff, buf, n.sourceLlaOff, ep, now, true);
        if (q !== undefined) this.fwd.flushWaiting(f, nbr.get6(f.index, buf, srcOff)!, q);
      }
      const target = copyOut(buf, n.targetOff, n.targetOff + 16);
      const dst = copyOut(buf, srcOff, srcOff + 16);
      const macOff = n.sourceLlaOff >= 0 ? n.sourceLlaOff : this.fwd.ethInfo.srcOff;
      if (macOff < 0) return;
      const dstMac = copyOut(buf, macOff, macOff + 6);
      const frame = new Uint8Array(HEAD + 22 + 40 + 32);
      const o = eth.writeEthernet(frame, HEAD, dstMac, f.mac, eth.ETHERTYPE_IPV6, ...this.tags(f));
      const e = nd.writeNa(
        frame,
        o,
        target,
        dst,
        target,
        nd.NA_FLAG_ROUTER | nd.NA_FLAG_SOLICITED | nd.NA_FLAG_OVERRIDE,
        f.mac,
      );
      return this.fwd.sendFrame(f, frame, HEAD, e - HEAD, ep);
    }
    if (n.type === icmp6.Icmp6Type.NEIGHBOR_ADVERTISEMENT) {
      if (n.targetLlaOff < 0) return;
      const q = nbr.learn(f.index, -1, buf, n.targetOff, buf, n.targetLlaOff, ep, now, false);
      if (q !== undefined) this.fwd.flushWaiting(f, nbr.get6(f.index, buf, n.targetOff)!, q);
      return;
    }
    if (n.type === icmp6.Icmp6Type.ROUTER_SOLICITATION) {
      if (!unspecified && n.sourceLlaOff >= 0)
        nbr.learn(f.index, -1, buf, srcOff, buf, n.sourceLlaOff, ep, now, true);
      return this.advertise(f, ep);
    }
  }

  /** A router advertisement on `f` (to all nodes): default router, on-link prefixes, MTU. */
  advertise(f: Iface, ep = -1): void {
    if (!f.cfg.routerAdvertisements || f.cfg.kind === 'mpls-udp') return;
    const prefixes = f.cfg.addresses
      .filter((a) => a.address.length === 16 && !isLinkLocal(a.address))
      .map((a) => ({
        prefix: a.prefix.addr,
        prefixLength: a.prefix.len,
        onLink: true,
        autonomous: a.prefix.len === 64,
        validLifetime: 2592000,
        preferredLifetime: 604800,
      }));
    if (prefixes.length === 0) return;
    const ra: nd.RaFields = {
      curHopLimit: 64,
      managed: false,
      other: false,
      routerLifetime: RA_ROUTER_LIFETIME_S,
      reachableTime: 0,
      retransTimer: 0,
      sourceMac: f.mac,
      mtu: f.cfg.mtu,
      prefixes,
    };
    const frame = new Uint8Array(HEAD + 22 + 40 + nd.raLength(ra));
    const o = eth.writeEthernet(
      frame,
      HEAD,
      nd.multicastMac(nd.ALL_NODES, this.mcastMac),
      f.mac,
      eth.ETHERTYPE_IPV6,
      ...this.tags(f),
    );
    const e = nd.writeRa(frame, o, f.addrs6[0]!, nd.ALL_NODES, ra);
    this.fwd.sendFrame(f, frame, HEAD, e - HEAD, ep);
  }

  // ------------------------------------------------------------------ ICMP errors

  private allowIcmp(now: number): boolean {
    if (this.icmpRate === 0) return false;
    if (now > this.lastRefill) {
      this.tokens = Math.min(this.icmpRate, this.tokens + ((now - this.lastRefill) * this.icmpRate) / 1000);
      this.lastRefill = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Sends an ICMP error about packet `p` (arrived on `f`) back to its source. */
  icmpError(f: Iface, p: PacketInfo, now: number, kind: IcmpErrorKind, mtu = 0): void {
    const buf = p.buf;
    if (p.family === 4) {
      if (!icmp4.mayGenerateIcmpError(buf, p.l3, p.l3 + p.length)) return;
      if (
        p.proto === PROTO_ICMP &&
        p.icmpType !== icmp4.IcmpType.ECHO &&
        p.icmpType !== icmp4.IcmpType.ECHO_REPLY
      )
        return;
      const src = f.addrs4[0];
      if (src === undefined || !this.allowIcmp(now)) return;
      const [type, code] =
        kind === 'time-exceeded'
          ? [icmp4.IcmpType.TIME_EXCEEDED, icmp4.TimeExceededCode.TTL]
          : kind === 'no-route'
            ? [icmp4.IcmpType.DEST_UNREACHABLE, icmp4.UnreachCode.NET]
            : kind === 'reject'
              ? [icmp4.IcmpType.DEST_UNREACHABLE, icmp4.UnreachCode.ADMIN_PROHIBITED]
              : kind === 'too-big'
                ? [icmp4.IcmpType.DEST_UNREACHABLE, icmp4.UnreachCode.FRAG_NEEDED]
                : [icmp4.IcmpType.DEST_UNREACHABLE, icmp4.UnreachCode.PORT];
      const out = new Uint8Array(64 + icmp4.ICMP_ERROR_MAX_LENGTH);
      const e = icmp4.writeIcmpError(
        out,
        64,
        type,
        code,
        src,
        p.src4,
        buf,
        p.l3,
        p.length,
        64,
        kind === 'too-big' ? icmp4.fragNeededRest(mtu) : 0,
      );
      return this.routeBack(f, 4, out, 64, e - 64, now);
    }
    const [type, code] =
      kind === 'time-exceeded'
        ? [icmp6.Icmp6Type.TIME_EXCEEDED, icmp6.TimeExceeded6Code.HOP_LIMIT]
        : kind === 'no-route'
          ? [icmp6.Icmp6Type.DEST_UNREACHABLE, icmp6.Unreach6Code.NO_ROUTE]
          : kind === 'reject'
            ? [icmp6.Icmp6Type.DEST_UNREACHABLE, icmp6.Unreach6Code.REJECT_ROUTE]
            : kind === 'too-big'
              ? [icmp6.Icmp6Type.PACKET_TOO_BIG, 0]
              : [icmp6.Icmp6Type.DEST_UNREACHABLE, icmp6.Unreach6Code.PORT_UNREACHABLE];
    if (!icmp6.mayGenerateIcmp6Error(buf, p.l3, p.l3 + p.length, type, code)) return;
    if (!this.allowIcmp(now)) return;
    const src = this.source6(f, buf, p.l3 + 8);
    const dst = copyOut(buf, p.l3 + 8, p.l3 + 24);
    const out = new Uint8Array(64 + 1280);
    const e = icmp6.writeIcmp6Error(
      out,
      64,
      type,
      code,
      src,
      dst,
      buf,
      p.l3,
      p.length,
      64,
      kind === 'too-big' ? mtu : 0,
    );
    this.routeBack(f, 6, out, 64, e - 64, now);
  }

  /** Our source address towards an IPv6 destination: link-local for link-local, else a global one. */
  private source6(f: Iface, buf: Uint8Array, dstOff: number): Uint8Array {
    if (buf[dstOff] === 0xfe && (buf[dstOff + 1]! & 0xc0) === 0x80) return f.addrs6[0]!;
    return f.addrs6.find((a) => !isLinkLocal(a)) ?? f.addrs6[0]!;
  }

  /**
   * Sends a packet we originate (echo reply, ICMP error) to its destination: looked up in the
   * context of `f`; a link-local destination leaves through `f` itself.
   */
  private routeBack(f: Iface, family: 4 | 6, buf: Uint8Array, l3: number, len: number, now: number): void {
    const dstOff = l3 + (family === 4 ? 16 : 24);
    const tables = this.fwd.tables.contexts[f.ctx]!;
    let out = f;
    let nh;
    if (family === 6 && buf[dstOff] === 0xfe && (buf[dstOff + 1]! & 0xc0) === 0x80) {
      nh = undefined;
    } else {
      const v =
        family === 4
          ? tables.fib4.lookup(
              ((buf[dstOff]! << 24) |
                (buf[dstOff + 1]! << 16) |
                (buf[dstOff + 2]! << 8) |
                buf[dstOff + 3]!) >>>
                0,
            )
          : tables.fib6.lookup(buf, dstOff);
      if (v === 0) return;
      nh = this.fwd.tables.nextHops[v - 1]!;
      if (nh.action !== NH_FORWARD) return;
      out = this.fwd.iface(nh.iface);
    }
    const dscp = family === 4 ? buf[l3 + 1]! >> 2 : ((buf[l3]! & 0x0f) << 2) | (buf[l3 + 1]! >> 6);
    this.fwd.toNextHop(out, nh, family, buf, l3, len, dstOff, dscp, now);
  }

  // ------------------------------------------------------------------ timers

  tick(now: number): void {
    if (now >= this.nextRa) {
      this.nextRa = now + RA_INTERVAL_MS;
      for (const f of this.fwd.ifaces) this.advertise(f);
    }
  }
}

function isLinkLocal(a: Uint8Array): boolean {
  return a[0] === 0xfe && (a[1]! & 0xc0) === 0x80;
}

function isZero(buf: Uint8Array, off: number): boolean {
  for (let i = 0; i < 16; i++) if (buf[off + i] !== 0) return false;
  return true;
}

function sameSubnet(f: Iface, a: number, b: number): boolean {
  for (const x of f.cfg.addresses) {
    if (x.address.length !== 4) continue;
    const len = x.prefix.len;
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    if (
      (a & mask) >>> 0 === (b & mask) >>> 0 &&
      ((x.address[0]! << 24) | (x.address[1]! << 16) | (x.address[2]! << 8) | x.address[3]!) >>> 0 === a
    )
      return true;
  }
  return false;
}
