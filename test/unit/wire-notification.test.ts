/**
 * NOTIFICATION (RFC 4271 §4.5) with RFC 9003 Shutdown Communication, KEEPALIVE (RFC 4271 §4.4)
 * and ROUTE-REFRESH (RFC 2918 §3, RFC 7313 §3.2, §5): decode, exact encode, round trip, errors,
 * and fast-check properties for random bytes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hex, toHex } from '../../src/lib/bytes.ts';
import { LocalUsageError, NotificationError } from '../../src/bgp/wire/errors.ts';
import {
  decodeNotification,
  decodeShutdownCommunication,
  encodeKeepalive,
  encodeNotification,
  encodeShutdownNotification,
  truncateUtf8,
} from '../../src/bgp/wire/notification.ts';
import { decodeRouteRefresh, encodeRouteRefresh } from '../../src/bgp/wire/route-refresh.ts';
import { notificationSubcodeName } from '../../src/bgp/wire/constants.ts';

const SEED = 42;
const MARKER = 'ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff';

const SHUTDOWN_TEXT = '[TICKET-1-1438367390] software upgrade; back in 2 hours';

/** RFC 9003 §2 format: Cease / Administrative Shutdown with a 55-byte Shutdown Communication. */
const SHUTDOWN = hex`
  ${MARKER}  # marker
  00 4d      # length 77
  03         # type NOTIFICATION
  06         # error code 6 Cease
  02         # subcode 2 Administrative Shutdown (RFC 4486 §4)
  37         # Shutdown Communication length 55 (RFC 9003 §2)
  5b 54 49 43 4b 45 54 2d 31 2d 31 34 33 38 33 36 37 33 39 30 5d  # "[TICKET-1-1438367390]"
  20 73 6f 66 74 77 61 72 65 20 75 70 67 72 61 64 65 3b           # " software upgrade;"
  20 62 61 63 6b 20 69 6e 20 32 20 68 6f 75 72 73                 # " back in 2 hours"
`;

/** Hold Timer Expired, no data. */
const HOLD_EXPIRED = hex`
  ${MARKER}  # marker
  00 15      # length 21
  03         # type NOTIFICATION
  04 00      # Hold Timer Expired, subcode 0
`;

/** OPEN Message Error / Unsupported Version Number, data = version 4 as u16 (RFC 4271 §6.2). */
const BAD_VERSION = hex`
  ${MARKER}  # marker
  00 17      # length 23
  03         # type NOTIFICATION
  02 01      # OPEN Message Error / Unsupported Version Number
  00 04      # data: largest supported version, 4
`;

describe('KEEPALIVE', () => {
  it('is a bare 19-byte header (RFC 4271 §4.4)', () => {
    expect(toHex(encodeKeepalive())).toBe(toHex(hex`${MARKER} 00 13 04 # length 19, type KEEPALIVE`));
  });

  it('returns a fresh copy each time', () => {
    const a = encodeKeepalive();
    a[18] = 0;
    expect(encodeKeepalive()[18]).toBe(4);
  });
});

