/**
 * The vCE's userspace forwarder, sans-I/O: tunnel payloads go in (`receive`), tunnel payloads
 * come out through the `Transmit` sink the driver provides; time is passed in. It owns the
 * attachment circuits (VXLAN, 802.1Q / QinQ sub-interfaces of a VXLAN trunk, NVGRE over
 * GRE-in-UDP, MPLS-in-UDP), the per-context FIBs, ARP / ND, zone ACLs with a flow table, DiffServ
 * and the counters. The packet path allocates nothing in the common case: the IP packet stays
 * where it arrived and the new headers are written in front of it when the headroom allows.
 *
 * Path of a packet (RFC 1812 §5.2 order): decapsulate -> find the attachment (VNI, tags, VSID,
 * remote) -> Ethernet (ours / broadcast / multicast) -> ARP / ND / IP -> header checks -> to us?
 * (self policy, ICMP echo, ND) -> TTL -> LPM in the attachment's context -> zone ACL -> egress
 * QoS (class, policer, DSCP) -> TTL / DSCP rewrite with incremental checksum -> neighbour ->
 * encapsulate -> transmit.
 */
import { copyOut } from '../lib/bytes.ts';
import * as eth from './frames/ethernet.ts';
import * as ip4 from './frames/ipv4.ts';
import * as ip6 from './frames/ipv6.ts';
import * as vxlan from './frames/vxlan.ts';
import * as gre from './frames/gre.ts';
import * as mpls from './frames/mpls.ts';
import { linkLocalFromMac } from './frames/nd.ts';
import { formatAddress, parseAddress, ipv4ToNumber, type Prefix } from '../lib/ip.ts';
import { Counters, DROP } from './counters.ts';
import { NeighborTable, REACHABLE, type Neighbor, type NeighborEvents, type Waiting } from './neighbors.ts';
import { NH_BLACKHOLE, NH_FORWARD, NH_REJECT, RouteTables, type NextHop } from './routes.ts';
import { newPacketInfo, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, type PacketInfo } from './packet.ts';
import { VERDICT, ZoneFirewall } from './acl/zones.ts';
import { SelfGuard } from './acl/self.ts';
import { QosEngine } from './qos/diffserv.ts';
import { LocalStack } from './local.ts';
import type { DataplaneConfig, DpInterface, DpRoute } from './types.ts';

/** Which UDP service a tunnel packet uses. */
export const TUNNEL_VXLAN = 0;
export const TUNNEL_GRE = 1;
export const TUNNEL_MPLS = 2;

/** The driver's send function: the payload of one UDP datagram to endpoint `ep`. */
export type Transmit = (
  tunnel: number,
  ep: number,
  buf: Uint8Array,
  off: number,
  len: number,
  dscp: number,
) => void;
/** Capture tap: a frame seen on interface `iface` (`out`: leaving). */
export type Tap = (iface: number, buf: Uint8Array, off: number, len: number, out: boolean) => void;

const KIND_VXLAN = 0;
const KIND_VLAN = 1;
const KIND_QINQ = 2;
const KIND_NVGRE = 3;
const KIND_MPLS = 4;
const KIND_CODE = {
  vxlan: KIND_VXLAN,
  vlan: KIND_VLAN,
  qinq: KIND_QINQ,
  nvgre: KIND_NVGRE,
  'mpls-udp': KIND_MPLS,
};

/** Room for the largest header we put in front of an IP packet: GRE 8 + Ethernet 14 + 2 tags. */
const MAX_HEADROOM = 8 + 14 + 8;

export interface Endpoint {
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
}

