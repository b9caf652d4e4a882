/**
 * gobgpd (GoBGP 3.10) under the interop harness.
 *
 * Owns: a TOML config (global listen address/port, one `[[neighbors]]` per peer with short
 * connect-retry so sessions come up fast), the gRPC API on a free 127.0.0.1 port (never the
 * default :50051), and typed wrappers over the `gobgp` CLI: RIB edits, `-j` RIB/adj-RIB reads
 * normalised to `NormalizedRoute`, session state and soft resets.
 *
 * Quirks handled here (gobgp 3.10):
 * - An IPv4 NEXT_HOP in 127/8 from a peer is treated as withdraw ("invalid nexthop address"),
 *   so peers must advertise TEST-NET next hops (see `defaultNextHops`).
 * - Locally added routes keep their explicit `nexthop` towards eBGP peers; without one gobgp
 *   uses the session's local address, which is IPv4 even for IPv6 routes (invalid), so
 *   `addRoute` always passes the configured next hop for the family.
 * - The CLI parses a 4-octet-AS route target only in asdot (`64086.59904:7`) and prints it that
 *   way; `addRoute` converts asplain and the normaliser converts back.
 * - VPN routes need `label L rd RD` in that order right after the prefix.
 * - `softresetin` re-evaluates the stored Adj-RIB-In; it never sends ROUTE-REFRESH.
 * - gobgpd clamps connect-retry to >= 5 s (plus jitter): when gobgpd has to dial (peer passive)
 *   the session takes ~5-7 s; when the peer dials gobgpd it is up in well under a second.
 * - After any session drop gobgpd stays Idle ~5 s (refusing incoming connections too), and after
 *   `resetNeighbor` 30 s: `idle-hold-time-after-reset` from the config is not applied in 3.10.
 *   Prefer `shutdownNeighbor` + `enableNeighbor` (~5 s) when a test only needs a bounce.
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
  freePort,
  isIpv6Family,
  isVpnFamily,
  parseExtCommunity,
  resolveNextHops,
  run,
  startDaemon,
  tmpDir,
  waitFor,
} from './common.ts';

export interface GobgpConfig extends SpeakerConfig {
  /** gRPC API port on 127.0.0.1 (default: a free port). */
  grpcPort?: number;
  /** gobgpd log level (default `info`). */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

const AFI_SAFI_NAME: Record<Family, string> = {
  'ipv4-unicast': 'ipv4-unicast',
  'ipv6-unicast': 'ipv6-unicast',
  'ipv4-vpn': 'l3vpn-ipv4-unicast',
  'ipv6-vpn': 'l3vpn-ipv6-unicast',
};

const CLI_FAMILY: Record<Family, string> = {
  'ipv4-unicast': 'ipv4',
  'ipv6-unicast': 'ipv6',
  'ipv4-vpn': 'vpnv4',
  'ipv6-vpn': 'vpnv6',
};

// gobgp api.PeerState.SessionState
const SESSION_STATE: Record<number, SessionState> = {
  0: 'idle',
  1: 'idle',
  2: 'connect',
  3: 'active',
  4: 'opensent',
  5: 'openconfirm',
  6: 'established',
};

const ORIGIN: Record<number, Origin> = { 0: 'igp', 1: 'egp', 2: 'incomplete' };

const tomlString = (s: string): string => JSON.stringify(s);

/** The gobgpd TOML for `cfg` (exported for tests of the harness itself). */
export function gobgpToml(cfg: GobgpConfig): string {
  const lines: string[] = [
    '[global.config]',
    `  as = ${cfg.asn}`,
    `  router-id = ${tomlString(cfg.routerId)}`,
    `  port = ${cfg.listenPort}`,
    `  local-address-list = [${tomlString(cfg.listenAddress)}]`,
    '',
  ];
  for (const n of cfg.neighbors) lines.push(...neighborToml(cfg, n));
  return lines.join('\n') + '\n';
}

