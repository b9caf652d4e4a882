/**
 * The Linux renderer's normalized desired kernel state (what `renderLinux` produces and
 * `planLinux` consumes), the ownership ranges, and interface naming (IFNAMSIZ). Types and small
 * pure helpers only.
 */

export type VrfMode = 'vrf-device' | 'policy-routing';

export interface LinuxRenderOptions {
  /** First routing table id; context `i` (sorted by name) gets `tableBase + i`. Default 1000. */
  readonly tableBase?: number;
  readonly vrfMode: VrfMode;
  /** Priority of the policy-routing rules of context 0; context `i` uses `+ i`. Default 2000. */
  readonly rulePriority?: number;
  /** Size of the owned table and rule-priority ranges (and the maximum of contexts). Default 256. */
  readonly maxContexts?: number;
}

export const DEFAULT_TABLE_BASE = 1000;
export const DEFAULT_RULE_PRIORITY = 2000;
export const DEFAULT_MAX_CONTEXTS = 256;
/** Metric of the catch-all unreachable routes (the value the kernel's vrf.rst uses). */
export const UNREACHABLE_METRIC = 4278198272;
/** Every link we own carries an alias starting with this. */
export const ALIAS_MARKER = 'vce:';
/** `linux/if.h` IFNAMSIZ - 1. */
export const IFNAME_MAX = 15;

export type LinkKind = 'vrf' | 'vxlan' | 'vlan' | 'gretap' | 'ip6gretap' | 'ipip';

export interface LinkSpec {
  /** Kernel name, at most 15 bytes. */
  readonly name: string;
  readonly kind: LinkKind;
  /** `vce:<role>:<config name>`; the ownership marker. */
  readonly alias: string;
  /** Lower device (`link DEV`): the trunk of a VLAN link. */
  readonly parent?: string;
  /** VRF device this link is enslaved to (vrf-device mode). */
  readonly master?: string;
  readonly mac?: string;
  readonly mtu?: number;
  /** Arguments after `type KIND`, in iproute2 syntax. They cannot change in place. */
  readonly typeArgs: readonly string[];
  /** The same facts as `ip -j -d link` reports them in `linkinfo.info_data` (normalized). */
  readonly identity: Readonly<Record<string, string | number | boolean>>;
  /** The config interface this link is; undefined for helper links (VRF, 802.1ad outer). */
  readonly interface?: string;
}

export interface AddrSpec {
  readonly dev: string;
  /** `address/len`, the address formatted as iproute2 prints it. */
  readonly address: string;
  readonly family: 4 | 6;
}

export type RouteType = 'unicast' | 'blackhole' | 'unreachable';

export interface RouteSpec {
  readonly table: number;
  readonly family: 4 | 6;
  /** `prefix/len`. */
  readonly dst: string;
  readonly type: RouteType;
  readonly via?: string;
  readonly dev?: string;
  /** Undefined: the family default (IPv4 0, IPv6 1024). */
  readonly metric?: number;
  /** `encap mpls LABEL` (mpls-udp interfaces). */
  readonly mplsLabel?: number;
}

export interface RuleSpec {
  readonly family: 4 | 6;
  readonly priority: number;
  readonly table: number;
  readonly iif?: string;
  readonly oif?: string;
  /** `address/len`. */
  readonly from?: string;
}

/** A VXLAN flood entry: `bridge fdb append 00:00:00:00:00:00 dev DEV dst DST [port P]`. */
export interface FdbSpec {
  readonly dev: string;
  readonly dst: string;
  /** Only when it differs from the device's `dstport`. */
  readonly port?: number;
}

/** A FOU / GUE receive port: `ip fou add port P ipproto N`. */
export interface FouSpec {
  readonly port: number;
  readonly ipproto: number;
  readonly family: 4 | 6;
}

/** An MPLS label route popping into a VRF device: `ip -M route replace LABEL dev DEV`. */
export interface MplsRouteSpec {
  readonly label: number;
  readonly dev: string;
}

/** Which kernel objects count as ours: tables and rule priorities in these half-open ranges. */
export interface LinuxOwnership {
  readonly tableBase: number;
  readonly tableCount: number;
  readonly rulePriority: number;
  readonly ruleCount: number;
}

export interface LinuxDesired {
  readonly links: readonly LinkSpec[];
  readonly addresses: readonly AddrSpec[];
  readonly routes: readonly RouteSpec[];
  readonly rules: readonly RuleSpec[];
  readonly fdb: readonly FdbSpec[];
  readonly fou: readonly FouSpec[];
  readonly mplsRoutes: readonly MplsRouteSpec[];
  /** sysctl key -> value (`net.ipv4.ip_forward` -> `1`). */
  readonly sysctls: Readonly<Record<string, string>>;
  /** The `nft -f` input: replaces `table inet vce` atomically; '' = the table must not exist. */
  readonly nft: string;
  /** Hash of the table body, stored as the table's comment (`vce:<hash>`); '' when `nft` is ''. */
  readonly nftHash: string;
  /** Always empty: marking and policing are nftables (see `linux-nft.ts`). */
  readonly tc: readonly string[];
  /** Config interface name -> kernel name. */
  readonly names: Readonly<Record<string, string>>;
  /** Context -> routing table id. */
  readonly tables: Readonly<Record<string, number>>;
  readonly ownership: LinuxOwnership;
  /** What the kernel rendering cannot express, one sentence each. */
  readonly notes: readonly string[];
}

/** True when the kernel accepts `s` as an interface name (`dev_valid_name`). */
export function validIfName(s: string): boolean {
  return (
    s.length > 0 &&
    new TextEncoder().encode(s).length <= IFNAME_MAX &&
    s !== '.' &&
    s !== '..' &&
    !/[\s/:]/.test(s)
  );
}

/** FNV-1a, 32 bits: short, stable, good enough to keep derived names apart. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** `want` when it is a valid interface name, else `<8 safe chars>-<6 hex>` (15 bytes). */
export function shortIfName(want: string): string {
  if (validIfName(want)) return want;
  const base = want.replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 8);
  return `${base}-${fnv1a(want).toString(16).padStart(8, '0').slice(0, 6)}`;
}

/** Characters iproute2's batch parser and the alias keep as they are. */
export function aliasSafe(s: string): string {
  return s.replace(/[^A-Za-z0-9_.:/@+=-]/g, '_');
}

export function formatMac(mac: Uint8Array): string {
  return Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join(':');
}

/** A desired state with nothing in it: planning against it removes everything we own. */
export function emptyLinuxDesired(ownership: LinuxOwnership): LinuxDesired {
  return {
    links: [],
    addresses: [],
    routes: [],
    rules: [],
    fdb: [],
    fou: [],
    mplsRoutes: [],
    sysctls: {},
    nft: '',
    nftHash: '',
    tc: [],
    names: {},
    tables: {},
    ownership,
    notes: [],
  };
}

/** Default ownership ranges for `opts` (what `renderLinux` puts into `ownership`). */
export function linuxOwnership(opts: Partial<LinuxRenderOptions> = {}): LinuxOwnership {
  const n = opts.maxContexts ?? DEFAULT_MAX_CONTEXTS;
  return {
    tableBase: opts.tableBase ?? DEFAULT_TABLE_BASE,
    tableCount: n,
    rulePriority: opts.rulePriority ?? DEFAULT_RULE_PRIORITY,
    ruleCount: n,
  };
}
