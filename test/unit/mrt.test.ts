/**
 * MRT TABLE_DUMP_V2 writer (src/bgp/mrt.ts): exact bytes of a small dump (annotated hex), the
 * RFC 8050 ADD-PATH variant, input checks, a structural decode of a larger dump, and an interop
 * check that `bgpdump -m` reads back every route as written (RFC 6396 §4.3).
 *
 * The path attributes are built by a tiny encoder kept in this file (ORIGIN, AS_PATH with 4-octet
 * ASNs, NEXT_HOP, MED, LOCAL_PREF, COMMUNITIES): the real attribute codec lives elsewhere.
 *
 * bgpdump missing: the interop test fails when CI=true and is skipped otherwise.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hex, Reader, toHex, Writer } from '../../src/lib/bytes.ts';
import {
  formatAddress,
  formatPrefix,
  ipv4ToNumber,
  parseAddress,
  parseIPv4,
  parsePrefix,
  type Prefix,
} from '../../src/lib/ip.ts';
import {
  encodeMrtTableDump,
  MRT_HEADER_LENGTH,
  MrtType,
  mrtIpv6NextHopAttribute,
  TableDumpV2Subtype,
  writeMrtFile,
  type MrtDumpInput,
} from '../../src/bgp/mrt.ts';

// ---------------------------------------------------------------- minimal attribute encoder
interface TestAttrs {
  origin: 0 | 1 | 2;
  asPath: number[];
  /** IPv4 NEXT_HOP, or the IPv6 next hop written as the RFC 6396 abbreviated MP_REACH_NLRI. */
  nextHop: Uint8Array;
  med?: number;
  localPref?: number;
  communities?: number[];
}

function attr(flags: number, type: number, value: Uint8Array): Uint8Array {
  const ext = value.length > 255;
  const w = new Writer((ext ? 4 : 3) + value.length);
  w.u8(flags | (ext ? 0x10 : 0)).u8(type);
  if (ext) w.u16(value.length);
  else w.u8(value.length);
  return w.bytes(value).finish();
}

function u32s(values: number[]): Uint8Array {
  const w = new Writer(values.length * 4);
  for (const v of values) w.u32(v);
  return w.finish();
}

function encodeTestAttributes(a: TestAttrs): Uint8Array {
  const parts: Uint8Array[] = [attr(0x40, 1, Uint8Array.of(a.origin))];
  const seg = new Writer(2 + a.asPath.length * 4);
  seg.u8(2).u8(a.asPath.length).bytes(u32s(a.asPath)); // AS_SEQUENCE, 4-octet ASNs
  parts.push(attr(0x40, 2, a.asPath.length === 0 ? new Uint8Array(0) : seg.finish()));
  if (a.nextHop.length === 4) parts.push(attr(0x40, 3, a.nextHop));
  else parts.push(mrtIpv6NextHopAttribute(a.nextHop));
  if (a.med !== undefined) parts.push(attr(0x80, 4, u32s([a.med])));
  if (a.localPref !== undefined) parts.push(attr(0x40, 5, u32s([a.localPref])));
  if (a.communities !== undefined && a.communities.length > 0) parts.push(attr(0xc0, 8, u32s(a.communities)));
  const w = new Writer(parts.reduce((n, p) => n + p.length, 0));
  for (const p of parts) w.bytes(p);
  return w.finish();
}

// ---------------------------------------------------------------- a small decoder for the tests
interface DecodedRecord {
  timestamp: number;
  type: number;
  subtype: number;
  body: Uint8Array;
}

function splitRecords(buf: Uint8Array): DecodedRecord[] {
  const r = new Reader(buf);
  const out: DecodedRecord[] = [];
  while (r.remaining > 0) {
    const timestamp = r.u32();
    const type = r.u16();
    const subtype = r.u16();
    const body = r.bytes(r.u32());
    out.push({ timestamp, type, subtype, body });
  }
  return out;
}

function concat(records: Uint8Array[]): Uint8Array {
  const w = new Writer(records.reduce((n, r) => n + r.length, 0));
  for (const r of records) w.bytes(r);
  return w.finish();
}

const TS = 1700000100; // 0x6553f164
const ORIG = 1700000000; // 0x6553f100

