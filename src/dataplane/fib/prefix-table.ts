/**
 * Exact-match store of the FIB's prefixes: (address words, length) -> value, on typed arrays.
 *
 * Owns the authoritative prefix set behind `Lpm4`/`Lpm6` (`get`, `size`, `entries`) and answers
 * "which shorter prefix covers this one" when a delete has to restore a covering route. It is
 * never read by `lookup`.
 *
 * Layout: open addressing with linear probing; `keys` holds `words` int32 per slot (1 for IPv4,
 * 4 for IPv6, big-endian address words, host bits already zero), `lens` holds length + 1 (0 marks
 * an empty slot), `vals` the value. Deletion shifts the following cluster back (no tombstones), so
 * probe chains never grow with churn. Capacity is a power of two, load kept at or below 3/4.
 */

export class PrefixTable {
  private readonly words: number;
  private mask: number;
  private keys: Int32Array;
  private lens: Uint8Array;
  private vals: Int32Array;
  private used = 0;

  constructor(words: number, capacity = 8) {
    this.words = words;
    this.mask = capacity - 1;
    this.keys = new Int32Array(capacity * words);
    this.lens = new Uint8Array(capacity);
    this.vals = new Int32Array(capacity);
  }

  get count(): number {
    return this.used;
  }

  /** Slots, for iteration with `lenAt`/`valueAt`/`wordAt`. */
  get capacity(): number {
    return this.mask + 1;
  }

  get byteLength(): number {
    return this.keys.byteLength + this.lens.byteLength + this.vals.byteLength;
  }

  clear(capacity = 8): void {
    this.mask = capacity - 1;
    this.keys = new Int32Array(capacity * this.words);
    this.lens = new Uint8Array(capacity);
    this.vals = new Int32Array(capacity);
    this.used = 0;
  }

  /** Length of the prefix in slot `i`, or -1 when the slot is empty. */
  lenAt(i: number): number {
    return (this.lens[i] as number) - 1;
  }

  valueAt(i: number): number {
    return this.vals[i] as number;
  }

  wordAt(i: number, w: number): number {
    return this.keys[i * this.words + w] as number;
  }

  /** Value stored for (k, len), 0 when absent. */
  get(k: Int32Array, len: number): number {
    const i = this.find(k, len);
    return i < 0 ? 0 : (this.vals[i] as number);
  }

  /** Inserts or replaces; returns the previous value (0 when the prefix is new). */
  put(k: Int32Array, len: number, value: number): number {
    if ((this.used + 1) * 4 > (this.mask + 1) * 3) this.resize((this.mask + 1) * 2);
    const words = this.words;
    const keys = this.keys;
    const lens = this.lens;
    const l1 = len + 1;
    let i = this.hash(k, len) & this.mask;
    for (;;) {
      const sl = lens[i] as number;
      if (sl === 0) break;
      if (sl === l1 && this.sameKey(i, k)) {
        const old = this.vals[i] as number;
        this.vals[i] = value;
        return old;
      }
      i = (i + 1) & this.mask;
    }
    const at = i * words;
    for (let w = 0; w < words; w++) keys[at + w] = k[w] as number;
    lens[i] = l1;
    this.vals[i] = value;
    this.used++;
    return 0;
  }

  /** Removes (k, len); returns its value, 0 when it was absent. */
  remove(k: Int32Array, len: number): number {
    let i = this.find(k, len);
    if (i < 0) return 0;
    const old = this.vals[i] as number;
    const words = this.words;
    const keys = this.keys;
    const lens = this.lens;
    const mask = this.mask;
    // Backward-shift deletion: pull later members of the cluster into the hole when their home
    // slot does not lie cyclically in (hole, j].
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const jl = lens[j] as number;
      if (jl === 0) break;
      const home = this.hashAt(j) & mask;
      const inRange = i <= j ? home > i && home <= j : home > i || home <= j;
      if (inRange) continue;
      keys.copyWithin(i * words, j * words, j * words + words);
      lens[i] = jl;
      this.vals[i] = this.vals[j] as number;
      i = j;
    }
    lens[i] = 0;
    this.vals[i] = 0;
    this.used--;
    return old;
  }

  private find(k: Int32Array, len: number): number {
    const lens = this.lens;
    const l1 = len + 1;
    let i = this.hash(k, len) & this.mask;
    for (;;) {
      const sl = lens[i] as number;
      if (sl === 0) return -1;
      if (sl === l1 && this.sameKey(i, k)) return i;
      i = (i + 1) & this.mask;
    }
  }

  private sameKey(i: number, k: Int32Array): boolean {
    const words = this.words;
    const keys = this.keys;
    const at = i * words;
    for (let w = 0; w < words; w++) if (keys[at + w] !== k[w]) return false;
    return true;
  }

  private hash(k: Int32Array, len: number): number {
    let h = Math.imul(len + 1, 0x9e3779b1);
    for (let w = 0; w < this.words; w++) h = mix(h ^ (k[w] as number));
    return h ^ (h >>> 16);
  }

  private hashAt(i: number): number {
    const words = this.words;
    const keys = this.keys;
    let h = Math.imul(this.lens[i] as number, 0x9e3779b1);
    for (let w = 0; w < words; w++) h = mix(h ^ (keys[i * words + w] as number));
    return h ^ (h >>> 16);
  }

  private resize(capacity: number): void {
    const words = this.words;
    const oldKeys = this.keys;
    const oldLens = this.lens;
    const oldVals = this.vals;
    const oldCap = this.mask + 1;
    this.mask = capacity - 1;
    this.keys = new Int32Array(capacity * words);
    this.lens = new Uint8Array(capacity);
    this.vals = new Int32Array(capacity);
    const keys = this.keys;
    for (let s = 0; s < oldCap; s++) {
      const l1 = oldLens[s] as number;
      if (l1 === 0) continue;
      let h = Math.imul(l1, 0x9e3779b1);
      for (let w = 0; w < words; w++) h = mix(h ^ (oldKeys[s * words + w] as number));
      let i = (h ^ (h >>> 16)) & this.mask;
      while (this.lens[i] !== 0) i = (i + 1) & this.mask;
      for (let w = 0; w < words; w++) keys[i * words + w] = oldKeys[s * words + w] as number;
      this.lens[i] = l1;
      this.vals[i] = oldVals[s] as number;
    }
  }
}

/** One murmur3-style mixing round over 32 bits. */
function mix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}
