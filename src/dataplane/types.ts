/**
 * The data plane's desired state: what the agent's configuration asks the forwarder (userspace
 * driver) or the kernel (Linux renderer) to do. Plain data, validated by the agent's config reader;
 * both drivers take exactly this and nothing else.
 */
import type { Prefix } from '../lib/ip.ts';

/** Attachment circuit kinds (draft §4.1, §4.2, §5.2). */
export type InterfaceKind = 'vxlan' | 'vlan' | 'qinq' | 'nvgre' | 'mpls-udp';

/** A tunnel endpoint: an IPv4 or IPv6 address and a UDP port. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

export interface InterfaceAddress {
  /** 4 or 16 bytes. */
  readonly address: Uint8Array;
  /** The connected subnet. */
  readonly prefix: Prefix;
}

export interface DpInterface {
  readonly name: string;
  /** Routing context (VRF) this attachment belongs to. */
  readonly context: string;
  /** Zone for the zone-pair ACLs; `undefined` puts it in no zone (only intra-context default). */
  readonly zone?: string;
  readonly kind: InterfaceKind;
  /** Our MAC address on the attachment (6 bytes). */
  readonly mac: Uint8Array;
  readonly mtu: number;
  readonly addresses: readonly InterfaceAddress[];
  /** vxlan: the VXLAN network identifier (24 bits). */
  readonly vni?: number;
  /** vxlan / nvgre / mpls-udp: where frames go (head-end replication for broadcast). */
  readonly remotes?: readonly Endpoint[];
  /** vlan / qinq: the trunk (a vxlan interface, not itself routed when it carries tags). */
  readonly trunk?: string;
  /** vlan: 802.1Q VLAN ID; qinq: the inner (C-tag) VLAN ID. */
  readonly vlan?: number;
  /** qinq: the 802.1ad outer (S-tag) VLAN ID. */
  readonly outerVlan?: number;
  /** nvgre: the 24-bit virtual subnet identifier. */
  readonly vsid?: number;
  /** mpls-udp: the label we push (3-bit TC carries the class); default explicit null (0 / 2). */
  readonly label?: number;
  /** IPv6: send router advertisements on this attachment so VMs configure a default route. */
  readonly routerAdvertisements: boolean;
  /** Name of the QoS policy applied to packets leaving through this interface. */
  readonly qosPolicy?: string;
}

export type Protocol = 'tcp' | 'udp' | 'icmp' | 'icmpv6' | number;

/** An inclusive port range. */
export interface PortRange {
  readonly from: number;
  readonly to: number;
}

/** Packet match used by zone rules and QoS classes; every given field must match (AND). */
export interface PacketMatch {
  /** 4 or 6 restricts to one family. */
  readonly family?: 4 | 6;
  readonly protocol?: Protocol;
  readonly source?: readonly Prefix[];
  readonly destination?: readonly Prefix[];
  readonly sourcePorts?: readonly PortRange[];
  readonly destinationPorts?: readonly PortRange[];
  /** Matches the packet's DSCP on arrival. */
  readonly dscp?: readonly number[];
}

/** A zone-pair rule: traffic entering from zone `from` and leaving to zone `to`. */
export interface ZoneRule {
  readonly name?: string;
  /** Zone name or `*` for any. */
  readonly from: string;
  readonly to: string;
  readonly action: 'allow' | 'deny';
  readonly match: PacketMatch;
}

/** What VMs may send to the vCE itself (draft §9: the vCE protects itself). */
export interface SelfPolicy {
  /** ICMP / ICMPv6 echo and errors addressed to us. ARP and ND are always answered. */
  readonly icmp: boolean;
  /** Addresses allowed to reach our BGP port (179): the configured peers. */
  readonly bgpPeers: readonly Uint8Array[];
  /** Addresses allowed to reach our BFD ports (3784/4784). */
  readonly bfdPeers: readonly Uint8Array[];
  /** Further allowed traffic to us (for example the management API from one subnet). */
  readonly allow: readonly PacketMatch[];
}

export interface ZonePolicy {
  readonly zones: readonly string[];
  /** Verdict when no rule matches between two different zones; default deny. */
  readonly defaultAction: 'allow' | 'deny';
  /** Traffic between interfaces of the same zone; default allow. */
  readonly intraZone: 'allow' | 'deny';
  /** First match wins. */
  readonly rules: readonly ZoneRule[];
  /** Stateful flow table: maximum flows and idle timeouts (seconds). */
  readonly flows: {
    readonly max: number;
    readonly tcpEstablished: number;
    readonly tcpTransitory: number;
    readonly udp: number;
    readonly icmp: number;
  };
  readonly self: SelfPolicy;
}

/** Token bucket policer (RFC 2697 single rate, two colour). */
export interface Policer {
  readonly rateBitsPerSecond: number;
  readonly burstBytes: number;
  /** Out-of-profile packets: dropped, or re-marked with this DSCP. */
  readonly exceed: 'drop' | { readonly remark: number };
}

export interface QosClass {
  readonly name: string;
  readonly match: PacketMatch;
  /** Set the packet's DSCP. */
  readonly setDscp?: number;
  readonly police?: Policer;
  /** MPLS traffic class (3 bits) used on mpls-udp egress; default DSCP >> 3. */
  readonly mplsTc?: number;
}

export interface QosPolicy {
  readonly name: string;
  /** First match wins; packets matching none are in class `default` (counted, untouched). */
  readonly classes: readonly QosClass[];
}

/**
 * Outer header DSCP of tunnels (RFC 3270 / RFC 2983): `uniform` copies the inner DSCP (after
 * marking) to the outer IP header and MPLS TC; `pipe` uses a fixed outer DSCP and leaves the inner
 * one as the customer set it.
 */
export interface TunnelQos {
  readonly mode: 'pipe' | 'uniform';
  /** pipe: the outer DSCP. */
  readonly outerDscp: number;
}

export interface DataplaneConfig {
  readonly driver: 'userspace' | 'linux' | 'none';
  /** UDP listen address for tunnels (VXLAN, GRE-in-UDP, MPLS-in-UDP). */
  readonly listenAddress: string;
  readonly vxlanPort: number; // 4789
  readonly greUdpPort: number; // 4754 (RFC 8086)
  readonly mplsUdpPort: number; // 6635 (RFC 7510)
  readonly interfaces: readonly DpInterface[];
  readonly zones: ZonePolicy;
  readonly qos: readonly QosPolicy[];
  readonly tunnelQos: TunnelQos;
  /** ARP / ND: entry lifetime and queue of packets waiting for resolution. */
  readonly neighbor: { readonly reachableSeconds: number; readonly queuePerNextHop: number };
  /** ICMP errors we originate, per second (token bucket). */
  readonly icmpRatePerSecond: number;
  /** Linux driver: VRF devices or (kernels without them) policy routing, and the namespace to use. */
  readonly linux?: { readonly vrfMode: 'vrf-device' | 'policy-routing'; readonly netns?: string };
}

/** A route as the data plane needs it (from the context's FIB). */
export interface DpRoute {
  readonly context: string;
  readonly prefix: Prefix;
  readonly action: 'forward' | 'blackhole' | 'reject';
  /** Gateway address (same family as the prefix); absent for a connected route. */
  readonly nextHop?: Uint8Array;
  /** Outgoing interface, when known. */
  readonly interface?: string;
}

/** One prefix of a context's FIB changed; `route` undefined: the prefix left the FIB. */
export interface RouteChange {
  readonly prefix: Prefix;
  readonly route?: DpRoute;
}
