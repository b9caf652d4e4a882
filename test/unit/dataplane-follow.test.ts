/**
 * The forwarder's FIB follows the agent's RIB per prefix: a BGP route learnt from a PE appears in
 * the LPM without re-reading the whole context, leaves it when withdrawn, and a controller route
 * whose next hop is reached through that BGP route is resolved recursively (such a context is
 * then re-synced whole, since a change underneath moves it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgentConfig } from '../../src/agent/config.ts';
import { startAgent, type RunningAgent } from '../../src/agent/run.ts';
import { parsePrefix, ipv4ToNumber, parseIPv4 } from '../../src/lib/ip.ts';
import { freePort, waitFor, freeUdpPort } from '../interop/harness/common.ts';

const PE = '127.0.14.1';
const VCE = '127.0.14.2';
let pe: RunningAgent;
let vce: RunningAgent;


function lookup(agent: RunningAgent, addr: string): { iface: string; gw: string } | undefined {
  const fwd = agent.dataplane!.driver.forwarder!;
  const v = fwd.tables.contexts[fwd.tables.contextIndex('default')]!.fib4.lookup(
    ipv4ToNumber(parseIPv4(addr)),
  );
  if (v === 0) return undefined;
  const nh = fwd.tables.nextHops[v - 1]!;
  const g = nh.gw4;
  return {
    iface: fwd.iface(nh.iface).cfg.name,
    gw: g === undefined ? '' : [g >>> 24, (g >>> 16) & 255, (g >>> 8) & 255, g & 255].join('.'),
  };
}

beforeAll(async () => {
  const [pp, pv, udp] = await Promise.all([freePort(PE), freePort(VCE), freeUdpPort(VCE)]);
  pe = await startAgent(
    buildAgentConfig({
      'router-id': PE,
      'log-level': 'silent',
      bgp: {
        asn: 65010,
        listen: { address: PE, port: pp },
        neighbors: [
          {
            address: VCE,
            'peer-asn': 65020,
            passive: true,
            'import-policy': 'accept-all',
            'export-policy': 'accept-all',
          },
        ],
      },
    }),
  );
  vce = await startAgent(
    buildAgentConfig({
      'router-id': VCE,
      'log-level': 'silent',
      interfaces: [
        { name: 'up', kind: 'vxlan', vni: 9, remotes: ['127.0.14.9'], addresses: ['127.0.14.2/24'] },
      ],
      bgp: {
        asn: 65020,
        listen: { address: VCE, port: pv },
        neighbors: [
          {
            address: PE,
            'peer-asn': 65010,
            'remote-port': pp,
            'local-address': VCE,
            'connect-retry': 1,
            'import-policy': 'accept-all',
            'export-policy': 'accept-all',
          },
        ],
      },
      dataplane: { listen: VCE, 'vxlan-port': udp },
    }),
  );
  await waitFor(() => Promise.resolve(vce.speaker.peerList()[0]?.established === true ? true : undefined), {
    timeoutMs: 10_000,
    what: 'the BGP session',
  });
});

afterAll(async () => {
  await vce?.stop();
  await pe?.stop();
});

describe('the data plane FIB follows the RIB', () => {
  it('a BGP route arrives and leaves per prefix, without re-reading the context', async () => {
    const dp = vce.dataplane!;
    const full = dp.fullSyncs;
    pe.speaker.originate(parsePrefix('10.50.0.0/16'), { nextHop: parseIPv4(PE) });
    await waitFor(() => Promise.resolve(lookup(vce, '10.50.1.1')), {
      timeoutMs: 5000,
      what: '10.50.0.0/16 in the LPM',
    });
    expect(lookup(vce, '10.50.1.1')).toEqual({ iface: 'up', gw: PE });
    expect(dp.fullSyncs).toBe(full);
    expect(dp.incremental).toBeGreaterThan(0);
    pe.speaker.withdrawLocal(parsePrefix('10.50.0.0/16'));
    await waitFor(() => Promise.resolve(lookup(vce, '10.50.1.1') === undefined ? true : undefined), {
      timeoutMs: 5000,
      what: '10.50.0.0/16 gone from the LPM',
    });
    expect(dp.fullSyncs).toBe(full);
  });

  it('a controller route through a BGP route resolves recursively and follows it', async () => {
    pe.speaker.originate(parsePrefix('10.50.0.0/16'), { nextHop: parseIPv4(PE) });
    await waitFor(() => Promise.resolve(lookup(vce, '10.50.1.1')), {
      timeoutMs: 5000,
      what: 'the BGP route',
    });
    // what PUT /api/v1/vrfs/default/routes does
    vce.contexts.get('default')!.set('controller', parsePrefix('10.60.0.0/16'), {
      action: 'forward',
      nextHop: parseIPv4('10.50.0.9'),
      distance: 10,
      expiresAt: Date.now() + 60_000,
    });
    await waitFor(() => Promise.resolve(lookup(vce, '10.60.0.1')), {
      timeoutMs: 5000,
      what: 'the recursive route',
    });
    expect(lookup(vce, '10.60.0.1')).toEqual({ iface: 'up', gw: PE });
    pe.speaker.withdrawLocal(parsePrefix('10.50.0.0/16'));
    await waitFor(() => Promise.resolve(lookup(vce, '10.60.0.1') === undefined ? true : undefined), {
      timeoutMs: 5000,
      what: 'the recursive route unresolved',
    });
  });
});
