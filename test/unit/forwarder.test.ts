/**
 * The userspace forwarder (src/dataplane/forwarder.ts) sans I/O: its configuration comes from the
 * agent's config reader (`buildAgentConfig`), frames are built with the codecs and handed to
 * `receive` with a virtual clock, and every datagram it sends is recorded by the `transmit` sink and
 * decoded again with the codecs to check the exact fields.
 */
import { describe, expect, it } from 'vitest';
import { buildAgentConfig } from '../../src/agent/config.ts';
import { Forwarder, TUNNEL_GRE, TUNNEL_MPLS, TUNNEL_VXLAN } from '../../src/dataplane/forwarder.ts';
import type { DropReason } from '../../src/dataplane/counters.ts';
import type { DpRoute } from '../../src/dataplane/types.ts';
import {
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  ETHERTYPE_TEB,
  ETHERTYPE_VLAN,
  ethHeaderLength,
  formatMac,
  newEthInfo,
  parseEthernet,
  parseMac,
  writeEthernet,
  type EthInfo,
} from '../../src/dataplane/frames/ethernet.ts';
import { ARP_LENGTH, ArpOp, newArpInfo, parseArp, writeArp } from '../../src/dataplane/frames/arp.ts';
import { writeIPv4Header } from '../../src/dataplane/frames/ipv4.ts';
import { writeIPv6Header } from '../../src/dataplane/frames/ipv6.ts';
import { finish, sum16 } from '../../src/dataplane/frames/checksum.ts';
import { setUdpChecksum4, setUdpChecksum6, writeUdpHeader } from '../../src/dataplane/frames/l4.ts';
import { IcmpType, UnreachCode } from '../../src/dataplane/frames/icmp4.ts';
import { Icmp6Type, icmp6ChecksumValid, setIcmp6Checksum } from '../../src/dataplane/frames/icmp6.ts';
import {
  ALL_ROUTERS,
  NA_FLAG_OVERRIDE,
  NA_FLAG_SOLICITED,
  NdOption,
  linkLocalFromMac,
  newNdInfo,
  parseNd,
  writeNa,
  writeNs,
} from '../../src/dataplane/frames/nd.ts';
import { parseVxlan, writeVxlan } from '../../src/dataplane/frames/vxlan.ts';
import { newGreInfo, parseGre, writeGre, writeNvgre } from '../../src/dataplane/frames/gre.ts';
import { newMplsEntry, parseLabel, writeLabel } from '../../src/dataplane/frames/mpls.ts';
import { IpProto } from '../../src/dataplane/frames/proto.ts';
import {
  formatIPv4,
  formatIPv6,
  ipv4ToNumber,
  parseAddress,
  parseIPv4,
  parseIPv6,
  parsePrefix,
} from '../../src/lib/ip.ts';

// ------------------------------------------------------------------ frame builders

const BCAST = parseMac('ff:ff:ff:ff:ff:ff');
const n4 = (s: string): number => ipv4ToNumber(parseIPv4(s));

function ether(
  dst: Uint8Array,
  src: Uint8Array,
  type: number,
  payload: Uint8Array,
  outer = -1,
  inner = -1,
): Uint8Array {
  const b = new Uint8Array(ethHeaderLength(outer, inner) + payload.length);
  const p = writeEthernet(b, 0, dst, src, type, outer, inner);
  b.set(payload, p);
  return b;
}

function arpPkt(
  op: number,
  senderMac: Uint8Array,
  senderIp: string,
  targetMac: Uint8Array | undefined,
  targetIp: string,
): Uint8Array {
  const b = new Uint8Array(ARP_LENGTH);
  writeArp(b, 0, op, senderMac, n4(senderIp), targetMac, n4(targetIp));
  return b;
}

interface IpOpts {
  readonly ttl?: number;
  readonly dscp?: number;
}

function ipv4(src: string, dst: string, proto: number, payload: Uint8Array, o: IpOpts = {}): Uint8Array {
  const b = new Uint8Array(20 + payload.length);
  writeIPv4Header(b, 0, {
    src: n4(src),
    dst: n4(dst),
    proto,
    ttl: o.ttl ?? 64,
    dscp: o.dscp ?? 0,
    id: 0x4242,
    payloadLength: payload.length,
  });
  b.set(payload, 20);
  return b;
}

function udp4(src: string, dst: string, sport: number, dport: number, size = 16, o: IpOpts = {}): Uint8Array {
  const data = new Uint8Array(8 + size).map((_, i) => (i < 8 ? 0 : i));
  writeUdpHeader(data, 0, sport, dport, data.length);
  const b = ipv4(src, dst, IpProto.UDP, data, o);
  setUdpChecksum4(b, 0, 20);
  return b;
}

function echo4(src: string, dst: string, id: number, seq: number, o: IpOpts = {}): Uint8Array {
  const m = new Uint8Array(8 + 12).map((_, i) => (i < 8 ? 0 : 0x60 + i));
  m[0] = IcmpType.ECHO;
  m[4] = id >> 8;
  m[5] = id & 0xff;
  m[6] = seq >> 8;
  m[7] = seq & 0xff;
  const ck = finish(sum16(m, 0, m.length));
  m[2] = ck >> 8;
  m[3] = ck & 0xff;
  return ipv4(src, dst, IpProto.ICMP, m, o);
}

function ipv6(src: string, dst: string, nh: number, payload: Uint8Array, o: IpOpts = {}): Uint8Array {
  const b = new Uint8Array(40 + payload.length);
  writeIPv6Header(b, 0, {
    src: parseIPv6(src),
    dst: parseIPv6(dst),
    nextHeader: nh,
    hopLimit: o.ttl ?? 64,
    dscp: o.dscp ?? 0,
    payloadLength: payload.length,
  });
  b.set(payload, 40);
  return b;
}

function udp6(src: string, dst: string, sport: number, dport: number, size = 16, o: IpOpts = {}): Uint8Array {
  const data = new Uint8Array(8 + size).map((_, i) => (i < 8 ? 0 : i));
  writeUdpHeader(data, 0, sport, dport, data.length);
  const b = ipv6(src, dst, IpProto.UDP, data, o);
  setUdpChecksum6(b, 0, 40);
  return b;
}

/** A neighbour solicitation from `src` (with its MAC as source LLA) for `target`, to the solicited-node group. */
function ns(src: string, target: string, mac: Uint8Array): Uint8Array {
  const b = new Uint8Array(40 + 32);
  writeNs(b, 0, parseIPv6(src), parseIPv6(target), mac);
  return b;
}

function na(src: string, dst: string, mac: Uint8Array): Uint8Array {
  const b = new Uint8Array(40 + 32);
  writeNa(b, 0, parseIPv6(src), parseIPv6(dst), parseIPv6(src), NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE, mac);
  return b;
}

function rs(src: string, mac: Uint8Array): Uint8Array {
  const m = new Uint8Array(8 + 8);
  m[0] = Icmp6Type.ROUTER_SOLICITATION;
  m[8] = NdOption.SOURCE_LLA;
  m[9] = 1;
  m.set(mac, 10);
  const b = ipv6(src, formatIPv6(ALL_ROUTERS), IpProto.ICMPV6, m, { ttl: 255 });
  setIcmp6Checksum(b, 0, 40, m.length);
  return b;
}

/** Ethernet destination of an IPv6 packet: 33:33 + the low 32 bits of a multicast destination. */
function mcastMac6(pkt: Uint8Array): Uint8Array {
  return Uint8Array.of(0x33, 0x33, pkt[36]!, pkt[37]!, pkt[38]!, pkt[39]!);
}

// ------------------------------------------------------------------ the rig

interface Sent {
  readonly tunnel: number;
  /** "address:port" of the endpoint. */
  readonly to: string;
  readonly dscp: number;
  readonly bytes: Uint8Array;
}

class Rig {
  readonly fwd: Forwarder;
  readonly sent: Sent[] = [];
  now = 1_000_000;

  constructor(raw: Record<string, unknown>) {
    const cfg = buildAgentConfig({ 'router-id': '10.255.0.1', 'log-level': 'silent', ...raw });
    this.fwd = new Forwarder(
      cfg.dataplane!,
      cfg.contexts.map((c) => c.name),
    );
    this.fwd.transmit = (tunnel, ep, buf, off, len, dscp) => {
      const e = this.fwd.endpoints[ep]!;
      // copied: the forwarder reuses and rewrites its buffers
      this.sent.push({ tunnel, to: `${e.address}:${e.port}`, dscp, bytes: buf.slice(off, off + len) });
    };
    // static routes as the agent pushes its FIB
    for (const c of cfg.contexts)
      this.fwd.syncRoutes(
        c.name,
        c.staticRoutes.map((r) => route(c.name, r.prefix, r)),
      );
  }

