/**
 * The path attribute section of an UPDATE: `decodeAttributes` applies RFC 7606 in full using the
 * descriptor table (attribute-table.ts); `encodeAttributes` writes the canonical form.
 *
 * Decoding walks the section once, never copies value bytes (byte fields are views into `raw`),
 * allocates nothing for the error list on the happy path, and returns every error found with the
 * most severe action. 'session-reset' errors are thrown as `UpdateError`; nothing else is thrown.
 *   RFC 7606 §3.c  Optional/Transitive flags in conflict -> that attribute's own action
 *   RFC 7606 §3.d  missing ORIGIN, AS_PATH (any reachable NLRI), NEXT_HOP (NLRI field), LOCAL_PREF
 *                  (iBGP; RFC 4271 §5.1.5) -> treat-as-withdraw
 *   RFC 7606 §3.g  duplicates: keep the first; a second MP_REACH/MP_UNREACH -> session-reset
 *   RFC 7606 §4    header or length overrunning the section -> treat-as-withdraw, stop the walk and
 *                  rely on the Total Path Attribute Length (splitUpdate) to find the NLRI
 *   RFC 7606 §5.2  no reachable NLRI and an error stronger than attribute-discard -> session-reset
 *   RFC 4271 §6.3  unrecognized well-known attribute -> session-reset (RFC 7606 keeps it)
 *   RFC 6793 §4.2.3 AS4_PATH / AS4_AGGREGATOR from an OLD speaker merged into AS_PATH/AGGREGATOR
 * MP_REACH/MP_UNREACH NLRI stay raw; the caller reads them with `decodeNlri(..., 'mp')`, which fails
 * with 'afi-safi-disable': treat-as-withdraw presumes that NLRI can be parsed (RFC 7606 §3.j, §5.3).
 *
 * Encoding computes the size first and writes once: MP_REACH_NLRI and MP_UNREACH_NLRI first
 * (RFC 7606 §5.1), then by type code, unknown attributes at their code's place; Extended Length only
 * above 255 bytes (RFC 4271 §4.3); toward a 2-byte-AS peer AS_TRANS plus AS4_PATH / AS4_AGGREGATOR
 * when needed (RFC 6793 §4.2.2); unknown optional transitive attributes byte-exact with Partial set
 * (RFC 4271 §5). Encoders never mutate their input.
 */
import { ShortReadError, Writer } from '../../lib/bytes.ts';
import { AS_TRANS, AttrFlag, AttrType, UpdateErrorSubcode as Sub, attrTypeName } from './constants.ts';
import { LocalUsageError, UpdateError, moreSevere, type UpdateErrorAction } from './errors.ts';
import type { CodecContext, DecodedAttributes, PathAttributes, RawAttribute } from './types.ts';
import { ENCODE_ORDER, attributeDescriptor, type DecodeState, type Problem } from './attribute-table.ts';
import { reconcileAs4Path } from './as-path.ts';
import { encodeMpReachHead, mpReachHeadLength } from './mp.ts';

export { attributeDescriptor, ATTRIBUTE_DESCRIPTORS, type AttrDescriptor } from './attribute-table.ts';

const OT_MASK = AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE;
const NO_ERRORS: readonly UpdateError[] = Object.freeze([]);
/** RFC 7606 §3.d: well-known mandatory attributes (NEXT_HOP for the NLRI field, LOCAL_PREF for iBGP). */
const MANDATORY = [AttrType.ORIGIN, AttrType.AS_PATH, AttrType.NEXT_HOP, AttrType.LOCAL_PREF] as const;

// "Seen" marks per type code without clearing 256 bytes per call: a mark is current when it
// equals this call's generation. Decoding is synchronous, so one table serves every session.
const seenGen = new Uint32Array(256);
let generation = 0;

/** Collects errors; throws at once for 'session-reset' (the strongest action wins, RFC 7606 §3.h). */
class ErrorSink {
  list: UpdateError[] | undefined;
  action: UpdateErrorAction | undefined;
  add(action: UpdateErrorAction, subcode: number, msg: string, data?: Uint8Array, attrType?: number): void {
    const e = new UpdateError(action, subcode, msg, data, attrType);
    if (action === 'session-reset') throw e;
    (this.list ??= []).push(e);
    this.action = moreSevere(this.action, action);
  }
}

