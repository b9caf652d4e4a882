/**
 * The forwarding tables of the routing contexts: per context an IPv4 and an IPv6 LPM whose values
 * are next-hop numbers, and one shared next-hop table (action, egress interface, gateway).
 * Connected routes come from the interfaces' subnets; the others arrive as `DpRoute` lists from the
 * agent's FIBs and are applied as a diff (only changed prefixes touch the LPM). A gateway that is
 * not on a connected subnet is resolved recursively through the context's own table (BGP next
 * hops behind a static route), once, when the route is installed.
 *
 * Invariants: LPM value = next-hop number + 1 (0 means no route); next hops are interned by
 * (action, interface, gateway) and never renumbered while referenced.
 */
import { formatPrefix, ipv4ToNumber, type Prefix } from '../lib/ip.ts';
import { Lpm4 } from './fib/lpm4.ts';
import { Lpm6 } from './fib/lpm6.ts';
import type { DpRoute } from './types.ts';

export const NH_FORWARD = 0;
export const NH_BLACKHOLE = 1;
export const NH_REJECT = 2;

export interface NextHop {
  readonly action: number;
  /** Egress interface number (forward), -1 otherwise. */
  readonly iface: number;
  /** Gateway: IPv4 as a number, IPv6 as 16 bytes; undefined = directly connected (the destination). */
  readonly gw4?: number;
  readonly gw6?: Uint8Array;
}

export interface ContextTables {
  readonly name: string;
  readonly fib4: Lpm4;
  readonly fib6: Lpm6;
  /** Installed non-connected routes: prefix text -> next-hop number. */
  readonly installed: Map<string, { prefix: Prefix; nh: number }>;
}

export interface IfaceSubnets {
  readonly index: number;
  readonly context: number;
  readonly subnets: readonly Prefix[];
  readonly name: string;
}

export class RouteTables {
  readonly contexts: ContextTables[] = [];
  readonly nextHops: NextHop[] = [];
  private readonly nhIndex = new Map<string, number>();
  private readonly ifaceByName = new Map<string, IfaceSubnets>();
  /** Per context: installed routes whose gateway was resolved through another route. */
  private readonly recursive: number[] = [];
  private readonly recursiveKeys: Set<string>[] = [];

  constructor(
    contextNames: readonly string[],
    private readonly ifaces: readonly IfaceSubnets[],
  ) {
    for (const name of contextNames) {
      this.contexts.push({ name, fib4: new Lpm4(), fib6: new Lpm6(), installed: new Map() });
      this.recursive.push(0);
      this.recursiveKeys.push(new Set());
    }
    for (const i of ifaces) {
      this.ifaceByName.set(i.name, i);
      const ctx = this.contexts[i.context]!;
      for (const p of i.subnets) this.put(ctx, p, this.intern({ action: NH_FORWARD, iface: i.index }));
    }
  }

  contextIndex(name: string): number {
    return this.contexts.findIndex((c) => c.name === name);
  }

  private intern(nh: NextHop): number {
    const gw =
      nh.gw4 !== undefined ? String(nh.gw4) : nh.gw6 !== undefined ? Buffer.from(nh.gw6).toString('hex') : '';
    const k = `${nh.action}/${nh.iface}/${gw}`;
    let n = this.nhIndex.get(k);
    if (n === undefined) {
      n = this.nextHops.length;
      this.nextHops.push(nh);
      this.nhIndex.set(k, n);
    }
    return n;
  }

  private put(ctx: ContextTables, p: Prefix, nh: number): void {
    if (p.addr.length === 4) ctx.fib4.set(ipv4ToNumber(p.addr), p.len, nh + 1);
    else ctx.fib6.set(p.addr, p.len, nh + 1);
  }

  private remove(ctx: ContextTables, p: Prefix): void {
    if (p.addr.length === 4) ctx.fib4.delete(ipv4ToNumber(p.addr), p.len);
    else ctx.fib6.delete(p.addr, p.len);
  }

  /** The interface whose subnet holds `gw` in context `ctx`, if any. */
  connected(ctx: number, gw: Uint8Array): IfaceSubnets | undefined {
    for (const i of this.ifaces) {
      if (i.context !== ctx) continue;
      for (const s of i.subnets) if (s.addr.length === gw.length && inPrefix(s, gw)) return i;
    }
    return undefined;
  }

  /** Next hop for a route, or undefined when its gateway cannot be resolved (route not installed). */
  private resolve(ctx: number, r: DpRoute): NextHop | undefined {
    if (r.action === 'blackhole') return { action: NH_BLACKHOLE, iface: -1 };
    if (r.action === 'reject') return { action: NH_REJECT, iface: -1 };
    const named = r.interface === undefined ? undefined : this.ifaceByName.get(r.interface);
    if (r.interface !== undefined && (named === undefined || named.context !== ctx)) return undefined;
    const gw = r.nextHop;
    if (gw === undefined) return named === undefined ? undefined : { action: NH_FORWARD, iface: named.index };
    const direct = named ?? this.connected(ctx, gw);
    if (direct !== undefined) return gwHop(direct.index, gw);
    // recursive: one level through the context's table
    const c = this.contexts[ctx]!;
    const v = gw.length === 4 ? c.fib4.lookup(ipv4ToNumber(gw)) : c.fib6.lookup(gw, 0);
    if (v === 0) return undefined;
    const via = this.nextHops[v - 1]!;
    if (via.action !== NH_FORWARD) return via;
    if (via.gw4 === undefined && via.gw6 === undefined) return gwHop(via.iface, gw);
    return via;
  }

