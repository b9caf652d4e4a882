/**
 * UPDATE messages as a whole (RFC 4271 §4.3): split a received body into its three raw parts,
 * build messages, pack many route keys into as few messages as fit, and End-of-RIB markers.
 *
 * - `splitUpdate` validates only the two length fields (RFC 4271 §6.3, RFC 7606 §3.b): the parts
 *   are views into the body; attributes and NLRI are decoded later, once per distinct set.
 * - `packUpdates` is the Adj-RIB-Out writer: IPv4 unicast in the Withdrawn Routes / NLRI fields with
 *   a NEXT_HOP attribute, every other family in MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760), MP
 *   attribute first (RFC 7606 §5.1). All sizes are computed first, then every message is written
 *   once into a single buffer (the returned messages are views into it; the attribute block is
 *   encoded once and copied); each is at most `maxLength` bytes (4096, or 65535 with RFC 8654).
 * - End-of-RIB (RFC 4724 §2): an empty UPDATE for IPv4 unicast, else an UPDATE whose only attribute
 *   is an MP_UNREACH_NLRI without NLRI.
 */
import { Writer } from '../../lib/bytes.ts';
import {
  AttrFlag,
  AttrType,
  HEADER_LENGTH,
  MAX_EXTENDED_MESSAGE_LENGTH,
  MARKER_LENGTH,
  MessageType,
  UpdateErrorSubcode,
  afiSafiCode,
  afiSafiName,
  type AfiSafiName,
} from './constants.ts';
import { LocalUsageError, UpdateError } from './errors.ts';
import type { CodecContext, DecodedAttributes, Nlri, PathAttributes, UpdateMessage } from './types.ts';
import { attributesLength, encodeAttributesInto, writeAttributeHeader } from './attributes.ts';
import { encodeMpReachHead, mpReachHeadLength } from './mp.ts';
import { encodeNlriInto, nlriLength } from './nlri.ts';

const EMPTY: Uint8Array = new Uint8Array(0);
/** Header, Withdrawn Routes Length and Total Path Attribute Length (RFC 4271 §4.3). */
const UPDATE_OVERHEAD = HEADER_LENGTH + 4;

function malformedList(why: string): UpdateError {
  return new UpdateError('session-reset', UpdateErrorSubcode.MALFORMED_ATTRIBUTE_LIST, `UPDATE ${why}`);
}

/** Splits an UPDATE body (the bytes after the 19-byte header) into views of its three parts. */
export function splitUpdate(body: Uint8Array): UpdateMessage {
  const n = body.length;
  if (n < 4) throw malformedList(`body of ${n} bytes`);
  const wlen = (body[0]! << 8) | body[1]!;
  // RFC 4271 §6.3, RFC 7606 §3.b: lengths that exceed the message are a Malformed Attribute List.
  if (2 + wlen + 2 > n) throw malformedList(`withdrawn routes length ${wlen} exceeds the message`);
  const alen = (body[2 + wlen]! << 8) | body[3 + wlen]!;
  if (4 + wlen + alen > n) throw malformedList(`total path attribute length ${alen} exceeds the message`);
  return {
    type: 'update',
    withdrawn: body.subarray(2, 2 + wlen),
    attributes: body.subarray(4 + wlen, 4 + wlen + alen),
    nlri: body.subarray(4 + wlen + alen),
  };
}

/** Writes the RFC 4271 §4.1 header of an UPDATE of `total` bytes. */
function writeHeader(w: Writer, total: number): void {
  if (total > MAX_EXTENDED_MESSAGE_LENGTH) throw new LocalUsageError(`UPDATE of ${total} bytes`);
  w.buf.fill(0xff, w.pos, w.pos + MARKER_LENGTH);
  w.pos += MARKER_LENGTH;
  w.u16(total).u8(MessageType.UPDATE);
}

/** A Writer for one UPDATE of `bodyLength` bytes with the header already written. */
function updateWriter(bodyLength: number): Writer {
  const w = new Writer(HEADER_LENGTH + bodyLength);
  writeHeader(w, HEADER_LENGTH + bodyLength);
  return w;
}

