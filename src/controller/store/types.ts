/**
 * The controller's store: a key-value space with etcd semantics, so one controller can run on an
 * embedded SQLite file and a cluster of controllers on etcd with the same code above it.
 *
 * - Every write increments one store-wide revision; entries remember the revision that created
 *   and last modified them (`createRevision`, `modRevision`) and their `version` (writes since
 *   creation).
 * - `txn` is compare-and-swap: all compares hold -> every `success` op, else every `failure` op,
 *   atomically, at one new revision (no revision is used when nothing is written).
 * - `watch` streams the events of a key prefix from a revision on, in revision order, with no gap:
 *   a watcher that reconnects with its last revision + 1 misses nothing, or gets `CompactedError`
 *   when the history it needs was compacted (then it re-reads with `range` and watches from there).
 * - Leases: keys attached to a lease vanish (with delete events) when it expires or is revoked.
 * - Keys and values are UTF-8 strings (values are JSON documents by convention).
 */

export interface KvEntry {
  readonly key: string;
  readonly value: string;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
  /** Lease id, 0 when none. */
  readonly lease: number;
}

/** A condition of a transaction: the key's modRevision equals `modRevision` (0 = key absent). */
export interface Compare {
  readonly key: string;
  readonly modRevision: number;
}

export type Op =
  | { readonly type: 'put'; readonly key: string; readonly value: string; readonly lease?: number }
  | { readonly type: 'delete'; readonly key: string }
  | { readonly type: 'delete-prefix'; readonly prefix: string };

export interface TxnResult {
  readonly succeeded: boolean;
  /** The store revision after the transaction. */
  readonly revision: number;
}

export interface RangeOptions {
  /** At most this many entries (paging); default all. */
  readonly limit?: number;
  /** Start after this key (exclusive), for the next page. */
  readonly after?: string;
}

export interface RangeResult {
  readonly entries: readonly KvEntry[];
  /** The store revision the range was read at. */
  readonly revision: number;
  /** More entries exist beyond `limit`. */
  readonly more: boolean;
}

export interface WatchEvent {
  readonly type: 'put' | 'delete';
  readonly key: string;
  /** The new value (put); the last value before deletion when known (delete), else ''. */
  readonly value: string;
  readonly modRevision: number;
}

export interface Watch {
  cancel(): void;
}

export interface WatchHandlers {
  /** Events in revision order; one call per revision may carry several events (one transaction). */
  onEvents(events: readonly WatchEvent[]): void;
  /** The watch ended (compaction, store closed, connection lost beyond retry). */
  onError?(err: Error): void;
}

export class CompactedError extends Error {
  override readonly name = 'CompactedError';
  readonly code = 'STORE_COMPACTED';
  constructor(
    readonly requested: number,
    readonly compactRevision: number,
  ) {
    super(`revision ${requested} was compacted (oldest available: ${compactRevision + 1})`);
  }
}

export class StoreError extends Error {
  override readonly name = 'StoreError';
  readonly code = 'STORE';
}

export interface Kv {
  /** Backend name for logs and metrics: 'sqlite' | 'etcd'. */
  readonly backend: string;
  get(key: string): Promise<KvEntry | undefined>;
  /** Keys starting with `prefix`, in key order. */
  range(prefix: string, opts?: RangeOptions): Promise<RangeResult>;
  /** Unconditional put; returns the new revision. */
  put(key: string, value: string, lease?: number): Promise<number>;
  /** Returns true if the key existed. */
  delete(key: string): Promise<boolean>;
  txn(compares: readonly Compare[], success: readonly Op[], failure?: readonly Op[]): Promise<TxnResult>;
  /** Watches `prefix` from `fromRevision` (inclusive; 0 = from now). */
  watch(prefix: string, fromRevision: number, handlers: WatchHandlers): Promise<Watch>;
  grantLease(ttlSeconds: number): Promise<number>;
  keepAlive(lease: number): Promise<void>;
  revokeLease(lease: number): Promise<void>;
  /** The current store revision. */
  revision(): Promise<number>;
  /** Drops history up to `revision` (watches from before it get CompactedError). */
  compact(revision: number): Promise<void>;
  close(): Promise<void>;
}
