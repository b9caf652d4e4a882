/**
 * Adj-RIB-Out of one peer for one address family, indexed by the family RIB's destination index.
 * `want[d]` is what policy says the peer should have (out attribute set id + 1, 0 = nothing);
 * `adv[d]` is what was actually sent. Destinations whose want changed are queued per out
 * attribute set (key -1 for withdrawals), so one UPDATE carries every prefix sharing a set.
 * A destination may sit in an old group after its want changed again; packing skips any entry
 * whose want no longer matches its group or already equals what was sent.
 */
import { growInt32, IntList } from '../../lib/growable.ts';

export const WITHDRAW = -1;

export class AdjRibOut {
  want = new Int32Array(0);
  adv = new Int32Array(0);
  private queuedIn = new Int32Array(0); // group key + 2 (0 = not queued)
  readonly groups = new Map<number, IntList>();
  advertised = 0;
  pending = 0;

  ensure(capacity: number): void {
    if (this.want.length >= capacity) return;
    this.want = growInt32(this.want, capacity);
    this.adv = growInt32(this.adv, capacity);
    this.queuedIn = growInt32(this.queuedIn, capacity);
  }

  /** Sets what the peer should have at d (out set id, or -1 for nothing) and queues it if needed. */
  set(d: number, outId: number): void {
    const w = outId + 1;
    if (this.want[d] === w) return;
    this.want[d] = w;
    if (this.adv[d] === w) {
      // Back to what was sent: any queued entry will be skipped, so d is no longer queued. Keeping
      // the mark would make a later set() to that old group a no-op after the group was packed.
      this.queuedIn[d] = 0;
      return;
    }
    const key = outId < 0 ? WITHDRAW : outId;
    if (this.queuedIn[d] === key + 2) return;
    this.queuedIn[d] = key + 2;
    let g = this.groups.get(key);
    if (g === undefined) {
      g = new IntList();
      this.groups.set(key, g);
    }
    g.push(d);
    this.pending++;
  }

  /** True when d must still be sent in group `key` (called while packing). */
  isDue(d: number, key: number): boolean {
    const w = this.want[d]!;
    return w === key + 1 && this.adv[d] !== w;
  }

  /** Records that d was sent with its current want. */
  sent(d: number): void {
    const w = this.want[d]!;
    const was = this.adv[d]!;
    if (was === 0 && w !== 0) this.advertised++;
    else if (was !== 0 && w === 0) this.advertised--;
    this.adv[d] = w;
    this.queuedIn[d] = 0;
  }

  /** Forgets everything sent (session down) and every queued entry. */
  reset(): void {
    this.want.fill(0);
    this.adv.fill(0);
    this.queuedIn.fill(0);
    this.groups.clear();
    this.advertised = 0;
    this.pending = 0;
  }

  /** Queues every destination again for a full re-send (route refresh): clears `adv`. */
  resendAll(count: number): void {
    this.adv.fill(0);
    this.queuedIn.fill(0);
    this.groups.clear();
    this.advertised = 0;
    this.pending = 0;
    for (let d = 0; d < count; d++) {
      const w = this.want[d]!;
      if (w !== 0) {
        this.want[d] = 0;
        this.set(d, w - 1);
      }
    }
  }
}
