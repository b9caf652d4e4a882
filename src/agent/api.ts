/**
 * The agent's management API (fastify, JSON; OpenAPI 3 at /api/v1/openapi.json) and Prometheus
 * metrics at /metrics. Every handler reads the speaker synchronously (no await in the middle of a
 * RIB read). Bad requests get a 400 with a precise message, unknown things a 404.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import { Type } from 'typebox';
import { Registry, Gauge, collectDefaultMetrics } from 'prom-client';
import path from 'node:path';
import os from 'node:os';
import { AFI_SAFIS, afiSafiCode, type AfiSafiName } from '../bgp/wire/constants.ts';
import type { Speaker } from '../bgp/speaker.ts';
import { neighborViews, parsePrefixQuery, routeViews } from '../bgp/rib-view.ts';
import { dumpRib } from '../bgp/mrt-dump.ts';
import { RoutingContext } from '../routing/context.ts';
import { registerContextRoutes } from './api-contexts.ts';
import { registerDataplaneRoutes } from './api-dataplane.ts';
import type { AgentDataplane } from './dataplane.ts';
import type { BfdManager } from '../bfd/transport.ts';
import { buildAgentConfig, ConfigError, type AgentConfig } from './config.ts';
import { ApplyRefused, type ApplyReport } from './apply.ts';
import { bfdDiagName } from '../bfd/packet.ts';

const FamilyCounts = Type.Object({
  received: Type.Integer(),
  accepted: Type.Integer(),
  advertised: Type.Integer(),
});
const Neighbor = Type.Object({
  address: Type.String(),
  'peer-asn': Type.Integer(),
  description: Type.Optional(Type.String()),
  state: Type.Union(
    ['idle', 'connect', 'active', 'opensent', 'openconfirm', 'established'].map((s) => Type.Literal(s)),
  ),
  'uptime-s': Type.Integer(),
  'router-id': Type.Union([Type.String(), Type.Null()]),
  'afi-safis': Type.Record(Type.String(), FamilyCounts),
  'last-error': Type.Union([Type.String(), Type.Null()]),
  messages: Type.Object({
    in: Type.Integer(),
    out: Type.Integer(),
    'updates-in': Type.Integer(),
    'updates-out': Type.Integer(),
  }),
  flaps: Type.Integer(),
});
const Path = Type.Object({
  best: Type.Boolean(),
  reason: Type.String({ description: 'why the best path won (decision step), or why this one lost' }),
  'next-hop': Type.String(),
  'as-path': Type.String(),
  origin: Type.Union([Type.Literal('igp'), Type.Literal('egp'), Type.Literal('incomplete')]),
  med: Type.Union([Type.Integer(), Type.Null()]),
  'local-pref': Type.Union([Type.Integer(), Type.Null()]),
  communities: Type.Array(Type.String()),
  'large-communities': Type.Array(Type.String()),
  'ext-communities': Type.Array(Type.String()),
  from: Type.String(),
  'path-id': Type.Integer(),
  labels: Type.Optional(Type.Array(Type.Integer())),
  stale: Type.Boolean(),
});
const Route = Type.Object({
  prefix: Type.String(),
  rd: Type.Optional(Type.String()),
  paths: Type.Array(Path),
});
const ErrorBody = Type.Object({ error: Type.String(), message: Type.String() });
const FamilyParam = Type.Object({ afiSafi: Type.Union(AFI_SAFIS.map((f) => Type.Literal(f))) });
const AddressParam = Type.Object({ address: Type.String() });

type FamilyParams = { afiSafi: AfiSafiName };

export interface ApiOptions {
  /** The routing contexts of the agent (`default` first); or, for a bare speaker, `speaker`. */
  readonly contexts?: ReadonlyMap<string, RoutingContext>;
  readonly speaker?: Speaker;
  readonly dumpDir?: string;
  /** Default lease of controller routes, seconds. */
  readonly leaseSeconds?: number;
  readonly bfd?: BfdManager;
  /** Reconfiguration (PUT /api/v1/config): absent for a bare speaker. */
  readonly apply?: (next: AgentConfig) => Promise<ApplyReport>;
  /** The running configuration document (GET /api/v1/config), when known. */
  readonly config?: () => unknown;
  /** The forwarding plane, when the agent runs one. */
  readonly dataplane?: AgentDataplane;
}

