/**
 * End to end: two in-process speakers exchange IPv4 and IPv6 routes with attributes, the
 * receiver's RIB is dumped through the management API (POST /api/v1/bgp/rib/dump), and
 * `bgpdump -m` reads back exactly the routes the RIB holds (RFC 6396 TABLE_DUMP_V2).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildAgentConfig } from '../../src/agent/config.ts';
import { startAgent, type RunningAgent } from '../../src/agent/run.ts';
import { routeViews } from '../../src/bgp/rib-view.ts';
import { freePort, requireDaemon, waitFor } from './harness/common.ts';

const available = requireDaemon('bgpdump');

describe.skipIf(!available)('MRT RIB dump read back by bgpdump', () => {
  let a: RunningAgent;
  let b: RunningAgent;
  const dir = mkdtempSync(join(tmpdir(), 'vce-mrt-'));

  beforeAll(async () => {
    const [pa, pb] = await Promise.all([freePort('127.0.0.61'), freePort('127.0.0.62')]);
    const tag = {
      'policy-definitions': [
        {
          name: 'tag',
          statements: [
            {
              actions: {
                'policy-result': 'accept-route',
                'bgp-actions': {
                  'set-community': { method: 'add', communities: ['65001:7', 'no-export'] },
                  'set-med': 42,
                },
              },
            },
          ],
        },
      ],
    };
    const cfg = (
      me: string,
      asn: number,
      port: number,
      peer: string,
      peerAsn: number,
      peerPort: number,
      networks: string[],
      passive: boolean,
    ) =>
      buildAgentConfig({
        'router-id': me,
        api: { listen: '127.0.0.1:0' },
        'log-level': 'silent',
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
              'export-policy': 'tag',
            },
          ],
          networks,
        },
        policies: tag,
      });
    [a, b] = await Promise.all([
      startAgent(
        cfg(
          '127.0.0.61',
          65001,
          pa,
          '127.0.0.62',
          65002,
          pb,
          ['10.61.0.0/16', '10.61.1.0/24', '2001:db8:61::/48'],
          false,
        ),
      ),
      startAgent(
        cfg('127.0.0.62', 65002, pb, '127.0.0.61', 65001, pa, ['10.62.0.0/16', '2001:db8:62::/48'], true),
      ),
    ]);
    await waitFor(
      () =>
        Promise.resolve(
          routeViews(b.speaker, 'ipv4-unicast').length === 3 &&
            routeViews(b.speaker, 'ipv6-unicast').length === 2
            ? true
            : undefined,
        ),
      { timeoutMs: 10_000, what: 'routes from 127.0.0.61 at 127.0.0.62' },
    );
  });

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('every route of both families comes back with its next hop, AS path, MED and communities', async () => {
    const file = join(dir, 'rib.mrt');
    const res = await b.api!.inject({ method: 'POST', url: '/api/v1/bgp/rib/dump', payload: { path: file } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ path: file, entries: 5 });
    const out = spawnSync('bgpdump', ['-m', file], { encoding: 'utf8' });
    expect(out.status).toBe(0);
    const lines = out.stdout
      .trim()
      .split('\n')
      .map((l) => l.split('|'));
    // TABLE_DUMP2|time|B|peer-ip|peer-as|prefix|as-path|origin|next-hop|local-pref|med|communities|...
    const got = lines.map((f) => ({
      peer: f[3],
      peerAs: f[4],
      prefix: f[5],
      asPath: f[6],
      origin: f[7],
      nextHop: f[8],
      med: f[10],
      comm: f[11],
    }));
    const want = [];
    for (const family of ['ipv4-unicast', 'ipv6-unicast'] as const) {
      for (const r of routeViews(b.speaker, family)) {
        for (const p of r.paths) {
          const fromPeer = p.from !== 'local';
          want.push({
            peer: fromPeer ? '127.0.0.61' : '0.0.0.0',
            peerAs: fromPeer ? '65001' : '65002',
            prefix: r.prefix,
            asPath: p['as-path'],
            origin: p.origin.toUpperCase(),
            nextHop: p['next-hop'] === '::' ? '::' : p['next-hop'],
            med: String(p.med ?? 0),
            comm: p.communities.map((c) => (c === 'no-export' ? 'no-export' : c)).join(' '),
          });
        }
      }
    }
    const key = (x: { prefix?: string; peer?: string }) => `${x.prefix}|${x.peer}`;
    expect(got.map(key).sort()).toEqual(want.map(key).sort());
    for (const w of want) {
      const g = got.find((x) => key(x) === key(w))!;
      expect({ ...g, nextHop: g.nextHop?.replace(/^::ffff:/, '::ffff:') }).toEqual(w);
    }
  });
});
