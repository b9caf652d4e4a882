/**
 * ROUTE-REFRESH message (RFC 2918 §3) with the RFC 7313 §3.2 Message Subtype in the former
 * Reserved octet: 0 normal request, 1 BoRR (Beginning of Route Refresh), 2 EoRR (End of RR).
 *
 * Body: AFI(2) Message Subtype(1) SAFI(1).
 *
 * Invariants:
 * - A subtype other than 0, 1, 2 is returned as is: RFC 7313 §5 says the receiver MUST ignore the
 *   message, which is the caller's job (it also logs it).
 * - A body whose length is not 4 → NotificationError(7, 1) ROUTE-REFRESH Message Error / Invalid
 *   Message Length, with the complete message as data (RFC 7313 §5). The framer leaves
 *   ROUTE-REFRESH lengths to this decoder for that reason. We negotiate no ORF (RFC 5291), so no
 *   longer form is valid.
 */
import {
  HEADER_LENGTH,
  MAX_EXTENDED_MESSAGE_LENGTH,
  MessageType,
  NotificationCode,
  RouteRefreshErrorSubcode,
  RouteRefreshSubtype,
} from './constants.ts';
import { LocalUsageError, NotificationError } from './errors.ts';
import { encodeMessage } from './header.ts';
import type { RouteRefreshMessage } from './types.ts';

/** The whole ROUTE-REFRESH message. */
export function encodeRouteRefresh(
  afi: number,
  safi: number,
  subtype: number = RouteRefreshSubtype.NORMAL,
): Uint8Array {
  for (const [what, v, max] of [
    ['AFI', afi, 0xffff],
    ['SAFI', safi, 0xff],
    ['subtype', subtype, 0xff],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > max) throw new LocalUsageError(`ROUTE-REFRESH ${what} ${v}`);
  }
  return encodeMessage(MessageType.ROUTE_REFRESH, Uint8Array.of(afi >>> 8, afi & 0xff, subtype, safi));
}

/** Decode a ROUTE-REFRESH body (after the header). */
export function decodeRouteRefresh(body: Uint8Array): RouteRefreshMessage {
  const subtype = body[2];
  const ignorable = subtype !== undefined && subtype > RouteRefreshSubtype.EORR;
  if (body.length !== 4 && !ignorable) {
    throw new NotificationError(
      NotificationCode.ROUTE_REFRESH_MESSAGE_ERROR,
      RouteRefreshErrorSubcode.INVALID_MESSAGE_LENGTH,
      `ROUTE-REFRESH body of ${body.length} bytes, expected 4`,
      encodeMessage(MessageType.ROUTE_REFRESH, body.subarray(0, MAX_EXTENDED_MESSAGE_LENGTH - HEADER_LENGTH)),
    );
  }
  return { type: 'route-refresh', afi: (body[0]! << 8) | body[1]!, safi: body[3] ?? 0, subtype: subtype! };
}