  take(): Sent[] {
    return this.sent.splice(0);
  }

  index(name: string): number {
    return this.fwd.byName.get(name)!.index;
  }

  drops(name: string | 0): Partial<Record<DropReason, number>> {
    return this.fwd.counters.read(name === 0 ? 0 : this.index(name)).drops;
  }

  vxlan(from: string, vni: number, frame: Uint8Array): void {
    const b = new Uint8Array(8 + frame.length);
    writeVxlan(b, 0, vni);
    b.set(frame, 8);
    this.fwd.receive(TUNNEL_VXLAN, b, b.length, from, this.now);
  }

  nvgre(from: string, vsid: number, frame: Uint8Array, flowId = 0): void {
    const b = new Uint8Array(8 + frame.length);
    writeNvgre(b, 0, vsid, flowId);
    b.set(frame, 8);
    this.fwd.receive(TUNNEL_GRE, b, b.length, from, this.now);
  }

  mpls(from: string, label: number, packet: Uint8Array, bottom = true): void {
    const b = new Uint8Array(4 + packet.length);
    writeLabel(b, 0, label, 0, bottom, 64);
    b.set(packet, 4);
    this.fwd.receive(TUNNEL_MPLS, b, b.length, from, this.now);
  }

  tick(ms: number): void {
    this.now += ms;
    this.fwd.tick(this.now);
  }
}

function route(context: string, prefix: DpRoute['prefix'], r: Partial<DpRoute> = {}): DpRoute {
  return { context, prefix, action: r.action ?? 'forward', nextHop: r.nextHop, interface: r.interface };
}

function dpRoute(
  context: string,
  prefix: string,
  nextHop?: string,
  action: DpRoute['action'] = 'forward',
): DpRoute {
  return route(context, parsePrefix(prefix), {
    action,
    nextHop: nextHop === undefined ? undefined : parseAddress(nextHop),
  });
}

// ------------------------------------------------------------------ decoders

interface Frame extends Sent {
  /** VXLAN VNI, or -1. */
  readonly vni: number;
  /** GRE key, or -1. */
  readonly key: number;
  readonly e: EthInfo;
  /** Offset of the Ethernet payload in `bytes`. */
  readonly l3: number;
}

function open(s: Sent): Frame {
  const b = s.bytes;
  let off: number;
  let vni = -1;
  let key = -1;
  if (s.tunnel === TUNNEL_VXLAN) {
    vni = parseVxlan(b, 0, b.length);
    off = 8;
  } else if (s.tunnel === TUNNEL_GRE) {
    const g = newGreInfo();
    off = parseGre(b, 0, b.length, g);
    expect(g.protocol).toBe(ETHERTYPE_TEB);
    expect(g.hasKey && !g.checksumPresent && !g.hasSeq).toBe(true);
    key = g.key;
  } else {
    throw new Error(`tunnel ${s.tunnel} carries no Ethernet`);
  }
  const e = newEthInfo();
  const l3 = parseEthernet(b, off, b.length, e);
  expect(l3).toBeGreaterThan(0);
  return { ...s, vni, key, e, l3 };
}

const dstMac = (f: Frame): string => formatMac(f.bytes, f.e.dstOff);
const srcMac = (f: Frame): string => formatMac(f.bytes, f.e.srcOff);

function arpOf(f: Frame): {
  op: number;
  senderMac: string;
  senderIp: string;
  targetMac: string;
  targetIp: string;
} {
  expect(f.e.etherType).toBe(ETHERTYPE_ARP);
  const a = newArpInfo();
  expect(parseArp(f.bytes, f.l3, f.bytes.length, a)).toBeGreaterThan(0);
  return {
    op: a.op,
    senderMac: formatMac(f.bytes, a.senderMacOff),
    senderIp: formatIPv4(f.bytes, f.l3 + 14),
    targetMac: formatMac(f.bytes, a.targetMacOff),
    targetIp: formatIPv4(f.bytes, f.l3 + 24),
  };
}

/** Full recomputation of the IPv4 header checksum (not the incremental update the forwarder does). */
function ipv4ChecksumOk(b: Uint8Array, l3: number): boolean {
  const hl = (b[l3]! & 0x0f) * 4;
  const h = b.slice(l3, l3 + hl);
  const stored = (h[10]! << 8) | h[11]!;
  h[10] = 0;
  h[11] = 0;
  return finish(sum16(h, 0, hl)) === stored;
}

function ip4Of(
  b: Uint8Array,
  l3: number,
): {
  src: string;
  dst: string;
  ttl: number;
  proto: number;
  dscp: number;
  length: number;
  checksumOk: boolean;
} {
  expect(b[l3]! >> 4).toBe(4);
  return {
    src: formatIPv4(b, l3 + 12),
    dst: formatIPv4(b, l3 + 16),
    ttl: b[l3 + 8]!,
    proto: b[l3 + 9]!,
    dscp: b[l3 + 1]! >> 2,
    length: (b[l3 + 2]! << 8) | b[l3 + 3]!,
    checksumOk: ipv4ChecksumOk(b, l3),
  };
}

function ip6Of(
  b: Uint8Array,
  l3: number,
): { src: string; dst: string; hop: number; nh: number; dscp: number; length: number } {
  expect(b[l3]! >> 4).toBe(6);
  return {
    src: formatIPv6(b, l3 + 8),
    dst: formatIPv6(b, l3 + 24),
    hop: b[l3 + 7]!,
    nh: b[l3 + 6]!,
    dscp: (((b[l3]! & 0x0f) << 4) | (b[l3 + 1]! >> 4)) >> 2,
    length: 40 + ((b[l3 + 4]! << 8) | b[l3 + 5]!),
  };
}

/** The bytes of a forwarded packet with the fields a router changes (TTL / hop limit, IPv4 checksum) zeroed. */
function invariant(b: Uint8Array, l3 = 0, len = b.length - l3): Uint8Array {
  const c = b.slice(l3, l3 + len);
  if (c[0]! >> 4 === 4) {
    c[8] = 0;
    c[10] = 0;
    c[11] = 0;
  } else {
    c[7] = 0;
  }
  return c;
}

function icmp4Of(
  b: Uint8Array,
  l3: number,
): { type: number; code: number; checksumOk: boolean; quote: Uint8Array; rest: number } {
  const ip = ip4Of(b, l3);
  expect(ip.proto).toBe(IpProto.ICMP);
  const o = l3 + 20;
  const end = l3 + ip.length;
  return {
    type: b[o]!,
    code: b[o + 1]!,
    checksumOk: sum16(b, o, end - o) === 0xffff,
    quote: b.slice(o + 8, end),
    rest: ((b[o + 4]! << 24) | (b[o + 5]! << 16) | (b[o + 6]! << 8) | b[o + 7]!) >>> 0,
  };
}

const ethertype =
  (t: number) =>
  (s: Sent): boolean =>
    s.tunnel !== TUNNEL_MPLS && open(s).e.etherType === t;

// ------------------------------------------------------------------ configurations

const GA = '02:00:00:00:01:01';
const GB = '02:00:00:00:01:02';
const HA = parseMac('02:aa:00:00:00:0a');
const HB = parseMac('02:bb:00:00:00:0b');
const ga = parseMac(GA);
const gb = parseMac(GB);
const A = '192.0.2.1';
const B1 = '192.0.2.2';
const B2 = '192.0.2.3';

/** Two VXLAN segments of the default context: a (one VTEP) and b (two VTEPs). */
function twoSegments(
  extra: Record<string, unknown> = {},
  ifaceExtra: { a?: object; b?: object } = {},
): Record<string, unknown> {
  return {
    interfaces: [
      {
        name: 'a',
        kind: 'vxlan',
        vni: 101,
        mac: GA,
        remotes: [A],
        addresses: ['10.1.1.1/24', '2001:db8:1::1/64'],
        ...ifaceExtra.a,
      },
      {
        name: 'b',
        kind: 'vxlan',
        vni: 102,
        mac: GB,
        remotes: [B1, B2],
        addresses: ['10.1.2.1/24', '2001:db8:2::1/64'],
        ...ifaceExtra.b,
      },
    ],
    ...extra,
  };
}

/** Host A (10.1.1.10) and host B (10.1.2.10, behind B2) make themselves known by ARPing for their gateway. */
function hello(r: Rig, which: 'a' | 'b' | 'both' = 'both'): void {
  if (which !== 'b')
    r.vxlan(
      A,
      101,
      ether(BCAST, HA, ETHERTYPE_ARP, arpPkt(ArpOp.REQUEST, HA, '10.1.1.10', undefined, '10.1.1.1')),
    );
  if (which !== 'a')
    r.vxlan(
      B2,
      102,
      ether(BCAST, HB, ETHERTYPE_ARP, arpPkt(ArpOp.REQUEST, HB, '10.1.2.10', undefined, '10.1.2.1')),
    );
  r.take();
}

