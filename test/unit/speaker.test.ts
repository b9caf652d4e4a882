/**
 * Speakers over real TCP on loopback (127.0.0.x, ephemeral ports): sessions, route exchange with
 * attributes, policy, RFC 8212, max-prefix, route refresh, shutdown, the hold timer, transit, ADD-PATH
 * and RFC 7606 handling of malformed UPDATEs written by a hand-driven raw peer. Every wait is on a
 * condition with a deadline; the only real-time wait is the 3 s hold timer.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { formatAddress, parseAddress, parsePrefix } from '../../src/lib/ip.ts';
import { hex } from '../../src/lib/bytes.ts';
import { Speaker, type SpeakerConfig } from '../../src/bgp/speaker.ts';
import type { NeighborConfig, Peer } from '../../src/bgp/peer.ts';
import { compilePolicies, type PolicyBook } from '../../src/bgp/policy/index.ts';
import { neighborViews, routeViews, type RouteView } from '../../src/bgp/rib-view.ts';
import { buildAgentApi } from '../../src/agent/api.ts';
import { MessageType, NotificationCode, type AfiSafiName } from '../../src/bgp/wire/constants.ts';
import { Framer, type FramedMessage } from '../../src/bgp/wire/header.ts';
import { buildOpen, type LocalSessionOptions } from '../../src/bgp/wire/negotiate.ts';
import { encodeOpen } from '../../src/bgp/wire/open.ts';
import { decodeNotification, encodeKeepalive } from '../../src/bgp/wire/notification.ts';
import { encodeUpdate } from '../../src/bgp/wire/update.ts';
import type { UpdateError } from '../../src/bgp/wire/errors.ts';

// ------------------------------------------------------------------------------ harness

const A = '127.0.0.2';
const B = '127.0.0.3';
const C = '127.0.0.4';
const RAW = '127.0.0.5';
const RID: Record<string, number> = { [A]: 0x0a000002, [B]: 0x0a000003, [C]: 0x0a000004 };

const POLICIES: PolicyBook = compilePolicies({
  'defined-sets': { 'prefix-sets': [{ name: 'blocked', prefixes: [{ prefix: '10.66.0.0/16' }] }] },
  'policy-definitions': [
    {
      name: 'tag',
      statements: [
        {
          name: 'tag',
          actions: {
            'bgp-actions': {
              'set-community': { method: 'add', communities: ['65001:100'] },
              'set-large-community': { method: 'add', communities: ['65001:1:2'] },
              'set-ext-community': { method: 'add', communities: ['rt:65001:7'] },
            },
            'policy-result': 'accept-route',
          },
        },
      ],
    },
    {
      name: 'no-blocked',
      statements: [
        {
          name: 'drop',
          conditions: { 'match-prefix-set': { 'prefix-set': 'blocked' } },
          actions: { 'policy-result': 'reject-route' },
        },
        { name: 'rest', actions: { 'policy-result': 'accept-route' } },
      ],
    },
  ],
});

function neighbor(address: string, peerAsn: number, over: Partial<NeighborConfig> = {}): NeighborConfig {
  return {
    address,
    peerAsn,
    passive: false,
    remotePort: 179,
    families: ['ipv4-unicast', 'ipv6-unicast'],
    importPolicy: ['accept-all'],
    exportPolicy: ['accept-all'],
    holdTime: 9,
    connectRetryTime: 1,
    routeReflectorClient: false,
    nextHopSelf: false,
    maxPrefix: {},
    addPath: {},
    shutdown: false,
    ...over,
  };
}

const running: Speaker[] = [];
const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  for (const f of cleanups.splice(0)) await f();
  await Promise.all(running.splice(0).map((s) => s.stop('test over')));
});

interface NodeOptions {
  asn: number;
  neighbors: NeighborConfig[];
  networks?: string[];
  listen?: boolean;
  decision?: SpeakerConfig['decision'];
}

/** A speaker on `address`; `listen` makes it listen on an ephemeral port (read `listenPort`). */
async function node(address: string, o: NodeOptions): Promise<Speaker> {
  const sp = new Speaker({
    asn: o.asn,
    routerId: RID[address] ?? 0x0a0000ff,
    listen: o.listen === true ? { address, port: 0 } : false,
    neighbors: o.neighbors,
    networks: (o.networks ?? []).map((p) => parsePrefix(p)),
    policies: POLICIES,
    decision: o.decision,
  });
  running.push(sp);
  await sp.start();
  return sp;
}

