/**
 * BFD clients between two in-process agents over loopback (UDP on a lab port): a BGP neighbour and
 * a static route share one BFD session (refcounted); a peer that takes BFD AdminDown does not
 * bring either down (RFC 5882 §3.2), and the session comes back when it is enabled again. The
 * failure case (detection time expiry -> Cease/10, route out of the FIB) is proven against FRR
 * bfdd in test/interop/bfd-frr.test.ts.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { buildAgentConfig } from '../../src/agent/config.ts';
import { startAgent, type RunningAgent } from '../../src/agent/run.ts';
import { freePort, waitFor } from '../interop/harness/common.ts';

const A = '127.0.6.1';
const B = '127.0.6.2';
const BFD_PORT = 13784;
const agents: RunningAgent[] = [];
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
});

const ok = (v: boolean): Promise<true | undefined> => Promise.resolve(v ? true : undefined);

describe('BFD clients (BGP neighbour, static route)', () => {
  it('share one session; AdminDown from the peer is not a failure', async () => {
    const [pa, pb] = await Promise.all([freePort(A), freePort(B)]);
    const cfg = (
      me: string,
      port: number,
      peer: string,
      peerPort: number,
      asn: number,
      peerAsn: number,
      passive: boolean,
    ) =>
      buildAgentConfig({
        'router-id': me,
        'log-level': 'silent',
        api: { listen: '127.0.0.1:0' },
        bfd: { 'single-hop-port': BFD_PORT, 'multihop-port': BFD_PORT + 1000 },
        interfaces: [{ name: 'lo', addresses: [`${me}/24`] }],
        'static-routes': [{ prefix: `10.${me.split('.')[3]}.0.0/16`, 'next-hop': peer, bfd: true }],
        bgp: {
          asn,
          listen: { address: me, port },
          neighbors: [
            {
              address: peer,
              'peer-asn': peerAsn,
              passive,
              'remote-port': peerPort,
              'local-address': me,
              'connect-retry': 1,
              'import-policy': 'accept-all',
              'export-policy': 'accept-all',
              bfd: { 'min-tx': 50, 'min-rx': 50, multiplier: 3 },
            },
          ],
        },
      });
    const [a, b] = await Promise.all([
      startAgent(cfg(A, pa, B, pb, 65061, 65062, false)),
      startAgent(cfg(B, pb, A, pa, 65062, 65061, true)),
    ]);
    agents.push(a, b);
    const bfdA = () => a.speaker.bfd!.get(B, { localAddress: A });
    const routeAtA = () =>
      a.contexts
        .get('default')!
        .fib(4)
        .some((e) => e.prefix === '10.1.0.0/16' && e.source === 'static');
    await waitFor(() => ok(a.speaker.neighbor(B)!.established && bfdA()?.state === 'Up' && routeAtA()), {
      timeoutMs: 10_000,
      what: 'BGP Established, BFD Up, static route in the FIB',
    });
    expect(bfdA()?.refs).toBe(2); // the neighbour and the static route
    const api = await a.api!.inject({ method: 'GET', url: '/api/v1/bfd/sessions' });
    expect(api.json()).toEqual([
      expect.objectContaining({
        peer: B,
        'local-address': A,
        multihop: false,
        state: 'Up',
        clients: 2,
        'tx-interval-ms': 50,
        'detect-time-ms': 150,
      }),
    ]);
    const flaps = a.speaker.neighbor(B)!.stats.flaps;

    b.speaker.bfd!.setAdminDown(A, { localAddress: B }, true);
    await waitFor(() => ok(bfdA()?.state === 'Down'), { timeoutMs: 3000, what: 'our BFD session Down' });
    // Well past the detection time (150 ms): nothing was torn down.
    await new Promise((r) => setTimeout(r, 500));
    expect(a.speaker.neighbor(B)!.established).toBe(true);
    expect(a.speaker.neighbor(B)!.stats.flaps).toBe(flaps);
    expect(routeAtA()).toBe(true);

    b.speaker.bfd!.setAdminDown(A, { localAddress: B }, false);
    await waitFor(() => ok(bfdA()?.state === 'Up'), { timeoutMs: 5000, what: 'BFD Up again' });
  });
});
