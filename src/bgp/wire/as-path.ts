/**
 * AS_PATH and AS4_PATH values: segments of 2- or 4-byte ASNs, and the RFC 6793 bridge between
 * 2-byte (OLD) and 4-byte (NEW) speakers.
 *
 * - RFC 4271 §4.3 / §5.1.2: segments <type, count, ASNs>; AS_SET (1), AS_SEQUENCE (2).
 * - RFC 5065 §3: AS_CONFED_SEQUENCE (3), AS_CONFED_SET (4).
 * - RFC 7606 §7.2: malformed = unknown segment type, zero count, overrun or underrun.
 * - RFC 6793 §4.2.2: toward an OLD speaker, ASNs above 65535 become AS_TRANS in AS_PATH and the
 *   real path (without confederation segments) travels in AS4_PATH.
 * - RFC 6793 §4.2.3: from an OLD speaker, AS_PATH and AS4_PATH are merged back (`reconcileAs4Path`).
 * - RFC 6793 §6: AS4_PATH must not carry confederation segments; received ones are removed.
 *
 * In memory a path is always `AsPathSegment[]` with 4-byte ASNs. Segments longer than 255 ASNs
 * (possible after prepending in memory) are split on the wire. Nothing here mutates its input.
 */
import type { Writer } from '../../lib/bytes.ts';
import { AS_TRANS, AsPathSegmentType } from './constants.ts';
import { LocalUsageError } from './errors.ts';
import type { AsPathSegment } from './types.ts';

export type AsnWidth = 2 | 4;

const MAX_SEGMENT = 255;

function isConfed(type: number): boolean {
  return type === AsPathSegmentType.AS_CONFED_SEQUENCE || type === AsPathSegmentType.AS_CONFED_SET;
}

/** Decodes the path value in v[start, end); returns the RFC 7606 §7.2 reason when malformed. */
export function decodeAsPath(
  v: Uint8Array,
  width: AsnWidth,
  start = 0,
  end = v.length,
): AsPathSegment[] | string {
  const segs: AsPathSegment[] = [];
  const n = end;
  let i = start;
  while (i < n) {
    if (i + 2 > n) return 'segment header underrun';
    const type = v[i]!;
    const count = v[i + 1]!;
    if (type < 1 || type > 4) return `unknown segment type ${type}`;
    if (count === 0) return 'zero-length segment';
    i += 2;
    if (i + count * width > n) return 'segment overruns the attribute';
    const asns = new Array<number>(count);
    if (width === 4) {
      for (let k = 0; k < count; k++, i += 4) {
        asns[k] = ((v[i]! << 24) | (v[i + 1]! << 16) | (v[i + 2]! << 8) | v[i + 3]!) >>> 0;
      }
    } else {
      for (let k = 0; k < count; k++, i += 2) asns[k] = (v[i]! << 8) | v[i + 1]!;
    }
    segs.push({ type: type as AsPathSegment['type'], asns });
  }
  return segs;
}

/** True when any segment is a confederation segment (RFC 5065). */
export function hasConfedSegment(segs: readonly AsPathSegment[]): boolean {
  return segs.some((s) => isConfed(s.type));
}

/** The path without confederation segments (RFC 6793 §4.2.2 and §6). */
export function stripConfed(segs: readonly AsPathSegment[]): AsPathSegment[] {
  return segs.filter((s) => !isConfed(s.type));
}

/** True when an AS4_PATH must accompany a 2-byte AS_PATH: some non-confed ASN exceeds 65535. */
export function needsAs4Path(segs: readonly AsPathSegment[]): boolean {
  for (const s of segs) {
    if (isConfed(s.type)) continue;
    for (const a of s.asns) if (a > 0xffff) return true;
  }
  return false;
}

/** Path length for RFC 6793 §4.2.3 reconciliation: AS_SET counts 1, confederation segments 0. */
export function countAsPath(segs: readonly AsPathSegment[]): number {
  let n = 0;
  for (const s of segs) {
    if (s.type === AsPathSegmentType.AS_SEQUENCE) n += s.asns.length;
    else if (s.type === AsPathSegmentType.AS_SET) n += 1;
  }
  return n;
}

/** Bytes the path takes on the wire with `width`-byte ASNs (long segments split at 255). */
export function asPathLength(segs: readonly AsPathSegment[], width: AsnWidth): number {
  let n = 0;
  for (const s of segs) {
    if (s.asns.length === 0) throw new LocalUsageError('AS_PATH segment without ASNs');
    n += 2 * Math.ceil(s.asns.length / MAX_SEGMENT) + width * s.asns.length;
  }
  return n;
}

