/**
 * Typed JSON documents over the store, with optimistic concurrency: every read returns the
 * document's `modRevision` (the API's ETag); writes are compare-and-swap on it, so two writers
 * never overwrite each other silently, and several keys change together or not at all.
 */
import type { Compare, Kv, Op } from './store/types.ts';

export class ConflictError extends Error {
  override readonly name = 'ConflictError';
  readonly code = 'CONFLICT';
}

export interface Doc<T> {
  readonly value: T;
  readonly rev: number;
}

export class Repo {
  constructor(readonly kv: Kv) {}

  async get<T>(key: string): Promise<Doc<T> | undefined> {
    const e = await this.kv.get(key);
    return e === undefined ? undefined : { value: JSON.parse(e.value) as T, rev: e.modRevision };
  }

  async list<T>(
    prefix: string,
    limit?: number,
    after?: string,
  ): Promise<{ items: Doc<T>[]; more: boolean; last?: string }> {
    const r = await this.kv.range(prefix, { limit, after });
    const items = r.entries.map((e) => ({ value: JSON.parse(e.value) as T, rev: e.modRevision }));
    return { items, more: r.more, last: r.entries.at(-1)?.key };
  }

  /** Every document under a prefix (paged reads, for internal scans). */
  async all<T>(prefix: string): Promise<Doc<T>[]> {
    const out: Doc<T>[] = [];
    let after: string | undefined;
    for (;;) {
      const r = await this.kv.range(prefix, { limit: 1000, after });
      for (const e of r.entries) out.push({ value: JSON.parse(e.value) as T, rev: e.modRevision });
      if (!r.more || r.entries.length === 0) return out;
      after = r.entries.at(-1)!.key;
    }
  }

  /**
   * Writes atomically: every `expect` (key -> modRevision, 0 = absent) must hold, then every op
   * applies. Throws ConflictError when a precondition fails; returns the new revision.
   */
  async commit(expect: Readonly<Record<string, number>>, ops: readonly Op[]): Promise<number> {
    const compares: Compare[] = Object.entries(expect).map(([key, modRevision]) => ({ key, modRevision }));
    const r = await this.kv.txn(compares, ops);
    if (!r.succeeded) throw new ConflictError(`changed concurrently: ${Object.keys(expect).join(', ')}`);
    return r.revision;
  }

  /** Reads, transforms and writes one document with CAS, retrying on conflicts. */
  async update<T>(key: string, f: (cur: T | undefined) => T | undefined, tries = 20): Promise<T | undefined> {
    for (let i = 0; i < tries; i++) {
      const cur = await this.get<T>(key);
      const next = f(cur?.value);
      if (next === undefined) return cur?.value;
      try {
        await this.commit({ [key]: cur?.rev ?? 0 }, [put(key, next)]);
        return next;
      } catch (e) {
        if (!(e instanceof ConflictError)) throw e;
      }
    }
    throw new ConflictError(`${key}: too many concurrent updates`);
  }
}

export function put(key: string, value: unknown, lease?: number): Op {
  return { type: 'put', key, value: JSON.stringify(value), lease };
}

export function del(key: string): Op {
  return { type: 'delete', key };
}