function neighborToml(cfg: GobgpConfig, n: NeighborSpec): string[] {
  const hold = n.holdTime ?? 90;
  const retry = n.connectRetry ?? 1;
  const out = [
    '[[neighbors]]',
    '  [neighbors.config]',
    `    neighbor-address = ${tomlString(n.address)}`,
    `    peer-as = ${n.peerAsn}`,
  ];
  if (n.password !== undefined) out.push(`    auth-password = ${tomlString(n.password)}`);
  out.push(
    '  [neighbors.timers.config]',
    `    hold-time = ${hold}`,
    `    keepalive-interval = ${Math.max(1, Math.floor(hold / 3))}`,
    `    connect-retry = ${retry}`,
    `    idle-hold-time-after-reset = ${retry}`,
    '  [neighbors.transport.config]',
    `    local-address = ${tomlString(cfg.listenAddress)}`,
    `    remote-port = ${n.port ?? 179}`,
    `    passive-mode = ${n.passive === true}`,
  );
  if (n.routeServerClient === true) {
    out.push('  [neighbors.route-server.config]', '    route-server-client = true');
  }
  for (const f of n.families) {
    out.push(
      '  [[neighbors.afi-safis]]',
      '    [neighbors.afi-safis.config]',
      `      afi-safi-name = "${AFI_SAFI_NAME[f]}"`,
    );
  }
  out.push('');
  return out;
}

// --- JSON shapes printed by `gobgp ... -j` (only the fields we read) -------------------------

interface GobgpRd {
  type?: number;
  admin?: number | string;
  assigned?: number;
}

interface GobgpNlri {
  prefix?: string;
  labels?: number[];
  rd?: GobgpRd;
}

interface GobgpExtCommunity {
  type?: number;
  subtype?: number;
  value?: string | number;
}

interface GobgpAttr {
  type: number;
  value?: number | GobgpExtCommunity[] | { ASN: number; LocalData1: number; LocalData2: number }[];
  as_paths?: { segment_type: number; asns: number[] }[];
  nexthop?: string;
  metric?: number;
  communities?: number[];
}

interface GobgpPath {
  nlri?: GobgpNlri;
  best?: boolean;
  attrs?: GobgpAttr[];
  'neighbor-ip'?: string;
}

type GobgpRib = Record<string, GobgpPath[]>;

function extCommunityText(e: GobgpExtCommunity): string {
  const value = e.value;
  if (
    (e.subtype === 2 || e.subtype === 3) &&
    (e.type === 0 || e.type === 1 || e.type === 2) &&
    value !== undefined
  ) {
    const s = String(value);
    const i = s.lastIndexOf(':');
    if (i > 0) return canonicalExtCommunity(e.subtype === 2 ? 'rt' : 'soo', s.slice(0, i), s.slice(i + 1));
  }
  return `unknown:${JSON.stringify(e)}`;
}

/** One gobgp path to a `NormalizedRoute`. */
export function normalizeGobgpPath(path: GobgpPath, family: Family): NormalizedRoute | undefined {
  const nlri = path.nlri;
  if (nlri?.prefix === undefined) return undefined;
  const r: Partial<NormalizedRoute> & { prefix: string; nextHop: string } = {
    prefix: canonicalPrefix(nlri.prefix),
    nextHop: '',
  };
  if (isVpnFamily(family)) {
    if (nlri.rd !== undefined) r.rd = `${String(nlri.rd.admin)}:${String(nlri.rd.assigned)}`;
    r.labels = nlri.labels ?? [];
  }
  for (const a of path.attrs ?? []) {
    switch (a.type) {
      case 1: // ORIGIN
        if (typeof a.value === 'number') r.origin = ORIGIN[a.value];
        break;
      case 2: // AS_PATH
        r.asPath = (a.as_paths ?? []).flatMap((s) => s.asns);
        break;
      case 3: // NEXT_HOP
      case 14: // MP_REACH_NLRI
        if (a.nexthop !== undefined) r.nextHop = canonicalNextHop(a.nexthop, family);
        break;
      case 4: // MULTI_EXIT_DISC
        r.med = a.metric;
        break;
      case 5: // LOCAL_PREF
        if (typeof a.value === 'number') r.localPref = a.value;
        break;
      case 8: // COMMUNITIES
        r.communities = (a.communities ?? []).map((c) => `${c >>> 16}:${c & 0xffff}`);
        break;
      case 16: // EXTENDED_COMMUNITIES
        if (Array.isArray(a.value)) r.extCommunities = (a.value as GobgpExtCommunity[]).map(extCommunityText);
        break;
      case 32: // LARGE_COMMUNITY
        if (Array.isArray(a.value)) {
          r.largeCommunities = (a.value as { ASN: number; LocalData1: number; LocalData2: number }[]).map(
            (l) => `${l.ASN}:${l.LocalData1}:${l.LocalData2}`,
          );
        }
        break;
      default:
        break;
    }
  }
  return finishRoute(r);
}

