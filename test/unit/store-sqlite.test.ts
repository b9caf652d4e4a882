/**
 * The SQLite store: the shared conformance suite on a temp file, plus what only a file can
 * show: reopening, the one-writer lock, crash safety under SIGKILL, schema migrations,
 * auto-compaction, lease expiry while closed, watch replay in batches.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import {
  LATEST_SCHEMA_VERSION,
  MIGRATIONS,
  migrate,
  SchemaVersionError,
} from '../../src/controller/store/migrations.ts';
import { openSqliteKv } from '../../src/controller/store/sqlite.ts';
import { CompactedError, StoreError, type Kv } from '../../src/controller/store/types.ts';
import { describeKvConformance, rng, WatchLog } from './store-conformance.ts';

const dir = mkdtempSync(join(tmpdir(), 'vce-store-sqlite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileNo = 0;
const nextFile = (): string => join(dir, `kv-${++fileNo}.db`);
const files = new Map<Kv, string>();

function removeDb(file: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(file + suffix, { force: true });
}

describeKvConformance(
  'sqlite',
  async () => {
    const file = nextFile();
    const kv = await openSqliteKv(file);
    files.set(kv, file);
    return kv;
  },
  async (kv) => {
    await kv.close();
    const file = files.get(kv);
    files.delete(kv);
    if (file !== undefined) removeDb(file);
  },
);

describe('sqlite store: file behaviour', () => {
  it('keeps data, revision, compaction point and leases across close and reopen', async () => {
    const file = nextFile();
    let kv = await openSqliteKv(file);
    await kv.put('a', '1');
    const lease = await kv.grantLease(60);
    await kv.put('b', '2', lease);
    const r = await kv.put('a', '3');
    await kv.compact(r - 1);
    await kv.close();
    await expect(kv.get('a')).rejects.toBeInstanceOf(StoreError);

    kv = await openSqliteKv(file);
    expect(await kv.revision()).toBe(r);
    expect(await kv.get('a')).toMatchObject({ value: '3', version: 2, modRevision: r });
    expect((await kv.get('b'))?.lease).toBe(lease);
    const w = new WatchLog();
    await kv.watch('', r - 1, w.handlers);
    expect(await w.untilError()).toBeInstanceOf(CompactedError);
    await kv.revokeLease(lease);
    expect(await kv.get('b')).toBeUndefined();
    expect(await kv.put('c', '4')).toBe(r + 2);
    await kv.close();
    removeDb(file);
  });

  it('refuses a second opener while the file is open (one writer per file)', async () => {
    const file = nextFile();
    const kv = await openSqliteKv(file);
    await kv.put('k', 'v');
    await expect(openSqliteKv(file, { lockTimeoutMs: 50 })).rejects.toThrow(/open in another process/);
    await kv.close();
    const again = await openSqliteKv(file, { lockTimeoutMs: 50 });
    expect((await again.get('k'))?.value).toBe('v');
    await again.close();
    removeDb(file);
  });

  it('auto-compacts history beyond keepRevisions', async () => {
    const file = nextFile();
    const kv = await openSqliteKv(file, { keepRevisions: 10 });
    let r = 0;
    for (let i = 0; i < 40; i++) r = await kv.put(`k${i % 4}`, String(i));
    const tooOld = new WatchLog();
    await kv.watch('', 1, tooOld.handlers);
    const err = await tooOld.untilError();
    expect(err).toBeInstanceOf(CompactedError);
    expect((err as CompactedError).compactRevision).toBeGreaterThanOrEqual(r - 11);
    const recent = new WatchLog();
    await kv.watch('', r - 9, recent.handlers);
    await recent.untilEvents(10);
    expect(recent.events.map((e) => e.modRevision)).toEqual(Array.from({ length: 10 }, (_, i) => r - 9 + i));
    await kv.close();
    removeDb(file);
  });

  it('deletes keys of leases that expired while the file was closed, with delete events', async () => {
    const file = nextFile();
    let kv = await openSqliteKv(file);
    const lease = await kv.grantLease(3600);
    await kv.put('s/a', 'A', lease);
    const r = await kv.put('s/b', 'B', lease);
    await kv.close();
    // Move the expiry into the past as if the hour went by while nobody had the file open.
    const raw = new Database(file);
    raw.prepare('UPDATE leases SET expires_at = 0 WHERE id = ?').run(lease);
    raw.close();

    kv = await openSqliteKv(file);
    expect(await kv.get('s/a')).toBeUndefined();
    expect(await kv.revision()).toBe(r + 1);
    const w = new WatchLog();
    await kv.watch('s/', r + 1, w.handlers);
    await w.untilEvents(2);
    expect(w.batches).toEqual([
      [
        { type: 'delete', key: 's/a', value: 'A', modRevision: r + 1 },
        { type: 'delete', key: 's/b', value: 'B', modRevision: r + 1 },
      ],
    ]);
    await kv.close();
    removeDb(file);
  });

  it('replays a long history in batches while writes continue, without gaps or repeats', async () => {
    const file = nextFile();
    const kv = await openSqliteKv(file, { replayBatchRevisions: 3 });
    for (let i = 0; i < 30; i++) await kv.put(`b/${i % 5}`, String(i));
    const w = new WatchLog();
    await kv.watch('b/', 1, w.handlers);
    // Interleave writes with the replay: each await lets one replay batch run.
    for (let i = 30; i < 45; i++) {
      await kv.put(`b/${i % 5}`, String(i));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await w.untilEvents(45);
    expect(w.events.map((e) => e.value)).toEqual(Array.from({ length: 45 }, (_, i) => String(i)));
    expect(w.events.map((e) => e.modRevision)).toEqual(Array.from({ length: 45 }, (_, i) => i + 1));
    await kv.close();
    removeDb(file);
  });

  it('delivers a handler\u2019s own writes after the current batch, to every watcher in order', async () => {
    const file = nextFile();
    const kv = await openSqliteKv(file);
    const a = new WatchLog();
    const b = new WatchLog();
    await kv.watch('', 0, {
      onEvents: (evs) => {
        a.handlers.onEvents(evs);
        if (evs[0]!.key === 'first') void kv.put('second', 'from handler');
      },
    });
    await kv.watch('', 0, b.handlers);
    await kv.put('first', '1');
    await b.untilEvents(2);
    await a.untilEvents(2);
    expect(a.summary()).toEqual(b.summary());
    expect(b.summary().map((s) => s[2])).toEqual(['first', 'second']);
    await kv.close();
    removeDb(file);
  });
});

describe('sqlite store: schema migrations', () => {
  it('lists migrations as versions 1..N', () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(
      Array.from({ length: LATEST_SCHEMA_VERSION }, (_, i) => i + 1),
    );
  });

  it('upgrades a file written at version 1 and keeps its data', async () => {
    const file = nextFile();
    const raw = new Database(file);
    migrate(raw, file, 1);
    expect(raw.pragma('user_version', { simple: true })).toBe(1);
    raw.exec(`
      INSERT INTO kv (key, value, create_rev, mod_rev, version, lease) VALUES (CAST('old' AS BLOB), 'v', 1, 2, 2, 0);
      INSERT INTO log (rev, seq, type, key, value) VALUES (1, 0, 0, CAST('old' AS BLOB), 'u'), (2, 0, 0, CAST('old' AS BLOB), 'v');
      UPDATE meta SET revision = 2;
    `);
    raw.close();

    const kv = await openSqliteKv(file);
    expect(await kv.get('old')).toMatchObject({ value: 'v', createRevision: 1, modRevision: 2, version: 2 });
    const lease = await kv.grantLease(5); // the v2 table works
    expect(await kv.put('new', 'n', lease)).toBe(3);
    const w = new WatchLog();
    await kv.watch('', 1, w.handlers);
    await w.untilEvents(3);
    expect(w.events.map((e) => e.value)).toEqual(['u', 'v', 'n']);
    await kv.close();
    const check = new Database(file, { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(LATEST_SCHEMA_VERSION);
    check.close();
    removeDb(file);
  });

  it('refuses a file from a newer release', async () => {
    const file = nextFile();
    const raw = new Database(file);
    migrate(raw, file);
    raw.pragma(`user_version = ${LATEST_SCHEMA_VERSION + 1}`);
    raw.close();
    const err = await openSqliteKv(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchemaVersionError);
    expect((err as Error).message).toMatch(/newer than this build supports/);
    // and the refusal left the file alone
    const check = new Database(file, { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(LATEST_SCHEMA_VERSION + 1);
    check.close();
    removeDb(file);
  });
});

// ---------------------------------------------------------------------------------------------
// Crash safety: a child process commits transactions in a loop and is SIGKILLed at random.

/**
 * The child: each transaction i bumps `crash/counter` to i (CAS on its modRevision), puts
 * `crash/a/<i>` (a value whose length depends on i, up to ~20 kB) and `crash/b/<i>`, and deletes
 * `crash/b/<i-1>`. It prints i after the commit returned (stdout to a pipe is synchronous).
 */
