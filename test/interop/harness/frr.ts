/**
 * FRR 8.4 bgpd under the interop harness, fully standalone (no zebra, no /etc/frr, no
 * watchfrr): `bgpd -Z -n -S -l <addr> -p <port> --vty_socket <tmp>`, queried and reconfigured
 * with `vtysh --vty_socket <tmp> -d bgpd`.
 *
 * Config choices (FRR 8.4):
 * - `no bgp ebgp-requires-policy` (RFC 8212 would otherwise block everything without policy),
 *   `no bgp network import-check` (no zebra, so `network` routes cannot be validated),
 *   `no bgp default ipv4-unicast` (families are activated explicitly).
 * - `bgp allow-martian-nexthop`: without it FRR resets the session on an UPDATE whose NEXT_HOP
 *   is in 127/8 ("Martian nexthop"), which is what loopback-addressed peers send by default.
 * - `neighbor X disable-connected-check`: without zebra FRR knows no connected networks.
 * - Outbound route-map `VCE-NH-OUT` sets next-hop-self to `SpeakerConfig.nextHop` (TEST-NET by
 *   default): over an IPv4 session FRR would otherwise send IPv4-mapped IPv6 next hops for
 *   IPv6 routes and 127/8 for IPv4 ones (gobgpd drops those).
 * - Routes are `network` statements with a per-route route-map carrying the attributes.
 * - FRR leaves `/var/tmp/frr/bgpd.<pid>/` behind (crash log buffers); it goes with the daemon.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type DaemonHandle,
  type Family,
  type NeighborSpec,
  type NormalizedRoute,
  type Origin,
  type RouteAttrs,
  type SessionState,
  type SpeakerConfig,
  canonicalExtCommunity,
  canonicalNextHop,
  canonicalPrefix,
  finishRoute,
  isVpnFamily,
  parseExtCommunity,
  resolveNextHops,
  run,
  startDaemon,
  tmpDir,
  waitFor,
} from './common.ts';

export const FRR_BGPD = '/usr/lib/frr/bgpd';

export interface FrrRoute {
  family: Family;
  prefix: string;
  attrs?: RouteAttrs;
}

export interface FrrConfig extends SpeakerConfig {
  /** Routes FRR originates from the start (more can be added with `addRoute`). */
  staticRoutes?: FrrRoute[];
  /** Extra lines appended inside `router bgp` (before the address families). */
  extraBgpConfig?: string[];
}

const AF: Record<Family, string> = {
  'ipv4-unicast': 'ipv4 unicast',
  'ipv6-unicast': 'ipv6 unicast',
  'ipv4-vpn': 'ipv4 vpn',
  'ipv6-vpn': 'ipv6 vpn',
};

const SHOW_AF: Record<Family, string> = {
  'ipv4-unicast': 'ipv4 unicast',
  'ipv6-unicast': 'ipv6 unicast',
  'ipv4-vpn': 'ipv4 vpn',
  'ipv6-vpn': 'ipv6 vpn',
};

const FAMILIES: Family[] = ['ipv4-unicast', 'ipv6-unicast', 'ipv4-vpn', 'ipv6-vpn'];

/** Route-map `set` lines for a route's attributes. */
function routeMapSets(a: RouteAttrs): string[] {
  const sets: string[] = [];
  if (a.origin !== undefined) sets.push(`set origin ${a.origin}`);
  if (a.asPath !== undefined && a.asPath.length > 0) sets.push(`set as-path prepend ${a.asPath.join(' ')}`);
  if (a.med !== undefined) sets.push(`set metric ${a.med}`);
  if (a.localPref !== undefined) sets.push(`set local-preference ${a.localPref}`);
  if (a.communities !== undefined && a.communities.length > 0)
    sets.push(`set community ${a.communities.join(' ')}`);
  if (a.largeCommunities !== undefined && a.largeCommunities.length > 0) {
    sets.push(`set large-community ${a.largeCommunities.join(' ')}`);
  }
  const ext = (a.extCommunities ?? []).map(parseExtCommunity);
  const rts = ext.filter((e) => e.kind === 'rt').map((e) => `${e.admin}:${e.assigned}`);
  const soos = ext.filter((e) => e.kind === 'soo').map((e) => `${e.admin}:${e.assigned}`);
  if (rts.length > 0) sets.push(`set extcommunity rt ${rts.join(' ')}`);
  if (soos.length > 0) sets.push(`set extcommunity soo ${soos.join(' ')}`);
  return sets;
}