/** One attachment circuit as the packet path needs it. */
export interface Iface {
  /** 1-based (0 is the "unattached" counter slot). */
  readonly index: number;
  readonly cfg: DpInterface;
  readonly kind: number;
  readonly ctx: number;
  readonly zone: number;
  readonly mac: Uint8Array;
  /** Our IPv4 addresses (numbers) and IPv6 addresses (16 bytes; the link-local one first). */
  readonly addrs4: number[];
  readonly addrs6: Uint8Array[];
  /** Tunnel endpoints (numbers into `endpoints`); for a sub-interface, its trunk's. */
  readonly remotes: number[];
  /** vlan / qinq: the trunk's interface number; -1 otherwise. */
  readonly trunk: number;
  readonly vni: number;
  readonly qos: QosEngine | undefined;
  /** Trunk only: tag key -> sub-interface number. */
  readonly subs: Map<number, number>;
}

function tagKey(outer: number, inner: number): number {
  return (outer + 1) * 8192 + inner + 1;
}

export class Forwarder {
  readonly ifaces: Iface[] = [];
  readonly byName = new Map<string, Iface>();
  readonly endpoints: Endpoint[] = [];
  readonly tables: RouteTables;
  readonly counters: Counters;
  readonly neighbors: NeighborTable;
  readonly firewall: ZoneFirewall;
  readonly self: SelfGuard;
  readonly local: LocalStack;
  /** Set by the driver. */
  transmit: Transmit = () => undefined;
  readonly taps: (Tap | undefined)[] = [];
  private readonly byVni = new Map<number, Iface>();
  private readonly byVsid = new Map<number, Iface>();
  private readonly endpointByAddr = new Map<string, number>();
  /** The Ethernet header of the frame being processed (the local stack reads the source MAC). */
  readonly ethInfo = eth.newEthInfo();
  private readonly pkt: PacketInfo = newPacketInfo();
  private readonly ul6 = ip6.newUpperLayer();
  private readonly greInfo = gre.newGreInfo();
  private readonly neighborEvents: NeighborEvents;
  /** MPLS TC chosen by the egress QoS class of the packet being forwarded; -1 outside forward(). */
  private classTc = -1;
  /** Own addresses per context: IPv4 number -> interface; IPv6 by hash (verified). */
  private readonly own4: Map<number, number>[] = [];

  constructor(
    readonly config: DataplaneConfig,
    contextNames: readonly string[],
  ) {
    const zones = config.zones.zones;
    const cfgs = config.interfaces;
    const ctxIndex = (name: string): number => {
      const i = contextNames.indexOf(name);
      if (i < 0) throw new Error(`interface context "${name}" is not a routing context`);
      return i;
    };
    // trunks first so sub-interfaces find them
    const ordered = [...cfgs].sort((a, b) => Number(a.trunk !== undefined) - Number(b.trunk !== undefined));
    for (const c of ordered) {
      const index = this.ifaces.length + 1;
      const trunk = c.trunk === undefined ? -1 : this.byName.get(c.trunk)!.index;
      const remotes =
        trunk >= 0
          ? this.ifaces[trunk - 1]!.remotes
          : (c.remotes ?? []).map((r) => this.endpoint(r.address, r.port));
      const ll = linkLocalFromMac(c.mac);
      const f: Iface = {
        index,
        cfg: c,
        kind: KIND_CODE[c.kind],
        ctx: ctxIndex(c.context),
        zone: c.zone === undefined ? -1 : zones.indexOf(c.zone),
        mac: c.mac,
        addrs4: c.addresses.filter((a) => a.address.length === 4).map((a) => ipv4ToNumber(a.address)),
        addrs6: [ll, ...c.addresses.filter((a) => a.address.length === 16).map((a) => a.address)],
        remotes,
        trunk,
        vni: c.vni ?? -1,
        qos:
          c.qosPolicy === undefined
            ? undefined
            : new QosEngine(config.qos.find((q) => q.name === c.qosPolicy)!),
        subs: new Map(),
      };
      this.ifaces.push(f);
      this.byName.set(c.name, f);
      if (c.vni !== undefined) this.byVni.set(c.vni, f);
      if (c.vsid !== undefined) this.byVsid.set(c.vsid, f);
      if (trunk >= 0) this.ifaces[trunk - 1]!.subs.set(tagKey(c.outerVlan ?? -1, c.vlan!), index);
    }
    for (let i = 0; i < contextNames.length; i++) this.own4.push(new Map());
    for (const f of this.ifaces) for (const a of f.addrs4) this.own4[f.ctx]!.set(a, f.index);
    this.tables = new RouteTables(
      contextNames,
      this.ifaces.map((f) => ({
        index: f.index,
        context: f.ctx,
        name: f.cfg.name,
        subnets: f.cfg.addresses.map((a) => a.prefix),
      })),
    );
    this.counters = new Counters(this.ifaces.length);
    this.neighbors = new NeighborTable(
      this.ifaces.length,
      config.neighbor.reachableSeconds * 1000,
      config.neighbor.queuePerNextHop,
    );
    this.firewall = new ZoneFirewall(config.zones, config.zones.zones, {
      hashSeed: (Math.random() * 0x7fffffff) | 0,
    });
    this.self = new SelfGuard(config.zones.self);
    this.local = new LocalStack(this, config.icmpRatePerSecond);
    this.neighborEvents = {
      probe: (n) => this.local.solicit(n),
      failed: (n, dropped) => {
        for (let i = 0; i < dropped; i++) this.counters.drop(n.iface, DROP['neighbor-unresolved']);
      },
    };
  }

