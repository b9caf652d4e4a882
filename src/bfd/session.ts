/**
 * One BFD session (RFC 5880 asynchronous mode) as a sans-I/O core on a virtual clock. The shell
 * (transport.ts) owns the socket and the real timer; it feeds `handlePacket(now, pkt, raw)`,
 * `handleTimeout(now)`, `adminDown`/`adminUp`/`setParams`, and drains `pollTransmit`,
 * `pollTimeout`, `pollEvent` (STYLE.md, the h11 / quinn-proto shape).
 *
 * Owns: the state variables of §6.8.1, the state machine of §6.2/§6.8.6, timer negotiation
 * (§6.8.2, §6.8.3 with the 1 s floor while not Up), Poll/Final sequences (§6.5), the detection
 * time (§6.8.4, asynchronous mode), jitter (§6.8.7), a peer's RequiredMinRx of 0 (periodic
 * transmission stops), the peer's Demand mode (§6.6: we stop periodic packets while both are Up;
 * we never ask for it), AdminDown (§6.8.16), authentication (§6.7) via packet.ts `verifyAuth`.
 *
 * Invariants:
 * - No I/O and no clock: `now` is monotonic milliseconds; packet fields are microseconds.
 * - `handlePacket` never throws on peer input: a packet that §6.8.6 discards is counted in
 *   `stats.discarded` (with the reason in `lastDiscard`) and changes nothing.
 * - A packet with P and F both set is never sent (§6.8.7); a received Poll is answered at once
 *   with a Final that has no P (§6.5).
 * - An increased TX interval takes effect only after the Poll Sequence ends; a reduced
 *   RequiredMinRx is used for the detection time only after it ends (§6.8.3).
 * - Extra packets are sent immediately on every state change and when a Poll Sequence starts
 *   (common practice, FRR and BIRD do it); periodic packets follow the jittered schedule.
 * - bfd.LocalDiag keeps the reason of the last Down through Init and is cleared on Up (as FRR does).
 * - Not implemented: the Echo function (we advertise Required Min Echo RX 0), initiating Demand
 *   mode, multipoint.
 */
import {
  BfdAuthType,
  BfdDiag,
  BfdLocalUsageError,
  encodeBfd,
  verifyAuth,
  type BfdAuthKey,
  type BfdAuthRxState,
  type BfdPacket,
  type BfdState,
} from './packet.ts';

export { BfdLocalUsageError };

export interface BfdSessionConfig {
  /** bfd.LocalDiscr: non-zero, unique among this system's sessions. */
  localDiscr: number;
  desiredMinTxUs: number;
  requiredMinRxUs: number;
  detectMult: number;
  /** §6.1 passive role: send nothing until a packet from the peer arrives. */
  passive?: boolean;
  /** We never initiate Demand mode (§6.6). */
  demand?: false;
  auth?: BfdAuthKey;
  /** Additional accepted keys (key rollover); all of `auth.type`. */
  extraKeys?: BfdAuthKey[];
  /** RFC 5883: informational here (the shell picks port and TTL handling). */
  multihop?: boolean;
  /** Random source in [0, 1) for jitter (default Math.random). */
  random?: () => number;
}

export type BfdSessionEvent = { type: 'state'; from: BfdState; to: BfdState; diag: number };

export interface BfdNegotiated {
  /** Interval between our periodic packets before jitter, µs (0: not transmitting). */
  txIntervalUs: number;
  /** Time without packets after which the session goes Down, µs. */
  detectTimeUs: number;
  remoteMinRxUs: number;
  remoteDesiredMinTxUs: number;
  remoteDetectMult: number;
}

export interface BfdSessionStats {
  sent: number;
  received: number;
  discarded: number;
  authFailures: number;
}

/** §6.8.3: DesiredMinTxInterval while not Up. */
const SLOW_TX_US = 1_000_000;

export class BfdSession {
  readonly stats: BfdSessionStats = { sent: 0, received: 0, discarded: 0, authFailures: 0 };
  lastDiscard: string | undefined;