function networkLine(r: FrrRoute, routeMap: string | undefined): string {
  const a = r.attrs ?? {};
  let line = `network ${r.prefix}`;
  if (isVpnFamily(r.family)) {
    if (a.rd === undefined) throw new Error(`frr: ${r.family} route ${r.prefix} needs rd`);
    line += ` rd ${a.rd} label ${a.label ?? 0}`;
  }
  if (routeMap !== undefined) line += ` route-map ${routeMap}`;
  return line;
}

function neighborLines(n: NeighborSpec, listenAddress: string): string[] {
  const hold = n.holdTime ?? 90;
  const a = n.address;
  const out = [
    ` neighbor ${a} remote-as ${n.peerAsn}`,
    ` neighbor ${a} port ${n.port ?? 179}`,
    ` neighbor ${a} update-source ${listenAddress}`,
    ` neighbor ${a} disable-connected-check`,
    ` neighbor ${a} timers ${Math.max(1, Math.floor(hold / 3))} ${hold}`,
    ` neighbor ${a} timers connect ${n.connectRetry ?? 1}`,
  ];
  if (n.name !== undefined) out.push(` neighbor ${a} description ${n.name}`);
  if (n.passive === true) out.push(` neighbor ${a} passive`);
  if (n.password !== undefined) out.push(` neighbor ${a} password ${n.password}`);
  return out;
}

/** The bgpd.conf for `cfg` (exported for tests of the harness itself). */
export function frrConf(cfg: FrrConfig, routes: readonly FrrRoute[] = cfg.staticRoutes ?? []): string {
  const nh = resolveNextHops(cfg);
  const out: string[] = [
    'frr defaults traditional',
    `hostname vce-frr-${cfg.listenAddress.replace(/[^0-9a-f]/gi, '-')}`,
    '!',
    'route-map VCE-NH-OUT permit 10',
    ` set ip next-hop ${nh.ipv4}`,
    ` set ipv6 next-hop global ${nh.ipv6}`,
    '!',
    'route-map VCE-NH-VPN-OUT permit 10',
    ` set ipv4 vpn next-hop ${nh.ipv4}`,
    ` set ipv6 vpn next-hop ${nh.ipv6}`,
    '!',
  ];
  routes.forEach((r, i) => {
    out.push(`route-map VCE-R${i} permit 10`, ...routeMapSets(r.attrs ?? {}).map((s) => ` ${s}`), '!');
  });
  out.push(
    `router bgp ${cfg.asn}`,
    ` bgp router-id ${cfg.routerId}`,
    ' no bgp ebgp-requires-policy',
    ' no bgp network import-check',
    ' no bgp default ipv4-unicast',
    ' bgp allow-martian-nexthop',
    ' coalesce-time 50', // update-group coalescing defaults to 1 s
  );
  for (const l of cfg.extraBgpConfig ?? []) out.push(` ${l}`);
  for (const n of cfg.neighbors) out.push(...neighborLines(n, cfg.listenAddress));
  for (const f of FAMILIES) {
    const neighbors = cfg.neighbors.filter((n) => n.families.includes(f));
    const rs = routes.map((r, i) => ({ r, i })).filter(({ r }) => r.family === f);
    if (neighbors.length === 0 && rs.length === 0) continue;
    out.push(` address-family ${AF[f]}`);
    for (const { r, i } of rs) out.push(`  ${networkLine(r, `VCE-R${i}`)}`);
    for (const n of neighbors) {
      out.push(`  neighbor ${n.address} activate`);
      if (n.routeServerClient === true) out.push(`  neighbor ${n.address} route-server-client`);
      else
        out.push(`  neighbor ${n.address} route-map ${isVpnFamily(f) ? 'VCE-NH-VPN-OUT' : 'VCE-NH-OUT'} out`);
    }
    out.push(' exit-address-family');
  }
  out.push('!', '');
  return out.join('\n');
}

