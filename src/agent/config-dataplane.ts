/**
 * The data plane parts of the agent configuration: per-interface attachment fields (kind, VNI,
 * VLAN tags, zone, ...) and the top-level `dataplane` section (driver, tunnel ports, zone policy,
 * QoS policies). Produces the `DataplaneConfig` both drivers take.
 */
import { createHash } from 'node:crypto';
import { parseAddress, parsePrefix, type Prefix } from '../lib/ip.ts';
import { PolicyConfigError } from '../bgp/policy/index.ts';
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
import { each, readBool, soft } from './config-read.ts';
import { parseDscp } from '../dataplane/qos/diffserv.ts';
import type {
  DataplaneConfig,
  DpInterface,
  Endpoint,
  InterfaceAddress,
  InterfaceKind,
  PacketMatch,
  Policer,
  PortRange,
  Protocol,
  QosClass,
  QosPolicy,
  ZonePolicy,
  ZoneRule,
} from '../dataplane/types.ts';

export const INTERFACE_DP_KEYS = [
  'kind',
  'vni',
  'remotes',
  'trunk',
  'vlan',
  'outer-vlan',
  'vsid',
  'label',
  'mac',
  'mtu',
  'zone',
  'router-advertisements',
  'qos-policy',
] as const;

const KINDS = ['vxlan', 'vlan', 'qinq', 'nvgre', 'mpls-udp'] as const;
const DEFAULT_PORTS = { vxlan: 4789, nvgre: 4754, 'mpls-udp': 6635 } as const;

/** The attachment fields of one interface; undefined when it has no `kind` (no data plane). */
export type DpInterfaceFields = Omit<DpInterface, 'name' | 'context' | 'addresses'>;

/** A locally administered unicast MAC derived from the interface name (stable across restarts). */
export function derivedMac(name: string): Uint8Array {
  const h = createHash('sha256').update(`vce-mac:${name}`).digest();
  const mac = new Uint8Array(h.subarray(0, 6));
  mac[0] = (mac[0]! & 0xfc) | 0x02;
  return mac;
}

export function parseMac(s: string, path: string): Uint8Array {
  const m = /^([0-9a-fA-F]{2})([:-][0-9a-fA-F]{2}){5}$/.exec(s);
  if (m === null) throw new PolicyConfigError(path, `"${s}" is not a MAC address (aa:bb:cc:dd:ee:ff)`);
  const mac = new Uint8Array(s.split(/[:-]/).map((x) => parseInt(x, 16)));
  if ((mac[0]! & 1) !== 0) throw new PolicyConfigError(path, `${s} is a multicast address`);
  return mac;
}

function readEndpoint(v: unknown, path: string, dfltPort: number): Endpoint {
  const s = readString(v, path);
  const m = /^\[([^\]]+)\]:(\d+)$|^([^:]+):(\d+)$/.exec(s);
  const address = m === null ? s : (m[1] ?? m[3])!;
  const port = m === null ? dfltPort : Number(m[2] ?? m[4]);
  at(path, () => parseAddress(address));
  if (port < 1 || port > 65535) throw new PolicyConfigError(path, `port ${port} out of range 1..65535`);
  return { address, port };
}

