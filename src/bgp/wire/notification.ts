/**
 * NOTIFICATION (RFC 4271 §4.5) and KEEPALIVE (RFC 4271 §4.4) messages, with the RFC 9003
 * Shutdown Communication carried by Cease / Administrative Shutdown (2) and Administrative Reset (4).
 *
 * Invariants:
 * - The data field is opaque: decoding never fails because of it (RFC 4271 §6.4 — one never
 *   answers a NOTIFICATION). Only a body shorter than code + subcode throws (the framer already
 *   rejects those, RFC 4271 §6.1).
 * - `shutdownMessage` is set only when the data starts with a length byte that fits in the data,
 *   is non-zero, and the text is valid UTF-8 (RFC 9003 §2, §4: anything else is logged, not fatal).
 * - Encoding truncates a Shutdown Communication to 255 bytes on a UTF-8 character boundary, and
 *   the data of any NOTIFICATION so that the message fits in `maxLength` (4096 unless RFC 8654
 *   Extended Messages are in use).
 */
import {
  CeaseSubcode,
  HEADER_LENGTH,
  HeaderErrorSubcode,
  MAX_MESSAGE_LENGTH,
  MessageType,
  NotificationCode,
} from './constants.ts';
import { LocalUsageError, NotificationError } from './errors.ts';
import { encodeMessage } from './header.ts';
import type { NotificationMessage } from './types.ts';

const KEEPALIVE = encodeMessage(MessageType.KEEPALIVE, new Uint8Array(0));

/** The 19-byte KEEPALIVE (a header with no body, RFC 4271 §4.4). A fresh copy each call. */
export function encodeKeepalive(): Uint8Array {
  return KEEPALIVE.slice();
}

/** The whole NOTIFICATION message. `data` is truncated so the message fits in `maxLength`. */
export function encodeNotification(
  code: number,
  subcode: number,
  data: Uint8Array = new Uint8Array(0),
  maxLength: number = MAX_MESSAGE_LENGTH,
): Uint8Array {
  for (const [what, v] of [
    ['code', code],
    ['subcode', subcode],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 255) throw new LocalUsageError(`NOTIFICATION ${what} ${v}`);
  }
  const room = maxLength - HEADER_LENGTH - 2;
  const d = data.length > room ? data.subarray(0, Math.max(0, room)) : data;
  const body = new Uint8Array(2 + d.length);
  body[0] = code;
  body[1] = subcode;
  body.set(d, 2);
  return encodeMessage(MessageType.NOTIFICATION, body);
}

/** RFC 9003 §2: at most 255 octets of UTF-8. */
export const MAX_SHUTDOWN_COMMUNICATION = 255;

/** UTF-8 bytes of `message`, cut to at most `max` bytes without splitting a character. */
export function truncateUtf8(message: string, max: number): Uint8Array {
  const bytes = new TextEncoder().encode(message);
  if (bytes.length <= max) return bytes;
  let n = max;
  // Back off over continuation bytes (10xxxxxx) so the cut falls before a lead byte.
  while (n > 0 && (bytes[n]! & 0xc0) === 0x80) n--;
  return bytes.subarray(0, n);
}

/** Cease / Administrative Shutdown (2) or Administrative Reset (4) with a Shutdown Communication. */
export function encodeShutdownNotification(subcode: 2 | 4, message: string): Uint8Array {
  const text = truncateUtf8(message, MAX_SHUTDOWN_COMMUNICATION);
  const data = new Uint8Array(1 + text.length);
  data[0] = text.length; // RFC 9003 §2 Length
  data.set(text, 1);
  return encodeNotification(NotificationCode.CEASE, subcode, data);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The RFC 9003 Shutdown Communication in `data`, or undefined when absent or invalid. */
export function decodeShutdownCommunication(data: Uint8Array): string | undefined {
  if (data.length === 0) return undefined;
  const length = data[0]!;
  if (length === 0 || 1 + length > data.length) return undefined;
  try {
    return strictUtf8.decode(data.subarray(1, 1 + length));
  } catch {
    return undefined; // RFC 9003 §4: invalid UTF-8 is logged by the caller, not an error
  }
}

/** Decode a NOTIFICATION body (after the header). `data` is a view into `body`. */
export function decodeNotification(body: Uint8Array): NotificationMessage {
  if (body.length < 2) {
    const length = HEADER_LENGTH + body.length;
    throw new NotificationError(
      NotificationCode.MESSAGE_HEADER_ERROR,
      HeaderErrorSubcode.BAD_MESSAGE_LENGTH,
      `NOTIFICATION body of ${body.length} bytes`,
      Uint8Array.of(length >>> 8, length & 0xff),
    );
  }
  const code = body[0]!;
  const subcode = body[1]!;
  const data = body.subarray(2);
  if (
    code === NotificationCode.CEASE &&
    (subcode === CeaseSubcode.ADMINISTRATIVE_SHUTDOWN || subcode === CeaseSubcode.ADMINISTRATIVE_RESET)
  ) {
    const shutdownMessage = decodeShutdownCommunication(data);
    if (shutdownMessage !== undefined) return { type: 'notification', code, subcode, data, shutdownMessage };
  }
  return { type: 'notification', code, subcode, data };
}
