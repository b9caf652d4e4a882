/**
 * The facts the forwarder reads off one IP packet, filled in place into one reusable object per
 * forwarder (no allocation per packet). Zone ACLs, the flow table and QoS classifiers read it.
 */
export const PROTO_ICMP = 1;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
export const PROTO_ICMPV6 = 58;

export interface PacketInfo {
  family: 4 | 6;
  /** The buffer holding the packet. */
  buf: Uint8Array;
  /** Offset of the IP header in `buf`. */
  l3: number;
  /** Offset of the source / destination address in `buf` (4 or 16 bytes). */
  srcOff: number;
  dstOff: number;
  /** IPv4 source / destination as unsigned 32-bit numbers (0 for IPv6). */
  src4: number;
  dst4: number;
  /** Upper-layer protocol (IPv6: after extension headers). */
  proto: number;
  /** Offset of the upper-layer header, or -1 when absent (a non-first fragment, truncated). */
  l4: number;
  /** TCP/UDP ports; 0 otherwise. */
  sport: number;
  dport: number;
  /** ICMP / ICMPv6 type, code and echo identifier; -1 otherwise. */
  icmpType: number;
  icmpCode: number;
  icmpId: number;
  /** TCP flags byte (FIN 1, SYN 2, RST 4, ACK 16); 0 otherwise. */
  tcpFlags: number;
  /** DSCP (6 bits) on arrival. */
  dscp: number;
  /** Bytes of the IP packet (header included). */
  length: number;
}

export function newPacketInfo(): PacketInfo {
  return {
    family: 4,
    buf: new Uint8Array(0),
    l3: 0,
    srcOff: 0,
    dstOff: 0,
    src4: 0,
    dst4: 0,
    proto: 0,
    l4: -1,
    sport: 0,
    dport: 0,
    icmpType: -1,
    icmpCode: -1,
    icmpId: -1,
    tcpFlags: 0,
    dscp: 0,
    length: 0,
  };
}
