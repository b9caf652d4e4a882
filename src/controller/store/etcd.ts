/**
 * The distributed store backend: the `Kv` interface on an etcd v3 cluster (npm `etcd3` for the
 * gRPC plumbing; tested against etcd 3.4), for controllers that share state and fail over.
 *
 * Owns: the mapping of keys into an optional namespace prefix, of `Op`/`Compare` onto etcd
 * transactions, its own watch streams with resync-on-reconnect, lease ids.
 *
 * Invariants and mapping:
 * - Every key is stored as `prefix + key` (UTF-8 bytes); ranges, deletes and watches never
 *   leave the prefix, so several controllers or tests can share one etcd. Revisions, leases and
 *   compaction are etcd's and therefore shared by everyone on the cluster.
 * - `range` uses etcd's limit and `more`; paging starts at `after + '\0'`.
 * - `Compare` is `mod_revision == N`; etcd treats an absent key as all-zero, so N = 0 means
 *   "absent". A txn is one etcd `Txn`: compares and ops are applied atomically at one revision
 *   (etcd allows at most `--max-txn-ops`, default 128, ops per txn).
 * - Watches run on our own gRPC streams, not `etcd3`'s `Watcher`: that one resumes from the
 *   last response header's revision, which can skip events a past-revision watch has not yet
 *   received. Here each watch remembers the next revision it needs (last delivered + 1), drops
 *   anything older after a reconnect, and re-opens a broken stream from there with backoff. If
 *   etcd compacted that revision meanwhile, the watch ends with `CompactedError`; if the
 *   cluster stays unreachable for `watchGiveUpMs`, it ends with a `StoreError`.
 * - Boundary: etcd keeps the compaction revision itself readable, so a watch from exactly the
 *   compacted revision still works here (SQLite refuses it); below it both refuse.
 * - Lease ids are chosen by us below 2^53 (etcd's own ids are 64-bit and would not survive a JS
 *   number). etcd rounds TTLs up to its minimum (about 2 s with default timings) and checks
 *   expiry every 500 ms.
 */
import {
  circuitBreaker,
  ConsecutiveBreaker,
  ExponentialBackoff,
  handleWhen,
  isBrokenCircuitError,
  retry,
} from 'cockatiel';
import {
  Etcd3,
  isRecoverableError,
  type IDuplexStream,
  type IKeyValue,
  type IRequestOp,
  type IWatchRequest,
  type IWatchResponse,
} from 'etcd3';
import {
  asError,
  checkTtl,
  groupByRevision,
  keyBytes,
  prefixEnd,
  rangeStart,
  validateOps,
} from './common.ts';
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

export interface EtcdKvOptions {
  /** Namespace: prepended to every key (e.g. `vce/`). Default none. */
  readonly prefix?: string;
  /** Deadline of each unary call (default 10 000 ms). */
  readonly callTimeoutMs?: number;
  /** A broken watch stream is re-opened after this delay, doubling up to 2 s (default 100 ms). */
  readonly watchRetryMs?: number;
  /** A watch that cannot reconnect for this long ends with an error (default 60 000 ms). */
  readonly watchGiveUpMs?: number;
}

type WatchStream = IDuplexStream<IWatchRequest, IWatchResponse>;

const ZERO = Buffer.from([0]);
const MAX_LEASE_ID = 2 ** 53 - 1;

/** etcd's key and range_end for every key starting with `prefix` ('\0' = no upper bound). */
function span(prefix: Buffer): { key: Buffer; range_end: Buffer } {
  return { key: prefix.length === 0 ? ZERO : prefix, range_end: prefixEnd(prefix) ?? ZERO };
}

