/**
 * The reconciler (draft §7.1: "WAN IP VPN state and Data Centre state are dynamically
 * synchronized ... no possibility of customer being connected to the wrong VRF"). Run by the
 * elected leader every `intervalMs` and on demand (`runOnce()`), one pass at a time, it compares
 * the intent in the store with what the PEs (through their WAN adapters) and the vCE agents (their
 * status reports) hold, repairs what drifted and raises alarms (./alarms.ts).
 *
 * A pass:
 * 1. Lists the bindings every PE holds (`adapter.list()`: the VRFs our adapters own), then reads
 *    the store — in that order, so a binding created during the pass is never taken for a stranger.
 *    A PE that does not answer raises `pe-unreachable` and its bindings are left alone.
 * 2. Isolation: a VRF on a PE whose binding the store does not know (a rogue VRF, or residue of an
 *    unbinding or a termination), or that belongs to another PE, or whose binding is isolated, is
 *    deprovisioned at once (VRF and neighbour gone: no traffic can be forwarded into it) and
 *    raises `wrong-vrf` (critical; `residue` when it is what an unbinding left).
 * 3. Every `active` binding: the PE VRF as `status()` reports it against the intent. A neighbour
 *    in the VRF that is not the binding's vCE (another tenant's attachment, an unknown address),
 *    or a route target of another tenant, is wrong VRF: the binding is provisioned again
 *    (adapters are idempotent and remove what the binding does not own; the VRF is recreated with
 *    its own targets) and `wrong-vrf` is raised; if that repair fails the VRF is deprovisioned and
 *    the binding marked `isolated`. A missing VRF or neighbour, a different RD or route target,
 *    missing static routes: provisioned again, `drift-repaired` (`repair-failed` when the PE
 *    refuses). The PE-CE session not established for longer than `sessionGraceMs`:
 *    `session-down`.
 * 4. Every vCE: no status (lease expired) or a configuration revision behind the published one
 *    for longer than `agentGraceMs`: `agent-stale`; a refused configuration: `agent-config-error`;
 *    the published configuration differing from the model for longer than `agentGraceMs` (a
 *    controller stopped between a change and its publication): published, `drift-repaired`; an
 *    agent running the current configuration but reporting a context or interface the intent does
 *    not have: configuration published again (the agent's diff removes what is not in it),
 *    `wrong-vrf`. An agent whose vCE is gone but that still holds tenant state: its empty
 *    configuration published again, `residue`.
 * 5. Alarms whose condition the pass checked and no longer found, or whose object is gone, are
 *    cleared.
 *
 * Nothing the reconciler does races a workflow: a binding in `provisioning`/`deprovisioning`, the
 * target of an unfinished operation, or of a tenant being terminated is skipped, and a binding is
 * read again right before it is repaired. Every repair is an idempotent adapter call or a
 * publication of the computed configuration, and is logged.
 */
import { agentConfig } from './agent-config.ts';
import { Alarms, alarmId, type AlarmInput } from './alarms.ts';
import { sha, type AgentConfigDoc, type AgentStatus, type ControllerCore } from './core.ts';
import {
  KEYS,
  type Attachment,
  type Endpoint,
  type Host,
  type Operation,
  type Pe,
  type Tenant,
  type VceInstance,
  type WanBinding,
} from './model.ts';
import { ConflictError, put } from './repo.ts';
import type { WanAdapter, WanBindingSpec, WanBindingStatus } from './wan/types.ts';
import {
  canonicalPrefixText,
  canonicalRd,
  canonicalRt,
  canonicalRts,
  staticPrefixesOf,
} from './wan/naming.ts';
import { formatAddress, parseAddress } from '../lib/ip.ts';

export interface ReconcilerOptions {
  /** Pause between passes (ms); 0 or less: no timer, passes only by `runOnce()`. Default 10 000. */
  readonly intervalMs: number;
  /** A PE-CE session may be down this long before `session-down` (ms). Default 60 000. */
  readonly sessionGraceMs: number;
  /** An agent may be behind, silent, or its published configuration stale this long (ms). Default 30 000. */
  readonly agentGraceMs: number;
  readonly log?: { info(o: object, m: string): void; warn(o: object, m: string): void };
}

export const DEFAULT_RECONCILER_OPTIONS: ReconcilerOptions = {
  intervalMs: 10_000,
  sessionGraceMs: 60_000,
  agentGraceMs: 30_000,
};

export interface Repair {
  /** `pe:ID`, `binding:ID` or `vce:ID`. */
  readonly target: string;
  readonly action: 'deprovision' | 'provision' | 'isolate' | 'publish';
  readonly reason: string;
}

export interface ReconcileReport {
  readonly repairs: Repair[];
  /** Ids of alarms raised (new occurrences) by the pass. */
  readonly raised: string[];
  readonly cleared: string[];
  readonly errors: string[];
  readonly durationMs: number;
}

