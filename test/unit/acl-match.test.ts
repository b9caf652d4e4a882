// Compiled packet matches (src/dataplane/acl/match.ts): fixed cases per field, then a
// differential test of the prefix compare against `prefixContains` on random IPv4 / IPv6 prefixes
// and addresses (fast-check, fixed seed).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatAddress, makePrefix, parsePrefix, prefixContains } from '../../src/lib/ip.ts';
import { compileMatch, DataplanePolicyError, protocolNumber } from '../../src/dataplane/acl/match.ts';
import { buildProbe, type ProbeDesc } from '../../src/dataplane/acl/probe.ts';
import type { PacketMatch } from '../../src/dataplane/types.ts';

const SEED = 20250115;

const m = (match: PacketMatch, d: ProbeDesc): boolean => compileMatch(match).matches(buildProbe(d));
const tcp4: ProbeDesc = {
  src: '10.1.2.3',
  dst: '192.0.2.10',
  proto: 'tcp',
  sport: 40000,
  dport: 443,
  dscp: 46,
};
const tcp6: ProbeDesc = {
  src: '2001:db8:1::5',
  dst: '2001:db8:ff::1',
  proto: 'tcp',
  sport: 40000,
  dport: 443,
  dscp: 10,
};

describe('compileMatch fixed cases', () => {
  it('an empty match matches everything', () => {
    expect(m({}, tcp4)).toBe(true);
    expect(m({}, tcp6)).toBe(true);
    expect(m({}, { src: '1.1.1.1', dst: '2.2.2.2', proto: 'udp', fragment: true })).toBe(true);
  });

  it('family and protocol', () => {
    expect(m({ family: 4 }, tcp4)).toBe(true);
    expect(m({ family: 6 }, tcp4)).toBe(false);
    expect(m({ protocol: 'tcp' }, tcp4)).toBe(true);
    expect(m({ protocol: 'udp' }, tcp4)).toBe(false);
    expect(m({ protocol: 6 }, tcp6)).toBe(true);
    expect(m({ protocol: 'icmpv6' }, { src: '::1', dst: '::2', proto: 58, icmpType: 128 })).toBe(true);
    expect(protocolNumber('icmp')).toBe(1);
    expect(protocolNumber('icmpv6')).toBe(58);
    expect(() => protocolNumber(256)).toThrow(DataplanePolicyError);
    expect(() => protocolNumber('sctp' as 'tcp')).toThrow(DataplanePolicyError);
  });

  it('prefixes: any of the list, other family never, empty list nothing', () => {
    const src = [parsePrefix('10.0.0.0/8'), parsePrefix('2001:db8:1::/48')];
    expect(m({ source: src }, tcp4)).toBe(true);
    expect(m({ source: src }, tcp6)).toBe(true);
    expect(m({ destination: src }, tcp4)).toBe(false);
    expect(m({ destination: [parsePrefix('192.0.2.10/32')] }, tcp4)).toBe(true);
    expect(m({ destination: [parsePrefix('192.0.2.11/32')] }, tcp4)).toBe(false);
    expect(m({ source: [parsePrefix('0.0.0.0/0')] }, tcp4)).toBe(true);
    expect(m({ source: [parsePrefix('0.0.0.0/0')] }, tcp6)).toBe(false);
    expect(m({ source: [parsePrefix('::/0')] }, tcp6)).toBe(true);
    expect(m({ source: [] }, tcp4)).toBe(false);
    expect(m({ source: [parsePrefix('2001:db8:1::4/127')] }, tcp6)).toBe(true);
    expect(m({ source: [parsePrefix('2001:db8:1::6/127')] }, tcp6)).toBe(false);
  });

  it('ports: ranges, TCP/UDP only, never on a fragment', () => {
    const https: PacketMatch = {
      destinationPorts: [
        { from: 80, to: 80 },
        { from: 440, to: 450 },
      ],
    };
    expect(m(https, tcp4)).toBe(true);
    expect(m(https, { ...tcp4, dport: 451 })).toBe(false);
    expect(m(https, { ...tcp4, proto: 'udp' })).toBe(true);
    expect(m(https, { ...tcp4, fragment: true })).toBe(false);
    expect(
      m({ destinationPorts: [{ from: 0, to: 65535 }] }, { src: '1.1.1.1', dst: '2.2.2.2', proto: 'icmp' }),
    ).toBe(false);
    expect(m({ sourcePorts: [{ from: 40000, to: 40000 }] }, tcp6)).toBe(true);
    expect(m({ sourcePorts: [{ from: 1, to: 1023 }] }, tcp6)).toBe(false);
    expect(() => compileMatch({ sourcePorts: [{ from: 5, to: 4 }] })).toThrow(DataplanePolicyError);
  });

  it('DSCP set on arrival, both words of the bitmap', () => {
    expect(m({ dscp: [46] }, tcp4)).toBe(true);
    expect(m({ dscp: [10, 12, 14] }, tcp4)).toBe(false);
    expect(m({ dscp: [10, 12, 14] }, tcp6)).toBe(true);
    expect(m({ dscp: [0] }, { ...tcp4, dscp: 0 })).toBe(true);
    expect(m({ dscp: [63] }, { ...tcp4, dscp: 63 })).toBe(true);
    expect(m({ dscp: [31] }, { ...tcp4, dscp: 63 })).toBe(false);
    expect(() => compileMatch({ dscp: [64] }, 'q.match')).toThrow('q.match.dscp[0]');
  });

  it('all fields AND together', () => {
    const match: PacketMatch = {
      family: 4,
      protocol: 'tcp',
      source: [parsePrefix('10.0.0.0/8')],
      destination: [parsePrefix('192.0.2.0/24')],
      destinationPorts: [{ from: 443, to: 443 }],
      dscp: [46],
    };
    expect(m(match, tcp4)).toBe(true);
    expect(m(match, { ...tcp4, dscp: 0 })).toBe(false);
    expect(m(match, { ...tcp4, src: '11.0.0.1' })).toBe(false);
  });
});

