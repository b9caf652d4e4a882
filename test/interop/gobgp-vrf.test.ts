/**
 * vPE Model 1 case 1-B against GoBGP configured with VRFs: one VPNv4 session between gobgpd (the
 * route server / vPE control plane, VRFs red and blue) and a vCE with red and blue routing
 * contexts. Routes added in gobgpd's VRFs appear in the vCE context with the matching route
 * target, never in the other; the vCE's context routes appear in gobgpd's VRF of the same target.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgentConfig } from '../../src/agent/config.ts';
import { startAgent, type RunningAgent } from '../../src/agent/run.ts';
import { freePort, requireDaemon, waitFor } from './harness/common.ts';
import { startGobgp, type GobgpDaemon } from './harness/gobgp.ts';

const G = '127.0.11.1';
const V = '127.0.11.2';
const available = requireDaemon('gobgpd') && requireDaemon('gobgp');

describe.skipIf(!available)('case 1-B against gobgpd VRFs', () => {
  let gobgp: GobgpDaemon;
  let vce: RunningAgent;

  beforeAll(async () => {
    const [pg, pv] = await Promise.all([freePort(G), freePort(V)]);
    gobgp = await startGobgp({
      asn: 65000,
      routerId: G,
      listenAddress: G,
      listenPort: pg,
      neighbors: [{ address: V, port: pv, peerAsn: 65000, families: ['ipv4-vpn'], passive: true }],
    });
    await gobgp.cli('vrf', 'add', 'red', 'rd', '65000:100', 'rt', 'both', '65000:1');
    await gobgp.cli('vrf', 'add', 'blue', 'rd', '65000:200', 'rt', 'both', '65000:2');
    await gobgp.cli('vrf', 'red', 'rib', 'add', '10.100.0.0/16', '-a', 'ipv4');
    await gobgp.cli('vrf', 'blue', 'rib', 'add', '10.200.0.0/16', '-a', 'ipv4');
    await gobgp.cli('vrf', 'blue', 'rib', 'add', '10.55.0.0/16', '-a', 'ipv4');
    vce = await startAgent(
      buildAgentConfig({
        'router-id': V,
        'log-level': 'silent',
        bgp: {
          asn: 65000,
          listen: { address: V, port: pv },
          neighbors: [
            {
              address: G,
              'peer-asn': 65000,
              'remote-port': pg,
              'local-address': V,
              'connect-retry': 1,
              'afi-safis': ['ipv4-vpn'],
            },
          ],
        },
        vrfs: [
          {
            name: 'red',
            'route-distinguisher': '65000:1001',
            'route-targets': { both: ['65000:1'] },
            'static-routes': [{ prefix: '10.55.0.0/16', interface: 'red0' }],
          },
          {
            name: 'blue',
            'route-distinguisher': '65000:1002',
            'route-targets': { both: ['65000:2'] },
            'static-routes': [{ prefix: '10.66.0.0/16', interface: 'blue0' }],
          },
        ],
      }),
    );
  });

  afterAll(async () => {
    await vce?.stop();
    await gobgp?.stop();
  });

  it("gobgpd's VRF routes land in the context with the same route target only", async () => {
    const fib = (vrf: string) =>
      vce.contexts
        .get(vrf)!
        .fib()
        .map((e) => `${e.prefix} ${e.source}`);
    await waitFor(
      () => Promise.resolve(fib('blue').length === 3 && fib('red').length === 2 ? true : undefined),
      {
        timeoutMs: 20_000,
        what: 'VPN routes from gobgpd imported',
        describe: () => Promise.resolve(JSON.stringify({ red: fib('red'), blue: fib('blue') })),
      },
    );
    expect(fib('red')).toEqual(['10.55.0.0/16 static', '10.100.0.0/16 bgp']);
    // 10.55.0.0/16 exists in gobgpd's blue VRF and in our red context: each stays in its own VPN
    expect(fib('blue')).toEqual(['10.55.0.0/16 bgp', '10.66.0.0/16 static', '10.200.0.0/16 bgp']);
  });

  it("the vCE's context routes land in gobgpd's VRF with the same route target", async () => {
    const vrfRib = async (vrf: string): Promise<string[]> =>
      Object.keys(
        JSON.parse((await gobgp.cli('vrf', vrf, 'rib', '-a', 'ipv4', '-j')) || '{}') as Record<
          string,
          unknown
        >,
      )
        .map((k) => k.replace(/^.*:(?=\d+\.\d+\.\d+\.\d+\/)/, ''))
        .sort();
    await waitFor(
      async () =>
        (await vrfRib('red')).includes('10.55.0.0/16') && (await vrfRib('blue')).includes('10.66.0.0/16')
          ? true
          : undefined,
      {
        timeoutMs: 20_000,
        what: 'our routes in gobgpd VRFs',
        describe: async () => JSON.stringify({ red: await vrfRib('red'), blue: await vrfRib('blue') }),
      },
    );
    expect(await vrfRib('red')).toEqual(['10.100.0.0/16', '10.55.0.0/16']);
    expect(await vrfRib('blue')).toEqual(['10.200.0.0/16', '10.55.0.0/16', '10.66.0.0/16']);
  });
});
