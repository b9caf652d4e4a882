/**
 * ExaBGP 4.2 under the interop harness: a scriptable peer for announcements at runtime and for
 * hostile attributes, plus a JSON log of everything it receives.
 *
 * Owns: the INI-style config (one `neighbor` with `connect <peerPort>` and, optionally,
 * `listen <port>` on its local address; no global listener since `exabgp.tcp.bind` is empty),
 * the environment (`exabgp.daemon.user=root`, `drop=false`, `api.ack=true`), and a bridge
 * process (Python, written to the temp dir) that ExaBGP runs as its API process:
 *   harness --(FIFO `cmd`)--> bridge stdout --> ExaBGP       (commands, one per line)
 *   ExaBGP --> bridge stdin --> `events.jsonl`               (JSON events, `done`/`error` acks)
 * `send()` is serialised and resolves on the command's ack, so ordering is deterministic.
 *
 * ExaBGP 4.2 cannot send a raw UPDATE through the API. Hostile input is made with generic
 * attributes: `attribute [ 0x<code> 0x<flags> 0x<value hex> ]` (code first, then flags; ExaBGP
 * re-encodes attribute codes it knows, so malformed *known* attributes need a raw socket).
 *
 * ExaBGP 4.2.21 bug: receiving a ROUTE-REFRESH while it has announced routes and Enhanced Route
 * Refresh (RFC 7313) is negotiated crashes its resend path (TypeError) and drops the session.
 * `capability { route-refresh; }` always advertises ERR too; `routeRefresh: false` advertises
 * neither (then `routeRefresh()` cannot be used). Peers without ERR are not affected.
 */
import { constants as fsConstants } from 'node:fs';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type DaemonHandle,
  type Family,
  type NormalizedRoute,
  type Origin,
  type RouteAttrs,
  type SessionState,
  canonicalExtCommunity,
  canonicalNextHop,
  canonicalPrefix,
  finishRoute,
  isIpv6Family,
  isVpnFamily,
  parseExtCommunity,
  resolveNextHops,
  run,
  sleepMs,
  startDaemon,
  tmpDir,
  waitFor,
} from './common.ts';

export interface ExabgpConfig {
  asn: number;
  routerId: string;
  /** 127.0.0.x address ExaBGP sources its session from (and listens on with `listenPort`). */
  localAddress: string;
  peerAddress: string;
  /** Port ExaBGP connects to (default 179). */
  peerPort?: number;
  peerAsn: number;
  families: Family[];
  /** Also accept the peer's connection on `localAddress:listenPort`. */
  listenPort?: number;
  /** Never dial (needs `listenPort`). */
  passive?: boolean;
  /** Seconds (default 90). */
  holdTime?: number;
  password?: string;
  /** Default next hops for `announce` (default: `defaultNextHops(localAddress)`). */
  nextHop?: { ipv4?: string; ipv6?: string };
  /** Extra API process command line (`run ...;`) attached to the neighbour, besides the bridge. */
  processScript?: string;
  /** Raw lines inserted in the `neighbor { }` block (e.g. `add-path send;` in a `capability`). */
  extraNeighborConfig?: string[];
  /** Advertise ROUTE-REFRESH (default true; see the refresh bug in the module doc). */
  routeRefresh?: boolean;
  /** Extra ExaBGP environment (`{'exabgp.log.packets': 'true', 'exabgp.log.level': 'DEBUG'}`). */
  env?: Record<string, string>;
}

/** A generic path attribute for hostile or unknown-attribute tests. */
export interface RawAttribute {
  code: number;
  flags: number;
  /** Value bytes as hex (no 0x), may be empty. */
  hex: string;
}

const EXA_FAMILY: Record<Family, string> = {
  'ipv4-unicast': 'ipv4 unicast',
  'ipv6-unicast': 'ipv6 unicast',
  'ipv4-vpn': 'ipv4 mpls-vpn',
  'ipv6-vpn': 'ipv6 mpls-vpn',
};

const FROM_EXA_FAMILY: Record<string, Family> = {
  'ipv4 unicast': 'ipv4-unicast',
  'ipv6 unicast': 'ipv6-unicast',
  'ipv4 mpls-vpn': 'ipv4-vpn',
  'ipv6 mpls-vpn': 'ipv6-vpn',
};