/** Sends an IPv4 packet from host A into interface a. */
function fromA(r: Rig, pkt: Uint8Array): void {
  r.vxlan(A, 101, ether(ga, HA, ETHERTYPE_IPV4, pkt));
}

function fromB(r: Rig, pkt: Uint8Array): void {
  r.vxlan(B2, 102, ether(gb, HB, ETHERTYPE_IPV4, pkt));
}

// ================================================================== tests

describe('ARP (RFC 826)', () => {
  it('answers a request for our address to the asking VTEP; ignores requests for other addresses', () => {
    const r = new Rig(twoSegments());
    r.vxlan(
      A,
      101,
      ether(BCAST, HA, ETHERTYPE_ARP, arpPkt(ArpOp.REQUEST, HA, '10.1.1.10', undefined, '10.1.1.1')),
    );
    const out = r.take();
    expect(out).toHaveLength(1);
    const f = open(out[0]!);
    expect(f.tunnel).toBe(TUNNEL_VXLAN);
    expect(f.to).toBe(`${A}:4789`);
    expect(f.vni).toBe(101);
    expect(f.bytes.length).toBe(8 + 14 + ARP_LENGTH);
    expect([dstMac(f), srcMac(f)]).toEqual([formatMac(HA), GA]);
    expect(f.e.innerVlan).toBe(-1);
    expect(arpOf(f)).toEqual({
      op: ArpOp.REPLY,
      senderMac: GA,
      senderIp: '10.1.1.1',
      targetMac: formatMac(HA),
      targetIp: '10.1.1.10',
    });
    // the asker is now a neighbour (RFC 826: the target merges the sender)
    expect(r.fwd.neighbors.get4(r.index('a'), n4('10.1.1.10'))?.mac).toEqual(HA);

    r.vxlan(
      A,
      101,
      ether(BCAST, HA, ETHERTYPE_ARP, arpPkt(ArpOp.REQUEST, HA, '10.1.1.11', undefined, '10.1.1.99')),
    );
    expect(r.take()).toEqual([]);
    expect(r.fwd.neighbors.get4(r.index('a'), n4('10.1.1.11'))).toBeUndefined();
    // the address of another interface is not answered on this one
    r.vxlan(
      A,
      101,
      ether(BCAST, HA, ETHERTYPE_ARP, arpPkt(ArpOp.REQUEST, HA, '10.1.1.10', undefined, '10.1.2.1')),
    );
    expect(r.take()).toEqual([]);
  });
});

describe('IPv4 forwarding between VXLAN segments', () => {
  it('resolves the next hop by ARP flooded to the egress VTEPs, queues, then releases with the right rewrite', () => {
    const r = new Rig(twoSegments());
    hello(r, 'a');
    const pkt = udp4('10.1.1.10', '10.1.2.10', 5000, 6000, 40, { ttl: 64, dscp: 10 });
    fromA(r, pkt.slice());
    const probes = r.take();
    expect(probes.map((s) => s.to)).toEqual([`${B1}:4789`, `${B2}:4789`]);
    for (const s of probes) {
      const f = open(s);
      expect(f.vni).toBe(102);
      expect([dstMac(f), srcMac(f)]).toEqual(['ff:ff:ff:ff:ff:ff', GB]);
      expect(arpOf(f)).toEqual({
        op: ArpOp.REQUEST,
        senderMac: GB,
        senderIp: '10.1.2.1',
        targetMac: '00:00:00:00:00:00',
        targetIp: '10.1.2.10',
      });
    }
    // host B answers from behind the second VTEP
    r.vxlan(B2, 102, ether(gb, HB, ETHERTYPE_ARP, arpPkt(ArpOp.REPLY, HB, '10.1.2.10', gb, '10.1.2.1')));
    const rel = r.take();
    expect(rel).toHaveLength(1);
    const f = open(rel[0]!);
    expect(f.to).toBe(`${B2}:4789`);
    expect(f.vni).toBe(102);
    expect(f.dscp).toBe(10); // uniform: the outer DSCP is the inner one
    expect([dstMac(f), srcMac(f)]).toEqual([formatMac(HB), GB]);
    expect(f.e.etherType).toBe(ETHERTYPE_IPV4);
    expect(f.bytes.length).toBe(8 + 14 + pkt.length);
    const ip = ip4Of(f.bytes, f.l3);
    expect(ip).toMatchObject({ src: '10.1.1.10', dst: '10.1.2.10', ttl: 63, dscp: 10, checksumOk: true });
    expect(invariant(f.bytes, f.l3)).toEqual(invariant(pkt));

    // the neighbour is known: the next packet goes at once, to that VTEP only
    fromA(r, udp4('10.1.1.10', '10.1.2.10', 5000, 6000, 10, { ttl: 9 }));
    const direct = r.take();
    expect(direct.map((s) => s.to)).toEqual([`${B2}:4789`]);
    const g = open(direct[0]!);
    expect(dstMac(g)).toBe(formatMac(HB));
    expect(ip4Of(g.bytes, g.l3)).toMatchObject({ ttl: 8, checksumOk: true });
  });

  it('keeps at most neighbor.queue packets waiting and drops them after three unanswered probes', () => {
    const r = new Rig(twoSegments({ dataplane: { neighbor: { queue: 2 } } }));
    hello(r, 'a');
    for (let i = 0; i < 4; i++) fromA(r, udp4('10.1.1.10', '10.1.2.77', 5000, 6000 + i));
    const arps = (l: Sent[]): Frame[] => l.filter(ethertype(ETHERTYPE_ARP)).map(open);
    const first = arps(r.take());
    expect(first.map((f) => f.to)).toEqual([`${B1}:4789`, `${B2}:4789`]);
    expect(r.drops('b')).toEqual({ 'neighbor-unresolved': 2 });
    expect(r.fwd.neighbors.get4(r.index('b'), n4('10.1.2.77'))?.queue).toHaveLength(2);
    r.tick(999);
    expect(arps(r.take())).toEqual([]); // not yet a second
    r.tick(1);
    expect(arps(r.take()).map((f) => arpOf(f).targetIp)).toEqual(['10.1.2.77', '10.1.2.77']);
    r.tick(1000);
    expect(arps(r.take())).toHaveLength(2);
    r.tick(1000);
    expect(arps(r.take())).toEqual([]);
    expect(r.drops('b')).toEqual({ 'neighbor-unresolved': 4 });
    expect(r.fwd.neighbors.get4(r.index('b'), n4('10.1.2.77'))).toBeUndefined();
    // a late answer does not resurrect anything
    r.vxlan(B1, 102, ether(gb, HB, ETHERTYPE_ARP, arpPkt(ArpOp.REPLY, HB, '10.1.2.77', gb, '10.1.2.1')));
    expect(r.take().filter((s) => open(s).e.etherType === ETHERTYPE_IPV4)).toEqual([]);
  });
});