  // §6.8.1 state variables
  private st: BfdState = 'Down';
  private remoteState: BfdState = 'Down';
  private remoteDiscrV = 0;
  private localDiag = 0;
  private remoteMinRxUs = 1; // §6.8.1: initial value 1
  private remoteDesiredMinTxUs = 0;
  private remoteDetectMult = 0;
  private remoteDemand = false;
  private readonly authRx: BfdAuthRxState = { seqKnown: false, rcvSeq: 0 };
  private xmitSeq: number;

  /** Configured values (what we want once Up). */
  private cfgTxUs: number;
  private cfgRxUs: number;
  private detectMultV: number;
  /** Values advertised in our packets (bfd.DesiredMinTxInterval, bfd.RequiredMinRxInterval). */
  private advTxUs: number;
  private advRxUs: number;
  /** Values in force for our own timing (differ from adv during a Poll Sequence, §6.8.3). */
  private useTxUs: number;
  private useRxUs: number;
  private polling = false;

  private txAt: number | undefined;
  private detectAt: number | undefined;
  private authResetAt: number | undefined;
  private readonly queue: Uint8Array[] = [];
  private readonly events: BfdSessionEvent[] = [];
  private readonly keyring = new Map<number, BfdAuthKey>();
  private readonly random: () => number;

  constructor(private readonly cfg: BfdSessionConfig) {
    if (!Number.isInteger(cfg.localDiscr) || cfg.localDiscr <= 0 || cfg.localDiscr > 0xffffffff) {
      throw new BfdLocalUsageError(`BFD: local discriminator ${cfg.localDiscr} must be 1..2^32-1`);
    }
    validateParams(cfg);
    this.cfgTxUs = cfg.desiredMinTxUs;
    this.cfgRxUs = cfg.requiredMinRxUs;
    this.detectMultV = cfg.detectMult;
    this.advTxUs = Math.max(this.cfgTxUs, SLOW_TX_US);
    this.advRxUs = this.cfgRxUs;
    this.useTxUs = this.advTxUs;
    this.useRxUs = this.advRxUs;
    this.random = cfg.random ?? Math.random;
    // §6.8.1 bfd.XmitAuthSeq: initialised to a random 32-bit value
    this.xmitSeq = Math.floor(this.random() * 0x100000000) >>> 0;
    for (const k of [cfg.auth, ...(cfg.extraKeys ?? [])]) {
      if (k === undefined) continue;
      if (cfg.auth !== undefined && k.type !== cfg.auth.type)
        throw new BfdLocalUsageError('BFD: mixed auth types');
      this.keyring.set(k.keyId, k);
    }
  }

  // ------------------------------------------------------------------------------- accessors

  get state(): BfdState {
    return this.st;
  }
  get localDiscr(): number {
    return this.cfg.localDiscr;
  }
  get remoteDiscr(): number {
    return this.remoteDiscrV;
  }
  get remoteSessionState(): BfdState {
    return this.remoteState;
  }
  get diag(): number {
    return this.localDiag;
  }
  get pollActive(): boolean {
    return this.polling;
  }
  get negotiated(): BfdNegotiated {
    return {
      txIntervalUs: this.periodicIntervalUs() ?? 0,
      detectTimeUs: this.detectTimeUs(),
      remoteMinRxUs: this.remoteMinRxUs,
      remoteDesiredMinTxUs: this.remoteDesiredMinTxUs,
      remoteDetectMult: this.remoteDetectMult,
    };
  }

  // ---------------------------------------------------------------------------------- inputs

  /** Starts transmitting (call once after construction unless passive). */
  start(now: number): void {
    if (this.st === 'AdminDown' || this.mayTransmit() === false) return;
    this.sendNow(false);
    this.scheduleTx(now);
  }

