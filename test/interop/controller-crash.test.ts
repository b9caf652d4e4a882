/**
 * Crash tests of the controller's durable workflows (draft §7.2.1): `vce controller` runs as a
 * child process on a SQLite file and kills itself with SIGKILL right before one step of an
 * operation (`VCE_CRASH_BEFORE_STEP`); it is started again, without the fault, on the same file
 * and port, and the operation must end with the tenant fully provisioned or fully absent — never
 * half-bound. Every step of the bind, unbind and tenant termination flows is a crash point.
 *
 *   gobgpd (AS 65000) PE 100.64.0.(4k+1) <── eBGP in VRF vce-<binding> ── vCE 100.64.0.(4k+2)
 *
 * The PE-CE link addresses come from the controller's IPAM (the first /30s of its link pool
 * 100.64.0.0/16), so allocation and release are part of every flow; the addresses are added to
 * `lo` (gobgpd refuses 127/8 next hops) and removed afterwards. The vCE agents run in this process
 * (`ControllerClient`) and outlive every controller: they reconnect their configuration stream to
 * the restarted controller on the same port. One gobgpd for the file; the cases of a group run
 * one after the other:
 * - bind: a tenant per case (created, bound with the crash, terminated), one vCE and agent reused;
 * - unbind: one tenant, one vCE and agent, a context and binding per case, all bound first; each
 *   case unbinds its own, the others must stay bound;
 * - terminate: a tenant per case, all bound first (a vCE, hence an agent, each: a vCE belongs to
 *   one tenant); each case terminates its own, the others must stay bound.
 * Before each crash the controller stops (SIGTERM, agents connected) and the SQLite file is read:
 * only the tenants and bindings that should exist own anything (objects, indexes, IPAM), nothing
 * is quarantined and no operation is unfinished; the file is read again once the crashed
 * controller is dead (the interrupted operation stopped right before its step, the rest as
 * before).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { ControllerClient } from '../../src/agent/controller-client.ts';
import type { Operation, WanBinding } from '../../src/controller/model.ts';
import { newOperation } from '../../src/controller/workflows.ts';
import { freePort, freeUdpPort, requireDaemon, waitFor } from './harness/common.ts';
import { startControllerProcess, type ControllerProcess } from './harness/controller.ts';
import { startGobgp, type GobgpDaemon } from './harness/gobgp.ts';
import { sh } from './harness/netns.ts';

// The flows as the controller defines them: a step added to a flow gets its crash case.
const stepsOf = (kind: Operation['kind']): string[] =>
  newOperation(kind, 'x', 'x', kind === 'bind' ? 'push-inter-domain' : undefined).steps.map((s) => s.name);
const BIND = stepsOf('bind');
const UNBIND = stepsOf('unbind');
const TERMINATE = stepsOf('terminate-tenant');

const TOKEN = 'operator-secret-for-crash-tests-0123456789';
const HOST = '127.0.91.1'; // the vCEs' host underlay (VXLAN data plane)
/** The link /30s the IPAM hands out first (PE .1, CE .2 of each): one per binding of a group. */
const LINKS = Array.from({ length: Math.max(UNBIND.length, TERMINATE.length) }, (_, k) => ({
  pe: `100.64.0.${4 * k + 1}`,
  ce: `100.64.0.${4 * k + 2}`,
}));
const DONE = new Set(['succeeded', 'failed', 'rolled-back']);

const ci = process.env['CI'] !== undefined;
const root = process.getuid?.() === 0;
// 100.64.0.0/10 in use on this machine (carrier-grade NAT, Tailscale...): our /32s on lo would
// take those addresses away from it.
const cgnat = Object.entries(networkInterfaces()).some(
  ([name, addrs]) =>
    name !== 'lo' &&
    (addrs ?? []).some(
      (a) => a.family === 'IPv4' && /^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./.test(a.address),
    ),
);
const missing = [
  root ? undefined : 'root (addresses on lo)',
  requireDaemon('gobgpd') ? undefined : 'gobgpd',
  requireDaemon('gobgp') ? undefined : 'gobgp',
  cgnat ? '100.64.0.0/10 free on this machine' : undefined,
].filter((m): m is string => m !== undefined);
if (ci && missing.length > 0) throw new Error(`controller crash tests need ${missing.join(', ')}`);

