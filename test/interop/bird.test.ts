/**
 * vce against BIRD 2.0.12 (real daemon, vce in-process):
 *
 *   vce A 127.0.0.31 (AS 65000) ──eBGP, A dials, BIRD passive──┐
 *                                                               BIRD 127.0.0.33 (AS 65002)
 *   vce B 127.0.0.32 (AS 65002) ──iBGP, BIRD dials, B passive──┘
 *
 * Covers sessions in both directions, IPv4/IPv6 routes both ways with attributes, LOCAL_PREF
 * over iBGP, withdraws, End-of-RIB, route refresh both ways, administrative shutdown and the
 * hold timer (BIRD SIGSTOPped).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePrefix } from '../../src/lib/ip.ts';
import { type BirdDaemon, startBird } from './harness/bird.ts';
import { findRoute, freePort, requireDaemon, stopAll, waitFor } from './harness/common.ts';
import { expectHoldTimerExpiry, poll, startVce, taggingExport, type VceHandle } from './vce-agent.ts';

const available = [requireDaemon('bird'), requireDaemon('birdc')].every(Boolean);

const A = { addr: '127.0.0.31', asn: 65000 };
const B = { addr: '127.0.0.32', asn: 65002 };
const R = { addr: '127.0.0.33', asn: 65002 };
const RNH = { ipv4: '198.51.100.33', ipv6: '2001:db8:ffff::21' };

const birdAttrs = {
  communities: ['65002:2', '65002:1'],
  largeCommunities: ['65002:3:4'],
  extCommunities: ['rt:65002:5'],
  med: 77,
  asPath: [64512],
  origin: 'egp' as const,
};

describe.skipIf(!available)('interop: vce <-> BIRD', () => {
  let bird: BirdDaemon;
  let a: VceHandle;
  let b: VceHandle;
  const startupMs: Record<string, number> = {};

  const timed = async <T>(name: string, p: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const v = await p();
    startupMs[name] = Math.round(performance.now() - t0);
    return v;
  };

  const action = (h: VceHandle, act: string) =>
    h.agent.api!.inject({
      method: 'POST',
      url: `/api/v1/bgp/neighbors/${R.addr}/actions`,
      payload: { action: act },
    });

  beforeAll(async () => {
    const [rPort, bPort] = await Promise.all([freePort(R.addr), freePort(B.addr)]);
    const results = await Promise.allSettled([
      timed('bird', () =>
        startBird({
          asn: R.asn,
          routerId: '10.255.0.33',
          listenAddress: R.addr,
          listenPort: rPort,
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
          staticRoutes: [
            { family: 'ipv4-unicast', prefix: '10.33.1.0/24', attrs: birdAttrs },
            { family: 'ipv6-unicast', prefix: '2001:db8:33:1::/64', attrs: birdAttrs },
            {
              family: 'ipv4-unicast',
              prefix: '10.33.2.0/24',
              attrs: { localPref: 250, communities: ['65002:250'] },
            },
          ],
        }),
      ),
      timed('vce-a', () =>
        startVce({
          asn: A.asn,
          routerId: '10.255.0.31',
          listenAddress: A.addr,
          listenPort: 0,
          neighbor: {
            address: R.addr,
            peerAsn: R.asn,
            passive: false,
            remotePort: rPort,
            localAddress: A.addr,
            holdTime: 3,
            exportPolicy: 'tag',
          },
          networks: ['10.31.0.0/16', '2001:db8:31::/48'],
          policies: [taggingExport('tag', { ipv4: '198.51.100.31', ipv6: '2001:db8:ffff::31' })],
        }),
      ),
      timed('vce-b', () =>
        startVce({
          asn: B.asn,
          routerId: '10.255.0.32',
          listenAddress: B.addr,
          listenPort: bPort,
          neighbor: {
            address: R.addr,
            peerAsn: R.asn,
            passive: true,
            remotePort: rPort,
            localAddress: B.addr,
            holdTime: 30,
            exportPolicy: 'ibgp',
          },
          networks: ['10.32.0.0/16', '2001:db8:32::/48'],
          policies: [
            taggingExport(
              'ibgp',
              { ipv4: '198.51.100.32', ipv6: '2001:db8:ffff::32' },
              { 'set-local-pref': 200 },
            ),
          ],
        }),
      ),
    ]);
    const [r, va, vb] = results;
    if (r?.status === 'fulfilled') bird = r.value;
    if (va?.status === 'fulfilled') a = va.value;
    if (vb?.status === 'fulfilled') b = vb.value;
    const failed = results.filter((x): x is PromiseRejectedResult => x.status === 'rejected');
    if (failed.length > 0) {
      await stopAll(bird, a, b).catch(() => undefined);
      throw new Error(failed.map((x) => String(x.reason)).join('\n\n'));
    }
    const t0 = performance.now();
    const up = (name: string) => (): void => {
      startupMs[name] = Math.round(performance.now() - t0);
    };
    await Promise.all([
      a.waitEstablished().then(up('session-a')),
      b.waitEstablished().then(up('session-b')),
      bird.waitEstablished(A.addr),
      bird.waitEstablished(B.addr),
    ]);
    startupMs.sessions = Math.round(performance.now() - t0);
    console.log(`bird interop startup (ms): ${JSON.stringify(startupMs)}`);
  });

  afterAll(async () => {
    if (bird !== undefined) {
      try {
        process.kill(bird.pid, 'SIGCONT');
      } catch {
        // already gone
      }
    }
    await stopAll(a, b, bird);
  });

  it('sessions come up both ways: vce dials BIRD (eBGP) and BIRD dials passive vce (iBGP)', async () => {
    expect(a.view().state).toBe('established');
    expect(b.view().state).toBe('established');
    expect(a.view()['router-id']).toBe('10.255.0.33');
    expect(await bird.neighborState(A.addr)).toBe('established');
    expect(await bird.neighborState(B.addr)).toBe('established');
    expect(a.peer().cfg.passive).toBe(false);
    expect(b.peer().cfg.passive).toBe(true);
    expect(b.peer().primary?.socket?.localPort).toBe(b.agent.speaker.listenPort);
  });

  it('vce -> BIRD: IPv4 and IPv6 routes with communities, large/ext communities, MED, AS path', async () => {
    const v4 = await waitFor(
      async () => findRoute(await bird.adjIn(A.addr, 'ipv4-unicast'), '10.31.0.0/16'),
      {
        what: '10.31.0.0/16 from vce A on BIRD',
      },
    );
    const expected = {
      prefix: '10.31.0.0/16',
      nextHop: '198.51.100.31',
      asPath: [65000],
      origin: 'igp',
      med: 50,
      localPref: 100, // BIRD stores its default LOCAL_PREF on eBGP-learned routes
      communities: ['65000:100'],
      largeCommunities: ['65000:1:2'],
      extCommunities: ['rt:65000:7'],
    };
    expect(v4).toEqual(expected);
    const v6 = await waitFor(
      async () => findRoute(await bird.adjIn(A.addr, 'ipv6-unicast'), '2001:db8:31::/48'),
      {
        what: '2001:db8:31::/48 from vce A on BIRD',
      },
    );
    expect(v6).toEqual({ ...expected, prefix: '2001:db8:31::/48', nextHop: '2001:db8:ffff::31' });
  });

  it('BIRD -> vce: IPv4 and IPv6 static routes with every attribute intact', async () => {
    const want = {
      'as-path': '65002 64512',
      origin: 'egp',
      med: 77,
      'large-communities': ['65002:3:4'],
      'ext-communities': ['rt:65002:5'],
      from: R.addr,
    };
    const v4 = await poll(() => a.best('ipv4-unicast', '10.33.1.0/24'), {
      what: '10.33.1.0/24 from BIRD on vce A',
    });
    expect(v4).toMatchObject({ ...want, 'next-hop': RNH.ipv4 });
    expect([...v4.communities].sort()).toEqual(['65002:1', '65002:2']);
    const v6 = await poll(() => a.best('ipv6-unicast', '2001:db8:33:1::/64'), {
      what: '2001:db8:33:1::/64 from BIRD on vce A',
    });
    expect(v6).toMatchObject({ ...want, 'next-hop': RNH.ipv6 });
    expect([...v6.communities].sort()).toEqual(['65002:1', '65002:2']);
  });

  it('LOCAL_PREF over iBGP: vce export sets 200 (seen by BIRD), BIRD sends 250 (seen by vce)', async () => {
    const fromB = await waitFor(
      async () => findRoute(await bird.adjIn(B.addr, 'ipv4-unicast'), '10.32.0.0/16'),
      {
        what: '10.32.0.0/16 from vce B on BIRD',
      },
    );
    expect(fromB).toEqual({
      prefix: '10.32.0.0/16',
      nextHop: '198.51.100.32',
      asPath: [],
      origin: 'igp',
      med: 50,
      localPref: 200,
      communities: ['65000:100'],
      largeCommunities: ['65000:1:2'],
      extCommunities: ['rt:65000:7'],
    });
    const fromB6 = await waitFor(
      async () => findRoute(await bird.adjIn(B.addr, 'ipv6-unicast'), '2001:db8:32::/48'),
      { what: '2001:db8:32::/48 from vce B on BIRD' },
    );
    expect(fromB6.localPref).toBe(200);
    const onB = await poll(() => b.best('ipv4-unicast', '10.33.2.0/24'), {
      what: '10.33.2.0/24 from BIRD on vce B (iBGP)',
    });
    expect(onB).toMatchObject({
      'local-pref': 250,
      'as-path': '',
      communities: ['65002:250'],
      'next-hop': RNH.ipv4,
    });
    // The eBGP route from A travels BIRD -> B over iBGP with BIRD's default LOCAL_PREF.
    const transit = await poll(() => b.best('ipv4-unicast', '10.31.0.0/16'), {
      what: '10.31.0.0/16 via BIRD on vce B',
    });
    expect(transit).toMatchObject({ 'as-path': '65000', 'local-pref': 100, communities: ['65000:100'] });
  });

  it('withdraws both ways (IPv4 and IPv6)', async () => {
    // vce -> BIRD
    a.agent.speaker.originate(parsePrefix('10.31.99.0/24'));
    a.agent.speaker.originate(parsePrefix('2001:db8:31:99::/64'));
    await waitFor(async () => findRoute(await bird.adjIn(A.addr, 'ipv4-unicast'), '10.31.99.0/24'), {
      what: '10.31.99.0/24 on BIRD',
    });
    await waitFor(async () => findRoute(await bird.adjIn(A.addr, 'ipv6-unicast'), '2001:db8:31:99::/64'), {
      what: '2001:db8:31:99::/64 on BIRD',
    });
    a.agent.speaker.withdrawLocal(parsePrefix('10.31.99.0/24'));
    a.agent.speaker.withdrawLocal(parsePrefix('2001:db8:31:99::/64'));
    await waitFor(
      async () =>
        findRoute(await bird.adjIn(A.addr, 'ipv4-unicast'), '10.31.99.0/24') === undefined ? true : undefined,
      { what: '10.31.99.0/24 withdrawn on BIRD' },
    );
    await waitFor(
      async () =>
        findRoute(await bird.adjIn(A.addr, 'ipv6-unicast'), '2001:db8:31:99::/64') === undefined
          ? true
          : undefined,
      { what: '2001:db8:31:99::/64 withdrawn on BIRD' },
    );
    // BIRD -> vce (runtime static routes via `birdc configure`)
    await bird.addRoute('ipv4-unicast', '10.33.99.0/24');
    await bird.addRoute('ipv6-unicast', '2001:db8:33:99::/64');
    await poll(() => a.best('ipv4-unicast', '10.33.99.0/24'), { what: '10.33.99.0/24 on vce A' });
    await poll(() => a.best('ipv6-unicast', '2001:db8:33:99::/64'), { what: '2001:db8:33:99::/64 on vce A' });
    await bird.delRoute('ipv4-unicast', '10.33.99.0/24');
    await bird.delRoute('ipv6-unicast', '2001:db8:33:99::/64');
    await poll(() => (a.paths('ipv4-unicast', '10.33.99.0/24').length === 0 ? true : undefined), {
      what: '10.33.99.0/24 withdrawn on vce A',
    });
    await poll(() => (a.paths('ipv6-unicast', '2001:db8:33:99::/64').length === 0 ? true : undefined), {
      what: '2001:db8:33:99::/64 withdrawn on vce A',
    });
  });

  it('End-of-RIB from BIRD for both families on a fresh session', async () => {
    const since = Date.now();
    expect((await action(a, 'shutdown')).statusCode).toBe(200);
    await waitFor(async () => ((await bird.neighborState(A.addr)) !== 'established' ? true : undefined), {
      what: 'BIRD to see the session with vce A go down',
    });
    expect((await action(a, 'enable')).statusCode).toBe(200);
    for (const fam of ['ipv4-unicast', 'ipv6-unicast']) {
      await a.waitEvent(
        (e) => e.type === 'end-of-rib' && e.detail === fam && e.at >= since,
        `End-of-RIB ${fam} from BIRD on the new session`,
        20_000,
      );
    }
    await a.waitEstablished();
    await bird.waitEstablished(A.addr);
    await poll(() => a.best('ipv4-unicast', '10.33.1.0/24'), { what: '10.33.1.0/24 back on vce A' });
    await waitFor(async () => findRoute(await bird.adjIn(A.addr, 'ipv4-unicast'), '10.31.0.0/16'), {
      what: '10.31.0.0/16 back on BIRD',
    });
  });

  it('route refresh: vce asks BIRD (API soft-reset-in) and BIRD re-sends', async () => {
    await poll(() => a.best('ipv4-unicast', '10.33.1.0/24'), { what: '10.33.1.0/24 on vce A' });
    const before = a.view().messages['updates-in'];
    expect((await action(a, 'soft-reset-in')).statusCode).toBe(200);
    await poll(() => (a.view().messages['updates-in'] > before ? true : undefined), {
      what: 'BIRD to re-send UPDATEs after ROUTE-REFRESH',
      describe: () => JSON.stringify(a.view()),
    });
    const before6 = a.view().messages['updates-in'];
    expect(a.agent.speaker.refreshFrom(a.peer(), 'ipv6-unicast')).toBe(true);
    await poll(() => (a.view().messages['updates-in'] > before6 ? true : undefined), {
      what: 'BIRD to re-send IPv6 UPDATEs after ROUTE-REFRESH',
    });
    expect(a.best('ipv4-unicast', '10.33.1.0/24')?.med).toBe(77);
    expect(a.best('ipv6-unicast', '2001:db8:33:1::/64')?.med).toBe(77);
  });

  it('route refresh: BIRD asks vce (reload in) and vce re-sends', async () => {
    const before = a.view().messages;
    await bird.softResetIn(A.addr);
    await poll(() => (a.view().messages['updates-out'] > before['updates-out'] ? true : undefined), {
      what: 'vce to re-send UPDATEs after ROUTE-REFRESH from BIRD',
      describe: () => JSON.stringify(a.view()),
    });
    expect(a.view().messages.out).toBeGreaterThan(before.out);
    expect(a.view().state).toBe('established');
    expect(findRoute(await bird.adjIn(A.addr, 'ipv4-unicast'), '10.31.0.0/16')?.med).toBe(50);
    expect(findRoute(await bird.adjIn(A.addr, 'ipv6-unicast'), '2001:db8:31::/48')?.med).toBe(50);
  });

  it('administrative shutdown: speaker.stopPeer -> BIRD sees the session go down with the Cease', async () => {
    a.agent.speaker.stopPeer(a.peer(), 2, 'interop test shutdown');
    await waitFor(async () => ((await bird.neighborState(A.addr)) !== 'established' ? true : undefined), {
      what: 'BIRD to see the session with vce A go down',
    });
    const text = await waitFor(
      async () => {
        const t = await bird.birdc('show', 'protocols', 'all', bird.protocolName(A.addr));
        return /Administrative shutdown/i.test(t) ? t : undefined;
      },
      { what: 'BIRD to show the received Administrative shutdown', describe: () => bird.handle.logTail(20) },
    );
    expect(text).toMatch(/Received: Administrative shutdown/);
    expect(a.peer().established).toBe(false);
    expect((await action(a, 'enable')).statusCode).toBe(200);
    await a.waitEstablished();
    await bird.waitEstablished(A.addr);
    await waitFor(async () => findRoute(await bird.adjIn(A.addr, 'ipv4-unicast'), '10.31.0.0/16'), {
      what: '10.31.0.0/16 back on BIRD after enable',
    });
  });

  it('hold timer: BIRD SIGSTOPped -> vce declares hold timer expired within ~3-5 s, recovers after SIGCONT', async () => {
    await a.waitEstablished();
    await expectHoldTimerExpiry(a, bird.pid, 'vce A to drop the session with the stopped BIRD');
    await a.waitEstablished(30_000);
    await bird.waitEstablished(A.addr, 30_000);
    await poll(() => a.best('ipv4-unicast', '10.33.1.0/24'), { what: '10.33.1.0/24 back on vce A' });
    expect(b.peer().established).toBe(true);
  });
});