// --- JSON shapes printed by vtysh (only the fields we read) -----------------------------------

interface FrrPath {
  aspath?: { segments?: { type: string; list: number[] }[] };
  path?: string;
  origin?: string;
  metric?: number;
  locPrf?: number;
  valid?: boolean;
  bestpath?: { overall?: boolean } | boolean;
  community?: { list?: string[] };
  largeCommunity?: { list?: string[] };
  extendedCommunity?: { string?: string };
  nexthops?: { ip?: string; scope?: string; afi?: string }[];
  remoteLabel?: number;
  peer?: { peerId?: string };
}

/** The parts of FRR's per-neighbour JSON tests usually read. */
export interface FrrNeighborInfo {
  bgpState?: string;
  lastResetDueTo?: string;
  lastNotificationReason?: string;
  messageStats?: Partial<
    Record<
      | 'opensSent'
      | 'opensRecv'
      | 'notificationsSent'
      | 'notificationsRecv'
      | 'updatesSent'
      | 'updatesRecv'
      | 'keepalivesSent'
      | 'keepalivesRecv'
      | 'routeRefreshSent'
      | 'routeRefreshRecv'
      | 'totalSent'
      | 'totalRecv',
      number
    >
  >;
  [key: string]: unknown;
}

const ORIGIN_TEXT: Record<string, Origin> = {
  igp: 'igp',
  egp: 'egp',
  incomplete: 'incomplete',
  '?': 'incomplete',
};

function isBest(p: FrrPath): boolean {
  return typeof p.bestpath === 'boolean' ? p.bestpath : p.bestpath?.overall === true;
}

function frrExtCommunities(s: string | undefined): string[] {
  if (s === undefined || s.trim() === '') return [];
  return s
    .trim()
    .split(/\s+/)
    .map((tok) => {
      const m = /^(RT|SoO):(.+):(\d+)$/.exec(tok);
      if (m?.[1] !== undefined && m[2] !== undefined && m[3] !== undefined) {
        return canonicalExtCommunity(m[1], m[2], m[3]);
      }
      return `unknown:${tok}`;
    });
}

/** One FRR path (from a `json detail` / per-prefix `json` view) to a `NormalizedRoute`. */
export function normalizeFrrPath(prefix: string, p: FrrPath, family: Family, rd?: string): NormalizedRoute {
  const nhs = p.nexthops ?? [];
  const nh = nhs.find((n) => n.scope !== 'link-local') ?? nhs[0];
  const r: Partial<NormalizedRoute> & { prefix: string; nextHop: string } = {
    prefix: canonicalPrefix(prefix),
    nextHop: nh?.ip !== undefined ? canonicalNextHop(nh.ip, family) : '',
    asPath:
      p.aspath?.segments !== undefined
        ? p.aspath.segments.flatMap((s) => s.list)
        : (p.path?.match(/\d+/g) ?? []).map(Number),
    communities: p.community?.list ?? [],
    largeCommunities: p.largeCommunity?.list ?? [],
    extCommunities: frrExtCommunities(p.extendedCommunity?.string),
  };
  if (p.origin !== undefined) r.origin = ORIGIN_TEXT[p.origin.toLowerCase()];
  if (p.metric !== undefined) r.med = p.metric;
  if (p.locPrf !== undefined) r.localPref = p.locPrf;
  if (rd !== undefined) {
    r.rd = rd;
    r.labels = p.remoteLabel !== undefined ? [p.remoteLabel] : [];
  }
  return finishRoute(r);
}

export class FrrDaemon {
  readonly name = 'frr';
  readonly nextHop: { ipv4: string; ipv6: string };
  private routes: (FrrRoute & { routeMap: string })[];
  private nextRouteMap: number;

  constructor(
    readonly config: FrrConfig,
    readonly handle: DaemonHandle,
    readonly vtyDir: string,
  ) {
    this.nextHop = resolveNextHops(config);
    this.routes = (config.staticRoutes ?? []).map((r, i) => ({ ...r, routeMap: `VCE-R${i}` }));
    this.nextRouteMap = this.routes.length;
  }

  get pid(): number {
    return this.handle.pid;
  }

  get logFile(): string {
    return this.handle.logFile;
  }

