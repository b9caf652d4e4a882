/**
 * The Linux renderer's diff: what the kernel holds (parsed from `ip -j`, `bridge -j`, `nft list`)
 * against what `renderLinux` wants, as the few command lines that close the gap. Pure: the I/O is
 * in `linux-apply.ts`.
 *
 * Ownership (nothing else is ever touched): links whose alias starts with `vce:`; routes in the
 * tables `[tableBase, tableBase + tableCount)` except the kernel's own (`proto kernel`, local,
 * broadcast, multicast); rules with a priority in `[rulePriority, rulePriority + ruleCount)`
 * except the kernel's `l3mdev` rule; VXLAN all-zeros FDB entries on our links; FOU ports carrying
 * GRE (47) or MPLS (137); MPLS label routes into our links; `table inet vce`.
 *
 * Invariants: planning a state against itself yields nothing (idempotent apply). A link whose
 * type arguments changed is deleted and added again, and so are its VLAN children; their
 * addresses, routes and FDB entries are then planned as if absent. Deletions run children first.
 *
 * `ip` lines are batch lines (`ip -batch -`); iproute2 takes the address family only from the
 * command line, so lines that need one start with `-6 ` (IPv6 rules, FOU) or `-M ` (MPLS routes)
 * and the shell runs them in a second / third batch with that option.
 */
import type {
  AddrSpec,
  FdbSpec,
  FouSpec,
  LinkSpec,
  LinuxDesired,
  LinuxOwnership,
  MplsRouteSpec,
  RouteSpec,
  RuleSpec,
} from './linux-spec.ts';
import { ALIAS_MARKER } from './linux-spec.ts';
import { LinuxPlanError } from './linux-errors.ts';
import { NFT_HASH_PREFIX, NFT_TABLE } from './linux-nft.ts';

export interface CurrentLink {
  readonly name: string;
  /** `linkinfo.info_kind`; undefined for plain devices. */
  readonly kind?: string;
  readonly alias?: string;
  readonly parent?: string;
  readonly master?: string;
  readonly mac?: string;
  readonly mtu?: number;
  readonly up: boolean;
  /** `linkinfo.info_data` as iproute2 prints it. */
  readonly info: Readonly<Record<string, unknown>>;
}

export interface CurrentAddr extends AddrSpec {
  readonly scope: string;
}

/** A route as read back; `type` may be one we never render (`prohibit`, ...). */
export interface CurrentRoute extends Omit<RouteSpec, 'type'> {
  readonly type: string;
}

export interface CurrentRule extends RuleSpec {
  /** Selectors we do not render (fwmark, dst, tos, ...): never equal to a desired rule. */
  readonly foreign?: boolean;
}

/** The kernel state the plan looks at (only what `linux-apply.ts` reads). */
export interface LinuxCurrent {
  readonly links: readonly CurrentLink[];
  readonly addresses: readonly CurrentAddr[];
  /** Routes of numbered tables, the kernel's own already left out. */
  readonly routes: readonly CurrentRoute[];
  /** Rules of numbered tables, the `l3mdev` rule already left out. */
  readonly rules: readonly CurrentRule[];
  readonly fdb: readonly FdbSpec[];
  readonly fou: readonly FouSpec[];
  readonly mplsRoutes: readonly MplsRouteSpec[];
  /** Missing keys are undefined. */
  readonly sysctls: Readonly<Record<string, string | undefined>>;
  /** Hash from the comment of `table inet vce`; undefined when the table does not exist; '' when it has no hash. */
  readonly nftHash: string | undefined;
}

export interface LinuxPlan {
  /** `ip -batch` lines; some start with `-6 ` or `-M ` (see the module comment). */
  readonly ip: readonly string[];
  /** `bridge -batch` lines (VXLAN flood entries). */
  readonly bridge: readonly string[];
  readonly sysctl: readonly (readonly [string, string])[];
  /** `nft -f` input; undefined when the table is as desired. */
  readonly nft?: string;
}

