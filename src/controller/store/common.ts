/**
 * Helpers shared by the store backends: key bytes and prefix bounds, the checks every
 * transaction passes before it reaches a backend, and grouping of events by revision.
 *
 * Invariants:
 * - Keys are ordered by their UTF-8 bytes (what etcd and SQLite BLOB comparison do), never by
 *   JavaScript string order (which differs for characters outside the BMP).
 * - A transaction branch may not put the same key twice nor put a key that one of its deletes
 *   covers (etcd rejects both; the SQLite backend does the same so the backends agree).
 */
import { StoreError, type Op, type WatchEvent } from './types.ts';

/** UTF-8 bytes of a key. */
export function keyBytes(key: string): Buffer {
  return Buffer.from(key, 'utf8');
}

/**
 * The smallest byte string greater than every string starting with `prefix`, or `undefined`
 * when there is none (the prefix is empty or all 0xff): the exclusive end of a prefix range.
 */
export function prefixEnd(prefix: Uint8Array): Buffer | undefined {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    const b = end[i]!;
    if (b < 0xff) {
      end[i] = b + 1;
      return end.subarray(0, i + 1);
    }
  }
  return undefined;
}

/** Whether `key` starts with `prefix` (bytes). */
export function hasPrefix(key: Uint8Array, prefix: Uint8Array): boolean {
  if (key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false;
  return true;
}

/**
 * The first key of a range over `prefix` that starts after `after` (exclusive, both in bytes):
 * the larger of the prefix itself and `after + '\0'`.
 */
export function rangeStart(prefix: Buffer, after: Buffer | undefined): Buffer {
  if (after === undefined) return prefix;
  const next = Buffer.concat([after, Buffer.from([0])]);
  return Buffer.compare(next, prefix) > 0 ? next : prefix;
}

/** Checks that a transaction branch is well formed (see the invariants above). */
export function validateOps(ops: readonly Op[]): void {
  const puts = new Set<string>();
  const deletes: Buffer[] = [];
  const prefixes: Buffer[] = [];
  for (const op of ops) {
    switch (op.type) {
      case 'put':
        if (op.key === '') throw new StoreError('txn: empty key');
        if (puts.has(op.key)) throw new StoreError(`txn: key "${op.key}" is put twice`);
        puts.add(op.key);
        break;
      case 'delete':
        deletes.push(keyBytes(op.key));
        break;
      case 'delete-prefix':
        prefixes.push(keyBytes(op.prefix));
        break;
    }
  }
  if (deletes.length === 0 && prefixes.length === 0) return;
  for (const k of puts) {
    const kb = keyBytes(k);
    if (deletes.some((d) => d.equals(kb)) || prefixes.some((p) => hasPrefix(kb, p))) {
      throw new StoreError(`txn: key "${k}" is both put and deleted`);
    }
  }
}

/** Splits events (already in revision order) into one array per revision. */
export function groupByRevision(events: readonly WatchEvent[]): WatchEvent[][] {
  const groups: WatchEvent[][] = [];
  let current: WatchEvent[] | undefined;
  for (const ev of events) {
    if (current === undefined || current[0]!.modRevision !== ev.modRevision) {
      current = [];
      groups.push(current);
    }
    current.push(ev);
  }
  return groups;
}

/** Validates a TTL in whole seconds (both backends count leases in seconds, like etcd). */
export function checkTtl(ttlSeconds: number): number {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
    throw new StoreError(`lease TTL must be a positive integer number of seconds, got ${ttlSeconds}`);
  }
  return ttlSeconds;
}

/** An Error from anything thrown. */
export function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
