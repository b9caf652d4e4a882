/**
 * The embedded store backend: the `Kv` interface on one SQLite file (better-sqlite3), for a
 * controller that runs alone.
 *
 * Owns: the file's schema (`migrations.ts`), the store-wide revision, the history log that
 * watches replay, leases and their expiry timer, in-process watch delivery.
 *
 * Invariants:
 * - One writer: the file is opened with `locking_mode=EXCLUSIVE` and the lock is taken at open,
 *   so a second opener (another process, or another connection in this one) fails with a clear
 *   error instead of corrupting state. The lock is SQLite's own (POSIX advisory locks on the
 *   file), released by the OS when the process dies: a `kill -9` never leaves a stale lock.
 * - Every write (put, delete, txn, lease expiry or revoke, compaction) is one `BEGIN IMMEDIATE`
 *   transaction; with WAL and `synchronous=FULL` a committed write survives a crash and a
 *   crash never leaves part of one. A txn's compares are evaluated inside that transaction.
 * - The revision moves only when something changed (a txn whose ops match nothing, a failed
 *   txn with no failure ops, revoking a lease without keys use no revision), like etcd.
 * - `log` holds one row per event since the compaction point: `meta.compact_rev` is the
 *   highest revision dropped. Watches from `compact_rev` or below get `CompactedError`.
 *   Auto-compaction keeps the last `keepRevisions` revisions (default 100 000).
 * - Watchers get events after the commit, in revision order, one `onEvents` call per revision,
 *   never re-entrantly: a handler that writes to the store sees its own events queued after
 *   the current ones. A watch from a past revision replays `log` in batches (the event loop
 *   keeps turning), then goes live without a gap: replay and the switch happen between writes.
 * - Lease expiry uses the wall clock (`expires_at` in ms since the epoch, persisted), checked
 *   by a timer and at open: keys of leases that expired while the process was down are deleted
 *   (with delete events in the log) when the file is opened again.
 */
import Database from 'better-sqlite3';
import {
  asError,
  checkTtl,
  groupByRevision,
  keyBytes,
  prefixEnd,
  rangeStart,
  validateOps,
} from './common.ts';
import { migrate } from './migrations.ts';
import {
  CompactedError,
  StoreError,
  type Compare,
  type Kv,
  type KvEntry,
  type Op,
  type RangeOptions,
  type RangeResult,
  type TxnResult,
  type Watch,
  type WatchEvent,
  type WatchHandlers,
} from './types.ts';

export interface SqliteKvOptions {
  /** Revisions of history auto-compaction keeps (default 100 000; 0 = never auto-compact). */
  readonly keepRevisions?: number;
  /** Interval of the lease expiry check (default 250 ms). */
  readonly leaseCheckIntervalMs?: number;
  /** How long opening waits for another holder of the file to let go (default 2 000 ms). */
  readonly lockTimeoutMs?: number;
  /** SQLite busy timeout for statements (default 5 000 ms). */
  readonly busyTimeoutMs?: number;
  /** Revisions a past-revision watch replays per event-loop turn (default 1 000). */
  readonly replayBatchRevisions?: number;
  /**
   * Errors of background work (lease expiry timer, auto-compaction) that no caller awaits.
   * Default: ignored (the work is retried on the next tick or write).
   */
  readonly onBackgroundError?: (err: Error) => void;
}

interface KvRow {
  key: Buffer;
  value: string;
  create_rev: number;
  mod_rev: number;
  version: number;
  lease: number;
}

interface LogRow {
  rev: number;
  type: number;
  key: Buffer;
  value: string;
}

interface KeyValueRow {
  key: Buffer;
  value: string;
}

interface Watcher {
  readonly prefix: Buffer;
  readonly end: Buffer | undefined;
  readonly handlers: WatchHandlers;
  /** The next revision this watcher needs. */
  next: number;
  /** Caught up: gets events from commits directly. */
  live: boolean;
  done: boolean;
}

type Delivery =
  | { readonly watcher: Watcher; readonly events: readonly WatchEvent[] }
  | { readonly watcher: Watcher; readonly error: Error };

const LOG_PUT = 0;
const LOG_DELETE = 1;

function toEntry(r: KvRow): KvEntry {
  return {
    key: r.key.toString('utf8'),
    value: r.value,
    createRevision: r.create_rev,
    modRevision: r.mod_rev,
    version: r.version,
    lease: r.lease,
  };
}