const CHILD = `
const { openSqliteKv } = await import(process.env.STORE_MODULE);
const kv = await openSqliteKv(process.env.STORE_FILE, { keepRevisions: 200 });
process.stdout.write('ready\\n');
for (;;) {
  const cur = await kv.get('crash/counter');
  const i = cur === undefined ? 1 : Number(cur.value) + 1;
  const res = await kv.txn(
    [{ key: 'crash/counter', modRevision: cur?.modRevision ?? 0 }],
    [
      { type: 'put', key: 'crash/counter', value: String(i) },
      { type: 'put', key: 'crash/a/' + i, value: String(i % 10).repeat(1000 + (i % 7) * 3000) },
      { type: 'put', key: 'crash/b/' + i, value: String(i) },
      { type: 'delete', key: 'crash/b/' + (i - 1) },
    ],
  );
  if (!res.succeeded) throw new Error('lost a CAS with nobody else writing');
  process.stdout.write(i + '\\n');
}
`;

interface CrashRun {
  lastAcked: number;
}

/** Runs the child until it acknowledged `acks` more commits (+ a random delay), then SIGKILLs it. */
function runAndKill(file: string, acks: number, extraDelayMs: number): Promise<CrashRun> {
  const storeModule = fileURLToPath(new URL('../../src/controller/store/sqlite.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], {
    env: { ...process.env, STORE_MODULE: storeModule, STORE_FILE: file },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise<CrashRun>((resolve, reject) => {
    let buf = '';
    let stderr = '';
    let first: number | undefined;
    let lastAcked = 0;
    let killing = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`crash child made no progress: ${stderr}`));
    }, 20_000);
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const line of lines) {
        if (line === 'ready') continue;
        lastAcked = Number(line);
        first ??= lastAcked;
        if (!killing && lastAcked - first + 1 >= acks) {
          killing = true;
          setTimeout(() => child.kill('SIGKILL'), extraDelayMs);
        }
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') reject(new Error(`crash child exited (${code}, ${signal}): ${stderr}`));
      else resolve({ lastAcked });
    });
  });
}

