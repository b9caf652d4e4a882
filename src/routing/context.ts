/**
 * A routing context (one VRF of the tenant, draft §2.1): the routes of every source — connected,
 * static, controller (I2RS-style, draft §3.1 and §8.2.2 Model 2) and BGP — and the FIB made of the
 * best of them by administrative distance. Non-BGP sources are held here; BGP routes are read from
 * the speaker's Loc-RIB when the FIB is read (no second copy of a large table). Controller routes
 * carry a lease: they vanish when the controller stops renewing it.
 *
 * Invariants: one entry per (source, prefix); the FIB entry of a prefix is the candidate with the
 * lowest distance, ties broken by source order (connected, static, controller, bgp).
 */
import { EventEmitter } from 'node:events';
import { comparePrefix, formatAddress, formatPrefix, type Prefix } from '../lib/ip.ts';
import type { Speaker } from '../bgp/speaker.ts';
import type { FamilyRib } from '../bgp/rib/family-rib.ts';
import { formatExtCommunity } from '../bgp/wire/communities.ts';

export type RouteSource = 'connected' | 'static' | 'controller' | 'bgp';
const SOURCE_ORDER: Record<RouteSource, number> = { connected: 0, static: 1, controller: 2, bgp: 3 };

/** Administrative distances (lower wins), the values operators know from other routers. */
export const DEFAULT_DISTANCE = { connected: 0, static: 1, controller: 10, ebgp: 20, ibgp: 200 } as const;

export type RouteAction = 'forward' | 'blackhole' | 'reject';

export interface ContextRoute {
  readonly prefix: Prefix;
  readonly action: RouteAction;
  readonly nextHop?: Uint8Array; // forward: next hop address and/or interface
  readonly interface?: string;
  readonly distance: number;
  /** Controller routes: ms epoch after which the route is gone unless renewed. */
  readonly expiresAt?: number;
  /** Static routes tracked by BFD: false while the BFD session is down (route out of the FIB). */
  readonly usable?: boolean;
}

export interface FibEntry {
  prefix: string;
  action: RouteAction;
  'next-hop': string | null;
  interface: string | null;
  source: RouteSource;
  distance: number;
  /** Other candidates that lost, for `show fib` (source:distance). */
  alternatives: string[];
}

function key(p: Prefix): string {
  return formatPrefix(p);
}

export class RoutingContext extends EventEmitter {
  private readonly routes = new Map<RouteSource, Map<string, ContextRoute>>([
    ['connected', new Map()],
    ['static', new Map()],
    ['controller', new Map()],
  ]);

  /**
   * vPE Model 1 case 1-B (draft §8.2.1): VPN routes learned on a shared session (another context's
   * speaker, typically the default one) whose route targets match `routeTargets` are this
   * context's BGP routes.
   */
  vpnImport: { readonly speaker: Speaker; readonly routeTargets: ReadonlySet<string> } | undefined;

  /** The context's interfaces (attachment circuits) and their addresses, as configured. */
  interfaces: readonly { readonly name: string; readonly addresses: readonly string[] }[] = [];

  /** Route targets as configured (canonical `rt:...` text), for the API. */
  routeTargets: { readonly import: readonly string[]; readonly export: readonly string[] } = {
    import: [],
    export: [],
  };

  constructor(
    readonly name: string,
    /** The BGP speaker of this context, if it runs BGP. */
    readonly speaker?: Speaker,
    /** As configured; reconfiguration updates it in place (the context is kept). */
    public routeDistinguisher?: string,
  ) {
    super();
  }

  /** Adds or replaces (route defined) or removes (undefined) the route of `source` for a prefix. */
  set(
    source: Exclude<RouteSource, 'bgp'>,
    prefix: Prefix,
    route: Omit<ContextRoute, 'prefix'> | undefined,
  ): void {
    const m = this.routes.get(source)!;
    const k = key(prefix);
    if (route === undefined) {
      if (m.delete(k)) this.emit('change', source, prefix);
      return;
    }
    m.set(k, { ...route, prefix });
    this.emit('change', source, prefix);
  }

  get(source: Exclude<RouteSource, 'bgp'>, prefix: Prefix): ContextRoute | undefined {
    return this.routes.get(source)!.get(key(prefix));
  }

  list(source: Exclude<RouteSource, 'bgp'>): ContextRoute[] {
    return [...this.routes.get(source)!.values()];
  }

  /** Drops controller routes whose lease ran out; returns how many went. */
  expire(now: number): number {
    const m = this.routes.get('controller')!;
    let n = 0;
    for (const [k, r] of m) {
      if (r.expiresAt !== undefined && r.expiresAt <= now) {
        m.delete(k);
        n++;
        this.emit('change', 'controller', r.prefix);
      }
    }
    return n;
  }

  /** Marks static routes through `nextHop` usable or not (BFD up/down). */
  track(nextHop: Uint8Array, usable: boolean): void {
    const a = formatAddress(nextHop);
    for (const [k, r] of this.routes.get('static')!) {
      if (r.nextHop !== undefined && formatAddress(r.nextHop) === a && r.usable !== usable) {
        this.routes.get('static')!.set(k, { ...r, usable });
        this.emit('change', 'static', r.prefix);
      }
    }
  }

