/**
 * Statement `actions`: `policy-result` plus `bgp-actions`, validated and compiled to closures.
 *
 * bgp-actions (applied in this fixed order, whatever the key order in config):
 * - set-route-origin: igp | egp | incomplete
 * - set-local-pref: uint32
 * - set-med: uint32 sets; "+N" / "-N" adjusts (a missing MED counts as 0, RFC 4271 §9.1.2.2(c)),
 *   clamped to 0..2^32-1.
 * - set-community / set-ext-community / set-large-community:
 *   { method: add|remove|replace, communities: [...] } or a set reference
 *   (`community-set-ref`; `ext-community-set-ref` / `large-community-set-ref` also accepted for
 *   their kinds). remove may use regex members; add and replace need literal values only.
 *   replace with an empty list removes the attribute.
 * - set-as-path-prepend: { asn: N | "last-as", repeat-n: 1..255 (default 1) }. Merged into a
 *   leading AS_SEQUENCE when it fits in 255 ASNs (RFC 4271 §4.3), else a new leading segment.
 *   "last-as" repeats the leftmost ASN of the first AS_SEQUENCE (after any confederation
 *   segments); no-op when there is none.
 * - set-next-hop: "self" | address (see PolicyResult.nextHop / nextHopSelf).
 *
 * Invariant: an action that would not change a value does not call `edit()`, so a statement
 * whose actions are all no-ops leaves the input attributes object as the result (`===`).
 */
import { parseAddress } from '../../lib/ip.ts';
import { AsPathSegmentType, Origin } from '../wire/constants.ts';
import type { AsPathSegment } from '../wire/types.ts';
import {
  addMissing,
  EXTENDED,
  LARGE,
  removeMatching,
  sameList,
  STANDARD,
  type CommunityKind,
  type CommunitySet,
} from './community-kinds.ts';
import {
  at,
  describe,
  key,
  PolicyConfigError,
  readEnum,
  readInt,
  readList,
  readObject,
  readString,
  type ConfigObject,
} from './config-reader.ts';
import { buildCommunitySet, type DefinedSets } from './defined-sets.ts';
import type { Action } from './types.ts';

export type PolicyVerdict = 'accept' | 'reject' | 'next';

export interface CompiledActions {
  readonly verdict: PolicyVerdict;
  readonly actions: readonly Action[];
}

const UINT32_MAX = 0xffffffff;
const MAX_SEGMENT_ASNS = 255; // RFC 4271 §4.3: segment length is one octet

const BGP_ACTION_KEYS = [
  'set-route-origin',
  'set-local-pref',
  'set-med',
  'set-community',
  'set-ext-community',
  'set-large-community',
  'set-as-path-prepend',
  'set-next-hop',
] as const;

const RESULTS: Readonly<Record<string, PolicyVerdict>> = {
  'accept-route': 'accept',
  'reject-route': 'reject',
  'next-statement': 'next',
};

function setOrigin(v: unknown, path: string): Action {
  const name = readEnum(v, path, ['igp', 'egp', 'incomplete'] as const);
  const origin = name === 'igp' ? Origin.IGP : name === 'egp' ? Origin.EGP : Origin.INCOMPLETE;
  return (s) => {
    if (s.attrs.origin !== origin) s.edit().origin = origin;
  };
}

function setLocalPref(v: unknown, path: string): Action {
  const lp = readInt(v, path, 0, UINT32_MAX);
  return (s) => {
    if (s.attrs.localPref !== lp) s.edit().localPref = lp;
  };
}

