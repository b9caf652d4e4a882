/**
 * Every attachment kind of the userspace forwarder over loopback, with the vCE agent in process:
 * a VXLAN trunk carrying an 802.1Q and a QinQ sub-interface, an NVGRE interface (GRE-in-UDP), an
 * MPLS-in-UDP interface to a PE and a plain VXLAN interface. The remote VTEPs and the PE are plain
 * UDP sockets on 127.0.0.x: the test builds the frames the kernel here cannot make (tags, NVGRE,
 * MPLS) with the codecs, answers ARP and neighbour solicitations as the remote hosts would, and
 * checks what the agent forwards. tshark on `lo` is the independent judge of the wire format:
 * tags, VNI, GRE key, label stack entry, inner TTL and IPv4 header checksums.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgentConfig } from '../../src/agent/config.ts';
import { startAgent, type RunningAgent } from '../../src/agent/run.ts';
import {
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  ethHeaderLength,
  newEthInfo,
  parseEthernet,
  parseMac,
  writeEthernet,
} from '../../src/dataplane/frames/ethernet.ts';
import { ARP_LENGTH, ArpOp, newArpInfo, parseArp, writeArp } from '../../src/dataplane/frames/arp.ts';
import { writeIPv4Header } from '../../src/dataplane/frames/ipv4.ts';
import { writeIPv6Header } from '../../src/dataplane/frames/ipv6.ts';
import { setUdpChecksum4, setUdpChecksum6, writeUdpHeader } from '../../src/dataplane/frames/l4.ts';
import { Icmp6Type } from '../../src/dataplane/frames/icmp6.ts';
import {
  NA_FLAG_OVERRIDE,
  NA_FLAG_SOLICITED,
  newNdInfo,
  parseNd,
  writeNa,
} from '../../src/dataplane/frames/nd.ts';
import { parseVxlan, writeVxlan } from '../../src/dataplane/frames/vxlan.ts';
import { newGreInfo, parseGre, writeNvgre } from '../../src/dataplane/frames/gre.ts';
import { newMplsEntry, parseLabel, writeLabel } from '../../src/dataplane/frames/mpls.ts';
import { IpProto } from '../../src/dataplane/frames/proto.ts';
import { formatIPv6, ipv4ToNumber, parseIPv4, parseIPv6 } from '../../src/lib/ip.ts';

const tshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;
const available = tshark && process.getuid?.() === 0;
if (!available && process.env['CI'] !== undefined) throw new Error('tshark and root are required in CI');

const CAPTURE_SECONDS = 6;
const n4 = (s: string): number => ipv4ToNumber(parseIPv4(s));

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function until<T>(
  f: () => T | undefined | Promise<T | undefined>,
  ms: number,
  step = 10,
): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) return undefined;
    await new Promise((r) => setTimeout(r, step));
  }
}

// ------------------------------------------------------------------ frames

function ether(
  dst: Uint8Array,
  src: Uint8Array,
  type: number,
  payload: Uint8Array,
  outer = -1,
  inner = -1,
): Uint8Array {
  const b = new Uint8Array(ethHeaderLength(outer, inner) + payload.length);
  b.set(payload, writeEthernet(b, 0, dst, src, type, outer, inner));
  return b;
}

function udp4(src: string, dst: string, dport: number, dscp = 0): Uint8Array {
  const b = new Uint8Array(20 + 8 + 24).fill(0x5a);
  writeIPv4Header(b, 0, {
    src: n4(src),
    dst: n4(dst),
    proto: IpProto.UDP,
    ttl: 64,
    dscp,
    id: dport,
    payloadLength: 32,
  });
  writeUdpHeader(b, 20, 40000, dport, 32);
  setUdpChecksum4(b, 0, 20);
  return b;
}

function udp6(src: string, dst: string, dport: number): Uint8Array {
  const b = new Uint8Array(40 + 8 + 24).fill(0x5a);
  writeIPv6Header(b, 0, {
    src: parseIPv6(src),
    dst: parseIPv6(dst),
    nextHeader: IpProto.UDP,
    hopLimit: 64,
    payloadLength: 32,
  });
  writeUdpHeader(b, 40, 40000, dport, 32);
  setUdpChecksum6(b, 0, 40);
  return b;
}

function vxlanOf(vni: number, frame: Uint8Array): Uint8Array {
  const b = new Uint8Array(8 + frame.length);
  b.set(frame, writeVxlan(b, 0, vni));
  return b;
}

function nvgreOf(vsid: number, frame: Uint8Array): Uint8Array {
  const b = new Uint8Array(8 + frame.length);
  b.set(frame, writeNvgre(b, 0, vsid, 0x5e));
  return b;
}

function mplsOf(label: number, pkt: Uint8Array): Uint8Array {
  const b = new Uint8Array(4 + pkt.length);
  b.set(pkt, writeLabel(b, 0, label, 0, true, 64));
  return b;
}

/** What a datagram carries, decoded with the codecs. */
interface Inner {
  vni: number;
  key: number;
  label: number;
  tc: number;
  bottom: boolean;
  mplsTtl: number;
  outerVlan: number;
  innerVlan: number;
  etherType: number;
  l3: number;
  /** Inner UDP destination port, -1 when not UDP. */
  dport: number;
}