describe('ICMP errors and the local stack (IPv4)', () => {
  const withRoutes = (extra: Record<string, unknown> = {}): Rig =>
    new Rig(
      twoSegments({
        'static-routes': [
          { prefix: '10.98.0.0/16', action: 'reject' },
          { prefix: '10.97.0.0/16', action: 'blackhole' },
        ],
        ...extra,
      }),
    );

  /** The one datagram sent, an ICMP error to host A over interface a. */
  function errorToA(r: Rig): ReturnType<typeof icmp4Of> & { ip: ReturnType<typeof ip4Of> } {
    const out = r.take();
    expect(out).toHaveLength(1);
    const f = open(out[0]!);
    expect(f.to).toBe(`${A}:4789`);
    expect(f.vni).toBe(101);
    expect([dstMac(f), srcMac(f)]).toEqual([formatMac(HA), GA]);
    const ip = ip4Of(f.bytes, f.l3);
    expect(ip.checksumOk).toBe(true);
    return { ...icmp4Of(f.bytes, f.l3), ip };
  }

  it('TTL 1: time exceeded from the ingress address, quoting the packet as received', () => {
    const r = withRoutes();
    hello(r);
    const pkt = udp4('10.1.1.10', '10.1.2.10', 33434, 33434, 24, { ttl: 1 });
    fromA(r, pkt.slice());
    const e = errorToA(r);
    expect(e.ip).toMatchObject({ src: '10.1.1.1', dst: '10.1.1.10', ttl: 64, dscp: 48 });
    expect([e.type, e.code, e.checksumOk]).toEqual([IcmpType.TIME_EXCEEDED, 0, true]);
    expect(e.quote).toEqual(pkt);
    expect(r.drops('a')).toEqual({ 'ttl-exceeded': 1 });
  });

  it('no route: net unreachable; reject route: administratively prohibited; blackhole: silent', () => {
    const r = withRoutes();
    hello(r);
    const lost = udp4('10.1.1.10', '10.99.0.1', 1000, 2000);
    fromA(r, lost.slice());
    let e = errorToA(r);
    expect([e.type, e.code, e.ip.src]).toEqual([IcmpType.DEST_UNREACHABLE, UnreachCode.NET, '10.1.1.1']);
    expect(e.quote).toEqual(lost);
    fromA(r, udp4('10.1.1.10', '10.98.1.1', 1000, 2000));
    e = errorToA(r);
    expect([e.type, e.code]).toEqual([IcmpType.DEST_UNREACHABLE, UnreachCode.ADMIN_PROHIBITED]);
    fromA(r, udp4('10.1.1.10', '10.97.1.1', 1000, 2000));
    expect(r.take()).toEqual([]);
    expect(r.drops('a')).toEqual({ 'no-route': 1, reject: 1, blackhole: 1 });
  });

  it('too big for the egress MTU: dropped, fragmentation needed with the next-hop MTU', () => {
    const r = new Rig(twoSegments({}, { b: { mtu: 600 } }));
    hello(r);
    const big = udp4('10.1.1.10', '10.1.2.10', 1, 2, 600 - 28 + 1);
    fromA(r, big.slice());
    const out = r.take().map(open);
    expect(out).toHaveLength(1);
    expect(out[0]!.to).toBe(`${A}:4789`);
    const e = icmp4Of(out[0]!.bytes, out[0]!.l3);
    expect([e.type, e.code, e.rest, e.checksumOk]).toEqual([
      IcmpType.DEST_UNREACHABLE,
      UnreachCode.FRAG_NEEDED,
      600,
      true,
    ]);
    expect(e.quote).toEqual(big.slice(0, 576 - 28)); // RFC 1812 §4.3.2.3: the error fits in 576 bytes
    expect(r.drops('a')).toEqual({ mtu: 1 });
    fromA(r, udp4('10.1.1.10', '10.1.2.10', 1, 2, 600 - 28)); // exactly the MTU passes
    expect(r.take().map((s) => s.to)).toEqual([`${B2}:4789`]);
  });

  it('never answers an ICMP error with an ICMP error', () => {
    const r = withRoutes();
    hello(r);
    const m = new Uint8Array(8 + 28);
    m[0] = IcmpType.DEST_UNREACHABLE;
    const ck = finish(sum16(m, 0, m.length));
    m[2] = ck >> 8;
    m[3] = ck & 0xff;
    fromA(r, ipv4('10.1.1.10', '10.99.0.1', IpProto.ICMP, m));
    expect(r.take()).toEqual([]);
    expect(r.drops('a')).toEqual({ 'no-route': 1 });
  });

  it('limits the ICMP errors it sends (dataplane.icmp-rate)', () => {
    const r = withRoutes({ dataplane: { 'icmp-rate': 2 } });
    hello(r);
    for (let i = 0; i < 5; i++) fromA(r, udp4('10.1.1.10', '10.99.0.1', 1000, 2000 + i));
    expect(r.take()).toHaveLength(2);
    r.now += 500; // one more token
    for (let i = 0; i < 3; i++) fromA(r, udp4('10.1.1.10', '10.99.0.1', 1000, 2000 + i));
    expect(r.take()).toHaveLength(1);
    expect(r.drops('a')).toEqual({ 'no-route': 8 });
  });

  it('answers echo to its own addresses; UDP to us is port unreachable when allowed, else self-denied', () => {
    const r = withRoutes({
      dataplane: { zones: { self: { allow: [{ protocol: 'udp', 'destination-ports': ['33434-33534'] }] } } },
    });
    hello(r);
    const req = echo4('10.1.1.10', '10.1.1.1', 0x1234, 7);
    fromA(r, req.slice());
    let out = r.take();
    expect(out).toHaveLength(1);
    let f = open(out[0]!);
    expect(ip4Of(f.bytes, f.l3)).toMatchObject({
      src: '10.1.1.1',
      dst: '10.1.1.10',
      ttl: 64,
      proto: IpProto.ICMP,
      checksumOk: true,
    });
    const icmp = f.bytes.slice(f.l3 + 20);
    expect(icmp[0]).toBe(IcmpType.ECHO_REPLY);
    expect(sum16(icmp, 0, icmp.length)).toBe(0xffff);
    expect(icmp.slice(4)).toEqual(req.slice(24)); // id, sequence, data
    // our address on the other interface answers too (same context)
    fromA(r, echo4('10.1.1.10', '10.1.2.1', 1, 1));
    out = r.take();
    expect(out).toHaveLength(1);
    f = open(out[0]!);
    expect(ip4Of(f.bytes, f.l3)).toMatchObject({ src: '10.1.2.1', dst: '10.1.1.10' });

    const probe = udp4('10.1.1.10', '10.1.1.1', 40000, 33434);
    fromA(r, probe.slice());
    const e = errorToA(r);
    expect([e.type, e.code, e.ip.src]).toEqual([IcmpType.DEST_UNREACHABLE, UnreachCode.PORT, '10.1.1.1']);
    expect(e.quote).toEqual(probe);
    fromA(r, udp4('10.1.1.10', '10.1.1.1', 40000, 53));
    expect(r.take()).toEqual([]);
    expect(r.drops('a')).toEqual({ 'self-denied': 1 });
  });

  it('zones.self.icmp: false drops echo to us as self-denied', () => {
    const r = withRoutes({ dataplane: { zones: { self: { icmp: false } } } });
    hello(r);
    fromA(r, echo4('10.1.1.10', '10.1.1.1', 1, 1));
    expect(r.take()).toEqual([]);
    expect(r.drops('a')).toEqual({ 'self-denied': 1 });
    // ARP is still answered
    r.vxlan(
      A,
      101,
      ether(BCAST, HA, ETHERTYPE_ARP, arpPkt(ArpOp.REQUEST, HA, '10.1.1.10', undefined, '10.1.1.1')),
    );
    expect(r.take()).toHaveLength(1);
  });
});

