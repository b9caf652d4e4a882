/**
 * TCP-MD5 (RFC 2385) and GTSM (RFC 5082) on real BGP sessions of the speaker (not just sockets,
 * see tcp-md5.test.ts for those): the active side sets the options before its SYN (Session.connect
 * → connectTcp), the passive side on the listener (Speaker.secureListener) and per accepted socket.
 *
 * In-process speakers on 127.0.7.x:
 *
 *   P 127.0.7.1 (listens, passive) ── .2 same key ........... established, routes flow
 *                                   ── .3 wrong key .......... never
 *                                   ── .4 dialer has no key .. never
 *                                   ── .5 only dialer has key  never
 *                                   ── .6 no key either side . established (keys are per address)
 *   Q 127.0.7.11 (all neighbours GTSM hops 1: minimum TTL on the listener)
 *                                   ── .12 GTSM both sides ... established
 *                                   ── .13 dialer without GTSM never (SYN dropped, TTL 64)
 *   R 127.0.7.21 (mixed: minimum TTL per accepted socket)
 *                                   ── .22 GTSM both sides ... established
 *                                   ── .23 dialer without GTSM never on R (its KEEPALIVE is dropped)
 *                                   ── .24 no GTSM either side established
 *
 * FRR 8.4 bgpd 127.0.7.31 (`neighbor X password K`): vce .32 dials with K, FRR dials the passive
 * vce .33 with K (both establish, routes both ways); vce .34 dials with a wrong key (never).
 *
 * Loopback delivery does not decrement the TTL, so a plain socket's TTL 64 stands for "far away".
 * Every "never establishes" check is bounded: NEVER_MS after the positive cases are up.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgentConfig } from '../../src/agent/config.ts';
import { type RunningAgent, startAgent } from '../../src/agent/run.ts';
import { neighborViews, routeViews } from '../../src/bgp/rib-view.ts';
import type { Speaker } from '../../src/bgp/speaker.ts';
import { parsePrefix } from '../../src/lib/ip.ts';
import { getMinTtl, socketFd } from '../../src/lib/sockopt.ts';
import { freePort, requireDaemon, stopAll, waitFor } from './harness/common.ts';
import { FRR_BGPD, type FrrDaemon, startFrr } from './harness/frr.ts';

const KEY = 'vce-bgp-md5';
const NEVER_MS = 3000;

const agents: RunningAgent[] = [];

type Nb = Record<string, unknown>;

async function agent(
  me: string,
  asn: number,
  listenPort: number | false,
  neighbors: Nb[],
  networks: string[] = [],
): Promise<RunningAgent> {
  const a = await startAgent(
    buildAgentConfig({
      'router-id': me,
      'log-level': 'silent',
      bgp: {
        asn,
        listen: listenPort === false ? false : { address: me, port: listenPort },
        neighbors: neighbors.map((n) => ({
          'import-policy': 'accept-all',
          'export-policy': 'accept-all',
          'connect-retry': 1,
          'hold-time': 9,
          ...n,
        })),
        networks,
      },
    }),
  );
  agents.push(a);
  return a;
}

/** A dialer at `me` towards the listener `to:port` (no listener of its own). */
const dialer = (me: string, asn: number, to: string, port: number, extra: Nb, networks: string[] = []) =>
  agent(
    me,
    asn,
    false,
    [{ address: to, 'peer-asn': 65000, 'remote-port': port, 'local-address': me, ...extra }],
    networks,
  );

const state = (sp: Speaker, addr: string): string | undefined =>
  neighborViews(sp).find((v) => v.address === addr)?.state;

async function waitEstablished(sp: Speaker, addr: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(() => Promise.resolve(state(sp, addr) === 'established' ? true : undefined), {
    what: `session with ${addr} established`,
    timeoutMs,
    describe: () => JSON.stringify(neighborViews(sp).find((v) => v.address === addr)),
  });
}

