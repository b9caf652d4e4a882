/**
 * Schema migrations of the SQLite store, in order. The file's schema version is SQLite's
 * `PRAGMA user_version` (0 for a new file).
 *
 * Invariants:
 * - Versions are 1, 2, 3, ... without gaps; a migration is never edited once released: a
 *   change is a new entry at the end.
 * - Each migration runs in its own `BEGIN IMMEDIATE` transaction together with the
 *   `user_version` bump, so a crash mid-upgrade leaves the file at the previous version.
 * - A file with a version newer than `LATEST_SCHEMA_VERSION` was written by a newer release:
 *   it is refused, never opened (an older binary could silently drop data it does not know).
 */
import type { Database } from 'better-sqlite3';
import { StoreError } from './types.ts';

export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'keys, history log, revision counters',
    sql: `
      CREATE TABLE meta (
        id          INTEGER PRIMARY KEY CHECK (id = 0),
        revision    INTEGER NOT NULL,
        compact_rev INTEGER NOT NULL
      );
      INSERT INTO meta (id, revision, compact_rev) VALUES (0, 0, 0);
      -- Keys are BLOBs (UTF-8 bytes) so ordering and prefix bounds are bytewise, as in etcd.
      CREATE TABLE kv (
        key        BLOB PRIMARY KEY,
        value      TEXT NOT NULL,
        create_rev INTEGER NOT NULL,
        mod_rev    INTEGER NOT NULL,
        version    INTEGER NOT NULL,
        lease      INTEGER NOT NULL DEFAULT 0
      );
      -- One row per event; type 0 = put, 1 = delete (value = the value before deletion).
      CREATE TABLE log (
        rev   INTEGER NOT NULL,
        seq   INTEGER NOT NULL,
        type  INTEGER NOT NULL,
        key   BLOB NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (rev, seq)
      );
    `,
  },
  {
    version: 2,
    description: 'leases',
    sql: `
      CREATE TABLE leases (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        ttl        INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      );
      CREATE INDEX leases_expires_at ON leases (expires_at);
      CREATE INDEX kv_lease ON kv (lease) WHERE lease != 0;
    `,
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS.length;

export class SchemaVersionError extends StoreError {
  readonly fileVersion: number;
  constructor(file: string, fileVersion: number) {
    super(
      `${file}: schema version ${fileVersion} is newer than this build supports ` +
        `(${LATEST_SCHEMA_VERSION}); it was written by a newer release, refusing to open it`,
    );
    this.fileVersion = fileVersion;
  }
}

export function schemaVersion(db: Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Brings `db` to schema version `target` (default: the latest), one transaction per step.
 * Returns the version found before upgrading.
 */
export function migrate(db: Database, file: string, target = LATEST_SCHEMA_VERSION): number {
  const found = schemaVersion(db);
  if (found > LATEST_SCHEMA_VERSION) throw new SchemaVersionError(file, found);
  for (const m of MIGRATIONS) {
    if (m.version <= found || m.version > target) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
  }
  return found;
}
