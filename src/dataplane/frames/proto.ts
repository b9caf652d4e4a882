/**
 * IANA "Assigned Internet Protocol Numbers" used by the frame codecs: the IPv4 Protocol field
 * (RFC 791 §3.1) and the IPv6 Next Header field (RFC 8200 §3), including the IPv6 extension
 * headers (RFC 8200 §4, RFC 7045).
 */
import { nameLookup } from './bytes.ts';

export const IpProto = {
  HOPOPT: 0, // IPv6 Hop-by-Hop Options (RFC 8200 §4.3)
  ICMP: 1, // RFC 792
  TCP: 6, // RFC 9293
  UDP: 17, // RFC 768
  IPV6_ROUTE: 43, // Routing Header (RFC 8200 §4.4)
  IPV6_FRAG: 44, // Fragment Header (RFC 8200 §4.5)
  GRE: 47, // RFC 2784
  ESP: 50, // RFC 4303
  AH: 51, // RFC 4302
  ICMPV6: 58, // RFC 4443
  IPV6_NONXT: 59, // No Next Header (RFC 8200 §4.7)
  IPV6_OPTS: 60, // Destination Options (RFC 8200 §4.6)
  MOBILITY: 135, // RFC 6275
  HIP: 139, // RFC 7401
  SHIM6: 140, // RFC 5533
} as const;
export const ipProtoName = nameLookup(IpProto);
