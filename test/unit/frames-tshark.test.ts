/**
 * Independent oracle for the frame writers: build one frame of every kind, write them to a pcap
 * file with PcapWriter, and let Wireshark's dissectors (tshark) read them back: VLAN IDs, VNI,
 * NVGRE key, MPLS label fields, DSCP, ND fields, and every checksum status "good" (IPv4 header
 * checksums after incremental TTL / DSCP rewrites included).
 *
 * Skipped only when tshark is absent and CI is unset; in CI a missing tshark fails the test.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseIPv6 } from '../../src/lib/ip.ts';
import { finish, sum16 } from '../../src/dataplane/frames/checksum.ts';
import {
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  ETHERTYPE_VLAN,
  parseMac,
  writeEthernet,
} from '../../src/dataplane/frames/ethernet.ts';
import { ArpOp, writeArp } from '../../src/dataplane/frames/arp.ts';
import {
  decrementTtl,
  setDscp,
  writeIPv4Header,
  type Ipv4HeaderFields,
} from '../../src/dataplane/frames/ipv4.ts';
import { writeIPv6Header } from '../../src/dataplane/frames/ipv6.ts';
import {
  IcmpType,
  TimeExceededCode,
  UnreachCode,
  echoReplyInPlace,
  fragNeededRest,
  writeIcmpError,
} from '../../src/dataplane/frames/icmp4.ts';
import {
  Icmp6Type,
  echoReplyInPlace6,
  setIcmp6Checksum,
  writeIcmp6Error,
} from '../../src/dataplane/frames/icmp6.ts';
import {
  ALL_NODES,
  NA_FLAG_OVERRIDE,
  NA_FLAG_SOLICITED,
  linkLocalFromMac,
  multicastMac,
  solicitedNodeAddress,
  writeNa,
  writeNs,
  writeRa,
} from '../../src/dataplane/frames/nd.ts';
import { setUdpChecksum4, writeUdpHeader } from '../../src/dataplane/frames/l4.ts';
import { VXLAN_PORT, writeVxlan } from '../../src/dataplane/frames/vxlan.ts';
import { GRE_IN_UDP_PORT, writeNvgre } from '../../src/dataplane/frames/gre.ts';
import { IPV4_EXPLICIT_NULL, MPLS_IN_UDP_PORT, writeLabel } from '../../src/dataplane/frames/mpls.ts';
import { PcapWriter } from '../../src/dataplane/frames/pcap.ts';

const hasTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).error === undefined;
const run = hasTshark || process.env.CI !== undefined;

const MAC1 = parseMac('02:00:00:00:00:01');
const MAC2 = parseMac('02:00:00:00:00:02');
const BCAST = parseMac('ff:ff:ff:ff:ff:ff');
const A1 = parseIPv6('2001:db8::1');
const A2 = parseIPv6('2001:db8::2');
const LL1 = linkLocalFromMac(MAC1);
const IP1 = 0x0a000001; // 10.0.0.1
const IP2 = 0x0a000002;
const VTEP1 = 0xc0000201; // 192.0.2.1
const VTEP2 = 0xc0000202;

const V4: Ipv4HeaderFields = { src: IP1, dst: IP2, proto: 1, ttl: 64, dscp: 0, id: 1, payloadLength: 0 };

/** IPv4 + ICMP echo request (id 0x1234, seq 1, "abcd") at `off`; returns the end. */
function icmpEcho4(b: Uint8Array, off: number, src = IP1, dst = IP2): number {
  const p = writeIPv4Header(b, off, { ...V4, src, dst, payloadLength: 12 });
  b.set([8, 0, 0, 0, 0x12, 0x34, 0, 1, 0x61, 0x62, 0x63, 0x64], p);
  const ck = finish(sum16(b, p, 12));
  b[p + 2] = ck >>> 8;
  b[p + 3] = ck & 0xff;
  return p + 12;
}

/** IPv4 + UDP (checksummed) carrying `payload` bytes of pattern; returns the end. */
function udp4(b: Uint8Array, off: number, sport: number, dport: number, payload: number, dscp = 0): number {
  const p = writeIPv4Header(b, off, { ...V4, proto: 17, dscp, payloadLength: 8 + payload });
  writeUdpHeader(b, p, sport, dport, 8 + payload);
  for (let i = 0; i < payload; i++) b[p + 8 + i] = i;
  setUdpChecksum4(b, off, p);
  return p + 8 + payload;
}