function num(s: string | number | null | undefined): number {
  return s === null || s === undefined ? 0 : Number(s);
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** etcd/gRPC errors become `StoreError`s with the original as `cause`. */
function storeError(what: string, e: unknown): StoreError {
  if (e instanceof StoreError) return e;
  return new StoreError(`etcd ${what}: ${errorMessage(e)}`, { cause: e });
}

class EtcdKv implements Kv {
  readonly backend = 'etcd';
  private readonly ns: Buffer;
  private readonly watches = new Set<EtcdWatch>();
  private closed = false;

  constructor(
    readonly client: Etcd3,
    readonly opts: EtcdKvOptions,
  ) {
    this.ns = keyBytes(opts.prefix ?? '');
  }

  full(key: string): Buffer {
    return Buffer.concat([this.ns, keyBytes(key)]);
  }

  strip(key: Buffer): string {
    return key.subarray(this.ns.length).toString('utf8');
  }

  private entry(kv: IKeyValue): KvEntry {
    return {
      key: this.strip(kv.key),
      value: kv.value.toString('utf8'),
      createRevision: num(kv.create_revision),
      modRevision: num(kv.mod_revision),
      version: num(kv.version),
      lease: num(kv.lease),
    };
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreError('etcd store is closed');
    try {
      return await fn();
    } catch (e) {
      throw storeError(what, e);
    }
  }

  get(key: string): Promise<KvEntry | undefined> {
    return this.call('get', async () => {
      const res = await this.client.kv.range({ key: this.full(key) });
      const kv = res.kvs[0];
      return kv === undefined ? undefined : this.entry(kv);
    });
  }

  range(prefix: string, opts: RangeOptions = {}): Promise<RangeResult> {
    return this.call('range', async () => {
      const p = this.full(prefix);
      const s = span(p);
      const start = rangeStart(p, opts.after === undefined ? undefined : this.full(opts.after));
      const limit = opts.limit !== undefined && opts.limit > 0 ? opts.limit : 0;
      const res = await this.client.kv.range({
        key: start.length === 0 ? ZERO : start,
        range_end: s.range_end,
        limit,
      });
      return {
        entries: res.kvs.map((kv) => this.entry(kv)),
        revision: num(res.header.revision),
        more: limit > 0 && res.more,
      };
    });
  }

  put(key: string, value: string, lease?: number): Promise<number> {
    return this.call('put', async () => {
      validateOps([{ type: 'put', key, value }]);
      const res = await this.client.kv.put({
        key: this.full(key),
        value: Buffer.from(value, 'utf8'),
        lease: lease ?? 0,
      });
      return num(res.header.revision);
    });
  }

  delete(key: string): Promise<boolean> {
    return this.call('delete', async () => {
      const res = await this.client.kv.deleteRange({ key: this.full(key) });
      return num(res.deleted) > 0;
    });
  }

  private op(op: Op): IRequestOp {
    switch (op.type) {
      case 'put':
        return {
          request_put: { key: this.full(op.key), value: Buffer.from(op.value, 'utf8'), lease: op.lease ?? 0 },
        };
      case 'delete':
        return { request_delete_range: { key: this.full(op.key) } };
      case 'delete-prefix':
        return { request_delete_range: span(this.full(op.prefix)) };
    }
  }

  txn(compares: readonly Compare[], success: readonly Op[], failure: readonly Op[] = []): Promise<TxnResult> {
    return this.call('txn', async () => {
      validateOps(success);
      validateOps(failure);
      const res = await this.client.kv.txn({
        compare: compares.map((c) => ({
          key: this.full(c.key),
          target: 'Mod',
          result: 'Equal',
          mod_revision: c.modRevision,
        })),
        success: success.map((o) => this.op(o)),
        failure: failure.map((o) => this.op(o)),
      });
      return { succeeded: res.succeeded, revision: num(res.header.revision) };
    });
  }

  revision(): Promise<number> {
    return this.call('revision', async () => {
      const res = await this.client.kv.range({ ...span(this.ns), count_only: true });
      return num(res.header.revision);
    });
  }

  compact(revision: number): Promise<void> {
    return this.call('compact', async () => {
      try {
        await this.client.kv.compact({ revision, physical: true });
      } catch (e) {
        // Compacting at or below the current compaction point is a no-op, as in SQLite.
        if (errorMessage(e).includes('required revision has been compacted')) return;
        throw e;
      }
    });
  }

  async watch(prefix: string, fromRevision: number, handlers: WatchHandlers): Promise<Watch> {
    if (!Number.isInteger(fromRevision) || fromRevision < 0) {
      throw new StoreError(`watch: bad revision ${fromRevision}`);
    }
    const next = fromRevision === 0 ? (await this.revision()) + 1 : fromRevision;
    if (this.closed) throw new StoreError('etcd store is closed');
    const w = new EtcdWatch(this, span(this.full(prefix)), next, handlers, () => this.watches.delete(w));
    this.watches.add(w);
    try {
      await w.start();
    } catch (e) {
      w.cancel();
      throw storeError('watch', e);
    }
    return { cancel: () => w.cancel() };
  }

  grantLease(ttlSeconds: number): Promise<number> {
    return this.call('grant lease', async () => {
      const ttl = checkTtl(ttlSeconds);
      for (let attempt = 0; ; attempt++) {
        const id = 1 + Math.floor(Math.random() * (MAX_LEASE_ID - 1));
        try {
          await this.client.leaseClient.leaseGrant({ TTL: ttl, ID: String(id) });
          return id;
        } catch (e) {
          if (attempt < 3 && errorMessage(e).includes('lease already exists')) continue;
          throw e;
        }
      }
    });
  }

  keepAlive(lease: number): Promise<void> {
    return this.call('keep alive', async () => {
      const stream = await this.client.leaseClient.leaseKeepAlive();
      const ttl = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new StoreError(`keepAlive ${lease}: no answer`)),
          this.opts.callTimeoutMs ?? 10_000,
        );
        stream.on('data', (res) => {
          clearTimeout(timer);
          resolve(num(res.TTL));
        });
        stream.on('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
        stream.on('end', () => {
          clearTimeout(timer);
          reject(new StoreError(`keepAlive ${lease}: stream ended`));
        });
        stream.write({ ID: String(lease) });
      }).finally(() => {
        stream.end(); // half-close first: etcd3 then does not count the cancel as a host failure
        stream.cancel();
      });
      if (ttl <= 0) throw new StoreError(`lease ${lease} not found (expired or revoked)`);
    });
  }

  revokeLease(lease: number): Promise<void> {
    return this.call('revoke lease', async () => {
      try {
        await this.client.leaseClient.leaseRevoke({ ID: String(lease) });
      } catch (e) {
        if (errorMessage(e).includes('requested lease not found')) return; // idempotent
        throw e;
      }
    });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    for (const w of [...this.watches]) w.fail(new StoreError('store closed'));
    this.client.close();
    return Promise.resolve();
  }

  watchRetryMs(): number {
    return this.opts.watchRetryMs ?? 100;
  }

  watchGiveUpMs(): number {
    return this.opts.watchGiveUpMs ?? 60_000;
  }
}

