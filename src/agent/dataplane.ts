/**
 * The agent's forwarding plane: starts the configured driver (the userspace forwarder by default)
 * and keeps its FIBs equal to the routing contexts' FIBs. Route changes of any source (connected,
 * static, controller, BGP best paths) mark a context dirty; dirty contexts are pushed to the
 * driver once per event-loop turn (a burst of BGP updates costs one sync, not one per prefix).
 */
import type { RoutingContext } from '../routing/context.ts';
import type { DataplaneConfig, DpRoute } from '../dataplane/types.ts';
import { UserspaceDriver } from '../dataplane/drivers/userspace.ts';
import { LinuxDriver } from '../dataplane/drivers/linux.ts';
import type { Forwarder } from '../dataplane/forwarder.ts';

/** What the agent needs of a driver. */
export interface DataplaneDriver {
  start(): Promise<void>;
  stop(): Promise<void>;
  syncRoutes(context: string, routes: readonly DpRoute[]): number;
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
  private readonly dirty = new Set<string>();
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

  private follow(ctx: RoutingContext): void {
    const mark = (): void => this.markDirty(ctx.name);
    ctx.on('change', mark);
    this.unsubscribe.push(() => ctx.off('change', mark));
    const speakers = [ctx.speaker, ctx.vpnImport?.speaker].filter((s) => s !== undefined);
    for (const sp of new Set(speakers)) {
      sp.on('rib-changed', mark);
      this.unsubscribe.push(() => sp.off('rib-changed', mark));
    }
  }

  markDirty(name: string): void {
    this.dirty.add(name);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const now = Date.now();
    for (const name of this.dirty) {
      const ctx = this.contexts.get(name);
      if (ctx === undefined) continue;
      const routes: DpRoute[] = ctx.fibRoutes(now).map((r) => ({
        context: name,
        prefix: r.prefix,
        action: r.action,
        nextHop: r.nextHop,
        interface: r.interface,
      }));
      this.driver.syncRoutes(name, routes);
    }
    this.dirty.clear();
  }

  async stop(): Promise<void> {
    for (const u of this.unsubscribe) u();
    await this.driver.stop();
  }
}
