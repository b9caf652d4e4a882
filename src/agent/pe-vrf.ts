/**
 * The PE side of a routing context that runs its own BGP speaker towards its CEs (RFC 4364 §4.3,
 * draft §7.2.1: the WAN PE VRF of a tenant, played by our agent as the embedded PE):
 *
 * - export (RFC 4364 §4.3.1): the best paths the context's speaker learned from its CE neighbours
 *   become VPN routes on the shared speaker (the default context's, which talks VPNv4/VPNv6 to the
 *   remote PEs) with the context's RD, label and export route targets, keeping ORIGIN, AS_PATH,
 *   MED and communities; they follow every best-path change of the context's speaker;
 * - import (RFC 4364 §4.3.2): VPN routes learned from remote PEs whose route targets the context
 *   imports are originated in the context's speaker, so its CEs learn the remote sites' prefixes
 *   (the FIB already takes them through `RoutingContext.vpnImport`).
 *
 * Connected and static routes of a context are exported by ./apply.ts (`vpnExport`); this module
 * only moves BGP-learned paths and never one of ours: exports take paths from a peer (not the
 * locally originated imports) and imports take VPN paths from a peer (not our own exports), so
 * nothing loops between the two speakers.
 *
 * Invariants: one VPN route per (context, prefix) exported; one unicast route per (context, prefix)
 * imported, the candidate with the shortest AS_PATH (then the first seen); what was exported or
 * imported is remembered, so a withdrawal, a change of RD, RTs or label, a restarted speaker or a
 * removed context withdraws exactly that and nothing else.
 */
import { canonicalKey, type Speaker } from '../bgp/speaker.ts';
import type { AttrSet } from '../bgp/rib/attr-set.ts';
import type { AfiSafiName } from '../bgp/wire/constants.ts';
import { formatExtCommunity, parseExtCommunity } from '../bgp/wire/communities.ts';
import { parseRd } from '../bgp/wire/rd.ts';
import { formatPrefix, type Prefix } from '../lib/ip.ts';
import type { ContextConfig } from './config.ts';
import type { Runtime } from './apply.ts';

const UNICAST: ReadonlySet<AfiSafiName> = new Set(['ipv4-unicast', 'ipv6-unicast']);
const VPN: ReadonlySet<AfiSafiName> = new Set(['ipv4-vpn', 'ipv6-vpn']);

interface Imported {
  readonly prefix: Prefix;
  /** `family:dest` of the shared speaker's VPN RIB -> accepted attribute set id. */
  readonly from: Map<string, number>;
  /** What is originated in the context's speaker (canonical attributes; undefined: nothing). */
  chosen: string | undefined;
}

/** One PE VRF: a context's speaker joined to the shared VPN speaker. */
interface VrfLink {
  readonly name: string;
  readonly sp: Speaker;
  readonly shared: Speaker;
  /** The export and import parameters; any change rebuilds the link. */
  readonly key: string;
  readonly exp:
    | {
        readonly rd: Uint8Array;
        readonly labels: readonly number[];
        readonly extCommunities: Uint8Array[];
        /** Prefixes the context exports as connected/static routes (./apply.ts): left alone. */
        readonly own: ReadonlySet<string>;
      }
    | undefined;
  readonly imp: ReadonlySet<string>;
  readonly exported: Map<string, Prefix>;
  readonly imported: Map<string, Imported>;
  readonly onBest: (family: AfiSafiName, decided: readonly number[]) => void;
}

interface PeState {
  readonly links: Map<string, VrfLink>;
  shared: { sp: Speaker; onBest: (family: AfiSafiName, decided: readonly number[]) => void } | undefined;
}

const states = new WeakMap<Runtime, PeState>();

function linkParams(c: ContextConfig, position: number): Pick<VrfLink, 'exp' | 'imp' | 'key'> {
  const rd = c.routeDistinguisher;
  const exp =
    rd === undefined || c.routeTargets.export.length === 0
      ? undefined
      : {
          rd: parseRd(rd),
          labels: [c.vpnLabel ?? 16 + position], // the label ./apply.ts gives the context's exports
          extCommunities: c.routeTargets.export.map(parseExtCommunity),
          own: new Set([
            ...c.interfaces.flatMap((x) => x.addresses.map((a) => formatPrefix(a.prefix))),
            ...c.staticRoutes.filter((r) => r.action === 'forward').map((r) => formatPrefix(r.prefix)),
          ]),
        };
  const imp = new Set(c.routeTargets.import);
  const key = JSON.stringify({
    rd,
    label: exp?.labels,
    export: c.routeTargets.export,
    import: c.routeTargets.import,
    own: exp === undefined ? [] : [...exp.own].sort(),
  });
  return { exp, imp, key };
}

/**
 * Brings the PE links in line with the running configuration (`rt.cfg`, `rt.contexts`): called
 * once the contexts are built (start-up) and after every reconfiguration.
 */