describe('NOTIFICATION', () => {
  it.each([
    ['Hold Timer Expired', HOLD_EXPIRED, 4, 0, ''],
    ['Unsupported Version Number', BAD_VERSION, 2, 1, '0004'],
  ])('%s: decode, encode, round trip', (_name, msg, code, subcode, data) => {
    const decoded = decodeNotification(msg.subarray(19));
    expect(decoded).toEqual({ type: 'notification', code, subcode, data: hex(data) });
    expect(toHex(encodeNotification(code, subcode, hex(data)))).toBe(toHex(msg));
    expect(decodeNotification(encodeNotification(code, subcode, decoded.data).subarray(19))).toEqual(decoded);
  });

  it('keeps data opaque: any bytes after code and subcode', () => {
    const n = decodeNotification(hex`03 0b  ff 00 ee # UPDATE error 11 with 3 bytes of data`);
    expect(n).toEqual({ type: 'notification', code: 3, subcode: 11, data: hex`ff 00 ee` });
    expect(decodeNotification(hex`ff ff`)).toEqual({
      type: 'notification',
      code: 255,
      subcode: 255,
      data: hex``,
    });
  });

  it('a body shorter than 2 bytes → (1, 2) with the message length', () => {
    const e = (() => {
      try {
        decodeNotification(hex`06`);
      } catch (err) {
        return err as NotificationError;
      }
      throw new Error('no error');
    })();
    expect(e).toBeInstanceOf(NotificationError);
    expect([e.errorCode, e.subcode, toHex(e.data)]).toEqual([1, 2, '0014']);
  });

  it('truncates data so the message fits in 4096 bytes (or the given maximum)', () => {
    const big = new Uint8Array(5000).fill(7);
    expect(encodeNotification(3, 1, big).length).toBe(4096);
    expect(encodeNotification(3, 1, big, 65535).length).toBe(19 + 2 + 5000);
    expect(big[4999]).toBe(7); // the input is not modified
  });

  it('rejects out-of-range codes (local misuse)', () => {
    expect(() => encodeNotification(256, 0)).toThrow(LocalUsageError);
    expect(() => encodeNotification(6, -1)).toThrow(LocalUsageError);
  });

  it('names the Route-Refresh error subcode', () => {
    expect(notificationSubcodeName(7, 1)).toBe('INVALID_MESSAGE_LENGTH');
  });
});

describe('RFC 9003 Shutdown Communication', () => {
  it('decodes Cease / Administrative Shutdown with its text', () => {
    const n = decodeNotification(SHUTDOWN.subarray(19));
    expect(n).toEqual({
      type: 'notification',
      code: 6,
      subcode: 2,
      data: SHUTDOWN.subarray(21),
      shutdownMessage: SHUTDOWN_TEXT,
    });
  });

  it('encodes to the exact bytes', () => {
    expect(toHex(encodeShutdownNotification(2, SHUTDOWN_TEXT))).toBe(toHex(SHUTDOWN));
  });

  it('round trips for Administrative Reset (subcode 4), with UTF-8', () => {
    const text = 'maintenance — Wartung — 保守';
    expect(decodeNotification(encodeShutdownNotification(4, text).subarray(19)).shutdownMessage).toBe(text);
  });

  it('truncates to 255 bytes on a UTF-8 character boundary', () => {
    const text = 'a' + '€'.repeat(100); // 1 + 300 bytes; '€' is e2 82 ac
    const msg = encodeShutdownNotification(2, text);
    expect(msg[21]).toBe(253); // byte 255 would split the 85th '€': cut before it
    expect(decodeNotification(msg.subarray(19)).shutdownMessage).toBe('a' + '€'.repeat(84));
    expect(truncateUtf8('x'.repeat(300), 255).length).toBe(255);
    expect(truncateUtf8('😀😀', 5).length).toBe(4);
    expect(truncateUtf8('😀', 3).length).toBe(0);
  });

  it('an empty message encodes as length 0 and decodes as absent', () => {
    const msg = encodeShutdownNotification(2, '');
    expect(toHex(msg.subarray(19))).toBe('060200');
    expect(decodeNotification(msg.subarray(19))).toEqual({
      type: 'notification',
      code: 6,
      subcode: 2,
      data: hex`00`,
    });
  });

  it.each([
    ['length beyond the data', hex`05 61 62`],
    ['invalid UTF-8', hex`02 c3 28`],
    ['no data', hex``],
  ])('ignores a malformed communication: %s (RFC 9003 §4)', (_name, data) => {
    const body = new Uint8Array(2 + data.length);
    body.set(hex`06 02`);
    body.set(data, 2);
    const n = decodeNotification(body);
    expect(n.shutdownMessage).toBeUndefined();
    expect(toHex(n.data)).toBe(toHex(data));
  });

  it('accepts trailing bytes after the communication, and only on Cease/2 and Cease/4', () => {
    expect(decodeShutdownCommunication(hex`02 6f 6b ff ff`)).toBe('ok');
    expect(decodeNotification(hex`06 03 02 6f 6b`).shutdownMessage).toBeUndefined();
    expect(decodeNotification(hex`06 04 02 6f 6b`).shutdownMessage).toBe('ok');
  });
});

