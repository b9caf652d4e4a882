/**
 * BFD Control packet codec (RFC 5880 §4.1) with the authentication section (§4.2–§4.4) and the
 * authentication checks of §6.7.2–§6.7.4.
 *
 * Owns: the 24-byte mandatory section, the optional auth section (Simple Password, Keyed MD5,
 * Meticulous Keyed MD5, Keyed SHA1, Meticulous Keyed SHA1), the digest computation on encode, and
 * `verifyAuth` with the sequence-number windows and constant-time digest comparison.
 *
 * Invariants:
 * - `decodeBfd` throws only `BfdPacketError` (a property test feeds it random bytes). It performs
 *   the §6.8.6 reception checks that need nothing but the packet; the session-dependent ones
 *   (discriminator lookup, A bit vs configured auth) belong to the session and the demultiplexer.
 * - Decoding never copies: `auth.password` / `auth.digest` are views into the input.
 * - `encodeBfd` never mutates its input; it computes the length first and writes once. Without a
 *   key it writes `pkt.auth` verbatim (so decode→encode round-trips); with a key it builds the
 *   auth section and computes the digest (§6.7.3, §6.7.4).
 * - Units: intervals are microseconds, as on the wire.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { Reader, ShortReadError, Writer } from '../lib/bytes.ts';

export const BFD_VERSION = 1; // RFC 5880 §4.1
export const BFD_HEADER_LENGTH = 24; // RFC 5880 §4.1 mandatory section
export const BFD_SINGLE_HOP_PORT = 3784; // RFC 5881 §4
export const BFD_MULTIHOP_PORT = 4784; // RFC 5883 §3

/** RFC 5880 §4.1 Sta field. */
export const BfdStateCode = { AdminDown: 0, Down: 1, Init: 2, Up: 3 } as const;
export type BfdState = keyof typeof BfdStateCode;
const STATE_BY_CODE: readonly BfdState[] = ['AdminDown', 'Down', 'Init', 'Up'];
export function bfdStateName(code: number): BfdState {
  return STATE_BY_CODE[code & 3] ?? 'AdminDown';
}

/** RFC 5880 §4.1 Diagnostic codes. */
export const BfdDiag = {
  NO_DIAGNOSTIC: 0,
  CONTROL_DETECTION_TIME_EXPIRED: 1,
  ECHO_FUNCTION_FAILED: 2,
  NEIGHBOR_SIGNALED_SESSION_DOWN: 3,
  FORWARDING_PLANE_RESET: 4,
  PATH_DOWN: 5,
  CONCATENATED_PATH_DOWN: 6,
  ADMINISTRATIVELY_DOWN: 7,
  REVERSE_CONCATENATED_PATH_DOWN: 8,
} as const;
export type BfdDiagCode = (typeof BfdDiag)[keyof typeof BfdDiag];
const DIAG_NAMES: Record<number, string> = {
  0: 'No Diagnostic',
  1: 'Control Detection Time Expired',
  2: 'Echo Function Failed',
  3: 'Neighbor Signaled Session Down',
  4: 'Forwarding Plane Reset',
  5: 'Path Down',
  6: 'Concatenated Path Down',
  7: 'Administratively Down',
  8: 'Reverse Concatenated Path Down',
};
export function bfdDiagName(code: number): string {
  return DIAG_NAMES[code] ?? `Reserved (${code})`;
}

/** RFC 5880 §4.1 Auth Type. */
export const BfdAuthType = {
  SIMPLE_PASSWORD: 1, // §4.2
  KEYED_MD5: 2, // §4.3
  METICULOUS_KEYED_MD5: 3, // §4.3
  KEYED_SHA1: 4, // §4.4
  METICULOUS_KEYED_SHA1: 5, // §4.4
} as const;
export type BfdAuthTypeCode = (typeof BfdAuthType)[keyof typeof BfdAuthType];
const AUTH_NAMES: Record<number, string> = {
  1: 'Simple Password',
  2: 'Keyed MD5',
  3: 'Meticulous Keyed MD5',
  4: 'Keyed SHA1',
  5: 'Meticulous Keyed SHA1',
};
export function bfdAuthTypeName(code: number): string {
  return AUTH_NAMES[code] ?? `Reserved (${code})`;
}

/** Auth Len of the digest types (§4.3: 24, §4.4: 28) and their digest sizes. */
const DIGEST_AUTH_LEN: Record<number, number> = { 2: 24, 3: 24, 4: 28, 5: 28 };
const DIGEST_LEN: Record<number, number> = { 2: 16, 3: 16, 4: 20, 5: 20 };

