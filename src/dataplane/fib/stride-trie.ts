/**
 * The shared core of `Lpm4` and `Lpm6`: a multibit trie on typed arrays with a variable first
 * stride and 8-bit strides below it, fully leaf-pushed so that a lookup is one array read per
 * level and nothing else. The families add key loading and their own `lookup`.
 *
 * Layout (one `Int32Array` `fwd` and a parallel `Uint8Array` `lens`):
 * - `fwd[0 .. 2^R)` is the root, indexed by the first R address bits (R = 8, 16 or 24; see
 *   "first stride" below). Node n (8-bit stride) owns `fwd[2^R + 256n .. +256)`.
 * - A slot holds the value of the longest prefix covering all its addresses (0 = none; values
 *   are 1..0x7fffffff), or, when negative, a pointer `~p`: p even is the base of a child node
 *   (a multiple of 256, so the next read is `fwd[p | nextByte]`); p odd is `2k + 1` for leaf
 *   record k (below).
 * - `lens[i]` is 1 + the length of the prefix whose value fills slot i (0 = none). For a pointer
 *   slot it is that of the cover: the longest prefix containing everything under the slot.
 *   Per node, `cover[n]` is that prefix's value and `refs[n]` counts what lives in the node:
 *   prefixes of length (s, s+8] for a node at bit s, child nodes and leaf records.
 * - Leaf records (path compression at the bottom): a slot whose subtree holds exactly one
 *   prefix points to a record {prefix words, length, value, cover value} instead of a chain of
 *   nodes; a lookup reaching it compares the address with the prefix and returns the value or
 *   the cover. A record turns into a node when a second prefix arrives under its slot, and a
 *   node left holding one prefix or record (directly or through single-child nodes) is folded
 *   back into one, so the shape depends only on the prefix set, not on the order of updates.
 *
 * Invariants (the differential tests in test/unit/lpm.test.ts check the observable ones):
 * - every slot shows the longest stored prefix that covers it (controlled prefix expansion):
 *   a prefix of length L in a node at bit s fills the 2^(s+8-L) slots it spans, except those
 *   filled by longer prefixes (lens > L+1), and is pushed into child nodes and leaf covers;
 * - a node exists iff more than one prefix lies under its parent slot; an emptied or folded
 *   node is freed (free list, reused before the pool grows);
 * - the exact prefix set lives in a `PrefixTable` (get/size/entries, and the covering route a
 *   delete restores: probe the stored lengths L-1 .. s+1 there, else take the node's cover).
 *
 * First stride: a 16-bit root costs 320 KiB (65,536 slots x 5 bytes) before the first route and
 * a 24-bit one 80 MiB, which 1,000 routing contexts cannot afford. A table starts with an 8-bit
 * root (1.25 KiB) and is rebuilt from the exact table with the next wider root when its nodes
 * weigh as much as that root: 256 nodes for 16 bits, 65,536 for 24 bits. So the memory at most
 * doubles at a widening and lookups lose a level. The root shrinks back only on `clear()`.
 *
 * Mutation cost: set/delete walk one slot per level and touch the 2^(s+8-L) slots of the prefix
 * plus, for a short prefix over existing nodes, the slots it still covers in them (subtrees
 * covered by a longer prefix are skipped via `lens`). Lookups never allocate.
 */
import { PrefixTable } from './prefix-table.ts';

/** Misuse of the FIB API (bad length, value or address size): our bug, not packet bytes. */
export class FibUsageError extends RangeError {
  override readonly name: string = 'FibUsageError';
  readonly code: string = 'FIB_USAGE';
}

export interface LpmOptions {
  /** Root stride at creation and after `clear()`: 8 (default), 16 or 24 bits (24: IPv4 only). */
  readonly minRootBits?: 8 | 16 | 24;
  /** Widest root the table grows into: default and maximum 24 bits for IPv4, 16 for IPv6. */
  readonly maxRootBits?: 8 | 16 | 24;
}

