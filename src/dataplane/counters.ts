/**
 * Per-interface counters of the forwarder, in one Float64Array (exact up to 2^53): packets and
 * bytes in and out, and drops by reason. Interfaces are numbered by the forwarder; drops that
 * belong to no interface (an unknown VNI, a packet from an unknown tunnel endpoint) are counted on
 * the pseudo-interface at index 0 ("unattached").
 */
export const DROP_REASONS = [
  'bad-encapsulation', // malformed tunnel header, unknown VNI / VSID / label, unknown remote
  'unknown-vlan', // a tag no sub-interface owns
  'not-for-us', // unicast frame to another MAC: we route, we do not bridge
  'bad-header', // IPv4 / IPv6 header checks (RFC 1812 §5.2.2, RFC 8200)
  'ttl-exceeded',
  'no-route',
  'blackhole',
  'reject',
  'acl', // zone rule or default deny
  'flow-table-full',
  'self-denied', // traffic to the vCE itself that its self policy does not allow
  'policer',
  'mtu', // too big for the egress interface
  'neighbor-unresolved', // ARP / ND failed, or its waiting queue was full
  'unsupported', // protocols we do not forward (non-IP EtherTypes, fragments to us...)
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

const R = Object.fromEntries(DROP_REASONS.map((r, i) => [r, i])) as Record<DropReason, number>;
export const DROP = R;

const RX_PKTS = 0;
const RX_BYTES = 1;
const TX_PKTS = 2;
const TX_BYTES = 3;
const FIXED = 4;
const STRIDE = FIXED + DROP_REASONS.length;

export interface InterfaceCounters {
  readonly 'in-packets': number;
  readonly 'in-bytes': number;
  readonly 'out-packets': number;
  readonly 'out-bytes': number;
  readonly 'dropped-packets': number;
  readonly drops: Partial<Record<DropReason, number>>;
}

export class Counters {
  private v: Float64Array;

  constructor(interfaces: number) {
    this.v = new Float64Array((interfaces + 1) * STRIDE);
  }

  rx(i: number, bytes: number): void {
    const b = i * STRIDE;
    this.v[b + RX_PKTS]! += 1;
    this.v[b + RX_BYTES]! += bytes;
  }

  tx(i: number, bytes: number): void {
    const b = i * STRIDE;
    this.v[b + TX_PKTS]! += 1;
    this.v[b + TX_BYTES]! += bytes;
  }

  drop(i: number, reason: number): void {
    this.v[i * STRIDE + FIXED + reason]! += 1;
  }

  /** Carries interface `from` of `old` into interface `to` here (reconfiguration keeps counts). */
  adopt(old: Counters, from: number, to: number): void {
    this.v.set(old.v.subarray(from * STRIDE, (from + 1) * STRIDE), to * STRIDE);
  }

  read(i: number): InterfaceCounters {
    const b = i * STRIDE;
    const drops: Partial<Record<DropReason, number>> = {};
    let total = 0;
    DROP_REASONS.forEach((r, k) => {
      const n = this.v[b + FIXED + k]!;
      if (n > 0) drops[r] = n;
      total += n;
    });
    return {
      'in-packets': this.v[b + RX_PKTS]!,
      'in-bytes': this.v[b + RX_BYTES]!,
      'out-packets': this.v[b + TX_PKTS]!,
      'out-bytes': this.v[b + TX_BYTES]!,
      'dropped-packets': total,
      drops,
    };
  }
}
