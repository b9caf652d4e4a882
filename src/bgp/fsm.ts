/**
 * The BGP finite state machine (RFC 4271 §8) as a sans-I/O core: one instance per TCP connection
 * (attempt) with one peer. The shell owns the socket and the real timers; it feeds inputs
 * (`handleX(now, ...)`) and drains outputs (`pollTransmit`, `pollTimeout`, `pollEvent`), the h11 /
 * quinn-proto shape of STYLE.md.
 *
 * Owns: the six states and their transitions (RFC 4271 §8.2.2, event numbers cited inline), the
 * ConnectRetry, Hold, Keepalive, DelayOpen and IdleHold timers (§8.1.3, §10), the SendHoldTimer
 * (RFC 9687), peer oscillation damping (§8.1.1 DampPeerOscillations, in fsm-damping.ts), FSM error
 * subcodes (RFC 6608), Cease subcodes (RFC 4486) with the RFC 9003 Shutdown Communication. Helpers
 * live beside it: the priority transmit queue (fsm-queue.ts), the deadline table (fsm-timers.ts),
 * the public types and config check (fsm-types.ts, re-exported here).
 *
 * Invariants:
 * - No I/O and no clock: every input carries `now` (monotonic ms); timers are a table of deadlines
 *   and `pollTimeout()` is the earliest one. `handleTimeout(now)` fires every expired timer.
 * - Bytes from the network never throw out of `handleBytes`: a NotificationError from the framer or
 *   a decoder becomes that NOTIFICATION and the session goes Idle; any other exception (a bug in a
 *   decoder) becomes Cease and a 'down' event carrying the error. A received NOTIFICATION is
 *   never answered with one (§6.4).
 * - Local misuse (sending an UPDATE outside Established, a second connection on one core) throws
 *   LocalUsageError.
 * - Going Idle clears every queued message except the NOTIFICATION that explains it, clears all
 *   timers, and emits 'state', 'disconnect' and 'down'. With AllowAutomaticStart (true after
 *   start(), false after stop() and closeForCollision()) the IdleHoldTimer restarts the session.
 * - 'update' event bodies are views into received bytes, valid until the next handleBytes call.
 *
 * Deliberate choices where RFC 4271 leaves room or where common practice differs:
 * - TcpConnectionFails (18) in Connect goes to Active with the ConnectRetryTimer running (as FRR
 *   and BIRD do) rather than Idle, so an unreachable peer is retried every ConnectRetryTime
 *   without growing the damping delay.
 * - With PassiveTcpEstablishment the core never initiates a connection, not even when the
 *   ConnectRetryTimer would expire in Active: a passive (dynamic) neighbour has no address to dial.
 * - The hold timer is restarted by every message received in Established (KEEPALIVE, UPDATE,
 *   ROUTE-REFRESH), as RFC 4271 §6.5 and implementations do.
 */
import { IdleHoldBackoff, resolveCollision } from './fsm-damping.ts';
import { Lane, TransmitQueue } from './fsm-queue.ts';
import { TimerTable, type TimerName } from './fsm-timers.ts';
import {
  validateFsmConfig,
  type FsmConfig,
  type FsmEvent,
  type FsmState,
  type FsmStats,
} from './fsm-types.ts';
import {
  CeaseSubcode,
  MAX_EXTENDED_MESSAGE_LENGTH,
  MAX_MESSAGE_LENGTH,
  MessageType,
  NotificationCode,
  OpenErrorSubcode,
  RouteRefreshSubtype,
  afiSafiName,
  notificationCodeName,
  notificationSubcodeName,
} from './wire/constants.ts';
import { LocalUsageError, NotificationError } from './wire/errors.ts';
import { Framer } from './wire/header.ts';
import { buildOpen, negotiate, type Negotiated } from './wire/negotiate.ts';
import {
  decodeNotification,
  encodeKeepalive,
  encodeNotification,
  encodeShutdownNotification,
} from './wire/notification.ts';
import { decodeOpen, encodeOpen } from './wire/open.ts';
import { decodeRouteRefresh, encodeRouteRefresh } from './wire/route-refresh.ts';
import type { NotificationMessage, OpenMessage } from './wire/types.ts';
import { splitUpdate } from './wire/update.ts';