export class StrideTrie {
  /** Slots: root then nodes. Read by the families' `lookup`. */
  protected fwd: Int32Array;
  /** Leaf records, `leafStride` int32 each: prefix words, length, value, cover value. */
  protected leaf: Int32Array;
  /** Root stride in bytes (1, 2 or 3). */
  protected rootBytes: number;
  /** 32 - 8 * rootBytes: the IPv4 root index is `addr >>> rootShift`. */
  protected rootShift: number;
  /** 1 + length of the prefix filling each slot (0 = none). */
  private lens: Uint8Array;
  private rootSize: number;
  private nodeCap: number;
  private nodeHigh: number;
  private freeNode: number;
  private liveNodes: number;
  /** Live nodes right below the root (the ones a wider root absorbs). */
  private depth1: number;
  private refs: Int32Array;
  /** Cover value of each node; the next-free link of a freed node. */
  private cover: Int32Array;
  private leafCap: number;
  private leafHigh: number;
  private freeLeaf: number;
  private liveLeaves: number;
  private readonly leafStride: number;
  private readonly table: PrefixTable;
  /** Prefixes stored per length, to skip absent lengths when looking for a covering route. */
  private readonly byLen: Int32Array;
  /** Scratch keys, bytes (trie walk) and big-endian int32 words (table), host bits zero. */
  protected readonly key: Uint8Array;
  protected readonly kw: Int32Array;
  private readonly probe: Int32Array;
  private readonly moved: Uint8Array;
  /** Delete path: the parent slot of the node at each depth. */
  private readonly pathSlot: Int32Array;
  private readonly maxLen: number;
  private readonly words: number;
  private readonly minRootBytes: number;
  private readonly maxRootBytes: number;

  /**
   * @param bytes address size (4 or 16)
   * @param limit widest root this family allows, in bits
   */
  protected constructor(bytes: number, limit: number, options: LpmOptions) {
    const minBits = options.minRootBits ?? 8;
    const maxBits = options.maxRootBits ?? limit;
    const ok = (bits: number): boolean => bits === 8 || bits === 16 || bits === 24;
    if (!ok(minBits) || !ok(maxBits) || maxBits > limit || minBits > maxBits) {
      throw new FibUsageError(`root stride ${minBits}..${maxBits} bits not within 8..${limit}`);
    }
    this.maxLen = bytes * 8;
    this.words = bytes / 4;
    this.minRootBytes = minBits / 8;
    this.maxRootBytes = maxBits / 8;
    this.leafStride = this.words + 3;
    this.key = new Uint8Array(bytes);
    this.moved = new Uint8Array(bytes);
    this.kw = new Int32Array(this.words);
    this.probe = new Int32Array(this.words);
    this.pathSlot = new Int32Array(bytes + 1);
    this.byLen = new Int32Array(this.maxLen + 1);
    this.table = new PrefixTable(this.words);
    // Fields are all set in reset(); assigned here too so every instance has one shape.
    this.rootBytes = 0;
    this.rootShift = 0;
    this.rootSize = 0;
    this.nodeCap = 0;
    this.nodeHigh = 0;
    this.freeNode = -1;
    this.liveNodes = 0;
    this.depth1 = 0;
    this.leafCap = 0;
    this.leafHigh = 0;
    this.freeLeaf = -1;
    this.liveLeaves = 0;
    this.fwd = new Int32Array(0);
    this.lens = new Uint8Array(0);
    this.refs = new Int32Array(0);
    this.cover = new Int32Array(0);
    this.leaf = new Int32Array(0);
    this.reset(this.minRootBytes, 0);
  }

  /** Number of prefixes stored. */
  get size(): number {
    return this.table.count;
  }

  /** Bytes held in typed arrays (trie, node metadata, leaf records, exact table). */
  memoryBytes(): number {
    return (
      this.fwd.byteLength +
      this.lens.byteLength +
      this.refs.byteLength +
      this.cover.byteLength +
      this.leaf.byteLength +
      this.table.byteLength +
      this.byLen.byteLength +
      this.key.byteLength +
      this.moved.byteLength +
      this.kw.byteLength +
      this.probe.byteLength +
      this.pathSlot.byteLength
    );
  }

  /** Trie shape, for benchmarks and tests. */
  stats(): { rootBits: number; nodes: number; leaves: number; nodeCapacity: number } {
    return {
      rootBits: this.rootBytes * 8,
      nodes: this.liveNodes,
      leaves: this.liveLeaves,
      nodeCapacity: this.nodeCap,
    };
  }