export const EMPTY_CURRENT: LinuxCurrent = {
  links: [],
  addresses: [],
  routes: [],
  rules: [],
  fdb: [],
  fou: [],
  mplsRoutes: [],
  sysctls: {},
  nftHash: undefined,
};

const ZERO_MAC = '00:00:00:00:00:00';
const OWNED_FOU_PROTOCOLS = new Set([47, 137]);
const NAMED_TABLES: Readonly<Record<string, number>> = { default: 253, main: 254, local: 255 };

// ---------------------------------------------------------------------------------------------
// Reading iproute2 / bridge / nft output

type Json = Record<string, unknown>;

function array(text: string): Json[] {
  const t = text.trim();
  if (t === '') return [];
  const v: unknown = JSON.parse(t);
  if (!Array.isArray(v)) return [];
  return v.filter((x): x is Json => typeof x === 'object' && x !== null);
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined =>
  typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : undefined;

/** `ip -j -d link show`. */
export function parseLinks(text: string): CurrentLink[] {
  return array(text).map((l) => {
    const li = (l['linkinfo'] ?? {}) as Json;
    const flags = Array.isArray(l['flags']) ? (l['flags'] as unknown[]) : [];
    return {
      name: str(l['ifname']) ?? '',
      kind: str(li['info_kind']),
      alias: str(l['ifalias']),
      parent: str(l['link']),
      master: str(l['master']),
      mac: str(l['address'])?.toLowerCase(),
      mtu: num(l['mtu']),
      up: flags.includes('UP'),
      info: (li['info_data'] ?? {}) as Json,
    };
  });
}

/** `ip -j addr show`. */
export function parseAddresses(text: string): CurrentAddr[] {
  const out: CurrentAddr[] = [];
  for (const l of array(text)) {
    const dev = str(l['ifname']) ?? '';
    for (const a of (Array.isArray(l['addr_info']) ? l['addr_info'] : []) as Json[]) {
      const fam = str(a['family']);
      const local = str(a['local']);
      const len = num(a['prefixlen']);
      if ((fam !== 'inet' && fam !== 'inet6') || local === undefined || len === undefined) continue;
      out.push({
        dev,
        address: `${local}/${len}`,
        family: fam === 'inet' ? 4 : 6,
        scope: str(a['scope']) ?? 'global',
      });
    }
  }
  return out;
}

function tableId(v: unknown): number | undefined {
  if (v === undefined) return NAMED_TABLES['main'];
  if (typeof v === 'number') return v;
  return typeof v === 'string' ? (NAMED_TABLES[v] ?? num(v)) : undefined;
}

function normDst(dst: string | undefined, family: 4 | 6): string {
  if (dst === undefined || dst === 'default') return family === 4 ? '0.0.0.0/0' : '::/0';
  return dst.includes('/') ? dst : `${dst}/${family === 4 ? 32 : 128}`;
}

/**
 * `ip -4|-6 -j route show table all`. iproute2 prints an MPLS encap's label under a second `dst`
 * key in the same object; it is renamed before parsing so the route's own `dst` survives.
 */
export function parseRoutes(text: string, family: 4 | 6): CurrentRoute[] {
  const fixed = text.replace(/"encap":"mpls","dst":/g, '"encap":"mpls","mpls_label":');
  const out: CurrentRoute[] = [];
  for (const r of array(fixed)) {
    const type = str(r['type']) ?? 'unicast';
    if (type === 'local' || type === 'broadcast' || type === 'multicast' || type === 'anycast') continue;
    if (str(r['protocol']) === 'kernel') continue;
    const table = tableId(r['table']);
    if (table === undefined) continue;
    const label = str(r['mpls_label']);
    const metric = num(r['metric']);
    const via = str(r['gateway']);
    const dev = str(r['dev']);
    out.push({
      table,
      family,
      dst: normDst(str(r['dst']), family),
      type,
      ...(via !== undefined ? { via } : {}),
      ...(dev !== undefined && type === 'unicast' ? { dev } : {}),
      ...(metric !== undefined && metric !== defaultMetric(family) ? { metric } : {}),
      ...(label !== undefined ? { mplsLabel: Number(label.split('/')[0]) } : {}),
    });
  }
  return out;
}

const KNOWN_RULE_KEYS = new Set(['priority', 'src', 'srclen', 'iif', 'oif', 'table', 'flags']);

/** `ip -4|-6 -j rule show`. */
export function parseRules(text: string, family: 4 | 6): CurrentRule[] {
  const out: CurrentRule[] = [];
  for (const r of array(text)) {
    if (r['l3mdev'] !== undefined) continue;
    const priority = num(r['priority']);
    const table = tableId(r['table']);
    if (priority === undefined || table === undefined || r['table'] === undefined) continue;
    const src = str(r['src']);
    const srclen = num(r['srclen']);
    const from =
      src === undefined || src === 'all' ? undefined : `${src}/${srclen ?? (family === 4 ? 32 : 128)}`;
    const iif = str(r['iif']);
    const oif = str(r['oif']);
    const foreign = Object.keys(r).some((k) => !KNOWN_RULE_KEYS.has(k));
    out.push({
      family,
      priority,
      table,
      ...(iif !== undefined ? { iif } : {}),
      ...(oif !== undefined ? { oif } : {}),
      ...(from !== undefined ? { from } : {}),
      ...(foreign ? { foreign } : {}),
    });
  }
  return out;
}

/** `bridge -j fdb show`: the all-zeros (flood) entries with a remote. */
export function parseFdb(text: string): FdbSpec[] {
  const out: FdbSpec[] = [];
  for (const e of array(text)) {
    const dst = str(e['dst']);
    const dev = str(e['ifname']) ?? str(e['dev']);
    if (str(e['mac']) !== ZERO_MAC || dst === undefined || dev === undefined) continue;
    const port = num(e['port']);
    out.push({ dev, dst, ...(port !== undefined ? { port } : {}) });
  }
  return out;
}

/** `ip [-6] -j fou show`. */
export function parseFou(text: string, family: 4 | 6): FouSpec[] {
  const out: FouSpec[] = [];
  for (const f of array(text)) {
    const port = num(f['port']);
    const ipproto = num(f['ipproto']);
    if (port !== undefined && ipproto !== undefined) out.push({ port, ipproto, family });
  }
  return out;
}

/** `ip -M -j route show`. */
export function parseMplsRoutes(text: string): MplsRouteSpec[] {
  const out: MplsRouteSpec[] = [];
  for (const r of array(text)) {
    const label = num(r['dst']);
    const dev = str(r['dev']);
    if (label !== undefined && dev !== undefined) out.push({ label, dev });
  }
  return out;
}

/**
 * The hash in the comment of `table inet vce` from `nft list table inet vce` (text: nft 1.0.6
 * leaves table comments out of its JSON). '' when the table has no such comment.
 */
export function nftHashFromListing(text: string): string {
  const m = new RegExp(
    `^table inet ${NFT_TABLE} \\{\\n\\s*comment "${NFT_HASH_PREFIX}([0-9a-f]+)"`,
    'm',
  ).exec(text);
  return m?.[1] ?? '';
}

// ---------------------------------------------------------------------------------------------
// Planning

function defaultMetric(family: 4 | 6): number {
  return family === 4 ? 0 : 1024;
}

function metricOf(r: { family: 4 | 6; metric?: number }): number {
  return r.metric ?? defaultMetric(r.family);
}

function hexOrNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return v.startsWith('0x') ? parseInt(v, 16) : v === 'inherit' ? 1 : Number(v);
  return 0;
}

