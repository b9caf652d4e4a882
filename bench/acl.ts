/**
 * Micro-benchmark of the per-packet ACL and QoS paths (src/dataplane/acl, src/dataplane/qos).
 * One reusable PacketInfo is refilled per packet, as the forwarder does (only the fields that
 * change: addresses, ports, flags). Best of several warm runs:
 *   hit-1         flow-table hit, the same established IPv4 TCP flow every time (hot cache)
 *   hit-100k      flow-table hit over 100,000 established IPv4 flows in random order
 *   hit6-100k     the same over 100,000 IPv6 flows
 *   new-100       new flow: 99 non-matching rules scanned, the 100th allows, flow inserted
 *   deny-100      new flow denied: 100 rules scanned, default deny, nothing inserted
 *   qos-8-last    QoS apply, 8 classes, the packet matches none (8 matches tried, default class)
 *   qos-8-police  QoS apply, the first class matches and is policed (token bucket per packet)
 * Run: npx tsx bench/acl.ts [name-substring ...]
 */
import { parsePrefix } from '../src/lib/ip.ts';
import { buildProbe } from '../src/dataplane/acl/probe.ts';
import { VERDICT, ZoneFirewall } from '../src/dataplane/acl/zones.ts';
import { QosEngine } from '../src/dataplane/qos/diffserv.ts';
import type { PacketInfo } from '../src/dataplane/packet.ts';
import type { QosPolicy, ZonePolicy, ZoneRule } from '../src/dataplane/types.ts';

const RUNS = 7;
const WEB = 0;
const APP = 1;
const FLOWS = 100_000;

function rules(n: number): ZoneRule[] {
  const out: ZoneRule[] = [];
  for (let i = 0; i < n - 1; i++) {
    out.push({
      from: 'web',
      to: 'app',
      action: i % 2 === 0 ? 'deny' : 'allow',
      match: {
        protocol: 'tcp',
        source: [parsePrefix(`172.${16 + (i % 16)}.${i}.0/24`)],
        destinationPorts: [{ from: 1000 + i, to: 1000 + i }],
      },
    });
  }
  out.push({
    from: 'web',
    to: 'app',
    action: 'allow',
    match: { protocol: 'tcp', destinationPorts: [{ from: 8080, to: 8080 }] },
  });
  return out;
}

function zonePolicy(max: number): ZonePolicy {
  return {
    zones: ['web', 'app', 'db'],
    defaultAction: 'deny',
    intraZone: 'allow',
    rules: rules(100),
    flows: { max, tcpEstablished: 3600, tcpTransitory: 30, udp: 60, icmp: 10 },
    self: { icmp: true, bgpPeers: [], bfdPeers: [], allow: [] },
  };
}

/** Shuffled order of `n` indexes (fixed LCG so every run is the same). */
function order(n: number): Uint32Array {
  const o = Uint32Array.from({ length: n }, (_, i) => i);
  let x = 12345;
  for (let i = n - 1; i > 0; i--) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const j = x % (i + 1);
    const t = o[i]!;
    o[i] = o[j]!;
    o[j] = t;
  }
  return o;
}

interface Case {
  readonly name: string;
  readonly ops: number;
  /** Prepares state (not timed), then returns the timed body. */
  readonly setup: () => () => number;
}

const SRC4 = 0x0a000000; // 10.0.0.0

function establish4(fw: ZoneFirewall, p: PacketInfo, n: number): void {
  for (let i = 0; i < n; i++) {
    p.src4 = SRC4 + (i >>> 6);
    p.sport = 1024 + (i & 63);
    p.tcpFlags = 0x02;
    if (fw.check(p, 1, WEB, APP, 0) !== VERDICT.ALLOW_NEW) throw new Error('setup: SYN not allowed');
  }
}