  /** Removes every prefix and returns to the initial (small) layout. */
  clear(): void {
    this.table.clear();
    this.byLen.fill(0);
    this.reset(this.minRootBytes, 0);
  }

  protected checkLen(len: number): void {
    if (!Number.isInteger(len) || len < 0 || len > this.maxLen) {
      throw new FibUsageError(`prefix length ${len} not 0..${this.maxLen}`);
    }
  }

  protected checkValue(value: number): void {
    if (!Number.isInteger(value) || value < 1 || value > 0x7fffffff) {
      throw new FibUsageError(`FIB value ${value} not 1..0x7fffffff`);
    }
  }

  /** Exact match on the loaded key. */
  protected getKey(len: number): number {
    return this.table.get(this.kw, len);
  }

  /** Inserts or replaces the loaded key (host bits already cleared). */
  protected insertKey(len: number, value: number): void {
    const old = this.table.put(this.kw, len, value);
    if (old === value) return;
    if (old === 0) this.byLen[len]!++;
    this.place(this.key, len, value, old === 0);
    const rb = this.rootBytes;
    if (rb < this.maxRootBytes && this.liveNodes >= 1 << (8 * rb)) this.rebuild(rb + 1);
  }

  /** Removes the loaded key; false when it was not stored. */
  protected removeKey(len: number): boolean {
    const old = this.table.remove(this.kw, len);
    if (old === 0) return false;
    this.byLen[len]!--;
    const key = this.key;
    const rb = this.rootBytes;
    const rootIdx = this.rootIndex(key);
    let first: number;
    let count: number;
    let depth = 0;
    let low = 0; // shortest length that lives in the node holding the prefix
    if (len <= rb * 8) {
      const span = rb * 8 - len;
      first = (rootIdx >>> span) << span;
      count = 1 << span;
    } else {
      let slot = rootIdx;
      let b = rb;
      for (;;) {
        const e = this.fwd[slot]!;
        if (e >= 0) throw new Error(`FIB trie lost the path of a stored /${len}`);
        const p = ~e;
        if ((p & 1) === 1) {
          // A leaf record: it holds exactly this prefix (the table had it).
          this.fwd[slot] = this.leaf[(p >>> 1) * this.leafStride + this.words + 2]!;
          this.releaseLeaf(p >>> 1);
          if (depth > 0) {
            this.refs[this.nodeAt(depth)]!--;
            this.settle(depth);
          }
          return true;
        }
        depth++;
        this.pathSlot[depth] = slot;
        const s = b * 8;
        if (len <= s + 8) {
          const span = s + 8 - len;
          first = p + ((key[b]! >>> span) << span);
          count = 1 << span;
          low = s + 1;
          break;
        }
        slot = p + key[b]!;
        b++;
      }
    }
    // The route the deleted one hid: the longest shorter prefix in the same node, else the
    // node's cover (else nothing, at the root).
    let rv = 0;
    let rl1 = 0;
    let l = len - 1;
    for (; l >= low; l--) {
      if (this.byLen[l] === 0) continue;
      this.maskInto(l);
      const v = this.table.get(this.probe, l);
      if (v !== 0) {
        rv = v;
        rl1 = l + 1;
        break;
      }
    }
    if (l < low && depth > 0) {
      rv = this.cover[this.nodeAt(depth)]!;
      rl1 = this.lens[this.pathSlot[depth]!]!;
    }
    this.restore(first, count, len + 1, rv, rl1);
    if (depth > 0) {
      this.refs[this.nodeAt(depth)]!--;
      this.settle(depth);
    }
    return true;
  }

  /** Table slots holding a prefix, for `entries()`. */
  protected *slots(): Generator<number> {
    const t = this.table;
    for (let i = 0; i < t.capacity; i++) if (t.lenAt(i) >= 0) yield i;
  }

  protected entryLen(i: number): number {
    return this.table.lenAt(i);
  }

  protected entryValue(i: number): number {
    return this.table.valueAt(i);
  }

