/**
 * The stateful firewall's flow table: an open-addressing hash table (linear probing) on typed
 * arrays with a fixed capacity, no per-flow objects and no allocation per lookup.
 *
 * Owns: the keys (`KEY_WORDS` 32-bit words each, filled by the caller into `key`), one expiry time
 * (ms, caller's clock) and one caller-defined state byte per flow (0 means empty slot).
 *
 * Layout: parallel arrays per slot: keys (Int32Array, `KEY_WORDS` per slot), hashes (Int32Array),
 * expiry (Float64Array), state (Uint8Array). One 64-byte record per slot (key, hash, state, expiry
 * interleaved) was measured too: no faster at 100k flows, slower to fill.
 *
 * Invariants:
 * - At most `max` entries; the capacity is a power of two with load factor <= 3/4 of it, so a
 *   probe always ends on an empty slot.
 * - No tombstones: deletion shifts the following entries of the cluster back (backward-shift
 *   deletion), so every entry is reachable from its home slot through occupied slots only.
 * - Expired entries (`expiry <= now`) are never returned; they are reclaimed lazily when a probe
 *   walks over them, by `sweep(now, budget)`, and (bounded) when an insert finds the table full.
 *   `count` therefore includes expired entries not yet reclaimed.
 */

/** Words per key: context, family|proto|aux, portA|portB, address A (4 words), address B (4). */
export const KEY_WORDS = 11;

/** Slots an insert into a full table may sweep to find expired entries before refusing. */
const FULL_SWEEP_BUDGET = 64;

function nextPow2(n: number): number {
  let c = 8;
  while (c < n) c *= 2;
  return c;
}

export class FlowTable {
  /** Most entries the table holds (inserts beyond it are refused). */
  readonly max: number;
  /** Slots (a power of two). */
  readonly capacity: number;
  /** The key `find` and `insert` use: the caller fills all `KEY_WORDS` words first. */
  readonly key = new Int32Array(KEY_WORDS);
  /** Expiry time (ms) per slot; callers may update it for a slot `find` returned. */
  readonly expiry: Float64Array;
  /** State byte per slot, 0 = empty; callers may update it (to nonzero) for a found slot. */
  readonly state: Uint8Array;

  /** Occupied slots, expired-but-unreclaimed included. */
  count = 0;
  inserts = 0;
  /** Entries reclaimed after their expiry time. */
  expiries = 0;
  /** Entries removed by `remove`. */
  removals = 0;
  /** Inserts refused because the table was full. */
  refused = 0;

  private readonly mask: number;
  private readonly keys: Int32Array;
  private readonly hashes: Int32Array;
  private readonly seed: number;
  private cursor = 0;

  constructor(max: number, seed = 0x9e3779b9) {
    if (!Number.isInteger(max) || max < 1)
      throw new RangeError(`flow table max ${max} must be a positive integer`);
    this.max = max;
    this.capacity = nextPow2(Math.ceil((max * 4) / 3) + 1);
    this.mask = this.capacity - 1;
    this.keys = new Int32Array(this.capacity * KEY_WORDS);
    this.hashes = new Int32Array(this.capacity);
    this.expiry = new Float64Array(this.capacity);
    this.state = new Uint8Array(this.capacity);
    this.seed = seed | 0;
  }

  /** Murmur3-style hash of `key` (seeded, so remote hosts cannot precompute collisions). */
  private hashKey(): number {
    const k = this.key;
    let h = this.seed;
    for (let i = 0; i < KEY_WORDS; i++) {
      let x = Math.imul(k[i]!, 0xcc9e2d51);
      x = (x << 15) | (x >>> 17);
      h ^= Math.imul(x, 0x1b873593);
      h = (h << 13) | (h >>> 19);
      h = (Math.imul(h, 5) + 0xe6546b64) | 0;
    }
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    return h ^ (h >>> 16);
  }

  private keyEquals(slot: number): boolean {
    const k = this.key;
    const keys = this.keys;
    const base = slot * KEY_WORDS;
    for (let i = 0; i < KEY_WORDS; i++) if (keys[base + i] !== k[i]) return false;
    return true;
  }

  /** Slot of the live entry with `key`, or -1. Reclaims expired entries on the probe path. */
  find(now: number): number {
    const h = this.hashKey();
    const mask = this.mask;
    const state = this.state;
    const expiry = this.expiry;
    let i = h & mask;
    while (state[i] !== 0) {
      if (expiry[i]! <= now) {
        this.deleteAt(i); // an entry from further on may now sit in slot i: look again
        this.expiries++;
        continue;
      }
      if (this.hashes[i] === h && this.keyEquals(i)) return i;
      i = (i + 1) & mask;
    }
    return -1;
  }

