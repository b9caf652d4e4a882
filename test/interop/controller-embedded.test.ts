/**
 * The controller with our own speakers as the WAN: two embedded PEs with VPNv4 between them, an
 * enterprise site behind the remote PE, and the tenant's vCE in the DC.
 *
 *   vCE 127.0.83.2 ─eBGP─ PE1 VRF (127.0.83.1)   PE1 127.0.83.10 ══ iBGP VPNv4 ══ PE2 127.0.83.20 ─ VRF site 10.83.9.0/24
 *
 * - cross-domain push (§7.2.1.2): a cross-domain orchestrator token starts the binding; the
 *   operation hands the VLAN/VXLAN and tenant context back (step `hand-off`), then WAN
 *   provisioning runs; the site's prefix reaches the vCE and the vCE's reaches the site;
 * - dynamic-neighbour mode (§7.2.1.1): the PE VRF accepts BGP from a range, with no per-vCE
 *   neighbour configuration.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgentConfig } from '../../src/agent/config.ts';
import { startAgent, type RunningAgent } from '../../src/agent/run.ts';
import { ControllerClient } from '../../src/agent/controller-client.ts';
import { startController, type RunningController } from '../../src/controller/run.ts';
import { callApi, type ApiResult } from './harness/controller.ts';
import { freePort, waitFor, freeUdpPort } from './harness/common.ts';

const ASN = 65000;
const PE1 = '127.0.83.10';
const PE2 = '127.0.83.20';
const VCE = '127.0.83.2';

function peDoc(
  me: string,
  port: number,
  remote: { address: string; port: number },
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    'router-id': me,
    'log-level': 'silent',
    api: { listen: `${me}:0` },
    bgp: {
      asn: ASN,
      listen: { address: me, port },
      neighbors: [
        {
          address: remote.address,
          'peer-asn': ASN,
          'remote-port': remote.port,
          'local-address': me,
          'connect-retry': 1,
          'afi-safis': ['ipv4-vpn', 'ipv6-vpn'],
        },
      ],
    },
    ...extra,
  };
}

describe('controller with embedded PEs: cross-domain push and dynamic neighbours', () => {
  let dir: string;
  let ctl: RunningController;
  let pe1: RunningAgent;
  let pe2: RunningAgent;
  let client: ControllerClient;
  const api = (method: string, path: string, body?: unknown, token = ctl.operatorToken): Promise<ApiResult> =>
    callApi(ctl.url, token, method, path, body);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vce-ctl-emb-'));
    const [p1, p2, vrfPort, vxlanPort] = await Promise.all([
      freePort(PE1),
      freePort(PE2),
      freePort('127.0.83.1'),
      freeUdpPort(VCE),
    ]);
    pe1 = await startAgent(buildAgentConfig(peDoc(PE1, p1, { address: PE2, port: p2 })));
    pe2 = await startAgent(
      buildAgentConfig(
        peDoc(
          PE2,
          p2,
          { address: PE1, port: p1 },
          {
            vrfs: [
              {
                name: 'site',
                'route-distinguisher': '65000:839',
                'route-targets': { both: ['65000:83'] },
                interfaces: [{ name: 'lan', addresses: ['10.83.9.1/24'] }],
              },
            ],
          },
        ),
      ),
    );
    await waitFor(() => Promise.resolve(pe1.speaker.neighbor(PE2)?.established === true ? true : undefined), {
      what: 'PE1-PE2 VPNv4',
      timeoutMs: 10_000,
    });
    ctl = await startController({
      store: { kind: 'sqlite', file: join(dir, 'ctl.db') },
      listen: { host: '127.0.0.1', port: 0 },
      operatorToken: 'operator-secret-for-tests-embedded',
      logLevel: 'silent',
      workflow: { waitTimeoutMs: 30_000, retryMs: 200 },
    });
    const ok = (r: { status: number; body: unknown }): void =>
      expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
    ok(await api('POST', '/api/v1/hosts', { id: 'dc1', underlay: VCE }));
    ok(
      await api('POST', '/api/v1/pes', {
        id: 'pe1',
        asn: ASN,
        adapter: { kind: 'embedded', api: pe1.apiUrl! },
        bgpPort: vrfPort,
        dynamicRange: '127.0.84.0/24',
      }),
    );
    ok(await api('POST', '/api/v1/tenants', { id: 'globex', name: 'Globex' }));
    ok(
      await api('POST', '/api/v1/tenants/globex/vces', {
        id: 'globex-vce',
        host: 'dc1',
        asn: 65183,
        routerId: VCE,
        contexts: [{ name: 'red' }, { name: 'blue' }],
        vxlanPort,
      }),
    );
    ok(
      await api('POST', '/api/v1/tenants/globex/attachments', {
        id: 'globex-app',
        vce: 'globex-vce',
        context: 'red',
        addresses: ['10.83.1.1/24'],
      }),
    );
    ok(
      await api('POST', '/api/v1/tenants/globex/attachments', {
        id: 'globex-db',
        vce: 'globex-vce',
        context: 'blue',
        addresses: ['10.84.1.1/24'],
      }),
    );
    const tok = await api('POST', '/api/v1/tokens', {
      name: 'globex-vce',
      role: 'agent',
      scope: 'globex-vce',
    });
    client = new ControllerClient({
      url: ctl.url,
      token: tok.body['token'] as string,
      id: 'globex-vce',
      log: pino({ level: 'silent' }),
      statusIntervalMs: 500,
    });
    client.start();
  });

  afterAll(async () => {
    await client?.stop();
    await ctl?.stop();
    await pe1?.stop();
    await pe2?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('cross-domain push: the orchestrator gets the connection and tenant context back; the site and the vCE exchange routes', async () => {
    const xd = await api('POST', '/api/v1/tokens', { name: 'xdomain', role: 'cross-domain' });
    const token = xd.body['token'] as string;
    // a tenant token may not start a cross-domain binding; an operator may not use the tenant route for it
    const r = await api(
      'POST',
      '/api/v1/cross-domain/tenants/globex/bindings',
      {
        id: 'globex-red',
        vce: 'globex-vce',
        context: 'red',
        pe: 'pe1',
        wanVrf: 'globex',
        rd: '65000:831',
        importRts: ['65000:83'],
        exportRts: ['65000:83'],
        peAttachment: { kind: 'vlan', id: 831 },
        peAddress: '127.0.83.1',
        ceAddress: VCE,
      },
      token,
    );
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const op = await ctl.runner.settle((r.body['operation'] as { id: string }).id, 40_000);
    expect(op.state, JSON.stringify(op.steps)).toBe('succeeded');
    expect(op.mode).toBe('push-cross-domain');
    const handOff = op.steps.find((s) => s.name === 'hand-off')!.result!;
    expect(handOff['connection']).toEqual({ kind: 'vlan', id: 831 });
    expect(handOff['tenantContext']).toMatchObject({ tenant: 'globex', wanVrf: 'globex', rd: '65000:831' });
    // the enterprise site's prefix reaches the vCE's context, and the vCE's reaches the site
    await waitFor(
      () =>
        Promise.resolve(
          client
            .agent!.contexts.get('red')!
            .fib()
            .some((e) => e.prefix === '10.83.9.0/24')
            ? true
            : undefined,
        ),
      {
        what: 'the site prefix in the vCE context',
        timeoutMs: 15_000,
      },
    );
    await waitFor(
      () =>
        Promise.resolve(
          pe2.contexts
            .get('site')!
            .fib()
            .some((e) => e.prefix === '10.83.1.0/24')
            ? true
            : undefined,
        ),
      {
        what: "the vCE's prefix at the remote site",
        timeoutMs: 15_000,
      },
    );
  });

  it('dynamic-neighbour mode: the PE VRF accepts the vCE from its range with no per-vCE neighbour', async () => {
    const r = await api('POST', '/api/v1/tenants/globex/bindings', {
      id: 'globex-blue',
      vce: 'globex-vce',
      context: 'blue',
      pe: 'pe1',
      wanVrf: 'globex-blue',
      rd: '65000:841',
      importRts: ['65000:84'],
      exportRts: ['65000:84'],
      peAttachment: { kind: 'vlan', id: 841 },
      peAddress: '127.0.84.1',
      ceAddress: '127.0.84.2',
      dynamic: true,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const op = await ctl.runner.settle((r.body['operation'] as { id: string }).id, 40_000);
    expect(op.state, JSON.stringify(op.steps)).toBe('succeeded');
    const cfg = (await (await fetch(`${pe1.apiUrl!}/api/v1/config`)).json()) as {
      vrfs: { name: string; bgp?: { neighbors?: unknown[]; 'dynamic-neighbors'?: unknown[] } }[];
    };
    const vrf = cfg.vrfs.find((v) => v.name.endsWith('globex-blue'))!;
    expect(vrf.bgp?.['dynamic-neighbors']?.length).toBe(1);
    expect(vrf.bgp?.neighbors ?? []).toEqual([]);
  });

  it('unbinding removes the PE VRF and the vCE session; the other binding stays', async () => {
    const d = await api('DELETE', '/api/v1/tenants/globex/bindings/globex-blue');
    expect(d.status).toBe(202);
    const op = await ctl.runner.settle((d.body as { id: string }).id, 40_000);
    expect(op.state, JSON.stringify(op.steps)).toBe('succeeded');
    const vrfs = (await (await fetch(`${pe1.apiUrl!}/api/v1/vrfs`)).json()) as { name: string }[];
    expect(vrfs.map((v) => v.name).some((n) => n.endsWith('globex-blue'))).toBe(false);
    expect(vrfs.map((v) => v.name).some((n) => n.endsWith('globex-red'))).toBe(true);
    expect((await api('GET', '/api/v1/tenants/globex/bindings/globex-blue')).status).toBe(404);
  });
});
