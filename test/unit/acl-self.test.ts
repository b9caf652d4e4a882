// Control-plane protection (src/dataplane/acl/self.ts): what VMs may send to the vCE itself.
import { describe, expect, it } from 'vitest';
import { parseAddress, parsePrefix } from '../../src/lib/ip.ts';
import { buildProbe, type ProbeDesc } from '../../src/dataplane/acl/probe.ts';
import { SelfGuard } from '../../src/dataplane/acl/self.ts';
import type { SelfPolicy } from '../../src/dataplane/types.ts';

const ME = '10.0.1.1';
const ME6 = '2001:db8:1::1';
const PEER = '10.0.1.2';
const PEER6 = '2001:db8:1::2';
const OTHER = '10.0.1.99';
const OTHER6 = '2001:db8:1::99';

const POLICY: SelfPolicy = {
  icmp: false,
  bgpPeers: [parseAddress(PEER), parseAddress(PEER6)],
  bfdPeers: [parseAddress(PEER), parseAddress(PEER6)],
  allow: [
    { protocol: 'tcp', source: [parsePrefix('10.0.9.0/24')], destinationPorts: [{ from: 8443, to: 8443 }] },
  ],
};

const pass = (g: SelfGuard, d: ProbeDesc): boolean => g.check(buildProbe(d));
const tcp = (src: string, dst: string, sport: number, dport: number): ProbeDesc => ({
  src,
  dst,
  proto: 'tcp',
  sport,
  dport,
  flags: 'S',
});
const udp = (src: string, dst: string, sport: number, dport: number): ProbeDesc => ({
  src,
  dst,
  proto: 'udp',
  sport,
  dport,
});

describe('SelfGuard', () => {
  const g = new SelfGuard(POLICY);

  it('BGP only from configured peers, either side of the connection', () => {
    expect(pass(g, tcp(PEER, ME, 50000, 179))).toBe(true);
    expect(pass(g, tcp(PEER, ME, 179, 50000))).toBe(true); // we opened it
    expect(pass(g, tcp(PEER6, ME6, 50000, 179))).toBe(true);
    expect(pass(g, tcp(OTHER, ME, 50000, 179))).toBe(false);
    expect(pass(g, tcp(OTHER6, ME6, 179, 50000))).toBe(false);
    expect(pass(g, tcp(PEER, ME, 50000, 22))).toBe(false);
    expect(pass(g, udp(PEER, ME, 50000, 179))).toBe(false);
    expect(pass(g, { ...tcp(PEER, ME, 50000, 179), fragment: true })).toBe(false);
  });

  it('BFD control (single and multihop) from BFD peers; echo also back from ourselves', () => {
    expect(pass(g, udp(PEER, ME, 49152, 3784))).toBe(true);
    expect(pass(g, udp(PEER6, ME6, 49152, 4784))).toBe(true);
    expect(pass(g, udp(OTHER, ME, 49152, 3784))).toBe(false);
    expect(pass(g, udp(PEER, ME, 3784, 49152))).toBe(false); // destination port only
    expect(pass(g, udp(ME, ME, 49152, 3785))).toBe(true);
    expect(pass(g, udp(ME6, ME6, 49152, 3785))).toBe(true);
    expect(pass(g, udp(PEER, ME, 49152, 3785))).toBe(true);
    expect(pass(g, udp(OTHER, ME, 49152, 3785))).toBe(false);
  });

  it('ICMP only when allowed; ND always, with hop limit 255 only', () => {
    const echo: ProbeDesc = { src: OTHER, dst: ME, proto: 'icmp', icmpType: 8 };
    const echo6: ProbeDesc = { src: OTHER6, dst: ME6, proto: 'icmpv6', icmpType: 128 };
    expect(pass(g, echo)).toBe(false);
    expect(pass(g, echo6)).toBe(false);
    const open = new SelfGuard({ ...POLICY, icmp: true });
    expect(pass(open, echo)).toBe(true);
    expect(pass(open, echo6)).toBe(true);
    expect(pass(open, { ...echo, proto: 'icmpv6' })).toBe(false); // protocol 58 in IPv4 is not ICMP
    for (let type = 133; type <= 137; type++) {
      expect(pass(g, { src: 'fe80::2', dst: 'ff02::1', proto: 'icmpv6', icmpType: type, ttl: 255 })).toBe(
        true,
      );
      expect(pass(open, { src: 'fe80::2', dst: 'ff02::1', proto: 'icmpv6', icmpType: type, ttl: 64 })).toBe(
        false,
      );
    }
    expect(pass(g, { src: 'fe80::2', dst: 'ff02::1', proto: 'icmpv6', icmpType: 138, ttl: 255 })).toBe(false);
  });

  it('the allow list, everything else denied', () => {
    expect(pass(g, tcp('10.0.9.7', ME, 50000, 8443))).toBe(true);
    expect(pass(g, tcp('10.0.8.7', ME, 50000, 8443))).toBe(false);
    expect(pass(g, tcp('10.0.9.7', ME, 50000, 22))).toBe(false);
    expect(pass(g, udp(PEER, ME, 50000, 53))).toBe(false);
    expect(pass(g, { src: PEER, dst: ME, proto: 47 })).toBe(false);
  });
});
