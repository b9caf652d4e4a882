/**
 * What a best path becomes when sent to one peer: the RFC 4271 / RFC 4456 rules before export
 * policy. Pure: takes the path's attributes and both ends' facts, returns new attributes or
 * `undefined` when the path must not be sent at all.
 *
 * - NO_ADVERTISE: never sent; NO_EXPORT / NO_EXPORT_SUBCONFED: not sent to eBGP (RFC 1997).
 * - iBGP-learned paths go to iBGP peers only through route reflection (RFC 4456 §6).
 * - eBGP: our AS prepended, next hop self, LOCAL_PREF / ORIGINATOR_ID / CLUSTER_LIST removed, MED
 *   only for our own routes (RFC 4271 §5.1.4: not propagated to other neighbouring ASes).
 * - iBGP: LOCAL_PREF set (default 100), next hop unchanged unless next-hop-self or our own route;
 *   reflected paths get ORIGINATOR_ID and our cluster id prepended to CLUSTER_LIST.
 */
import { AsPathSegmentType } from '../wire/constants.ts';
import type { AsPathSegment, PathAttributes } from '../wire/types.ts';
import type { AttrSet } from './attr-set.ts';

export interface ExportSource {
  readonly local: boolean;
  readonly ebgp: boolean;
  readonly bgpId: number;
  readonly rrClient: boolean;
}

export interface ExportTarget {
  readonly ebgp: boolean;
  readonly rrClient: boolean;
  readonly localAsn: number;
  readonly clusterId: number;
  readonly nextHopSelf: boolean;
  /** Our address on this session, for next-hop-self (4 or 16 bytes by family). */
  readonly selfNextHop: Uint8Array;
  readonly selfLinkLocal?: Uint8Array;
}

export type ExportAttrs = PathAttributes & { readonly linkLocalNextHop?: Uint8Array };

export function prependAs(
  path: readonly AsPathSegment[] | undefined,
  asn: number,
  times = 1,
): AsPathSegment[] {
  const segs = path === undefined ? [] : [...path];
  const first = segs[0];
  const add = new Array<number>(times).fill(asn);
  if (
    first !== undefined &&
    first.type === AsPathSegmentType.AS_SEQUENCE &&
    first.asns.length + times <= 255
  ) {
    segs[0] = { type: AsPathSegmentType.AS_SEQUENCE, asns: [...add, ...first.asns] };
  } else {
    segs.unshift({ type: AsPathSegmentType.AS_SEQUENCE, asns: add });
  }
  return segs;
}

export function exportTransform(set: AttrSet, src: ExportSource, dst: ExportTarget): ExportAttrs | undefined {
  if (set.noAdvertise) return undefined;
  if (dst.ebgp && set.noExport) return undefined;
  const a = set.attrs;
  // Objects are built with a fixed field order and never `delete`d from, so V8 keeps them in
  // fast mode (a deleted property turns an object into a slow dictionary).
  if (dst.ebgp) {
    return {
      origin: a.origin,
      asPath: prependAs(a.asPath, dst.localAsn),
      nextHop: dst.selfNextHop,
      med: src.local ? a.med : undefined,
      localPref: undefined,
      atomicAggregate: a.atomicAggregate,
      aggregator: a.aggregator,
      communities: a.communities,
      originatorId: undefined,
      clusterList: undefined,
      extCommunities: a.extCommunities,
      largeCommunities: a.largeCommunities,
      otc: a.otc,
      unknown: a.unknown,
      linkLocalNextHop: dst.selfLinkLocal,
    };
  }
  // iBGP target
  const reflect = !src.local && !src.ebgp;
  if (reflect && !src.rrClient && !dst.rrClient) return undefined; // RFC 4456 §6
  const self = src.local || dst.nextHopSelf;
  return {
    origin: a.origin,
    asPath: a.asPath ?? [],
    nextHop: self ? dst.selfNextHop : a.nextHop,
    med: a.med,
    localPref: a.localPref ?? 100,
    atomicAggregate: a.atomicAggregate,
    aggregator: a.aggregator,
    communities: a.communities,
    originatorId: reflect ? (a.originatorId ?? src.bgpId) : a.originatorId,
    clusterList: reflect ? [dst.clusterId, ...(a.clusterList ?? [])] : a.clusterList,
    extCommunities: a.extCommunities,
    largeCommunities: a.largeCommunities,
    otc: a.otc,
    unknown: a.unknown,
    linkLocalNextHop: self ? dst.selfLinkLocal : a.linkLocalNextHop,
  };
}