/** IPv6 + ICMPv6 echo request; returns the end. */
function icmpEcho6(b: Uint8Array, off: number): number {
  const p = writeIPv6Header(b, off, { src: A1, dst: A2, nextHeader: 58, hopLimit: 64, payloadLength: 12 });
  b.set([128, 0, 0, 0, 0x12, 0x34, 0, 1, 0x61, 0x62, 0x63, 0x64], p);
  setIcmp6Checksum(b, off, p, 12);
  return p + 12;
}

/** Outer Ethernet/IPv4/UDP around whatever `inner` writes at the given offset. */
function outerUdp(b: Uint8Array, dport: number, inner: (b: Uint8Array, off: number) => number): number {
  const ip = writeEthernet(b, 0, MAC2, MAC1, ETHERTYPE_IPV4);
  const udp = ip + 20;
  const end = inner(b, udp + 8);
  writeIPv4Header(b, ip, {
    src: VTEP1,
    dst: VTEP2,
    proto: 17,
    ttl: 64,
    dscp: 0,
    id: 7,
    payloadLength: end - udp,
  });
  writeUdpHeader(b, udp, 49152 + dport, dport, end - udp);
  setUdpChecksum4(b, ip, udp);
  return end;
}

interface Built {
  name: string;
  bytes: Uint8Array;
}

