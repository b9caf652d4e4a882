/**
 * Compiled packet matches: a `PacketMatch` (desired state, `../types.ts`) turned once into flat
 * typed arrays so the per-packet test is a few integer compares, no allocation, no closures.
 * Shared by the zone firewall (`zones.ts`), the self guard (`self.ts`) and QoS classes.
 *
 * Semantics (every given field must match, AND; within a field any element, OR):
 * - `family` restricts to IPv4 or IPv6; `source` / `destination` prefixes of the other family never
 *   match, so a list of only IPv6 prefixes also restricts the match to IPv6.
 * - A field given as an empty list matches nothing (literal "one of []"); leave it out for "any".
 * - Port ranges match only TCP and UDP packets whose transport header is present (`l4 >= 0`): a
 *   non-first fragment or an ICMP packet never matches a port constraint.
 * - `dscp` compares the DSCP on arrival.
 *
 * Representation: IPv4 prefixes as (addr, mask) int32 pairs compared against `PacketInfo.src4` /
 * `dst4`; IPv6 prefixes as 4 address words + 4 mask words compared against the address words read
 * big-endian from `buf` at `srcOff` / `dstOff`. Int32 throughout (`x & m` yields an int32), so no
 * `>>> 0` on the hot path.
 */
import { AFI_IPV4, type Prefix } from '../../lib/ip.ts';
import { PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, type PacketInfo } from '../packet.ts';
import type { PacketMatch, PortRange, Protocol } from '../types.ts';

/** A policy the data plane cannot compile (bad value the config reader let through). */
export class DataplanePolicyError extends Error {
  override readonly name = 'DataplanePolicyError';
  readonly code = 'DATAPLANE_POLICY';
  constructor(
    /** Dotted path of the offending value, e.g. `zones.rules[3].match.protocol`. */
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
  }
}

/** IANA protocol numbers for the names `Protocol` allows. */
export const PROTOCOL_NUMBERS = {
  icmp: PROTO_ICMP,
  tcp: PROTO_TCP,
  udp: PROTO_UDP,
  icmpv6: PROTO_ICMPV6,
} as const;

export function protocolNumber(p: Protocol, path = 'protocol'): number {
  if (typeof p === 'number') {
    if (!Number.isInteger(p) || p < 0 || p > 255)
      throw new DataplanePolicyError(path, `protocol ${p} not 0..255`);
    return p;
  }
  const n = (PROTOCOL_NUMBERS as Record<string, number | undefined>)[p];
  if (n === undefined) throw new DataplanePolicyError(path, `unknown protocol "${String(p)}"`);
  return n;
}

const EMPTY = new Int32Array(0);