/** Prometheus metrics, labelled by routing context (`vrf`); values are read at scrape time. */
function metrics(
  contexts: ReadonlyMap<string, RoutingContext>,
  reg: Registry,
  bfd: BfdManager | undefined,
): void {
  const speakers = function* (): Generator<[string, Speaker]> {
    for (const [name, c] of contexts) if (c.speaker !== undefined) yield [name, c.speaker];
  };
  const gauge = (
    name: string,
    help: string,
    labelNames: string[],
    fill: (set: (l: Record<string, string>, v: number) => void) => void,
  ): void => {
    new Gauge({
      name,
      help,
      labelNames,
      registers: [reg],
      collect() {
        this.reset();
        fill((l, v) => this.set(l, v));
      },
    });
  };
  gauge(
    'vce_bgp_neighbor_up',
    '1 when the BGP session is Established',
    ['vrf', 'neighbor', 'peer_asn'],
    (set) => {
      for (const [vrf, sp] of speakers())
        for (const p of sp.peerList())
          set({ vrf, neighbor: p.cfg.address, peer_asn: String(p.cfg.peerAsn) }, p.established ? 1 : 0);
    },
  );
  gauge(
    'vce_bgp_prefixes',
    'Prefixes per neighbour and family (received, accepted, advertised)',
    ['vrf', 'neighbor', 'afi_safi', 'kind'],
    (set) => {
      for (const [vrf, sp] of speakers())
        for (const v of neighborViews(sp))
          for (const [f, c] of Object.entries(v['afi-safis'])) {
            set({ vrf, neighbor: v.address, afi_safi: f, kind: 'received' }, c.received);
            set({ vrf, neighbor: v.address, afi_safi: f, kind: 'accepted' }, c.accepted);
            set({ vrf, neighbor: v.address, afi_safi: f, kind: 'advertised' }, c.advertised);
          }
    },
  );
  gauge('vce_bgp_session_flaps', 'Times the session left Established', ['vrf', 'neighbor'], (set) => {
    for (const [vrf, sp] of speakers())
      for (const p of sp.peerList()) set({ vrf, neighbor: p.cfg.address }, p.stats.flaps);
  });
  gauge('vce_bgp_update_errors', 'RFC 7606 errors seen per neighbour', ['vrf', 'neighbor'], (set) => {
    for (const [vrf, sp] of speakers())
      for (const p of sp.peerList()) set({ vrf, neighbor: p.cfg.address }, p.stats.errors7606);
  });
  gauge('vce_bgp_loc_rib_routes', 'Destinations with a best path, per family', ['vrf', 'afi_safi'], (set) => {
    for (const [vrf, sp] of speakers())
      for (const [f, rib] of sp.ribs) set({ vrf, afi_safi: f }, rib.countBest());
  });
  gauge('vce_bgp_attribute_sets', 'Interned path attribute sets', ['vrf'], (set) => {
    for (const [vrf, sp] of speakers()) set({ vrf }, sp.attrs.size);
  });
  gauge('vce_fib_entries', 'FIB entries per context and source', ['vrf', 'source'], (set) => {
    for (const [vrf, c] of contexts) {
      const n = new Map<string, number>();
      for (const e of c.fib()) n.set(e.source, (n.get(e.source) ?? 0) + 1);
      for (const [source, v] of n) set({ vrf, source }, v);
    }
  });
  gauge('vce_bfd_session_up', '1 when the BFD session is Up', ['peer', 'local_address'], (set) => {
    for (const b of bfd?.list() ?? [])
      set({ peer: b.peer, local_address: b.localAddress }, b.state === 'Up' ? 1 : 0);
  });
}

