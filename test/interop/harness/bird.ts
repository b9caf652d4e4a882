/**
 * BIRD 2.0.12 under the interop harness.
 *
 * Owns: a generated `bird.conf` (one `protocol bgp` per neighbour, static protocols holding the
 * routes it originates), the control socket in the temp dir, route edits by rewriting the
 * config and `birdc configure` (static protocols reload in place, sessions stay up), and
 * `show route ... all` / `show protocols all` parsed into `NormalizedRoute` / `SessionState`.
 *
 * Config choices (BIRD 2.0.12 syntax, checked with `bird -p`):
 * - No global `listen bgp`: each `protocol bgp` has `local <addr> port <p> as <asn>` plus
 *   `strict bind`, so BIRD listens only on its own 127.0.0.x address and port.
 * - `multihop`: loopback peers are not "directly connected" for BIRD (it reports "Invalid
 *   remote address" otherwise). Recursive next hops resolve through private IGP tables that hold
 *   a default route `via "lo"`, so learned routes are `unicast`, not `unreachable`.
 * - eBGP next hop is next-hop-self with `next hop address` = `SpeakerConfig.nextHop`
 *   (TEST-NET by default, since gobgpd drops 127/8 next hops). `rs client` neighbours keep it.
 * - Short `connect delay/retry` and `error wait` timers so sessions come up in well under 1 s.
 * - Static VPN routes cannot carry a label in 2.0.12; BIRD advertises them with label 3.
 */
import { rm, writeFile } from 'node:fs/promises';
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
  errorText,
  finishRoute,
  isIpv6Family,
  isVpnFamily,
  parseExtCommunity,
  resolveNextHops,
  run,
  startDaemon,
  tmpDir,
  waitFor,
} from './common.ts';

export interface BirdStaticRoute {
  family: Family;
  prefix: string;
  attrs?: RouteAttrs;
}

export interface BirdConfig extends SpeakerConfig {
  /** Routes BIRD originates from the start (more can be added with `addRoute`). */
  staticRoutes?: BirdStaticRoute[];
}

const TABLE: Record<Family, string> = {
  'ipv4-unicast': 'master4',
  'ipv6-unicast': 'master6',
  'ipv4-vpn': 'vpntab4',
  'ipv6-vpn': 'vpntab6',
};

const CHANNEL: Record<Family, string> = {
  'ipv4-unicast': 'ipv4',
  'ipv6-unicast': 'ipv6',
  'ipv4-vpn': 'vpn4 mpls',
  'ipv6-vpn': 'vpn6 mpls',
};

const STATIC_PROTO: Record<Family, string> = {
  'ipv4-unicast': 'routes4',
  'ipv6-unicast': 'routes6',
  'ipv4-vpn': 'routesvpn4',
  'ipv6-vpn': 'routesvpn6',
};

const ORIGIN_CONST: Record<Origin, string> = {
  igp: 'ORIGIN_IGP',
  egp: 'ORIGIN_EGP',
  incomplete: 'ORIGIN_INCOMPLETE',
};

const FAMILIES: Family[] = ['ipv4-unicast', 'ipv6-unicast', 'ipv4-vpn', 'ipv6-vpn'];

/** BIRD protocol name for a neighbour (`peer_127_0_0_2` unless `name` is given). */
export function birdProtocolName(n: Pick<NeighborSpec, 'address' | 'name'>): string {
  const raw = n.name ?? `peer_${n.address}`;
  return raw.replace(/[^A-Za-z0-9_]/g, '_');
}

const quote = (s: string): string => JSON.stringify(s);

function staticRouteLine(r: BirdStaticRoute): string {
  const a = r.attrs ?? {};
  let net = r.prefix;
  if (isVpnFamily(r.family)) {
    if (a.rd === undefined) throw new Error(`bird: ${r.family} route ${r.prefix} needs rd`);
    net = `${a.rd} ${r.prefix}`;
  }
  const sets: string[] = [];
  if (a.nextHop !== undefined) sets.push(`bgp_next_hop = ${a.nextHop};`);
  if (a.origin !== undefined) sets.push(`bgp_origin = ${ORIGIN_CONST[a.origin]};`);
  for (const asn of [...(a.asPath ?? [])].reverse()) sets.push(`bgp_path.prepend(${asn});`);
  if (a.med !== undefined) sets.push(`bgp_med = ${a.med};`);
  if (a.localPref !== undefined) sets.push(`bgp_local_pref = ${a.localPref};`);
  for (const c of a.communities ?? []) sets.push(`bgp_community.add((${c.split(':').join(',')}));`);
  for (const c of a.largeCommunities ?? [])
    sets.push(`bgp_large_community.add((${c.split(':').join(', ')}));`);
  for (const c of a.extCommunities ?? []) {
    const e = parseExtCommunity(c);
    sets.push(`bgp_ext_community.add((${e.kind === 'rt' ? 'rt' : 'ro'}, ${e.admin}, ${e.assigned}));`);
  }
  return sets.length === 0 ? `  route ${net} blackhole;` : `  route ${net} blackhole { ${sets.join(' ')} };`;
}