/** Writes the path; with width 2, ASNs above 65535 are written as AS_TRANS (RFC 6793 §4.2.2). */
export function encodeAsPath(w: Writer, segs: readonly AsPathSegment[], width: AsnWidth): void {
  for (const s of segs) {
    for (let start = 0; start < s.asns.length; start += MAX_SEGMENT) {
      const end = Math.min(s.asns.length, start + MAX_SEGMENT);
      w.u8(s.type).u8(end - start);
      for (let k = start; k < end; k++) {
        const a = s.asns[k]!;
        if (width === 4) w.u32(a);
        else w.u16(a > 0xffff ? AS_TRANS : a);
      }
    }
  }
}

/**
 * RFC 6793 §4.2.3: rebuilds the 4-byte path from an OLD speaker's AS_PATH and AS4_PATH. When
 * AS_PATH counts fewer ASNs than AS4_PATH the AS4_PATH is ignored; otherwise the leading part of
 * AS_PATH that AS4_PATH lacks is prepended to it (confederation segments count 0 and are taken when
 * leading or adjacent to a taken segment; an AS_SET counts 1). Sequences meeting at the join merge.
 */
export function reconcileAs4Path(
  asPath: readonly AsPathSegment[],
  as4Path: readonly AsPathSegment[],
): AsPathSegment[] {
  let need = countAsPath(asPath) - countAsPath(as4Path);
  if (need < 0) return asPath.slice();
  const out: AsPathSegment[] = [];
  for (const s of asPath) {
    if (isConfed(s.type)) {
      out.push(s);
      continue;
    }
    if (need <= 0) break;
    if (s.type === AsPathSegmentType.AS_SET) {
      out.push(s);
      need -= 1;
    } else if (s.asns.length <= need) {
      out.push(s);
      need -= s.asns.length;
    } else {
      out.push({ type: AsPathSegmentType.AS_SEQUENCE, asns: s.asns.slice(0, need) });
      need = 0;
    }
  }
  // Join the prepended part and AS4_PATH into one sequence where they meet.
  const last = out[out.length - 1];
  const first = as4Path[0];
  if (
    last !== undefined &&
    first !== undefined &&
    last.type === AsPathSegmentType.AS_SEQUENCE &&
    first.type === AsPathSegmentType.AS_SEQUENCE
  ) {
    out[out.length - 1] = { type: AsPathSegmentType.AS_SEQUENCE, asns: [...last.asns, ...first.asns] };
    for (let k = 1; k < as4Path.length; k++) out.push(as4Path[k]!);
  } else {
    out.push(...as4Path);
  }
  return out;
}

// ---------------------------------------------------------------- text form (edges only)

/** "65001 65002 {65003,65004} (65005 65006) [65007,65008]": sets in braces, confed seq/set in ( ) / [ ]. */
export function formatAsPath(segs: readonly AsPathSegment[]): string {
  const parts: string[] = [];
  for (const s of segs) {
    switch (s.type) {
      case AsPathSegmentType.AS_SEQUENCE:
        parts.push(s.asns.join(' '));
        break;
      case AsPathSegmentType.AS_SET:
        parts.push(`{${s.asns.join(',')}}`);
        break;
      case AsPathSegmentType.AS_CONFED_SEQUENCE:
        parts.push(`(${s.asns.join(' ')})`);
        break;
      case AsPathSegmentType.AS_CONFED_SET:
        parts.push(`[${s.asns.join(',')}]`);
        break;
    }
  }
  return parts.join(' ');
}

function asn(tok: string, whole: string): number {
  if (!/^\d{1,10}$/.test(tok) || Number(tok) > 0xffffffff) {
    throw new LocalUsageError(`bad AS path: ${whole}`);
  }
  return Number(tok);
}

/** Parses the `formatAsPath` form; consecutive bare ASNs form one AS_SEQUENCE. */
export function parseAsPath(s: string): AsPathSegment[] {
  const out: AsPathSegment[] = [];
  const re = /\{([^}]*)\}|\(([^)]*)\)|\[([^\]]*)\]|(\d+)|(\S)/g;
  let seq: number[] | undefined;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    if (m[5] !== undefined) throw new LocalUsageError(`bad AS path: ${s}`);
    if (m[4] !== undefined) {
      if (seq === undefined) {
        seq = [];
        out.push({ type: AsPathSegmentType.AS_SEQUENCE, asns: seq });
      }
      seq.push(asn(m[4], s));
      continue;
    }
    seq = undefined;
    const [type, body, sep] =
      m[1] !== undefined
        ? [AsPathSegmentType.AS_SET, m[1], ',']
        : m[2] !== undefined
          ? [AsPathSegmentType.AS_CONFED_SEQUENCE, m[2], ' ']
          : [AsPathSegmentType.AS_CONFED_SET, m[3] ?? '', ','];
    const toks = body
      .split(sep === ',' ? /[\s,]+/ : /\s+/)
      .map((t) => t.trim())
      .filter((t) => t !== '');
    if (toks.length === 0) throw new LocalUsageError(`empty segment in AS path: ${s}`);
    out.push({ type, asns: toks.map((t) => asn(t, s)) });
  }
  return out;
}