export async function buildAgentApi(opts: ApiOptions): Promise<FastifyInstance> {
  const contexts: ReadonlyMap<string, RoutingContext> =
    opts.contexts ?? new Map([['default', new RoutingContext('default', opts.speaker)]]);
  const leaseSeconds = opts.leaseSeconds ?? 60;
  const app = Fastify({ logger: false });
  // BGP endpoints act on one context's speaker: `?vrf=NAME` (default: the default context).
  const speakers = new WeakMap<object, Speaker>();
  const spOf = (req: object): Speaker => speakers.get(req)!;
  app.addHook('preHandler', async (req, reply) => {
    if (!req.url.startsWith('/api/v1/bgp/')) return;
    const vrf = (req.query as { vrf?: string } | undefined)?.vrf ?? 'default';
    const ctx = contexts.get(vrf);
    if (ctx === undefined)
      return reply.status(404).send({ error: 'not-found', message: `no routing context "${vrf}"` });
    if (ctx.speaker === undefined)
      return reply.status(404).send({ error: 'not-found', message: `routing context "${vrf}" runs no BGP` });
    speakers.set(req, ctx.speaker);
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'vce agent API',
        version: '1',
        description: 'Management interface of the vCE agent (draft-fang-l3vpn-virtual-ce §6.1)',
      },
    },
  });
  const reg = new Registry();
  collectDefaultMetrics({ register: reg, prefix: 'vce_' });
  metrics(contexts, reg, opts.bfd);
  app.setErrorHandler((err: { statusCode?: number; message: string; validation?: unknown }, _req, reply) => {
    const status =
      err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    void reply.status(status).send({
      error: status === 400 ? 'bad-request' : status === 404 ? 'not-found' : 'internal',
      message: err.message,
    });
  });

  app.get(
    '/api/v1/bgp/neighbors',
    {
      schema: { summary: 'BGP neighbours and their session state', response: { 200: Type.Array(Neighbor) } },
    },
    (req) => neighborViews(spOf(req)),
  );

  app.get<{ Params: { address: string } }>(
    '/api/v1/bgp/neighbors/:address',
    { schema: { params: AddressParam, response: { 200: Neighbor, 404: ErrorBody } } },
    (req, reply) => {
      const v = neighborViews(spOf(req)).find((n) => n.address === req.params.address);
      if (v === undefined)
        return reply.status(404).send({ error: 'not-found', message: `no neighbor ${req.params.address}` });
      return v;
    },
  );

  app.post<{ Params: { address: string }; Body: { action: string; 'afi-safi'?: string; message?: string } }>(
    '/api/v1/bgp/neighbors/:address/actions',
    {
      schema: {
        summary: 'Operate on a neighbour: soft-reset-in (route refresh), shutdown, enable',
        params: AddressParam,
        body: Type.Object({
          action: Type.Union([
            Type.Literal('soft-reset-in'),
            Type.Literal('shutdown'),
            Type.Literal('enable'),
          ]),
          'afi-safi': Type.Optional(Type.Union(AFI_SAFIS.map((f) => Type.Literal(f)))),
          message: Type.Optional(Type.String({ maxLength: 255 })),
        }),
        response: {
          200: Type.Object({ ok: Type.Boolean(), detail: Type.String() }),
          404: ErrorBody,
          409: ErrorBody,
        },
      },
    },
    (req, reply) => {
      const sp = spOf(req);
      const p = sp.neighbor(req.params.address);
      if (p === undefined)
        return reply.status(404).send({ error: 'not-found', message: `no neighbor ${req.params.address}` });
      const { action } = req.body;
      if (action === 'shutdown') {
        sp.stopPeer(p, 2, req.body.message);
        return { ok: true, detail: 'session closed with Cease/Administrative Shutdown' };
      }
      if (action === 'enable') {
        sp.startPeer(p);
        return { ok: true, detail: 'neighbor enabled' };
      }
      if (!p.established)
        return reply
          .status(409)
          .send({ error: 'conflict', message: `neighbor ${p.cfg.address} is not established` });
      const fams =
        req.body['afi-safi'] !== undefined
          ? [req.body['afi-safi'] as AfiSafiName]
          : [...p.negotiated!.families];
      const sent = fams.filter((f) => sp.refreshFrom(p, f));
      if (sent.length === 0)
        return reply
          .status(409)
          .send({ error: 'conflict', message: 'peer did not negotiate route refresh for that family' });
      return { ok: true, detail: `route refresh sent for ${sent.join(', ')}` };
    },
  );

  app.get<{ Params: FamilyParams; Querystring: { prefix?: string } }>(
    '/api/v1/bgp/rib/:afiSafi',
    {
      schema: {
        summary: 'Routes of one address family with every path and the reason the best one won',
        params: FamilyParam,
        querystring: Type.Object({ prefix: Type.Optional(Type.String()), vrf: Type.Optional(Type.String()) }),
        response: { 200: Type.Array(Route), 400: ErrorBody, 404: ErrorBody },
      },
    },
    (req, reply) => {
      const sp = spOf(req);
      const f = req.params.afiSafi;
      if (!sp.ribs.has(f))
        return reply.status(404).send({ error: 'not-found', message: `address family ${f} is not enabled` });
      let prefix;
      if (req.query.prefix !== undefined) {
        try {
          prefix = parsePrefixQuery(req.query.prefix);
        } catch (e) {
          return reply.status(400).send({ error: 'bad-request', message: `prefix: ${(e as Error).message}` });
        }
        const v4 = afiSafiCode(f).afi === 1;
        if ((prefix.addr.length === 4) !== v4)
          return reply
            .status(400)
            .send({ error: 'bad-request', message: `prefix ${req.query.prefix} is not of family ${f}` });
      }
      return routeViews(sp, f, prefix);
    },
  );

  app.post<{ Body: { path?: string } | undefined }>(
    '/api/v1/bgp/rib/dump',
    {
      schema: {
        summary: 'Write the unicast RIBs as an MRT TABLE_DUMP_V2 file (RFC 6396)',
        body: Type.Optional(Type.Object({ path: Type.Optional(Type.String()) })),
        response: { 200: Type.Object({ path: Type.String(), entries: Type.Integer() }) },
      },
    },
    async (req) => {
      const file = req.body?.path ?? path.join(opts.dumpDir ?? os.tmpdir(), `vce-rib-${Date.now()}.mrt`);
      const { entries } = await dumpRib(spOf(req), file);
      return { path: file, entries };
    },
  );

  app.get('/metrics', async (_req, reply) => {
    const text = await reg.metrics();
    return reply.type(reg.contentType).send(text);
  });

  registerContextRoutes(app, contexts, leaseSeconds);
  registerDataplaneRoutes(app, opts.dataplane, reg);

  app.get(
    '/api/v1/config',
    {
      schema: {
        summary: 'The running configuration document (what PUT /api/v1/config last applied, or the file)',
        response: { 200: Type.Object({}, { additionalProperties: true }), 404: ErrorBody },
      },
    },
    (_req, reply) => {
      const doc = opts.config?.();
      if (doc === undefined || doc === null || typeof doc !== 'object')
        return reply.status(404).send({ error: 'not-found', message: 'no configuration document' });
      return doc;
    },
  );

  app.put<{ Body: unknown }>(
    '/api/v1/config',
    {
      schema: {
        summary: 'Replace the configuration: validated whole first, then only the difference is applied',
        body: Type.Object({}, { additionalProperties: true }),
        response: {
          200: Type.Object({ applied: Type.Boolean(), changes: Type.Array(Type.String()) }),
          400: Type.Object({
            error: Type.String(),
            message: Type.String(),
            errors: Type.Array(Type.Object({ path: Type.String(), reason: Type.String() })),
          }),
          409: ErrorBody,
        },
      },
    },
    async (req, reply) => {
      if (opts.apply === undefined)
        return reply
          .status(409)
          .send({ error: 'conflict', message: 'this API serves a speaker without configuration' });
      let next: AgentConfig;
      try {
        next = buildAgentConfig(req.body);
      } catch (e) {
        if (e instanceof ConfigError) {
          // every problem of the document, each with its path
          const all = ((e as unknown as { all?: ConfigError[] }).all ?? [e]).map((x) => ({
            path: x.path,
            reason: x.reason,
          }));
          return reply.status(400).send({ error: 'bad-request', message: e.message, errors: all });
        }
        throw e;
      }
      try {
        const r = await opts.apply(next);
        return { applied: true, changes: r.changes };
      } catch (e) {
        if (e instanceof ApplyRefused)
          return reply.status(409).send({ error: 'conflict', message: e.message });
        throw e;
      }
    },
  );

  app.get(
    '/api/v1/bfd/sessions',
    {
      schema: {
        summary: 'BFD sessions (RFC 5880) with their negotiated timers',
        response: {
          200: Type.Array(
            Type.Object({
              peer: Type.String(),
              'local-address': Type.String(),
              multihop: Type.Boolean(),
              state: Type.String(),
              diagnostic: Type.String(),
              'local-discriminator': Type.Integer(),
              'remote-discriminator': Type.Integer(),
              clients: Type.Integer(),
              'tx-interval-ms': Type.Number(),
              'detect-time-ms': Type.Number(),
            }),
          ),
        },
      },
    },
    () =>
      (opts.bfd?.list() ?? []).map((b) => ({
        peer: b.peer,
        'local-address': b.localAddress,
        multihop: b.multihop,
        state: b.state,
        diagnostic: bfdDiagName(b.diag),
        'local-discriminator': b.localDiscr,
        'remote-discriminator': b.remoteDiscr,
        clients: b.refs,
        'tx-interval-ms': b.negotiated.txIntervalUs / 1000,
        'detect-time-ms': b.negotiated.detectTimeUs / 1000,
      })),
  );

  app.get('/api/v1/openapi.json', { schema: { hide: true } }, () => app.swagger());
  await app.ready();
  return app;
}