  private endpoint(address: string, port: number): number {
    const canon = canonical(address);
    const known = this.endpoints.findIndex((e) => e.address === canon && e.port === port);
    if (known >= 0) return known;
    this.endpoints.push({ address: canon, port, family: canon.includes(':') ? 6 : 4 });
    this.endpointByAddr.set(canon, this.endpoints.length - 1);
    return this.endpoints.length - 1;
  }

  /**
   * Takes over the state of the forwarder this one replaces: counters of interfaces that kept
   * their name (accounting must not restart at zero) and the flow table (allowed connections
   * survive a reconfiguration).
   */
  adopt(old: Forwarder, now: number): void {
    this.counters.adopt(old.counters, 0, 0);
    for (const f of this.ifaces) {
      const o = old.byName.get(f.cfg.name);
      if (o !== undefined) this.counters.adopt(old.counters, o.index, f.index);
    }
    this.firewall.adoptFlows(old.firewall, now);
  }

  /** One prefix of a context changed in the agent's FIB (undefined: gone). */
  updateRoute(context: string, prefix: Prefix, route: DpRoute | undefined): number {
    return this.tables.update(context, prefix, route);
  }

  /** Installs a context's routes from the agent's FIB (diffed). */
  syncRoutes(context: string, routes: readonly DpRoute[]): number {
    return this.tables.sync(context, routes);
  }

  iface(index: number): Iface {
    return this.ifaces[index - 1]!;
  }

  // ------------------------------------------------------------------ ingress

  /** One UDP datagram from a tunnel endpoint. `from` is the sender's address as the socket gave it. */
  receive(tunnel: number, buf: Uint8Array, len: number, from: string, now: number): void {
    const ep = this.endpointByAddr.get(from);
    if (ep === undefined) {
      const alt = this.endpointByAddr.get(canonical(from));
      if (alt === undefined) return this.counters.drop(0, DROP['bad-encapsulation']);
      return this.receive2(tunnel, buf, len, alt, now);
    }
    this.receive2(tunnel, buf, len, ep, now);
  }

