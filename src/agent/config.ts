/**
 * The agent's configuration file (YAML or JSON): parsed, validated and turned into the speaker's
 * configuration. Every problem is a ConfigError naming the field path and what is wrong; the
 * program exits 2 with that message. Unknown keys are errors (a typo must not be silently ignored).
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import {
  ipv4ToNumber,
  makePrefix,
  parseAddress,
  parsePrefix,
  prefixContains,
  type Prefix,
} from '../lib/ip.ts';
import { parseRd } from '../bgp/wire/rd.ts';
import { tcpAoAvailable } from '../lib/sockopt.ts';
import { formatExtCommunity, parseExtCommunity } from '../bgp/wire/communities.ts';
import { AFI_SAFIS, type AfiSafiName } from '../bgp/wire/constants.ts';
import type { AddPathMode } from '../bgp/wire/negotiate.ts';
import { compilePolicies, PolicyConfigError, type PolicyBook } from '../bgp/policy/index.ts';
import {
  at,
  index,
  key,
  readEnum,
  readInt,
  readList,
  readObject,
  readString,
  readText,
  type ConfigObject,
} from '../bgp/policy/config-reader.ts';
import type { BfdClientConfig, MaxPrefixConfig, NeighborConfig } from '../bgp/peer.ts';
import type { DynamicNeighborRange, SpeakerConfig } from '../bgp/speaker.ts';

/** A configuration problem: `path` names the field. */
export { PolicyConfigError as ConfigError };

export interface StaticRouteConfig {
  readonly prefix: Prefix;
  readonly action: 'forward' | 'blackhole' | 'reject';
  readonly nextHop?: Uint8Array;
  readonly interface?: string;
  readonly distance: number;
  readonly bfd: boolean;
}

export interface InterfaceConfig {
  readonly name: string;
  readonly addresses: readonly { readonly address: Uint8Array; readonly prefix: Prefix }[];
}

/** One routing context (VRF); the top level of the file is the `default` context. */
export interface ContextConfig {
  readonly name: string;
  readonly routeDistinguisher?: string;
  readonly speaker?: SpeakerConfig;
  readonly staticRoutes: readonly StaticRouteConfig[];
  readonly interfaces: readonly InterfaceConfig[];
  /** vPE Model 1 case 1-B: route targets of the VPN routes exchanged on the default context's session. */
  readonly routeTargets: { readonly import: readonly string[]; readonly export: readonly string[] };
  /** MPLS label advertised with this context's VPN routes (RFC 8277); default 16 + position. */
  readonly vpnLabel?: number;
}

export interface AgentConfig {
  readonly routerId: number;
  readonly routerIdText: string;
  readonly api?: { readonly host: string; readonly port: number };
  readonly logLevel: string;
  readonly tenant?: string;
  /** The default context's speaker (undefined when it runs no BGP). */
  readonly speaker?: SpeakerConfig;
  readonly contexts: readonly ContextConfig[];
  readonly controllerLeaseSeconds: number;
  /** The `policies` section as text, to tell whether a new configuration changed it. */
  readonly policiesKey: string;
  /** BFD receive ports (RFC 5881/5883 defaults 3784/4784; other values for labs and tests). */
  readonly bfdPorts?: {
    readonly singleHop: number;
    readonly multihop: number;
    readonly reuseAddress: boolean;
  };
}

function readBool(v: unknown, path: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean')
    throw new PolicyConfigError(path, `expected true or false, got ${JSON.stringify(v)}`);
  return v;
}

function readIPv4(v: unknown, path: string): Uint8Array {
  const s = readString(v, path);
  const b = at(path, () => parseAddress(s));
  if (b.length !== 4) throw new PolicyConfigError(path, `expected an IPv4 address, got "${s}"`);
  return b;
}

function readAddressText(v: unknown, path: string): string {
  const s = readString(v, path);
  at(path, () => parseAddress(s));
  return s;
}

