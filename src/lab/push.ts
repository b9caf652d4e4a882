/**
 * The lab's push-model act (draft §7.2.1.1): the controller (SQLite in a temp dir) provisions a
 * tenant end to end while the operator watches — a DC PE and a WAN PE (our speakers in the PE
 * role, VPNv4 between them, an enterprise site behind the WAN PE), the tenant's vCE taking its
 * configuration from the controller's stream, the binding's operation and its steps, and at the
 * end the PE's VRF holding the tenant's routes and the vCE holding the site's.
 *
 *   vCE acme 127.0.1.10 ─eBGP─ DC PE VRF (127.0.1.11)   DC PE 127.0.1.1 ══ VPNv4 ══ WAN PE 127.0.1.2 ─ site 203.0.113.0/24
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pc from 'picocolors';
import pino from 'pino';
import { buildAgentConfig } from '../agent/config.ts';
import { startAgent, type RunningAgent } from '../agent/run.ts';
import { ControllerClient } from '../agent/controller-client.ts';
import { startController, type RunningController } from '../controller/run.ts';
import type { Operation } from '../controller/model.ts';
import { formatFib } from '../cli/show.ts';

export interface PushLab {
  readonly controller: RunningController;
  readonly dcPe: RunningAgent;
  readonly wanPe: RunningAgent;
  readonly vce: ControllerClient;
  readonly operation: Operation;
  stop(): Promise<void>;
}

const ASN = 65000;
const DC_PE = '127.0.1.1';
const WAN_PE = '127.0.1.2';
const VCE = '127.0.1.10';
const PE_CE = '127.0.1.11';

function peDoc(
  me: string,
  port: number,
  apiPort: number,
  remote: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    'router-id': me,
    'log-level': 'warn',
    api: { listen: `127.0.0.1:${apiPort}` },
    bgp: {
      asn: ASN,
      listen: { address: me, port },
      neighbors: [
        {
          address: remote,
          'peer-asn': ASN,
          'remote-port': port,
          'local-address': me,
          'connect-retry': 1,
          'afi-safis': ['ipv4-vpn', 'ipv6-vpn'],
        },
      ],
    },
    ...extra,
  };
}

async function until(what: string, f: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`lab: ${what} did not happen within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Ports used: basePort + 10 (PE-PE BGP), +11/+12 (PE APIs), +13 (PE-CE BGP), +14 (controller), +15 (VXLAN). */
export async function runPushLab(basePort: number, say: (s: string) => void): Promise<PushLab> {
  say(
    pc.bold(
      '\nvce lab, act 2: the push model (draft §7.2.1.1) — the controller binds a tenant to its WAN IP VPN',
    ),
  );
  const dir = await mkdtemp(join(tmpdir(), 'vce-lab-'));
  const log = pino({ level: 'warn' });
  const dcPe = await startAgent(buildAgentConfig(peDoc(DC_PE, basePort + 10, basePort + 11, WAN_PE)), log);
  const wanPe = await startAgent(
    buildAgentConfig(
      peDoc(WAN_PE, basePort + 10, basePort + 12, DC_PE, {
        vrfs: [
          {
            name: 'acme-site',
            'route-distinguisher': '65000:1002',
            'route-targets': { both: ['65000:100'] },
            interfaces: [{ name: 'site-lan', addresses: ['203.0.113.1/24'] }],
          },
        ],
      }),
    ),
    log,
  );
  say(
    `  started DC PE ${DC_PE} and WAN PE ${WAN_PE} (VPNv4/VPNv6); the enterprise site 203.0.113.0/24 sits behind the WAN PE`,
  );
  await until('the PE-PE VPN session', () => dcPe.speaker.neighbor(WAN_PE)?.established === true);
  say(`  ${pc.green('established')} DC PE <-> WAN PE`);
  const token = 'lab-operator-token';
  const controller = await startController({
    store: { kind: 'sqlite', file: join(dir, 'controller.db') },
    listen: { host: '127.0.0.1', port: basePort + 14 },
    operatorToken: token,
    logLevel: 'warn',
    workflow: { waitTimeoutMs: 30_000, retryMs: 200 },
  });
  say(
    `  started the controller ${controller.url} (SQLite ${join(dir, 'controller.db')}), operator token ${pc.cyan(token)}`,
  );
  const api = async (method: string, path: string, body?: unknown): Promise<Record<string, unknown>> => {
    const res = await fetch(`${controller.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const out = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`lab: ${method} ${path}: ${res.status} ${String(out['message'])}`);
    return out;
  };
  await api('POST', '/api/v1/hosts', { id: 'dc-host-1', underlay: VCE });
  await api('POST', '/api/v1/pes', {
    id: 'dc-pe',
    asn: ASN,
    adapter: { kind: 'embedded', api: dcPe.apiUrl! },
    bgpPort: basePort + 13,
  });
  await api('POST', '/api/v1/tenants', { id: 'acme', name: 'ACME Corp' });
  await api('POST', '/api/v1/tenants/acme/vces', {
    id: 'acme-vce',
    host: 'dc-host-1',
    asn: 65100,
    routerId: VCE,
    contexts: [{ name: 'prod' }],
    vxlanPort: basePort + 15,
  });
  await api('POST', '/api/v1/tenants/acme/attachments', {
    id: 'acme-web',
    vce: 'acme-vce',
    context: 'prod',
    addresses: ['10.100.1.1/24'],
    zone: 'web',
  });
  say(
    `  POST tenant ${pc.cyan('acme')}, vCE acme-vce on dc-host-1 (context prod), attachment acme-web 10.100.1.0/24`,
  );
  const agentToken = (
    await api('POST', '/api/v1/tokens', { name: 'acme-vce', role: 'agent', scope: 'acme-vce' })
  )['token'] as string;
  const vce = new ControllerClient({
    url: controller.url,
    token: agentToken,
    id: 'acme-vce',
    log,
    statusIntervalMs: 1000,
  });
  vce.start();
  say(
    `  started the vCE agent acme-vce: it takes its configuration from ${controller.url}/api/v1/agents/acme-vce/config/stream`,
  );
  const r = await api('POST', '/api/v1/tenants/acme/bindings', {
    id: 'acme-wan',
    vce: 'acme-vce',
    context: 'prod',
    pe: 'dc-pe',
    wanVrf: 'acme',
    rd: '65000:1001',
    importRts: ['65000:100'],
    exportRts: ['65000:100'],
    peAttachment: { kind: 'vlan', id: 100 },
    peAddress: PE_CE,
    ceAddress: VCE,
  });
  const opId = (r['operation'] as { id: string }).id;
  say(`  POST binding acme-wan (VLAN 100 -> WAN VRF acme, RT 65000:100): operation ${opId}`);
  let shown = 0;
  let op: Operation | undefined;
  for (;;) {
    op = (await api('GET', `/api/v1/operations/${opId}`)) as unknown as Operation;
    for (const s of op.steps.filter((x) => x.state === 'done').slice(shown)) {
      say(`    ${pc.green('done')} ${s.name}`);
      shown++;
    }
    if (op.state !== 'running' && op.state !== 'pending') break;
    await new Promise((res) => setTimeout(res, 100));
  }
  if (op.state !== 'succeeded') throw new Error(`lab: the binding ended ${op.state}: ${op.error ?? ''}`);
  say(`  operation ${pc.green('succeeded')}: the tenant is bound`);
  await until(
    'the vCE learning the enterprise site',
    () =>
      vce.agent?.contexts
        .get('prod')
        ?.fib()
        .some((e) => e.prefix === '203.0.113.0/24') === true,
  );
  await until(
    "the site learning the tenant's prefix",
    () =>
      wanPe.contexts
        .get('acme-site')
        ?.fib()
        .some((e) => e.prefix === '10.100.1.0/24') === true,
  );
  say(`\n${pc.bold('== WAN PE, VRF acme-site (the enterprise) ==')}`);
  say(formatFib(wanPe.contexts.get('acme-site')!.fib()));
  say(`${pc.bold('== vCE acme-vce, context prod ==')}`);
  say(formatFib(vce.agent!.contexts.get('prod')!.fib()));
  return {
    controller,
    dcPe,
    wanPe,
    vce,
    operation: op,
    async stop() {
      await vce.stop();
      await controller.stop();
      await dcPe.stop();
      await wanPe.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