function smallInput(): MrtDumpInput {
  return {
    collectorBgpId: ipv4ToNumber(parseIPv4('10.0.0.1')),
    viewName: 'v',
    timestamp: TS,
    peers: [
      { bgpId: ipv4ToNumber(parseIPv4('192.0.2.1')), address: parseIPv4('192.0.2.1'), asn: 65001 },
      { bgpId: ipv4ToNumber(parseIPv4('10.0.0.2')), address: parseAddress('2001:db8::2'), asn: 4200000000 },
    ],
    entries: [
      {
        prefix: parsePrefix('10.1.0.0/16'),
        paths: [
          {
            peerIndex: 0,
            originatedTime: ORIG,
            attributes: encodeTestAttributes({ origin: 0, asPath: [65001], nextHop: parseIPv4('192.0.2.1') }),
          },
        ],
      },
      {
        prefix: parsePrefix('2001:db8:1::/48'),
        paths: [
          {
            peerIndex: 1,
            originatedTime: ORIG,
            attributes: encodeTestAttributes({
              origin: 0,
              asPath: [4200000000],
              nextHop: parseAddress('2001:db8::2'),
            }),
          },
        ],
      },
    ],
  };
}

describe('MRT TABLE_DUMP_V2 encoder', () => {
  it('encodes a small dump to exact bytes', () => {
    const records = encodeMrtTableDump(smallInput());
    expect(records.length).toBe(3);
    expect(toHex(records[0]!)).toBe(
      toHex(hex`
        6553f164 000d 0001 0000002d  # header: ts, TABLE_DUMP_V2, PEER_INDEX_TABLE, length 45
        0a000001                     # collector BGP ID 10.0.0.1
        0001 76                      # view name length 1, "v"
        0002                         # peer count
        00 c0000201 c0000201 fde9    # peer 0: type (IPv4, AS2), BGP ID, 192.0.2.1, AS 65001
        03 0a000002                  # peer 1: type (IPv6 | AS4), BGP ID 10.0.0.2
        20010db8000000000000000000000002  # 2001:db8::2
        fa56ea00                     # AS 4200000000
      `),
    );
    expect(toHex(records[1]!)).toBe(
      toHex(hex`
        6553f164 000d 0002 00000025  # header: RIB_IPV4_UNICAST, length 37
        00000000                     # sequence 0
        10 0a01                      # 10.1.0.0/16
        0001                         # entry count
        0000 6553f100 0014           # peer index 0, originated time, attribute length 20
        40 01 01 00                  # ORIGIN IGP
        40 02 06 02 01 0000fde9      # AS_PATH: AS_SEQUENCE [65001] (4-octet)
        40 03 04 c0000201            # NEXT_HOP 192.0.2.1
      `),
    );
    expect(toHex(records[2]!)).toBe(
      toHex(hex`
        6553f164 000d 0004 00000036  # header: RIB_IPV6_UNICAST, length 54
        00000001                     # sequence 1
        30 20010db80001              # 2001:db8:1::/48
        0001                         # entry count
        0001 6553f100 0021           # peer index 1, originated time, attribute length 33
        40 01 01 00                  # ORIGIN IGP
        40 02 06 02 01 fa56ea00      # AS_PATH: AS_SEQUENCE [4200000000]
        80 0e 11 10                  # MP_REACH_NLRI (abbreviated), length 17, next-hop length 16
        20010db8000000000000000000000002  # next hop 2001:db8::2
      `),
    );
    // The records are consecutive views of one buffer.
    expect(records[1]!.byteOffset).toBe(records[0]!.byteOffset + records[0]!.length);
  });

  it('writes the RFC 8050 ADD-PATH subtypes with a path identifier', () => {
    const base = smallInput();
    const input: MrtDumpInput = {
      ...base,
      addPath: true,
      entries: [{ prefix: parsePrefix('0.0.0.0/0'), paths: [{ ...base.entries[0]!.paths[0]!, pathId: 7 }] }],
    };
    const records = encodeMrtTableDump(input);
    expect(toHex(records[1]!)).toBe(
      toHex(hex`
        6553f164 000d 0008 00000027  # header: RIB_IPV4_UNICAST_ADDPATH, length 39
        00000000 00 0001             # sequence 0, 0.0.0.0/0 (no prefix bytes), 1 entry
        0000 6553f100 00000007 0014  # peer 0, originated time, path identifier 7, attribute length
        40 01 01 00 40 02 06 02 01 0000fde9 40 03 04 c0000201  # the same attributes
      `),
    );
  });

  it('builds the abbreviated IPv6 next hop attribute, with and without link-local', () => {
    const g = parseAddress('2001:db8::1');
    const ll = parseAddress('fe80::1');
    expect(toHex(mrtIpv6NextHopAttribute(g))).toBe(toHex(hex`80 0e 11 10 20010db8000000000000000000000001`));
    expect(toHex(mrtIpv6NextHopAttribute(g, ll))).toBe(
      toHex(hex`80 0e 21 20 20010db8000000000000000000000001 fe800000000000000000000000000001`),
    );
    expect(() => mrtIpv6NextHopAttribute(new Uint8Array(4))).toThrow(/16 bytes/);
  });

  it('rejects input that does not fit the format', () => {
    const base = smallInput();
    const path = base.entries[0]!.paths[0]!;
    const pfx = base.entries[0]!.prefix;
    expect(() =>
      encodeMrtTableDump({ ...base, entries: [{ prefix: pfx, paths: [{ ...path, peerIndex: 2 }] }] }),
    ).toThrow(/peer index/);
    expect(() =>
      encodeMrtTableDump({
        ...base,
        entries: [{ prefix: pfx, paths: [{ ...path, attributes: new Uint8Array(70000) }] }],
      }),
    ).toThrow(/65535/);
    expect(() =>
      encodeMrtTableDump({ ...base, peers: [{ bgpId: 1, address: new Uint8Array(5), asn: 1 }], entries: [] }),
    ).toThrow(/4 or 16/);
  });

  it('numbers RIB records across families and keeps the input intact', () => {
    const input = interopInput();
    const before = JSON.stringify(input, (_k, v: unknown) => (v instanceof Uint8Array ? toHex(v) : v));
    const recs = splitRecords(concat(encodeMrtTableDump(input)));
    expect(JSON.stringify(input, (_k, v: unknown) => (v instanceof Uint8Array ? toHex(v) : v))).toBe(before);
    expect(recs[0]!.subtype).toBe(TableDumpV2Subtype.PEER_INDEX_TABLE);
    expect(recs.length).toBe(1 + input.entries.length);
    for (let i = 1; i < recs.length; i++) {
      const rec = recs[i]!;
      const entry = input.entries[i - 1]!;
      expect(rec.type).toBe(MrtType.TABLE_DUMP_V2);
      expect(rec.timestamp).toBe(input.timestamp);
      expect(rec.subtype).toBe(
        entry.prefix.afi === 1 ? TableDumpV2Subtype.RIB_IPV4_UNICAST : TableDumpV2Subtype.RIB_IPV6_UNICAST,
      );
      const r = new Reader(rec.body);
      expect(r.u32()).toBe(i - 1);
      const len = r.u8();
      const addr = new Uint8Array(entry.prefix.addr.length);
      addr.set(r.bytes((len + 7) >> 3));
      expect(formatPrefix({ afi: entry.prefix.afi, addr, len })).toBe(formatPrefix(entry.prefix));
      expect(r.u16()).toBe(entry.paths.length);
      for (const p of entry.paths) {
        expect(r.u16()).toBe(p.peerIndex);
        expect(r.u32()).toBe(p.originatedTime);
        expect(toHex(r.bytes(r.u16()))).toBe(toHex(p.attributes));
      }
      expect(r.remaining).toBe(0);
    }
    expect(MRT_HEADER_LENGTH).toBe(12);
  });
});