describe(`prefix compare against prefixContains (seed ${SEED})`, () => {
  /** An address sharing the first `shared` bits with `base`, random after. */
  const near = (bytes: number): fc.Arbitrary<[Uint8Array, Uint8Array, number, number]> =>
    fc.tuple(
      fc.uint8Array({ minLength: bytes, maxLength: bytes }),
      fc.uint8Array({ minLength: bytes, maxLength: bytes }),
      fc.integer({ min: 0, max: bytes * 8 }),
      fc.integer({ min: 0, max: bytes * 8 }),
    );

  function mix(a: Uint8Array, b: Uint8Array, n: number): Uint8Array {
    return a.map((x, i) => {
      const bits = Math.max(0, Math.min(8, n - i * 8));
      const mask = bits === 0 ? 0 : (0xff << (8 - bits)) & 0xff;
      return (x & mask) | (b[i]! & ~mask & 0xff);
    });
  }

  for (const bytes of [4, 16]) {
    it(`IPv${bytes === 4 ? 4 : 6} source and destination`, () => {
      fc.assert(
        fc.property(near(bytes), ([base, noise, len, shared]) => {
          const prefix = makePrefix(base, len);
          const addr = mix(base, noise, shared);
          const other = bytes === 4 ? '192.0.2.1' : '2001:db8::1';
          const expected = prefixContains(prefix, makePrefix(addr, bytes * 8));
          const d: ProbeDesc = { src: formatAddress(addr), dst: other, proto: 'udp', sport: 1, dport: 2 };
          expect(m({ source: [prefix] }, d)).toBe(expected);
          expect(m({ destination: [prefix] }, { ...d, src: other, dst: formatAddress(addr) })).toBe(expected);
        }),
        { seed: SEED, numRuns: 3000 },
      );
    });
  }
});
