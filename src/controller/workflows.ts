/**
 * Durable, idempotent workflows (draft §7.2.1): each operation is a document in the store listing
 * its steps and their states; the runner executes the first unfinished step, persists the result,
 * and moves on. Every step is idempotent, so a controller killed at any point resumes the
 * operation on restart (the step that was running runs again); a step that fails for good makes
 * the operation roll back: the compensations of the finished steps run in reverse, so a tenant is
 * never left half-bound.
 *
 * Flows:
 * - bind, push inter-domain (§7.2.1.1): allocate -> configure-vce -> await-vce -> provision-wan ->
 *   await-wan -> activate.
 * - bind, push cross-domain (§7.2.1.2): allocate -> configure-vce -> await-vce -> hand-off (the
 *   VLAN/VXLAN and tenant context returned to the cross-domain orchestrator, in the operation) ->
 *   provision-wan -> await-wan -> activate.
 * - unbind: deprovision-wan -> configure-vce -> await-vce -> release -> forget.
 * - terminate-tenant: unbind every binding, remove the vCEs' tenant state, await the agents,
 *   residue check (PEs and agents hold nothing of the tenant), release identifiers, delete.
 */
import { randomUUID } from 'node:crypto';
import { formatAddress, numberToIPv4, ipv4ToNumber } from '../lib/ip.ts';
import type { ControllerCore } from './core.ts';
import {
  KEYS,
  OWNED_KINDS,
  type BindingMode,
  type Operation,
  type OperationStep,
  type Tenant,
  type VceInstance,
  type WanBinding,
} from './model.ts';
import { del, put } from './repo.ts';
import type { Op } from './store/types.ts';

/** A step that cannot finish yet (waiting for an agent or a PE): retried until its deadline. */
export class NotYet extends Error {
  override readonly name = 'NotYet';
}

export interface WorkflowOptions {
  /** How long a waiting step may wait before the operation fails (ms). */
  readonly waitTimeoutMs: number;
  /** Pause between retries of a waiting step (ms). */
  readonly retryMs: number;
  /** Test hook: called before each step runs (crash tests kill the process here). */
  readonly beforeStep?: (op: Operation, step: string) => void;
  readonly log?: { info(o: object, m: string): void; warn(o: object, m: string): void };
}

const FLOWS: Record<string, readonly string[]> = {
  'bind/push-inter-domain': [
    'allocate',
    'configure-vce',
    'await-vce',
    'provision-wan',
    'await-wan',
    'activate',
  ],
  'bind/push-cross-domain': [
    'allocate',
    'configure-vce',
    'await-vce',
    'hand-off',
    'provision-wan',
    'await-wan',
    'activate',
  ],
  'bind/pull': ['allocate', 'configure-vce', 'await-vce', 'activate'],
  unbind: ['deprovision-wan', 'configure-vce', 'await-vce', 'release', 'forget'],
  'terminate-tenant': ['unbind-all', 'remove-vces', 'await-agents', 'residue-check', 'release', 'delete'],
};

export function newOperation(
  kind: Operation['kind'],
  tenant: string,
  target: string,
  mode?: BindingMode,
): Operation {
  const flow = FLOWS[kind === 'bind' ? `bind/${mode!}` : kind]!;
  const now = new Date().toISOString();
  return {
    id: randomUUID(),
    kind,
    mode,
    tenant,
    target,
    state: 'pending',
    steps: flow.map((name) => ({ name, state: 'pending' })),
    createdAt: now,
    updatedAt: now,
  };
}

