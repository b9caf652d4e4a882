/**
 * `vce agent`: one tenant's vCE in the foreground — its routing contexts (the top level of the
 * configuration is the `default` context, `vrfs` add more), each with its static and connected
 * routes, controller routes, and its own BGP speaker when configured — plus the management API.
 * SIGTERM/SIGINT close every session with Cease/Administrative Shutdown and exit 0; an invalid
 * configuration exits 2 with a message naming the field.
 */
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import { loadAgentConfig, ConfigError, type AgentConfig } from './config.ts';
import { Speaker } from '../bgp/speaker.ts';
import { buildAgentApi } from './api.ts';
import { RoutingContext } from '../routing/context.ts';

export interface RunningAgent {
  /** The default context's speaker (throws when the default context runs no BGP). */
  readonly speaker: Speaker;
  readonly contexts: ReadonlyMap<string, RoutingContext>;
  readonly api?: FastifyInstance;
  readonly apiUrl?: string;
  stop(): Promise<void>;
}

export async function startAgent(
  cfg: AgentConfig,
  logger = pino({ level: cfg.logLevel }),
): Promise<RunningAgent> {
  const contexts = new Map<string, RoutingContext>();
  for (const c of cfg.contexts) {
    const sp = c.speaker === undefined ? undefined : new Speaker(c.speaker, logger.child({ vrf: c.name }));
    const ctx = new RoutingContext(c.name, sp, c.routeDistinguisher);
    for (const i of c.interfaces)
      for (const a of i.addresses)
        ctx.set('connected', a.prefix, { action: 'forward', interface: i.name, distance: 0 });
    for (const r of c.staticRoutes)
      ctx.set('static', r.prefix, {
        action: r.action,
        nextHop: r.nextHop,
        interface: r.interface,
        distance: r.distance,
        ...(r.bfd ? { usable: true } : {}),
      });
    contexts.set(c.name, ctx);
  }
  try {
    for (const ctx of contexts.values()) await ctx.speaker?.start();
  } catch (e) {
    for (const ctx of contexts.values()) await ctx.speaker?.stop();
    throw e;
  }
  // Controller routes are leased (I2RS-style ephemeral state): expired ones leave the FIB.
  const leaseTimer = setInterval(() => {
    const now = Date.now();
    for (const ctx of contexts.values()) {
      const n = ctx.expire(now);
      if (n > 0) logger.warn({ vrf: ctx.name, routes: n }, 'controller routes expired (lease not renewed)');
    }
  }, 1000);
  leaseTimer.unref();
  const speaker = contexts.get('default')?.speaker;
  let api: FastifyInstance | undefined;
  let apiUrl: string | undefined;
  if (cfg.api !== undefined) {
    api = await buildAgentApi({ contexts, leaseSeconds: cfg.controllerLeaseSeconds });
    apiUrl = await api.listen({ host: cfg.api.host, port: cfg.api.port });
  }
  logger.info(
    {
      routerId: cfg.routerIdText,
      tenant: cfg.tenant,
      contexts: [...contexts.keys()],
      asn: cfg.speaker?.asn,
      api: apiUrl,
      bgpPort: speaker?.listenPort,
    },
    'vce agent started',
  );
  return {
    get speaker(): Speaker {
      if (speaker === undefined) throw new Error('the default context runs no BGP');
      return speaker;
    },
    contexts,
    api,
    apiUrl,
    async stop() {
      clearInterval(leaseTimer);
      for (const ctx of contexts.values()) await ctx.speaker?.stop();
      await api?.close();
    },
  };
}

export async function runAgentCommand(file: string): Promise<void> {
  let cfg: AgentConfig;
  try {
    cfg = await loadAgentConfig(file);
  } catch (e) {
    if (e instanceof ConfigError || (e as NodeJS.ErrnoException).code === 'ENOENT') {
      process.stderr.write(`vce agent: invalid configuration: ${(e as Error).message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const agent = await startAgent(cfg);
  let stopping = false;
  const shutdown = (): void => {
    if (stopping) return;
    stopping = true;
    void agent.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}