/**
 * Decodes the path attribute section of one UPDATE with RFC 7606 handling.
 * @param hasNlri the UPDATE's NLRI field (IPv4 unicast reachability) is non-empty.
 */
export function decodeAttributes(raw: Uint8Array, ctx: CodecContext, hasNlri: boolean): DecodedAttributes {
  generation = (generation + 1) >>> 0;
  if (generation === 0) {
    seenGen.fill(0);
    generation = 1;
  }
  const gen = generation;
  const st: DecodeState = { ctx, a: {} };
  const sink = new ErrorSink();
  let unknown: RawAttribute[] | undefined;
  let framingError = false;
  const n = raw.length;
  let pos = 0;

  while (pos < n) {
    // RFC 7606 §4: fewer than 3 (or 4 with Extended Length) octets left, or a value overrunning the
    // section, makes the attribute list malformed: treat-as-withdraw and stop parsing attributes.
    const flags = raw[pos]!;
    const code = raw[pos + 1];
    const hdr = flags & AttrFlag.EXTENDED_LENGTH ? 4 : 3;
    if (code === undefined || pos + hdr > n) {
      sink.add('treat-as-withdraw', Sub.MALFORMED_ATTRIBUTE_LIST, `truncated attribute header at ${pos}`);
      framingError = true;
      break;
    }
    const len = hdr === 4 ? (raw[pos + 2]! << 8) | raw[pos + 3]! : raw[pos + 2]!;
    const end = pos + hdr + len;
    if (end > n) {
      sink.add(
        'treat-as-withdraw',
        Sub.MALFORMED_ATTRIBUTE_LIST,
        `${attrTypeName(code)} length ${len} overruns the attribute section`,
        undefined,
        code,
      );
      framingError = true;
      break;
    }
    const start = pos; // views are made only for what is kept or reported
    const valueStart = pos + hdr;
    pos = end;

    if (seenGen[code] === gen) {
      // RFC 7606 §3.g
      if (code === AttrType.MP_REACH_NLRI || code === AttrType.MP_UNREACH_NLRI) {
        sink.add(
          'session-reset',
          Sub.MALFORMED_ATTRIBUTE_LIST,
          `duplicate ${attrTypeName(code)}`,
          raw.subarray(start, end),
          code,
        );
      }
      sink.add(
        'attribute-discard',
        Sub.MALFORMED_ATTRIBUTE_LIST,
        `duplicate ${attrTypeName(code)}`,
        raw.subarray(start, end),
        code,
      );
      continue;
    }
    seenGen[code] = gen;

    const desc = attributeDescriptor(code);
    if (desc === undefined) {
      if ((flags & AttrFlag.OPTIONAL) === 0) {
        // RFC 4271 §6.3: Unrecognized Well-known Attribute; data is the attribute.
        sink.add(
          'session-reset',
          Sub.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
          `unrecognized well-known attribute ${code}`,
          raw.subarray(start, end),
          code,
        );
      }
      // RFC 4271 §5: keep unknown optional transitive attributes; drop optional non-transitive ones.
      if (flags & AttrFlag.TRANSITIVE)
        (unknown ??= []).push({
          flags: flags & ~AttrFlag.EXTENDED_LENGTH,
          code,
          value: raw.subarray(valueStart, end),
        });
      continue;
    }

    let problem: Problem | undefined;
    if ((flags & OT_MASK) !== desc.flags) {
      // RFC 7606 §3.c: handled as that attribute being malformed.
      problem = { reason: `${desc.name} flags 0x${flags.toString(16)}`, subcode: Sub.ATTRIBUTE_FLAGS_ERROR };
    } else {
      try {
        problem = desc.decode(raw, valueStart, len, st);
      } catch (e) {
        if (!(e instanceof ShortReadError)) throw e;
        problem = { reason: `${desc.name} truncated` };
      }
    }
    if (problem !== undefined) {
      sink.add(
        problem.action ?? desc.onMalformed,
        problem.subcode ?? desc.subcode,
        problem.reason,
        raw.subarray(start, end),
        code,
      );
    }
  }

  if (!ctx.as4) reconcileAs4(st);

  const reachable = hasNlri || (st.mpReach !== undefined && st.mpReach.nlri.length > 0);
  if (reachable && !framingError) {
    // RFC 7606 §3.d; NEXT_HOP only for the NLRI field (RFC 4760 §3 makes it discretionary otherwise).
    for (const c of MANDATORY) {
      if (
        seenGen[c] === gen ||
        (c === AttrType.NEXT_HOP && !hasNlri) ||
        (c === AttrType.LOCAL_PREF && ctx.ebgp)
      ) {
        continue;
      }
      const msg = `missing ${attrTypeName(c)}`;
      sink.add('treat-as-withdraw', Sub.MISSING_WELL_KNOWN_ATTRIBUTE, msg, Uint8Array.of(c), c);
    }
  }
  if (!reachable && sink.action !== undefined && sink.action !== 'attribute-discard') {
    // RFC 7606 §5.2: with nothing to withdraw, an error needing more than attribute discard resets.
    const first = sink.list!.find((e) => e.action !== 'attribute-discard')!;
    sink.add(
      'session-reset',
      first.subcode,
      `${first.message} (UPDATE without reachable NLRI)`,
      first.data,
      first.attrType,
    );
  }
  if (unknown !== undefined) st.a.unknown = unknown;

  const out: { -readonly [K in keyof DecodedAttributes]: DecodedAttributes[K] } = {
    attrs: st.a,
    errors: sink.list ?? NO_ERRORS,
  };
  if (st.mpReach !== undefined) out.mpReach = st.mpReach;
  if (st.mpUnreach !== undefined) out.mpUnreach = st.mpUnreach;
  if (sink.action !== undefined) out.action = sink.action;
  return out;
}

