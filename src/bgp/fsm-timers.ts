/**
 * The BGP session core's timers as a small table of deadlines (STYLE.md, "State machines"): no
 * real timers, only absolute times in milliseconds that the shell learns from `earliest()`.
 *
 * Timers (RFC 4271 §8.1.3 and §10, RFC 9687): ConnectRetryTimer, DelayOpenTimer, HoldTimer,
 * KeepaliveTimer, IdleHoldTimer, SendHoldTimer.
 *
 * Invariants: a timer is either stopped (undefined) or has one deadline; `takeExpired(now)` stops
 * and returns the earliest expired timer, ties broken by TIMER_ORDER (the timers that end a session
 * first), so firing one timer can safely stop or restart the others.
 */

export type TimerName = 'connectRetry' | 'delayOpen' | 'hold' | 'keepalive' | 'idleHold' | 'sendHold';

const TIMER_ORDER: readonly TimerName[] = [
  'sendHold',
  'hold',
  'delayOpen',
  'keepalive',
  'connectRetry',
  'idleHold',
];

export class TimerTable {
  private readonly at: Record<TimerName, number | undefined> = {
    connectRetry: undefined,
    delayOpen: undefined,
    hold: undefined,
    keepalive: undefined,
    idleHold: undefined,
    sendHold: undefined,
  };

  get(t: TimerName): number | undefined {
    return this.at[t];
  }

  running(t: TimerName): boolean {
    return this.at[t] !== undefined;
  }

  /** Start (or restart) `t` to expire at `deadline`; undefined stops it. */
  set(t: TimerName, deadline: number | undefined): void {
    this.at[t] = deadline;
  }

  stop(t: TimerName): void {
    this.at[t] = undefined;
  }

  /** Stop every timer but the listed ones. */
  stopAllExcept(...keep: TimerName[]): void {
    for (const t of TIMER_ORDER) if (!keep.includes(t)) this.at[t] = undefined;
  }

  /** The earliest deadline, if any timer runs. */
  earliest(): number | undefined {
    let min: number | undefined;
    for (const t of TIMER_ORDER) {
      const d = this.at[t];
      if (d !== undefined && (min === undefined || d < min)) min = d;
    }
    return min;
  }

  /** Stop and return the earliest timer whose deadline is ≤ now. */
  takeExpired(now: number): TimerName | undefined {
    let next: TimerName | undefined;
    let min = Infinity;
    for (const t of TIMER_ORDER) {
      const d = this.at[t];
      if (d !== undefined && d <= now && d < min) {
        next = t;
        min = d;
      }
    }
    if (next !== undefined) this.at[next] = undefined;
    return next;
  }
}
