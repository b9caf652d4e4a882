/**
 * The decoded shapes of BGP messages: the contract between the codecs (src/bgp/wire/*), the
 * session core (src/bgp/fsm.ts) and the RIB. All byte fields are views into the received buffer
 * unless stated otherwise; consumers that keep them past the current event must copy.
 */
import type { AfiSafiName } from './constants.ts';
import type { Prefix } from '../../lib/ip.ts';

// ---------------------------------------------------------------- per-session codec options
/** Options negotiated for one session, passed explicitly to every codec that depends on them. */
export interface CodecContext {
  /** Both sides advertised the 4-octet AS capability (RFC 6793): AS_PATH carries 4-byte ASNs. */
  readonly as4: boolean;
  /** Families for which we RECEIVE path identifiers (RFC 7911 §3). */
  readonly addPathRx: ReadonlySet<AfiSafiName>;
  /** Families for which we SEND path identifiers. */
  readonly addPathTx: ReadonlySet<AfiSafiName>;
  /** RFC 8654 negotiated: messages up to 65535 bytes. */
  readonly extendedMessage: boolean;
  /** The session is eBGP (affects RFC 7606 rules for LOCAL_PREF, ORIGINATOR_ID, CLUSTER_LIST). */
  readonly ebgp: boolean;
}

export const DEFAULT_CODEC_CONTEXT: CodecContext = {
  as4: true,
  addPathRx: new Set(),
  addPathTx: new Set(),
  extendedMessage: false,
  ebgp: true,
};

// ---------------------------------------------------------------- capabilities (RFC 5492)
export interface AfiSafiPair {
  readonly afi: number;
  readonly safi: number;
}

export type Capability =
  | { readonly code: 1; readonly afi: number; readonly safi: number } // MULTIPROTOCOL
  | { readonly code: 2 } // ROUTE_REFRESH
  | { readonly code: 6 } // EXTENDED_MESSAGE
  | { readonly code: 70 } // ENHANCED_ROUTE_REFRESH
  | {
      // GRACEFUL_RESTART RFC 4724 §3
      readonly code: 64;
      readonly restartState: boolean; // R bit
      readonly notification: boolean; // N bit (RFC 8538)
      readonly restartTime: number; // 12 bits, seconds
      readonly families: readonly {
        readonly afi: number;
        readonly safi: number;
        readonly forwardingState: boolean;
      }[];
    }
  | { readonly code: 65; readonly asn: number } // FOUR_OCTET_AS
  | {
      // ADD_PATH RFC 7911 §4: sendReceive 1 = receive, 2 = send, 3 = both
      readonly code: 69;
      readonly families: readonly {
        readonly afi: number;
        readonly safi: number;
        readonly sendReceive: 1 | 2 | 3;
      }[];
    }
  | { readonly code: 73; readonly hostname: string; readonly domain: string } // FQDN
  | { readonly code: number; readonly value: Uint8Array; readonly unknown: true }; // kept, ignored

// ---------------------------------------------------------------- messages
export interface OpenMessage {
  readonly type: 'open';
  readonly version: number; // 4
  readonly myAs: number; // the 2-octet field (AS_TRANS when the real AS is > 65535)
  readonly holdTime: number;
  readonly bgpId: number; // unsigned 32-bit
  readonly capabilities: readonly Capability[];
  /** Optional parameters other than capabilities, kept raw (type, value). */
  readonly otherParams: readonly { readonly type: number; readonly value: Uint8Array }[];
}

export interface KeepaliveMessage {
  readonly type: 'keepalive';
}

export interface NotificationMessage {
  readonly type: 'notification';
  readonly code: number;
  readonly subcode: number;
  readonly data: Uint8Array;
  /** RFC 9003 shutdown communication (Cease/2 and Cease/4), when present and valid UTF-8. */
  readonly shutdownMessage?: string;
}

export interface RouteRefreshMessage {
  readonly type: 'route-refresh';
  readonly afi: number;
  readonly safi: number;
  readonly subtype: number; // RouteRefreshSubtype
}

