/**
 * Golden fixture of the Linux renderer: one tenant with a three-tier web / app / db layout in
 * context `tenant-a` (a VXLAN uplink to the PE, a VXLAN trunk carrying an 802.1Q web attachment
 * and an 802.1ad/802.1Q app attachment, an NVGRE db attachment with a name longer than IFNAMSIZ,
 * an MPLS-in-UDP attachment) and a second context `tenant-b` whose subnets and even one address
 * overlap tenant-a's. Zone rules of every shape, the self policy and two QoS policies with marking,
 * policing and re-marking.
 */
import { parseAddress, parsePrefix } from '../../../src/lib/ip.ts';
import type {
  DataplaneConfig,
  DpInterface,
  DpRoute,
  InterfaceAddress,
} from '../../../src/dataplane/types.ts';

const mac = (last: number): Uint8Array => Uint8Array.of(0x02, 0x00, 0x5e, 0x00, 0x01, last);

function addr(cidr: string): InterfaceAddress {
  return { address: parseAddress(cidr.split('/')[0]!), prefix: parsePrefix(cidr, true) };
}

const base = { routerAdvertisements: false } as const;

export const THREE_TIER_INTERFACES: DpInterface[] = [
  {
    ...base,
    name: 'uplink',
    context: 'tenant-a',
    zone: 'wan',
    kind: 'vxlan',
    mac: mac(1),
    mtu: 1450,
    vni: 5000,
    remotes: [
      { address: '198.51.100.1', port: 4789 },
      { address: '198.51.100.2', port: 4790 },
    ],
    addresses: [addr('10.255.0.2/30'), addr('2001:db8:ff::2/64')],
    qosPolicy: 'wan-out',
  },
  {
    ...base,
    name: 'trunk0',
    context: 'tenant-a',
    kind: 'vxlan',
    mac: mac(2),
    mtu: 1450,
    vni: 6000,
    remotes: [{ address: '203.0.113.10', port: 4789 }],
    addresses: [],
  },
  {
    name: 'web',
    context: 'tenant-a',
    zone: 'web',
    kind: 'vlan',
    mac: mac(3),
    mtu: 1450,
    trunk: 'trunk0',
    vlan: 10,
    addresses: [addr('10.0.1.1/24'), addr('2001:db8:1::1/64')],
    routerAdvertisements: true,
    qosPolicy: 'lan-out',
  },
  {
    ...base,
    name: 'app',
    context: 'tenant-a',
    zone: 'app',
    kind: 'qinq',
    mac: mac(4),
    mtu: 1400,
    trunk: 'trunk0',
    outerVlan: 100,
    vlan: 20,
    addresses: [addr('10.0.2.1/24')],
  },
  {
    ...base,
    name: 'db-nvgre-attachment',
    context: 'tenant-a',
    zone: 'db',
    kind: 'nvgre',
    mac: mac(5),
    mtu: 1400,
    vsid: 7001,
    remotes: [{ address: '203.0.113.20', port: 4754 }],
    addresses: [addr('10.0.3.1/24')],
  },
  {
    ...base,
    name: 'pe-mpls',
    context: 'tenant-a',
    zone: 'wan',
    kind: 'mpls-udp',
    mac: mac(6),
    mtu: 1400,
    remotes: [{ address: '198.51.100.9', port: 6635 }],
    addresses: [addr('10.255.1.2/30')],
  },
  {
    ...base,
    name: 'b-web',
    context: 'tenant-b',
    zone: 'web',
    kind: 'vxlan',
    mac: mac(7),
    mtu: 1450,
    vni: 7000,
    remotes: [{ address: '203.0.113.30', port: 4789 }],
    addresses: [addr('10.0.1.1/24')],
  },
  {
    ...base,
    name: 'b-db',
    context: 'tenant-b',
    zone: 'db',
    kind: 'vxlan',
    mac: mac(8),
    mtu: 1450,
    vni: 7001,
    remotes: [{ address: '203.0.113.31', port: 4789 }],
    addresses: [addr('10.0.3.254/24')],
  },
];

const P = (s: string) => parsePrefix(s);