describe('IPv6: neighbour discovery, router advertisements, forwarding', () => {
  const HA6 = '2001:db8:1::10';
  const HB6 = '2001:db8:2::10';
  const nsFromA = (r: Rig): void => {
    const p = ns(HA6, '2001:db8:1::1', HA);
    r.vxlan(A, 101, ether(mcastMac6(p), HA, ETHERTYPE_IPV6, p));
  };

  it('answers a solicitation for its address with a solicited router advertisement of its MAC', () => {
    const r = new Rig(twoSegments());
    const p = ns(HA6, '2001:db8:1::1', HA);
    expect(formatMac(mcastMac6(p))).toBe('33:33:ff:00:00:01');
    nsFromA(r);
    const out = r.take();
    expect(out).toHaveLength(1);
    const f = open(out[0]!);
    expect(f.to).toBe(`${A}:4789`);
    expect([dstMac(f), srcMac(f)]).toEqual([formatMac(HA), GA]);
    expect(ip6Of(f.bytes, f.l3)).toMatchObject({
      src: '2001:db8:1::1',
      dst: HA6,
      hop: 255,
      nh: IpProto.ICMPV6,
    });
    const nd = newNdInfo();
    expect(parseNd(f.bytes, f.l3, f.bytes.length, nd)).toBeGreaterThan(0);
    expect(nd).toMatchObject({
      type: Icmp6Type.NEIGHBOR_ADVERTISEMENT,
      router: true,
      solicited: true,
      override: true,
    });
    expect(formatIPv6(f.bytes, nd.targetOff)).toBe('2001:db8:1::1');
    expect(formatMac(f.bytes, nd.targetLlaOff)).toBe(GA);
    // the solicitor was learnt from its source link-layer address option
    expect(r.fwd.neighbors.get6(r.index('a'), parseIPv6(HA6), 0)?.mac).toEqual(HA);
    // a solicitation for somebody else's address is not ours to answer
    const other = ns(HA6, '2001:db8:1::99', HA);
    r.vxlan(A, 101, ether(mcastMac6(other), HA, ETHERTYPE_IPV6, other));
    expect(r.take()).toEqual([]);
  });

  it('answers a router solicitation with an RA: source LLA, MTU, the /64 prefix (on-link, autonomous)', () => {
    const r = new Rig(twoSegments());
    const ll = formatIPv6(linkLocalFromMac(HA));
    const p = rs(ll, HA);
    r.vxlan(A, 101, ether(Uint8Array.of(0x33, 0x33, 0, 0, 0, 2), HA, ETHERTYPE_IPV6, p));
    const out = r.take();
    expect(out).toHaveLength(1);
    const f = open(out[0]!);
    expect(f.to).toBe(`${A}:4789`);
    expect([dstMac(f), srcMac(f)]).toEqual(['33:33:00:00:00:01', GA]);
    expect(ip6Of(f.bytes, f.l3)).toMatchObject({
      src: formatIPv6(linkLocalFromMac(ga)),
      dst: 'ff02::1',
      hop: 255,
    });
    const nd = newNdInfo();
    expect(parseNd(f.bytes, f.l3, f.bytes.length, nd)).toBeGreaterThan(0);
    expect(nd).toMatchObject({
      type: Icmp6Type.ROUTER_ADVERTISEMENT,
      curHopLimit: 64,
      routerLifetime: 1800,
      mtu: 1450,
      prefixCount: 1,
    });
    expect(formatMac(f.bytes, nd.sourceLlaOff)).toBe(GA);
    const px = nd.prefixes[0]!;
    expect(px).toMatchObject({ prefixLength: 64, onLink: true, autonomous: true });
    expect(formatIPv6(f.bytes, px.prefixOff)).toBe('2001:db8:1::');
    // periodic advertisements (the timer) go to every VTEP of every interface with IPv6
    r.tick(0);
    const periodic = r.take().map(open);
    expect(periodic.map((g) => `${g.vni} ${g.to}`)).toEqual([
      `101 ${A}:4789`,
      `102 ${B1}:4789`,
      `102 ${B2}:4789`,
    ]);
  });

  it('forwards with hop limit decremented after resolving the next hop with a solicitation to 33:33:ff:..', () => {
    const r = new Rig(twoSegments());
    const pkt = udp6(HA6, HB6, 5000, 6000, 30, { ttl: 64, dscp: 18 });
    r.vxlan(A, 101, ether(ga, HA, ETHERTYPE_IPV6, pkt.slice()));
    const probes = r.take().map(open);
    expect(probes.map((f) => f.to)).toEqual([`${B1}:4789`, `${B2}:4789`]);
    for (const f of probes) {
      expect([dstMac(f), srcMac(f)]).toEqual(['33:33:ff:00:00:10', GB]);
      expect(ip6Of(f.bytes, f.l3)).toMatchObject({ src: '2001:db8:2::1', dst: 'ff02::1:ff00:10', hop: 255 });
      const nd = newNdInfo();
      expect(parseNd(f.bytes, f.l3, f.bytes.length, nd)).toBeGreaterThan(0);
      expect(nd.type).toBe(Icmp6Type.NEIGHBOR_SOLICITATION);
      expect(formatIPv6(f.bytes, nd.targetOff)).toBe(HB6);
      expect(formatMac(f.bytes, nd.sourceLlaOff)).toBe(GB);
    }
    r.vxlan(B1, 102, ether(gb, HB, ETHERTYPE_IPV6, na(HB6, '2001:db8:2::1', HB)));
    const rel = r.take();
    expect(rel).toHaveLength(1);
    const f = open(rel[0]!);
    expect(f.to).toBe(`${B1}:4789`);
    expect(f.dscp).toBe(18);
    expect([dstMac(f), srcMac(f)]).toEqual([formatMac(HB), GB]);
    expect(f.e.etherType).toBe(ETHERTYPE_IPV6);
    expect(ip6Of(f.bytes, f.l3)).toMatchObject({ src: HA6, dst: HB6, hop: 63, dscp: 18 });
    expect(invariant(f.bytes, f.l3)).toEqual(invariant(pkt));
    // next packets go directly
    r.vxlan(A, 101, ether(ga, HA, ETHERTYPE_IPV6, udp6(HA6, HB6, 5000, 6000)));
    expect(r.take().map((s) => s.to)).toEqual([`${B1}:4789`]);
  });

  it('hop limit 1: ICMPv6 time exceeded from our global address, with a valid checksum', () => {
    const r = new Rig(twoSegments());
    nsFromA(r);
    r.take();
    const pkt = udp6(HA6, HB6, 5000, 6000, 8, { ttl: 1 });
    r.vxlan(A, 101, ether(ga, HA, ETHERTYPE_IPV6, pkt.slice()));
    const out = r.take();
    expect(out).toHaveLength(1);
    const f = open(out[0]!);
    const ip = ip6Of(f.bytes, f.l3);
    expect(ip).toMatchObject({ src: '2001:db8:1::1', dst: HA6, nh: IpProto.ICMPV6 });
    const o = f.l3 + 40;
    expect([f.bytes[o], f.bytes[o + 1]]).toEqual([Icmp6Type.TIME_EXCEEDED, 0]);
    expect(icmp6ChecksumValid(f.bytes, f.l3, o, ip.length - 40)).toBe(true);
    expect(f.bytes.slice(o + 8, f.l3 + ip.length)).toEqual(pkt);
    expect(r.drops('a')).toEqual({ 'ttl-exceeded': 1 });
  });

  it('answers ICMPv6 echo to its address', () => {
    const r = new Rig(twoSegments());
    nsFromA(r);
    r.take();
    const m = new Uint8Array(8 + 4).map((_, i) => (i < 8 ? 0 : i));
    m[0] = Icmp6Type.ECHO_REQUEST;
    m[4] = 0xab;
    const req = ipv6(HA6, '2001:db8:1::1', IpProto.ICMPV6, m);
    setIcmp6Checksum(req, 0, 40, m.length);
    r.vxlan(A, 101, ether(ga, HA, ETHERTYPE_IPV6, req));
    const out = r.take();
    expect(out).toHaveLength(1);
    const f = open(out[0]!);
    const ip = ip6Of(f.bytes, f.l3);
    expect(ip).toMatchObject({ src: '2001:db8:1::1', dst: HA6 });
    expect(f.bytes[f.l3 + 40]).toBe(Icmp6Type.ECHO_REPLY);
    expect(f.bytes[f.l3 + 44]).toBe(0xab);
    expect(icmp6ChecksumValid(f.bytes, f.l3, f.l3 + 40, ip.length - 40)).toBe(true);
  });
});