  /** §6.8.6 reception of a decoded packet (`raw`: the received bytes, for the digest). */
  handlePacket(now: number, pkt: BfdPacket, raw: Uint8Array): void {
    // §6.8.6: your discriminator non-zero must be ours (the demultiplexer should have checked)
    if (pkt.yourDiscr !== 0 && pkt.yourDiscr !== this.cfg.localDiscr)
      return this.discard('your discriminator');
    // §6.8.6: A bit vs bfd.AuthType, then the authentication itself (§6.7)
    const auth = verifyAuth(pkt, raw, this.keyring, this.authRx);
    if (!auth.ok) {
      this.stats.authFailures++;
      return this.discard(`authentication: ${auth.reason}`);
    }
    this.stats.received++;
    if (this.keyring.size > 0) this.authResetAt = undefined;
    this.remoteDiscrV = pkt.myDiscr;
    this.remoteState = pkt.state;
    this.remoteDemand = pkt.demand;
    this.remoteMinRxUs = pkt.requiredMinRxUs;
    this.remoteDesiredMinTxUs = pkt.desiredMinTxUs;
    this.remoteDetectMult = pkt.detectMult;
    // §6.8.6: a Final terminates the Poll Sequence; the new values now apply (§6.8.3)
    if (pkt.final && this.polling) {
      this.polling = false;
      this.useTxUs = this.advTxUs;
      this.useRxUs = this.advRxUs;
    }
    if (this.st === 'AdminDown') return; // §6.8.6: discard when AdminDown
    if (pkt.state === 'AdminDown') {
      if (this.st !== 'Down') this.transition(now, 'Down', BfdDiag.NEIGHBOR_SIGNALED_SESSION_DOWN);
    } else if (this.st === 'Down') {
      if (pkt.state === 'Down') this.transition(now, 'Init', this.localDiag);
      else if (pkt.state === 'Init') this.transition(now, 'Up', BfdDiag.NO_DIAGNOSTIC);
    } else if (this.st === 'Init') {
      if (pkt.state === 'Init' || pkt.state === 'Up') this.transition(now, 'Up', BfdDiag.NO_DIAGNOSTIC);
    } else if (pkt.state === 'Down') {
      this.transition(now, 'Down', BfdDiag.NEIGHBOR_SIGNALED_SESSION_DOWN);
    }
    // §6.8.6: a Poll is answered with a Final as soon as practicable, without P (§6.5)
    if (pkt.poll) this.sendNow(true);
    // §6.8.4: the detection timer restarts with every accepted packet (Init and Up only)
    this.restartDetect(now);
    // §6.8.2/§6.8.7: periodic transmission follows the peer's RequiredMinRx and Demand bit; a
    // shorter negotiated interval is picked up at once rather than after the pending packet.
    const iv = this.periodicIntervalUs();
    if (iv === undefined) this.txAt = undefined;
    else if (this.mayTransmit() && (this.txAt === undefined || this.txAt > now + iv / 1000)) {
      this.txAt = now + this.jittered();
    }
  }

  /** Fires every expired timer. */
  handleTimeout(now: number): void {
    if (this.detectAt !== undefined && now >= this.detectAt) {
      this.detectAt = undefined;
      // §6.8.4: detection time expired; §6.8.1 bfd.RemoteDiscr is reset
      this.remoteDiscrV = 0;
      this.remoteState = 'Down';
      this.remoteMinRxUs = 1;
      this.remoteDemand = false;
      if (this.st === 'Init' || this.st === 'Up') {
        this.transition(now, 'Down', BfdDiag.CONTROL_DETECTION_TIME_EXPIRED);
      }
      // §6.7.1: reset bfd.AuthSeqKnown after two detection times without packets
      if (this.keyring.size > 0) this.authResetAt = now + this.detectTimeUs() / 1000;
    }
    if (this.authResetAt !== undefined && now >= this.authResetAt) {
      this.authResetAt = undefined;
      this.authRx.seqKnown = false;
    }
    if (this.txAt !== undefined && now >= this.txAt) {
      if (this.mayTransmit() && this.periodicIntervalUs() !== undefined) {
        this.sendNow(false);
        this.txAt = now + this.jittered();
      } else {
        this.txAt = undefined;
      }
    }
  }