/** Runs synchronous work as a promise (errors become rejections). */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(asError(e));
  }
}

function isBusy(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

/** Opens the SQLite file (created when absent), holding the exclusive lock until `close`. */
function openDatabase(file: string, opts: SqliteKvOptions): Database.Database {
  const db = new Database(file, { timeout: opts.lockTimeoutMs ?? 2000 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new StoreError(`${file}: could not switch to WAL mode (got ${String(mode)})`);
    db.pragma('synchronous = FULL');
    db.exec('BEGIN EXCLUSIVE; COMMIT'); // take the lock now, not at the first write
    db.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? 5000}`);
    migrate(db, file);
    return db;
  } catch (e) {
    db.close();
    if (isBusy(e)) {
      throw new StoreError(`${file} is open in another process (or connection): one writer per file`, {
        cause: e,
      });
    }
    throw e;
  }
}

/** Every statement the store runs, prepared once. */
function prepareStatements(db: Database.Database) {
  const p = <T>(sql: string) => db.prepare<unknown[], T>(sql);
  return {
    meta: p<{ revision: number; compact_rev: number }>('SELECT revision, compact_rev FROM meta WHERE id = 0'),
    setRevision: p('UPDATE meta SET revision = ? WHERE id = 0'),
    setCompactRev: p('UPDATE meta SET compact_rev = ? WHERE id = 0'),
    get: p<KvRow>('SELECT key, value, create_rev, mod_rev, version, lease FROM kv WHERE key = ?'),
    modRev: p<{ mod_rev: number }>('SELECT mod_rev FROM kv WHERE key = ?'),
    rangeTo: p<KvRow>(
      'SELECT key, value, create_rev, mod_rev, version, lease FROM kv WHERE key >= ? AND key < ? ORDER BY key LIMIT ?',
    ),
    rangeOpen: p<KvRow>(
      'SELECT key, value, create_rev, mod_rev, version, lease FROM kv WHERE key >= ? ORDER BY key LIMIT ?',
    ),
    upsert: p(
      `INSERT INTO kv (key, value, create_rev, mod_rev, version, lease) VALUES (?, ?, ?, ?, 1, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev,
         version = version + 1, lease = excluded.lease`,
    ),
    deleteKey: p<{ value: string }>('DELETE FROM kv WHERE key = ? RETURNING value'),
    selectTo: p<KeyValueRow>('SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key'),
    selectOpen: p<KeyValueRow>('SELECT key, value FROM kv WHERE key >= ? ORDER BY key'),
    deleteTo: p('DELETE FROM kv WHERE key >= ? AND key < ?'),
    deleteOpen: p('DELETE FROM kv WHERE key >= ?'),
    logInsert: p('INSERT INTO log (rev, seq, type, key, value) VALUES (?, ?, ?, ?, ?)'),
    logTo: p<LogRow>(
      'SELECT rev, type, key, value FROM log WHERE rev >= ? AND rev <= ? AND key >= ? AND key < ? ORDER BY rev, seq',
    ),
    logOpen: p<LogRow>(
      'SELECT rev, type, key, value FROM log WHERE rev >= ? AND rev <= ? AND key >= ? ORDER BY rev, seq',
    ),
    logCompact: p('DELETE FROM log WHERE rev <= ?'),
    leaseGet: p<{ ttl: number; expires_at: number }>('SELECT ttl, expires_at FROM leases WHERE id = ?'),
    leaseInsert: p('INSERT INTO leases (ttl, expires_at) VALUES (?, ?)'),
    leaseTouch: p('UPDATE leases SET expires_at = ? WHERE id = ?'),
    leaseDelete: p('DELETE FROM leases WHERE id = ?'),
    leaseKeys: p<KeyValueRow>('SELECT key, value FROM kv WHERE lease = ? ORDER BY key'),
    leaseKeysDelete: p('DELETE FROM kv WHERE lease = ?'),
    leasesExpired: p<{ id: number }>('SELECT id FROM leases WHERE expires_at <= ? ORDER BY expires_at, id'),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

class SqliteKv implements Kv {
  readonly backend = 'sqlite';
  private rev: number;
  private compactRev: number;
  private closed = false;
  private readonly watchers = new Set<Watcher>();
  private readonly queue: Delivery[] = [];
  private draining = false;
  private readonly timer: NodeJS.Timeout;
  private readonly keep: number;
  private readonly compactSlack: number;
  private readonly batchRevs: number;

  private readonly q: Statements;
  private readonly onBackgroundError: (err: Error) => void;

  constructor(
    private readonly db: Database.Database,
    readonly file: string,
    opts: SqliteKvOptions,
  ) {
    this.keep = opts.keepRevisions ?? 100_000;
    this.compactSlack = Math.max(1, Math.min(1000, Math.floor(this.keep / 100)));
    this.batchRevs = Math.max(1, opts.replayBatchRevisions ?? 1000);
    this.onBackgroundError = opts.onBackgroundError ?? (() => undefined);
    this.q = prepareStatements(db);
    const m = this.q.meta.get();
    if (m === undefined) throw new StoreError(`${file}: meta row missing`);
    this.rev = m.revision;
    this.compactRev = m.compact_rev;
    this.reapExpiredLeases();
    this.timer = setInterval(() => this.reapExpiredLeases(), opts.leaseCheckIntervalMs ?? 250);
    this.timer.unref();
  }

  // -------------------------------------------------------------------------------------------
  // Reads

  get(key: string): Promise<KvEntry | undefined> {
    return settle(() => {
      this.checkOpen();
      const r = this.q.get.get(keyBytes(key));
      return r === undefined ? undefined : toEntry(r);
    });
  }

  range(prefix: string, opts: RangeOptions = {}): Promise<RangeResult> {
    return settle(() => {
      this.checkOpen();
      const p = keyBytes(prefix);
      const start = rangeStart(p, opts.after === undefined ? undefined : keyBytes(opts.after));
      const end = prefixEnd(p);
      const limit = opts.limit !== undefined && opts.limit > 0 ? opts.limit : undefined;
      const n = limit === undefined ? -1 : limit + 1;
      const rows = end === undefined ? this.q.rangeOpen.all(start, n) : this.q.rangeTo.all(start, end, n);
      const more = limit !== undefined && rows.length > limit;
      if (more) rows.length = limit;
      return { entries: rows.map(toEntry), revision: this.rev, more };
    });
  }

  revision(): Promise<number> {
    return settle(() => {
      this.checkOpen();
      return this.rev;
    });
  }

  // -------------------------------------------------------------------------------------------
  // Writes

  put(key: string, value: string, lease?: number): Promise<number> {
    return settle(() => {
      const op: Op = lease === undefined ? { type: 'put', key, value } : { type: 'put', key, value, lease };
      return this.write([], [op], []).revision;
    });
  }

  delete(key: string): Promise<boolean> {
    return settle(() => {
      const before = this.rev;
      return this.write([], [{ type: 'delete', key }], []).revision !== before;
    });
  }

  txn(compares: readonly Compare[], success: readonly Op[], failure: readonly Op[] = []): Promise<TxnResult> {
    return settle(() => this.write(compares, success, failure));
  }

  private write(compares: readonly Compare[], success: readonly Op[], failure: readonly Op[]): TxnResult {
    this.checkOpen();
    for (const c of compares) {
      if (!Number.isInteger(c.modRevision) || c.modRevision < 0) {
        throw new StoreError(`txn: bad compare modRevision ${c.modRevision} for "${c.key}"`);
      }
    }
    validateOps(success);
    validateOps(failure);
    const rev = this.rev + 1;
    const now = Date.now();
    let succeeded = false;
    const events = this.db
      .transaction(() => {
        succeeded = compares.every(
          (c) => (this.q.modRev.get(keyBytes(c.key))?.mod_rev ?? 0) === c.modRevision,
        );
        const evs = this.applyOps(rev, succeeded ? success : failure, now);
        if (evs.length > 0) this.q.setRevision.run(rev);
        return evs;
      })
      .immediate();
    this.committed(rev, events);
    return { succeeded, revision: this.rev };
  }

  /** Applies ops at revision `rev` inside the current transaction; returns their events. */
  private applyOps(rev: number, ops: readonly Op[], now: number): WatchEvent[] {
    const events: WatchEvent[] = [];
    const log = (type: number, key: Buffer, value: string): void => {
      this.q.logInsert.run(rev, events.length, type, key, value);
      events.push({
        type: type === LOG_PUT ? 'put' : 'delete',
        key: key.toString('utf8'),
        value,
        modRevision: rev,
      });
    };
    for (const op of ops) {
      switch (op.type) {
        case 'put': {
          const lease = op.lease ?? 0;
          if (lease !== 0) this.checkLease(lease, now);
          const k = keyBytes(op.key);
          this.q.upsert.run(k, op.value, rev, rev, lease);
          log(LOG_PUT, k, op.value);
          break;
        }
        case 'delete': {
          const k = keyBytes(op.key);
          const old = this.q.deleteKey.get(k);
          if (old !== undefined) log(LOG_DELETE, k, old.value);
          break;
        }
        case 'delete-prefix': {
          const p = keyBytes(op.prefix);
          const end = prefixEnd(p);
          const rows = end === undefined ? this.q.selectOpen.all(p) : this.q.selectTo.all(p, end);
          if (rows.length === 0) break;
          if (end === undefined) this.q.deleteOpen.run(p);
          else this.q.deleteTo.run(p, end);
          for (const r of rows) log(LOG_DELETE, r.key, r.value);
          break;
        }
      }
    }
    return events;
  }

  /** After a commit: adopt the new revision, queue events for watchers, auto-compact. */
  private committed(rev: number, events: readonly WatchEvent[]): void {
    if (events.length === 0) return;
    this.rev = rev;
    for (const w of this.watchers) {
      if (!w.live || rev < w.next) continue;
      w.next = rev + 1;
      const mine = events.filter((e) => this.matches(w, e.key));
      if (mine.length > 0) this.queue.push({ watcher: w, events: mine });
    }
    if (this.keep > 0 && this.rev - this.compactRev >= this.keep + this.compactSlack) {
      try {
        this.compactTo(this.rev - this.keep);
      } catch (e) {
        this.onBackgroundError(asError(e)); // the write itself committed; retried next write
      }
    }
    this.drain();
  }

  private matches(w: Watcher, key: string): boolean {
    const k = keyBytes(key);
    return Buffer.compare(k, w.prefix) >= 0 && (w.end === undefined || Buffer.compare(k, w.end) < 0);
  }

  // -------------------------------------------------------------------------------------------
  // Compaction

  compact(revision: number): Promise<void> {
    return settle(() => {
      this.checkOpen();
      if (!Number.isInteger(revision) || revision < 0)
        throw new StoreError(`compact: bad revision ${revision}`);
      if (revision > this.rev) {
        throw new StoreError(`compact: revision ${revision} is in the future (current ${this.rev})`);
      }
      if (revision > this.compactRev) this.compactTo(revision);
    });
  }

  private compactTo(revision: number): void {
    this.db
      .transaction(() => {
        this.q.logCompact.run(revision);
        this.q.setCompactRev.run(revision);
      })
      .immediate();
    this.compactRev = revision;
  }

  // -------------------------------------------------------------------------------------------
  // Watches

  watch(prefix: string, fromRevision: number, handlers: WatchHandlers): Promise<Watch> {
    return settle(() => {
      this.checkOpen();
      if (!Number.isInteger(fromRevision) || fromRevision < 0) {
        throw new StoreError(`watch: bad revision ${fromRevision}`);
      }
      const p = keyBytes(prefix);
      const w: Watcher = {
        prefix: p,
        end: prefixEnd(p),
        handlers,
        next: fromRevision === 0 ? this.rev + 1 : fromRevision,
        live: false,
        done: false,
      };
      this.watchers.add(w);
      if (w.next > this.rev) w.live = true;
      else setImmediate(() => this.catchUp(w));
      return {
        cancel: () => {
          w.done = true;
          this.watchers.delete(w);
        },
      };
    });
  }

  /** Replays `log` for a watcher behind the current revision, one batch per event-loop turn. */
  private catchUp(w: Watcher): void {
    if (w.done || this.closed) return;
    if (w.next <= this.compactRev) {
      this.fail(w, new CompactedError(w.next, this.compactRev));
      this.drain();
      return;
    }
    const upper = Math.min(this.rev, w.next + this.batchRevs - 1);
    if (upper >= w.next) {
      const rows =
        w.end === undefined
          ? this.q.logOpen.all(w.next, upper, w.prefix)
          : this.q.logTo.all(w.next, upper, w.prefix, w.end);
      const events = rows.map((r): WatchEvent => ({
        type: r.type === LOG_DELETE ? 'delete' : 'put',
        key: r.key.toString('utf8'),
        value: r.value,
        modRevision: r.rev,
      }));
      for (const g of groupByRevision(events)) this.queue.push({ watcher: w, events: g });
      w.next = upper + 1;
    }
    if (w.next > this.rev) w.live = true;
    else setImmediate(() => this.catchUp(w));
    this.drain();
  }

  private fail(w: Watcher, error: Error): void {
    if (w.done) return;
    w.done = true;
    this.watchers.delete(w);
    this.queue.push({ watcher: w, error });
  }

  /** Delivers queued events in order; never re-entrant (a handler's own writes queue behind). */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      for (let d = this.queue.shift(); d !== undefined; d = this.queue.shift()) {
        const w = d.watcher;
        if ('error' in d) {
          try {
            w.handlers.onError?.(d.error);
          } catch {
            // a failing error handler has nobody left to tell
          }
          continue;
        }
        if (w.done) continue;
        try {
          w.handlers.onEvents(d.events);
        } catch (e) {
          this.fail(w, new StoreError('watch handler threw; watch cancelled', { cause: e }));
        }
      }
    } finally {
      this.draining = false;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Leases

  grantLease(ttlSeconds: number): Promise<number> {
    return settle(() => {
      this.checkOpen();
      const ttl = checkTtl(ttlSeconds);
      const info = this.db
        .transaction(() => this.q.leaseInsert.run(ttl, Date.now() + ttl * 1000))
        .immediate();
      return Number(info.lastInsertRowid);
    });
  }

  keepAlive(lease: number): Promise<void> {
    return settle(() => {
      this.checkOpen();
      const now = Date.now();
      const l = this.q.leaseGet.get(lease);
      if (l === undefined || l.expires_at <= now) {
        if (l !== undefined) this.expire(lease);
        throw new StoreError(`lease ${lease} not found (expired or revoked)`);
      }
      this.db.transaction(() => this.q.leaseTouch.run(now + l.ttl * 1000, lease)).immediate();
    });
  }

  revokeLease(lease: number): Promise<void> {
    return settle(() => {
      this.checkOpen();
      this.expire(lease);
    });
  }

  private checkLease(lease: number, now: number): void {
    const l = this.q.leaseGet.get(lease);
    if (l === undefined || l.expires_at <= now)
      throw new StoreError(`lease ${lease} not found (expired or revoked)`);
  }

  /** Deletes a lease and its keys (one revision with a delete event per key, if any). */
  private expire(lease: number): void {
    const rev = this.rev + 1;
    const events = this.db
      .transaction(() => {
        if (this.q.leaseDelete.run(lease).changes === 0) return [];
        const rows = this.q.leaseKeys.all(lease);
        if (rows.length === 0) return [];
        this.q.leaseKeysDelete.run(lease);
        const evs = rows.map((r, seq): WatchEvent => {
          this.q.logInsert.run(rev, seq, LOG_DELETE, r.key, r.value);
          return { type: 'delete', key: r.key.toString('utf8'), value: r.value, modRevision: rev };
        });
        this.q.setRevision.run(rev);
        return evs;
      })
      .immediate();
    this.committed(rev, events);
  }

  private reapExpiredLeases(): void {
    if (this.closed) return;
    try {
      for (const { id } of this.q.leasesExpired.all(Date.now())) this.expire(id);
    } catch (e) {
      this.onBackgroundError(asError(e)); // retried on the next tick
    }
  }

  // -------------------------------------------------------------------------------------------

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    clearInterval(this.timer);
    for (const w of this.watchers) this.fail(w, new StoreError('store closed'));
    this.drain();
    this.closed = true;
    this.db.close();
    return Promise.resolve();
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreError(`${this.file}: store is closed`);
  }
}

/**
 * Opens (creating or upgrading) the SQLite store in `file`. Only one `Kv` may hold a file at a
 * time: a second open fails while the first is open (see the module invariants).
 */
export function openSqliteKv(file: string, opts: SqliteKvOptions = {}): Promise<Kv> {
  return settle(() => new SqliteKv(openDatabase(file, opts), file, opts));
}