function setMed(v: unknown, path: string): Action {
  if (typeof v === 'number') {
    const med = readInt(v, path, 0, UINT32_MAX);
    return (s) => {
      if (s.attrs.med !== med) s.edit().med = med;
    };
  }
  const m = typeof v === 'string' ? /^([+-]?)(\d{1,10})$/.exec(v) : null;
  if (m === null) throw new PolicyConfigError(path, `expected a uint32, "+N" or "-N", got ${describe(v)}`);
  const n = Number(m[2]);
  if (n > UINT32_MAX) throw new PolicyConfigError(path, `${n} is out of range 0..${UINT32_MAX}`);
  if (m[1] === '') return setMed(n, path);
  const delta = m[1] === '+' ? n : -n;
  return (s) => {
    const next = Math.min(UINT32_MAX, Math.max(0, (s.attrs.med ?? 0) + delta));
    if (s.attrs.med !== next) s.edit().med = next;
  };
}

function setNextHop(v: unknown, path: string): Action {
  const text = readString(v, path);
  if (text === 'self')
    return (s) => {
      s.nextHop = 'self';
    };
  const addr = at(path, () => parseAddress(text));
  return (s) => {
    s.nextHop = addr;
    if (s.route.family !== 'ipv4-unicast' || addr.length !== 4) return;
    const cur = s.attrs.nextHop;
    if (cur === undefined || cur.length !== 4 || cur.some((b, i) => b !== addr[i])) s.edit().nextHop = addr;
  };
}

function setAsPathPrepend(v: unknown, path: string): Action {
  const o = readObject(v, path, ['asn', 'repeat-n'], ['asn']);
  const asnPath = key(path, 'asn');
  const rawAsn = o['asn'];
  const fixed = rawAsn === 'last-as' ? undefined : readInt(rawAsn, asnPath, 1, UINT32_MAX); // RFC 7607: not 0
  const n =
    o['repeat-n'] === undefined ? 1 : readInt(o['repeat-n'], key(path, 'repeat-n'), 1, MAX_SEGMENT_ASNS);
  return (s) => {
    const asPath: readonly AsPathSegment[] = s.attrs.asPath ?? [];
    const asn = fixed ?? lastAs(asPath);
    if (asn === undefined) return;
    const added = new Array<number>(n).fill(asn);
    const first = asPath[0];
    let next: AsPathSegment[];
    if (first?.type === AsPathSegmentType.AS_SEQUENCE && first.asns.length + n <= MAX_SEGMENT_ASNS) {
      next = [{ type: AsPathSegmentType.AS_SEQUENCE, asns: [...added, ...first.asns] }, ...asPath.slice(1)];
    } else {
      next = [{ type: AsPathSegmentType.AS_SEQUENCE, asns: added }, ...asPath];
    }
    s.edit().asPath = next;
  };
}

/** Leftmost ASN of the first AS_SEQUENCE after any leading confederation segments. */
function lastAs(path: readonly AsPathSegment[]): number | undefined {
  for (const seg of path) {
    if (seg.type === AsPathSegmentType.AS_CONFED_SEQUENCE || seg.type === AsPathSegmentType.AS_CONFED_SET)
      continue;
    return seg.type === AsPathSegmentType.AS_SEQUENCE ? seg.asns[0] : undefined;
  }
  return undefined;
}

const EMPTY: readonly never[] = [];

