/**
 * The BGP decision process (RFC 4271 §9.1.2.2) with the usual deterministic tie breaks, as a pure
 * comparison of two candidate paths that also names the step that decided. `selectBest` applies it
 * to one destination; with MED compared only between paths from the same neighbouring AS (the RFC
 * default) the relation is not transitive, so, like FRR's deterministic-med, paths are first ranked
 * within each neighbour-AS group and the group winners are then compared without MED.
 */
import type { AttrSet } from './attr-set.ts';

export type DecisionReason =
  | 'only-path'
  | 'local-pref'
  | 'local-origin'
  | 'as-path-length'
  | 'origin'
  | 'med'
  | 'ebgp-over-ibgp'
  | 'router-id'
  | 'cluster-list-length'
  | 'peer-address'
  | 'path-id';

export interface DecisionOptions {
  /** Compare MED between paths from different neighbouring ASes (`always-compare-med`). */
  alwaysCompareMed: boolean;
  /** A missing MED counts as the worst value (4294967295) instead of 0 (RFC 4271 §9.1.2.2 c). */
  medMissingAsWorst: boolean;
  /** Ignore AS_PATH length (rarely wanted; lab knob). */
  ignoreAsPathLength: boolean;
}

export const DEFAULT_DECISION_OPTIONS: DecisionOptions = {
  alwaysCompareMed: false,
  medMissingAsWorst: false,
  ignoreAsPathLength: false,
};

/** What the decision process needs to know about where a path came from. */
export interface PathSource {
  readonly local: boolean; // locally originated
  readonly ebgp: boolean;
  readonly bgpId: number; // peer BGP identifier (unsigned)
  readonly address: Uint8Array; // peer address
}

export interface Candidate {
  readonly attr: AttrSet;
  readonly source: PathSource;
  readonly pathId: number;
}

const DEFAULT_LOCAL_PREF = 100;

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return a.length - b.length;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/**
 * Negative when `a` is preferred, positive when `b` is, 0 only for identical candidates.
 * `withMed` false skips the MED step (used when comparing neighbour-AS group winners).
 */
export function comparePaths(
  a: Candidate,
  b: Candidate,
  opts: DecisionOptions = DEFAULT_DECISION_OPTIONS,
  withMed = true,
): { cmp: number; reason: DecisionReason } {
  const A = a.attr;
  const B = b.attr;
  // a) highest LOCAL_PREF (eBGP-learned paths carry none: the configured default applies)
  const lpA = A.localPref ?? DEFAULT_LOCAL_PREF;
  const lpB = B.localPref ?? DEFAULT_LOCAL_PREF;
  if (lpA !== lpB) return { cmp: lpB - lpA, reason: 'local-pref' };
  // locally originated routes first (as BIRD/FRR/GoBGP do)
  if (a.source.local !== b.source.local) return { cmp: a.source.local ? -1 : 1, reason: 'local-origin' };
  // a) shortest AS_PATH
  if (!opts.ignoreAsPathLength && A.asPathLength !== B.asPathLength)
    return { cmp: A.asPathLength - B.asPathLength, reason: 'as-path-length' };
  // b) lowest ORIGIN
  if (A.origin !== B.origin) return { cmp: A.origin - B.origin, reason: 'origin' };
  // c) lowest MED, between paths from the same neighbouring AS unless always-compare-med
  if (withMed && (opts.alwaysCompareMed || A.neighborAs === B.neighborAs)) {
    const missing = opts.medMissingAsWorst ? 0xffffffff : 0;
    const mA = A.med ?? missing;
    const mB = B.med ?? missing;
    if (mA !== mB) return { cmp: mA - mB, reason: 'med' };
  }
  // d) eBGP over iBGP
  if (a.source.ebgp !== b.source.ebgp) return { cmp: a.source.ebgp ? -1 : 1, reason: 'ebgp-over-ibgp' };
  // e) IGP cost to the next hop: not applicable (no IGP in a vCE); f) lowest BGP identifier,
  // ORIGINATOR_ID standing in for it on reflected routes (RFC 4456 §9)
  const idA = A.originatorId ?? a.source.bgpId;
  const idB = B.originatorId ?? b.source.bgpId;
  if (idA !== idB) return { cmp: idA < idB ? -1 : 1, reason: 'router-id' };
  // RFC 4456 §9: shortest CLUSTER_LIST
  if (A.clusterListLength !== B.clusterListLength)
    return { cmp: A.clusterListLength - B.clusterListLength, reason: 'cluster-list-length' };
  // g) lowest peer address
  const pa = compareBytes(a.source.address, b.source.address);
  if (pa !== 0) return { cmp: pa, reason: 'peer-address' };
  // ADD-PATH: several paths from one peer, lowest path id
  return { cmp: a.pathId - b.pathId, reason: 'path-id' };
}

/** Index of the best candidate (-1 for none). Deterministic regardless of input order. */
export function selectBest(
  cands: readonly Candidate[],
  opts: DecisionOptions = DEFAULT_DECISION_OPTIONS,
): number {
  const n = cands.length;
  if (n === 0) return -1;
  if (n === 1) return 0;
  if (opts.alwaysCompareMed) {
    let best = 0;
    for (let i = 1; i < n; i++) if (comparePaths(cands[i]!, cands[best]!, opts).cmp < 0) best = i;
    return best;
  }
  // Deterministic MED: best per neighbour AS (MED applies within the group), then compare the
  // group winners without MED.
  const groupBest = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const as = cands[i]!.attr.neighborAs;
    const cur = groupBest.get(as);
    if (cur === undefined || comparePaths(cands[i]!, cands[cur]!, opts).cmp < 0) groupBest.set(as, i);
  }
  let best = -1;
  for (const i of groupBest.values()) {
    if (best < 0 || comparePaths(cands[i]!, cands[best]!, opts, false).cmp < 0) best = i;
  }
  return best;
}

/** Why `best` beat `other`: the first decision step that separated them. */
export function explain(
  best: Candidate,
  other: Candidate,
  opts: DecisionOptions = DEFAULT_DECISION_OPTIONS,
): DecisionReason {
  const same = best.attr.neighborAs === other.attr.neighborAs || opts.alwaysCompareMed;
  return comparePaths(best, other, opts, same).reason;
}