  /** Runs vtysh commands (`-c` each) against this bgpd; throws on `%` errors. */
  async vtysh(...commands: string[]): Promise<string> {
    const args = ['--vty_socket', this.vtyDir, '-d', 'bgpd'];
    for (const c of commands) args.push('-c', c);
    const { stdout } = await run('vtysh', args);
    const err = stdout.split('\n').find((l) => l.startsWith('%'));
    if (err !== undefined) throw new Error(`vtysh ${commands.join(' | ')}: ${err}\n${stdout}`);
    return stdout;
  }

  private async json<T>(command: string): Promise<T> {
    const out = (await this.vtysh(command)).trim();
    return JSON.parse(out === '' ? '{}' : out) as T;
  }

  /** The paths of a family that `keep` selects, normalised. */
  async paths(family: Family, keep: (p: FrrPath) => boolean): Promise<NormalizedRoute[]> {
    const out: NormalizedRoute[] = [];
    if (!isVpnFamily(family)) {
      const t = await this.json<{ routes?: Record<string, FrrPath[]> }>(
        `show bgp ${SHOW_AF[family]} json detail`,
      );
      for (const [prefix, entries] of Object.entries(t.routes ?? {})) {
        for (const p of entries) {
          // The first element of each prefix is a header ({prefix, advertisedTo}), not a path.
          if (p.nexthops !== undefined && keep(p)) out.push(normalizeFrrPath(prefix, p, family));
        }
      }
      return out;
    }
    // VPN: the table view lacks communities, so read each prefix's detail.
    const t = await this.json<{ routes?: { routeDistinguishers?: Record<string, Record<string, unknown>> } }>(
      `show bgp ${SHOW_AF[family]} json`,
    );
    const prefixes = new Set<string>();
    for (const byPrefix of Object.values(t.routes?.routeDistinguishers ?? {})) {
      for (const prefix of Object.keys(byPrefix)) prefixes.add(prefix);
    }
    for (const prefix of prefixes) {
      const d = await this.json<Record<string, { paths?: FrrPath[] }>>(
        `show bgp ${SHOW_AF[family]} ${prefix} json`,
      );
      for (const [rd, entry] of Object.entries(d)) {
        for (const p of entry.paths ?? []) if (keep(p)) out.push(normalizeFrrPath(prefix, p, family, rd));
      }
    }
    return out;
  }

  /** Best path per prefix (and RD). */
  rib(family: Family): Promise<NormalizedRoute[]> {
    return this.paths(family, isBest);
  }

  /** Paths received from `neighbor` and kept (accepted) in FRR's table. */
  adjIn(neighbor: string, family: Family): Promise<NormalizedRoute[]> {
    return this.paths(family, (p) => p.peer?.peerId === neighbor);
  }

  /** `show bgp neighbors <address> json` for that neighbour (bgpState, messageStats, ...). */
  async neighborInfo(address: string): Promise<FrrNeighborInfo> {
    const n = await this.json<Record<string, FrrNeighborInfo>>(`show bgp neighbors ${address} json`);
    return n[address] ?? {};
  }

  async neighborState(address: string): Promise<SessionState> {
    const s = ((await this.neighborInfo(address)).bgpState ?? 'Idle').toLowerCase();
    const known: SessionState[] = ['idle', 'connect', 'active', 'opensent', 'openconfirm', 'established'];
    return (known as string[]).includes(s) ? (s as SessionState) : 'idle';
  }

  async waitEstablished(address: string, timeoutMs = 20_000): Promise<void> {
    await waitFor(async () => ((await this.neighborState(address)) === 'established' ? true : undefined), {
      what: `frr session with ${address} established`,
      timeoutMs,
      describe: async () => `state: ${await this.neighborState(address)}\n${await this.handle.logTail(15)}`,
    });
  }