export { resolveCollision };
export { FSM_DEFAULTS, FSM_QUEUE_HIGH_WATER, validateFsmConfig } from './fsm-types.ts';
export type { FsmConfig, FsmEvent, FsmState, FsmStats } from './fsm-types.ts';

/** RFC 4271 §8.2.2: "a large value ... A HoldTimer value of 4 minutes is suggested" (OpenSent). */
const LARGE_HOLD_MS = 240_000;
/** RFC 9687 §4: the SendHoldTime defaults to the greater of 8 minutes and 2 × the hold time. */
const MIN_SEND_HOLD_S = 480;

interface DownOptions {
  reason: string;
  /** Queue this NOTIFICATION (if a connection exists) before going Idle. */
  notify?: { code: number; subcode: number; message: Uint8Array };
  received?: NotificationMessage;
  error?: Error;
  /** Perform peer oscillation damping (double the idle hold for next time). */
  damp: boolean;
  /** Schedule an automatic restart (if AllowAutomaticStart). */
  restart: boolean;
  abort?: boolean;
}

export class BgpFsm {
  readonly stats: FsmStats = {
    messagesIn: 0,
    messagesOut: 0,
    updatesIn: 0,
    updatesOut: 0,
    notificationsIn: 0,
    notificationsOut: 0,
    establishedTransitions: 0,
    flaps: 0,
  };

  private st: FsmState = 'idle';
  private neg: Negotiated | undefined;
  private framer = new Framer();
  private readonly tx = new TransmitQueue();
  private events: FsmEvent[] = [];
  private eventHead = 0;
  private readonly timers = new TimerTable();
  /** The shell holds a connected socket for this core. */
  private connected = false;
  /** RFC 4271 §8.1.1 AllowAutomaticStart: set by start(), cleared by stop(). */
  private autoStart = false;
  private readonly backoff: IdleHoldBackoff;
  /** The last `now` seen (pollTransmit restarts the keepalive timer without a clock of its own). */
  private lastNow = 0;
  /** Last backlog the shell reported, to detect write progress (RFC 9687). */
  private lastPending = 0;

  constructor(private readonly cfg: FsmConfig) {
    validateFsmConfig(cfg);
    this.backoff = new IdleHoldBackoff(cfg.idleHoldTime * 1000, cfg.maxIdleHoldTime * 1000);
  }

  get state(): FsmState {
    return this.st;
  }

  /** The session parameters, from the accepted peer OPEN until the session goes down. */
  get negotiated(): Negotiated | undefined {
    return this.neg;
  }

  /** Bytes queued in the core and not yet taken by pollTransmit. */
  get queuedBytes(): number {
    return this.tx.queuedBytes;
  }

  get wantsWrite(): boolean {
    return !this.tx.empty;
  }

  /** Seconds the core will stay Idle after the next failure (the damping back-off). */
  get idleHoldTime(): number {
    return this.backoff.current / 1000;
  }

  // ------------------------------------------------------------------------------------ inputs

  /** ManualStart (event 1) or ManualStart_with_PassiveTcpEstablishment (event 4). Ignored unless Idle. */
  start(now: number): void {
    this.lastNow = now;
    if (this.st !== 'idle') return; // §8.2.2: events 1, 4 are ignored in every other state
    this.autoStart = true;
    this.backoff.reset();
    this.timers.stop('idleHold');
    this.begin(now);
  }

  /**
   * ManualStop (event 2): Cease (default subcode 2 Administrative Shutdown, with an RFC 9003
   * Shutdown Communication when `message` is given) if a connection is up, then Idle with no
   * automatic restart until start().
   */
  stop(now: number, cease?: { subcode: number; message?: string }): void {
    this.lastNow = now;
    this.autoStart = false;
    this.timers.stop('idleHold');
    if (this.st === 'idle') return;
    const subcode = cease?.subcode ?? CeaseSubcode.ADMINISTRATIVE_SHUTDOWN;
    const message =
      cease?.message !== undefined && (subcode === 2 || subcode === 4)
        ? encodeShutdownNotification(subcode, cease.message)
        : encodeNotification(NotificationCode.CEASE, subcode);
    this.down(now, {
      reason: cease?.message === undefined ? 'manual stop' : `manual stop: ${cease.message}`,
      notify: { code: NotificationCode.CEASE, subcode, message },
      damp: false,
      restart: false,
    });
  }

