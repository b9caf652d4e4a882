/**
 * The controller's REST API in process (SQLite on a temp file, requests over HTTP to `ctl.url`):
 * the authorization matrix of every role, input validation that names the field and the rule and
 * leaves the store untouched, ETag / If-Match, Idempotency-Key, the audit log, paging, the
 * agents' configuration stream (server-sent events) and the termination of a tenant.
 *
 * No test reaches a PE: every controller gets a `makeAdapter` that records the call and throws,
 * and each block checks that it was never called. Bindings that must exist (to be read, or to
 * own a WAN VRF) are written to the store directly, without an operation.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startController, type RunningController } from '../../src/controller/run.ts';
import {
  KEYS,
  type AuditEntry,
  type Operation,
  type Tenant,
  type WanBinding,
} from '../../src/controller/model.ts';
import { put } from '../../src/controller/repo.ts';
import { newOperation } from '../../src/controller/workflows.ts';

type Json = Record<string, unknown>;

interface Reply<T = Json> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
}

interface Harness {
  readonly ctl: RunningController;
  /** PEs a WAN adapter was asked for (must stay empty). */
  readonly peCalls: string[];
  /** `token`: a bearer secret; null = no Authorization header. Defaults to the operator. */
  req<T = Json>(
    method: string,
    path: string,
    body?: unknown,
    token?: string | null,
    headers?: Record<string, string>,
  ): Promise<Reply<T>>;
  /** Creates a token (operator) and returns its secret. */
  token(role: string, scope?: string, name?: string): Promise<string>;
  /** Every key under /vce/v1/ except the audit log, with its modRevision. */
  snapshot(): Promise<Map<string, number>>;
  stop(): Promise<void>;
}

const OPERATOR = 'operator-secret-for-unit-tests-0123456789';