/** The bird.conf for `cfg` and the current routes (exported for tests of the harness itself). */
export function birdConf(cfg: BirdConfig, routes: readonly BirdStaticRoute[]): string {
  const nh = resolveNextHops(cfg);
  const out: string[] = [
    `router id ${cfg.routerId};`,
    'log stderr all;',
    '',
    'protocol device { scan time 10; }',
    '',
    'ipv4 table igp4;',
    'ipv6 table igp6;',
    'vpn4 table vpntab4;',
    'vpn6 table vpntab6;',
    '# Everything resolves via lo, so recursive next hops of multihop sessions are reachable.',
    'protocol static igp4_default { ipv4 { table igp4; }; route 0.0.0.0/0 via "lo"; }',
    'protocol static igp6_default { ipv6 { table igp6; }; route ::/0 via "lo"; }',
    '',
    '# BIRD sends MED to eBGP peers only when an export filter set it: re-set it for our own routes.',
    'filter vce_export {',
    '  if source = RTS_STATIC && defined(bgp_med) then bgp_med = bgp_med;',
    '  accept;',
    '}',
    '',
  ];
  for (const f of FAMILIES) {
    const rs = routes.filter((r) => r.family === f);
    const channel = f === 'ipv4-vpn' ? 'vpn4' : f === 'ipv6-vpn' ? 'vpn6' : CHANNEL[f];
    out.push(`protocol static ${STATIC_PROTO[f]} {`, `  ${channel} { table ${TABLE[f]}; };`);
    for (const r of rs) out.push(staticRouteLine(r));
    out.push('}', '');
  }
  for (const n of cfg.neighbors) {
    const hold = n.holdTime ?? 90;
    const retry = n.connectRetry ?? 1;
    out.push(
      `protocol bgp ${birdProtocolName(n)} {`,
      `  local ${cfg.listenAddress} port ${cfg.listenPort} as ${cfg.asn};`,
      `  neighbor ${n.address} port ${n.port ?? 179} as ${n.peerAsn};`,
      '  strict bind;',
      '  multihop;',
      `  hold time ${hold};`,
      `  keepalive time ${Math.max(1, Math.floor(hold / 3))};`,
      '  connect delay time 1;',
      `  connect retry time ${retry};`,
      '  error wait time 1, 3;',
    );
    if (n.passive === true) out.push('  passive on;');
    if (n.password !== undefined) out.push(`  password ${quote(n.password)};`);
    if (n.routeServerClient === true) out.push('  rs client;');
    for (const f of n.families) {
      const igp = isIpv6Family(f) ? 'igp6' : 'igp4';
      const self =
        n.routeServerClient === true ? '' : ` next hop address ${isIpv6Family(f) ? nh.ipv6 : nh.ipv4};`;
      out.push(
        `  ${CHANNEL[f]} { table ${TABLE[f]}; import all; export filter vce_export;${self} igp table ${igp}; };`,
      );
    }
    out.push('}', '');
  }
  return out.join('\n');
}

// --- `show route ... all` parsing ------------------------------------------------------------

const ORIGIN_TEXT: Record<string, Origin> = { IGP: 'igp', EGP: 'egp', Incomplete: 'incomplete' };

function tuples(s: string): string[][] {
  return [...s.matchAll(/\(([^)]*)\)/g)].map((m) => (m[1] ?? '').split(',').map((p) => p.trim()));
}

