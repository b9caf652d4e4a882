/**
 * `defined-sets` (OpenConfig routing-policy, kebab-case keys): prefix, neighbour, community,
 * extended community, large community and AS path sets, validated and compiled once.
 *
 * - prefix-sets: each entry `{ prefix, masklength-range }` ("exact" (default) or "lo..hi",
 *   prefix length <= lo <= hi <= address bits) or a shorthand string "10.0.0.0/8",
 *   "10.0.0.0/8 le 24", "10.0.0.0/8 ge 16 le 24", "10.0.0.0/8 ge 16", "10.0.0.0/8 16..24",
 *   "10.0.0.0/8 exact". Compiled into a binary trie per family (prefix-trie.ts).
 * - neighbor-sets: addresses ("192.0.2.1") or prefixes ("192.0.2.0/24"), in the same tries.
 * - community sets: each member is a literal (tried first) or, when it looks like one, a regex
 *   matched against the value's text form (regex.ts; text forms from src/bgp/wire/communities.ts).
 * - as-path-sets: Cisco-style regexes (`_` = delimiter) against "65001 65002 {65003,65004}".
 *
 * Invariant: names are unique per kind; every error names the offending path.
 */
import { AddressError, parseAddress, parsePrefix, type Prefix } from '../../lib/ip.ts';
import type { LargeCommunity } from '../wire/types.ts';
import { EXTENDED, LARGE, STANDARD, type CommunityKind, type CommunitySet } from './community-kinds.ts';
import {
  at,
  index,
  key,
  PolicyConfigError,
  readList,
  readObject,
  readString,
  readText,
  type ConfigObject,
} from './config-reader.ts';
import { DualPrefixTrie } from './prefix-trie.ts';
import { compileAsPathRegex, compileRegex, looksLikeRegex } from './regex.ts';

export interface PrefixSet {
  readonly name: string;
  readonly trie: DualPrefixTrie;
}

export interface NeighborSet {
  readonly name: string;
  readonly trie: DualPrefixTrie;
}

export interface AsPathSet {
  readonly name: string;
  readonly regexes: readonly RegExp[];
}

export interface DefinedSets {
  readonly prefixSets: ReadonlyMap<string, PrefixSet>;
  readonly neighborSets: ReadonlyMap<string, NeighborSet>;
  readonly communitySets: ReadonlyMap<string, CommunitySet<number, number>>;
  readonly extCommunitySets: ReadonlyMap<string, CommunitySet<Uint8Array, string>>;
  readonly largeCommunitySets: ReadonlyMap<string, CommunitySet<LargeCommunity, string>>;
  readonly asPathSets: ReadonlyMap<string, AsPathSet>;
}

/** One parsed prefix-set entry: `prefix{lo..hi}`. */
export interface PrefixRange {
  readonly prefix: Prefix;
  readonly lo: number;
  readonly hi: number;
}

function parsePrefixText(s: string, path: string): Prefix {
  try {
    return parsePrefix(s);
  } catch (e) {
    if (e instanceof AddressError) throw new PolicyConfigError(path, e.message);
    throw e;
  }
}

/** "exact" or "lo..hi", checked against the prefix length and address width. */
export function parseMasklengthRange(s: string, p: Prefix, path: string): { lo: number; hi: number } {
  const max = p.addr.length * 8;
  if (s === 'exact') return { lo: p.len, hi: p.len };
  const m = /^(\d{1,3})\.\.(\d{1,3})$/.exec(s);
  if (m === null)
    throw new PolicyConfigError(path, `masklength-range must be "exact" or "lo..hi", got "${s}"`);
  return checkRange(Number(m[1]), Number(m[2]), p, max, path);
}

function checkRange(
  lo: number,
  hi: number,
  p: Prefix,
  max: number,
  path: string,
): { lo: number; hi: number } {
  if (lo > hi) throw new PolicyConfigError(path, `masklength range ${lo}..${hi} is empty (lo > hi)`);
  if (lo < p.len)
    throw new PolicyConfigError(
      path,
      `masklength range ${lo}..${hi} starts below the prefix length ${p.len}`,
    );
  if (hi > max) throw new PolicyConfigError(path, `masklength range ${lo}..${hi} exceeds ${max} bits`);
  return { lo, hi };
}

/** Shorthand "P/len", "P/len le N", "P/len ge N", "P/len ge N le M", "P/len lo..hi", "P/len exact". */
export function parsePrefixShorthand(s: string, path: string): PrefixRange {
  const words = s.trim().split(/\s+/);
  const prefix = parsePrefixText(words[0] ?? '', path);
  const max = prefix.addr.length * 8;
  const rest = words.slice(1);
  if (rest.length === 0) return { prefix, lo: prefix.len, hi: prefix.len };
  if (rest.length === 1) return { prefix, ...parseMasklengthRange(rest[0]!, prefix, path) };
  let ge: number | undefined;
  let le: number | undefined;
  for (let i = 0; i < rest.length; i += 2) {
    const op = rest[i];
    const n = rest[i + 1];
    if ((op !== 'ge' && op !== 'le') || n === undefined || !/^\d{1,3}$/.test(n))
      throw new PolicyConfigError(path, `expected "prefix [ge N] [le M]", got "${s}"`);
    if (op === 'ge' ? ge !== undefined : le !== undefined)
      throw new PolicyConfigError(path, `"${op}" given twice in "${s}"`);
    if (op === 'ge') ge = Number(n);
    else le = Number(n);
  }
  // Cisco semantics: "le N" alone is len..N, "ge N" alone is N..max.
  return { prefix, ...checkRange(ge ?? prefix.len, le ?? max, prefix, max, path) };
}