  private receive2(tunnel: number, buf: Uint8Array, end: number, ep: number, now: number): void {
    if (tunnel === TUNNEL_VXLAN) {
      const vni = vxlan.parseVxlan(buf, 0, end);
      const f = vni < 0 ? undefined : this.byVni.get(vni);
      const r = f === undefined ? -1 : this.remoteOf(f, ep);
      if (f === undefined || r < 0) return this.counters.drop(0, DROP['bad-encapsulation']);
      return this.ethernetIn(f, buf, vxlan.VXLAN_HEADER_LENGTH, end, r, now);
    }
    if (tunnel === TUNNEL_GRE) {
      const off = gre.parseGre(buf, 0, end, this.greInfo);
      const g = this.greInfo;
      const f =
        off < 0 || g.protocol !== eth.ETHERTYPE_TEB || !g.hasKey ? undefined : this.byVsid.get(g.key >>> 8);
      const r = f === undefined ? -1 : this.remoteOf(f, ep);
      if (f === undefined || r < 0) return this.counters.drop(0, DROP['bad-encapsulation']);
      return this.ethernetIn(f, buf, off, end, r, now);
    }
    // MPLS in UDP: the interface is the one whose remote sent it
    const f = this.ifaces.find((x) => x.kind === KIND_MPLS && this.remoteOf(x, ep) >= 0);
    if (f === undefined || end < 4) return this.counters.drop(0, DROP['bad-encapsulation']);
    const label = (buf[0]! << 12) | (buf[1]! << 4) | (buf[2]! >> 4);
    const bottom = (buf[2]! & 1) === 1;
    const own = f.cfg.label;
    if (!bottom || (label !== mpls.IPV4_EXPLICIT_NULL && label !== mpls.IPV6_EXPLICIT_NULL && label !== own))
      return this.counters.drop(f.index, DROP['bad-encapsulation']);
    this.counters.rx(f.index, end);
    this.tapIn(f.index, buf, 0, end);
    this.ethInfo.srcOff = -1;
    const v = buf[4]! >> 4;
    if (v === 4) return this.ipv4In(f, buf, 4, end, now);
    if (v === 6) return this.ipv6In(f, buf, 4, end, now);
    this.counters.drop(f.index, DROP['bad-header']);
  }

  /**
   * The remote of `f` at the address of endpoint `ep`, or -1. Senders are known by address only
   * (their source port is arbitrary), and one address may serve several tunnel services, each
   * with its own port: the endpoint of this interface's service is the one to answer to.
   */
  private remoteOf(f: Iface, ep: number): number {
    if (f.remotes.includes(ep)) return ep;
    const a = this.endpoints[ep]!.address;
    for (const r of f.remotes) if (this.endpoints[r]!.address === a) return r;
    return -1;
  }

  private ethernetIn(f0: Iface, buf: Uint8Array, off: number, end: number, ep: number, now: number): void {
    const e = this.ethInfo;
    const p = eth.parseEthernet(buf, off, end, e);
    if (p < 0) return this.counters.drop(f0.index, DROP['bad-encapsulation']);
    let f = f0;
    if (e.innerVlan >= 0) {
      const s = f0.subs.get(tagKey(e.outerVlan, e.innerVlan));
      if (s === undefined) return this.counters.drop(f0.index, DROP['unknown-vlan']);
      f = this.ifaces[s - 1]!;
    } else if (f0.subs.size > 0 && f0.cfg.addresses.length === 0) {
      return this.counters.drop(f0.index, DROP['unknown-vlan']);
    }
    this.counters.rx(f.index, end - off);
    this.tapIn(f.index, buf, off, end - off);
    const toUs = eth.macEquals(buf, e.dstOff, f.mac);
    if (!toUs && !eth.isMulticast(buf, e.dstOff)) return this.counters.drop(f.index, DROP['not-for-us']);
    switch (e.etherType) {
      case eth.ETHERTYPE_IPV4:
        return toUs ? this.ipv4In(f, buf, p, end, now) : this.counters.drop(f.index, DROP['not-for-us']);
      case eth.ETHERTYPE_IPV6:
        return this.ipv6In(f, buf, p, end, now, ep);
      case eth.ETHERTYPE_ARP:
        return this.local.arp(f, buf, p, end, e.srcOff, ep, now);
      default:
        return this.counters.drop(f.index, DROP.unsupported);
    }
  }

