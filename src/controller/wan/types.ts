/**
 * WAN provisioning (draft §7.2.1): what the DC controller asks of the WAN side so a tenant's vCE
 * is bound to the tenant's IP VPN. One adapter per kind of PE control plane (a real gobgpd, our
 * embedded PE speaker, ...) behind this interface; one conformance suite proves each.
 *
 * Adapters are idempotent: `provision` of what is already there changes nothing, `deprovision`
 * of what is absent succeeds. They touch only what they own (names derived from the binding id).
 */

export interface WanBindingSpec {
  /** Stable id of the binding; adapters derive the PE-side names from it. */
  readonly id: string;
  readonly tenant: string;
  /** The PE the binding lives on (an adapter may serve several PEs). */
  readonly pe: string;
  /** WAN VRF name on the PE. */
  readonly vrf: string;
  /** Route distinguisher, `ASN:N` or `IP:N`. */
  readonly rd: string;
  /** Route targets, `ASN:N` or `IP:N`. */
  readonly importRts: readonly string[];
  readonly exportRts: readonly string[];
  /** The PE-side attachment circuit: a VLAN or a VNI carrying the tenant (informational for
   * control-plane-only PEs). */
  readonly attachment: {
    readonly kind: 'vlan' | 'qinq' | 'vxlan';
    readonly id: number;
    readonly outer?: number;
  };
  /** PE-CE routing. */
  readonly protocol: 'bgp' | 'static';
  /** The PE's address on the attachment and its AS. */
  readonly peAddress: string;
  readonly peAsn: number;
  /** The vCE's address on the attachment (the BGP neighbour or the static next hop), its AS. */
  readonly ceAddress: string;
  readonly ceAsn?: number;
  /** static: the tenant prefixes routed to the vCE. */
  readonly staticPrefixes?: readonly string[];
  readonly bfd?: boolean;
  /**
   * Dynamic-neighbour mode (draft §7.2.1.1): the PE accepts BGP from any address of this range in
   * the VRF, so it needs no per-vCE configuration; the binding only ensures the VRF and the range.
   */
  readonly dynamicRange?: string;
}

export interface WanNeighborStatus {
  readonly address: string;
  readonly state: string;
  readonly established: boolean;
  /** Prefixes received from the vCE. */
  readonly received: number;
}

export interface WanBindingStatus {
  /** The VRF exists on the PE. */
  readonly present: boolean;
  readonly rd?: string;
  readonly importRts?: readonly string[];
  readonly exportRts?: readonly string[];
  readonly neighbors: readonly WanNeighborStatus[];
  /** Prefixes in the PE VRF's table. */
  readonly routes: readonly string[];
}

export interface WanAdapter {
  /** 'gobgp' | 'embedded' | ... */
  readonly kind: string;
  provision(spec: WanBindingSpec): Promise<void>;
  deprovision(spec: WanBindingSpec): Promise<void>;
  status(spec: WanBindingSpec): Promise<WanBindingStatus>;
  /** Ids of the bindings this adapter finds on its PE(s) (residue checks after termination). */
  list(): Promise<string[]>;
  close(): Promise<void>;
}

export class WanError extends Error {
  override readonly name = 'WanError';
  readonly code = 'WAN';
  constructor(
    readonly adapter: string,
    message: string,
  ) {
    super(`${adapter}: ${message}`);
  }
}