/**
 * One watch on its own gRPC stream. `next` is the first revision not yet delivered; every
 * (re)connection asks etcd for events from `next`, so nothing is missed or repeated.
 */
class EtcdWatch {
  private stream: WatchStream | undefined;
  private done = false;
  private retryMs: number;
  private brokenSince: number | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private onCreated: ((err?: Error) => void) | undefined;

  constructor(
    private readonly kv: EtcdKv,
    private readonly range: { key: Buffer; range_end: Buffer },
    private next: number,
    private readonly handlers: WatchHandlers,
    private readonly onDone: () => void,
  ) {
    this.retryMs = kv.watchRetryMs();
  }

  /** First connection: resolves once etcd created the watch, rejects if it cannot. */
  start(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.onCreated = (err) => (err === undefined ? resolve() : reject(err));
      this.connect();
    });
  }

  private connect(): void {
    this.retryTimer = undefined;
    if (this.done) return;
    this.kv.client.watchClient.watch().then(
      (stream) => this.attach(stream),
      (e: unknown) => this.broken(undefined, asError(e)),
    );
  }

  private attach(stream: WatchStream): void {
    if (this.done) {
      closeStream(stream);
      return;
    }
    this.stream = stream;
    stream.on('data', (res) => this.response(stream, res));
    stream.on('error', (e) => this.broken(stream, e));
    stream.on('end', () => this.broken(stream, new Error('watch stream ended')));
    stream.write({
      create_request: { ...this.range, start_revision: this.next, prev_kv: true },
    });
  }

  private response(stream: WatchStream, res: IWatchResponse): void {
    if (stream !== this.stream || this.done) return;
    if (res.canceled) {
      const compacted = num(res.compact_revision);
      this.fail(
        compacted > 0
          ? new CompactedError(this.next, compacted)
          : new StoreError(`watch cancelled by etcd: ${res.cancel_reason || 'no reason given'}`),
      );
      return;
    }
    if (res.created) {
      this.brokenSince = undefined;
      this.retryMs = this.kv.watchRetryMs();
      const created = this.onCreated;
      this.onCreated = undefined;
      created?.();
    }
    const events: WatchEvent[] = [];
    for (const ev of res.events) {
      const rev = num(ev.kv.mod_revision);
      if (rev < this.next) continue; // already delivered before a reconnect
      const del = String(ev.type).toUpperCase() === 'DELETE';
      events.push({
        type: del ? 'delete' : 'put',
        key: this.kv.strip(ev.kv.key),
        value: del
          ? ((ev.prev_kv as IKeyValue | null)?.value.toString('utf8') ?? '')
          : ev.kv.value.toString('utf8'),
        modRevision: rev,
      });
    }
    for (const group of groupByRevision(events)) {
      if (this.done) return;
      this.next = group[0]!.modRevision + 1;
      try {
        this.handlers.onEvents(group);
      } catch (e) {
        this.fail(new StoreError('watch handler threw; watch cancelled', { cause: e }));
        return;
      }
    }
  }

  private broken(stream: WatchStream | undefined, err: Error): void {
    if (this.done || (stream !== undefined && stream !== this.stream)) return;
    if (this.stream !== undefined) closeStream(this.stream);
    this.stream = undefined;
    if (this.onCreated !== undefined) {
      this.fail(err); // the first connection failed: watch() rejects, no retry loop
      return;
    }
    const now = Date.now();
    this.brokenSince ??= now;
    if (now - this.brokenSince > this.kv.watchGiveUpMs()) {
      this.fail(new StoreError(`watch: etcd unreachable for ${now - this.brokenSince} ms`, { cause: err }));
      return;
    }
    this.retryTimer = setTimeout(() => this.connect(), this.retryMs);
    this.retryMs = Math.min(2000, this.retryMs * 2);
  }

  /** Ends the watch with an error (reported once, through `onError` or the pending `start`). */
  fail(err: Error): void {
    if (this.done) return;
    this.stop();
    const created = this.onCreated;
    this.onCreated = undefined;
    if (created !== undefined) {
      created(err);
      return;
    }
    try {
      this.handlers.onError?.(err);
    } catch {
      // nobody left to tell
    }
  }

  cancel(): void {
    this.onCreated = undefined;
    this.stop();
  }

  private stop(): void {
    if (this.done) return;
    this.done = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    if (this.stream !== undefined) closeStream(this.stream);
    this.stream = undefined;
    this.onDone();
  }
}

