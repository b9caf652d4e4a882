/**
 * The etcd store against a real etcd 3.4: the shared conformance suite (one etcd for the file,
 * a random namespace per test), watch resync across an etcd crash and restart, and a 3-member
 * cluster: a watch on a member that was down replays what it missed (or gets CompactedError),
 * a client of all members survives one being killed.
 *
 * Skipped only when /usr/bin/etcd is missing and `CI` is unset; in CI a missing etcd fails.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openEtcdKv } from '../../src/controller/store/etcd.ts';
import { CompactedError, type Kv } from '../../src/controller/store/types.ts';
import { describeKvConformance, WatchLog } from '../unit/store-conformance.ts';
import {
  etcdAvailable,
  startEtcd,
  startEtcdCluster,
  type EtcdCluster,
  type EtcdMember,
} from './harness/etcd.ts';

const ns = (): string => `test-${randomUUID()}/`;

describe.skipIf(!etcdAvailable())('etcd store', () => {
  let etcd: EtcdMember;

  beforeAll(async () => {
    etcd = await startEtcd();
  });

  afterAll(async () => {
    await etcd?.stop();
  });

  describeKvConformance(
    'etcd',
    () => openEtcdKv([etcd.clientUrl], { prefix: ns() }),
    async (kv) => {
      await kv.txn([], [{ type: 'delete-prefix', prefix: '' }]).catch(() => undefined); // closed already
      await kv.close();
    },
  );

  describe('watch resync across an etcd crash (single member, same data dir)', () => {
    it('resumes from the last delivered revision: no event missed or repeated', async () => {
      const prefix = ns();
      // The watch's first re-open comes 3 s after the break: etcd is back (about 1.5 s) and the
      // writes below are done by then, so the watch must fetch them from history.
      const watcher = await openEtcdKv([etcd.clientUrl], { prefix, watchRetryMs: 3000 });
      let writer: Kv | undefined;
      try {
        const w = new WatchLog();
        await watcher.watch('rc/', 0, w.handlers);
        writer = await openEtcdKv([etcd.clientUrl], { prefix });
        const r1 = await writer.put('rc/1', 'a');
        await w.untilEvents(1);
        await writer.close();

        await etcd.kill('SIGKILL');
        await etcd.restart();
        writer = await openEtcdKv([etcd.clientUrl], { prefix });
        const r2 = await writer.put('rc/2', 'b');
        const t = await writer.txn(
          [],
          [
            { type: 'put', key: 'rc/3', value: 'c' },
            { type: 'delete', key: 'rc/1' },
          ],
        );
        await writer.put('elsewhere', 'x');
        const r4 = await writer.put('rc/4', 'd');
        await w.untilEvents(5, 20_000);
        expect(w.batches).toEqual([
          [{ type: 'put', key: 'rc/1', value: 'a', modRevision: r1 }],
          [{ type: 'put', key: 'rc/2', value: 'b', modRevision: r2 }],
          [
            { type: 'put', key: 'rc/3', value: 'c', modRevision: t.revision },
            { type: 'delete', key: 'rc/1', value: 'a', modRevision: t.revision },
          ],
          [{ type: 'put', key: 'rc/4', value: 'd', modRevision: r4 }],
        ]);
        expect(w.errors).toEqual([]);
        // the same client serves ordinary calls again
        expect((await watcher.get('rc/4'))?.value).toBe('d');
      } finally {
        await writer?.close();
        await watcher.close();
      }
    }, 30_000);
  });

  describe('3-member cluster', () => {
    let cluster: EtcdCluster;
    /** A follower: killing it needs no election, so writes elsewhere never stall. */
    let follower: number;
    let others: string[];

    beforeAll(async () => {
      cluster = await startEtcdCluster(3);
      follower = ((await cluster.leaderIndex()) + 1) % 3;
      others = cluster.endpoints.filter((_, i) => i !== follower);
    });

    afterAll(async () => {
      await cluster?.stop();
    });

    it('starts with every member healthy', async () => {
      expect(cluster.members).toHaveLength(3);
      expect(await cluster.healthy()).toBe(true);
    });

    it('a watch on a member that was down replays what was written meanwhile', async () => {
      const prefix = ns();
      const watcher = await openEtcdKv([cluster.endpoints[follower]!], { prefix, watchRetryMs: 50 });
      const writer = await openEtcdKv(others, { prefix });
      try {
        const w = new WatchLog();
        await watcher.watch('', 0, w.handlers);
        const r1 = await writer.put('k', '1');
        await w.untilEvents(1);
        await cluster.members[follower]!.kill('SIGKILL');
        // Certainly missed live: the watcher's only member is down while these commit.
        const r2 = await writer.put('k', '2');
        const t = await writer.txn(
          [],
          [
            { type: 'put', key: 'j', value: 'x' },
            { type: 'delete', key: 'k' },
          ],
        );
        await cluster.members[follower]!.restart();
        await w.untilEvents(4, 20_000);
        expect(w.summary()).toEqual([
          [r1, 'put', 'k'],
          [r2, 'put', 'k'],
          [t.revision, 'put', 'j'],
          [t.revision, 'delete', 'k'],
        ]);
        expect(w.batches).toHaveLength(3);
        expect(w.errors).toEqual([]);
      } finally {
        await writer.close();
        await watcher.close();
      }
    }, 30_000);

    it('ends a watch with CompactedError when what it missed was compacted', async () => {
      const prefix = ns();
      const watcher = await openEtcdKv([cluster.endpoints[follower]!], { prefix, watchRetryMs: 50 });
      const writer = await openEtcdKv(others, { prefix });
      try {
        const w = new WatchLog();
        await watcher.watch('', 0, w.handlers);
        await cluster.members[follower]!.kill('SIGKILL');
        await writer.put('c', 'lost');
        const r = await writer.put('c', 'lost too');
        await writer.compact(r);
        await cluster.members[follower]!.restart();
        const err = await w.untilError(20_000);
        expect(err).toBeInstanceOf(CompactedError);
        expect((err as CompactedError).compactRevision).toBe(r);
        expect(w.events).toEqual([]);
        // The documented way out: re-read, then watch from the read revision + 1.
        const snap = await watcher.range('');
        expect(snap.entries.map((e) => e.value)).toEqual(['lost too']);
        const again = new WatchLog();
        await watcher.watch('', snap.revision + 1, again.handlers);
        const r3 = await writer.put('c', 'seen');
        await again.untilEvents(1);
        expect(again.summary()).toEqual([[r3, 'put', 'c']]);
      } finally {
        await writer.close();
        await watcher.close();
      }
    }, 30_000);

    it('a client of all members keeps serving when one is killed', async () => {
      const kv = await openEtcdKv(cluster.endpoints, { prefix: ns() });
      try {
        const w = new WatchLog();
        await kv.watch('', 0, w.handlers);
        const r1 = await kv.put('k', '1');
        await cluster.members[follower]!.kill('SIGKILL');
        for (let i = 2; i <= 6; i++) await kv.put('k', String(i)); // some land on the dead one first
        expect((await kv.get('k'))?.value).toBe('6');
        await w.untilEvents(6, 20_000);
        expect(w.events.map((e) => e.value)).toEqual(['1', '2', '3', '4', '5', '6']);
        expect(w.events[0]!.modRevision).toBe(r1);
      } finally {
        await kv.close();
      }
    }, 30_000);
  });
});