  /** Tcp_CR_Acked (16) / TcpConnectionConfirmed (17): the shell has a connection for this core. */
  handleConnected(now: number): void {
    this.lastNow = now;
    switch (this.st) {
      case 'idle':
        this.emit({ type: 'disconnect' }); // §8.2.2 Idle: connections are refused
        return;
      case 'connect':
      case 'active':
        if (this.connected) throw new LocalUsageError('BgpFsm: a second connection on one core');
        this.connected = true;
        this.timers.stop('connectRetry');
        this.framer = new Framer();
        if (this.cfg.delayOpen !== undefined && this.cfg.delayOpen > 0) {
          this.timers.set('delayOpen', now + this.cfg.delayOpen * 1000); // events 16/17 with DelayOpen
        } else {
          this.sendOpen(now);
        }
        return;
      default:
        throw new LocalUsageError(`BgpFsm: connection reported in ${this.st}; use one core per connection`);
    }
  }

  /** TcpConnectionFails (18) for an outbound attempt. */
  handleConnectFailed(now: number): void {
    this.tcpFails(now, 'connection failed');
  }

  /** TcpConnectionFails (18): the peer closed the connection or the socket failed. */
  handleTransportClosed(now: number): void {
    this.tcpFails(now, 'connection closed by peer');
  }

  /**
   * The shell's unsent backlog (bytes taken from pollTransmit that the socket has not written).
   * RFC 9687: while it stays above zero without progress for SendHoldTime, the session ends.
   */
  handleWritable(now: number, pendingBytes: number): void {
    this.lastNow = now;
    const live = this.st === 'opensent' || this.st === 'openconfirm' || this.st === 'established';
    if (pendingBytes <= 0 || !live) {
      this.timers.stop('sendHold');
    } else if (!this.timers.running('sendHold') || pendingBytes < this.lastPending) {
      this.timers.set('sendHold', now + this.sendHoldMs()); // started, or restarted on progress
    }
    this.lastPending = live ? Math.max(0, pendingBytes) : 0;
  }

  handleBytes(now: number, chunk: Uint8Array): void {
    this.lastNow = now;
    if (!this.connected || this.st === 'idle') return; // stale bytes of a closed connection
    try {
      this.framer.push(chunk);
      while (this.connected) {
        const m = this.framer.next();
        if (m === undefined) break;
        this.stats.messagesIn++;
        this.dispatch(now, m.type, m.body);
      }
    } catch (e) {
      this.fail(now, e);
    }
  }

  /** Fires every timer whose deadline is ≤ now, earliest first. */
  handleTimeout(now: number): void {
    this.lastNow = now;
    for (let t = this.timers.takeExpired(now); t !== undefined; t = this.timers.takeExpired(now)) {
      this.fire(now, t);
    }
  }

  /** Queue a complete UPDATE message (Established only). */
  sendUpdate(msg: Uint8Array): void {
    if (this.st !== 'established') throw new LocalUsageError(`sendUpdate in ${this.st}`);
    if (msg.length > this.maxMessageLength() || msg[18] !== MessageType.UPDATE) {
      throw new LocalUsageError(`sendUpdate: not an UPDATE of at most ${this.maxMessageLength()} bytes`);
    }
    this.tx.push(Lane.UPDATE, msg);
  }

  /**
   * Queue a ROUTE-REFRESH (RFC 2918 §4: only when the peer advertised the capability; BoRR/EoRR
   * need RFC 7313 and travel in the UPDATE lane to stay ordered with the routes they bracket).
   */
  sendRouteRefresh(afi: number, safi: number, subtype: number = RouteRefreshSubtype.NORMAL): void {
    const neg = this.neg;
    if (this.st !== 'established' || neg === undefined)
      throw new LocalUsageError(`sendRouteRefresh in ${this.st}`);
    if (!neg.routeRefresh) throw new LocalUsageError('peer did not advertise Route Refresh (RFC 2918 §4)');
    if (subtype !== RouteRefreshSubtype.NORMAL && !neg.enhancedRouteRefresh) {
      throw new LocalUsageError('BoRR/EoRR need Enhanced Route Refresh (RFC 7313 §4)');
    }
    const msg = encodeRouteRefresh(afi, safi, subtype);
    this.tx.push(subtype === RouteRefreshSubtype.NORMAL ? Lane.ROUTE_REFRESH : Lane.UPDATE, msg);
  }