/** A full UPDATE message (header included) from already-encoded parts. */
export function encodeUpdate(parts: {
  withdrawn?: Uint8Array;
  attributes?: Uint8Array;
  nlri?: Uint8Array;
}): Uint8Array {
  const withdrawn = parts.withdrawn ?? EMPTY;
  const attributes = parts.attributes ?? EMPTY;
  const nlri = parts.nlri ?? EMPTY;
  const w = updateWriter(4 + withdrawn.length + attributes.length + nlri.length);
  w.u16(withdrawn.length).bytes(withdrawn).u16(attributes.length).bytes(attributes).bytes(nlri);
  return w.finish();
}

export interface PackOptions {
  readonly family: AfiSafiName;
  /** The shared attributes of every item; undefined packs withdrawals. */
  readonly attributes: PathAttributes | undefined;
  /** Next hop: IPv4 unicast -> NEXT_HOP (overrides attributes.nextHop); others -> MP_REACH_NLRI. */
  readonly nextHop?: Uint8Array;
  readonly linkLocalNextHop?: Uint8Array;
  readonly items: readonly Nlri[];
  readonly ctx: CodecContext;
  /** Upper bound for each message, header included. */
  readonly maxLength: number;
}

/**
 * Packs route keys sharing one attribute set (or withdrawals) into full UPDATE messages, in input
 * order, each at most `maxLength` bytes. ADD-PATH ids are sent when `ctx.addPathTx` has the family.
 */
export function packUpdates(o: PackOptions): Uint8Array[] {
  const { family, items, ctx } = o;
  if (items.length === 0) return [];
  if (o.maxLength > MAX_EXTENDED_MESSAGE_LENGTH) throw new LocalUsageError(`maxLength ${o.maxLength}`);
  const addPath = ctx.addPathTx.has(family);
  const { afi, safi } = afiSafiCode(family);
  const ipv4 = family === 'ipv4-unicast';
  const withdraw = o.attributes === undefined;
  let attrs: PathAttributes | undefined; // the attribute block after NLRI / MP attribute
  let mpHead = 0; // MP attribute value bytes before its NLRI
  if (o.attributes !== undefined) {
    if (ipv4) {
      // Object.assign, not `{ ...a, nextHop }`: a spread that adds a property gives every result its
      // own hidden class, and the encoder's property reads then go megamorphic (~10x slower).
      attrs =
        o.nextHop === undefined ? o.attributes : Object.assign({}, o.attributes, { nextHop: o.nextHop });
      if (attrs.nextHop === undefined)
        throw new LocalUsageError('an IPv4 unicast announcement needs a next hop');
    } else {
      if (o.nextHop === undefined) throw new LocalUsageError(`a ${family} announcement needs a next hop`);
      // RFC 4760 §3: with only MP_REACH_NLRI, the NEXT_HOP attribute is neither needed nor used.
      // (Not rest-destructuring, which makes a slow dictionary-mode object.)
      attrs =
        o.attributes.nextHop === undefined
          ? o.attributes
          : Object.assign({}, o.attributes, { nextHop: undefined });
      mpHead = mpReachHeadLength(safi, o.nextHop, o.linkLocalNextHop);
    }
  } else if (!ipv4) {
    mpHead = 3; // MP_UNREACH_NLRI: AFI, SAFI
  }
  const attrLen = attrs === undefined ? 0 : attributesLength(attrs, ctx);
  // Bytes every message carries besides its NLRI; the MP attribute header counted at its largest.
  const fixed = UPDATE_OVERHEAD + attrLen + (ipv4 ? 0 : 4 + mpHead);

  // Pass 1: where each message ends, its NLRI bytes, and the total size.
  const ends: number[] = [];
  const sizes: number[] = [];
  let total = 0;
  for (let i = 0; i < items.length;) {
    let size = 0;
    let j = i;
    for (; j < items.length; j++) {
      const l = nlriLength(items[j]!, family, addPath);
      if (fixed + size + l > o.maxLength) break;
      size += l;
    }
    if (j === i)
      throw new LocalUsageError(`an UPDATE of ${fixed} bytes plus one route exceeds ${o.maxLength}`);
    ends.push(j);
    sizes.push(size);
    total += UPDATE_OVERHEAD + attrLen + size + (ipv4 ? 0 : mpHead + (mpHead + size > 255 ? 4 : 3));
    i = j;
  }

  // Pass 2: every message written once into one buffer; the messages are views into it.
  const w = new Writer(total);
  const out: Uint8Array[] = [];
  let attrAt = -1; // where the attribute block was first written, to copy it into later messages
  for (let m = 0, i = 0; m < ends.length; m++) {
    const j = ends[m]!;
    const size = sizes[m]!;
    const start = w.pos;
    if (ipv4) {
      writeHeader(w, UPDATE_OVERHEAD + attrLen + size);
      if (withdraw) w.u16(size);
      else w.u16(0).u16(attrLen);
      if (attrs !== undefined) attrAt = putAttributes(w, attrs, ctx, attrLen, attrAt);
      for (let k = i; k < j; k++) encodeNlriInto(w, items[k]!, family, addPath);
      if (withdraw) w.u16(0);
    } else {
      const mpValue = mpHead + size;
      const mpAttr = (mpValue > 255 ? 4 : 3) + mpValue;
      writeHeader(w, UPDATE_OVERHEAD + mpAttr + attrLen);
      w.u16(0).u16(mpAttr + attrLen);
      if (withdraw) {
        writeAttributeHeader(w, AttrFlag.OPTIONAL, AttrType.MP_UNREACH_NLRI, mpValue);
        w.u16(afi).u8(safi);
      } else {
        writeAttributeHeader(w, AttrFlag.OPTIONAL, AttrType.MP_REACH_NLRI, mpValue); // RFC 7606 §5.1
        encodeMpReachHead(w, afi, safi, o.nextHop!, o.linkLocalNextHop);
      }
      for (let k = i; k < j; k++) encodeNlriInto(w, items[k]!, family, addPath);
      if (attrs !== undefined) attrAt = putAttributes(w, attrs, ctx, attrLen, attrAt);
    }
    out.push(w.buf.subarray(start, w.pos));
    i = j;
  }
  w.finish();
  return out;
}