function normalizeRib(rib: GobgpRib, family: Family, bestOnly: boolean): NormalizedRoute[] {
  const out: NormalizedRoute[] = [];
  for (const paths of Object.values(rib)) {
    for (const p of paths) {
      if (bestOnly && p.best !== true) continue;
      const r = normalizeGobgpPath(p, family);
      if (r !== undefined) out.push(r);
    }
  }
  return out;
}

/** `4200000000:7` -> `64086.59904:7` (the only 4-octet form gobgp 3.10's CLI parses). */
function gobgpRouteTarget(admin: string, assigned: string): string {
  if (/^\d+$/.test(admin) && Number(admin) > 0xffff) {
    const n = Number(admin);
    return `${Math.floor(n / 65536)}.${n % 65536}:${assigned}`;
  }
  return `${admin}:${assigned}`;
}

export class GobgpDaemon {
  readonly name = 'gobgpd';
  readonly nextHop: { ipv4: string; ipv6: string };

  constructor(
    readonly config: GobgpConfig & { grpcPort: number },
    readonly handle: DaemonHandle,
  ) {
    this.nextHop = resolveNextHops(config);
  }

  get pid(): number {
    return this.handle.pid;
  }

  get logFile(): string {
    return this.handle.logFile;
  }

  /** Runs `gobgp -u 127.0.0.1 -p <grpc> ...args` and returns stdout. */
  async cli(...args: string[]): Promise<string> {
    const { stdout } = await run('gobgp', ['-u', '127.0.0.1', '-p', String(this.config.grpcPort), ...args]);
    return stdout;
  }

  private async json<T>(...args: string[]): Promise<T> {
    const out = (await this.cli(...args, '-j')).trim();
    return JSON.parse(out === '' ? 'null' : out) as T;
  }

  /** Originates `prefix` in the global RIB (advertised to every neighbour with the family). */
  async addRoute(family: Family, prefix: string, attrs: RouteAttrs = {}): Promise<void> {
    await this.cli('global', 'rib', '-a', CLI_FAMILY[family], 'add', ...this.pathArgs(family, prefix, attrs));
  }

  /** Withdraws a route added with `addRoute` (VPN: pass the same `rd` and `label`). */
  async delRoute(
    family: Family,
    prefix: string,
    attrs: Pick<RouteAttrs, 'rd' | 'label'> = {},
  ): Promise<void> {
    await this.cli('global', 'rib', '-a', CLI_FAMILY[family], 'del', ...this.nlriArgs(family, prefix, attrs));
  }

  private nlriArgs(family: Family, prefix: string, attrs: Pick<RouteAttrs, 'rd' | 'label'>): string[] {
    if (!isVpnFamily(family)) return [prefix];
    if (attrs.rd === undefined) throw new Error(`gobgp: ${family} route ${prefix} needs rd`);
    return [prefix, 'label', String(attrs.label ?? 0), 'rd', attrs.rd];
  }

  private pathArgs(family: Family, prefix: string, attrs: RouteAttrs): string[] {
    const args = this.nlriArgs(family, prefix, attrs);
    args.push('nexthop', attrs.nextHop ?? (isIpv6Family(family) ? this.nextHop.ipv6 : this.nextHop.ipv4));
    if (attrs.origin !== undefined) args.push('origin', attrs.origin);
    if (attrs.asPath !== undefined && attrs.asPath.length > 0) args.push('aspath', attrs.asPath.join(','));
    if (attrs.med !== undefined) args.push('med', String(attrs.med));
    if (attrs.localPref !== undefined) args.push('local-pref', String(attrs.localPref));
    if (attrs.communities !== undefined && attrs.communities.length > 0) {
      args.push('community', attrs.communities.join(','));
    }
    if (attrs.largeCommunities !== undefined && attrs.largeCommunities.length > 0) {
      args.push('large-community', attrs.largeCommunities.join(','));
    }
    const ext = (attrs.extCommunities ?? []).map(parseExtCommunity);
    if (ext.some((e) => e.kind !== 'rt')) {
      throw new Error('gobgp CLI (3.10) can only attach route targets (rt:...) to a route');
    }
    if (ext.length > 0) args.push('rt', ...ext.map((e) => gobgpRouteTarget(e.admin, e.assigned)));
    return args;
  }

