/**
 * BGP code points with their RFC names and sections. Every table has a `name()` lookup for logs,
 * `show` output and error messages.
 */

export const BGP_PORT = 179;
export const MARKER_LENGTH = 16;
export const HEADER_LENGTH = 19; // RFC 4271 §4.1
export const MAX_MESSAGE_LENGTH = 4096; // RFC 4271 §4.1
export const MAX_EXTENDED_MESSAGE_LENGTH = 65535; // RFC 8654 §4
export const AS_TRANS = 23456; // RFC 6793 §9

export const MessageType = {
  OPEN: 1, // RFC 4271 §4.2
  UPDATE: 2, // RFC 4271 §4.3
  NOTIFICATION: 3, // RFC 4271 §4.5
  KEEPALIVE: 4, // RFC 4271 §4.4
  ROUTE_REFRESH: 5, // RFC 2918 §3
} as const;
export type MessageTypeCode = (typeof MessageType)[keyof typeof MessageType];

export const AttrType = {
  ORIGIN: 1, // RFC 4271 §5.1.1
  AS_PATH: 2, // RFC 4271 §5.1.2
  NEXT_HOP: 3, // RFC 4271 §5.1.3
  MULTI_EXIT_DISC: 4, // RFC 4271 §5.1.4
  LOCAL_PREF: 5, // RFC 4271 §5.1.5
  ATOMIC_AGGREGATE: 6, // RFC 4271 §5.1.6
  AGGREGATOR: 7, // RFC 4271 §5.1.7
  COMMUNITIES: 8, // RFC 1997
  ORIGINATOR_ID: 9, // RFC 4456 §8
  CLUSTER_LIST: 10, // RFC 4456 §8
  MP_REACH_NLRI: 14, // RFC 4760 §3
  MP_UNREACH_NLRI: 15, // RFC 4760 §4
  EXTENDED_COMMUNITIES: 16, // RFC 4360 §2
  AS4_PATH: 17, // RFC 6793 §3
  AS4_AGGREGATOR: 18, // RFC 6793 §3
  LARGE_COMMUNITY: 32, // RFC 8092 §3
  OTC: 35, // RFC 9234 §5
} as const;

export const AttrFlag = {
  OPTIONAL: 0x80,
  TRANSITIVE: 0x40,
  PARTIAL: 0x20,
  EXTENDED_LENGTH: 0x10,
} as const;

export const Origin = { IGP: 0, EGP: 1, INCOMPLETE: 2 } as const;

export const AsPathSegmentType = {
  AS_SET: 1, // RFC 4271 §4.3
  AS_SEQUENCE: 2,
  AS_CONFED_SEQUENCE: 3, // RFC 5065 §3
  AS_CONFED_SET: 4,
} as const;

export const WellKnownCommunity = {
  NO_EXPORT: 0xffffff01, // RFC 1997
  NO_ADVERTISE: 0xffffff02,
  NO_EXPORT_SUBCONFED: 0xffffff03,
  GRACEFUL_SHUTDOWN: 0xffff0000, // RFC 8326
  BLACKHOLE: 0xffff029a, // RFC 7999
} as const;

export const CapabilityCode = {
  MULTIPROTOCOL: 1, // RFC 4760 §8
  ROUTE_REFRESH: 2, // RFC 2918 §2
  EXTENDED_NEXT_HOP: 5, // RFC 8950
  EXTENDED_MESSAGE: 6, // RFC 8654 §3
  ROLE: 9, // RFC 9234 §4.1
  GRACEFUL_RESTART: 64, // RFC 4724 §3
  FOUR_OCTET_AS: 65, // RFC 6793 §3
  ADD_PATH: 69, // RFC 7911 §4
  ENHANCED_ROUTE_REFRESH: 70, // RFC 7313 §3.1
  FQDN: 73, // draft-walton-bgp-hostname-capability
  ROUTE_REFRESH_CISCO: 128, // pre-standard route refresh
} as const;

export const OptionalParamType = {
  CAPABILITIES: 2, // RFC 5492 §4
  EXTENDED_LENGTH: 255, // RFC 9072 §2
} as const;

export const NotificationCode = {
  MESSAGE_HEADER_ERROR: 1, // RFC 4271 §6.1
  OPEN_MESSAGE_ERROR: 2, // RFC 4271 §6.2
  UPDATE_MESSAGE_ERROR: 3, // RFC 4271 §6.3
  HOLD_TIMER_EXPIRED: 4, // RFC 4271 §6.5
  FSM_ERROR: 5, // RFC 4271 §6.6, subcodes RFC 6608
  CEASE: 6, // RFC 4271 §6.7, subcodes RFC 4486
  ROUTE_REFRESH_MESSAGE_ERROR: 7, // RFC 7313 §5
  SEND_HOLD_TIMER_EXPIRED: 8, // RFC 9687 §4
} as const;

export const HeaderErrorSubcode = {
  CONNECTION_NOT_SYNCHRONIZED: 1,
  BAD_MESSAGE_LENGTH: 2,
  BAD_MESSAGE_TYPE: 3,
} as const;

