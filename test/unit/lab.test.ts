/**
 * `vce lab` in-process: an embedded PE and two vCEs on loopback converge; every agent has its
 * sessions up and every node's IPv4 and IPv6 prefix, with the AS paths of the hub topology.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLab, type Lab } from '../../src/lab/lab.ts';
import type { RunningAgent } from '../../src/agent/run.ts';
import { neighborViews, routeViews } from '../../src/bgp/rib-view.ts';

const PREFIXES = {
  'ipv4-unicast': ['10.1.0.0/16', '10.2.0.0/16', '192.0.2.0/24'],
  'ipv6-unicast': ['2001:db8:1::/48', '2001:db8:2::/48', '2001:db8:ffff::/48'],
} as const;

function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** A base port below the ephemeral range whose lab ports are all free right now. */
async function freeBase(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const base = 20_000 + Math.floor(Math.random() * 10_000);
    const checks = [
      canBind('127.0.0.1', base),
      canBind('127.0.0.2', base),
      canBind('127.0.0.3', base),
      canBind('127.0.0.1', base + 1),
      canBind('127.0.0.1', base + 2),
      canBind('127.0.0.1', base + 3),
      canBind('127.0.1.1', base + 10),
      canBind('127.0.1.2', base + 10),
      canBind('127.0.0.1', base + 11),
      canBind('127.0.0.1', base + 12),
      canBind('127.0.1.11', base + 13),
      canBind('127.0.0.1', base + 14),
    ];
    if ((await Promise.all(checks)).every(Boolean)) return base;
  }
  throw new Error('no free port range for the lab');
}

describe('vce lab', () => {
  let agents: RunningAgent[] = [];
  let lab: Lab | undefined;

  beforeAll(async () => {
    lab = await runLab({ basePort: await freeBase(), detach: true, quiet: true });
    agents = lab.agents;
  }, 90_000);

  afterAll(async () => {
    await lab?.stop();
  });

  it('act 2: the controller binds a tenant by the push model; the site and the vCE exchange routes', () => {
    const p = lab!.push;
    expect(p.operation.state).toBe('succeeded');
    expect(p.operation.steps.map((s) => s.state)).toEqual(p.operation.steps.map(() => 'done'));
    expect(
      p.wanPe.contexts
        .get('acme-site')!
        .fib()
        .map((e) => e.prefix),
    ).toContain('10.100.1.0/24');
    expect(
      p.vce
        .agent!.contexts.get('prod')!
        .fib()
        .map((e) => e.prefix),
    ).toContain('203.0.113.0/24');
  });

  it('starts three agents with their APIs', () => {
    expect(agents).toHaveLength(3);
    expect(agents.map((a) => a.speaker.cfg.asn)).toEqual([65000, 65001, 65002]);
    for (const a of agents) expect(a.apiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('every neighbour is established (the PE has both vCEs, each vCE the PE)', () => {
    const [pe, a, b] = agents;
    expect(neighborViews(pe!.speaker).map((v) => [v.address, v.state])).toEqual([
      ['127.0.0.2', 'established'],
      ['127.0.0.3', 'established'],
    ]);
    for (const v of [a!, b!])
      expect(neighborViews(v.speaker).map((n) => [n.address, n.state])).toEqual([
        ['127.0.0.1', 'established'],
      ]);
  });

  it('every agent holds all three prefixes of each family', () => {
    for (const a of agents) {
      for (const [family, want] of Object.entries(PREFIXES) as [keyof typeof PREFIXES, readonly string[]][]) {
        const routes = routeViews(a.speaker, family);
        expect(routes.map((r) => r.prefix).sort(), `${a.speaker.cfg.asn} ${family}`).toEqual(
          [...want].sort(),
        );
        for (const r of routes) expect(r.paths.filter((p) => p.best)).toHaveLength(1);
      }
    }
  });

  it('the vCEs reach each other through the PE', () => {
    const [, a, b] = agents;
    const path = (ag: RunningAgent, prefix: string): string =>
      routeViews(ag.speaker, prefix.includes(':') ? 'ipv6-unicast' : 'ipv4-unicast').find(
        (r) => r.prefix === prefix,
      )!.paths[0]!['as-path'];
    expect(path(a!, '10.2.0.0/16')).toBe('65000 65002');
    expect(path(b!, '10.1.0.0/16')).toBe('65000 65001');
    expect(path(a!, '2001:db8:2::/48')).toBe('65000 65002');
    expect(path(b!, '192.0.2.0/24')).toBe('65000');
  });

  it('the management API of each agent answers', async () => {
    for (const a of agents) {
      const res = await fetch(`${a.apiUrl!}/api/v1/bgp/rib/ipv4-unicast`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as unknown[]).length).toBe(3);
    }
  });
});
