/**
 * The agent's configuration file (YAML or JSON): parsed, validated and turned into the speaker's
 * configuration. Every problem is a ConfigError naming the field path and what is wrong; the
 * program exits 2 with that message. Unknown keys are errors (a typo must not be silently ignored).
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { parseAddress, parsePrefix, ipv4ToNumber, type Prefix } from '../lib/ip.ts';
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
  type ConfigObject,
} from '../bgp/policy/config-reader.ts';
import type { MaxPrefixConfig, NeighborConfig } from '../bgp/peer.ts';
import type { DynamicNeighborRange, SpeakerConfig } from '../bgp/speaker.ts';

/** A configuration problem: `path` names the field. */
export { PolicyConfigError as ConfigError };

export interface AgentConfig {
  readonly routerId: number;
  readonly routerIdText: string;
  readonly api?: { readonly host: string; readonly port: number };
  readonly logLevel: string;
  readonly speaker: SpeakerConfig;
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
] as const;

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
  };
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

/** Validates a parsed configuration tree. */
export function buildAgentConfig(raw: unknown): AgentConfig {
  const o: ConfigObject = readObject(
    raw,
    'config',
    ['router-id', 'api', 'bgp', 'policies', 'log-level'],
    ['router-id'],
  );
  const rid = readIPv4(o['router-id'], 'router-id');
  const routerId = ipv4ToNumber(rid);
  if (routerId === 0) throw new PolicyConfigError('router-id', 'must not be 0.0.0.0 (RFC 6286 §2.2)');
  let api: AgentConfig['api'];
  if (o['api'] !== undefined) {
    const a = readObject(o['api'], 'api', ['listen'], ['listen']);
    api = readHostPort(a['listen'], 'api.listen');
  }
  const book = compilePolicies(o['policies'], 'policies');
  const b = readObject(
    o['bgp'] ?? {},
    'bgp',
    ['asn', 'listen', 'neighbors', 'dynamic-neighbors', 'networks', 'cluster-id', 'decision'],
    ['asn'],
  );
  const asn = readInt(b['asn'], 'bgp.asn', 1, 4294967295);
  let listen: SpeakerConfig['listen'];
  if (b['listen'] === false) listen = false;
  else if (b['listen'] !== undefined) {
    const l = readObject(b['listen'], 'bgp.listen', ['address', 'port']);
    listen = {
      address: l['address'] === undefined ? '0.0.0.0' : readAddressText(l['address'], 'bgp.listen.address'),
      port: l['port'] === undefined ? 179 : readInt(l['port'], 'bgp.listen.port', 0, 65535),
    };
  } else listen = { address: '0.0.0.0', port: 179 };
  const neighbors = readList(b['neighbors'], 'bgp.neighbors').map((n, i) =>
    readNeighbor(n, index('bgp.neighbors', i), book),
  );
  const seen = new Set<string>();
  neighbors.forEach((n, i) => {
    const k = n.address.toLowerCase();
    if (seen.has(k))
      throw new PolicyConfigError(
        index('bgp.neighbors', i) + '.address',
        `neighbor ${n.address} is configured twice`,
      );
    seen.add(k);
  });
  const dynamicNeighbors = readList(b['dynamic-neighbors'], 'bgp.dynamic-neighbors').map((d, i) =>
    readDynamicNeighbors(d, index('bgp.dynamic-neighbors', i), book),
  );
  const networks: Prefix[] = readList(b['networks'], 'bgp.networks').map((n, i) => {
    const p = index('bgp.networks', i);
    const s = readString(n, p);
    return at(p, () => parsePrefix(s));
  });
  let decision: SpeakerConfig['decision'];
  if (b['decision'] !== undefined) {
    const d = readObject(b['decision'], 'bgp.decision', ['always-compare-med', 'med-missing-as-worst']);
    decision = {
      alwaysCompareMed: readBool(d['always-compare-med'], 'bgp.decision.always-compare-med', false),
      medMissingAsWorst: readBool(d['med-missing-as-worst'], 'bgp.decision.med-missing-as-worst', false),
      ignoreAsPathLength: false,
    };
  }
  const clusterId =
    b['cluster-id'] === undefined ? undefined : ipv4ToNumber(readIPv4(b['cluster-id'], 'bgp.cluster-id'));
  const logLevel =
    o['log-level'] === undefined
      ? 'info'
      : readEnum(o['log-level'], 'log-level', ['debug', 'info', 'warn', 'error', 'silent'] as const);
  return {
    routerId,
    routerIdText: readString(o['router-id'], 'router-id'),
    api,
    logLevel,
    speaker: {
      asn,
      routerId,
      clusterId,
      listen,
      neighbors,
      dynamicNeighbors,
      networks,
      decision,
      policies: book,
    },
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