function buildFrames(): Built[] {
  const frames: Built[] = [];
  const add = (name: string, f: (b: Uint8Array) => number): void => {
    const b = new Uint8Array(2048);
    const end = f(b);
    frames.push({ name, bytes: b.slice(0, end) });
  };

  // 1. Ethernet / IPv4 / ICMP echo, then forwarded: TTL decremented, DSCP set (incremental checksums)
  add('echo', (b) => {
    const end = icmpEcho4(b, writeEthernet(b, 0, MAC2, MAC1, ETHERTYPE_IPV4));
    decrementTtl(b, 14);
    setDscp(b, 14, 46);
    return end;
  });
  // 2. the echo reply built in place
  add('echo-reply', (b) => {
    const end = icmpEcho4(b, writeEthernet(b, 0, MAC1, MAC2, ETHERTYPE_IPV4));
    return echoReplyInPlace(b, 14, end);
  });
  // 3. Ethernet / 802.1Q / IPv4 / UDP
  add('dot1q', (b) =>
    udp4(b, writeEthernet(b, 0, MAC2, MAC1, ETHERTYPE_IPV4, -1, 100, undefined, 5), 1234, 5678, 21, 10),
  );
  // 4. QinQ: S-tag 10 (0x88a8), C-tag 200
  add('qinq', (b) =>
    udp4(b, writeEthernet(b, 0, MAC2, MAC1, ETHERTYPE_IPV4, 10, 200, 0x88a8, 3), 1234, 5678, 20),
  );
  // 5. ARP request
  add('arp', (b) =>
    writeArp(b, writeEthernet(b, 0, BCAST, MAC1, ETHERTYPE_ARP), ArpOp.REQUEST, MAC1, IP1, undefined, IP2),
  );
  // 6. IPv6 NS to the solicited-node address
  add('ns', (b) => {
    const dstMac = multicastMac(solicitedNodeAddress(A2, new Uint8Array(16)), new Uint8Array(6));
    return writeNs(b, writeEthernet(b, 0, dstMac, MAC1, ETHERTYPE_IPV6), A1, A2, MAC1);
  });
  // 7. NA
  add('na', (b) =>
    writeNa(
      b,
      writeEthernet(b, 0, MAC1, MAC2, ETHERTYPE_IPV6),
      A2,
      A1,
      A2,
      NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE,
      MAC2,
    ),
  );
  // 8. RA
  add('ra', (b) =>
    writeRa(
      b,
      writeEthernet(b, 0, multicastMac(ALL_NODES, new Uint8Array(6)), MAC1, ETHERTYPE_IPV6),
      LL1,
      ALL_NODES,
      {
        curHopLimit: 64,
        managed: false,
        other: true,
        routerLifetime: 1800,
        reachableTime: 0,
        retransTimer: 0,
        sourceMac: MAC1,
        mtu: 1450,
        prefixes: [
          {
            prefix: parseIPv6('2001:db8:1::'),
            prefixLength: 64,
            onLink: true,
            autonomous: true,
            validLifetime: 2592000,
            preferredLifetime: 604800,
          },
        ],
      },
    ),
  );
  // 9. ICMP time exceeded quoting a UDP packet
  add('time-exceeded', (b) => {
    const orig = new Uint8Array(200);
    const oend = udp4(orig, 0, 1234, 33434, 32);
    return writeIcmpError(
      b,
      writeEthernet(b, 0, MAC2, MAC1, ETHERTYPE_IPV4),
      IcmpType.TIME_EXCEEDED,
      TimeExceededCode.TTL,
      0x0a0000fe,
      IP1,
      orig,
      0,
      oend,
    );
  });
  // 10. ICMP fragmentation needed with the next-hop MTU, quoting a big packet (576-byte cap)
  add('frag-needed', (b) => {
    const orig = new Uint8Array(1600);
    const oend = udp4(orig, 0, 1234, 5678, 1400);
    return writeIcmpError(
      b,
      writeEthernet(b, 0, MAC2, MAC1, ETHERTYPE_IPV4),
      IcmpType.DEST_UNREACHABLE,
      UnreachCode.FRAG_NEEDED,
      0x0a0000fe,
      IP1,
      orig,
      0,
      oend,
      64,
      fragNeededRest(1400),
    );
  });
  // 11. VXLAN (VNI 5000) in UDP in IPv4: inner Ethernet / IPv4 / ICMP echo
  add('vxlan', (b) =>
    outerUdp(b, VXLAN_PORT, (x, o) =>
      icmpEcho4(x, writeEthernet(x, writeVxlan(x, o, 5000), MAC2, MAC1, ETHERTYPE_IPV4)),
    ),
  );
  // 12. NVGRE (VSID 0x1234, FlowID 7) in GRE-in-UDP: inner Ethernet / 802.1Q / IPv6 / ICMPv6 echo
  add('nvgre', (b) =>
    outerUdp(b, GRE_IN_UDP_PORT, (x, o) =>
      icmpEcho6(
        x,
        writeEthernet(x, writeNvgre(x, o, 0x1234, 7), MAC2, MAC1, ETHERTYPE_IPV6, -1, 300, ETHERTYPE_VLAN),
      ),
    ),
  );
  // 13. MPLS-in-UDP, IPv4 explicit null, TC 5: inner IPv4 / UDP
  add('mpls', (b) =>
    outerUdp(b, MPLS_IN_UDP_PORT, (x, o) =>
      udp4(x, writeLabel(x, o, IPV4_EXPLICIT_NULL, 5, true, 63), 40000, 40001, 10),
    ),
  );
  // 14. ICMPv6 echo reply built in place
  add('echo6-reply', (b) => {
    const end = icmpEcho6(b, writeEthernet(b, 0, MAC1, MAC2, ETHERTYPE_IPV6));
    return echoReplyInPlace6(b, 14, end);
  });
  // 15. ICMPv6 packet too big quoting the echo request
  add('ptb', (b) => {
    const orig = new Uint8Array(100);
    const oend = icmpEcho6(orig, 0);
    return writeIcmp6Error(
      b,
      writeEthernet(b, 0, MAC1, MAC2, ETHERTYPE_IPV6),
      Icmp6Type.PACKET_TOO_BIG,
      0,
      parseIPv6('2001:db8::fe'),
      A1,
      orig,
      0,
      oend,
      64,
      1280,
    );
  });
  return frames;
}

const FIELDS = [
  'frame.protocols',
  '_ws.malformed',
  'vlan.id',
  'vlan.priority',
  'ieee8021ad.id',
  'ip.src',
  'ip.dst',
  'ip.ttl',
  'ip.dsfield.dscp',
  'ip.len',
  'ip.checksum.status',
  'icmp.type',
  'icmp.code',
  'icmp.mtu',
  'icmp.checksum.status',
  'udp.dstport',
  'udp.checksum.status',
  'arp.opcode',
  'arp.src.hw_mac',
  'arp.src.proto_ipv4',
  'arp.dst.proto_ipv4',
  'ipv6.dst',
  'ipv6.hlim',
  'icmpv6.type',
  'icmpv6.checksum.status',
  'icmpv6.nd.ns.target_address',
  'icmpv6.nd.na.target_address',
  'icmpv6.nd.na.flag.s',
  'icmpv6.nd.na.flag.o',
  'icmpv6.opt.linkaddr',
  'icmpv6.opt.mtu',
  'icmpv6.opt.prefix',
  'icmpv6.opt.prefix.flag.l',
  'icmpv6.opt.prefix.flag.a',
  'icmpv6.nd.ra.router_lifetime',
  'icmpv6.nd.ra.flag.o',
  'icmpv6.mtu',
  'vxlan.vni',
  'gre.proto',
  'gre.key',
  'mpls.label',
  'mpls.exp',
  'mpls.bottom',
  'mpls.ttl',
] as const;
type Field = (typeof FIELDS)[number];

