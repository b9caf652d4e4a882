/**
 * The embedded-PE WAN adapter: our agent in the PE role. First the conformance suite (PE driven
 * over its management API, as the controller does), then the draft's end-to-end WAN IP VPN:
 *
 *   vCE1 127.0.52.112 ─eBGP─ PE1 VRF vce-x (127.0.52.111)          PE2 VRF vce-y (127.0.52.121) ─eBGP─ vCE2 127.0.52.122
 *   AS 65201                  PE1 default 127.0.52.110 ══ iBGP VPNv4/VPNv6 ══ PE2 default 127.0.52.120    AS 65202
 *
 * Both VRFs import and export the same route target: vCE1's prefixes travel as VPN routes to
 * PE2's VRF and on to vCE2, and back. PE1 is driven over HTTP (`PUT /api/v1/config`), PE2
 * in-process (`agent.apply`). Everything runs in this process on loopback free ports.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgentConfig } from '../../src/agent/config.ts';
import { startAgent, type RunningAgent } from '../../src/agent/run.ts';
import { routeViews } from '../../src/bgp/rib-view.ts';
import { EmbeddedPeAdapter } from '../../src/controller/wan/embedded.ts';
import { createWanAdapter } from '../../src/controller/wan/index.ts';
import type { WanBindingSpec } from '../../src/controller/wan/types.ts';
import { freePort, waitFor } from './harness/common.ts';
import { describeWanConformance, startCe, statusUntil, type Ce, type WanTestbed } from './wan-conformance.ts';

const PE_ASN = 65000;
const FAST = { passive: true, 'connect-retry': 1 };

/** A PE agent document: the default context speaks VPNv4/VPNv6 (iBGP) to `remote`, if any. */
function peDoc(
  me: string,
  port: number,
  remote?: { address: string; port: number },
  api = true,
): Record<string, unknown> {
  return {
    'router-id': me,
    'log-level': 'silent',
    ...(api ? { api: { listen: `${me}:0` } } : {}),
    bgp: {
      asn: PE_ASN,
      listen: { address: me, port },
      neighbors:
        remote === undefined
          ? []
          : [
              {
                address: remote.address,
                'peer-asn': PE_ASN,
                'remote-port': remote.port,
                'local-address': me,
                'connect-retry': 1,
                'afi-safis': ['ipv4-vpn', 'ipv6-vpn'],
              },
            ],
    },
  };
}

describeWanConformance(
  'embedded PE (agent API)',
  async (): Promise<WanTestbed> => {
    const me = '127.0.52.100';
    const [port, bgpPort] = await Promise.all([freePort(me), freePort('127.0.52.1')]);
    const pe = await startAgent(buildAgentConfig(peDoc(me, port)));
    const changes: string[] = [];
    const adapter = createWanAdapter({
      kind: 'embedded',
      api: pe.apiUrl!,
      bgpPort,
      neighborDefaults: FAST,
      onChange: (c) => changes.push(c),
    });
    return {
      adapter,
      changes,
      peAsn: PE_ASN,
      peA: { address: '127.0.52.1', port: bgpPort },
      peB: '127.0.52.5',
      peDyn: { address: '127.0.52.9', port: bgpPort },
      ceA: '127.0.52.2',
      ceB: '127.0.52.6',
      stop: () => pe.stop(),
    };
  },
  { dynamic: { range: '127.0.52.64/26', ces: ['127.0.52.70', '127.0.52.71'] } },
);