async function startHarness(opts: { runner?: boolean; statusLeaseSeconds?: number } = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'vce-ctl-api-'));
  const peCalls: string[] = [];
  const ctl = await startController({
    store: { kind: 'sqlite', file: join(dir, 'ctl.db') },
    listen: { host: '127.0.0.1', port: 0 },
    operatorToken: OPERATOR,
    logLevel: 'silent',
    statusLeaseSeconds: opts.statusLeaseSeconds,
    workflow: { waitTimeoutMs: 60_000, retryMs: 50 },
    makeAdapter: (pe) => {
      peCalls.push(pe.id);
      throw new Error(`unit test: no PE may be reached (asked for ${pe.id})`);
    },
  });
  if (opts.runner === false) ctl.runner.stop();
  const req = async <T = Json>(
    method: string,
    path: string,
    body?: unknown,
    token: string | null = OPERATOR,
    headers: Record<string, string> = {},
  ): Promise<Reply<T>> => {
    const res = await fetch(`${ctl.url}${path}`, {
      method,
      headers: {
        ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: (text === '' ? {} : JSON.parse(text)) as T };
  };
  return {
    ctl,
    peCalls,
    req,
    async token(role, scope, name = `${role}-${scope ?? 'any'}`) {
      const r = await req<{ token: string }>('POST', '/api/v1/tokens', { name, role, scope });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return r.body.token;
    },
    async snapshot() {
      const all = await ctl.core.kv.range(KEYS.root);
      return new Map(
        all.entries.filter((e) => !e.key.startsWith(KEYS.audits)).map((e) => [e.key, e.modRevision]),
      );
    },
    async stop() {
      await ctl.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Fails the test on a status other than `want`, showing the answer. */
async function ok<T = Json>(p: Promise<Reply<T>>, want: number): Promise<Reply<T>> {
  const r = await p;
  expect(r.status, `${JSON.stringify(r.body)}`).toBe(want);
  return r;
}

/** A binding as the API stores it, written without an operation (so no workflow reaches a PE). */
async function seedBinding(
  h: Harness,
  b: { tenant: string; id: string; vce: string; context: string; pe: string; wanVrf: string },
): Promise<void> {
  const binding: WanBinding = {
    ...b,
    mode: 'push-inter-domain',
    rd: '65000:1',
    importRts: ['65000:1'],
    exportRts: ['65000:1'],
    protocol: 'bgp',
    dynamic: false,
    peAttachment: { kind: 'vlan', id: 100 },
    bfd: false,
    staticPrefixes: [],
    state: 'active',
  };
  await h.ctl.core.repo.commit({}, [
    put(KEYS.owned(b.tenant, 'bindings', b.id), binding),
    put(KEYS.index('bindings', b.id), b.tenant),
    put(KEYS.index('vrf', `${b.pe}|${b.wanVrf}`), b.tenant),
  ]);
}

const vceBody = (id: string, host = 'h1', contexts = ['red']): Json => ({
  id,
  host,
  asn: 65101,
  routerId: '192.0.2.62',
  contexts: contexts.map((name) => ({ name })),
});
const bindingBody = (id: string, vce: string, wanVrf = 'VRF-X'): Json => ({
  id,
  vce,
  context: 'red',
  pe: 'pe1',
  wanVrf,
  rd: '65000:7',
  importRts: ['65000:7'],
  exportRts: ['65000:7'],
  peAttachment: { kind: 'vlan', id: 70 },
});
const agentStatus = (configRevision: number, contexts: { name: string; interfaces: string[] }[]): Json => ({
  configRevision,
  contexts: contexts.map((c) => ({ ...c, fibSize: 0 })),
  bgp: [],
  bfd: [],
  counters: {},
});

// ================================================================================================
// 1. Authorization matrix
// ================================================================================================

const WHO = ['operator', 'tenantA', 'tenantB', 'agentX', 'crossDomain', 'noToken', 'unknownToken'] as const;
type Who = (typeof WHO)[number];
/** Short form of each caller, used in the ids a row creates so every cell touches its own object. */
const SHORT: Record<Who, string> = {
  operator: 'op',
  tenantA: 'ta',
  tenantB: 'tb',
  agentX: 'ag',
  crossDomain: 'xd',
  noToken: 'no',
  unknownToken: 'un',
};

interface MatrixRow {
  readonly method: string;
  /** `{s}` is replaced by the caller's short form. */
  readonly path: string;
  readonly body?: (s: string) => unknown;
  /** Run with the operator token before the cell (e.g. create the object the cell deletes). */
  readonly setup?: (h: Harness, s: string) => Promise<void>;
  /** operator, tenant A, tenant B, agent of vCE X, cross-domain. No / unknown token: always 401. */
  readonly expect: readonly [number, number, number, number, number];
}

const mk = (path: string, body: (s: string) => Json) => async (h: Harness, s: string) => {
  await ok(h.req('POST', path, body(s)), 201);
};
const attachmentBody = (id: string, n: number): Json => ({
  id,
  vce: 'vx',
  context: 'red',
  vni: 20000 + n,
  addresses: [`10.9.${n}.1/24`],
});
const ATT_N: Record<string, number> = { op: 1, ta: 2, tb: 3, ag: 4, xd: 5, no: 6, un: 7 };
const endpointBody = (id: string): Json => ({
  id,
  name: id,
  mac: '02:00:00:00:00:01',
  addresses: ['10.1.1.10'],
  host: 'h1',
  attachment: 'ax',
});

/*
 * Tenant A = "alpha" (vCE vx, attachment ax, endpoint ex, binding bx, one operation), tenant B =
 * "bravo" (vCE vy). The agent token is scoped to vCE vx. 404 in the tenant B column is tenant A's
 * object answering as if absent; 403 is "this role may never do this", whatever the tenant.
 * Binding creation is checked with a body whose vCE does not exist: a role that may create it gets
 * past authorization to the 400 of validation (a real binding would start a workflow to a PE).
 */
// prettier-ignore
const MATRIX: readonly MatrixRow[] = [
  //                                                                                oper tenA tenB agtX xdom
  { method: 'POST',   path: '/api/v1/tokens', body: (s) => ({ name: `t-${s}`, role: 'tenant', scope: 'alpha' }),
                                                                           expect: [201, 403, 403, 403, 403] },
  { method: 'GET',    path: '/api/v1/audit',                               expect: [200, 403, 403, 403, 403] },
  { method: 'POST',   path: '/api/v1/hosts', body: (s) => ({ id: `h-${s}`, underlay: '192.0.2.9' }),
                                                                           expect: [201, 403, 403, 403, 403] },
  { method: 'GET',    path: '/api/v1/hosts',                               expect: [200, 403, 403, 403, 403] },
  { method: 'POST',   path: '/api/v1/pes',
    body: (s) => ({ id: `pe-${s}`, asn: 65000, adapter: { kind: 'embedded', api: 'http://127.0.0.1:9' } }),
                                                                           expect: [201, 403, 403, 403, 403] },
  { method: 'GET',    path: '/api/v1/pes',                                 expect: [200, 403, 403, 403, 403] },
  // tenants
  { method: 'GET',    path: '/api/v1/tenants',                             expect: [200, 200, 200, 403, 200] },
  { method: 'GET',    path: '/api/v1/tenants/alpha',                       expect: [200, 200, 404, 403, 200] },
  { method: 'POST',   path: '/api/v1/tenants', body: (s) => ({ id: `n-${s}`, name: s }),
                                                                           expect: [201, 403, 403, 403, 201] },
  { method: 'DELETE', path: '/api/v1/tenants/d-{s}', setup: mk('/api/v1/tenants', (s) => ({ id: `d-${s}`, name: s })),
                                                                           expect: [202, 403, 403, 403, 202] },
  // vCEs of tenant A
  { method: 'POST',   path: '/api/v1/tenants/alpha/vces', body: (s) => vceBody(`vc-${s}`),
                                                                           expect: [201, 201, 404, 403, 201] },
  { method: 'GET',    path: '/api/v1/tenants/alpha/vces',                  expect: [200, 200, 404, 403, 200] },
  { method: 'GET',    path: '/api/v1/tenants/alpha/vces/vx',               expect: [200, 200, 404, 403, 200] },
  { method: 'PUT',    path: '/api/v1/tenants/alpha/vces/vp-{s}', body: (s) => ({ ...vceBody(`vp-${s}`), asn: 65102 }),
    setup: mk('/api/v1/tenants/alpha/vces', (s) => vceBody(`vp-${s}`)),   expect: [200, 200, 404, 403, 403] },
  { method: 'DELETE', path: '/api/v1/tenants/alpha/vces/vd-{s}',
    setup: mk('/api/v1/tenants/alpha/vces', (s) => vceBody(`vd-${s}`)),   expect: [204, 204, 404, 403, 403] },
  // attachments of tenant A
  { method: 'POST',   path: '/api/v1/tenants/alpha/attachments', body: (s) => ({ id: `ac-${s}`, vce: 'vx', context: 'red' }),
                                                                           expect: [201, 201, 404, 403, 201] },
  { method: 'GET',    path: '/api/v1/tenants/alpha/attachments',           expect: [200, 200, 404, 403, 200] },
  { method: 'GET',    path: '/api/v1/tenants/alpha/attachments/ax',        expect: [200, 200, 404, 403, 200] },
  { method: 'PUT',    path: '/api/v1/tenants/alpha/attachments/ap-{s}',
    body: (s) => ({ ...attachmentBody(`ap-${s}`, ATT_N[s]!), zone: 'web' }),
    setup: mk('/api/v1/tenants/alpha/attachments', (s) => attachmentBody(`ap-${s}`, ATT_N[s]!)),
                                                                           expect: [200, 200, 404, 403, 403] },
  { method: 'DELETE', path: '/api/v1/tenants/alpha/attachments/ad-{s}',
    setup: mk('/api/v1/tenants/alpha/attachments', (s) => ({ id: `ad-${s}`, vce: 'vx', context: 'red' })),
                                                                           expect: [204, 204, 404, 403, 403] },
  // endpoints of tenant A
  { method: 'POST',   path: '/api/v1/tenants/alpha/endpoints', body: (s) => endpointBody(`ec-${s}`),
                                                                           expect: [201, 201, 404, 403, 201] },
  { method: 'GET',    path: '/api/v1/tenants/alpha/endpoints',             expect: [200, 200, 404, 403, 200] },
  { method: 'GET',    path: '/api/v1/tenants/alpha/endpoints/ex',          expect: [200, 200, 404, 403, 200] },
  { method: 'PUT',    path: '/api/v1/tenants/alpha/endpoints/ep-{s}', body: (s) => ({ ...endpointBody(`ep-${s}`), name: 'renamed' }),
    setup: mk('/api/v1/tenants/alpha/endpoints', (s) => endpointBody(`ep-${s}`)),
                                                                           expect: [200, 200, 404, 403, 403] },
  { method: 'DELETE', path: '/api/v1/tenants/alpha/endpoints/ed-{s}',
    setup: mk('/api/v1/tenants/alpha/endpoints', (s) => endpointBody(`ed-${s}`)),
                                                                           expect: [204, 204, 404, 403, 403] },
  // bindings and operations
  { method: 'GET',    path: '/api/v1/tenants/alpha/bindings',              expect: [200, 200, 404, 403, 200] },
  { method: 'GET',    path: '/api/v1/tenants/alpha/bindings/bx',           expect: [200, 200, 404, 403, 200] },
  { method: 'POST',   path: '/api/v1/tenants/alpha/bindings', body: (s) => bindingBody(`bc-${s}`, 'no-such-vce'),
                                                                           expect: [400, 400, 404, 403, 403] },
  { method: 'POST',   path: '/api/v1/cross-domain/tenants/alpha/bindings', body: (s) => bindingBody(`bd-${s}`, 'no-such-vce'),
                                                                           expect: [400, 403, 403, 403, 400] },
  { method: 'GET',    path: '/api/v1/operations',                          expect: [200, 200, 200, 403, 200] },
  { method: 'GET',    path: '/api/v1/operations/{op}',                     expect: [200, 200, 404, 403, 200] },
  // agents: vx is the agent's own vCE, vy another tenant's
  { method: 'GET',    path: '/api/v1/agents/vx/config',                    expect: [200, 403, 403, 200, 403] },
  { method: 'GET',    path: '/api/v1/agents/vy/config',                    expect: [200, 403, 403, 404, 403] },
  { method: 'GET',    path: '/api/v1/agents/vx/status',                    expect: [200, 403, 403, 200, 403] },
  { method: 'PUT',    path: '/api/v1/agents/vx/status', body: () => agentStatus(1, []),
                                                                           expect: [204, 403, 403, 204, 403] },
  { method: 'PUT',    path: '/api/v1/agents/vy/status', body: () => agentStatus(1, []),
                                                                           expect: [204, 403, 403, 404, 403] },
];

describe('authorization matrix', () => {
  let h: Harness;
  const tokens = {} as Record<Who, string | null>;
  let opId = '';

  beforeAll(async () => {
    // the runner is stopped: operations created by the matrix stay pending (nothing reaches a PE)
    h = await startHarness({ runner: false });
    await ok(h.req('POST', '/api/v1/hosts', { id: 'h1', underlay: '192.0.2.1' }), 201);
    await ok(
      h.req('POST', '/api/v1/pes', {
        id: 'pe1',
        asn: 65000,
        adapter: { kind: 'gobgp', host: '127.0.0.1', port: 1 },
      }),
      201,
    );
    await ok(h.req('POST', '/api/v1/tenants', { id: 'alpha', name: 'Alpha' }), 201);
    await ok(h.req('POST', '/api/v1/tenants', { id: 'bravo', name: 'Bravo' }), 201);
    await ok(h.req('POST', '/api/v1/tenants/alpha/vces', vceBody('vx')), 201);
    await ok(h.req('POST', '/api/v1/tenants/bravo/vces', vceBody('vy')), 201);
    await ok(h.req('POST', '/api/v1/tenants/alpha/attachments', attachmentBody('ax', 0)), 201);
    await ok(h.req('POST', '/api/v1/tenants/alpha/endpoints', endpointBody('ex')), 201);
    await seedBinding(h, {
      tenant: 'alpha',
      id: 'bx',
      vce: 'vx',
      context: 'red',
      pe: 'pe1',
      wanVrf: 'ALPHA',
    });
    const op = newOperation('unbind', 'alpha', 'bx');
    await h.ctl.core.repo.commit({}, [put(KEYS.operation(op.id), op)]);
    opId = op.id;
    tokens.operator = OPERATOR;
    tokens.tenantA = await h.token('tenant', 'alpha');
    tokens.tenantB = await h.token('tenant', 'bravo');
    tokens.agentX = await h.token('agent', 'vx');
    tokens.crossDomain = await h.token('cross-domain');
    tokens.noToken = null;
    tokens.unknownToken = 'not-a-token-anyone-was-given';
    await ok(h.req('PUT', '/api/v1/agents/vx/status', agentStatus(1, []), tokens.agentX), 204);
  });
  afterAll(async () => {
    await h?.stop();
  });
  afterEach(() => {
    expect(h.peCalls).toEqual([]);
  });

  it.each(MATRIX.map((r) => [`${r.method} ${r.path}`, r] as const))('%s', async (_name, row) => {
    const want = {} as Record<Who, number>;
    const got = {} as Record<Who, number>;
    for (const [i, who] of WHO.entries()) {
      const s = SHORT[who];
      want[who] = row.expect[i] ?? 401;
      if (row.setup !== undefined && tokens[who] !== null && who !== 'unknownToken') await row.setup(h, s);
      const path = row.path.replace('{s}', s).replace('{op}', opId);
      const r = await h.req(row.method, path, row.body?.(s), tokens[who]);
      got[who] = r.status;
      if (r.status >= 400)
        expect(typeof r.body['message'], `${who}: ${JSON.stringify(r.body)}`).toBe('string');
    }
    expect(got).toEqual(want);
  });

  it("a tenant cannot tell another tenant's objects from absent ones", async () => {
    const paths = (t: string): string[] => [
      `/api/v1/tenants/${t}`,
      `/api/v1/tenants/${t}/vces`,
      `/api/v1/tenants/${t}/vces/vx`,
      `/api/v1/tenants/${t}/bindings/bx`,
    ];
    const norm = (r: Reply, t: string): string => `${r.status} ${JSON.stringify(r.body).replaceAll(t, 'T')}`;
    const other = paths('alpha');
    const absent = paths('zulu');
    for (const [i, p] of other.entries()) {
      const a = await h.req('GET', p, undefined, tokens.tenantB);
      const b = await h.req('GET', absent[i]!, undefined, tokens.tenantB);
      expect(norm(a, 'alpha')).toBe(norm(b, 'zulu'));
      expect(JSON.stringify(a.body)).not.toContain('Alpha');
    }
    // the operation of tenant A answers like an unknown operation
    const a = await h.req('GET', `/api/v1/operations/${opId}`, undefined, tokens.tenantB);
    const b = await h.req(
      'GET',
      '/api/v1/operations/00000000-0000-0000-0000-000000000000',
      undefined,
      tokens.tenantB,
    );
    expect(norm(a, opId)).toBe(norm(b, '00000000-0000-0000-0000-000000000000'));
    // lists only show the caller's own tenant and operations
    const list = await h.req<{ items: Tenant[] }>('GET', '/api/v1/tenants', undefined, tokens.tenantB);
    expect(list.body.items.map((t) => t.id)).toEqual(['bravo']);
    const ops = await h.req<{ items: Operation[] }>(
      'GET',
      '/api/v1/operations?tenant=alpha',
      undefined,
      tokens.tenantB,
    );
    expect(ops.body.items).toEqual([]);
  });

  it('a PE registered with the embedded adapter keeps its settings', async () => {
    const adapter = { kind: 'embedded', api: 'http://127.0.0.1:9' };
    await ok(h.req('POST', '/api/v1/pes', { id: 'pe-emb', asn: 65000, adapter }), 201);
    const pes = await h.req<{ items: Json[] }>('GET', '/api/v1/pes');
    const pe = pes.body.items.find((p) => p['id'] === 'pe-emb');
    expect(pe?.['adapter']).toEqual(adapter);
  });
});

// ================================================================================================
// 2-5. Validation, ETag / If-Match, Idempotency-Key, audit; 7. the configuration stream
// ================================================================================================

describe('one controller: validation, ETags, idempotency, audit, configuration stream', () => {
  let h: Harness;
  let alphaToken = '';

  beforeAll(async () => {
    h = await startHarness();
    await ok(h.req('POST', '/api/v1/hosts', { id: 'h1', underlay: '192.0.2.1' }), 201);
    await ok(
      h.req('POST', '/api/v1/pes', {
        id: 'pe1',
        asn: 65000,
        adapter: { kind: 'gobgp', host: '127.0.0.1', port: 1 },
      }),
      201,
    );
    for (const t of ['alpha', 'bravo']) {
      await ok(h.req('POST', '/api/v1/tenants', { id: t, name: t.toUpperCase() }), 201);
      await ok(h.req('POST', `/api/v1/tenants/${t}/vces`, vceBody(`${t}-v`)), 201);
    }
    await ok(
      h.req('POST', '/api/v1/tenants/alpha/attachments', {
        id: 'alpha-a',
        vce: 'alpha-v',
        context: 'red',
        vni: 5001,
      }),
      201,
    );
    await seedBinding(h, {
      tenant: 'alpha',
      id: 'alpha-b',
      vce: 'alpha-v',
      context: 'red',
      pe: 'pe1',
      wanVrf: 'ALPHA-VRF',
    });
    alphaToken = await h.token('tenant', 'alpha');
  });
  afterAll(async () => {
    await h?.stop();
  });
  afterEach(() => {
    expect(h.peCalls).toEqual([]);
  });

  describe('validation: 4xx naming the field and the rule, nothing written', () => {
    // prettier-ignore
    const cases: readonly {
      readonly name: string;
      readonly path: string;
      readonly body: Json;
      readonly status: number;
      readonly message: RegExp;
      readonly token?: 'bravo';
      readonly not?: RegExp;
    }[] = [
      { name: 'id with uppercase', path: '/api/v1/tenants', body: { id: 'Acme', name: 'x' }, status: 400, message: /body\/id must match pattern/ },
      { name: 'id with a space', path: '/api/v1/tenants', body: { id: 'ac me', name: 'x' }, status: 400, message: /body\/id must match pattern/ },
      { name: 'vCE id with uppercase', path: '/api/v1/tenants/alpha/vces', body: vceBody('V1'), status: 400, message: /body\/id must match pattern/ },
      { name: 'missing name', path: '/api/v1/tenants', body: { id: 'acme' }, status: 400, message: /body must have required property 'name'/ },
      { name: 'missing contexts', path: '/api/v1/tenants/alpha/vces', body: { ...vceBody('v9'), contexts: undefined }, status: 400, message: /required property 'contexts'/ },
      { name: 'unknown field', path: '/api/v1/tenants', body: { id: 'acme', name: 'x', colour: 'red' }, status: 400, message: /body must NOT have additional properties: "colour"/ },
      { name: 'unknown nested field', path: '/api/v1/tenants/alpha/vces', body: { ...vceBody('v9'), contexts: [{ name: 'red', vrf: 1 }] }, status: 400, message: /body\/contexts\/0 must NOT have additional properties: "vrf"/ },
      { name: 'empty contexts', path: '/api/v1/tenants/alpha/vces', body: vceBody('v9', 'h1', []), status: 400, message: /body\/contexts must NOT have fewer than 1 items/ },
      { name: 'context twice', path: '/api/v1/tenants/alpha/vces', body: vceBody('v9', 'h1', ['red', 'red']), status: 400, message: /body\.contexts: "red" appears twice/ },
      { name: 'vCE on an unknown host', path: '/api/v1/tenants/alpha/vces', body: vceBody('v9', 'nowhere'), status: 400, message: /body\.host: no host "nowhere"/ },
      { name: 'address in the underlay', path: '/api/v1/tenants/alpha/attachments', body: { id: 'a9', vce: 'alpha-v', context: 'red', addresses: ['172.16.5.1/24'] }, status: 400, message: /body\.addresses\[0\]: 172\.16\.5\.1\/24 overlaps the DC underlay block 172\.16\.0\.0\/12/ },
      { name: 'second address not a prefix', path: '/api/v1/tenants/alpha/attachments', body: { id: 'a9', vce: 'alpha-v', context: 'red', addresses: ['10.5.0.1/24', 'bogus'] }, status: 400, message: /body\.addresses\[1\]/ },
      { name: 'attachment on an unknown context', path: '/api/v1/tenants/alpha/attachments', body: { id: 'a9', vce: 'alpha-v', context: 'blue' }, status: 400, message: /body\.context: vCE "alpha-v" has no context "blue"/ },
      { name: 'attachment on an unknown vCE', path: '/api/v1/tenants/alpha/attachments', body: { id: 'a9', vce: 'nope', context: 'red' }, status: 400, message: /body\.vce: no vCE "nope"/ },
      { name: 'endpoint with a bad MAC', path: '/api/v1/tenants/alpha/endpoints', body: { id: 'e9', name: 'vm', mac: '02:00:00:00:00', addresses: [], host: 'h1', attachment: 'alpha-a' }, status: 400, message: /body\/mac must match pattern/ },
      { name: 'duplicate tenant', path: '/api/v1/tenants', body: { id: 'alpha', name: 'again' }, status: 409, message: /tenant "alpha" exists/ },
      { name: 'duplicate vCE', path: '/api/v1/tenants/alpha/vces', body: vceBody('alpha-v'), status: 409, message: /vce "alpha-v" exists/ },
      // without addresses or VNI: nothing may be allocated for a refused attachment
      { name: 'duplicate attachment', path: '/api/v1/tenants/alpha/attachments', body: { id: 'alpha-a', vce: 'alpha-v', context: 'red' }, status: 409, message: /attachment "alpha-a" exists/ },
      { name: 'attachment id of another tenant', token: 'bravo', path: '/api/v1/tenants/bravo/attachments', body: { id: 'alpha-a', vce: 'bravo-v', context: 'red' }, status: 409, message: /attachment "alpha-a" exists/, not: /tenant/ },
      { name: "another tenant's VNI", token: 'bravo', path: '/api/v1/tenants/bravo/attachments', body: { id: 'b1', vce: 'bravo-v', context: 'red', vni: 5001 }, status: 409, message: /VNI 5001 is in use \(another tenant\)/, not: /alpha/i },
      { name: "binding to another tenant's VRF", token: 'bravo', path: '/api/v1/tenants/bravo/bindings', body: bindingBody('bravo-b', 'bravo-v', 'ALPHA-VRF'), status: 409, message: /body\.wanVrf: VRF "ALPHA-VRF" on PE "pe1" belongs to another tenant/, not: /"alpha"/ },
      { name: 'binding to an unknown PE', path: '/api/v1/tenants/alpha/bindings', body: { ...bindingBody('alpha-b2', 'alpha-v'), pe: 'pe9' }, status: 400, message: /body\.pe: no PE "pe9"/ },
      { name: 'binding with a bad route target', path: '/api/v1/tenants/alpha/bindings', body: { ...bindingBody('alpha-b2', 'alpha-v'), importRts: ['nope'] }, status: 400, message: /body\/importRts\/0 must match pattern/ },
      { name: 'tenant token without scope', path: '/api/v1/tokens', body: { name: 'x', role: 'tenant' }, status: 400, message: /body\.scope: a tenant token needs a scope/ },
      { name: 'tenant token for an unknown tenant', path: '/api/v1/tokens', body: { name: 'x', role: 'tenant', scope: 'zulu' }, status: 400, message: /body\.scope: no tenant "zulu"/ },
    ];
    let bravoToken = '';
    beforeAll(async () => {
      bravoToken = await h.token('tenant', 'bravo');
    });

    it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
      const before = await h.snapshot();
      const r = await h.req('POST', c.path, c.body, c.token === 'bravo' ? bravoToken : OPERATOR);
      expect(r.status, JSON.stringify(r.body)).toBe(c.status);
      expect(r.body['message']).toMatch(c.message);
      if (c.not !== undefined) expect(r.body['message']).not.toMatch(c.not);
      expect(await h.snapshot()).toEqual(before);
    });
  });

  it('ETag / If-Match on a vCE', async () => {
    await ok(h.req('POST', '/api/v1/tenants/alpha/vces', vceBody('etag-v')), 201);
    const path = '/api/v1/tenants/alpha/vces/etag-v';
    const g1 = await ok(h.req('GET', path, undefined, alphaToken), 200);
    const e1 = g1.headers.get('etag');
    expect(e1).toMatch(/^"\d+"$/);
    // the right If-Match: changed, new ETag
    const p1 = await ok(
      h.req('PUT', path, { ...vceBody('etag-v'), asn: 65200 }, alphaToken, { 'if-match': e1! }),
      200,
    );
    const e2 = p1.headers.get('etag');
    expect(e2).toMatch(/^"\d+"$/);
    expect(e2).not.toBe(e1);
    const g2 = await ok(h.req('GET', path, undefined, alphaToken), 200);
    expect(g2.headers.get('etag')).toBe(e2);
    expect(g2.body['asn']).toBe(65200);
    // a stale If-Match: 412, nothing changed
    const before = await h.snapshot();
    const stale = await h.req('PUT', path, { ...vceBody('etag-v'), asn: 65300 }, alphaToken, {
      'if-match': e1!,
    });
    expect(stale.status).toBe(412);
    expect(stale.body['message']).toContain(e1!);
    expect(await h.snapshot()).toEqual(before);
    const g3 = await ok(h.req('GET', path, undefined, alphaToken), 200);
    expect(g3.headers.get('etag')).toBe(e2);
    expect(g3.body['asn']).toBe(65200);
    // body id != path id
    const wrong = await h.req('PUT', path, vceBody('other-v'), alphaToken, { 'if-match': e2! });
    expect(wrong.status).toBe(400);
    expect(wrong.body['message']).toMatch(/body\.id: must equal the id in the path/);
    expect(await h.snapshot()).toEqual(before);
    // a PUT to an object that does not exist
    expect((await h.req('PUT', `${path}-x`, vceBody('etag-v-x'), alphaToken)).status).toBe(404);
    // tenants and single bindings carry ETags too
    expect((await ok(h.req('GET', '/api/v1/tenants/alpha'), 200)).headers.get('etag')).toMatch(/^"\d+"$/);
    expect(
      (await ok(h.req('GET', '/api/v1/tenants/alpha/bindings/alpha-b'), 200)).headers.get('etag'),
    ).toMatch(/^"\d+"$/);
  });

  it('Idempotency-Key: replays the first answer, refuses another body, is per token', async () => {
    const key = { 'idempotency-key': 'retry-1' };
    const before = await h.snapshot();
    const a = await ok(h.req('POST', '/api/v1/tenants', { id: 'idem', name: 'Idem' }, OPERATOR, key), 201);
    expect(a.headers.get('idempotent-replay')).toBeNull();
    const created = await h.snapshot();
    const b = await ok(h.req('POST', '/api/v1/tenants', { id: 'idem', name: 'Idem' }, OPERATOR, key), 201);
    expect(b.headers.get('idempotent-replay')).toBe('true');
    expect(b.body).toEqual(a.body);
    expect(await h.snapshot()).toEqual(created); // nothing created twice
    expect(
      [...created.keys()].filter((k) => !before.has(k)).filter((k) => k.startsWith(KEYS.tenants)),
    ).toEqual([KEYS.tenant('idem')]);
    // the same key with another body (or another path)
    const c = await h.req('POST', '/api/v1/tenants', { id: 'idem2', name: 'Idem' }, OPERATOR, key);
    expect(c.status).toBe(422);
    expect(c.body['message']).toMatch(/Idempotency-Key/);
    const d = await h.req('POST', '/api/v1/tenants/alpha/vces', vceBody('idem-v'), OPERATOR, key);
    expect(d.status).toBe(422);
    expect(await h.snapshot()).toEqual(created);
    // another token's same key is its own: runs (and here finds the tenant exists), no replay
    const cross = await h.token('cross-domain', undefined, 'xd-idem');
    const e = await h.req('POST', '/api/v1/tenants', { id: 'idem', name: 'Idem' }, cross, key);
    expect(e.status).toBe(409);
    expect(e.headers.get('idempotent-replay')).toBeNull();
    const f = await ok(h.req('POST', '/api/v1/tenants', { id: 'idem3', name: 'Idem' }, cross, key), 201);
    expect(f.headers.get('idempotent-replay')).toBeNull();
    // an attachment retried: one object, one VNI, one address block
    const att = { id: 'idem-a', vce: 'alpha-v', context: 'red' };
    const k2 = { 'idempotency-key': 'retry-att' };
    const x = await ok(h.req('POST', '/api/v1/tenants/alpha/attachments', att, alphaToken, k2), 201);
    const mid = await h.snapshot();
    const y = await ok(h.req('POST', '/api/v1/tenants/alpha/attachments', att, alphaToken, k2), 201);
    expect(y.headers.get('idempotent-replay')).toBe('true');
    expect(y.body).toEqual(x.body);
    expect(await h.snapshot()).toEqual(mid);
    const held = (await h.ctl.core.ipam.ofTenant('alpha')).filter((a) => a.value.owner === 'idem-a');
    expect(held).toHaveLength(2); // its VNI and its /24
  });

  it('audit: every change with actor, role, method, path and status; no GETs; operators only', async () => {
    const auditor = await h.token('operator', undefined, 'auditor-1');
    const bravo = await h.token('tenant', 'bravo', 'bravo-auditee');
    const calls: [string, string, unknown, string, number][] = [
      ['POST', '/api/v1/tenants', { id: 'aud', name: 'Audited' }, auditor, 201],
      ['POST', '/api/v1/tenants', { id: 'Bad', name: 'x' }, auditor, 400],
      ['POST', '/api/v1/tenants/aud/vces', vceBody('aud-v'), auditor, 201],
      ['PUT', '/api/v1/tenants/aud/vces/aud-v', { ...vceBody('aud-v'), asn: 65001 }, auditor, 200],
      ['GET', '/api/v1/tenants/aud/vces/aud-v', undefined, auditor, 200],
      ['DELETE', '/api/v1/tenants/aud/vces/aud-v', undefined, auditor, 204],
      ['GET', '/api/v1/tenants', undefined, auditor, 200],
      ['POST', '/api/v1/hosts', { id: 'h9', underlay: '192.0.2.9' }, bravo, 403],
      ['DELETE', '/api/v1/tenants/alpha/vces/alpha-v', undefined, bravo, 404],
    ];
    for (const [method, path, body, token, status] of calls)
      await ok(h.req(method, path, body, token), status);
    const audit = await ok(
      h.req<{ items: AuditEntry[]; next: string | null }>('GET', '/api/v1/audit?limit=1000'),
      200,
    );
    expect(audit.body.next).toBeNull();
    const mine = audit.body.items
      .filter((e) => e.actor === 'auditor-1' || e.actor === 'bravo-auditee')
      .map(({ actor, role, method, path, status }) => ({ actor, role, method, path, status }));
    expect(mine).toEqual(
      calls
        .filter(([m]) => m !== 'GET')
        .map(([method, path, , token, status]) => ({
          actor: token === auditor ? 'auditor-1' : 'bravo-auditee',
          role: token === auditor ? 'operator' : 'tenant',
          method,
          path,
          status,
        })),
    );
    const entry = audit.body.items.find((e) => e.path === '/api/v1/tenants/aud/vces');
    expect(entry?.tenant).toBe('aud');
    expect(Date.parse(entry!.at)).not.toBeNaN();
    expect(audit.body.items.some((e) => e.method === 'GET')).toBe(false);
    // agent status reports are not changes; unauthenticated requests have no actor to record
    expect(audit.body.items.some((e) => e.path.startsWith('/api/v1/agents/'))).toBe(false);
    // a tenant may not read it
    const t = await h.req('GET', '/api/v1/audit', undefined, alphaToken);
    expect(t.status).toBe(403);
    // paging through the audit log
    const seen: AuditEntry[] = [];
    let after: string | null = null;
    do {
      const q: string = after === null ? '' : `&after=${encodeURIComponent(after)}`;
      const p = await ok(
        h.req<{ items: AuditEntry[]; next: string | null }>('GET', `/api/v1/audit?limit=3${q}`),
        200,
      );
      seen.push(...p.body.items);
      after = p.body.next;
    } while (after !== null);
    expect(seen).toEqual(audit.body.items);
  });

  it('configuration stream: current first, then changes; resumes by revision; own vCE only', async () => {
    const agent = await h.token('agent', 'alpha-v', 'agent-alpha-v');
    const other = await h.token('agent', 'bravo-v', 'agent-bravo-v');
    const cur = await ok(
      h.req<{ revision: number; config: Json }>('GET', '/api/v1/agents/alpha-v/config', undefined, agent),
      200,
    );
    const s1 = await openStream(h, 'alpha-v', agent);
    try {
      expect(s1.res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const first = await s1.next(2000);
      expect(first?.event).toBe('config');
      expect(first?.id).toBe(cur.body.revision);
      expect(first?.data.config).toEqual(cur.body.config);
      expect(interfaces(first!.data.config)).not.toContain('a-sse-1');
      await ok(
        h.req('POST', '/api/v1/tenants/alpha/attachments', { id: 'sse-1', vce: 'alpha-v', context: 'red' }),
        201,
      );
      const second = await s1.next(2000);
      expect(second?.id).toBeGreaterThan(first!.id);
      expect(interfaces(second!.data.config)).toContain('a-sse-1');
      // a change to another vCE is not this agent's business
      await ok(
        h.req('POST', '/api/v1/tenants/bravo/attachments', { id: 'sse-b', vce: 'bravo-v', context: 'red' }),
        201,
      );
      expect(await s1.next(300)).toBeUndefined();
      await s1.close();
      // reconnecting from the last revision: nothing old, then only what is new
      const last = second!.id;
      const s2 = await openStream(h, 'alpha-v', agent, last);
      try {
        expect(await s2.next(300)).toBeUndefined();
        await ok(
          h.req('POST', '/api/v1/tenants/alpha/attachments', { id: 'sse-2', vce: 'alpha-v', context: 'red' }),
          201,
        );
        const third = await s2.next(2000);
        expect(third?.id).toBeGreaterThan(last);
        expect(interfaces(third!.data.config)).toEqual(expect.arrayContaining(['a-sse-1', 'a-sse-2']));
        expect(await s2.next(300)).toBeUndefined();
      } finally {
        await s2.close();
      }
      // an agent resuming from an older revision gets the current configuration once
      const s3 = await openStream(h, 'alpha-v', agent, first!.id);
      try {
        const catchUp = await s3.next(2000);
        expect(interfaces(catchUp!.data.config)).toEqual(expect.arrayContaining(['a-sse-1', 'a-sse-2']));
        expect(await s3.next(300)).toBeUndefined();
      } finally {
        await s3.close();
      }
    } finally {
      await s1.close();
    }
    // another agent's token, a tenant token
    expect((await h.req('GET', '/api/v1/agents/alpha-v/config/stream', undefined, other)).status).toBe(404);
    expect((await h.req('GET', '/api/v1/agents/alpha-v/config/stream', undefined, alphaToken)).status).toBe(
      403,
    );
    expect((await h.req('GET', '/api/v1/agents/alpha-v/config/stream', undefined, null)).status).toBe(401);
  });
});

interface SseEvent {
  readonly event: string;
  readonly id: number;
  readonly data: { revision: number; config: Json };
}

/** A server-sent events response read incrementally. */
class SseReader {
  private readonly queue: SseEvent[] = [];
  private wake: (() => void) | undefined;
  private readonly pumping: Promise<void>;

  constructor(
    readonly res: Response,
    private readonly abort: AbortController,
  ) {
    this.pumping = this.pump();
  }

  private async pump(): Promise<void> {
    const reader = this.res.body!.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    const dec = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += dec.decode(value, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const lines = buf.slice(0, i).split('\n');
          buf = buf.slice(i + 2);
          const field = (name: string): string | undefined =>
            lines.find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2);
          const data = field('data');
          if (data === undefined) continue; // a comment (keep-alive)
          this.queue.push({
            event: field('event') ?? 'message',
            id: Number(field('id')),
            data: JSON.parse(data) as SseEvent['data'],
          });
          this.wake?.();
        }
      }
    } catch {
      // aborted
    }
  }

  /** The next event, or undefined when none comes within `timeoutMs`. */
  async next(timeoutMs: number): Promise<SseEvent | undefined> {
    const end = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      const left = end - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
      this.wake = undefined;
    }
    return this.queue.shift();
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.pumping;
  }
}

