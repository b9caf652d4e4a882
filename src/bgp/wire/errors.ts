/**
 * Errors that map onto the wire. Decoders throw only these classes (plus nothing else: a property
 * test feeds random bytes to prove it).
 *
 * - NotificationError: the peer sent something that ends the session with this NOTIFICATION.
 * - UpdateError: a malformed UPDATE; carries the RFC 7606 action. The most severe action wins.
 * - LocalUsageError: our own misuse (a bug or bad local input), never caused by peer bytes.
 */

export class BgpError extends Error {
  override readonly name: string = 'BgpError';
  readonly code: string = 'BGP_ERROR';
}

export class NotificationError extends BgpError {
  override readonly name: string = 'NotificationError';
  override readonly code: string = 'BGP_NOTIFICATION';
  constructor(
    readonly errorCode: number,
    readonly subcode: number,
    message: string,
    readonly data: Uint8Array = new Uint8Array(0),
  ) {
    super(message);
  }
}

/** RFC 7606 §2 approaches, least to most severe. */
export type UpdateErrorAction =
  'attribute-discard' | 'treat-as-withdraw' | 'afi-safi-disable' | 'session-reset';

const SEVERITY: Record<UpdateErrorAction, number> = {
  'attribute-discard': 1,
  'treat-as-withdraw': 2,
  'afi-safi-disable': 3,
  'session-reset': 4,
};

export function moreSevere(a: UpdateErrorAction | undefined, b: UpdateErrorAction): UpdateErrorAction {
  return a === undefined || SEVERITY[b] > SEVERITY[a] ? b : a;
}

export class UpdateError extends NotificationError {
  override readonly name: string = 'UpdateError';
  override readonly code: string = 'BGP_UPDATE_ERROR';
  constructor(
    readonly action: UpdateErrorAction,
    subcode: number,
    message: string,
    data: Uint8Array = new Uint8Array(0),
    /** Attribute type code concerned, when there is one. */
    readonly attrType?: number,
  ) {
    super(3, subcode, message, data);
  }
}

export class LocalUsageError extends BgpError {
  override readonly name: string = 'LocalUsageError';
  override readonly code: string = 'BGP_LOCAL_USAGE';
}