// ---------------------------------------------------------------- interop with bgpdump
interface RouteSpec {
  peer: number;
  attrs: TestAttrs;
}

const PEERS = [
  { bgpId: ipv4ToNumber(parseIPv4('192.0.2.1')), address: parseIPv4('192.0.2.1'), asn: 65001 },
  { bgpId: ipv4ToNumber(parseIPv4('192.0.2.2')), address: parseIPv4('192.0.2.2'), asn: 4200000001 },
  { bgpId: ipv4ToNumber(parseIPv4('192.0.2.3')), address: parseAddress('2001:db8::3'), asn: 65003 },
  { bgpId: ipv4ToNumber(parseIPv4('192.0.2.4')), address: parseAddress('2001:db8::4'), asn: 4200000004 },
];

/** A deterministic table: 24 IPv4 and 12 IPv6 prefixes, 1-3 paths each from different peers. */
function interopRoutes(): { prefix: Prefix; routes: RouteSpec[] }[] {
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const out: { prefix: Prefix; routes: RouteSpec[] }[] = [];
  for (let i = 0; i < 36; i++) {
    const v6 = i >= 24;
    const prefix = v6
      ? parsePrefix(`2001:db8:${(i * 16).toString(16)}::/${44 + (i % 5) * 4}`)
      : parsePrefix(
          `${10 + i}.${i * 7}.${(i % 4) * 64}.0/${[24, 18, 26, 32][i % 4]}`.replace(/\.\d+\/32$/, '.9/32'),
        );
    const peerSet = v6 ? [2, 3, 0] : [0, 1, 3];
    const nPaths = 1 + (i % 3);
    const routes: RouteSpec[] = [];
    for (let k = 0; k < nPaths; k++) {
      const peer = peerSet[(i + k) % 3]!;
      const p = PEERS[peer]!;
      const pathLen = 1 + rnd(4);
      const asPath = [p.asn];
      for (let j = 0; j < pathLen; j++) asPath.push(j % 2 === 0 ? 64512 + rnd(1000) : 4200000100 + rnd(1000));
      const attrs: TestAttrs = {
        origin: (i + k) % 3 === 2 ? 2 : 0,
        asPath,
        nextHop: p.address.length === 4 ? p.address : parseAddress(`2001:db8::${100 + peer}`),
      };
      if (v6 && p.address.length === 4) attrs.nextHop = parseAddress(`2001:db8::${200 + peer}`);
      if (!v6 && p.address.length === 16) attrs.nextHop = parseIPv4(`192.0.2.${100 + peer}`);
      if (k !== 1) attrs.med = rnd(500);
      if (k !== 2) attrs.localPref = 100 + rnd(200);
      if ((i + k) % 2 === 0) attrs.communities = [(65001 << 16) | rnd(1000), (p.asn & 0xffff) * 65536 + 42];
      if (i % 7 === 0) attrs.communities = [...(attrs.communities ?? []), 0xffffff01];
      routes.push({ peer, attrs });
    }
    out.push({ prefix, routes });
  }
  return out;
}