/** Writes the attribute block: encoded the first time, copied from that first copy afterwards. */
function putAttributes(
  w: Writer,
  attrs: PathAttributes,
  ctx: CodecContext,
  len: number,
  firstAt: number,
): number {
  const at = w.pos;
  if (firstAt >= 0) {
    w.buf.copyWithin(at, firstAt, firstAt + len);
    w.pos = at + len;
    return firstAt;
  }
  encodeAttributesInto(w, attrs, ctx);
  return at;
}

/** RFC 4724 §2: the End-of-RIB marker for `family`. */
export function encodeEndOfRib(family: AfiSafiName): Uint8Array {
  if (family === 'ipv4-unicast') return encodeUpdate({});
  const { afi, safi } = afiSafiCode(family);
  const w = new Writer(6);
  writeAttributeHeader(w, AttrFlag.OPTIONAL, AttrType.MP_UNREACH_NLRI, 3);
  w.u16(afi).u8(safi);
  return encodeUpdate({ attributes: w.finish() });
}

/**
 * The family whose End-of-RIB this UPDATE is (RFC 4724 §2), or undefined. For MP families the
 * attribute section must hold exactly one MP_UNREACH_NLRI with no NLRI. `decoded`, when given,
 * supplies the already decoded MP_UNREACH_NLRI.
 */
export function isEndOfRib(update: UpdateMessage, decoded?: DecodedAttributes): AfiSafiName | undefined {
  if (update.withdrawn.length !== 0 || update.nlri.length !== 0) return undefined;
  const a = update.attributes;
  if (a.length === 0) return 'ipv4-unicast';
  const hdr = a[0]! & AttrFlag.EXTENDED_LENGTH ? 4 : 3;
  if (a.length !== hdr + 3 || a[1] !== AttrType.MP_UNREACH_NLRI) return undefined;
  const len = hdr === 4 ? (a[2]! << 8) | a[3]! : a[2]!;
  if (len !== 3) return undefined;
  if (decoded !== undefined) {
    const u = decoded.mpUnreach;
    return u === undefined || u.nlri.length !== 0 ? undefined : afiSafiName(u.afi, u.safi);
  }
  return afiSafiName((a[hdr]! << 8) | a[hdr + 1]!, a[hdr + 2]!);
}