interface Res {
  status: number;
  body: Record<string, unknown>;
}

interface BindingCase {
  readonly tenant: string;
  readonly id: string;
  readonly vce: string;
  readonly context: string;
  readonly wanVrf: string;
  readonly rd: string;
  readonly vlan: number;
  /** The vCE's prefix on the attachment, which the PE VRF must learn. */
  readonly prefix: string;
}

interface VceSpec {
  readonly id: string;
  readonly asn: number;
  readonly routerId: string;
  readonly vxlanPort: number;
}

interface AgentStatusView {
  configRevision: number;
  contexts: { name: string; interfaces: string[] }[];
  bgp: { vrf: string; peer: string; state: string }[];
}

/** Interface name the agent gets for a binding's PE-CE link (agent-config.ts: 15 characters). */
const linkIf = (binding: string): string => `w-${binding}`.slice(0, 15);

describe.skipIf(missing.length > 0)('controller crash at every workflow step (SQLite, gobgpd PE)', () => {
  let dir: string;
  let dbFile: string;
  let port: number;
  let pePort: number;
  let gobgp: GobgpDaemon;
  /** The controller without fault injection (the one running between cases). */
  let ctl: ControllerProcess | undefined;
  /** The last controller started with a crash point (for diagnostics). */
  let crashed: ControllerProcess | undefined;
  const agents = new Map<string, ControllerClient>();
  const vces = new Map<string, VceSpec>();
  /** What must exist in the store now: tenants, and bindings (id -> tenant). */
  const live = { tenants: new Set<string>(), bindings: new Map<string, string>() };
  const timings: string[] = [];
  const url = (): string => `http://127.0.0.1:${port}`;

  const api = async (method: string, path: string, body?: unknown): Promise<Res> => {
    const res = await fetch(`${url()}${path}`, {
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
  const ok = async (method: string, path: string, body?: unknown, status = 201): Promise<Res> => {
    const r = await api(method, path, body);
    expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBe(status);
    return r;
  };

  const startNormal = async (): Promise<void> => {
    ctl = await startControllerProcess({ file: dbFile, port, token: TOKEN });
    mark('restart');
    // a restarted single-writer controller leads (and resumes operations) at once
    expect(ctl.leader, 'the restarted controller leads the workflows').toBe(true);
  };

  /** Stops the controller: it must go on SIGTERM, with agents connected to its stream. */
  const stopNormal = async (where: string): Promise<void> => {
    const c = ctl!;
    ctl = undefined;
    const exit = await c.stop();
    mark('stop');
    expect(exit, `${where}: the controller stops on SIGTERM\n${c.output()}`).toEqual({
      code: 0,
      signal: null,
    });
  };

  const stopAndCheck = async (where: string): Promise<void> => {
    await stopNormal(where);
    checkStore(readStore(), where);
  };

  /** Every key of the store file (read while no controller holds it). */
  const readStore = (): Map<string, string> => {
    const db = new Database(dbFile, { fileMustExist: true });
    try {
      const rows = db.prepare('SELECT key, value FROM kv').all() as { key: Buffer | string; value: string }[];
      return new Map(rows.map((r) => [Buffer.from(r.key).toString('utf8'), r.value]));
    } finally {
      db.close();
    }
  };

  /**
   * Only live tenants and bindings own anything (objects, indexes, IPAM: one link /30 per live
   * binding), nothing is quarantined and no operation is unfinished — except what the operation
   * `inFlight` (interrupted by a crash) is working on.
   */
  const checkStore = (
    kv: Map<string, string>,
    where: string,
    inFlight?: { op: string; tenant?: string; binding?: string },
  ): void => {
    const problems: string[] = [];
    const links = new Map<string, number>();
    const busy = (tenant: string | undefined, binding?: string): boolean =>
      (tenant !== undefined && tenant === inFlight?.tenant) ||
      (binding !== undefined && binding === inFlight?.binding);
    for (const [k, v] of kv) {
      const tenantKey = /^\/vce\/v1\/(?:tenants|quarantine\/tenant)\/([^/]+)$/.exec(k)?.[1];
      const owned = /^\/vce\/v1\/t\/([^/]+)\/([^/]+)\/(.+)$/.exec(k);
      if (tenantKey !== undefined) {
        if (busy(tenantKey)) continue;
        if (!live.tenants.has(tenantKey) || k.includes('/quarantine/')) problems.push(k);
      } else if (owned !== null) {
        const binding = owned[2] === 'bindings' ? owned[3] : undefined;
        if (busy(owned[1], binding)) continue;
        if (!live.tenants.has(owned[1]!) || (binding !== undefined && !live.bindings.has(binding)))
          problems.push(k);
      } else if (k.startsWith('/vce/v1/index/')) {
        const tenant = JSON.parse(v) as string;
        const binding = k.startsWith('/vce/v1/index/bindings/') ? k.split('/')[5] : undefined;
        if (busy(tenant, binding)) continue;
        if (!live.tenants.has(tenant) || (binding !== undefined && !live.bindings.has(binding)))
          problems.push(`${k} -> ${v}`);
      } else if (k.startsWith('/vce/v1/ipam/')) {
        const a = JSON.parse(v) as { owner: string; tenant: string };
        const link = k.startsWith('/vce/v1/ipam/link/');
        if (busy(a.tenant, link ? a.owner : undefined)) continue;
        if (!live.tenants.has(a.tenant) || (link && !live.bindings.has(a.owner)))
          problems.push(`${k} -> ${v}`);
        if (link) links.set(a.owner, (links.get(a.owner) ?? 0) + 1);
      } else if (k.startsWith('/vce/v1/quarantine/')) problems.push(k);
      else if (k.startsWith('/vce/v1/operations/')) {
        const op = JSON.parse(v) as Operation;
        if (op.id !== inFlight?.op && op.state !== 'succeeded' && op.state !== 'rolled-back')
          problems.push(`operation ${op.kind} ${op.target}: ${op.state} ${op.error ?? ''}`);
      }
    }
    for (const [id, tenant] of live.bindings)
      if (!busy(tenant, id) && links.get(id) !== 1)
        problems.push(`binding ${id} holds ${links.get(id) ?? 0} link /30s, not 1`);
    expect(problems, `store residue ${where}`).toEqual([]);
  };

  /**
   * Stops the controller running until now (SIGTERM; the store must be consistent then), and runs
   * `drive` on one that SIGKILLs itself before `step`. Once it is dead: the operation in the file
   * stopped right before `step`, and the rest of the store is consistent.
   */
  const crashAt = async (
    step: string,
    drive: () => Promise<Res>,
    find: (op: Operation) => boolean,
    target: { tenant?: string; binding?: string },
  ): Promise<Operation> => {
    await stopAndCheck(`before the crash before ${step}`);
    crashed = await startControllerProcess({ file: dbFile, port, token: TOKEN, crashBeforeStep: step });
    mark('start-crash');
    expect(crashed.leader).toBe(true);
    let opId: string | undefined;
    try {
      const r = await drive();
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      opId = ((r.body['operation'] as { id?: string } | undefined)?.id ?? r.body['id']) as string;
    } catch (e) {
      // the controller may die before its 202 is on the wire: the operation is in the store
      if (!(e instanceof TypeError)) throw e;
    }
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      crashed.exited,
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), 30_000);
      }),
    ]);
    clearTimeout(timer);
    mark('crashed');
    expect(exit, `the controller dies by SIGKILL before ${step}\n${crashed.output()}`).toEqual({
      code: null,
      signal: 'SIGKILL',
    });
    // the file as the crash left it
    const kv = readStore();
    const ops = [...kv]
      .filter(([k]) => k.startsWith('/vce/v1/operations/'))
      .map(([, v]) => JSON.parse(v) as Operation);
    const op = ops.find((o) => (opId === undefined ? find(o) : o.id === opId));
    expect(op, `operation in the store after the crash before ${step}`).toBeDefined();
    const at = op!.steps.findIndex((s) => s.name === step);
    expect(
      op!.steps.map((s) => `${s.name}:${s.state}`),
      'steps before the crash point done, the crash point running',
    ).toEqual(op!.steps.map((s, i) => `${s.name}:${i < at ? 'done' : i === at ? 'running' : 'pending'}`));
    checkStore(kv, `at the crash before ${op!.kind}/${step}`, { op: op!.id, ...target });
    return op!;
  };

  /** Polls the operation until it ends (or fails the test with its steps). */
  const settle = async (id: string, timeoutMs = 30_000): Promise<Operation> => {
    const op = await waitFor(
      async () => {
        const r = await api('GET', `/api/v1/operations/${id}`);
        const op = r.body as unknown as Operation;
        return DONE.has(op.state) ? op : undefined;
      },
      {
        what: `operation ${id} to end`,
        timeoutMs,
        intervalMs: 100,
        describe: async () => JSON.stringify((await api('GET', `/api/v1/operations/${id}`)).body),
      },
    );
    mark(`op-${op.kind}`);
    return op;
  };

  const agentStatus = (vce: string): AgentStatusView =>
    agents.get(vce)!.status() as unknown as AgentStatusView;
  const waitAgent = (vce: string, what: string, holds: (st: AgentStatusView) => boolean): Promise<true> =>
    waitFor(() => Promise.resolve(holds(agentStatus(vce)) ? true : undefined), {
      what,
      timeoutMs: 10_000,
      intervalMs: 100,
      describe: () => JSON.stringify(agentStatus(vce)),
    });

  const peVrfs = async (): Promise<string[]> =>
    ((JSON.parse((await gobgp.cli('vrf', '-j')).trim() || 'null') as { name: string }[] | null) ?? []).map(
      (v) => v.name,
    );
  const peNeighbors = async (): Promise<{ address: string; vrf: string }[]> =>
    (
      (JSON.parse((await gobgp.cli('neighbor', '-j')).trim() || 'null') as
        { conf?: { neighbor_address?: string; vrf?: string } }[] | null) ?? []
    ).map((p) => ({ address: p.conf?.neighbor_address ?? '', vrf: p.conf?.vrf ?? '' }));

  // ------------------------------------------------------------------ tenants and bindings

  const createTenant = async (tenant: string, vce: VceSpec, contexts: BindingCase[]): Promise<void> => {
    await ok('POST', '/api/v1/tenants', { id: tenant, name: tenant });
    live.tenants.add(tenant);
    await ok('POST', `/api/v1/tenants/${tenant}/vces`, {
      id: vce.id,
      host: 'crash-host',
      asn: vce.asn,
      routerId: vce.routerId,
      contexts: contexts.map((c) => ({ name: c.context })),
      vxlanPort: vce.vxlanPort,
    });
    for (const c of contexts)
      await ok('POST', `/api/v1/tenants/${tenant}/attachments`, {
        id: `${c.id}-a`,
        vce: vce.id,
        context: c.context,
        addresses: [c.prefix.replace('.0/24', '.1/24')],
      });
  };

  const bindingBody = (b: BindingCase): Record<string, unknown> => ({
    id: b.id,
    vce: b.vce,
    context: b.context,
    pe: 'crash-pe',
    wanVrf: b.wanVrf,
    rd: b.rd,
    importRts: [b.rd],
    exportRts: [b.rd],
    peAttachment: { kind: 'vlan', id: b.vlan },
  });

  /** Fully provisioned: active, addresses from the link pool, PE VRF with the prefix, session up. */
  const expectBound = async (b: BindingCase): Promise<void> => {
    const r = await ok('GET', `/api/v1/tenants/${b.tenant}/bindings/${b.id}`, undefined, 200);
    const got = r.body as unknown as WanBinding;
    expect(got.state).toBe('active');
    const link = LINKS.find((l) => l.pe === got.peAddress && l.ce === got.ceAddress);
    expect(link, `${b.id}: link ${got.peAddress}-${got.ceAddress} is one of the first /30s`).toBeDefined();
    const vrf = `vce-${b.id}`;
    expect(await peVrfs()).toContain(vrf);
    expect(await peNeighbors()).toContainEqual({ address: got.ceAddress, vrf });
    await gobgp.waitEstablished(got.ceAddress!, 10_000);
    await waitFor(
      async () => ((await gobgp.cli('vrf', vrf, 'rib', '-a', 'ipv4')).includes(b.prefix) ? true : undefined),
      { what: `${b.prefix} in PE VRF ${vrf}`, timeoutMs: 10_000, intervalMs: 100 },
    );
    await waitAgent(b.vce, `agent ${b.vce} runs ${b.context} with the session to ${got.peAddress}`, (st) => {
      const ctx = st.contexts.find((c) => c.name === b.context);
      const peer = st.bgp.find((n) => n.vrf === b.context && n.peer === got.peAddress);
      return ctx?.interfaces.includes(linkIf(b.id)) === true && peer?.state.toLowerCase() === 'established';
    });
    mark('bound');
  };

  /** Fully absent: no binding in the API, nothing on the PE or on the agent for it. */
  const expectUnbound = async (b: BindingCase, tenantGone = false): Promise<void> => {
    const r = await api('GET', `/api/v1/tenants/${b.tenant}/bindings/${b.id}`);
    expect(r.status, JSON.stringify(r.body)).toBe(404);
    const vrf = `vce-${b.id}`;
    expect(await peVrfs()).not.toContain(vrf);
    expect((await peNeighbors()).filter((n) => n.vrf === vrf)).toEqual([]);
    await waitAgent(
      b.vce,
      `agent ${b.vce} holds nothing of ${tenantGone ? `tenant ${b.tenant}` : `binding ${b.id}`}`,
      (st) =>
        !st.contexts.some((c) => c.interfaces.includes(linkIf(b.id))) &&
        (tenantGone
          ? st.contexts.every((c) => c.name === 'default' && c.interfaces.length === 0)
          : !st.bgp.some((n) => n.vrf === b.context)),
    );
  };

  const terminate = async (tenant: string, bindings: BindingCase[]): Promise<void> => {
    const r = await ok('DELETE', `/api/v1/tenants/${tenant}`, undefined, 202);
    const op = await settle(r.body['id'] as string);
    expect(op.state, JSON.stringify(op.steps)).toBe('succeeded');
    await expectTenantGone(tenant, bindings);
  };

  const expectTenantGone = async (tenant: string, bindings: BindingCase[]): Promise<void> => {
    expect((await api('GET', `/api/v1/tenants/${tenant}`)).status).toBe(404);
    for (const b of bindings) await expectUnbound(b, true);
    live.tenants.delete(tenant);
    for (const b of bindings) live.bindings.delete(b.id);
  };

  /** Diagnostics of a failed case: both controllers' logs. */
  const diagnostics = (): void => {
    onTestFailed(() => {
      console.error(
        `--- crash controller ---\n${crashed?.output() ?? '(none)'}\n--- controller ---\n${ctl?.output() ?? '(stopped)'}`,
      );
    });
  };

  let phases: string[] = [];
  let phaseAt = 0;
  const mark = (what: string): void => {
    const now = Date.now();
    phases.push(`${what} ${now - phaseAt}`);
    phaseAt = now;
  };
  /** Runs a case (after a failed one: from a running controller without fault). */
  const timed = async (name: string, f: () => Promise<void>): Promise<void> => {
    diagnostics();
    if (crashed?.alive() === true) await crashed.stop();
    if (ctl === undefined) await startNormal();
    const t0 = Date.now();
    phases = [];
    phaseAt = t0;
    await f();
    timings.push(`${name} ${Date.now() - t0} ms (${phases.join(', ')})`);
  };

  // ------------------------------------------------------------------ setup

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vce-crash-'));
    dbFile = join(dir, 'ctl.db');
    for (const a of LINKS.flatMap((l) => [l.pe, l.ce])) {
      await sh('ip', ['addr', 'del', `${a}/32`, 'dev', 'lo']).catch(() => undefined);
      await sh('ip', ['addr', 'add', `${a}/32`, 'dev', 'lo']);
    }
    pePort = await freePort('0.0.0.0');
    gobgp = await startGobgp({
      asn: 65000,
      routerId: '192.0.2.100',
      listenAddress: '0.0.0.0',
      listenPort: pePort,
      neighbors: [],
    });
    port = await freePort();
    await startNormal();
    await ok('POST', '/api/v1/hosts', { id: 'crash-host', underlay: HOST });
    await ok('POST', '/api/v1/pes', {
      id: 'crash-pe',
      asn: 65000,
      adapter: { kind: 'gobgp', host: '127.0.0.1', port: gobgp.config.grpcPort },
      bgpPort: pePort,
    });
    // one vCE (and agent) per group; a vCE id is free again once its tenant is terminated
    for (const [i, id] of ['cb-vce', 'cu-vce', ...TERMINATE.map((_, k) => `ct${k}-vce`)].entries()) {
      vces.set(id, {
        id,
        asn: 65101 + i,
        routerId: `192.0.2.${101 + i}`,
        vxlanPort: await freeUdpPort(HOST),
      });
      const tok = await ok('POST', '/api/v1/tokens', { name: id, role: 'agent', scope: id });
      const client = new ControllerClient({
        url: url(),
        token: tok.body['token'] as string,
        id,
        log: pino({ level: 'silent' }),
        statusIntervalMs: 500,
      });
      client.start();
      agents.set(id, client);
    }
  });

  afterAll(async () => {
    for (const a of agents.values()) await a.stop();
    await ctl?.stop();
    if (crashed?.alive() === true) await crashed.stop();
    await gobgp?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    for (const a of LINKS.flatMap((l) => [l.pe, l.ce]))
      await sh('ip', ['addr', 'del', `${a}/32`, 'dev', 'lo']).catch(() => undefined);
    console.log(`controller crash tests:\n  ${timings.join('\n  ')}`);
  });

  // ------------------------------------------------------------------ bind

  const bindCase = (step: string, i: number): BindingCase => ({
    tenant: `cb-${step}`,
    id: `cb-${step}-b`,
    vce: 'cb-vce',
    context: 'red',
    wanVrf: `CB-${i}`,
    rd: `65000:${710 + i}`,
    vlan: 710 + i,
    prefix: `10.71.${i}.0/24`,
  });

  it.each(BIND.map((s, i) => [s, i] as const))(
    'bind, crash before %s: the tenant ends fully bound or fully absent',
    { timeout: 60_000 },
    async (step, i) => {
      await timed(`bind/${step}`, async () => {
        const b = bindCase(step, i);
        await createTenant(b.tenant, vces.get(b.vce)!, [b]);
        const op = await crashAt(
          step,
          () => api('POST', `/api/v1/tenants/${b.tenant}/bindings`, bindingBody(b)),
          (o) => o.kind === 'bind' && o.target === b.id,
          { binding: b.id },
        );
        await startNormal();
        const done = await settle(op.id);
        expect(['succeeded', 'rolled-back'], JSON.stringify(done.steps)).toContain(done.state);
        if (done.state === 'succeeded') {
          live.bindings.set(b.id, b.tenant);
          await expectBound(b);
        } else {
          // nothing left: API, PE, agent now; the store (IPAM) once the controller is down
          await expectUnbound(b);
          await stopAndCheck(`bind/${step} rolled back`);
          await startNormal();
        }
        await terminate(b.tenant, [b]);
      });
    },
  );

  // ------------------------------------------------------------------ unbind

  describe('unbind', () => {
    const tenant = 'cu';
    const cases = UNBIND.map((step, i): BindingCase => ({
      tenant,
      id: `cu-${step}`,
      vce: 'cu-vce',
      context: `c${i}`,
      wanVrf: `CU-${i}`,
      rd: `65000:${720 + i}`,
      vlan: 720 + i,
      prefix: `10.72.${i}.0/24`,
    }));

    beforeAll(async () => {
      if (ctl === undefined) await startNormal();
      await createTenant(tenant, vces.get('cu-vce')!, cases);
      const ops = await Promise.all(
        cases.map(async (b) => {
          const r = await ok('POST', `/api/v1/tenants/${tenant}/bindings`, bindingBody(b), 202);
          return (r.body['operation'] as { id: string }).id;
        }),
      );
      for (const [k, id] of ops.entries()) {
        const op = await settle(id);
        expect(op.state, JSON.stringify(op.steps)).toBe('succeeded');
        live.bindings.set(cases[k]!.id, tenant);
      }
      for (const b of cases) await expectBound(b);
    }, 60_000);

    it.each(cases.map((b, i) => [UNBIND[i]!, b] as const))(
      'unbind, crash before %s: the binding ends fully absent, the others stay bound',
      { timeout: 60_000 },
      async (step, b) => {
        await timed(`unbind/${step}`, async () => {
          const op = await crashAt(
            step,
            () => api('DELETE', `/api/v1/tenants/${tenant}/bindings/${b.id}`),
            (o) => o.kind === 'unbind' && o.target === b.id,
            { binding: b.id },
          );
          await startNormal();
          const done = await settle(op.id);
          expect(done.state, JSON.stringify(done.steps)).toBe('succeeded');
          live.bindings.delete(b.id);
          await expectUnbound(b);
          // the tenant's other bindings are untouched
          const left = (await ok('GET', `/api/v1/tenants/${tenant}/bindings`, undefined, 200)).body[
            'items'
          ] as WanBinding[];
          expect(left.map((x) => `${x.id}:${x.state}`).sort()).toEqual(
            [...live.bindings]
              .filter(([, t]) => t === tenant)
              .map(([id]) => `${id}:active`)
              .sort(),
          );
        });
      },
    );

    afterAll(async () => {
      if (ctl === undefined) await startNormal();
      await terminate(tenant, cases);
    }, 60_000);
  });

  // ------------------------------------------------------------------ terminate

  describe('terminate', () => {
    // a tenant per case, all bound first (a vCE, hence an agent, each: a vCE belongs to one tenant)
    const cases = TERMINATE.map((step, i): BindingCase => ({
      tenant: `ct-${step}`,
      id: `ct-${step}-b`,
      vce: `ct${i}-vce`,
      context: 'red',
      wanVrf: `CT-${i}`,
      rd: `65000:${730 + i}`,
      vlan: 730 + i,
      prefix: `10.73.${i}.0/24`,
    }));

    beforeAll(async () => {
      if (ctl === undefined) await startNormal();
      for (const b of cases) await createTenant(b.tenant, vces.get(b.vce)!, [b]);
      const ops = await Promise.all(
        cases.map(async (b) => {
          const r = await ok('POST', `/api/v1/tenants/${b.tenant}/bindings`, bindingBody(b), 202);
          return (r.body['operation'] as { id: string }).id;
        }),
      );
      for (const [k, id] of ops.entries()) {
        const op = await settle(id);
        expect(op.state, JSON.stringify(op.steps)).toBe('succeeded');
        live.bindings.set(cases[k]!.id, cases[k]!.tenant);
      }
      for (const b of cases) await expectBound(b);
    }, 60_000);

    it.each(cases.map((b, i) => [TERMINATE[i]!, b] as const))(
      'terminate, crash before %s: nothing of the tenant is left anywhere, the others stay bound',
      { timeout: 60_000 },
      async (step, b) => {
        await timed(`terminate/${step}`, async () => {
          const op = await crashAt(
            step,
            () => api('DELETE', `/api/v1/tenants/${b.tenant}`),
            (o) => o.kind === 'terminate-tenant' && o.target === b.tenant,
            { tenant: b.tenant },
          );
          await startNormal();
          const done = await settle(op.id);
          expect(done.state, JSON.stringify(done.steps)).toBe('succeeded');
          await expectTenantGone(b.tenant, [b]);
          // the tenants not terminated yet are untouched
          for (const [id, tenant] of live.bindings) {
            const r = await ok('GET', `/api/v1/tenants/${tenant}/bindings/${id}`, undefined, 200);
            expect(r.body['state'], id).toBe('active');
          }
        });
      },
    );
  });

  it('the store holds nothing of any tenant once every case has ended', async () => {
    if (ctl === undefined) await startNormal();
    await stopAndCheck('after every case');
    expect(live.tenants.size + live.bindings.size).toBe(0);
  });
});
