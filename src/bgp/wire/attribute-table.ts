/**
 * The path attribute descriptor table: one entry per type code vce interprets, with the expected
 * Optional/Transitive flags (RFC 4271 §5), the RFC 7606 action when malformed, and the value
 * codec (decode into the decoder state, length and encode from PathAttributes).
 *
 * Actions: ORIGIN, AS_PATH, NEXT_HOP, MED, LOCAL_PREF -> treat-as-withdraw (RFC 7606 §3.e,
 * §7.1-§7.5); ATOMIC_AGGREGATE, AGGREGATOR -> attribute-discard (§3.f, §7.6, §7.7); COMMUNITIES,
 * ORIGINATOR_ID, CLUSTER_LIST, EXTENDED_COMMUNITIES -> treat-as-withdraw (§7.8-§7.10, §7.14), with
 * LOCAL_PREF / ORIGINATOR_ID / CLUSTER_LIST from an eBGP peer discarded (§7.5, §7.9, §7.10);
 * MP_REACH_NLRI / MP_UNREACH_NLRI -> session-reset (§5.3, §7.11); AS4_PATH / AS4_AGGREGATOR ->
 * attribute-discard (RFC 6793 §6); LARGE_COMMUNITY -> treat-as-withdraw (RFC 8092 §5); OTC ->
 * treat-as-withdraw (RFC 9234 §5).
 *
 * Decoders never copy: byte fields are views into the received attribute. Encoders write exactly
 * the length they report and never mutate their input. The walk itself is in attributes.ts.
 */
import type { Writer } from '../../lib/bytes.ts';
import { AS_TRANS, AttrFlag, AttrType, UpdateErrorSubcode as Sub } from './constants.ts';
import { LocalUsageError, type UpdateErrorAction } from './errors.ts';
import type { Aggregator, AsPathSegment, CodecContext, MpReach, MpUnreach, PathAttributes } from './types.ts';
import {
  asPathLength,
  decodeAsPath,
  encodeAsPath,
  hasConfedSegment,
  needsAs4Path,
  stripConfed,
} from './as-path.ts';
import { decodeMpReach, decodeMpUnreach } from './mp.ts';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Per-call decoder state; descriptors fill `a` and the AS4/MP side slots. */
export interface DecodeState {
  readonly ctx: CodecContext;
  readonly a: Mutable<PathAttributes>;
  as4Path?: AsPathSegment[];
  as4Aggregator?: Aggregator;
  mpReach?: MpReach;
  mpUnreach?: MpUnreach;
}

/** What a decoder reports when the value is malformed; action/subcode default from the descriptor. */
export interface Problem {
  readonly reason: string;
  readonly action?: UpdateErrorAction;
  readonly subcode?: number;
}

export interface AttrDescriptor {
  readonly code: number;
  readonly name: string;
  /** Expected Optional and Transitive bits (RFC 4271 §5, §4.3). */
  readonly flags: number;
  /** RFC 7606 action when the attribute is malformed (including a flags conflict, §3.c). */
  readonly onMalformed: UpdateErrorAction;
  /** NOTIFICATION subcode reported for a malformed value (RFC 4271 §6.3). */
  readonly subcode: number;
  /** Decodes the value at b[o, o + n) into `st`; byte fields kept are views into `b`. */
  readonly decode: (b: Uint8Array, o: number, n: number, st: DecodeState) => Problem | undefined;
  /** Value length to emit, or -1 when the attribute is absent (MP attributes: always -1 here). */
  readonly length: (a: PathAttributes, ctx: CodecContext) => number;
  readonly encode: (w: Writer, a: PathAttributes, ctx: CodecContext) => void;
}

const WK = AttrFlag.TRANSITIVE; // well-known: Optional 0, Transitive 1
const OPT = AttrFlag.OPTIONAL; // optional non-transitive
const OPT_T = AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE; // optional transitive

function u32(v: Uint8Array, o: number): number {
  return ((v[o]! << 24) | (v[o + 1]! << 16) | (v[o + 2]! << 8) | v[o + 3]!) >>> 0;
}

function badLength(name: string, n: number, expected: string): Problem {
  return { reason: `${name} length ${n}, expected ${expected}`, subcode: Sub.ATTRIBUTE_LENGTH_ERROR };
}

function u32List(b: Uint8Array, o: number, n: number): number[] {
  const out = new Array<number>(n >> 2);
  for (let i = 0; i < out.length; i++) out[i] = u32(b, o + i * 4);
  return out;
}

const ABSENT = -1;
const noEncode = (): number => ABSENT;
const noWrite = (): void => undefined;