export type BfdAuthSection =
  | { type: 1; keyId: number; password: Uint8Array }
  | { type: 2 | 3 | 4 | 5; keyId: number; seq: number; digest: Uint8Array };

export interface BfdPacket {
  diag: number;
  state: BfdState;
  /** P: Poll (§4.1). */
  poll: boolean;
  /** F: Final. */
  final: boolean;
  /** C: Control Plane Independent. */
  cpi: boolean;
  /** D: Demand. */
  demand: boolean;
  /** M: Multipoint (always false: decode rejects it). */
  multipoint: boolean;
  detectMult: number;
  myDiscr: number;
  yourDiscr: number;
  desiredMinTxUs: number;
  requiredMinRxUs: number;
  requiredMinEchoRxUs: number;
  /** Present iff the A bit is set. */
  auth?: BfdAuthSection;
}

/** A configured key (the session's bfd.AuthType plus the secret for one Key ID). */
export interface BfdAuthKey {
  type: BfdAuthTypeCode;
  keyId: number;
  /** Password (1–16 bytes, §4.2) or key (up to 16 bytes for MD5, 20 for SHA1). */
  secret: Uint8Array | string;
}

export type BfdPacketErrorCode =
  | 'SHORT'
  | 'BAD_VERSION'
  | 'BAD_LENGTH'
  | 'ZERO_DETECT_MULT'
  | 'MULTIPOINT'
  | 'ZERO_MY_DISCR'
  | 'ZERO_YOUR_DISCR'
  | 'BAD_AUTH';

