/**
 * The running agent's configuration, built and changed in place. `buildRuntime` creates the
 * contexts of a configuration; `applyConfig` moves a running agent to a new configuration by
 * applying only the difference, so what did not change is not touched (draft §6.1: element
 * management; issue "hot reconfiguration"):
 *
 * - a context added is built and started; a context removed loses all of its state (speaker,
 *   sessions, routes, its VPN exports) and nothing of another's;
 * - connected and static routes are set or removed one by one;
 * - BGP neighbours are added, removed (Cease/Peer De-configured) or, when their settings changed,
 *   replaced — other sessions stay up; locally originated networks are originated or withdrawn;
 *   a policy change re-evaluates every path from the kept Adj-RIB-In (no session reset);
 * - a change of a context's AS, router id, listener or decision options restarts that context's
 *   speaker only;
 * - VPN exports and imports (case 1-B) follow their context's route targets; a context with its
 *   own speaker also exchanges its BGP-learned routes with the VPN (PE VRF, ./pe-vrf.ts).
 *
 * Not changeable without a restart (refused with the list): router-id, api, bfd ports, BFD-tracked
 * static routes. Every change is logged as one structured line.
 */
import type { Logger } from 'pino';
import type { AgentConfig, ContextConfig } from './config.ts';
import { RoutingContext } from '../routing/context.ts';
import { Speaker, canonicalKey } from '../bgp/speaker.ts';
import type { BfdManager } from '../bfd/transport.ts';
import { formatAddress, formatPrefix, type Prefix } from '../lib/ip.ts';
import { parseRd } from '../bgp/wire/rd.ts';
import { parseExtCommunity } from '../bgp/wire/communities.ts';
import type { NeighborConfig } from '../bgp/peer.ts';
import { syncPeVrfs } from './pe-vrf.ts';

export interface Runtime {
  cfg: AgentConfig;
  readonly contexts: Map<string, RoutingContext>;
  readonly bfd: BfdManager | undefined;
  readonly log: Logger;
}

export interface ApplyReport {
  changes: string[];
}

export class ApplyRefused extends Error {
  override readonly name = 'ApplyRefused';
  readonly code = 'APPLY_REFUSED';
}

/** Builds a context from its configuration (speaker created, not started). */
export function createContext(rt: Runtime, c: ContextConfig): RoutingContext {
  const sp =
    c.speaker === undefined ? undefined : new Speaker(c.speaker, rt.log.child({ vrf: c.name }), rt.bfd);
  const ctx = new RoutingContext(c.name, sp, c.routeDistinguisher);
  ctx.routeTargets = c.routeTargets;
  syncRoutes(ctx, undefined, c);
  if (sp !== undefined) syncRedistribution(sp, undefined, c);
  return ctx;
}

function staticKey(r: ContextConfig['staticRoutes'][number]): string {
  return canonicalKey(r);
}

/** Sets connected and static routes to what `next` says, touching only what differs from `prev`. */
function syncRoutes(ctx: RoutingContext, prev: ContextConfig | undefined, next: ContextConfig): string[] {
  const changes: string[] = [];
  ctx.interfaces = next.interfaces.map((i) => ({
    name: i.name,
    addresses: i.addresses.map((a) => `${formatAddress(a.address)}/${a.prefix.len}`),
  }));
  const conn = (c: ContextConfig | undefined): Map<string, { prefix: Prefix; iface: string }> =>
    new Map(
      (c?.interfaces ?? []).flatMap((i) =>
        i.addresses.map((a) => [formatPrefix(a.prefix), { prefix: a.prefix, iface: i.name }]),
      ),
    );
  const before = conn(prev);
  const after = conn(next);
  for (const [k, v] of before) {
    if (after.has(k)) continue;
    ctx.set('connected', v.prefix, undefined);
    changes.push(`-connected ${k}`);
  }
  for (const [k, v] of after) {
    if (before.get(k)?.iface === v.iface) continue;
    ctx.set('connected', v.prefix, { action: 'forward', interface: v.iface, distance: 0 });
    changes.push(`+connected ${k}`);
  }
  const st = (c: ContextConfig | undefined) =>
    new Map((c?.staticRoutes ?? []).map((r) => [formatPrefix(r.prefix), r]));
  const sb = st(prev);
  const sa = st(next);
  for (const [k, r] of sb) {
    if (sa.has(k)) continue;
    ctx.set('static', r.prefix, undefined);
    changes.push(`-static ${k}`);
  }
  for (const [k, r] of sa) {
    const old = sb.get(k);
    if (old !== undefined && staticKey(old) === staticKey(r)) continue;
    ctx.set('static', r.prefix, {
      action: r.action,
      nextHop: r.nextHop,
      interface: r.interface,
      distance: r.distance,
      // A BFD-tracked route stays out of the FIB until its BFD session is Up.
      ...(r.bfd ? { usable: false } : {}),
    });
    changes.push(`${old === undefined ? '+' : '~'}static ${k}`);
  }
  return changes;
}