  /** Contexts with a route resolved through another route (a change may move it: sync whole). */
  hasRecursive(context: string): boolean {
    const ci = this.contextIndex(context);
    return ci >= 0 && this.recursive[ci]! > 0;
  }

  /**
   * One prefix of a context changed (route undefined: gone from the FIB). Returns the number of
   * LPM changes. Callers re-sync the whole context instead when `hasRecursive` says so.
   */
  update(context: string, prefix: Prefix, route: DpRoute | undefined): number {
    const ci = this.contextIndex(context);
    if (ci < 0 || this.isConnectedPrefix(ci, prefix)) return 0;
    const ctx = this.contexts[ci]!;
    const k = formatPrefix(prefix);
    const cur = ctx.installed.get(k);
    const hop = route === undefined ? undefined : this.resolve(ci, route);
    if (hop === undefined) {
      if (cur === undefined) return 0;
      this.remove(ctx, prefix);
      this.forget(ci, k);
      return 1;
    }
    const nh = this.intern(hop);
    if (cur?.nh === nh) return 0;
    this.put(ctx, prefix, nh);
    this.forget(ci, k);
    ctx.installed.set(k, { prefix, nh });
    if (this.isRecursive(ci, route!)) {
      this.recursiveKeys[ci]!.add(k);
      this.recursive[ci]!++;
    }
    return 1;
  }

  private forget(ci: number, k: string): void {
    this.contexts[ci]!.installed.delete(k);
    if (this.recursiveKeys[ci]!.delete(k)) this.recursive[ci]!--;
  }

  private isRecursive(ci: number, r: DpRoute): boolean {
    return (
      r.action === 'forward' &&
      r.nextHop !== undefined &&
      r.interface === undefined &&
      this.connected(ci, r.nextHop) === undefined
    );
  }

  /**
   * Makes the context's non-connected routes equal to `routes` (a full list, as the agent's FIB
   * gives it); touches only what changed. Returns the number of LPM changes.
   */
  sync(context: string, routes: readonly DpRoute[]): number {
    const ci = this.contextIndex(context);
    if (ci < 0) return 0;
    const ctx = this.contexts[ci]!;
    const want = new Map<string, { prefix: Prefix; nh: number }>();
    // direct gateways first, then recursive ones (they resolve through the former)
    const rank = (r: DpRoute): number =>
      r.nextHop === undefined || r.interface !== undefined || this.connected(ci, r.nextHop) !== undefined
        ? 0
        : 1;
    const sorted = [...routes].sort((a, b) => rank(a) - rank(b));
    let changes = 0;
    // withdrawn prefixes leave first: a recursive route must not resolve through one of them
    const listed = new Set(routes.map((r) => formatPrefix(r.prefix)));
    for (const [k, cur] of ctx.installed) {
      if (listed.has(k)) continue;
      this.remove(ctx, cur.prefix);
      ctx.installed.delete(k);
      changes++;
    }
    for (const r of sorted) {
      const k = formatPrefix(r.prefix);
      if (this.isConnectedPrefix(ci, r.prefix)) continue; // connected wins (distance 0)
      const hop = this.resolve(ci, r);
      if (hop === undefined) continue;
      const nh = this.intern(hop);
      want.set(k, { prefix: r.prefix, nh });
      const cur = ctx.installed.get(k);
      if (cur?.nh !== nh) {
        this.put(ctx, r.prefix, nh);
        changes++;
      }
    }
    for (const [k, cur] of ctx.installed) {
      if (want.has(k)) continue;
      this.remove(ctx, cur.prefix);
      changes++;
    }
    ctx.installed.clear();
    this.recursiveKeys[ci]!.clear();
    this.recursive[ci] = 0;
    for (const [k, v] of want) ctx.installed.set(k, v);
    for (const r of routes) {
      const k = formatPrefix(r.prefix);
      if (want.has(k) && this.isRecursive(ci, r)) {
        this.recursiveKeys[ci]!.add(k);
        this.recursive[ci]++;
      }
    }
    return changes;
  }

  private isConnectedPrefix(ctx: number, p: Prefix): boolean {
    return this.ifaces.some(
      (i) =>
        i.context === ctx &&
        i.subnets.some((s) => s.len === p.len && s.addr.length === p.addr.length && inPrefix(s, p.addr)),
    );
  }
}

function gwHop(iface: number, gw: Uint8Array): NextHop {
  return gw.length === 4
    ? { action: NH_FORWARD, iface, gw4: ipv4ToNumber(gw) }
    : { action: NH_FORWARD, iface, gw6: new Uint8Array(gw) };
}

export function inPrefix(p: Prefix, addr: Uint8Array): boolean {
  let bits = p.len;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const m = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((p.addr[i]! ^ addr[i]!) & m) !== 0) return false;
  }
  return true;
}
