/**
 * Reading untrusted config values (plain JSON/YAML trees) with a path for every error.
 *
 * Owns `PolicyConfigError` and the small typed readers the compiler uses. Invariant: every
 * problem found in policy config is thrown as a PolicyConfigError whose `path` names the exact
 * value (`policies.policy-definitions[0].statements[1].actions.bgp-actions.set-med`), and whose
 * message says what was expected and what was found. Unknown keys are errors, never ignored.
 */

export class PolicyConfigError extends Error {
  override readonly name = 'PolicyConfigError';
  readonly code = 'POLICY_CONFIG';
  constructor(
    /** Dotted path of the offending value, e.g. `policies.defined-sets.prefix-sets[0].name`. */
    readonly path: string,
    /** What is wrong, without the path. */
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
  }
}

export type ConfigObject = Readonly<Record<string, unknown>>;

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return `"${v}"`;
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${v}`;
  return typeof v;
}

export function key(path: string, k: string): string {
  return `${path}.${k}`;
}

export function index(path: string, i: number): string {
  return `${path}[${i}]`;
}

/** An object with only the given keys (and all of `required`). */
export function readObject(
  v: unknown,
  path: string,
  allowed: readonly string[],
  required: readonly string[] = [],
): ConfigObject {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new PolicyConfigError(path, `expected an object, got ${describe(v)}`);
  const o = v as ConfigObject;
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k))
      throw new PolicyConfigError(
        key(path, k),
        `unknown key "${k}" (expected one of: ${allowed.join(', ')})`,
      );
  }
  for (const k of required) {
    if (o[k] === undefined) throw new PolicyConfigError(key(path, k), `missing required key "${k}"`);
  }
  return o;
}

/** A list; `undefined` reads as empty. */
export function readList(v: unknown, path: string): readonly unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new PolicyConfigError(path, `expected a list, got ${describe(v)}`);
  return v as readonly unknown[];
}

export function readString(v: unknown, path: string): string {
  if (typeof v !== 'string' || v === '')
    throw new PolicyConfigError(path, `expected a non-empty string, got ${describe(v)}`);
  return v;
}

/** A string or a number, as text (YAML turns `100` into a number). */
export function readText(v: unknown, path: string): string {
  if (typeof v === 'number') return String(v);
  return readString(v, path);
}

export function readInt(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw new PolicyConfigError(path, `expected an integer, got ${describe(v)}`);
  if (v < min || v > max) throw new PolicyConfigError(path, `${v} is out of range ${min}..${max}`);
  return v;
}

export function readEnum<T extends string>(v: unknown, path: string, values: readonly T[]): T {
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v))
    throw new PolicyConfigError(path, `expected one of ${values.join(', ')}, got ${describe(v)}`);
  return v as T;
}

/** Runs `fn`, turning any other error it throws into a PolicyConfigError at `path`. */
export function at<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof PolicyConfigError) throw e;
    throw new PolicyConfigError(path, e instanceof Error ? e.message : String(e));
  }
}
