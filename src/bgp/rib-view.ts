/**
 * Read-only views of the speaker for the management API and CLI: neighbour status and RIB
 * listings with the reason each best path won. Strings are made here, at the edge, never in
 * the RIB. Listing a whole table is O(destinations); a prefix query is one lookup.
 */
import {
  comparePrefix,
  formatAddress,
  formatIPv4,
  numberToIPv4,
  parsePrefix,
  type Prefix,
} from '../lib/ip.ts';
import type { AfiSafiName } from './wire/constants.ts';
import {
  formatAsPath,
  formatCommunity,
  formatExtCommunity,
  formatLargeCommunity,
} from './wire/communities.ts';
import { formatRd } from './wire/rd.ts';
import { explain, selectBest, type Candidate } from './rib/decision.ts';
import type { FamilyRib } from './rib/family-rib.ts';
import type { Speaker } from './speaker.ts';

export interface NeighborView {
  address: string;
  'peer-asn': number;
  description?: string;
  state: string;
  'uptime-s': number;
  'router-id': string | null;
  'afi-safis': Record<string, { received: number; accepted: number; advertised: number }>;
  'last-error': string | null;
  messages: { in: number; out: number; 'updates-in': number; 'updates-out': number };
  flaps: number;
}

export function neighborViews(sp: Speaker): NeighborView[] {
  const now = Date.now();
  return sp.peerList().map((p) => {
    const fam: NeighborView['afi-safis'] = {};
    for (const f of p.cfg.families) {
      const rib = sp.ribs.get(f);
      fam[f] = {
        received: rib?.received[p.index] ?? 0,
        accepted: rib?.accepted[p.index] ?? 0,
        advertised: p.adjOut.get(f)?.advertised ?? 0,
      };
    }
    const st = p.primary?.fsm.stats;
    return {
      address: p.cfg.address,
      'peer-asn': p.cfg.peerAsn,
      ...(p.cfg.description !== undefined ? { description: p.cfg.description } : {}),
      state: p.state,
      // Seconds in Established; 0 while not Established (`state` tells which; never negative).
      'uptime-s':
        p.established && p.stats.establishedAt !== undefined
          ? Math.floor((now - p.stats.establishedAt) / 1000)
          : 0,
      'router-id': p.negotiated === undefined ? null : formatIPv4(numberToIPv4(p.negotiated.peerBgpId)),
      'afi-safis': fam,
      'last-error': p.stats.lastError ?? st?.lastError ?? null,
      messages: {
        in: st?.messagesIn ?? 0,
        out: st?.messagesOut ?? 0,
        'updates-in': p.stats.updatesIn,
        'updates-out': p.stats.updatesOut,
      },
      flaps: p.stats.flaps,
    };
  });
}

export interface PathView {
  best: boolean;
  reason: string;
  'next-hop': string;
  'as-path': string;
  origin: 'igp' | 'egp' | 'incomplete';
  med: number | null;
  'local-pref': number | null;
  communities: string[];
  'large-communities': string[];
  'ext-communities': string[];
  from: string;
  'path-id': number;
  labels?: number[];
  stale: boolean;
}

export interface RouteView {
  prefix: string;
  rd?: string;
  paths: PathView[];
}

const ORIGINS = ['igp', 'egp', 'incomplete'] as const;

function candidate(sp: Speaker, rib: FamilyRib, p: number): Candidate {
  return { attr: sp.attrs.get(rib.pAttr[p]!), source: sp.sourceOf(rib.pPeer[p]!), pathId: rib.pId[p]! };
}

function routeView(sp: Speaker, rib: FamilyRib, d: number): RouteView | undefined {
  if (rib.dHead[d]! < 0) return undefined;
  const key = rib.nlriOf(d);
  const best = rib.dBest[d]!;
  const bestCand = best >= 0 ? candidate(sp, rib, best) : undefined;
  const paths: PathView[] = [];
  let count = 0;
  for (let p = rib.dHead[d]!; p >= 0; p = rib.pNext[p]!) count++;
  for (let p = rib.dHead[d]!; p >= 0; p = rib.pNext[p]!) {
    const accepted = rib.pAttr[p]! >= 0;
    const set = sp.attrs.get(accepted ? rib.pAttr[p]! : rib.pRaw[p]!);
    const a = set.attrs;
    let reason: string;
    if (!accepted) reason = 'rejected-by-policy';
    else if (p === best) reason = count === 1 ? 'only-path' : 'best';
    else
      reason =
        bestCand === undefined
          ? 'not-selected'
          : `lost: ${explain(bestCand, candidate(sp, rib, p), sp.decision)}`;
    if (p === best && count > 1 && bestCand !== undefined) {
      // Name the step that beat the strongest runner-up: the best of the other accepted paths
      // (not merely the first one listed, which may have lost on an earlier step).
      const others: Candidate[] = [];
      for (let q = rib.dHead[d]!; q >= 0; q = rib.pNext[q]!) {
        if (q !== best && rib.pAttr[q]! >= 0) others.push(candidate(sp, rib, q));
      }
      const runner = others[selectBest(others, sp.decision)];
      if (runner !== undefined) reason = explain(bestCand, runner, sp.decision);
    }
    const nh = a.nextHop;
    const labels = rib.pLabels[p];
    paths.push({
      best: p === best,
      reason,
      'next-hop': nh === undefined ? '' : formatAddress(nh),
      'as-path': formatAsPath(a.asPath ?? []),
      origin: ORIGINS[a.origin ?? 2] ?? 'incomplete',
      med: a.med ?? null,
      'local-pref': a.localPref ?? null,
      communities: (a.communities ?? []).map(formatCommunity),
      'large-communities': (a.largeCommunities ?? []).map(formatLargeCommunity),
      'ext-communities': (a.extCommunities ?? []).map(formatExtCommunity),
      from: sp.peerName(rib.pPeer[p]!),
      'path-id': rib.pId[p]!,
      ...(labels !== undefined ? { labels: [...labels] } : {}),
      stale: rib.isStale(p),
    });
  }
  paths.sort((x, y) => Number(y.best) - Number(x.best));
  return {
    prefix: `${formatAddress(key.prefix.addr)}/${key.prefix.len}`,
    ...(key.rd !== undefined ? { rd: formatRd(key.rd) } : {}),
    paths,
  };
}

/** Routes of a family, sorted by prefix; `prefix` narrows to that exact prefix (all RDs). */
export function routeViews(sp: Speaker, family: AfiSafiName, prefix?: Prefix): RouteView[] {
  const rib = sp.rib(family);
  const out: { p: Prefix; v: RouteView }[] = [];
  for (let d = 0; d < rib.destCount; d++) {
    if (rib.dHead[d]! < 0) continue;
    const k = rib.nlriOf(d).prefix;
    if (prefix !== undefined && (k.len !== prefix.len || comparePrefix(k, prefix) !== 0)) continue;
    const v = routeView(sp, rib, d);
    if (v !== undefined) out.push({ p: k, v });
  }
  out.sort((a, b) => comparePrefix(a.p, b.p));
  return out.map((x) => x.v);
}

export function parsePrefixQuery(s: string): Prefix {
  return parsePrefix(s, true);
}