export function readDpInterfaceFields(
  o: ConfigObject,
  path: string,
  name: string,
): DpInterfaceFields | undefined {
  if (o['kind'] === undefined) {
    const stray = INTERFACE_DP_KEYS.find((k) => k !== 'kind' && o[k] !== undefined);
    if (stray !== undefined)
      throw new PolicyConfigError(key(path, stray), 'only meaningful with a data plane `kind`');
    return undefined;
  }
  const kind: InterfaceKind = readEnum(o['kind'], key(path, 'kind'), KINDS);
  const need = (k: string, ok: boolean): void => {
    if (o[k] === undefined && ok) throw new PolicyConfigError(path, `a ${kind} interface needs \`${k}\``);
    if (o[k] !== undefined && !ok)
      throw new PolicyConfigError(key(path, k), `not used by a ${kind} interface`);
  };
  need('vni', kind === 'vxlan');
  need('remotes', kind === 'vxlan' || kind === 'nvgre' || kind === 'mpls-udp');
  need('trunk', kind === 'vlan' || kind === 'qinq');
  need('vlan', kind === 'vlan' || kind === 'qinq');
  need('outer-vlan', kind === 'qinq');
  need('vsid', kind === 'nvgre');
  if (o['label'] !== undefined && kind !== 'mpls-udp')
    throw new PolicyConfigError(key(path, 'label'), `not used by a ${kind} interface`);
  const port = kind === 'vxlan' || kind === 'nvgre' || kind === 'mpls-udp' ? DEFAULT_PORTS[kind] : 0;
  const remotes =
    o['remotes'] === undefined
      ? undefined
      : readList(o['remotes'], key(path, 'remotes')).map((r, i) =>
          readEndpoint(r, index(key(path, 'remotes'), i), port),
        );
  if (remotes !== undefined && remotes.length === 0)
    throw new PolicyConfigError(key(path, 'remotes'), 'at least one remote endpoint');
  const tunnelMtu = kind === 'vlan' || kind === 'qinq' ? 1450 : kind === 'mpls-udp' ? 1468 : 1450;
  return {
    kind,
    mac:
      o['mac'] === undefined
        ? derivedMac(name)
        : parseMac(readString(o['mac'], key(path, 'mac')), key(path, 'mac')),
    mtu: o['mtu'] === undefined ? tunnelMtu : readInt(o['mtu'], key(path, 'mtu'), 576, 9000),
    zone: o['zone'] === undefined ? undefined : readString(o['zone'], key(path, 'zone')),
    vni: o['vni'] === undefined ? undefined : readInt(o['vni'], key(path, 'vni'), 1, 0xffffff),
    remotes,
    trunk: o['trunk'] === undefined ? undefined : readString(o['trunk'], key(path, 'trunk')),
    vlan: o['vlan'] === undefined ? undefined : readInt(o['vlan'], key(path, 'vlan'), 1, 4094),
    outerVlan:
      o['outer-vlan'] === undefined ? undefined : readInt(o['outer-vlan'], key(path, 'outer-vlan'), 1, 4094),
    vsid: o['vsid'] === undefined ? undefined : readInt(o['vsid'], key(path, 'vsid'), 1, 0xfffffe),
    label: o['label'] === undefined ? undefined : readInt(o['label'], key(path, 'label'), 0, 1048575),
    routerAdvertisements: readBool(o['router-advertisements'], key(path, 'router-advertisements'), true),
    qosPolicy:
      o['qos-policy'] === undefined ? undefined : readString(o['qos-policy'], key(path, 'qos-policy')),
  };
}

// ------------------------------------------------------------------ matches, zones, QoS

const PROTOCOLS = ['tcp', 'udp', 'icmp', 'icmpv6'] as const;

function readPorts(v: unknown, path: string): PortRange[] {
  return readList(v, path).map((x, i) => {
    const p = index(path, i);
    if (typeof x === 'number') {
      const n = readInt(x, p, 0, 65535);
      return { from: n, to: n };
    }
    const s = readString(x, p);
    const m = /^(\d+)-(\d+)$/.exec(s);
    if (m === null) throw new PolicyConfigError(p, `"${s}" is not a port or a range (8000-8080)`);
    const r = { from: Number(m[1]), to: Number(m[2]) };
    if (r.to > 65535 || r.from > r.to) throw new PolicyConfigError(p, `bad port range ${s}`);
    return r;
  });
}

function readPrefixes(v: unknown, path: string): Prefix[] {
  return readList(v, path).map((x, i) => {
    const s = readString(x, index(path, i));
    return at(index(path, i), () => parsePrefix(s.includes('/') ? s : `${s}/${s.includes(':') ? 128 : 32}`));
  });
}

const MATCH_KEYS = [
  'family',
  'protocol',
  'source',
  'destination',
  'source-ports',
  'destination-ports',
  'dscp',
];

