/**
 * Peer oscillation damping and connection collision resolution for the BGP session core.
 *
 * Owns:
 * - The IdleHoldTimer back-off of RFC 4271 §8.1.1 (DampPeerOscillations, IdleHoldTime; the RFC
 *   leaves the method open, §8 "peer oscillation damping"): after a session fails the core stays
 *   Idle for the current idle hold time, which then doubles for the next failure, up to a cap. A
 *   session that stayed Established for the stable period (2 × the cap) resets it to the initial
 *   value, so a peer that flaps once a day always gets the short delay.
 * - The RFC 4271 §6.8 collision rule: keep the connection initiated by the speaker with the higher
 *   BGP Identifier, both compared as unsigned 32-bit integers (RFC 6286 §2.3 for equal ones).
 *
 * Invariants: times are milliseconds; `current` is always within [initial, max(initial, cap)].
 */

export class IdleHoldBackoff {
  private cur: number;
  readonly stableMs: number;

  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
  ) {
    this.cur = initialMs;
    this.stableMs = 2 * Math.max(initialMs, maxMs);
  }

  /** The delay the next failure will wait (ms). */
  get current(): number {
    return this.cur;
  }

  /** Back to the initial delay (ManualStart, or a session that has been stable long enough). */
  reset(): void {
    this.cur = this.initialMs;
  }

  /**
   * A failure: returns the delay to wait now, and doubles the delay for the next failure, capped.
   * `establishedForMs` is how long the session had been Established (undefined if it never got
   * there); a session that outlived the stable period first resets the back-off.
   */
  failure(establishedForMs: number | undefined): number {
    if (establishedForMs !== undefined && establishedForMs >= this.stableMs) this.reset();
    const delay = this.cur;
    this.cur = Math.max(this.initialMs, Math.min(this.cur * 2, this.maxMs));
    return delay;
  }
}

/**
 * RFC 4271 §6.8: which of two connections between the same pair of speakers survives. The
 * connection initiated by the speaker with the higher BGP Identifier is kept. RFC 6286 §2.3: when
 * the identifiers are equal (possible between different ASes), the higher AS number wins; pass the
 * AS numbers for that case (without them, equal identifiers keep the remote-initiated connection).
 */
export function resolveCollision(
  localBgpId: number,
  remoteBgpId: number,
  localAsn?: number,
  remoteAsn?: number,
): 'keep-local-initiated' | 'keep-remote-initiated' {
  const l = localBgpId >>> 0;
  const r = remoteBgpId >>> 0;
  if (l === r && localAsn !== undefined && remoteAsn !== undefined) {
    return localAsn >>> 0 > remoteAsn >>> 0 ? 'keep-local-initiated' : 'keep-remote-initiated';
  }
  return l > r ? 'keep-local-initiated' : 'keep-remote-initiated';
}
