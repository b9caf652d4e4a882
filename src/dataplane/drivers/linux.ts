/**
 * The Linux driver: the I/O shell that keeps the kernel equal to the data plane's desired state
 * (interfaces, zones, QoS from the configuration; routes from the agent's FIBs) through the
 * renderer (`linux-render.ts`) and the diffing applier (`linux-apply.ts`). Route changes are
 * coalesced: at most one apply runs at a time, and changes arriving meanwhile cause exactly one
 * more. `stop` removes everything the driver owns from the kernel.
 */
import type { DataplaneConfig, DpRoute, RouteChange } from '../types.ts';
import { formatPrefix } from '../../lib/ip.ts';
import { renderLinux } from './linux-render.ts';
import { applyLinux, removeLinux, type LinuxTarget } from './linux-apply.ts';
import { planIsEmpty } from './linux-plan.ts';

export interface LinuxDriverOptions {
  readonly contexts: readonly string[];
  readonly log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** Apply inside this network namespace (tests, or a vCE living in its own namespace). */
  readonly netns?: string;
}

export class LinuxDriver {
  private readonly routes = new Map<string, Map<string, DpRoute>>();
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** Applies done (for tests and the API). */
  applies = 0;
  lastError: string | undefined;

  constructor(
    readonly config: DataplaneConfig,
    private readonly opts: LinuxDriverOptions,
  ) {}

  private get target(): LinuxTarget {
    return { netns: this.opts.netns ?? this.config.linux?.netns };
  }

  private desired() {
    return renderLinux(
      this.config,
      [...this.routes.values()].flatMap((m) => [...m.values()]),
      {
        vrfMode: this.config.linux?.vrfMode ?? 'policy-routing',
      },
    );
  }

  async start(): Promise<void> {
    const d = this.desired();
    for (const n of d.notes) this.opts.log?.warn({ note: n }, 'kernel renderer: not expressible on Linux');
    await this.applyNow();
  }

  syncRoutes(context: string, routes: readonly DpRoute[]): number {
    this.routes.set(context, new Map(routes.map((r) => [formatPrefix(r.prefix), r])));
    this.schedule();
    return routes.length;
  }

  updateRoutes(context: string, changes: readonly RouteChange[]): number {
    let m = this.routes.get(context);
    if (m === undefined) this.routes.set(context, (m = new Map<string, DpRoute>()));
    for (const c of changes) {
      if (c.route === undefined) m.delete(formatPrefix(c.prefix));
      else m.set(formatPrefix(c.prefix), c.route);
    }
    this.schedule();
    return changes.length;
  }

  /** The kernel resolves recursive next hops itself. */
  needsFullSync(): boolean {
    return false;
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.running = this.applyNow().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.schedule();
      }
    });
  }

  private async applyNow(): Promise<void> {
    try {
      const plan = await applyLinux(this.desired(), this.target);
      this.applies++;
      this.lastError = undefined;
      if (!planIsEmpty(plan))
        this.opts.log?.info(
          { ip: plan.ip.length, bridge: plan.bridge.length, nft: plan.nft !== undefined },
          'kernel state updated',
        );
    } catch (e) {
      this.lastError = (e as Error).message;
      this.opts.log?.warn({ err: this.lastError }, 'kernel apply failed');
    }
  }

  /** Resolves when no apply is running or pending. */
  async settled(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.settled();
    await removeLinux(this.target);
  }
}
