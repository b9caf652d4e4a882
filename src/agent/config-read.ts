/**
 * Shared readers of the agent configuration and the collector that lets one validation pass report
 * every problem: `soft` runs one independent check and records its ConfigError instead of
 * stopping; `each` maps a list that way. Outside `collect` both simply throw.
 */
import { parseAddress } from '../lib/ip.ts';
import { PolicyConfigError } from '../bgp/policy/index.ts';
import { at, readString } from '../bgp/policy/config-reader.ts';

export function readBool(v: unknown, path: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean')
    throw new PolicyConfigError(path, `expected true or false, got ${JSON.stringify(v)}`);
  return v;
}

export function readIPv4(v: unknown, path: string): Uint8Array {
  const s = readString(v, path);
  const b = at(path, () => parseAddress(s));
  if (b.length !== 4) throw new PolicyConfigError(path, `expected an IPv4 address, got "${s}"`);
  return b;
}

export function readAddressText(v: unknown, path: string): string {
  const s = readString(v, path);
  at(path, () => parseAddress(s));
  return s;
}

export function readHostPort(v: unknown, path: string): { host: string; port: number } {
  const s = readString(v, path);
  const m = /^(\[[^\]]+\]|[^:]+|[0-9a-fA-F:]+):(\d+)$/.exec(s);
  if (m === null) throw new PolicyConfigError(path, `expected HOST:PORT, got "${s}"`);
  const port = Number(m[2]);
  if (port > 65535) throw new PolicyConfigError(path, `port ${port} out of range 0..65535`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/** Problems found so far while collecting (undefined outside buildAgentConfig). */
export let collecting: PolicyConfigError[] | undefined;

/** Runs one independent check; while collecting, a failure is recorded and `undefined` returned. */
export function soft<T>(fn: () => T): T | undefined {
  if (collecting === undefined) return fn();
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof PolicyConfigError)) throw e;
    collecting.push(e);
    return undefined;
  }
}

/** Maps a list, checking each item independently (failed items are left out). */
export function each<T>(list: readonly unknown[], fn: (v: unknown, i: number) => T): T[] {
  const out: T[] = [];
  list.forEach((v, i) => {
    const r = soft(() => fn(v, i));
    if (r !== undefined) out.push(r);
  });
  return out;
}

export function aggregate(errs: readonly PolicyConfigError[]): PolicyConfigError {
  if (errs.length === 1) return errs[0]!;
  const first = errs[0]!;
  const e = new PolicyConfigError(
    first.path,
    `${first.reason}; and ${errs.length - 1} more: ${errs
      .slice(1)
      .map((x) => x.message)
      .join('; ')}`,
  );
  Object.defineProperty(e, 'all', { value: errs, enumerable: false });
  return e;
}

/** Runs `fn` with the collector on and throws one ConfigError listing everything it recorded. */
export function collect<T>(fn: () => T): T {
  const outer = collecting;
  const errs: PolicyConfigError[] = [];
  collecting = errs;
  let out: T | undefined;
  try {
    out = fn();
  } catch (e) {
    // A problem outside the independent parts, or a follow-on of one already recorded.
    if (e instanceof PolicyConfigError) errs.push(e);
    else if (errs.length === 0) throw e;
  } finally {
    collecting = outer;
  }
  if (errs.length > 0 || out === undefined) throw aggregate(errs);
  return out;
}