  /**
   * A local decision to end the session with Cease/subcode (e.g. max-prefix 1, BFD down 10):
   * AutomaticStop (event 8), with damping and automatic restart. Use stop() to stay down.
   */
  cease(now: number, subcode: number, data?: Uint8Array): void {
    this.lastNow = now;
    if (this.st === 'idle') return;
    this.down(now, {
      reason: `cease: ${notificationSubcodeName(NotificationCode.CEASE, subcode)}`,
      notify: this.notification(NotificationCode.CEASE, subcode, data),
      damp: true,
      restart: true,
    });
  }

  /** The speaker found an error that ends the session (e.g. an UPDATE error requiring reset). */
  sendNotification(now: number, err: NotificationError): void {
    this.lastNow = now;
    if (this.st === 'idle') return;
    this.down(now, {
      reason: err.message,
      notify: this.notification(err.errorCode, err.subcode, err.data),
      error: err,
      damp: true,
      restart: true,
    });
  }

  /**
   * This connection lost the RFC 4271 §6.8 collision: Cease/7 (OpenCollisionDump, event 23), Idle,
   * without damping and without automatic restart (the shell keeps the other connection's core).
   */
  closeForCollision(now: number): void {
    this.lastNow = now;
    this.autoStart = false;
    if (this.st === 'idle') return;
    this.down(now, {
      reason: 'connection collision',
      notify: this.notification(NotificationCode.CEASE, CeaseSubcode.CONNECTION_COLLISION_RESOLUTION),
      damp: false,
      restart: false,
    });
  }

  // ----------------------------------------------------------------------------------- outputs

  /** The next message to write: NOTIFICATION, OPEN, KEEPALIVE, ROUTE-REFRESH, then UPDATE. */
  pollTransmit(): Uint8Array | undefined {
    const m = this.tx.pop();
    if (m === undefined) return undefined;
    this.stats.messagesOut++;
    const type = m[18];
    if (type === MessageType.UPDATE) {
      this.stats.updatesOut++;
      // §8.2.2 Established: each UPDATE sent restarts the KeepaliveTimer (unless hold time is 0)
      if (this.st === 'established' && this.neg !== undefined && this.neg.keepaliveTime > 0) {
        this.timers.set('keepalive', this.lastNow + this.neg.keepaliveTime * 1000);
      }
    } else if (type === MessageType.NOTIFICATION) {
      this.stats.notificationsOut++;
    }
    return m;
  }

  /** The earliest deadline (ms) at which the shell must call handleTimeout. */
  pollTimeout(): number | undefined {
    return this.timers.earliest();
  }

  pollEvent(): FsmEvent | undefined {
    if (this.eventHead >= this.events.length) return undefined;
    const e = this.events[this.eventHead++];
    if (this.eventHead === this.events.length) {
      this.events = [];
      this.eventHead = 0;
    }
    return e;
  }

  // ------------------------------------------------------------------------------- transitions

  private emit(e: FsmEvent): void {
    this.events.push(e);
  }

  private to(next: FsmState): void {
    const from = this.st;
    if (from === next) return;
    this.st = next;
    this.emit({ type: 'state', from, to: next });
  }

  /** Events 1/3/6 (Connect) or 4/5/7 (Active, passive). */
  private begin(now: number): void {
    this.connected = false;
    this.neg = undefined;
    this.lastPending = 0;
    if (this.cfg.passive) {
      this.to('active');
    } else {
      this.timers.set('connectRetry', now + this.cfg.connectRetryTime * 1000);
      this.to('connect');
      this.emit({ type: 'connect' });
    }
  }

  private sendOpen(now: number): void {
    this.tx.push(Lane.OPEN, encodeOpen(buildOpen(this.cfg)));
    this.timers.set('hold', now + LARGE_HOLD_MS); // §8.2.2: "a large value", 4 minutes
    this.to('opensent');
  }