  private ipv4In(f: Iface, buf: Uint8Array, l3: number, end: number, now: number): void {
    const hl = ip4.checkIPv4(buf, l3, end);
    if (hl < 0) return this.counters.drop(f.index, DROP['bad-header']);
    const total = (buf[l3 + 2]! << 8) | buf[l3 + 3]!;
    const p = this.pkt;
    fillInfo4(p, buf, l3, hl, total);
    const own = this.own4[f.ctx]!.get(p.dst4);
    if (own !== undefined) return this.local.ipv4ToUs(f, p, now);
    if (p.dst4 === 0xffffffff || p.dst4 >>> 28 === 14) return this.counters.drop(f.index, DROP.unsupported);
    if (buf[l3 + 8]! <= 1) {
      this.counters.drop(f.index, DROP['ttl-exceeded']);
      return this.local.icmpError(f, p, now, 'time-exceeded');
    }
    const v = this.tables.contexts[f.ctx]!.fib4.lookup(p.dst4);
    this.forward(f, p, v, now);
  }

  private ipv6In(f: Iface, buf: Uint8Array, l3: number, end: number, now: number, ep = -1): void {
    const ok = ip6.checkIPv6(buf, l3, end);
    if (ok < 0) return this.counters.drop(f.index, DROP['bad-header']);
    const p = this.pkt;
    const total = 40 + ((buf[l3 + 4]! << 8) | buf[l3 + 5]!);
    fillInfo6(p, buf, l3, end, total, this.ul6);
    // multicast (ND, RS) or our own address
    if (buf[l3 + 24] === 0xff || this.isOwn6(f, buf, l3 + 24)) return this.local.ipv6ToUs(f, p, now, ep);
    if (buf[l3 + 7]! <= 1) {
      this.counters.drop(f.index, DROP['ttl-exceeded']);
      return this.local.icmpError(f, p, now, 'time-exceeded');
    }
    if (buf[l3 + 8] === 0xfe && (buf[l3 + 9]! & 0xc0) === 0x80) {
      // link-local destinations are not forwarded (RFC 4291 §2.5.6)
      return this.counters.drop(f.index, DROP['no-route']);
    }
    const v = this.tables.contexts[f.ctx]!.fib6.lookup(buf, l3 + 24);
    this.forward(f, p, v, now);
  }

  /** Is the IPv6 address at buf[off] one of ours in f's context? */
  isOwn6(f: Iface, buf: Uint8Array, off: number): boolean {
    for (const g of this.ifaces) {
      if (g.ctx !== f.ctx) continue;
      for (const a of g.addrs6) if (equal16(a, buf, off)) return g === f || !isLinkLocal(a);
    }
    return false;
  }

  // ------------------------------------------------------------------ forwarding

  private forward(inIf: Iface, p: PacketInfo, v: number, now: number): void {
    if (v === 0) {
      this.counters.drop(inIf.index, DROP['no-route']);
      return this.local.icmpError(inIf, p, now, 'no-route');
    }
    const nh = this.tables.nextHops[v - 1]!;
    if (nh.action !== NH_FORWARD) {
      if (nh.action === NH_BLACKHOLE) return this.counters.drop(inIf.index, DROP.blackhole);
      this.counters.drop(inIf.index, DROP.reject);
      return nh.action === NH_REJECT ? this.local.icmpError(inIf, p, now, 'reject') : undefined;
    }
    const out = this.ifaces[nh.iface - 1]!;
    if (out.zone !== inIf.zone || out.zone >= 0) {
      const verdict = this.firewall.check(p, inIf.ctx, inIf.zone, out.zone, now);
      if (verdict >= VERDICT.DENY_RULE) {
        this.counters.drop(
          inIf.index,
          verdict === VERDICT.DENY_FLOW_TABLE_FULL ? DROP['flow-table-full'] : DROP.acl,
        );
        return;
      }
    }
    if (p.length > out.cfg.mtu) {
      this.counters.drop(inIf.index, DROP.mtu);
      return this.local.icmpError(inIf, p, now, 'too-big', out.cfg.mtu);
    }
    let dscp = p.dscp;
    if (out.qos !== undefined) {
      const r = out.qos.apply(p, now);
      if (r.drop) return this.counters.drop(out.index, DROP.policer);
      if (r.dscp >= 0 && r.dscp !== dscp) {
        dscp = r.dscp;
        if (p.family === 4) ip4.setDscp(p.buf, p.l3, dscp);
        else ip6.setDscp(p.buf, p.l3, dscp);
      }
    }
    if (p.family === 4) ip4.decrementTtl(p.buf, p.l3);
    else ip6.decrementHopLimit(p.buf, p.l3);
    this.classTc = out.qos?.lastMplsTc() ?? -1; // the class's own TC, if it sets one
    this.toNextHop(out, nh, p.family, p.buf, p.l3, p.length, p.dstOff, dscp, now);
    this.classTc = -1;
  }