interface VpnExport {
  readonly rd: Uint8Array;
  readonly labels: readonly number[];
  readonly extCommunities: Uint8Array[];
  readonly prefixes: readonly Prefix[];
}

/** What a context exports as VPN routes on the shared session (case 1-B), or undefined. */
function vpnExport(c: ContextConfig, position: number): VpnExport | undefined {
  if (c.routeTargets.export.length === 0 || c.routeDistinguisher === undefined) return undefined;
  return {
    rd: parseRd(c.routeDistinguisher),
    labels: [c.vpnLabel ?? 16 + position],
    extCommunities: c.routeTargets.export.map(parseExtCommunity),
    prefixes: [
      ...c.interfaces.flatMap((x) => x.addresses.map((a) => a.prefix)),
      ...c.staticRoutes.filter((r) => r.action === 'forward').map((r) => r.prefix),
    ],
  };
}

function originateVpn(shared: Speaker, e: VpnExport): void {
  for (const p of e.prefixes) shared.originate(p, { extCommunities: e.extCommunities }, e);
}

function withdrawVpn(shared: Speaker, e: VpnExport): void {
  for (const p of e.prefixes) shared.withdrawLocal(p, e.rd);
}

/** The prefixes a context's speaker redistributes (connected and/or forwarding static routes). */
function redistributed(c: ContextConfig): Map<string, Prefix> {
  const which = c.speaker?.redistribute ?? [];
  const out = new Map<string, Prefix>();
  if (which.includes('connected'))
    for (const i of c.interfaces) for (const a of i.addresses) out.set(formatPrefix(a.prefix), a.prefix);
  if (which.includes('static'))
    for (const r of c.staticRoutes) if (r.action === 'forward') out.set(formatPrefix(r.prefix), r.prefix);
  return out;
}

/**
 * Redistribution into a context's speaker: originates what `next` redistributes and withdraws what
 * only `prev` did (vPE Model 1 case 1-A: the vCE advertises its local routes, itself as next hop).
 */
export function syncRedistribution(
  sp: Speaker,
  prev: ContextConfig | undefined,
  next: ContextConfig,
): string[] {
  const before = prev === undefined ? new Map<string, Prefix>() : redistributed(prev);
  const after = redistributed(next);
  const changes: string[] = [];
  for (const [k, p] of before) {
    if (after.has(k)) continue;
    sp.withdrawLocal(p);
    changes.push(`-redistributed ${k}`);
  }
  for (const [k, p] of after) {
    if (before.has(k)) continue;
    sp.originate(p);
    changes.push(`+redistributed ${k}`);
  }
  return changes;
}

/** Points every context's VPN import at the shared speaker and exports every context (start-up). */
export function wireVpn(rt: Runtime): void {
  const shared = rt.contexts.get('default')?.speaker;
  rt.cfg.contexts.forEach((c, i) => {
    const ctx = rt.contexts.get(c.name)!;
    ctx.vpnImport =
      shared !== undefined && c.routeTargets.import.length > 0
        ? { speaker: shared, routeTargets: new Set(c.routeTargets.import) }
        : undefined;
    const e = vpnExport(c, i);
    if (shared !== undefined && e !== undefined) originateVpn(shared, e);
  });
  syncPeVrfs(rt);
}

function speakerShape(c: ContextConfig): string {
  const s = c.speaker;
  if (s === undefined) return 'none';
  return canonicalKey({
    asn: s.asn,
    routerId: s.routerId,
    clusterId: s.clusterId,
    listen: s.listen,
    decision: s.decision,
    dyn: s.dynamicNeighbors,
  });
}

function neighborKey(n: NeighborConfig): string {
  return canonicalKey(n);
}

