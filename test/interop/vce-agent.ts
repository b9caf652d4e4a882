/**
 * In-process vce speakers for the interop tests against real daemons (gobgp.test.ts,
 * bird.test.ts): config building, event recording and small read helpers over the RIB and
 * neighbour views. Every wait polls (`waitFor`), never sleeps a fixed time.
 */
import { expect } from 'vitest';
import { buildAgentConfig } from '../../src/agent/config.ts';
import { startAgent, type RunningAgent } from '../../src/agent/run.ts';
import type { Peer } from '../../src/bgp/peer.ts';
import { neighborViews, routeViews, type NeighborView, type PathView } from '../../src/bgp/rib-view.ts';
import type { AfiSafiName } from '../../src/bgp/wire/constants.ts';
import { parsePrefix } from '../../src/lib/ip.ts';
import { waitFor } from './harness/common.ts';

export interface VceNeighbor {
  address: string;
  peerAsn: number;
  passive: boolean;
  remotePort: number;
  localAddress: string;
  holdTime: number;
  exportPolicy: string;
}

export interface VceOptions {
  asn: number;
  routerId: string;
  listenAddress: string;
  listenPort: number;
  neighbor: VceNeighbor;
  networks: string[];
  /** `policy-definitions` entries. */
  policies: unknown[];
}

export interface RecordedEvent {
  type: 'peer-established' | 'peer-down' | 'end-of-rib';
  peer: string;
  detail?: string;
  at: number;
}

export interface VceHandle {
  agent: RunningAgent;
  peerAddress: string;
  events: RecordedEvent[];
  peer(): Peer;
  view(): NeighborView;
  paths(family: AfiSafiName, prefix: string): PathView[];
  best(family: AfiSafiName, prefix: string): PathView | undefined;
  waitEstablished(timeoutMs?: number): Promise<void>;
  waitEvent(pred: (e: RecordedEvent) => boolean, what: string, timeoutMs?: number): Promise<RecordedEvent>;
  stop(): Promise<void>;
}

/** Export statements that tag our routes and set a TEST-NET next hop per family. */
export function taggingExport(
  name: string,
  nextHops: { ipv4: string; ipv6: string },
  extra: Record<string, unknown> = {},
): unknown {
  const tags = {
    'set-community': { method: 'add', communities: ['65000:100'] },
    'set-large-community': { method: 'add', communities: ['65000:1:2'] },
    'set-ext-community': { method: 'add', communities: ['rt:65000:7'] },
    'set-med': 50,
    ...extra,
  };
  return {
    name,
    statements: [
      {
        name: 'v4',
        conditions: { 'afi-safi-in': ['ipv4-unicast'] },
        actions: {
          'policy-result': 'accept-route',
          'bgp-actions': { ...tags, 'set-next-hop': nextHops.ipv4 },
        },
      },
      {
        name: 'v6',
        conditions: { 'afi-safi-in': ['ipv6-unicast'] },
        actions: {
          'policy-result': 'accept-route',
          'bgp-actions': { ...tags, 'set-next-hop': nextHops.ipv6 },
        },
      },
    ],
  };
}

export async function startVce(o: VceOptions): Promise<VceHandle> {
  const cfg = buildAgentConfig({
    'router-id': o.routerId,
    api: { listen: '127.0.0.1:0' },
    'log-level': 'silent',
    bgp: {
      asn: o.asn,
      listen: { address: o.listenAddress, port: o.listenPort },
      neighbors: [
        {
          address: o.neighbor.address,
          'peer-asn': o.neighbor.peerAsn,
          passive: o.neighbor.passive,
          'remote-port': o.neighbor.remotePort,
          'local-address': o.neighbor.localAddress,
          'afi-safis': ['ipv4-unicast', 'ipv6-unicast'],
          'import-policy': 'accept-all',
          'export-policy': o.neighbor.exportPolicy,
          'hold-time': o.neighbor.holdTime,
          'connect-retry': 1,
        },
      ],
      networks: o.networks,
    },
    policies: {
      'policy-definitions': o.policies,
    },
  });
  const agent = await startAgent(cfg);
  const sp = agent.speaker;
  const events: RecordedEvent[] = [];
  sp.on('peer-established', (p: Peer) =>
    events.push({ type: 'peer-established', peer: p.cfg.address, at: Date.now() }),
  );
  sp.on('peer-down', (p: Peer, reason: string) =>
    events.push({ type: 'peer-down', peer: p.cfg.address, detail: reason, at: Date.now() }),
  );
  sp.on('end-of-rib', (p: Peer, f: string) =>
    events.push({ type: 'end-of-rib', peer: p.cfg.address, detail: f, at: Date.now() }),
  );
  const addr = o.neighbor.address;
  const h: VceHandle = {
    agent,
    peerAddress: addr,
    events,
    peer: () => {
      const p = sp.neighbor(addr);
      if (p === undefined) throw new Error(`no neighbor ${addr}`);
      return p;
    },
    view: () => {
      const v = neighborViews(sp).find((n) => n.address === addr);
      if (v === undefined) throw new Error(`no neighbor view ${addr}`);
      return v;
    },
    paths: (family, prefix) => routeViews(sp, family, parsePrefix(prefix)).flatMap((r) => r.paths),
    best: (family, prefix) => h.paths(family, prefix).find((p) => p.best),
    waitEstablished: (timeoutMs = 20_000) =>
      poll(() => (h.peer().established ? true : undefined), {
        what: `vce ${o.listenAddress} session with ${addr} established`,
        timeoutMs,
        describe: () => JSON.stringify(h.view()),
      }).then(() => undefined),
    waitEvent: (pred, what, timeoutMs = 15_000) =>
      poll(() => events.find(pred), {
        what,
        timeoutMs,
        describe: () => `events: ${JSON.stringify(events)}`,
      }),
    stop: () => agent.stop(),
  };
  return h;
}

/** `waitFor` for a synchronous probe of the in-process speaker. */
export function poll<T>(fn: () => T | undefined, opts: Parameters<typeof waitFor>[1]): Promise<T> {
  return waitFor(() => Promise.resolve(fn()), opts);
}

/**
 * Freezes a daemon (SIGSTOP) and expects vce's speaker `a` to drop the session with "hold timer
 * expired" after its 3 s hold time (1.5-5.5 s allowed), then lets the daemon run again.
 */
export async function expectHoldTimerExpiry(a: VceHandle, pid: number, what: string): Promise<void> {
  const since = Date.now();
  process.kill(pid, 'SIGSTOP');
  let down: RecordedEvent;
  try {
    down = await a.waitEvent((e) => e.type === 'peer-down' && e.at >= since, what, 10_000);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  expect(down.detail).toMatch(/hold timer expired/);
  const elapsed = down.at - since;
  expect(elapsed).toBeGreaterThanOrEqual(1_500);
  expect(elapsed).toBeLessThan(5_500);
  expect(a.view()['last-error']).toMatch(/hold timer expired/);
}
