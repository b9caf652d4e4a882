/**
 * The reconciler end to end (draft §7.1: WAN and DC state kept in sync, no customer in the wrong
 * VRF): the controller (SQLite), a vCE agent on the controller's stream, a real gobgpd as the PE.
 * A binding is provisioned, then the PE and the agent are changed behind the controller's back:
 * the VRF deleted, a rogue VRF with a neighbour added, the VRF's route target changed, the agent
 * stopped. The reconciler repairs each on its own (passes every 300 ms) and the alarms show it.
 *
 *   gobgpd 198.51.100.71 (AS 65000) <── eBGP in VRF vce-recon-wan ── vCE 198.51.100.72 (AS 65171)
 *   rogue neighbour 198.51.100.73 (never answers) in VRF vce-rogue
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dgram from 'node:dgram';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startController, type RunningController } from '../../src/controller/run.ts';
import { ControllerClient } from '../../src/agent/controller-client.ts';
import type { Alarm } from '../../src/controller/model.ts';
import { freePort, requireDaemon, waitFor } from './harness/common.ts';
import { startGobgp, type GobgpDaemon } from './harness/gobgp.ts';
import { sh } from './harness/netns.ts';

// GoBGP refuses loopback next hops in a VRF: documentation addresses on `lo` (added, removed).
const PE = '198.51.100.71';
const CE = '198.51.100.72';
const ROGUE = '198.51.100.73';
const VRF = 'vce-recon-wan';
const root = process.getuid?.() === 0;
if (!root && process.env['CI'] !== undefined) throw new Error('this test needs root (addresses on lo) in CI');
const available = root && requireDaemon('gobgpd') && requireDaemon('gobgp');

async function freeUdp(address: string): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

describe.skipIf(!available)('controller reconciler with a vCE agent and gobgpd as the PE', () => {
  let dir: string;
  let ctl: RunningController;
  let gobgp: GobgpDaemon;
  let client: ControllerClient | undefined;
  let agentToken: string;
  let tenantToken: string;
  const api = async (
    method: string,
    path: string,
    body?: unknown,
    token = ctl.operatorToken,
  ): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${ctl.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown> };
  };
  const alarms = async (query = '', token?: string): Promise<Alarm[]> => {
    const r = await api('GET', `/api/v1/alarms${query}`, undefined, token);
    expect(r.status).toBe(200);
    return r.body['items'] as Alarm[];
  };
  const startClient = (): ControllerClient => {
    const c = new ControllerClient({
      url: ctl.url,
      token: agentToken,
      id: 'recon-vce1',
      log: pino({ level: 'silent' }),
      statusIntervalMs: 300,
    });
    c.start();
    return c;
  };
  /** The VRF's table on gobgpd holds the vCE's prefix (the session is up, routes learned). */
  const vceRouteOnPe = (timeoutMs: number): Promise<string> =>
    waitFor(
      async () => {
        const rib = await gobgp.cli('vrf', VRF, 'rib');
        return rib.includes('10.71.1.0/24') ? rib : undefined;
      },
      {
        what: `10.71.1.0/24 in ${VRF} on gobgpd`,
        timeoutMs,
        intervalMs: 100,
        describe: () => gobgp.cli('vrf'),
      },
    );
  /** Changes made to gobgpd behind the controller's back, with the periodic passes paused. */
  const behindTheBack = async (f: () => Promise<void>): Promise<void> => {
    await ctl.reconciler.stop();
    try {
      await f();
    } finally {
      ctl.reconciler.start();
    }
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vce-recon-'));
    for (const a of [PE, CE]) {
      await sh('ip', ['addr', 'del', `${a}/32`, 'dev', 'lo']).catch(() => undefined);
      await sh('ip', ['addr', 'add', `${a}/32`, 'dev', 'lo']);
    }
    const pePort = await freePort(PE);
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
      operatorToken: 'operator-secret-for-reconcile-tests-0123',
      logLevel: 'silent',
      workflow: { waitTimeoutMs: 30_000, retryMs: 200 },
      statusLeaseSeconds: 2,
      reconcile: { intervalMs: 300, agentGraceMs: 1000, sessionGraceMs: 30_000 },
    });
    const vxlanPort = await freeUdp(CE);
    const ok = async (p: Promise<{ status: number; body: Record<string, unknown> }>, status: number) => {
      const r = await p;
      expect(r.status, JSON.stringify(r.body)).toBe(status);
      return r.body;
    };
    await ok(api('POST', '/api/v1/hosts', { id: 'recon-host', underlay: CE }), 201);
    await ok(
      api('POST', '/api/v1/pes', {
        id: 'recon-pe',
        asn: 65000,
        adapter: { kind: 'gobgp', host: '127.0.0.1', port: gobgp.config.grpcPort },
        bgpPort: pePort,
      }),
      201,
    );
    await ok(api('POST', '/api/v1/tenants', { id: 'recon', name: 'Reconciled' }), 201);
    await ok(
      api('POST', '/api/v1/tenants/recon/vces', {
        id: 'recon-vce1',
        host: 'recon-host',
        asn: 65171,
        routerId: CE,
        contexts: [{ name: 'blue' }],
        vxlanPort,
      }),
      201,
    );
    await ok(
      api('POST', '/api/v1/tenants/recon/attachments', {
        id: 'recon-web',
        vce: 'recon-vce1',
        context: 'blue',
        addresses: ['10.71.1.1/24'],
      }),
      201,
    );
    agentToken = (
      await ok(api('POST', '/api/v1/tokens', { name: 'rv1', role: 'agent', scope: 'recon-vce1' }), 201)
    )['token'] as string;
    tenantToken = (
      await ok(api('POST', '/api/v1/tokens', { name: 'ru', role: 'tenant', scope: 'recon' }), 201)
    )['token'] as string;
    client = startClient();
  });

  afterAll(async () => {
    await client?.stop();
    await ctl?.stop();
    await gobgp?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    for (const a of [PE, CE]) await sh('ip', ['addr', 'del', `${a}/32`, 'dev', 'lo']).catch(() => undefined);
  });

  it(
    'provisions a binding; a pass over the synchronised state repairs nothing',
    { timeout: 30_000 },
    async () => {
      const bind = await api('POST', '/api/v1/tenants/recon/bindings', {
        id: 'recon-wan',
        vce: 'recon-vce1',
        context: 'blue',
        pe: 'recon-pe',
        wanVrf: 'RECON',
        rd: '65000:71',
        importRts: ['65000:71'],
        exportRts: ['65000:71'],
        peAttachment: { kind: 'vlan', id: 71 },
        peAddress: PE,
        ceAddress: CE,
      });
      expect(bind.status).toBe(202);
      const op = await ctl.runner.settle((bind.body['operation'] as { id: string }).id, 25_000);
      expect(op.state, JSON.stringify(op.steps)).toBe('succeeded');
      await vceRouteOnPe(10_000);
      const report = await ctl.reconciler.runOnce();
      expect(report.repairs, JSON.stringify(report)).toEqual([]);
      expect(report.errors).toEqual([]);
      expect((await alarms('?active=true')).filter((a) => a.kind !== 'agent-stale')).toEqual([]);
    },
  );

  it(
    '(i) a VRF deleted on the PE is provisioned again and drift-repaired is raised',
    { timeout: 30_000 },
    async () => {
      await behindTheBack(async () => {
        await gobgp.cli('neighbor', 'del', CE);
        await gobgp.cli('vrf', 'del', VRF);
      });
      expect(await gobgp.cli('vrf')).not.toContain(VRF);
      const alarm = await waitFor(
        async () => (await alarms()).find((a) => a.kind === 'drift-repaired' && a.binding === 'recon-wan'),
        { what: 'a drift-repaired alarm', timeoutMs: 10_000, intervalMs: 100 },
      );
      expect(alarm).toMatchObject({ tenant: 'recon', pe: 'recon-pe', severity: 'warning', count: 1 });
      expect(alarm.message).toMatch(/missing/);
      // the VRF is back with its RD and targets, and the vCE's prefix once the session is up again
      expect(await gobgp.cli('vrf')).toMatch(/65000:71/);
      await vceRouteOnPe(15_000);
      // the tenant sees its alarm
      expect((await alarms('', tenantToken)).map((a) => a.id)).toContain(alarm.id);
      // the next passes find the repair held: the alarm is cleared, not deleted
      const cleared = await waitFor(
        async () => (await alarms()).find((a) => a.id === alarm.id && a.clearedAt !== undefined),
        { what: 'drift-repaired cleared', timeoutMs: 5000, intervalMs: 100 },
      );
      expect(cleared.count).toBe(1);
      expect((await alarms('?active=true')).map((a) => a.id)).not.toContain(alarm.id);
    },
  );

  it(
    '(ii) a rogue VRF with a neighbour is removed at once and wrong-vrf is raised',
    { timeout: 20_000 },
    async () => {
      await behindTheBack(async () => {
        await gobgp.cli('vrf', 'add', 'vce-rogue', 'rd', '65000:973', 'rt', 'both', '65000:973');
        await gobgp.cli('neighbor', 'add', ROGUE, 'as', '65973', 'vrf', 'vce-rogue');
      });
      expect(await gobgp.cli('vrf')).toContain('vce-rogue');
      const alarm = await waitFor(
        async () => (await alarms()).find((a) => a.kind === 'wrong-vrf' && a.binding === 'rogue'),
        { what: 'a wrong-vrf alarm for vce-rogue', timeoutMs: 10_000, intervalMs: 100 },
      );
      expect(alarm).toMatchObject({ severity: 'critical', pe: 'recon-pe' });
      expect(alarm.tenant).toBeUndefined();
      expect(await gobgp.cli('vrf')).not.toContain('vce-rogue');
      expect(await gobgp.cli('neighbor')).not.toContain(ROGUE);
      // the binding's own VRF was not touched
      expect(await gobgp.cli('vrf')).toContain(VRF);
      // no tenant's alarm: a tenant token does not see it; an operator acknowledges it
      expect((await alarms('', tenantToken)).map((a) => a.id)).not.toContain(alarm.id);
      expect((await api('POST', `/api/v1/alarms/${alarm.id}/ack`, undefined, tenantToken)).status).toBe(403);
      const ack = await api('POST', `/api/v1/alarms/${alarm.id}/ack`);
      expect(ack.status).toBe(200);
      expect(ack.body['ackedBy']).toBe('bootstrap');
      expect((await api('POST', '/api/v1/alarms/nope/ack')).status).toBe(404);
    },
  );

  it(
    '(ii-b) an unknown neighbour put into the tenant VRF is removed, the vCE session stays',
    { timeout: 20_000 },
    async () => {
      await behindTheBack(async () => {
        await gobgp.cli('neighbor', 'add', ROGUE, 'as', '65973', 'vrf', VRF);
      });
      const alarm = await waitFor(
        async () =>
          (await alarms('?tenant=recon')).find((a) => a.kind === 'wrong-vrf' && a.binding === 'recon-wan'),
        { what: 'a wrong-vrf alarm for the binding', timeoutMs: 10_000, intervalMs: 100 },
      );
      expect(alarm.severity).toBe('critical');
      expect(alarm.message).toContain(`unknown neighbour ${ROGUE}`);
      const neighbors = await gobgp.cli('neighbor');
      expect(neighbors).not.toContain(ROGUE);
      expect(neighbors).toContain(CE);
      expect(await gobgp.cli('vrf', VRF, 'rib')).toContain('10.71.1.0/24');
    },
  );

  it('(iii) a route target changed on the PE is restored', { timeout: 30_000 }, async () => {
    await behindTheBack(async () => {
      await gobgp.cli('neighbor', 'del', CE);
      await gobgp.cli('vrf', 'del', VRF);
      await gobgp.cli('vrf', 'add', VRF, 'rd', '65000:71', 'rt', 'both', '65000:7199');
      await gobgp.cli('neighbor', 'add', CE, 'as', '65171', 'vrf', VRF);
    });
    expect(await gobgp.cli('vrf')).toContain('65000:7199');
    const alarm = await waitFor(
      async () =>
        (await alarms('?tenant=recon')).find(
          (a) => a.kind === 'drift-repaired' && a.binding === 'recon-wan' && a.count >= 2,
        ),
      { what: 'drift-repaired raised again', timeoutMs: 10_000, intervalMs: 100 },
    );
    expect(alarm.message).toMatch(/route targets 65000:7199 instead of 65000:71/);
    const vrfs = await gobgp.cli('vrf');
    expect(vrfs).not.toContain('65000:7199');
    expect(vrfs).toMatch(/65000:71/);
    await vceRouteOnPe(15_000);
  });

  it('(iv) a stopped agent raises agent-stale; once back the alarm clears', { timeout: 30_000 }, async () => {
    await client!.stop();
    client = undefined;
    const stale = await waitFor(
      async () =>
        (await alarms('?active=true')).find((a) => a.kind === 'agent-stale' && a.vce === 'recon-vce1'),
      { what: 'agent-stale', timeoutMs: 10_000, intervalMs: 100 },
    );
    expect(stale).toMatchObject({ tenant: 'recon', severity: 'major' });
    expect(stale.message).toMatch(/has not reported/);
    client = startClient();
    await waitFor(
      async () =>
        (await alarms()).find((a) => a.id === stale.id && a.clearedAt !== undefined) === undefined
          ? undefined
          : true,
      { what: 'agent-stale cleared', timeoutMs: 10_000, intervalMs: 100 },
    );
    const stats = ctl.reconciler.stats();
    expect(stats.runs).toBeGreaterThan(3);
    expect(stats.repairs).toBeGreaterThanOrEqual(3);
    expect(stats.alarmsRaised).toBeGreaterThanOrEqual(4);
  });
});