function readHostPort(v: unknown, path: string): { host: string; port: number } {
  const s = readString(v, path);
  const m = /^(\[[^\]]+\]|[^:]+|[0-9a-fA-F:]+):(\d+)$/.exec(s);
  if (m === null) throw new PolicyConfigError(path, `expected HOST:PORT, got "${s}"`);
  const port = Number(m[2]);
  if (port > 65535) throw new PolicyConfigError(path, `port ${port} out of range 0..65535`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

function readPolicyChain(v: unknown, path: string, book: PolicyBook): readonly string[] | undefined {
  if (v === undefined) return undefined;
  const names = typeof v === 'string' ? [v] : readList(v, path).map((x, i) => readString(x, index(path, i)));
  for (const n of names)
    if (!book.has(n))
      throw new PolicyConfigError(path, `unknown policy "${n}" (defined: ${book.names().join(', ')})`);
  return names;
}

function readMaxPrefix(v: unknown, path: string): MaxPrefixConfig {
  if (typeof v === 'number')
    return { limit: readInt(v, path, 1, 2 ** 32 - 1), warningThresholdPct: 75, restartSeconds: 0 };
  const o = readObject(v, path, ['limit', 'warning-threshold-pct', 'restart-seconds'], ['limit']);
  return {
    limit: readInt(o['limit'], key(path, 'limit'), 1, 2 ** 32 - 1),
    warningThresholdPct:
      o['warning-threshold-pct'] === undefined
        ? 75
        : readInt(o['warning-threshold-pct'], key(path, 'warning-threshold-pct'), 1, 100),
    restartSeconds:
      o['restart-seconds'] === undefined
        ? 0
        : readInt(o['restart-seconds'], key(path, 'restart-seconds'), 0, 86400),
  };
}

const NEIGHBOR_KEYS = [
  'address',
  'peer-asn',
  'description',
  'passive',
  'remote-port',
  'local-address',
  'afi-safis',
  'import-policy',
  'export-policy',
  'hold-time',
  'connect-retry',
  'route-reflector-client',
  'next-hop-self',
  'max-prefix',
  'add-path',
  'graceful-restart',
  'ipv6-next-hop',
  'shutdown',
  'bfd',
  'password',
  'ttl-security',
  'tcp-ao',
] as const;

/** `bfd: true | {min-tx, min-rx, multiplier, multihop}` (milliseconds), RFC 5880 / RFC 9384. */
function readBfd(v: unknown, path: string): BfdClientConfig | undefined {
  if (v === undefined || v === false) return undefined;
  if (v === true) return { minTxMs: 300, minRxMs: 300, multiplier: 3, multihop: false };
  const o = readObject(v, path, ['min-tx', 'min-rx', 'multiplier', 'multihop']);
  return {
    minTxMs: o['min-tx'] === undefined ? 300 : readInt(o['min-tx'], key(path, 'min-tx'), 1, 60000),
    minRxMs: o['min-rx'] === undefined ? 300 : readInt(o['min-rx'], key(path, 'min-rx'), 0, 60000),
    multiplier: o['multiplier'] === undefined ? 3 : readInt(o['multiplier'], key(path, 'multiplier'), 1, 255),
    multihop: readBool(o['multihop'], key(path, 'multihop'), false),
  };
}

function readNeighbor(v: unknown, path: string, book: PolicyBook): NeighborConfig {
  const o = readObject(v, path, NEIGHBOR_KEYS, ['address', 'peer-asn']);
  const families =
    o['afi-safis'] === undefined
      ? (['ipv4-unicast', 'ipv6-unicast'] as AfiSafiName[])
      : readList(o['afi-safis'], key(path, 'afi-safis')).map((x, i) =>
          readEnum(x, index(key(path, 'afi-safis'), i), AFI_SAFIS),
        );
  if (families.length === 0)
    throw new PolicyConfigError(key(path, 'afi-safis'), 'at least one address family is needed');
  const holdTime =
    o['hold-time'] === undefined ? 90 : readInt(o['hold-time'], key(path, 'hold-time'), 0, 65535);
  if (holdTime === 1 || holdTime === 2)
    throw new PolicyConfigError(
      key(path, 'hold-time'),
      'hold time must be 0 or at least 3 seconds (RFC 4271 §4.2)',
    );
  const maxPrefix: Partial<Record<AfiSafiName, MaxPrefixConfig>> = {};
  const mp = o['max-prefix'];
  if (mp !== undefined) {
    const mpPath = key(path, 'max-prefix');
    if (typeof mp === 'number' || (typeof mp === 'object' && mp !== null && 'limit' in mp)) {
      const m = readMaxPrefix(mp, mpPath);
      for (const f of families) maxPrefix[f] = m;
    } else {
      const mo = readObject(mp, mpPath, AFI_SAFIS);
      for (const [f, val] of Object.entries(mo))
        maxPrefix[f as AfiSafiName] = readMaxPrefix(val, key(mpPath, f));
    }
  }
  const addPath: Partial<Record<AfiSafiName, AddPathMode>> = {};
  if (o['add-path'] !== undefined) {
    const ao = readObject(o['add-path'], key(path, 'add-path'), AFI_SAFIS);
    for (const [f, val] of Object.entries(ao))
      addPath[f as AfiSafiName] = readEnum(val, key(key(path, 'add-path'), f), [
        'receive',
        'send',
        'both',
      ] as const);
  }
  let gracefulRestart: { restartTime: number } | undefined;
  const gr = o['graceful-restart'];
  if (gr === true) gracefulRestart = { restartTime: 120 };
  else if (gr !== undefined && gr !== false) {
    const go = readObject(gr, key(path, 'graceful-restart'), ['restart-time']);
    gracefulRestart = {
      restartTime:
        go['restart-time'] === undefined
          ? 120
          : readInt(go['restart-time'], key(path, 'graceful-restart.restart-time'), 1, 4095),
    };
  }
  let ipv6NextHop: Uint8Array | undefined;
  if (o['ipv6-next-hop'] !== undefined) {
    const s = readString(o['ipv6-next-hop'], key(path, 'ipv6-next-hop'));
    ipv6NextHop = at(key(path, 'ipv6-next-hop'), () => parseAddress(s));
    if (ipv6NextHop.length !== 16)
      throw new PolicyConfigError(key(path, 'ipv6-next-hop'), 'expected an IPv6 address');
  }
  return {
    address: readAddressText(o['address'], key(path, 'address')),
    peerAsn: readInt(o['peer-asn'], key(path, 'peer-asn'), 1, 4294967295),
    description:
      o['description'] === undefined ? undefined : readString(o['description'], key(path, 'description')),
    passive: readBool(o['passive'], key(path, 'passive'), false),
    remotePort:
      o['remote-port'] === undefined ? 179 : readInt(o['remote-port'], key(path, 'remote-port'), 1, 65535),
    localAddress:
      o['local-address'] === undefined
        ? undefined
        : readAddressText(o['local-address'], key(path, 'local-address')),
    families,
    importPolicy: readPolicyChain(o['import-policy'], key(path, 'import-policy'), book),
    exportPolicy: readPolicyChain(o['export-policy'], key(path, 'export-policy'), book),
    holdTime,
    connectRetryTime:
      o['connect-retry'] === undefined
        ? 5
        : readInt(o['connect-retry'], key(path, 'connect-retry'), 1, 65535),
    routeReflectorClient: readBool(o['route-reflector-client'], key(path, 'route-reflector-client'), false),
    nextHopSelf: readBool(o['next-hop-self'], key(path, 'next-hop-self'), false),
    maxPrefix,
    addPath,
    gracefulRestart,
    ipv6NextHop,
    shutdown: readBool(o['shutdown'], key(path, 'shutdown'), false),
    bfd: readBfd(o['bfd'], key(path, 'bfd')),
    password: readPassword(o['password'], key(path, 'password')),
    ttlSecurity: readTtlSecurity(o['ttl-security'], key(path, 'ttl-security')),
    ...readTcpAo(o['tcp-ao'], key(path, 'tcp-ao')),
  };
}

/** TCP-AO (RFC 5925) is refused with the reason: the kernel lacks it, or vce does not do it yet. */
function readTcpAo(v: unknown, path: string): Record<string, never> {
  if (v === undefined || v === false) return {};
  if (!tcpAoAvailable())
    throw new PolicyConfigError(
      path,
      'TCP-AO (RFC 5925) is not available in this kernel; use password (TCP-MD5, RFC 2385)',
    );
  throw new PolicyConfigError(
    path,
    'TCP-AO (RFC 5925) is not supported by vce yet; use password (TCP-MD5, RFC 2385)',
  );
}

/** TCP-MD5 key (RFC 2385): at most 80 bytes. */
function readPassword(v: unknown, path: string): string | undefined {
  if (v === undefined) return undefined;
  const s = readString(v, path);
  if (Buffer.byteLength(s) > 80)
    throw new PolicyConfigError(path, 'a TCP-MD5 key is at most 80 bytes (RFC 2385)');
  return s;
}

/** GTSM (RFC 5082): `ttl-security: {hops: N}` accepts packets with TTL >= 256 - N; we send TTL 255. */
function readTtlSecurity(v: unknown, path: string): { hops: number } | undefined {
  if (v === undefined || v === false) return undefined;
  if (v === true) return { hops: 1 };
  const o = readObject(v, path, ['hops']);
  return { hops: o['hops'] === undefined ? 1 : readInt(o['hops'], key(path, 'hops'), 1, 254) };
}

/**
 * `{prefix, peer-asn | peer-as-range | peer-asns, limit?, template?}`: a listen range from which
 * peers are accepted with no per-peer configuration (draft 7.2.1.1: the PE side needs none).
 */
function readDynamicNeighbors(v: unknown, path: string, book: PolicyBook): DynamicNeighborRange {
  const o = readObject(
    v,
    path,
    ['prefix', 'peer-asn', 'peer-as-range', 'peer-asns', 'limit', 'template'],
    ['prefix'],
  );
  const prefixText = readString(o['prefix'], key(path, 'prefix'));
  const prefix = at(key(path, 'prefix'), () => parsePrefix(prefixText));
  const given = ['peer-asn', 'peer-as-range', 'peer-asns'].filter((k) => o[k] !== undefined);
  if (given.length !== 1)
    throw new PolicyConfigError(
      path,
      'exactly one of peer-asn, peer-as-range ("A-B") or peer-asns (a list, or "any") is needed',
    );
  let peerAsns: readonly number[] | 'any';
  if (o['peer-asn'] !== undefined) peerAsns = [readInt(o['peer-asn'], key(path, 'peer-asn'), 1, 4294967295)];
  else if (o['peer-asns'] === 'any') peerAsns = 'any';
  else if (o['peer-asns'] !== undefined)
    peerAsns = readList(o['peer-asns'], key(path, 'peer-asns')).map((x, i) =>
      readInt(x, index(key(path, 'peer-asns'), i), 1, 4294967295),
    );
  else {
    const r = readString(o['peer-as-range'], key(path, 'peer-as-range'));
    const m = /^(\d+)-(\d+)$/.exec(r);
    const lo = Number(m?.[1]);
    const hi = Number(m?.[2]);
    if (m === null || lo < 1 || hi > 4294967295 || lo > hi || hi - lo > 65535)
      throw new PolicyConfigError(
        key(path, 'peer-as-range'),
        `expected "LOW-HIGH" spanning at most 65536 AS numbers, got "${r}"`,
      );
    peerAsns = Array.from({ length: hi - lo + 1 }, (_x, i) => lo + i);
  }
  const tmplPath = key(path, 'template');
  if (
    o['template'] !== null &&
    typeof o['template'] === 'object' &&
    (o['template'] as Record<string, unknown>)['password'] !== undefined
  )
    // TCP-MD5 keys are per peer address on the listener; a range would need TCP_MD5SIG_EXT
    // prefix keys, which the speaker does not install.
    throw new PolicyConfigError(
      key(tmplPath, 'password'),
      'TCP-MD5 password is not supported for dynamic neighbors (keys are per peer address); configure the neighbors explicitly',
    );
  const tmpl =
    o['template'] === undefined
      ? {}
      : readObject(
          o['template'],
          tmplPath,
          NEIGHBOR_KEYS.filter((k) => k !== 'address' && k !== 'peer-asn'),
        );
  const n = readNeighbor({ ...tmpl, address: '0.0.0.0', 'peer-asn': 1 }, tmplPath, book);
  const { address: _a, peerAsn: _p, ...template } = n;
  return {
    prefix,
    peerAsns,
    template: { ...template, passive: true },
    limit: o['limit'] === undefined ? 10000 : readInt(o['limit'], key(path, 'limit'), 1, 1_000_000),
  };
}

/** The `bgp` section of a context: one speaker. */
function readBgp(v: unknown, P: string, book: PolicyBook, routerId: number): SpeakerConfig {
  const b = readObject(
    v,
    P,
    ['asn', 'listen', 'neighbors', 'dynamic-neighbors', 'networks', 'redistribute', 'cluster-id', 'decision'],
    ['asn'],
  );
  const asn = readInt(b['asn'], `${P}.asn`, 1, 4294967295);
  let listen: SpeakerConfig['listen'];
  if (b['listen'] === false) listen = false;
  else if (b['listen'] !== undefined) {
    const l = readObject(b['listen'], `${P}.listen`, ['address', 'port']);
    listen = {
      address: l['address'] === undefined ? '0.0.0.0' : readAddressText(l['address'], `${P}.listen.address`),
      port: l['port'] === undefined ? 179 : readInt(l['port'], `${P}.listen.port`, 0, 65535),
    };
  } else listen = { address: '0.0.0.0', port: 179 };
  const neighbors = each(readList(b['neighbors'], `${P}.neighbors`), (n, i) =>
    readNeighbor(n, index(`${P}.neighbors`, i), book),
  );
  const seen = new Set<string>();
  neighbors.forEach((n, i) => {
    const k = n.address.toLowerCase();
    if (seen.has(k))
      throw new PolicyConfigError(
        index(`${P}.neighbors`, i) + '.address',
        `neighbor ${n.address} is configured twice`,
      );
    seen.add(k);
  });
  const dynamicNeighbors = each(readList(b['dynamic-neighbors'], `${P}.dynamic-neighbors`), (d, i) =>
    readDynamicNeighbors(d, index(`${P}.dynamic-neighbors`, i), book),
  );
  const networks: Prefix[] = each(readList(b['networks'], `${P}.networks`), (n, i) => {
    const p = index(`${P}.networks`, i);
    const s = readString(n, p);
    return at(p, () => parsePrefix(s));
  });
  let decision: SpeakerConfig['decision'];
  if (b['decision'] !== undefined) {
    const d = readObject(b['decision'], `${P}.decision`, ['always-compare-med', 'med-missing-as-worst']);
    decision = {
      alwaysCompareMed: readBool(d['always-compare-med'], `${P}.decision.always-compare-med`, false),
      medMissingAsWorst: readBool(d['med-missing-as-worst'], `${P}.decision.med-missing-as-worst`, false),
      ignoreAsPathLength: false,
    };
  }
  const clusterId =
    b['cluster-id'] === undefined ? undefined : ipv4ToNumber(readIPv4(b['cluster-id'], `${P}.cluster-id`));
  return {
    asn,
    routerId,
    clusterId,
    listen,
    neighbors,
    dynamicNeighbors,
    networks,
    decision,
    policies: book,
    redistribute: readList(b['redistribute'], `${P}.redistribute`).map((x, i) =>
      readEnum(x, index(`${P}.redistribute`, i), ['connected', 'static'] as const),
    ),
  };
}

const ROUTE_ACTIONS = ['forward', 'blackhole', 'reject'] as const;

/** `{prefix, next-hop?, interface?, action?, distance?, bfd?}` */
function readStaticRoute(v: unknown, path: string): StaticRouteConfig {
  const o = readObject(v, path, ['prefix', 'next-hop', 'interface', 'action', 'distance', 'bfd'], ['prefix']);
  const text = readString(o['prefix'], key(path, 'prefix'));
  const prefix = at(key(path, 'prefix'), () => parsePrefix(text));
  const action =
    o['action'] === undefined ? 'forward' : readEnum(o['action'], key(path, 'action'), ROUTE_ACTIONS);
  let nextHop: Uint8Array | undefined;
  if (o['next-hop'] !== undefined) {
    const nh = readString(o['next-hop'], key(path, 'next-hop'));
    nextHop = at(key(path, 'next-hop'), () => parseAddress(nh));
    if (nextHop.length !== prefix.addr.length)
      throw new PolicyConfigError(key(path, 'next-hop'), `next hop ${nh} is not of the family of ${text}`);
  }
  const iface = o['interface'] === undefined ? undefined : readString(o['interface'], key(path, 'interface'));
  if (action === 'forward' && nextHop === undefined && iface === undefined)
    throw new PolicyConfigError(
      path,
      'a forwarding route needs a next-hop or an interface (or action: blackhole | reject)',
    );
  if (action !== 'forward' && (nextHop !== undefined || iface !== undefined))
    throw new PolicyConfigError(path, `a ${action} route has no next-hop or interface`);
  const bfd = readBool(o['bfd'], key(path, 'bfd'), false);
  if (bfd && nextHop === undefined)
    throw new PolicyConfigError(key(path, 'bfd'), 'BFD tracking needs a next-hop address');
  return {
    prefix,
    action,
    nextHop,
    interface: iface,
    distance: o['distance'] === undefined ? 1 : readInt(o['distance'], key(path, 'distance'), 1, 255),
    bfd,
  };
}

/** `{name, addresses: [10.1.0.1/24, ...]}`: each address gives a connected route. */
function readInterface(v: unknown, path: string): InterfaceConfig {
  const o = readObject(v, path, ['name', 'addresses', 'description'], ['name']);
  const name = readString(o['name'], key(path, 'name'));
  const addresses = readList(o['addresses'], key(path, 'addresses')).map((a, i) => {
    const p = index(key(path, 'addresses'), i);
    const t = readString(a, p);
    const pfx = at(p, () => parsePrefix(t, true));
    return { address: at(p, () => parseAddress(t.slice(0, t.indexOf('/')))), prefix: pfx };
  });
  return { name, addresses };
}

function readContext(
  o: ConfigObject,
  path: string,
  name: string,
  book: PolicyBook,
  routerId: number,
): ContextConfig {
  const P = path === '' ? '' : `${path}.`;
  const staticRoutes = each(readList(o['static-routes'], `${P}static-routes`), (r, i) =>
    readStaticRoute(r, index(`${P}static-routes`, i)),
  );
  const interfaces = each(readList(o['interfaces'], `${P}interfaces`), (r, i) =>
    readInterface(r, index(`${P}interfaces`, i)),
  );
  staticRoutes.forEach((r, i) => {
    if (!r.bfd || r.nextHop === undefined) return;
    const nh = makePrefix(r.nextHop, r.nextHop.length * 8);
    const local = interfaces.flatMap((x) => x.addresses).find((a) => prefixContains(a.prefix, nh));
    if (local === undefined)
      throw new PolicyConfigError(
        `${index(`${P}static-routes`, i)}.bfd`,
        "BFD tracking needs an interface address in the next hop's subnet (the BFD source address)",
      );
  });
  const speaker = o['bgp'] === undefined ? undefined : readBgp(o['bgp'], `${P}bgp`, book, routerId);
  const rd =
    o['route-distinguisher'] === undefined
      ? undefined
      : readText(o['route-distinguisher'], `${P}route-distinguisher`);
  if (rd !== undefined) at(`${P}route-distinguisher`, () => parseRd(rd));
  let routeTargets: ContextConfig['routeTargets'] = { import: [], export: [] };
  if (o['route-targets'] !== undefined) {
    const rp = `${P}route-targets`;
    const r = readObject(o['route-targets'], rp, ['import', 'export', 'both']);
    const list = (k: string): string[] =>
      readList(r[k], key(rp, k)).map((x, i) => {
        const t = readString(x, index(key(rp, k), i));
        // canonical text form (rt:ASN:N, rt:IP:N), as route views and matching use
        return formatExtCommunity(
          at(index(key(rp, k), i), () => parseExtCommunity(t.startsWith('rt:') ? t : `rt:${t}`)),
        );
      });
    const both = list('both');
    routeTargets = { import: [...both, ...list('import')], export: [...both, ...list('export')] };
    if (routeTargets.export.length > 0 && rd === undefined)
      throw new PolicyConfigError(rp, 'exporting routes as VPN routes needs a route-distinguisher');
  }
  const vpnLabel =
    o['vpn-label'] === undefined ? undefined : readInt(o['vpn-label'], `${P}vpn-label`, 16, 1048575);
  return { name, routeDistinguisher: rd, speaker, staticRoutes, interfaces, routeTargets, vpnLabel };
}

/** Validates a parsed configuration tree. */
/**
 * Validates a parsed configuration tree and reports every problem at once: independent parts (each
 * neighbour, route, interface, context...) are checked even after another failed; the thrown
 * ConfigError names the first problem and carries all of them in `all` (its message lists them).
 */
export function buildAgentConfig(raw: unknown): AgentConfig {
  const outer = collecting;
  const errs: PolicyConfigError[] = [];
  collecting = errs;
  let cfg: AgentConfig | undefined;
  try {
    cfg = buildOnce(raw);
  } catch (e) {
    // A problem outside the independent parts, or a follow-on of one already recorded.
    if (e instanceof PolicyConfigError) errs.push(e);
    else if (errs.length === 0) throw e;
  } finally {
    collecting = outer;
  }
  if (errs.length > 0 || cfg === undefined) throw aggregate(errs);
  return cfg;
}

/** Problems found so far while collecting (undefined outside buildAgentConfig). */
let collecting: PolicyConfigError[] | undefined;

/** Runs one independent check; while collecting, a failure is recorded and `undefined` returned. */
function soft<T>(fn: () => T): T | undefined {
  if (collecting === undefined) return fn();
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof PolicyConfigError)) throw e;
    collecting.push(e);
    return undefined;
  }
}