/**
 * An UPDATE split into its three parts (RFC 4271 §4.3), lengths validated, nothing decoded yet.
 * The hot path interns `attributes` by its bytes before decoding them once per distinct set.
 */
export interface UpdateMessage {
  readonly type: 'update';
  readonly withdrawn: Uint8Array; // IPv4 unicast withdrawn routes, raw
  readonly attributes: Uint8Array; // path attributes, raw
  readonly nlri: Uint8Array; // IPv4 unicast NLRI, raw
}

export type BgpMessage =
  OpenMessage | KeepaliveMessage | NotificationMessage | RouteRefreshMessage | UpdateMessage;

// ---------------------------------------------------------------- NLRI
/** One route key on the wire: a prefix, plus the ADD-PATH id and, for VPN families, RD and labels. */
export interface Nlri {
  readonly prefix: Prefix;
  readonly pathId?: number; // RFC 7911
  readonly rd?: Uint8Array; // 8 bytes, RFC 4364 §4.2 (types 0, 1, 2)
  readonly labels?: readonly number[]; // 20-bit label values, RFC 8277; bottom of stack on the last
}

// ---------------------------------------------------------------- path attributes
export interface AsPathSegment {
  readonly type: 1 | 2 | 3 | 4; // AsPathSegmentType
  readonly asns: readonly number[];
}

export interface Aggregator {
  readonly asn: number;
  readonly address: Uint8Array; // 4 bytes
}

export interface LargeCommunity {
  readonly global: number;
  readonly local1: number;
  readonly local2: number;
}

/** An attribute we do not interpret, passed on byte-exact (Partial set when optional transitive). */
export interface RawAttribute {
  readonly flags: number;
  readonly code: number;
  readonly value: Uint8Array;
}

export interface MpReach {
  readonly afi: number;
  readonly safi: number;
  /** Next hop as on the wire (for VPN families the 8-byte zero RD is stripped): 4, 16 or 32 bytes. */
  readonly nextHop: Uint8Array;
  /** IPv6 link-local next hop, when the next hop field carried two addresses (RFC 2545 §3). */
  readonly linkLocalNextHop?: Uint8Array;
  readonly nlri: Uint8Array; // raw NLRI bytes for (afi, safi)
}

export interface MpUnreach {
  readonly afi: number;
  readonly safi: number;
  readonly nlri: Uint8Array; // raw withdrawn NLRI bytes
}

/**
 * The decoded path attributes of one UPDATE, without MP_REACH/MP_UNREACH (they carry per-UPDATE
 * NLRI and next hops, not shared route properties). AS_PATH and AGGREGATOR are always held with
 * 4-octet ASNs, after AS4_PATH/AS4_AGGREGATOR reconciliation (RFC 6793 §4.2.3) for 2-octet peers.
 */
export interface PathAttributes {
  readonly origin?: number; // 0 IGP, 1 EGP, 2 INCOMPLETE
  readonly asPath?: readonly AsPathSegment[];
  readonly nextHop?: Uint8Array; // NEXT_HOP (IPv4), 4 bytes
  readonly med?: number;
  readonly localPref?: number;
  readonly atomicAggregate?: boolean;
  readonly aggregator?: Aggregator;
  readonly communities?: readonly number[]; // uint32 each
  readonly originatorId?: number; // uint32
  readonly clusterList?: readonly number[];
  readonly extCommunities?: readonly Uint8Array[]; // 8 bytes each
  readonly largeCommunities?: readonly LargeCommunity[];
  readonly otc?: number;
  readonly unknown?: readonly RawAttribute[];
}

/** Result of decoding the attribute section of one UPDATE with RFC 7606 handling applied. */
export interface DecodedAttributes {
  readonly attrs: PathAttributes;
  readonly mpReach?: MpReach;
  readonly mpUnreach?: MpUnreach;
  /** Most severe RFC 7606 action required, if any error was found. */
  readonly action?: import('./errors.ts').UpdateErrorAction;
  /** Every error found (for logs and `last-error`); session-reset errors are thrown instead. */
  readonly errors: readonly import('./errors.ts').UpdateError[];
}