  /** §6.8.16: AdminDown with a diagnostic (default 7 Administratively Down). */
  adminDown(now: number, diag: number = BfdDiag.ADMINISTRATIVELY_DOWN): void {
    if (this.st === 'AdminDown') return;
    this.transition(now, 'AdminDown', diag);
    this.detectAt = undefined;
    this.scheduleTx(now);
  }

  /** Leaves AdminDown for Down (diag cleared). */
  adminUp(now: number): void {
    if (this.st !== 'AdminDown') return;
    this.transition(now, 'Down', BfdDiag.NO_DIAGNOSTIC);
    this.scheduleTx(now);
  }

  /**
   * Changes the configured intervals / multiplier. While Up a change of the advertised
   * intervals starts a Poll Sequence (§6.8.3); an increased TX interval waits for the Final.
   */
  setParams(
    now: number,
    p: { desiredMinTxUs?: number; requiredMinRxUs?: number; detectMult?: number },
  ): void {
    const next = {
      desiredMinTxUs: p.desiredMinTxUs ?? this.cfgTxUs,
      requiredMinRxUs: p.requiredMinRxUs ?? this.cfgRxUs,
      detectMult: p.detectMult ?? this.detectMultV,
    };
    validateParams(next);
    this.cfgTxUs = next.desiredMinTxUs;
    this.cfgRxUs = next.requiredMinRxUs;
    this.detectMultV = next.detectMult;
    this.applyAdvertised(now);
  }

  // --------------------------------------------------------------------------------- outputs

  pollTransmit(): Uint8Array | undefined {
    return this.queue.shift();
  }

  pollTimeout(): number | undefined {
    let t: number | undefined;
    for (const d of [this.txAt, this.detectAt, this.authResetAt]) {
      if (d !== undefined && (t === undefined || d < t)) t = d;
    }
    return t;
  }

  pollEvent(): BfdSessionEvent | undefined {
    return this.events.shift();
  }

  // -------------------------------------------------------------------------------- internals

  private discard(reason: string): void {
    this.stats.discarded++;
    this.lastDiscard = reason;
  }

  private transition(now: number, to: BfdState, diag: number): void {
    const from = this.st;
    this.st = to;
    this.localDiag = diag;
    if (from !== to) this.events.push({ type: 'state', from, to, diag });
    if (to === 'Up') this.authResetAt = undefined;
    if (to !== 'Init' && to !== 'Up') this.detectAt = undefined;
    this.applyAdvertised(now);
    if (from !== to && this.mayTransmit() && !this.polling) this.sendNow(false);
  }

  /** Recomputes bfd.DesiredMinTxInterval / RequiredMinRxInterval and starts a Poll if needed. */
  private applyAdvertised(now: number): void {
    const tx = this.st === 'Up' ? this.cfgTxUs : Math.max(this.cfgTxUs, SLOW_TX_US); // §6.8.3
    const rx = this.cfgRxUs;
    const changed = tx !== this.advTxUs || rx !== this.advRxUs;
    const oldTx = this.advTxUs;
    this.advTxUs = tx;
    this.advRxUs = rx;
    if (this.st === 'Up' && (changed || this.polling)) {
      // §6.8.3: an increased TX interval applies only after the Poll Sequence; a decrease at once.
      if (tx < this.useTxUs || tx < oldTx) this.useTxUs = tx;
      // §6.8.3: a reduced RequiredMinRx is used for detection only after the Poll Sequence.
      if (rx > this.useRxUs) this.useRxUs = rx;
      if (changed) {
        this.polling = true;
        if (this.mayTransmit()) this.sendNow(false);
        this.rescheduleTxIfSooner(now);
      }
    } else {
      this.useTxUs = tx;
      this.useRxUs = rx;
      if (this.st !== 'Up') this.polling = false;
    }
    if (this.detectAt !== undefined) this.restartDetect(now);
  }

