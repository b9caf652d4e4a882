/**
 * Routing contexts (VRFs) of one vCE: connected, static, controller and BGP routes per context, the
 * FIB chosen by administrative distance with the source named, overlapping prefixes kept apart
 * between contexts, controller routes that vanish when their lease is not renewed, and the
 * configuration errors that name their field.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgentConfig, ConfigError } from '../../src/agent/config.ts';
import { startAgent, type RunningAgent } from '../../src/agent/run.ts';
import { freePort, waitFor } from '../interop/harness/common.ts';

const VCE = '127.0.3.1';
const PE_RED = '127.0.3.2';
const PE_BLUE = '127.0.3.3';

function pe(
  address: string,
  asn: number,
  port: number,
  vcePort: number,
  networks: string[],
): Promise<RunningAgent> {
  return startAgent(
    buildAgentConfig({
      'router-id': address,
      'log-level': 'silent',
      bgp: {
        asn,
        listen: { address, port },
        neighbors: [
          {
            address: VCE,
            'peer-asn': 65010,
            'remote-port': vcePort,
            'local-address': address,
            passive: true,
            'import-policy': 'accept-all',
            'export-policy': 'accept-all',
          },
        ],
        networks,
      },
    }),
  );
}

let vce: RunningAgent;
let peRed: RunningAgent;
let peBlue: RunningAgent;

beforeAll(async () => {
  const [pr, pb, vr, vb] = await Promise.all([
    freePort(PE_RED),
    freePort(PE_BLUE),
    freePort(VCE),
    freePort(VCE),
  ]);
  // Both PEs announce the same overlapping prefix 10.0.0.0/8 (and each one of its own).
  [peRed, peBlue] = await Promise.all([
    pe(PE_RED, 65001, pr, vr, ['10.0.0.0/8', '192.0.2.0/24']),
    pe(PE_BLUE, 65002, pb, vb, ['10.0.0.0/8', '198.51.100.0/24']),
  ]);
  const vrfBgp = (port: number, peer: string, peerAsn: number, peerPort: number) => ({
    asn: 65010,
    listen: { address: VCE, port },
    neighbors: [
      {
        address: peer,
        'peer-asn': peerAsn,
        'remote-port': peerPort,
        'local-address': VCE,
        'connect-retry': 1,
        'import-policy': 'accept-all',
        'export-policy': 'accept-all',
      },
    ],
  });
  vce = await startAgent(
    buildAgentConfig({
      'router-id': VCE,
      'log-level': 'silent',
      api: { listen: '127.0.0.1:0' },
      tenant: 'acme',
      interfaces: [{ name: 'mgmt', addresses: ['172.16.0.1/24'] }],
      'static-routes': [
        { prefix: '0.0.0.0/0', 'next-hop': '172.16.0.254' },
        { prefix: '203.0.113.0/24', action: 'blackhole' },
        { prefix: '2001:db8:dead::/48', action: 'reject' },
      ],
      vrfs: [
        {
          name: 'red',
          'route-distinguisher': '65010:1',
          interfaces: [{ name: 'red0', addresses: ['10.1.1.1/24', '2001:db8:1::1/64'] }],
          'static-routes': [{ prefix: '192.0.2.0/24', 'next-hop': '10.1.1.254', distance: 250 }],
          bgp: vrfBgp(vr, PE_RED, 65001, pr),
        },
        {
          name: 'blue',
          'route-distinguisher': '65010:2',
          'static-routes': [{ prefix: '198.51.100.0/24', 'next-hop': '10.9.9.9' }],
          bgp: vrfBgp(vb, PE_BLUE, 65002, pb),
        },
      ],
    }),
  );
  await waitFor(
    () =>
      Promise.resolve(
        vce.contexts
          .get('red')!
          .fib(4)
          .some((e) => e.source === 'bgp') &&
          vce.contexts
            .get('blue')!
            .fib(4)
            .some((e) => e.source === 'bgp')
          ? true
          : undefined,
      ),
    { timeoutMs: 10_000, what: 'BGP routes in both contexts' },
  );
});

afterAll(async () => {
  await Promise.all([vce?.stop(), peRed?.stop(), peBlue?.stop()]);
});

async function fib(vrf: string): Promise<
  {
    prefix: string;
    source: string;
    'next-hop': string | null;
    action: string;
    distance: number;
    alternatives: string[];
  }[]
> {
  const res = await vce.api!.inject({ method: 'GET', url: `/api/v1/vrfs/${vrf}/fib` });
  expect(res.statusCode).toBe(200);
  return res.json();
}

describe('routing contexts', () => {
  it('lists the contexts with their RD and route counts', async () => {
    const res = await vce.api!.inject({ method: 'GET', url: '/api/v1/vrfs' });
    expect(res.json()).toEqual([
      {
        name: 'default',
        'route-distinguisher': null,
        bgp: false,
        routes: { connected: 1, static: 3, controller: 0 },
        'fib-size': 4,
      },
      {
        name: 'red',
        'route-distinguisher': '65010:1',
        bgp: true,
        routes: { connected: 2, static: 1, controller: 0 },
        'fib-size': 4,
      },
      {
        name: 'blue',
        'route-distinguisher': '65010:2',
        bgp: true,
        routes: { connected: 0, static: 1, controller: 0 },
        'fib-size': 2,
      },
    ]);
  });

  it('lists the interfaces of a context', async () => {
    const res = await vce.api!.inject({ method: 'GET', url: '/api/v1/vrfs/red/interfaces' });
    expect(res.json()).toEqual([{ name: 'red0', addresses: ['10.1.1.1/24', '2001:db8:1::1/64'] }]);
    expect((await vce.api!.inject({ method: 'GET', url: '/api/v1/vrfs/green/interfaces' })).statusCode).toBe(
      404,
    );
  });

  it('the default context: connected, static, blackhole and reject entries', async () => {
    expect(await fib('default')).toEqual([
      {
        prefix: '0.0.0.0/0',
        action: 'forward',
        'next-hop': '172.16.0.254',
        interface: null,
        source: 'static',
        distance: 1,
        alternatives: [],
      },
      {
        prefix: '172.16.0.0/24',
        action: 'forward',
        'next-hop': null,
        interface: 'mgmt',
        source: 'connected',
        distance: 0,
        alternatives: [],
      },
      {
        prefix: '203.0.113.0/24',
        action: 'blackhole',
        'next-hop': null,
        interface: null,
        source: 'static',
        distance: 1,
        alternatives: [],
      },
      {
        prefix: '2001:db8:dead::/48',
        action: 'reject',
        'next-hop': null,
        interface: null,
        source: 'static',
        distance: 1,
        alternatives: [],
      },
    ]);
  });

  it('overlapping prefixes stay in their context; distance decides between sources', async () => {
    const red = await fib('red');
    const blue = await fib('blue');
    const r10 = red.find((e) => e.prefix === '10.0.0.0/8')!;
    const b10 = blue.find((e) => e.prefix === '10.0.0.0/8')!;
    expect(r10).toMatchObject({ source: 'bgp', 'next-hop': PE_RED, distance: 20 });
    expect(b10).toMatchObject({ source: 'bgp', 'next-hop': PE_BLUE, distance: 20 });
    // never the other context's routes
    expect(red.map((e) => e.prefix)).not.toContain('198.51.100.0/24');
    expect(blue.map((e) => e.prefix)).not.toContain('192.0.2.0/24');
    expect(blue.map((e) => e.prefix)).not.toContain('10.1.1.0/24');
    // red: static at distance 250 loses to eBGP (20); blue: static at 1 beats eBGP
    expect(red.find((e) => e.prefix === '192.0.2.0/24')).toMatchObject({
      source: 'bgp',
      alternatives: ['static:250'],
    });
    expect(blue.find((e) => e.prefix === '198.51.100.0/24')).toMatchObject({
      source: 'static',
      'next-hop': '10.9.9.9',
      alternatives: ['bgp:20'],
    });
    // BGP state per context through ?vrf=
    const rib = await vce.api!.inject({ method: 'GET', url: '/api/v1/bgp/rib/ipv4-unicast?vrf=blue' });
    expect(rib.json<{ prefix: string }[]>().map((r) => r.prefix)).toEqual(['10.0.0.0/8', '198.51.100.0/24']);
    const none = await vce.api!.inject({ method: 'GET', url: '/api/v1/bgp/neighbors?vrf=default' });
    expect(none.statusCode).toBe(404);
    expect(none.json()).toEqual({ error: 'not-found', message: 'routing context "default" runs no BGP' });
  });

  it('controller routes: installed with a lease, renewed, expired, deleted; bad input installs nothing', async () => {
    const put = (body: Record<string, unknown>, vrf = 'red') =>
      vce.api!.inject({ method: 'PUT', url: `/api/v1/vrfs/${vrf}/routes`, payload: body });
    const bad = await put({
      routes: [
        { prefix: '10.50.0.0/16', 'next-hop': '10.1.1.9' },
        { prefix: '10.51.0.0/33', 'next-hop': '10.1.1.9' },
      ],
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/^routes\[1\]: /);
    expect((await fib('red')).map((e) => e.prefix)).not.toContain('10.50.0.0/16');
    expect((await put({ routes: [] }, 'green')).statusCode).toBe(404);

    const ok = await put({
      routes: [
        { prefix: '10.50.0.0/16', 'next-hop': '10.1.1.9' },
        { prefix: '10.0.0.0/8', 'next-hop': '10.1.1.8', distance: 5 },
      ],
      'lease-seconds': 1,
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().installed).toBe(2);
    const red = await fib('red');
    expect(red.find((e) => e.prefix === '10.50.0.0/16')).toMatchObject({
      source: 'controller',
      'next-hop': '10.1.1.9',
      distance: 10,
    });
    expect(red.find((e) => e.prefix === '10.0.0.0/8')).toMatchObject({
      source: 'controller',
      alternatives: ['bgp:20'],
    });
    // the lease runs out: the routes leave the FIB, BGP's route comes back
    await waitFor(
      () => fib('red').then((f) => (f.some((e) => e.source === 'controller') ? undefined : true)),
      {
        timeoutMs: 5000,
        what: 'controller routes to expire',
      },
    );
    expect((await fib('red')).find((e) => e.prefix === '10.0.0.0/8')).toMatchObject({ source: 'bgp' });
    // install again with a long lease, then delete one and all
    await put({
      routes: [
        { prefix: '10.60.0.0/16', interface: 'red0' },
        { prefix: '10.61.0.0/16', action: 'blackhole' },
      ],
      'lease-seconds': 600,
    });
    const one = await vce.api!.inject({
      method: 'DELETE',
      url: '/api/v1/vrfs/red/routes?prefix=10.60.0.0/16',
    });
    expect(one.json()).toEqual({ removed: 1 });
    const all = await vce.api!.inject({ method: 'DELETE', url: '/api/v1/vrfs/red/routes' });
    expect(all.json()).toEqual({ removed: 1 });
  });

  it('configuration errors name the field', () => {
    const err = (raw: unknown): string => {
      try {
        buildAgentConfig(raw);
      } catch (e) {
        if (e instanceof ConfigError) return e.message;
        throw e;
      }
      return 'no error';
    };
    expect(err({ 'router-id': '1.1.1.1', 'static-routes': [{ prefix: '10.0.0.0/8' }] })).toBe(
      'static-routes[0]: a forwarding route needs a next-hop or an interface (or action: blackhole | reject)',
    );
    expect(
      err({ 'router-id': '1.1.1.1', 'static-routes': [{ prefix: '10.0.0.0/8', 'next-hop': '2001:db8::1' }] }),
    ).toMatch(/^static-routes\[0\]\.next-hop: /);
    expect(
      err({
        'router-id': '1.1.1.1',
        bgp: { asn: 1, neighbors: [{ address: '127.0.0.2', 'peer-asn': 2, 'tcp-ao': true }] },
      }),
    ).toMatch(
      /^bgp\.neighbors\[0\]\.tcp-ao: TCP-AO \(RFC 5925\) is not (available in this kernel|supported by vce yet)/,
    );
    expect(err({ 'router-id': '1.1.1.1', vrfs: [{ name: 'a' }, { name: 'a' }] })).toBe(
      'vrfs[1].name: context "a" is defined twice',
    );
    expect(err({ 'router-id': '1.1.1.1', vrfs: [{ name: 'a', 'route-distinguisher': 'x' }] })).toMatch(
      /^vrfs\[0\]\.route-distinguisher: /,
    );
    expect(
      err({
        'router-id': '1.1.1.1',
        bgp: { asn: 1, listen: { address: '127.0.0.1', port: 1790 } },
        vrfs: [{ name: 'a', bgp: { asn: 1, listen: { address: '127.0.0.1', port: 1790 } } }],
      }),
    ).toBe('vrfs[0].bgp.listen: 127.0.0.1:1790 is already the BGP listener of bgp.listen');
  });
});