export interface ReconcilerStats {
  readonly runs: number;
  readonly repairs: number;
  readonly alarmsRaised: number;
  readonly alarmsCleared: number;
  readonly errors: number;
  readonly lastRunAt?: string;
  readonly lastRunMs?: number;
  readonly running: boolean;
}

interface AgentDocs {
  config?: { value: AgentConfigDoc; rev: number };
  status?: AgentStatus;
}

/** What the store says, read once per pass (after the PEs were listed). */
interface Snapshot {
  readonly tenants: Map<string, Tenant>;
  readonly bindings: Map<string, WanBinding>;
  readonly vces: Map<string, VceInstance>;
  readonly attachments: Attachment[];
  readonly endpoints: Endpoint[];
  readonly pes: Map<string, Pe>;
  readonly hosts: Map<string, Host>;
  /** Targets of unfinished bind/unbind operations. */
  readonly busyBindings: Set<string>;
  /** Tenants being terminated. */
  readonly busyTenants: Set<string>;
  /** A termination is running (it removes vCEs and waits for their agents itself). */
  readonly terminating: boolean;
  /** Bindings an unbinding or a termination removed: id -> tenant (their VRFs are residue). */
  readonly retired: Map<string, string>;
  /** Canonical route target -> tenants whose bindings use it. */
  readonly rtTenants: Map<string, Set<string>>;
  /** vCE address (canonical) -> the bindings using it. */
  readonly ceOwners: Map<string, WanBinding[]>;
  readonly agents: Map<string, AgentDocs>;
}

/** PEs served by one control plane (same adapter settings): listed once. */
interface PeGroup {
  readonly pes: Pe[];
  ids?: string[];
  error?: string;
}

interface Pass {
  readonly started: number;
  readonly report: {
    repairs: Repair[];
    raised: string[];
    cleared: string[];
    errors: string[];
  };
  /** Alarm ids raised or still found by this pass. */
  readonly seen: Set<string>;
  /** Scopes this pass checked completely: their alarms not seen are cleared. */
  readonly checked: Set<string>;
  /** Grace timers still running (others are dropped at the end of the pass). */
  readonly grace: Set<string>;
}

const UNFINISHED = new Set<Operation['state']>(['pending', 'running', 'rolling-back']);

/** An address in one text form (IPv4-mapped IPv6 as IPv4); not an address: as given. */
function addrKey(a: string | undefined): string {
  if (a === undefined || a === '') return '';
  try {
    const b = parseAddress(a);
    const mapped =
      b.length === 16 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
    return formatAddress(mapped ? b.subarray(12) : b);
  } catch {
    return a;
  }
}

function safe<T>(f: () => T, fallback: T): T {
  try {
    return f();
  } catch {
    return fallback;
  }
}