  private rescheduleTxIfSooner(now: number): void {
    if (this.periodicIntervalUs() === undefined) return;
    const next = now + this.jittered();
    if (this.txAt === undefined || next < this.txAt) this.txAt = next;
  }

  private restartDetect(now: number): void {
    // §6.8.4 applies in Init and Up; with our RequiredMinRx 0 the peer sends no periodic packets
    // (§6.8.3), so there is nothing to detect with.
    const live = (this.st === 'Init' || this.st === 'Up') && this.useRxUs !== 0;
    this.detectAt = live ? now + this.detectTimeUs() / 1000 : undefined;
  }

  /** §6.8.4 asynchronous mode: remote DetectMult × max(RequiredMinRx, remote DesiredMinTx). */
  private detectTimeUs(): number {
    return this.remoteDetectMult * Math.max(this.useRxUs, this.remoteDesiredMinTxUs);
  }

  /** §6.1 passive role: nothing is sent before the peer's discriminator is known. */
  private mayTransmit(): boolean {
    return !(this.cfg.passive === true && this.remoteDiscrV === 0);
  }

  /** The periodic interval (§6.8.2, §6.8.7) or undefined when periodic transmission stops. */
  private periodicIntervalUs(): number | undefined {
    if (this.remoteMinRxUs === 0) return undefined; // §6.8.7: peer wants no periodic packets
    // §6.8.7: the peer's Demand mode is active when both are Up (and no Poll of ours runs)
    if (this.remoteDemand && this.st === 'Up' && this.remoteState === 'Up' && !this.polling) return undefined;
    return Math.max(this.useTxUs, this.remoteMinRxUs);
  }

  /** §6.8.7 jitter: 75–100 % of the interval, 75–90 % when bfd.DetectMult is 1; in ms. */
  private jittered(): number {
    const us = this.periodicIntervalUs() ?? SLOW_TX_US;
    const span = this.detectMultV === 1 ? 0.15 : 0.25;
    return (us * (0.75 + span * this.random())) / 1000;
  }

  private scheduleTx(now: number): void {
    this.txAt = this.periodicIntervalUs() === undefined ? undefined : now + this.jittered();
  }

  private sendNow(final: boolean): void {
    const pkt: BfdPacket = {
      diag: this.localDiag,
      state: this.st,
      poll: this.polling && !final, // §6.8.7: never P and F together
      final,
      cpi: false,
      demand: false, // we never request Demand mode
      multipoint: false,
      detectMult: this.detectMultV,
      myDiscr: this.cfg.localDiscr,
      yourDiscr: this.remoteDiscrV,
      desiredMinTxUs: this.advTxUs,
      requiredMinRxUs: this.advRxUs,
      requiredMinEchoRxUs: 0, // no Echo function
    };
    const key = this.cfg.auth;
    if (key !== undefined && key.type !== BfdAuthType.SIMPLE_PASSWORD) {
      // §6.7.3/§6.7.4: meticulous types increment for every packet; we do it for keyed too
      this.xmitSeq = (this.xmitSeq + 1) >>> 0;
    }
    this.queue.push(encodeBfd(pkt, key === undefined ? undefined : { ...key, seq: this.xmitSeq }));
    this.stats.sent++;
  }
}

function validateParams(p: { desiredMinTxUs: number; requiredMinRxUs: number; detectMult: number }): void {
  const ok = (v: number): boolean => Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
  if (!ok(p.desiredMinTxUs) || p.desiredMinTxUs === 0) {
    throw new BfdLocalUsageError('BFD: desiredMinTxUs must be 1..2^32-1 µs'); // §6.8.1: MUST be non-zero
  }
  if (!ok(p.requiredMinRxUs)) throw new BfdLocalUsageError('BFD: requiredMinRxUs must be 0..2^32-1 µs');
  if (!Number.isInteger(p.detectMult) || p.detectMult < 1 || p.detectMult > 255) {
    throw new BfdLocalUsageError('BFD: detectMult must be 1..255');
  }
}