describe('embedded PE: the WAN IP VPN end to end (two PEs, VPNv4/VPNv6 between them)', () => {
  const P1 = '127.0.52.110';
  const P2 = '127.0.52.120';
  let pe1: RunningAgent;
  let pe2: RunningAgent;
  let a1: EmbeddedPeAdapter;
  let a2: EmbeddedPeAdapter;
  let ce1: Ce;
  let ce2: Ce;
  let bgpPort: number;
  let doc1: Record<string, unknown>;
  const CE1_PREFIXES = ['10.71.0.0/16', '2001:db8:71::/48'];
  const CE2_PREFIXES = ['10.72.0.0/16'];
  const binding = (id: string, pe: string, ce: string, ceAsn: number, rd: string): WanBindingSpec => ({
    id,
    tenant: 'acme',
    pe: id,
    vrf: 'acme-vpn',
    rd,
    importRts: ['65000:77'],
    exportRts: ['65000:77'],
    attachment: { kind: 'vlan', id: 300 },
    protocol: 'bgp',
    peAddress: pe,
    peAsn: PE_ASN,
    ceAddress: ce,
    ceAsn,
  });
  const X = binding('x', '127.0.52.111', '127.0.52.112', 65201, '65000:201');
  const Y = binding('y', '127.0.52.121', '127.0.52.122', 65202, '65000:202');

  beforeAll(async () => {
    const [p1, p2] = await Promise.all([freePort(P1), freePort(P2)]);
    bgpPort = await freePort(X.peAddress);
    doc1 = peDoc(P1, p1, { address: P2, port: p2 });
    pe1 = await startAgent(buildAgentConfig(doc1));
    const doc2 = peDoc(P2, p2, { address: P1, port: p1 }, false);
    pe2 = await startAgent(buildAgentConfig(doc2));
    a1 = new EmbeddedPeAdapter({ api: pe1.apiUrl!, bgpPort, neighborDefaults: FAST });
    a2 = new EmbeddedPeAdapter({ agent: pe2, config: doc2, bgpPort, neighborDefaults: FAST });
    await waitFor(() => Promise.resolve(pe1.speaker.neighbor(P2)?.established === true ? true : undefined), {
      what: 'PE1-PE2 VPN session established',
      timeoutMs: 10_000,
    });
    await Promise.all([a1.provision(X), a2.provision(Y)]);
    ce1 = await startCe({
      address: X.ceAddress,
      asn: 65201,
      pe: { address: X.peAddress, port: bgpPort },
      peAsn: PE_ASN,
      prefixes: CE1_PREFIXES,
    });
    ce2 = await startCe({
      address: Y.ceAddress,
      asn: 65202,
      pe: { address: Y.peAddress, port: bgpPort },
      peAsn: PE_ASN,
      prefixes: CE2_PREFIXES,
    });
  });

  afterAll(async () => {
    await Promise.allSettled([ce1?.stop(), ce2?.stop()]);
    await Promise.allSettled([a1?.close(), a2?.close()]);
    await Promise.allSettled([pe1?.stop(), pe2?.stop()]);
  });

  it("the remote PE's VRF receives vCE1's prefixes over VPNv4/VPNv6, with vCE1's RD and route target", async () => {
    await statusUntil(a2, Y, "vCE1's prefixes in PE2's VRF", (s) =>
      CE1_PREFIXES.every((p) => s.routes.includes(p)),
    );
    const vpn4 = routeViews(pe2.speaker, 'ipv4-vpn').find((r) => r.prefix === '10.71.0.0/16');
    expect(vpn4).toMatchObject({ rd: '65000:201' });
    expect(vpn4!.paths[0]).toMatchObject({
      best: true,
      from: P1,
      'as-path': '65201',
      'ext-communities': ['rt:65000:77'],
    });
    const vpn6 = routeViews(pe2.speaker, 'ipv6-vpn').find((r) => r.prefix === '2001:db8:71::/48');
    expect(vpn6).toMatchObject({ rd: '65000:201' });
    const fib = pe2.contexts.get(a2.vrfName(Y))!.fib();
    expect(fib.find((e) => e.prefix === '10.71.0.0/16')).toMatchObject({ source: 'bgp', 'next-hop': P1 });
  });

  it("each vCE learns the other site's prefixes from its PE (the VPN end to end)", async () => {
    await waitFor(
      () => Promise.resolve(CE1_PREFIXES.every((p) => ce2.learned().includes(p)) ? true : undefined),
      { what: "vCE1's prefixes at vCE2", describe: () => JSON.stringify(ce2.learned()) },
    );
    await waitFor(
      () => Promise.resolve(CE2_PREFIXES.every((p) => ce1.learned().includes(p)) ? true : undefined),
      { what: "vCE2's prefixes at vCE1", describe: () => JSON.stringify(ce1.learned()) },
    );
    const atCe2 = routeViews(ce2.agent.speaker, 'ipv4-unicast').find((r) => r.prefix === '10.71.0.0/16');
    expect(atCe2!.paths[0]!['as-path']).toBe('65000 65201');
    expect((await a1.status(X)).routes).toEqual([...CE1_PREFIXES, ...CE2_PREFIXES].sort());
  });

  it('deprovisioning the binding on PE1 withdraws its routes from the remote PE and the remote vCE', async () => {
    await a1.deprovision(X);
    await statusUntil(a2, Y, "vCE1's prefixes gone from PE2's VRF", (s) =>
      CE1_PREFIXES.every((p) => !s.routes.includes(p)),
    );
    await waitFor(
      () => Promise.resolve(CE1_PREFIXES.every((p) => !ce2.learned().includes(p)) ? true : undefined),
      { what: "vCE1's prefixes withdrawn at vCE2", describe: () => JSON.stringify(ce2.learned()) },
    );
    expect(routeViews(pe2.speaker, 'ipv4-vpn').map((r) => r.prefix)).not.toContain('10.71.0.0/16');
    expect(await a1.list()).toEqual([]);
    expect(await a2.list()).toEqual(['y']);
    // PE1 runs the document it started with again: the adapter changed only its own VRF.
    const doc = (await pe1.api!.inject({ method: 'GET', url: '/api/v1/config' })).json<
      Record<string, unknown>
    >();
    expect(doc).toEqual({ ...doc1, vrfs: [] });
  });
});