/** Checks the store after a crash; returns the committed counter. */
async function checkInvariants(file: string, lastAcked: number): Promise<number> {
  const kv = await openSqliteKv(file);
  const counter = await kv.get('crash/counter');
  const c = Number(counter?.value ?? 0);
  // Every acknowledged commit survived; at most the one in flight committed beyond it.
  expect(c).toBeGreaterThanOrEqual(lastAcked);
  expect(c).toBeLessThanOrEqual(lastAcked + 1);
  const rev = await kv.revision();
  expect(counter?.modRevision).toBe(rev); // every txn writes, so the last one set the revision
  // No partial transaction: exactly the keys of txns 1..c, the last one's at one revision.
  const a = (await kv.range('crash/a/')).entries;
  expect(a.map((e) => Number(e.key.slice('crash/a/'.length))).sort((x, y) => x - y)).toEqual(
    Array.from({ length: c }, (_, i) => i + 1),
  );
  for (const e of a) {
    const i = Number(e.key.slice('crash/a/'.length));
    expect(e.value).toBe(String(i % 10).repeat(1000 + (i % 7) * 3000));
  }
  const b = (await kv.range('crash/b/')).entries;
  expect(b.map((e) => e.key)).toEqual([`crash/b/${c}`]);
  expect(a.find((e) => e.key === `crash/a/${c}`)?.modRevision).toBe(rev);
  expect(b[0]?.modRevision).toBe(rev);
  await kv.close();

  // The history agrees with the data: contiguous revisions up to meta.revision, 4 events for
  // every txn but the first (whose delete found nothing).
  const raw = new Database(file, { readonly: true });
  const meta = raw.prepare('SELECT revision, compact_rev FROM meta').get() as {
    revision: number;
    compact_rev: number;
  };
  expect(meta.revision).toBe(rev);
  const revs = raw.prepare('SELECT rev, count(*) AS n FROM log GROUP BY rev ORDER BY rev').all() as {
    rev: number;
    n: number;
  }[];
  expect(revs.map((r) => r.rev)).toEqual(
    Array.from({ length: rev - meta.compact_rev }, (_, i) => meta.compact_rev + 1 + i),
  );
  for (const r of revs) expect(r.n).toBe(r.rev === 1 ? 3 : 4);
  const bad = raw
    .prepare('SELECT count(*) AS n FROM kv WHERE mod_rev > ? OR create_rev > mod_rev')
    .get(rev) as {
    n: number;
  };
  expect(bad.n).toBe(0);
  raw.close();
  return c;
}

describe('sqlite store: crash safety', () => {
  const seed = 20260517;
  it(`survives SIGKILL at random moments without losing or tearing a txn (seed ${seed})`, async () => {
    const random = rng(seed);
    const file = nextFile();
    let committed = 0;
    for (let round = 0; round < 5; round++) {
      const acks = 5 + Math.floor(random() * 150);
      const delay = Math.floor(random() * 25);
      const { lastAcked } = await runAndKill(file, acks, delay);
      expect(lastAcked).toBeGreaterThan(committed);
      committed = await checkInvariants(file, lastAcked);
    }
    expect(committed).toBeGreaterThan(25);
    removeDb(file);
  }, 60_000);
});