async function openStream(h: Harness, vce: string, token: string, revision?: number): Promise<SseReader> {
  const abort = new AbortController();
  const q = revision === undefined ? '' : `?revision=${revision}`;
  // the answer's headers come at once, even when there is no event to send yet
  const slow = setTimeout(
    () => abort.abort(new Error('config stream: no response headers within 2 s')),
    2000,
  );
  const res = await fetch(`${h.ctl.url}/api/v1/agents/${vce}/config/stream${q}`, {
    headers: { authorization: `Bearer ${token}` },
    signal: abort.signal,
  }).finally(() => clearTimeout(slow));
  expect(res.status).toBe(200);
  return new SseReader(res, abort);
}

/** Interface names of every context (default and VRFs) of an agent configuration document. */
function interfaces(config: Json): string[] {
  type Ctx = { interfaces?: { name: string }[] };
  const contexts = [config as Ctx, ...((config['vrfs'] ?? []) as Ctx[])];
  return contexts.flatMap((c) => (c.interfaces ?? []).map((i) => i.name));
}

// ================================================================================================
// 6. Paging
// ================================================================================================

describe('paging', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ runner: false });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('250 tenants in pages of 100: each once, in order', async () => {
    const ids = Array.from({ length: 250 }, (_, i) => `t-${i.toString().padStart(3, '0')}`);
    // created out of order, 10 at a time
    const shuffled = [...ids].sort((a, b) => (a.slice(-1) + a).localeCompare(b.slice(-1) + b));
    for (let i = 0; i < shuffled.length; i += 10)
      await Promise.all(
        shuffled.slice(i, i + 10).map((id) => ok(h.req('POST', '/api/v1/tenants', { id, name: id }), 201)),
      );
    const pages: string[][] = [];
    let after: string | null = null;
    do {
      const q: string = after === null ? '' : `&after=${encodeURIComponent(after)}`;
      const r = await ok(
        h.req<{ items: Tenant[]; next: string | null }>('GET', `/api/v1/tenants?limit=100${q}`),
        200,
      );
      pages.push(r.body.items.map((t) => t.id));
      after = r.body.next;
      expect(pages.length).toBeLessThan(10);
    } while (after !== null);
    expect(pages.map((p) => p.length)).toEqual([100, 100, 50]);
    expect(pages.flat()).toEqual(ids);
    // bounds of limit
    expect((await h.req('GET', '/api/v1/tenants?limit=0')).status).toBe(400);
    expect((await h.req('GET', '/api/v1/tenants?limit=1001')).status).toBe(400);
    const one = await ok(
      h.req<{ items: Tenant[]; next: string | null }>('GET', '/api/v1/tenants?limit=1&after=t-248'),
      200,
    );
    expect(one.body).toMatchObject({ items: [{ id: 't-249' }], next: null });
    expect(h.peCalls).toEqual([]);
  });
});

