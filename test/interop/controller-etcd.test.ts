/**
 * Two controller replicas sharing one real etcd: one leads the workflows (etcd lease), both serve
 * the API from the same store; an operation submitted to the follower runs on the leader; when
 * the leader goes, the follower takes over and runs the next operations. The vCE agent talks to
 * the follower (any replica serves the configuration stream).
 */
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgentConfig } from '../../src/agent/config.ts';
import { startAgent, type RunningAgent } from '../../src/agent/run.ts';
import { ControllerClient } from '../../src/agent/controller-client.ts';
import { startController, type RunningController } from '../../src/controller/run.ts';
import { freePort, freeUdpPort } from './harness/common.ts';
import { etcdAvailable, startEtcd, type EtcdMember } from './harness/etcd.ts';

const available = etcdAvailable();
const VCE = '127.0.85.2';
const TOKEN = 'operator-secret-for-etcd-cluster-test';


describe.skipIf(!available)('two controllers on one etcd: leader election, shared reads, failover', () => {
  let etcd: EtcdMember;
  let a: RunningController;
  let b: RunningController;
  let pe: RunningAgent;
  let client: ControllerClient;
  const prefix = `/test-${randomUUID()}`;
  const api = async (
    c: RunningController,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${c.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${TOKEN}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown> };
  };
  const start = (): Promise<RunningController> =>
    startController({
      store: { kind: 'etcd', endpoints: [etcd.clientUrl], prefix },
      listen: { host: '127.0.0.1', port: 0 },
      operatorToken: TOKEN,
      logLevel: 'silent',
      workflow: { waitTimeoutMs: 30_000, retryMs: 200 },
    });
  const binding = (id: string, context: string, vlan: number): Record<string, unknown> => ({
    id,
    vce: 'initech-vce',
    context,
    pe: 'pe1',
    wanVrf: id,
    rd: `65000:${vlan}`,
    importRts: [`65000:${vlan}`],
    exportRts: [`65000:${vlan}`],
    peAttachment: { kind: 'vlan', id: vlan },
    peAddress: `127.0.85.${vlan % 100}`,
    ceAddress: VCE,
  });

  beforeAll(async () => {
    etcd = await startEtcd('ctl');
    a = await start();
    b = await start();
    const peAddr = '127.0.85.10';
    const [p, vrfPort, vxlanPort] = await Promise.all([
      freePort(peAddr),
      freePort('127.0.85.51'),
      freeUdpPort(VCE),
    ]);
    pe = await startAgent(
      buildAgentConfig({
        'router-id': peAddr,
        'log-level': 'silent',
        api: { listen: `${peAddr}:0` },
        bgp: { asn: 65000, listen: { address: peAddr, port: p }, neighbors: [] },
      }),
    );
    const ok = (r: { status: number; body: unknown }): void =>
      expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
    ok(await api(b, 'POST', '/api/v1/hosts', { id: 'dc1', underlay: VCE }));
    ok(
      await api(b, 'POST', '/api/v1/pes', {
        id: 'pe1',
        asn: 65000,
        adapter: { kind: 'embedded', api: pe.apiUrl! },
        bgpPort: vrfPort,
      }),
    );
    ok(await api(b, 'POST', '/api/v1/tenants', { id: 'initech', name: 'Initech' }));
    ok(
      await api(b, 'POST', '/api/v1/tenants/initech/vces', {
        id: 'initech-vce',
        host: 'dc1',
        asn: 65185,
        routerId: VCE,
        contexts: [{ name: 'red' }, { name: 'blue' }],
        vxlanPort,
      }),
    );
    ok(
      await api(b, 'POST', '/api/v1/tenants/initech/attachments', {
        id: 'initech-a',
        vce: 'initech-vce',
        context: 'red',
        addresses: ['10.85.1.1/24'],
      }),
    );
    ok(
      await api(b, 'POST', '/api/v1/tenants/initech/attachments', {
        id: 'initech-b',
        vce: 'initech-vce',
        context: 'blue',
        addresses: ['10.85.2.1/24'],
      }),
    );
    const tok = await api(b, 'POST', '/api/v1/tokens', { name: 'vce', role: 'agent', scope: 'initech-vce' });
    client = new ControllerClient({
      url: b.url,
      token: tok.body['token'] as string,
      id: 'initech-vce',
      log: pino({ level: 'silent' }),
      statusIntervalMs: 500,
    });
    client.start();
  });

  afterAll(async () => {
    await client?.stop();
    await b?.stop();
    await a?.stop().catch(() => undefined);
    await pe?.stop();
    await etcd?.stop();
  });

  it('exactly one replica leads; both serve the same data', async () => {
    expect([a.election.leader, b.election.leader].filter(Boolean)).toHaveLength(1);
    expect(a.election.leader).toBe(true); // the first one up won
    const fromA = await api(a, 'GET', '/api/v1/tenants/initech');
    expect(fromA.status).toBe(200);
    expect(fromA.body['name']).toBe('Initech');
  });

  it('an operation submitted to the follower runs on the leader', async () => {
    const r = await api(b, 'POST', '/api/v1/tenants/initech/bindings', binding('initech-red', 'red', 51));
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const op = await a.runner.settle((r.body['operation'] as { id: string }).id, 40_000);
    expect(op.state, JSON.stringify(op.steps)).toBe('succeeded');
    expect((await api(b, 'GET', '/api/v1/tenants/initech/bindings/initech-red')).body['state']).toBe(
      'active',
    );
  });

  it('when the leader goes, the follower takes over and runs new operations', async () => {
    const elected = new Promise<number>((resolve) => {
      const t0 = Date.now();
      b.election.once('elected', () => resolve(Date.now() - t0));
      void a.stop();
    });
    const failoverMs = await elected;
    expect(b.election.leader).toBe(true);
    expect(failoverMs).toBeGreaterThanOrEqual(0);
    const r = await api(b, 'POST', '/api/v1/tenants/initech/bindings', binding('initech-blue', 'blue', 52));
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const op = await b.runner.settle((r.body['operation'] as { id: string }).id, 40_000);
    expect(op.state, JSON.stringify(op.steps)).toBe('succeeded');
  });
});
