/**
 * Routing-context endpoints of the agent API: the contexts, their FIB with the source of every
 * entry, and the controller route interface (draft §3.1 "controller approach", §8.2.2 Model 2):
 * `PUT /api/v1/vrfs/{name}/routes` installs (or renews) the controller's routes for a lease,
 * `DELETE` removes one prefix or all. Routes whose lease is not renewed leave the FIB.
 */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { parseAddress, parsePrefix, type Prefix } from '../lib/ip.ts';
import type { RoutingContext } from '../routing/context.ts';

const ErrorBody = Type.Object({ error: Type.String(), message: Type.String() });
const NameParam = Type.Object({ name: Type.String() });
const FibEntry = Type.Object({
  prefix: Type.String(),
  action: Type.Union([Type.Literal('forward'), Type.Literal('blackhole'), Type.Literal('reject')]),
  'next-hop': Type.Union([Type.String(), Type.Null()]),
  interface: Type.Union([Type.String(), Type.Null()]),
  source: Type.Union([
    Type.Literal('connected'),
    Type.Literal('static'),
    Type.Literal('controller'),
    Type.Literal('bgp'),
  ]),
  distance: Type.Integer(),
  alternatives: Type.Array(Type.String()),
});
const ControllerRoute = Type.Object({
  prefix: Type.String(),
  'next-hop': Type.Optional(Type.String()),
  interface: Type.Optional(Type.String()),
  action: Type.Optional(
    Type.Union([Type.Literal('forward'), Type.Literal('blackhole'), Type.Literal('reject')]),
  ),
  distance: Type.Optional(Type.Integer({ minimum: 1, maximum: 255 })),
});

interface RouteBody {
  routes: {
    prefix: string;
    'next-hop'?: string;
    interface?: string;
    action?: 'forward' | 'blackhole' | 'reject';
    distance?: number;
  }[];
  'lease-seconds'?: number;
}