  private fire(now: number, t: TimerName): void {
    switch (t) {
      case 'connectRetry': // event 9
        if (this.st === 'connect') {
          this.emit({ type: 'disconnect' }); // drop the pending attempt, try again
          this.timers.set('connectRetry', now + this.cfg.connectRetryTime * 1000);
          this.emit({ type: 'connect' });
        } else if (this.st === 'active' && !this.cfg.passive) {
          this.timers.set('connectRetry', now + this.cfg.connectRetryTime * 1000);
          this.to('connect');
          this.emit({ type: 'connect' });
        }
        return;
      case 'delayOpen': // event 12
        if ((this.st === 'connect' || this.st === 'active') && this.connected) this.sendOpen(now);
        return;
      case 'hold': // event 10
        this.down(now, {
          reason: 'hold timer expired',
          notify: this.notification(NotificationCode.HOLD_TIMER_EXPIRED, 0),
          damp: true,
          restart: true,
        });
        return;
      case 'keepalive': // event 11
        if (this.st === 'openconfirm' || this.st === 'established') {
          this.queueKeepalive();
          const k = this.neg?.keepaliveTime ?? 0;
          if (k > 0) this.timers.set('keepalive', now + k * 1000);
        }
        return;
      case 'idleHold': // event 13 (IdleHoldTimer_Expires): AutomaticStart with damping, 6 or 7
        if (this.st === 'idle' && this.autoStart) this.begin(now);
        return;
      case 'sendHold': // RFC 9687 §4 event 29, SendHoldTimer_Expires
        this.down(now, {
          reason: 'send hold timer expired',
          notify: this.notification(NotificationCode.SEND_HOLD_TIMER_EXPIRED, 0),
          damp: true,
          restart: true,
          abort: true,
        });
        return;
    }
  }

  /** Event 18 in each state. */
  private tcpFails(now: number, reason: string): void {
    this.lastNow = now;
    switch (this.st) {
      case 'idle':
        return;
      case 'connect':
      case 'active':
        // Connect/Active + 18 with DelayOpen: back to Active, ConnectRetryTimer restarted. We do
        // the same without DelayOpen (see the module note).
        this.connected = false;
        this.timers.stop('delayOpen');
        this.timers.set(
          'connectRetry',
          this.cfg.passive ? undefined : now + this.cfg.connectRetryTime * 1000,
        );
        this.to('active');
        return;
      case 'opensent': {
        // OpenSent + 18: close, restart ConnectRetryTimer, continue to listen, Active
        this.connected = false;
        this.neg = undefined;
        this.tx.clear();
        this.clearTimers();
        if (!this.cfg.passive) this.timers.set('connectRetry', now + this.cfg.connectRetryTime * 1000);
        this.to('active');
        this.emit({ type: 'disconnect' });
        this.stats.lastError = reason;
        this.stats.lastDownAt = now;
        this.emit({ type: 'down', reason });
        return;
      }
      case 'openconfirm':
      case 'established':
        this.connected = false; // nothing can be sent any more
        this.down(now, { reason, damp: true, restart: true });
        return;
    }
  }

  /** Any state → Idle, with the NOTIFICATION that explains it. */
  private down(now: number, o: DownOptions): void {
    const from = this.st;
    if (from === 'idle') return;
    const wasEstablished = from === 'established';
    const establishedFor =
      this.stats.establishedAt === undefined ? undefined : now - this.stats.establishedAt;
    this.tx.clear();
    this.clearTimers();
    let sent: { code: number; subcode: number } | undefined;
    if (o.notify !== undefined && this.connected) {
      this.tx.push(Lane.NOTIFICATION, o.notify.message);
      sent = { code: o.notify.code, subcode: o.notify.subcode };
    }
    this.connected = false;
    this.neg = undefined;
    this.lastPending = 0;
    this.stats.lastDownAt = now;
    this.stats.establishedAt = undefined;
    if (wasEstablished) this.stats.flaps++;
    this.stats.lastError = describe(o.reason, sent);

    let delay: number;
    if (o.damp) delay = this.backoff.failure(wasEstablished ? establishedFor : undefined);
    else delay = this.backoff.current;
    if (o.restart && this.autoStart) this.timers.set('idleHold', now + delay);

    this.to('idle');
    this.emit(o.abort === true ? { type: 'disconnect', abort: true } : { type: 'disconnect' });
    this.emit({
      type: 'down',
      reason: o.reason,
      ...(sent === undefined ? {} : { sent }),
      ...(o.received === undefined ? {} : { received: o.received }),
      ...(o.error === undefined ? {} : { error: o.error }),
    });
  }

