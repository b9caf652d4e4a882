/**
 * Long-running churn must not grow memory: when a route's attributes keep changing, the attribute
 * sets, the per-peer caches and the out sets built for each neighbour are released with the old
 * versions. A (origin, changes its route 200 times) -> B (transit) -> C (receiver), over loopback.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { buildAgentConfig } from '../../src/agent/config.ts';
import { startAgent, type RunningAgent } from '../../src/agent/run.ts';
import { routeViews } from '../../src/bgp/rib-view.ts';
import { parsePrefix } from '../../src/lib/ip.ts';
import { freePort, waitFor } from '../interop/harness/common.ts';

const A = '127.0.0.91';
const B = '127.0.0.92';
const C = '127.0.0.93';
const agents: RunningAgent[] = [];
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
});

describe('attribute churn', () => {
  it('keeps attribute sets, caches and out sets bounded while a route changes 200 times', async () => {
    const [pa, pb, pc] = await Promise.all([freePort(A), freePort(B), freePort(C)]);
    const nb = (me: string, address: string, asn: number, port: number, passive: boolean) => ({
      address,
      'local-address': me,
      'peer-asn': asn,
      passive,
      'remote-port': port,
      'connect-retry': 1,
      'import-policy': 'accept-all',
      'export-policy': 'accept-all',
    });
    const cfg = (me: string, asn: number, port: number, neighbors: unknown[]) =>
      buildAgentConfig({
        'router-id': me,
        'log-level': 'silent',
        bgp: { asn, listen: { address: me, port }, neighbors },
      });
    agents.push(
      ...(await Promise.all([
        startAgent(cfg(A, 65091, pa, [nb(A, B, 65092, pb, false)])),
        startAgent(cfg(B, 65092, pb, [nb(B, A, 65091, pa, true), nb(B, C, 65093, pc, true)])),
        startAgent(cfg(C, 65093, pc, [nb(C, B, 65092, pb, false)])),
      ])),
    );
    const [a, b, c] = agents as [RunningAgent, RunningAgent, RunningAgent];
    const pfx = parsePrefix('10.91.0.0/16');
    await waitFor(
      () =>
        Promise.resolve(
          agents.every((x) => x.speaker.peerList().every((p) => p.established)) ? true : undefined,
        ),
      { timeoutMs: 10_000, what: 'sessions' },
    );
    for (let i = 1; i <= 200; i++) {
      a.speaker.originate(pfx, { communities: [(65091 << 16) | i] });
      await new Promise((r) => setImmediate(r)); // let each version through the whole chain
      if (i % 50 === 0) {
        await waitFor(
          () =>
            Promise.resolve(
              routeViews(c.speaker, 'ipv4-unicast', pfx)[0]?.paths[0]?.communities[0] === `65091:${i}`
                ? true
                : undefined,
            ),
          {
            timeoutMs: 5000,
            what: `version ${i} at C (C has ${JSON.stringify(routeViews(c.speaker, 'ipv4-unicast'))}, B has ${JSON.stringify(routeViews(b.speaker, 'ipv4-unicast'))})`,
          },
        );
      }
    }
    const peerC = b.speaker.neighbor(C)!;
    const peerA = b.speaker.neighbor(A)!;
    // One live version: a handful of sets at most (the route, plus transient ones not yet released).
    expect(b.speaker.attrs.size).toBeLessThanOrEqual(3);
    expect(b.speaker.neighbor(A)!.stats.updatesIn).toBeGreaterThan(50); // versions really went through
    expect(peerA.rawCache.size).toBeLessThanOrEqual(3);
    expect(peerC.outSets.size).toBeLessThanOrEqual(3);
    expect(peerC.exportCache.size).toBeLessThanOrEqual(3);
    expect(routeViews(c.speaker, 'ipv4-unicast', pfx)[0]?.paths[0]?.communities).toEqual(['65091:200']);
  });
});