/** Maps a list, checking each item independently (failed items are left out). */
function each<T>(list: readonly unknown[], fn: (v: unknown, i: number) => T): T[] {
  const out: T[] = [];
  list.forEach((v, i) => {
    const r = soft(() => fn(v, i));
    if (r !== undefined) out.push(r);
  });
  return out;
}

function aggregate(errs: readonly PolicyConfigError[]): PolicyConfigError {
  if (errs.length === 1) return errs[0]!;
  const first = errs[0]!;
  const e = new PolicyConfigError(
    first.path,
    `${first.reason}; and ${errs.length - 1} more: ${errs
      .slice(1)
      .map((x) => x.message)
      .join('; ')}`,
  );
  Object.defineProperty(e, 'all', { value: errs, enumerable: false });
  return e;
}

function buildOnce(raw: unknown): AgentConfig {
  const o: ConfigObject = readObject(
    raw,
    'config',
    [
      'router-id',
      'api',
      'bgp',
      'policies',
      'log-level',
      'tenant',
      'static-routes',
      'interfaces',
      'vrfs',
      'controller',
      'bfd',
    ],
    ['router-id'],
  );
  const routerId =
    soft(() => {
      const id = ipv4ToNumber(readIPv4(o['router-id'], 'router-id'));
      if (id === 0) throw new PolicyConfigError('router-id', 'must not be 0.0.0.0 (RFC 6286 §2.2)');
      return id;
    }) ?? 1;
  let api: AgentConfig['api'];
  if (o['api'] !== undefined) {
    api = soft(() => {
      const a = readObject(o['api'], 'api', ['listen'], ['listen']);
      return readHostPort(a['listen'], 'api.listen');
    });
  }
  const book = soft(() => compilePolicies(o['policies'], 'policies')) ?? compilePolicies(undefined);
  const contexts: ContextConfig[] = [];
  const def = soft(() => readContext(o, '', 'default', book, routerId));
  if (def !== undefined) contexts.push(def);
  each(readList(o['vrfs'], 'vrfs'), (v, i) => {
    const path = index('vrfs', i);
    const vo = readObject(
      v,
      path,
      ['name', 'route-distinguisher', 'route-targets', 'vpn-label', 'interfaces', 'static-routes', 'bgp'],
      ['name'],
    );
    const name = readString(vo['name'], key(path, 'name'));
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/.test(name))
      throw new PolicyConfigError(
        key(path, 'name'),
        `"${name}" is not a context name (letters, digits, _ . -; at most 64)`,
      );
    if (contexts.some((c) => c.name === name))
      throw new PolicyConfigError(key(path, 'name'), `context "${name}" is defined twice`);
    contexts.push(readContext(vo, path, name, book, routerId));
  });
  const listens = new Map<string, string>();
  contexts.forEach((c, i) => {
    const l = c.speaker?.listen;
    if (l === undefined || l === false) return;
    const k = `${l.address}:${l.port}`;
    const where = i === 0 ? 'bgp.listen' : `${index('vrfs', i - 1)}.bgp.listen`;
    if (listens.has(k))
      throw new PolicyConfigError(where, `${k} is already the BGP listener of ${listens.get(k)}`);
    listens.set(k, where);
  });
  let bfdPorts: AgentConfig['bfdPorts'];
  if (o['bfd'] !== undefined) {
    const b = readObject(o['bfd'], 'bfd', ['single-hop-port', 'multihop-port', 'reuse-address']);
    bfdPorts = {
      reuseAddress: readBool(b['reuse-address'], 'bfd.reuse-address', false),
      singleHop:
        b['single-hop-port'] === undefined
          ? 3784
          : readInt(b['single-hop-port'], 'bfd.single-hop-port', 1, 65535),
      multihop:
        b['multihop-port'] === undefined ? 4784 : readInt(b['multihop-port'], 'bfd.multihop-port', 1, 65535),
    };
  }
  let controllerLeaseSeconds = 60;
  if (o['controller'] !== undefined) {
    const c = readObject(o['controller'], 'controller', ['route-lease-seconds']);
    if (c['route-lease-seconds'] !== undefined)
      controllerLeaseSeconds = readInt(c['route-lease-seconds'], 'controller.route-lease-seconds', 1, 86400);
  }
  const logLevel =
    o['log-level'] === undefined
      ? 'info'
      : readEnum(o['log-level'], 'log-level', ['debug', 'info', 'warn', 'error', 'silent'] as const);
  return {
    routerId,
    routerIdText: readString(o['router-id'], 'router-id'),
    api,
    logLevel,
    tenant: o['tenant'] === undefined ? undefined : readString(o['tenant'], 'tenant'),
    speaker: contexts[0]!.speaker,
    contexts,
    controllerLeaseSeconds,
    bfdPorts,
    policiesKey: JSON.stringify(o['policies'] ?? null),
  };
}

/** Reads and validates a YAML or JSON file. */
export async function loadAgentConfig(file: string): Promise<AgentConfig> {
  const text = await readFile(file, 'utf8');
  let raw: unknown;
  try {
    raw = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new PolicyConfigError(
      file,
      `not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`,
    );
  }
  return buildAgentConfig(raw);
}
