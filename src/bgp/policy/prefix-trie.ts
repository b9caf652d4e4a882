/**
 * Prefix-set matching with masklength ranges, as a binary trie (the idea of BIRD filter/trie.c).
 *
 * An entry `P/p{lo..hi}` (p <= lo <= hi <= address bits) matches a prefix `Q/q` when the first p
 * bits of Q equal P and lo <= q <= hi. Each entry marks the node at depth p (the path of P's bits)
 * with the lengths lo..hi in an accept bitmap. A lookup walks Q's bits from the root and, at every
 * node of depth d <= q on that path, tests bit q of the node's bitmap: O(address bits), whatever
 * the number of entries.
 *
 * Invariants: one trie per address family (32 or 128 bits), never mixed; nodes are only added,
 * never removed (a set is compiled once from config, then read-only).
 */
import type { Prefix } from '../../lib/ip.ts';

interface TrieNode {
  zero: TrieNode | undefined;
  one: TrieNode | undefined;
  /** Bit n set: prefixes of length n ending below this node are accepted. */
  accept: Uint32Array | undefined;
}

function newNode(): TrieNode {
  return { zero: undefined, one: undefined, accept: undefined };
}

function bitAt(addr: Uint8Array, i: number): number {
  return (addr[i >>> 3]! >>> (7 - (i & 7))) & 1;
}

export class PrefixTrie {
  private readonly root: TrieNode = newNode();
  private readonly words: number;
  private count = 0;

  constructor(readonly bits: 32 | 128) {
    this.words = (bits >>> 5) + 1; // lengths 0..bits inclusive
  }

  /** Number of entries added. */
  get size(): number {
    return this.count;
  }

  /** Adds `addr/plen{lo..hi}`. The caller validated plen <= lo <= hi <= bits and addr's width. */
  add(addr: Uint8Array, plen: number, lo: number, hi: number): void {
    let node = this.root;
    for (let d = 0; d < plen; d++) {
      if (bitAt(addr, d) === 0) node = node.zero ??= newNode();
      else node = node.one ??= newNode();
    }
    const accept = (node.accept ??= new Uint32Array(this.words));
    for (let n = lo; n <= hi; n++) accept[n >>> 5]! |= 1 << (n & 31);
    this.count++;
  }

  /** True when some entry matches the prefix `addr/len` (addr of this trie's width). */
  matches(addr: Uint8Array, len: number): boolean {
    const word = len >>> 5;
    const mask = 1 << (len & 31);
    let node: TrieNode | undefined = this.root;
    for (let d = 0; ; d++) {
      const accept: Uint32Array | undefined = node.accept;
      if (accept !== undefined && (accept[word]! & mask) !== 0) return true;
      if (d === len) return false;
      node = bitAt(addr, d) === 0 ? node.zero : node.one;
      if (node === undefined) return false;
    }
  }
}

/** A pair of tries, one per family, dispatched by the prefix's address width. */
export class DualPrefixTrie {
  readonly v4 = new PrefixTrie(32);
  readonly v6 = new PrefixTrie(128);

  add(p: Prefix, lo: number, hi: number): void {
    (p.addr.length === 4 ? this.v4 : this.v6).add(p.addr, p.len, lo, hi);
  }

  matches(p: Prefix): boolean {
    return (p.addr.length === 4 ? this.v4 : this.v6).matches(p.addr, p.len);
  }

  /** Matches a host address (a full-length prefix). */
  matchesAddress(addr: Uint8Array): boolean {
    if (addr.length === 4) return this.v4.matches(addr, 32);
    return addr.length === 16 && this.v6.matches(addr, 128);
  }
}
