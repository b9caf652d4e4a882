/**
 * The conformance suite of the controller store: every `Kv` backend runs these same tests
 * (SQLite in `store-sqlite.test.ts`, etcd in `test/interop/store-etcd.test.ts`).
 *
 * Rules the tests keep so they hold on a shared etcd too:
 * - Each test gets a fresh `Kv` from `open` (etcd: a new random namespace), closed by `cleanup`.
 * - Revisions are compared relative to each other (strictly increasing, equal, unchanged),
 *   never as absolute numbers: etcd's revision is shared with everything on the cluster.
 * - Nothing sleeps blindly: asynchronous outcomes (watch events, lease expiry) are awaited with
 *   a deadline and a description of what arrived instead.
 * - Randomness is seeded and the seed is in the test name.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CompactedError,
  StoreError,
  type Kv,
  type Watch,
  type WatchEvent,
} from '../../src/controller/store/types.ts';

export interface ConformanceOptions {
  /** Deadline for asynchronous outcomes (default 10 000 ms). */
  readonly waitMs?: number;
}

/** Collects a watch's batches and errors, and waits for conditions on them. */
export class WatchLog {
  readonly batches: WatchEvent[][] = [];
  readonly errors: Error[] = [];
  watch: Watch | undefined;
  private readonly waiters = new Set<() => void>();

  readonly handlers = {
    onEvents: (events: readonly WatchEvent[]): void => {
      this.batches.push([...events]);
      this.poke();
    },
    onError: (err: Error): void => {
      this.errors.push(err);
      this.poke();
    },
  };

  get events(): WatchEvent[] {
    return this.batches.flat();
  }

  /** `[revision, type, key]` of every event, for compact assertions. */
  summary(): [number, string, string][] {
    return this.events.map((e) => [e.modRevision, e.type, e.key]);
  }

