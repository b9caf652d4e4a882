/**
 * Tunnel and transport headers (src/dataplane/frames/vxlan.ts, gre.ts, mpls.ts, l4.ts):
 * annotated vectors decoded, encoded to exact bytes and round-tripped; random bytes never throw.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hex, toHex } from '../../src/lib/bytes.ts';
import {
  VXLAN_PORT,
  VxlanError,
  parseVxlan,
  vxlanErrorName,
  writeVxlan,
} from '../../src/dataplane/frames/vxlan.ts';
import {
  GRE_IN_UDP_PORT,
  GreError,
  greErrorName,
  newGreInfo,
  nvgreFlowId,
  nvgreVsid,
  parseGre,
  setGreChecksum,
  writeGre,
  writeNvgre,
} from '../../src/dataplane/frames/gre.ts';
import {
  IPV4_EXPLICIT_NULL,
  IPV6_EXPLICIT_NULL,
  MPLS_IN_UDP_PORT,
  MplsError,
  mplsLabelName,
  newMplsEntry,
  parseLabel,
  skipLabelStack,
  writeLabel,
} from '../../src/dataplane/frames/mpls.ts';
import {
  TcpFlag,
  UdpError,
  checkUdp,
  dstPort,
  setUdpChecksum4,
  setUdpChecksum6,
  srcPort,
  tcpFlags,
  tcpHeaderLength,
  tunnelSourcePort,
  udpChecksum,
  udpLength,
  writeUdpHeader,
} from '../../src/dataplane/frames/l4.ts';
import { writeIPv4Header } from '../../src/dataplane/frames/ipv4.ts';
import { writeIPv6Header } from '../../src/dataplane/frames/ipv6.ts';
import { parseIPv6 } from '../../src/lib/ip.ts';
import { sum16, pseudoHeader4, pseudoHeader6 } from '../../src/dataplane/frames/checksum.ts';

const SEED = 7348;

describe('VXLAN (RFC 7348 §5)', () => {
  const V = hex`
    08 00 00 00   # I flag, reserved
    12 34 56 00   # VNI 0x123456, reserved
  `;
  it('decode, encode, round trip', () => {
    expect(VXLAN_PORT).toBe(4789);
    expect(parseVxlan(V, 0, 8)).toBe(0x123456);
    const b = new Uint8Array(12).fill(0xee);
    expect(writeVxlan(b, 2, 0x123456)).toBe(10);
    expect(toHex(b.subarray(2, 10))).toBe(toHex(V));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffff }), (vni) => {
        const x = new Uint8Array(8);
        writeVxlan(x, 0, vni);
        expect(parseVxlan(x, 0, 8)).toBe(vni);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
  it('reserved bits are ignored; errors', () => {
    expect(parseVxlan(hex`ff ff ff ff 00 00 01 ff`, 0, 8)).toBe(1);
    expect(parseVxlan(V, 0, 7)).toBe(VxlanError.TOO_SHORT);
    expect(parseVxlan(hex`00 00 00 00 00 00 01 00`, 0, 8)).toBe(VxlanError.NO_I_FLAG);
    expect(vxlanErrorName(VxlanError.NO_I_FLAG)).toBe('NO_I_FLAG');
  });
});

describe('GRE / NVGRE (RFC 2784, RFC 2890, RFC 7637)', () => {
  const g = newGreInfo();
  const NVGRE = hex`
    20 00         # K set, C and S clear, version 0
    65 58         # Transparent Ethernet Bridging
    00 10 01 2a   # key: VSID 0x001001, FlowID 0x2a
  `;

  it('NVGRE decode, encode', () => {
    expect(GRE_IN_UDP_PORT).toBe(4754);
    expect(parseGre(NVGRE, 0, 8, g)).toBe(8);
    expect(g).toMatchObject({
      protocol: 0x6558,
      hasKey: true,
      key: 0x0010012a,
      hasSeq: false,
      checksumPresent: false,
      payloadOff: 8,
    });
    expect(nvgreVsid(g.key)).toBe(0x1001);
    expect(nvgreFlowId(g.key)).toBe(0x2a);
    const b = new Uint8Array(8);
    expect(writeNvgre(b, 0, 0x1001, 0x2a)).toBe(8);
    expect(toHex(b)).toBe(toHex(NVGRE));
  });

  it('NVGRE round trip for any VSID / FlowID', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffff }), fc.integer({ min: 0, max: 255 }), (vsid, flow) => {
        const b = new Uint8Array(8);
        writeNvgre(b, 0, vsid, flow);
        expect(parseGre(b, 0, 8, g)).toBe(8);
        expect([nvgreVsid(g.key), nvgreFlowId(g.key), g.protocol]).toEqual([vsid, flow, 0x6558]);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('checksum, key and sequence fields', () => {
    const b = new Uint8Array(32);
    const p = writeGre(b, 0, 0x0800, 0xdeadbeef, 7, true);
    expect(p).toBe(16);
    b.set(hex`45 00 00 14 01 02 03 04 05`, 16);
    setGreChecksum(b, 0, 25);
    expect(toHex(b.subarray(0, 4))).toBe('b0000800');
    expect(parseGre(b, 0, 25, g)).toBe(16);
    expect(g).toMatchObject({
      protocol: 0x0800,
      checksumPresent: true,
      hasKey: true,
      key: 0xdeadbeef,
      hasSeq: true,
      seq: 7,
    });
    b[20] = b[20]! ^ 1;
    expect(parseGre(b, 0, 25, g)).toBe(GreError.BAD_CHECKSUM);
    const plain = new Uint8Array(4);
    expect(writeGre(plain, 0, 0x86dd)).toBe(4);
    expect(toHex(plain)).toBe('000086dd');
    expect(parseGre(plain, 0, 4, g)).toBe(4);
    expect(g).toMatchObject({ hasKey: false, key: 0, hasSeq: false });
  });

  it('errors', () => {
    expect(parseGre(NVGRE, 0, 3, g)).toBe(GreError.TOO_SHORT);
    expect(parseGre(NVGRE, 0, 7, g)).toBe(GreError.TOO_SHORT);
    expect(parseGre(hex`00 01 65 58`, 0, 4, g)).toBe(GreError.BAD_VERSION);
    expect(parseGre(hex`40 00 65 58`, 0, 4, g)).toBe(GreError.RESERVED_BITS); // R bit
    expect(parseGre(hex`08 00 65 58`, 0, 4, g)).toBe(GreError.RESERVED_BITS); // s bit
    expect(parseGre(hex`00 f8 65 58`, 0, 4, g)).toBe(4); // bits 6-12 are ignored
    expect(greErrorName(GreError.RESERVED_BITS)).toBe('RESERVED_BITS');
  });
});

describe('MPLS (RFC 3032)', () => {
  const e = newMplsEntry();
  const STACK = hex`
    00 01 0a 40   # label 16, TC 5, not bottom, TTL 64
    00 00 21 ff   # label 2 (IPv6 explicit null), TC 0, bottom, TTL 255
  `;
  it('decode, encode, skip the stack', () => {
    expect(MPLS_IN_UDP_PORT).toBe(6635);
    expect(parseLabel(STACK, 0, 8, e)).toBe(4);
    expect(e).toEqual({ label: 16, tc: 5, bottom: false, ttl: 64 });
    expect(parseLabel(STACK, 4, 8, e)).toBe(8);
    expect(e).toEqual({ label: IPV6_EXPLICIT_NULL, tc: 0, bottom: true, ttl: 255 });
    const b = new Uint8Array(8);
    writeLabel(b, 0, 16, 5, false, 64);
    expect(writeLabel(b, 4, 2, 0, true, 255)).toBe(8);
    expect(toHex(b)).toBe(toHex(STACK));
    expect(skipLabelStack(STACK, 0, 8)).toBe(8);
    expect(skipLabelStack(STACK, 0, 7)).toBe(MplsError.TOO_SHORT);
    expect(skipLabelStack(STACK, 0, 8, 1)).toBe(MplsError.STACK_TOO_DEEP);
    expect(parseLabel(STACK, 6, 8, e)).toBe(MplsError.TOO_SHORT);
    expect(mplsLabelName(IPV4_EXPLICIT_NULL)).toBe('IPV4_EXPLICIT_NULL');
  });
  it('round trip', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xfffff }),
        fc.integer({ min: 0, max: 7 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 255 }),
        (label, tc, bottom, ttl) => {
          const b = new Uint8Array(4);
          writeLabel(b, 0, label, tc, bottom, ttl);
          expect(parseLabel(b, 0, 4, e)).toBe(4);
          expect(e).toEqual({ label, tc, bottom, ttl });
        },
      ),
      { seed: SEED, numRuns: 500 },
    );
  });
});

describe('UDP / TCP', () => {
  it('UDP header writer, readers, checkUdp', () => {
    const b = new Uint8Array(12);
    expect(writeUdpHeader(b, 0, 49152, VXLAN_PORT, 12)).toBe(8);
    expect(toHex(b.subarray(0, 8))).toBe('c00012b5000c0000');
    expect([srcPort(b, 0), dstPort(b, 0), udpLength(b, 0), udpChecksum(b, 0)]).toEqual([49152, 4789, 12, 0]);
    expect(checkUdp(b, 0, 12)).toBe(12);
    expect(checkUdp(b, 0, 11)).toBe(UdpError.BAD_LENGTH);
    expect(checkUdp(b, 0, 7)).toBe(UdpError.TOO_SHORT);
    b[5] = 7;
    expect(checkUdp(b, 0, 12)).toBe(UdpError.BAD_LENGTH);
  });

  it('TCP flags and header length', () => {
    const t = hex`04 d2 00 50  00 00 00 01  00 00 00 00  50 12 ff ff  00 00 00 00`;
    expect(tcpFlags(t, 0)).toBe(TcpFlag.SYN | TcpFlag.ACK);
    expect(tcpHeaderLength(t, 0)).toBe(20);
    expect([srcPort(t, 0), dstPort(t, 0)]).toEqual([1234, 80]);
  });

  it('UDP checksums over IPv4 and IPv6 verify against the pseudo-header', () => {
    const b = new Uint8Array(20 + 8 + 5);
    writeIPv4Header(b, 0, {
      src: 0xc0000201,
      dst: 0xc0000202,
      proto: 17,
      ttl: 64,
      dscp: 0,
      id: 1,
      payloadLength: 13,
    });
    writeUdpHeader(b, 20, 1234, 5678, 13);
    b.set(hex`68 65 6c 6c 6f`, 28);
    setUdpChecksum4(b, 0, 20);
    expect(sum16(b, 20, 13, pseudoHeader4(b, 12, 16, 17, 13))).toBe(0xffff);
    const c = new Uint8Array(40 + 8 + 5);
    writeIPv6Header(c, 0, {
      src: parseIPv6('2001:db8::1'),
      dst: parseIPv6('2001:db8::2'),
      nextHeader: 17,
      hopLimit: 64,
      payloadLength: 13,
    });
    writeUdpHeader(c, 40, 1234, 5678, 13);
    c.set(hex`68 65 6c 6c 6f`, 48);
    setUdpChecksum6(c, 0, 40);
    expect(sum16(c, 40, 13, pseudoHeader6(c, 8, 24, 17, 13))).toBe(0xffff);
    expect(udpChecksum(c, 40)).not.toBe(0);
  });

  it('tunnel source ports stay in 49152-65535', () => {
    fc.assert(
      fc.property(fc.integer(), (h) => {
        const p = tunnelSourcePort(h);
        expect(p >= 49152 && p <= 65535).toBe(true);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });
});

describe(`random bytes never throw (seed ${SEED})`, () => {
  it('parseVxlan, parseGre, parseLabel, skipLabelStack, checkUdp', () => {
    const codes = new Set<number>([
      ...Object.values(VxlanError),
      ...Object.values(GreError),
      ...Object.values(MplsError),
      ...Object.values(UdpError),
    ]);
    const g = newGreInfo();
    const e = newMplsEntry();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.nat(45), (b, o) => {
        const end = b.length;
        for (const r of [
          parseVxlan(b, o, end),
          parseGre(b, o, end, g),
          parseLabel(b, o, end, e),
          skipLabelStack(b, o, end),
          checkUdp(b, o, end),
        ]) {
          expect(r >= 0 || codes.has(r)).toBe(true);
        }
      }),
      { seed: SEED, numRuns: 5000 },
    );
  });
});