describe('ROUTE-REFRESH', () => {
  const vectors: [string, Uint8Array, number, number, number][] = [
    ['normal request, IPv4 unicast (RFC 2918 §3)', hex`00 01 00 01 # AFI 1, subtype 0, SAFI 1`, 1, 1, 0],
    ['BoRR, IPv6 unicast (RFC 7313 §3.2)', hex`00 02 01 01 # AFI 2, subtype 1 BoRR, SAFI 1`, 2, 1, 1],
    ['EoRR, IPv4 VPN', hex`00 01 02 80 # AFI 1, subtype 2 EoRR, SAFI 128`, 1, 128, 2],
  ];

  it.each(vectors)('%s: decode, encode, round trip', (_name, body, afi, safi, subtype) => {
    const msg = hex`${MARKER} 00 17 05 ${toHex(body)} # length 23, type ROUTE-REFRESH`;
    expect(decodeRouteRefresh(body)).toEqual({ type: 'route-refresh', afi, safi, subtype });
    expect(toHex(encodeRouteRefresh(afi, safi, subtype))).toBe(toHex(msg));
    expect(decodeRouteRefresh(encodeRouteRefresh(afi, safi, subtype).subarray(19))).toEqual({
      type: 'route-refresh',
      afi,
      safi,
      subtype,
    });
  });

  it('defaults to subtype 0', () => {
    expect(toHex(encodeRouteRefresh(2, 1).subarray(19))).toBe('00020001');
  });

  it('returns an unknown subtype for the caller to ignore (RFC 7313 §5), whatever the length', () => {
    expect(decodeRouteRefresh(hex`00 01 03 01`)).toEqual({
      type: 'route-refresh',
      afi: 1,
      safi: 1,
      subtype: 3,
    });
    expect(decodeRouteRefresh(hex`00 01 ff 01 aa`).subtype).toBe(255);
  });

  it.each([
    ['BoRR with 5 bytes', hex`00 01 01 01 00`],
    ['EoRR with 3 bytes', hex`00 01 02`],
    ['normal with 6 bytes', hex`00 01 00 01 00 00`],
    ['empty', hex``],
  ])('%s → (7, 1) Invalid Message Length with the whole message as data', (_name, body) => {
    try {
      decodeRouteRefresh(body);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(NotificationError);
      const n = e as NotificationError;
      expect([n.errorCode, n.subcode]).toEqual([7, 1]);
      const len = 19 + body.length;
      expect(toHex(n.data)).toBe(
        toHex(hex`${MARKER} 00 ${len.toString(16).padStart(2, '0')} 05 ${toHex(body)}`),
      );
    }
  });

  it('rejects out-of-range fields (local misuse)', () => {
    expect(() => encodeRouteRefresh(0x10000, 1)).toThrow(LocalUsageError);
    expect(() => encodeRouteRefresh(1, 256)).toThrow(LocalUsageError);
  });
});

describe('properties', () => {
  it(`random bytes: decodeNotification never throws past 2 bytes, else NotificationError (seed ${SEED})`, () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (data, cease) => {
        if (cease && data.length >= 2) {
          data[0] = 6;
          data[1] = 2;
        }
        try {
          const n = decodeNotification(data);
          expect(n.data.length).toBe(data.length - 2);
        } catch (e) {
          if (!(e instanceof NotificationError) || data.length >= 2) throw e;
        }
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });

  it(`Shutdown Communication round trips any string, truncated to ≤ 255 bytes (seed ${SEED})`, () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), (text) => {
        const n = decodeNotification(encodeShutdownNotification(2, text).subarray(19));
        const sent = n.shutdownMessage ?? '';
        expect(new TextEncoder().encode(sent).length).toBeLessThanOrEqual(255);
        expect(text.startsWith(sent)).toBe(true);
        if (new TextEncoder().encode(text).length <= 255) expect(sent).toBe(text);
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  it(`random bytes: decodeRouteRefresh only throws NotificationError (seed ${SEED})`, () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 12 }), (body) => {
        try {
          decodeRouteRefresh(body);
        } catch (e) {
          if (!(e instanceof NotificationError)) throw e;
        }
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });
});
