/**
 * vPE Model 1 case 1-A (draft §8.2.1): a vCE next to a co-located vPE, one BGP session per routing
 * context. The vPE control plane sends each context a default route with itself as next hop; the
 * vCE advertises each context's local routes (redistributed connected and static routes) with
 * itself as next hop.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgentConfig } from '../../src/agent/config.ts';
import { startAgent, type RunningAgent } from '../../src/agent/run.ts';
import { routeViews } from '../../src/bgp/rib-view.ts';
import { freePort, waitFor } from '../interop/harness/common.ts';

const VPE = '127.0.13.1';
const RED = '127.0.13.2';
const BLUE = '127.0.13.3';
let vpe: RunningAgent;
let vce: RunningAgent;

beforeAll(async () => {
  const [pv, pr, pb] = await Promise.all([freePort(VPE), freePort(RED), freePort(BLUE)]);
  const client = (address: string) => ({
    address,
    'peer-asn': 65020,
    passive: true,
    'import-policy': 'accept-all',
    'export-policy': 'accept-all',
  });
  vpe = await startAgent(
    buildAgentConfig({
      'router-id': VPE,
      'log-level': 'silent',
      bgp: {
        asn: 65010,
        listen: { address: VPE, port: pv },
        neighbors: [client(RED), client(BLUE)],
        networks: ['0.0.0.0/0'],
      },
    }),
  );
  const ctxBgp = (me: string, port: number) => ({
    asn: 65020,
    listen: { address: me, port },
    redistribute: ['connected', 'static'],
    neighbors: [
      {
        address: VPE,
        'peer-asn': 65010,
        'remote-port': pv,
        'local-address': me,
        'connect-retry': 1,
        'import-policy': 'accept-all',
        'export-policy': 'accept-all',
      },
    ],
  });
  vce = await startAgent(
    buildAgentConfig({
      'router-id': RED,
      'log-level': 'silent',
      vrfs: [
        {
          name: 'red',
          interfaces: [{ name: 'red0', addresses: ['10.1.0.1/16'] }],
          'static-routes': [{ prefix: '10.11.0.0/16', 'next-hop': '10.1.0.9' }],
          bgp: ctxBgp(RED, pr),
        },
        { name: 'blue', interfaces: [{ name: 'blue0', addresses: ['10.2.0.1/16'] }], bgp: ctxBgp(BLUE, pb) },
      ],
    }),
  );
  await waitFor(
    () => Promise.resolve(routeViews(vpe.speaker, 'ipv4-unicast').length === 4 ? true : undefined),
    {
      timeoutMs: 10_000,
      what: 'context routes at the vPE',
      describe: () =>
        Promise.resolve(
          JSON.stringify({
            rib: routeViews(vpe.speaker, 'ipv4-unicast').map((r) => r.prefix),
            red: routeViews(vce.contexts.get('red')!.speaker!, 'ipv4-unicast').map((r) => r.prefix),
            adv: vce.contexts
              .get('red')!
              .speaker!.peerList()
              .map((p) => p.adjOut.get('ipv4-unicast')?.advertised),
          }),
        ),
    },
  );
});

afterAll(async () => {
  await Promise.all([vce?.stop(), vpe?.stop()]);
});

describe('vPE Model 1 case 1-A', () => {
  it('each context gets the default route from the vPE, the vPE as next hop', () => {
    for (const vrf of ['red', 'blue']) {
      const d = vce.contexts
        .get(vrf)!
        .fib(4)
        .find((e) => e.prefix === '0.0.0.0/0');
      expect(d).toMatchObject({ source: 'bgp', 'next-hop': VPE });
    }
  });

  it("the vPE learns each context's local routes on that context's session, the vCE as next hop", () => {
    const at = (p: string) => routeViews(vpe.speaker, 'ipv4-unicast').find((r) => r.prefix === p)?.paths[0];
    expect(at('10.1.0.0/16')).toMatchObject({ 'next-hop': RED, from: RED, 'as-path': '65020' });
    expect(at('10.11.0.0/16')).toMatchObject({ 'next-hop': RED, from: RED });
    expect(at('10.2.0.0/16')).toMatchObject({ 'next-hop': BLUE, from: BLUE });
  });
});
