/**
 * The reconciler's decisions against an in-memory PE (a fake WAN adapter) and agent status
 * documents written straight into the store: wrong VRF by another tenant's route target or
 * neighbour, isolation when the repair fails, residue of an unbinding, bindings under an operation
 * left alone, agents holding what their intent does not, a configuration lost before its
 * publication, PE unreachable, alarm deduplication and clearing, one pass at a time.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ControllerCore, type AgentConfigDoc, type AgentStatus } from '../../src/controller/core.ts';
import {
  KEYS,
  type Alarm,
  type Attachment,
  type Host,
  type Pe,
  type Tenant,
  type VceInstance,
  type WanBinding,
} from '../../src/controller/model.ts';
import { Reconciler } from '../../src/controller/reconcile.ts';
import { newOperation } from '../../src/controller/workflows.ts';
import { openSqliteKv } from '../../src/controller/store/sqlite.ts';
import type { Kv } from '../../src/controller/store/types.ts';
import type { WanAdapter, WanBindingSpec, WanBindingStatus } from '../../src/controller/wan/types.ts';

interface FakeVrf {
  rd: string;
  importRts: string[];
  exportRts: string[];
  neighbors: { address: string; established: boolean }[];
}

class FakePe implements WanAdapter {
  readonly kind = 'fake';
  readonly vrfs = new Map<string, FakeVrf>();
  down = false;
  failProvision = false;
  calls: string[] = [];
  private active = 0;
  maxConcurrent = 0;

  private async enter<T>(what: string, f: () => T): Promise<T> {
    this.calls.push(what);
    this.active++;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.active);
    try {
      await new Promise((r) => setTimeout(r, 2));
      if (this.down) throw new Error('connection refused');
      return f();
    } finally {
      this.active--;
    }
  }

  provision(s: WanBindingSpec): Promise<void> {
    return this.enter(`provision ${s.id}`, () => {
      if (this.failProvision) throw new Error('refused by the PE');
      const cur = this.vrfs.get(s.id);
      const keep = (cur?.neighbors ?? []).filter((n) => n.address === s.ceAddress);
      this.vrfs.set(s.id, {
        rd: s.rd,
        importRts: [...s.importRts].sort(),
        exportRts: [...s.exportRts].sort(),
        neighbors: keep.length > 0 ? keep : [{ address: s.ceAddress, established: true }],
      });
    });
  }

  deprovision(s: WanBindingSpec): Promise<void> {
    return this.enter(`deprovision ${s.id}`, () => {
      this.vrfs.delete(s.id);
    });
  }

  status(s: WanBindingSpec): Promise<WanBindingStatus> {
    return this.enter(`status ${s.id}`, () => {
      const v = this.vrfs.get(s.id);
      if (v === undefined) return { present: false, neighbors: [], routes: [] };
      return {
        present: true,
        rd: v.rd,
        importRts: v.importRts,
        exportRts: v.exportRts,
        neighbors: v.neighbors.map((n) => ({
          address: n.address,
          state: n.established ? 'established' : 'active',
          established: n.established,
          received: 1,
        })),
        routes: [],
      };
    });
  }

  list(): Promise<string[]> {
    return this.enter('list', () => [...this.vrfs.keys()].sort());
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

const binding = (tenant: string, id: string, n: number, over: Partial<WanBinding> = {}): WanBinding => ({
  id,
  tenant,
  vce: `${tenant}-vce`,
  context: 'red',
  pe: 'pe1',
  mode: 'push-inter-domain',
  wanVrf: tenant.toUpperCase(),
  rd: `65000:${n}`,
  importRts: [`65000:${n}`],
  exportRts: [`65000:${n}`],
  protocol: 'bgp',
  dynamic: false,
  peAttachment: { kind: 'vlan', id: n },
  peAddress: `198.51.100.${n}`,
  ceAddress: `198.51.100.${n + 1}`,
  bfd: false,
  staticPrefixes: [],
  state: 'active',
  ...over,
});

describe('reconciler', () => {
  let dir: string;
  let kv: Kv;
  let core: ControllerCore;
  let pe: FakePe;
  let rec: Reconciler;

  const put = (key: string, v: unknown): Promise<number> => kv.put(key, JSON.stringify(v));
  const addTenant = async (t: string, n: number): Promise<WanBinding> => {
    const tenant: Tenant = { id: t, name: t, state: 'active', createdAt: new Date().toISOString() };
    await put(KEYS.tenant(t), tenant);
    const vce: VceInstance = {
      id: `${t}-vce`,
      tenant: t,
      host: 'h1',
      asn: 65100 + n,
      routerId: `192.0.2.${n}`,
      contexts: [{ name: 'red' }],
      zoneRules: [],
    };
    await put(KEYS.owned(t, 'vces', vce.id), vce);
    await put(KEYS.index('vces', vce.id), t);
    const att: Attachment = {
      id: `${t}-web`,
      tenant: t,
      vce: vce.id,
      context: 'red',
      kind: 'vxlan',
      vni: 1000 + n,
      addresses: [`10.${n}.1.1/24`],
    };
    await put(KEYS.owned(t, 'attachments', att.id), att);
    const b = binding(t, `${t}-wan`, n);
    await put(KEYS.owned(t, 'bindings', b.id), b);
    await put(KEYS.index('bindings', b.id), t);
    const { spec, adapter } = await core.wanSpec(b);
    await adapter.provision(spec);
    await core.publishAgentConfig(t, vce.id);
    await reportMatching(vce.id);
    return b;
  };
  /** An agent status that runs exactly the published configuration. */
  const reportMatching = async (vce: string, extra: Partial<AgentStatus> = {}): Promise<void> => {
    const d = (await core.repo.get<AgentConfigDoc>(KEYS.agentConfig(vce)))!;
    const cfg = d.value.config as {
      interfaces?: { name: string }[];
      vrfs?: { name: string; interfaces: { name: string }[] }[];
    };
    const st: AgentStatus = {
      vce,
      configRevision: d.rev,
      contexts: [
        { name: 'default', fibSize: 0, interfaces: (cfg.interfaces ?? []).map((i) => i.name) },
        ...(cfg.vrfs ?? []).map((v) => ({
          name: v.name,
          fibSize: 1,
          interfaces: v.interfaces.map((i) => i.name),
        })),
      ],
      bgp: [],
      bfd: [],
      counters: {},
      at: new Date().toISOString(),
      ...extra,
    };
    await put(KEYS.agentStatus(vce), st);
  };
  const active = async (): Promise<Alarm[]> => rec.alarms.list({ active: true });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vce-rec-unit-'));
    kv = await openSqliteKv(join(dir, 'ctl.db'));
    pe = new FakePe();
    core = new ControllerCore(kv, () => pe);
    const host: Host = { id: 'h1', underlay: '192.0.2.10' };
    await put(KEYS.host('h1'), host);
    const p: Pe = { id: 'pe1', asn: 65000, adapter: { kind: 'embedded', api: 'http://fake' } };
    await put(KEYS.pe('pe1'), p);
    rec = new Reconciler(core, { intervalMs: 0, agentGraceMs: 0, sessionGraceMs: 0 });
  });

  afterEach(async () => {
    await rec.stop();
    await core.close();
    await kv.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('repairs nothing and raises nothing when everything matches', async () => {
    await addTenant('acme', 11);
    await addTenant('beta', 21);
    const r = await rec.runOnce();
    expect(r.errors).toEqual([]);
    expect(r.repairs).toEqual([]);
    expect(await active()).toEqual([]);
    expect(rec.stats()).toMatchObject({ runs: 1, repairs: 0, alarmsRaised: 0 });
  });

  it('a route target of another tenant on a VRF is wrong VRF: the VRF is restored at once', async () => {
    await addTenant('acme', 11);
    await addTenant('beta', 21);
    pe.vrfs.get('acme-wan')!.importRts = ['65000:21'];
    const r = await rec.runOnce();
    expect(r.repairs).toHaveLength(1);
    expect(pe.vrfs.get('acme-wan')!.importRts).toEqual(['65000:11']);
    const [a] = await active();
    expect(a).toMatchObject({ kind: 'wrong-vrf', severity: 'critical', binding: 'acme-wan', tenant: 'acme' });
    expect(a!.message).toContain('route target 65000:21 of tenant beta');
    // verified by the next pass: cleared
    await rec.runOnce();
    expect(await active()).toEqual([]);
  });

  it("another tenant's vCE in a VRF is removed from it; the alarm names the victim tenant", async () => {
    await addTenant('acme', 11);
    await addTenant('beta', 21);
    pe.vrfs.get('acme-wan')!.neighbors.push({ address: '198.51.100.22', established: true });
    await rec.runOnce();
    expect(pe.vrfs.get('acme-wan')!.neighbors.map((n) => n.address)).toEqual(['198.51.100.12']);
    const [a] = await active();
    expect(a).toMatchObject({ kind: 'wrong-vrf', tenant: 'beta', binding: 'acme-wan' });
    expect(a!.message).toMatch(/198\.51\.100\.22 \(vCE of binding beta-wan, tenant beta\)/);
  });

  it('a wrong VRF that cannot be repaired is isolated: VRF removed, binding isolated', async () => {
    await addTenant('acme', 11);
    pe.vrfs.get('acme-wan')!.neighbors.push({ address: '203.0.113.9', established: true });
    pe.failProvision = true;
    await rec.runOnce();
    expect(pe.vrfs.has('acme-wan')).toBe(false);
    expect((await core.ownedOne<WanBinding>('acme', 'bindings', 'acme-wan'))!.state).toBe('isolated');
    const [a] = await active();
    expect(a).toMatchObject({ kind: 'wrong-vrf', severity: 'critical' });
    expect(a!.message).toMatch(/isolated/);
    // an isolated binding's VRF that comes back is removed again
    pe.failProvision = false;
    await pe.provision(
      (await core.wanSpec((await core.ownedOne<WanBinding>('acme', 'bindings', 'acme-wan'))!)).spec,
    );
    await rec.runOnce();
    expect(pe.vrfs.has('acme-wan')).toBe(false);
  });

  it('drift repeated bumps one alarm; a VRF left by an unbinding is residue', async () => {
    await addTenant('acme', 11);
    pe.vrfs.delete('acme-wan');
    await rec.runOnce();
    pe.vrfs.get('acme-wan')!.rd = '65000:99';
    await rec.runOnce();
    const drift = (await rec.alarms.list()).filter((a) => a.kind === 'drift-repaired');
    expect(drift).toHaveLength(1);
    expect(drift[0]!.count).toBe(2);
    expect(pe.vrfs.get('acme-wan')!.rd).toBe('65000:11');
    // residue: the store forgot a binding an unbind operation removed, the PE still has its VRF
    const op = { ...newOperation('unbind', 'acme', 'old-wan'), state: 'succeeded' as const };
    await put(KEYS.operation(op.id), op);
    pe.vrfs.set('old-wan', { rd: '65000:77', importRts: [], exportRts: [], neighbors: [] });
    await rec.runOnce();
    expect(pe.vrfs.has('old-wan')).toBe(false);
    const res = (await rec.alarms.list()).find((a) => a.kind === 'residue');
    expect(res).toMatchObject({ tenant: 'acme', binding: 'old-wan', severity: 'major' });
  });

  it('leaves alone a binding under an operation and the bindings of an unreachable PE', async () => {
    const b = await addTenant('acme', 11);
    await put(KEYS.owned('acme', 'bindings', b.id), { ...b, state: 'provisioning' });
    pe.vrfs.delete('acme-wan');
    pe.calls = [];
    await rec.runOnce();
    expect(pe.vrfs.has('acme-wan')).toBe(false);
    expect(pe.calls.filter((c) => !c.startsWith('list'))).toEqual([]);
    await put(KEYS.owned('acme', 'bindings', b.id), b);
    pe.down = true;
    await rec.runOnce();
    expect((await active()).map((a) => a.kind)).toEqual(['pe-unreachable']);
    pe.down = false;
    await rec.runOnce();
    expect(pe.vrfs.has('acme-wan')).toBe(true);
    expect((await active()).map((a) => a.kind)).toEqual(['drift-repaired']);
  });

  it('session down past the grace raises session-down; up again clears it', async () => {
    await addTenant('acme', 11);
    pe.vrfs.get('acme-wan')!.neighbors[0]!.established = false;
    await rec.runOnce();
    expect((await active()).map((a) => a.kind)).toEqual(['session-down']);
    pe.vrfs.get('acme-wan')!.neighbors[0]!.established = true;
    await rec.runOnce();
    expect(await active()).toEqual([]);
    expect((await rec.alarms.list())[0]).toMatchObject({ kind: 'session-down', count: 1 });
  });

  it("an agent holding another tenant's attachment gets its configuration again; wrong-vrf", async () => {
    await addTenant('acme', 11);
    await addTenant('beta', 21);
    const before = (await kv.get(KEYS.agentConfig('acme-vce')))!.modRevision;
    const st = (await core.agentStatus('acme-vce'))!;
    await put(KEYS.agentStatus('acme-vce'), {
      ...st,
      contexts: [...st.contexts, { name: 'green', fibSize: 1, interfaces: ['a-beta-web'] }],
    });
    await rec.runOnce();
    expect((await kv.get(KEYS.agentConfig('acme-vce')))!.modRevision).toBeGreaterThan(before);
    const [a] = await active();
    expect(a).toMatchObject({ kind: 'wrong-vrf', vce: 'acme-vce', tenant: 'acme' });
    expect(a!.message).toContain('context green');
    await reportMatching('acme-vce');
    await rec.runOnce();
    expect(await active()).toEqual([]);
  });

  it('agent errors and silence raise alarms; a lost publication is published again', async () => {
    await addTenant('acme', 11);
    await reportMatching('acme-vce', { configError: 'bad zone' });
    await rec.runOnce();
    expect((await active()).map((a) => a.kind)).toEqual(['agent-config-error']);
    await kv.delete(KEYS.agentStatus('acme-vce'));
    await rec.runOnce();
    expect((await active()).map((a) => a.kind)).toEqual(['agent-stale']);
    // an attachment changed in the store without its publication (controller stopped in between)
    const att = (await core.ownedOne<Attachment>('acme', 'attachments', 'acme-web'))!;
    await put(KEYS.owned('acme', 'attachments', att.id), { ...att, addresses: ['10.11.9.1/24'] });
    const before = (await kv.get(KEYS.agentConfig('acme-vce')))!.modRevision;
    await rec.runOnce();
    const after = (await core.repo.get<AgentConfigDoc>(KEYS.agentConfig('acme-vce')))!;
    expect(after.rev).toBeGreaterThan(before);
    expect(JSON.stringify(after.value.config)).toContain('10.11.9.1/24');
    await reportMatching('acme-vce');
    await rec.runOnce();
    expect(await active()).toEqual([]);
    expect((await rec.alarms.list()).map((a) => a.kind).sort()).toEqual([
      'agent-config-error',
      'agent-stale',
      'drift-repaired',
    ]);
  });

  it('runs one pass at a time; calls during a pass share the next one', async () => {
    await addTenant('acme', 11);
    pe.calls = [];
    const [a, b, c] = [rec.runOnce(), rec.runOnce(), rec.runOnce()];
    await Promise.all([a, b, c]);
    expect(pe.maxConcurrent).toBe(1);
    expect(rec.stats().runs).toBe(2);
    expect(pe.calls.filter((x) => x === 'list')).toHaveLength(2);
  });

  it('acknowledging keeps the alarm; a new occurrence after a clear wants a new acknowledgement', async () => {
    await addTenant('acme', 11);
    pe.vrfs.get('acme-wan')!.neighbors[0]!.established = false;
    await rec.runOnce();
    const [a] = await active();
    expect((await rec.alarms.ack(a!.id, 'ops'))!.ackedBy).toBe('ops');
    await rec.runOnce();
    expect((await active())[0]).toMatchObject({ id: a!.id, ackedBy: 'ops', count: 1 });
    pe.vrfs.get('acme-wan')!.neighbors[0]!.established = true;
    await rec.runOnce();
    pe.vrfs.get('acme-wan')!.neighbors[0]!.established = false;
    await rec.runOnce();
    const [again] = await active();
    expect(again).toMatchObject({ id: a!.id, count: 2 });
    expect(again!.ackedBy).toBeUndefined();
  });
});
