/**
 * What every WAN adapter shares: the naming scheme of the PE-side objects it owns, the validation
 * of a binding before anything is touched, and the canonical text of RDs and route targets.
 *
 * Naming: a binding `id` owns the PE VRF `<prefix><id>` (prefix `vce-` by default). The name is
 * the only state an adapter keeps on the PE, so `list()` recovers the bindings from the PE alone
 * and an adapter never touches a VRF outside its prefix. The binding's `vrf` (the tenant's WAN VPN
 * name) is not the PE VRF name: two bindings of one VPN on one PE are two VRFs with the same route
 * targets (RFC 4364 §4.3.1: membership of a VPN is by route target, not by name).
 *
 * Canonical text: RDs as `formatRd` writes them (RFC 4364 §4.2: `65000:1`, `192.0.2.1:1`,
 * `4200000000:1`), route targets the same without the `rt:` tag (RFC 4360 §4), 4-octet ASNs in
 * asplain. Status reports them canonical and sorted, so a spec compares with what a PE holds.
 */
import { formatRd, parseRd } from '../../bgp/wire/rd.ts';
import { formatExtCommunity, parseExtCommunity } from '../../bgp/wire/communities.ts';
import { formatPrefix, parseAddress, parsePrefix } from '../../lib/ip.ts';
import { WanError, type WanBindingSpec } from './types.ts';

export const DEFAULT_NAME_PREFIX = 'vce-';

/** Binding ids: letters, digits, `_ . -`, so the VRF name is valid on every PE we drive. */
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,55}$/;

export function vrfNameOf(prefix: string, id: string): string {
  return `${prefix}${id}`;
}

/** The binding id a PE VRF name belongs to, or undefined when the VRF is not ours. */
export function bindingIdOf(prefix: string, vrfName: string): string | undefined {
  if (!vrfName.startsWith(prefix)) return undefined;
  const id = vrfName.slice(prefix.length);
  return ID_RE.test(id) ? id : undefined;
}

/** `65000:1` / `192.0.2.1:1` / `4200000000:1` in the one text form (RFC 4364 §4.2). */
export function canonicalRd(rd: string): string {
  return formatRd(parseRd(rd));
}

/** A route target (`ASN:N`, `IP:N`, with or without `rt:`) in the one text form, without `rt:`. */
export function canonicalRt(rt: string): string {
  return formatExtCommunity(parseExtCommunity(rt.startsWith('rt:') ? rt : `rt:${rt}`)).slice(3);
}

export function canonicalRts(rts: readonly string[]): string[] {
  return [...new Set(rts.map(canonicalRt))].sort();
}

/** FNV-1a over the id: a stable 31-bit number for PEs that want a numeric VRF id (never 0). */
export function stableNumber(id: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(id, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193);
  }
  return ((h >>> 0) % 0x7ffffffe) + 1;
}

/**
 * Checks a binding before an adapter acts on it, so a bad spec changes nothing on the PE. Throws
 * a WanError naming the field.
 */
export function checkSpec(adapter: string, s: WanBindingSpec, opts: { forDeprovision?: boolean } = {}): void {
  const bad = (field: string, why: string): never => {
    throw new WanError(adapter, `binding ${JSON.stringify(s.id)}: ${field}: ${why}`);
  };
  if (!ID_RE.test(s.id)) bad('id', 'letters, digits, _ . - (at most 56), starting with a letter or digit');
  if (opts.forDeprovision === true) return;
  try {
    canonicalRd(s.rd);
  } catch {
    bad('rd', `"${s.rd}" is not ASN:N or IP:N`);
  }
  for (const [field, list] of [
    ['importRts', s.importRts],
    ['exportRts', s.exportRts],
  ] as const) {
    for (const rt of list) {
      try {
        canonicalRt(rt);
      } catch {
        bad(field, `"${rt}" is not ASN:N or IP:N`);
      }
    }
  }
  if (s.importRts.length === 0 && s.exportRts.length === 0) bad('importRts', 'a VRF needs route targets');
  const address = (field: string, v: string): Uint8Array => {
    try {
      return parseAddress(v);
    } catch {
      return bad(field, `"${v}" is not an IP address`);
    }
  };
  address('peAddress', s.peAddress);
  if (!Number.isInteger(s.peAsn) || s.peAsn < 1 || s.peAsn > 0xffffffff) bad('peAsn', 'not an AS number');
  if (s.dynamicRange !== undefined) {
    try {
      parsePrefix(s.dynamicRange);
    } catch {
      bad('dynamicRange', `"${s.dynamicRange}" is not a prefix`);
    }
  } else if (s.protocol === 'bgp' || s.ceAddress !== '') address('ceAddress', s.ceAddress);
  if (s.protocol === 'bgp' && s.dynamicRange === undefined && s.ceAsn === undefined)
    bad('ceAsn', 'a BGP binding needs the vCE AS number');
  if (s.ceAsn !== undefined && (!Number.isInteger(s.ceAsn) || s.ceAsn < 1 || s.ceAsn > 0xffffffff))
    bad('ceAsn', 'not an AS number');
  for (const p of s.staticPrefixes ?? []) {
    try {
      parsePrefix(p);
    } catch {
      bad('staticPrefixes', `"${p}" is not a prefix`);
    }
  }
  if (s.protocol === 'static' && (s.staticPrefixes ?? []).length > 0 && s.ceAddress === '')
    bad('ceAddress', 'static routes need the vCE address as next hop');
}

/** The static prefixes a binding routes to its vCE (none unless protocol static), canonical. */
export function staticPrefixesOf(s: WanBindingSpec): string[] {
  if (s.protocol !== 'static') return [];
  return [...new Set((s.staticPrefixes ?? []).map((p) => canonicalPrefixText(p)))].sort();
}

export function canonicalPrefixText(p: string): string {
  return formatPrefix(parsePrefix(p));
}