describe('VLAN and QinQ sub-interfaces of a VXLAN trunk', () => {
  const T = '192.0.2.50';
  const G10 = parseMac('02:00:00:00:0a:10');
  const G11 = parseMac('02:00:00:00:0a:11');
  const G20 = parseMac('02:00:00:00:0a:20');
  const H10 = parseMac('02:10:00:00:00:10');
  const H20 = parseMac('02:20:00:00:00:20');
  const cfg = {
    interfaces: [
      { name: 'trunk', kind: 'vxlan', vni: 300, remotes: [T] },
      {
        name: 'v10',
        kind: 'vlan',
        trunk: 'trunk',
        vlan: 10,
        mac: formatMac(G10),
        addresses: ['10.3.10.1/24'],
      },
      {
        name: 'q20',
        kind: 'qinq',
        trunk: 'trunk',
        'outer-vlan': 100,
        vlan: 20,
        mac: formatMac(G20),
        addresses: ['10.3.20.1/24'],
      },
    ],
    vrfs: [
      {
        name: 'blue',
        interfaces: [
          {
            name: 'v11',
            kind: 'vlan',
            trunk: 'trunk',
            vlan: 11,
            mac: formatMac(G11),
            addresses: ['10.3.10.1/24'],
          },
        ],
      },
    ],
  };
  const arpFor = (vlan: number, outer = -1): Uint8Array =>
    ether(
      BCAST,
      H10,
      ETHERTYPE_ARP,
      arpPkt(ArpOp.REQUEST, H10, '10.3.10.10', undefined, '10.3.10.1'),
      outer,
      vlan,
    );

  it('a tagged frame enters the sub-interface of its tag (and its context); unknown tags are dropped', () => {
    const r = new Rig(cfg);
    r.vxlan(T, 300, arpFor(10));
    let f = open(r.take()[0]!);
    expect(f.vni).toBe(300);
    expect([f.e.outerVlan, f.e.innerVlan]).toEqual([-1, 10]);
    expect(f.bytes[8 + 12]! * 256 + f.bytes[8 + 13]!).toBe(ETHERTYPE_VLAN);
    expect(arpOf(f)).toMatchObject({ op: ArpOp.REPLY, senderMac: formatMac(G10), targetIp: '10.3.10.10' });
    r.vxlan(T, 300, arpFor(11));
    f = open(r.take()[0]!);
    expect([f.e.outerVlan, f.e.innerVlan]).toEqual([-1, 11]);
    expect(arpOf(f)).toMatchObject({ op: ArpOp.REPLY, senderMac: formatMac(G11) });
    expect(r.fwd.counters.read(r.index('v10'))['in-packets']).toBe(1);
    expect(r.fwd.counters.read(r.index('v11'))['in-packets']).toBe(1);

    // vlan 11 is in context blue, which has no route to 10.3.20.0/24; vlan 10 (default) has
    fromTag(r, 11, udp4('10.3.10.10', '10.3.20.10', 1, 2));
    const un = r.take().map(open);
    expect(un).toHaveLength(1);
    expect(un[0]!.e.innerVlan).toBe(11);
    expect(icmp4Of(un[0]!.bytes, un[0]!.l3)).toMatchObject({
      type: IcmpType.DEST_UNREACHABLE,
      code: UnreachCode.NET,
    });
    expect(r.drops('v11')).toEqual({ 'no-route': 1 });

    r.vxlan(T, 300, arpFor(12)); // nobody's tag
    r.vxlan(T, 300, arpFor(10, 100)); // QinQ 100/10: nobody's either
    r.vxlan(
      T,
      300,
      ether(BCAST, H10, ETHERTYPE_ARP, arpPkt(ArpOp.REQUEST, H10, '10.3.10.10', undefined, '10.3.10.1')),
    ); // untagged
    expect(r.take()).toEqual([]);
    expect(r.drops('trunk')).toEqual({ 'unknown-vlan': 3 });
  });

  function fromTag(r: Rig, vlan: number, pkt: Uint8Array): void {
    const gw = vlan === 10 ? G10 : G11;
    r.vxlan(T, 300, ether(gw, H10, ETHERTYPE_IPV4, pkt, -1, vlan));
  }

  it('egress on a QinQ sub-interface writes an 802.1ad S-tag then an 802.1Q C-tag', () => {
    const r = new Rig(cfg);
    r.vxlan(T, 300, arpFor(10));
    r.take();
    const pkt = udp4('10.3.10.10', '10.3.20.10', 1, 2, 12);
    fromTag(r, 10, pkt.slice());
    const probe = open(r.take()[0]!);
    expect([probe.e.outerVlan, probe.e.innerVlan]).toEqual([100, 20]);
    expect(arpOf(probe)).toMatchObject({
      op: ArpOp.REQUEST,
      senderMac: formatMac(G20),
      senderIp: '10.3.20.1',
      targetIp: '10.3.20.10',
    });
    r.vxlan(
      T,
      300,
      ether(G20, H20, ETHERTYPE_ARP, arpPkt(ArpOp.REPLY, H20, '10.3.20.10', G20, '10.3.20.1'), 100, 20),
    );
    const out = r.take();
    expect(out).toHaveLength(1);
    const f = open(out[0]!);
    expect(f.vni).toBe(300);
    const b = f.bytes;
    // dst, src, 88a8 | 0 064, 8100 | 0 014, 0800
    expect(Array.from(b.subarray(8 + 12, 8 + 22))).toEqual([
      0x88, 0xa8, 0x00, 100, 0x81, 0x00, 0x00, 20, 0x08, 0x00,
    ]);
    expect([dstMac(f), srcMac(f)]).toEqual([formatMac(H20), formatMac(G20)]);
    expect(ip4Of(b, f.l3)).toMatchObject({ ttl: 63, checksumOk: true });
    expect(invariant(b, f.l3)).toEqual(invariant(pkt));
    expect(r.fwd.counters.read(r.index('q20'))['out-packets']).toBe(2);
  });
});

describe('NVGRE (GRE-in-UDP, RFC 7637 / RFC 8086)', () => {
  const N = '192.0.2.60';
  const GN = parseMac('02:00:00:00:05:01');
  const HN = parseMac('02:50:00:00:00:50');
  const cfg = twoSegments({}, {});
  (cfg['interfaces'] as object[]).push({
    name: 'n1',
    kind: 'nvgre',
    vsid: 5000,
    mac: formatMac(GN),
    remotes: [N],
    addresses: ['10.5.0.1/24'],
  });

  it('maps the VSID to its interface and writes key = VSID << 8 on egress', () => {
    const r = new Rig(cfg);
    r.nvgre(
      N,
      5000,
      ether(BCAST, HN, ETHERTYPE_ARP, arpPkt(ArpOp.REQUEST, HN, '10.5.0.10', undefined, '10.5.0.1')),
      0x33,
    );
    const out = r.take();
    expect(out).toHaveLength(1);
    const f = open(out[0]!);
    expect(f.tunnel).toBe(TUNNEL_GRE);
    expect(f.to).toBe(`${N}:4754`);
    expect(f.key).toBe(5000 * 256);
    expect(Array.from(f.bytes.subarray(0, 8))).toEqual([0x20, 0x00, 0x65, 0x58, 0x00, 0x13, 0x88, 0x00]);
    expect(arpOf(f)).toMatchObject({ op: ArpOp.REPLY, senderMac: formatMac(GN), senderIp: '10.5.0.1' });

    hello(r, 'a');
    const pkt = udp4('10.1.1.10', '10.5.0.10', 7, 8);
    fromA(r, pkt.slice());
    const g = open(r.take()[0]!);
    expect([g.tunnel, g.key, dstMac(g), srcMac(g)]).toEqual([
      TUNNEL_GRE,
      5000 << 8,
      formatMac(HN),
      formatMac(GN),
    ]);
    expect(ip4Of(g.bytes, g.l3)).toMatchObject({ ttl: 63, checksumOk: true });
    expect(invariant(g.bytes, g.l3)).toEqual(invariant(pkt));

    // unknown VSID, no key: bad encapsulation on the unattached counter
    r.nvgre(N, 5001, ether(GN, HN, ETHERTYPE_IPV4, udp4('10.5.0.10', '10.1.1.10', 1, 2)));
    const nokey = new Uint8Array(4 + 14 + 20);
    writeGre(nokey, 0, ETHERTYPE_TEB);
    r.fwd.receive(TUNNEL_GRE, nokey, nokey.length, N, r.now);
    expect(r.take()).toEqual([]);
    expect(r.drops(0)).toEqual({ 'bad-encapsulation': 2 });
  });
});