/** Polls `f` every 10 ms until it returns something other than undefined/false. */
async function waitFor<T>(f: () => T | undefined | false | null, what: string, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false && v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function peer(sp: Speaker, address: string): Peer {
  const p = sp.neighbor(address);
  if (p === undefined) throw new Error(`no neighbor ${address}`);
  return p;
}

const established = (sp: Speaker, address: string): Promise<true> =>
  waitFor(() => peer(sp, address).established, `session ${address} Established`);

function route(sp: Speaker, family: AfiSafiName, prefix: string): RouteView | undefined {
  return routeViews(sp, family, parsePrefix(prefix))[0];
}

const hasRoute = (sp: Speaker, family: AfiSafiName, prefix: string): Promise<RouteView> =>
  waitFor(() => {
    const r = route(sp, family, prefix);
    return r !== undefined && r.paths.some((p) => p.best) ? r : undefined;
  }, `${prefix} in the RIB`);

const noRoute = (sp: Speaker, family: AfiSafiName, prefix: string): Promise<true> =>
  waitFor(() => route(sp, family, prefix) === undefined, `${prefix} gone from the RIB`);

/** Records every emission of `event` (register before the sessions come up). */
function record<T extends unknown[]>(sp: Speaker, event: string): T[] {
  const seen: T[] = [];
  sp.on(event, (...args: unknown[]) => seen.push(args as T));
  return seen;
}

/** B listens (passive towards A); A connects. Both eBGP unless the ASNs are equal. */
async function pair(o: {
  a?: Partial<NodeOptions>;
  b?: Partial<NodeOptions>;
  toB?: Partial<NeighborConfig>;
  toA?: Partial<NeighborConfig>;
}): Promise<{ a: Speaker; b: Speaker }> {
  const asnA = o.a?.asn ?? 65001;
  const asnB = o.b?.asn ?? 65002;
  const b = await node(B, {
    listen: true,
    ...o.b,
    asn: asnB,
    neighbors: [neighbor(A, asnA, { passive: true, ...o.toA })],
  });
  const a = await node(A, {
    ...o.a,
    asn: asnA,
    neighbors: [neighbor(B, asnB, { remotePort: b.listenPort!, localAddress: A, ...o.toB })],
  });
  await Promise.all([established(a, B), established(b, A)]);
  return { a, b };
}

// ------------------------------------------------------------------------------ raw peer

/** A hand-driven BGP peer: OPEN/KEEPALIVE by hand, then whatever bytes the test writes. */
class RawPeer {
  readonly framer = new Framer(65535);
  readonly received: FramedMessage[] = [];
  closed = false;
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.framer.push(new Uint8Array(chunk));
      for (let m = this.framer.next(); m !== undefined; m = this.framer.next()) {
        this.received.push({ type: m.type, body: m.body.slice() });
      }
    });
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => undefined);
  }

  static async connect(host: string, port: number, localAddress: string): Promise<RawPeer> {
    const socket = net.connect({ host, port, localAddress });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const p = new RawPeer(socket);
    cleanups.push(() => socket.destroy());
    return p;
  }

  send(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  count(type: number): number {
    return this.received.filter((m) => m.type === type).length;
  }

  /** OPEN and KEEPALIVE exchange: returns once the speaker's KEEPALIVE arrived. */
  async handshake(asn: number, holdTime: number, more: Partial<LocalSessionOptions> = {}): Promise<void> {
    this.send(
      encodeOpen(
        buildOpen({ localAsn: asn, routerId: 0x05050505, holdTime, families: ['ipv4-unicast'], ...more }),
      ),
    );
    await waitFor(() => this.count(MessageType.OPEN) > 0, 'the OPEN of the speaker');
    this.send(encodeKeepalive());
    await waitFor(() => this.count(MessageType.KEEPALIVE) > 0, 'the KEEPALIVE of the speaker');
  }

  notification(): ReturnType<typeof decodeNotification> | undefined {
    const m = this.received.find((x) => x.type === MessageType.NOTIFICATION);
    return m === undefined ? undefined : decodeNotification(m.body);
  }
}

// AS 65005 (0x0000fded), 4-byte ASNs (both sides advertise the capability).
const ORIGIN_IGP = '40 01 01 00';
const AS_PATH_65005 = '40 02 06 02 01 00 00 fd ed';
const NEXT_HOP_RAW = '40 03 04 7f 00 00 05';
const NLRI_10_55 = hex`10 0a 37 # 10.55.0.0/16`;

const goodUpdate = (): Uint8Array =>
  encodeUpdate({ attributes: hex(`${ORIGIN_IGP} ${AS_PATH_65005} ${NEXT_HOP_RAW}`), nlri: NLRI_10_55 });

// ------------------------------------------------------------------------------ tests