/**
 * RFC 6793 §4.2.3, from an OLD speaker. When both AGGREGATOR and AS4_AGGREGATOR arrived: an
 * AGGREGATOR other than AS_TRANS means an OLD speaker aggregated, so AS4_AGGREGATOR and AS4_PATH
 * are ignored; otherwise AS4_AGGREGATOR replaces it. (AS4_AGGREGATOR without AGGREGATOR is ignored,
 * as BIRD does.) Then AS4_PATH is merged into AS_PATH.
 */
function reconcileAs4(st: DecodeState): void {
  const agg = st.a.aggregator;
  if (agg !== undefined && st.as4Aggregator !== undefined) {
    if (agg.asn !== AS_TRANS) return;
    st.a.aggregator = st.as4Aggregator;
  }
  if (st.a.asPath !== undefined && st.as4Path !== undefined)
    st.a.asPath = reconcileAs4Path(st.a.asPath, st.as4Path);
}

// ---------------------------------------------------------------- encoding

/** MP_REACH_NLRI / MP_UNREACH_NLRI contents for `encodeAttributes`; NLRI already encoded. */
export interface MpEncode {
  readonly reach?: {
    readonly afi: number;
    readonly safi: number;
    readonly nextHop: Uint8Array;
    readonly linkLocalNextHop?: Uint8Array;
    readonly nlri: Uint8Array;
  };
  readonly unreach?: { readonly afi: number; readonly safi: number; readonly nlri: Uint8Array };
}

/** Value length per ENCODE_ORDER entry, filled by `measure` and read back by the encoder. */
const scratchLens = new Int32Array(ENCODE_ORDER.length);

function headerLength(valueLength: number): number {
  if (valueLength > 0xffff) throw new LocalUsageError(`attribute value of ${valueLength} bytes`);
  return valueLength > 255 ? 4 : 3;
}

/** Writes an attribute header; Extended Length only when the value needs it (RFC 4271 §4.3). */
export function writeAttributeHeader(w: Writer, flags: number, code: number, valueLength: number): void {
  if (valueLength > 255)
    w.u8((flags | AttrFlag.EXTENDED_LENGTH) & 0xff)
      .u8(code)
      .u16(valueLength);
  else
    w.u8(flags & ~AttrFlag.EXTENDED_LENGTH)
      .u8(code)
      .u8(valueLength);
}

const NO_UNKNOWN: readonly RawAttribute[] = Object.freeze([]);
const byCode = (x: RawAttribute, y: RawAttribute): number => x.code - y.code;

function sortedUnknown(attrs: PathAttributes): readonly RawAttribute[] {
  const u = attrs.unknown;
  if (u === undefined) return NO_UNKNOWN;
  return u.length < 2 ? u : u.slice().sort(byCode); // stable: equal codes keep their order
}