describe('MPLS-in-UDP (RFC 7510) with explicit null', () => {
  const M = '192.0.2.70';
  const mplsIface = (extra: object = {}): object => ({
    name: 'm',
    kind: 'mpls-udp',
    remotes: [M],
    addresses: ['10.6.0.1/30', '2001:db8:6::1/64'],
    ...extra,
  });
  const rig = (dp: Record<string, unknown> = {}, m: object = {}): Rig => {
    const c = twoSegments({
      dataplane: dp,
      'static-routes': [{ prefix: '10.60.0.0/16', 'next-hop': '10.6.0.2' }],
    });
    (c['interfaces'] as object[]).push(mplsIface(m));
    return new Rig(c);
  };
  function openMpls(s: Sent): {
    label: number;
    tc: number;
    bottom: boolean;
    ttl: number;
    l3: number;
    b: Uint8Array;
  } {
    expect(s.tunnel).toBe(TUNNEL_MPLS);
    expect(s.to).toBe(`${M}:6635`);
    const e = newMplsEntry();
    expect(parseLabel(s.bytes, 0, s.bytes.length, e)).toBe(4);
    return { ...e, l3: 4, b: s.bytes };
  }

  it('accepts IPv4 under label 0 and IPv6 under label 2 (bottom of stack); anything else is bad encapsulation', () => {
    const r = rig();
    hello(r, 'a');
    const v4 = udp4('10.60.1.1', '10.1.1.10', 1, 2, 10, { ttl: 30 });
    r.mpls(M, 0, v4.slice());
    const f = open(r.take()[0]!);
    expect([f.to, f.vni, dstMac(f), srcMac(f)]).toEqual([`${A}:4789`, 101, formatMac(HA), GA]);
    expect(ip4Of(f.bytes, f.l3)).toMatchObject({ src: '10.60.1.1', ttl: 29, checksumOk: true });
    expect(invariant(f.bytes, f.l3)).toEqual(invariant(v4));

    // IPv6: host A known through its solicitation
    const nsA = ns('2001:db8:1::10', '2001:db8:1::1', HA);
    r.vxlan(A, 101, ether(mcastMac6(nsA), HA, ETHERTYPE_IPV6, nsA));
    r.take();
    const v6 = udp6('2001:db8:6::2', '2001:db8:1::10', 1, 2, 10, { ttl: 7 });
    r.mpls(M, 2, v6.slice());
    const g = open(r.take()[0]!);
    expect([g.to, dstMac(g), g.e.etherType]).toEqual([`${A}:4789`, formatMac(HA), ETHERTYPE_IPV6]);
    expect(ip6Of(g.bytes, g.l3)).toMatchObject({ hop: 6 });
    expect(invariant(g.bytes, g.l3)).toEqual(invariant(v6));
    expect(r.fwd.counters.read(r.index('m'))).toMatchObject({
      'in-packets': 2,
      'in-bytes': 4 + v4.length + 4 + v6.length,
    });

    r.mpls(M, 16, v4.slice()); // a label we did not give out
    r.mpls(M, 0, v4.slice(), false); // not bottom of stack
    expect(r.take()).toEqual([]);
    expect(r.drops('m')).toEqual({ 'bad-encapsulation': 2 });
    r.mpls('192.0.2.71', 0, v4.slice()); // nobody's PE
    expect(r.drops(0)).toEqual({ 'bad-encapsulation': 1 });
  });

  it('pushes explicit null (0 for IPv4, 2 for IPv6), bottom of stack; uniform: TC = DSCP >> 3, TTL copied', () => {
    const r = rig();
    hello(r, 'a');
    const pkt = udp4('10.1.1.10', '10.60.1.1', 1, 2, 10, { ttl: 40, dscp: 46 });
    fromA(r, pkt.slice());
    const out = r.take();
    expect(out).toHaveLength(1);
    expect(out[0]!.dscp).toBe(46);
    const m = openMpls(out[0]!);
    expect([m.label, m.tc, m.bottom, m.ttl]).toEqual([0, 5, true, 39]);
    expect(m.b.length).toBe(4 + pkt.length);
    expect(ip4Of(m.b, 4)).toMatchObject({ ttl: 39, dscp: 46, checksumOk: true });
    expect(invariant(m.b, 4)).toEqual(invariant(pkt));
    expect(r.fwd.counters.read(r.index('m'))).toMatchObject({
      'out-packets': 1,
      'out-bytes': 4 + pkt.length,
    });

    r.vxlan(
      A,
      101,
      ether(ga, HA, ETHERTYPE_IPV6, udp6('2001:db8:1::10', '2001:db8:6::2', 1, 2, 10, { ttl: 20, dscp: 26 })),
    );
    const m6 = openMpls(r.take()[0]!);
    expect([m6.label, m6.tc, m6.bottom, m6.ttl]).toEqual([2, 3, true, 19]);
    expect(ip6Of(m6.b, 4)).toMatchObject({ hop: 19, dscp: 26, dst: '2001:db8:6::2' });
  });

  it('pipe: TC and outer DSCP from tunnel-qos.outer-dscp, MPLS TTL 255, inner DSCP kept', () => {
    const r = rig({ 'tunnel-qos': { mode: 'pipe', 'outer-dscp': 'cs1' } });
    hello(r, 'a');
    fromA(r, udp4('10.1.1.10', '10.60.1.1', 1, 2, 10, { ttl: 40, dscp: 46 }));
    const s = r.take()[0]!;
    expect(s.dscp).toBe(8);
    const m = openMpls(s);
    expect([m.label, m.tc, m.bottom, m.ttl]).toEqual([0, 1, true, 255]);
    expect(ip4Of(m.b, 4)).toMatchObject({ ttl: 39, dscp: 46, checksumOk: true });
    // VXLAN egress in pipe mode gets the fixed outer DSCP too
    hello(r, 'b');
    fromA(r, udp4('10.1.1.10', '10.1.2.10', 1, 2, 10, { dscp: 46 }));
    expect(r.take().map((x) => x.dscp)).toEqual([8]);
  });

  it('uniform with marking: TC from the DSCP after marking; a class mpls-tc overrides', () => {
    const r = rig(
      {
        'qos-policies': [
          {
            name: 'wan',
            classes: [
              { name: 'video', match: { protocol: 'udp', 'destination-ports': [9000] }, 'set-dscp': 'af41' },
              {
                name: 'ctl',
                match: { protocol: 'udp', 'destination-ports': [9001] },
                'set-dscp': 'cs2',
                'mpls-tc': 7,
              },
            ],
          },
        ],
      },
      { 'qos-policy': 'wan' },
    );
    hello(r, 'a');
    fromA(r, udp4('10.1.1.10', '10.60.1.1', 1, 9000, 10, { dscp: 0 }));
    let s = r.take()[0]!;
    let m = openMpls(s);
    expect([s.dscp, m.tc]).toEqual([34, 4]);
    expect(ip4Of(m.b, 4)).toMatchObject({ dscp: 34, checksumOk: true });
    fromA(r, udp4('10.1.1.10', '10.60.1.1', 1, 9001, 10, { dscp: 0 }));
    s = r.take()[0]!;
    m = openMpls(s);
    expect([s.dscp, m.tc]).toEqual([16, 7]);
    expect(ip4Of(m.b, 4)).toMatchObject({ dscp: 16, checksumOk: true });
    fromA(r, udp4('10.1.1.10', '10.60.1.1', 1, 9002, 10, { dscp: 10 }));
    m = openMpls(r.take()[0]!);
    expect(m.tc).toBe(1); // default class: DSCP 10 >> 3
  });

  it('a configured label is pushed instead of explicit null, and accepted on receipt', () => {
    const r = rig({}, { label: 3000 });
    hello(r, 'a');
    fromA(r, udp4('10.1.1.10', '10.60.1.1', 1, 2));
    const m = openMpls(r.take()[0]!);
    expect([m.label, m.bottom]).toEqual([3000, true]);
    r.mpls(M, 3000, udp4('10.60.1.1', '10.1.1.10', 1, 2));
    expect(r.take().map((s) => s.to)).toEqual([`${A}:4789`]);
  });
});

describe('zone firewall', () => {
  it('a denied zone pair drops with acl; the return direction of an allowed flow passes', () => {
    const r = new Rig(
      twoSegments(
        {
          dataplane: {
            zones: {
              'default-action': 'deny',
              rules: [{ from: 'web', to: 'app', action: 'allow', protocol: 'udp' }],
            },
          },
        },
        { a: { zone: 'web' }, b: { zone: 'app' } },
      ),
    );
    hello(r);
    fromB(r, udp4('10.1.2.10', '10.1.1.10', 7000, 8000)); // app -> web opens nothing
    expect(r.take()).toEqual([]);
    expect(r.drops('b')).toEqual({ acl: 1 });
    fromA(r, udp4('10.1.1.10', '10.1.2.10', 5000, 6000)); // web -> app: allowed, recorded
    expect(r.take().map((s) => s.to)).toEqual([`${B2}:4789`]);
    fromB(r, udp4('10.1.2.10', '10.1.1.10', 6000, 5000)); // its answer
    expect(r.take().map((s) => s.to)).toEqual([`${A}:4789`]);
    fromB(r, udp4('10.1.2.10', '10.1.1.10', 6000, 5001)); // another port: no flow
    expect(r.take()).toEqual([]);
    expect(r.drops('b')).toEqual({ acl: 2 });
    expect(r.drops('a')).toEqual({});
  });
});

describe('QoS on egress', () => {
  it('marks DSCP with a valid header checksum and polices a class beyond its burst', () => {
    const r = new Rig(
      twoSegments(
        {
          dataplane: {
            'qos-policies': [
              {
                name: 'edge',
                classes: [
                  {
                    name: 'voice',
                    match: { protocol: 'udp', 'destination-ports': [9000] },
                    'set-dscp': 'ef',
                  },
                  {
                    name: 'bulk',
                    match: { protocol: 'udp', 'destination-ports': [9001] },
                    police: { rate: '64kbit', burst: 300 },
                  },
                ],
              },
            ],
          },
        },
        { b: { 'qos-policy': 'edge' } },
      ),
    );
    hello(r);
    const voice = udp4('10.1.1.10', '10.1.2.10', 1, 9000, 20, { dscp: 0 });
    fromA(r, voice.slice());
    const f = open(r.take()[0]!);
    expect(f.dscp).toBe(46);
    expect(ip4Of(f.bytes, f.l3)).toMatchObject({ dscp: 46, ttl: 63, checksumOk: true });
    const bulk = (): Uint8Array => udp4('10.1.1.10', '10.1.2.10', 1, 9001, 100); // 128 bytes
    for (let i = 0; i < 3; i++) fromA(r, bulk());
    expect(r.take()).toHaveLength(2); // 256 of 300 bytes, the third would need 384
    expect(r.drops('b')).toEqual({ policer: 1 });
    r.now += 16; // 64 kbit/s = 8 bytes/ms: 128 bytes back
    fromA(r, bulk());
    fromA(r, bulk());
    expect(r.take()).toHaveLength(1);
    expect(r.drops('b')).toEqual({ policer: 2 });
  });
});