  protected entryWord(i: number, w: number): number {
    return this.table.wordAt(i, w);
  }

  /** `key` bytes from `kw` words; callers have cleared the host bits in the words. */
  protected wordsToBytes(): void {
    const key = this.key;
    const kw = this.kw;
    for (let w = 0; w < kw.length; w++) {
      const x = kw[w]!;
      key[w * 4] = x >>> 24;
      key[w * 4 + 1] = (x >>> 16) & 255;
      key[w * 4 + 2] = (x >>> 8) & 255;
      key[w * 4 + 3] = x & 255;
    }
  }

  private rootIndex(k: Uint8Array): number {
    let idx = k[0]!;
    for (let b = 1; b < this.rootBytes; b++) idx = (idx << 8) | k[b]!;
    return idx;
  }

  /** Node number at `depth` on the current delete path. */
  private nodeAt(depth: number): number {
    return (~this.fwd[this.pathSlot[depth]!]! - this.rootSize) >>> 8;
  }

  /** `probe` = `kw` with the bits past `len` cleared. */
  private maskInto(len: number): void {
    const kw = this.kw;
    const probe = this.probe;
    for (let w = 0; w < kw.length; w++) {
      const keep = len - w * 32;
      probe[w] = keep >= 32 ? kw[w]! : keep <= 0 ? 0 : kw[w]! & (-1 << (32 - keep));
    }
  }

  /** Puts prefix k/len into the trie, creating what its path needs. */
  private place(k: Uint8Array, len: number, value: number, isNew: boolean): void {
    const rb = this.rootBytes;
    const rootIdx = this.rootIndex(k);
    if (len <= rb * 8) {
      const span = rb * 8 - len;
      this.fill((rootIdx >>> span) << span, 1 << span, value, len + 1);
      return;
    }
    this.placeBelow(k, len, value, isNew, rootIdx, rb, 1, -1);
  }

  /**
   * Places k/len (len > 8b) under `slot`, a slot of node `parent` (-1: the root) whose child
   * would sit at `depth` and stride over key byte b.
   */
  private placeBelow(
    k: Uint8Array,
    len: number,
    value: number,
    isNew: boolean,
    slot: number,
    b: number,
    depth: number,
    parent: number,
  ): void {
    for (;;) {
      let e = this.fwd[slot]!;
      if (e >= 0) {
        this.fwd[slot] = ~((this.newLeaf(k, len, value, e) << 1) | 1);
        if (parent >= 0) this.refs[parent]!++;
        return;
      } else if ((~e & 1) === 1) {
        const r = (~e >>> 1) * this.leafStride;
        if (this.leafIs(r, k, len)) {
          this.leaf[r + this.words + 1] = value;
          return;
        }
        // Second prefix under this slot: the record becomes a node holding both.
        const moved = this.moved;
        for (let w = 0; w < this.words; w++) {
          const x = this.leaf[r + w]!;
          moved[w * 4] = x >>> 24;
          moved[w * 4 + 1] = (x >>> 16) & 255;
          moved[w * 4 + 2] = (x >>> 8) & 255;
          moved[w * 4 + 3] = x & 255;
        }
        const movedLen = this.leaf[r + this.words]!;
        const movedValue = this.leaf[r + this.words + 1]!;
        const cover = this.leaf[r + this.words + 2]!;
        this.releaseLeaf(~e >>> 1);
        e = ~this.newNode(slot, cover, depth);
        this.placeBelow(moved, movedLen, movedValue, true, slot, b, depth, parent);
      }
      const base = ~e;
      const node = (base - this.rootSize) >>> 8;
      const s = b * 8;
      if (len <= s + 8) {
        const span = s + 8 - len;
        if (isNew) this.refs[node]!++;
        this.fill(base + ((k[b]! >>> span) << span), 1 << span, value, len + 1);
        return;
      }
      slot = base + k[b]!;
      parent = node;
      b++;
      depth++;
    }
  }

