/**
 * Self-test of the interop harness: real daemons peered with each other on loopback.
 *
 *   gobgpd 127.0.0.2 (AS 65001) ── eBGP ── BIRD 127.0.0.3 (AS 65002)
 *        │
 *      eBGP
 *        │
 *   FRR 127.0.0.4 (AS 65003) ── eBGP ── ExaBGP 127.0.0.5 (AS 65005)
 *
 * Proves that each wrapper starts its daemon, that sessions come up (ipv4 + ipv6 over one IPv4
 * session, vpnv4 gobgp<->BIRD), and that one route's attributes read back identically through
 * every wrapper's normaliser. Daemons start in parallel and are shared by the file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BirdDaemon, startBird } from './harness/bird.ts';
import {
  type NormalizedRoute,
  canonicalAddress,
  findRoute,
  freePort,
  requireDaemon,
  stopAll,
  waitFor,
} from './harness/common.ts';
import { type ExabgpDaemon, startExabgp } from './harness/exabgp.ts';
import { FRR_BGPD, type FrrDaemon, startFrr } from './harness/frr.ts';
import { type GobgpDaemon, startGobgp } from './harness/gobgp.ts';

const available = [
  requireDaemon('gobgpd'),
  requireDaemon('gobgp'),
  requireDaemon('bird'),
  requireDaemon('birdc'),
  requireDaemon(FRR_BGPD),
  requireDaemon('vtysh'),
  requireDaemon('exabgp'),
].every(Boolean);

const G = { addr: '127.0.0.2', asn: 65001 };
const B = { addr: '127.0.0.3', asn: 65002 };
const F = { addr: '127.0.0.4', asn: 65003 };
const E = { addr: '127.0.0.5', asn: 65005 };

/** BIRD stores a LOCAL_PREF (default 100) on eBGP-learned routes; the others do not. */
const withoutLocalPref = (r: NormalizedRoute | undefined): Omit<NormalizedRoute, 'localPref'> | undefined => {
  if (r === undefined) return undefined;
  const { localPref: _localPref, ...rest } = r;
  return rest;
};