export function syncPeVrfs(rt: Runtime): void {
  let st = states.get(rt);
  if (st === undefined) {
    st = { links: new Map(), shared: undefined };
    states.set(rt, st);
  }
  const shared = rt.contexts.get('default')?.speaker;
  if (st.shared !== undefined && st.shared.sp !== shared) {
    st.shared.sp.off('best-changed', st.shared.onBest);
    st.shared = undefined;
  }
  const wanted = new Map<string, { c: ContextConfig; i: number }>();
  rt.cfg.contexts.forEach((c, i) => {
    const sp = rt.contexts.get(c.name)?.speaker;
    if (c.name === 'default' || sp === undefined || shared === undefined || sp === shared) return;
    if (c.routeTargets.export.length === 0 && c.routeTargets.import.length === 0) return;
    wanted.set(c.name, { c, i });
  });
  for (const [name, link] of st.links) {
    const w = wanted.get(name);
    const sp = rt.contexts.get(name)?.speaker;
    if (w !== undefined && link.sp === sp && link.shared === shared && linkParams(w.c, w.i).key === link.key)
      continue;
    unlink(link);
    st.links.delete(name);
  }
  if (shared === undefined) return;
  if (st.shared === undefined) {
    const state = st;
    const onBest = (family: AfiSafiName, decided: readonly number[]): void => {
      if (!VPN.has(family)) return;
      for (const link of state.links.values()) importDests(link, family, decided);
    };
    shared.on('best-changed', onBest);
    st.shared = { sp: shared, onBest };
  }
  for (const [name, { c, i }] of wanted) {
    if (st.links.has(name)) continue;
    const sp = rt.contexts.get(name)!.speaker!;
    const link: VrfLink = {
      name,
      sp,
      shared,
      ...linkParams(c, i),
      exported: new Map(),
      imported: new Map(),
      onBest: (family, decided) => {
        if (UNICAST.has(family)) exportDests(link, family, decided);
      },
    };
    sp.on('best-changed', link.onBest);
    st.links.set(name, link);
    for (const f of UNICAST) exportDests(link, f, allDests(sp, f));
    for (const f of VPN) importDests(link, f, allDests(shared, f));
  }
}

function allDests(sp: Speaker, family: AfiSafiName): number[] {
  const rib = sp.ribs.get(family);
  return rib === undefined ? [] : Array.from({ length: rib.destCount }, (_x, d) => d);
}

/** Withdraws everything a link exported and imported, and stops following its speaker. */
function unlink(link: VrfLink): void {
  link.sp.off('best-changed', link.onBest);
  if (link.exp !== undefined)
    for (const p of link.exported.values()) link.shared.withdrawLocal(p, link.exp.rd);
  link.exported.clear();
  for (const im of link.imported.values()) if (im.chosen !== undefined) link.sp.withdrawLocal(im.prefix);
  link.imported.clear();
}

/** Context speaker -> VPN routes on the shared speaker, for the destinations decided again. */
function exportDests(link: VrfLink, family: AfiSafiName, decided: readonly number[]): void {
  const exp = link.exp;
  const rib = link.sp.ribs.get(family);
  if (exp === undefined || rib === undefined) return;
  for (const d of decided) {
    const prefix = rib.nlriOf(d).prefix;
    const k = formatPrefix(prefix);
    if (exp.own.has(k)) continue;
    const peer = rib.bestPeer(d);
    const id = rib.bestAttr(d);
    if (peer > 0 && id >= 0) {
      const a = link.sp.attrs.get(id).attrs;
      link.shared.originate(prefix, { ...carried(a), extCommunities: exp.extCommunities }, exp);
      link.exported.set(k, prefix);
    } else if (link.exported.delete(k)) link.shared.withdrawLocal(prefix, exp.rd);
  }
}

/** Shared speaker's VPN routes -> the context's speaker, for the destinations decided again. */
function importDests(link: VrfLink, family: AfiSafiName, decided: readonly number[]): void {
  if (link.imp.size === 0) return;
  const rib = link.shared.ribs.get(family);
  if (rib === undefined) return;
  for (const d of decided) {
    const prefix = rib.nlriOf(d).prefix;
    const peer = rib.bestPeer(d);
    const id = rib.bestAttr(d);
    const rts = peer > 0 && id >= 0 ? (link.shared.attrs.get(id).attrs.extCommunities ?? []) : [];
    const match = rts.some((rt) => link.imp.has(formatExtCommunity(rt)));
    const k = formatPrefix(prefix);
    const src = `${family}:${d}`;
    let im = link.imported.get(k);
    if (match) {
      if (im === undefined) {
        im = { prefix, from: new Map(), chosen: undefined };
        link.imported.set(k, im);
      }
      im.from.set(src, id);
    } else if (im === undefined || !im.from.delete(src)) continue;
    choose(link, k, im);
  }
}

/** Originates the best imported candidate of a prefix in the context's speaker (or withdraws it). */
function choose(link: VrfLink, k: string, im: Imported): void {
  let best: number | undefined;
  for (const id of im.from.values()) {
    if (
      best === undefined ||
      link.shared.attrs.get(id).asPathLength < link.shared.attrs.get(best).asPathLength
    )
      best = id;
  }
  if (best === undefined) {
    if (im.chosen !== undefined) link.sp.withdrawLocal(im.prefix);
    link.imported.delete(k);
    return;
  }
  const attrs = carried(link.shared.attrs.get(best).attrs);
  const key = canonicalKey(attrs);
  if (key === im.chosen) return;
  im.chosen = key;
  link.sp.originate(im.prefix, attrs);
}

/** The attributes a PE carries between a VRF and the VPN (next hop and the rest are its own). */
function carried(a: AttrSet['attrs']): Partial<AttrSet['attrs']> {
  const out: { -readonly [K in keyof AttrSet['attrs']]?: AttrSet['attrs'][K] } = { origin: a.origin };
  if (a.asPath !== undefined) out.asPath = a.asPath;
  if (a.med !== undefined) out.med = a.med;
  if (a.communities !== undefined) out.communities = a.communities;
  if (a.largeCommunities !== undefined) out.largeCommunities = a.largeCommunities;
  return out;
}