/** Parses BIRD's `show route [table T] ... all` output (every route shown). */
export function parseBirdRoutes(text: string, family: Family): NormalizedRoute[] {
  const out: NormalizedRoute[] = [];
  let cur: (Partial<NormalizedRoute> & { prefix: string; nextHop: string }) | undefined;
  let lastNet: { prefix: string; rd?: string } | undefined;
  const flush = (): void => {
    if (cur !== undefined) out.push(finishRoute(cur));
    cur = undefined;
  };
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('BIRD ') || /^Table \S+:$/.test(line)) continue;
    if (line.startsWith('\t')) {
      if (cur === undefined) continue;
      const m = /^\t([A-Za-z0-9_.]+):\s*(.*)$/.exec(line);
      if (m === null || m[1] === undefined || m[2] === undefined) continue;
      const [key, value] = [m[1], m[2].trim()];
      switch (key) {
        case 'BGP.origin':
          cur.origin = ORIGIN_TEXT[value];
          break;
        case 'BGP.as_path':
          cur.asPath = (value.match(/\d+/g) ?? []).map(Number);
          break;
        case 'BGP.next_hop':
          cur.nextHop = canonicalNextHop(value.split(/\s+/)[0] ?? '', family);
          break;
        case 'BGP.med':
          cur.med = Number(value);
          break;
        case 'BGP.local_pref':
          cur.localPref = Number(value);
          break;
        case 'BGP.community':
          cur.communities = tuples(value).map((t) => t.join(':'));
          break;
        case 'BGP.large_community':
          cur.largeCommunities = tuples(value).map((t) => t.join(':'));
          break;
        case 'BGP.ext_community':
          cur.extCommunities = tuples(value).map((t) => {
            const [kind = '', admin = '', assigned = ''] = t;
            if (kind === 'rt' || kind === 'ro')
              return canonicalExtCommunity(kind === 'rt' ? 'rt' : 'soo', admin, assigned);
            return `unknown:(${t.join(', ')})`;
          });
          break;
        case 'BGP.mpls_label_stack':
          cur.labels = (value.match(/\d+/g) ?? []).map(Number);
          break;
        default:
          break;
      }
      continue;
    }
    // A route head: "<net> <type> [proto ...] ..." at column 0, or an alternative route of
    // the same net indented with spaces.
    flush();
    const tokens = line.trim().split(/\s+/);
    let net = lastNet;
    if (!/^\s/.test(line)) {
      if (isVpnFamily(family)) net = { rd: tokens[0] ?? '', prefix: canonicalPrefix(tokens[1] ?? '') };
      else net = { prefix: canonicalPrefix(tokens[0] ?? '') };
      lastNet = net;
    }
    if (net === undefined) continue;
    cur = { prefix: net.prefix, nextHop: '' };
    if (net.rd !== undefined) {
      cur.rd = net.rd;
      cur.labels = [];
    }
  }
  flush();
  return out;
}

/** The "BGP state:" of `show protocols all <name>`, as a canonical FSM state. */
export function parseBirdBgpState(text: string): SessionState {
  const m = /BGP state:\s+(\w+)/.exec(text);
  const s = (m?.[1] ?? 'Idle').toLowerCase();
  const known: SessionState[] = ['idle', 'connect', 'active', 'opensent', 'openconfirm', 'established'];
  return (known as string[]).includes(s) ? (s as SessionState) : 'idle';
}

export class BirdDaemon {
  readonly name = 'bird';
  readonly nextHop: { ipv4: string; ipv6: string };
  private routes: BirdStaticRoute[];

  constructor(
    readonly config: BirdConfig,
    readonly handle: DaemonHandle,
    readonly confFile: string,
    readonly ctlSocket: string,
  ) {
    this.nextHop = resolveNextHops(config);
    this.routes = [...(config.staticRoutes ?? [])];
  }

  get pid(): number {
    return this.handle.pid;
  }

  get logFile(): string {
    return this.handle.logFile;
  }

  /** Runs one `birdc` command and returns its output. */
  async birdc(...command: string[]): Promise<string> {
    const { stdout } = await run('birdc', ['-s', this.ctlSocket, ...command]);
    return stdout;
  }

  /** Protocol name BIRD uses for the session with `address`. */
  protocolName(address: string): string {
    const n = this.config.neighbors.find((x) => x.address === address);
    return birdProtocolName(n ?? { address });
  }

  /** Best (primary) route per net of the family's table. */
  async rib(family: Family): Promise<NormalizedRoute[]> {
    return parseBirdRoutes(
      await this.birdc('show', 'route', 'table', TABLE[family], 'primary', 'all'),
      family,
    );
  }

  /** Routes imported from the session with `neighbor` (the Adj-RIB-In after import filter). */
  async adjIn(neighbor: string, family: Family): Promise<NormalizedRoute[]> {
    const proto = this.protocolName(neighbor);
    return parseBirdRoutes(
      await this.birdc('show', 'route', 'table', TABLE[family], 'protocol', proto, 'all'),
      family,
    );
  }

  /** Routes BIRD exports to `neighbor` (attributes before BGP's own next-hop/AS rewriting). */
  async exported(neighbor: string, family: Family): Promise<NormalizedRoute[]> {
    const proto = this.protocolName(neighbor);
    return parseBirdRoutes(
      await this.birdc('show', 'route', 'table', TABLE[family], 'export', proto, 'all'),
      family,
    );
  }