const GOOD = '1'; // Wireshark PROTO_CHECKSUM_E_GOOD

describe.skipIf(!run)('tshark dissects what the writers build', () => {
  const dir = mkdtempSync(join(tmpdir(), 'frames-tshark-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const frames = buildFrames();
  const file = join(dir, 'frames.pcap');
  const w = new PcapWriter(openSync(file, 'w'));
  frames.forEach((f, i) => w.write(f.bytes, 0, f.bytes.length, 1_700_000_000_000 + i));
  const closed = w.close();

  let rows: Map<string, Record<Field, string>> | undefined;
  const dissect = async (): Promise<Map<string, Record<Field, string>>> => {
    if (rows !== undefined) return rows;
    await closed;
    const args = ['-r', file, '-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE'];
    args.push('-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=,', '-E', 'separator=\t');
    for (const f of FIELDS) args.push('-e', f);
    const r = spawnSync('tshark', args, { encoding: 'utf8' });
    if (r.error !== undefined) throw r.error;
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l.length > 0);
    expect(lines.length).toBe(frames.length);
    rows = new Map();
    lines.forEach((line, i) => {
      const cols = line.split('\t');
      const rec = {} as Record<Field, string>;
      FIELDS.forEach((f, j) => (rec[f] = cols[j] ?? ''));
      rows!.set(frames[i]!.name, rec);
    });
    return rows;
  };
  const get = async (name: string): Promise<Record<Field, string>> => {
    const r = (await dissect()).get(name);
    if (r === undefined) throw new Error(`no frame ${name}`);
    return r;
  };

  it('no frame is malformed', async () => {
    for (const [name, r] of await dissect()) {
      expect(r['_ws.malformed'], name).toBe('');
      expect(r['frame.protocols'], name).not.toMatch(/malformed/);
    }
  });

  it('ICMP echo after incremental TTL and DSCP rewrites: checksums good', async () => {
    const r = await get('echo');
    expect([r['ip.ttl'], r['ip.dsfield.dscp'], r['ip.checksum.status']]).toEqual(['63', '46', GOOD]);
    expect([r['icmp.type'], r['icmp.checksum.status']]).toEqual(['8', GOOD]);
    const p = await get('echo-reply');
    expect([
      p['ip.src'],
      p['ip.dst'],
      p['icmp.type'],
      p['ip.checksum.status'],
      p['icmp.checksum.status'],
    ]).toEqual(['10.0.0.2', '10.0.0.1', '0', GOOD, GOOD]);
  });

  it('802.1Q and QinQ tags', async () => {
    const q = await get('dot1q');
    expect([
      q['vlan.id'],
      q['vlan.priority'],
      q['ip.dsfield.dscp'],
      q['ip.checksum.status'],
      q['udp.checksum.status'],
    ]).toEqual(['100', '5', '10', GOOD, GOOD]);
    const qq = await get('qinq');
    expect([qq['ieee8021ad.id'], qq['vlan.id'], qq['udp.checksum.status']]).toEqual(['10', '200', GOOD]);
  });

  it('ARP request', async () => {
    const a = await get('arp');
    expect([a['arp.opcode'], a['arp.src.hw_mac'], a['arp.src.proto_ipv4'], a['arp.dst.proto_ipv4']]).toEqual([
      '1',
      '02:00:00:00:00:01',
      '10.0.0.1',
      '10.0.0.2',
    ]);
  });

  it('Neighbor Discovery NS / NA / RA', async () => {
    const ns = await get('ns');
    expect([ns['ipv6.dst'], ns['ipv6.hlim'], ns['icmpv6.type'], ns['icmpv6.checksum.status']]).toEqual([
      'ff02::1:ff00:2',
      '255',
      '135',
      GOOD,
    ]);
    expect([ns['icmpv6.nd.ns.target_address'], ns['icmpv6.opt.linkaddr']]).toEqual([
      '2001:db8::2',
      '02:00:00:00:00:01',
    ]);
    const na = await get('na');
    expect([na['icmpv6.type'], na['icmpv6.checksum.status'], na['icmpv6.nd.na.target_address']]).toEqual([
      '136',
      GOOD,
      '2001:db8::2',
    ]);
    expect([na['icmpv6.nd.na.flag.s'], na['icmpv6.nd.na.flag.o'], na['icmpv6.opt.linkaddr']]).toEqual([
      '1',
      '1',
      '02:00:00:00:00:02',
    ]);
    const ra = await get('ra');
    expect([
      ra['icmpv6.type'],
      ra['icmpv6.checksum.status'],
      ra['icmpv6.nd.ra.router_lifetime'],
      ra['icmpv6.nd.ra.flag.o'],
    ]).toEqual(['134', GOOD, '1800', '1']);
    expect([
      ra['icmpv6.opt.mtu'],
      ra['icmpv6.opt.prefix'],
      ra['icmpv6.opt.prefix.flag.l'],
      ra['icmpv6.opt.prefix.flag.a'],
    ]).toEqual(['1450', '2001:db8:1::', '1', '1']);
    expect(ra['icmpv6.opt.linkaddr']).toBe('02:00:00:00:00:01');
  });

  it('ICMP errors: time exceeded, fragmentation needed with MTU and the 576-byte cap', async () => {
    const te = await get('time-exceeded');
    // outer then quoted header: both IPv4 header checksums good, CS6 on the error
    expect([te['icmp.type'], te['icmp.code'], te['icmp.checksum.status']]).toEqual(['11', '0', GOOD]);
    expect(te['ip.checksum.status']).toBe(`${GOOD},${GOOD}`);
    expect(te['ip.dsfield.dscp'].split(',')[0]).toBe('48');
    const fn = await get('frag-needed');
    expect([fn['icmp.type'], fn['icmp.code'], fn['icmp.mtu'], fn['icmp.checksum.status']]).toEqual([
      '3',
      '4',
      '1400',
      GOOD,
    ]);
    expect(fn['ip.len'].split(',')[0]).toBe('576');
  });

  it('VXLAN in UDP in IPv4', async () => {
    const v = await get('vxlan');
    expect([v['udp.dstport'], v['vxlan.vni']]).toEqual(['4789', '5000']);
    expect(v['ip.checksum.status']).toBe(`${GOOD},${GOOD}`);
    expect([v['udp.checksum.status'], v['icmp.checksum.status']]).toEqual([GOOD, GOOD]);
    expect(v['frame.protocols']).toBe('eth:ethertype:ip:udp:vxlan:eth:ethertype:ip:icmp:data');
  });

  it('NVGRE in GRE-in-UDP (RFC 8086 port 4754)', async () => {
    const g = await get('nvgre');
    expect([g['udp.dstport'], g['gre.proto'], g['gre.key']]).toEqual(['4754', '0x6558', '0x00123407']); // VSID 0x1234 << 8 | FlowID 7
    expect(g['frame.protocols']).toBe(
      'eth:ethertype:ip:udp:gre:eth:ethertype:vlan:ethertype:ipv6:icmpv6:data',
    );
    expect([g['vlan.id'], g['icmpv6.type'], g['icmpv6.checksum.status'], g['udp.checksum.status']]).toEqual([
      '300',
      '128',
      GOOD,
      GOOD,
    ]);
  });

  it('MPLS-in-UDP with IPv4 explicit null', async () => {
    const m = await get('mpls');
    expect([
      m['udp.dstport'].split(',')[0],
      m['mpls.label'],
      m['mpls.exp'],
      m['mpls.bottom'],
      m['mpls.ttl'],
    ]).toEqual(['6635', '0', '5', '1', '63']);
    expect(m['ip.checksum.status']).toBe(`${GOOD},${GOOD}`);
    expect(m['udp.checksum.status']).toBe(`${GOOD},${GOOD}`);
    expect(m['frame.protocols']).toBe('eth:ethertype:ip:udp:mpls:ip:udp:data');
  });

  it('ICMPv6 echo reply and packet too big', async () => {
    const e = await get('echo6-reply');
    expect([e['icmpv6.type'], e['icmpv6.checksum.status'], e['ipv6.dst']]).toEqual([
      '129',
      GOOD,
      '2001:db8::1',
    ]);
    const p = await get('ptb');
    expect([
      p['icmpv6.type'].split(',')[0],
      p['icmpv6.mtu'],
      p['icmpv6.checksum.status'].split(',')[0],
    ]).toEqual(['2', '1280', GOOD]);
  });
});