const READY_MARKER = '{"type": "harness-ready"}';

/** The API bridge ExaBGP runs: FIFO lines -> stdout, stdin -> events file. */
const BRIDGE_PY = `# vce interop harness: ExaBGP API bridge (generated)
import sys, threading
cmd_fifo, events = sys.argv[1], sys.argv[2]

def pump():
    while True:
        with open(cmd_fifo) as f:
            for line in f:
                sys.stdout.write(line)
                sys.stdout.flush()

threading.Thread(target=pump, daemon=True).start()
with open(events, 'a') as out:
    out.write(${JSON.stringify(READY_MARKER)} + '\\n')
    out.flush()
    for line in sys.stdin:
        out.write(line)
        out.flush()
`;

function exabgpConf(cfg: ExabgpConfig, bridgeCmd: string): string {
  const hold = cfg.holdTime ?? 90;
  const processes = ['harness'];
  const out = ['process harness {', `  run ${bridgeCmd};`, '  encoder json;', '}'];
  if (cfg.processScript !== undefined) {
    processes.push('user');
    out.push('process user {', `  run ${cfg.processScript};`, '  encoder json;', '}');
  }
  out.push(
    `neighbor ${cfg.peerAddress} {`,
    `  router-id ${cfg.routerId};`,
    `  local-address ${cfg.localAddress};`,
    `  local-as ${cfg.asn};`,
    `  peer-as ${cfg.peerAsn};`,
    `  connect ${cfg.peerPort ?? 179};`,
    `  hold-time ${hold};`,
  );
  if (cfg.listenPort !== undefined) out.push(`  listen ${cfg.listenPort};`);
  if (cfg.passive === true) out.push('  passive true;');
  if (cfg.password !== undefined) out.push(`  md5-password ${JSON.stringify(cfg.password)};`);
  for (const l of cfg.extraNeighborConfig ?? []) out.push(`  ${l}`);
  if (cfg.routeRefresh !== false) out.push('  capability { route-refresh; }');
  out.push(`  family { ${cfg.families.map((f) => `${EXA_FAMILY[f]};`).join(' ')} }`);
  out.push(
    '  api {',
    `    processes [ ${processes.join(' ')} ];`,
    '    neighbor-changes;',
    '    receive { parsed; update; notification; open; refresh; }',
    '  }',
    '}',
    '',
  );
  return out.join('\n');
}

// --- events ---------------------------------------------------------------------------------

/** A JSON event written by ExaBGP's json encoder (only the fields we read). */
export interface ExabgpEvent {
  type: string;
  neighbor?: {
    address?: { local?: string; peer?: string };
    state?: string;
    message?: {
      update?: {
        attribute?: Record<string, unknown>;
        announce?: Record<string, Record<string, ExaNlri[]>>;
        withdraw?: Record<string, ExaNlri[]>;
      };
    };
    notification?: { code?: number; subcode?: number; data?: string };
    'route-refresh'?: { afi?: string; safi?: string; subtype?: string };
    direction?: string;
  };
  [key: string]: unknown;
}

interface ExaNlri {
  nlri?: string;
  rd?: string;
  label?: number[] | number[][];
}

const ORIGIN_TEXT: Record<string, Origin> = { igp: 'igp', egp: 'egp', incomplete: 'incomplete' };

function flattenNumbers(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.flatMap(flattenNumbers);
  return [];
}

function exaExtCommunity(e: unknown): string {
  const s = typeof e === 'object' && e !== null && 'string' in e ? String(e.string) : String(e);
  const m = /^(target|origin):(.+):(\d+)$/.exec(s);
  if (m?.[1] !== undefined && m[2] !== undefined && m[3] !== undefined) {
    return canonicalExtCommunity(m[1], m[2], m[3]);
  }
  return `unknown:${s}`;
}

function attrsToRoute(attrs: Record<string, unknown>): Omit<
  NormalizedRoute,
  'prefix' | 'nextHop' | 'communities' | 'largeCommunities' | 'extCommunities'