const cases: Case[] = [
  {
    name: 'hit-1',
    ops: 2_000_000,
    setup: () => {
      const fw = new ZoneFirewall(zonePolicy(FLOWS * 2), undefined, { hashSeed: 1 });
      const p = buildProbe({
        src: '10.0.0.1',
        dst: '10.1.0.1',
        proto: 'tcp',
        sport: 1024,
        dport: 8080,
        flags: 'S',
      });
      establish4(fw, p, 1);
      p.tcpFlags = 0x10;
      return () => {
        let ok = 0;
        for (let i = 0; i < 2_000_000; i++)
          if (fw.check(p, 1, WEB, APP, 1) === VERDICT.ALLOW_ESTABLISHED) ok++;
        return ok;
      };
    },
  },
  {
    name: 'hit-100k',
    ops: 1_000_000,
    setup: () => {
      const fw = new ZoneFirewall(zonePolicy(FLOWS * 2), undefined, { hashSeed: 1 });
      const p = buildProbe({
        src: '10.0.0.1',
        dst: '10.1.0.1',
        proto: 'tcp',
        sport: 1024,
        dport: 8080,
        flags: 'S',
      });
      establish4(fw, p, FLOWS);
      const ord = order(FLOWS);
      p.tcpFlags = 0x10;
      return () => {
        let ok = 0;
        for (let i = 0; i < 1_000_000; i++) {
          const f = ord[i % FLOWS]!;
          p.src4 = SRC4 + (f >>> 6);
          p.sport = 1024 + (f & 63);
          if (fw.check(p, 1, WEB, APP, 1) === VERDICT.ALLOW_ESTABLISHED) ok++;
        }
        return ok;
      };
    },
  },
  {
    name: 'hit6-100k',
    ops: 1_000_000,
    setup: () => {
      const fw = new ZoneFirewall(zonePolicy(FLOWS * 2), undefined, { hashSeed: 1 });
      const p = buildProbe({
        src: '2001:db8:1::',
        dst: '2001:db8:2::1',
        proto: 'tcp',
        sport: 1024,
        dport: 8080,
        flags: 'S',
      });
      const b = p.buf;
      const setFlow = (f: number): void => {
        b[p.srcOff + 14] = f >>> 14;
        b[p.srcOff + 15] = (f >>> 6) & 0xff;
        p.sport = 1024 + (f & 63);
      };
      for (let f = 0; f < FLOWS; f++) {
        setFlow(f);
        if (fw.check(p, 1, WEB, APP, 0) !== VERDICT.ALLOW_NEW) throw new Error('setup: SYN not allowed');
      }
      const ord = order(FLOWS);
      p.tcpFlags = 0x10;
      return () => {
        let ok = 0;
        for (let i = 0; i < 1_000_000; i++) {
          const f = ord[i % FLOWS]!;
          b[p.srcOff + 14] = f >>> 14;
          b[p.srcOff + 15] = (f >>> 6) & 0xff;
          p.sport = 1024 + (f & 63);
          if (fw.check(p, 1, WEB, APP, 1) === VERDICT.ALLOW_ESTABLISHED) ok++;
        }
        return ok;
      };
    },
  },
  {
    name: 'new-100',
    ops: FLOWS,
    setup: () => {
      const fw = new ZoneFirewall(zonePolicy(FLOWS * 2), undefined, { hashSeed: 1 });
      const p = buildProbe({
        src: '10.0.0.1',
        dst: '10.1.0.1',
        proto: 'tcp',
        sport: 1024,
        dport: 8080,
        flags: 'S',
      });
      return () => {
        let ok = 0;
        for (let i = 0; i < FLOWS; i++) {
          p.src4 = SRC4 + (i >>> 6);
          p.sport = 1024 + (i & 63);
          if (fw.check(p, 1, WEB, APP, 0) === VERDICT.ALLOW_NEW) ok++;
        }
        return ok;
      };
    },
  },
  {
    name: 'deny-100',
    ops: 1_000_000,
    setup: () => {
      const fw = new ZoneFirewall(zonePolicy(FLOWS * 2), undefined, { hashSeed: 1 });
      const p = buildProbe({
        src: '10.0.0.1',
        dst: '10.1.0.1',
        proto: 'tcp',
        sport: 1024,
        dport: 22,
        flags: 'S',
      });
      return () => {
        let ok = 0;
        for (let i = 0; i < 1_000_000; i++) {
          p.src4 = SRC4 + (i >>> 6);
          p.sport = 1024 + (i & 63);
          if (fw.check(p, 1, WEB, APP, 0) === VERDICT.DENY_DEFAULT) ok++;
        }
        return ok;
      };
    },
  },
  ...(['qos-8-last', 'qos-8-police'] as const).map((name): Case => ({
    name,
    ops: 2_000_000,
    setup: () => {
      const policy: QosPolicy = {
        name: 'bench',
        classes: [
          {
            name: 'voice',
            match: { dscp: [46] },
            police: { rateBitsPerSecond: 1e9, burstBytes: 1e6, exceed: 'drop' },
            mplsTc: 5,
          },
          { name: 'video', match: { dscp: [34, 36, 38] }, setDscp: 34 },
          {
            name: 'signal',
            match: { protocol: 'tcp', destinationPorts: [{ from: 5060, to: 5061 }] },
            setDscp: 24,
          },
          {
            name: 'rtp',
            match: { protocol: 'udp', destinationPorts: [{ from: 16384, to: 32767 }] },
            setDscp: 46,
          },
          { name: 'mgmt', match: { source: [parsePrefix('192.168.0.0/16')], protocol: 'tcp' }, setDscp: 16 },
          {
            name: 'web',
            match: {
              protocol: 'tcp',
              destinationPorts: [{ from: 443, to: 443 }],
              source: [parsePrefix('172.16.0.0/12')],
            },
          },
          { name: 'v6', match: { family: 6, destination: [parsePrefix('2001:db8::/32')] }, setDscp: 10 },
          {
            name: 'bulk',
            match: { dscp: [8] },
            police: { rateBitsPerSecond: 1e6, burstBytes: 10000, exceed: { remark: 0 } },
          },
        ],
      };
      const q = new QosEngine(policy);
      const p = buildProbe({
        src: '10.0.0.1',
        dst: '10.1.0.1',
        proto: 'tcp',
        sport: 1024,
        dport: 8080,
        length: 1000,
      });
      if (name === 'qos-8-police') p.dscp = 46;
      return () => {
        let sum = 0;
        for (let i = 0; i < 2_000_000; i++) sum += q.applyCode(p, i >>> 10);
        return sum;
      };
    },
  })),
];

const filters = process.argv.slice(2);
const rows: string[][] = [];
for (const c of cases) {
  if (filters.length > 0 && !filters.some((f) => c.name.includes(f))) continue;
  let best = Infinity;
  let check = 0;
  for (let r = 0; r < RUNS; r++) {
    const body = c.setup();
    const t0 = process.hrtime.bigint();
    check = body();
    const ns = Number(process.hrtime.bigint() - t0);
    best = Math.min(best, ns);
  }
  const per = best / c.ops;
  rows.push([c.name, c.ops.toLocaleString('en-US'), per.toFixed(1), (1000 / per).toFixed(2), String(check)]);
}

const head = ['case', 'ops/run', 'ns/op', 'M ops/s', 'check'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (r: readonly string[]): string =>
  r.map((x, i) => (i === 0 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join('  ');
console.log(`node ${process.version}, best of ${RUNS} runs`);
console.log(line(head));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(line(r));
