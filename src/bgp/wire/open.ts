/**
 * OPEN message codec (RFC 4271 §4.2) with Capabilities optional parameters (RFC 5492 §4) and
 * the RFC 9072 extended optional parameters length.
 *
 * Owns: the OPEN body layout and its syntactic checks (RFC 4271 §6.2). Semantic checks that need
 * local configuration (peer AS, BGP Identifier collision, unsupported optional parameters,
 * families) belong to `negotiate.ts`.
 *
 * Invariants:
 * - Encoding groups every capability into one Capabilities parameter (as BIRD and FRR do) and
 *   switches to the RFC 9072 format only when the parameters do not fit in 255 bytes (RFC 9072 §2
 *   "SHOULD NOT use the extended format unless needed"). OPEN never exceeds 4096 bytes (RFC 8654 §4).
 * - Decoding accepts both formats, several Capabilities parameters, and keeps any other parameter
 *   type raw in `otherParams`; decoded byte fields are views into `body`.
 * - Errors: version ≠ 4 → (2, 1) with the supported version as data; hold time 1 or 2 → (2, 6);
 *   BGP Identifier 0 → (2, 3) (RFC 6286 §2.2: any other value is valid); a length that does not
 *   match the parameters → (1, 2) with the header's length field as data (RFC 4271 §6.1);
 *   a malformed parameter or capability → (2, 0) "Unspecific" (RFC 4271 §6.2).
 */
import { Reader, Writer } from '../../lib/bytes.ts';
import { capabilityLength, decodeCapabilities, writeCapability } from './capabilities.ts';
import {
  HEADER_LENGTH,
  HeaderErrorSubcode,
  MAX_MESSAGE_LENGTH,
  MessageType,
  NotificationCode,
  OpenErrorSubcode,
  OptionalParamType,
} from './constants.ts';
import { LocalUsageError, NotificationError } from './errors.ts';
import type { Capability, OpenMessage } from './types.ts';

export const BGP_VERSION = 4;
/** Version(1) My AS(2) Hold Time(2) BGP Identifier(4) Opt Parm Len(1). */
const FIXED_BODY_LENGTH = 10;

interface EncodedParam {
  readonly type: number;
  readonly length: number;
  readonly write: (w: Writer) => void;
}

function checkField(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max)
    throw new LocalUsageError(`OPEN ${name} ${v} not in 0..${max}`);
}

/** The whole OPEN message, header included. */
export function encodeOpen(open: Omit<OpenMessage, 'type'>): Uint8Array {
  checkField('version', open.version, 0xff);
  checkField('My AS', open.myAs, 0xffff);
  checkField('hold time', open.holdTime, 0xffff);
  checkField('BGP Identifier', open.bgpId, 0xffffffff);

  const params: EncodedParam[] = [];
  if (open.capabilities.length > 0) {
    const caps: readonly Capability[] = open.capabilities;
    let length = 0;
    for (const c of caps) length += capabilityLength(c);
    params.push({
      type: OptionalParamType.CAPABILITIES,
      length,
      write: (w) => {
        for (const c of caps) writeCapability(w, c);
      },
    });
  }
  for (const p of open.otherParams) {
    checkField('optional parameter type', p.type, 0xff);
    if (p.type === OptionalParamType.EXTENDED_LENGTH) {
      throw new LocalUsageError('optional parameter type 255 is reserved by RFC 9072 §2');
    }
    params.push({ type: p.type, length: p.value.length, write: (w) => w.bytes(p.value) });
  }

  let plain = 0;
  let fits = true;
  for (const p of params) {
    plain += 2 + p.length;
    if (p.length > 0xff) fits = false;
  }
  const extended = !fits || plain > 0xff; // RFC 9072 §2
  const paramsLength = extended ? plain + params.length : plain;
  const total = HEADER_LENGTH + FIXED_BODY_LENGTH + (extended ? 3 : 0) + paramsLength;
  if (total > MAX_MESSAGE_LENGTH)
    throw new LocalUsageError(`OPEN of ${total} bytes exceeds 4096 (RFC 8654 §4)`);

  const w = new Writer(total);
  for (let i = 0; i < 16; i++) w.u8(0xff);
  w.u16(total).u8(MessageType.OPEN);
  w.u8(open.version).u16(open.myAs).u16(open.holdTime).u32(open.bgpId);
  if (extended) {
    // Non-Ext OP Len = 255, Non-Ext OP Type = 255, Extended Opt. Parm. Length (RFC 9072 §2)
    w.u8(0xff).u8(OptionalParamType.EXTENDED_LENGTH).u16(paramsLength);
  } else {
    w.u8(paramsLength);
  }
  for (const p of params) {
    w.u8(p.type);
    if (extended) w.u16(p.length);
    else w.u8(p.length);
    p.write(w);
  }
  return w.finish();
}

