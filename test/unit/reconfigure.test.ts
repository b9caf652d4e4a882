/**
 * Hot reconfiguration (PUT /api/v1/config): the whole document is validated first, then only the
 * difference is applied. Adding a neighbour, a static route or a context leaves the other sessions
 * up (no flap); removing a context removes all of its state and nothing of another's; removing a
 * neighbour ends its session with Cease/Peer De-configured; a policy change re-evaluates the routes
 * without a session reset; invalid documents and changes that need a restart change nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgentConfig } from '../../src/agent/config.ts';
import { startAgent, type RunningAgent } from '../../src/agent/run.ts';
import { neighborViews, routeViews } from '../../src/bgp/rib-view.ts';
import { freePort, waitFor } from '../interop/harness/common.ts';

const V = '127.0.12.1';
const P1 = '127.0.12.2';
const P2 = '127.0.12.3';
const P3 = '127.0.12.4';
const ports: Record<string, number> = {};
let v: RunningAgent;
const peers: Record<string, RunningAgent> = {};

const ok = (b: boolean): Promise<true | undefined> => Promise.resolve(b ? true : undefined);

function peerAgent(me: string, asn: number): Promise<RunningAgent> {
  return startAgent(
    buildAgentConfig({
      'router-id': me,
      'log-level': 'silent',
      bgp: {
        asn,
        listen: { address: me, port: ports[me]! },
        neighbors: [
          {
            address: V,
            'peer-asn': 65100,
            passive: true,
            'import-policy': 'accept-all',
            'export-policy': 'accept-all',
          },
        ],
        networks: [`10.${me.split('.')[3]}.0.0/16`],
      },
    }),
  );
}

const nb = (addr: string, asn: number, exportPolicy = 'accept-all') => ({
  address: addr,
  'peer-asn': asn,
  'remote-port': ports[addr]!,
  'local-address': V,
  'connect-retry': 1,
  'import-policy': 'accept-all',
  'export-policy': exportPolicy,
});

function doc(o: {
  neighbors: unknown[];
  vrfs: unknown[];
  statics?: unknown[];
  policies?: unknown;
  routerId?: string;
}): Record<string, unknown> {
  return {
    'router-id': o.routerId ?? V,
    'log-level': 'silent',
    api: { listen: `127.0.0.1:${ports['api']}` },
    'static-routes': o.statics ?? [],
    bgp: {
      asn: 65100,
      listen: { address: V, port: ports[V]! },
      neighbors: o.neighbors,
      networks: ['10.100.0.0/16'],
    },
    vrfs: o.vrfs,
    ...(o.policies === undefined ? {} : { policies: o.policies }),
  };
}

const RED = { name: 'red', 'static-routes': [{ prefix: '10.200.0.0/16', interface: 'red0' }] };
const BLUE = { name: 'blue', 'static-routes': [{ prefix: '10.201.0.0/16', interface: 'blue0' }] };
const TAG = {
  'policy-definitions': [
    {
      name: 'tag',
      statements: [
        {
          actions: {
            'policy-result': 'accept-route',
            'bgp-actions': { 'set-community': { method: 'add', communities: ['65100:7'] } },
          },
        },
      ],
    },
  ],
};

async function put(
  body: unknown,
): Promise<{ status: number; body: { changes?: string[]; message?: string } }> {
  const res = await v.api!.inject({
    method: 'PUT',
    url: '/api/v1/config',
    payload: body as Record<string, unknown>,
  });
  return { status: res.statusCode, body: res.json() };
}

const up = (addr: string) => v.speaker.neighbor(addr)?.established === true;
const establishedAt = (addr: string) => v.speaker.neighbor(addr)!.stats.establishedAt;

beforeAll(async () => {
  for (const a of [V, P1, P2, P3]) ports[a] = await freePort(a);
  ports['api'] = await freePort('127.0.0.1');
  [peers[P1], peers[P2], peers[P3]] = await Promise.all([
    peerAgent(P1, 65001),
    peerAgent(P2, 65002),
    peerAgent(P3, 65003),
  ]);
  v = await startAgent(buildAgentConfig(doc({ neighbors: [nb(P1, 65001), nb(P2, 65002)], vrfs: [RED] })));
  await waitFor(() => ok(up(P1) && up(P2)), { timeoutMs: 10_000, what: 'P1 and P2 up' });
});

afterAll(async () => {
  await Promise.all([v?.stop(), ...Object.values(peers).map((p) => p.stop())]);
});

describe('hot reconfiguration', () => {
  it('adding a neighbour, a static route and a context does not touch the other sessions', async () => {
    const t1 = establishedAt(P1);
    const t2 = establishedAt(P2);
    const r = await put(
      doc({
        neighbors: [nb(P1, 65001), nb(P2, 65002), nb(P3, 65003)],
        vrfs: [RED, BLUE],
        statics: [{ prefix: '0.0.0.0/0', 'next-hop': '127.0.12.254' }],
      }),
    );
    expect(r.status).toBe(200);
    expect(r.body.changes).toEqual([
      'default: +static 0.0.0.0/0',
      'default: +neighbor 127.0.12.4',
      'blue: context added',
    ]);
    await waitFor(() => ok(up(P3)), { timeoutMs: 10_000, what: 'P3 up' });
    expect(establishedAt(P1)).toBe(t1);
    expect(establishedAt(P2)).toBe(t2);
    expect(v.speaker.neighbor(P1)!.stats.flaps).toBe(0);
    expect([...v.contexts.keys()]).toEqual(['default', 'red', 'blue']);
    expect(
      v.contexts
        .get('default')!
        .fib(4)
        .map((e) => e.prefix),
    ).toContain('0.0.0.0/0');
  });

  it('removing a context and a neighbour removes their state only; the removed peer is told why', async () => {
    const t1 = establishedAt(P1);
    const r = await put(doc({ neighbors: [nb(P1, 65001), nb(P3, 65003)], vrfs: [BLUE] }));
    expect(r.status).toBe(200);
    expect(r.body.changes).toEqual([
      'red: context removed',
      'default: -static 0.0.0.0/0',
      'default: -neighbor 127.0.12.3',
    ]);
    expect(v.contexts.has('red')).toBe(false);
    expect(neighborViews(v.speaker).map((n) => n.address)).toEqual([P1, P3]);
    expect(routeViews(v.speaker, 'ipv4-unicast').map((x) => x.prefix)).not.toContain('10.3.0.0/16');
    await waitFor(
      () => ok(/PEER_DECONFIGURED/.test(neighborViews(peers[P2]!.speaker)[0]?.['last-error'] ?? '')),
      {
        timeoutMs: 5000,
        what: 'P2 told Cease/Peer De-configured',
      },
    );
    expect(establishedAt(P1)).toBe(t1);
    const vrfs = await v.api!.inject({ method: 'GET', url: '/api/v1/vrfs' });
    expect(vrfs.json<{ name: string }[]>().map((x) => x.name)).toEqual(['default', 'blue']);
  });

  it('a policy change re-evaluates the routes without resetting the session', async () => {
    const t1 = establishedAt(P1);
    const r = await put(
      doc({ neighbors: [nb(P1, 65001, 'tag'), nb(P3, 65003)], vrfs: [BLUE], policies: TAG }),
    );
    expect(r.status).toBe(200);
    expect(r.body.changes).toEqual([
      'default: policies changed: every path re-evaluated',
      'default: ~neighbor 127.0.12.2',
    ]);
    // the export policy of P1 changed: its session is replaced, P3's is not
    await waitFor(() => ok(up(P1)), { timeoutMs: 10_000, what: 'P1 back' });
    await waitFor(
      () =>
        ok(
          routeViews(peers[P1]!.speaker, 'ipv4-unicast')
            .find((x) => x.prefix === '10.100.0.0/16')
            ?.paths[0]?.communities.includes('65100:7') === true,
        ),
      { timeoutMs: 5000, what: 'P1 sees the new community' },
    );
    expect(establishedAt(P1)).not.toBe(t1);
    // now only the policy definitions change (the chain names stay): no session is replaced
    const t1b = establishedAt(P1);
    const t3 = establishedAt(P3);
    const TAG2 = {
      'policy-definitions': [
        {
          name: 'tag',
          statements: [
            {
              actions: {
                'policy-result': 'accept-route',
                'bgp-actions': { 'set-community': { method: 'add', communities: ['65100:8'] } },
              },
            },
          ],
        },
      ],
    };
    const r2 = await put(
      doc({ neighbors: [nb(P1, 65001, 'tag'), nb(P3, 65003)], vrfs: [BLUE], policies: TAG2 }),
    );
    expect(r2.body.changes).toEqual(['default: policies changed: every path re-evaluated']);
    await waitFor(
      () =>
        ok(
          routeViews(peers[P1]!.speaker, 'ipv4-unicast')
            .find((x) => x.prefix === '10.100.0.0/16')
            ?.paths[0]?.communities.includes('65100:8') === true,
        ),
      { timeoutMs: 5000, what: 'P1 sees the re-evaluated community' },
    );
    expect(establishedAt(P1)).toBe(t1b);
    expect(establishedAt(P3)).toBe(t3);
  });

  it('an invalid document or a change that needs a restart changes nothing', async () => {
    const bad = await put({
      ...doc({ neighbors: [nb(P1, 65001)], vrfs: [] }),
      bgp: { asn: 65100, neighbors: [{ address: P1 }] },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toBe('bgp.neighbors[0].peer-asn: missing required key "peer-asn"');
    const many = await v.api!.inject({
      method: 'PUT',
      url: '/api/v1/config',
      payload: {
        ...doc({
          neighbors: [nb(P1, 65001)],
          vrfs: [{ name: 'x', 'static-routes': [{ prefix: '10.0.0.0/33', interface: 'a' }] }],
        }),
        'log-level': 'loud',
      },
    });
    expect(many.statusCode).toBe(400);
    expect(many.json<{ errors: { path: string }[] }>().errors.map((x) => x.path)).toEqual([
      'vrfs[0].static-routes[0].prefix',
      'log-level',
    ]);
    const restart = await put(
      doc({
        neighbors: [nb(P1, 65001, 'tag'), nb(P3, 65003)],
        vrfs: [BLUE],
        policies: TAG,
        routerId: '127.0.12.99',
      }),
    );
    expect(restart.status).toBe(409);
    expect(restart.body.message).toBe('these changes need a restart of the agent: router-id');
    expect(
      neighborViews(v.speaker)
        .map((n) => n.address)
        .sort(),
    ).toEqual([P1, P3]);
    expect([...v.contexts.keys()]).toEqual(['default', 'blue']);
  });
});