function interopInput(): MrtDumpInput {
  return {
    collectorBgpId: ipv4ToNumber(parseIPv4('198.51.100.1')),
    viewName: 'vce-test',
    timestamp: TS,
    peers: PEERS,
    entries: interopRoutes().map(({ prefix, routes }) => ({
      prefix,
      paths: routes.map((r, k) => ({
        peerIndex: r.peer,
        originatedTime: ORIG + k,
        attributes: encodeTestAttributes(r.attrs),
      })),
    })),
  };
}

/** The line bgpdump -m prints for one route (RFC 1997 well-known names as bgpdump spells them). */
function expectedLine(prefix: Prefix, r: RouteSpec): string {
  const p = PEERS[r.peer]!;
  const comm = (r.attrs.communities ?? [])
    .map((c) => (c === 0xffffff01 ? 'no-export' : `${c >>> 16}:${c & 0xffff}`))
    .join(' ');
  return [
    'TABLE_DUMP2',
    String(TS),
    'B',
    formatAddress(p.address),
    String(p.asn),
    formatPrefix(prefix),
    r.attrs.asPath.join(' '),
    ['IGP', 'EGP', 'INCOMPLETE'][r.attrs.origin],
    formatAddress(r.attrs.nextHop),
    String(r.attrs.localPref ?? 0),
    String(r.attrs.med ?? 0),
    comm,
    'NAG',
    '',
    '',
  ].join('|');
}

function hasBgpdump(): boolean {
  const res = spawnSync('bgpdump', ['-q', '/dev/null'], { encoding: 'utf8' });
  return res.error === undefined;
}

const BGPDUMP = hasBgpdump();
const RUN_INTEROP = BGPDUMP || process.env.CI === 'true';

describe('MRT interop with bgpdump', () => {
  it.skipIf(!RUN_INTEROP)('bgpdump -m reads back every route', async () => {
    expect(BGPDUMP, 'bgpdump is not installed (required when CI=true)').toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'vce-mrt-'));
    try {
      const file = join(dir, 'rib.mrt');
      const input = interopInput();
      await writeMrtFile(file, input);
      expect(readFileSync(file).length).toBe(concat(encodeMrtTableDump(input)).length);
      const res = spawnSync('bgpdump', ['-m', '-v', file], { encoding: 'utf8' });
      expect(res.status, res.stderr).toBe(0);
      const lines = res.stdout.split('\n').filter((l) => l !== '');
      const expected = interopRoutes().flatMap(({ prefix, routes }) =>
        routes.map((r) => expectedLine(prefix, r)),
      );
      expect(expected.length).toBeGreaterThan(60);
      expect(lines).toEqual(expected);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
