// DiffServ engine (src/dataplane/qos/diffserv.ts): classification by DSCP and by packet match,
// marking, the token-bucket policer (expected byte counts worked out by hand), remark vs drop,
// counters, MPLS TC and the DSCP name table.
import { describe, expect, it } from 'vitest';
import { parsePrefix } from '../../src/lib/ip.ts';
import { DataplanePolicyError } from '../../src/dataplane/acl/match.ts';
import { buildProbe, type ProbeDesc } from '../../src/dataplane/acl/probe.ts';
import {
  actionClass,
  actionDropped,
  actionDscp,
  actionExceeded,
  dscpName,
  packAction,
  parseDscp,
  QosEngine,
} from '../../src/dataplane/qos/diffserv.ts';
import type { QosPolicy } from '../../src/dataplane/types.ts';

const VOICE = 0;
const VIDEO = 1;
const WEB = 2;
const BULK = 3;
const DEFAULT = 4;

const POLICY: QosPolicy = {
  name: 'tenant-egress',
  classes: [
    {
      name: 'voice',
      match: { dscp: [46] },
      // 800 kbit/s = 100 bytes per ms; 1000-byte bucket; out of profile dropped.
      police: { rateBitsPerSecond: 800_000, burstBytes: 1000, exceed: 'drop' },
      mplsTc: 5,
    },
    {
      name: 'video',
      match: { protocol: 'udp', destinationPorts: [{ from: 5004, to: 5004 }] },
      setDscp: 34,
      // 80 kbit/s = 10 bytes per ms; 500-byte bucket; out of profile re-marked AF11.
      police: { rateBitsPerSecond: 80_000, burstBytes: 500, exceed: { remark: 10 } },
    },
    {
      name: 'web',
      match: {
        protocol: 'tcp',
        source: [parsePrefix('10.0.0.0/8'), parsePrefix('2001:db8::/32')],
        destinationPorts: [{ from: 443, to: 443 }],
      },
      setDscp: 18,
    },
    { name: 'bulk', match: { dscp: [8] } },
  ],
};

const voice = (length: number): ProbeDesc => ({
  src: '10.0.0.1',
  dst: '10.9.0.1',
  proto: 'udp',
  sport: 1,
  dport: 2,
  dscp: 46,
  length,
});
const video = (length: number): ProbeDesc => ({
  src: '10.0.0.1',
  dst: '10.9.0.1',
  proto: 'udp',
  sport: 1,
  dport: 5004,
  length,
});
const https = (src: string, dscp = 0): ProbeDesc => ({
  src,
  dst: src.includes(':') ? '2001:db8:9::1' : '10.9.0.1',
  proto: 'tcp',
  sport: 1,
  dport: 443,
  dscp,
});

describe('classification and marking', () => {
  it('by DSCP, by packet match, else the default class', () => {
    const q = new QosEngine(POLICY);
    expect(q.classNames).toEqual(['voice', 'video', 'web', 'bulk', 'default']);
    expect(q.defaultClass).toBe(DEFAULT);
    const cls = (d: ProbeDesc): number => actionClass(q.applyCode(buildProbe(d), 0));
    expect(cls(voice(100))).toBe(VOICE);
    expect(cls(video(100))).toBe(VIDEO);
    expect(cls({ ...video(100), dscp: 46 })).toBe(VOICE); // first match wins
    expect(cls(https('10.1.1.1'))).toBe(WEB);
    expect(cls(https('2001:db8:5::1'))).toBe(WEB);
    expect(cls(https('11.1.1.1'))).toBe(DEFAULT);
    expect(cls(https('2001:db9::1'))).toBe(DEFAULT);
    expect(cls({ ...https('11.1.1.1'), dscp: 8 })).toBe(BULK);
    expect(cls({ src: '10.0.0.1', dst: '10.0.0.2', proto: 'icmp', icmpType: 8 })).toBe(DEFAULT);
  });

  it('sets the class DSCP, reports -1 when it is unchanged, never writes the packet', () => {
    const q = new QosEngine(POLICY);
    const p = buildProbe(https('10.1.1.1', 0));
    const before = p.buf.slice();
    const r = q.apply(p, 0);
    expect(r).toEqual({ classIndex: WEB, drop: false, exceeded: false, dscp: 18 });
    expect(p.buf).toEqual(before);
    expect(q.apply(buildProbe(https('10.1.1.1', 18)), 0).dscp).toBe(-1);
    expect(actionDscp(q.applyCode(buildProbe({ ...https('11.1.1.1'), dscp: 8 }), 0))).toBe(-1); // bulk: no marking
    expect(actionDscp(q.applyCode(buildProbe(voice(100)), 0))).toBe(-1); // voice: policed, not marked
  });

  it('packs and unpacks action codes', () => {
    for (const [c, drop, dscp, ex] of [
      [0, false, -1, false],
      [65534, true, 63, true],
      [3, false, 0, true],
      [7, true, -1, false],
    ] as const) {
      const a = packAction(c, drop, dscp, ex);
      expect(a).toBeGreaterThanOrEqual(0);
      expect([actionClass(a), actionDropped(a), actionDscp(a), actionExceeded(a)]).toEqual([
        c,
        drop,
        dscp,
        ex,
      ]);
    }
  });
});

