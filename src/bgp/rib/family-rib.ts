/**
 * The RIB of one address family: every destination with its candidate paths from every peer
 * (Adj-RIBs-In, pre- and post-import-policy) and the selected best path (Loc-RIB).
 *
 * Layout follows ../../../shared/PERFORMANCE.md: destinations and paths live in parallel typed
 * arrays, not objects. IPv4 unicast destinations are keyed by (address, length) in an
 * open-addressing hash table; other families (IPv6, VPN) by a string key in a Map (they are not
 * the 1M-prefix hot path). Destinations are never deleted, only emptied and reused, so indices stay
 * valid for the Adj-RIB-Out arrays indexed by destination.
 *
 * A path is identified by (peer index, path id). `raw` is the attribute set as received
 * (pre-policy), `attr` the set after import policy or -1 when rejected. Changes mark the
 * destination dirty; the speaker drains the dirty queue once per event-loop turn.
 */
import type { AfiSafiName } from '../wire/constants.ts';
import type { Nlri } from '../wire/types.ts';
import { formatPrefix, makePrefix, numberToIPv4 } from '../../lib/ip.ts';
import { toHex } from '../../lib/bytes.ts';
import { growInt32, growUint32, growUint8, IntList } from '../../lib/growable.ts';
import type { AttrSetTable } from './attr-set.ts';
import { selectBest, type Candidate, type DecisionOptions, type PathSource } from './decision.ts';

const FLAG_STALE = 1;

export function nlriKey(n: Nlri): string {
  const p = formatPrefix(n.prefix);
  return n.rd === undefined ? p : `${toHex(n.rd)}|${p}`;
}

function hashV4(addr: number, len: number): number {
  let h = Math.imul(addr ^ (len << 24) ^ len, 0x9e3779b1);
  h ^= h >>> 15;
  h = Math.imul(h, 0x85ebca6b);
  return (h ^ (h >>> 13)) >>> 0;
}

export class FamilyRib {
  readonly v4: boolean;
  destCount = 0;
  // destinations
  private dAddr = new Uint32Array(0);
  private dLen = new Uint8Array(0);
  private readonly dNlri: Nlri[] = [];
  dHead = new Int32Array(0);
  dBest = new Int32Array(0);
  private dDirty = new Uint8Array(0);
  // v4 hash table (see findV4)
  private slots = new Int32Array(2048);
  private readonly keyMap = new Map<string, number>();
  // path pool
  pPeer = new Int32Array(0);
  pId = new Uint32Array(0);
  pRaw = new Int32Array(0);
  pAttr = new Int32Array(0);
  pNext = new Int32Array(0);
  private pFlags = new Uint8Array(0);
  readonly pLabels: (readonly number[] | undefined)[] = [];
  private pathCount = 0;
  private freePath = -1;
  // dirty queue
  private readonly dirty = new IntList();
  /** Per peer: paths received / accepted in this family. */
  readonly received: number[] = [];
  readonly accepted: number[] = [];

  constructor(
    readonly family: AfiSafiName,
    private readonly attrs: AttrSetTable,
  ) {
    this.v4 = family === 'ipv4-unicast';
  }

  get capacity(): number {
    return this.dHead.length;
  }

  private ensureDest(n: number): void {
    if (n <= this.dHead.length) return;
    const old = this.dHead.length;
    this.dHead = growInt32(this.dHead, n, -1);
    this.dBest = growInt32(this.dBest, n, -1);
    this.dDirty = growUint8(this.dDirty, n);
    if (this.v4) {
      this.dAddr = growUint32(this.dAddr, n);
      this.dLen = growUint8(this.dLen, n);
    }
    if (this.dHead.length !== old) this.onGrow?.(this.dHead.length);
  }

  /** Called when destination arrays grow (Adj-RIB-Out arrays follow). */
  onGrow?: (capacity: number) => void;

  private newDest(): number {
    const d = this.destCount++;
    this.ensureDest(this.destCount);
    this.dHead[d] = -1;
    this.dBest[d] = -1;
    return d;
  }

  // The v4 hash table holds the key next to the destination index, so a probe touches one cache
  // line: slot i is (slots[2i] = address as int32, slots[2i+1] = ((dest + 1) << 6) | length),
  // 0 meaning empty. Up to 2^25 destinations.
  findV4(addr: number, len: number): number {
    const slots = this.slots;
    const mask = (slots.length >> 1) - 1;
    const a = addr | 0;
    for (let i = hashV4(addr, len) & mask; ; i = (i + 1) & mask) {
      const m = slots[2 * i + 1]!;
      if (m === 0) return -1;
      if ((m & 63) === len && slots[2 * i] === a) return (m >>> 6) - 1;
    }
  }

