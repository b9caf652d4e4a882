/**
 * The BGP message header and the framer: turns a TCP byte stream into (type, body) messages.
 *
 * Owns: the 19-byte header (RFC 4271 §4.1) and its error checks (RFC 4271 §6.1), the maximum
 * message length (4096, or 65535 with RFC 8654 Extended Messages).
 *
 * Invariants:
 * - The header (marker, length, type) is validated before anything is allocated for the body.
 * - A message that lies inside one pushed chunk is returned as a view (`subarray`) of that chunk:
 *   callers must not reuse a chunk's buffer after pushing it (Node `socket.on('data')` buffers are
 *   fresh). Only a message that spans chunks is copied, once, into a buffer of its exact length.
 * - Many small chunks are kept in a list and concatenated once the whole message is there, so
 *   byte-at-a-time input costs O(n), not O(n²).
 * - After a framing error the stream is unusable (no resynchronisation is possible): the error is
 *   sticky and every later `next()` throws it again.
 * - ROUTE-REFRESH bodies are not length-checked here: RFC 7313 §5 wants a wrong length reported as
 *   ROUTE-REFRESH Message Error / Invalid Message Length (7, 1), which `decodeRouteRefresh` does.
 */
import {
  HEADER_LENGTH,
  HeaderErrorSubcode,
  MARKER_LENGTH,
  MAX_EXTENDED_MESSAGE_LENGTH,
  MAX_MESSAGE_LENGTH,
  MessageType,
  NotificationCode,
} from './constants.ts';
import { LocalUsageError, NotificationError } from './errors.ts';

/** Smallest valid total length per message type (RFC 4271 §4.2, §4.3, §4.5; §6.1). */
const MIN_LENGTH: Record<number, number> = {
  [MessageType.OPEN]: 29,
  [MessageType.UPDATE]: 23,
  [MessageType.NOTIFICATION]: 21,
  [MessageType.KEEPALIVE]: 19,
  [MessageType.ROUTE_REFRESH]: 19, // RFC 7313 §5: checked by decodeRouteRefresh, see above
};

/** A whole BGP message: 16×0xff marker, u16 length, u8 type, body (RFC 4271 §4.1). */
export function encodeMessage(type: number, body: Uint8Array): Uint8Array {
  const length = HEADER_LENGTH + body.length;
  if (length > MAX_EXTENDED_MESSAGE_LENGTH) {
    throw new LocalUsageError(`BGP message of ${length} bytes exceeds ${MAX_EXTENDED_MESSAGE_LENGTH}`);
  }
  if (!Number.isInteger(type) || type < 0 || type > 255) {
    throw new LocalUsageError(`bad BGP message type ${type}`);
  }
  const out = new Uint8Array(length);
  out.fill(0xff, 0, MARKER_LENGTH);
  out[16] = length >>> 8;
  out[17] = length & 0xff;
  out[18] = type;
  out.set(body, HEADER_LENGTH);
  return out;
}

export interface FramedMessage {
  readonly type: number;
  /** The bytes after the 19-byte header: a view into a pushed chunk or into one copy. */
  readonly body: Uint8Array;
}

/**
 * Push parser for the BGP byte stream: `push(chunk)` then call `next()` until it returns
 * undefined. Throws NotificationError (code 1, Message Header Error) on a bad header.
 */
export class Framer {
  private chunks: Uint8Array[] = [];
  /** Index in `chunks` of the first chunk with unread bytes. */
  private first = 0;
  /** Bytes already consumed from `chunks[first]`. */
  private offset = 0;
  private total = 0;
  private maxLength: number;
  /** The validated header of the message being assembled (avoids re-checking it per push). */
  private pendingLength = 0;
  private pendingType = 0;
  private failure: NotificationError | undefined;
  /** Scratch space for a header that spans chunks. */
  private readonly scratch = new Uint8Array(HEADER_LENGTH);

  constructor(maxLength: number = MAX_MESSAGE_LENGTH) {
    this.maxLength = checkMaxLength(maxLength);
  }

  /** Raise to 65535 once RFC 8654 Extended Messages are negotiated. */
  setMaxLength(n: number): void {
    this.maxLength = checkMaxLength(n);
  }