describe('sessions and route exchange', () => {
  it('comes up with one passive and one active side; IPv4 and IPv6 routes flow both ways with attributes', async () => {
    const { a, b } = await pair({
      a: { networks: ['10.1.0.0/16', '2001:db8:1::/48'] },
      b: { networks: ['10.2.0.0/16', '2001:db8:2::/48'] },
      toB: { exportPolicy: ['tag'] },
    });
    // B accepted the connection on its listening port; A opened it
    expect(peer(b, A).cfg.passive).toBe(true);
    expect(peer(b, A).primary!.socket!.localPort).toBe(b.listenPort);
    expect(peer(a, B).primary!.socket!.remotePort).toBe(b.listenPort);
    a.originate(parsePrefix('10.11.0.0/16'), { med: 30 });

    const v4 = await hasRoute(b, 'ipv4-unicast', '10.1.0.0/16');
    expect(v4.paths).toHaveLength(1);
    expect(v4.paths[0]).toMatchObject({
      best: true,
      reason: 'only-path',
      'as-path': '65001',
      origin: 'igp',
      'next-hop': A,
      from: A,
      'local-pref': null,
      med: null,
      communities: ['65001:100'],
      'large-communities': ['65001:1:2'],
      'ext-communities': ['rt:65001:7'],
    });
    const med = await hasRoute(b, 'ipv4-unicast', '10.11.0.0/16');
    expect(med.paths[0]).toMatchObject({ med: 30, 'as-path': '65001' }); // our own MED goes to eBGP
    const v6 = await hasRoute(b, 'ipv6-unicast', '2001:db8:1::/48');
    expect(v6.paths[0]).toMatchObject({ 'as-path': '65001', communities: ['65001:100'], from: A });
    // IPv6 over an IPv4 session: the IPv4-mapped address of A (RFC 4291 §2.5.5.2)
    expect(v6.paths[0]!['next-hop']).toBe(formatAddress(parseAddress(`::ffff:${A}`)));

    // and the other way, without the tagging policy
    const back = await hasRoute(a, 'ipv4-unicast', '10.2.0.0/16');
    expect(back.paths[0]).toMatchObject({ 'as-path': '65002', 'next-hop': B, communities: [] });
    await hasRoute(a, 'ipv6-unicast', '2001:db8:2::/48');

    const views = neighborViews(b);
    expect(views).toHaveLength(1);
    expect(views[0]).toMatchObject({
      address: A,
      'peer-asn': 65001,
      state: 'established',
      'router-id': '10.0.0.2',
    });
    expect(views[0]!['afi-safis']['ipv4-unicast']).toEqual({ received: 2, accepted: 2, advertised: 1 });
    expect(views[0]!['afi-safis']['ipv6-unicast']).toEqual({ received: 1, accepted: 1, advertised: 1 });
  });

  it('End-of-RIB arrives for each negotiated family after the initial table', async () => {
    // Register on the listening side before the session exists.
    const b = await node(B, { listen: true, asn: 65002, neighbors: [neighbor(A, 65001, { passive: true })] });
    const eor = record<[Peer, AfiSafiName]>(b, 'end-of-rib');
    const receivedAtEor = new Map<AfiSafiName, number>();
    b.on('end-of-rib', (p: Peer, f: AfiSafiName) => receivedAtEor.set(f, b.rib(f).received[p.index] ?? 0));
    const a = await node(A, {
      asn: 65001,
      networks: ['10.1.0.0/16', '10.3.0.0/16', '2001:db8:1::/48'],
      neighbors: [neighbor(B, 65002, { remotePort: b.listenPort!, localAddress: A })],
    });
    await established(a, B);
    await waitFor(() => eor.length >= 2, 'two End-of-RIB markers');
    expect(eor.map(([p, f]) => [p.cfg.address, f]).sort()).toEqual([
      [A, 'ipv4-unicast'],
      [A, 'ipv6-unicast'],
    ]);
    // each family's table came before its End-of-RIB
    expect(receivedAtEor).toEqual(
      new Map([
        ['ipv4-unicast', 2],
        ['ipv6-unicast', 1],
      ]),
    );
  });

  it('iBGP carries LOCAL_PREF (100 by default) and needs no policy', async () => {
    const { a, b } = await pair({
      a: { asn: 65001, networks: ['10.1.0.0/16'] },
      b: { asn: 65001 },
      toB: { importPolicy: undefined, exportPolicy: undefined },
      toA: { importPolicy: undefined, exportPolicy: undefined },
    });
    a.originate(parsePrefix('10.7.0.0/16'), { localPref: 250 });
    const lp = await hasRoute(b, 'ipv4-unicast', '10.7.0.0/16');
    expect(lp.paths[0]).toMatchObject({ 'local-pref': 250, 'as-path': '', 'next-hop': A });
    const dflt = await hasRoute(b, 'ipv4-unicast', '10.1.0.0/16');
    expect(dflt.paths[0]!['local-pref']).toBe(100);
    expect(peer(b, A).negotiated!.ctx.ebgp).toBe(false);
  });

  it('withdrawLocal withdraws the route from the peer', async () => {
    const { a, b } = await pair({ a: { networks: ['10.1.0.0/16', '10.3.0.0/16', '2001:db8:1::/48'] } });
    await hasRoute(b, 'ipv4-unicast', '10.1.0.0/16');
    await hasRoute(b, 'ipv4-unicast', '10.3.0.0/16');
    await hasRoute(b, 'ipv6-unicast', '2001:db8:1::/48');
    a.withdrawLocal(parsePrefix('10.1.0.0/16'));
    a.withdrawLocal(parsePrefix('2001:db8:1::/48')); // MP_UNREACH_NLRI
    await noRoute(b, 'ipv4-unicast', '10.1.0.0/16');
    await noRoute(b, 'ipv6-unicast', '2001:db8:1::/48');
    expect(route(b, 'ipv4-unicast', '10.3.0.0/16')).toBeDefined();
    expect(neighborViews(a)[0]!['afi-safis']['ipv4-unicast']!.advertised).toBe(1);
    // and back
    a.originate(parsePrefix('10.1.0.0/16'));
    await hasRoute(b, 'ipv4-unicast', '10.1.0.0/16');
  });

  it('RFC 8212: an eBGP session without policies sends nothing and accepts nothing', async () => {
    const { a, b } = await pair({
      a: { networks: ['10.1.0.0/16'] },
      b: { networks: ['10.2.0.0/16'] },
      toB: { importPolicy: undefined, exportPolicy: ['accept-all'] }, // A exports, but B has no policy at all
      toA: { importPolicy: undefined, exportPolicy: undefined },
    });
    const r = await waitFor(() => route(b, 'ipv4-unicast', '10.1.0.0/16'), 'the route kept pre-policy at B');
    expect(r.paths[0]).toMatchObject({ best: false, reason: 'rejected-by-policy' });
    expect(neighborViews(b)[0]!['afi-safis']['ipv4-unicast']).toEqual({
      received: 1,
      accepted: 0,
      advertised: 0,
    });
    expect(b.rib('ipv4-unicast').countBest()).toBe(1); // only its own network
    // B sent nothing but End-of-RIB: A holds no path from B
    await waitFor(() => peer(b, A).eorPending.size === 0, 'B done with its initial table');
    await waitFor(() => peer(a, B).stats.updatesIn >= 2, 'two End-of-RIB at A');
    expect(a.rib('ipv4-unicast').received[peer(a, B).index] ?? 0).toBe(0);
    expect(route(a, 'ipv4-unicast', '10.2.0.0/16')).toBeUndefined();
  });

  it('an import policy rejects a prefix-set and accepts the rest', async () => {
    const { b } = await pair({
      a: { networks: ['10.1.0.0/16', '10.66.0.0/16', '10.66.1.0/24'] },
      toA: { importPolicy: ['no-blocked'] },
    });
    await hasRoute(b, 'ipv4-unicast', '10.1.0.0/16');
    await hasRoute(b, 'ipv4-unicast', '10.66.1.0/24'); // the set is exact: a longer prefix passes
    const blocked = await waitFor(() => route(b, 'ipv4-unicast', '10.66.0.0/16'), '10.66.0.0/16 pre-policy');
    expect(blocked.paths[0]).toMatchObject({ best: false, reason: 'rejected-by-policy' });
    expect(neighborViews(b)[0]!['afi-safis']['ipv4-unicast']).toMatchObject({ received: 3, accepted: 2 });
  });
});