  findOrAddV4(addr: number, len: number): number {
    const slots = this.slots;
    const mask = (slots.length >> 1) - 1;
    const a = addr | 0;
    let i = hashV4(addr, len) & mask;
    for (; ; i = (i + 1) & mask) {
      const m = slots[2 * i + 1]!;
      if (m === 0) break;
      if ((m & 63) === len && slots[2 * i] === a) return (m >>> 6) - 1;
    }
    if (this.destCount >= 1 << 25) throw new Error('IPv4 RIB full (2^25 destinations)');
    const d = this.newDest();
    this.dAddr[d] = addr;
    this.dLen[d] = len;
    slots[2 * i] = a;
    slots[2 * i + 1] = ((d + 1) << 6) | len;
    if (this.destCount * 4 > slots.length) this.rehash(); // load factor 1/2
    return d;
  }

  private rehash(): void {
    const old = this.slots;
    const slots = new Int32Array(old.length * 2);
    const mask = (slots.length >> 1) - 1;
    for (let j = 1; j < old.length; j += 2) {
      const m = old[j]!;
      if (m === 0) continue;
      const a = old[j - 1]!;
      let i = hashV4(a >>> 0, m & 63) & mask;
      while (slots[2 * i + 1] !== 0) i = (i + 1) & mask;
      slots[2 * i] = a;
      slots[2 * i + 1] = m;
    }
    this.slots = slots;
  }

  find(n: Nlri): number {
    if (this.v4) return this.findV4(ipv4Num(n.prefix.addr), n.prefix.len);
    return this.keyMap.get(nlriKey(n)) ?? -1;
  }

  findOrAdd(n: Nlri): number {
    if (this.v4) return this.findOrAddV4(ipv4Num(n.prefix.addr), n.prefix.len);
    const k = nlriKey(n);
    let d = this.keyMap.get(k);
    if (d === undefined) {
      d = this.newDest();
      this.keyMap.set(k, d);
      this.dNlri[d] = n.labels === undefined && n.pathId === undefined ? n : { prefix: n.prefix, rd: n.rd };
    }
    return d;
  }

  /** The route key of a destination (prefix, and RD for VPN families). */
  nlriOf(d: number): Nlri {
    if (this.v4) return { prefix: makePrefix(numberToIPv4(this.dAddr[d]!), this.dLen[d]!) };
    return this.dNlri[d]!;
  }

  v4Addr(d: number): number {
    return this.dAddr[d]!;
  }

  v4Len(d: number): number {
    return this.dLen[d]!;
  }

  private allocPath(): number {
    if (this.freePath >= 0) {
      const p = this.freePath;
      this.freePath = this.pNext[p]!;
      return p;
    }
    const p = this.pathCount++;
    if (p >= this.pPeer.length) {
      const n = p + 1;
      this.pPeer = growInt32(this.pPeer, n);
      this.pId = growUint32(this.pId, n);
      this.pRaw = growInt32(this.pRaw, n);
      this.pAttr = growInt32(this.pAttr, n);
      this.pNext = growInt32(this.pNext, n);
      this.pFlags = growUint8(this.pFlags, n);
    }
    return p;
  }

  private markDirty(d: number): void {
    if (this.dDirty[d] === 0) {
      this.dDirty[d] = 1;
      this.dirty.push(d);
    }
  }

  private count(arr: number[], peer: number, delta: number): void {
    arr[peer] = (arr[peer] ?? 0) + delta;
  }

  /**
   * Adds or replaces the path (peer, pathId) at destination d. `attr` is -1 when import policy
   * rejected it (kept as Adj-RIB-In pre-policy). References on the sets are taken here.
   */
  upsert(
    d: number,
    peer: number,
    pathId: number,
    raw: number,
    attr: number,
    labels?: readonly number[],
  ): void {
    for (let p = this.dHead[d]!; p >= 0; p = this.pNext[p]!) {
      if (this.pPeer[p] !== peer || this.pId[p] !== pathId) continue;
      this.pFlags[p]! &= ~FLAG_STALE;
      const oldRaw = this.pRaw[p]!;
      const oldAttr = this.pAttr[p]!;
      if (oldRaw === raw && oldAttr === attr && this.pLabels[p] === labels) return;
      this.attrs.ref(raw);
      if (attr >= 0) this.attrs.ref(attr);
      this.pRaw[p] = raw;
      this.pAttr[p] = attr;
      this.pLabels[p] = labels;
      if (oldAttr >= 0 !== attr >= 0) this.count(this.accepted, peer, attr >= 0 ? 1 : -1);
      this.attrs.unref(oldRaw);
      if (oldAttr >= 0) this.attrs.unref(oldAttr);
      if (oldAttr >= 0 || attr >= 0) this.markDirty(d);
      return;
    }
    const p = this.allocPath();
    this.pPeer[p] = peer;
    this.pId[p] = pathId;
    this.pRaw[p] = raw;
    this.pAttr[p] = attr;
    this.pFlags[p] = 0;
    this.pLabels[p] = labels;
    this.pNext[p] = this.dHead[d]!;
    this.dHead[d] = p;
    this.attrs.ref(raw);
    this.count(this.received, peer, 1);
    if (attr >= 0) {
      this.attrs.ref(attr);
      this.count(this.accepted, peer, 1);
      this.markDirty(d);
    }
  }

