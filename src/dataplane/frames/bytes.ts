/**
 * Byte helpers for the frame codecs: big-endian reads and writes at an offset, an overlap-safe
 * copy and a code-table name lookup. Plain functions on `Uint8Array` (V8 inlines them); nothing
 * here allocates per call except `nameLookup`, which runs once per table at module load.
 */

export function u16(buf: Uint8Array, off: number): number {
  return (buf[off]! << 8) | buf[off + 1]!;
}

export function u32(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

export function put16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 8;
  buf[off + 1] = v;
}

export function put32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 24;
  buf[off + 1] = v >>> 16;
  buf[off + 2] = v >>> 8;
  buf[off + 3] = v;
}

/**
 * Copies `len` bytes; `src` may be `dst` with overlapping ranges (then `copyWithin`, which is
 * memmove). No subarray views are created.
 */
export function copyBytes(
  dst: Uint8Array,
  dstOff: number,
  src: Uint8Array,
  srcOff: number,
  len: number,
): void {
  if (dst === src) {
    if (dstOff !== srcOff) dst.copyWithin(dstOff, srcOff, srcOff + len);
    return;
  }
  for (let i = 0; i < len; i++) dst[dstOff + i] = src[srcOff + i]!;
}

/** Byte-wise equality of two ranges. */
export function rangeEquals(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number, len: number): boolean {
  for (let i = 0; i < len; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}

/** Reverse lookup for an `as const` code table: code -> key, `unknown(<code>)` otherwise. */
export function nameLookup(table: Readonly<Record<string, number>>): (code: number) => string {
  const names = new Map<number, string>();
  for (const [k, v] of Object.entries(table)) if (!names.has(v)) names.set(v, k);
  return (code) => names.get(code) ?? `unknown(${code})`;
}
