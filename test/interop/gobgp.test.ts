/**
 * vce against gobgpd 3.10 (real daemon, vce in-process):
 *
 *   vce A 127.0.0.21 (AS 65000) ──eBGP, A dials, gobgpd passive──┐
 *                                                                 gobgpd 127.0.0.23 (AS 65001)
 *   vce B 127.0.0.22 (AS 65001) ──iBGP, gobgpd dials, B passive──┘
 *
 * Covers sessions in both directions, IPv4/IPv6 routes both ways with attributes, LOCAL_PREF
 * over iBGP, withdraws, End-of-RIB, route refresh both ways, administrative shutdown and the
 * hold timer (gobgpd SIGSTOPped).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePrefix } from '../../src/lib/ip.ts';
import { findRoute, freePort, requireDaemon, run, stopAll, waitFor } from './harness/common.ts';
import { type GobgpDaemon, startGobgp } from './harness/gobgp.ts';
import { expectHoldTimerExpiry, poll, startVce, taggingExport, type VceHandle } from './vce-agent.ts';

const available = [requireDaemon('gobgpd'), requireDaemon('gobgp')].every(Boolean);

const A = { addr: '127.0.0.21', asn: 65000 };
const B = { addr: '127.0.0.22', asn: 65001 };
const G = { addr: '127.0.0.23', asn: 65001 };
const GNH = { ipv4: '198.51.100.23', ipv6: '2001:db8:ffff::17' };

describe.skipIf(!available)('interop: vce <-> gobgpd', () => {
  let gobgp: GobgpDaemon;
  let a: VceHandle;
  let b: VceHandle;
  const startupMs: Record<string, number> = {};

  const timed = async <T>(name: string, p: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const v = await p();
    startupMs[name] = Math.round(performance.now() - t0);
    return v;
  };

  beforeAll(async () => {
    const [gPort, bPort] = await Promise.all([freePort(G.addr), freePort(B.addr)]);
    const results = await Promise.allSettled([
      timed('gobgpd', () =>
        startGobgp({
          asn: G.asn,
          routerId: '10.255.0.23',
          listenAddress: G.addr,
          listenPort: gPort,
          neighbors: [
            {
              address: A.addr,
              peerAsn: A.asn,
              passive: true,
              holdTime: 3,
              families: ['ipv4-unicast', 'ipv6-unicast'],
            },
            {
              address: B.addr,
              port: bPort,
              peerAsn: B.asn,
              holdTime: 30,
              families: ['ipv4-unicast', 'ipv6-unicast'],
            },
          ],
        }),
      ),
      timed('vce-a', () =>
        startVce({
          asn: A.asn,
          routerId: '10.255.0.21',
          listenAddress: A.addr,
          listenPort: 0,
          neighbor: {
            address: G.addr,
            peerAsn: G.asn,
            passive: false,
            remotePort: gPort,
            localAddress: A.addr,
            holdTime: 3,
            exportPolicy: 'tag',
          },
          networks: ['10.21.0.0/16', '2001:db8:21::/48'],
          policies: [taggingExport('tag', { ipv4: '198.51.100.21', ipv6: '2001:db8:ffff::21' })],
        }),
      ),
      timed('vce-b', () =>
        startVce({
          asn: B.asn,
          routerId: '10.255.0.22',
          listenAddress: B.addr,
          listenPort: bPort,
          neighbor: {
            address: G.addr,
            peerAsn: G.asn,
            passive: true,
            remotePort: gPort,
            localAddress: B.addr,
            holdTime: 30,
            exportPolicy: 'ibgp',
          },
          networks: ['10.22.0.0/16', '2001:db8:22::/48'],
          policies: [
            taggingExport(
              'ibgp',
              { ipv4: '198.51.100.22', ipv6: '2001:db8:ffff::22' },
              { 'set-local-pref': 200 },
            ),
          ],
        }),
      ),
    ]);
    const [g, va, vb] = results;
    if (g?.status === 'fulfilled') gobgp = g.value;
    if (va?.status === 'fulfilled') a = va.value;
    if (vb?.status === 'fulfilled') b = vb.value;
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 0) {
      await stopAll(gobgp, a, b).catch(() => undefined);
      throw new Error(failed.map((r) => String(r.reason)).join('\n\n'));
    }
    const t0 = performance.now();
    const up = (name: string) => (): void => {
      startupMs[name] = Math.round(performance.now() - t0);
    };
    await Promise.all([
      a.waitEstablished().then(up('session-a')),
      b.waitEstablished().then(up('session-b')),
      gobgp.waitEstablished(A.addr),
      gobgp.waitEstablished(B.addr),
    ]);
    startupMs.sessions = Math.round(performance.now() - t0);
    console.log(`gobgp interop startup (ms): ${JSON.stringify(startupMs)}`);
  });

  afterAll(async () => {
    if (gobgp !== undefined) {
      try {
        process.kill(gobgp.pid, 'SIGCONT');
      } catch {
        // already gone
      }
    }
    await stopAll(a, b, gobgp);
  });

  it('sessions come up both ways: vce dials gobgpd (eBGP) and gobgpd dials passive vce (iBGP)', async () => {
    expect(a.view().state).toBe('established');
    expect(b.view().state).toBe('established');
    expect(a.view()['router-id']).toBe('10.255.0.23');
    expect(await gobgp.neighborState(A.addr)).toBe('established');
    expect(await gobgp.neighborState(B.addr)).toBe('established');
    // Direction: A dials (gobgpd's neighbour is passive); B never dials, gobgpd connected to it.
    expect(a.peer().cfg.passive).toBe(false);
    expect(b.peer().cfg.passive).toBe(true);
    expect(b.peer().primary?.socket?.localPort).toBe(b.agent.speaker.listenPort);
  });

  it('vce -> gobgpd: IPv4 and IPv6 routes with communities, large/ext communities, MED, AS path', async () => {
    const v4 = await waitFor(
      async () => findRoute(await gobgp.adjIn(A.addr, 'ipv4-unicast'), '10.21.0.0/16'),
      {
        what: '10.21.0.0/16 from vce A on gobgpd',
      },
    );
    expect(v4).toEqual({
      prefix: '10.21.0.0/16',
      nextHop: '198.51.100.21',
      asPath: [65000],
      origin: 'igp',
      med: 50,
      communities: ['65000:100'],
      largeCommunities: ['65000:1:2'],
      extCommunities: ['rt:65000:7'],
    });
    const v6 = await waitFor(
      async () => findRoute(await gobgp.adjIn(A.addr, 'ipv6-unicast'), '2001:db8:21::/48'),
      {
        what: '2001:db8:21::/48 from vce A on gobgpd',
      },
    );
    expect(v6).toEqual({ ...v4, prefix: '2001:db8:21::/48', nextHop: '2001:db8:ffff::21' });
    // Best in gobgpd's Loc-RIB too.
    expect(findRoute(await gobgp.rib('ipv4-unicast'), '10.21.0.0/16')?.asPath).toEqual([65000]);
  });

  it('gobgpd -> vce: IPv4 and IPv6 routes with every attribute intact', async () => {
    const attrs = {
      communities: ['65001:2', '65001:1'],
      largeCommunities: ['65001:3:4'],
      extCommunities: ['rt:65001:5'],
      med: 77,
      asPath: [64512],
      origin: 'egp' as const,
    };
    await gobgp.addRoute('ipv4-unicast', '10.23.1.0/24', attrs);
    await gobgp.addRoute('ipv6-unicast', '2001:db8:23:1::/64', attrs);
    const v4 = await poll(() => a.best('ipv4-unicast', '10.23.1.0/24'), {
      what: '10.23.1.0/24 from gobgpd on vce A',
    });
    // Communities are kept in the order received (gobgpd sends them as given).
    expect(v4).toMatchObject({
      'next-hop': GNH.ipv4,
      'as-path': '65001 64512',
      origin: 'egp',
      med: 77,
      communities: ['65001:2', '65001:1'],
      'large-communities': ['65001:3:4'],
      'ext-communities': ['rt:65001:5'],
      from: G.addr,
    });
    const v6 = await poll(() => a.best('ipv6-unicast', '2001:db8:23:1::/64'), {
      what: '2001:db8:23:1::/64 from gobgpd on vce A',
    });
    expect(v6).toMatchObject({
      'next-hop': GNH.ipv6,
      'as-path': '65001 64512',
      origin: 'egp',
      med: 77,
      communities: ['65001:2', '65001:1'],
      'large-communities': ['65001:3:4'],
      'ext-communities': ['rt:65001:5'],
    });
  });

  it('LOCAL_PREF over iBGP: vce export sets 200 (seen by gobgpd), gobgpd sends 250 (seen by vce)', async () => {
    const fromB = await waitFor(
      async () => findRoute(await gobgp.adjIn(B.addr, 'ipv4-unicast'), '10.22.0.0/16'),
      {
        what: '10.22.0.0/16 from vce B on gobgpd',
      },
    );
    expect(fromB).toEqual({
      prefix: '10.22.0.0/16',
      nextHop: '198.51.100.22',
      asPath: [],
      origin: 'igp',
      med: 50,
      localPref: 200,
      communities: ['65000:100'],
      largeCommunities: ['65000:1:2'],
      extCommunities: ['rt:65000:7'],
    });
    const fromB6 = await waitFor(
      async () => findRoute(await gobgp.adjIn(B.addr, 'ipv6-unicast'), '2001:db8:22::/48'),
      { what: '2001:db8:22::/48 from vce B on gobgpd' },
    );
    expect(fromB6.localPref).toBe(200);
    await gobgp.addRoute('ipv4-unicast', '10.23.2.0/24', { localPref: 250, communities: ['65001:250'] });
    const onB = await poll(() => b.best('ipv4-unicast', '10.23.2.0/24'), {
      what: '10.23.2.0/24 from gobgpd on vce B (iBGP)',
    });
    expect(onB).toMatchObject({
      'local-pref': 250,
      'as-path': '',
      communities: ['65001:250'],
      'next-hop': GNH.ipv4,
    });
    // The eBGP route from A travels gobgpd -> B over iBGP unchanged, with gobgpd's default LOCAL_PREF.
    const transit = await poll(() => b.best('ipv4-unicast', '10.21.0.0/16'), {
      what: '10.21.0.0/16 via gobgpd on vce B',
    });
    expect(transit).toMatchObject({ 'as-path': '65000', 'local-pref': 100, communities: ['65000:100'] });
  });

  it('withdraws both ways (IPv4 and IPv6)', async () => {
    // vce -> gobgpd
    a.agent.speaker.originate(parsePrefix('10.21.99.0/24'));
    a.agent.speaker.originate(parsePrefix('2001:db8:21:99::/64'));
    await waitFor(async () => findRoute(await gobgp.adjIn(A.addr, 'ipv4-unicast'), '10.21.99.0/24'), {
      what: '10.21.99.0/24 on gobgpd',
    });
    await waitFor(async () => findRoute(await gobgp.adjIn(A.addr, 'ipv6-unicast'), '2001:db8:21:99::/64'), {
      what: '2001:db8:21:99::/64 on gobgpd',
    });
    a.agent.speaker.withdrawLocal(parsePrefix('10.21.99.0/24'));
    a.agent.speaker.withdrawLocal(parsePrefix('2001:db8:21:99::/64'));
    await waitFor(
      async () =>
        findRoute(await gobgp.adjIn(A.addr, 'ipv4-unicast'), '10.21.99.0/24') === undefined
          ? true
          : undefined,
      { what: '10.21.99.0/24 withdrawn on gobgpd' },
    );
    await waitFor(
      async () =>
        findRoute(await gobgp.adjIn(A.addr, 'ipv6-unicast'), '2001:db8:21:99::/64') === undefined
          ? true
          : undefined,
      { what: '2001:db8:21:99::/64 withdrawn on gobgpd' },
    );
    // gobgpd -> vce
    await gobgp.addRoute('ipv4-unicast', '10.23.99.0/24');
    await gobgp.addRoute('ipv6-unicast', '2001:db8:23:99::/64');
    await poll(() => a.best('ipv4-unicast', '10.23.99.0/24'), { what: '10.23.99.0/24 on vce A' });
    await poll(() => a.best('ipv6-unicast', '2001:db8:23:99::/64'), { what: '2001:db8:23:99::/64 on vce A' });
    await gobgp.delRoute('ipv4-unicast', '10.23.99.0/24');
    await gobgp.delRoute('ipv6-unicast', '2001:db8:23:99::/64');
    await poll(() => (a.paths('ipv4-unicast', '10.23.99.0/24').length === 0 ? true : undefined), {
      what: '10.23.99.0/24 withdrawn on vce A',
    });
    await poll(() => (a.paths('ipv6-unicast', '2001:db8:23:99::/64').length === 0 ? true : undefined), {
      what: '2001:db8:23:99::/64 withdrawn on vce A',
    });
  });

  // gobgpd 3.10 appends End-of-RIB markers only for neighbours with graceful restart enabled
  // in its own config (getBestFromLocal), which the harness TOML does not set: no EoR ever
  // arrives (checked: none on the initial session either). Also, `gobgp neighbor reset` on a
  // passive neighbour leaves gobgpd refusing the reconnects ("Closed an accepted connection",
  // BGP_FSM_IDLE) for well over 20 s, so fresh sessions are made from the vce side here.
  // EoR from a real daemon is covered in bird.test.ts.
  it('End-of-RIB: gobgpd records the End-of-RIB vce sent for both families', async () => {
    const n = JSON.parse(await gobgp.cli('neighbor', A.addr, '-j')) as {
      afi_safis?: {
        config?: { family?: { afi?: number } };
        mp_graceful_restart?: { state?: { end_of_rib_received?: boolean } };
      }[];
    };
    const eor = (n.afi_safis ?? []).map((f) => [
      f.config?.family?.afi,
      f.mp_graceful_restart?.state?.end_of_rib_received,
    ]);
    expect(eor).toEqual(
      expect.arrayContaining([
        [1, true],
        [2, true],
      ]),
    );
  });

  it.skip('End-of-RIB from gobgpd (needs graceful restart in the gobgpd harness config)', async () => {
    const since = Date.now();
    a.agent.speaker.stopPeer(a.peer());
    await a.agent.api!.inject({
      method: 'POST',
      url: `/api/v1/bgp/neighbors/${G.addr}/actions`,
      payload: { action: 'enable' },
    });
    for (const fam of ['ipv4-unicast', 'ipv6-unicast']) {
      await a.waitEvent(
        (e) => e.type === 'end-of-rib' && e.detail === fam && e.at >= since,
        `End-of-RIB ${fam} from gobgpd`,
        20_000,
      );
    }
  });

  it('route refresh: vce asks gobgpd (API soft-reset-in) and gobgpd re-sends', async () => {
    await poll(() => a.best('ipv4-unicast', '10.23.1.0/24'), { what: '10.23.1.0/24 on vce A' });
    const before = a.view().messages['updates-in'];
    const res = await a.agent.api!.inject({
      method: 'POST',
      url: `/api/v1/bgp/neighbors/${G.addr}/actions`,
      payload: { action: 'soft-reset-in' },
    });
    expect(res.statusCode).toBe(200);
    await poll(() => (a.view().messages['updates-in'] > before ? true : undefined), {
      what: 'gobgpd to re-send UPDATEs after ROUTE-REFRESH',
      describe: () => JSON.stringify(a.view()),
    });
    // refreshFrom directly, per family.
    const before6 = a.view().messages['updates-in'];
    expect(a.agent.speaker.refreshFrom(a.peer(), 'ipv6-unicast')).toBe(true);
    await poll(() => (a.view().messages['updates-in'] > before6 ? true : undefined), {
      what: 'gobgpd to re-send IPv6 UPDATEs after ROUTE-REFRESH',
    });
    expect(a.best('ipv4-unicast', '10.23.1.0/24')?.med).toBe(77);
  });

  // gobgpd 3.10 never sends ROUTE-REFRESH: `gobgp neighbor X softresetin` re-runs its import
  // policy over its own Adj-RIB-In (its sent-message counters show no refresh, and no UPDATE
  // comes back from vce). vce's answer to a peer's ROUTE-REFRESH is covered in bird.test.ts.
  it.skip('route refresh: gobgpd asks vce and vce re-sends (gobgpd cannot send ROUTE-REFRESH)', async () => {
    const before = a.view().messages;
    await gobgp.softResetIn(A.addr, 'ipv4-unicast');
    await poll(() => (a.view().messages['updates-out'] > before['updates-out'] ? true : undefined), {
      what: 'vce to re-send UPDATEs after ROUTE-REFRESH from gobgpd',
    });
  });

  it('gobgpd softresetout re-sends its Adj-RIB-Out to vce (updates-in increases)', async () => {
    await poll(() => a.best('ipv4-unicast', '10.23.1.0/24'), { what: '10.23.1.0/24 on vce A' });
    const before = a.view().messages['updates-in'];
    await gobgp.softResetOut(A.addr);
    await poll(() => (a.view().messages['updates-in'] > before ? true : undefined), {
      what: 'UPDATEs from gobgpd after softresetout',
    });
    expect(a.best('ipv4-unicast', '10.23.1.0/24')?.med).toBe(77);
  });

  it('administrative shutdown: speaker.stopPeer -> gobgpd sees the session go down with a Cease', async () => {
    const notifBefore = await gobgpNotificationsIn(gobgp, A.addr);
    a.agent.speaker.stopPeer(a.peer(), 2, 'interop test shutdown');
    await waitFor(async () => ((await gobgp.neighborState(A.addr)) !== 'established' ? true : undefined), {
      what: 'gobgpd to see the session with vce A go down',
    });
    await waitFor(
      async () => ((await gobgpNotificationsIn(gobgp, A.addr)) > notifBefore ? true : undefined),
      { what: 'gobgpd to count the received NOTIFICATION (Cease)', describe: () => gobgp.handle.logTail(20) },
    );
    const log = await gobgp.handle.logTail(200);
    expect(log).toMatch(/interop test shutdown|[Cc]ease|administrative shutdown/);
    expect(a.peer().established).toBe(false);
    // Re-enable through the API; the session and routes come back.
    const res = await a.agent.api!.inject({
      method: 'POST',
      url: `/api/v1/bgp/neighbors/${G.addr}/actions`,
      payload: { action: 'enable' },
    });
    expect(res.statusCode).toBe(200);
    await a.waitEstablished();
    await gobgp.waitEstablished(A.addr);
    await waitFor(async () => findRoute(await gobgp.adjIn(A.addr, 'ipv4-unicast'), '10.21.0.0/16'), {
      what: '10.21.0.0/16 back on gobgpd after enable',
    });
  });

  it('hold timer: gobgpd SIGSTOPped -> vce declares hold timer expired within ~3-5 s, recovers after SIGCONT', async () => {
    await a.waitEstablished();
    await expectHoldTimerExpiry(a, gobgp.pid, 'vce A to drop the session with the stopped gobgpd');
    await a.waitEstablished(30_000);
    await gobgp.waitEstablished(A.addr, 30_000);
    await poll(() => a.best('ipv4-unicast', '10.23.1.0/24'), { what: '10.23.1.0/24 back on vce A' });
    // The iBGP session (hold 30 s) survived the pause.
    expect(b.peer().established).toBe(true);
  });
});

/** NOTIFICATIONs gobgpd received from `neighbor` (from `gobgp neighbor X -j`). */
async function gobgpNotificationsIn(g: GobgpDaemon, neighbor: string): Promise<number> {
  const { stdout } = await run('gobgp', [
    '-u',
    '127.0.0.1',
    '-p',
    String(g.config.grpcPort),
    'neighbor',
    neighbor,
    '-j',
  ]);
  const n = JSON.parse(stdout) as {
    state?: { messages?: { received?: { notification?: number | string } } };
  };
  return Number(n.state?.messages?.received?.notification ?? 0);
}