export function registerContextRoutes(
  app: FastifyInstance,
  contexts: ReadonlyMap<string, RoutingContext>,
  leaseSeconds: number,
): void {
  // Expired controller routes are dropped before any read or change (the 1 s sweep may lag).
  const ctxOr404 = (name: string): RoutingContext | undefined => {
    const c = contexts.get(name);
    c?.expire(Date.now());
    return c;
  };

  app.get(
    '/api/v1/vrfs',
    {
      schema: {
        summary: 'Routing contexts (VRFs) of this vCE',
        response: {
          200: Type.Array(
            Type.Object({
              name: Type.String(),
              'route-distinguisher': Type.Union([Type.String(), Type.Null()]),
              bgp: Type.Boolean(),
              routes: Type.Object({
                connected: Type.Integer(),
                static: Type.Integer(),
                controller: Type.Integer(),
              }),
              'fib-size': Type.Integer(),
            }),
          ),
        },
      },
    },
    () =>
      [...contexts.keys()]
        .map((n) => ctxOr404(n)!)
        .map((c) => ({
          name: c.name,
          'route-distinguisher': c.routeDistinguisher ?? null,
          bgp: c.speaker !== undefined,
          routes: {
            connected: c.list('connected').length,
            static: c.list('static').length,
            controller: c.list('controller').length,
          },
          'fib-size': c.fib().length,
        })),
  );

  app.get<{ Params: { name: string } }>(
    '/api/v1/vrfs/:name',
    {
      schema: {
        summary: 'One routing context: its route distinguisher and route targets (PE VRF, RFC 4364)',
        params: NameParam,
        response: {
          200: Type.Object({
            name: Type.String(),
            'route-distinguisher': Type.Union([Type.String(), Type.Null()]),
            'route-targets': Type.Object({
              import: Type.Array(Type.String()),
              export: Type.Array(Type.String()),
            }),
            bgp: Type.Boolean(),
          }),
          404: ErrorBody,
        },
      },
    },
    (req, reply) => {
      const c = ctxOr404(req.params.name);
      if (c === undefined)
        return reply
          .status(404)
          .send({ error: 'not-found', message: `no routing context "${req.params.name}"` });
      return {
        name: c.name,
        'route-distinguisher': c.routeDistinguisher ?? null,
        'route-targets': { import: [...c.routeTargets.import], export: [...c.routeTargets.export] },
        bgp: c.speaker !== undefined,
      };
    },
  );

  app.get<{ Params: { name: string } }>(
    '/api/v1/vrfs/:name/interfaces',
    {
      schema: {
        summary: 'Interfaces (attachment circuits) of a context with their addresses',
        params: NameParam,
        response: {
          200: Type.Array(Type.Object({ name: Type.String(), addresses: Type.Array(Type.String()) })),
          404: ErrorBody,
        },
      },
    },
    (req, reply) => {
      const c = ctxOr404(req.params.name);
      if (c === undefined)
        return reply
          .status(404)
          .send({ error: 'not-found', message: `no routing context "${req.params.name}"` });
      return c.interfaces;
    },
  );

  app.get<{ Params: { name: string }; Querystring: { family?: '4' | '6' } }>(
    '/api/v1/vrfs/:name/fib',
    {
      schema: {
        summary: 'The FIB of a context: the best route of every source per prefix, with its source',
        params: NameParam,
        querystring: Type.Object({
          family: Type.Optional(Type.Union([Type.Literal('4'), Type.Literal('6')])),
        }),
        response: { 200: Type.Array(FibEntry), 404: ErrorBody },
      },
    },
    (req, reply) => {
      const c = ctxOr404(req.params.name);
      if (c === undefined)
        return reply
          .status(404)
          .send({ error: 'not-found', message: `no routing context "${req.params.name}"` });
      return c.fib(req.query.family === undefined ? undefined : req.query.family === '4' ? 4 : 6);
    },
  );

  app.put<{ Params: { name: string }; Body: RouteBody }>(
    '/api/v1/vrfs/:name/routes',
    {
      schema: {
        summary: 'Install or renew controller routes in a context for a lease (I2RS-style ephemeral routes)',
        params: NameParam,
        body: Type.Object({
          routes: Type.Array(ControllerRoute, { maxItems: 100000 }),
          'lease-seconds': Type.Optional(Type.Integer({ minimum: 1, maximum: 86400 })),
        }),
        response: {
          200: Type.Object({ installed: Type.Integer(), 'expires-at': Type.String() }),
          400: ErrorBody,
          404: ErrorBody,
        },
      },
    },
    (req, reply) => {
      const c = ctxOr404(req.params.name);
      if (c === undefined)
        return reply
          .status(404)
          .send({ error: 'not-found', message: `no routing context "${req.params.name}"` });
      // Validate everything first: a bad entry installs nothing.
      const parsed: { prefix: Prefix; route: Parameters<RoutingContext['set']>[2] }[] = [];
      const expiresAt = Date.now() + (req.body['lease-seconds'] ?? leaseSeconds) * 1000;
      for (const [i, r] of req.body.routes.entries()) {
        const where = `routes[${i}]`;
        let prefix: Prefix;
        let nextHop: Uint8Array | undefined;
        try {
          prefix = parsePrefix(r.prefix);
          nextHop = r['next-hop'] === undefined ? undefined : parseAddress(r['next-hop']);
        } catch (e) {
          return reply
            .status(400)
            .send({ error: 'bad-request', message: `${where}: ${(e as Error).message}` });
        }
        const action = r.action ?? 'forward';
        if (nextHop !== undefined && nextHop.length !== prefix.addr.length)
          return reply
            .status(400)
            .send({ error: 'bad-request', message: `${where}.next-hop: not of the family of ${r.prefix}` });
        if (action === 'forward' && nextHop === undefined && r.interface === undefined)
          return reply.status(400).send({
            error: 'bad-request',
            message: `${where}: a forwarding route needs next-hop or interface`,
          });
        parsed.push({
          prefix,
          route: { action, nextHop, interface: r.interface, distance: r.distance ?? 10, expiresAt },
        });
      }
      for (const { prefix, route } of parsed) c.set('controller', prefix, route);
      return { installed: parsed.length, 'expires-at': new Date(expiresAt).toISOString() };
    },
  );

  app.delete<{ Params: { name: string }; Querystring: { prefix?: string } }>(
    '/api/v1/vrfs/:name/routes',
    {
      schema: {
        summary: 'Remove one controller route (?prefix=) or all of them from a context',
        params: NameParam,
        querystring: Type.Object({ prefix: Type.Optional(Type.String()) }),
        response: { 200: Type.Object({ removed: Type.Integer() }), 400: ErrorBody, 404: ErrorBody },
      },
    },
    (req, reply) => {
      const c = ctxOr404(req.params.name);
      if (c === undefined)
        return reply
          .status(404)
          .send({ error: 'not-found', message: `no routing context "${req.params.name}"` });
      if (req.query.prefix !== undefined) {
        let p: Prefix;
        try {
          p = parsePrefix(req.query.prefix);
        } catch (e) {
          return reply.status(400).send({ error: 'bad-request', message: `prefix: ${(e as Error).message}` });
        }
        const had = c.get('controller', p) !== undefined;
        c.set('controller', p, undefined);
        return { removed: had ? 1 : 0 };
      }
      const all = c.list('controller');
      for (const r of all) c.set('controller', r.prefix, undefined);
      return { removed: all.length };
    },
  );
}
