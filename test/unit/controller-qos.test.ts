/**
 * Per-attachment policies (draft §7.1 "MUST be able to apply other policies to VLAN"): a vCE's
 * QoS policies are validated by the agent's own reader when the vCE is created, an attachment
 * names one as its QoS profile, and the agent configuration carries both.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startController, type RunningController } from '../../src/controller/run.ts';
import { buildAgentConfig } from '../../src/agent/config.ts';

describe('controller: QoS profiles per attachment', () => {
  let dir: string;
  let ctl: RunningController;
  const call = async (
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${ctl.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${ctl.operatorToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const t = await res.text();
    return { status: res.status, body: (t === '' ? {} : JSON.parse(t)) as Record<string, unknown> };
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vce-qos-'));
    ctl = await startController({
      store: { kind: 'sqlite', file: join(dir, 'c.db') },
      listen: { host: '127.0.0.1', port: 0 },
      operatorToken: 'qos-test-operator-token-0123456789',
      logLevel: 'silent',
      makeAdapter: () => {
        throw new Error('no PE in this test');
      },
      reconcile: { intervalMs: 0 },
    });
    await call('POST', '/api/v1/hosts', { id: 'h1', underlay: '192.0.2.10' });
    await call('POST', '/api/v1/tenants', { id: 'q', name: 'Q' });
  });

  afterAll(async () => {
    await ctl?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a vCE whose QoS policies the agent would refuse, naming the field', async () => {
    const r = await call('POST', '/api/v1/tenants/q/vces', {
      id: 'q-bad',
      host: 'h1',
      asn: 65001,
      routerId: '192.0.2.10',
      contexts: [{ name: 'red' }],
      qosPolicies: [{ name: 'gold', classes: [{ name: 'voice', 'set-dscp': 'af99' }] }],
    });
    expect(r.status).toBe(400);
    expect(r.body['message']).toMatch(/^body\.qosPolicies.*set-dscp.*not a DSCP/);
  });

  it('an attachment names a QoS profile of its vCE; the agent configuration carries it', async () => {
    const v = await call('POST', '/api/v1/tenants/q/vces', {
      id: 'q-vce',
      host: 'h1',
      asn: 65001,
      routerId: '192.0.2.10',
      contexts: [{ name: 'red' }],
      qosPolicies: [
        { name: 'gold', classes: [{ name: 'voice', match: { dscp: ['ef'] }, police: { rate: '10mbit' } }] },
      ],
    });
    expect(v.status, JSON.stringify(v.body)).toBe(201);
    const bad = await call('POST', '/api/v1/tenants/q/attachments', {
      id: 'q-a0',
      vce: 'q-vce',
      context: 'red',
      addresses: ['10.9.0.1/24'],
      qosProfile: 'silver',
    });
    expect(bad.status).toBe(400);
    expect(bad.body['message']).toMatch(/^body\.qosProfile: vCE "q-vce" has no QoS policy "silver"/);
    const ok = await call('POST', '/api/v1/tenants/q/attachments', {
      id: 'q-a1',
      vce: 'q-vce',
      context: 'red',
      addresses: ['10.9.1.1/24'],
      qosProfile: 'gold',
    });
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    const cfg = (await call('GET', '/api/v1/agents/q-vce/config')).body['config'] as Record<string, unknown>;
    const agent = buildAgentConfig(cfg);
    const iface = agent.dataplane!.interfaces.find((i) => i.name === 'a-q-a1')!;
    expect(iface.qosPolicy).toBe('gold');
    expect(agent.dataplane!.qos.map((q) => q.name)).toEqual(['gold']);
  });
});