  /** Originates `prefix` (`network` + a route-map with the attributes). */
  async addRoute(family: Family, prefix: string, attrs: RouteAttrs = {}): Promise<void> {
    await this.delRoute(family, prefix, attrs).catch(() => undefined);
    const routeMap = `VCE-R${this.nextRouteMap++}`;
    const route: FrrRoute & { routeMap: string } = { family, prefix, attrs, routeMap };
    await this.vtysh(
      'configure terminal',
      `route-map ${routeMap} permit 10`,
      ...routeMapSets(attrs),
      'exit',
      `router bgp ${this.config.asn}`,
      `address-family ${AF[family]}`,
      networkLine(route, routeMap),
      'end',
    );
    this.routes.push(route);
  }

  async delRoute(
    family: Family,
    prefix: string,
    attrs: Pick<RouteAttrs, 'rd' | 'label'> = {},
  ): Promise<void> {
    const p = canonicalPrefix(prefix);
    const found = this.routes.find(
      (r) => r.family === family && canonicalPrefix(r.prefix) === p && r.attrs?.rd === attrs.rd,
    );
    if (found === undefined) throw new Error(`frr: no route ${prefix} (${family}) added by the harness`);
    await this.vtysh(
      'configure terminal',
      `router bgp ${this.config.asn}`,
      `address-family ${AF[family]}`,
      `no ${networkLine({ ...found, attrs: { ...found.attrs, ...attrs } }, undefined)}`,
      'exit-address-family',
      'exit',
      `no route-map ${found.routeMap}`,
      'end',
    );
    this.routes = this.routes.filter((r) => r !== found);
  }

  /** Sends ROUTE-REFRESH to `neighbor` (RFC 2918). */
  async softResetIn(neighbor: string): Promise<void> {
    await this.vtysh(`clear bgp ${neighbor} soft in`);
  }

  async softResetOut(neighbor: string): Promise<void> {
    await this.vtysh(`clear bgp ${neighbor} soft out`);
  }

  /** Cease/Administrative Shutdown with an RFC 8203 message; the peer stays down. */
  async shutdownNeighbor(address: string, reason?: string): Promise<void> {
    const msg = reason !== undefined ? ` message ${reason}` : '';
    await this.vtysh(
      'configure terminal',
      `router bgp ${this.config.asn}`,
      `neighbor ${address} shutdown${msg}`,
      'end',
    );
  }

  async enableNeighbor(address: string): Promise<void> {
    await this.vtysh(
      'configure terminal',
      `router bgp ${this.config.asn}`,
      `no neighbor ${address} shutdown`,
      'end',
    );
  }

  async resetNeighbor(address: string): Promise<void> {
    await this.vtysh(`clear bgp ${address}`);
  }

  stop(): Promise<void> {
    return this.handle.stop();
  }
}

/** Starts a standalone bgpd and resolves once its vty socket answers. */
export async function startFrr(config: FrrConfig): Promise<FrrDaemon> {
  const dir = await tmpDir('frr');
  const confFile = join(dir, 'bgpd.conf');
  await writeFile(confFile, frrConf(config));
  const vtyArgs = ['--vty_socket', dir, '-d', 'bgpd'];
  const handle = await startDaemon({
    name: 'frr-bgpd',
    cmd: FRR_BGPD,
    args: [
      '-f',
      confFile,
      '-i',
      join(dir, 'bgpd.pid'),
      '-z',
      join(dir, 'zserv.api'),
      '--vty_socket',
      dir,
      '-p',
      String(config.listenPort),
      '-l',
      config.listenAddress,
      '-n', // no kernel routes
      '-Z', // no zebra
      '-S', // stay root, skip capability/user switching
      '-P',
      '0', // no TCP vty
      '--log',
      'stdout',
    ],
    dir,
    leftovers: (pid) => [`/var/tmp/frr/bgpd.${pid}`], // FRR's per-process crash-log buffers
    readyCheck: async () => {
      const { stdout } = await run('vtysh', [...vtyArgs, '-c', 'show running-config'], 2000);
      return stdout.includes(`router bgp ${config.asn}`);
    },
  });
  const frr = new FrrDaemon(config, handle, dir);
  // A config error only shows in the log: fail fast instead of timing out later.
  const log = await handle.logTail(200);
  const bad = log.split('\n').find((l) => /line \d+: % /.test(l) || /Error occurred during reading/.test(l));
  if (bad !== undefined) {
    await frr.stop();
    throw new Error(`frr: config rejected: ${bad}\n${log}`);
  }
  return frr;
}