describe('routes', () => {
  it('static route via a connected gateway, a recursive route through it, and removal', () => {
    const r = new Rig(twoSegments());
    hello(r);
    const GW = parseMac('02:bb:00:00:00:20');
    const sync = (routes: DpRoute[]): number => r.fwd.syncRoutes('default', routes);
    expect(
      sync([
        dpRoute('default', '10.50.0.0/16', '10.1.2.20'),
        dpRoute('default', '10.60.0.0/16', '10.50.0.1'),
      ]),
    ).toBe(2);
    fromA(r, udp4('10.1.1.10', '10.50.3.3', 1, 2));
    const probe = open(r.take()[0]!);
    expect(arpOf(probe).targetIp).toBe('10.1.2.20'); // the gateway, not the destination
    r.vxlan(B1, 102, ether(gb, GW, ETHERTYPE_ARP, arpPkt(ArpOp.REPLY, GW, '10.1.2.20', gb, '10.1.2.1')));
    let f = open(r.take()[0]!);
    expect([f.to, dstMac(f)]).toEqual([`${B1}:4789`, formatMac(GW)]);
    expect(ip4Of(f.bytes, f.l3).dst).toBe('10.50.3.3');
    fromA(r, udp4('10.1.1.10', '10.60.9.9', 1, 2));
    f = open(r.take()[0]!);
    expect([f.to, dstMac(f)]).toEqual([`${B1}:4789`, formatMac(GW)]);
    expect(ip4Of(f.bytes, f.l3).dst).toBe('10.60.9.9');
    // the same list again changes nothing
    expect(
      sync([
        dpRoute('default', '10.50.0.0/16', '10.1.2.20'),
        dpRoute('default', '10.60.0.0/16', '10.50.0.1'),
      ]),
    ).toBe(0);
    // the gateway route goes: the recursive one cannot resolve any more, both are gone
    sync([dpRoute('default', '10.60.0.0/16', '10.50.0.1')]);
    for (const dst of ['10.50.3.3', '10.60.9.9']) {
      fromA(r, udp4('10.1.1.10', dst, 1, 2));
      const e = r.take().map(open);
      expect(e).toHaveLength(1);
      expect(icmp4Of(e[0]!.bytes, e[0]!.l3)).toMatchObject({
        type: IcmpType.DEST_UNREACHABLE,
        code: UnreachCode.NET,
      });
    }
    expect(r.drops('a')).toEqual({ 'no-route': 2 });
    // a connected prefix cannot be overridden
    expect(sync([dpRoute('default', '10.1.2.0/24', '10.1.1.99')])).toBe(0);
  });

  it('IPv6 static route via a connected gateway', () => {
    const r = new Rig(twoSegments());
    r.fwd.syncRoutes('default', [dpRoute('default', '2001:db8:50::/48', '2001:db8:2::20')]);
    r.vxlan(A, 101, ether(ga, HA, ETHERTYPE_IPV6, udp6('2001:db8:1::10', '2001:db8:50::1', 1, 2)));
    const probe = open(r.take()[0]!);
    const nd = newNdInfo();
    expect(parseNd(probe.bytes, probe.l3, probe.bytes.length, nd)).toBeGreaterThan(0);
    expect(formatIPv6(probe.bytes, nd.targetOff)).toBe('2001:db8:2::20');
    expect(dstMac(probe)).toBe('33:33:ff:00:00:20');
  });

  it('overlapping subnets in two contexts stay apart', () => {
    const seg = (ctx: string, vni: number, remote: string): object[] => [
      { name: `${ctx}-a`, kind: 'vxlan', vni, remotes: [remote], mac: GA, addresses: ['10.1.1.1/24'] },
      {
        name: `${ctx}-b`,
        kind: 'vxlan',
        vni: vni + 1,
        remotes: [`${remote}0`],
        mac: GB,
        addresses: ['10.1.2.1/24'],
      },
    ];
    const r = new Rig({
      vrfs: [
        {
          name: 'red',
          interfaces: seg('red', 201, '192.0.2.8'),
          'static-routes': [{ prefix: '10.77.0.0/16', action: 'reject' }],
        },
        { name: 'blue', interfaces: seg('blue', 301, '192.0.2.9') },
      ],
    });
    r.vxlan('192.0.2.8', 201, ether(ga, HA, ETHERTYPE_IPV4, udp4('10.1.1.10', '10.1.2.10', 1, 2)));
    const red = r.take().map(open);
    expect(red.map((f) => `${f.vni} ${f.to}`)).toEqual(['202 192.0.2.80:4789']);
    r.vxlan('192.0.2.9', 301, ether(ga, HA, ETHERTYPE_IPV4, udp4('10.1.1.10', '10.1.2.10', 1, 2)));
    const blue = r.take().map(open);
    expect(blue.map((f) => `${f.vni} ${f.to}`)).toEqual(['302 192.0.2.90:4789']);
    // the reject route exists in red only: blue has no route for it
    r.vxlan('192.0.2.8', 201, ether(ga, HA, ETHERTYPE_IPV4, udp4('10.1.1.10', '10.77.0.1', 1, 2)));
    r.vxlan('192.0.2.9', 301, ether(ga, HA, ETHERTYPE_IPV4, udp4('10.1.1.10', '10.77.0.1', 1, 2)));
    expect(r.drops('red-a')).toMatchObject({ reject: 1 });
    expect(r.drops('blue-a')).toMatchObject({ 'no-route': 1 });
    // the VNI of one context from the VTEP of the other is refused
    r.vxlan('192.0.2.9', 201, ether(ga, HA, ETHERTYPE_IPV4, udp4('10.1.1.10', '10.1.2.10', 1, 2)));
    expect(r.drops(0)).toEqual({ 'bad-encapsulation': 1 });
  });
});

describe('tunnel demultiplexing and counters', () => {
  it('unknown VNI, unknown remote, a remote of another interface: bad-encapsulation on counter 0', () => {
    const r = new Rig(twoSegments());
    const arpReq = ether(
      BCAST,
      HA,
      ETHERTYPE_ARP,
      arpPkt(ArpOp.REQUEST, HA, '10.1.1.10', undefined, '10.1.1.1'),
    );
    r.vxlan(A, 999, arpReq);
    r.vxlan('198.51.100.1', 101, arpReq);
    r.vxlan(B1, 101, arpReq);
    const noI = new Uint8Array(8 + arpReq.length);
    noI.set(arpReq, 8);
    r.fwd.receive(TUNNEL_VXLAN, noI, noI.length, A, r.now); // I flag clear
    expect(r.take()).toEqual([]);
    expect(r.drops(0)).toEqual({ 'bad-encapsulation': 4 });
    expect(r.fwd.counters.read(r.index('a'))['in-packets']).toBe(0);
    // IPv4-mapped and plain spellings of a remote are the same endpoint
    r.vxlan(`::ffff:${A}`, 101, arpReq);
    expect(r.take()).toHaveLength(1);
  });

  it('one remote address serving two tunnel services is accepted on both', () => {
    const P = '192.0.2.77';
    const r = new Rig({
      interfaces: [
        { name: 'x', kind: 'vxlan', vni: 7, remotes: [P], mac: GA, addresses: ['10.7.0.1/24'] },
        { name: 'y', kind: 'nvgre', vsid: 7, remotes: [P], mac: GB, addresses: ['10.8.0.1/24'] },
      ],
    });
    r.vxlan(
      P,
      7,
      ether(BCAST, HA, ETHERTYPE_ARP, arpPkt(ArpOp.REQUEST, HA, '10.7.0.10', undefined, '10.7.0.1')),
    );
    r.nvgre(
      P,
      7,
      ether(BCAST, HB, ETHERTYPE_ARP, arpPkt(ArpOp.REQUEST, HB, '10.8.0.10', undefined, '10.8.0.1')),
    );
    expect(r.take().map((s) => `${s.tunnel} ${s.to}`)).toEqual([
      `${TUNNEL_VXLAN} ${P}:4789`,
      `${TUNNEL_GRE} ${P}:4754`,
    ]);
    expect(r.drops(0)).toEqual({});
  });

  it('counts packets and bytes in and out per interface', () => {
    const r = new Rig(twoSegments());
    hello(r); // 42-byte ARP in on a and b, 42-byte replies out
    const pkt = udp4('10.1.1.10', '10.1.2.10', 1, 2, 50);
    fromA(r, pkt);
    fromA(r, udp4('10.1.1.10', '10.1.2.10', 1, 2, 50));
    expect(r.take()).toHaveLength(2);
    const frame = 14 + pkt.length;
    expect(r.fwd.counters.read(r.index('a'))).toEqual({
      'in-packets': 3,
      'in-bytes': 42 + 2 * frame,
      'out-packets': 1,
      'out-bytes': 42,
      'dropped-packets': 0,
      drops: {},
    });
    expect(r.fwd.counters.read(r.index('b'))).toMatchObject({
      'in-packets': 1,
      'in-bytes': 42,
      'out-packets': 3,
      'out-bytes': 42 + 2 * frame,
    });
    expect(r.fwd.counters.read(0)['dropped-packets']).toBe(0);
  });
});