  private poke(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves once `cond` holds (checked on every batch or error). */
  until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (!cond()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        const got = JSON.stringify(this.summary()).slice(0, 2000);
        const errs = this.errors.map((e) => e.message).join('; ');
        reject(
          new Error(`timed out after ${timeoutMs} ms waiting for ${what}; events: ${got}; errors: ${errs}`),
        );
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  untilEvents(n: number, timeoutMs?: number): Promise<void> {
    return this.until(() => this.events.length >= n, `${n} events`, timeoutMs);
  }

  untilError(timeoutMs?: number): Promise<Error> {
    return this.until(() => this.errors.length > 0, 'a watch error', timeoutMs).then(() => this.errors[0]!);
  }
}

/** Small seeded PRNG (mulberry32) for reproducible shuffles. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Key order of the store: UTF-8 bytes, not JavaScript string order. */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export function describeKvConformance(
  name: string,
  open: () => Promise<Kv>,
  cleanup: (kv: Kv) => Promise<void>,
  opts: ConformanceOptions = {},
): void {
  const waitMs = opts.waitMs ?? 10_000;

  describe(`Kv conformance: ${name}`, () => {
    let kv: Kv;
    let logs: WatchLog[] = [];
    let leases: number[] = [];

    beforeEach(async () => {
      kv = await open();
      logs = [];
      leases = [];
    });

    afterEach(async () => {
      for (const l of logs) l.watch?.cancel();
      for (const id of leases) await kv.revokeLease(id).catch(() => undefined);
      await cleanup(kv);
    });

    async function watch(prefix: string, from: number): Promise<WatchLog> {
      const log = new WatchLog();
      logs.push(log);
      log.watch = await kv.watch(prefix, from, log.handlers);
      return log;
    }

    async function lease(ttl: number): Promise<number> {
      const id = await kv.grantLease(ttl);
      leases.push(id);
      return id;
    }

    describe('get, put, delete', () => {
      it('puts, reads back and deletes a key', async () => {
        expect(await kv.get('k')).toBeUndefined();
        const r1 = await kv.put('k', 'v1');
        expect(await kv.get('k')).toEqual({
          key: 'k',
          value: 'v1',
          createRevision: r1,
          modRevision: r1,
          version: 1,
          lease: 0,
        });
        expect(await kv.delete('k')).toBe(true);
        expect(await kv.get('k')).toBeUndefined();
        expect(await kv.delete('k')).toBe(false);
      });

      it('keeps an empty value apart from an absent key', async () => {
        await kv.put('empty', '');
        expect((await kv.get('empty'))?.value).toBe('');
      });

      it('rejects an empty key', async () => {
        await expect(kv.put('', 'x')).rejects.toBeInstanceOf(StoreError);
      });
    });

    describe('revisions', () => {
      it('moves one store-wide revision forward on every write', async () => {
        const start = await kv.revision();
        const revs: number[] = [];
        for (let i = 0; i < 5; i++) revs.push(await kv.put(`r/${i % 2}`, String(i)));
        expect(revs[0]).toBeGreaterThan(start);
        for (let i = 1; i < revs.length; i++) expect(revs[i]).toBeGreaterThan(revs[i - 1]!);
        expect(await kv.revision()).toBe(revs.at(-1));
        expect((await kv.range('r/')).revision).toBe(revs.at(-1));
      });

      it('tracks createRevision, modRevision and version per key', async () => {
        const c = await kv.put('k', 'a');
        const m1 = await kv.put('k', 'b');
        const m2 = await kv.put('k', 'c');
        expect(await kv.get('k')).toMatchObject({
          createRevision: c,
          modRevision: m2,
          version: 3,
          value: 'c',
        });
        expect(m1).toBeGreaterThan(c);
        await kv.delete('k');
        const c2 = await kv.put('k', 'd');
        expect(await kv.get('k')).toMatchObject({ createRevision: c2, modRevision: c2, version: 1 });
      });

      it('does not move the revision for a delete of an absent key', async () => {
        const before = await kv.put('x', '1');
        expect(await kv.delete('absent')).toBe(false);
        expect(await kv.revision()).toBe(before);
      });
    });

    describe('range', () => {
      const seed = 0x5eed;
      it(`returns prefix keys in byte order and pages with limit/after (seed ${seed})`, async () => {
        const inside = Array.from({ length: 23 }, (_, i) => `a/${String(i).padStart(2, '0')}`).concat([
          'a/',
          'a/z/deeper',
          'a/\u00ff',
        ]);
        const outside = ['a', 'a0', 'a.', 'b/x', '0'];
        for (const k of shuffle([...inside, ...outside], rng(seed))) await kv.put(k, `v:${k}`);
        const expected = [...inside].sort(byteOrder);

        const all = await kv.range('a/');
        expect(all.entries.map((e) => e.key)).toEqual(expected);
        expect(all.entries.every((e) => e.value === `v:${e.key}`)).toBe(true);
        expect(all.more).toBe(false);

        const paged: string[] = [];
        let after: string | undefined;
        let pages = 0;
        for (;;) {
          const page = await kv.range('a/', after === undefined ? { limit: 5 } : { limit: 5, after });
          pages++;
          paged.push(...page.entries.map((e) => e.key));
          expect(page.entries.length).toBeLessThanOrEqual(5);
          if (!page.more) break;
          expect(page.entries.length).toBe(5);
          after = page.entries.at(-1)!.key;
        }
        expect(paged).toEqual(expected);
        expect(pages).toBe(Math.ceil(expected.length / 5));

        const exact = await kv.range('a/', { limit: expected.length });
        expect(exact.more).toBe(false);
        expect(exact.entries).toHaveLength(expected.length);
        const beyond = await kv.range('a/', { after: expected.at(-1)! });
        expect(beyond.entries).toEqual([]);
        expect(beyond.more).toBe(false);
        const none = await kv.range('nothing/');
        expect(none.entries).toEqual([]);
      });

      it('ranges over the whole keyspace with an empty prefix', async () => {
        await kv.put('x', '1');
        await kv.put('y', '2');
        expect((await kv.range('')).entries.map((e) => e.key)).toEqual(['x', 'y']);
      });
    });

    describe('txn', () => {
      it('applies success ops when the modRevision compare holds', async () => {
        const r1 = await kv.put('k', 'v1');
        const res = await kv.txn([{ key: 'k', modRevision: r1 }], [{ type: 'put', key: 'k', value: 'v2' }]);
        expect(res.succeeded).toBe(true);
        expect(res.revision).toBeGreaterThan(r1);
        expect(await kv.get('k')).toMatchObject({ value: 'v2', modRevision: res.revision, version: 2 });
      });

      it('applies failure ops when a compare fails', async () => {
        const r1 = await kv.put('k', 'v1');
        await kv.put('k', 'v2');
        const res = await kv.txn(
          [{ key: 'k', modRevision: r1 }],
          [{ type: 'put', key: 'k', value: 'stale' }],
          [{ type: 'put', key: 'conflicts', value: '1' }],
        );
        expect(res.succeeded).toBe(false);
        expect((await kv.get('k'))?.value).toBe('v2');
        expect(await kv.get('conflicts')).toMatchObject({ value: '1', modRevision: res.revision });
      });

      it('treats modRevision 0 as "key absent" (create-if-absent)', async () => {
        const first = await kv.txn(
          [{ key: 'lock', modRevision: 0 }],
          [{ type: 'put', key: 'lock', value: 'me' }],
        );
        expect(first.succeeded).toBe(true);
        const second = await kv.txn(
          [{ key: 'lock', modRevision: 0 }],
          [{ type: 'put', key: 'lock', value: 'you' }],
        );
        expect(second.succeeded).toBe(false);
        expect(second.revision).toBe(first.revision);
        expect((await kv.get('lock'))?.value).toBe('me');
      });

      it('requires every compare to hold', async () => {
        const ra = await kv.put('a', '1');
        const rb = await kv.put('b', '1');
        const put = [{ type: 'put', key: 'c', value: 'ok' }] as const;
        const bad = await kv.txn(
          [
            { key: 'a', modRevision: ra },
            { key: 'b', modRevision: rb + 100 },
            { key: 'none', modRevision: 0 },
          ],
          put,
        );
        expect(bad.succeeded).toBe(false);
        expect(await kv.get('c')).toBeUndefined();
        const good = await kv.txn(
          [
            { key: 'a', modRevision: ra },
            { key: 'b', modRevision: rb },
            { key: 'none', modRevision: 0 },
          ],
          put,
        );
        expect(good.succeeded).toBe(true);
        expect((await kv.get('c'))?.value).toBe('ok');
      });

      it('applies mixed ops at one revision, delete-prefix only inside its prefix', async () => {
        for (const k of ['p/1', 'p/2', 'p/q/3', 'p', 'p0', 'old', 'keep']) await kv.put(k, 'x');
        const res = await kv.txn(
          [],
          [
            { type: 'put', key: 'new', value: 'n' },
            { type: 'delete', key: 'old' },
            { type: 'delete-prefix', prefix: 'p/' },
            { type: 'put', key: 'keep', value: 'y' },
          ],
        );
        expect(res.succeeded).toBe(true);
        expect((await kv.range('')).entries.map((e) => [e.key, e.value, e.modRevision])).toEqual([
          ['keep', 'y', res.revision],
          ['new', 'n', res.revision],
          ['p', 'x', expect.any(Number)],
          ['p0', 'x', expect.any(Number)],
        ]);
      });

      it('moves no revision when nothing is written', async () => {
        const r = await kv.put('k', '1');
        const noop = await kv.txn(
          [],
          [
            { type: 'delete', key: 'absent' },
            { type: 'delete-prefix', prefix: 'none/' },
          ],
        );
        expect(noop).toEqual({ succeeded: true, revision: r });
        const failed = await kv.txn([{ key: 'k', modRevision: 0 }], [{ type: 'put', key: 'k', value: '2' }]);
        expect(failed).toEqual({ succeeded: false, revision: r });
        expect(await kv.revision()).toBe(r);
      });

      it('rejects a branch that puts a key twice or puts what it deletes', async () => {
        const r = await kv.put('k', '1');
        await expect(
          kv.txn(
            [],
            [
              { type: 'put', key: 'd', value: '1' },
              { type: 'put', key: 'd', value: '2' },
            ],
          ),
        ).rejects.toBeInstanceOf(StoreError);
        await expect(
          kv.txn(
            [],
            [
              { type: 'delete-prefix', prefix: 'd/' },
              { type: 'put', key: 'd/x', value: '2' },
            ],
          ),
        ).rejects.toBeInstanceOf(StoreError);
        expect(await kv.revision()).toBe(r);
        expect(await kv.get('d')).toBeUndefined();
      });
    });

    describe('atomicity', () => {
      it('writes nothing when a txn fails part-way (unknown lease on its last op)', async () => {
        const r = await kv.put('k', 'before');
        await expect(
          kv.txn(
            [{ key: 'k', modRevision: r }],
            [
              { type: 'put', key: 'k', value: 'after' },
              { type: 'delete', key: 'k2' },
              { type: 'put', key: 'leased', value: 'x', lease: 0x1234_5678_9abc },
            ],
          ),
        ).rejects.toThrow();
        expect((await kv.get('k'))?.value).toBe('before');
        expect(await kv.get('leased')).toBeUndefined();
        expect(await kv.revision()).toBe(r);
      });

      it('a failed compare writes nothing and uses no revision', async () => {
        const w = await watch('', 0);
        const r = await kv.put('k', 'v');
        const res = await kv.txn([{ key: 'k', modRevision: r - 1 }], [{ type: 'delete-prefix', prefix: '' }]);
        expect(res).toEqual({ succeeded: false, revision: r });
        const r2 = await kv.put('marker', '1');
        await w.untilEvents(2, waitMs);
        expect(w.summary()).toEqual([
          [r, 'put', 'k'],
          [r2, 'put', 'marker'],
        ]);
        expect(r2).toBeGreaterThan(r);
      });
    });

    describe('watch', () => {
      it('delivers events in revision order, one batch per revision, only inside the prefix', async () => {
        await kv.put('w/gone', 'old');
        const w = await watch('w/', 0);
        const r1 = await kv.put('w/a', '1');
        await kv.put('elsewhere', 'x');
        const t = await kv.txn(
          [],
          [
            { type: 'put', key: 'w/b', value: '2' },
            { type: 'put', key: 'w/c', value: '3' },
            { type: 'delete', key: 'w/gone' },
            { type: 'put', key: 'other', value: 'x' },
          ],
        );
        const r3 = await kv.txn([], [{ type: 'delete-prefix', prefix: 'w/' }]);
        await w.until(() => w.batches.length >= 3, '3 batches', waitMs);
        expect(w.batches).toEqual([
          [{ type: 'put', key: 'w/a', value: '1', modRevision: r1 }],
          [
            { type: 'put', key: 'w/b', value: '2', modRevision: t.revision },
            { type: 'put', key: 'w/c', value: '3', modRevision: t.revision },
            { type: 'delete', key: 'w/gone', value: 'old', modRevision: t.revision },
          ],
          [
            { type: 'delete', key: 'w/a', value: '1', modRevision: r3.revision },
            { type: 'delete', key: 'w/b', value: '2', modRevision: r3.revision },
            { type: 'delete', key: 'w/c', value: '3', modRevision: r3.revision },
          ],
        ]);
        expect(w.errors).toEqual([]);
      });

      it('replays history from a past revision, then continues live without a gap', async () => {
        const revs: number[] = [];
        for (let i = 0; i < 10; i++) revs.push(await kv.put(`h/${i % 3}`, String(i)));
        const del = await kv.txn([], [{ type: 'delete', key: 'h/0' }]);
        const from = revs[4]!;
        const w = await watch('h/', from);
        const live = await kv.put('h/live', 'L');
        await w.until(() => w.events.some((e) => e.key === 'h/live'), 'the live event', waitMs);
        const expected: [number, string, string][] = revs
          .slice(4)
          .map((r, j) => [r, 'put', `h/${(j + 4) % 3}`]);
        expected.push([del.revision, 'delete', 'h/0'], [live, 'put', 'h/live']);
        expect(w.summary()).toEqual(expected);
        expect(w.batches.every((b) => b.length === 1)).toBe(true);
      });

      it('replays from the first revision of a key that was written many times', async () => {
        const first = await kv.put('many', '0');
        for (let i = 1; i < 50; i++) await kv.put('many', String(i));
        const w = await watch('many', first);
        await w.untilEvents(50, waitMs);
        expect(w.events.map((e) => e.value)).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
      });

      it('stops delivering after cancel', async () => {
        const a = await watch('c/', 0);
        const b = await watch('c/', 0);
        await kv.put('c/1', '1');
        await a.untilEvents(1, waitMs);
        a.watch!.cancel();
        await kv.put('c/2', '2');
        await b.untilEvents(2, waitMs);
        expect(a.summary().map((s) => s[2])).toEqual(['c/1']);
        expect(a.errors).toEqual([]);
      });

      it('reports CompactedError for a watch below the compaction point', async () => {
        const revs: number[] = [];
        for (let i = 0; i < 6; i++) revs.push(await kv.put('z/k', String(i)));
        await kv.compact(revs[3]!);
        await kv.compact(revs[1]!); // below the compaction point: no-op
        expect(await kv.revision()).toBe(revs[5]);

        const old = await watch('z/', revs[1]!);
        const err = await old.untilError(waitMs);
        expect(err).toBeInstanceOf(CompactedError);
        expect((err as CompactedError).compactRevision).toBe(revs[3]);
        expect(old.events).toEqual([]);

        const ok = await watch('z/', revs[4]!);
        await ok.untilEvents(2, waitMs);
        expect(ok.summary()).toEqual([
          [revs[4], 'put', 'z/k'],
          [revs[5], 'put', 'z/k'],
        ]);
        expect(ok.errors).toEqual([]);
        // the data itself survives compaction
        expect((await kv.get('z/k'))?.value).toBe('5');
        await expect(kv.compact((await kv.revision()) + 1000)).rejects.toBeInstanceOf(StoreError);
      });

      it('ends watches with an error when the store closes', async () => {
        const w = await watch('', 0);
        await kv.close();
        await w.untilError(waitMs);
        expect(w.errors[0]).toBeInstanceOf(StoreError);
      });
    });

    describe('leases', () => {
      it('deletes a lease\u2019s keys with delete events when it is revoked', async () => {
        const id = await lease(30);
        expect(id).toBeGreaterThan(0);
        const w = await watch('l/', 0);
        await kv.put('l/a', 'A', id);
        await kv.put('l/b', 'B', id);
        await kv.put('l/free', 'F');
        expect((await kv.get('l/a'))?.lease).toBe(id);
        await kv.revokeLease(id);
        await w.until(() => w.events.filter((e) => e.type === 'delete').length >= 2, '2 deletes', waitMs);
        const deletes = w.batches.at(-1)!;
        expect(deletes.map((e) => [e.type, e.key, e.value])).toEqual([
          ['delete', 'l/a', 'A'],
          ['delete', 'l/b', 'B'],
        ]);
        expect((await kv.range('l/')).entries.map((e) => e.key)).toEqual(['l/free']);
        await kv.revokeLease(id); // idempotent
        await expect(kv.keepAlive(id)).rejects.toBeInstanceOf(StoreError);
      });

      it('deletes a lease\u2019s keys with delete events when it expires', async () => {
        const id = await lease(1);
        const w = await watch('e/', 0);
        await kv.put('e/1', 'x', id);
        await kv.put('e/2', 'y', id);
        await w.until(
          () => w.events.filter((e) => e.type === 'delete').length >= 2,
          'expiry deletes',
          waitMs,
        );
        const last = w.batches.at(-1)!;
        expect(last.map((e) => [e.type, e.key])).toEqual([
          ['delete', 'e/1'],
          ['delete', 'e/2'],
        ]);
        expect(await kv.get('e/1')).toBeUndefined();
        await expect(kv.keepAlive(id)).rejects.toBeInstanceOf(StoreError);
      });

      it('keeps keys alive while the lease is kept alive, and a lease-less put detaches a key', async () => {
        const id = await lease(2);
        await kv.put('ka/leased', '1', id);
        await kv.put('ka/detached', '1', id);
        await kv.put('ka/detached', '2');
        expect((await kv.get('ka/detached'))?.lease).toBe(0);
        const until = Date.now() + 3500; // well past the TTL (etcd reaps every 500 ms)
        while (Date.now() < until) {
          await kv.keepAlive(id);
          await new Promise((r) => setTimeout(r, 400));
        }
        expect((await kv.get('ka/leased'))?.value).toBe('1');
        await kv.revokeLease(id);
        expect(await kv.get('ka/leased')).toBeUndefined();
        expect((await kv.get('ka/detached'))?.value).toBe('2');
      });

      it('rejects a put on an unknown lease', async () => {
        await expect(kv.put('k', 'v', 0x1234_5678_9abc)).rejects.toBeInstanceOf(StoreError);
        expect(await kv.get('k')).toBeUndefined();
      });
    });

    describe('concurrency', () => {
      it('N parallel CAS increments with retries end at exactly N', async () => {
        const n = 16;
        let conflicts = 0;
        const increment = async (): Promise<void> => {
          for (;;) {
            const cur = await kv.get('counter');
            const value = cur === undefined ? 0 : Number(cur.value);
            const res = await kv.txn(
              [{ key: 'counter', modRevision: cur?.modRevision ?? 0 }],
              [{ type: 'put', key: 'counter', value: String(value + 1) }],
            );
            if (res.succeeded) return;
            conflicts++;
          }
        };
        await Promise.all(Array.from({ length: n }, increment));
        const final = await kv.get('counter');
        expect(final).toMatchObject({ value: String(n), version: n });
        expect(conflicts).toBeGreaterThan(0); // the increments really raced
      });
    });

    describe('values and keys', () => {
      it('stores and watches a 1 MB value', async () => {
        const big = Array.from({ length: 1 << 20 }, (_, i) => String.fromCharCode(33 + (i % 90))).join('');
        const w = await watch('big', 0);
        const r = await kv.put('big', big);
        const got = await kv.get('big');
        expect(got?.value.length).toBe(big.length);
        expect(got?.value === big).toBe(true);
        await w.untilEvents(1, waitMs);
        expect(w.events[0]!.modRevision).toBe(r);
        expect(w.events[0]!.value === big).toBe(true);
      });

      it('handles unicode keys and values in byte order', async () => {
        const keys = ['u/ключ', 'u/日本', 'u/🔑', 'u/\uff61', 'u/e\u0301', 'u/é', 'u/z', 'u/a b'];
        for (const k of keys) await kv.put(k, `${k}=☃`);
        const w = await watch('u/🔑', 0);
        const expected = [...keys].sort(byteOrder);
        expect(expected).not.toEqual([...keys].sort()); // the byte order really differs here
        expect((await kv.range('u/')).entries.map((e) => e.key)).toEqual(expected);
        expect((await kv.get('u/ключ'))?.value).toBe('u/ключ=☃');
        const page = await kv.range('u/', { after: 'u/z', limit: 2 });
        expect(page.entries.map((e) => e.key)).toEqual(
          expected.slice(expected.indexOf('u/z') + 1, expected.indexOf('u/z') + 3),
        );
        await kv.put('u/🔑/sub', 'ü');
        await kv.txn([], [{ type: 'delete-prefix', prefix: 'u/日' }]);
        await w.untilEvents(1, waitMs);
        expect(w.summary().map((s) => s[2])).toEqual(['u/🔑/sub']);
        expect(await kv.get('u/日本')).toBeUndefined();
      });
    });
  });
}