function decode(kind: Kind, b: Uint8Array): Inner | undefined {
  const r: Inner = {
    vni: -1,
    key: -1,
    label: -1,
    tc: -1,
    bottom: false,
    mplsTtl: -1,
    outerVlan: -1,
    innerVlan: -1,
    etherType: 0,
    l3: 0,
    dport: -1,
  };
  if (kind === 'mpls') {
    const m = newMplsEntry();
    if (parseLabel(b, 0, b.length, m) < 0) return undefined;
    Object.assign(r, { label: m.label, tc: m.tc, bottom: m.bottom, mplsTtl: m.ttl, l3: 4 });
    r.etherType = b[4]! >> 4 === 6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4;
  } else {
    let off = 8;
    if (kind === 'vxlan') r.vni = parseVxlan(b, 0, b.length);
    else {
      const g = newGreInfo();
      off = parseGre(b, 0, b.length, g);
      if (off < 0) return undefined;
      r.key = g.key;
    }
    const e = newEthInfo();
    r.l3 = parseEthernet(b, off, b.length, e);
    if (r.l3 < 0) return undefined;
    Object.assign(r, { outerVlan: e.outerVlan, innerVlan: e.innerVlan, etherType: e.etherType });
  }
  if (r.etherType === ETHERTYPE_IPV4 && b[r.l3 + 9] === IpProto.UDP)
    r.dport = (b[r.l3 + 22]! << 8) | b[r.l3 + 23]!;
  if (r.etherType === ETHERTYPE_IPV6 && b[r.l3 + 6] === IpProto.UDP)
    r.dport = (b[r.l3 + 42]! << 8) | b[r.l3 + 43]!;
  return r;
}

// ------------------------------------------------------------------ remote VTEPs / PE

type Kind = 'vxlan' | 'nvgre' | 'mpls';

interface Host {
  readonly ip: string;
  readonly ip6?: string;
  readonly mac: Uint8Array;
  readonly outer?: number;
  readonly inner?: number;
}

/** A remote tunnel endpoint with hosts behind it: records every datagram, answers ARP and NS for its hosts. */
class Remote {
  readonly got: Buffer[] = [];
  private readonly sock = dgram.createSocket('udp4');
  agentPort = 0;

  constructor(
    readonly address: string,
    readonly kind: Kind,
    readonly hosts: readonly Host[] = [],
  ) {
    this.sock.on('message', (msg) => {
      this.got.push(msg);
      this.answer(msg);
    });
  }

  get port(): number {
    return this.sock.address().port;
  }

  bind(): Promise<void> {
    return new Promise((r) => this.sock.bind(0, this.address, () => r()));
  }

  close(): Promise<void> {
    return new Promise((r) => this.sock.close(() => r()));
  }