> & {
  communities: string[];
  largeCommunities: string[];
  extCommunities: string[];
} {
  const origin = typeof attrs.origin === 'string' ? ORIGIN_TEXT[attrs.origin] : undefined;
  const r: ReturnType<typeof attrsToRoute> = {
    asPath: flattenNumbers(attrs['as-path']),
    communities: Array.isArray(attrs.community)
      ? attrs.community.map((c) => flattenNumbers(c).join(':'))
      : [],
    largeCommunities: Array.isArray(attrs['large-community'])
      ? attrs['large-community'].map((c) => flattenNumbers(c).join(':'))
      : [],
    extCommunities: Array.isArray(attrs['extended-community'])
      ? attrs['extended-community'].map(exaExtCommunity)
      : [],
  };
  if (origin !== undefined) r.origin = origin;
  if (typeof attrs.med === 'number') r.med = attrs.med;
  if (typeof attrs['local-preference'] === 'number') r.localPref = attrs['local-preference'];
  return r;
}

const routeKey = (prefix: string, rd: string | undefined): string => `${rd ?? ''}|${prefix}`;

/** Replays update events into the current Adj-RIB-In per family (announce/withdraw in order). */
export function replayUpdates(events: readonly ExabgpEvent[]): Map<Family, Map<string, NormalizedRoute>> {
  const ribs = new Map<Family, Map<string, NormalizedRoute>>();
  const rib = (f: Family): Map<string, NormalizedRoute> => {
    let m = ribs.get(f);
    if (m === undefined) {
      m = new Map<string, NormalizedRoute>();
      ribs.set(f, m);
    }
    return m;
  };
  for (const ev of events) {
    if (ev.type === 'state' && ev.neighbor?.state === 'down') ribs.clear();
    const u = ev.type === 'update' ? ev.neighbor?.message?.update : undefined;
    if (u === undefined || ev.neighbor?.direction === 'send') continue;
    for (const [fam, list] of Object.entries(u.withdraw ?? {})) {
      const f = FROM_EXA_FAMILY[fam];
      if (f === undefined) continue;
      for (const n of list) if (n.nlri !== undefined) rib(f).delete(routeKey(canonicalPrefix(n.nlri), n.rd));
    }
    const base = attrsToRoute(u.attribute ?? {});
    for (const [fam, byNextHop] of Object.entries(u.announce ?? {})) {
      const f = FROM_EXA_FAMILY[fam];
      if (f === undefined) continue;
      for (const [nh, list] of Object.entries(byNextHop)) {
        for (const n of list) {
          if (n.nlri === undefined) continue;
          const r: Parameters<typeof finishRoute>[0] = {
            ...base,
            prefix: canonicalPrefix(n.nlri),
            nextHop: canonicalNextHop(nh, f),
          };
          if (isVpnFamily(f)) {
            if (n.rd !== undefined) r.rd = n.rd;
            r.labels = flattenNumbers(n.label ?? []);
          }
          rib(f).set(routeKey(r.prefix, n.rd), finishRoute(r));
        }
      }
    }
  }
  return ribs;
}

/**
 * Splits the events file into JSON events and API acks. Only newline-terminated lines count (the
 * last one may still be being written). ExaBGP 4.2 emits some invalid JSON (a ROUTE-REFRESH has
 * `"afi": ""ipv4""`): such lines are repaired, or kept as `{type: 'unparsed', raw}`.
 */