describe.skipIf(!available)('interop harness (gobgpd, BIRD, FRR, ExaBGP)', () => {
  let gobgp: GobgpDaemon;
  let bird: BirdDaemon;
  let frr: FrrDaemon;
  let exa: ExabgpDaemon;
  const startupMs: Record<string, number> = {};

  const timed = async <T>(name: string, p: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const v = await p();
    startupMs[name] = Math.round(performance.now() - t0);
    return v;
  };

  beforeAll(async () => {
    const [gPort, bPort, fPort, ePort] = await Promise.all([
      freePort(G.addr),
      freePort(B.addr),
      freePort(F.addr),
      freePort(E.addr),
    ]);
    const unicast = ['ipv4-unicast', 'ipv6-unicast'] as const;
    const results = await Promise.allSettled([
      timed('gobgpd', () =>
        startGobgp({
          asn: G.asn,
          routerId: '10.255.0.2',
          listenAddress: G.addr,
          listenPort: gPort,
          neighbors: [
            { address: B.addr, port: bPort, peerAsn: B.asn, families: [...unicast, 'ipv4-vpn'] },
            { address: F.addr, port: fPort, peerAsn: F.asn, families: [...unicast] },
          ],
        }),
      ),
      timed('bird', () =>
        startBird({
          asn: B.asn,
          routerId: '10.255.0.3',
          listenAddress: B.addr,
          listenPort: bPort,
          neighbors: [{ address: G.addr, port: gPort, peerAsn: G.asn, families: [...unicast, 'ipv4-vpn'] }],
          staticRoutes: [
            { family: 'ipv4-unicast', prefix: '10.3.0.0/24', attrs: { communities: ['65002:3'], med: 3 } },
          ],
        }),
      ),
      timed('frr', () =>
        startFrr({
          asn: F.asn,
          routerId: '10.255.0.4',
          listenAddress: F.addr,
          listenPort: fPort,
          neighbors: [
            { address: G.addr, port: gPort, peerAsn: G.asn, families: [...unicast] },
            { address: E.addr, port: ePort, peerAsn: E.asn, families: [...unicast] },
          ],
        }),
      ),
      timed('exabgp', () =>
        startExabgp({
          asn: E.asn,
          routerId: '10.255.0.5',
          localAddress: E.addr,
          listenPort: ePort,
          peerAddress: F.addr,
          peerPort: fPort,
          peerAsn: F.asn,
          families: [...unicast],
        }),
      ),
    ]);
    const [g, b, f, e] = results;
    if (g?.status === 'fulfilled') gobgp = g.value;
    if (b?.status === 'fulfilled') bird = b.value;
    if (f?.status === 'fulfilled') frr = f.value;
    if (e?.status === 'fulfilled') exa = e.value;
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 0) {
      await stopAll(gobgp, bird, frr, exa).catch(() => undefined);
      throw new Error(failed.map((r) => String(r.reason)).join('\n\n'));
    }
    const t0 = performance.now();
    await Promise.all([
      gobgp.waitEstablished(B.addr),
      gobgp.waitEstablished(F.addr),
      bird.waitEstablished(G.addr),
      frr.waitEstablished(E.addr),
      exa.waitEstablished(),
    ]);
    startupMs.sessions = Math.round(performance.now() - t0);
    console.log(`interop harness startup (ms): ${JSON.stringify(startupMs)}`);
  });

  afterAll(async () => {
    await stopAll(gobgp, bird, frr, exa);
  });

  const attrs = {
    communities: ['65000:2', '65000:1'],
    largeCommunities: ['65001:7:8', '1:2:3'],
    extCommunities: ['rt:65000:1', 'rt:4200000000:7', 'rt:192.0.2.1:5'],
    med: 42,
    asPath: [64512],
    origin: 'egp' as const,
  };

  it('gobgp -> BIRD and gobgp -> FRR: same IPv4 route, same normalised attributes', async () => {
    await gobgp.addRoute('ipv4-unicast', '10.1.0.0/24', attrs);
    const expected: NormalizedRoute = {
      prefix: '10.1.0.0/24',
      nextHop: '198.51.100.2',
      asPath: [65001, 64512],
      origin: 'egp',
      med: 42,
      communities: ['65000:1', '65000:2'],
      largeCommunities: ['1:2:3', '65001:7:8'],
      extCommunities: ['rt:65000:1', 'rt:4200000000:7', 'rt:192.0.2.1:5'],
    };
    const onBird = await waitFor(async () => findRoute(await bird.rib('ipv4-unicast'), '10.1.0.0/24'), {
      what: '10.1.0.0/24 on bird',
    });
    const onFrr = await waitFor(async () => findRoute(await frr.rib('ipv4-unicast'), '10.1.0.0/24'), {
      what: '10.1.0.0/24 on frr',
    });
    expect(withoutLocalPref(onBird)).toEqual(expected);
    expect(onBird.localPref).toBe(100);
    expect(onFrr).toEqual(expected);
    // gobgp's own view of the locally originated route (no AS prepended yet).
    expect(findRoute(await gobgp.rib('ipv4-unicast'), '10.1.0.0/24')).toEqual({
      ...expected,
      asPath: [64512],
    });
  });

  it('carries IPv6 routes over the IPv4 sessions (MP-BGP) with IPv6 next hops', async () => {
    await gobgp.addRoute('ipv6-unicast', '2001:db8:1::/48', { communities: ['65000:6'] });
    const onBird = await waitFor(async () => findRoute(await bird.rib('ipv6-unicast'), '2001:db8:1::/48'), {
      what: '2001:db8:1::/48 on bird',
    });
    const onFrr = await waitFor(async () => findRoute(await frr.rib('ipv6-unicast'), '2001:db8:1::/48'), {
      what: '2001:db8:1::/48 on frr',
    });
    expect(onBird.nextHop).toBe(canonicalAddress('2001:db8:ffff::2'));
    expect(withoutLocalPref(onBird)).toEqual(onFrr);
    expect(onFrr.asPath).toEqual([65001]);
  });

  it('BIRD static route reaches gobgp with BIRD next-hop-self and attributes', async () => {
    const r = await waitFor(async () => findRoute(await gobgp.rib('ipv4-unicast'), '10.3.0.0/24'), {
      what: '10.3.0.0/24 from bird on gobgp',
    });
    expect(r).toMatchObject({ nextHop: '198.51.100.3', asPath: [65002], communities: ['65002:3'], med: 3 });
    await bird.addRoute('ipv4-unicast', '10.33.0.0/24', { largeCommunities: ['65002:1:1'], asPath: [64999] });
    const added = await waitFor(
      async () => findRoute(await gobgp.adjIn(B.addr, 'ipv4-unicast'), '10.33.0.0/24'),
      {
        what: '10.33.0.0/24 (added at runtime) from bird on gobgp',
      },
    );
    expect(added).toMatchObject({ asPath: [65002, 64999], largeCommunities: ['65002:1:1'] });
    await bird.delRoute('ipv4-unicast', '10.33.0.0/24');
    await waitFor(
      async () =>
        findRoute(await gobgp.rib('ipv4-unicast'), '10.33.0.0/24') === undefined ? true : undefined,
      { what: '10.33.0.0/24 withdrawn from gobgp' },
    );
  });

  it('vpnv4: gobgp -> BIRD keeps RD, label and route targets', async () => {
    await gobgp.addRoute('ipv4-vpn', '10.10.0.0/24', {
      rd: '65000:10',
      label: 1000,
      extCommunities: ['rt:65000:10'],
    });
    const r = await waitFor(async () => findRoute(await bird.rib('ipv4-vpn'), '10.10.0.0/24', '65000:10'), {
      what: 'vpnv4 65000:10:10.10.0.0/24 on bird',
    });
    expect(withoutLocalPref(r)).toEqual({
      prefix: '10.10.0.0/24',
      rd: '65000:10',
      labels: [1000],
      nextHop: '198.51.100.2',
      asPath: [65001],
      origin: 'incomplete',
      communities: [],
      largeCommunities: [],
      extCommunities: ['rt:65000:10'],
    });
    expect(findRoute(await gobgp.rib('ipv4-vpn'), '10.10.0.0/24', '65000:10')?.labels).toEqual([1000]);
  });

  it('FRR -> ExaBGP: ExaBGP exposes received routes normalised like the others', async () => {
    await frr.addRoute('ipv4-unicast', '10.4.0.0/24', attrs);
    const onExa = await waitFor(async () => findRoute(await exa.received('ipv4-unicast'), '10.4.0.0/24'), {
      what: '10.4.0.0/24 from frr on exabgp',
    });
    const onGobgp = await waitFor(async () => findRoute(await gobgp.rib('ipv4-unicast'), '10.4.0.0/24'), {
      what: '10.4.0.0/24 from frr on gobgp',
    });
    const expected: NormalizedRoute = {
      prefix: '10.4.0.0/24',
      nextHop: '198.51.100.4',
      asPath: [65003, 64512],
      origin: 'egp',
      med: 42,
      communities: ['65000:1', '65000:2'],
      largeCommunities: ['1:2:3', '65001:7:8'],
      extCommunities: ['rt:65000:1', 'rt:4200000000:7', 'rt:192.0.2.1:5'],
    };
    expect(onExa).toEqual(expected);
    expect(onGobgp).toEqual(expected);
    // gobgp's route, two eBGP hops away, arrives too (FRR rewrote the next hop).
    const transit = await waitFor(async () => findRoute(await exa.received('ipv4-unicast'), '10.1.0.0/24'), {
      what: '10.1.0.0/24 via frr on exabgp',
    });
    expect(transit).toMatchObject({ nextHop: '198.51.100.4', asPath: [65003, 65001, 64512] });
    await frr.delRoute('ipv4-unicast', '10.4.0.0/24');
    await waitFor(
      async () =>
        findRoute(await exa.received('ipv4-unicast'), '10.4.0.0/24') === undefined ? true : undefined,
      { what: '10.4.0.0/24 withdrawn at exabgp' },
    );
  });

  it('ExaBGP -> FRR: runtime announcements, including an unknown optional transitive attribute', async () => {
    await exa.announce('ipv4-unicast', '10.5.0.0/24', { communities: ['65005:1'], med: 5 }, [
      { code: 0xf0, flags: 0xc0, hex: 'deadbeef' },
    ]);
    const r = await waitFor(async () => findRoute(await frr.rib('ipv4-unicast'), '10.5.0.0/24'), {
      what: '10.5.0.0/24 from exabgp on frr',
    });
    expect(r).toMatchObject({ nextHop: '198.51.100.5', asPath: [65005], communities: ['65005:1'], med: 5 });
    await expect(exa.send('this is not a command')).rejects.toThrow(/rejected/);
    expect(await frr.neighborState(E.addr)).toBe('established');
  });

  it('session control: shutdown, re-enable and route refresh', async () => {
    await gobgp.shutdownNeighbor(B.addr, 'harness self-test');
    await waitFor(async () => ((await bird.neighborState(G.addr)) !== 'established' ? true : undefined), {
      what: 'bird to see the session go down',
    });
    await gobgp.enableNeighbor(B.addr);
    await bird.waitEstablished(G.addr);
    await waitFor(async () => findRoute(await bird.rib('ipv4-unicast'), '10.1.0.0/24'), {
      what: '10.1.0.0/24 back on bird',
    });
    await bird.softResetIn(G.addr);
    await gobgp.softResetIn(F.addr, 'ipv4-unicast'); // local re-evaluation only (no ROUTE-REFRESH)
    // ExaBGP -> FRR ROUTE-REFRESH, counted by FRR.
    const rrBefore = (await frr.neighborInfo(E.addr)).messageStats?.routeRefreshRecv ?? 0;
    await exa.routeRefresh('ipv4-unicast');
    await waitFor(
      async () =>
        ((await frr.neighborInfo(E.addr)).messageStats?.routeRefreshRecv ?? 0) > rrBefore ? true : undefined,
      { what: 'ROUTE-REFRESH from exabgp counted by frr' },
    );
    // FRR -> ExaBGP ROUTE-REFRESH (ExaBGP must hold no routes: see its refresh bug).
    await exa.withdraw('ipv4-unicast', '10.5.0.0/24');
    await waitFor(async () => (findRoute(await frr.rib('ipv4-unicast'), '10.5.0.0/24') ? undefined : true), {
      what: '10.5.0.0/24 withdrawn from frr',
    });
    const before = (await exa.refreshesReceived()).length;
    await frr.softResetIn(E.addr);
    await waitFor(async () => ((await exa.refreshesReceived()).length > before ? true : undefined), {
      what: 'ROUTE-REFRESH from frr at exabgp',
    });
    expect(await exa.refreshesReceived()).toContainEqual(
      expect.objectContaining({ afi: 'ipv4', safi: 'unicast' }),
    );
    expect(await exa.neighborState()).toBe('established');
    expect(await gobgp.neighborState(F.addr)).toBe('established');
  });
});
