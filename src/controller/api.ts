/**
 * The controller's REST API under /api/v1 (OpenAPI at /api/v1/openapi.json): tenants and what they
 * own, hosts and PEs, WAN bindings (each creating an operation resource), operations, the agents'
 * configuration stream (server-sent events, resumable by revision) and status, tokens and the
 * audit log.
 *
 * Authorization: bearer tokens with a role. `operator` sees and changes everything; `tenant`
 * only its own tenant (other tenants' objects answer 404, as if absent); `agent` only its own
 * configuration and status; `cross-domain` drives cross-domain bindings (§7.2.1.2).
 * POST accepts an `Idempotency-Key` (a retried request gets the first answer and does nothing
 * twice); single objects carry an `ETag` (their store revision) and PUT honours `If-Match`.
 * Every change is written to the audit log.
 */
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import { Type, type Static } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { ControllerCore, sha, type AgentConfigDoc, type AgentStatus } from './core.ts';
import {
  ID_RE,
  KEYS,
  type Attachment,
  type AuditEntry,
  type Container,
  type Endpoint,
  type Host,
  type Operation,
  type Pe,
  type Role,
  type Tenant,
  type Token,
  type VceInstance,
  type WanBinding,
} from './model.ts';
import { ConflictError, del, put } from './repo.ts';
import { bindingOps, newOperation, type WorkflowRunner } from './workflows.ts';
import { IpamError } from './ipam.ts';
import { Alarms } from './alarms.ts';
import { parsePrefix } from '../lib/ip.ts';
import { buildAgentConfig, ConfigError } from '../agent/config.ts';

