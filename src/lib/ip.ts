/**
 * IPv4/IPv6 addresses and prefixes: parse, format, compare, contain. One compact representation
 * used everywhere inside vce: an address is a Uint8Array of 4 or 16 bytes; a prefix carries its
 * family, the address with host bits cleared, and its length. Strings exist only at the edges.
 */

export const AFI_IPV4 = 1; // IANA address family numbers
export const AFI_IPV6 = 2;
export type Afi = typeof AFI_IPV4 | typeof AFI_IPV6;

export interface Prefix {
  readonly afi: Afi;
  readonly addr: Uint8Array; // 4 or 16 bytes, host bits zero
  readonly len: number;
}

export class AddressError extends Error {
  override readonly name = 'AddressError';
  readonly code = 'BAD_ADDRESS';
}

export function parseIPv4(s: string): Uint8Array {
  const parts = s.split('.');
  if (parts.length !== 4) throw new AddressError(`not an IPv4 address: ${s}`);
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) throw new AddressError(`not an IPv4 address: ${s}`);
    out[i] = Number(p);
  }
  return out;
}

export function parseIPv6(s: string): Uint8Array {
  let str = s;
  const out = new Uint8Array(16);
  // Embedded IPv4 tail (::ffff:1.2.3.4)
  let tail: Uint8Array | undefined;
  const lastColon = str.lastIndexOf(':');
  if (str.includes('.', lastColon)) {
    tail = parseIPv4(str.slice(lastColon + 1));
    str = str.slice(0, lastColon + 1) + '0:0';
  }
  const dbl = str.indexOf('::');
  if (dbl !== str.lastIndexOf('::')) throw new AddressError(`not an IPv6 address: ${s}`);
  const head = dbl >= 0 ? str.slice(0, dbl) : str;
  const rest = dbl >= 0 ? str.slice(dbl + 2) : '';
  const h = head === '' ? [] : head.split(':');
  const r = rest === '' ? [] : rest.split(':');
  const groups = h.length + r.length;
  if ((dbl < 0 && groups !== 8) || (dbl >= 0 && groups > 7))
    throw new AddressError(`not an IPv6 address: ${s}`);
  const all = [...h, ...new Array<string>(8 - groups).fill('0'), ...r];
  for (let i = 0; i < 8; i++) {
    const g = all[i]!;
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw new AddressError(`not an IPv6 address: ${s}`);
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  }
  if (tail !== undefined) out.set(tail, 12);
  return out;
}

export function parseAddress(s: string): Uint8Array {
  return s.includes(':') ? parseIPv6(s) : parseIPv4(s);
}

export function formatIPv4(b: Uint8Array, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

export function formatIPv6(b: Uint8Array, off = 0): string {
  // IPv4-mapped (::ffff:a.b.c.d, RFC 4291 §2.5.5.2) keeps its dotted tail (RFC 5952 §5).
  let mapped = b[off + 10] === 0xff && b[off + 11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) if (b[off + i] !== 0) mapped = false;
  if (mapped) return `::ffff:${formatIPv4(b, off + 12)}`;
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[off + i * 2]! << 8) | b[off + i * 2 + 1]!);
  // RFC 5952: compress the longest run (>= 2) of zero groups, leftmost on ties.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hexes = g.map((x) => x.toString(16));
  if (bestStart < 0) return hexes.join(':');
  return `${hexes.slice(0, bestStart).join(':')}::${hexes.slice(bestStart + bestLen).join(':')}`;
}

export function formatAddress(b: Uint8Array): string {
  return b.length === 4 ? formatIPv4(b) : formatIPv6(b);
}

/** Clears host bits beyond `len` (returns a new array). */
export function maskAddress(addr: Uint8Array, len: number): Uint8Array {
  const out = new Uint8Array(addr.length);
  const full = len >> 3;
  out.set(addr.subarray(0, full));
  if (len & 7 && full < addr.length) out[full] = addr[full]! & (0xff << (8 - (len & 7)));
  return out;
}

export function makePrefix(addr: Uint8Array, len: number): Prefix {
  const afi: Afi = addr.length === 4 ? AFI_IPV4 : AFI_IPV6;
  if (len < 0 || len > addr.length * 8) throw new AddressError(`bad prefix length ${len}`);
  return { afi, addr: maskAddress(addr, len), len };
}

/** Parses "10.0.0.0/8" or "2001:db8::/32"; strict: host bits must be zero unless `loose`. */
export function parsePrefix(s: string, loose = false): Prefix {
  const slash = s.indexOf('/');
  if (slash < 0) throw new AddressError(`not a prefix (missing /len): ${s}`);
  const addr = parseAddress(s.slice(0, slash));
  const lenStr = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenStr)) throw new AddressError(`bad prefix length in ${s}`);
  const len = Number(lenStr);
  if (len > addr.length * 8) throw new AddressError(`prefix length ${len} too long in ${s}`);
  const p = makePrefix(addr, len);
  if (!loose) {
    for (let i = 0; i < addr.length; i++) {
      if (addr[i] !== p.addr[i]) throw new AddressError(`host bits set in ${s}`);
    }
  }
  return p;
}

export function formatPrefix(p: Prefix): string {
  return `${formatAddress(p.addr)}/${p.len}`;
}

export function prefixEquals(a: Prefix, b: Prefix): boolean {
  if (a.afi !== b.afi || a.len !== b.len) return false;
  for (let i = 0; i < a.addr.length; i++) if (a.addr[i] !== b.addr[i]) return false;
  return true;
}

/** True when `outer` contains `inner` (same family, shorter or equal length, same leading bits). */
export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  if (outer.afi !== inner.afi || outer.len > inner.len) return false;
  const full = outer.len >> 3;
  for (let i = 0; i < full; i++) if (outer.addr[i] !== inner.addr[i]) return false;
  const bits = outer.len & 7;
  if (bits === 0) return true;
  const m = 0xff << (8 - bits);
  return ((outer.addr[full]! ^ inner.addr[full]!) & m) === 0;
}

/** Total order: family, then address bytes, then length (for sorted output). */
export function comparePrefix(a: Prefix, b: Prefix): number {
  if (a.afi !== b.afi) return a.afi - b.afi;
  for (let i = 0; i < a.addr.length; i++) {
    const d = a.addr[i]! - b.addr[i]!;
    if (d !== 0) return d;
  }
  return a.len - b.len;
}

/** IPv4 address bytes -> unsigned 32-bit number. */
export function ipv4ToNumber(b: Uint8Array, off = 0): number {
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}

export function numberToIPv4(n: number): Uint8Array {
  return Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}