/** Moves the running agent to `next`, changing only what differs. */
export async function applyConfig(rt: Runtime, next: AgentConfig): Promise<ApplyReport> {
  const prev = rt.cfg;
  const refused: string[] = [];
  if (prev.routerIdText !== next.routerIdText) refused.push('router-id');
  if (canonicalKey(prev.api ?? null) !== canonicalKey(next.api ?? null)) refused.push('api');
  if (canonicalKey(prev.bfdPorts ?? null) !== canonicalKey(next.bfdPorts ?? null)) refused.push('bfd');
  const bfdStatics = (c: AgentConfig) =>
    canonicalKey(c.contexts.flatMap((x) => x.staticRoutes.filter((r) => r.bfd).map((r) => [x.name, r])));
  if (bfdStatics(prev) !== bfdStatics(next)) refused.push('BFD-tracked static routes');
  const wantsBfd = (c: AgentConfig) =>
    c.contexts.some((x) => x.speaker?.neighbors.some((n) => n.bfd !== undefined) ?? false);
  if (rt.bfd === undefined && wantsBfd(next))
    refused.push('the first BFD neighbour (BFD starts with the agent)');
  if (refused.length > 0)
    throw new ApplyRefused(`these changes need a restart of the agent: ${refused.join(', ')}`);

  const changes: string[] = [];
  const note = (vrf: string, what: string): void => {
    changes.push(`${vrf}: ${what}`);
    rt.log.info({ vrf, change: what }, 'configuration change');
  };
  const prevByName = new Map(prev.contexts.map((c, i) => [c.name, { c, i }]));
  const nextByName = new Map(next.contexts.map((c, i) => [c.name, { c, i }]));
  const oldShared = rt.contexts.get('default')?.speaker;

  // Contexts removed: every piece of their state goes.
  for (const [name, { c, i }] of prevByName) {
    if (nextByName.has(name)) continue;
    const ctx = rt.contexts.get(name)!;
    const e = vpnExport(c, i);
    if (oldShared !== undefined && e !== undefined) withdrawVpn(oldShared, e);
    await ctx.speaker?.stop(`routing context ${name} removed`);
    rt.contexts.delete(name);
    note(name, 'context removed');
  }
  // Contexts changed or added.
  let sharedRestarted = false;
  for (const [name, { c }] of nextByName) {
    const was = prevByName.get(name)?.c;
    if (was === undefined) {
      const ctx = createContext(rt, c);
      rt.contexts.set(name, ctx);
      await ctx.speaker?.start();
      note(name, 'context added');
      continue;
    }
    const ctx = rt.contexts.get(name)!;
    for (const ch of syncRoutes(ctx, was, c)) note(name, ch);
    if (speakerShape(was) !== speakerShape(c)) {
      // AS, router id, listener or decision options: this context's speaker restarts.
      await ctx.speaker?.stop(`routing context ${name} reconfigured`);
      const fresh = createContext(rt, c);
      for (const k of ['connected', 'static', 'controller'] as const)
        for (const r of ctx.list(k)) fresh.set(k, r.prefix, r);
      rt.contexts.set(name, fresh);
      await fresh.speaker?.start();
      if (name === 'default') sharedRestarted = true;
      note(name, 'BGP speaker restarted');
      continue;
    }
    const sp = ctx.speaker;
    const nc = c.speaker;
    if (sp === undefined || nc === undefined || was.speaker === undefined) continue;
    if (prev.policiesKey !== next.policiesKey) {
      sp.setPolicies(nc.policies);
      note(name, 'policies changed: every path re-evaluated');
    } else sp.cfg = { ...sp.cfg, policies: nc.policies };
    const oldN = new Map(was.speaker.neighbors.map((n) => [n.address, n]));
    const newN = new Map(nc.neighbors.map((n) => [n.address, n]));
    for (const [addr, n] of oldN) {
      const now = newN.get(addr);
      if (now !== undefined && neighborKey(now) === neighborKey(n)) continue;
      const p = sp.neighbor(addr);
      if (p !== undefined) sp.removeNeighbor(p);
      if (now === undefined) note(name, `-neighbor ${addr}`);
    }
    for (const [addr, n] of newN) {
      const old = oldN.get(addr);
      if (old !== undefined && neighborKey(old) === neighborKey(n)) continue;
      sp.startPeer(sp.addNeighbor(n));
      note(name, `${old === undefined ? '+' : '~'}neighbor ${addr}`);
    }
    for (const ch of syncRedistribution(sp, was, c)) note(name, ch);
    const nets = (l: readonly Prefix[]) => new Map(l.map((p) => [formatPrefix(p), p]));
    const ob = nets(was.speaker.networks);
    const nb = nets(nc.networks);
    for (const [k, p] of ob) {
      if (nb.has(k)) continue;
      sp.withdrawLocal(p);
      note(name, `-network ${k}`);
    }
    for (const [k, p] of nb) {
      if (ob.has(k)) continue;
      sp.originate(p);
      note(name, `+network ${k}`);
    }
    sp.cfg = { ...nc, policies: sp.cfg.policies };
  }
  // VPN exports and imports (case 1-B).
  const shared = rt.contexts.get('default')?.speaker;
  if (shared !== undefined) {
    next.contexts.forEach((c, i) => {
      const before = prevByName.get(c.name);
      const oldE = before === undefined ? undefined : vpnExport(before.c, before.i);
      const newE = vpnExport(c, i);
      if (!sharedRestarted && canonicalKey(oldE ?? null) === canonicalKey(newE ?? null)) return;
      if (!sharedRestarted && oldE !== undefined && oldShared !== undefined) withdrawVpn(oldShared, oldE);
      if (newE !== undefined) originateVpn(shared, newE);
      note(c.name, 'VPN exports updated');
    });
  }
  for (const c of next.contexts) {
    const ctx = rt.contexts.get(c.name)!;
    ctx.vpnImport =
      shared !== undefined && c.routeTargets.import.length > 0
        ? { speaker: shared, routeTargets: new Set(c.routeTargets.import) }
        : undefined;
    ctx.routeDistinguisher = c.routeDistinguisher;
    ctx.routeTargets = c.routeTargets;
  }
  rt.cfg = next;
  // PE VRFs: BGP-learned routes to and from the VPN follow the new contexts (./pe-vrf.ts).
  syncPeVrfs(rt);
  return { changes };
}
