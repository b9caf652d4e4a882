/**
 * The BGP session core's outgoing message queue: complete messages in five priority lanes.
 *
 * Owns: the order in which the core hands bytes to the shell (STYLE.md, "State machines"):
 * NOTIFICATION, OPEN, KEEPALIVE, ROUTE-REFRESH (normal requests), UPDATE. Within a lane the order
 * is FIFO. RFC 7313 BoRR/EoRR markers bracket UPDATEs, so the core queues them in the UPDATE lane
 * to keep them in sequence with the routes they delimit.
 *
 * Invariants:
 * - Messages are whole BGP messages (header included); the queue never splits or copies them.
 * - `queuedBytes` is the exact sum of the lengths of queued messages (the speaker reads it to
 *   bound what it builds: UPDATEs are built lazily when the queue runs low, never unboundedly).
 * - pop() is amortised O(1): lanes are arrays with a moving head, compacted when the consumed
 *   prefix dominates.
 */

export const Lane = {
  NOTIFICATION: 0,
  OPEN: 1,
  KEEPALIVE: 2,
  ROUTE_REFRESH: 3,
  UPDATE: 4,
} as const;
export type LaneId = (typeof Lane)[keyof typeof Lane];

const LANES = 5;

class Fifo {
  private items: Uint8Array[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(m: Uint8Array): void {
    this.items.push(m);
  }

  shift(): Uint8Array | undefined {
    if (this.head >= this.items.length) return undefined;
    const m = this.items[this.head++];
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return m;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

export class TransmitQueue {
  private readonly lanes: Fifo[] = Array.from({ length: LANES }, () => new Fifo());
  private bytes = 0;
  private count = 0;

  /** Total length of the queued messages. */
  get queuedBytes(): number {
    return this.bytes;
  }

  get empty(): boolean {
    return this.count === 0;
  }

  /** Messages queued in one lane. */
  sizeOf(lane: LaneId): number {
    return this.lanes[lane]!.size;
  }

  push(lane: LaneId, message: Uint8Array): void {
    this.lanes[lane]!.push(message);
    this.bytes += message.length;
    this.count++;
  }

  /** The next message, highest-priority lane first. */
  pop(): Uint8Array | undefined {
    if (this.count === 0) return undefined;
    for (const lane of this.lanes) {
      const m = lane.shift();
      if (m !== undefined) {
        this.bytes -= m.length;
        this.count--;
        return m;
      }
    }
    return undefined;
  }

  clear(): void {
    for (const lane of this.lanes) lane.clear();
    this.bytes = 0;
    this.count = 0;
  }
}