/** `{family?, protocol?, source?, destination?, source-ports?, destination-ports?, dscp?}` */
export function readMatch(o: ConfigObject, path: string): PacketMatch {
  let protocol: Protocol | undefined;
  if (o['protocol'] !== undefined) {
    protocol =
      typeof o['protocol'] === 'number'
        ? readInt(o['protocol'], key(path, 'protocol'), 0, 255)
        : readEnum(o['protocol'], key(path, 'protocol'), PROTOCOLS);
  }
  const ports = o['source-ports'] !== undefined || o['destination-ports'] !== undefined;
  if (ports && protocol !== 'tcp' && protocol !== 'udp')
    throw new PolicyConfigError(path, 'port matches need `protocol: tcp` or `protocol: udp`');
  const family =
    o['family'] === undefined
      ? undefined
      : (Number(
          readEnum(typeof o['family'] === 'number' ? String(o['family']) : o['family'], key(path, 'family'), [
            '4',
            '6',
          ] as const),
        ) as 4 | 6);
  const source = o['source'] === undefined ? undefined : readPrefixes(o['source'], key(path, 'source'));
  const destination =
    o['destination'] === undefined ? undefined : readPrefixes(o['destination'], key(path, 'destination'));
  for (const [k, list] of [
    ['source', source],
    ['destination', destination],
  ] as const) {
    if (family !== undefined && list?.some((p) => p.addr.length !== (family === 4 ? 4 : 16)))
      throw new PolicyConfigError(key(path, k), `a prefix is not of family ${family}`);
  }
  return {
    family,
    protocol,
    source,
    destination,
    sourcePorts:
      o['source-ports'] === undefined ? undefined : readPorts(o['source-ports'], key(path, 'source-ports')),
    destinationPorts:
      o['destination-ports'] === undefined
        ? undefined
        : readPorts(o['destination-ports'], key(path, 'destination-ports')),
    dscp:
      o['dscp'] === undefined
        ? undefined
        : readList(o['dscp'], key(path, 'dscp')).map((x, i) => readDscpValue(x, index(key(path, 'dscp'), i))),
  };
}

function readDscpValue(v: unknown, path: string): number {
  const s = typeof v === 'number' ? String(v) : readString(v, path);
  const n = parseDscp(s);
  if (n === undefined)
    throw new PolicyConfigError(path, `"${s}" is not a DSCP (0-63, ef, af11..af43, cs0..cs7)`);
  return n;
}

function readZoneRule(v: unknown, path: string, zones: ReadonlySet<string>): ZoneRule {
  const o = readObject(v, path, ['name', 'from', 'to', 'action', ...MATCH_KEYS], ['from', 'to', 'action']);
  const zone = (k: 'from' | 'to'): string => {
    const z = readString(o[k], key(path, k));
    if (z !== '*' && !zones.has(z))
      throw new PolicyConfigError(
        key(path, k),
        `no interface is in zone "${z}" (zones: ${[...zones].join(', ') || 'none'})`,
      );
    return z;
  };
  return {
    name: o['name'] === undefined ? undefined : readString(o['name'], key(path, 'name')),
    from: zone('from'),
    to: zone('to'),
    action: readEnum(o['action'], key(path, 'action'), ['allow', 'deny'] as const),
    match: readMatch(o, path),
  };
}

function readPolicer(v: unknown, path: string): Policer {
  const o = readObject(v, path, ['rate', 'burst', 'exceed'], ['rate']);
  const rate = readRate(o['rate'], key(path, 'rate'));
  const burst =
    o['burst'] === undefined
      ? Math.max(1500, Math.round(rate / 8 / 50))
      : readInt(o['burst'], key(path, 'burst'), 64, 1 << 30);
  let exceed: Policer['exceed'] = 'drop';
  if (o['exceed'] !== undefined && o['exceed'] !== 'drop') {
    const e = readObject(o['exceed'], key(path, 'exceed'), ['remark'], ['remark']);
    exceed = { remark: readDscpValue(e['remark'], key(path, 'exceed.remark')) };
  }
  return { rateBitsPerSecond: rate, burstBytes: burst, exceed };
}