/** A 4-byte value attribute (MED, LOCAL_PREF, ORIGINATOR_ID, OTC). */
function u32Attr(
  code: number,
  name: string,
  flags: number,
  field: 'med' | 'localPref' | 'originatorId' | 'otc',
  onMalformed: UpdateErrorAction,
  ebgpDiscard: boolean,
): AttrDescriptor {
  return {
    code,
    name,
    flags,
    onMalformed,
    subcode: Sub.ATTRIBUTE_LENGTH_ERROR,
    decode(b, o, n, st) {
      // RFC 7606 §7.5 (LOCAL_PREF), §7.9 (ORIGINATOR_ID): from an external peer -> attribute discard.
      if (ebgpDiscard && st.ctx.ebgp)
        return { reason: `${name} from an eBGP peer`, action: 'attribute-discard' };
      if (n !== 4) return badLength(name, n, '4');
      st.a[field] = u32(b, o);
      return undefined;
    },
    length: (a) => (a[field] === undefined ? ABSENT : 4),
    encode: (w, a) => void w.u32(a[field]!),
  };
}

/** A list attribute of fixed-size items: COMMUNITIES, CLUSTER_LIST, EXT_COMMUNITIES, LARGE_COMMUNITY. */
function listAttr<T>(
  code: number,
  name: string,
  itemSize: number,
  get: (a: PathAttributes) => readonly T[] | undefined,
  set: (st: DecodeState, b: Uint8Array, o: number, n: number) => void,
  put: (w: Writer, item: T) => void,
  ebgpDiscard = false,
  flags = OPT_T,
): AttrDescriptor {
  return {
    code,
    name,
    flags,
    onMalformed: 'treat-as-withdraw',
    subcode: Sub.OPTIONAL_ATTRIBUTE_ERROR,
    decode(b, o, n, st) {
      if (ebgpDiscard && st.ctx.ebgp)
        return { reason: `${name} from an eBGP peer`, action: 'attribute-discard' };
      // Zero length is malformed too (RFC 7606 §4, last paragraph).
      if (n === 0 || n % itemSize !== 0) return badLength(name, n, `a non-zero multiple of ${itemSize}`);
      set(st, b, o, n);
      return undefined;
    },
    length(a) {
      const l = get(a);
      return l === undefined || l.length === 0 ? ABSENT : l.length * itemSize; // never send empty
    },
    encode(w, a) {
      for (const item of get(a)!) put(w, item);
    },
  };
}

function aggregatorDecode(
  b: Uint8Array,
  o: number,
  n: number,
  width: 2 | 4,
  name: string,
): Aggregator | Problem {
  if (n !== width + 4) return badLength(name, n, String(width + 4));
  return width === 4
    ? { asn: u32(b, o), address: b.subarray(o + 4, o + 8) }
    : { asn: (b[o]! << 8) | b[o + 1]!, address: b.subarray(o + 2, o + 6) };
}

function isProblem(x: object): x is Problem {
  return 'reason' in x;
}

// ---------------------------------------------------------------- the table