/** `info_data` normalized to the keys and forms of `LinkSpec.identity`. */
function currentIdentity(kind: string, info: Readonly<Record<string, unknown>>): Record<string, unknown> {
  switch (kind) {
    case 'vxlan':
      return {
        id: info['id'],
        port: info['port'],
        local: info['local'] ?? '',
        learning: info['learning'],
        tos: hexOrNumber(info['tos']),
      };
    default:
      return { ...info, local: info['local'] ?? 'any' };
  }
}

function sameIdentity(want: LinkSpec, cur: CurrentLink): boolean {
  if (cur.kind !== want.kind) return false;
  if (want.parent !== undefined && cur.parent !== want.parent) return false;
  const id = currentIdentity(want.kind, cur.info);
  return Object.entries(want.identity).every(([k, v]) => String(id[k]) === String(v));
}

/** `link add` ignores IFLA_IFALIAS (only changelink sets it), so the alias is a second line. */
function linkAdd(l: LinkSpec): string[] {
  const add = [
    'link add',
    l.name,
    ...(l.parent !== undefined ? ['link', l.parent] : []),
    ...(l.mac !== undefined ? ['address', l.mac] : []),
    ...(l.mtu !== undefined ? ['mtu', String(l.mtu)] : []),
    ...(l.master !== undefined ? ['master', l.master] : []),
    'up type',
    l.kind,
    ...l.typeArgs,
  ].join(' ');
  return [add, `link set dev ${l.name} alias ${l.alias}`];
}

