/**
 * Statement `conditions`: validated, resolved against the defined sets, compiled to closures.
 * All conditions of a statement must hold (logical AND); no condition means "always".
 *
 * - match-prefix-set / match-neighbor-set: options any (default) | invert.
 * - match-community-set, match-ext-community-set, match-large-community-set, match-as-path-set:
 *   options any (default) | all | invert. ANY: some member matches; ALL: every member matches
 *   (a regex member matches when it matches some value); INVERT: no member matches.
 * - afi-safi-in: the route's family is in the list.
 * - as-path-length: { operator: eq|ge|le, value } on the RFC 4271 §9.1.2.2(a) length: an AS_SET
 *   counts 1, confederation segments count 0 (RFC 5065 §5.3).
 * - route-type: internal | external | local; a route without a type never matches.
 *
 * Conditions are ordered cheapest first (family, type, length, then sets) so the common misses
 * are cheap. `deps` records which non-attribute inputs the statement reads.
 */
import { AFI_SAFIS, type AfiSafiName } from '../wire/constants.ts';
import type { AsPathSegment } from '../wire/types.ts';
import { countAsPath } from '../wire/as-path.ts';
import { formatAsPath } from '../wire/communities.ts';
import { matchesAll, matchesAny, type CommunitySet } from './community-kinds.ts';
import {
  key,
  PolicyConfigError,
  readEnum,
  readInt,
  readList,
  readObject,
  readString,
  type ConfigObject,
} from './config-reader.ts';
import type { AsPathSet, DefinedSets } from './defined-sets.ts';
import type { Condition, PolicyDependencies, RouteType } from './types.ts';

export type MutableDeps = { -readonly [K in keyof PolicyDependencies]: PolicyDependencies[K] };

export const CONDITION_KEYS = [
  'match-prefix-set',
  'match-neighbor-set',
  'match-community-set',
  'match-ext-community-set',
  'match-large-community-set',
  'match-as-path-set',
  'afi-safi-in',
  'as-path-length',
  'route-type',
] as const;

type SetOption = 'any' | 'all' | 'invert';

/** RFC 4271 §9.1.2.2(a) path length; RFC 5065 §5.3 confederation segments do not count. */
function asPathLength(path: readonly AsPathSegment[] | undefined): number {
  return path === undefined ? 0 : countAsPath(path);
}

const EMPTY_PATH: readonly AsPathSegment[] = [];
const pathTexts = new WeakMap<readonly AsPathSegment[], string>();

/** The AS path's text form, formatted once per (interned) path array. */
export function asPathText(path: readonly AsPathSegment[] | undefined): string {
  const p = path ?? EMPTY_PATH;
  let t = pathTexts.get(p);
  if (t === undefined) {
    t = formatAsPath(p);
    pathTexts.set(p, t);
  }
  return t;
}

/** Reads `{ <setKey>: name, match-set-options }` and resolves the name. */
function readSetRef<T>(
  v: unknown,
  path: string,
  setKey: string,
  sets: ReadonlyMap<string, T>,
  options: readonly SetOption[],
): { set: T; option: SetOption } {
  const o = readObject(v, path, [setKey, 'match-set-options'], [setKey]);
  const name = readString(o[setKey], key(path, setKey));
  const set = sets.get(name);
  if (set === undefined) {
    const known = [...sets.keys()];
    throw new PolicyConfigError(
      key(path, setKey),
      `unknown ${setKey} "${name}"` +
        (known.length > 0 ? ` (defined: ${known.join(', ')})` : ' (none defined)'),
    );
  }
  const opt = o['match-set-options'];
  const option = opt === undefined ? 'any' : readEnum(opt, key(path, 'match-set-options'), options);
  return { set, option };
}

function communityCondition<V, K>(set: CommunitySet<V, K>, option: SetOption): Condition {
  const get = set.kind.get;
  switch (option) {
    case 'any':
      return (s) => matchesAny(set, get(s.attrs));
    case 'all':
      return (s) => matchesAll(set, get(s.attrs));
    case 'invert':
      return (s) => !matchesAny(set, get(s.attrs));
  }
}