  /** Sends an IP packet (already rewritten) to the next hop on `out`, resolving it if needed. */
  toNextHop(
    out: Iface,
    nh: NextHop | undefined,
    family: 4 | 6,
    buf: Uint8Array,
    l3: number,
    len: number,
    dstOff: number,
    dscp: number,
    now: number,
  ): void {
    if (out.kind === KIND_MPLS) return this.encapsulate(out, undefined, family, buf, l3, len, dscp);
    let n: Neighbor | undefined;
    let gw4 = 0;
    let gw6: Uint8Array | undefined;
    if (family === 4) {
      gw4 =
        nh?.gw4 ??
        ((buf[dstOff]! << 24) | (buf[dstOff + 1]! << 16) | (buf[dstOff + 2]! << 8) | buf[dstOff + 3]!) >>> 0;
      n = this.neighbors.get4(out.index, gw4);
    } else {
      gw6 = nh?.gw6;
      n =
        gw6 !== undefined
          ? this.neighbors.get6(out.index, gw6, 0)
          : this.neighbors.get6(out.index, buf, dstOff);
    }
    if (n !== undefined && n.state === REACHABLE && n.expires > now)
      return this.encapsulate(out, n, family, buf, l3, len, dscp);
    if (family === 6 && gw6 === undefined) gw6 = copyOut(buf, dstOff, dstOff + 16);
    const queued = this.neighbors.enqueue(
      out.index,
      gw4,
      gw6,
      { buf, off: l3, len },
      now,
      this.neighborEvents,
    );
    if (!queued) this.counters.drop(out.index, DROP['neighbor-unresolved']);
  }

  /** Neighbour resolved: send what waited. */
  flushWaiting(out: Iface, n: Neighbor, q: readonly Waiting[]): void {
    for (const w of q) {
      const family = w.buf[w.off]! >> 4 === 4 ? 4 : 6;
      const dscp =
        family === 4 ? w.buf[w.off + 1]! >> 2 : ((w.buf[w.off]! & 0x0f) << 2) | (w.buf[w.off + 1]! >> 6);
      this.encapsulate(out, n, family, w.buf, w.off, w.len, dscp);
    }
  }

