/**
 * vPE Model 1 case 1-B (draft §8.2.1): each vCE has one BGP session to a route server carrying the
 * routes of all its routing contexts as VPNv4/VPNv6 routes (RFC 4364): each context's routes are
 * tagged with its route distinguisher and route targets, and received VPN routes are imported into
 * the contexts whose import targets match. Two vCEs with red and blue contexts — using the SAME
 * prefix in both — and our own speaker as the route server (iBGP route reflection, next hops kept).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgentConfig } from '../../src/agent/config.ts';
import { startAgent, type RunningAgent } from '../../src/agent/run.ts';
import { routeViews } from '../../src/bgp/rib-view.ts';
import { freePort, waitFor } from '../interop/harness/common.ts';

const RS = '127.0.10.1';
const A = '127.0.10.2';
const B = '127.0.10.3';
let rs: RunningAgent;
let a: RunningAgent;
let b: RunningAgent;

const VPN = ['ipv4-vpn', 'ipv6-vpn'];

function vce(me: string, port: number, rsPort: number, red: string[], blue: string[]): Promise<RunningAgent> {
  return startAgent(
    buildAgentConfig({
      'router-id': me,
      'log-level': 'silent',
      bgp: {
        asn: 65000,
        listen: { address: me, port },
        neighbors: [
          {
            address: RS,
            'peer-asn': 65000,
            'remote-port': rsPort,
            'local-address': me,
            'connect-retry': 1,
            'afi-safis': VPN,
          },
        ],
      },
      vrfs: [
        {
          name: 'red',
          'route-distinguisher': `${me}:1`,
          'route-targets': { both: ['65000:1'] },
          'static-routes': red.map((p) => ({ prefix: p, interface: 'red0' })),
        },
        {
          name: 'blue',
          'route-distinguisher': `${me}:2`,
          'route-targets': { both: ['65000:2'] },
          'static-routes': blue.map((p) => ({ prefix: p, interface: 'blue0' })),
        },
      ],
    }),
  );
}

beforeAll(async () => {
  const [prs, pa, pb] = await Promise.all([freePort(RS), freePort(A), freePort(B)]);
  const client = (address: string) => ({
    address,
    'peer-asn': 65000,
    passive: true,
    'afi-safis': VPN,
    'route-reflector-client': true,
  });
  rs = await startAgent(
    buildAgentConfig({
      'router-id': RS,
      'log-level': 'silent',
      bgp: { asn: 65000, listen: { address: RS, port: prs }, neighbors: [client(A), client(B)] },
    }),
  );
  [a, b] = await Promise.all([
    vce(A, pa, prs, ['10.1.1.0/24', '2001:db8:a1::/48'], ['10.1.1.0/24', '10.9.0.0/16']),
    vce(B, pb, prs, ['10.2.0.0/16'], ['10.3.0.0/16', '2001:db8:b3::/48']),
  ]);
  await waitFor(
    () =>
      Promise.resolve(
        b.contexts.get('red')!.fib().length === 3 && b.contexts.get('blue')!.fib().length === 4
          ? true
          : undefined,
      ),
    { timeoutMs: 10_000, what: 'VPN routes imported at B' },
  );
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop(), rs?.stop()]);
});

const fibOf = (x: RunningAgent, vrf: string) =>
  x.contexts
    .get(vrf)!
    .fib()
    .map((e) => [e.prefix, e.source, e['next-hop'] ?? e.interface]);

describe('vPE Model 1 case 1-B: contexts multiplexed on one VPN session', () => {
  it('the route server holds each context apart by route distinguisher', () => {
    const v4 = routeViews(rs.speaker, 'ipv4-vpn').map(
      (r) => `${r.rd} ${r.prefix} ${r.paths[0]!['ext-communities'].join(',')}`,
    );
    expect(v4).toEqual(
      expect.arrayContaining([
        '127.0.10.2:1 10.1.1.0/24 rt:65000:1',
        '127.0.10.2:2 10.1.1.0/24 rt:65000:2', // the same prefix, another context
        '127.0.10.2:2 10.9.0.0/16 rt:65000:2',
        '127.0.10.3:1 10.2.0.0/16 rt:65000:1',
        '127.0.10.3:2 10.3.0.0/16 rt:65000:2',
      ]),
    );
    expect(routeViews(rs.speaker, 'ipv4-vpn')[0]!.paths[0]!.labels).toBeDefined();
  });

  it("each context imports exactly its own targets' routes, next hop the other vCE", () => {
    expect(fibOf(b, 'red')).toEqual([
      ['10.1.1.0/24', 'bgp', A],
      ['10.2.0.0/16', 'static', 'red0'],
      ['2001:db8:a1::/48', 'bgp', `::ffff:${A}`],
    ]);
    expect(fibOf(b, 'blue')).toEqual([
      ['10.1.1.0/24', 'bgp', A],
      ['10.3.0.0/16', 'static', 'blue0'],
      ['10.9.0.0/16', 'bgp', A],
      ['2001:db8:b3::/48', 'static', 'blue0'],
    ]);
    expect(fibOf(a, 'red')).toEqual([
      ['10.1.1.0/24', 'static', 'red0'],
      ['10.2.0.0/16', 'bgp', B],
      ['2001:db8:a1::/48', 'static', 'red0'],
    ]);
    // the default context has no VPN import: nothing leaks into it
    expect(fibOf(a, 'default')).toEqual([]);
  });
});