  /** Controlled prefix expansion: slots not held by a longer prefix take (value, l1). */
  private fill(first: number, count: number, value: number, l1: number): void {
    const fwd = this.fwd;
    const lens = this.lens;
    for (let i = first; i < first + count; i++) {
      if (lens[i]! > l1) continue;
      lens[i] = l1;
      const e = fwd[i]!;
      if (e >= 0) {
        fwd[i] = value;
      } else if ((~e & 1) === 1) {
        this.leaf[(~e >>> 1) * this.leafStride + this.words + 2] = value;
      } else {
        this.cover[(~e - this.rootSize) >>> 8] = value;
        this.fill(~e, 256, value, l1);
      }
    }
  }

  /** Slots filled by the deleted prefix (lens === oldL1) take the covering route instead. */
  private restore(first: number, count: number, oldL1: number, value: number, l1: number): void {
    const fwd = this.fwd;
    const lens = this.lens;
    for (let i = first; i < first + count; i++) {
      if (lens[i] !== oldL1) continue;
      lens[i] = l1;
      const e = fwd[i]!;
      if (e >= 0) {
        fwd[i] = value;
      } else if ((~e & 1) === 1) {
        this.leaf[(~e >>> 1) * this.leafStride + this.words + 2] = value;
      } else {
        this.cover[(~e - this.rootSize) >>> 8] = value;
        this.restore(~e, 256, oldL1, value, l1);
      }
    }
  }

  /**
   * After the node at `depth` on the delete path lost something: free it when empty, fold it
   * into a leaf record when one prefix or record is all it holds, and go on upwards.
   */
  private settle(depth: number): void {
    while (depth > 0) {
      const slot = this.pathSlot[depth]!;
      const node = this.nodeAt(depth);
      const refs = this.refs[node]!;
      if (refs === 0) {
        this.fwd[slot] = this.cover[node]!;
        this.releaseNode(node, depth);
        depth--;
        if (depth > 0) this.refs[this.nodeAt(depth)]!--;
        continue;
      }
      if (refs === 1 && this.fold(node, slot, depth)) {
        depth--; // the parent still holds one thing under `slot`
        continue;
      }
      return;
    }
  }

  /**
   * Replaces node `node` (under `slot`, at `depth`) by a leaf record when all it holds is one
   * prefix or one record; false when that one thing is a child node (which, by the invariant,
   * has two or more prefixes under it). `key` bytes before the node's stride byte are its path.
   */
  private fold(node: number, slot: number, depth: number): boolean {
    const fwd = this.fwd;
    const base = this.rootSize + (node << 8);
    const b = this.rootBytes + depth - 1; // key byte this node strides over
    const own = b * 8 + 1; // the node's own prefixes have lens > own
    for (let i = base; i < base + 256; i++) {
      const e = fwd[i]!;
      if (e < 0) {
        if ((~e & 1) === 0) return false;
        fwd[slot] = e; // hoist the record; its cover is this node's cover
      } else if (this.lens[i]! > own) {
        const moved = this.moved;
        moved.set(this.key.subarray(0, b));
        moved.fill(0, b);
        moved[b] = i - base; // the first slot of an aligned run
        fwd[slot] = ~((this.newLeaf(moved, this.lens[i]! - 1, e, this.cover[node]!) << 1) | 1);
      } else {
        continue;
      }
      this.releaseNode(node, depth);
      return true;
    }
    return false;
  }

  private leafIs(r: number, k: Uint8Array, len: number): boolean {
    const leaf = this.leaf;
    if (leaf[r + this.words] !== len) return false;
    for (let w = 0; w < this.words; w++) {
      const x = (k[w * 4]! << 24) | (k[w * 4 + 1]! << 16) | (k[w * 4 + 2]! << 8) | k[w * 4 + 3]!;
      if (leaf[r + w] !== x) return false;
    }
    return true;
  }

