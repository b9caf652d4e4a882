/**
 * DiffServ classification, marking and policing of one QoS policy (RFC 2475 §2.3: classifier,
 * marker, policer), per packet leaving through an interface that has the policy.
 *
 * Owns: the compiled classes, one token bucket per policed class and per-class counters, all in
 * typed arrays. Sans I/O and no allocation per packet: `applyCode(p, now)` reads the packet facts
 * and returns a packed action code; `apply(p, now)` does the same and unpacks the code into one
 * reusable result object (`result`, overwritten by the next call). Neither writes the packet (the
 * forwarder rewrites the DSCP and patches the checksum incrementally, RFC 1624).
 *
 * - Classes are tried in order, first match wins; unmatched packets fall into the implicit last
 *   class `default` (counted, untouched).
 * - Policer: single rate, two colours (RFC 2697 with EBS = 0): a token bucket of `burstBytes`,
 *   initially full, filled at `rateBitsPerSecond` by the time elapsed since the class's previous
 *   packet. A packet conforms when the bucket holds at least its length (which is then taken);
 *   otherwise it exceeds and is dropped or re-marked, taking no tokens. Tokens are counted in
 *   1/8000 byte so that whole-millisecond clocks and integer rates refill exactly.
 * - Counters per class: packets and bytes offered to the class (dropped ones included), packets
 *   dropped by the policer, packets re-marked by the policer.
 */
import type { PacketInfo } from '../packet.ts';
import type { QosPolicy } from '../types.ts';
import { CompiledMatch, DataplanePolicyError } from '../acl/match.ts';

export { DSCP, dscpName, parseDscp, type DscpName } from './dscp.ts';

/*
 * Action code returned by `apply`: a non-negative int.
 *   bits 0-15  class index
 *   bit 16     drop
 *   bit 17     the policer found the packet out of profile (dropped or re-marked)
 *   bits 18-24 new DSCP + 1, or 0 when the DSCP stays as it arrived
 */
export const ACTION_CLASS_MASK = 0xffff;
export const ACTION_DROP = 1 << 16;
export const ACTION_EXCEED = 1 << 17;
const ACTION_DSCP_SHIFT = 18;

export function actionClass(a: number): number {
  return a & ACTION_CLASS_MASK;
}

export function actionDropped(a: number): boolean {
  return (a & ACTION_DROP) !== 0;
}

export function actionExceeded(a: number): boolean {
  return (a & ACTION_EXCEED) !== 0;
}

/** The DSCP to write into the packet, or -1 to leave it as it arrived. */
export function actionDscp(a: number): number {
  return ((a >>> ACTION_DSCP_SHIFT) & 0x7f) - 1;
}

export function packAction(classIndex: number, drop: boolean, dscp: number, exceeded = false): number {
  return (
    (classIndex & ACTION_CLASS_MASK) |
    (drop ? ACTION_DROP : 0) |
    (exceeded ? ACTION_EXCEED : 0) |
    ((dscp < 0 ? 0 : (dscp & 0x3f) + 1) << ACTION_DSCP_SHIFT)
  );
}

export const DEFAULT_CLASS = 'default';

/** What `apply` decided for one packet; one object per engine, overwritten by every call. */
export interface QosResult {
  classIndex: number;
  /** Drop the packet (policer, exceed action `drop`). */
  drop: boolean;
  /** The policer found the packet out of profile (dropped or re-marked). */
  exceeded: boolean;
  /** DSCP to write into the packet, or -1 to leave it as it arrived. */
  dscp: number;
}

/** Token units per byte: bits per second times milliseconds gives 1/8000 byte. */
const UNITS_PER_BYTE = 8000;

export interface QosClassCounters {
  readonly class: string;
  readonly packets: number;
  readonly bytes: number;
  readonly dropped: number;
  readonly remarked: number;
}

function dscpValue(v: number, path: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 63) throw new DataplanePolicyError(path, `DSCP ${v} not 0..63`);
  return v;
}

export class QosEngine {
  readonly name: string;
  /** Class names by index; the last one is `default`. */
  readonly classNames: readonly string[];
  /** Index of the implicit `default` class. */
  readonly defaultClass: number;

  private readonly matchers: CompiledMatch[];
  /** Per class: DSCP to set, -1 none. */
  private readonly setDscp: Int8Array;
  /** Per class: MPLS TC, -1 derive from the DSCP. */
  private readonly tc: Int8Array;
  /** Per class policer: rate in bits/s (0 = not policed), bucket size and level in token units. */
  private readonly rate: Float64Array;
  private readonly bucketMax: Float64Array;
  private readonly tokens: Float64Array;
  private readonly last: Float64Array;
  /** Per class: 1 = drop when out of profile; else re-mark to `exceedDscp`. */
  private readonly exceedDrop: Uint8Array;
  private readonly exceedDscp: Int8Array;
  private readonly packets: Float64Array;
  private readonly bytes: Float64Array;
  private readonly dropped: Float64Array;
  private readonly remarked: Float64Array;