function routeArgs(
  r: {
    type: string;
    dst: string;
    via?: string;
    dev?: string;
    table: number;
    family: 4 | 6;
    metric?: number;
    mplsLabel?: number;
  },
  del: boolean,
): string {
  const parts: string[] = [];
  if (r.type !== 'unicast') parts.push(r.type);
  parts.push(r.dst);
  if (!del) {
    if (r.mplsLabel !== undefined) parts.push('encap mpls', String(r.mplsLabel));
    if (r.via !== undefined) parts.push('via', r.via);
    if (r.dev !== undefined && r.type === 'unicast') parts.push('dev', r.dev);
  }
  parts.push('table', String(r.table));
  if (metricOf(r) !== defaultMetric(r.family)) parts.push('metric', String(metricOf(r)));
  return parts.join(' ');
}

function routeKey(r: { table: number; dst: string; family: 4 | 6; metric?: number }): string {
  return `${r.table}|${r.dst}|${metricOf(r)}`;
}

function sameRoute(a: RouteSpec, b: CurrentRoute): boolean {
  return (
    a.type === b.type &&
    a.via === b.via &&
    (a.type !== 'unicast' || a.dev === b.dev) &&
    a.mplsLabel === b.mplsLabel
  );
}

function ruleLine(op: 'add' | 'del', r: RuleSpec): string {
  return [
    r.family === 6 ? '-6 rule' : 'rule',
    op,
    'pref',
    String(r.priority),
    ...(r.from !== undefined ? ['from', r.from] : []),
    ...(r.iif !== undefined ? ['iif', r.iif] : []),
    ...(r.oif !== undefined ? ['oif', r.oif] : []),
    'lookup',
    String(r.table),
  ].join(' ');
}

function ruleKey(r: CurrentRule): string {
  return `${r.family}|${r.priority}|${r.table}|${r.from ?? ''}|${r.iif ?? ''}|${r.oif ?? ''}|${r.foreign === true ? 'foreign' : ''}`;
}

function fdbArgs(e: FdbSpec): string {
  return `00:00:00:00:00:00 dev ${e.dev} dst ${e.dst}${e.port !== undefined ? ` port ${e.port}` : ''}`;
}

function fdbKey(e: FdbSpec): string {
  return `${e.dev}|${e.dst}|${e.port ?? ''}`;
}

function fouArgs(f: FouSpec, add: boolean): string {
  return `${f.family === 6 ? '-6 ' : ''}fou ${add ? 'add' : 'del'} port ${f.port}${add ? ` ipproto ${f.ipproto}` : ''}`;
}

function inRange(v: number, base: number, count: number): boolean {
  return v >= base && v < base + count;
}

function ownsTable(o: LinuxOwnership, t: number): boolean {
  return inRange(t, o.tableBase, o.tableCount);
}