/** `10mbit`, `1.5gbit`, `64kbit` or a number of bits per second. */
function readRate(v: unknown, path: string): number {
  if (typeof v === 'number') return readInt(v, path, 1000, 400e9);
  const s = readString(v, path);
  const m = /^(\d+(?:\.\d+)?)\s*(k|m|g)?bit$/i.exec(s);
  if (m === null) throw new PolicyConfigError(path, `"${s}" is not a rate (10mbit, 64kbit, 1gbit)`);
  const mult = { '': 1, k: 1e3, m: 1e6, g: 1e9 }[(m[2] ?? '').toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Math.round(Number(m[1]) * mult);
}

function readQosPolicy(v: unknown, path: string): QosPolicy {
  const o = readObject(v, path, ['name', 'classes'], ['name', 'classes']);
  const classes = readList(o['classes'], key(path, 'classes')).map((c, i): QosClass => {
    const p = index(key(path, 'classes'), i);
    const co = readObject(c, p, ['name', 'match', 'set-dscp', 'police', 'mpls-tc'], ['name']);
    const name = readString(co['name'], key(p, 'name'));
    if (name === 'default')
      throw new PolicyConfigError(key(p, 'name'), '"default" is the implicit class of unmatched packets');
    return {
      name,
      match:
        co['match'] === undefined
          ? {}
          : readMatch(readObject(co['match'], key(p, 'match'), MATCH_KEYS), key(p, 'match')),
      setDscp: co['set-dscp'] === undefined ? undefined : readDscpValue(co['set-dscp'], key(p, 'set-dscp')),
      police: co['police'] === undefined ? undefined : readPolicer(co['police'], key(p, 'police')),
      mplsTc: co['mpls-tc'] === undefined ? undefined : readInt(co['mpls-tc'], key(p, 'mpls-tc'), 0, 7),
    };
  });
  return { name: readString(o['name'], key(path, 'name')), classes };
}

export interface DataplaneInputs {
  /** Every interface with data plane fields, with its context. */
  readonly interfaces: readonly {
    readonly name: string;
    readonly context: string;
    readonly path: string;
    readonly addresses: readonly InterfaceAddress[];
    readonly dp: DpInterfaceFields;
  }[];
  /** BGP neighbour and BFD peer addresses of every context (allowed to reach the vCE itself). */
  readonly bgpPeers: readonly Uint8Array[];
  readonly bfdPeers: readonly Uint8Array[];
}

/** The `dataplane` section; undefined (and no interface has a kind) means no data plane. */
export function readDataplane(v: unknown, inputs: DataplaneInputs): DataplaneConfig | undefined {
  if (v === undefined && inputs.interfaces.length === 0) return undefined;
  const o = readObject(v ?? {}, 'dataplane', [
    'driver',
    'listen',
    'vxlan-port',
    'gre-port',
    'mpls-port',
    'tunnel-qos',
    'neighbor',
    'icmp-rate',
    'zones',
    'qos-policies',
    'linux',
  ]);
  const P = 'dataplane';
  const byName = new Map(inputs.interfaces.map((i) => [i.name, i]));
  if (byName.size !== inputs.interfaces.length) {
    const dup = inputs.interfaces.find(
      (x, i) => inputs.interfaces.findIndex((y) => y.name === x.name) !== i,
    )!;
    throw new PolicyConfigError(dup.path, `interface name "${dup.name}" is used twice`);
  }
  const qos = each(readList(o['qos-policies'], key(P, 'qos-policies')), (q, i) =>
    readQosPolicy(q, index(key(P, 'qos-policies'), i)),
  );
  const vnis = new Map<number, string>();
  const tags = new Map<string, string>();
  for (const i of inputs.interfaces) {
    soft(() => {
      const d = i.dp;
      if (d.qosPolicy !== undefined && !qos.some((q) => q.name === d.qosPolicy))
        throw new PolicyConfigError(key(i.path, 'qos-policy'), `no QoS policy named "${d.qosPolicy}"`);
      if (d.vni !== undefined) {
        if (vnis.has(d.vni))
          throw new PolicyConfigError(
            key(i.path, 'vni'),
            `VNI ${d.vni} is already used by ${vnis.get(d.vni)}`,
          );
        vnis.set(d.vni, i.name);
      }
      if (d.trunk !== undefined) {
        const t = byName.get(d.trunk);
        if (t === undefined || t.dp.kind !== 'vxlan')
          throw new PolicyConfigError(key(i.path, 'trunk'), `"${d.trunk}" is not a vxlan interface`);
        if (t.addresses.length > 0)
          throw new PolicyConfigError(
            key(i.path, 'trunk'),
            `trunk "${d.trunk}" has addresses: a trunk carries tagged frames only`,
          );
        const k = `${d.trunk}/${d.outerVlan ?? 0}/${d.vlan}`;
        if (tags.has(k))
          throw new PolicyConfigError(key(i.path, 'vlan'), `this tag is already used by ${tags.get(k)}`);
        tags.set(k, i.name);
      }
    });
  }
  const zoneSet = new Set(inputs.interfaces.flatMap((i) => (i.dp.zone === undefined ? [] : [i.dp.zone])));
  const zones = readZones(o['zones'], key(P, 'zones'), zoneSet, inputs);
  const ports = (k: string, d: number): number =>
    o[k] === undefined ? d : readInt(o[k], key(P, k), 1, 65535);
  let tunnelQos: DataplaneConfig['tunnelQos'] = { mode: 'uniform', outerDscp: 0 };
  if (o['tunnel-qos'] !== undefined) {
    const t = readObject(o['tunnel-qos'], key(P, 'tunnel-qos'), ['mode', 'outer-dscp']);
    const mode =
      t['mode'] === undefined
        ? 'uniform'
        : readEnum(t['mode'], key(P, 'tunnel-qos.mode'), ['pipe', 'uniform'] as const);
    tunnelQos = {
      mode,
      outerDscp:
        t['outer-dscp'] === undefined ? 0 : readDscpValue(t['outer-dscp'], key(P, 'tunnel-qos.outer-dscp')),
    };
  }
  let neighbor = { reachableSeconds: 300, queuePerNextHop: 16 };
  if (o['neighbor'] !== undefined) {
    const n = readObject(o['neighbor'], key(P, 'neighbor'), ['reachable-seconds', 'queue']);
    neighbor = {
      reachableSeconds:
        n['reachable-seconds'] === undefined
          ? 300
          : readInt(n['reachable-seconds'], key(P, 'neighbor.reachable-seconds'), 5, 86400),
      queuePerNextHop: n['queue'] === undefined ? 16 : readInt(n['queue'], key(P, 'neighbor.queue'), 1, 1024),
    };
  }
  const listenAddress = o['listen'] === undefined ? '0.0.0.0' : readString(o['listen'], key(P, 'listen'));
  at(key(P, 'listen'), () => parseAddress(listenAddress));
  let linux: DataplaneConfig['linux'];
  if (o['linux'] !== undefined) {
    const l = readObject(o['linux'], key(P, 'linux'), ['vrf-mode', 'netns']);
    linux = {
      vrfMode:
        l['vrf-mode'] === undefined
          ? 'policy-routing'
          : readEnum(l['vrf-mode'], key(P, 'linux.vrf-mode'), ['vrf-device', 'policy-routing'] as const),
      netns: l['netns'] === undefined ? undefined : readString(l['netns'], key(P, 'linux.netns')),
    };
  }
  return {
    linux,
    driver:
      o['driver'] === undefined
        ? 'userspace'
        : readEnum(o['driver'], key(P, 'driver'), ['userspace', 'linux', 'none'] as const),
    listenAddress,
    vxlanPort: ports('vxlan-port', 4789),
    greUdpPort: ports('gre-port', 4754),
    mplsUdpPort: ports('mpls-port', 6635),
    interfaces: inputs.interfaces.map((i) => ({
      ...i.dp,
      name: i.name,
      context: i.context,
      addresses: i.addresses,
    })),
    zones,
    qos,
    tunnelQos,
    neighbor,
    icmpRatePerSecond:
      o['icmp-rate'] === undefined ? 100 : readInt(o['icmp-rate'], key(P, 'icmp-rate'), 0, 100000),
  };
}

function readZones(
  v: unknown,
  path: string,
  zoneSet: ReadonlySet<string>,
  inputs: DataplaneInputs,
): ZonePolicy {
  const o = readObject(v ?? {}, path, ['default-action', 'intra-zone', 'rules', 'flows', 'self']);
  const rules = each(readList(o['rules'], key(path, 'rules')), (r, i) =>
    readZoneRule(r, index(key(path, 'rules'), i), zoneSet),
  );
  const f = readObject(o['flows'] ?? {}, key(path, 'flows'), [
    'max',
    'tcp-established',
    'tcp-transitory',
    'udp',
    'icmp',
  ]);
  const secs = (k: string, d: number): number =>
    f[k] === undefined ? d : readInt(f[k], key(path, `flows.${k}`), 1, 86400);
  const s = readObject(o['self'] ?? {}, key(path, 'self'), ['icmp', 'allow']);
  return {
    zones: [...zoneSet].sort(),
    defaultAction:
      o['default-action'] === undefined
        ? 'deny'
        : readEnum(o['default-action'], key(path, 'default-action'), ['allow', 'deny'] as const),
    intraZone:
      o['intra-zone'] === undefined
        ? 'allow'
        : readEnum(o['intra-zone'], key(path, 'intra-zone'), ['allow', 'deny'] as const),
    rules,
    flows: {
      max: f['max'] === undefined ? 65536 : readInt(f['max'], key(path, 'flows.max'), 16, 16_000_000),
      tcpEstablished: secs('tcp-established', 7440),
      tcpTransitory: secs('tcp-transitory', 240),
      udp: secs('udp', 180),
      icmp: secs('icmp', 30),
    },
    self: {
      icmp: readBool(s['icmp'], key(path, 'self.icmp'), true),
      bgpPeers: inputs.bgpPeers,
      bfdPeers: inputs.bfdPeers,
      allow: readList(s['allow'], key(path, 'self.allow')).map((m, i) =>
        readMatch(
          readObject(m, index(key(path, 'self.allow'), i), MATCH_KEYS),
          index(key(path, 'self.allow'), i),
        ),
      ),
    },
  };
}