/**
 * Closes a gRPC stream from our side. Half-closing first matters: etcd3 resets the whole
 * connection when a still-writable stream fails, and a cancel counts as a failure.
 */
function closeStream(stream: {
  end(): void;
  cancel(): void;
  on(event: 'error', fn: (e: Error) => void): unknown;
}): void {
  stream.on('error', () => undefined);
  try {
    stream.end();
    stream.cancel();
  } catch {
    // already closed
  }
}

/**
 * Whether a failed call certainly never reached etcd's state machine, so sending it again
 * cannot apply it twice: no connection to the endpoint, every endpoint's circuit open, or
 * "no leader" (rejected before proposing). A timeout or a dropped connection after sending is
 * ambiguous (etcd's own clientv3 does not retry those mutations either): it reaches the caller.
 */
function notSent(e: Error): boolean {
  if (isBrokenCircuitError(e)) return true;
  if (!isRecoverableError(e)) return false;
  const m = e.message;
  return (
    m.includes('No connection established') ||
    m.includes('ECONNREFUSED') ||
    m.includes('etcdserver: no leader')
  );
}

/**
 * Connects to etcd at `endpoints` (`host:port` or `http://host:port`) and checks it answers.
 *
 * Failover between endpoints is `etcd3`'s: a call that fails on one endpoint is retried on
 * another (with backoff, about 1.5 s in all) only when it was certainly not applied (`notSent`);
 * an endpoint that failed three times in a row is skipped for half a second. Any other failure
 * of a write (a timeout, a leader change mid-request) rejects with a `StoreError` and the write
 * may or may not have been applied: re-read before retrying a CAS.
 */
export async function openEtcdKv(endpoints: string[], opts: EtcdKvOptions = {}): Promise<Kv> {
  if (endpoints.length === 0) throw new StoreError('openEtcdKv: no endpoints');
  const callTimeoutMs = opts.callTimeoutMs ?? 10_000;
  const client = new Etcd3({
    hosts: endpoints,
    dialTimeout: callTimeoutMs,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
    faultHandling: {
      host: () =>
        circuitBreaker(handleWhen(isRecoverableError), {
          halfOpenAfter: 500,
          breaker: new ConsecutiveBreaker(3),
        }),
      global: retry(handleWhen(notSent), {
        maxAttempts: Math.max(5, endpoints.length),
        backoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 1000 }),
      }),
    },
  });
  const kv = new EtcdKv(client, opts);
  try {
    await kv.revision();
  } catch (e) {
    client.close();
    throw storeError(`connect to ${endpoints.join(',')}`, e);
  }
  return kv;
}