  private newLeaf(k: Uint8Array, len: number, value: number, cover: number): number {
    let n = this.freeLeaf;
    const stride = this.leafStride;
    if (n >= 0) {
      this.freeLeaf = this.leaf[n * stride + this.words + 1]!;
    } else {
      if (this.leafHigh === this.leafCap) {
        const cap = this.leafCap === 0 ? 4 : this.leafCap * 2;
        if (cap > 1 << 29) throw new FibUsageError('FIB leaf pool exhausted');
        const leaf = new Int32Array(cap * stride);
        leaf.set(this.leaf);
        this.leaf = leaf;
        this.leafCap = cap;
      }
      n = this.leafHigh++;
    }
    const r = n * stride;
    const leaf = this.leaf;
    for (let w = 0; w < this.words; w++) {
      leaf[r + w] = (k[w * 4]! << 24) | (k[w * 4 + 1]! << 16) | (k[w * 4 + 2]! << 8) | k[w * 4 + 3]!;
    }
    leaf[r + this.words] = len;
    leaf[r + this.words + 1] = value;
    leaf[r + this.words + 2] = cover;
    this.liveLeaves++;
    return n;
  }

  private releaseLeaf(n: number): void {
    this.leaf[n * this.leafStride + this.words + 1] = this.freeLeaf;
    this.freeLeaf = n;
    this.liveLeaves--;
  }

  /** A node under `slot` showing `cover` everywhere (slot lens kept as the cover's); its base. */
  private newNode(slot: number, cover: number, depth: number): number {
    let n = this.freeNode;
    if (n >= 0) {
      this.freeNode = this.cover[n]!;
    } else {
      if (this.nodeHigh === this.nodeCap) this.grow();
      n = this.nodeHigh++;
    }
    this.liveNodes++;
    if (depth === 1) this.depth1++;
    const base = this.rootSize + (n << 8);
    this.fwd.fill(cover, base, base + 256);
    this.lens.fill(this.lens[slot]!, base, base + 256);
    this.cover[n] = cover;
    this.refs[n] = 0;
    this.fwd[slot] = ~base;
    return base;
  }

  private releaseNode(n: number, depth: number): void {
    this.cover[n] = this.freeNode;
    this.freeNode = n;
    this.liveNodes--;
    if (depth === 1) this.depth1--;
  }

  /** Doubles the node pool (typed arrays are fixed-size: copy into bigger ones). */
  private grow(): void {
    const cap = this.nodeCap === 0 ? 2 : this.nodeCap * 2;
    const slots = this.rootSize + cap * 256;
    if (slots > 0x7fffffff) throw new FibUsageError('FIB node pool exhausted');
    const fwd = new Int32Array(slots);
    fwd.set(this.fwd);
    const lens = new Uint8Array(slots);
    lens.set(this.lens);
    const refs = new Int32Array(cap);
    refs.set(this.refs);
    const cover = new Int32Array(cap);
    cover.set(this.cover);
    this.fwd = fwd;
    this.lens = lens;
    this.refs = refs;
    this.cover = cover;
    this.nodeCap = cap;
  }

  /** Empty trie with a root of `rootBytes` bytes and room for `nodes` nodes. */
  private reset(rootBytes: number, nodes: number): void {
    this.rootBytes = rootBytes;
    this.rootShift = 32 - rootBytes * 8;
    this.rootSize = 1 << (rootBytes * 8);
    this.nodeCap = nodes;
    this.nodeHigh = 0;
    this.freeNode = -1;
    this.liveNodes = 0;
    this.depth1 = 0;
    this.fwd = new Int32Array(this.rootSize + nodes * 256);
    this.lens = new Uint8Array(this.rootSize + nodes * 256);
    this.refs = new Int32Array(nodes);
    this.cover = new Int32Array(nodes);
    this.leafCap = 0;
    this.leafHigh = 0;
    this.freeLeaf = -1;
    this.liveLeaves = 0;
    this.leaf = new Int32Array(0);
  }

  /** Rebuilds the trie from the exact table with a wider root. */
  private rebuild(rootBytes: number): void {
    // Nodes below the new root's reach survive one for one; size the pool for them up front.
    const keep = this.liveNodes - this.depth1;
    let cap = 2;
    while (cap < keep * 1.25) cap *= 2;
    this.reset(rootBytes, cap);
    const t = this.table;
    const kw = this.kw;
    for (let i = 0; i < t.capacity; i++) {
      const len = t.lenAt(i);
      if (len < 0) continue;
      for (let w = 0; w < kw.length; w++) kw[w] = t.wordAt(i, w);
      this.wordsToBytes();
      this.place(this.key, len, t.valueAt(i), true);
    }
  }
}
