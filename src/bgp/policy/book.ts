/**
 * The policy book: every named policy compiled from the `policies` config section, plus the
 * built-ins `accept-all` and `reject-all`, and the chain evaluator.
 *
 * Chain semantics (OpenConfig routing-policy): the policies named run in order; in each, the
 * statements run in order; a statement whose conditions all hold applies its actions, then
 * `accept-route` / `reject-route` ends the whole chain, `next-statement` (the default) goes on.
 * Falling off a policy continues with the next one; falling off the chain gives the caller's
 * default (RFC 8212: the caller passes `false` for eBGP without explicit policy). Actions of
 * statements that ran before an accept (or a default accept) are kept.
 *
 * Invariants: compiled once, then read-only; `evaluate` is pure (no I/O, no clock, never mutates
 * the route or its attributes) and allocates nothing when no action changes anything, beyond its
 * working state and result.
 */
import { LocalUsageError } from '../wire/errors.ts';
import { compileActions, type PolicyVerdict } from './actions.ts';
import { compileConditions, type MutableDeps } from './conditions.ts';
import {
  index,
  key,
  PolicyConfigError,
  readList,
  readObject,
  readString,
  type ConfigObject,
} from './config-reader.ts';
import { compileDefinedSets, type DefinedSets } from './defined-sets.ts';
import {
  EvalState,
  type Action,
  type Condition,
  type PolicyDependencies,
  type PolicyResult,
  type PolicyRoute,
} from './types.ts';

export const ACCEPT_ALL = 'accept-all';
export const REJECT_ALL = 'reject-all';

export interface CompiledStatement {
  readonly name: string;
  readonly conditions: readonly Condition[];
  readonly actions: readonly Action[];
  readonly verdict: PolicyVerdict;
}

export interface CompiledPolicy {
  readonly name: string;
  readonly statements: readonly CompiledStatement[];
  readonly deps: PolicyDependencies;
}

const NO_DEPS: PolicyDependencies = { prefix: false, family: false, neighbor: false, routeType: false };

function builtin(name: string, verdict: PolicyVerdict): CompiledPolicy {
  return { name, statements: [{ name: verdict, conditions: [], actions: [], verdict }], deps: NO_DEPS };
}

export class PolicyBook {
  private readonly policies: ReadonlyMap<string, CompiledPolicy>;

  /** Use `compilePolicies`. */
  constructor(policies: readonly CompiledPolicy[]) {
    const m = new Map<string, CompiledPolicy>([
      [ACCEPT_ALL, builtin(ACCEPT_ALL, 'accept')],
      [REJECT_ALL, builtin(REJECT_ALL, 'reject')],
    ]);
    for (const p of policies) m.set(p.name, p);
    this.policies = m;
  }

  has(name: string): boolean {
    return this.policies.has(name);
  }

  /** Every policy name, built-ins first, then in config order. */
  names(): string[] {
    return [...this.policies.keys()];
  }

  private get(name: string): CompiledPolicy {
    const p = this.policies.get(name);
    if (p === undefined) throw new LocalUsageError(`unknown policy "${name}"`);
    return p;
  }

  /** What beyond the attributes the chain's result may depend on. */
  dependencies(names: readonly string[]): PolicyDependencies {
    const d: MutableDeps = { prefix: false, family: false, neighbor: false, routeType: false };
    for (const n of names) {
      const pd = this.get(n).deps;
      d.prefix ||= pd.prefix;
      d.family ||= pd.family;
      d.neighbor ||= pd.neighbor;
      d.routeType ||= pd.routeType;
    }
    return d;
  }

  /**
   * False when no policy of the chain has a prefix condition: the caller may then evaluate once
   * per (attribute set, family, neighbour, route type) and reuse the result for every prefix.
   */
  dependsOnPrefix(names: readonly string[]): boolean {
    for (const n of names) if (this.get(n).deps.prefix) return true;
    return false;
  }

  /** Runs the chain on `route`; `defaultAccept` decides a route no statement accepted or rejected. */
  evaluate(names: readonly string[], route: PolicyRoute, defaultAccept: boolean): PolicyResult {
    const state = new EvalState(route);
    for (const name of names) {
      const policy = this.get(name);
      for (const st of policy.statements) {
        if (!allHold(st.conditions, state)) continue;
        for (const act of st.actions) act(state);
        if (st.verdict === 'accept') return state.accepted();
        if (st.verdict === 'reject') return state.rejected();
      }
    }
    return defaultAccept ? state.accepted() : state.rejected();
  }
}

function allHold(conditions: readonly Condition[], state: EvalState): boolean {
  for (const c of conditions) if (!c(state)) return false;
  return true;
}

function compileStatement(
  v: unknown,
  path: string,
  i: number,
  sets: DefinedSets,
  deps: MutableDeps,
): CompiledStatement {
  const o = readObject(v, path, ['name', 'conditions', 'actions']);
  const name = o['name'] === undefined ? `statement-${i + 1}` : readString(o['name'], key(path, 'name'));
  const conditions = compileConditions(o['conditions'], key(path, 'conditions'), sets, deps);
  const { verdict, actions } = compileActions(o['actions'], key(path, 'actions'), sets);
  return { name, conditions, actions, verdict };
}

/**
 * Validates and compiles the `policies` config section (the object holding `defined-sets` and
 * `policy-definitions`; `undefined`/`null` give a book with only the built-ins). Errors are
 * `PolicyConfigError`s whose path starts with `basePath`.
 */
export function compilePolicies(cfg: unknown, basePath = 'policies'): PolicyBook {
  if (cfg === undefined || cfg === null) return new PolicyBook([]);
  const o: ConfigObject = readObject(cfg, basePath, ['defined-sets', 'policy-definitions']);
  const sets = compileDefinedSets(o['defined-sets'], key(basePath, 'defined-sets'));
  const defsPath = key(basePath, 'policy-definitions');
  const policies: CompiledPolicy[] = [];
  const seen = new Set<string>();
  readList(o['policy-definitions'], defsPath).forEach((v, i) => {
    const path = index(defsPath, i);
    const d = readObject(v, path, ['name', 'statements'], ['name']);
    const name = readString(d['name'], key(path, 'name'));
    if (name === ACCEPT_ALL || name === REJECT_ALL)
      throw new PolicyConfigError(key(path, 'name'), `"${name}" is a built-in policy name`);
    if (seen.has(name)) throw new PolicyConfigError(key(path, 'name'), `duplicate policy name "${name}"`);
    seen.add(name);
    const deps: MutableDeps = { prefix: false, family: false, neighbor: false, routeType: false };
    const stPath = key(path, 'statements');
    const statements = readList(d['statements'], stPath).map((s, j) =>
      compileStatement(s, index(stPath, j), j, sets, deps),
    );
    const names = new Set<string>();
    statements.forEach((s, j) => {
      if (names.has(s.name))
        throw new PolicyConfigError(key(index(stPath, j), 'name'), `duplicate statement name "${s.name}"`);
      names.add(s.name);
    });
    policies.push({ name, statements, deps });
  });
  return new PolicyBook(policies);
}
