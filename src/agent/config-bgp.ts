/**
 * The `bgp` section of a routing context: the speaker, its neighbours (timers, policies,
 * max-prefix, ADD-PATH, graceful restart, BFD, TCP-MD5, GTSM), dynamic-neighbour ranges, networks.
 */
import { parseAddress, parsePrefix, ipv4ToNumber, type Prefix } from '../lib/ip.ts';
import { tcpAoAvailable } from '../lib/sockopt.ts';
import { AFI_SAFIS, type AfiSafiName } from '../bgp/wire/constants.ts';
import type { AddPathMode } from '../bgp/wire/negotiate.ts';
import { PolicyConfigError, type PolicyBook } from '../bgp/policy/index.ts';
import {
  at,
  index,
  key,
  readEnum,
  readInt,
  readList,
  readObject,
  readString,
} from '../bgp/policy/config-reader.ts';
import type { BfdClientConfig, MaxPrefixConfig, NeighborConfig } from '../bgp/peer.ts';
import type { DynamicNeighborRange, SpeakerConfig } from '../bgp/speaker.ts';
import { each, readAddressText, readBool, readIPv4 } from './config-read.ts';

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
export function readBgp(v: unknown, P: string, book: PolicyBook, routerId: number): SpeakerConfig {
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