// ================================================================================================
// 8. Tenant termination
// ================================================================================================

describe('tenant termination (vCEs and attachments, no bindings)', () => {
  let h: Harness;
  beforeAll(async () => {
    // no PE registered: the residue check has no PE to ask
    h = await startHarness({ statusLeaseSeconds: 120 });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('waits for the agent, then removes everything and frees the id, VNIs and addresses', async () => {
    await ok(h.req('POST', '/api/v1/hosts', { id: 'h1', underlay: '192.0.2.1' }), 201);
    await ok(h.req('POST', '/api/v1/tenants', { id: 'gone', name: 'Gone' }), 201);
    await ok(h.req('POST', '/api/v1/tenants', { id: 'stays', name: 'Stays' }), 201);
    await ok(h.req('POST', '/api/v1/tenants/gone/vces', vceBody('gone-v')), 201);
    await ok(h.req('POST', '/api/v1/tenants/stays/vces', vceBody('stays-v')), 201);
    await ok(
      h.req('POST', '/api/v1/tenants/gone/attachments', { id: 'gone-a1', vce: 'gone-v', context: 'red' }),
      201,
    );
    await ok(
      h.req('POST', '/api/v1/tenants/gone/attachments', {
        id: 'gone-a2',
        vce: 'gone-v',
        context: 'red',
        vni: 7777,
        addresses: ['10.77.0.1/24'],
      }),
      201,
    );
    await ok(
      h.req('POST', '/api/v1/tenants/stays/attachments', { id: 'stays-a', vce: 'stays-v', context: 'red' }),
      201,
    );
    await ok(
      h.req('POST', '/api/v1/tenants/gone/endpoints', {
        id: 'gone-vm',
        name: 'vm',
        mac: '02:00:00:00:00:07',
        addresses: ['10.77.0.10'],
        host: 'h1',
        attachment: 'gone-a2',
      }),
      201,
    );
    const tenantToken = await h.token('tenant', 'gone');
    const agentToken = await h.token('agent', 'gone-v');
    expect((await h.ctl.core.ipam.ofTenant('gone')).length).toBe(3); // 2 VNIs, 1 /24
    const staysBefore = await h.ctl.core.kv.range(KEYS.ownedAll('stays'));
    // the agent ran the tenant's configuration, reported it, and is not connected any more
    const running = await ok(
      h.req<{ revision: number }>('GET', '/api/v1/agents/gone-v/config', undefined, agentToken),
      200,
    );
    await ok(
      h.req(
        'PUT',
        '/api/v1/agents/gone-v/status',
        agentStatus(running.body.revision, [
          { name: 'default', interfaces: [] },
          { name: 'red', interfaces: ['a-gone-a1', 'a-gone-a2'] },
        ]),
        agentToken,
      ),
      204,
    );

    const del = await ok(h.req<Operation>('DELETE', '/api/v1/tenants/gone'), 202);
    expect(del.body).toMatchObject({ kind: 'terminate-tenant', tenant: 'gone', target: 'gone' });
    const opPath = `/api/v1/operations/${del.body.id}`;
    // the operation waits for the agent to apply the removal
    for (let i = 0; i < 100; i++) {
      const cur = (await ok(h.req<Operation>('GET', opPath), 200)).body;
      if (cur.steps.find((s) => s.name === 'await-agents')?.error !== undefined) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 300)); // several retries
    const op = (await ok(h.req<Operation>('GET', opPath), 200)).body;
    expect(op.state).toBe('running');
    expect(op.steps.map((s) => [s.name, s.state])).toEqual([
      ['unbind-all', 'done'],
      ['remove-vces', 'done'],
      ['await-agents', 'running'],
      ['residue-check', 'pending'],
      ['release', 'pending'],
      ['delete', 'pending'],
    ]);
    expect(op.steps[2]?.error).toMatch(/gone-v has not applied the removal/);
    // meanwhile: the tenant is terminating, takes nothing new, and its id cannot be re-used
    const t = await ok(h.req<Tenant>('GET', '/api/v1/tenants/gone', undefined, tenantToken), 200);
    expect(t.body.state).toBe('terminating');
    expect((await h.req('POST', '/api/v1/tenants/gone/vces', vceBody('gone-v2'), tenantToken)).status).toBe(
      409,
    );
    const again = await h.req('POST', '/api/v1/tenants', { id: 'gone', name: 'Again' });
    expect(again.status).toBe(409);
    // a repeated DELETE answers with the same operation
    const del2 = await ok(h.req<Operation>('DELETE', '/api/v1/tenants/gone'), 202);
    expect(del2.body.id).toBe(del.body.id);

    // the agent applies the removal and reports it
    const removal = await ok(
      h.req<{ revision: number; config: Json }>('GET', '/api/v1/agents/gone-v/config', undefined, agentToken),
      200,
    );
    expect(removal.body.revision).toBeGreaterThan(running.body.revision);
    expect(interfaces(removal.body.config)).toEqual([]);
    await ok(
      h.req(
        'PUT',
        '/api/v1/agents/gone-v/status',
        agentStatus(removal.body.revision, [{ name: 'default', interfaces: [] }]),
        agentToken,
      ),
      204,
    );
    const done = await h.ctl.runner.settle(del.body.id, 5000);
    expect(done.state, JSON.stringify(done.steps)).toBe('succeeded');
    expect((await ok(h.req<Operation>('GET', opPath), 200)).body.state).toBe('succeeded');

    // gone: the tenant, its objects, its index entries, its allocations, its tokens
    expect((await h.req('GET', '/api/v1/tenants/gone')).status).toBe(404);
    expect((await h.req('GET', '/api/v1/tenants/gone/vces')).status).toBe(404);
    expect((await h.ctl.core.kv.range(KEYS.ownedAll('gone'))).entries).toEqual([]);
    const index = await h.ctl.core.kv.range('/vce/v1/index/');
    expect(index.entries.filter((e) => JSON.parse(e.value) === 'gone')).toEqual([]);
    expect(await h.ctl.core.ipam.ofTenant('gone')).toEqual([]);
    expect(await h.ctl.core.kv.get(KEYS.quarantine('tenant', 'gone'))).toBeUndefined();
    expect((await h.req('GET', '/api/v1/tenants', undefined, tenantToken)).status).toBe(401);
    expect((await h.req('GET', '/api/v1/tenants/gone', undefined, tenantToken)).status).toBe(401);
    // the other tenant is untouched
    expect((await h.ctl.core.kv.range(KEYS.ownedAll('stays'))).entries).toEqual(staysBefore.entries);
    // the id, the VNI and the address block can be used again
    await ok(h.req('POST', '/api/v1/tenants', { id: 'gone', name: 'Reborn' }), 201);
    await ok(h.req('POST', '/api/v1/tenants/gone/vces', vceBody('gone-v')), 201);
    await ok(
      h.req('POST', '/api/v1/tenants/gone/attachments', {
        id: 'gone-a2',
        vce: 'gone-v',
        context: 'red',
        vni: 7777,
        addresses: ['10.77.0.1/24'],
      }),
      201,
    );
    expect(h.peCalls).toEqual([]);
  });
});