export class WorkflowRunner {
  private readonly running = new Set<string>();
  private readonly waiting = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly core: ControllerCore,
    private readonly opts: WorkflowOptions,
  ) {}

  /** Resumes every unfinished operation (after a restart, or on becoming leader). */
  async resumeAll(): Promise<number> {
    const ops = await this.core.repo.all<Operation>(KEYS.operations);
    let n = 0;
    for (const d of ops) {
      if (d.value.state === 'succeeded' || d.value.state === 'failed' || d.value.state === 'rolled-back')
        continue;
      this.kick(d.value.id);
      n++;
    }
    return n;
  }

  kick(id: string): void {
    if (this.stopped || this.running.has(id)) return;
    const t = this.waiting.get(id);
    if (t !== undefined) {
      clearTimeout(t);
      this.waiting.delete(id);
    }
    this.running.add(id);
    void this.run(id)
      .catch((e: Error) => this.opts.log?.warn({ op: id, err: e.message }, 'workflow runner error'))
      .finally(() => this.running.delete(id));
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.waiting.values()) clearTimeout(t);
    this.waiting.clear();
  }

  /** Waits until the operation is finished (tests, CLI --wait). */
  async settle(id: string, timeoutMs = 60_000): Promise<Operation> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const op = (await this.core.repo.get<Operation>(KEYS.operation(id)))?.value;
      if (op === undefined) throw new Error(`no operation ${id}`);
      if (op.state === 'succeeded' || op.state === 'failed' || op.state === 'rolled-back') return op;
      if (Date.now() > end) return op;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private async save(op: Operation): Promise<void> {
    op.updatedAt = new Date().toISOString();
    await this.core.repo.kv.put(KEYS.operation(op.id), JSON.stringify(op));
  }

  private async run(id: string): Promise<void> {
    const op = (await this.core.repo.get<Operation>(KEYS.operation(id)))?.value;
    if (op === undefined) return;
    if (op.state === 'pending') op.state = 'running';
    while (!this.stopped) {
      if (op.state === 'rolling-back') return this.rollback(op);
      const step = op.steps.find((s) => s.state !== 'done' && s.state !== 'skipped');
      if (step === undefined) {
        op.state = 'succeeded';
        await this.save(op);
        this.opts.log?.info({ op: op.id, kind: op.kind, target: op.target }, 'operation succeeded');
        return;
      }
      if (step.state !== 'running') {
        step.state = 'running';
        step.startedAt = new Date().toISOString();
        await this.save(op);
      }
      this.opts.beforeStep?.(op, step.name);
      try {
        const result = await this.step(op, step);
        step.state = 'done';
        step.endedAt = new Date().toISOString();
        if (result !== undefined) step.result = result;
        delete step.error;
        await this.save(op);
      } catch (e) {
        if (e instanceof NotYet) {
          const started = Date.parse(step.startedAt ?? op.updatedAt);
          if (Date.now() - started < this.opts.waitTimeoutMs) {
            if (step.error !== e.message) {
              step.error = e.message;
              await this.save(op);
            }
            this.waiting.set(
              op.id,
              setTimeout(() => this.kick(op.id), this.opts.retryMs),
            );
            return;
          }
        }
        step.state = 'failed';
        step.error = (e as Error).message;
        step.endedAt = new Date().toISOString();
        op.error = `${step.name}: ${(e as Error).message}`;
        op.state = 'rolling-back';
        await this.save(op);
        this.opts.log?.warn({ op: op.id, step: step.name, err: op.error }, 'operation failed; rolling back');
      }
    }
  }

  private async rollback(op: Operation): Promise<void> {
    if (op.kind !== 'bind') {
      // unbinding and termination only move forward: a failed one waits for an operator, who
      // fixes the cause and retries it (its steps are idempotent)
      op.state = 'failed';
      await this.save(op);
      return;
    }
    const done = op.steps.filter((s) => s.state === 'done' || s.state === 'failed').reverse();
    for (const s of done) {
      try {
        await this.compensate(op, s);
        s.state = 'compensated';
        await this.save(op);
      } catch (e) {
        s.error = `compensation: ${(e as Error).message}`;
        op.state = 'failed';
        await this.save(op);
        this.opts.log?.warn(
          { op: op.id, step: s.name, err: s.error },
          'compensation failed: operation needs an operator',
        );
        return;
      }
    }
    op.state = op.kind === 'bind' ? 'rolled-back' : 'failed';
    await this.save(op);
  }

  // ------------------------------------------------------------------ steps

  private async binding(op: Operation): Promise<WanBinding | undefined> {
    return this.core.ownedOne<WanBinding>(op.tenant, 'bindings', op.target);
  }

  private async setBinding(b: WanBinding): Promise<void> {
    await this.core.repo.kv.put(KEYS.owned(b.tenant, 'bindings', b.id), JSON.stringify(b));
  }

  private async step(op: Operation, step: OperationStep): Promise<Record<string, unknown> | undefined> {
    switch (step.name) {
      case 'allocate':
        return this.allocate(op);
      case 'configure-vce': {
        const b = await this.binding(op);
        if (b === undefined) return undefined;
        const rev = await this.core.publishAgentConfig(op.tenant, b.vce);
        return { vce: b.vce, configRevision: rev };
      }
      case 'await-vce': {
        const b = await this.binding(op);
        if (b === undefined) return undefined;
        const want = op.steps.find((s) => s.name === 'configure-vce')!.result?.['configRevision'] as number;
        return this.awaitAgent(b.vce, want, op.kind === 'unbind' ? undefined : b.context);
      }
      case 'hand-off': {
        const b = (await this.binding(op))!;
        // what the DC orchestrator passes back to the cross-domain orchestrator (§7.2.1.2 step 3)
        return {
          connection: b.peAttachment,
          tenantContext: {
            tenant: b.tenant,
            wanVrf: b.wanVrf,
            rd: b.rd,
            importRts: b.importRts,
            exportRts: b.exportRts,
          },
          link: { peAddress: b.peAddress, ceAddress: b.ceAddress, protocol: b.protocol },
        };
      }
      case 'provision-wan': {
        const b = (await this.binding(op))!;
        const { spec, adapter } = await this.core.wanSpec(b);
        await adapter.provision(spec);
        return { pe: b.pe, adapter: adapter.kind };
      }
      case 'await-wan': {
        const b = (await this.binding(op))!;
        const { spec, adapter } = await this.core.wanSpec(b);
        const st = await adapter.status(spec);
        if (!st.present) throw new NotYet(`VRF ${b.wanVrf} not yet on ${b.pe}`);
        if (b.protocol === 'bgp' && !st.neighbors.some((n) => n.established))
          throw new NotYet(`PE-CE session of ${b.wanVrf} not established yet`);
        return { routes: st.routes.length };
      }
      case 'activate': {
        const b = (await this.binding(op))!;
        await this.setBinding({ ...b, state: 'active' });
        return undefined;
      }
      case 'deprovision-wan': {
        const b = await this.binding(op);
        if (b === undefined) return undefined;
        if (b.state !== 'deprovisioning') await this.setBinding({ ...b, state: 'deprovisioning' });
        const { spec, adapter } = await this.core.wanSpec(b);
        await adapter.deprovision(spec);
        return undefined;
      }
      case 'release':
        if (op.kind === 'terminate-tenant') {
          for (const a of await this.core.ipam.ofTenant(op.tenant)) await this.core.repo.kv.delete(a.key);
          return undefined;
        }
        return { released: await this.core.ipam.release(op.target) };
      case 'forget': {
        const b = await this.binding(op);
        const ops = [
          del(KEYS.owned(op.tenant, 'bindings', op.target)),
          del(KEYS.index('bindings', op.target)),
        ];
        if (b !== undefined) {
          const others = (await this.core.owned<WanBinding>(op.tenant, 'bindings')).filter(
            (x) => x.id !== b.id && x.pe === b.pe && x.wanVrf === b.wanVrf,
          );
          if (others.length === 0) ops.push(del(KEYS.index('vrf', `${b.pe}|${b.wanVrf}`)));
        }
        await this.core.repo.commit({}, ops);
        return undefined;
      }
      case 'unbind-all':
        return this.unbindAll(op);
      case 'remove-vces':
        return this.removeVces(op);
      case 'await-agents':
        return this.awaitAgentsEmpty(op);
      case 'residue-check':
        return this.residueCheck(op);
      case 'delete': {
        const ops: Op[] = [
          del(KEYS.tenant(op.tenant)),
          { type: 'delete-prefix', prefix: KEYS.ownedAll(op.tenant) },
        ];
        for (const d of await this.core.repo.kv.range('/vce/v1/index/').then((r) => r.entries))
          if (JSON.parse(d.value) === op.tenant) ops.push(del(d.key));
        ops.push(del(KEYS.quarantine('tenant', op.tenant)));
        await this.core.repo.commit({}, ops);
        // tokens scoped to the tenant
        for (const t of await this.core.repo.all<{ hash: string; scope?: string; role: string }>(
          '/vce/v1/tokens/',
        ))
          if (t.value.role === 'tenant' && t.value.scope === op.tenant)
            await this.core.repo.kv.delete(KEYS.token(t.value.hash));
        return undefined;
      }
      default:
        throw new Error(`unknown step ${step.name}`);
    }
  }

  private async compensate(op: Operation, s: OperationStep): Promise<void> {
    const b = await this.binding(op);
    if (b === undefined) return;
    switch (s.name) {
      case 'provision-wan':
      case 'await-wan': {
        const { spec, adapter } = await this.core.wanSpec(b);
        await adapter.deprovision(spec);
        return;
      }
      case 'configure-vce':
        await this.setBinding({ ...b, state: 'deprovisioning' });
        await this.core.publishAgentConfig(op.tenant, b.vce);
        return;
      case 'allocate':
        await this.core.ipam.release(b.id);
        await this.core.repo.commit({}, [
          del(KEYS.owned(b.tenant, 'bindings', b.id)),
          del(KEYS.index('bindings', b.id)),
        ]);
        return;
      default:
        return;
    }
  }

  private async allocate(op: Operation): Promise<Record<string, unknown>> {
    const b = (await this.binding(op))!;
    let { peAddress, ceAddress } = b;
    if (peAddress === undefined || ceAddress === undefined) {
      const p = await this.core.ipam.allocatePrefix('link', 30, b.id, b.tenant);
      const base = ipv4ToNumber(p.addr);
      peAddress = formatAddress(numberToIPv4(base + 1));
      ceAddress = formatAddress(numberToIPv4(base + 2));
      await this.setBinding({ ...b, peAddress, ceAddress });
    }
    return { peAddress, ceAddress };
  }

  /** The agent runs configuration `want` (or newer) without error, and has `context` if given. */
  private async awaitAgent(vce: string, want: number, context?: string): Promise<Record<string, unknown>> {
    const st = await this.core.agentStatus(vce);
    if (st === undefined) throw new NotYet(`vCE ${vce} has not reported (is its agent connected?)`);
    if (st.configRevision < want)
      throw new NotYet(`vCE ${vce} runs configuration ${st.configRevision}, waiting for ${want}`);
    if (st.configError !== undefined)
      throw new Error(`vCE ${vce} refused its configuration: ${st.configError}`);
    if (context !== undefined && !st.contexts.some((c) => c.name === context))
      throw new NotYet(`vCE ${vce} does not show context ${context} yet`);
    return { configRevision: st.configRevision };
  }

  private async unbindAll(op: Operation): Promise<Record<string, unknown>> {
    const tenant = (await this.core.repo.get<Tenant>(KEYS.tenant(op.tenant)))?.value;
    if (tenant !== undefined && tenant.state !== 'terminating')
      await this.core.repo.kv.put(
        KEYS.tenant(op.tenant),
        JSON.stringify({ ...tenant, state: 'terminating' }),
      );
    const bindings = await this.core.owned<WanBinding>(op.tenant, 'bindings');
    for (const b of bindings) {
      if (b.state !== 'deprovisioning') await this.setBinding({ ...b, state: 'deprovisioning' });
      const { spec, adapter } = await this.core.wanSpec(b);
      await adapter.deprovision(spec);
      await this.core.repo.commit({}, [
        del(KEYS.owned(b.tenant, 'bindings', b.id)),
        del(KEYS.index('bindings', b.id)),
      ]);
    }
    const prior = (op.steps.find((s) => s.name === 'unbind-all')?.result?.['bindings'] ?? []) as string[];
    return { bindings: [...new Set([...prior, ...bindings.map((b) => b.id)])] };
  }

  private async removeVces(op: Operation): Promise<Record<string, unknown>> {
    const vces = await this.core.owned<VceInstance>(op.tenant, 'vces');
    const ops = OWNED_KINDS.filter((k) => k !== 'bindings').map((k) => ({
      type: 'delete-prefix' as const,
      prefix: KEYS.ownedKind(op.tenant, k),
    }));
    // remember the vCEs to wait for, then drop the tenant's objects (bindings are already unprovisioned)
    const revs: Record<string, number> = {};
    const prior = op.steps.find((s) => s.name === 'remove-vces')?.result?.['vces'] as
      Record<string, number> | undefined;
    await this.core.repo.commit({}, ops);
    for (const v of vces.map((x) => x.id).concat(Object.keys(prior ?? {})))
      revs[v] = await this.core.publishAgentConfig(op.tenant, v);
    return { vces: revs };
  }

  private async awaitAgentsEmpty(op: Operation): Promise<Record<string, unknown>> {
    const revs = (op.steps.find((s) => s.name === 'remove-vces')?.result?.['vces'] ?? {}) as Record<
      string,
      number
    >;
    for (const [vce, rev] of Object.entries(revs)) {
      const st = await this.core.agentStatus(vce);
      if (st === undefined) continue; // a disconnected agent holds nothing we can see; residue check decides
      if (st.configRevision < rev) throw new NotYet(`vCE ${vce} has not applied the removal yet`);
    }
    return { agents: Object.keys(revs).length };
  }

  private async residueCheck(op: Operation): Promise<Record<string, unknown>> {
    const residue: string[] = [];
    const bindings = (op.steps.find((s) => s.name === 'unbind-all')?.result?.['bindings'] ?? []) as string[];
    for (const pe of (await this.core.pes()).values()) {
      const present = await this.core.adapter(pe).list();
      for (const id of bindings) if (present.includes(id)) residue.push(`binding ${id} still on PE ${pe.id}`);
    }
    const revs = (op.steps.find((s) => s.name === 'remove-vces')?.result?.['vces'] ?? {}) as Record<
      string,
      number
    >;
    for (const vce of Object.keys(revs)) {
      const st = await this.core.agentStatus(vce);
      if (st !== undefined && st.contexts.some((c) => c.interfaces.length > 0 || c.name !== 'default'))
        residue.push(`vCE ${vce} still has contexts ${st.contexts.map((c) => c.name).join(', ')}`);
    }
    const left = await this.core.repo.kv.range(KEYS.ownedAll(op.tenant), { limit: 5 });
    for (const e of left.entries) residue.push(`store still holds ${e.key}`);
    if (residue.length > 0) throw new NotYet(`residue: ${residue.join('; ')}`);
    return { clean: true };
  }
}

/** Stores a new operation for a binding together with the binding (one transaction). */
export function bindingOps(b: WanBinding, op: Operation): ReturnType<typeof put>[] {
  return [
    put(KEYS.owned(b.tenant, 'bindings', b.id), b),
    put(KEYS.index('bindings', b.id), b.tenant),
    put(KEYS.operation(op.id), op),
  ];
}