  /** Bytes received but not yet returned as messages. */
  get buffered(): number {
    return this.total;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  next(): FramedMessage | undefined {
    if (this.failure !== undefined) throw this.failure;
    if (this.pendingLength === 0) {
      if (this.total < HEADER_LENGTH) return undefined;
      this.readHeader();
    }
    const length = this.pendingLength;
    if (this.total < length) return undefined;
    const head = this.chunks[this.first]!;
    let message: Uint8Array;
    if (head.length - this.offset >= length) {
      message = head.subarray(this.offset, this.offset + length);
      this.offset += length;
      this.total -= length;
      if (this.offset === head.length) this.dropHead();
    } else {
      message = new Uint8Array(length);
      this.take(message);
    }
    const type = this.pendingType;
    this.pendingLength = 0;
    return { type, body: message.subarray(HEADER_LENGTH) };
  }

  /** Validate the header at the front of the buffer (RFC 4271 §6.1) without consuming it. */
  private readHeader(): void {
    let h: Uint8Array;
    let at: number;
    const head = this.chunks[this.first]!;
    if (head.length - this.offset >= HEADER_LENGTH) {
      h = head;
      at = this.offset;
    } else {
      this.peek(this.scratch);
      h = this.scratch;
      at = 0;
    }
    for (let i = 0; i < MARKER_LENGTH; i++) {
      if (h[at + i] !== 0xff) {
        this.fail(
          HeaderErrorSubcode.CONNECTION_NOT_SYNCHRONIZED,
          'marker is not all ones',
          new Uint8Array(0),
        );
      }
    }
    const length = (h[at + 16]! << 8) | h[at + 17]!;
    const type = h[at + 18]!;
    if (length < HEADER_LENGTH || length > this.maxLength) {
      this.fail(HeaderErrorSubcode.BAD_MESSAGE_LENGTH, `bad message length ${length}`, lengthField(length));
    }
    const min = MIN_LENGTH[type];
    if (min === undefined) {
      this.fail(HeaderErrorSubcode.BAD_MESSAGE_TYPE, `bad message type ${type}`, Uint8Array.of(type));
    }
    // RFC 4271 §6.1 per-type lengths; RFC 8654 §4: OPEN and KEEPALIVE never exceed 4096.
    if (
      length < min ||
      (type === MessageType.KEEPALIVE && length !== HEADER_LENGTH) ||
      (type === MessageType.OPEN && length > MAX_MESSAGE_LENGTH)
    ) {
      this.fail(
        HeaderErrorSubcode.BAD_MESSAGE_LENGTH,
        `bad length ${length} for message type ${type}`,
        lengthField(length),
      );
    }
    this.pendingLength = length;
    this.pendingType = type;
  }

  private fail(subcode: number, message: string, data: Uint8Array): never {
    this.failure = new NotificationError(NotificationCode.MESSAGE_HEADER_ERROR, subcode, message, data);
    throw this.failure;
  }

  /** Copy the first `out.length` buffered bytes into `out` without consuming them. */
  private peek(out: Uint8Array): void {
    let filled = 0;
    let off = this.offset;
    for (let i = this.first; filled < out.length; i++) {
      const c = this.chunks[i]!;
      const n = Math.min(c.length - off, out.length - filled);
      out.set(c.subarray(off, off + n), filled);
      filled += n;
      off = 0;
    }
  }

  /** Copy the first `out.length` buffered bytes into `out` and consume them. */
  private take(out: Uint8Array): void {
    let filled = 0;
    while (filled < out.length) {
      const c = this.chunks[this.first]!;
      const n = Math.min(c.length - this.offset, out.length - filled);
      out.set(c.subarray(this.offset, this.offset + n), filled);
      filled += n;
      this.offset += n;
      if (this.offset === c.length) this.dropHead();
    }
    this.total -= out.length;
  }

  private dropHead(): void {
    this.first++;
    this.offset = 0;
    if (this.first === this.chunks.length) {
      this.chunks = [];
      this.first = 0;
    } else if (this.first >= 1024 && this.first * 2 >= this.chunks.length) {
      // Amortised O(1): compact only when the consumed prefix dominates the list.
      this.chunks = this.chunks.slice(this.first);
      this.first = 0;
    }
  }
}

/** RFC 4271 §6.1: Bad Message Length carries the erroneous Length field. */
function lengthField(length: number): Uint8Array {
  return Uint8Array.of(length >>> 8, length & 0xff);
}

function checkMaxLength(n: number): number {
  if (!Number.isInteger(n) || n < MAX_MESSAGE_LENGTH || n > MAX_EXTENDED_MESSAGE_LENGTH) {
    throw new LocalUsageError(
      `max message length must be in ${MAX_MESSAGE_LENGTH}..${MAX_EXTENDED_MESSAGE_LENGTH}`,
    );
  }
  return n;
}
