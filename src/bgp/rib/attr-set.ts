/**
 * Interned path attribute sets (BIRD's rta cache). One immutable `AttrSet` per distinct set of
 * attributes (including the next hop) as seen by the RIB; paths refer to it by numeric id and
 * compare by id. Policy makes a new set, never edits a shared one. The fields the decision process
 * reads per comparison are precomputed once per set here, never per prefix.
 */
import { AsPathSegmentType, WellKnownCommunity } from '../wire/constants.ts';
import type { AsPathSegment, PathAttributes } from '../wire/types.ts';

export interface AttrSet {
  readonly id: number;
  /** Attributes as the RIB holds them; `nextHop` is 4 bytes (IPv4) or 16 bytes (IPv6). */
  readonly attrs: PathAttributes & { readonly linkLocalNextHop?: Uint8Array };
  /** Peer index the set came from (0 = locally originated). */
  readonly source: number;
  // Precomputed for the decision process (RFC 4271 §9.1.2.2).
  readonly localPref: number | undefined;
  readonly asPathLength: number;
  readonly origin: number;
  readonly med: number | undefined;
  readonly neighborAs: number; // first AS of the path (0 when empty), for MED comparison
  readonly originatorId: number | undefined;
  readonly clusterListLength: number;
  readonly noExport: boolean; // NO_EXPORT or NO_EXPORT_SUBCONFED present
  readonly noAdvertise: boolean;
  /** The key a per-peer cache holds this set under (raw bytes hash or canonical text), if any. */
  cacheKey: number | string | undefined;
}

/** AS_PATH length for the decision process: AS_SET counts 1, confederation segments 0 (RFC 4271 §9.1.2.2 a, RFC 5065 §5.3). */
export function asPathLength(segments: readonly AsPathSegment[] | undefined): number {
  if (segments === undefined) return 0;
  let n = 0;
  for (const s of segments) {
    if (s.type === AsPathSegmentType.AS_SEQUENCE) n += s.asns.length;
    else if (s.type === AsPathSegmentType.AS_SET) n += 1;
  }
  return n;
}

export function firstAs(segments: readonly AsPathSegment[] | undefined): number {
  if (segments === undefined) return 0;
  for (const s of segments) {
    if (s.type === AsPathSegmentType.AS_SEQUENCE && s.asns.length > 0) return s.asns[0]!;
    if (s.type === AsPathSegmentType.AS_SET) return 0;
  }
  return 0;
}

export function asPathContains(segments: readonly AsPathSegment[] | undefined, asn: number): boolean {
  if (segments === undefined) return false;
  for (const s of segments) if (s.asns.includes(asn)) return true;
  return false;
}

/** Registry of attribute sets. Ids are dense; a freed id is reused after its last path goes. */
export class AttrSetTable {
  private readonly sets: (AttrSet | undefined)[] = [];
  private readonly refs: number[] = [];
  private readonly free: number[] = [];
  private readonly onFree: ((set: AttrSet) => void)[] = [];

  get size(): number {
    return this.sets.length - this.free.length;
  }

  create(attrs: AttrSet['attrs'], source: number): AttrSet {
    const id = this.free.pop() ?? this.sets.length;
    const comm = attrs.communities;
    const set: AttrSet = {
      id,
      attrs,
      source,
      localPref: attrs.localPref,
      asPathLength: asPathLength(attrs.asPath),
      origin: attrs.origin ?? 2,
      med: attrs.med,
      neighborAs: firstAs(attrs.asPath),
      originatorId: attrs.originatorId,
      clusterListLength: attrs.clusterList?.length ?? 0,
      noExport:
        comm !== undefined &&
        (comm.includes(WellKnownCommunity.NO_EXPORT) ||
          comm.includes(WellKnownCommunity.NO_EXPORT_SUBCONFED)),
      noAdvertise: comm !== undefined && comm.includes(WellKnownCommunity.NO_ADVERTISE),
      cacheKey: undefined,
    };
    this.sets[id] = set;
    this.refs[id] = 0;
    return set;
  }

  get(id: number): AttrSet {
    const s = this.sets[id];
    if (s === undefined) throw new Error(`attribute set ${id} does not exist`);
    return s;
  }

  ref(id: number): void {
    this.refs[id]!++;
  }

  /** Drops one reference; at zero the set is freed and the free listeners run (caches drop it). */
  unref(id: number): void {
    const r = --this.refs[id]!;
    if (r === 0) {
      const set = this.sets[id]!;
      for (const f of this.onFree) f(set);
      this.sets[id] = undefined;
      this.free.push(id);
    }
  }

  refCount(id: number): number {
    return this.refs[id] ?? 0;
  }

  /** Registers a cache invalidation hook called when a set is freed. */
  onRelease(f: (set: AttrSet) => void): void {
    this.onFree.push(f);
  }
}