  /** Best path per prefix of the global (Loc-)RIB. */
  async rib(family: Family): Promise<NormalizedRoute[]> {
    const rib = await this.json<GobgpRib | null>('global', 'rib', '-a', CLI_FAMILY[family]);
    return normalizeRib(rib ?? {}, family, true);
  }

  /** Routes accepted from `neighbor` (Adj-RIB-In, all paths). */
  async adjIn(neighbor: string, family: Family): Promise<NormalizedRoute[]> {
    const rib = await this.json<GobgpRib | null>('neighbor', neighbor, 'adj-in', '-a', CLI_FAMILY[family]);
    return normalizeRib(rib ?? {}, family, false);
  }

  /** Routes gobgp sends to `neighbor` (after export policy and next-hop rewriting). */
  async adjOut(neighbor: string, family: Family): Promise<NormalizedRoute[]> {
    const rib = await this.json<GobgpRib | null>('neighbor', neighbor, 'adj-out', '-a', CLI_FAMILY[family]);
    return normalizeRib(rib ?? {}, family, false);
  }

  async neighborState(address: string): Promise<SessionState> {
    const n = await this.json<{ state?: { session_state?: number | string } }>('neighbor', address);
    const s = n.state?.session_state;
    if (typeof s === 'number') return SESSION_STATE[s] ?? 'idle';
    if (typeof s === 'string') return s.toLowerCase().replace(/^session_state_/, '') as SessionState;
    return 'idle';
  }

  async waitEstablished(address: string, timeoutMs = 20_000): Promise<void> {
    await waitFor(async () => ((await this.neighborState(address)) === 'established' ? true : undefined), {
      what: `gobgpd session with ${address} established`,
      timeoutMs,
      describe: async () => `state: ${await this.neighborState(address)}\n${await this.handle.logTail(15)}`,
    });
  }

  /**
   * `gobgp neighbor X softresetin`: re-runs import policy over gobgpd's stored Adj-RIB-In. In 3.10
   * this does NOT send a ROUTE-REFRESH message (checked against ExaBGP); use BIRD, FRR or ExaBGP
   * to make a peer send one.
   */
  async softResetIn(neighbor: string, family?: Family): Promise<void> {
    await this.cli('neighbor', neighbor, 'softresetin', ...(family ? ['-a', CLI_FAMILY[family]] : []));
  }

  /** Re-sends the whole Adj-RIB-Out to `neighbor`. */
  async softResetOut(neighbor: string, family?: Family): Promise<void> {
    await this.cli('neighbor', neighbor, 'softresetout', ...(family ? ['-a', CLI_FAMILY[family]] : []));
  }

  /** Cease/Administrative Shutdown (RFC 8203 communication `reason`) and keep the peer down. */
  async shutdownNeighbor(address: string, reason?: string): Promise<void> {
    await this.cli('neighbor', address, 'disable', ...(reason !== undefined ? ['--reason', reason] : []));
  }

  async enableNeighbor(address: string): Promise<void> {
    await this.cli('neighbor', address, 'enable');
  }

  /** Cease/Administrative Reset: the session drops and comes back after gobgpd's 30 s idle hold. */
  async resetNeighbor(address: string): Promise<void> {
    await this.cli('neighbor', address, 'reset');
  }

  stop(): Promise<void> {
    return this.handle.stop();
  }
}

/** Starts gobgpd and resolves once its gRPC API answers. */
export async function startGobgp(config: GobgpConfig): Promise<GobgpDaemon> {
  const grpcPort = config.grpcPort ?? (await freePort());
  const cfg = { ...config, grpcPort };
  const dir = await tmpDir('gobgpd');
  const confFile = join(dir, 'gobgpd.toml');
  await writeFile(confFile, gobgpToml(cfg));
  const handle = await startDaemon({
    name: 'gobgpd',
    cmd: 'gobgpd',
    args: [
      '-f',
      confFile,
      '-t',
      'toml',
      '--api-hosts',
      `127.0.0.1:${grpcPort}`,
      '-p',
      '-l',
      config.logLevel ?? 'info',
      '--pprof-disable',
    ],
    dir,
    readyCheck: async () => {
      await run('gobgp', ['-u', '127.0.0.1', '-p', String(grpcPort), 'global', '-j'], 2000);
      return true;
    },
  });
  return new GobgpDaemon(cfg, handle);
}