export const THREE_TIER_CONFIG: DataplaneConfig = {
  driver: 'linux',
  listenAddress: '192.0.2.1',
  vxlanPort: 4789,
  greUdpPort: 4754,
  mplsUdpPort: 6635,
  interfaces: THREE_TIER_INTERFACES,
  zones: {
    zones: ['web', 'app', 'db', 'wan'],
    defaultAction: 'deny',
    intraZone: 'allow',
    rules: [
      {
        name: 'web to app',
        from: 'web',
        to: 'app',
        action: 'allow',
        match: { protocol: 'tcp', destinationPorts: [{ from: 8080, to: 8081 }] },
      },
      {
        name: 'app to db',
        from: 'app',
        to: 'db',
        action: 'allow',
        match: { protocol: 'tcp', source: [P('10.0.2.0/24')], destinationPorts: [{ from: 5432, to: 5432 }] },
      },
      {
        name: 'wan to web',
        from: 'wan',
        to: 'web',
        action: 'allow',
        match: {
          protocol: 'tcp',
          destinationPorts: [
            { from: 443, to: 443 },
            { from: 80, to: 80 },
          ],
        },
      },
      { name: 'ping anywhere', from: '*', to: '*', action: 'allow', match: { protocol: 'icmp' } },
      { name: 'db stays in', from: 'db', to: '*', action: 'deny', match: {} },
      { name: 'voice out', from: 'web', to: 'wan', action: 'allow', match: { dscp: [46, 34] } },
      {
        name: 'app out',
        from: 'app',
        to: 'wan',
        action: 'allow',
        match: {
          destination: [P('10.0.0.0/8'), P('10.1.0.0/16'), P('2001:db8::/32')],
          sourcePorts: [{ from: 1024, to: 65535 }],
        },
      },
      {
        name: 'never',
        from: 'web',
        to: 'db',
        action: 'allow',
        match: { protocol: 'icmp', destinationPorts: [{ from: 1, to: 1 }] },
      },
    ],
    flows: { max: 100000, tcpEstablished: 7440, tcpTransitory: 120, udp: 60, icmp: 30 },
    self: {
      icmp: true,
      bgpPeers: [parseAddress('10.255.0.1'), parseAddress('2001:db8:ff::1')],
      bfdPeers: [parseAddress('10.255.0.1')],
      allow: [{ protocol: 'tcp', source: [P('10.0.1.0/24')], destinationPorts: [{ from: 443, to: 443 }] }],
    },
  },
  qos: [
    {
      name: 'wan-out',
      classes: [
        {
          name: 'voice',
          match: { protocol: 'udp', destinationPorts: [{ from: 16384, to: 32767 }], dscp: [46] },
          setDscp: 46,
          police: { rateBitsPerSecond: 2_000_000, burstBytes: 30_000, exceed: 'drop' },
        },
        {
          name: 'business',
          match: { source: [P('10.0.2.0/24'), P('2001:db8:2::/64')] },
          setDscp: 26,
          police: { rateBitsPerSecond: 10_000_000, burstBytes: 100_000, exceed: { remark: 10 } },
        },
        { name: 'scavenger', match: { dscp: [8] } },
      ],
    },
    {
      name: 'lan-out',
      classes: [
        { name: 'ssh', match: { protocol: 'tcp', sourcePorts: [{ from: 22, to: 22 }] }, setDscp: 16 },
      ],
    },
  ],
  tunnelQos: { mode: 'pipe', outerDscp: 10 },
  neighbor: { reachableSeconds: 30, queuePerNextHop: 3 },
  icmpRatePerSecond: 100,
};

export const THREE_TIER_ROUTES: DpRoute[] = [
  {
    context: 'tenant-a',
    prefix: P('0.0.0.0/0'),
    action: 'forward',
    nextHop: parseAddress('10.255.0.1'),
    interface: 'uplink',
  },
  {
    context: 'tenant-a',
    prefix: P('::/0'),
    action: 'forward',
    nextHop: parseAddress('2001:db8:ff::1'),
    interface: 'uplink',
  },
  { context: 'tenant-a', prefix: P('192.168.0.0/16'), action: 'forward', interface: 'pe-mpls' },
  { context: 'tenant-a', prefix: P('2001:db8:100::/48'), action: 'forward', interface: 'pe-mpls' },
  { context: 'tenant-a', prefix: P('10.99.0.0/16'), action: 'blackhole' },
  { context: 'tenant-a', prefix: P('10.98.0.0/16'), action: 'reject' },
  { context: 'tenant-b', prefix: P('0.0.0.0/0'), action: 'forward', nextHop: parseAddress('10.0.1.254') },
  { context: 'tenant-b', prefix: P('10.0.2.0/24'), action: 'reject' },
];