  /** Row of `show protocols <name>`: `{state: 'up'|'start'|'down'..., info: 'Established'...}`. */
  async protocolState(name: string): Promise<{ state: string; info: string }> {
    const text = await this.birdc('show', 'protocols', name);
    const row = text.split('\n').find((l) => l.startsWith(`${name} `));
    if (row === undefined) throw new Error(`bird: no protocol ${name}\n${text}`);
    // Name Proto Table State Since (time, or date and time) Info...
    const m = /^\S+\s+\S+\s+\S+\s+(\S+)\s+(?:\d{4}-\d\d-\d\d\s+)?[\d:.]+\s*(.*)$/.exec(row);
    return { state: m?.[1] ?? '', info: (m?.[2] ?? '').trim() };
  }

  async neighborState(address: string): Promise<SessionState> {
    return parseBirdBgpState(await this.birdc('show', 'protocols', 'all', this.protocolName(address)));
  }

  async waitEstablished(address: string, timeoutMs = 20_000): Promise<void> {
    await waitFor(async () => ((await this.neighborState(address)) === 'established' ? true : undefined), {
      what: `bird session with ${address} established`,
      timeoutMs,
      describe: async () =>
        `${await this.birdc('show', 'protocols', 'all', this.protocolName(address))}\n${await this.handle.logTail(15)}`,
    });
  }

  /** Originates a route (static blackhole with BGP attributes) and reconfigures BIRD. */
  async addRoute(family: Family, prefix: string, attrs: RouteAttrs = {}): Promise<void> {
    this.routes = this.routes.filter((r) => !sameRoute(r, family, prefix, attrs.rd));
    this.routes.push({ family, prefix, attrs });
    await this.reconfigure();
  }

  async delRoute(family: Family, prefix: string, attrs: Pick<RouteAttrs, 'rd'> = {}): Promise<void> {
    this.routes = this.routes.filter((r) => !sameRoute(r, family, prefix, attrs.rd));
    await this.reconfigure();
  }

  /** Rewrites bird.conf from the current routes and applies it (`birdc configure`). */
  async reconfigure(): Promise<void> {
    await writeFile(this.confFile, birdConf(this.config, this.routes));
    const out = await this.birdc('configure', quote(this.confFile));
    if (!/Reconfigur/.test(out)) throw new Error(`bird: configure failed\n${out}`);
  }

  /** Route refresh towards `neighbor` (ROUTE-REFRESH when negotiated). */
  async softResetIn(neighbor: string): Promise<void> {
    await this.birdc('reload', 'in', this.protocolName(neighbor));
  }

  async softResetOut(neighbor: string): Promise<void> {
    await this.birdc('reload', 'out', this.protocolName(neighbor));
  }

  /** Disables the session (Cease/Administrative Shutdown with `reason`, RFC 8203). */
  async shutdownNeighbor(address: string, reason?: string): Promise<void> {
    const args = ['disable', this.protocolName(address)];
    if (reason !== undefined) args.push(quote(reason));
    await this.birdc(...args);
  }

  async enableNeighbor(address: string): Promise<void> {
    await this.birdc('enable', this.protocolName(address));
  }

  async resetNeighbor(address: string): Promise<void> {
    await this.birdc('restart', this.protocolName(address));
  }

  stop(): Promise<void> {
    return this.handle.stop();
  }
}

function sameRoute(r: BirdStaticRoute, family: Family, prefix: string, rd: string | undefined): boolean {
  return r.family === family && canonicalPrefix(r.prefix) === canonicalPrefix(prefix) && r.attrs?.rd === rd;
}

/** Starts BIRD in the foreground (`-f`) and resolves once its control socket answers. */
export async function startBird(config: BirdConfig): Promise<BirdDaemon> {
  const dir = await tmpDir('bird');
  const confFile = join(dir, 'bird.conf');
  const ctlSocket = join(dir, 'bird.ctl');
  await writeFile(confFile, birdConf(config, config.staticRoutes ?? []));
  try {
    await run('bird', ['-p', '-c', confFile]);
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(
      `bird: invalid generated config: ${errorText(e)}\n${birdConf(config, config.staticRoutes ?? [])}`,
      { cause: e },
    );
  }
  const handle = await startDaemon({
    name: 'bird',
    cmd: 'bird',
    args: ['-f', '-c', confFile, '-s', ctlSocket, '-P', join(dir, 'bird.pid')],
    dir,
    readyCheck: async () => {
      const { stdout } = await run('birdc', ['-s', ctlSocket, 'show', 'status'], 2000);
      return stdout.includes('Daemon is up and running');
    },
  });
  return new BirdDaemon(config, handle, confFile, ctlSocket);
}