describe('session management', () => {
  it('max-prefix: exceeding the limit sends Cease/1; the other side reports it', async () => {
    const b = await node(B, {
      listen: true,
      asn: 65002,
      neighbors: [
        neighbor(A, 65001, {
          passive: true,
          maxPrefix: { 'ipv4-unicast': { limit: 2, warningThresholdPct: 75, restartSeconds: 0 } },
        }),
      ],
    });
    const a = await node(A, {
      asn: 65001,
      networks: ['10.1.0.0/16', '10.2.0.0/16', '10.3.0.0/16'],
      neighbors: [neighbor(B, 65002, { remotePort: b.listenPort!, localAddress: A })],
    });
    const downAtA = record<[Peer, string]>(a, 'peer-down');
    const [, reason] = await waitFor(() => downAtA[0], 'A to see the session go down');
    expect(reason).toMatch(/notification received: CEASE\/MAXIMUM_PREFIXES_REACHED/);
    expect(neighborViews(a)[0]!['last-error']).toMatch(/MAXIMUM_PREFIXES_REACHED/);
    expect(neighborViews(b)[0]!['last-error']).toMatch(/maximum prefix limit 2 exceeded for ipv4-unicast/);
    expect(peer(b, A).adminDown).toBe(true);
    await waitFor(() => b.rib('ipv4-unicast').countBest() === 0, "A's routes flushed at B");
  });

  it('soft-reset-in through the API makes the peer send its table again (route refresh)', async () => {
    const { a, b } = await pair({ a: { networks: ['10.1.0.0/16', '2001:db8:1::/48'] } });
    await hasRoute(b, 'ipv4-unicast', '10.1.0.0/16');
    await hasRoute(b, 'ipv6-unicast', '2001:db8:1::/48');
    await waitFor(
      () => peer(a, B).eorPending.size === 0 && peer(b, A).stats.updatesIn >= 4,
      'the initial table and EoRs at B',
    );
    const app = await buildAgentApi({ speaker: b });
    cleanups.push(() => app.close());
    const before = peer(b, A).stats.updatesIn;
    const outBefore = peer(a, B).stats.updatesOut;
    const res = await app.inject({
      method: 'POST',
      url: `/api/v1/bgp/neighbors/${A}/actions`,
      payload: { action: 'soft-reset-in' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ ok: true });
    expect(res.json<{ detail: string }>().detail).toMatch(/ipv4-unicast/);
    await waitFor(() => peer(b, A).stats.updatesIn >= before + 2, 'the re-sent UPDATEs');
    expect(peer(a, B).stats.updatesOut).toBeGreaterThanOrEqual(outBefore + 2);
    expect(route(b, 'ipv4-unicast', '10.1.0.0/16')!.paths).toHaveLength(1);
    expect(peer(b, A).stats.flaps).toBe(0);
    // one family only
    const one = await app.inject({
      method: 'POST',
      url: `/api/v1/bgp/neighbors/${A}/actions`,
      payload: { action: 'soft-reset-in', 'afi-safi': 'ipv6-unicast' },
    });
    expect(one.json<{ detail: string }>().detail).toBe('route refresh sent for ipv6-unicast');
  });

  it('stop() closes every session with Cease/2 and the shutdown message', async () => {
    const { a, b } = await pair({ a: { networks: ['10.1.0.0/16'] } });
    await hasRoute(b, 'ipv4-unicast', '10.1.0.0/16');
    const down = record<[Peer, string]>(b, 'peer-down');
    await a.stop('maintenance window 42');
    running.splice(running.indexOf(a), 1);
    const [p, reason] = await waitFor(() => down[0], 'B to see the shutdown');
    expect(p.cfg.address).toBe(A);
    expect(reason).toBe('notification received: CEASE/ADMINISTRATIVE_SHUTDOWN "maintenance window 42"');
    await noRoute(b, 'ipv4-unicast', '10.1.0.0/16');
    expect(neighborViews(b)[0]).toMatchObject({ flaps: 1 });
    expect(neighborViews(b)[0]!.state).not.toBe('established');
  });

  it('hold timer: a peer that goes silent is dropped after the 3 s hold time', async () => {
    const a = await node(A, {
      listen: true,
      asn: 65001,
      neighbors: [neighbor(RAW, 65005, { passive: true, holdTime: 3 })],
    });
    const down = record<[Peer, string]>(a, 'peer-down');
    const raw = await RawPeer.connect(A, a.listenPort!, RAW);
    await raw.handshake(65005, 3);
    await established(a, RAW);
    const silentSince = Date.now(); // from now on the raw peer sends nothing (frozen)
    expect(peer(a, RAW).negotiated!.holdTime).toBe(3);
    const [, reason] = await waitFor(() => down[0], 'the hold timer', 6000);
    const took = Date.now() - silentSince;
    expect(reason).toBe('hold timer expired');
    expect(took).toBeGreaterThan(2500);
    expect(took).toBeLessThan(4500);
    // keepalives kept coming while the peer was silent, then NOTIFICATION Hold Timer Expired
    await waitFor(() => raw.notification(), 'the NOTIFICATION');
    expect(raw.notification()).toMatchObject({ code: NotificationCode.HOLD_TIMER_EXPIRED, subcode: 0 });
    expect(raw.count(MessageType.KEEPALIVE)).toBeGreaterThanOrEqual(2);
  });
});

describe('route views (what the API shows)', () => {
  it('the best path names the step that beat the strongest runner-up; losers name theirs', () => {
    // Three eBGP neighbours, not started: paths are put into the RIB directly.
    const sp = new Speaker({
      asn: 65000,
      routerId: 0x0a0000ff,
      listen: false,
      neighbors: [neighbor('192.0.2.1', 65001), neighbor('192.0.2.2', 65002), neighbor('192.0.2.3', 65003)],
      networks: [],
      policies: POLICIES,
    });
    const [p1, p2, p3] = [1, 2, 3].map((i) => sp.peers[i]!);
    p1!.source = { ...p1!.source, bgpId: 1 };
    p2!.source = { ...p2!.source, bgpId: 2 };
    p3!.source = { ...p3!.source, bgpId: 3 };
    const rib = sp.rib('ipv4-unicast');
    const d = rib.findOrAdd({ prefix: parsePrefix('10.9.0.0/16') });
    const put = (p: Peer, localPref: number): void => {
      const set = sp.attrs.create(
        { origin: 0, asPath: [{ type: 2, asns: [p.cfg.peerAsn] }], localPref },
        p.index,
      );
      rib.upsert(d, p.index, 0, set.id, set.id);
    };
    // list order (newest first): p3 (weak), p1 (best), p2 (runner-up)
    put(p2!, 200);
    put(p1!, 200);
    put(p3!, 100);
    sp.flush();
    const paths = route(sp, 'ipv4-unicast', '10.9.0.0/16')!.paths;
    expect(paths.map((p) => [p.from, p.best, p.reason])).toEqual([
      ['192.0.2.1', true, 'router-id'],
      ['192.0.2.3', false, 'lost: local-pref'],
      ['192.0.2.2', false, 'lost: router-id'],
    ]);
  });
});

describe('connection collision (RFC 4271 §6.8)', () => {
  it('both sides active and listening: one connection survives, routes flow, stop() leaves nothing behind', async () => {
    const mk = (addr: string, asn: number, net: string): Promise<Speaker> =>
      node(addr, { listen: true, asn, networks: [net], neighbors: [] });
    const a = await mk(A, 65001, '10.1.0.0/16');
    const b = await mk(B, 65002, '10.2.0.0/16');
    const pa = a.addNeighbor(neighbor(B, 65002, { remotePort: b.listenPort!, localAddress: A }));
    const pb = b.addNeighbor(neighbor(A, 65001, { remotePort: a.listenPort!, localAddress: B }));
    a.startPeer(pa); // both connect at once: each side also accepts the other's connection
    b.startPeer(pb);
    await Promise.all([established(a, B), established(b, A)]);
    await hasRoute(a, 'ipv4-unicast', '10.2.0.0/16');
    await hasRoute(b, 'ipv4-unicast', '10.1.0.0/16');
    await waitFor(() => pa.sessions.length === 1 && pb.sessions.length === 1, 'the losing connections gone');
    const sa = pa.primary!;
    const sb = pb.primary!;
    expect(sa.socket!.localPort).toBe(sb.socket!.remotePort); // the same TCP connection
    expect(sa.inbound).not.toBe(sb.inbound);
    if (pa.stats.lastError === 'connection collision') {
      // resolved by identifiers: the connection initiated by the higher BGP Identifier (B) stays
      expect(sa.inbound).toBe(true);
    }
    await Promise.all([a.stop(), b.stop()]);
    running.splice(0);
    // no replacement session was started for a connection that was born inbound
    expect(pa.sessions.length).toBe(1);
    expect(pa.sessions[0]).toBe(sa);
    expect(pb.sessions.length).toBe(1);
    expect(pb.sessions[0]).toBe(sb);
    expect(sa.fsm.state).toBe('idle');
    expect(sa.connecting).toBe(false);
  });
});

describe('more than two speakers', () => {
  it('transit: a route learned from A is re-advertised to C with B prepended, and back', async () => {
    const b = await node(B, {
      listen: true,
      asn: 65002,
      networks: ['10.2.0.0/16'],
      neighbors: [neighbor(A, 65001, { passive: true }), neighbor(C, 65003, { passive: true })],
    });
    const a = await node(A, {
      asn: 65001,
      networks: ['10.1.0.0/16'],
      neighbors: [neighbor(B, 65002, { remotePort: b.listenPort!, localAddress: A })],
    });
    const c = await node(C, {
      asn: 65003,
      networks: ['10.3.0.0/16'],
      neighbors: [neighbor(B, 65002, { remotePort: b.listenPort!, localAddress: C })],
    });
    await Promise.all([established(a, B), established(c, B), established(b, A), established(b, C)]);
    const atC = await hasRoute(c, 'ipv4-unicast', '10.1.0.0/16');
    expect(atC.paths[0]).toMatchObject({ 'as-path': '65002 65001', 'next-hop': B, from: B });
    const atA = await hasRoute(a, 'ipv4-unicast', '10.3.0.0/16');
    expect(atA.paths[0]).toMatchObject({ 'as-path': '65002 65003', 'next-hop': B });
    await hasRoute(c, 'ipv4-unicast', '10.2.0.0/16');
    // A never gets its own route back (B does not send it to its source; A would drop it anyway)
    expect(route(a, 'ipv4-unicast', '10.1.0.0/16')!.paths).toHaveLength(1);
    expect(route(a, 'ipv4-unicast', '10.1.0.0/16')!.paths[0]!.from).toBe('local');
    // a withdrawal travels the same way
    a.withdrawLocal(parsePrefix('10.1.0.0/16'));
    await noRoute(c, 'ipv4-unicast', '10.1.0.0/16');
  });

  it('ADD-PATH receive/send is negotiated when both sides configure it; paths carry the path id', async () => {
    const { a, b } = await pair({
      b: { networks: ['10.2.0.0/16'] },
      toB: { addPath: { 'ipv4-unicast': 'receive' } },
      toA: { addPath: { 'ipv4-unicast': 'send' } },
    });
    expect([...peer(a, B).negotiated!.ctx.addPathRx]).toEqual(['ipv4-unicast']);
    expect([...peer(b, A).negotiated!.ctx.addPathTx]).toEqual(['ipv4-unicast']);
    expect(peer(a, B).negotiated!.ctx.addPathTx.size).toBe(0);
    const r = await hasRoute(a, 'ipv4-unicast', '10.2.0.0/16');
    expect(r.paths[0]).toMatchObject({ 'path-id': 1, 'as-path': '65002' });
    b.withdrawLocal(parsePrefix('10.2.0.0/16'));
    await noRoute(a, 'ipv4-unicast', '10.2.0.0/16');
  });

  it('ADD-PATH is not negotiated when only one side configures it', async () => {
    const { a, b } = await pair({
      b: { networks: ['10.2.0.0/16'] },
      toB: { addPath: { 'ipv4-unicast': 'receive' } },
    });
    expect(peer(a, B).negotiated!.ctx.addPathRx.size).toBe(0);
    expect(peer(b, A).negotiated!.ctx.addPathTx.size).toBe(0);
    expect((await hasRoute(a, 'ipv4-unicast', '10.2.0.0/16')).paths[0]!['path-id']).toBe(0);
  });
});

describe('ADD-PATH receive from a raw peer (RFC 7911)', () => {
  it('several paths of one prefix from one peer are kept apart by path id and withdrawn one by one', async () => {
    const a = await node(A, {
      listen: true,
      asn: 65001,
      neighbors: [
        neighbor(RAW, 65005, {
          passive: true,
          families: ['ipv4-unicast'],
          addPath: { 'ipv4-unicast': 'receive' },
        }),
      ],
    });
    const raw = await RawPeer.connect(A, a.listenPort!, RAW);
    await raw.handshake(65005, 90, { addPath: { 'ipv4-unicast': 'send' } });
    await established(a, RAW);
    expect([...peer(a, RAW).negotiated!.ctx.addPathRx]).toEqual(['ipv4-unicast']);
    const withMed = (med: string, pathId: string): Uint8Array =>
      encodeUpdate({
        attributes: hex(`${ORIGIN_IGP} ${AS_PATH_65005} ${NEXT_HOP_RAW} 80 04 04 00 00 00 ${med} # MED`),
        nlri: hex(`00 00 00 ${pathId} 10 0a 37 # path id, 10.55.0.0/16`),
      });
    raw.send(withMed('14', '01')); // MED 20, path 1
    raw.send(withMed('0a', '02')); // MED 10, path 2
    const r = await waitFor(() => {
      const v = route(a, 'ipv4-unicast', '10.55.0.0/16');
      return v !== undefined && v.paths.length === 2 && v.paths[0]!.best ? v : undefined;
    }, 'two paths');
    expect(r.paths.map((p) => [p['path-id'], p.med, p.best, p.reason])).toEqual([
      [2, 10, true, 'med'],
      [1, 20, false, 'lost: med'],
    ]);
    expect(neighborViews(a)[0]!['afi-safis']['ipv4-unicast']).toMatchObject({ received: 2, accepted: 2 });
    raw.send(encodeUpdate({ withdrawn: hex`00 00 00 02 10 0a 37 # withdraw path 2 only` }));
    await waitFor(() => route(a, 'ipv4-unicast', '10.55.0.0/16')?.paths.length === 1, 'path 2 withdrawn');
    expect(route(a, 'ipv4-unicast', '10.55.0.0/16')!.paths[0]).toMatchObject({
      'path-id': 1,
      best: true,
      med: 20,
    });
    raw.send(encodeUpdate({ withdrawn: hex`00 00 00 01 10 0a 37 # and path 1` }));
    await noRoute(a, 'ipv4-unicast', '10.55.0.0/16');
    expect(peer(a, RAW).established).toBe(true);
  });
});

describe('malformed UPDATEs from one peer (RFC 7606)', () => {
  /** A listens with a raw peer and speaker B as neighbours; B connects; the raw peer connects. */
  async function setup() {
    const a = await node(A, {
      listen: true,
      asn: 65001,
      networks: ['10.1.0.0/16'],
      neighbors: [
        neighbor(RAW, 65005, { passive: true, families: ['ipv4-unicast'] }),
        neighbor(B, 65002, { passive: true }),
      ],
    });
    const b = await node(B, {
      asn: 65002,
      networks: ['10.2.0.0/16'],
      neighbors: [neighbor(A, 65001, { remotePort: a.listenPort!, localAddress: B })],
    });
    await Promise.all([established(a, B), established(b, A)]);
    const raw = await RawPeer.connect(A, a.listenPort!, RAW);
    await raw.handshake(65005, 90);
    await established(a, RAW);
    const errors = record<[Peer, readonly UpdateError[]]>(a, 'update-error');
    raw.send(goodUpdate());
    const r = await hasRoute(a, 'ipv4-unicast', '10.55.0.0/16');
    expect(r.paths[0]).toMatchObject({ 'as-path': '65005', 'next-hop': RAW, from: RAW });
    const atB = await hasRoute(b, 'ipv4-unicast', '10.55.0.0/16');
    expect(atB.paths[0]!['as-path']).toBe('65001 65005');
    await hasRoute(a, 'ipv4-unicast', '10.2.0.0/16');
    return { a, b, raw, errors };
  }

  /** Neither the raw session nor the other peer was touched. */
  function untouched(a: Speaker, b: Speaker): void {
    expect(peer(a, B).established).toBe(true);
    expect(peer(b, A).established).toBe(true);
    expect(peer(b, A).stats.flaps).toBe(0);
    expect(route(a, 'ipv4-unicast', '10.2.0.0/16')).toBeDefined();
    expect(route(b, 'ipv4-unicast', '10.1.0.0/16')).toBeDefined();
  }

  it('an invalid ORIGIN value is treat-as-withdraw: the prefix disappears, the session stays up', async () => {
    const { a, b, raw, errors } = await setup();
    raw.send(
      encodeUpdate({
        attributes: hex`40 01 01 07 # ORIGIN 7: invalid (RFC 7606 §7.1)
                       ${AS_PATH_65005} ${NEXT_HOP_RAW}`,
        nlri: NLRI_10_55,
      }),
    );
    await noRoute(a, 'ipv4-unicast', '10.55.0.0/16');
    await noRoute(b, 'ipv4-unicast', '10.55.0.0/16');
    expect(errors).toHaveLength(1);
    expect(errors[0]![1][0]).toMatchObject({ action: 'treat-as-withdraw', subcode: 6 });
    expect(peer(a, RAW).established).toBe(true);
    expect(raw.notification()).toBeUndefined();
    expect(neighborViews(a).find((v) => v.address === RAW)!['last-error']).toMatch(/ORIGIN value 7/);
    untouched(a, b);
    // the same prefix announced properly again comes back
    raw.send(goodUpdate());
    await hasRoute(b, 'ipv4-unicast', '10.55.0.0/16');
  });

  it('an attribute length overrunning the section is treat-as-withdraw when NLRI is present', async () => {
    const { a, b, raw, errors } = await setup();
    raw.send(
      encodeUpdate({
        attributes: hex`${ORIGIN_IGP} ${AS_PATH_65005} ${NEXT_HOP_RAW}
                       c0 08 08 fd ed 00 01 # COMMUNITIES claims 8 bytes, 4 are left (RFC 7606 §4)`,
        nlri: NLRI_10_55,
      }),
    );
    await noRoute(a, 'ipv4-unicast', '10.55.0.0/16');
    await noRoute(b, 'ipv4-unicast', '10.55.0.0/16');
    expect(errors[0]![1][0]).toMatchObject({ action: 'treat-as-withdraw', subcode: 1 });
    expect(peer(a, RAW).established).toBe(true);
    expect(raw.notification()).toBeUndefined();
    untouched(a, b);
  });

  it('the same overrun without NLRI resets that session only (RFC 7606 §5.2)', async () => {
    const { a, b, raw } = await setup();
    const down = record<[Peer, string]>(a, 'peer-down');
    raw.send(
      encodeUpdate({ attributes: hex`${ORIGIN_IGP} c0 08 08 fd ed 00 01 # overrun, nothing to withdraw` }),
    );
    const n = await waitFor(() => raw.notification(), 'a NOTIFICATION to the raw peer');
    expect(n).toMatchObject({ code: NotificationCode.UPDATE_MESSAGE_ERROR, subcode: 1 });
    const [p] = await waitFor(() => down[0], 'the raw session down');
    expect(p.cfg.address).toBe(RAW);
    await noRoute(a, 'ipv4-unicast', '10.55.0.0/16');
    await noRoute(b, 'ipv4-unicast', '10.55.0.0/16');
    untouched(a, b);
  });
});