function unknownFlags(u: RawAttribute): number {
  // RFC 4271 §5: an unrecognized optional transitive attribute is passed on with Partial set.
  const f = u.flags & ~AttrFlag.EXTENDED_LENGTH;
  return (f & OT_MASK) === OT_MASK ? f | AttrFlag.PARTIAL : f;
}

function measure(
  attrs: PathAttributes,
  ctx: CodecContext,
  mp: MpEncode | undefined,
  lens: Int32Array,
): number {
  let total = 0;
  if (mp?.reach !== undefined) {
    const r = mp.reach;
    const l = mpReachHeadLength(r.safi, r.nextHop, r.linkLocalNextHop) + r.nlri.length;
    total += headerLength(l) + l;
  }
  if (mp?.unreach !== undefined) {
    const l = 3 + mp.unreach.nlri.length;
    total += headerLength(l) + l;
  }
  for (let i = 0; i < ENCODE_ORDER.length; i++) {
    const l = ENCODE_ORDER[i]!.length(attrs, ctx);
    lens[i] = l;
    if (l >= 0) total += headerLength(l) + l;
  }
  const unknown = attrs.unknown;
  if (unknown === undefined) return total;
  for (const u of unknown) {
    if (attributeDescriptor(u.code) !== undefined) {
      throw new LocalUsageError(`unknown attribute with the code of ${attrTypeName(u.code)}`);
    }
    total += headerLength(u.value.length) + u.value.length;
  }
  return total;
}

/** Bytes `encodeAttributes` would produce for the same arguments. */
export function attributesLength(attrs: PathAttributes, ctx: CodecContext, mp?: MpEncode): number {
  return measure(attrs, ctx, mp, scratchLens);
}

/** Encodes a path attribute section in canonical order (see the module comment). */
export function encodeAttributes(attrs: PathAttributes, ctx: CodecContext, mp?: MpEncode): Uint8Array {
  const w = new Writer(measure(attrs, ctx, mp, scratchLens));
  writeMeasured(w, attrs, ctx, mp);
  return w.finish();
}

/** Writes the same bytes as `encodeAttributes` into `w` at its position (for one-buffer messages). */
export function encodeAttributesInto(
  w: Writer,
  attrs: PathAttributes,
  ctx: CodecContext,
  mp?: MpEncode,
): void {
  const end = w.pos + measure(attrs, ctx, mp, scratchLens);
  writeMeasured(w, attrs, ctx, mp);
  if (w.pos !== end) throw new LocalUsageError(`attributes wrote ${w.pos - end} bytes more than measured`);
}

/** The writing half; `scratchLens` must hold `measure`'s result for these arguments. */
function writeMeasured(w: Writer, attrs: PathAttributes, ctx: CodecContext, mp: MpEncode | undefined): void {
  const lens = scratchLens; // encoding is synchronous and never re-entered
  if (mp?.reach !== undefined) {
    const r = mp.reach;
    const l = mpReachHeadLength(r.safi, r.nextHop, r.linkLocalNextHop) + r.nlri.length;
    writeAttributeHeader(w, AttrFlag.OPTIONAL, AttrType.MP_REACH_NLRI, l); // RFC 7606 §5.1: first
    encodeMpReachHead(w, r.afi, r.safi, r.nextHop, r.linkLocalNextHop);
    w.bytes(r.nlri);
  }
  if (mp?.unreach !== undefined) {
    const u = mp.unreach;
    writeAttributeHeader(w, AttrFlag.OPTIONAL, AttrType.MP_UNREACH_NLRI, 3 + u.nlri.length);
    w.u16(u.afi).u8(u.safi).bytes(u.nlri);
  }
  const unknown = sortedUnknown(attrs);
  let j = 0;
  for (let i = 0; i < ENCODE_ORDER.length; i++) {
    const d = ENCODE_ORDER[i]!;
    for (; j < unknown.length && unknown[j]!.code < d.code; j++) {
      const u = unknown[j]!;
      writeAttributeHeader(w, unknownFlags(u), u.code, u.value.length);
      w.bytes(u.value);
    }
    const l = lens[i]!;
    if (l < 0) continue;
    writeAttributeHeader(w, d.flags, d.code, l);
    d.encode(w, attrs, ctx);
  }
  for (; j < unknown.length; j++) {
    const u = unknown[j]!;
    writeAttributeHeader(w, unknownFlags(u), u.code, u.value.length);
    w.bytes(u.value);
  }
}
