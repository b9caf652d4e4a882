/**
 * ARP (RFC 826) and IPv6 neighbour (RFC 4861 §7) cache of the forwarder, sans-I/O. Per interface,
 * an address maps to a MAC and the tunnel endpoint behind it (learnt from the frame that carried
 * the answer, so unicast goes to one VTEP and only resolution is flooded). Unresolved next hops
 * keep a bounded queue of waiting packets; requests are retried once a second, three times, then
 * the entry fails and its queue is dropped. Entries age out after `reachableMs` unless refreshed
 * by traffic from the neighbour.
 */

import { copyOut } from '../lib/bytes.ts';

export const INCOMPLETE = 0;
export const REACHABLE = 1;

export interface Waiting {
  readonly buf: Uint8Array;
  readonly off: number;
  readonly len: number;
}

export interface Neighbor {
  readonly iface: number;
  /** IPv4 address as a number, or -1 for IPv6 (then `addr6`). */
  readonly addr4: number;
  readonly addr6?: Uint8Array;
  state: number;
  mac: Uint8Array;
  /** Tunnel endpoint number behind the MAC; -1 = unknown (flood). */
  remote: number;
  expires: number;
  queue: Waiting[];
  probes: number;
  nextProbe: number;
}

const PROBE_INTERVAL_MS = 1000;
const MAX_PROBES = 3;

/** FNV-1a of 16 bytes: the IPv6 map key (verified against the stored address). */
export function hash6(buf: Uint8Array, off: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < 16; i++) h = Math.imul(h ^ buf[off + i]!, 0x01000193);
  return h >>> 0;
}

function equal6(a: Uint8Array, buf: Uint8Array, off: number): boolean {
  for (let i = 0; i < 16; i++) if (a[i] !== buf[off + i]) return false;
  return true;
}

export interface NeighborEvents {
  /** Send a request (ARP request / neighbour solicitation) for this entry. */
  probe(n: Neighbor): void;
  /** Resolution failed: the queued packets are dropped (count them). */
  failed(n: Neighbor, dropped: number): void;
}

export class NeighborTable {
  private readonly v4: Map<number, Neighbor>[] = [];
  private readonly v6: Map<number, Neighbor>[] = [];

  constructor(
    interfaces: number,
    private readonly reachableMs: number,
    private readonly queueMax: number,
  ) {
    for (let i = 0; i <= interfaces; i++) {
      this.v4.push(new Map());
      this.v6.push(new Map());
    }
  }

  get4(iface: number, addr: number): Neighbor | undefined {
    return this.v4[iface]!.get(addr);
  }

  get6(iface: number, buf: Uint8Array, off: number): Neighbor | undefined {
    const n = this.v6[iface]!.get(hash6(buf, off));
    return n !== undefined && equal6(n.addr6!, buf, off) ? n : undefined;
  }

  /**
   * Records what a neighbour told us (ARP / NA / a packet from it). Returns the packets that were
   * waiting for it (to send now), or undefined. `create` false only refreshes an existing entry
   * (RFC 4861 §7.2.5: unsolicited advertisements do not create entries; ARP merge flag, RFC 826).
   */
  learn(
    iface: number,
    addr4: number,
    buf6: Uint8Array | undefined,
    off6: number,
    mac: Uint8Array,
    macOff: number,
    remote: number,
    now: number,
    create: boolean,
  ): Waiting[] | undefined {
    let n = buf6 === undefined ? this.get4(iface, addr4) : this.get6(iface, buf6, off6);
    if (n === undefined) {
      if (!create) return undefined;
      n = {
        iface,
        addr4: buf6 === undefined ? addr4 : -1,
        addr6: buf6 === undefined ? undefined : copyOut(buf6, off6, off6 + 16),
        state: INCOMPLETE,
        mac: new Uint8Array(6),
        remote,
        expires: 0,
        queue: [],
        probes: 0,
        nextProbe: 0,
      };
      if (buf6 === undefined) this.v4[iface]!.set(addr4, n);
      else this.v6[iface]!.set(hash6(buf6, off6), n);
    }
    for (let i = 0; i < 6; i++) n.mac[i] = mac[macOff + i]!;
    if (remote >= 0) n.remote = remote;
    n.state = REACHABLE;
    n.expires = now + this.reachableMs;
    n.probes = 0;
    if (n.queue.length === 0) return undefined;
    const q = n.queue;
    n.queue = [];
    return q;
  }

  /**
   * Queues a packet for an unresolved next hop. Returns true if queued, false if the queue is
   * full (the packet is dropped). Sends the first probe at once through `ev`.
   */
  enqueue(
    iface: number,
    addr4: number,
    gw6: Uint8Array | undefined,
    pkt: Waiting,
    now: number,
    ev: NeighborEvents,
  ): boolean {
    let n = gw6 === undefined ? this.get4(iface, addr4) : this.get6(iface, gw6, 0);
    if (n === undefined) {
      n = {
        iface,
        addr4: gw6 === undefined ? addr4 : -1,
        addr6: gw6 === undefined ? undefined : new Uint8Array(gw6),
        state: INCOMPLETE,
        mac: new Uint8Array(6),
        remote: -1,
        expires: 0,
        queue: [],
        probes: 0,
        nextProbe: 0,
      };
      if (gw6 === undefined) this.v4[iface]!.set(addr4, n);
      else this.v6[iface]!.set(hash6(gw6, 0), n);
    } else if (n.state === REACHABLE) {
      // expired entry being re-resolved
      n.state = INCOMPLETE;
      n.probes = 0;
    }
    if (n.queue.length >= this.queueMax) return false;
    n.queue.push(pkt);
    if (n.probes === 0) {
      n.probes = 1;
      n.nextProbe = now + PROBE_INTERVAL_MS;
      ev.probe(n);
    }
    return true;
  }

  /** Retries, failures and ageing. */
  tick(now: number, ev: NeighborEvents): void {
    for (const maps of [this.v4, this.v6]) {
      for (const m of maps) {
        for (const [k, n] of m) {
          if (n.state === REACHABLE) {
            if (n.expires <= now) m.delete(k);
            continue;
          }
          if (n.nextProbe > now) continue;
          if (n.probes >= MAX_PROBES) {
            m.delete(k);
            ev.failed(n, n.queue.length);
            n.queue = [];
            continue;
          }
          n.probes++;
          n.nextProbe = now + PROBE_INTERVAL_MS;
          ev.probe(n);
        }
      }
    }
  }

  /** For the API: every entry. */
  list(): Neighbor[] {
    const out: Neighbor[] = [];
    for (const maps of [this.v4, this.v6]) for (const m of maps) for (const n of m.values()) out.push(n);
    return out;
  }
}