  /**
   * Puts the link and tunnel headers in front of the IP packet at buf[l3..l3+len) and transmits.
   * `n` undefined on an Ethernet interface means broadcast / multicast to `dstMac` (flooded).
   */
  encapsulate(
    out: Iface,
    n: Neighbor | undefined,
    family: 4 | 6,
    buf: Uint8Array,
    l3: number,
    len: number,
    dscp: number,
    dstMac?: Uint8Array,
  ): void {
    const tunnelDscp = this.config.tunnelQos.mode === 'uniform' ? dscp : this.config.tunnelQos.outerDscp;
    if (out.kind === KIND_MPLS) {
      let b = buf;
      let o = l3 - 4;
      if (o < 0) {
        b = new Uint8Array(len + 4);
        b.set(buf.subarray(l3, l3 + len), 4);
        o = 0;
      }
      const label = out.cfg.label ?? (family === 4 ? mpls.IPV4_EXPLICIT_NULL : mpls.IPV6_EXPLICIT_NULL);
      // the QoS class of this packet (set by forward()), else the pipe / uniform rule
      const tc =
        this.classTc >= 0
          ? this.classTc
          : this.config.tunnelQos.mode === 'uniform'
            ? dscp >> 3
            : this.config.tunnelQos.outerDscp >> 3;
      const ttl = family === 4 ? b[o + 4 + 8]! : b[o + 4 + 7]!;
      mpls.writeLabel(b, o, label, tc, true, this.config.tunnelQos.mode === 'uniform' ? ttl : 255);
      this.counters.tx(out.index, len + 4);
      this.tapOut(out.index, b, o, len + 4);
      this.transmit(TUNNEL_MPLS, out.remotes[0]!, b, o, len + 4, tunnelDscp);
      return;
    }
    const trunk = out.trunk >= 0 ? this.ifaces[out.trunk - 1]! : out;
    const tags = out.kind === KIND_QINQ ? 8 : out.kind === KIND_VLAN ? 4 : 0;
    const tunnelLen = trunk.kind === KIND_NVGRE ? gre.NVGRE_HEADER_LENGTH : vxlan.VXLAN_HEADER_LENGTH;
    const head = tunnelLen + 14 + tags;
    let b = buf;
    let o = l3 - head;
    if (o < 0) {
      b = new Uint8Array(len + MAX_HEADROOM);
      o = MAX_HEADROOM - head;
      b.set(buf.subarray(l3, l3 + len), MAX_HEADROOM);
    }
    if (trunk.kind === KIND_NVGRE) gre.writeNvgre(b, o, trunk.cfg.vsid!, 0);
    else vxlan.writeVxlan(b, o, trunk.vni);
    eth.writeEthernet(
      b,
      o + tunnelLen,
      n !== undefined ? n.mac : dstMac!,
      out.mac,
      family === 4 ? eth.ETHERTYPE_IPV4 : eth.ETHERTYPE_IPV6,
      out.kind === KIND_QINQ ? out.cfg.outerVlan! : -1,
      tags > 0 ? out.cfg.vlan! : -1,
    );
    const frameLen = 14 + tags + len;
    this.counters.tx(out.index, frameLen);
    this.tapOut(out.index, b, o + tunnelLen, frameLen);
    const t = trunk.kind === KIND_NVGRE ? TUNNEL_GRE : TUNNEL_VXLAN;
    if (n !== undefined && n.remote >= 0) return this.transmit(t, n.remote, b, o, head + len, tunnelDscp);
    for (const ep of trunk.remotes) this.transmit(t, ep, b, o, head + len, tunnelDscp);
  }

  /** Sends a complete Ethernet frame (built by the local stack) on `out`, to one endpoint or flooded. */
  sendFrame(out: Iface, frame: Uint8Array, frameOff: number, frameLen: number, ep: number, dscp = 0): void {
    const trunk = out.trunk >= 0 ? this.ifaces[out.trunk - 1]! : out;
    const tunnelLen = trunk.kind === KIND_NVGRE ? gre.NVGRE_HEADER_LENGTH : vxlan.VXLAN_HEADER_LENGTH;
    const o = frameOff - tunnelLen;
    if (o < 0) throw new Error('sendFrame: no headroom for the tunnel header');
    if (trunk.kind === KIND_NVGRE) gre.writeNvgre(frame, o, trunk.cfg.vsid!, 0);
    else vxlan.writeVxlan(frame, o, trunk.vni);
    this.counters.tx(out.index, frameLen);
    this.tapOut(out.index, frame, frameOff, frameLen);
    const t = trunk.kind === KIND_NVGRE ? TUNNEL_GRE : TUNNEL_VXLAN;
    const d = this.config.tunnelQos.mode === 'uniform' ? dscp : this.config.tunnelQos.outerDscp;
    if (ep >= 0) return this.transmit(t, ep, frame, o, tunnelLen + frameLen, d);
    for (const r of trunk.remotes) this.transmit(t, r, frame, o, tunnelLen + frameLen, d);
  }

  // ------------------------------------------------------------------ timers, capture

  tick(now: number): void {
    this.neighbors.tick(now, this.neighborEvents);
    this.firewall.sweep(now, 4096);
    this.local.tick(now);
  }