  /**
   * Adds `key` (which must not be present: call `find` first) and returns its slot, or -1 when
   * the table holds `max` entries even after reclaiming expired ones (counted in `refused`).
   * `st` must be nonzero.
   */
  insert(now: number, expiresAt: number, st: number): number {
    if (this.count >= this.max) {
      this.sweep(now, FULL_SWEEP_BUDGET);
      if (this.count >= this.max) {
        this.refused++;
        return -1;
      }
    }
    const h = this.hashKey();
    const mask = this.mask;
    const state = this.state;
    let i = h & mask;
    while (state[i] !== 0) {
      if (this.expiry[i]! <= now) {
        this.deleteAt(i);
        this.expiries++;
        continue;
      }
      i = (i + 1) & mask;
    }
    this.keys.set(this.key, i * KEY_WORDS);
    this.hashes[i] = h;
    this.expiry[i] = expiresAt;
    state[i] = st;
    this.count++;
    this.inserts++;
    return i;
  }

  /** Removes the entry in `slot` (a slot `find` or `insert` just returned). */
  remove(slot: number): void {
    if (this.state[slot] === 0) return;
    this.deleteAt(slot);
    this.removals++;
  }

  /**
   * Visits `budget` slots from where the previous sweep stopped and reclaims expired entries.
   * Returns how many it reclaimed. `sweep(now, capacity)` leaves no expired entry behind.
   */
  sweep(now: number, budget: number): number {
    const mask = this.mask;
    const state = this.state;
    const expiry = this.expiry;
    let n = Math.min(budget, this.capacity);
    let i = this.cursor;
    let removed = 0;
    while (n > 0) {
      if (state[i] !== 0 && expiry[i]! <= now) {
        this.deleteAt(i); // re-examine slot i: the cluster shifted back into it
        removed++;
        continue;
      }
      i = (i + 1) & mask;
      n--;
    }
    this.cursor = i;
    this.expiries += removed;
    return removed;
  }

  /** Empties the table (counters kept). */
  clear(): void {
    this.state.fill(0);
    this.count = 0;
  }

  /** Copies the entries of `other` still live at `now` (as many as fit). Returns how many. */
  copyLiveFrom(other: FlowTable, now: number): number {
    let copied = 0;
    for (let s = 0; s < other.capacity; s++) {
      if (other.state[s] === 0 || other.expiry[s]! <= now) continue;
      this.key.set(other.keys.subarray(s * KEY_WORDS, (s + 1) * KEY_WORDS));
      if (this.find(now) >= 0) continue;
      if (this.insert(now, other.expiry[s]!, other.state[s]!) < 0) break;
      copied++;
    }
    return copied;
  }

  /** Copies the key stored in `slot` into `out` (API edge: listing flows). */
  keyAt(slot: number, out: Int32Array): void {
    out.set(this.keys.subarray(slot * KEY_WORDS, (slot + 1) * KEY_WORDS));
  }

  /**
   * Consistency check for tests: every entry reachable from its home slot without crossing an
   * empty slot, and `count` equal to the occupied slots. Returns a description of the first
   * violation, or undefined.
   */
  verify(): string | undefined {
    let occupied = 0;
    for (let s = 0; s < this.capacity; s++) {
      if (this.state[s] === 0) continue;
      occupied++;
      for (let i = this.hashes[s]! & this.mask; i !== s; i = (i + 1) & this.mask) {
        if (this.state[i] === 0) return `slot ${s} unreachable: empty slot ${i} on its probe path`;
      }
    }
    return occupied === this.count ? undefined : `count ${this.count} but ${occupied} occupied slots`;
  }

  /** Backward-shift deletion (no tombstones). */
  private deleteAt(slot: number): void {
    const mask = this.mask;
    const state = this.state;
    const keys = this.keys;
    let hole = slot;
    let j = slot;
    for (;;) {
      j = (j + 1) & mask;
      if (state[j] === 0) break;
      const home = this.hashes[j]! & mask;
      // Entry j may fill the hole when the hole lies cyclically in [home, j).
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        keys.copyWithin(hole * KEY_WORDS, j * KEY_WORDS, (j + 1) * KEY_WORDS);
        this.hashes[hole] = this.hashes[j]!;
        this.expiry[hole] = this.expiry[j]!;
        state[hole] = state[j]!;
        hole = j;
      }
    }
    state[hole] = 0;
    this.count--;
  }
}