  constructor(policy: QosPolicy) {
    const path = `qos[${policy.name}]`;
    this.name = policy.name;
    const classes = policy.classes;
    const names = new Set<string>();
    classes.forEach((c, i) => {
      if (c.name === DEFAULT_CLASS || names.has(c.name))
        throw new DataplanePolicyError(
          `${path}.classes[${i}].name`,
          `bad or duplicate class name "${c.name}"`,
        );
      names.add(c.name);
    });
    const n = classes.length + 1;
    if (n > ACTION_CLASS_MASK)
      throw new DataplanePolicyError(`${path}.classes`, `more than ${ACTION_CLASS_MASK - 1} classes`);
    this.classNames = [...classes.map((c) => c.name), DEFAULT_CLASS];
    this.defaultClass = classes.length;
    this.lastClass = classes.length;
    this.matchers = classes.map((c, i) => new CompiledMatch(c.match, `${path}.classes[${i}].match`));
    this.setDscp = new Int8Array(n).fill(-1);
    this.tc = new Int8Array(n).fill(-1);
    this.rate = new Float64Array(n);
    this.bucketMax = new Float64Array(n);
    this.tokens = new Float64Array(n);
    this.last = new Float64Array(n).fill(NaN);
    this.exceedDrop = new Uint8Array(n);
    this.exceedDscp = new Int8Array(n).fill(-1);
    classes.forEach((c, i) => {
      const cp = `${path}.classes[${i}]`;
      if (c.setDscp !== undefined) this.setDscp[i] = dscpValue(c.setDscp, `${cp}.setDscp`);
      if (c.mplsTc !== undefined) {
        if (!Number.isInteger(c.mplsTc) || c.mplsTc < 0 || c.mplsTc > 7)
          throw new DataplanePolicyError(`${cp}.mplsTc`, `MPLS TC ${c.mplsTc} not 0..7`);
        this.tc[i] = c.mplsTc;
      }
      const pol = c.police;
      if (pol === undefined) return;
      if (!(pol.rateBitsPerSecond > 0) || !Number.isFinite(pol.rateBitsPerSecond))
        throw new DataplanePolicyError(
          `${cp}.police.rateBitsPerSecond`,
          `rate ${pol.rateBitsPerSecond} must be positive`,
        );
      if (!(pol.burstBytes > 0) || !Number.isFinite(pol.burstBytes))
        throw new DataplanePolicyError(`${cp}.police.burstBytes`, `burst ${pol.burstBytes} must be positive`);
      this.rate[i] = pol.rateBitsPerSecond;
      this.bucketMax[i] = pol.burstBytes * UNITS_PER_BYTE;
      this.tokens[i] = this.bucketMax[i]!; // RFC 2697 §3: the bucket starts full
      if (pol.exceed === 'drop') this.exceedDrop[i] = 1;
      else this.exceedDscp[i] = dscpValue(pol.exceed.remark, `${cp}.police.exceed.remark`);
    });
    this.packets = new Float64Array(n);
    this.bytes = new Float64Array(n);
    this.dropped = new Float64Array(n);
    this.remarked = new Float64Array(n);
  }

  /** Class of the last packet applied (the default class before any). */
  private lastClass: number;

  /** The object `apply` fills. */
  readonly result: QosResult = { classIndex: 0, drop: false, exceeded: false, dscp: -1 };

  /** `applyCode`, unpacked into `result` (returned; overwritten by the next call). */
  apply(p: PacketInfo, now: number): QosResult {
    const a = this.applyCode(p, now);
    const r = this.result;
    r.classIndex = a & ACTION_CLASS_MASK;
    r.drop = (a & ACTION_DROP) !== 0;
    r.exceeded = (a & ACTION_EXCEED) !== 0;
    r.dscp = ((a >>> ACTION_DSCP_SHIFT) & 0x7f) - 1;
    return r;
  }

  /** Classifies, polices and marks `p` at time `now` (ms); returns the packed action code. */
  applyCode(p: PacketInfo, now: number): number {
    const matchers = this.matchers;
    let c = matchers.length;
    for (let i = 0; i < matchers.length; i++) {
      if (matchers[i]!.matches(p)) {
        c = i;
        break;
      }
    }
    this.lastClass = c;
    const len = p.length;
    this.packets[c]!++;
    this.bytes[c]! += len;
    let action = c;
    let dscp = this.setDscp[c]!;
    const rate = this.rate[c]!;
    if (rate > 0) {
      let tokens = this.tokens[c]!;
      const elapsed = now - this.last[c]!;
      if (elapsed > 0) {
        tokens = Math.min(this.bucketMax[c]!, tokens + elapsed * rate);
        this.last[c] = now;
      } else if (elapsed !== elapsed) {
        this.last[c] = now; // first packet of the class (NaN): nothing to add, the bucket is full
      }
      const cost = len * UNITS_PER_BYTE;
      if (tokens >= cost) {
        tokens -= cost;
      } else {
        action |= ACTION_EXCEED;
        if (this.exceedDrop[c] === 1) {
          this.tokens[c] = tokens;
          this.dropped[c]!++;
          return action | ACTION_DROP;
        }
        dscp = this.exceedDscp[c]!;
        this.remarked[c]!++;
      }
      this.tokens[c] = tokens;
    }
    if (dscp >= 0 && dscp !== p.dscp) action |= (dscp + 1) << ACTION_DSCP_SHIFT;
    return action;
  }

  /** The MPLS TC configured for the class of the last `apply` / `applyCode`, else undefined. */
  lastMplsTc(): number | undefined {
    const tc = this.tc[this.lastClass]!;
    return tc >= 0 ? tc : undefined;
  }

  /** MPLS TC for a packet of class `classIndex` leaving with `dscp`: the class's, else DSCP >> 3. */
  mplsTc(classIndex: number, dscp: number): number {
    const tc = this.tc[classIndex] ?? -1;
    return tc >= 0 ? tc : (dscp >> 3) & 7;
  }

  counters(): QosClassCounters[] {
    return this.classNames.map((name, i) => ({
      class: name,
      packets: this.packets[i]!,
      bytes: this.bytes[i]!,
      dropped: this.dropped[i]!,
      remarked: this.remarked[i]!,
    }));
  }
}