  private clearTimers(): void {
    this.timers.stopAllExcept('idleHold');
  }

  private fail(now: number, e: unknown): void {
    if (e instanceof NotificationError) {
      this.down(now, {
        reason: e.message,
        notify: this.notification(e.errorCode, e.subcode, e.data),
        error: e,
        damp: true,
        restart: true,
      });
      return;
    }
    // Not a wire error: a bug in a decoder. Never crash on peer bytes; end the session cleanly.
    const error = e instanceof Error ? e : new Error(String(e));
    this.down(now, {
      reason: `internal error: ${error.message}`,
      notify: this.notification(NotificationCode.CEASE, 0),
      error,
      damp: true,
      restart: true,
    });
  }

  private fsmError(subcodeByState: number, what: string): never {
    // RFC 6608 §4: 1 unexpected in OpenSent, 2 in OpenConfirm, 3 in Established, 0 otherwise
    throw new NotificationError(
      NotificationCode.FSM_ERROR,
      subcodeByState,
      `unexpected ${what} in ${this.st}`,
    );
  }

  private fsmSubcode(): number {
    return this.st === 'opensent' ? 1 : this.st === 'openconfirm' ? 2 : this.st === 'established' ? 3 : 0;
  }

  private notification(
    code: number,
    subcode: number,
    data?: Uint8Array,
  ): { code: number; subcode: number; message: Uint8Array } {
    return { code, subcode, message: encodeNotification(code, subcode, data, this.maxMessageLength()) };
  }

  private maxMessageLength(): number {
    return this.neg?.ctx.extendedMessage === true ? MAX_EXTENDED_MESSAGE_LENGTH : MAX_MESSAGE_LENGTH;
  }

  private sendHoldMs(): number {
    const hold = this.neg?.holdTime ?? this.cfg.holdTime;
    return (this.cfg.sendHoldTime ?? Math.max(MIN_SEND_HOLD_S, 2 * hold)) * 1000;
  }

  private queueKeepalive(): void {
    if (this.tx.sizeOf(Lane.KEEPALIVE) === 0) this.tx.push(Lane.KEEPALIVE, encodeKeepalive());
  }

  private restartHold(now: number): void {
    const h = this.neg?.holdTime ?? 0;
    this.timers.set('hold', h > 0 ? now + h * 1000 : undefined);
  }

  // ---------------------------------------------------------------------------- received messages

  private dispatch(now: number, type: number, body: Uint8Array): void {
    switch (type) {
      case MessageType.OPEN:
        return this.onOpen(now, body);
      case MessageType.UPDATE:
        return this.onUpdate(now, body);
      case MessageType.NOTIFICATION:
        return this.onNotification(now, body);
      case MessageType.KEEPALIVE:
        return this.onKeepalive(now);
      case MessageType.ROUTE_REFRESH:
        return this.onRouteRefresh(now, body);
      default: // the framer already rejects these (RFC 4271 §6.1 Bad Message Type)
        throw new NotificationError(
          NotificationCode.MESSAGE_HEADER_ERROR,
          3,
          `bad type ${type}`,
          Uint8Array.of(type),
        );
    }
  }

  private onOpen(now: number, body: Uint8Array): void {
    switch (this.st) {
      case 'connect':
      case 'active': {
        // Event 20 (BGPOpen with DelayOpenTimer running): send our OPEN and a KEEPALIVE at once
        if (!this.timers.running('delayOpen')) this.fsmError(0, 'OPEN');
        const open = decodeOpen(body); // event 22 on error
        this.timers.stop('delayOpen');
        this.sendOpen(now);
        this.acceptOpen(now, open);
        return;
      }
      case 'opensent':
        this.acceptOpen(now, decodeOpen(body)); // event 19, or 22 on error
        return;
      default: // OpenConfirm without a collision (the shell resolves those), or Established
        this.fsmError(this.fsmSubcode(), 'OPEN');
    }
  }