/** A received packet that §6.8.6 says to discard. */
export class BfdPacketError extends Error {
  override readonly name = 'BfdPacketError';
  constructor(
    readonly code: BfdPacketErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Misuse of the encoder (out-of-range field): our bug, never the peer's. */
export class BfdLocalUsageError extends Error {
  override readonly name = 'BfdLocalUsageError';
  readonly code = 'LOCAL_USAGE';
}

function secretBytes(s: Uint8Array | string): Uint8Array {
  return typeof s === 'string' ? new TextEncoder().encode(s) : s;
}

/** Bytes of the auth section for `auth` (Auth Type and Auth Len included). */
function authLength(auth: BfdAuthSection): number {
  return auth.type === 1 ? 3 + auth.password.length : (DIGEST_AUTH_LEN[auth.type] ?? 0);
}

/** Encoded length of `pkt` (RFC 5880 §4.1 Length). */
export function bfdLength(pkt: Pick<BfdPacket, 'auth'>): number {
  return BFD_HEADER_LENGTH + (pkt.auth === undefined ? 0 : authLength(pkt.auth));
}

// ------------------------------------------------------------------------------------ decoding

/**
 * Decodes one Control packet (the UDP payload) and applies the pure §6.8.6 checks. Bytes past
 * the Length field are ignored (§6.8.6 only discards when Length exceeds the payload).
 */
export function decodeBfd(bytes: Uint8Array): BfdPacket {
  try {
    return decodeChecked(bytes);
  } catch (e) {
    if (e instanceof ShortReadError) throw new BfdPacketError('SHORT', `BFD: ${e.message}`);
    throw e;
  }
}

function decodeChecked(bytes: Uint8Array): BfdPacket {
  if (bytes.length < BFD_HEADER_LENGTH) {
    throw new BfdPacketError('SHORT', `BFD: ${bytes.length} byte(s), need at least 24`);
  }
  const r = new Reader(bytes);
  const b0 = r.u8();
  const version = b0 >> 5;
  if (version !== BFD_VERSION) throw new BfdPacketError('BAD_VERSION', `BFD: version ${version}`); // §6.8.6
  const b1 = r.u8();
  const detectMult = r.u8();
  const length = r.u8();
  const authPresent = (b1 & 0x04) !== 0;
  const minLength = authPresent ? 26 : 24;
  if (length < minLength) throw new BfdPacketError('BAD_LENGTH', `BFD: length ${length} < ${minLength}`); // §6.8.6
  if (length > bytes.length) {
    throw new BfdPacketError('BAD_LENGTH', `BFD: length ${length} > payload ${bytes.length}`); // §6.8.6
  }
  if (detectMult === 0) throw new BfdPacketError('ZERO_DETECT_MULT', 'BFD: Detect Mult is zero'); // §6.8.6
  if ((b1 & 0x01) !== 0) throw new BfdPacketError('MULTIPOINT', 'BFD: Multipoint bit set'); // §6.8.6
  const state = bfdStateName(b1 >> 6);
  const myDiscr = r.u32();
  const yourDiscr = r.u32();
  if (myDiscr === 0) throw new BfdPacketError('ZERO_MY_DISCR', 'BFD: My Discriminator is zero'); // §6.8.6
  if (yourDiscr === 0 && state !== 'Down' && state !== 'AdminDown') {
    // §6.8.6: Your Discriminator zero is only valid in Down/AdminDown packets
    throw new BfdPacketError('ZERO_YOUR_DISCR', `BFD: Your Discriminator zero in state ${state}`);
  }
  const pkt: BfdPacket = {
    diag: b0 & 0x1f,
    state,
    poll: (b1 & 0x20) !== 0,
    final: (b1 & 0x10) !== 0,
    cpi: (b1 & 0x08) !== 0,
    demand: (b1 & 0x02) !== 0,
    multipoint: false,
    detectMult,
    myDiscr,
    yourDiscr,
    desiredMinTxUs: r.u32(),
    requiredMinRxUs: r.u32(),
    requiredMinEchoRxUs: r.u32(),
  };
  // Without A, bytes between 24 and Length are ignored: §6.8.6 only sets the minimum.
  if (!authPresent) return pkt;
  const type = r.u8();
  const authLen = r.u8();
  if (BFD_HEADER_LENGTH + authLen !== length) {
    throw new BfdPacketError('BAD_AUTH', `BFD: Auth Len ${authLen} does not match length ${length}`);
  }
  if (type === BfdAuthType.SIMPLE_PASSWORD) {
    if (authLen < 4 || authLen > 19)
      throw new BfdPacketError('BAD_AUTH', `BFD: password Auth Len ${authLen}`); // §4.2
    const keyId = r.u8();
    pkt.auth = { type, keyId, password: r.bytes(authLen - 3) };
    return pkt;
  }
  const want = DIGEST_AUTH_LEN[type];
  if (want === undefined) throw new BfdPacketError('BAD_AUTH', `BFD: unknown Auth Type ${type}`);
  if (authLen !== want)
    throw new BfdPacketError('BAD_AUTH', `BFD: ${bfdAuthTypeName(type)} Auth Len ${authLen}`); // §4.3, §4.4
  const keyId = r.u8();
  r.u8(); // Reserved
  const seq = r.u32();
  const digest = r.bytes(DIGEST_LEN[type] ?? 0);
  pkt.auth = { type: type as 2 | 3 | 4 | 5, keyId, seq, digest };
  return pkt;
}

// ------------------------------------------------------------------------------------ encoding

function checkRange(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max)
    throw new BfdLocalUsageError(`BFD: ${name} ${v} out of range`);
}

/** Builds the auth section for `key` with sequence number `seq` (digest left zero). */
function authFor(key: BfdAuthKey, seq: number): BfdAuthSection {
  const secret = secretBytes(key.secret);
  if (key.type === BfdAuthType.SIMPLE_PASSWORD) {
    if (secret.length < 1 || secret.length > 16)
      throw new BfdLocalUsageError('BFD: password must be 1–16 bytes'); // §4.2
    return { type: 1, keyId: key.keyId, password: secret };
  }
  const dlen = DIGEST_LEN[key.type] ?? 0;
  if (secret.length > dlen) throw new BfdLocalUsageError(`BFD: key longer than ${dlen} bytes`);
  return { type: key.type, keyId: key.keyId, seq: seq >>> 0, digest: new Uint8Array(dlen) };
}

/** The digest of `raw` with the key, zero-padded, in place of the digest field (§6.7.3, §6.7.4). */
function computeDigest(type: number, raw: Uint8Array, secret: Uint8Array): Buffer {
  const dlen = DIGEST_LEN[type] ?? 0;
  const copy = new Uint8Array(raw.length);
  copy.set(raw);
  const off = BFD_HEADER_LENGTH + 8; // type, len, key id, reserved, sequence number
  copy.fill(0, off, off + dlen);
  copy.set(secret.subarray(0, dlen), off);
  return createHash(type <= 3 ? 'md5' : 'sha1')
    .update(copy)
    .digest();
}

/**
 * Encodes `pkt`. With `key` the auth section is built from it (sequence number `key.seq`,
 * default 0) and the digest computed; without, `pkt.auth` is written as given.
 */
export function encodeBfd(pkt: BfdPacket, key?: BfdAuthKey & { seq?: number }): Uint8Array {
  checkRange('diag', pkt.diag, 31);
  checkRange('detect mult', pkt.detectMult, 255);
  checkRange('my discriminator', pkt.myDiscr, 0xffffffff);
  checkRange('your discriminator', pkt.yourDiscr, 0xffffffff);
  checkRange('desired min TX', pkt.desiredMinTxUs, 0xffffffff);
  checkRange('required min RX', pkt.requiredMinRxUs, 0xffffffff);
  checkRange('required min echo RX', pkt.requiredMinEchoRxUs, 0xffffffff);
  if (pkt.poll && pkt.final) throw new BfdLocalUsageError('BFD: P and F both set'); // §6.8.7
  const auth = key === undefined ? pkt.auth : authFor(key, key.seq ?? 0);
  const length = bfdLength({ auth });
  const w = new Writer(length);
  w.u8((BFD_VERSION << 5) | pkt.diag);
  w.u8(
    (BfdStateCode[pkt.state] << 6) |
      (pkt.poll ? 0x20 : 0) |
      (pkt.final ? 0x10 : 0) |
      (pkt.cpi ? 0x08 : 0) |
      (auth !== undefined ? 0x04 : 0) |
      (pkt.demand ? 0x02 : 0) |
      (pkt.multipoint ? 0x01 : 0),
  );
  w.u8(pkt.detectMult).u8(length);
  w.u32(pkt.myDiscr).u32(pkt.yourDiscr);
  w.u32(pkt.desiredMinTxUs).u32(pkt.requiredMinRxUs).u32(pkt.requiredMinEchoRxUs);
  if (auth !== undefined) {
    w.u8(auth.type).u8(authLength(auth)).u8(auth.keyId);
    if (auth.type === 1) w.bytes(auth.password);
    else w.u8(0).u32(auth.seq).bytes(auth.digest);
  }
  const out = w.finish();
  if (key !== undefined && key.type !== BfdAuthType.SIMPLE_PASSWORD) {
    out.set(computeDigest(key.type, out, secretBytes(key.secret)), BFD_HEADER_LENGTH + 8);
  }
  return out;
}

// ------------------------------------------------------------------------------- verification

/** §6.8.1 bfd.RcvAuthSeq / bfd.AuthSeqKnown, owned by the session and updated on success. */
export interface BfdAuthRxState {
  seqKnown: boolean;
  rcvSeq: number;
}

export type BfdAuthResult =
  | { ok: true }
  | {
      ok: false;
      reason: 'no-auth' | 'unexpected-auth' | 'type' | 'key-id' | 'password' | 'digest' | 'sequence';
    };

/** (seq − base) mod 2³². */
function seqDelta(seq: number, base: number): number {
  return (seq - base) >>> 0;
}

function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}

