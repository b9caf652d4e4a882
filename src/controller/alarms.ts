/**
 * Alarms (draft §7.1): what the reconciler finds wrong between the intent and what agents and PEs
 * hold — a customer attachment in a VRF other than its tenant's, drift it repaired, residue after a
 * termination, PE-CE sessions down, agents behind or refusing their configuration, PEs that do not
 * answer. Stored under `KEYS.alarm(id)` so every controller replica serves them and they outlive a
 * leader change.
 *
 * One document per condition: the id is derived from the kind, the scope (`pe:ID`, `binding:ID`,
 * `vce:ID`) and a detail, so the same condition found again bumps `count` (when it is raised anew
 * after a clear, or when it is an event such as a repair that happened again) instead of adding a
 * document. Clearing sets `clearedAt`; an operator acknowledges an alarm (`ackedAt`, `ackedBy`),
 * which does not clear it. Writes are compare-and-swap, so an acknowledgement on one replica and
 * the leader's reconciler never overwrite each other.
 */
import { sha } from './core.ts';
import { KEYS, type Alarm, type AlarmKind, type AlarmSeverity } from './model.ts';
import type { Repo } from './repo.ts';

export interface AlarmInput {
  readonly kind: AlarmKind;
  readonly severity: AlarmSeverity;
  readonly scope: string;
  /** Distinguishes conditions of one kind in one scope (a VRF, a neighbour address...). */
  readonly detail?: string;
  readonly tenant?: string;
  readonly binding?: string;
  readonly vce?: string;
  readonly pe?: string;
  readonly message: string;
}

export interface AlarmFilter {
  /** true: only alarms not cleared; false: only cleared ones; undefined: all. */
  readonly active?: boolean;
  readonly tenant?: string;
  readonly kind?: string;
}

/** The stable id of a condition: readable kind, hashed scope and detail (safe in a URL). */
export function alarmId(kind: AlarmKind, scope: string, detail = ''): string {
  return `${kind}.${sha(`${kind}|${scope}|${detail}`).slice(0, 20)}`;
}

export class Alarms {
  constructor(private readonly repo: Repo) {}

  /**
   * Raises a condition. `event`: the condition is an occurrence (a repair done), so finding it
   * again while it is active counts again; otherwise an active alarm only has its message
   * refreshed. Returns the alarm and whether this counted as a new occurrence.
   */
  async raise(input: AlarmInput, opts: { event?: boolean } = {}): Promise<{ alarm: Alarm; raised: boolean }> {
    const id = alarmId(input.kind, input.scope, input.detail);
    let raised = false;
    const now = new Date().toISOString();
    const alarm = await this.repo.update<Alarm>(KEYS.alarm(id), (cur) => {
      raised = false;
      const base = {
        id,
        kind: input.kind,
        severity: input.severity,
        scope: input.scope,
        ...(input.tenant === undefined ? {} : { tenant: input.tenant }),
        ...(input.binding === undefined ? {} : { binding: input.binding }),
        ...(input.vce === undefined ? {} : { vce: input.vce }),
        ...(input.pe === undefined ? {} : { pe: input.pe }),
        message: input.message,
      };
      if (cur === undefined) {
        raised = true;
        return { ...base, raisedAt: now, lastRaisedAt: now, count: 1 };
      }
      if (cur.clearedAt === undefined && opts.event !== true) {
        // still active: nothing new unless what it says changed
        if (cur.message === input.message && cur.severity === input.severity) return undefined;
        return { ...cur, ...base };
      }
      raised = true;
      const reopened: Alarm = {
        ...cur,
        ...base,
        lastRaisedAt: now,
        count: cur.count + 1,
      };
      // a new occurrence after a clear wants a new acknowledgement
      if (cur.clearedAt === undefined) return reopened;
      const { clearedAt: _c, ackedAt: _a, ackedBy: _b, ...rest } = reopened;
      return rest;
    });
    return { alarm: alarm!, raised };
  }

  /** Clears an active alarm; false when it is absent or already cleared. */
  async clear(id: string): Promise<boolean> {
    let changed = false;
    await this.repo.update<Alarm>(KEYS.alarm(id), (cur) => {
      changed = false;
      if (cur === undefined || cur.clearedAt !== undefined) return undefined;
      changed = true;
      return { ...cur, clearedAt: new Date().toISOString() };
    });
    return changed;
  }

  async get(id: string): Promise<Alarm | undefined> {
    return (await this.repo.get<Alarm>(KEYS.alarm(id)))?.value;
  }

  /** Alarms matching the filter, the most recently raised first. */
  async list(filter: AlarmFilter = {}): Promise<Alarm[]> {
    return (await this.repo.all<Alarm>(KEYS.alarms))
      .map((d) => d.value)
      .filter(
        (a) =>
          (filter.active === undefined || (a.clearedAt === undefined) === filter.active) &&
          (filter.tenant === undefined || a.tenant === filter.tenant) &&
          (filter.kind === undefined || a.kind === filter.kind),
      )
      .sort((x, y) => y.lastRaisedAt.localeCompare(x.lastRaisedAt) || x.id.localeCompare(y.id));
  }

  /** Acknowledges an alarm (an operator has seen it); undefined when there is no such alarm. */
  async ack(id: string, by: string): Promise<Alarm | undefined> {
    return this.repo.update<Alarm>(KEYS.alarm(id), (cur) =>
      cur === undefined ? undefined : { ...cur, ackedAt: new Date().toISOString(), ackedBy: by },
    );
  }
}
