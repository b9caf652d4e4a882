/**
 * IPv6 longest-prefix-match FIB of the userspace forwarder: prefix -> value (1..0x7fffffff,
 * 0 means "no route"). Same trie as `Lpm4` (stride-trie.ts: leaf-pushed, 8-bit strides below an
 * 8-bit root that widens to 16 bits at 256 nodes, leaf records for lone prefixes, per-slot
 * prefix lengths for exact deletes, node reuse). The root never goes to 24 bits: IPv6 tables
 * are smaller and sparse, so such a root would be almost all empty.
 *
 * `lookup(buf, off)` reads the destination address straight out of the packet buffer (the
 * forwarder passes the IPv6 destination's offset): one read per address byte consumed until a
 * value or a leaf record, then at most a 16-byte compare. No copy, no allocation.
 *
 * Leaf records matter more here than for IPv4: a /48 alone under its /32, or a /128, would
 * otherwise need a 1.25 KiB node for every 8 bits below the point where it parts from its
 * neighbours. Chains of single-child nodes above such a point are not compressed.
 */
import { FibUsageError, type LpmOptions, StrideTrie } from './stride-trie.ts';

export { FibUsageError, type LpmOptions } from './stride-trie.ts';

export class Lpm6 extends StrideTrie {
  constructor(options: LpmOptions = {}) {
    super(16, 16, options);
  }

  /** Inserts or replaces addr/len; `addr` is 16 bytes, bits past len are ignored. */
  set(addr: Uint8Array, len: number, value: number): void {
    this.checkLen(len);
    this.checkValue(value);
    this.load(addr, len);
    this.insertKey(len, value);
  }

  /** Removes addr/len; false when it was not present. */
  delete(addr: Uint8Array, len: number): boolean {
    this.checkLen(len);
    this.load(addr, len);
    return this.removeKey(len);
  }

  /** Exact match: the value stored for addr/len, 0 when absent. */
  get(addr: Uint8Array, len: number): number {
    this.checkLen(len);
    this.load(addr, len);
    return this.getKey(len);
  }

  /**
   * Value of the longest prefix containing the address at buf[off .. off+16), 0 when none.
   * The caller guarantees the 16 bytes are there (a validated IPv6 header).
   */
  lookup(buf: Uint8Array, off: number): number {
    const fwd = this.fwd;
    let i = off + this.rootBytes;
    let e = this.rootBytes === 2 ? fwd[(buf[off]! << 8) | buf[off + 1]!]! : fwd[buf[off]!]!;
    while (e < 0) {
      const p = ~e;
      if ((p & 1) === 1) return this.leafMatch(p >>> 1, buf, off);
      e = fwd[p | buf[i++]!]!;
    }
    return e;
  }

  /** A leaf record's value when the address is inside its prefix, else its cover value. */
  private leafMatch(k: number, buf: Uint8Array, off: number): number {
    const leaf = this.leaf;
    const r = k * 7; // [prefix words 0-3, length (> 8), value, cover]
    const len = leaf[r + 4]!;
    for (let w = 0; w < 4; w++) {
      const keep = len - w * 32;
      if (keep <= 0) break;
      const o = off + w * 4;
      const x = (buf[o]! << 24) | (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!;
      const m = keep >= 32 ? -1 : -1 << (32 - keep);
      if (((x ^ leaf[r + w]!) & m) !== 0) return leaf[r + 6]!;
    }
    return leaf[r + 5]!;
  }

  /** Every prefix as [address (16 new bytes, host bits zero), length, value], in no set order. */
  *entries(): Generator<[addr: Uint8Array, len: number, value: number]> {
    for (const i of this.slots()) {
      const a = new Uint8Array(16);
      for (let w = 0; w < 4; w++) {
        const x = this.entryWord(i, w);
        a[w * 4] = x >>> 24;
        a[w * 4 + 1] = (x >>> 16) & 255;
        a[w * 4 + 2] = (x >>> 8) & 255;
        a[w * 4 + 3] = x & 255;
      }
      yield [a, this.entryLen(i), this.entryValue(i)];
    }
  }

  private load(addr: Uint8Array, len: number): void {
    if (addr.length !== 16) throw new FibUsageError(`IPv6 address of ${addr.length} bytes`);
    const kw = this.kw;
    for (let w = 0; w < 4; w++) {
      const o = w * 4;
      const x = (addr[o]! << 24) | (addr[o + 1]! << 16) | (addr[o + 2]! << 8) | addr[o + 3]!;
      const keep = len - w * 32;
      kw[w] = keep >= 32 ? x : keep <= 0 ? 0 : x & (-1 << (32 - keep));
    }
    this.wordsToBytes();
  }
}