function readPrefixEntry(v: unknown, path: string): PrefixRange {
  if (typeof v === 'string') return parsePrefixShorthand(v, path);
  const o = readObject(v, path, ['prefix', 'masklength-range'], ['prefix']);
  const prefix = parsePrefixText(readString(o['prefix'], key(path, 'prefix')), key(path, 'prefix'));
  const r = o['masklength-range'];
  if (r === undefined) return { prefix, lo: prefix.len, hi: prefix.len };
  const rPath = key(path, 'masklength-range');
  return { prefix, ...parseMasklengthRange(readString(r, rPath), prefix, rPath) };
}

/** Reads a list of named sets, checking names are unique, and compiles each with `build`. */
function readNamed<T>(
  v: unknown,
  path: string,
  membersKey: string,
  build: (name: string, members: readonly unknown[], membersPath: string) => T,
): Map<string, T> {
  const out = new Map<string, T>();
  readList(v, path).forEach((item, i) => {
    const p = index(path, i);
    const o = readObject(item, p, ['name', membersKey], ['name']);
    const name = readString(o['name'], key(p, 'name'));
    if (out.has(name)) throw new PolicyConfigError(key(p, 'name'), `duplicate set name "${name}"`);
    out.set(name, build(name, readList(o[membersKey], key(p, membersKey)), key(p, membersKey)));
  });
  return out;
}

export function buildCommunitySet<V, K>(
  kind: CommunityKind<V, K>,
  name: string,
  members: readonly unknown[],
  path: string,
): CommunitySet<V, K> {
  const literals: V[] = [];
  const keys = new Set<K>();
  const regexes: RegExp[] = [];
  members.forEach((m, i) => {
    const p = index(path, i);
    const text = readText(m, p);
    let value: V;
    try {
      value = kind.parse(typeof m === 'number' ? m : text);
    } catch (e) {
      if (typeof m === 'string' && looksLikeRegex(m)) {
        regexes.push(at(p, () => compileRegex(m)));
        return;
      }
      throw new PolicyConfigError(p, e instanceof Error ? e.message : String(e));
    }
    const k = kind.key(value);
    if (!keys.has(k)) {
      keys.add(k);
      literals.push(value);
    }
  });
  return { name, kind, literals, keys, regexes };
}

function buildTrieSet(members: readonly unknown[], path: string, neighbor: boolean): DualPrefixTrie {
  const trie = new DualPrefixTrie();
  members.forEach((m, i) => {
    const p = index(path, i);
    if (neighbor) {
      const s = readString(m, p);
      if (s.includes('/')) {
        const prefix = parsePrefixText(s, p);
        trie.add(prefix, prefix.addr.length * 8, prefix.addr.length * 8);
      } else {
        const addr = at(p, () => parseAddress(s));
        const bits = addr.length * 8;
        trie.add({ afi: addr.length === 4 ? 1 : 2, addr, len: bits }, bits, bits);
      }
    } else {
      const r = readPrefixEntry(m, p);
      trie.add(r.prefix, r.lo, r.hi);
    }
  });
  return trie;
}

const DEFINED_SETS_KEYS = ['prefix-sets', 'neighbor-sets', 'bgp-defined-sets'] as const;
const BGP_SETS_KEYS = [
  'community-sets',
  'ext-community-sets',
  'large-community-sets',
  'as-path-sets',
] as const;

/** Compiles `defined-sets` at `path`; `undefined` gives empty sets. */
export function compileDefinedSets(v: unknown, path: string): DefinedSets {
  const o: ConfigObject = v === undefined ? {} : readObject(v, path, DEFINED_SETS_KEYS);
  const bgpPath = key(path, 'bgp-defined-sets');
  const bgp: ConfigObject =
    o['bgp-defined-sets'] === undefined ? {} : readObject(o['bgp-defined-sets'], bgpPath, BGP_SETS_KEYS);
  return {
    prefixSets: readNamed(o['prefix-sets'], key(path, 'prefix-sets'), 'prefixes', (name, ms, p) => ({
      name,
      trie: buildTrieSet(ms, p, false),
    })),
    neighborSets: readNamed(o['neighbor-sets'], key(path, 'neighbor-sets'), 'addresses', (name, ms, p) => ({
      name,
      trie: buildTrieSet(ms, p, true),
    })),
    communitySets: readNamed(bgp['community-sets'], key(bgpPath, 'community-sets'), 'members', (n, ms, p) =>
      buildCommunitySet(STANDARD, n, ms, p),
    ),
    extCommunitySets: readNamed(
      bgp['ext-community-sets'],
      key(bgpPath, 'ext-community-sets'),
      'members',
      (n, ms, p) => buildCommunitySet(EXTENDED, n, ms, p),
    ),
    largeCommunitySets: readNamed(
      bgp['large-community-sets'],
      key(bgpPath, 'large-community-sets'),
      'members',
      (n, ms, p) => buildCommunitySet(LARGE, n, ms, p),
    ),
    asPathSets: readNamed(bgp['as-path-sets'], key(bgpPath, 'as-path-sets'), 'members', (name, ms, p) => ({
      name,
      regexes: ms.map((m, i) => {
        const mp = index(p, i);
        const s = readText(m, mp);
        return at(mp, () => compileAsPathRegex(s));
      }),
    })),
  };
}