interface Auth {
  readonly role: Role;
  readonly scope?: string;
  readonly name: string;
  readonly hash: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    auth?: Auth;
  }
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const Id = Type.String({ pattern: ID_RE.source });
const Rt = Type.String({ pattern: '^([0-9]+|[0-9.]+):[0-9]+$' });
const TenantBody = Type.Object(
  {
    id: Id,
    name: Type.String({ minLength: 1, maxLength: 200 }),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { additionalProperties: false },
);
const HostBody = Type.Object(
  { id: Id, underlay: Type.String({ minLength: 2 }) },
  { additionalProperties: false },
);
const PeBody = Type.Object(
  {
    id: Id,
    asn: Type.Integer({ minimum: 1, maximum: 4294967295 }),
    adapter: Type.Union([
      Type.Object(
        {
          kind: Type.Literal('gobgp'),
          host: Type.String(),
          port: Type.Integer({ minimum: 1, maximum: 65535 }),
        },
        { additionalProperties: false },
      ),
      Type.Object({ kind: Type.Literal('embedded'), api: Type.String() }, { additionalProperties: false }),
    ]),
    dynamicRange: Type.Optional(Type.String()),
    bgpPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    dataplane: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
const VceBody = Type.Object(
  {
    id: Id,
    host: Id,
    asn: Type.Integer({ minimum: 1, maximum: 4294967295 }),
    routerId: Type.String(),
    contexts: Type.Array(
      Type.Object(
        {
          name: Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$' }),
          routeDistinguisher: Type.Optional(Type.String()),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 4096 },
    ),
    zoneRules: Type.Optional(Type.Array(Type.Record(Type.String(), Type.Unknown()), { maxItems: 10000 })),
    qosPolicies: Type.Optional(Type.Array(Type.Record(Type.String(), Type.Unknown()), { maxItems: 1000 })),
    bgpPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    vxlanPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  },
  { additionalProperties: false },
);
const AttachmentBody = Type.Object(
  {
    id: Id,
    vce: Id,
    context: Type.String(),
    vni: Type.Optional(Type.Integer({ minimum: 1, maximum: 16777215 })),
    addresses: Type.Optional(Type.Array(Type.String(), { maxItems: 16 })),
    zone: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,31}$' })),
    qosProfile: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
const ContainerBody = Type.Object(
  { id: Id, name: Type.String({ minLength: 1, maxLength: 200 }) },
  { additionalProperties: false },
);
const EndpointBody = Type.Object(
  {
    id: Id,
    name: Type.String({ minLength: 1 }),
    mac: Type.String({ pattern: '^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$' }),
    addresses: Type.Array(Type.String(), { maxItems: 16 }),
    host: Id,
    attachment: Id,
    container: Type.Optional(Id),
  },
  { additionalProperties: false },
);
const BindingBody = Type.Object(
  {
    id: Id,
    vce: Id,
    context: Type.String(),
    pe: Id,
    mode: Type.Optional(Type.Union([Type.Literal('push-inter-domain'), Type.Literal('push-cross-domain')])),
    wanVrf: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }),
    rd: Rt,
    importRts: Type.Array(Rt, { minItems: 1 }),
    exportRts: Type.Array(Rt, { minItems: 1 }),
    protocol: Type.Optional(Type.Union([Type.Literal('bgp'), Type.Literal('static')])),
    dynamic: Type.Optional(Type.Boolean()),
    peAttachment: Type.Object(
      {
        kind: Type.Union([Type.Literal('vlan'), Type.Literal('qinq'), Type.Literal('vxlan')]),
        id: Type.Integer({ minimum: 1, maximum: 16777215 }),
        outer: Type.Optional(Type.Integer({ minimum: 1, maximum: 4094 })),
      },
      { additionalProperties: false },
    ),
    peAddress: Type.Optional(Type.String()),
    ceAddress: Type.Optional(Type.String()),
    bfd: Type.Optional(Type.Boolean()),
    staticPrefixes: Type.Optional(Type.Array(Type.String(), { maxItems: 1000 })),
  },
  { additionalProperties: false },
);
const TokenBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    role: Type.Union([
      Type.Literal('operator'),
      Type.Literal('tenant'),
      Type.Literal('agent'),
      Type.Literal('cross-domain'),
    ]),
    scope: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

export interface ControllerApiOptions {
  readonly core: ControllerCore;
  readonly runner: WorkflowRunner;
  /** The bootstrap operator token (secret). */
  readonly operatorToken: string;
  /** Lease of agent status documents, seconds. */
  readonly statusLeaseSeconds?: number;
}

export async function buildControllerApi(opts: ControllerApiOptions): Promise<FastifyInstance> {
  const { core, runner } = opts;
  const repo = core.repo;
  const app = Fastify({
    logger: false,
    bodyLimit: 8 << 20,
    // fastify's default (removeAdditional: true) silently drops unknown fields: refuse them (400)
    ajv: { customOptions: { removeAdditional: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'vce controller API',
        version: '1',
        description:
          'DC orchestration of vCEs and their binding to WAN IP VPNs (draft-fang-l3vpn-virtual-ce §7)',
      },
    },
  });
  const bootstrap = sha(opts.operatorToken);

  app.setErrorHandler(
    (
      err: {
        statusCode?: number;
        status?: number;
        message: string;
        validation?: { keyword?: string; params?: { additionalProperty?: unknown } }[];
      },
      _req,
      reply,
    ) => {
      const status =
        err instanceof HttpError
          ? err.status
          : err instanceof ConflictError
            ? 409
            : err instanceof IpamError
              ? 409
              : err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 600
                ? err.statusCode
                : 500;
      const error =
        {
          400: 'bad-request',
          401: 'unauthorized',
          403: 'forbidden',
          404: 'not-found',
          409: 'conflict',
          412: 'precondition-failed',
          422: 'unprocessable',
        }[status] ?? 'internal';
      // schema errors name the field; an unknown field is named too (ajv leaves it in params)
      const unknown = err.validation?.find((v) => v.keyword === 'additionalProperties')?.params
        ?.additionalProperty;
      const message = typeof unknown === 'string' ? `${err.message}: "${unknown}"` : err.message;
      void reply.status(status).send({ error, message });
    },
  );

  // ---------------------------------------------------------------- authentication, audit
  app.addHook('onRequest', async (req) => {
    if (req.url === '/api/v1/openapi.json' || req.url === '/api/v1/health') return;
    const h = req.headers.authorization;
    if (h === undefined || !h.startsWith('Bearer '))
      throw new HttpError(401, 'a bearer token is required (Authorization: Bearer TOKEN)');
    const hash = sha(h.slice(7));
    if (hash === bootstrap) {
      req.auth = { role: 'operator', name: 'bootstrap', hash };
      return;
    }
    const t = (await repo.get<Token>(KEYS.token(hash)))?.value;
    if (t === undefined) throw new HttpError(401, 'unknown token');
    req.auth = { role: t.role, scope: t.scope, name: t.name, hash };
  });

  let auditSeq = 0;
  app.addHook('onResponse', async (req, reply) => {
    if (req.method === 'GET' || req.auth === undefined) return;
    if (req.url.startsWith('/api/v1/agents/') && req.method === 'PUT') return; // status reports are not changes
    const entry: AuditEntry = {
      at: new Date().toISOString(),
      actor: req.auth.name,
      role: req.auth.role,
      method: req.method,
      path: req.url,
      status: reply.statusCode,
      tenant: /^\/api\/v1\/tenants\/([^/?]+)/.exec(req.url)?.[1],
    };
    const seq = `${Date.now().toString().padStart(15, '0')}-${(auditSeq++ % 1e6).toString().padStart(6, '0')}-${process.pid}`;
    await repo.kv.put(KEYS.audit(seq), JSON.stringify(entry));
  });

  const need = (req: FastifyRequest, ...roles: Role[]): Auth => {
    const a = req.auth!;
    if (!roles.includes(a.role)) throw new HttpError(403, `the ${a.role} role may not do this`);
    return a;
  };
  /** Tenant-scoped access: operators everywhere, a tenant token only in its tenant (else 404). */
  const tenantAccess = async (req: FastifyRequest, tenant: string): Promise<Tenant> => {
    const a = req.auth!;
    if (a.role !== 'operator' && a.role !== 'cross-domain' && !(a.role === 'tenant' && a.scope === tenant))
      throw new HttpError(404, `no tenant "${tenant}"`);
    const t = (await repo.get<Tenant>(KEYS.tenant(tenant)))?.value;
    if (t === undefined) throw new HttpError(404, `no tenant "${tenant}"`);
    return t;
  };

  /** Idempotency-Key: the first answer is stored and replayed for the same key and body. */
  const idempotent = async (
    req: FastifyRequest,
    reply: FastifyReply,
    run: () => Promise<{ status: number; body: unknown }>,
  ): Promise<unknown> => {
    const key = req.headers['idempotency-key'];
    if (typeof key !== 'string') {
      const r = await run();
      return reply.status(r.status).send(r.body);
    }
    const k = KEYS.idempotency(sha(`${req.auth!.hash}|${key}`));
    const bodyHash = sha(JSON.stringify(req.body ?? null) + req.url);
    const prior = (await repo.get<{ bodyHash: string; status: number; body: unknown }>(k))?.value;
    if (prior !== undefined) {
      if (prior.bodyHash !== bodyHash)
        throw new HttpError(422, 'Idempotency-Key reused with a different request');
      return reply.status(prior.status).header('idempotent-replay', 'true').send(prior.body);
    }
    const r = await run();
    if (r.status < 500) await repo.kv.put(k, JSON.stringify({ bodyHash, status: r.status, body: r.body }));
    return reply.status(r.status).send(r.body);
  };

  const page = (q: { limit?: number; after?: string }) => ({
    limit: Math.min(q.limit ?? 100, 1000),
    after: q.after,
  });
  const PageQuery = Type.Object({
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    after: Type.Optional(Type.String()),
  });
  const withEtag = <T>(reply: FastifyReply, d: { value: T; rev: number }): T => {
    void reply.header('etag', `"${d.rev}"`);
    return d.value;
  };

  app.get('/api/v1/openapi.json', () => Promise.resolve(app.swagger()));
  app.get('/api/v1/health', () => Promise.resolve({ status: 'ok', store: core.kv.backend }));

  // ---------------------------------------------------------------- tokens, audit
  app.post('/api/v1/tokens', { schema: { body: TokenBody } }, async (req, reply) => {
    need(req, 'operator');
    const b = req.body;
    if ((b.role === 'tenant' || b.role === 'agent') && b.scope === undefined)
      throw new HttpError(
        400,
        `body.scope: a ${b.role} token needs a scope (the ${b.role === 'tenant' ? 'tenant' : 'vCE'} id)`,
      );
    if (b.role === 'tenant' && (await repo.get(KEYS.tenant(b.scope!))) === undefined)
      throw new HttpError(400, `body.scope: no tenant "${b.scope}"`);
    const secret = randomBytes(24).toString('base64url');
    const t: Token = { hash: sha(secret), role: b.role, scope: b.scope, name: b.name };
    await repo.kv.put(KEYS.token(t.hash), JSON.stringify(t));
    return reply.status(201).send({ token: secret, role: t.role, scope: t.scope ?? null, name: t.name });
  });

  app.get('/api/v1/audit', { schema: { querystring: PageQuery } }, async (req) => {
    need(req, 'operator');
    const r = await repo.list<AuditEntry>(
      KEYS.audits,
      page(req.query).limit,
      req.query.after === undefined ? undefined : KEYS.audit(req.query.after),
    );
    return { items: r.items.map((d) => d.value), next: r.more ? r.last!.slice(KEYS.audits.length) : null };
  });

  // ---------------------------------------------------------------- hosts, PEs
  app.post('/api/v1/hosts', { schema: { body: HostBody } }, async (req, reply) => {
    need(req, 'operator');
    const h: Host = req.body;
    await repo
      .commit({ [KEYS.host(h.id)]: 0 }, [put(KEYS.host(h.id), h)])
      .catch(conflict(`host "${h.id}" exists`));
    return reply.status(201).send(h);
  });
  app.get('/api/v1/hosts', async (req) => {
    need(req, 'operator');
    return { items: (await repo.all<Host>(KEYS.hosts)).map((d) => d.value) };
  });
  app.post('/api/v1/pes', { schema: { body: PeBody } }, async (req, reply) => {
    need(req, 'operator');
    const p = req.body as Pe;
    await repo.commit({ [KEYS.pe(p.id)]: 0 }, [put(KEYS.pe(p.id), p)]).catch(conflict(`PE "${p.id}" exists`));
    return reply.status(201).send(p);
  });
  app.get('/api/v1/pes', async (req) => {
    need(req, 'operator');
    return { items: (await repo.all<Pe>(KEYS.pes)).map((d) => d.value) };
  });

  // ---------------------------------------------------------------- tenants
  app.post('/api/v1/tenants', { schema: { body: TenantBody } }, async (req, reply) => {
    need(req, 'operator', 'cross-domain');
    return idempotent(req, reply, async () => {
      const b = req.body;
      if ((await repo.get(KEYS.quarantine('tenant', b.id))) !== undefined)
        throw new HttpError(
          409,
          `tenant id "${b.id}" belongs to a tenant whose termination has not passed its residue check`,
        );
      const t: Tenant = {
        id: b.id,
        name: b.name,
        description: b.description,
        state: 'active',
        createdAt: new Date().toISOString(),
      };
      await repo
        .commit({ [KEYS.tenant(t.id)]: 0 }, [put(KEYS.tenant(t.id), t)])
        .catch(conflict(`tenant "${t.id}" exists`));
      return { status: 201, body: t };
    });
  });
  app.get('/api/v1/tenants', { schema: { querystring: PageQuery } }, async (req) => {
    const a = req.auth!;
    if (a.role === 'tenant') {
      const t = (await repo.get<Tenant>(KEYS.tenant(a.scope!)))?.value;
      return { items: t === undefined ? [] : [t], next: null };
    }
    need(req, 'operator', 'cross-domain');
    const p = page(req.query);
    const r = await repo.list<Tenant>(
      KEYS.tenants,
      p.limit,
      p.after === undefined ? undefined : KEYS.tenant(p.after),
    );
    return { items: r.items.map((d) => d.value), next: r.more ? r.last!.slice(KEYS.tenants.length) : null };
  });
  app.get<{ Params: { t: string } }>('/api/v1/tenants/:t', async (req, reply) => {
    need(req, 'operator', 'tenant', 'cross-domain');
    await tenantAccess(req, req.params.t);
    return withEtag(reply, (await repo.get<Tenant>(KEYS.tenant(req.params.t)))!);
  });
  app.delete<{ Params: { t: string } }>('/api/v1/tenants/:t', async (req, reply) => {
    need(req, 'operator', 'cross-domain');
    const t = await tenantAccess(req, req.params.t);
    return idempotent(req, reply, async () => {
      const running = (await repo.all<Operation>(KEYS.operations)).find(
        (o) =>
          o.value.tenant === t.id &&
          o.value.kind === 'terminate-tenant' &&
          (o.value.state === 'running' || o.value.state === 'pending'),
      );
      if (running !== undefined) return { status: 202, body: running.value };
      const op = newOperation('terminate-tenant', t.id, t.id);
      await repo.commit({}, [
        put(KEYS.operation(op.id), op),
        put(KEYS.quarantine('tenant', t.id), { operation: op.id }),
      ]);
      runner.kick(op.id);
      return { status: 202, body: op };
    });
  });

  // ---------------------------------------------------------------- tenant-owned objects
  const owned = <S extends ReturnType<typeof Type.Object>>(
    kind: 'containers' | 'vces' | 'attachments' | 'endpoints',
    schema: S,
    make: (tenant: string, body: Static<S>) => Promise<object>,
    after?: (tenant: string, obj: object) => Promise<void>,
  ): void => {
    app.post<{ Params: { t: string }; Body: Static<S> }>(
      `/api/v1/tenants/:t/${kind}`,
      { schema: { body: schema } },
      async (req, reply) => {
        need(req, 'operator', 'tenant', 'cross-domain');
        const t = await tenantAccess(req, req.params.t);
        if (t.state !== 'active') throw new HttpError(409, `tenant "${t.id}" is being terminated`);
        return idempotent(req, reply, async () => {
          // refuse a taken id before `make` allocates anything (an attachment's VNI and block)
          const id = (req.body as { id: string }).id;
          if ((await repo.get(KEYS.index(kind, id))) !== undefined)
            throw new HttpError(409, `${kind.slice(0, -1)} "${id}" exists`);
          const obj = (await make(t.id, req.body as Static<S>)) as { id: string };
          const k = KEYS.owned(t.id, kind, obj.id);
          await repo
            .commit({ [k]: 0, [KEYS.index(kind, obj.id)]: 0 }, [
              put(k, obj),
              put(KEYS.index(kind, obj.id), t.id),
            ])
            .catch(conflict(`${kind.slice(0, -1)} "${obj.id}" exists`));
          await after?.(t.id, obj);
          return { status: 201, body: obj };
        });
      },
    );
    app.get<{ Params: { t: string }; Querystring: { limit?: number; after?: string } }>(
      `/api/v1/tenants/:t/${kind}`,
      { schema: { querystring: PageQuery } },
      async (req) => {
        need(req, 'operator', 'tenant', 'cross-domain');
        await tenantAccess(req, req.params.t);
        const p = page(req.query);
        const r = await repo.list<object>(
          KEYS.ownedKind(req.params.t, kind),
          p.limit,
          p.after === undefined ? undefined : KEYS.owned(req.params.t, kind, p.after),
        );
        return {
          items: r.items.map((d) => d.value),
          next: r.more ? r.last!.slice(KEYS.ownedKind(req.params.t, kind).length) : null,
        };
      },
    );
    app.get<{ Params: { t: string; id: string } }>(`/api/v1/tenants/:t/${kind}/:id`, async (req, reply) => {
      need(req, 'operator', 'tenant', 'cross-domain');
      await tenantAccess(req, req.params.t);
      const d = await repo.get<object>(KEYS.owned(req.params.t, kind, req.params.id));
      if (d === undefined) throw new HttpError(404, `no ${kind.slice(0, -1)} "${req.params.id}"`);
      return withEtag(reply, d);
    });
    app.put<{ Params: { t: string; id: string }; Body: Static<S> }>(
      `/api/v1/tenants/:t/${kind}/:id`,
      { schema: { body: schema } },
      async (req, reply) => {
        need(req, 'operator', 'tenant');
        const t = await tenantAccess(req, req.params.t);
        const k = KEYS.owned(t.id, kind, req.params.id);
        const cur = await repo.get<object>(k);
        if (cur === undefined) throw new HttpError(404, `no ${kind.slice(0, -1)} "${req.params.id}"`);
        const ifMatch = req.headers['if-match'];
        if (ifMatch !== undefined && ifMatch !== `"${cur.rev}"`)
          throw new HttpError(412, `If-Match ${ifMatch} does not match the current ETag "${cur.rev}"`);
        if ((req.body as { id: string }).id !== req.params.id)
          throw new HttpError(400, 'body.id: must equal the id in the path');
        const obj = await make(t.id, req.body as Static<S>);
        const rev = await repo
          .commit({ [k]: cur.rev }, [put(k, obj)])
          .catch(conflict('changed concurrently: read it again'));
        await after?.(t.id, obj);
        return reply.header('etag', `"${rev}"`).send(obj);
      },
    );
    app.delete<{ Params: { t: string; id: string } }>(
      `/api/v1/tenants/:t/${kind}/:id`,
      async (req, reply) => {
        need(req, 'operator', 'tenant');
        const t = await tenantAccess(req, req.params.t);
        const k = KEYS.owned(t.id, kind, req.params.id);
        const cur = await repo.get<object>(k);
        if (cur === undefined) throw new HttpError(404, `no ${kind.slice(0, -1)} "${req.params.id}"`);
        if (kind === 'vces') {
          const bound = (await core.owned<WanBinding>(t.id, 'bindings')).filter(
            (b) => b.vce === req.params.id,
          );
          if (bound.length > 0)
            throw new HttpError(
              409,
              `vCE "${req.params.id}" still has bindings: ${bound.map((b) => b.id).join(', ')}`,
            );
        }
        await repo.commit({ [k]: cur.rev }, [del(k), del(KEYS.index(kind, req.params.id))]);
        await after?.(t.id, cur.value);
        if (kind === 'attachments') await core.ipam.release(req.params.id);
        return reply.status(204).send();
      },
    );
  };

  owned('containers', ContainerBody, (tenant, b) => {
    const c: Container = { id: b.id, tenant, name: b.name };
    return Promise.resolve(c);
  });

  owned(
    'vces',
    VceBody,
    async (tenant, b) => {
      if ((await repo.get(KEYS.host(b.host))) === undefined)
        throw new HttpError(400, `body.host: no host "${b.host}"`);
      const names = new Set<string>();
      for (const c of b.contexts) {
        if (names.has(c.name)) throw new HttpError(400, `body.contexts: "${c.name}" appears twice`);
        names.add(c.name);
      }
      const v: VceInstance = { ...b, tenant, zoneRules: b.zoneRules ?? [] };
      // QoS policies are checked now by the agent's own reader (zone rules name zones that
      // attachments bring later, so they are checked when the configuration is built)
      if (v.qosPolicies !== undefined && v.qosPolicies.length > 0) {
        try {
          buildAgentConfig({
            'router-id': '192.0.2.1',
            interfaces: [{ name: 'probe', kind: 'vxlan', vni: 1, remotes: ['192.0.2.2'] }],
            dataplane: { 'qos-policies': v.qosPolicies },
          });
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
          throw new HttpError(400, `body.qosPolicies: ${e.message.replace(/^dataplane\.qos-policies/, '')}`);
        }
      }
      return v;
    },
    async (tenant, obj) => {
      await core.publishAgentConfig(tenant, (obj as VceInstance).id);
    },
  );

  owned(
    'attachments',
    AttachmentBody,
    async (tenant, b) => {
      const vce = await core.ownedOne<VceInstance>(tenant, 'vces', b.vce);
      if (vce === undefined) throw new HttpError(400, `body.vce: no vCE "${b.vce}" in tenant "${tenant}"`);
      if (!vce.contexts.some((c) => c.name === b.context))
        throw new HttpError(400, `body.context: vCE "${b.vce}" has no context "${b.context}"`);
      if (b.qosProfile !== undefined && !(vce.qosPolicies ?? []).some((q) => q['name'] === b.qosProfile))
        throw new HttpError(400, `body.qosProfile: vCE "${b.vce}" has no QoS policy "${b.qosProfile}"`);
      const addresses = b.addresses ?? [];
      for (const [i, a] of addresses.entries()) {
        try {
          parsePrefix(a, true);
          core.ipam.checkTenantPrefix(a);
        } catch (e) {
          throw new HttpError(400, `body.addresses[${i}]: ${(e as Error).message}`);
        }
      }
      // the VNI first: a VNI in use refuses the attachment before an address block is allocated
      let vni = b.vni;
      if (vni === undefined) vni = await core.ipam.allocateVni(b.id, tenant);
      else await core.ipam.claimVni(vni, b.id, tenant);
      if (addresses.length === 0) {
        const p = await core.ipam.allocatePrefix('tenant', 24, b.id, tenant);
        const gw = new Uint8Array(p.addr);
        gw[3] = 1;
        addresses.push(`${[...gw].join('.')}/24`);
      }
      const a: Attachment = {
        id: b.id,
        tenant,
        vce: b.vce,
        context: b.context,
        kind: 'vxlan',
        vni,
        addresses,
        zone: b.zone,
        qosProfile: b.qosProfile,
      };
      return a;
    },
    async (tenant, obj) => {
      await core.publishAgentConfig(tenant, (obj as Attachment).vce);
    },
  );

  owned(
    'endpoints',
    EndpointBody,
    async (tenant, b) => {
      if ((await repo.get(KEYS.host(b.host))) === undefined)
        throw new HttpError(400, `body.host: no host "${b.host}"`);
      const att = await core.ownedOne<Attachment>(tenant, 'attachments', b.attachment);
      if (att === undefined)
        throw new HttpError(400, `body.attachment: no attachment "${b.attachment}" in tenant "${tenant}"`);
      if (b.container !== undefined && (await core.ownedOne(tenant, 'containers', b.container)) === undefined)
        throw new HttpError(400, `body.container: no container "${b.container}" in tenant "${tenant}"`);
      const e: Endpoint = { ...b, tenant };
      return e;
    },
    async (tenant, obj) => {
      const att = await core.ownedOne<Attachment>(tenant, 'attachments', (obj as Endpoint).attachment);
      if (att !== undefined) await core.publishAgentConfig(tenant, att.vce);
    },
  );

  // ---------------------------------------------------------------- bindings and operations
  const createBinding = async (
    req: FastifyRequest<{ Params: { t: string }; Body: Static<typeof BindingBody> }>,
    reply: FastifyReply,
    mode: 'push-inter-domain' | 'push-cross-domain',
  ): Promise<unknown> => {
    const t = await tenantAccess(req, req.params.t);
    if (t.state !== 'active') throw new HttpError(409, `tenant "${t.id}" is being terminated`);
    return idempotent(req, reply, async () => {
      const b = req.body;
      const vce = await core.ownedOne<VceInstance>(t.id, 'vces', b.vce);
      if (vce === undefined) throw new HttpError(400, `body.vce: no vCE "${b.vce}" in tenant "${t.id}"`);
      if (!vce.contexts.some((c) => c.name === b.context))
        throw new HttpError(400, `body.context: vCE "${b.vce}" has no context "${b.context}"`);
      const pe = (await core.pes()).get(b.pe);
      if (pe === undefined) throw new HttpError(400, `body.pe: no PE "${b.pe}"`);
      if (b.dynamic === true && pe.dynamicRange === undefined)
        throw new HttpError(400, `body.dynamic: PE "${b.pe}" has no dynamic-neighbour range`);
      // a WAN VRF belongs to one tenant: never connect a customer to another's VRF (§7.1)
      const vrfKey = KEYS.index('vrf', `${b.pe}|${b.wanVrf}`);
      const owner = await repo.get<string>(vrfKey);
      if (owner !== undefined && owner.value !== t.id)
        throw new HttpError(409, `body.wanVrf: VRF "${b.wanVrf}" on PE "${b.pe}" belongs to another tenant`);
      const binding: WanBinding = {
        id: b.id,
        tenant: t.id,
        vce: b.vce,
        context: b.context,
        pe: b.pe,
        mode,
        wanVrf: b.wanVrf,
        rd: b.rd,
        importRts: b.importRts,
        exportRts: b.exportRts,
        protocol: b.protocol ?? 'bgp',
        dynamic: b.dynamic ?? false,
        peAttachment: b.peAttachment,
        peAddress: b.peAddress,
        ceAddress: b.ceAddress,
        bfd: b.bfd ?? false,
        staticPrefixes: b.staticPrefixes ?? [],
        state: 'provisioning',
      };
      const op = newOperation('bind', t.id, binding.id, mode);
      await repo
        .commit(
          {
            [KEYS.owned(t.id, 'bindings', binding.id)]: 0,
            [KEYS.index('bindings', binding.id)]: 0,
            [vrfKey]: owner?.rev ?? 0,
          },
          [...bindingOps(binding, op), put(vrfKey, t.id)],
        )
        .catch(conflict(`binding "${binding.id}" exists, or VRF "${b.wanVrf}" was taken concurrently`));
      runner.kick(op.id);
      return { status: 202, body: { binding, operation: op } };
    });
  };
  app.post<{ Params: { t: string }; Body: Static<typeof BindingBody> }>(
    '/api/v1/tenants/:t/bindings',
    { schema: { body: BindingBody } },
    async (req, reply) => {
      need(req, 'operator', 'tenant');
      if (req.body.mode === 'push-cross-domain')
        throw new HttpError(
          403,
          'body.mode: cross-domain bindings are started by the cross-domain orchestrator (POST /api/v1/cross-domain/tenants/{t}/bindings)',
        );
      return createBinding(req, reply, 'push-inter-domain');
    },
  );
  app.post<{ Params: { t: string }; Body: Static<typeof BindingBody> }>(
    '/api/v1/cross-domain/tenants/:t/bindings',
    { schema: { body: BindingBody } },
    async (req, reply) => {
      need(req, 'cross-domain', 'operator');
      return createBinding(req, reply, 'push-cross-domain');
    },
  );
  app.get<{ Params: { t: string } }>('/api/v1/tenants/:t/bindings', async (req) => {
    need(req, 'operator', 'tenant', 'cross-domain');
    await tenantAccess(req, req.params.t);
    return { items: await core.owned<WanBinding>(req.params.t, 'bindings'), next: null };
  });
  app.get<{ Params: { t: string; id: string } }>('/api/v1/tenants/:t/bindings/:id', async (req, reply) => {
    need(req, 'operator', 'tenant', 'cross-domain');
    await tenantAccess(req, req.params.t);
    const d = await repo.get<WanBinding>(KEYS.owned(req.params.t, 'bindings', req.params.id));
    if (d === undefined) throw new HttpError(404, `no binding "${req.params.id}"`);
    return withEtag(reply, d);
  });
  app.delete<{ Params: { t: string; id: string } }>('/api/v1/tenants/:t/bindings/:id', async (req, reply) => {
    need(req, 'operator', 'tenant', 'cross-domain');
    const t = await tenantAccess(req, req.params.t);
    return idempotent(req, reply, async () => {
      const b = await core.ownedOne<WanBinding>(t.id, 'bindings', req.params.id);
      if (b === undefined) throw new HttpError(404, `no binding "${req.params.id}"`);
      const op = newOperation('unbind', t.id, b.id);
      await repo.commit({}, [put(KEYS.operation(op.id), op)]);
      runner.kick(op.id);
      return { status: 202, body: op };
    });
  });
  app.get<{ Params: { id: string } }>('/api/v1/operations/:id', async (req) => {
    need(req, 'operator', 'tenant', 'cross-domain');
    const d = await repo.get<Operation>(KEYS.operation(req.params.id));
    if (d === undefined) throw new HttpError(404, `no operation "${req.params.id}"`);
    if (req.auth!.role === 'tenant' && req.auth!.scope !== d.value.tenant)
      throw new HttpError(404, `no operation "${req.params.id}"`);
    return d.value;
  });
  app.get<{ Querystring: { tenant?: string } }>('/api/v1/operations', async (req) => {
    const a = need(req, 'operator', 'tenant', 'cross-domain');
    const tenant = a.role === 'tenant' ? a.scope : req.query.tenant;
    const all = (await repo.all<Operation>(KEYS.operations)).map((d) => d.value);
    return {
      items: all
        .filter((o) => tenant === undefined || o.tenant === tenant)
        .sort((x, y) => x.createdAt.localeCompare(y.createdAt)),
    };
  });

  // ---------------------------------------------------------------- agents
  const agentAccess = (req: FastifyRequest, id: string): void => {
    const a = req.auth!;
    if (a.role === 'operator') return;
    if (a.role !== 'agent') throw new HttpError(403, `the ${a.role} role may not do this`);
    if (a.scope === id) return;
    throw new HttpError(404, `no agent "${id}"`);
  };
  app.get<{ Params: { id: string } }>('/api/v1/agents/:id/config', async (req, reply) => {
    agentAccess(req, req.params.id);
    const d = await repo.get<AgentConfigDoc>(KEYS.agentConfig(req.params.id));
    if (d === undefined) throw new HttpError(404, `no configuration for vCE "${req.params.id}" yet`);
    return reply.header('etag', `"${d.rev}"`).send({ revision: d.rev, config: d.value.config });
  });
  // Open configuration streams never end by themselves, and close() waits for every in-flight
  // request: end them first, or a controller with a connected agent would never stop (SIGTERM).
  const streams = new Set<ServerResponse>();
  app.addHook('preClose', (done) => {
    for (const s of streams) s.end();
    done();
  });
  app.get<{ Params: { id: string }; Querystring: { revision?: string } }>(
    '/api/v1/agents/:id/config/stream',
    async (req, reply) => {
      agentAccess(req, req.params.id);
      const key = KEYS.agentConfig(req.params.id);
      const since = Number(req.query.revision ?? req.headers['last-event-id'] ?? 0);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      // headers now: an agent resuming from its last revision may get no event for a long time
      res.flushHeaders();
      streams.add(res);
      res.once('close', () => streams.delete(res));
      const send = (rev: number, config: unknown): void => {
        res.write(`event: config\nid: ${rev}\ndata: ${JSON.stringify({ revision: rev, config })}\n\n`);
      };
      const cur = await repo.kv.get(key);
      let last = since;
      if (cur !== undefined && cur.modRevision > since) {
        send(cur.modRevision, (JSON.parse(cur.value) as AgentConfigDoc).config);
        last = cur.modRevision;
      }
      const w = await repo.kv.watch(key, (cur?.modRevision ?? (await repo.kv.revision())) + 1, {
        onEvents: (evs) => {
          for (const e of evs) {
            if (e.type !== 'put' || e.modRevision <= last) continue;
            last = e.modRevision;
            send(e.modRevision, (JSON.parse(e.value) as AgentConfigDoc).config);
          }
        },
        onError: () => res.end(),
      });
      const beat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
      req.raw.on('close', () => {
        clearInterval(beat);
        w.cancel();
      });
    },
  );
  app.put<{ Params: { id: string }; Body: AgentStatus }>('/api/v1/agents/:id/status', async (req, reply) => {
    agentAccess(req, req.params.id);
    const lease = await repo.kv.grantLease(opts.statusLeaseSeconds ?? 30);
    const prev = await repo.kv.get(KEYS.agentStatus(req.params.id));
    await repo.kv.put(
      KEYS.agentStatus(req.params.id),
      JSON.stringify({ ...req.body, vce: req.params.id, at: new Date().toISOString() }),
      lease,
    );
    if (prev !== undefined && prev.lease !== 0) await repo.kv.revokeLease(prev.lease).catch(() => undefined);
    // (workflows waiting for this agent see the report at their next retry: no scan of every
    // operation on every status report)
    return reply.status(204).send();
  });
  app.get<{ Params: { id: string } }>('/api/v1/agents/:id/status', async (req) => {
    agentAccess(req, req.params.id);
    const s = await core.agentStatus(req.params.id);
    if (s === undefined) throw new HttpError(404, `vCE "${req.params.id}" has not reported`);
    return s;
  });

  // ---------------------------------------------------------------- alarms (raised by the reconciler)
  const alarms = new Alarms(repo);
  const AlarmQuery = Type.Object({
    active: Type.Optional(Type.Boolean()),
    tenant: Type.Optional(Type.String()),
    kind: Type.Optional(Type.String()),
  });
  app.get('/api/v1/alarms', { schema: { querystring: AlarmQuery } }, async (req) => {
    const a = need(req, 'operator', 'tenant');
    // a tenant token sees its tenant's alarms only, whatever it asks for
    const tenant = a.role === 'tenant' ? (a.scope ?? '') : req.query.tenant;
    return { items: await alarms.list({ active: req.query.active, tenant, kind: req.query.kind }) };
  });
  app.post<{ Params: { id: string } }>('/api/v1/alarms/:id/ack', async (req) => {
    const a = need(req, 'operator');
    const alarm = await alarms.ack(req.params.id, a.name);
    if (alarm === undefined) throw new HttpError(404, `no alarm "${req.params.id}"`);
    return alarm;
  });

  return app;
}

function conflict(message: string): (e: unknown) => never {
  return (e: unknown) => {
    if (e instanceof ConflictError) throw new HttpError(409, message);
    throw e;
  };
}