async function waitRoute(sp: Speaker, prefix: string): Promise<void> {
  await waitFor(
    () =>
      Promise.resolve(
        routeViews(sp, 'ipv4-unicast', parsePrefix(prefix))[0]?.paths.length ? true : undefined,
      ),
    { what: `route ${prefix}`, describe: () => JSON.stringify(routeViews(sp, 'ipv4-unicast')) },
  );
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

afterAll(async () => {
  await Promise.allSettled(agents.map((a) => a.stop()));
});

describe('BGP with TCP-MD5 between two vce speakers', () => {
  const P = '127.0.7.1';
  let p: RunningAgent;
  const d: Record<string, RunningAgent> = {};

  beforeAll(async () => {
    const port = await freePort(P);
    const nb = (addr: string, asn: number, password?: string): Nb => ({
      address: addr,
      'peer-asn': asn,
      passive: true,
      ...(password === undefined ? {} : { password }),
    });
    p = await agent(
      P,
      65000,
      port,
      [
        nb('127.0.7.2', 65002, KEY),
        nb('127.0.7.3', 65003, KEY),
        nb('127.0.7.4', 65004, KEY),
        nb('127.0.7.5', 65005),
        nb('127.0.7.6', 65006),
      ],
      ['10.70.0.0/16'],
    );
    d['.2'] = await dialer('127.0.7.2', 65002, P, port, { password: KEY }, ['10.72.0.0/16']);
    d['.3'] = await dialer('127.0.7.3', 65003, P, port, { password: 'not-the-key' });
    d['.4'] = await dialer('127.0.7.4', 65004, P, port, {});
    d['.5'] = await dialer('127.0.7.5', 65005, P, port, { password: KEY });
    d['.6'] = await dialer('127.0.7.6', 65006, P, port, {});
  });

  it('the same key on both sides: established, routes flow both ways', async () => {
    await waitEstablished(p.speaker, '127.0.7.2');
    await waitEstablished(d['.2']!.speaker, P);
    await waitRoute(p.speaker, '10.72.0.0/16');
    await waitRoute(d['.2']!.speaker, '10.70.0.0/16');
  });

  it('an unkeyed neighbour on the same listener is unaffected (keys are per address)', async () => {
    await waitEstablished(p.speaker, '127.0.7.6');
  });

  it('a wrong key, a missing key, or a key on one side only: never established', async () => {
    await sleep(NEVER_MS);
    for (const a of ['127.0.7.3', '127.0.7.4', '127.0.7.5'])
      expect(state(p.speaker, a), a).not.toBe('established');
    for (const k of ['.3', '.4', '.5']) expect(state(d[k]!.speaker, P), k).not.toBe('established');
    // and the good sessions stayed up meanwhile
    expect(state(p.speaker, '127.0.7.2')).toBe('established');
  });
});

describe('BGP with GTSM (ttl-security) between two vce speakers', () => {
  const Q = '127.0.7.11';
  const R = '127.0.7.21';
  const gtsm = { 'ttl-security': { hops: 1 } };
  let q: RunningAgent;
  let r: RunningAgent;
  const d: Record<string, RunningAgent> = {};

  beforeAll(async () => {
    const [qPort, rPort] = await Promise.all([freePort(Q), freePort(R)]);
    q = await agent(Q, 65000, qPort, [
      { address: '127.0.7.12', 'peer-asn': 65012, passive: true, ...gtsm },
      { address: '127.0.7.13', 'peer-asn': 65013, passive: true, ...gtsm },
    ]);
    r = await agent(R, 65000, rPort, [
      { address: '127.0.7.22', 'peer-asn': 65022, passive: true, ...gtsm },
      { address: '127.0.7.23', 'peer-asn': 65023, passive: true, ...gtsm },
      { address: '127.0.7.24', 'peer-asn': 65024, passive: true },
    ]);
    d['.12'] = await dialer('127.0.7.12', 65012, Q, qPort, gtsm, ['10.112.0.0/16']);
    d['.13'] = await dialer('127.0.7.13', 65013, Q, qPort, {});
    d['.22'] = await dialer('127.0.7.22', 65022, R, rPort, gtsm);
    d['.23'] = await dialer('127.0.7.23', 65023, R, rPort, {});
    d['.24'] = await dialer('127.0.7.24', 65024, R, rPort, {});
  });

  it('a listener whose neighbours all use GTSM with the same hops sets the minimum TTL itself', () => {
    const servers = (q.speaker as unknown as { servers: import('node:net').Server[] }).servers;
    expect(getMinTtl(socketFd(servers[0]!), 4)).toBe(255);
    const mixed = (r.speaker as unknown as { servers: import('node:net').Server[] }).servers;
    expect(getMinTtl(socketFd(mixed[0]!), 4)).toBe(0);
  });

  it('ttl-security on both sides: established (listener minimum and per-socket minimum)', async () => {
    await waitEstablished(q.speaker, '127.0.7.12');
    await waitEstablished(d['.12']!.speaker, Q);
    await waitRoute(q.speaker, '10.112.0.0/16');
    await waitEstablished(r.speaker, '127.0.7.22');
    await waitEstablished(r.speaker, '127.0.7.24'); // no GTSM on either side, same listener
    const s = r.speaker.neighbor('127.0.7.22')?.primary?.socket;
    expect(s).toBeDefined();
    expect(getMinTtl(socketFd(s!), 4)).toBe(255);
  });

  it('a peer sending with a normal TTL never establishes with a GTSM neighbour', async () => {
    await sleep(NEVER_MS);
    expect(state(q.speaker, '127.0.7.13')).not.toBe('established');
    expect(state(r.speaker, '127.0.7.23')).not.toBe('established');
    // Listener minimum: the SYN itself is dropped, so the far side never gets anywhere either.
    expect(state(d['.13']!.speaker, Q)).not.toBe('established');
    // Per-socket minimum (mixed listener): the far side's OPEN can land before accept() sets the
    // minimum, so it may receive our OPEN + KEEPALIVE and believe it is Established until its hold
    // timer expires; its KEEPALIVE (sent after our OPEN, hence after the minimum) is always
    // dropped, so the GTSM side never is. Only that side is asserted for .23.
  });
});

const frrAvailable = requireDaemon(FRR_BGPD) && requireDaemon('vtysh');

describe.skipIf(!frrAvailable)('BGP with TCP-MD5 against FRR bgpd', () => {
  const F = { addr: '127.0.7.31', asn: 65031 };
  let frr: FrrDaemon;
  let v32: RunningAgent;
  let v33: RunningAgent;
  let v34: RunningAgent;

  beforeAll(async () => {
    const [fPort, p33] = await Promise.all([freePort(F.addr), freePort('127.0.7.33')]);
    frr = await startFrr({
      asn: F.asn,
      routerId: F.addr,
      listenAddress: F.addr,
      listenPort: fPort,
      neighbors: [
        {
          address: '127.0.7.32',
          peerAsn: 65032,
          passive: true,
          families: ['ipv4-unicast'],
          holdTime: 9,
          password: KEY,
        },
        {
          address: '127.0.7.33',
          port: p33,
          peerAsn: 65033,
          families: ['ipv4-unicast'],
          holdTime: 9,
          password: KEY,
        },
        {
          address: '127.0.7.34',
          peerAsn: 65034,
          passive: true,
          families: ['ipv4-unicast'],
          holdTime: 9,
          password: KEY,
        },
      ],
      staticRoutes: [{ family: 'ipv4-unicast', prefix: '10.131.0.0/16' }],
    });
    const toFrr = (me: string, asn: number, extra: Nb): Nb => ({
      address: F.addr,
      'peer-asn': F.asn,
      'remote-port': fPort,
      'local-address': me,
      'afi-safis': ['ipv4-unicast'],
      ...extra,
    });
    v32 = await agent(
      '127.0.7.32',
      65032,
      false,
      [toFrr('127.0.7.32', 65032, { password: KEY })],
      ['10.132.0.0/16'],
    );
    v33 = await agent(
      '127.0.7.33',
      65033,
      p33,
      [toFrr('127.0.7.33', 65033, { password: KEY, passive: true })],
      ['10.133.0.0/16'],
    );
    v34 = await agent('127.0.7.34', 65034, false, [toFrr('127.0.7.34', 65034, { password: 'wrong-key' })]);
  });

  afterAll(async () => {
    await stopAll(frr);
  });

  it('vce dials FRR with the same key: established, routes both ways', async () => {
    await frr.waitEstablished('127.0.7.32');
    await waitEstablished(v32.speaker, F.addr, 20_000);
    await waitRoute(v32.speaker, '10.131.0.0/16');
    await waitFor(
      async () =>
        (await frr.paths('ipv4-unicast', () => true)).some((r) => r.prefix === '10.132.0.0/16')
          ? true
          : undefined,
      {
        what: 'FRR has 10.132.0.0/16',
      },
    );
  });

  it('FRR dials a passive vce with the same key: established', async () => {
    await frr.waitEstablished('127.0.7.33');
    await waitEstablished(v33.speaker, F.addr, 20_000);
    await waitRoute(v33.speaker, '10.131.0.0/16');
  });

  it('a wrong key never establishes', async () => {
    await sleep(NEVER_MS);
    expect(state(v34.speaker, F.addr)).not.toBe('established');
    expect(await frr.neighborState('127.0.7.34')).not.toBe('established');
  });
});

describe('configuration', () => {
  it('rejects a TCP-MD5 password in a dynamic-neighbors template (keys are per address)', () => {
    expect(() =>
      buildAgentConfig({
        'router-id': '127.0.7.41',
        bgp: {
          asn: 65000,
          'dynamic-neighbors': [{ prefix: '127.0.7.0/28', 'peer-asn': 65001, template: { password: KEY } }],
        },
      }),
    ).toThrow(/password.*not supported for dynamic neighbors/);
  });
});