describe('policer (virtual clock)', () => {
  it('drop: 200-byte packets every ms for 100 ms at 100 B/ms, bucket 1000 -> 10800 bytes pass', () => {
    // Bucket after the packet at t=k: 800 - 100k for k = 0..8 (t=8 leaves 0). From then on it
    // gains 100 per ms and a packet needs 200: t=9 dropped (100), t=10 passes (0), ... so
    // t = 0..8 (9 packets) and t = 10, 12, ..., 98 (45 packets) pass: 54 x 200 = 10800 bytes,
    // 46 dropped. Bound: burst + rate x 99 ms = 10900 >= 10800.
    const q = new QosEngine(POLICY);
    let passed = 0;
    for (let t = 0; t < 100; t++) {
      const a = q.applyCode(buildProbe(voice(200)), t);
      if (!actionDropped(a)) passed += 200;
      else expect(actionExceeded(a)).toBe(true);
    }
    expect(passed).toBe(10800);
    expect(q.counters()[VOICE]).toEqual({
      class: 'voice',
      packets: 100,
      bytes: 20000,
      dropped: 46,
      remarked: 0,
    });
  });

  it('the bucket never holds more than the burst, however long the idle time', () => {
    const q = new QosEngine(POLICY);
    const p = buildProbe(voice(100));
    expect(actionDropped(q.applyCode(p, 0))).toBe(false);
    let passed = 0;
    for (let i = 0; i < 20; i++) if (!actionDropped(q.applyCode(p, 3_600_000))) passed++;
    expect(passed).toBe(10); // 1000-byte bucket, 100-byte packets, all at the same instant
    expect(actionDropped(q.applyCode(p, 3_600_000))).toBe(true);
    expect(actionDropped(q.applyCode(p, 3_600_001))).toBe(false); // 1 ms = 100 bytes
    expect(actionDropped(q.applyCode(p, 3_599_000))).toBe(true); // the clock went back: no tokens
    expect(actionDropped(q.applyCode(p, 3_600_002))).toBe(false);
  });

  it('a packet larger than the burst never conforms', () => {
    const q = new QosEngine(POLICY);
    expect(actionDropped(q.applyCode(buildProbe(voice(1001)), 0))).toBe(true);
    expect(actionDropped(q.applyCode(buildProbe(voice(1000)), 0))).toBe(false);
  });

  it('remark: out-of-profile packets get the exceed DSCP, conforming ones the class DSCP', () => {
    // 10 B/ms, bucket 500, 100-byte packets each ms: after t=0..4 the bucket is 400, 310, 220,
    // 130, 40; t=5..9 find 50..90 (< 100): re-marked; t=10 finds 100 and conforms.
    const q = new QosEngine(POLICY);
    const got: number[] = [];
    for (let t = 0; t <= 10; t++) {
      const r = q.apply(buildProbe(video(100)), t);
      expect(r.drop).toBe(false);
      expect(r.exceeded).toBe(t >= 5 && t <= 9);
      got.push(r.dscp);
    }
    expect(got).toEqual([34, 34, 34, 34, 34, 10, 10, 10, 10, 10, 34]);
    expect(q.counters()[VIDEO]).toEqual({
      class: 'video',
      packets: 11,
      bytes: 1100,
      dropped: 0,
      remarked: 5,
    });
  });

  it('classes have separate buckets', () => {
    const q = new QosEngine(POLICY);
    for (let i = 0; i < 10; i++) q.applyCode(buildProbe(voice(100)), 0);
    expect(actionDropped(q.applyCode(buildProbe(voice(100)), 0))).toBe(true);
    expect(q.apply(buildProbe(video(100)), 0).exceeded).toBe(false);
  });
});

