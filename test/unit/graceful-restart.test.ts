/**
 * Graceful restart, helper mode (RFC 4724 §4.2), between two in-process speakers over loopback:
 * when the session drops without a NOTIFICATION the helper keeps the peer's routes, marked stale;
 * on the new session the routes re-announced before End-of-RIB are refreshed and the others are
 * flushed; when the peer does not come back within its restart time, every stale route goes.
 * After a NOTIFICATION (no N bit) the routes go at once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { buildAgentConfig } from '../../src/agent/config.ts';
import { startAgent, type RunningAgent } from '../../src/agent/run.ts';
import { routeViews } from '../../src/bgp/rib-view.ts';
import { parsePrefix } from '../../src/lib/ip.ts';
import { freePort, waitFor } from '../interop/harness/common.ts';

const H = '127.0.0.81'; // helper (keeps the routes)
const R = '127.0.0.82'; // restarting peer

const running: RunningAgent[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((a) => a.stop()));
});

async function pair(restartTime: number): Promise<{ h: RunningAgent; r: RunningAgent }> {
  const [ph, pr] = await Promise.all([freePort(H), freePort(R)]);
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
            'hold-time': 9,
            'import-policy': 'accept-all',
            'export-policy': 'accept-all',
            'graceful-restart': { 'restart-time': restartTime },
          },
        ],
        networks,
      },
    });
  const [h, r] = await Promise.all([
    startAgent(cfg(H, 65081, ph, R, 65082, pr, ['10.81.0.0/16'], true)),
    startAgent(cfg(R, 65082, pr, H, 65081, ph, ['10.82.0.0/16', '10.82.1.0/24', '2001:db8:82::/48'], false)),
  ]);
  running.push(h, r);
  await waitFor(
    () => Promise.resolve(routeViews(h.speaker, 'ipv4-unicast').length === 3 ? true : undefined),
    {
      timeoutMs: 10_000,
      what: 'routes of the restarting peer at the helper',
    },
  );
  return { h, r };
}

/** Drops the TCP connection under both speakers without any NOTIFICATION (a crash, seen from outside). */
function cut(r: RunningAgent): void {
  for (const p of r.speaker.peerList()) for (const s of p.sessions) s.socket?.destroy();
}

function staleOf(h: RunningAgent, family: 'ipv4-unicast' | 'ipv6-unicast'): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const v of routeViews(h.speaker, family))
    for (const p of v.paths) if (p.from !== 'local') out[v.prefix] = p.stale;
  return out;
}

describe('graceful restart helper (RFC 4724)', () => {
  it('keeps the routes stale across the restart, then flushes what was not re-announced before End-of-RIB', async () => {
    const { h, r } = await pair(30);
    const peerAtH = h.speaker.neighbor(R)!;
    expect(peerAtH.negotiated?.peerGracefulRestart?.restartTime).toBe(30);
    const eor = new Promise<void>((resolve) => {
      h.speaker.on('end-of-rib', (p: unknown, f: string) => {
        if (p === peerAtH && f === 'ipv4-unicast') resolve();
      });
    });
    r.speaker.withdrawLocal(parsePrefix('10.82.1.0/24')); // an ordinary withdraw before the restart
    await waitFor(
      () => Promise.resolve(staleOf(h, 'ipv4-unicast')['10.82.1.0/24'] === undefined ? true : undefined),
      {
        timeoutMs: 5000,
        what: 'withdraw of 10.82.1.0/24',
      },
    );
    r.speaker.originate(parsePrefix('10.82.2.0/24'));
    await waitFor(
      () => Promise.resolve(staleOf(h, 'ipv4-unicast')['10.82.2.0/24'] === false ? true : undefined),
      {
        timeoutMs: 5000,
        what: '10.82.2.0/24 at the helper',
      },
    );
    // The restarting side forgets 10.82.2.0/24 during its "restart": it must not survive the EoR.
    cut(r);
    r.speaker.withdrawLocal(parsePrefix('10.82.2.0/24'));
    await waitFor(() => Promise.resolve(peerAtH.established ? undefined : true), {
      timeoutMs: 5000,
      what: 'session down at the helper',
    });
    expect(staleOf(h, 'ipv4-unicast')).toEqual({ '10.82.0.0/16': true, '10.82.2.0/24': true });
    expect(staleOf(h, 'ipv6-unicast')).toEqual({ '2001:db8:82::/48': true });
    await eor;
    await waitFor(
      () => Promise.resolve(staleOf(h, 'ipv6-unicast')['2001:db8:82::/48'] === false ? true : undefined),
      {
        timeoutMs: 10_000,
        what: 'IPv6 End-of-RIB',
      },
    );
    expect(staleOf(h, 'ipv4-unicast')).toEqual({ '10.82.0.0/16': false });
    expect(staleOf(h, 'ipv6-unicast')).toEqual({ '2001:db8:82::/48': false });
  });

  it('flushes every stale route when the peer does not come back within its restart time', async () => {
    const { h, r } = await pair(1);
    const peerAtR = r.speaker.neighbor(H)!;
    const peerAtH = h.speaker.neighbor(R)!;
    cut(r); // the helper sees the connection drop without a NOTIFICATION...
    r.speaker.stopPeer(peerAtR); // ...and the restarting side does not come back
    await waitFor(() => Promise.resolve(peerAtH.established ? undefined : true), {
      timeoutMs: 5000,
      what: 'session down',
    });
    const t0 = Date.now();
    expect(Object.values(staleOf(h, 'ipv4-unicast')).every((s) => s)).toBe(true);
    await waitFor(
      () => Promise.resolve(routeViews(h.speaker, 'ipv4-unicast').length === 1 ? true : undefined),
      {
        timeoutMs: 5000,
        what: 'stale routes flushed after the restart time',
      },
    );
    expect(Date.now() - t0).toBeGreaterThanOrEqual(500);
    expect(routeViews(h.speaker, 'ipv6-unicast')).toEqual([]);
  });

  it('after a NOTIFICATION (no N bit) the routes are removed at once', async () => {
    const { h, r } = await pair(30);
    const peerAtH = h.speaker.neighbor(R)!;
    r.speaker.stopPeer(r.speaker.neighbor(H)!, 2, 'maintenance');
    await waitFor(() => Promise.resolve(peerAtH.established ? undefined : true), {
      timeoutMs: 5000,
      what: 'session down',
    });
    expect(routeViews(h.speaker, 'ipv4-unicast').map((v) => v.prefix)).toEqual(['10.81.0.0/16']);
  });
});