  /** The FIB: per prefix, the best candidate of every source, with the losers named. */
  fib(family?: 4 | 6, now = Date.now()): FibEntry[] {
    return this.best(family, now).map(({ source, route, losers }) => ({
      prefix: formatPrefix(route.prefix),
      action: route.action,
      'next-hop': route.nextHop === undefined ? null : formatAddress(route.nextHop),
      interface: route.interface ?? null,
      source,
      distance: route.distance,
      alternatives: losers.map((x) => `${x.source}:${x.route.distance}`),
    }));
  }

  /**
   * The FIB entry of one prefix (undefined: none), for incremental followers. Not for contexts
   * importing VPN routes (those are keyed by route distinguisher: use `fibRoutes`).
   */
  bestRoute(prefix: Prefix, now = Date.now()): ContextRoute | undefined {
    const k = key(prefix);
    let best: { source: RouteSource; route: ContextRoute } | undefined;
    const consider = (source: RouteSource, route: ContextRoute): void => {
      if (route.usable === false || (route.expiresAt !== undefined && route.expiresAt <= now)) return;
      if (
        best === undefined ||
        route.distance < best.route.distance ||
        (route.distance === best.route.distance && SOURCE_ORDER[source] < SOURCE_ORDER[best.source])
      )
        best = { source, route };
    };
    for (const [source, m] of this.routes) {
      const r = m.get(k);
      if (r !== undefined) consider(source, r);
    }
    const sp = this.speaker;
    const rib = sp?.ribs.get(prefix.addr.length === 4 ? 'ipv4-unicast' : 'ipv6-unicast');
    if (sp !== undefined && rib !== undefined) {
      const d = rib.find({ prefix });
      const r = d < 0 ? undefined : bgpRoute(sp, rib, d);
      if (r !== undefined) consider('bgp', r);
    }
    return best?.route;
  }

  /** The FIB as routes (for the data plane), sorted by prefix. */
  fibRoutes(now = Date.now()): ContextRoute[] {
    return this.best(undefined, now).map((b) => b.route);
  }

  private best(
    family: 4 | 6 | undefined,
    now: number,
  ): { source: RouteSource; route: ContextRoute; losers: { source: RouteSource; route: ContextRoute }[] }[] {
    const cands = new Map<string, { prefix: Prefix; list: { source: RouteSource; route: ContextRoute }[] }>();
    const add = (source: RouteSource, route: ContextRoute): void => {
      if (family !== undefined && route.prefix.addr.length !== (family === 4 ? 4 : 16)) return;
      if (route.usable === false) return;
      if (route.expiresAt !== undefined && route.expiresAt <= now) return;
      const k = key(route.prefix);
      let c = cands.get(k);
      if (c === undefined) {
        c = { prefix: route.prefix, list: [] };
        cands.set(k, c);
      }
      c.list.push({ source, route });
    };
    for (const [source, m] of this.routes) for (const r of m.values()) add(source, r);
    if (this.speaker !== undefined) {
      for (const f of ['ipv4-unicast', 'ipv6-unicast'] as const) {
        const rib = this.speaker.ribs.get(f);
        if (rib === undefined) continue;
        for (let d = 0; d < rib.destCount; d++) {
          const r = bgpRoute(this.speaker, rib, d);
          if (r !== undefined) add('bgp', r);
        }
      }
    }
    const imp = this.vpnImport;
    if (imp !== undefined) {
      for (const f of ['ipv4-vpn', 'ipv6-vpn'] as const) {
        const rib = imp.speaker.ribs.get(f);
        if (rib === undefined) continue;
        for (let d = 0; d < rib.destCount; d++) {
          const id = rib.bestAttr(d);
          const peer = rib.bestPeer(d);
          if (id < 0 || peer === 0) continue; // our own contexts' exports
          const set = imp.speaker.attrs.get(id);
          const rts = set.attrs.extCommunities;
          if (rts === undefined || !rts.some((rt) => imp.routeTargets.has(formatExtCommunity(rt)))) continue;
          add('bgp', {
            prefix: rib.nlriOf(d).prefix,
            action: 'forward',
            nextHop: set.attrs.nextHop,
            distance: imp.speaker.sourceOf(peer).ebgp ? DEFAULT_DISTANCE.ebgp : DEFAULT_DISTANCE.ibgp,
          });
        }
      }
    }
    const out: {
      source: RouteSource;
      route: ContextRoute;
      losers: { source: RouteSource; route: ContextRoute }[];
    }[] = [];
    for (const { list } of cands.values()) {
      list.sort(
        (a, b) => a.route.distance - b.route.distance || SOURCE_ORDER[a.source] - SOURCE_ORDER[b.source],
      );
      out.push({ ...list[0]!, losers: list.slice(1) });
    }
    out.sort((a, b) => comparePrefix(a.route.prefix, b.route.prefix));
    return out;
  }
}

/** The forwarding entry of a BGP destination's best path (locally originated ones are none). */
function bgpRoute(sp: Speaker, rib: FamilyRib, d: number): ContextRoute | undefined {
  const id = rib.bestAttr(d);
  const peer = rib.bestPeer(d);
  if (id < 0 || peer === 0) return undefined;
  return {
    prefix: rib.nlriOf(d).prefix,
    action: 'forward',
    nextHop: sp.attrs.get(id).attrs.nextHop,
    distance: sp.sourceOf(peer).ebgp ? DEFAULT_DISTANCE.ebgp : DEFAULT_DISTANCE.ibgp,
  };
}
