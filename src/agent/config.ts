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
import { formatExtCommunity, parseExtCommunity } from '../bgp/wire/communities.ts';
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
import type { SpeakerConfig } from '../bgp/speaker.ts';
import { collect, each, readBool, readHostPort, readIPv4, soft } from './config-read.ts';
import { readBgp } from './config-bgp.ts';
import {
  INTERFACE_DP_KEYS,
  readDataplane,
  readDpInterfaceFields,
  type DpInterfaceFields,
} from './config-dataplane.ts';
import type { DataplaneConfig } from '../dataplane/types.ts';

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
  /** Data plane attachment (kind, VNI, tags, zone...); undefined: addresses only. */
  readonly dp?: DpInterfaceFields;
  readonly path: string;
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
  /** The forwarding plane (undefined: none configured). */
  readonly dataplane?: DataplaneConfig;
  /** The document this configuration was built from (a copy), for `GET /api/v1/config`. */
  readonly source?: unknown;
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
  const o = readObject(v, path, ['name', 'addresses', 'description', ...INTERFACE_DP_KEYS], ['name']);
  const name = readString(o['name'], key(path, 'name'));
  const dp = readDpInterfaceFields(o, path, name);
  const addresses = readList(o['addresses'], key(path, 'addresses')).map((a, i) => {
    const p = index(key(path, 'addresses'), i);
    const t = readString(a, p);
    const pfx = at(p, () => parsePrefix(t, true));
    return { address: at(p, () => parseAddress(t.slice(0, t.indexOf('/')))), prefix: pfx };
  });
  return { name, addresses, dp, path };
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
  return collect(() => buildOnce(raw));
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
      'dataplane',
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
  const dataplane = soft(() =>
    readDataplane(o['dataplane'], {
      interfaces: contexts.flatMap((c) =>
        c.interfaces.flatMap((i) =>
          i.dp === undefined
            ? []
            : [{ name: i.name, context: c.name, path: i.path, addresses: i.addresses, dp: i.dp }],
        ),
      ),
      bgpPeers: contexts.flatMap((c) => (c.speaker?.neighbors ?? []).map((n) => parseAddress(n.address))),
      bfdPeers: contexts.flatMap((c) => [
        ...c.staticRoutes.flatMap((r) => (r.bfd && r.nextHop !== undefined ? [r.nextHop] : [])),
        ...(c.speaker?.neighbors ?? []).flatMap((n) =>
          n.bfd === undefined ? [] : [parseAddress(n.address)],
        ),
      ]),
    }),
  );
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
    dataplane,
    policiesKey: JSON.stringify(o['policies'] ?? null),
    source: structuredClone(raw),
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