/** The full plan: `ip` and `bridge` batch lines, sysctls to write and the nft input. */
export function planLinuxFull(cur: LinuxCurrent, des: LinuxDesired): LinuxPlan {
  const own = des.ownership;
  const ip: string[] = [];
  const curLinks = new Map(cur.links.map((l) => [l.name, l]));
  const owned = (l: CurrentLink | undefined): boolean => l?.alias?.startsWith(ALIAS_MARKER) === true;
  const wanted = new Map(des.links.map((l) => [l.name, l]));

  // Links: what goes away, what is re-created, what changes in place.
  const recreate = new Set<string>();
  const added = new Set<string>();
  const remaster = new Set<string>();
  const adds: string[] = [];
  for (const l of des.links) {
    const c = curLinks.get(l.name);
    if (c === undefined) {
      added.add(l.name);
      adds.push(...linkAdd(l));
      continue;
    }
    if (!owned(c))
      throw new LinuxPlanError(
        `link ${l.name} exists and is not ours (no "${ALIAS_MARKER}" alias): not touching it`,
      );
    if (!sameIdentity(l, c) || (l.parent !== undefined && recreate.has(l.parent))) {
      recreate.add(l.name);
      adds.push(...linkAdd(l));
      continue;
    }
    const set: string[] = [];
    if (l.mtu !== undefined && c.mtu !== l.mtu) set.push('mtu', String(l.mtu));
    if (l.mac !== undefined && c.mac !== l.mac) set.push('address', l.mac);
    if (c.alias !== l.alias) set.push('alias', l.alias);
    const masterRecreated = l.master !== undefined && (recreate.has(l.master) || added.has(l.master));
    if (c.master !== l.master || masterRecreated) {
      set.push(...(l.master !== undefined ? ['master', l.master] : ['nomaster']));
      remaster.add(l.name);
    }
    if (!c.up) set.push('up');
    if (set.length > 0) adds.push(['link set dev', l.name, ...set].join(' '));
  }
  const gone = new Set<string>(recreate);
  for (const c of cur.links) if (owned(c) && !wanted.has(c.name)) gone.add(c.name);
  const depth = (name: string): number => {
    let d = 0;
    for (let p = curLinks.get(name)?.parent; p !== undefined && d < 8; p = curLinks.get(p)?.parent) d++;
    return d;
  };
  const dels = [...gone]
    .sort((a, b) => depth(b) - depth(a) || (a < b ? -1 : a > b ? 1 : 0))
    .map((n) => `link del dev ${n}`);
  // Devices whose addresses and routes the kernel dropped (or may have, on a VRF change).
  const fresh = new Set<string>([...added, ...recreate, ...remaster]);
  // Devices that are new kernel objects: nothing of their old FDB survives.
  const created = new Set<string>([...added, ...recreate]);

  // FOU ports.
  const fouKey = (f: FouSpec): string => `${f.family}|${f.port}|${f.ipproto}`;
  const curFou = new Set(cur.fou.filter((f) => OWNED_FOU_PROTOCOLS.has(f.ipproto)).map(fouKey));
  const desFou = new Set(des.fou.map(fouKey));
  const fouAdds = des.fou.filter((f) => !curFou.has(fouKey(f))).map((f) => fouArgs(f, true));
  const fouDels = cur.fou
    .filter((f) => OWNED_FOU_PROTOCOLS.has(f.ipproto) && !desFou.has(fouKey(f)))
    .map((f) => fouArgs(f, false));

  ip.push(...fouAdds, ...dels, ...adds);

  // Addresses.
  const curAddr = new Set(
    cur.addresses.filter((a) => !fresh.has(a.dev) && !gone.has(a.dev)).map((a) => `${a.dev}|${a.address}`),
  );
  const desAddr = new Set(des.addresses.map((a) => `${a.dev}|${a.address}`));
  for (const a of cur.addresses) {
    if (!wanted.has(a.dev) || !owned(curLinks.get(a.dev)) || gone.has(a.dev)) continue;
    if (a.scope === 'link' && a.family === 6) continue; // the kernel's own fe80::/64 address
    if (!desAddr.has(`${a.dev}|${a.address}`)) ip.push(`addr del ${a.address} dev ${a.dev}`);
  }
  for (const a of des.addresses)
    if (!curAddr.has(`${a.dev}|${a.address}`)) ip.push(`addr replace ${a.address} dev ${a.dev}`);

  // Routes.
  const curRoutes = new Map<string, CurrentRoute>();
  for (const r of cur.routes) {
    if (!ownsTable(own, r.table)) continue;
    if (r.dev !== undefined && (gone.has(r.dev) || fresh.has(r.dev))) continue;
    curRoutes.set(routeKey(r), r);
  }
  const desRoutes = new Map(des.routes.map((r) => [routeKey(r), r]));
  for (const [k, r] of curRoutes) if (!desRoutes.has(k)) ip.push(`route del ${routeArgs(r, true)}`);
  // Routes without a gateway first: the kernel checks a gateway against the table as it is then.
  const replaces = [...desRoutes].filter(([k, r]) => {
    const c = curRoutes.get(k);
    return c === undefined || !sameRoute(r, c);
  });
  for (const pass of [false, true])
    for (const [, r] of replaces)
      if ((r.via !== undefined) === pass) ip.push(`route replace ${routeArgs(r, false)}`);

  // Rules.
  const curRules = new Map<string, CurrentRule>();
  for (const r of cur.rules)
    if (inRange(r.priority, own.rulePriority, own.ruleCount)) curRules.set(ruleKey(r), r);
  const desRules = new Map(des.rules.map((r) => [ruleKey(r), r]));
  for (const [k, r] of curRules) if (!desRules.has(k)) ip.push(ruleLine('del', r));
  for (const [k, r] of desRules) if (!curRules.has(k)) ip.push(ruleLine('add', r));

  // MPLS label routes into our devices.
  const ours = (dev: string): boolean => wanted.has(dev) || owned(curLinks.get(dev));
  const curMpls = new Map(cur.mplsRoutes.filter((m) => ours(m.dev)).map((m) => [m.label, m]));
  const desMpls = new Map(des.mplsRoutes.map((m) => [m.label, m]));
  for (const [label] of curMpls) if (!desMpls.has(label)) ip.push(`-M route del ${label}`);
  for (const [label, m] of desMpls) {
    const c = curMpls.get(label);
    if (c === undefined || c.dev !== m.dev || fresh.has(m.dev))
      ip.push(`-M route replace ${label} dev ${m.dev}`);
  }

  ip.push(...fouDels);

  // VXLAN flood entries.
  const bridge: string[] = [];
  const curFdb = new Set(cur.fdb.filter((e) => !created.has(e.dev) && !gone.has(e.dev)).map(fdbKey));
  const desFdb = new Set(des.fdb.map(fdbKey));
  for (const e of cur.fdb)
    if (
      wanted.has(e.dev) &&
      owned(curLinks.get(e.dev)) &&
      !gone.has(e.dev) &&
      !created.has(e.dev) &&
      !desFdb.has(fdbKey(e))
    )
      bridge.push(`fdb del ${fdbArgs(e)}`);
  for (const e of des.fdb) if (!curFdb.has(fdbKey(e))) bridge.push(`fdb append ${fdbArgs(e)}`);

  const sysctl = Object.entries(des.sysctls).filter(([k, v]) => cur.sysctls[k] !== v);

  let nft: string | undefined;
  if (des.nft === '') nft = cur.nftHash === undefined ? undefined : `delete table inet ${NFT_TABLE}\n`;
  else if (cur.nftHash !== des.nftHash) nft = des.nft;

  return { ip, bridge, sysctl, ...(nft !== undefined ? { nft } : {}) };
}

/** The `ip -batch` lines that take the kernel from `current` to `desired` (empty when equal). */
export function planLinux(current: LinuxCurrent, desired: LinuxDesired): string[] {
  return [...planLinuxFull(current, desired).ip];
}

export function planIsEmpty(p: LinuxPlan): boolean {
  return p.ip.length === 0 && p.bridge.length === 0 && p.sysctl.length === 0 && p.nft === undefined;
}