/** Reads the big-endian 32-bit word at `off` as an int32. */
function word(b: Uint8Array, off: number): number {
  return (b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!;
}

/** Mask of the first `bits` (0..32) bits of a word, as an int32. */
function wordMask(bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? -1 : (-1 << (32 - bits)) | 0;
}

interface CompiledPrefixes {
  /** IPv4: [addr, mask] per prefix. */
  readonly v4: Int32Array;
  /** IPv6: [w0..w3, m0..m3] per prefix. */
  readonly v6: Int32Array;
}

function compilePrefixes(list: readonly Prefix[]): CompiledPrefixes {
  const n4 = list.filter((p) => p.afi === AFI_IPV4).length;
  const v4 = new Int32Array(n4 * 2);
  const v6 = new Int32Array((list.length - n4) * 8);
  let i4 = 0;
  let i6 = 0;
  for (const p of list) {
    if (p.afi === AFI_IPV4) {
      const m = wordMask(p.len);
      v4[i4++] = word(p.addr, 0) & m;
      v4[i4++] = m;
    } else {
      for (let w = 0; w < 4; w++) v6[i6 + w] = word(p.addr, w * 4) & wordMask(p.len - w * 32);
      for (let w = 0; w < 4; w++) v6[i6 + 4 + w] = wordMask(p.len - w * 32);
      i6 += 8;
    }
  }
  return { v4, v6 };
}

function compilePorts(list: readonly PortRange[], path: string): Int32Array {
  const out = new Int32Array(list.length * 2);
  list.forEach((r, i) => {
    const ok = (x: number): boolean => Number.isInteger(x) && x >= 0 && x <= 65535;
    if (!ok(r.from) || !ok(r.to) || r.from > r.to)
      throw new DataplanePolicyError(`${path}[${i}]`, `bad port range ${r.from}-${r.to}`);
    out[i * 2] = r.from;
    out[i * 2 + 1] = r.to;
  });
  return out;
}

/** Field presence bits of a compiled match. */
const HAS_SRC = 1;
const HAS_DST = 2;
const HAS_SPORT = 4;
const HAS_DPORT = 8;
const HAS_DSCP = 16;

function inV4(t: Int32Array, a: number): boolean {
  for (let i = 0; i < t.length; i += 2) if ((a & t[i + 1]!) === t[i]) return true;
  return false;
}

function inV6(t: Int32Array, b: Uint8Array, off: number): boolean {
  if (t.length === 0) return false;
  const a0 = word(b, off);
  const a1 = word(b, off + 4);
  const a2 = word(b, off + 8);
  const a3 = word(b, off + 12);
  for (let i = 0; i < t.length; i += 8) {
    if (
      (a0 & t[i + 4]!) === t[i] &&
      (a1 & t[i + 5]!) === t[i + 1] &&
      (a2 & t[i + 6]!) === t[i + 2] &&
      (a3 & t[i + 7]!) === t[i + 3]
    )
      return true;
  }
  return false;
}

function inPorts(t: Int32Array, port: number): boolean {
  for (let i = 0; i < t.length; i += 2) if (port >= t[i]! && port <= t[i + 1]!) return true;
  return false;
}

/** A `PacketMatch` compiled for per-packet use; build with `compileMatch`. */
export class CompiledMatch {
  /** 0 any, else 4 or 6. */
  readonly family: number;
  /** -1 any, else the IP protocol number. */
  readonly proto: number;
  private readonly has: number;
  private readonly src4: Int32Array;
  private readonly src6: Int32Array;
  private readonly dst4: Int32Array;
  private readonly dst6: Int32Array;
  private readonly sports: Int32Array;
  private readonly dports: Int32Array;
  /** DSCP set as a 64-bit mask in two words (bit d of lo for d < 32, bit d-32 of hi). */
  private readonly dscpLo: number;
  private readonly dscpHi: number;

  constructor(m: PacketMatch, path = 'match') {
    if (m.family !== undefined && m.family !== 4 && m.family !== 6)
      throw new DataplanePolicyError(`${path}.family`, `family ${String(m.family)} is not 4 or 6`);
    this.family = m.family ?? 0;
    this.proto = m.protocol === undefined ? -1 : protocolNumber(m.protocol, `${path}.protocol`);
    let has = 0;
    const src = m.source === undefined ? undefined : compilePrefixes(m.source);
    const dst = m.destination === undefined ? undefined : compilePrefixes(m.destination);
    if (src !== undefined) has |= HAS_SRC;
    if (dst !== undefined) has |= HAS_DST;
    this.src4 = src?.v4 ?? EMPTY;
    this.src6 = src?.v6 ?? EMPTY;
    this.dst4 = dst?.v4 ?? EMPTY;
    this.dst6 = dst?.v6 ?? EMPTY;
    this.sports = EMPTY;
    this.dports = EMPTY;
    if (m.sourcePorts !== undefined) {
      has |= HAS_SPORT;
      this.sports = compilePorts(m.sourcePorts, `${path}.sourcePorts`);
    }
    if (m.destinationPorts !== undefined) {
      has |= HAS_DPORT;
      this.dports = compilePorts(m.destinationPorts, `${path}.destinationPorts`);
    }
    let lo = 0;
    let hi = 0;
    if (m.dscp !== undefined) {
      has |= HAS_DSCP;
      m.dscp.forEach((d, i) => {
        if (!Number.isInteger(d) || d < 0 || d > 63)
          throw new DataplanePolicyError(`${path}.dscp[${i}]`, `DSCP ${d} not 0..63`);
        if (d < 32) lo |= 1 << d;
        else hi |= 1 << (d - 32);
      });
    }
    this.dscpLo = lo;
    this.dscpHi = hi;
    this.has = has;
  }

  /** True when `p` satisfies every field of the match. */
  matches(p: PacketInfo): boolean {
    if (this.family !== 0 && p.family !== this.family) return false;
    if (this.proto >= 0 && p.proto !== this.proto) return false;
    const has = this.has;
    if (has === 0) return true;
    if ((has & HAS_DSCP) !== 0) {
      const d = p.dscp;
      if (((d < 32 ? this.dscpLo >>> d : this.dscpHi >>> (d - 32)) & 1) === 0) return false;
    }
    if ((has & (HAS_SPORT | HAS_DPORT)) !== 0) {
      if (p.l4 < 0 || (p.proto !== PROTO_TCP && p.proto !== PROTO_UDP)) return false;
      if ((has & HAS_SPORT) !== 0 && !inPorts(this.sports, p.sport)) return false;
      if ((has & HAS_DPORT) !== 0 && !inPorts(this.dports, p.dport)) return false;
    }
    if (p.family === 4) {
      if ((has & HAS_SRC) !== 0 && !inV4(this.src4, p.src4)) return false;
      if ((has & HAS_DST) !== 0 && !inV4(this.dst4, p.dst4)) return false;
    } else {
      if ((has & HAS_SRC) !== 0 && !inV6(this.src6, p.buf, p.srcOff)) return false;
      if ((has & HAS_DST) !== 0 && !inV6(this.dst6, p.buf, p.dstOff)) return false;
    }
    return true;
  }
}

export function compileMatch(m: PacketMatch, path = 'match'): CompiledMatch {
  return new CompiledMatch(m, path);
}