const msg = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** Interface names per context of an agent configuration document (the agent's own format). */
function intendedContexts(doc: Record<string, unknown>): Map<string, Set<string>> {
  const names = (l: unknown): Set<string> =>
    new Set(
      (Array.isArray(l) ? (l as Record<string, unknown>[]) : [])
        .map((i) => i['name'])
        .filter((n): n is string => typeof n === 'string'),
    );
  const m = new Map<string, Set<string>>([['default', names(doc['interfaces'])]]);
  for (const v of Array.isArray(doc['vrfs']) ? (doc['vrfs'] as Record<string, unknown>[]) : [])
    if (typeof v['name'] === 'string') m.set(v['name'], names(v['interfaces']));
  return m;
}

/** What an agent reports beyond the intent: contexts and interfaces. */
function extrasOf(status: AgentStatus, intent: Map<string, Set<string>>): string[] {
  const out: string[] = [];
  for (const c of status.contexts) {
    const want = intent.get(c.name);
    if (want === undefined) {
      out.push(`context ${c.name}`);
      continue;
    }
    for (const i of c.interfaces) if (!want.has(i)) out.push(`interface ${i} in context ${c.name}`);
  }
  return out;
}

export class Reconciler {
  readonly alarms: Alarms;
  private readonly opts: ReconcilerOptions;
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<ReconcileReport> | undefined;
  private queued: Promise<ReconcileReport> | undefined;
  /** The periodic passes are on (between start() and stop()). */
  private started = false;
  /** stop() is waiting: the pass in progress ends early. */
  private aborting = false;
  /** Grace timers: condition key -> first seen (ms). */
  private readonly since = new Map<string, number>();
  /** Forced republications: vCE -> last time (ms), so a stubborn agent is not flooded. */
  private readonly forced = new Map<string, number>();
  private counters = { runs: 0, repairs: 0, alarmsRaised: 0, alarmsCleared: 0, errors: 0 };
  private last: { at: string; ms: number } | undefined;

  constructor(
    private readonly core: ControllerCore,
    opts: Partial<ReconcilerOptions> = {},
  ) {
    this.opts = { ...DEFAULT_RECONCILER_OPTIONS, ...opts };
    this.alarms = new Alarms(core.repo);
  }

  /** Starts the periodic passes (the leader calls this when elected). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.schedule();
  }

  /** Stops the periodic passes and waits for a pass in progress to end. */
  async stop(): Promise<void> {
    this.started = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.aborting = true;
    try {
      await this.queued?.catch(() => undefined);
      await this.current?.catch(() => undefined);
    } finally {
      this.aborting = false;
    }
  }

  /**
   * One full pass that starts after this call: waits for a pass in progress, never runs two at
   * once; calls made while one is already queued share it.
   */
  runOnce(): Promise<ReconcileReport> {
    if (this.queued !== undefined) return this.queued;
    const start = (): Promise<ReconcileReport> => {
      const p: Promise<ReconcileReport> = this.pass().finally(() => {
        if (this.current === p) this.current = undefined;
      });
      this.current = p;
      return p;
    };
    if (this.current === undefined) return start();
    const q = this.current
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return start();
      });
    this.queued = q;
    return q;
  }

  /** Counters for metrics. */
  stats(): ReconcilerStats {
    return {
      ...this.counters,
      ...(this.last === undefined ? {} : { lastRunAt: this.last.at, lastRunMs: this.last.ms }),
      running: this.current !== undefined,
    };
  }

  private schedule(): void {
    if (!this.started || this.opts.intervalMs <= 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.runOnce()
        .catch((e: unknown) => this.opts.log?.warn({ err: msg(e) }, 'reconciler pass failed'))
        .finally(() => this.schedule());
    }, this.opts.intervalMs);
    this.timer.unref();
  }

  // ------------------------------------------------------------------ the pass

  private async pass(): Promise<ReconcileReport> {
    const pass: Pass = {
      started: Date.now(),
      report: { repairs: [], raised: [], cleared: [], errors: [] },
      seen: new Set(),
      checked: new Set(),
      grace: new Set(),
    };
    this.counters.runs++;
    try {
      // 1. the PEs first, then the store (see the header)
      const groups = new Map<string, PeGroup>();
      for (const d of await this.core.repo.all<Pe>(KEYS.pes)) {
        const key = JSON.stringify(d.value.adapter);
        const g = groups.get(key) ?? { pes: [] };
        g.pes.push(d.value);
        groups.set(key, g);
      }
      for (const g of groups.values()) {
        try {
          g.ids = await this.core.adapter(g.pes[0]!).list();
        } catch (e) {
          g.error = msg(e);
        }
      }
      const snap = await this.snapshot();
      const peGroup = new Map<string, PeGroup>();
      for (const g of groups.values()) for (const pe of g.pes) peGroup.set(pe.id, g);

      // 2. isolation on every reachable PE
      for (const g of groups.values()) {
        if (this.aborting) break;
        if (g.ids === undefined) {
          for (const pe of g.pes) await this.peUnreachable(pass, pe.id, g.error ?? 'no answer');
          continue;
        }
        for (const pe of g.pes) pass.checked.add(`pe:${pe.id}`);
        for (const id of g.ids) {
          if (this.aborting) break;
          await this.guard(pass, `PE ${g.pes[0]!.id} VRF of ${id}`, () =>
            this.isolateForeign(pass, snap, g, id),
          );
        }
      }

      // 3. the bindings
      const found: { b: WanBinding; spec: WanBindingSpec; adapter: WanAdapter; st: WanBindingStatus }[] = [];
      for (const b of snap.bindings.values()) {
        if (this.aborting) break;
        if (b.state !== 'active' || this.busy(snap, b)) continue;
        const g = peGroup.get(b.pe);
        if (g?.ids === undefined) continue; // PE unknown or unreachable
        await this.guard(pass, `binding ${b.id}`, async () => {
          const { spec, adapter } = await this.core.wanSpec(b);
          let st: WanBindingStatus;
          try {
            st = await adapter.status(spec);
          } catch (e) {
            await this.peUnreachable(pass, b.pe, msg(e));
            return;
          }
          found.push({ b, spec, adapter, st });
        });
      }
      // wrong-VRF repairs first: they free neighbours other bindings' repairs need
      const judged = found.map((f) => ({ ...f, ...this.judge(snap, f.b, f.spec, f.st) }));
      judged.sort((x, y) => Number(y.wrong.length > 0) - Number(x.wrong.length > 0));
      for (const j of judged) {
        if (this.aborting) break;
        await this.guard(pass, `binding ${j.b.id}`, () =>
          this.checkBinding(pass, snap, j.b, j.spec, j.adapter, j.st, j.wrong, j.drift, j.victim),
        );
      }

      // 4. the agents
      const vceIds = new Set([...snap.vces.keys(), ...snap.agents.keys()]);
      for (const id of vceIds) {
        if (this.aborting) break;
        await this.guard(pass, `vCE ${id}`, () => this.checkAgent(pass, snap, id));
      }

      // 5. clear what is gone
      if (!this.aborting) {
        await this.sweep(pass, snap, vceIds);
        for (const k of this.since.keys()) if (!pass.grace.has(k)) this.since.delete(k);
      }
    } catch (e) {
      this.counters.errors++;
      pass.report.errors.push(msg(e));
      this.opts.log?.warn({ err: msg(e) }, 'reconciler pass failed');
    }
    const ms = Date.now() - pass.started;
    this.last = { at: new Date(pass.started).toISOString(), ms };
    return { ...pass.report, durationMs: ms };
  }

  private async guard(pass: Pass, what: string, f: () => Promise<void>): Promise<void> {
    try {
      await f();
    } catch (e) {
      this.counters.errors++;
      pass.report.errors.push(`${what}: ${msg(e)}`);
      this.opts.log?.warn({ what, err: msg(e) }, 'reconciler check failed');
    }
  }

  private async snapshot(): Promise<Snapshot> {
    const repo = this.core.repo;
    const tenants = new Map((await repo.all<Tenant>(KEYS.tenants)).map((d) => [d.value.id, d.value]));
    const bindings = new Map<string, WanBinding>();
    const vces = new Map<string, VceInstance>();
    const attachments: Attachment[] = [];
    const endpoints: Endpoint[] = [];
    const owned = KEYS.ownedAll('');
    const root = owned.slice(0, owned.length - 1); // `/vce/v1/t/`
    for (const e of await this.scan(root)) {
      const [, kind] = e.key.slice(root.length).split('/');
      if (kind === 'bindings') {
        const b = JSON.parse(e.value) as WanBinding;
        bindings.set(b.id, b);
      } else if (kind === 'vces') {
        const v = JSON.parse(e.value) as VceInstance;
        vces.set(v.id, v);
      } else if (kind === 'attachments') attachments.push(JSON.parse(e.value) as Attachment);
      else if (kind === 'endpoints') endpoints.push(JSON.parse(e.value) as Endpoint);
    }
    const busyBindings = new Set<string>();
    const busyTenants = new Set([...tenants.values()].filter((t) => t.state !== 'active').map((t) => t.id));
    const retired = new Map<string, string>();
    let terminating = false;
    for (const d of await repo.all<Operation>(KEYS.operations)) {
      const o = d.value;
      const unfinished = UNFINISHED.has(o.state);
      if (o.kind === 'terminate-tenant') {
        if (unfinished) {
          busyTenants.add(o.tenant);
          terminating = true;
        }
        const ids = o.steps.find((s) => s.name === 'unbind-all')?.result?.['bindings'];
        if (Array.isArray(ids)) for (const id of ids) if (typeof id === 'string') retired.set(id, o.tenant);
      } else {
        if (unfinished) busyBindings.add(o.target);
        if (o.kind === 'unbind') retired.set(o.target, o.tenant);
      }
    }
    const rtTenants = new Map<string, Set<string>>();
    const ceOwners = new Map<string, WanBinding[]>();
    for (const b of bindings.values()) {
      for (const rt of [...b.importRts, ...b.exportRts]) {
        const k = safe(() => canonicalRt(rt), rt);
        const s = rtTenants.get(k) ?? new Set<string>();
        s.add(b.tenant);
        rtTenants.set(k, s);
      }
      const ce = addrKey(b.ceAddress);
      if (ce !== '') ceOwners.set(ce, [...(ceOwners.get(ce) ?? []), b]);
    }
    const agents = new Map<string, AgentDocs>();
    for (const e of await this.scan(KEYS.agentConfigs)) {
      const m = /^([^/]+)\/(config|status)$/.exec(e.key.slice(KEYS.agentConfigs.length));
      if (m === null) continue;
      const docs = agents.get(m[1]!) ?? {};
      if (m[2] === 'config')
        docs.config = { value: JSON.parse(e.value) as AgentConfigDoc, rev: e.modRevision };
      else docs.status = JSON.parse(e.value) as AgentStatus;
      agents.set(m[1]!, docs);
    }
    return {
      tenants,
      bindings,
      vces,
      attachments,
      endpoints,
      pes: new Map((await repo.all<Pe>(KEYS.pes)).map((d) => [d.value.id, d.value])),
      hosts: await this.core.hosts(),
      busyBindings,
      busyTenants,
      terminating,
      retired,
      rtTenants,
      ceOwners,
      agents,
    };
  }

  private async scan(prefix: string): Promise<{ key: string; value: string; modRevision: number }[]> {
    const out: { key: string; value: string; modRevision: number }[] = [];
    let after: string | undefined;
    for (;;) {
      const r = await this.core.kv.range(prefix, { limit: 1000, after });
      out.push(...r.entries);
      if (!r.more || r.entries.length === 0) return out;
      after = r.entries.at(-1)!.key;
    }
  }

  private busy(snap: Snapshot, b: WanBinding): boolean {
    return (
      b.state === 'provisioning' ||
      b.state === 'deprovisioning' ||
      snap.busyBindings.has(b.id) ||
      snap.busyTenants.has(b.tenant)
    );
  }

  // ------------------------------------------------------------------ PEs

  private async peUnreachable(pass: Pass, pe: string, why: string): Promise<void> {
    await this.raise(pass, {
      kind: 'pe-unreachable',
      severity: 'major',
      scope: `pe:${pe}`,
      pe,
      message: `PE ${pe} does not answer its WAN adapter: ${why}`,
    });
  }

  /** A VRF our adapters own on a PE: isolated at once unless an active binding of this PE owns it. */
  private async isolateForeign(pass: Pass, snap: Snapshot, g: PeGroup, id: string): Promise<void> {
    const pe = g.pes[0]!;
    const b = snap.bindings.get(id);
    let why: string;
    let kind: 'wrong-vrf' | 'residue' = 'wrong-vrf';
    let tenant: string | undefined;
    if (b === undefined) {
      // read again: only a binding the store does not hold now is a stranger
      if ((await this.core.tenantOf('bindings', id)) !== undefined) return;
      tenant = snap.retired.get(id);
      if (tenant !== undefined) {
        kind = 'residue';
        why = `VRF of binding ${id} (tenant ${tenant}) is still on PE ${pe.id} after its unbinding`;
      } else why = `VRF of binding ${id} on PE ${pe.id} belongs to no binding`;
    } else {
      if (this.busy(snap, b)) return;
      tenant = b.tenant;
      if (!g.pes.some((p) => p.id === b.pe)) why = `VRF of binding ${id} (PE ${b.pe}) found on PE ${pe.id}`;
      else if (b.state === 'isolated') why = `VRF of isolated binding ${id} is back on PE ${pe.id}`;
      else return;
    }
    const spec: WanBindingSpec = {
      id,
      tenant: tenant ?? '',
      pe: pe.id,
      vrf: '',
      rd: '0:0',
      importRts: [],
      exportRts: [],
      attachment: { kind: 'vlan', id: 0 },
      protocol: 'bgp',
      peAddress: '',
      peAsn: pe.asn,
      ceAddress: '',
    };
    await this.core.adapter(pe).deprovision(spec);
    this.repaired(pass, { target: `pe:${pe.id}`, action: 'deprovision', reason: why });
    await this.raise(
      pass,
      {
        kind,
        severity: kind === 'wrong-vrf' ? 'critical' : 'major',
        scope: `pe:${pe.id}`,
        detail: `vrf:${id}`,
        tenant,
        binding: id,
        pe: pe.id,
        message: `${why}: isolated (VRF and its neighbours removed from the PE)`,
      },
      { event: true },
    );
  }

  // ------------------------------------------------------------------ bindings

  /** What is wrong with a binding's PE VRF: wrong-VRF findings and plain drift. */
  private judge(
    snap: Snapshot,
    b: WanBinding,
    spec: WanBindingSpec,
    st: WanBindingStatus,
  ): { wrong: string[]; drift: string[]; victim?: string } {
    const wrong: string[] = [];
    const drift: string[] = [];
    let victim: string | undefined;
    const ce = addrKey(b.ceAddress);
    if (!b.dynamic) {
      for (const n of st.neighbors) {
        const a = addrKey(n.address);
        if (b.protocol === 'bgp' && a === ce) continue;
        const owners = snap.ceOwners.get(a) ?? [];
        const other = owners.find((o) => o.tenant !== b.tenant);
        if (other !== undefined) {
          victim ??= other.tenant;
          wrong.push(
            `neighbour ${n.address} (vCE of binding ${other.id}, tenant ${other.tenant}) is in the VRF of binding ${b.id} (tenant ${b.tenant})`,
          );
        } else if (owners.length > 0)
          drift.push(`neighbour ${n.address} of binding ${owners[0]!.id} is in the VRF of binding ${b.id}`);
        else
          wrong.push(`unknown neighbour ${n.address} is in the VRF of binding ${b.id} (tenant ${b.tenant})`);
      }
    }
    if (st.present) {
      for (const rt of [...(st.importRts ?? []), ...(st.exportRts ?? [])]) {
        const owners = snap.rtTenants.get(rt);
        if (owners !== undefined && !owners.has(b.tenant))
          wrong.push(
            `route target ${rt} of tenant ${[...owners].join(', ')} is on the VRF of binding ${b.id}`,
          );
      }
    }
    if (!st.present) drift.push(`VRF of binding ${b.id} missing on PE ${b.pe}`);
    else {
      const rd = safe(() => canonicalRd(b.rd), b.rd);
      if (st.rd !== rd) drift.push(`RD ${st.rd ?? 'none'} instead of ${rd}`);
      const same = (x: readonly string[] | undefined, y: readonly string[]): boolean =>
        JSON.stringify([...(x ?? [])].sort()) === JSON.stringify(y);
      const imp = safe(() => canonicalRts(b.importRts), [...b.importRts]);
      const exp = safe(() => canonicalRts(b.exportRts), [...b.exportRts]);
      if (!same(st.importRts, imp))
        drift.push(`import route targets ${(st.importRts ?? []).join(' ')} instead of ${imp.join(' ')}`);
      if (!same(st.exportRts, exp))
        drift.push(`export route targets ${(st.exportRts ?? []).join(' ')} instead of ${exp.join(' ')}`);
      if (b.protocol === 'bgp' && !b.dynamic && !st.neighbors.some((n) => addrKey(n.address) === ce))
        drift.push(`neighbour ${b.ceAddress ?? '?'} missing from the VRF`);
      const routes = new Set(st.routes.map((p) => safe(() => canonicalPrefixText(p), p)));
      const missing = safe(() => staticPrefixesOf(spec), []).filter((p) => !routes.has(p));
      if (missing.length > 0) drift.push(`static routes ${missing.join(' ')} missing`);
    }
    return { wrong, drift, ...(victim === undefined ? {} : { victim }) };
  }

  private async checkBinding(
    pass: Pass,
    snap: Snapshot,
    b: WanBinding,
    spec: WanBindingSpec,
    adapter: WanAdapter,
    st: WanBindingStatus,
    wrong: string[],
    drift: string[],
    victim: string | undefined,
  ): Promise<void> {
    const scope = `binding:${b.id}`;
    if (wrong.length === 0 && drift.length === 0) {
      pass.checked.add(scope);
      await this.checkSession(pass, b, st);
      return;
    }
    if (!(await this.stillActive(b))) return;
    try {
      await adapter.provision(spec);
    } catch (e) {
      if (wrong.length > 0) {
        await this.isolate(pass, b, spec, adapter, wrong, msg(e));
        return;
      }
      await this.raise(pass, {
        kind: 'repair-failed',
        severity: 'major',
        scope,
        tenant: b.tenant,
        binding: b.id,
        pe: b.pe,
        message: `${drift.join('; ')}: re-provisioning failed: ${msg(e)}`,
      });
      return;
    }
    if (wrong.length > 0) {
      // one repair; the drift that came with it is part of the same wrong-VRF finding
      const all = [...wrong, ...drift].join('; ');
      this.repaired(pass, { target: scope, action: 'provision', reason: all });
      await this.raise(
        pass,
        {
          kind: 'wrong-vrf',
          severity: 'critical',
          scope,
          detail: 'pe',
          tenant: victim ?? b.tenant,
          binding: b.id,
          pe: b.pe,
          message: `${all}: removed (binding provisioned again)`,
        },
        { event: true },
      );
    } else {
      this.repaired(pass, { target: scope, action: 'provision', reason: drift.join('; ') });
      await this.raise(
        pass,
        {
          kind: 'drift-repaired',
          severity: 'warning',
          scope,
          tenant: b.tenant,
          binding: b.id,
          pe: b.pe,
          message: `${drift.join('; ')}: provisioned again`,
        },
        { event: true },
      );
    }
    // the session is judged again by the next pass, once the repair settled
    const s = await this.alarms.get(alarmId('session-down', scope));
    if (s !== undefined && s.clearedAt === undefined) pass.seen.add(s.id);
  }

  /** The wrong-VRF repair failed: the VRF goes (traffic dropped) and the binding is isolated. */
  private async isolate(
    pass: Pass,
    b: WanBinding,
    spec: WanBindingSpec,
    adapter: WanAdapter,
    wrong: string[],
    why: string,
  ): Promise<void> {
    const scope = `binding:${b.id}`;
    let removed = 'removed from the PE';
    try {
      await adapter.deprovision(spec);
    } catch (e) {
      removed = `could NOT be removed from the PE (${msg(e)})`;
    }
    await this.core.repo.update<WanBinding>(KEYS.owned(b.tenant, 'bindings', b.id), (cur) =>
      cur?.state === 'active' ? { ...cur, state: 'isolated' } : undefined,
    );
    this.repaired(pass, { target: scope, action: 'isolate', reason: wrong.join('; ') });
    await this.raise(
      pass,
      {
        kind: 'wrong-vrf',
        severity: 'critical',
        scope,
        detail: 'pe',
        tenant: b.tenant,
        binding: b.id,
        pe: b.pe,
        message: `${wrong.join('; ')}: repair failed (${why}); binding isolated, its VRF ${removed}`,
      },
      { event: true },
    );
  }

  /** Right before a repair: the binding is still active and unchanged, no operation started on it. */
  private async stillActive(b: WanBinding): Promise<boolean> {
    const cur = await this.core.ownedOne<WanBinding>(b.tenant, 'bindings', b.id);
    if (cur === undefined || cur.state !== 'active' || JSON.stringify(cur) !== JSON.stringify(b))
      return false;
    const t = (await this.core.repo.get<Tenant>(KEYS.tenant(b.tenant)))?.value;
    if (t?.state !== 'active') return false;
    for (const d of await this.core.repo.all<Operation>(KEYS.operations))
      if (UNFINISHED.has(d.value.state) && (d.value.target === b.id || d.value.tenant === b.tenant))
        return false;
    return true;
  }

  private async checkSession(pass: Pass, b: WanBinding, st: WanBindingStatus): Promise<void> {
    if (b.protocol !== 'bgp' && !b.dynamic) return;
    const ce = addrKey(b.ceAddress);
    const up = b.dynamic
      ? st.neighbors.some((n) => n.established)
      : st.neighbors.some((n) => addrKey(n.address) === ce && n.established);
    if (up) return;
    const since = this.graceStart(pass, `session|${b.id}`);
    if (Date.now() - since < this.opts.sessionGraceMs) return;
    const n = st.neighbors.find((x) => addrKey(x.address) === ce);
    await this.raise(pass, {
      kind: 'session-down',
      severity: 'major',
      scope: `binding:${b.id}`,
      tenant: b.tenant,
      binding: b.id,
      pe: b.pe,
      vce: b.vce,
      message: `PE-CE session of binding ${b.id} (${b.ceAddress ?? 'dynamic'} on PE ${b.pe}) is ${n?.state ?? 'down'} for more than ${Math.round(this.opts.sessionGraceMs / 1000)} s`,
    });
  }

  // ------------------------------------------------------------------ agents

  private async checkAgent(pass: Pass, snap: Snapshot, id: string): Promise<void> {
    const scope = `vce:${id}`;
    const v = snap.vces.get(id);
    const docs = snap.agents.get(id) ?? {};
    const { status, config: published } = docs;
    if (v === undefined) {
      await this.checkRemovedAgent(pass, snap, id, docs);
      return;
    }
    const tenant = v.tenant;
    const bindings = [...snap.bindings.values()].filter((b) => b.tenant === tenant);
    const busy =
      snap.busyTenants.has(tenant) ||
      bindings.some((b) => b.vce === id && (b.state === 'provisioning' || b.state === 'deprovisioning')) ||
      bindings.some((b) => b.vce === id && snap.busyBindings.has(b.id));
    const intentDoc = agentConfig({
      vce: v,
      attachments: snap.attachments.filter((a) => a.tenant === tenant && a.vce === id),
      endpoints: snap.endpoints.filter((e) => e.tenant === tenant),
      bindings: bindings.filter((b) => b.vce === id),
      hosts: snap.hosts,
      pes: snap.pes,
    });
    // the published configuration behind the model (a change whose publication was lost)
    if (!busy && published?.value.hash !== sha(JSON.stringify(intentDoc))) {
      if (Date.now() - this.graceStart(pass, `publish|${id}`) >= this.opts.agentGraceMs) {
        try {
          await this.core.publishAgentConfig(tenant, id);
        } catch (e) {
          if (e instanceof ConflictError) return; // someone published meanwhile: judged next pass
          throw e;
        }
        const why = `the configuration published for vCE ${id} differs from the model`;
        this.repaired(pass, { target: scope, action: 'publish', reason: why });
        await this.raise(
          pass,
          {
            kind: 'drift-repaired',
            severity: 'warning',
            scope,
            detail: 'config',
            tenant,
            vce: id,
            message: `${why}: published again`,
          },
          { event: true },
        );
      }
      return;
    }
    if (status === undefined) {
      const since = this.graceStart(pass, `silent|${id}`);
      if (Date.now() - since >= this.opts.agentGraceMs)
        await this.raise(pass, {
          kind: 'agent-stale',
          severity: 'major',
          scope,
          tenant,
          vce: id,
          message: `vCE ${id} has not reported for more than ${Math.round(this.opts.agentGraceMs / 1000)} s (its status lease expired, or its agent never connected)`,
        });
    } else {
      const want = published?.rev ?? 0;
      if (status.configRevision < want) {
        const since = this.graceStart(pass, `behind|${id}`);
        if (Date.now() - since >= this.opts.agentGraceMs)
          await this.raise(pass, {
            kind: 'agent-stale',
            severity: 'major',
            scope,
            tenant,
            vce: id,
            message: `vCE ${id} runs configuration ${status.configRevision}, ${want} was published more than ${Math.round(this.opts.agentGraceMs / 1000)} s ago`,
          });
      }
      if (status.configError !== undefined)
        await this.raise(pass, {
          kind: 'agent-config-error',
          severity: 'major',
          scope,
          tenant,
          vce: id,
          message: `vCE ${id} refused configuration ${status.configRevision}: ${status.configError}`,
        });
      if (status.configRevision >= want && published !== undefined && !busy) {
        const extras = extrasOf(status, intendedContexts(published.value.config));
        if (extras.length > 0) {
          const named = extras.map((x) => this.foreign(snap, tenant, x)).join('; ');
          await this.republish(pass, tenant, id, published);
          await this.raise(
            pass,
            {
              kind: 'wrong-vrf',
              severity: 'critical',
              scope,
              detail: 'agent',
              tenant,
              vce: id,
              message: `vCE ${id} holds what its intent does not: ${named}; configuration published again`,
            },
            { event: true },
          );
        }
      }
    }
    pass.checked.add(scope);
  }

  /** Names the tenant of an attachment an agent reports outside its intent, when it is another's. */
  private foreign(snap: Snapshot, tenant: string, extra: string): string {
    const m = /^interface a-(\S+)/.exec(extra);
    if (m === null) return extra;
    const a = snap.attachments.find((x) => `a-${x.id}`.startsWith(`a-${m[1]!}`) && x.tenant !== tenant);
    return a === undefined ? extra : `${extra} (attachment ${a.id} of tenant ${a.tenant})`;
  }

  /** An agent whose vCE the store no longer has: it must hold no tenant state. */
  private async checkRemovedAgent(pass: Pass, snap: Snapshot, id: string, docs: AgentDocs): Promise<void> {
    const scope = `vce:${id}`;
    if (snap.terminating) return; // a termination is removing vCEs: its residue check decides
    const st = docs.status;
    const holds =
      st === undefined ? [] : st.contexts.filter((c) => c.name !== 'default' || c.interfaces.length > 0);
    if (st !== undefined && holds.length > 0) {
      const what = `vCE ${id} was removed but its agent still holds ${holds.map((c) => `context ${c.name}`).join(', ')}`;
      if (docs.config === undefined || st.configRevision >= docs.config.rev) {
        const rev = await this.core.publishAgentConfig('', id);
        const cur = await this.core.repo.get<AgentConfigDoc>(KEYS.agentConfig(id));
        if (cur !== undefined && rev <= st.configRevision) await this.republish(pass, '', id, cur);
        this.repaired(pass, { target: scope, action: 'publish', reason: what });
        await this.raise(
          pass,
          {
            kind: 'residue',
            severity: 'major',
            scope,
            vce: id,
            message: `${what}: its empty configuration published again`,
          },
          { event: true },
        );
      } else if (Date.now() - this.graceStart(pass, `removed|${id}`) >= this.opts.agentGraceMs) {
        await this.raise(pass, {
          kind: 'residue',
          severity: 'major',
          scope,
          vce: id,
          message: `${what} and has not applied its removal (configuration ${docs.config.rev})`,
        });
      }
    }
    pass.checked.add(scope);
  }

  /**
   * Publishes a vCE's configuration again, as a new revision even when unchanged (the agent
   * applies it with its own diff), at most once per `agentGraceMs` per vCE.
   */
  private async republish(
    pass: Pass,
    tenant: string,
    id: string,
    cur: { value: AgentConfigDoc; rev: number },
  ): Promise<void> {
    const now = Date.now();
    if (now - (this.forced.get(id) ?? 0) < this.opts.agentGraceMs) return;
    this.forced.set(id, now);
    try {
      await this.core.repo.commit({ [KEYS.agentConfig(id)]: cur.rev }, [
        put(KEYS.agentConfig(id), cur.value),
      ]);
    } catch (e) {
      if (!(e instanceof ConflictError)) throw e;
    }
    this.repaired(pass, {
      target: `vce:${id}`,
      action: 'publish',
      reason: `agent of vCE ${id}${tenant === '' ? '' : ` (tenant ${tenant})`} differs from its configuration`,
    });
  }

  // ------------------------------------------------------------------ alarms

  private graceStart(pass: Pass, key: string): number {
    pass.grace.add(key);
    const t = this.since.get(key);
    if (t !== undefined) return t;
    const now = Date.now();
    this.since.set(key, now);
    return now;
  }

  private repaired(pass: Pass, r: Repair): void {
    this.counters.repairs++;
    pass.report.repairs.push(r);
    this.opts.log?.warn(
      { target: r.target, action: r.action, reason: r.reason },
      'reconciler repaired drift',
    );
  }

  private async raise(pass: Pass, a: AlarmInput, opts: { event?: boolean } = {}): Promise<void> {
    const { alarm, raised } = await this.alarms.raise(a, opts);
    pass.seen.add(alarm.id);
    if (!raised) return;
    this.counters.alarmsRaised++;
    pass.report.raised.push(alarm.id);
    this.opts.log?.warn(
      {
        alarm: alarm.id,
        kind: alarm.kind,
        severity: alarm.severity,
        count: alarm.count,
        message: alarm.message,
      },
      'alarm raised',
    );
  }

  private async sweep(pass: Pass, snap: Snapshot, vceIds: Set<string>): Promise<void> {
    const gone = (scope: string): boolean => {
      const [kind, id = ''] = scope.split(/:(.*)/s);
      if (kind === 'pe') return !snap.pes.has(id);
      if (kind === 'binding') return !snap.bindings.has(id);
      if (kind === 'vce') return !vceIds.has(id);
      return false;
    };
    for (const a of await this.alarms.list({ active: true })) {
      if (pass.seen.has(a.id)) continue;
      if (!pass.checked.has(a.scope) && !gone(a.scope)) continue;
      if (await this.alarms.clear(a.id)) {
        this.counters.alarmsCleared++;
        pass.report.cleared.push(a.id);
        this.opts.log?.info({ alarm: a.id, kind: a.kind }, 'alarm cleared');
      }
    }
  }
}
