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
import { BfdManager, type BfdStateChange } from '../bfd/transport.ts';
import { formatAddress, makePrefix, parseAddress, prefixContains } from '../lib/ip.ts';
import {
  ApplyRefused,
  applyConfig,
  createContext,
  wireVpn,
  type ApplyReport,
  type Runtime,
} from './apply.ts';
import { canonicalKey } from '../bgp/speaker.ts';
import { AgentDataplane } from './dataplane.ts';

export interface RunningAgent {
  /** The default context's speaker (throws when the default context runs no BGP). */
  readonly speaker: Speaker;
  /** Moves the agent to a new configuration, changing only the difference. */
  apply(next: AgentConfig): Promise<ApplyReport>;
  readonly contexts: ReadonlyMap<string, RoutingContext>;
  readonly api?: FastifyInstance;
  readonly apiUrl?: string;
  /** The forwarding plane, when configured. */
  readonly dataplane?: AgentDataplane;
  stop(): Promise<void>;
}

export async function startAgent(
  cfg: AgentConfig,
  logger = pino({ level: cfg.logLevel }),
): Promise<RunningAgent> {
  // One BFD manager for the process, when anything asks for BFD (neighbours or static routes).
  const wantsBfd = cfg.contexts.some(
    (c) =>
      c.staticRoutes.some((r) => r.bfd) || (c.speaker?.neighbors.some((n) => n.bfd !== undefined) ?? false),
  );
  const bfd = wantsBfd
    ? new BfdManager({
        singleHopPort: cfg.bfdPorts?.singleHop,
        multihopPort: cfg.bfdPorts?.multihop,
        // SO_REUSEADDR: coexist with another BFD daemon bound to 0.0.0.0 on this host.
        reuseAddr: cfg.bfdPorts?.reuseAddress,
      })
    : undefined;
  bfd?.on('error', (e) => logger.warn({ err: e.message }, 'BFD error'));
  const contexts = new Map<string, RoutingContext>();
  const rt: Runtime = { cfg, contexts, bfd, log: logger };
  const tracked: { ctx: RoutingContext; nextHop: string; localAddress: string }[] = [];
  for (const c of cfg.contexts) {
    const ctx = createContext(rt, c);
    for (const r of c.staticRoutes) {
      if (!r.bfd || r.nextHop === undefined) continue;
      const nh = makePrefix(r.nextHop, r.nextHop.length * 8);
      const local = c.interfaces.flatMap((x) => x.addresses).find((a) => prefixContains(a.prefix, nh))!;
      tracked.push({ ctx, nextHop: formatAddress(r.nextHop), localAddress: formatAddress(local.address) });
    }
    contexts.set(c.name, ctx);
  }
  // vPE Model 1 case 1-B (draft §8.2.1): the default context's BGP session carries the routes of
  // every context as VPN routes, told apart by route distinguisher, and brings back into each
  // context the VPN routes whose route targets it imports.
  wireVpn(rt);
  try {
    for (const ctx of contexts.values()) await ctx.speaker?.start();
  } catch (e) {
    for (const ctx of contexts.values()) await ctx.speaker?.stop();
    throw e;
  }
  if (bfd !== undefined) {
    const follow =
      (up: boolean) =>
      (ch: BfdStateChange): void => {
        // A peer that takes BFD down administratively signals no failure (RFC 5882 §3.2).
        if (!up && (ch.remoteState === 'AdminDown' || ch.to === 'AdminDown')) return;
        for (const t of tracked) {
          if (t.nextHop !== ch.peer || t.localAddress !== ch.localAddress) continue;
          t.ctx.track(parseAddress(t.nextHop), up);
          logger.info({ vrf: t.ctx.name, nextHop: t.nextHop, up }, 'static routes follow their BFD session');
        }
      };
    bfd.on('up', follow(true));
    bfd.on('down', follow(false));
    const seen = new Set<string>();
    for (const t of tracked) {
      const k = `${t.nextHop}|${t.localAddress}`;
      if (seen.has(k)) continue;
      seen.add(k);
      await bfd.acquire(t.nextHop, { localAddress: t.localAddress });
    }
  }
  let dataplane: AgentDataplane | undefined;
  if (cfg.dataplane !== undefined && cfg.dataplane.driver !== 'none') {
    dataplane = new AgentDataplane(cfg.dataplane, contexts, logger);
    try {
      await dataplane.start();
    } catch (e) {
      for (const ctx of contexts.values()) await ctx.speaker?.stop();
      await bfd?.close();
      throw e;
    }
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
  // Reconfiguration is serialized: one apply at a time.
  let applying: Promise<unknown> = Promise.resolve();
  const apply = (next: AgentConfig): Promise<ApplyReport> => {
    const run = applying.then(async () => {
      if ((next.dataplane === undefined) !== (dataplane === undefined))
        throw new ApplyRefused('adding or removing the data plane needs a restart of the agent');
      const prevDp = canonicalKey(rt.cfg.dataplane ?? null);
      const prevContexts = [...contexts.keys()].join(',');
      const report = await applyConfig(rt, next);
      if (
        dataplane !== undefined &&
        next.dataplane !== undefined &&
        (canonicalKey(next.dataplane) !== prevDp || [...contexts.keys()].join(',') !== prevContexts)
      ) {
        await dataplane.reconfigure(next.dataplane);
        report.changes.push('dataplane: reconfigured (counters and flows kept)');
      } else dataplane?.refollow();
      return report;
    });
    applying = run.catch(() => undefined);
    return run;
  };
  let api: FastifyInstance | undefined;
  let apiUrl: string | undefined;
  if (cfg.api !== undefined) {
    api = await buildAgentApi({
      contexts,
      leaseSeconds: cfg.controllerLeaseSeconds,
      bfd,
      apply,
      dataplane,
      config: () => rt.cfg.source,
    });
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
      const sp = contexts.get('default')?.speaker;
      if (sp === undefined) throw new Error('the default context runs no BGP');
      return sp;
    },
    contexts,
    apply,
    api,
    apiUrl,
    dataplane,
    async stop() {
      clearInterval(leaseTimer);
      await dataplane?.stop();
      for (const ctx of contexts.values()) await ctx.speaker?.stop();
      await bfd?.close();
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