  /** Removes the path (peer, pathId) at d; returns false when there was none. */
  remove(d: number, peer: number, pathId: number): boolean {
    let prev = -1;
    for (let p = this.dHead[d]!; p >= 0; prev = p, p = this.pNext[p]!) {
      if (this.pPeer[p] !== peer || this.pId[p] !== pathId) continue;
      this.unlink(d, prev, p);
      return true;
    }
    return false;
  }

  private unlink(d: number, prev: number, p: number): void {
    const next = this.pNext[p]!;
    if (prev < 0) this.dHead[d] = next;
    else this.pNext[prev] = next;
    const peer = this.pPeer[p]!;
    const attr = this.pAttr[p]!;
    this.count(this.received, peer, -1);
    this.attrs.unref(this.pRaw[p]!);
    if (attr >= 0) {
      this.count(this.accepted, peer, -1);
      this.attrs.unref(attr);
      this.markDirty(d);
    }
    // The best path must never point at a freed slot, even before the next decision run: readers
    // in between (a session coming up dumps its table at once, the API) would follow it.
    if (this.dBest[d] === p) this.dBest[d] = -1;
    this.pLabels[p] = undefined;
    this.pPeer[p] = -1;
    this.pAttr[p] = -1;
    this.pNext[p] = this.freePath;
    this.freePath = p;
  }

  /** Removes every path of `peer` (all of them, or only the stale ones). O(destinations). */
  removePeer(peer: number, onlyStale = false): number {
    let n = 0;
    for (let d = 0; d < this.destCount; d++) {
      let prev = -1;
      for (let p = this.dHead[d]!; p >= 0;) {
        const next = this.pNext[p]!;
        if (this.pPeer[p] === peer && (!onlyStale || (this.pFlags[p]! & FLAG_STALE) !== 0)) {
          this.unlink(d, prev, p);
          n++;
        } else prev = p;
        p = next;
      }
    }
    return n;
  }

  /** Graceful restart helper (RFC 4724 §4.2): keep the peer's paths but mark them stale. */
  markStale(peer: number): number {
    let n = 0;
    for (let d = 0; d < this.destCount; d++) {
      for (let p = this.dHead[d]!; p >= 0; p = this.pNext[p]!) {
        if (this.pPeer[p] === peer) {
          this.pFlags[p]! |= FLAG_STALE;
          n++;
        }
      }
    }
    return n;
  }

  isStale(p: number): boolean {
    return (this.pFlags[p]! & FLAG_STALE) !== 0;
  }

  /** Re-applies import policy to every path of `peer`: `f(raw) -> attr | -1`. */
  reimport(peer: number, f: (raw: number, d: number) => number): void {
    for (let d = 0; d < this.destCount; d++) {
      for (let p = this.dHead[d]!; p >= 0; p = this.pNext[p]!) {
        if (this.pPeer[p] === peer)
          this.upsert(d, peer, this.pId[p]!, this.pRaw[p]!, f(this.pRaw[p]!, d), this.pLabels[p]);
      }
    }
  }

  /** Runs the decision process at d; returns true when the best path changed. */
  decide(d: number, sourceOf: (peer: number) => PathSource, opts: DecisionOptions): boolean {
    const old = this.dBest[d]!;
    let best: number;
    const head = this.dHead[d]!;
    if (head >= 0 && this.pNext[head]! < 0) {
      best = this.pAttr[head]! >= 0 ? head : -1; // the common case: one path
    } else {
      const idx: number[] = [];
      const cands: Candidate[] = [];
      for (let p = head; p >= 0; p = this.pNext[p]!) {
        const a = this.pAttr[p]!;
        if (a < 0) continue;
        idx.push(p);
        cands.push({ attr: this.attrs.get(a), source: sourceOf(this.pPeer[p]!), pathId: this.pId[p]! });
      }
      const i = selectBest(cands, opts);
      best = i < 0 ? -1 : idx[i]!;
    }
    this.dBest[d] = best;
    // A changed path in the same slot (implicit replace) also counts as a change.
    return best !== old || best >= 0;
  }

  /** Calls f for each destination marked dirty since the last drain, then clears the marks. */
  drainDirty(f: (d: number) => void): void {
    const list = this.dirty;
    for (let i = 0; i < list.length; i++) {
      const d = list.data[i]!;
      this.dDirty[d] = 0;
      f(d);
    }
    list.clear();
  }

  get dirtyCount(): number {
    return this.dirty.length;
  }

  /** Best path's accepted attribute set id at d, or -1. */
  bestAttr(d: number): number {
    const p = this.dBest[d]!;
    return p < 0 ? -1 : this.pAttr[p]!;
  }

  bestPeer(d: number): number {
    const p = this.dBest[d]!;
    return p < 0 ? -1 : this.pPeer[p]!;
  }

  /** Number of destinations with a best path. */
  countBest(): number {
    let n = 0;
    for (let d = 0; d < this.destCount; d++) if (this.dBest[d]! >= 0) n++;
    return n;
  }
}

function ipv4Num(b: Uint8Array): number {
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}