export const OpenErrorSubcode = {
  UNSPECIFIC: 0, // RFC 4271 §6.2: recognised but malformed optional parameter
  UNSUPPORTED_VERSION_NUMBER: 1,
  BAD_PEER_AS: 2,
  BAD_BGP_IDENTIFIER: 3,
  UNSUPPORTED_OPTIONAL_PARAMETER: 4,
  UNACCEPTABLE_HOLD_TIME: 6,
  UNSUPPORTED_CAPABILITY: 7, // RFC 5492 §5
  ROLE_MISMATCH: 11, // RFC 9234 §4.2
} as const;

export const UpdateErrorSubcode = {
  MALFORMED_ATTRIBUTE_LIST: 1,
  UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: 2,
  MISSING_WELL_KNOWN_ATTRIBUTE: 3,
  ATTRIBUTE_FLAGS_ERROR: 4,
  ATTRIBUTE_LENGTH_ERROR: 5,
  INVALID_ORIGIN_ATTRIBUTE: 6,
  INVALID_NEXT_HOP_ATTRIBUTE: 8,
  OPTIONAL_ATTRIBUTE_ERROR: 9,
  INVALID_NETWORK_FIELD: 10,
  MALFORMED_AS_PATH: 11,
} as const;

export const CeaseSubcode = {
  MAXIMUM_PREFIXES_REACHED: 1, // RFC 4486 §4
  ADMINISTRATIVE_SHUTDOWN: 2,
  PEER_DECONFIGURED: 3,
  ADMINISTRATIVE_RESET: 4,
  CONNECTION_REJECTED: 5,
  OTHER_CONFIGURATION_CHANGE: 6,
  CONNECTION_COLLISION_RESOLUTION: 7,
  OUT_OF_RESOURCES: 8,
  HARD_RESET: 9, // RFC 8538
  BFD_DOWN: 10, // RFC 9384
} as const;

export const RouteRefreshErrorSubcode = {
  INVALID_MESSAGE_LENGTH: 1, // RFC 7313 §5
} as const;

export const RouteRefreshSubtype = {
  NORMAL: 0, // RFC 2918
  BORR: 1, // RFC 7313 §3.2 beginning of route refresh
  EORR: 2, // RFC 7313 §3.2 end of route refresh
} as const;

export const Afi = { IPV4: 1, IPV6: 2 } as const;
export const Safi = { UNICAST: 1, MPLS_LABEL: 4, MPLS_VPN: 128 } as const; // RFC 4760, 8277, 4364

/** The address families vce speaks, by their OpenConfig-style names. */
export type AfiSafiName = 'ipv4-unicast' | 'ipv6-unicast' | 'ipv4-vpn' | 'ipv6-vpn';
export const AFI_SAFIS: readonly AfiSafiName[] = ['ipv4-unicast', 'ipv6-unicast', 'ipv4-vpn', 'ipv6-vpn'];

export function afiSafiCode(name: AfiSafiName): { afi: number; safi: number } {
  switch (name) {
    case 'ipv4-unicast':
      return { afi: Afi.IPV4, safi: Safi.UNICAST };
    case 'ipv6-unicast':
      return { afi: Afi.IPV6, safi: Safi.UNICAST };
    case 'ipv4-vpn':
      return { afi: Afi.IPV4, safi: Safi.MPLS_VPN };
    case 'ipv6-vpn':
      return { afi: Afi.IPV6, safi: Safi.MPLS_VPN };
  }
}

/** The vce name of an (AFI, SAFI) pair, or undefined when we do not speak it. */
export function afiSafiName(afi: number, safi: number): AfiSafiName | undefined {
  if (afi === Afi.IPV4 && safi === Safi.UNICAST) return 'ipv4-unicast';
  if (afi === Afi.IPV6 && safi === Safi.UNICAST) return 'ipv6-unicast';
  if (afi === Afi.IPV4 && safi === Safi.MPLS_VPN) return 'ipv4-vpn';
  if (afi === Afi.IPV6 && safi === Safi.MPLS_VPN) return 'ipv6-vpn';
  return undefined;
}

function reverse(table: Record<string, number>): (code: number) => string {
  const m = new Map<number, string>();
  for (const [k, v] of Object.entries(table)) m.set(v, k);
  return (code) => m.get(code) ?? `UNKNOWN(${code})`;
}

export const messageTypeName = reverse(MessageType);
export const attrTypeName = reverse(AttrType);
export const capabilityName = reverse(CapabilityCode);
export const notificationCodeName = reverse(NotificationCode);
export const ceaseSubcodeName = reverse(CeaseSubcode);

export function notificationSubcodeName(code: number, subcode: number): string {
  const tables: Record<number, Record<string, number>> = {
    [NotificationCode.MESSAGE_HEADER_ERROR]: HeaderErrorSubcode,
    [NotificationCode.OPEN_MESSAGE_ERROR]: OpenErrorSubcode,
    [NotificationCode.UPDATE_MESSAGE_ERROR]: UpdateErrorSubcode,
    [NotificationCode.CEASE]: CeaseSubcode,
    [NotificationCode.ROUTE_REFRESH_MESSAGE_ERROR]: RouteRefreshErrorSubcode,
  };
  const t = tables[code];
  return t === undefined ? String(subcode) : reverse(t)(subcode);
}
