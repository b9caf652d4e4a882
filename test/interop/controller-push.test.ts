/**
 * The push model end to end (draft §7.2.1.1): the controller (SQLite), a vCE agent that takes its
 * configuration from the controller's stream, and a real gobgpd as the PE. Create a tenant, its
 * vCE and an attachment, bind it: the operation's steps run, the PE VRF appears in gobgpd and
 * holds the vCE's prefix. Terminate the tenant: nothing is left on the agent or in gobgpd.
 *
 *   gobgpd 198.51.100.61 (AS 65000) <── eBGP in VRF vce-<binding> ── vCE 198.51.100.62 (AS 65101)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startController, type RunningController } from '../../src/controller/run.ts';
import { callApi, type ApiResult } from './harness/controller.ts';
import { ControllerClient } from '../../src/agent/controller-client.ts';
import { freePort, requireDaemon, freeUdpPort } from './harness/common.ts';
import { startGobgp, type GobgpDaemon } from './harness/gobgp.ts';
import { sh } from './harness/netns.ts';

// GoBGP refuses loopback next hops (127/8) in a VRF: the PE-CE link uses documentation addresses
// this file adds to `lo` (and removes); this kernel has no dummy interfaces.
const PE = '198.51.100.61';
const CE = '198.51.100.62';
const CE2 = '198.51.100.63';
const root = process.getuid?.() === 0;
if (!root && process.env['CI'] !== undefined) throw new Error('this test needs root (addresses on lo) in CI');
const available = root && requireDaemon('gobgpd') && requireDaemon('gobgp');

describe.skipIf(!available)('controller push model with a vCE agent and gobgpd as the PE', () => {
  let dir: string;
  let ctl: RunningController;
  let gobgp: GobgpDaemon;
  let client: ControllerClient;
  let client2: ControllerClient;
  let pePort: number;
  const api = (method: string, path: string, body?: unknown, token = ctl.operatorToken): Promise<ApiResult> =>
    callApi(ctl.url, token, method, path, body);
  const gobgpVrfs = async (): Promise<string> => gobgp.cli('vrf');

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vce-ctl-'));
    for (const a of [PE, CE, CE2]) {
      await sh('ip', ['addr', 'del', `${a}/32`, 'dev', 'lo']).catch(() => undefined);
      await sh('ip', ['addr', 'add', `${a}/32`, 'dev', 'lo']);
    }
    pePort = await freePort(PE);
    gobgp = await startGobgp({
      asn: 65000,
      routerId: PE,
      listenAddress: PE,
      listenPort: pePort,
      neighbors: [],
    });
    ctl = await startController({
      store: { kind: 'sqlite', file: join(dir, 'ctl.db') },
      listen: { host: '127.0.0.1', port: 0 },
      operatorToken: 'operator-secret-for-tests-0123456789',
      logLevel: 'silent',
      workflow: { waitTimeoutMs: 30_000, retryMs: 200 },
    });
  });

  afterAll(async () => {
    await client?.stop();
    await client2?.stop();
    await ctl?.stop();
    await gobgp?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    for (const a of [PE, CE, CE2])
      await sh('ip', ['addr', 'del', `${a}/32`, 'dev', 'lo']).catch(() => undefined);
  });

  it(
    'provisions a tenant by the push model: vCE configured, PE VRF created, routes on the PE',
    { timeout: 70_000 },
    async () => {
      const vxlanPort = await freeUdpPort(CE);
      expect((await api('POST', '/api/v1/hosts', { id: 'host1', underlay: CE })).status).toBe(201);
      expect(
        (
          await api('POST', '/api/v1/pes', {
            id: 'pe1',
            asn: 65000,
            adapter: { kind: 'gobgp', host: '127.0.0.1', port: gobgp.config.grpcPort },
            bgpPort: pePort,
          })
        ).status,
      ).toBe(201);
      expect((await api('POST', '/api/v1/tenants', { id: 'acme', name: 'ACME' })).status).toBe(201);
      const vce = await api('POST', '/api/v1/tenants/acme/vces', {
        id: 'acme-vce1',
        host: 'host1',
        asn: 65101,
        routerId: CE,
        contexts: [{ name: 'red' }],
        vxlanPort,
      });
      expect(vce.status).toBe(201);
      const att = await api('POST', '/api/v1/tenants/acme/attachments', {
        id: 'acme-web',
        vce: 'acme-vce1',
        context: 'red',
        addresses: ['10.61.1.1/24'],
        zone: 'web',
      });
      expect(att.status).toBe(201);
      // the agent: its own token, configuration from the stream
      const tok = await api('POST', '/api/v1/tokens', { name: 'vce1', role: 'agent', scope: 'acme-vce1' });
      expect(tok.status).toBe(201);
      client = new ControllerClient({
        url: ctl.url,
        token: tok.body['token'] as string,
        id: 'acme-vce1',
        log: pino({ level: 'silent' }),
        statusIntervalMs: 1000,
      });
      client.start();
      const bind = await api('POST', '/api/v1/tenants/acme/bindings', {
        id: 'acme-wan',
        vce: 'acme-vce1',
        context: 'red',
        pe: 'pe1',
        wanVrf: 'ACME',
        rd: '65000:61',
        importRts: ['65000:61'],
        exportRts: ['65000:61'],
        peAttachment: { kind: 'vlan', id: 61 },
        peAddress: PE,
        ceAddress: CE,
      });
      expect(bind.status).toBe(202);
      const opId = (bind.body['operation'] as { id: string }).id;
      const op = await ctl.runner.settle(opId, 60_000);
      expect(op.state, JSON.stringify(op.steps)).toBe('succeeded');
      expect(op.steps.map((s) => s.name)).toEqual([
        'allocate',
        'configure-vce',
        'await-vce',
        'provision-wan',
        'await-wan',
        'activate',
      ]);
      // the operation resource
      const got = await api('GET', `/api/v1/operations/${opId}`);
      expect(got.body['state']).toBe('succeeded');
      // gobgpd holds the VRF with the vCE's prefix
      expect(await gobgpVrfs()).toMatch(/65000:61/);
      let rib = '';
      for (let i = 0; i < 100 && !rib.includes('10.61.1.0/24'); i++) {
        rib = await gobgp.cli('vrf', 'vce-acme-wan', 'rib').catch(() => '');
        if (!rib.includes('10.61.1.0/24')) await new Promise((r) => setTimeout(r, 100));
      }
      expect(rib).toContain('10.61.1.0/24');
      // the agent runs the context with the PE session
      expect([...client.agent!.contexts.keys()]).toContain('red');
      const b = await api('GET', '/api/v1/tenants/acme/bindings/acme-wan');
      expect(b.body['state']).toBe('active');
    },
  );

  it(
    'a second vCE of the tenant on another host (a second agent) joins the same WAN VPN',
    { timeout: 70_000 },
    async () => {
      const vxlanPort = await freeUdpPort(CE2);
      expect((await api('POST', '/api/v1/hosts', { id: 'host2', underlay: CE2 })).status).toBe(201);
      expect(
        (await api('POST', '/api/v1/tenants/acme/containers', { id: 'acme-shop', name: 'web shop' })).status,
      ).toBe(201);
      const v2 = await api('POST', '/api/v1/tenants/acme/vces', {
        id: 'acme-vce2',
        host: 'host2',
        asn: 65102,
        routerId: CE2,
        contexts: [{ name: 'red' }],
        vxlanPort,
      });
      expect(v2.status).toBe(201);
      expect(
        (
          await api('POST', '/api/v1/tenants/acme/attachments', {
            id: 'acme-app',
            vce: 'acme-vce2',
            context: 'red',
            addresses: ['10.61.2.1/24'],
          })
        ).status,
      ).toBe(201);
      expect(
        (
          await api('POST', '/api/v1/tenants/acme/endpoints', {
            id: 'acme-vm1',
            name: 'vm1',
            mac: '02:00:00:00:61:01',
            addresses: ['10.61.2.10/24'],
            host: 'host2',
            attachment: 'acme-app',
            container: 'acme-shop',
          })
        ).status,
      ).toBe(201);
      const tok = await api('POST', '/api/v1/tokens', { name: 'vce2', role: 'agent', scope: 'acme-vce2' });
      client2 = new ControllerClient({
        url: ctl.url,
        token: tok.body['token'] as string,
        id: 'acme-vce2',
        log: pino({ level: 'silent' }),
        statusIntervalMs: 1000,
      });
      client2.start();
      const bind = await api('POST', '/api/v1/tenants/acme/bindings', {
        id: 'acme-wan2',
        vce: 'acme-vce2',
        context: 'red',
        pe: 'pe1',
        wanVrf: 'ACME',
        rd: '65000:62',
        importRts: ['65000:61'],
        exportRts: ['65000:61'],
        peAttachment: { kind: 'vlan', id: 62 },
        peAddress: PE,
        ceAddress: CE2,
      });
      expect(bind.status, JSON.stringify(bind.body)).toBe(202);
      const op = await ctl.runner.settle((bind.body['operation'] as { id: string }).id, 60_000);
      expect(op.state, JSON.stringify(op.steps)).toBe('succeeded');
      // both vCEs' prefixes in gobgpd; each vCE learns the other's across the WAN VPN
      let rib = '';
      for (let i = 0; i < 100 && !(rib.includes('10.61.1.0/24') && rib.includes('10.61.2.0/24')); i++) {
        rib = await gobgp.cli('global', 'rib', '-a', 'vpnv4').catch(() => '');
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(rib).toContain('10.61.1.0/24');
      expect(rib).toContain('10.61.2.0/24');
    },
  );

  it('tenant isolation: a tenant token sees only its tenant; other tenants answer 404', async () => {
    await api('POST', '/api/v1/tenants', { id: 'other', name: 'Other' });
    const t = await api('POST', '/api/v1/tokens', { name: 'acme-user', role: 'tenant', scope: 'acme' });
    const tok = t.body['token'] as string;
    expect((await api('GET', '/api/v1/tenants/acme', undefined, tok)).status).toBe(200);
    expect((await api('GET', '/api/v1/tenants/other', undefined, tok)).status).toBe(404);
    expect((await api('GET', '/api/v1/tenants/other/vces', undefined, tok)).status).toBe(404);
    const list = await api('GET', '/api/v1/tenants', undefined, tok);
    expect((list.body['items'] as { id: string }[]).map((x) => x.id)).toEqual(['acme']);
    expect(
      (
        await api(
          'POST',
          '/api/v1/pes',
          { id: 'x', asn: 1, adapter: { kind: 'embedded', api: 'http://x' } },
          tok,
        )
      ).status,
    ).toBe(403);
    expect((await api('GET', '/api/v1/tenants', undefined, 'wrong-token')).status).toBe(401);
    // a VRF of acme cannot be bound by another tenant
    const clash = await api('POST', '/api/v1/tenants/other/bindings', {
      id: 'other-wan',
      vce: 'nope',
      context: 'red',
      pe: 'pe1',
      wanVrf: 'ACME',
      rd: '65000:99',
      importRts: ['65000:99'],
      exportRts: ['65000:99'],
      peAttachment: { kind: 'vlan', id: 99 },
    });
    expect(clash.status).toBe(400); // no such vCE first
    await api('DELETE', '/api/v1/tenants/other');
  });

  it('idempotency keys replay the first answer; bad input names the field', async () => {
    const h = { 'idempotency-key': 'k-1' };
    const post = async (): Promise<Response> =>
      fetch(`${ctl.url}/api/v1/tenants`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ctl.operatorToken}`, 'content-type': 'application/json', ...h },
        body: JSON.stringify({ id: 'idem', name: 'Idem' }),
      });
    const a = await post();
    const b = await post();
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.headers.get('idempotent-replay')).toBe('true');
    const bad = await api('POST', '/api/v1/tenants/acme/attachments', {
      id: 'bad',
      vce: 'acme-vce1',
      context: 'red',
      addresses: ['172.16.5.1/24'],
    });
    expect(bad.status).toBe(400);
    expect(bad.body['message']).toMatch(/body\.addresses\[0\].*underlay/);
    const bad2 = await api('POST', '/api/v1/tenants', { id: 'Bad Id', name: 'x' });
    expect(bad2.status).toBe(400);
    expect(bad2.body['message']).toMatch(/id/);
    await api('DELETE', '/api/v1/tenants/idem');
  });

  it(
    'terminating the tenant removes everything: agent contexts, PE VRF and neighbour, store objects',
    { timeout: 70_000 },
    async () => {
      const del = await api('DELETE', '/api/v1/tenants/acme');
      expect(del.status).toBe(202);
      const op = await ctl.runner.settle((del.body as { id: string }).id, 60_000);
      expect(op.state, JSON.stringify(op.steps)).toBe('succeeded');
      expect(await gobgpVrfs()).not.toMatch(/65000:61/);
      expect(await gobgp.cli('neighbor')).not.toContain(CE);
      expect([...client.agent!.contexts.keys()]).toEqual(['default']);
      expect([...client2.agent!.contexts.keys()]).toEqual(['default']);
      expect(await gobgp.cli('neighbor')).not.toContain(CE2);
      expect(await gobgp.cli('global', 'rib', '-a', 'vpnv4')).not.toContain('10.61.');
      expect((await api('GET', '/api/v1/tenants/acme')).status).toBe(404);
      const left = await ctl.core.kv.range('/vce/v1/t/acme/');
      expect(left.entries).toEqual([]);
      const audit = await api('GET', '/api/v1/audit?limit=1000');
      expect((audit.body['items'] as { path: string }[]).some((e) => e.path === '/api/v1/tenants/acme')).toBe(
        true,
      );
    },
  );
});