describe('counters and MPLS TC', () => {
  it('counts packets and bytes per class, the default class included', () => {
    const q = new QosEngine(POLICY);
    q.applyCode(buildProbe({ ...https('11.1.1.1'), length: 1500 }), 0);
    q.applyCode(buildProbe({ ...https('11.1.1.1'), length: 40 }), 0);
    q.applyCode(buildProbe({ ...https('10.1.1.1'), length: 576 }), 0);
    const c = q.counters();
    expect(c.map((x) => x.class)).toEqual(['voice', 'video', 'web', 'bulk', 'default']);
    expect(c[WEB]).toEqual({ class: 'web', packets: 1, bytes: 576, dropped: 0, remarked: 0 });
    expect(c[DEFAULT]).toEqual({ class: 'default', packets: 2, bytes: 1540, dropped: 0, remarked: 0 });
    expect(c[VOICE]!.packets).toBe(0);
  });

  it('MPLS TC: the class value, else DSCP >> 3', () => {
    const q = new QosEngine(POLICY);
    expect(q.mplsTc(VOICE, 46)).toBe(5);
    expect(q.mplsTc(WEB, 18)).toBe(2);
    expect(q.mplsTc(DEFAULT, 46)).toBe(5);
    expect(q.mplsTc(DEFAULT, 0)).toBe(0);
    q.applyCode(buildProbe(voice(100)), 0);
    expect(q.lastMplsTc()).toBe(5);
    q.applyCode(buildProbe(https('10.1.1.1')), 0);
    expect(q.lastMplsTc()).toBeUndefined();
  });
});

describe('DSCP names', () => {
  it('names EF, AF and CS code points, numbers the rest', () => {
    expect(dscpName(46)).toBe('EF');
    expect(dscpName(34)).toBe('AF41');
    expect(dscpName(10)).toBe('AF11');
    expect(dscpName(38)).toBe('AF43');
    expect(dscpName(0)).toBe('CS0');
    expect(dscpName(56)).toBe('CS7');
    expect(dscpName(5)).toBe('5');
  });

  it('parses names in any case and decimal values', () => {
    expect(parseDscp('af41')).toBe(34);
    expect(parseDscp('ef')).toBe(46);
    expect(parseDscp('EF')).toBe(46);
    expect(parseDscp('34')).toBe(34);
    expect(parseDscp(' cs3 ')).toBe(24);
    expect(parseDscp('be')).toBe(0);
    expect(parseDscp('0')).toBe(0);
    expect(parseDscp('63')).toBe(63);
    for (const bad of ['64', 'af44', 'cs8', '', '-1', '3.5', 'x']) expect(parseDscp(bad)).toBeUndefined();
    for (let d = 0; d < 64; d++) expect(parseDscp(dscpName(d))).toBe(d);
  });
});

describe('policy errors', () => {
  it('rejects a class named default, duplicates and bad policers as DataplanePolicyError', () => {
    const one = (c: QosPolicy['classes'][number]): QosPolicy => ({ name: 'p', classes: [c] });
    expect(() => new QosEngine(one({ name: 'default', match: {} }))).toThrow(DataplanePolicyError);
    expect(
      () =>
        new QosEngine({
          name: 'p',
          classes: [
            { name: 'a', match: {} },
            { name: 'a', match: {} },
          ],
        }),
    ).toThrow(DataplanePolicyError);
    expect(
      () =>
        new QosEngine(
          one({ name: 'a', match: {}, police: { rateBitsPerSecond: 0, burstBytes: 1, exceed: 'drop' } }),
        ),
    ).toThrow('qos[p].classes[0].police.rateBitsPerSecond');
    expect(() => new QosEngine(one({ name: 'a', match: {}, setDscp: 64 }))).toThrow(DataplanePolicyError);
    expect(() => new QosEngine(one({ name: 'a', match: {}, mplsTc: 8 }))).toThrow(DataplanePolicyError);
  });
});
