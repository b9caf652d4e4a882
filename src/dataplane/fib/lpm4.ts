/**
 * IPv4 longest-prefix-match FIB of the userspace forwarder: prefix -> value (a next-hop or
 * adjacency index chosen by the caller, 1..0x7fffffff; 0 means "no route").
 *
 * Owns only its typed arrays; one instance per routing context. The trie is the shared core in
 * stride-trie.ts (layout and invariants there): leaf-pushed, so every slot already holds the
 * answer for its addresses, and `lookup` is `fwd[addr >>> rootShift]`, then one
 * `fwd[p | nextByte]` per 8-bit level while the slot points to a node, or one 16-byte record
 * compare when it points to a leaf record. No allocation, closure or Map on that path.
 *
 * Why this layout (measured in bench/lpm.ts, results in BENCHMARKS.md "LPM FIB (issue 4)"):
 * - A flat DIR-24-8 table is 64-80 MiB per context before the first route; 1,000 contexts
 *   cannot have that. The root starts at 8 bits (an empty table is ~1.5 KiB, a 10-route one a
 *   few KiB), widens to 16 bits (320 KiB, mostly cache-resident) at 256 nodes and to 24 bits
 *   (DIR-24-8 shaped: one read up to /24) only at 65,536 nodes. A 1M-prefix internet-like
 *   table stays at 16 bits (~40k nodes) and does > 20M lookups/s on one core; a forwarder that
 *   knows it holds a full table can ask for `{ minRootBits: 24 }` and trade ~40 % more memory
 *   for about twice the lookup rate.
 * - 8-bit strides below the root keep the walk a byte per level; a node is 256 int32 slots plus
 *   256 bytes of prefix lengths that only set/delete read.
 * - Leaf records fold a subtree holding a single prefix (a lone /24 in its /16, a /32 alone
 *   in its /24) into 4 int32 instead of one or two 1.25 KiB nodes: a third fewer nodes on the
 *   1M table, and small tables stay small.
 * - Per-slot prefix lengths (controlled prefix expansion with provenance) let a delete restore
 *   exactly the covering route, found in the exact-match table; freed nodes are reused.
 */
import { type LpmOptions, StrideTrie } from './stride-trie.ts';

export { FibUsageError, type LpmOptions } from './stride-trie.ts';

export class Lpm4 extends StrideTrie {
  constructor(options: LpmOptions = {}) {
    super(4, 24, options);
  }

  /** Inserts or replaces addr/len (bits past len are ignored). */
  set(addr: number, len: number, value: number): void {
    this.checkLen(len);
    this.checkValue(value);
    this.load(addr, len);
    this.insertKey(len, value);
  }

  /** Removes addr/len; false when it was not present. */
  delete(addr: number, len: number): boolean {
    this.checkLen(len);
    this.load(addr, len);
    return this.removeKey(len);
  }

  /** Exact match: the value stored for addr/len, 0 when absent. */
  get(addr: number, len: number): number {
    this.checkLen(len);
    this.load(addr, len);
    return this.getKey(len);
  }

  /** Value of the longest prefix containing `addr` (unsigned 32-bit), 0 when none. */
  lookup(addr: number): number {
    const fwd = this.fwd;
    let e = fwd[addr >>> this.rootShift]!;
    let shift = this.rootShift;
    while (e < 0) {
      const p = ~e;
      if ((p & 1) === 1) {
        const r = (p >>> 1) << 2;
        const leaf = this.leaf; // [prefix, length (> 8), value, cover]
        return ((addr ^ leaf[r]!) & (-1 << (32 - leaf[r + 1]!))) === 0 ? leaf[r + 2]! : leaf[r + 3]!;
      }
      shift -= 8;
      e = fwd[p | ((addr >>> shift) & 255)]!;
    }
    return e;
  }

  /** Every prefix as [address (unsigned, host bits zero), length, value], in no set order. */
  *entries(): Generator<[addr: number, len: number, value: number]> {
    for (const i of this.slots()) yield [this.entryWord(i, 0) >>> 0, this.entryLen(i), this.entryValue(i)];
  }

  private load(addr: number, len: number): void {
    const masked = len === 0 ? 0 : addr & (-1 << (32 - len));
    this.kw[0] = masked;
    this.wordsToBytes();
  }
}