function setCommunities<V, K>(
  v: unknown,
  path: string,
  kind: CommunityKind<V, K>,
  sets: ReadonlyMap<string, CommunitySet<V, K>>,
  refKeys: readonly string[],
): Action {
  const o = readObject(v, path, ['method', 'communities', ...refKeys], ['method']);
  const method = readEnum(o['method'], key(path, 'method'), ['add', 'remove', 'replace'] as const);
  const given = refKeys.filter((k) => o[k] !== undefined);
  if (given.length > 1)
    throw new PolicyConfigError(key(path, given[1]!), `give only one of ${given.join(', ')}`);
  const refKey = given[0];
  let set: CommunitySet<V, K>;
  if (refKey !== undefined) {
    if (o['communities'] !== undefined)
      throw new PolicyConfigError(
        key(path, 'communities'),
        `give either "communities" or "${refKey}", not both`,
      );
    const refPath = key(path, refKey);
    const name = readString(o[refKey], refPath);
    const found = sets.get(name);
    if (found === undefined) throw new PolicyConfigError(refPath, `unknown ${kind.what} set "${name}"`);
    if (method !== 'remove' && found.regexes.length > 0)
      throw new PolicyConfigError(
        refPath,
        `${kind.what} set "${name}" has regex members; only "remove" can use it`,
      );
    set = found;
  } else {
    if (o['communities'] === undefined)
      throw new PolicyConfigError(
        key(path, 'communities'),
        `missing "communities" (or ${refKeys.join(' / ')})`,
      );
    const listPath = key(path, 'communities');
    set = buildCommunitySet(kind, '(inline)', readList(o['communities'], listPath), listPath);
    if (method !== 'remove' && set.regexes.length > 0)
      throw new PolicyConfigError(listPath, `regex members are only allowed with method "remove"`);
    if (method !== 'replace' && set.literals.length === 0 && set.regexes.length === 0)
      throw new PolicyConfigError(listPath, `empty list: nothing to ${method}`);
  }
  const literals = set.literals;
  switch (method) {
    case 'add':
      return (s) => {
        const cur = kind.get(s.attrs) ?? EMPTY;
        const next = addMissing(kind, cur, literals);
        if (next !== cur) kind.put(s.edit(), next);
      };
    case 'remove':
      return (s) => {
        const cur = kind.get(s.attrs);
        if (cur === undefined) return;
        const next = removeMatching(set, cur);
        if (next !== cur) kind.put(s.edit(), next);
      };
    case 'replace':
      return (s) => {
        const cur = kind.get(s.attrs) ?? EMPTY;
        if (!sameList(kind, cur, literals)) kind.put(s.edit(), literals);
      };
  }
}

function compileBgpActions(v: unknown, path: string, sets: DefinedSets): Action[] {
  const o: ConfigObject = readObject(v, path, BGP_ACTION_KEYS);
  const out: Action[] = [];
  const p = (k: string): string => key(path, k);
  if (o['set-route-origin'] !== undefined) out.push(setOrigin(o['set-route-origin'], p('set-route-origin')));
  if (o['set-local-pref'] !== undefined) out.push(setLocalPref(o['set-local-pref'], p('set-local-pref')));
  if (o['set-med'] !== undefined) out.push(setMed(o['set-med'], p('set-med')));
  if (o['set-community'] !== undefined)
    out.push(
      setCommunities(o['set-community'], p('set-community'), STANDARD, sets.communitySets, [
        'community-set-ref',
      ]),
    );
  if (o['set-ext-community'] !== undefined)
    out.push(
      setCommunities(o['set-ext-community'], p('set-ext-community'), EXTENDED, sets.extCommunitySets, [
        'community-set-ref',
        'ext-community-set-ref',
      ]),
    );
  if (o['set-large-community'] !== undefined)
    out.push(
      setCommunities(o['set-large-community'], p('set-large-community'), LARGE, sets.largeCommunitySets, [
        'community-set-ref',
        'large-community-set-ref',
      ]),
    );
  if (o['set-as-path-prepend'] !== undefined)
    out.push(setAsPathPrepend(o['set-as-path-prepend'], p('set-as-path-prepend')));
  if (o['set-next-hop'] !== undefined) out.push(setNextHop(o['set-next-hop'], p('set-next-hop')));
  return out;
}

/** Compiles a statement's `actions` at `path`; no actions means "next-statement", no changes. */
export function compileActions(v: unknown, path: string, sets: DefinedSets): CompiledActions {
  if (v === undefined) return { verdict: 'next', actions: [] };
  const o = readObject(v, path, ['policy-result', 'bgp-actions']);
  let verdict: PolicyVerdict = 'next';
  if (o['policy-result'] !== undefined) {
    const r = readEnum(o['policy-result'], key(path, 'policy-result'), Object.keys(RESULTS));
    verdict = RESULTS[r]!;
  }
  const bgp = o['bgp-actions'];
  const actions = bgp === undefined ? [] : compileBgpActions(bgp, key(path, 'bgp-actions'), sets);
  return { verdict, actions };
}