export const ATTRIBUTE_DESCRIPTORS: readonly AttrDescriptor[] = [
  {
    code: AttrType.ORIGIN, // RFC 4271 §5.1.1; RFC 7606 §7.1
    name: 'ORIGIN',
    flags: WK,
    onMalformed: 'treat-as-withdraw',
    subcode: Sub.INVALID_ORIGIN_ATTRIBUTE,
    decode(b, o, n, st) {
      if (n !== 1) return badLength('ORIGIN', n, '1');
      if (b[o]! > 2) return { reason: `ORIGIN value ${b[o]}` };
      st.a.origin = b[o]!;
      return undefined;
    },
    length: (a) => (a.origin === undefined ? ABSENT : 1),
    encode: (w, a) => void w.u8(a.origin!),
  },
  {
    code: AttrType.AS_PATH, // RFC 4271 §5.1.2; RFC 6793 §4; RFC 7606 §7.2
    name: 'AS_PATH',
    flags: WK,
    onMalformed: 'treat-as-withdraw',
    subcode: Sub.MALFORMED_AS_PATH,
    decode(b, o, n, st) {
      const segs = decodeAsPath(b, st.ctx.as4 ? 4 : 2, o, o + n);
      if (typeof segs === 'string') return { reason: `AS_PATH ${segs}` };
      // RFC 7606 §7.2, RFC 5065 §5: confederation segments only come from confederation peers.
      if (st.ctx.ebgp && hasConfedSegment(segs)) return { reason: 'AS_PATH confederation segment from eBGP' };
      st.a.asPath = segs;
      return undefined;
    },
    length: (a, ctx) => (a.asPath === undefined ? ABSENT : asPathLength(a.asPath, ctx.as4 ? 4 : 2)),
    encode: (w, a, ctx) => encodeAsPath(w, a.asPath!, ctx.as4 ? 4 : 2),
  },
  {
    code: AttrType.NEXT_HOP, // RFC 4271 §5.1.3; RFC 7606 §7.3 (semantic checks are the caller's)
    name: 'NEXT_HOP',
    flags: WK,
    onMalformed: 'treat-as-withdraw',
    subcode: Sub.ATTRIBUTE_LENGTH_ERROR,
    decode(b, o, n, st) {
      if (n !== 4) return badLength('NEXT_HOP', n, '4');
      st.a.nextHop = b.subarray(o, o + 4);
      return undefined;
    },
    length(a) {
      if (a.nextHop === undefined) return ABSENT;
      if (a.nextHop.length !== 4) throw new LocalUsageError('NEXT_HOP must be 4 bytes');
      return 4;
    },
    encode: (w, a) => void w.bytes(a.nextHop!),
  },
  u32Attr(AttrType.MULTI_EXIT_DISC, 'MULTI_EXIT_DISC', OPT, 'med', 'treat-as-withdraw', false), // §7.4
  u32Attr(AttrType.LOCAL_PREF, 'LOCAL_PREF', WK, 'localPref', 'treat-as-withdraw', true), // §7.5
  {
    code: AttrType.ATOMIC_AGGREGATE, // RFC 4271 §5.1.6; RFC 7606 §7.6
    name: 'ATOMIC_AGGREGATE',
    flags: WK,
    onMalformed: 'attribute-discard',
    subcode: Sub.ATTRIBUTE_LENGTH_ERROR,
    decode(_b, _o, n, st) {
      if (n !== 0) return badLength('ATOMIC_AGGREGATE', n, '0');
      st.a.atomicAggregate = true;
      return undefined;
    },
    length: (a) => (a.atomicAggregate === true ? 0 : ABSENT),
    encode: noWrite,
  },
  {
    code: AttrType.AGGREGATOR, // RFC 4271 §5.1.7; RFC 6793 §4; RFC 7606 §7.7
    name: 'AGGREGATOR',
    flags: OPT_T,
    onMalformed: 'attribute-discard',
    subcode: Sub.ATTRIBUTE_LENGTH_ERROR,
    decode(b, o, n, st) {
      const r = aggregatorDecode(b, o, n, st.ctx.as4 ? 4 : 2, 'AGGREGATOR');
      if (isProblem(r)) return r;
      st.a.aggregator = r;
      return undefined;
    },
    length: (a, ctx) => (a.aggregator === undefined ? ABSENT : ctx.as4 ? 8 : 6),
    encode(w, a, ctx) {
      const { asn, address } = a.aggregator!;
      if (ctx.as4) w.u32(asn);
      else w.u16(asn > 0xffff ? AS_TRANS : asn); // RFC 6793 §4.2.2
      w.bytes(address.subarray(0, 4));
    },
  },
  listAttr(
    AttrType.COMMUNITIES, // RFC 1997; RFC 7606 §7.8
    'COMMUNITIES',
    4,
    (a) => a.communities,
    (st, b, o, n) => void (st.a.communities = u32List(b, o, n)),
    (w, c: number) => void w.u32(c),
  ),
  u32Attr(AttrType.ORIGINATOR_ID, 'ORIGINATOR_ID', OPT, 'originatorId', 'treat-as-withdraw', true), // §7.9
  listAttr(
    AttrType.CLUSTER_LIST, // RFC 4456 §8; RFC 7606 §7.10
    'CLUSTER_LIST',
    4,
    (a) => a.clusterList,
    (st, b, o, n) => void (st.a.clusterList = u32List(b, o, n)),
    (w, c: number) => void w.u32(c),
    true,
    OPT,
  ),
  {
    code: AttrType.MP_REACH_NLRI, // RFC 4760 §3; RFC 7606 §5.3, §7.11
    name: 'MP_REACH_NLRI',
    flags: OPT,
    onMalformed: 'session-reset',
    subcode: Sub.OPTIONAL_ATTRIBUTE_ERROR,
    decode(b, o, n, st) {
      const r = decodeMpReach(b.subarray(o, o + n));
      if (typeof r === 'string') return { reason: `MP_REACH_NLRI ${r}` };
      st.mpReach = r;
      return undefined;
    },
    length: noEncode,
    encode: noWrite,
  },
  {
    code: AttrType.MP_UNREACH_NLRI, // RFC 4760 §4; RFC 7606 §5.3
    name: 'MP_UNREACH_NLRI',
    flags: OPT,
    onMalformed: 'session-reset',
    subcode: Sub.OPTIONAL_ATTRIBUTE_ERROR,
    decode(b, o, n, st) {
      const r = decodeMpUnreach(b.subarray(o, o + n));
      if (typeof r === 'string') return { reason: `MP_UNREACH_NLRI ${r}` };
      st.mpUnreach = r;
      return undefined;
    },
    length: noEncode,
    encode: noWrite,
  },
  listAttr(
    AttrType.EXTENDED_COMMUNITIES, // RFC 4360 §2; RFC 7606 §7.14
    'EXTENDED_COMMUNITIES',
    8,
    (a) => a.extCommunities,
    (st, b, o, n) => {
      const out = new Array<Uint8Array>(n >> 3);
      for (let i = 0; i < out.length; i++) out[i] = b.subarray(o + i * 8, o + i * 8 + 8);
      st.a.extCommunities = out;
    },
    (w, c: Uint8Array) => {
      if (c.length !== 8) throw new LocalUsageError('extended community must be 8 bytes');
      w.bytes(c);
    },
  ),
  {
    code: AttrType.AS4_PATH, // RFC 6793 §3, §6
    name: 'AS4_PATH',
    flags: OPT_T,
    onMalformed: 'attribute-discard',
    subcode: Sub.OPTIONAL_ATTRIBUTE_ERROR,
    decode(b, o, n, st) {
      if (st.ctx.as4) return { reason: 'AS4_PATH from a 4-octet AS speaker' }; // RFC 6793 §4.1
      if (n < 6) return badLength('AS4_PATH', n, 'at least 6'); // RFC 6793 §6
      const segs = decodeAsPath(b, 4, o, o + n);
      if (typeof segs === 'string') return { reason: `AS4_PATH ${segs}` };
      st.as4Path = stripConfed(segs); // RFC 6793 §6: confederation segments are not valid here
      return undefined;
    },
    length: (a, ctx) =>
      ctx.as4 || a.asPath === undefined || !needsAs4Path(a.asPath)
        ? ABSENT
        : asPathLength(stripConfed(a.asPath), 4),
    encode: (w, a) => encodeAsPath(w, stripConfed(a.asPath!), 4), // RFC 6793 §4.2.2
  },
  {
    code: AttrType.AS4_AGGREGATOR, // RFC 6793 §3, §6
    name: 'AS4_AGGREGATOR',
    flags: OPT_T,
    onMalformed: 'attribute-discard',
    subcode: Sub.OPTIONAL_ATTRIBUTE_ERROR,
    decode(b, o, n, st) {
      if (st.ctx.as4) return { reason: 'AS4_AGGREGATOR from a 4-octet AS speaker' }; // RFC 6793 §4.1
      const r = aggregatorDecode(b, o, n, 4, 'AS4_AGGREGATOR');
      if (isProblem(r)) return r;
      st.as4Aggregator = r;
      return undefined;
    },
    length: (a, ctx) => (ctx.as4 || a.aggregator === undefined || a.aggregator.asn <= 0xffff ? ABSENT : 8),
    encode: (w, a) => void w.u32(a.aggregator!.asn).bytes(a.aggregator!.address.subarray(0, 4)),
  },
  listAttr(
    AttrType.LARGE_COMMUNITY, // RFC 8092 §3, §5
    'LARGE_COMMUNITY',
    12,
    (a) => a.largeCommunities,
    (st, b, o, n) => {
      const out = new Array<{ global: number; local1: number; local2: number }>(n / 12);
      for (let i = 0, p = o; i < out.length; i++, p += 12) {
        out[i] = { global: u32(b, p), local1: u32(b, p + 4), local2: u32(b, p + 8) };
      }
      st.a.largeCommunities = out;
    },
    (w, c: { global: number; local1: number; local2: number }) =>
      void w.u32(c.global).u32(c.local1).u32(c.local2),
  ),
  u32Attr(AttrType.OTC, 'OTC', OPT_T, 'otc', 'treat-as-withdraw', false), // RFC 9234 §5
];

const TABLE: readonly (AttrDescriptor | undefined)[] = (() => {
  const t = new Array<AttrDescriptor | undefined>(256).fill(undefined);
  for (const d of ATTRIBUTE_DESCRIPTORS) t[d.code] = d;
  return t;
})();

/** The descriptor for a type code, or undefined for attributes vce does not interpret. */
export function attributeDescriptor(code: number): AttrDescriptor | undefined {
  return TABLE[code];
}

/** Descriptors emitted from PathAttributes, in type-code order (MP attributes are written apart). */
export const ENCODE_ORDER: readonly AttrDescriptor[] = ATTRIBUTE_DESCRIPTORS.filter(
  (d) => d.code !== AttrType.MP_REACH_NLRI && d.code !== AttrType.MP_UNREACH_NLRI,
).sort((x, y) => x.code - y.code);
