/**
 * The agent's forwarding plane: starts the configured driver (the userspace forwarder by default)
 * and keeps its FIBs equal to the routing contexts' FIBs. Route changes of any source (connected,
 * static, controller, BGP best paths) mark a context dirty; dirty contexts are pushed to the
 * driver once per event-loop turn (a burst of BGP updates costs one sync, not one per prefix).
 */
import type { ContextRoute, RoutingContext } from '../routing/context.ts';
import type { DataplaneConfig, DpRoute, RouteChange } from '../dataplane/types.ts';
import { formatPrefix, type Prefix } from '../lib/ip.ts';
import type { AfiSafiName } from '../bgp/wire/constants.ts';
import { UserspaceDriver } from '../dataplane/drivers/userspace.ts';
import { LinuxDriver } from '../dataplane/drivers/linux.ts';
import type { Forwarder } from '../dataplane/forwarder.ts';

/** What the agent needs of a driver. */
export interface DataplaneDriver {
  start(): Promise<void>;
  stop(): Promise<void>;
  syncRoutes(context: string, routes: readonly DpRoute[]): number;
  updateRoutes(context: string, changes: readonly RouteChange[]): number;
  /** True when a per-prefix update could be wrong (recursive next hops): sync the context whole. */
  needsFullSync(context: string): boolean;
  /** The userspace forwarder (counters, capture); undefined for the kernel driver. */
  readonly forwarder?: Forwarder;
}

function makeDriver(
  config: DataplaneConfig,
  contexts: readonly string[],
  log: DataplaneLog,
): DataplaneDriver {
  return config.driver === 'linux'
    ? new LinuxDriver(config, { contexts, log })
    : new UserspaceDriver(config, { contexts, log });
}

export interface DataplaneLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export class AgentDataplane {
  driver: DataplaneDriver;
  /** Contexts to re-read whole, and single prefixes to re-read, at the next flush. */
  private readonly dirty = new Set<string>();
  private readonly dirtyPrefixes = new Map<string, Map<string, Prefix>>();
  /** For tests and metrics: how the FIB followed the RIB. */
  incremental = 0;
  fullSyncs = 0;
  private scheduled = false;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    public config: DataplaneConfig,
    private readonly contexts: ReadonlyMap<string, RoutingContext>,
    private readonly log: DataplaneLog,
  ) {
    this.driver = makeDriver(config, [...contexts.keys()], log);
  }

  async start(): Promise<void> {
    await this.driver.start();
    for (const ctx of this.contexts.values()) this.follow(ctx);
    for (const name of this.contexts.keys()) this.dirty.add(name);
    this.flush();
    this.log.info(
      {
        driver: this.config.driver,
        interfaces: this.config.interfaces.length,
        vxlanPort: this.driver instanceof UserspaceDriver ? this.driver.port(0) : undefined,
      },
      'data plane started',
    );
  }

  /**
   * A new data plane configuration (or new contexts): a new driver replaces the old one, keeping
   * the counters of interfaces that kept their name and the flow table. Packets arriving during
   * the swap (a few milliseconds while the sockets re-bind) are lost.
   */
  async reconfigure(config: DataplaneConfig): Promise<void> {
    const old = this.driver;
    for (const u of this.unsubscribe) u();
    this.unsubscribe.length = 0;
    await old.stop();
    this.config = config;
    this.driver = makeDriver(config, [...this.contexts.keys()], this.log);
    if (this.driver.forwarder !== undefined && old.forwarder !== undefined)
      this.driver.forwarder.adopt(old.forwarder, Date.now());
    await this.start();
  }

  /**
   * After a reconfiguration replaced routing contexts (a speaker restart makes a new context
   * object): follow the current ones and re-read them whole.
   */
  refollow(): void {
    for (const u of this.unsubscribe) u();
    this.unsubscribe.length = 0;
    for (const ctx of this.contexts.values()) this.follow(ctx);
    for (const name of this.contexts.keys()) this.markDirty(name);
  }

  private follow(ctx: RoutingContext): void {
    const onChange = (_source: string, prefix: Prefix): void => this.markPrefix(ctx.name, prefix);
    ctx.on('change', onChange);
    this.unsubscribe.push(() => ctx.off('change', onChange));
    const own = ctx.speaker;
    if (own !== undefined) {
      const onBest = (family: AfiSafiName, decided: readonly number[]): void => {
        if (family !== 'ipv4-unicast' && family !== 'ipv6-unicast') return;
        const rib = own.ribs.get(family)!;
        for (const d of decided) this.markPrefix(ctx.name, rib.nlriOf(d).prefix);
      };
      own.on('best-changed', onBest);
      this.unsubscribe.push(() => own.off('best-changed', onBest));
    }
    const vpn = ctx.vpnImport?.speaker;
    if (vpn !== undefined) {
      // VPN routes are keyed by route distinguisher: such contexts are re-read whole
      const onVpn = (): void => this.markDirty(ctx.name);
      vpn.on('rib-changed', onVpn);
      this.unsubscribe.push(() => vpn.off('rib-changed', onVpn));
    }
  }

  /** The whole context is re-read at the next flush. */
  markDirty(name: string): void {
    this.dirty.add(name);
    this.schedule();
  }

  /** One prefix of a context may have changed. */
  private markPrefix(name: string, prefix: Prefix): void {
    if (this.dirty.has(name)) return;
    let m = this.dirtyPrefixes.get(name);
    if (m === undefined) this.dirtyPrefixes.set(name, (m = new Map<string, Prefix>()));
    m.set(formatPrefix(prefix), prefix);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const now = Date.now();
    const toDp = (name: string, r: ContextRoute): DpRoute => ({
      context: name,
      prefix: r.prefix,
      action: r.action,
      nextHop: r.nextHop,
      interface: r.interface,
    });
    for (const [name, prefixes] of this.dirtyPrefixes) {
      const ctx = this.contexts.get(name);
      if (ctx === undefined || this.dirty.has(name)) continue;
      if (ctx.vpnImport !== undefined || this.driver.needsFullSync(name)) {
        this.dirty.add(name);
        continue;
      }
      const changes: RouteChange[] = [];
      for (const p of prefixes.values()) {
        const r = ctx.bestRoute(p, now);
        changes.push({ prefix: p, route: r === undefined ? undefined : toDp(name, r) });
      }
      this.driver.updateRoutes(name, changes);
      this.incremental += changes.length;
    }
    this.dirtyPrefixes.clear();
    for (const name of this.dirty) {
      const ctx = this.contexts.get(name);
      if (ctx === undefined) continue;
      this.driver.syncRoutes(
        name,
        ctx.fibRoutes(now).map((r) => toDp(name, r)),
      );
      this.fullSyncs++;
    }
    this.dirty.clear();
  }

  async stop(): Promise<void> {
    for (const u of this.unsubscribe) u();
    await this.driver.stop();
  }
}