  private acceptOpen(now: number, open: OpenMessage): void {
    const neg = negotiate(this.cfg, open, {
      ...(this.cfg.peerAsn === undefined ? {} : { peerAsn: this.cfg.peerAsn }),
      ...(this.cfg.ebgp === undefined ? {} : { ebgp: this.cfg.ebgp }),
      localBgpId: this.cfg.routerId,
    });
    this.neg = neg;
    if (neg.ctx.extendedMessage) this.framer.setMaxLength(MAX_EXTENDED_MESSAGE_LENGTH); // RFC 8654 §4
    this.timers.stop('delayOpen');
    this.queueKeepalive();
    this.restartHold(now);
    this.timers.set('keepalive', neg.keepaliveTime > 0 ? now + neg.keepaliveTime * 1000 : undefined);
    if (this.timers.running('sendHold')) this.timers.set('sendHold', now + this.sendHoldMs());
    this.to('openconfirm');
    this.emit({ type: 'open', open });
  }

  private onKeepalive(now: number): void {
    switch (this.st) {
      case 'openconfirm': {
        // Event 26 in OpenConfirm: Established
        const neg = this.neg;
        if (neg === undefined) throw new LocalUsageError('OpenConfirm without negotiated parameters');
        this.restartHold(now);
        this.stats.establishedTransitions++;
        this.stats.establishedAt = now;
        this.to('established');
        this.emit({ type: 'established', negotiated: neg });
        return;
      }
      case 'established':
        this.restartHold(now); // event 26
        return;
      default:
        this.fsmError(this.fsmSubcode(), 'KEEPALIVE');
    }
  }

  private onUpdate(now: number, body: Uint8Array): void {
    if (this.st !== 'established') this.fsmError(this.fsmSubcode(), 'UPDATE');
    const update = splitUpdate(body); // UpdateError 'session-reset' (event 28) → NOTIFICATION 3/x
    this.restartHold(now); // event 27
    this.stats.updatesIn++;
    this.emit({ type: 'update', update });
  }

  private onRouteRefresh(now: number, body: Uint8Array): void {
    if (this.st !== 'established') this.fsmError(this.fsmSubcode(), 'ROUTE-REFRESH');
    const msg = decodeRouteRefresh(body); // 7/1 on a bad length (RFC 7313 §5)
    this.restartHold(now);
    const family = afiSafiName(msg.afi, msg.safi);
    // RFC 2918 §4: a family not negotiated is ignored; RFC 7313 §5: an unknown subtype too
    if (family === undefined || this.neg?.families.has(family) !== true) return;
    if (msg.subtype > RouteRefreshSubtype.EORR) return;
    this.emit({ type: 'route-refresh', msg });
  }

  private onNotification(now: number, body: Uint8Array): void {
    this.stats.notificationsIn++;
    let msg: NotificationMessage;
    try {
      msg = decodeNotification(body);
    } catch {
      // §6.4: never answer a NOTIFICATION; keep what can be read
      msg = { type: 'notification', code: body[0] ?? 0, subcode: body[1] ?? 0, data: new Uint8Array(0) };
    }
    const received: NotificationMessage = { ...msg, data: msg.data.slice() }; // outlives the chunk
    // Event 24 (NotifMsgVerErr) in OpenSent/OpenConfirm: Idle without damping; event 25 otherwise
    const versionError =
      received.code === NotificationCode.OPEN_MESSAGE_ERROR &&
      received.subcode === OpenErrorSubcode.UNSUPPORTED_VERSION_NUMBER &&
      (this.st === 'opensent' || this.st === 'openconfirm');
    this.connected = false; // the peer closes after a NOTIFICATION; we send nothing more
    this.down(now, {
      reason: `notification received: ${notificationCodeName(received.code)}/${notificationSubcodeName(received.code, received.subcode)}${
        received.shutdownMessage === undefined ? '' : ` "${received.shutdownMessage}"`
      }`,
      received,
      damp: !versionError,
      restart: true,
    });
  }
}

/** `stats.lastError` text: the reason, plus the NOTIFICATION we sent. */
function describe(reason: string, sent: { code: number; subcode: number } | undefined): string {
  if (sent === undefined) return reason;
  const names = `${notificationCodeName(sent.code)}/${notificationSubcodeName(sent.code, sent.subcode)}`;
  return `${reason} (sent NOTIFICATION ${sent.code}/${sent.subcode} ${names})`;
}