function badLength(body: Uint8Array, why: string): NotificationError {
  const length = (HEADER_LENGTH + body.length) & 0xffff;
  return new NotificationError(
    NotificationCode.MESSAGE_HEADER_ERROR,
    HeaderErrorSubcode.BAD_MESSAGE_LENGTH,
    `OPEN: ${why}`,
    Uint8Array.of(length >>> 8, length & 0xff),
  );
}

function openError(subcode: number, message: string, data?: Uint8Array): NotificationError {
  return new NotificationError(NotificationCode.OPEN_MESSAGE_ERROR, subcode, `OPEN: ${message}`, data);
}

/** Decode an OPEN body (the bytes after the 19-byte header). Throws only NotificationError. */
export function decodeOpen(body: Uint8Array): OpenMessage {
  if (body.length === 0) throw badLength(body, 'empty body');
  const version = body[0]!;
  if (version !== BGP_VERSION) {
    // RFC 4271 §6.2: data is the largest locally supported version, as a u16
    throw openError(OpenErrorSubcode.UNSUPPORTED_VERSION_NUMBER, `version ${version}`, Uint8Array.of(0, 4));
  }
  if (body.length < FIXED_BODY_LENGTH) throw badLength(body, `body of ${body.length} bytes`);
  const r = new Reader(body);
  r.pos = 1;
  const myAs = r.u16();
  const holdTime = r.u16();
  const bgpId = r.u32();
  let paramsLength = r.u8();
  let extended = false;
  // RFC 9072 §2: a non-zero Non-Ext OP Len followed by Non-Ext OP Type 255 selects the extended format
  if (paramsLength !== 0 && body.length > FIXED_BODY_LENGTH && body[FIXED_BODY_LENGTH] === 0xff) {
    if (body.length < FIXED_BODY_LENGTH + 3) throw badLength(body, 'extended parameters length truncated');
    r.pos = FIXED_BODY_LENGTH + 1;
    paramsLength = r.u16();
    extended = true;
  }
  if (r.pos + paramsLength !== body.length) {
    throw badLength(body, `optional parameters length ${paramsLength} does not match the message`);
  }
  // RFC 4271 §6.2: the Hold Time MUST be either zero or at least three seconds
  if (holdTime === 1 || holdTime === 2) {
    throw openError(OpenErrorSubcode.UNACCEPTABLE_HOLD_TIME, `hold time ${holdTime}`);
  }
  // RFC 6286 §2.2: a non-zero 4-octet unsigned integer
  if (bgpId === 0) throw openError(OpenErrorSubcode.BAD_BGP_IDENTIFIER, 'BGP Identifier is 0');

  const capabilities: Capability[] = [];
  const otherParams: { type: number; value: Uint8Array }[] = [];
  const headerSize = extended ? 3 : 2;
  while (r.remaining > 0) {
    if (r.remaining < headerSize)
      throw openError(OpenErrorSubcode.UNSPECIFIC, 'optional parameter truncated');
    const type = r.u8();
    const length = extended ? r.u16() : r.u8();
    if (length > r.remaining)
      throw openError(OpenErrorSubcode.UNSPECIFIC, `optional parameter ${type} overruns`);
    const value = r.bytes(length);
    if (type === OptionalParamType.CAPABILITIES) {
      for (const c of decodeCapabilities(value)) capabilities.push(c);
    } else {
      otherParams.push({ type, value });
    }
  }
  return { type: 'open', version, myAs, holdTime, bgpId, capabilities, otherParams };
}
