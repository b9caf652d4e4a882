/**
 * The three community attributes as one table of descriptors (standard RFC 1997, extended
 * RFC 4360, large RFC 8092), so sets, set matching and the add/remove/replace actions are written
 * once for all three.
 *
 * Text forms come from src/bgp/wire/communities.ts, except that a standard community is always
 * matched as "ASN:value" (never by its well-known name), so "^65535:" sees NO_EXPORT too.
 *
 * Invariants: a value's `key` identifies it exactly (equal keys <=> equal values); `format` gives
 * the single text form regexes are matched against. Per-list views (key set, texts) are cached in
 * WeakMaps keyed by the attribute's array: attribute sets are interned, so each list is formatted
 * at most once however many routes and policies look at it.
 */
import {
  formatExtCommunity,
  formatLargeCommunity,
  parseCommunity,
  parseExtCommunity,
  parseLargeCommunity,
} from '../wire/communities.ts';
import type { LargeCommunity, PathAttributes } from '../wire/types.ts';
import type { MutableAttrs } from './types.ts';

export interface CommunityKind<V, K> {
  /** Human name for messages: "community", "extended community", "large community". */
  readonly what: string;
  readonly parse: (v: string | number) => V;
  readonly format: (v: V) => string;
  readonly key: (v: V) => K;
  readonly get: (a: PathAttributes) => readonly V[] | undefined;
  /** Writes the list; an empty list removes the attribute. */
  readonly put: (d: MutableAttrs, list: readonly V[]) => void;
}

/** "65000:100" for every value, well-known ones included (regexes match this form). */
function formatCommunityNumeric(n: number): string {
  return `${n >>> 16}:${n & 0xffff}`;
}

/** A Map/Set key for 8 community bytes (one char per byte: cheap, exact). */
function extCommunityKey(b: Uint8Array): string {
  return String.fromCharCode(b[0]!, b[1]!, b[2]!, b[3]!, b[4]!, b[5]!, b[6]!, b[7]!);
}

export const STANDARD: CommunityKind<number, number> = {
  what: 'community',
  parse: (v) => parseCommunity(String(v)),
  format: formatCommunityNumeric,
  key: (v) => v >>> 0, // tolerate an int32 from a careless `<< 16`
  get: (a) => a.communities,
  put: (d, list) => {
    if (list.length === 0) delete d.communities;
    else d.communities = list;
  },
};

export const EXTENDED: CommunityKind<Uint8Array, string> = {
  what: 'extended community',
  parse: (v) => parseExtCommunity(String(v)),
  format: formatExtCommunity,
  key: extCommunityKey,
  get: (a) => a.extCommunities,
  put: (d, list) => {
    if (list.length === 0) delete d.extCommunities;
    else d.extCommunities = list;
  },
};

export const LARGE: CommunityKind<LargeCommunity, string> = {
  what: 'large community',
  parse: (v) => parseLargeCommunity(String(v)),
  format: formatLargeCommunity,
  key: formatLargeCommunity,
  get: (a) => a.largeCommunities,
  put: (d, list) => {
    if (list.length === 0) delete d.largeCommunities;
    else d.largeCommunities = list;
  },
};

/** A compiled community set of one kind: literal members by key, plus regex members. */
export interface CommunitySet<V, K> {
  readonly name: string;
  readonly kind: CommunityKind<V, K>;
  readonly literals: readonly V[];
  readonly keys: ReadonlySet<K>;
  readonly regexes: readonly RegExp[];
}

interface ListView<K> {
  keys?: ReadonlySet<K>;
  texts?: readonly string[];
}

const views = new WeakMap<readonly unknown[], ListView<unknown>>();

function viewOf<V, K>(list: readonly V[]): ListView<K> {
  let v = views.get(list) as ListView<K> | undefined;
  if (v === undefined) {
    v = {};
    views.set(list, v);
  }
  return v;
}

function keysOf<V, K>(kind: CommunityKind<V, K>, list: readonly V[]): ReadonlySet<K> {
  const v = viewOf<V, K>(list);
  return (v.keys ??= new Set(list.map((x) => kind.key(x))));
}

function textsOf<V, K>(kind: CommunityKind<V, K>, list: readonly V[]): readonly string[] {
  const v = viewOf<V, K>(list);
  return (v.texts ??= list.map((x) => kind.format(x)));
}

function regexHits(re: RegExp, texts: readonly string[]): boolean {
  for (const t of texts) if (re.test(t)) return true;
  return false;
}

/** Some member of the set matches some value of the list (OpenConfig ANY). */
export function matchesAny<V, K>(set: CommunitySet<V, K>, list: readonly V[] | undefined): boolean {
  if (list === undefined || list.length === 0) return false;
  if (set.keys.size > 0) {
    for (const x of list) if (set.keys.has(set.kind.key(x))) return true;
  }
  if (set.regexes.length > 0) {
    const texts = textsOf(set.kind, list);
    for (const re of set.regexes) if (regexHits(re, texts)) return true;
  }
  return false;
}

/** Every member of the set matches some value of the list (OpenConfig ALL). */
export function matchesAll<V, K>(set: CommunitySet<V, K>, list: readonly V[] | undefined): boolean {
  const values = list ?? [];
  if (set.keys.size > 0) {
    const have = keysOf(set.kind, values);
    for (const k of set.keys) if (!have.has(k)) return false;
  }
  if (set.regexes.length > 0) {
    const texts = textsOf(set.kind, values);
    for (const re of set.regexes) if (!regexHits(re, texts)) return false;
  }
  return true;
}

/** The list without the values the set matches; the same array when nothing matched. */
export function removeMatching<V, K>(set: CommunitySet<V, K>, list: readonly V[]): readonly V[] {
  const texts = set.regexes.length > 0 ? textsOf(set.kind, list) : undefined;
  let out: V[] | undefined;
  for (let i = 0; i < list.length; i++) {
    const x = list[i]!;
    let hit = set.keys.has(set.kind.key(x));
    if (!hit && texts !== undefined) {
      const t = texts[i]!;
      for (const re of set.regexes) {
        if (re.test(t)) {
          hit = true;
          break;
        }
      }
    }
    if (hit) out ??= list.slice(0, i);
    else if (out !== undefined) out.push(x);
  }
  return out ?? list;
}

/** The list with the values appended that it lacks; the same array when it had them all. */
export function addMissing<V, K>(
  kind: CommunityKind<V, K>,
  list: readonly V[],
  add: readonly V[],
): readonly V[] {
  const have = keysOf(kind, list);
  let out: V[] | undefined;
  let added: Set<K> | undefined;
  for (const x of add) {
    const k = kind.key(x);
    if (have.has(k) || added?.has(k) === true) continue;
    (added ??= new Set()).add(k);
    (out ??= list.slice()).push(x);
  }
  return out ?? list;
}

/** Same values in the same order. */
export function sameList<V, K>(kind: CommunityKind<V, K>, a: readonly V[], b: readonly V[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (kind.key(a[i]!) !== kind.key(b[i]!)) return false;
  return true;
}