export function parseEvents(text: string): { events: ExabgpEvent[]; acks: string[] } {
  const events: ExabgpEvent[] = [];
  const acks: string[] = [];
  const lines = text.split('\n');
  lines.pop(); // unterminated tail (empty when the file ends with a newline)
  for (const line of lines) {
    const t = line.trim();
    if (t === '') continue;
    if (t === 'done' || t === 'error' || t === 'shutdown') {
      acks.push(t);
      continue;
    }
    if (!t.startsWith('{')) continue;
    try {
      events.push(JSON.parse(t) as ExabgpEvent);
    } catch {
      try {
        events.push(JSON.parse(t.replace(/""([^"]*)""/g, '"$1"')) as ExabgpEvent);
      } catch {
        events.push({ type: 'unparsed', raw: t });
      }
    }
  }
  return { events, acks };
}

export class ExabgpDaemon {
  readonly name = 'exabgp';
  readonly nextHop: { ipv4: string; ipv6: string };
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly config: ExabgpConfig,
    readonly handle: DaemonHandle,
    readonly cmdFifo: string,
    readonly eventsFile: string,
  ) {
    this.nextHop = resolveNextHops({ listenAddress: config.localAddress, nextHop: config.nextHop });
  }

  get pid(): number {
    return this.handle.pid;
  }

  get logFile(): string {
    return this.handle.logFile;
  }

  private async read(): Promise<{ events: ExabgpEvent[]; acks: string[] }> {
    return parseEvents(await readFile(this.eventsFile, 'utf8'));
  }

  /** Everything ExaBGP reported so far (state changes, OPENs, UPDATEs, NOTIFICATIONs...). */
  async events(): Promise<ExabgpEvent[]> {
    return (await this.read()).events;
  }

  /**
   * Writes one API command (`announce route ...`, `neighbor X teardown 2`, ...) and resolves
   * when ExaBGP acknowledges it; rejects if ExaBGP answers `error`. Commands are serialised.
   */
  send(command: string): Promise<void> {
    const next = this.queue.then(() => this.sendNow(command));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async sendNow(command: string): Promise<void> {
    const before = (await this.read()).acks.length;
    await this.writeFifo(`${command.trim()}\n`);
    const ack = await waitFor(
      async () => {
        const { acks } = await this.read();
        return acks.length > before ? acks[before] : undefined;
      },
      { what: `exabgp ack for "${command}"`, describe: () => this.handle.logTail(15) },
    );
    if (ack !== 'done')
      throw new Error(`exabgp rejected "${command}": ${ack}\n${await this.handle.logTail(10)}`);
  }

  /** Non-blocking open so a dead bridge fails (ENXIO, retried briefly) instead of hanging. */
  private async writeFifo(line: string): Promise<void> {
    await waitFor(
      async () => {
        if (!this.handle.alive()) throw new Error('exabgp is not running');
        try {
          const fh = await open(this.cmdFifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
          try {
            await fh.write(line);
          } finally {
            await fh.close();
          }
          return true;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENXIO') return undefined;
          throw e;
        }
      },
      { what: 'exabgp API bridge to open its command pipe', intervalMs: 20 },
    );
  }

  /** `announce route` with normal attributes plus optional generic (raw) attributes. */
  async announce(
    family: Family,
    prefix: string,
    attrs: RouteAttrs = {},
    raw: RawAttribute[] = [],
  ): Promise<void> {
    await this.send(`announce route ${this.routeSpec(family, prefix, attrs, raw)}`);
  }

  async withdraw(family: Family, prefix: string, attrs: RouteAttrs = {}): Promise<void> {
    await this.send(`withdraw route ${this.routeSpec(family, prefix, attrs, [])}`);
  }

  /** Sends ROUTE-REFRESH for `family` (RFC 2918). */
  async routeRefresh(family: Family): Promise<void> {
    await this.send(`announce route-refresh ${EXA_FAMILY[family]}`);
  }

  /** Sends Cease with subcode `subcode` (default 2, Administrative Shutdown) and drops the session. */
  async teardown(subcode = 2): Promise<void> {
    await this.send(`neighbor ${this.config.peerAddress} teardown ${subcode}`);
  }

  private routeSpec(family: Family, prefix: string, a: RouteAttrs, raw: RawAttribute[]): string {
    const parts = [prefix];
    if (isVpnFamily(family)) {
      if (a.rd === undefined) throw new Error(`exabgp: ${family} route ${prefix} needs rd`);
      parts.push('rd', a.rd, 'label', String(a.label ?? 0));
    }
    parts.push('next-hop', a.nextHop ?? (isIpv6Family(family) ? this.nextHop.ipv6 : this.nextHop.ipv4));
    if (a.origin !== undefined) parts.push('origin', a.origin);
    if (a.asPath !== undefined && a.asPath.length > 0) parts.push('as-path', `[ ${a.asPath.join(' ')} ]`);
    if (a.med !== undefined) parts.push('med', String(a.med));
    if (a.localPref !== undefined) parts.push('local-preference', String(a.localPref));
    if (a.communities !== undefined && a.communities.length > 0) {
      parts.push('community', `[ ${a.communities.join(' ')} ]`);
    }
    if (a.largeCommunities !== undefined && a.largeCommunities.length > 0) {
      parts.push('large-community', `[ ${a.largeCommunities.join(' ')} ]`);
    }
    if (a.extCommunities !== undefined && a.extCommunities.length > 0) {
      const ext = a.extCommunities.map(parseExtCommunity).map((e) => {
        return `${e.kind === 'rt' ? 'target' : 'origin'}:${e.admin}:${e.assigned}`;
      });
      parts.push('extended-community', `[ ${ext.join(' ')} ]`);
    }
    for (const r of raw) {
      const hex = (n: number): string => `0x${n.toString(16).padStart(2, '0')}`;
      parts.push('attribute', `[ ${hex(r.code)} ${hex(r.flags)} 0x${r.hex} ]`);
    }
    return parts.join(' ');
  }

  /** Routes currently held from the peer (replayed from the received UPDATE events). */
  async received(family: Family): Promise<NormalizedRoute[]> {
    return [
      ...(replayUpdates(await this.events())
        .get(family)
        ?.values() ?? []),
    ];
  }

  /** ROUTE-REFRESH messages received from the peer (RFC 2918 / RFC 7313 subtype). */
  async refreshesReceived(): Promise<{ afi: string; safi: string; subtype: string }[]> {
    return (await this.events())
      .filter((e) => e.type === 'refresh' && e.neighbor?.direction !== 'send')
      .map((e) => {
        const r = e.neighbor?.['route-refresh'] ?? {};
        return { afi: r.afi ?? '', safi: r.safi ?? '', subtype: r.subtype ?? '' };
      });
  }

  /** NOTIFICATIONs received from the peer. */
  async notifications(): Promise<{ code: number; subcode: number; data: string }[]> {
    return (await this.events())
      .filter((e) => e.type === 'notification')
      .map((e) => ({
        code: e.neighbor?.notification?.code ?? 0,
        subcode: e.neighbor?.notification?.subcode ?? 0,
        data: e.neighbor?.notification?.data ?? '',
      }));
  }

  /** Session state from the last `state` event (`up` = established). */
  async neighborState(): Promise<SessionState> {
    const states = (await this.events()).filter((e) => e.type === 'state');
    const last = states.at(-1)?.neighbor?.state;
    if (last === 'up') return 'established';
    if (last === 'connected') return 'opensent';
    return 'idle';
  }

  async waitEstablished(timeoutMs = 20_000): Promise<void> {
    await waitFor(async () => ((await this.neighborState()) === 'established' ? true : undefined), {
      what: `exabgp session with ${this.config.peerAddress} established`,
      timeoutMs,
      describe: () => this.handle.logTail(15),
    });
  }

  async stop(): Promise<void> {
    // Let the queue drain briefly so a pending send does not race the shutdown.
    await Promise.race([this.queue, sleepMs(100)]);
    await this.handle.stop();
  }
}

/** Starts ExaBGP with the API bridge and resolves once the bridge is running. */
export async function startExabgp(config: ExabgpConfig): Promise<ExabgpDaemon> {
  const dir = await tmpDir('exabgp');
  const confFile = join(dir, 'exabgp.conf');
  const bridge = join(dir, 'bridge.py');
  const cmdFifo = join(dir, 'cmd.fifo');
  const eventsFile = join(dir, 'events.jsonl');
  await writeFile(bridge, BRIDGE_PY);
  await writeFile(eventsFile, '');
  await run('mkfifo', [cmdFifo]);
  await writeFile(confFile, exabgpConf(config, `/usr/bin/env python3 ${bridge} ${cmdFifo} ${eventsFile}`));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    'exabgp.daemon.user': 'root',
    'exabgp.daemon.drop': 'false',
    'exabgp.daemon.daemonize': 'false',
    'exabgp.daemon.pid': join(dir, 'exabgp.pid'),
    'exabgp.tcp.bind': '',
    'exabgp.log.destination': 'stdout',
    'exabgp.log.level': 'INFO',
    'exabgp.api.ack': 'true',
    'exabgp.api.cli': 'false',
    'exabgp.api.encoder': 'json',
    'exabgp.api.respawn': 'false',
    ...config.env,
  };
  const handle = await startDaemon({
    name: 'exabgp',
    cmd: 'exabgp',
    args: [confFile],
    dir,
    env,
    readyCheck: async () => (await readFile(eventsFile, 'utf8')).includes(READY_MARKER),
  });
  return new ExabgpDaemon(config, handle, cmdFifo, eventsFile);
}
