/**
 * The public shapes of the BGP session core (src/bgp/fsm.ts): states, configuration, output events
 * and counters, plus the configuration check. Re-exported by fsm.ts; import from there.
 *
 * Times in FsmConfig are seconds (as in RFC 4271 §10 and configuration files); every `now` and
 * deadline the core exchanges with its shell is in milliseconds.
 */
import { LocalUsageError } from './wire/errors.ts';
import { buildOpen, type LocalSessionOptions, type Negotiated } from './wire/negotiate.ts';
import type { NotificationMessage, OpenMessage, RouteRefreshMessage, UpdateMessage } from './wire/types.ts';

export type FsmState = 'idle' | 'connect' | 'active' | 'opensent' | 'openconfirm' | 'established';

export interface FsmConfig extends LocalSessionOptions {
  /** Accepted peer AS numbers; undefined accepts any (dynamic neighbours). */
  readonly peerAsn?: number | readonly number[];
  /** Overrides the eBGP/iBGP decision (default: peer AS ≠ local AS). */
  readonly ebgp?: boolean;
  /** RFC 4271 §8.1.1 PassiveTcpEstablishment: wait for the peer to connect. */
  readonly passive: boolean;
  /** Seconds (RFC 4271 §10 suggests 120; lab configurations use about 5). Must be > 0. */
  readonly connectRetryTime: number;
  /** Initial IdleHoldTime in seconds (DampPeerOscillations back-off starts here). */
  readonly idleHoldTime: number;
  /** Cap of the idle hold back-off, seconds. */
  readonly maxIdleHoldTime: number;
  /** RFC 9687 SendHoldTime in seconds; default max(8 min, 2 × hold time). */
  readonly sendHoldTime?: number;
  /** RFC 4271 §8.1.1 DelayOpen / DelayOpenTime in seconds; undefined or 0 disables it. */
  readonly delayOpen?: number;
}

/** Sensible values for the timer fields of FsmConfig. */
export const FSM_DEFAULTS = {
  passive: false,
  connectRetryTime: 120, // RFC 4271 §10
  idleHoldTime: 1,
  maxIdleHoldTime: 120,
} as const;

/** The speaker should stop building UPDATEs while `queuedBytes` is above this. */
export const FSM_QUEUE_HIGH_WATER = 256 * 1024;

export type FsmEvent =
  | { type: 'state'; from: FsmState; to: FsmState }
  /** Shell: open a TCP connection now. */
  | { type: 'connect' }
  /**
   * Shell: close the TCP connection (or abandon the attempt). Flush what pollTransmit still
   * returns first, unless `abort` is set (send hold timer expired: the peer is not reading, so
   * close even if the NOTIFICATION cannot be written, RFC 9687 §4).
   */
  | { type: 'disconnect'; abort?: boolean }
  | { type: 'established'; negotiated: Negotiated }
  /** The peer's OPEN, accepted (the shell needs its BGP Identifier for collision detection, §6.8). */
  | { type: 'open'; open: OpenMessage }
  /** Body views are valid until the next handleBytes call. */
  | { type: 'update'; update: UpdateMessage }
  | { type: 'route-refresh'; msg: RouteRefreshMessage }
  | {
      type: 'down';
      reason: string;
      sent?: { code: number; subcode: number };
      received?: NotificationMessage;
      error?: Error;
    };

export interface FsmStats {
  messagesIn: number;
  messagesOut: number;
  updatesIn: number;
  updatesOut: number;
  notificationsIn: number;
  notificationsOut: number;
  establishedTransitions: number;
  /** Established sessions that went down. */
  flaps: number;
  lastError?: string;
  lastDownAt?: number;
  /** When the current session reached Established (undefined when not Established). */
  establishedAt?: number;
}

/** Throws LocalUsageError for a configuration the core cannot run with. */
export function validateFsmConfig(cfg: FsmConfig): void {
  buildOpen(cfg); // AS, router id, hold time (RFC 4271 §4.2)
  const check = (name: string, v: number | undefined, min: number, strict: boolean): void => {
    if (v === undefined) return;
    if (!Number.isFinite(v) || (strict ? v <= min : v < min)) {
      throw new LocalUsageError(`${name} ${v} must be ${strict ? '>' : '≥'} ${min}`);
    }
  };
  check('connectRetryTime', cfg.connectRetryTime, 0, true);
  check('idleHoldTime', cfg.idleHoldTime, 0, false);
  check('maxIdleHoldTime', cfg.maxIdleHoldTime, 0, false);
  check('delayOpen', cfg.delayOpen, 0, false);
  check('sendHoldTime', cfg.sendHoldTime, 0, true);
}
