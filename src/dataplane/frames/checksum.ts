/**
 * The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
 *
 * A *partial sum* is the ones'-complement sum of 16-bit big-endian words folded to 16 bits but
 * not complemented; partial sums add (`sum16(b, o, n, pseudoHeader4(...))`) and `finish` folds
 * and complements once. `sum16` pads an odd trailing byte with zero (RFC 1071 §4.1), so only the
 * last range of a multi-part sum may have odd length. Nothing here allocates.
 */

/** Folds any non-negative integer (< 2^53) to 16 bits with end-around carry (RFC 1071 §2(C)). */
function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** Partial sum of `len` bytes at `off`, added to `initial` (another partial sum). */
export function sum16(buf: Uint8Array, off: number, len: number, initial = 0): number {
  let sum = initial;
  const end = off + len;
  const even = off + (len & ~1);
  let i = off;
  // Unrolled by 4 words: JS numbers hold the sum exactly far beyond any packet length.
  for (; i + 8 <= even; i += 8) {
    sum +=
      ((buf[i]! << 8) | buf[i + 1]!) +
      ((buf[i + 2]! << 8) | buf[i + 3]!) +
      ((buf[i + 4]! << 8) | buf[i + 5]!) +
      ((buf[i + 6]! << 8) | buf[i + 7]!);
  }
  for (; i < even; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) sum += buf[i]! << 8; // RFC 1071 §4.1: pad the odd byte with zero
  return fold(sum);
}

/** Folds a partial sum and complements it: the value to store in a checksum field. */
export function finish(sum: number): number {
  return ~fold(sum) & 0xffff;
}

/** True when a range that includes its checksum field sums to 0xffff (RFC 1071 §1 (3)). */
export function verifies(buf: Uint8Array, off: number, len: number, initial = 0): boolean {
  return sum16(buf, off, len, initial) === 0xffff;
}

/** IPv4 pseudo-header partial sum (RFC 768, RFC 793 §3.1): src, dst, zero+protocol, length. */
export function pseudoHeader4(
  buf: Uint8Array,
  srcOff: number,
  dstOff: number,
  proto: number,
  length: number,
): number {
  return fold(
    ((buf[srcOff]! << 8) | buf[srcOff + 1]!) +
      ((buf[srcOff + 2]! << 8) | buf[srcOff + 3]!) +
      ((buf[dstOff]! << 8) | buf[dstOff + 1]!) +
      ((buf[dstOff + 2]! << 8) | buf[dstOff + 3]!) +
      (proto & 0xff) +
      (length & 0xffff),
  );
}

/**
 * IPv6 pseudo-header partial sum (RFC 8200 §8.1): src, dst, 32-bit upper-layer packet length,
 * three zero bytes and the next header.
 */
export function pseudoHeader6(
  buf: Uint8Array,
  srcOff: number,
  dstOff: number,
  nextHeader: number,
  length: number,
): number {
  let sum = (nextHeader & 0xff) + Math.floor(length / 0x10000) + (length & 0xffff);
  for (let i = 0; i < 16; i += 2) {
    sum +=
      ((buf[srcOff + i]! << 8) | buf[srcOff + i + 1]!) + ((buf[dstOff + i]! << 8) | buf[dstOff + i + 1]!);
  }
  return fold(sum);
}

/**
 * New checksum after one 16-bit word changes from `oldWord` to `newWord`:
 * RFC 1624 §3 eqn. 3, HC' = ~(~HC + ~m + m'), which (unlike RFC 1141's eqn. 2) never turns a
 * checksum that full recomputation gives as 0x0000 into 0xffff.
 */
export function incremental(oldChecksum: number, oldWord: number, newWord: number): number {
  return finish((~oldChecksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff));
}

/** `incremental` for a 32-bit field (an IPv4 address): two word updates in one fold. */
export function incremental32(oldChecksum: number, oldValue: number, newValue: number): number {
  return finish(
    (~oldChecksum & 0xffff) +
      (~(oldValue >>> 16) & 0xffff) +
      (~oldValue & 0xffff) +
      (newValue >>> 16) +
      (newValue & 0xffff),
  );
}