/**
 * RFC 5880 §6.7.2–§6.7.4: checks a received packet's auth section against the keyring (keys by
 * Key ID, all of the session's bfd.AuthType). `raw` is the packet as received (Length bytes are
 * used). On success with a digest type, `state` takes the received sequence number.
 * `keyring` empty means the session has no authentication (bfd.AuthType 0).
 */
export function verifyAuth(
  pkt: BfdPacket,
  raw: Uint8Array,
  keyring: ReadonlyMap<number, BfdAuthKey>,
  state: BfdAuthRxState,
): BfdAuthResult {
  const auth = pkt.auth;
  if (keyring.size === 0) return auth === undefined ? { ok: true } : { ok: false, reason: 'unexpected-auth' }; // §6.8.6
  if (auth === undefined) return { ok: false, reason: 'no-auth' }; // §6.8.6
  const key = keyring.get(auth.keyId);
  if (key === undefined) return { ok: false, reason: 'key-id' };
  if (key.type !== auth.type) return { ok: false, reason: 'type' };
  const secret = secretBytes(key.secret);
  if (auth.type === 1) {
    // §6.7.2: password must match exactly
    return constantTimeEqual(auth.password, secret) ? { ok: true } : { ok: false, reason: 'password' };
  }
  const meticulous = auth.type === 3 || auth.type === 5;
  if (state.seqKnown) {
    // §6.7.3/§6.7.4: keyed: [rcv, rcv + 3×DetectMult]; meticulous: (rcv, rcv + 3×DetectMult]
    const d = seqDelta(auth.seq, state.rcvSeq);
    const max = 3 * pkt.detectMult;
    if (d > max || (meticulous && d === 0)) return { ok: false, reason: 'sequence' };
  }
  const length = raw[3] ?? 0;
  const want = computeDigest(auth.type, raw.subarray(0, length), secret);
  if (!constantTimeEqual(auth.digest, want)) return { ok: false, reason: 'digest' };
  state.seqKnown = true;
  state.rcvSeq = auth.seq;
  return { ok: true };
}
