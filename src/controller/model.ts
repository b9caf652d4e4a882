/**
 * The controller's model (draft §6.2, §7): tenants and what they own, the hosts and PEs of the
 * DC, and the bindings of DC instances to WAN IP VPNs. Plain JSON documents stored under
 * `KEYS`; every document carries its store revision as `etag` when read.
 */

export const ID_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

export interface Tenant {
  readonly id: string;
  readonly name: string;
  readonly description?: string;
  /** 'active' | 'terminating' (termination workflow running). */
  readonly state: 'active' | 'terminating';
  readonly createdAt: string;
}

/** A tenant container (draft §2: a tenant can have several, e.g. per application). */
export interface Container {
  readonly id: string;
  readonly tenant: string;
  readonly name: string;
}

/** A DC host: runs vCE agents and VMs; its underlay address is the VTEP of its VMs. */
export interface Host {
  readonly id: string;
  /** Underlay address (VTEP of the host's VMs, and where its vCE agents listen). */
  readonly underlay: string;
}

/** A PE the controller can provision through a WAN adapter. */
export interface Pe {
  readonly id: string;
  readonly asn: number;
  readonly adapter:
    | { readonly kind: 'gobgp'; readonly host: string; readonly port: number }
    | { readonly kind: 'embedded'; readonly api: string };
  /** Address range for dynamic-neighbour bindings (draft §7.2.1.1), if the PE offers one. */
  readonly dynamicRange?: string;
  /** The PE's BGP port for PE-CE sessions (default 179). */
  readonly bgpPort?: number;
  /** The PE's data plane tunnel endpoint (VTEP), when the vCE reaches it over VXLAN. */
  readonly dataplane?: string;
}

export interface VceContext {
  readonly name: string;
  readonly routeDistinguisher?: string;
}

/** A tenant's vCE agent on a host. */
export interface VceInstance {
  readonly id: string;
  readonly tenant: string;
  readonly host: string;
  readonly asn: number;
  readonly routerId: string;
  readonly contexts: readonly VceContext[];
  /** Zone rules of the vCE (the draft §9 three-tier example). */
  readonly zoneRules: readonly Record<string, unknown>[];
  /** QoS policies (agent `dataplane.qos-policies` format) that attachments name as `qosProfile`. */
  readonly qosPolicies?: readonly Record<string, unknown>[];
  /** The agent's BGP port (PE-CE sessions); default 179. */
  readonly bgpPort?: number;
  /** UDP port of the data plane tunnels; default 4789. */
  readonly vxlanPort?: number;
}

/** A VM (endpoint) of a tenant. */
export interface Endpoint {
  readonly id: string;
  readonly tenant: string;
  readonly name: string;
  readonly mac: string;
  readonly addresses: readonly string[];
  readonly host: string;
  /** The attachment (segment) the VM sits on. */
  readonly attachment: string;
  readonly container?: string;
}

/** An attachment circuit of a vCE context: a VNI, or a VLAN / QinQ pair on the vCE's trunk. */
export interface Attachment {
  readonly id: string;
  readonly tenant: string;
  readonly vce: string;
  readonly context: string;
  readonly kind: 'vxlan' | 'vlan' | 'qinq';
  readonly vni?: number;
  readonly vlan?: number;
  readonly outerVlan?: number;
  /** Gateway addresses of the vCE on the segment (CIDR). */
  readonly addresses: readonly string[];
  readonly zone?: string;
  readonly qosProfile?: string;
}

export type BindingMode = 'push-inter-domain' | 'push-cross-domain' | 'pull';

/** A DC context bound to the tenant's WAN IP VPN on a PE (draft §7.1). */
export interface WanBinding {
  readonly id: string;
  readonly tenant: string;
  readonly vce: string;
  readonly context: string;
  readonly pe: string;
  readonly mode: BindingMode;
  readonly wanVrf: string;
  readonly rd: string;
  readonly importRts: readonly string[];
  readonly exportRts: readonly string[];
  readonly protocol: 'bgp' | 'static';
  readonly dynamic: boolean;
  /** The PE-side attachment (connection id passed to WAN provisioning). */
  readonly peAttachment: {
    readonly kind: 'vlan' | 'qinq' | 'vxlan';
    readonly id: number;
    readonly outer?: number;
  };
  /** PE-CE link addresses (allocated when not given). */
  readonly peAddress?: string;
  readonly ceAddress?: string;
  readonly bfd: boolean;
  /** Tenant prefixes routed to the vCE (static protocol). */
  readonly staticPrefixes: readonly string[];
  /** 'provisioning' | 'active' | 'failed' | 'deprovisioning' | 'isolated'. */
  readonly state: 'provisioning' | 'active' | 'failed' | 'deprovisioning' | 'isolated';
}