function asPathCondition(set: AsPathSet, option: SetOption): Condition {
  const res = set.regexes;
  switch (option) {
    case 'any':
      return (s) => {
        const t = asPathText(s.attrs.asPath);
        for (const re of res) if (re.test(t)) return true;
        return false;
      };
    case 'all':
      return (s) => {
        const t = asPathText(s.attrs.asPath);
        for (const re of res) if (!re.test(t)) return false;
        return true;
      };
    case 'invert':
      return (s) => {
        const t = asPathText(s.attrs.asPath);
        for (const re of res) if (re.test(t)) return false;
        return true;
      };
  }
}

/** Compiles `conditions` at `path`, recording dependencies into `deps`. */
export function compileConditions(
  v: unknown,
  path: string,
  sets: DefinedSets,
  deps: MutableDeps,
): Condition[] {
  if (v === undefined) return [];
  const o: ConfigObject = readObject(v, path, CONDITION_KEYS);
  const cheap: Condition[] = [];
  const costly: Condition[] = [];

  if (o['afi-safi-in'] !== undefined) {
    const p = key(path, 'afi-safi-in');
    const fams = new Set<AfiSafiName>(
      readList(o['afi-safi-in'], p).map((f, i) => readEnum(f, `${p}[${i}]`, AFI_SAFIS)),
    );
    if (fams.size === 0) throw new PolicyConfigError(p, 'empty list: the statement could never match');
    deps.family = true;
    cheap.push((s) => fams.has(s.route.family));
  }
  if (o['route-type'] !== undefined) {
    const rt = readEnum<RouteType>(o['route-type'], key(path, 'route-type'), [
      'internal',
      'external',
      'local',
    ]);
    deps.routeType = true;
    cheap.push((s) => s.route.routeType === rt);
  }
  if (o['as-path-length'] !== undefined) {
    const p = key(path, 'as-path-length');
    const l = readObject(o['as-path-length'], p, ['operator', 'value'], ['operator', 'value']);
    const op = readEnum(l['operator'], key(p, 'operator'), ['eq', 'ge', 'le'] as const);
    const n = readInt(l['value'], key(p, 'value'), 0, 0xffffffff);
    cheap.push(
      op === 'eq'
        ? (s) => asPathLength(s.attrs.asPath) === n
        : op === 'ge'
          ? (s) => asPathLength(s.attrs.asPath) >= n
          : (s) => asPathLength(s.attrs.asPath) <= n,
    );
  }
  if (o['match-neighbor-set'] !== undefined) {
    const { set, option } = readSetRef(
      o['match-neighbor-set'],
      key(path, 'match-neighbor-set'),
      'neighbor-set',
      sets.neighborSets,
      ['any', 'invert'],
    );
    const trie = set.trie;
    const hit = (n: Uint8Array | undefined): boolean => n !== undefined && trie.matchesAddress(n);
    deps.neighbor = true;
    cheap.push(option === 'invert' ? (s) => !hit(s.route.neighbor) : (s) => hit(s.route.neighbor));
  }
  if (o['match-prefix-set'] !== undefined) {
    const { set, option } = readSetRef(
      o['match-prefix-set'],
      key(path, 'match-prefix-set'),
      'prefix-set',
      sets.prefixSets,
      ['any', 'invert'],
    );
    const trie = set.trie;
    deps.prefix = true;
    costly.push(
      option === 'invert' ? (s) => !trie.matches(s.route.prefix) : (s) => trie.matches(s.route.prefix),
    );
  }
  const communityRefs = [
    ['match-community-set', 'community-set', sets.communitySets],
    ['match-ext-community-set', 'ext-community-set', sets.extCommunitySets],
    ['match-large-community-set', 'large-community-set', sets.largeCommunitySets],
  ] as const;
  for (const [condKey, setKey, map] of communityRefs) {
    if (o[condKey] === undefined) continue;
    const all: readonly SetOption[] = ['any', 'all', 'invert'];
    // The three maps hold different value types; each set carries its own kind, so widen here.
    const m = map as ReadonlyMap<string, CommunitySet<unknown, unknown>>;
    const { set, option } = readSetRef(o[condKey], key(path, condKey), setKey, m, all);
    costly.push(communityCondition(set, option));
  }
  if (o['match-as-path-set'] !== undefined) {
    const { set, option } = readSetRef(
      o['match-as-path-set'],
      key(path, 'match-as-path-set'),
      'as-path-set',
      sets.asPathSets,
      ['any', 'all', 'invert'],
    );
    costly.push(asPathCondition(set, option));
  }
  return [...cheap, ...costly];
}