  send(b: Uint8Array): void {
    this.sock.send(b, this.agentPort, '127.0.0.1');
  }

  /** The first datagram received whose inner packet is UDP to `dport`. */
  find(dport: number): { b: Buffer; d: Inner } | undefined {
    for (const b of this.got) {
      const d = decode(this.kind, b);
      if (d?.dport === dport) return { b, d };
    }
    return undefined;
  }

  private answer(msg: Buffer): void {
    if (this.kind === 'mpls') return;
    const head = this.kind === 'vxlan' ? 8 : parseGre(msg, 0, msg.length, newGreInfo());
    if (head < 0) return;
    const e = newEthInfo();
    const p = parseEthernet(msg, head, msg.length, e);
    if (p < 0) return;
    const behind = (h: Host): boolean => (h.outer ?? -1) === e.outerVlan && (h.inner ?? -1) === e.innerVlan;
    let frame: Uint8Array | undefined;
    if (e.etherType === ETHERTYPE_ARP) {
      const a = newArpInfo();
      if (parseArp(msg, p, msg.length, a) < 0 || a.op !== ArpOp.REQUEST) return;
      const h = this.hosts.find((x) => n4(x.ip) === a.targetIp && behind(x));
      if (h === undefined) return;
      const asker = msg.subarray(a.senderMacOff, a.senderMacOff + 6);
      const arp = new Uint8Array(ARP_LENGTH);
      writeArp(arp, 0, ArpOp.REPLY, h.mac, a.targetIp, asker, a.senderIp);
      frame = ether(asker, h.mac, ETHERTYPE_ARP, arp, e.outerVlan, e.innerVlan);
    } else if (e.etherType === ETHERTYPE_IPV6) {
      const nd = newNdInfo();
      if (parseNd(msg, p, msg.length, nd) < 0 || nd.type !== Icmp6Type.NEIGHBOR_SOLICITATION) return;
      const target = formatIPv6(msg, nd.targetOff);
      const h = this.hosts.find((x) => x.ip6 === target && behind(x));
      if (h === undefined || nd.sourceLlaOff < 0) return;
      const na = new Uint8Array(40 + 32);
      const t = parseIPv6(target);
      writeNa(na, 0, t, msg.subarray(p + 8, p + 24), t, NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE, h.mac);
      frame = ether(
        msg.subarray(nd.sourceLlaOff, nd.sourceLlaOff + 6),
        h.mac,
        ETHERTYPE_IPV6,
        na,
        e.outerVlan,
        e.innerVlan,
      );
    }
    if (frame === undefined) return;
    const b = new Uint8Array(head + frame.length);
    b.set(msg.subarray(0, head)); // the same VNI / GRE key back
    b.set(frame, head);
    this.send(b);
  }
}

// ------------------------------------------------------------------ the lab

const MAC = {
  v10: parseMac('02:00:00:00:10:01'),
  q20: parseMac('02:00:00:00:20:01'),
  nv: parseMac('02:00:00:00:30:01'),
  plain: parseMac('02:00:00:00:50:01'),
  h10: parseMac('02:10:00:00:00:0a'),
  h20: parseMac('02:20:00:00:00:0a'),
  h30: parseMac('02:30:00:00:00:0a'),
  h50: parseMac('02:50:00:00:00:0a'),
};
const VSID = 0x1234;
const T = new Remote('127.0.0.2', 'vxlan', [
  { ip: '10.20.10.10', mac: MAC.h10, inner: 10 },
  { ip: '10.20.20.10', mac: MAC.h20, outer: 200, inner: 20 },
]);
const N = new Remote('127.0.0.3', 'nvgre', [{ ip: '10.20.30.10', mac: MAC.h30 }]);
const P = new Remote('127.0.0.4', 'mpls');
const V = new Remote('127.0.0.5', 'vxlan', [{ ip: '10.20.50.10', ip6: '2001:db8:50::10', mac: MAC.h50 }]);
const REMOTES = [T, N, P, V];

