/**
 * ARP for Ethernet/IPv4 (RFC 826): the 28-byte packet after the Ethernet header. Other
 * hardware or protocol types are rejected. Gratuitous ARP (sender IP = target IP) is the
 * announcement form of RFC 5227 §3 and RFC 5944 §4.6.
 */
import { copyBytes, nameLookup, put16, put32, u16, u32 } from './bytes.ts';
import { ETHERTYPE_IPV4 } from './ethernet.ts';

export const ARP_HRD_ETHERNET = 1; // RFC 826 ar$hrd, IANA hardware type 1
export const ARP_PRO_IPV4 = ETHERTYPE_IPV4; // ar$pro
export const ARP_LENGTH = 28; // 8 fixed + 2 * (6 + 4)

export const ArpOp = {
  REQUEST: 1, // ares_op$REQUEST
  REPLY: 2, // ares_op$REPLY
} as const;
export const arpOpName = nameLookup(ArpOp);

/** Negative results of `parseArp` (range -10 .. -19). */
export const ArpError = {
  TOO_SHORT: -10,
  BAD_HARDWARE: -11, // ar$hrd is not Ethernet
  BAD_PROTOCOL: -12, // ar$pro is not IPv4
  BAD_LENGTHS: -13, // ar$hln != 6 or ar$pln != 4
  BAD_OP: -14, // neither request nor reply
} as const;
export const arpErrorName = nameLookup(ArpError);

export interface ArpInfo {
  op: number;
  senderMacOff: number;
  senderIp: number;
  targetMacOff: number;
  targetIp: number;
}

export function newArpInfo(): ArpInfo {
  return { op: 0, senderMacOff: 0, senderIp: 0, targetMacOff: 0, targetIp: 0 };
}

/** Parses the ARP packet at `off`; returns the offset after it or an `ArpError`. */
export function parseArp(buf: Uint8Array, off: number, end: number, out: ArpInfo): number {
  if (end - off < ARP_LENGTH) return ArpError.TOO_SHORT;
  if (u16(buf, off) !== ARP_HRD_ETHERNET) return ArpError.BAD_HARDWARE;
  if (u16(buf, off + 2) !== ARP_PRO_IPV4) return ArpError.BAD_PROTOCOL;
  if (buf[off + 4] !== 6 || buf[off + 5] !== 4) return ArpError.BAD_LENGTHS;
  const op = u16(buf, off + 6);
  if (op !== ArpOp.REQUEST && op !== ArpOp.REPLY) return ArpError.BAD_OP;
  out.op = op;
  out.senderMacOff = off + 8;
  out.senderIp = u32(buf, off + 14);
  out.targetMacOff = off + 18;
  out.targetIp = u32(buf, off + 24);
  return off + ARP_LENGTH;
}

/**
 * Writes an Ethernet/IPv4 ARP packet; returns the offset after it. `targetMac` undefined writes
 * zeros (a request's unknown target, RFC 5227 §2.1.1).
 */
export function writeArp(
  buf: Uint8Array,
  off: number,
  op: number,
  senderMac: Uint8Array,
  senderIp: number,
  targetMac: Uint8Array | undefined,
  targetIp: number,
): number {
  put16(buf, off, ARP_HRD_ETHERNET);
  put16(buf, off + 2, ARP_PRO_IPV4);
  buf[off + 4] = 6;
  buf[off + 5] = 4;
  put16(buf, off + 6, op);
  copyBytes(buf, off + 8, senderMac, 0, 6);
  put32(buf, off + 14, senderIp);
  if (targetMac === undefined) buf.fill(0, off + 18, off + 24);
  else copyBytes(buf, off + 18, targetMac, 0, 6);
  put32(buf, off + 24, targetIp);
  return off + ARP_LENGTH;
}

/**
 * Sender and target protocol addresses equal (and not 0.0.0.0, which marks a probe): an
 * announcement, not a question (RFC 5227 §3), request or reply form.
 */
export function isGratuitousArp(info: ArpInfo): boolean {
  return info.senderIp === info.targetIp && info.senderIp !== 0;
}