export type StepState = 'pending' | 'running' | 'done' | 'failed' | 'compensated' | 'skipped';

export interface OperationStep {
  readonly name: string;
  state: StepState;
  startedAt?: string;
  endedAt?: string;
  error?: string;
  /** What the step produced (ids, the hand-off to a cross-domain orchestrator...). */
  result?: Record<string, unknown>;
}

export interface Operation {
  readonly id: string;
  readonly kind: 'bind' | 'unbind' | 'terminate-tenant';
  readonly mode?: BindingMode;
  readonly tenant: string;
  readonly target: string;
  state: 'pending' | 'running' | 'succeeded' | 'failed' | 'rolling-back' | 'rolled-back';
  steps: OperationStep[];
  readonly createdAt: string;
  updatedAt: string;
  error?: string;
}

export type Role = 'operator' | 'tenant' | 'agent' | 'cross-domain';

export interface Token {
  /** sha256 of the secret (the secret itself is never stored). */
  readonly hash: string;
  readonly role: Role;
  /** tenant role: the tenant; agent role: the vCE id. */
  readonly scope?: string;
  readonly name: string;
}

export interface AuditEntry {
  readonly at: string;
  readonly actor: string;
  readonly role: Role;
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly tenant?: string;
}

export type AlarmKind =
  | 'wrong-vrf'
  | 'drift-repaired'
  | 'repair-failed'
  | 'agent-config-error'
  | 'agent-stale'
  | 'pe-unreachable'
  | 'residue'
  | 'session-down';

export type AlarmSeverity = 'critical' | 'major' | 'minor' | 'warning';

/**
 * A condition the reconciler found (draft §7.1: WAN and DC state kept in sync, never a customer in
 * the wrong VRF). One document per condition (`id` derived from kind, scope and detail): the same
 * condition found again bumps `count` instead of adding a document; `clearedAt` is set when the
 * reconciler no longer finds it.
 */
export interface Alarm {
  readonly id: string;
  readonly kind: AlarmKind;
  readonly severity: AlarmSeverity;
  /** What the alarm is about (`pe:ID`, `binding:ID`, `vce:ID`): the check that clears it. */
  readonly scope: string;
  readonly tenant?: string;
  readonly binding?: string;
  readonly vce?: string;
  readonly pe?: string;
  readonly message: string;
  /** First raised. */
  readonly raisedAt: string;
  /** Last raised (or found again, for repairs). */
  readonly lastRaisedAt: string;
  readonly clearedAt?: string;
  /** Occurrences: raised anew after a clear, or repaired again. */
  readonly count: number;
  readonly ackedAt?: string;
  readonly ackedBy?: string;
}

/** Key layout in the store. */
export const KEYS = {
  root: '/vce/v1/',
  tenant: (t: string) => `/vce/v1/tenants/${t}`,
  tenants: '/vce/v1/tenants/',
  owned: (t: string, kind: string, id: string) => `/vce/v1/t/${t}/${kind}/${id}`,
  ownedKind: (t: string, kind: string) => `/vce/v1/t/${t}/${kind}/`,
  ownedAll: (t: string) => `/vce/v1/t/${t}/`,
  /** Global indexes: id -> tenant (ids are unique across tenants). */
  index: (kind: string, id: string) => `/vce/v1/index/${kind}/${id}`,
  host: (h: string) => `/vce/v1/hosts/${h}`,
  hosts: '/vce/v1/hosts/',
  pe: (p: string) => `/vce/v1/pes/${p}`,
  pes: '/vce/v1/pes/',
  agentConfig: (v: string) => `/vce/v1/agents/${v}/config`,
  agentStatus: (v: string) => `/vce/v1/agents/${v}/status`,
  agentConfigs: '/vce/v1/agents/',
  operation: (o: string) => `/vce/v1/operations/${o}`,
  operations: '/vce/v1/operations/',
  token: (hash: string) => `/vce/v1/tokens/${hash}`,
  audit: (seq: string) => `/vce/v1/audit/${seq}`,
  audits: '/vce/v1/audit/',
  idempotency: (k: string) => `/vce/v1/idempotency/${k}`,
  ipam: (pool: string, prefix: string) => `/vce/v1/ipam/${pool}/${prefix}`,
  ipamPool: (pool: string) => `/vce/v1/ipam/${pool}/`,
  quarantine: (kind: string, id: string) => `/vce/v1/quarantine/${kind}/${id}`,
  alarm: (id: string) => `/vce/v1/alarms/${id}`,
  alarms: '/vce/v1/alarms/',
  leader: '/vce/v1/leader',
} as const;

export const OWNED_KINDS = ['containers', 'vces', 'attachments', 'endpoints', 'bindings'] as const;
export type OwnedKind = (typeof OWNED_KINDS)[number];