/** Inner UDP destination port of each case: how the datagrams of one case are told apart. */
const CASE = {
  vlanToMpls: 7001,
  qinqToNvgre: 7002,
  nvgreToVlan: 7003,
  mpls4ToVxlan: 7004,
  mpls6ToVxlan: 7005,
} as const;

type Row = Record<string, string[]>;

describe.skipIf(!available)(
  'userspace data plane: VLAN, QinQ, NVGRE, MPLS-in-UDP and VXLAN over loopback, checked by tshark',
  () => {
    let agent: RunningAgent | undefined;
    let tmp: string;
    let capture: ChildProcess | undefined;
    const ports = { vxlan: 0, gre: 0, mpls: 0 };
    const rows: Row[] = [];
    let tcField = 'mpls.exp';

    /** tshark's rows of datagrams to `to` (outer destination) carrying inner UDP to `dport`. */
    const wire = (to: string, dport: number): Row[] =>
      rows.filter((r) => r['ip.dst']?.[0] === to && r['udp.dstport']?.at(-1) === String(dport));

    beforeAll(async () => {
      tmp = await mkdtemp(join(tmpdir(), 'vce-encap-'));
      for (const r of REMOTES) await r.bind();
      ports.vxlan = await freeUdpPort();
      ports.gre = await freeUdpPort();
      ports.mpls = await freeUdpPort();
      T.agentPort = ports.vxlan;
      V.agentPort = ports.vxlan;
      N.agentPort = ports.gre;
      P.agentPort = ports.mpls;
      const at = (r: Remote): string[] => [`${r.address}:${r.port}`];
      agent = await startAgent(
        buildAgentConfig({
          'router-id': '10.255.0.1',
          'log-level': 'silent',
          interfaces: [
            { name: 'trunk', kind: 'vxlan', vni: 500, remotes: at(T) },
            {
              name: 'v10',
              kind: 'vlan',
              trunk: 'trunk',
              vlan: 10,
              mac: '02:00:00:00:10:01',
              addresses: ['10.20.10.1/24'],
            },
            {
              name: 'q20',
              kind: 'qinq',
              trunk: 'trunk',
              'outer-vlan': 200,
              vlan: 20,
              mac: '02:00:00:00:20:01',
              addresses: ['10.20.20.1/24'],
            },
            {
              name: 'nv',
              kind: 'nvgre',
              vsid: VSID,
              remotes: at(N),
              mac: '02:00:00:00:30:01',
              addresses: ['10.20.30.1/24'],
            },
            {
              name: 'pe',
              kind: 'mpls-udp',
              remotes: at(P),
              addresses: ['10.20.40.1/30', '2001:db8:40::1/64'],
            },
            {
              name: 'plain',
              kind: 'vxlan',
              vni: 600,
              remotes: at(V),
              mac: '02:00:00:00:50:01',
              addresses: ['10.20.50.1/24', '2001:db8:50::1/64'],
            },
          ],
          'static-routes': [
            { prefix: '10.99.0.0/16', 'next-hop': '10.20.40.2' },
            { prefix: '2001:db8:99::/48', 'next-hop': '2001:db8:40::2' },
          ],
          dataplane: {
            listen: '127.0.0.1',
            'vxlan-port': ports.vxlan,
            'gre-port': ports.gre,
            'mpls-port': ports.mpls,
          },
        }),
      );

      // tshark: which MPLS TC field this version has (mpls.exp before it was renamed mpls.tc)
      const fieldList = new Promise<string>((resolve) => {
        const g = spawn('tshark', ['-G', 'fields'], { stdio: ['ignore', 'pipe', 'ignore'] });
        let out = '';
        g.stdout.on('data', (d: Buffer) => (out += d.toString()));
        g.on('close', () => resolve(out));
      });
      const pcap = join(tmp, 'encap.pcap');
      const all = [ports.vxlan, ports.gre, ports.mpls, ...REMOTES.map((r) => r.port)];
      const filter = `udp and (${all.map((p) => `port ${p}`).join(' or ')})`;
      capture = spawn(
        'tshark',
        ['-i', 'lo', '-f', filter, '-F', 'pcap', '-w', pcap, '-a', `duration:${CAPTURE_SECONDS}`],
        {
          stdio: 'ignore',
        },
      );
      const captured = new Promise<void>((r) => capture!.on('exit', () => r()));
      const ready = await until(
        async () => ((await stat(pcap).catch(() => undefined))?.size ?? 0) >= 24 || undefined,
        10_000,
      );
      expect(ready, 'tshark did not start capturing').toBe(true);

      // the exchanges; each waits for its packet to come out (ARP / ND answered on the way)
      const exchange = (to: Remote, dport: number, send: () => void): Promise<unknown> => {
        send();
        return until(() => to.find(dport), 3000);
      };
      await exchange(P, CASE.vlanToMpls, () =>
        T.send(
          vxlanOf(
            500,
            ether(
              MAC.v10,
              MAC.h10,
              ETHERTYPE_IPV4,
              udp4('10.20.10.10', '10.99.1.1', CASE.vlanToMpls, 46),
              -1,
              10,
            ),
          ),
        ),
      );
      await exchange(N, CASE.qinqToNvgre, () =>
        T.send(
          vxlanOf(
            500,
            ether(
              MAC.q20,
              MAC.h20,
              ETHERTYPE_IPV4,
              udp4('10.20.20.10', '10.20.30.10', CASE.qinqToNvgre),
              200,
              20,
            ),
          ),
        ),
      );
      await exchange(T, CASE.nvgreToVlan, () =>
        N.send(
          nvgreOf(
            VSID,
            ether(MAC.nv, MAC.h30, ETHERTYPE_IPV4, udp4('10.20.30.10', '10.20.10.10', CASE.nvgreToVlan)),
          ),
        ),
      );
      await exchange(V, CASE.mpls4ToVxlan, () =>
        P.send(mplsOf(0, udp4('10.99.1.1', '10.20.50.10', CASE.mpls4ToVxlan))),
      );
      await exchange(V, CASE.mpls6ToVxlan, () =>
        P.send(mplsOf(2, udp6('2001:db8:99::1', '2001:db8:50::10', CASE.mpls6ToVxlan))),
      );

      await captured;
      if ((await fieldList).includes('\tmpls.tc\t')) tcField = 'mpls.tc';
      const fields = [
        'ip.src',
        'ip.dst',
        'udp.srcport',
        'udp.dstport',
        'vxlan.vni',
        'ieee8021ad.id',
        'vlan.id',
        'gre.proto',
        'gre.key',
        'mpls.label',
        tcField,
        'mpls.bottom',
        'mpls.ttl',
        'ip.ttl',
        'ip.dsfield.dscp',
        'ip.checksum.status',
        'ipv6.dst',
        'ipv6.hlim',
      ];
      const decodeAs = [
        ...[ports.vxlan, T.port, V.port].map((p) => `udp.port==${p},vxlan`),
        ...[ports.gre, N.port].map((p) => `udp.port==${p},gre`),
        ...[ports.mpls, P.port].map((p) => `udp.port==${p},mpls`),
      ];
      const args = ['-r', pcap, '-o', 'ip.check_checksum:TRUE', ...decodeAs.flatMap((d) => ['-d', d])];
      args.push('-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=,', '-E', 'separator=\t');
      for (const f of fields) args.push('-e', f);
      const r = spawnSync('tshark', args, { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      for (const line of r.stdout.split('\n')) {
        if (line === '') continue;
        const cols = line.split('\t');
        const row: Row = {};
        fields.forEach(
          (f, i) =>
            (row[f === tcField ? 'mpls.tc' : f] =
              cols[i] === undefined || cols[i] === '' ? [] : cols[i].split(',')),
        );
        rows.push(row);
      }
    }, 30_000);

    afterAll(async () => {
      capture?.kill();
      await agent?.stop();
      for (const r of REMOTES) await r.close().catch(() => undefined);
      if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
    });

    it('802.1Q sub-interface -> MPLS-in-UDP: explicit null, TC from the DSCP (uniform), TTL decremented', () => {
      const got = P.find(CASE.vlanToMpls);
      expect(got, 'nothing reached the PE').toBeDefined();
      const { b, d } = got!;
      expect([d.label, d.tc, d.bottom, d.mplsTtl]).toEqual([0, 5, true, 63]);
      expect(b[d.l3 + 8]).toBe(63);
      // tshark: what we sent in on the trunk, then what left for the PE
      const rx = wire('127.0.0.1', CASE.vlanToMpls).filter((x) => x['vxlan.vni']?.length);
      expect(rx).toHaveLength(1);
      expect([rx[0]!['vxlan.vni'], rx[0]!['vlan.id'], rx[0]!['ieee8021ad.id']]).toEqual([
        ['500'],
        ['10'],
        [],
      ]);
      const tx = wire(P.address, CASE.vlanToMpls);
      expect(tx).toHaveLength(1);
      const w = tx[0]!;
      expect([w['mpls.label'], w['mpls.tc'], w['mpls.bottom'], w['mpls.ttl']]).toEqual([
        ['0'],
        ['5'],
        ['1'],
        ['63'],
      ]);
      expect(w['ip.ttl']?.at(-1)).toBe('63');
      expect(w['ip.dsfield.dscp']).toEqual(['46', '46']); // uniform: outer = inner
      expect(w['ip.checksum.status']).toEqual(['1', '1']);
      expect(w['vlan.id']).toEqual([]);
    });

    it('QinQ sub-interface -> NVGRE: GRE key = VSID << 8, tags gone, TTL decremented', () => {
      const got = N.find(CASE.qinqToNvgre);
      expect(got, 'nothing reached the NVGRE endpoint').toBeDefined();
      const { b, d } = got!;
      expect([d.key, d.outerVlan, d.innerVlan]).toEqual([VSID << 8, -1, -1]);
      expect(b[d.l3 + 8]).toBe(63);
      const rx = wire('127.0.0.1', CASE.qinqToNvgre);
      expect(rx).toHaveLength(1);
      expect([
        rx[0]!['vxlan.vni'],
        rx[0]!['ieee8021ad.id'],
        rx[0]!['vlan.id'],
        rx[0]!['ip.ttl']?.at(-1),
      ]).toEqual([['500'], ['200'], ['20'], '64']);
      const tx = wire(N.address, CASE.qinqToNvgre);
      expect(tx).toHaveLength(1);
      const w = tx[0]!;
      expect([w['gre.proto'], w['gre.key']]).toEqual([['0x6558'], ['0x00123400']]);
      expect([w['vlan.id'], w['ieee8021ad.id'], w['vxlan.vni']]).toEqual([[], [], []]);
      expect(w['ip.ttl']?.at(-1)).toBe('63');
      expect(w['ip.checksum.status']).toEqual(['1', '1']);
      // the agent resolved the host behind the NVGRE endpoint by ARP first
      expect(N.got.some((m) => decode('nvgre', m)?.etherType === ETHERTYPE_ARP)).toBe(true);
    });

    it('NVGRE -> 802.1Q sub-interface of the trunk: VNI of the trunk, VLAN 10, TTL decremented', () => {
      const got = T.find(CASE.nvgreToVlan);
      expect(got, 'nothing reached the trunk VTEP').toBeDefined();
      const { b, d } = got!;
      expect([d.vni, d.outerVlan, d.innerVlan]).toEqual([500, -1, 10]);
      expect(b[d.l3 + 8]).toBe(63);
      const rx = wire('127.0.0.1', CASE.nvgreToVlan);
      expect(rx).toHaveLength(1);
      expect(rx[0]!['gre.key']).toEqual(['0x0012345e']); // VSID 0x1234, FlowID 0x5e
      const tx = wire(T.address, CASE.nvgreToVlan);
      expect(tx).toHaveLength(1);
      const w = tx[0]!;
      expect([w['vxlan.vni'], w['vlan.id'], w['ieee8021ad.id']]).toEqual([['500'], ['10'], []]);
      expect(w['ip.ttl']?.at(-1)).toBe('63');
      expect(w['ip.checksum.status']).toEqual(['1', '1']);
    });

    it('MPLS-in-UDP IPv4 (label 0) -> plain VXLAN: VNI 600, TTL decremented', () => {
      const got = V.find(CASE.mpls4ToVxlan);
      expect(got, 'nothing reached the VXLAN VTEP').toBeDefined();
      const { b, d } = got!;
      expect([d.vni, d.outerVlan, d.innerVlan, d.etherType]).toEqual([600, -1, -1, ETHERTYPE_IPV4]);
      expect(b[d.l3 + 8]).toBe(63);
      const rx = wire('127.0.0.1', CASE.mpls4ToVxlan);
      expect(rx).toHaveLength(1);
      expect([rx[0]!['mpls.label'], rx[0]!['mpls.bottom']]).toEqual([['0'], ['1']]);
      const tx = wire(V.address, CASE.mpls4ToVxlan);
      expect(tx).toHaveLength(1);
      const w = tx[0]!;
      expect([w['vxlan.vni'], w['vlan.id'], w['mpls.label']]).toEqual([['600'], [], []]);
      expect(w['ip.ttl']?.at(-1)).toBe('63');
      expect(w['ip.checksum.status']).toEqual(['1', '1']);
    });

    it('MPLS-in-UDP IPv6 (label 2) -> plain VXLAN after neighbour discovery: hop limit decremented', () => {
      const got = V.find(CASE.mpls6ToVxlan);
      expect(got, 'nothing reached the VXLAN VTEP').toBeDefined();
      const { b, d } = got!;
      expect([d.vni, d.etherType]).toEqual([600, ETHERTYPE_IPV6]);
      expect(b[d.l3 + 7]).toBe(63);
      const rx = rows.filter(
        (x) => x['ip.dst']?.[0] === '127.0.0.1' && x['udp.dstport']?.at(-1) === String(CASE.mpls6ToVxlan),
      );
      expect(rx).toHaveLength(1);
      expect([rx[0]!['mpls.label'], rx[0]!['mpls.bottom'], rx[0]!['ipv6.hlim']]).toEqual([
        ['2'],
        ['1'],
        ['64'],
      ]);
      const tx = wire(V.address, CASE.mpls6ToVxlan);
      expect(tx).toHaveLength(1);
      const w = tx[0]!;
      expect([w['vxlan.vni'], w['ipv6.dst'], w['ipv6.hlim']]).toEqual([['600'], ['2001:db8:50::10'], ['63']]);
      expect(w['ip.checksum.status']).toEqual(['1']); // the outer header
    });

    it('counts what crossed each interface', () => {
      const fwd = agent!.dataplane!.driver.forwarder!;
      const c = (name: string): ReturnType<typeof fwd.counters.read> =>
        fwd.counters.read(fwd.byName.get(name)!.index);
      // in: the packet from its host and the ARP reply; out: the ARP request and the packet to the host
      expect(c('v10')).toMatchObject({ 'in-packets': 2, 'out-packets': 2, 'dropped-packets': 0 });
      expect(c('q20')).toMatchObject({ 'in-packets': 1, 'out-packets': 0, 'dropped-packets': 0 });
      expect(c('nv')).toMatchObject({ 'in-packets': 2, 'out-packets': 2, 'dropped-packets': 0 });
      expect(c('pe')).toMatchObject({ 'in-packets': 2, 'out-packets': 1, 'dropped-packets': 0 });
      expect(c('plain')).toMatchObject({ 'in-packets': 2, 'dropped-packets': 0 }); // ARP reply, NA
      expect(c('trunk')['dropped-packets']).toBe(0);
      expect(fwd.counters.read(0)['dropped-packets']).toBe(0);
    });
  },
);