  private tapIn(i: number, buf: Uint8Array, off: number, len: number): void {
    const t = this.taps[i];
    if (t !== undefined) t(i, buf, off, len, false);
  }

  private tapOut(i: number, buf: Uint8Array, off: number, len: number): void {
    const t = this.taps[i];
    if (t !== undefined) t(i, buf, off, len, true);
  }
}

function fillInfo4(p: PacketInfo, buf: Uint8Array, l3: number, hl: number, total: number): void {
  p.family = 4;
  p.buf = buf;
  p.l3 = l3;
  p.srcOff = l3 + 12;
  p.dstOff = l3 + 16;
  p.src4 = ((buf[l3 + 12]! << 24) | (buf[l3 + 13]! << 16) | (buf[l3 + 14]! << 8) | buf[l3 + 15]!) >>> 0;
  p.dst4 = ((buf[l3 + 16]! << 24) | (buf[l3 + 17]! << 16) | (buf[l3 + 18]! << 8) | buf[l3 + 19]!) >>> 0;
  p.proto = buf[l3 + 9]!;
  p.dscp = buf[l3 + 1]! >> 2;
  p.length = total;
  const fragOff = ((buf[l3 + 6]! & 0x1f) << 8) | buf[l3 + 7]!;
  p.l4 = fragOff === 0 ? l3 + hl : -1;
  fillL4(p, buf, l3 + total);
}

function fillInfo6(
  p: PacketInfo,
  buf: Uint8Array,
  l3: number,
  end: number,
  total: number,
  ul: ip6.UpperLayer,
): void {
  p.family = 6;
  p.buf = buf;
  p.l3 = l3;
  p.srcOff = l3 + 8;
  p.dstOff = l3 + 24;
  p.src4 = 0;
  p.dst4 = 0;
  p.dscp = ((buf[l3]! & 0x0f) << 2) | (buf[l3 + 1]! >> 6);
  p.length = total;
  const r = ip6.upperLayer(buf, l3, Math.min(end, l3 + total), ul);
  p.proto = r < 0 ? -1 : ul.protocol;
  p.l4 = r < 0 ? -1 : ul.offset;
  fillL4(p, buf, l3 + total);
}

function fillL4(p: PacketInfo, buf: Uint8Array, end: number): void {
  p.sport = 0;
  p.dport = 0;
  p.icmpType = -1;
  p.icmpCode = -1;
  p.icmpId = -1;
  p.tcpFlags = 0;
  const o = p.l4;
  if (o < 0) return;
  if ((p.proto === PROTO_TCP && o + 14 <= end) || (p.proto === PROTO_UDP && o + 8 <= end)) {
    p.sport = (buf[o]! << 8) | buf[o + 1]!;
    p.dport = (buf[o + 2]! << 8) | buf[o + 3]!;
    if (p.proto === PROTO_TCP) p.tcpFlags = buf[o + 13]!;
  } else if ((p.proto === PROTO_ICMP || p.proto === PROTO_ICMPV6) && o + 8 <= end) {
    p.icmpType = buf[o]!;
    p.icmpCode = buf[o + 1]!;
    p.icmpId = (buf[o + 4]! << 8) | buf[o + 5]!;
  } else if (p.proto === PROTO_TCP || p.proto === PROTO_UDP) {
    p.l4 = -1;
  }
}

function equal16(a: Uint8Array, buf: Uint8Array, off: number): boolean {
  for (let i = 0; i < 16; i++) if (a[i] !== buf[off + i]) return false;
  return true;
}

function isLinkLocal(a: Uint8Array): boolean {
  return a[0] === 0xfe && (a[1]! & 0xc0) === 0x80;
}

/** The text form Node gives datagram senders (RFC 5952 for IPv6; IPv4-mapped made plain). */
function canonical(address: string): string {
  const a = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
  try {
    return formatAddress(parseAddress(a));
  } catch {
    return a;
  }
}
