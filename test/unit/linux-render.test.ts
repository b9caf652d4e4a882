/**
 * The Linux renderer, pure parts: golden files of the rendering (`test/golden/linux/`, regenerate
 * with `UPDATE_GOLDEN=1 npx vitest run test/unit/linux-render.test.ts`), the plan (add / change /
 * remove / no-op against a simulated kernel), the parsers of iproute2's JSON (fed with output
 * captured from iproute2 6.1 on Linux 6.18) and the shell's batching.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAddress, parsePrefix } from '../../src/lib/ip.ts';
import type { DataplaneConfig, DpRoute } from '../../src/dataplane/types.ts';
import {
  emptyLinuxDesired,
  renderLinux,
  shortIfName,
  validIfName,
  LinuxRenderError,
  type LinkSpec,
  type LinuxDesired,
  type VrfMode,
} from '../../src/dataplane/drivers/linux-render.ts';
import { matchVariants } from '../../src/dataplane/drivers/linux-nft.ts';
import {
  EMPTY_CURRENT,
  nftHashFromListing,
  parseAddresses,
  parseFdb,
  parseLinks,
  parseRoutes,
  parseRules,
  planIsEmpty,
  planLinux,
  planLinuxFull,
  type CurrentLink,
  type LinuxCurrent,
} from '../../src/dataplane/drivers/linux-plan.ts';
import { LinuxPlanError } from '../../src/dataplane/drivers/linux-errors.ts';
import { applyLinux, batchesOf, type Exec } from '../../src/dataplane/drivers/linux-apply.ts';
import { THREE_TIER_CONFIG, THREE_TIER_ROUTES } from '../golden/linux/three-tier.ts';

const GOLDEN = new URL('../golden/linux/', import.meta.url);
const UPDATE = process.env['UPDATE_GOLDEN'] === '1';
const MODES: readonly VrfMode[] = ['policy-routing', 'vrf-device'];

function golden(name: string, actual: string): void {
  const file = new URL(name, GOLDEN);
  if (UPDATE) {
    writeFileSync(file, actual);
    return;
  }
  if (!existsSync(file)) throw new Error(`golden file ${name} missing: run with UPDATE_GOLDEN=1`);
  expect(actual, `${name} differs from the golden file (UPDATE_GOLDEN=1 regenerates it)`).toBe(
    readFileSync(file, 'utf8'),
  );
}

const render = (
  mode: VrfMode,
  cfg: DataplaneConfig = THREE_TIER_CONFIG,
  routes: readonly DpRoute[] = THREE_TIER_ROUTES,
): LinuxDesired => renderLinux(cfg, routes, { vrfMode: mode });

/** What `ip -j` would report after a perfect apply of `d` (plus the kernel's own extras). */
function kernelInfo(l: LinkSpec): Record<string, unknown> {
  const id = l.identity;
  switch (l.kind) {
    case 'vxlan': {
      const tos = Number(id['tos']);
      return {
        id: id['id'],
        port: id['port'],
        ...(id['local'] !== '' ? { local: id['local'] } : {}),
        learning: false,
        ...(tos !== 0 ? { tos: `0x${tos.toString(16)}` } : {}),
        ttl: 0,
      };
    }
    case 'gretap':
    case 'ip6gretap':
      return { remote: id['remote'], local: id['local'], ikey: id['ikey'], okey: id['ikey'], pmtudisc: true };
    default:
      return { ...id };
  }
}

function simulatedKernel(d: LinuxDesired): LinuxCurrent {
  const links: CurrentLink[] = d.links.map((l) => ({
    name: l.name,
    kind: l.kind,
    alias: l.alias,
    ...(l.parent !== undefined ? { parent: l.parent } : {}),
    ...(l.master !== undefined ? { master: l.master } : {}),
    mac: l.mac ?? '6e:44:5f:ee:1f:40',
    mtu: l.mtu ?? 65575,
    up: true,
    info: kernelInfo(l),
  }));
  links.push({ name: 'eth0', up: true, mtu: 1500, mac: '52:54:00:12:34:56', info: {} });
  return {
    links,
    addresses: [
      ...d.addresses.map((a) => ({ ...a, scope: 'global' })),
      ...d.links.map((l) => ({ dev: l.name, address: 'fe80::1/64', family: 6 as const, scope: 'link' })),
      { dev: 'eth0', address: '192.168.1.5/24', family: 4, scope: 'global' },
    ],
    routes: [
      ...d.routes.map((r) => ({ ...r })),
      { table: 254, family: 4, dst: '0.0.0.0/0', type: 'unicast', via: '192.168.1.1', dev: 'eth0' },
      { table: 5, family: 4, dst: '10.0.0.0/8', type: 'unicast', dev: 'eth0' },
    ],
    rules: [
      ...d.rules,
      { family: 4, priority: 100, table: 5, iif: 'eth0' },
      { family: 4, priority: 32766, table: 254 },
    ],
    fdb: [...d.fdb],
    fou: [...d.fou],
    mplsRoutes: [...d.mplsRoutes],
    sysctls: { ...d.sysctls },
    nftHash: d.nftHash,
  };
}

function withInterface(name: string, patch: Record<string, unknown>): DataplaneConfig {
  return {
    ...THREE_TIER_CONFIG,
    interfaces: THREE_TIER_CONFIG.interfaces.map((i) => (i.name === name ? { ...i, ...patch } : i)),
  };
}

describe('renderLinux golden files (three-tier tenant, two contexts with overlapping subnets)', () => {
  for (const mode of MODES) {
    it(`${mode}: ip batch, bridge batch, nft table, names and notes`, () => {
      const d = render(mode);
      const p = planLinuxFull(EMPTY_CURRENT, d);
      golden(`three-tier.${mode}.ip`, p.ip.join('\n') + '\n');
      golden(`three-tier.${mode}.bridge`, p.bridge.join('\n') + '\n');
      golden(`three-tier.${mode}.nft`, d.nft);
      const meta = {
        names: d.names,
        tables: d.tables,
        ownership: d.ownership,
        sysctls: d.sysctls,
        tc: d.tc,
        notes: d.notes,
      };
      golden(`three-tier.${mode}.json`, JSON.stringify(meta, null, 2) + '\n');
    });
  }

  it('is deterministic and does not depend on the mode for the nft table except the input-interface key', () => {
    expect(render('policy-routing').nft).toBe(render('policy-routing').nft);
    const a = render('policy-routing').nft.replace(/comment "vce:[0-9a-f]+"/, '');
    const b = render('vrf-device').nft.replace(/comment "vce:[0-9a-f]+"/, '');
    expect(a).not.toBe(b);
    expect(b).toContain('meta sdifname @vce_if jump zones');
    expect(a).toContain('iifname @vce_if jump zones');
  });

  it('numbers tables by sorted context name and keeps the mapping', () => {
    const d = render('policy-routing');
    expect(d.tables).toEqual({ 'tenant-a': 1000, 'tenant-b': 1001 });
    const other = renderLinux(THREE_TIER_CONFIG, THREE_TIER_ROUTES, {
      vrfMode: 'policy-routing',
      tableBase: 200,
      rulePriority: 300,
    });
    expect(other.tables).toEqual({ 'tenant-a': 200, 'tenant-b': 201 });
    expect(other.rules.every((r) => r.priority === 300 || r.priority === 301)).toBe(true);
  });

  it('leaves tc empty: DSCP marking and policing are nftables', () => {
    const d = render('vrf-device');
    expect(d.tc).toEqual([]);
    expect(d.nft).toContain('ip dscp set 46');
    expect(d.nft).toContain('rate over 250000 bytes/second burst 30000 bytes');
  });
});

describe('interface names', () => {
  it('keeps valid names and shortens the others to a stable 15-byte name', () => {
    expect(shortIfName('web')).toBe('web');
    expect(shortIfName('exactly15chars_')).toBe('exactly15chars_');
    const s = shortIfName('db-nvgre-attachment');
    expect(s).toMatch(/^db-nvgre-[0-9a-f]{6}$/);
    expect(s.length).toBeLessThanOrEqual(15);
    expect(shortIfName('db-nvgre-attachment')).toBe(s);
    expect(shortIfName('db-nvgre-attachment-2')).not.toBe(s);
    expect(validIfName(shortIfName('has space/and:colon'))).toBe(true);
    expect(validIfName('sixteen-chars-xx')).toBe(false);
    expect(validIfName('.')).toBe(false);
  });

  it('refuses two interfaces that end up with the same kernel name', () => {
    const cfg = withInterface('b-db', { name: 'vrf-tenant-a' });
    expect(() => renderLinux(cfg, [], { vrfMode: 'vrf-device' })).toThrow(LinuxRenderError);
    expect(() => renderLinux(cfg, [], { vrfMode: 'policy-routing' })).not.toThrow();
  });
});

describe('render errors name the offending field', () => {
  const cases: [string, DataplaneConfig, string][] = [
    ['qinq without an S-tag', withInterface('app', { outerVlan: undefined }), 'interfaces[3].outerVlan'],
    ['vlan on a missing trunk', withInterface('web', { trunk: 'nope' }), 'interfaces[2].trunk'],
    ['vlan MTU above the trunk', withInterface('web', { mtu: 9000 }), 'interfaces[2].mtu'],
    [
      'MPLS-in-UDP over IPv6',
      withInterface('pe-mpls', { remotes: [{ address: '2001:db8::9', port: 6635 }] }),
      'interfaces[5].remotes',
    ],
    ['unknown QoS policy', withInterface('web', { qosPolicy: 'gold' }), 'interfaces.web.qosPolicy'],
  ];
  for (const [what, cfg, path] of cases)
    it(what, () => {
      try {
        renderLinux(cfg, THREE_TIER_ROUTES, { vrfMode: 'policy-routing' });
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(LinuxRenderError);
        expect((e as LinuxRenderError).path).toBe(path);
      }
    });
});

describe('PacketMatch -> nft expressions (same semantics as acl/match.ts)', () => {
  const P = (s: string) => parsePrefix(s);
  it('an empty list or ports on a portless protocol never match', () => {
    expect(matchVariants({ source: [] })).toEqual([]);
    expect(matchVariants({ protocol: 'icmp', destinationPorts: [{ from: 1, to: 1 }] })).toEqual([]);
    expect(matchVariants({ family: 6, source: [P('10.0.0.0/8')] })).toEqual([]);
  });
  it('family-free matches stay one rule; addresses and DSCP split per family', () => {
    expect(matchVariants({})).toEqual([{ exprs: [] }]);
    expect(matchVariants({ protocol: 47 })).toEqual([{ exprs: ['meta l4proto 47'] }]);
    expect(matchVariants({ destinationPorts: [{ from: 53, to: 53 }] })).toEqual([
      { exprs: ['meta l4proto { tcp, udp }', 'th dport 53'] },
    ]);
    expect(matchVariants({ dscp: [46, 46, 10] })).toEqual([
      { family: 4, exprs: ['ip dscp { 10, 46 }'] },
      { family: 6, exprs: ['ip6 dscp { 10, 46 }'] },
    ]);
    expect(matchVariants({ family: 4, protocol: 'udp' })).toEqual([
      { family: 4, exprs: ['meta nfproto ipv4', 'meta l4proto udp'] },
    ]);
  });
  it('drops covered prefixes and merges port ranges (nft refuses overlapping intervals)', () => {
    const v = matchVariants({
      protocol: 'tcp',
      source: [P('10.1.0.0/16'), P('10.0.0.0/8'), P('10.0.0.0/8')],
      destinationPorts: [
        { from: 80, to: 90 },
        { from: 85, to: 100 },
        { from: 101, to: 101 },
        { from: 443, to: 443 },
      ],
    });
    expect(v).toEqual([{ family: 4, exprs: ['ip saddr 10.0.0.0/8', 'tcp dport { 80-101, 443 }'] }]);
  });
});

describe('planLinux', () => {
  for (const mode of MODES) {
    it(`${mode}: no-op against a kernel that already holds the state`, () => {
      const d = render(mode);
      const p = planLinuxFull(simulatedKernel(d), d);
      expect(p).toEqual({ ip: [], bridge: [], sysctl: [] });
      expect(planIsEmpty(p)).toBe(true);
    });
  }

  it('add: from an empty kernel everything is created, parents before children, routes without gateway first', () => {
    const lines = planLinux(EMPTY_CURRENT, render('vrf-device'));
    const idx = (re: RegExp): number => lines.findIndex((l) => re.test(l));
    expect(idx(/^link add vrf-tenant-a /)).toBeLessThan(idx(/^link add uplink /));
    expect(idx(/^link add trunk0 /)).toBeLessThan(idx(/^link add web link trunk0 /));
    expect(idx(/^link add trunk0\.100 /)).toBeLessThan(idx(/^link add app link trunk0\.100 /));
    expect(idx(/^addr /)).toBeGreaterThan(idx(/^link add/));
    expect(idx(/^route replace 0\.0\.0\.0\/0 via 10\.0\.1\.254 table 1001$/)).toBeGreaterThan(
      idx(/^route replace unreachable 10\.0\.2\.0\/24 table 1001$/),
    );
  });

  it('change: a next hop is one route replace', () => {
    const d = render('policy-routing');
    const routes = THREE_TIER_ROUTES.map((r) =>
      r.prefix.len === 0 && r.context === 'tenant-b' ? { ...r, nextHop: parseAddress('10.0.1.253') } : r,
    );
    expect(planLinux(simulatedKernel(d), render('policy-routing', THREE_TIER_CONFIG, routes))).toEqual([
      'route replace 0.0.0.0/0 via 10.0.1.253 table 1001',
    ]);
  });

  it('change: MTU and MAC change in place', () => {
    const d = render('policy-routing');
    const cfg = withInterface('web', { mtu: 1400, mac: Uint8Array.of(2, 0, 0, 0, 0, 9) });
    expect(planLinux(simulatedKernel(d), render('policy-routing', cfg))).toEqual([
      'link set dev web mtu 1400 address 02:00:00:00:00:09',
    ]);
  });

  it('change: a new VNI re-creates the trunk and its VLAN children (children deleted first) with their state', () => {
    const d = render('policy-routing');
    const p = planLinuxFull(
      simulatedKernel(d),
      render('policy-routing', withInterface('trunk0', { vni: 6001 })),
    );
    expect(p.ip.filter((l) => l.startsWith('link del'))).toEqual([
      'link del dev app',
      'link del dev trunk0.100',
      'link del dev web',
      'link del dev trunk0',
    ]);
    expect(p.ip.filter((l) => l.startsWith('link add')).map((l) => l.split(' ')[2])).toEqual([
      'trunk0',
      'web',
      'trunk0.100',
      'app',
    ]);
    expect(p.ip).toContain('addr replace 10.0.1.1/24 dev web');
    expect(p.ip).toContain('route replace 10.0.2.0/24 dev app table 1000');
    expect(p.ip.some((l) => l.includes('rule'))).toBe(false);
    expect(p.bridge).toEqual(['fdb append 00:00:00:00:00:00 dev trunk0 dst 203.0.113.10']);
    expect(p.nft).toBeUndefined();
  });

  it('change: an interface leaves; the kernel drops its routes, we drop its rules and nft entries', () => {
    const d = render('policy-routing');
    const cfg = {
      ...THREE_TIER_CONFIG,
      interfaces: THREE_TIER_CONFIG.interfaces.filter((i) => i.name !== 'b-db'),
    };
    const p = planLinuxFull(simulatedKernel(d), render('policy-routing', cfg));
    expect(p.ip).toEqual([
      'link del dev b-db',
      'rule del pref 2001 iif b-db lookup 1001',
      'rule del pref 2001 oif b-db lookup 1001',
      'rule del pref 2001 from 10.0.3.254/32 iif lo lookup 1001',
      '-6 rule del pref 2001 iif b-db lookup 1001',
      '-6 rule del pref 2001 oif b-db lookup 1001',
    ]);
    expect(p.bridge).toEqual([]);
    expect(p.nft).toBeDefined();
  });

  it('drift: stray objects in our ranges and on our links go, foreign ones stay', () => {
    const d = render('policy-routing');
    const k = simulatedKernel(d);
    const drifted: LinuxCurrent = {
      ...k,
      addresses: [
        ...k.addresses,
        { dev: 'web', address: '10.7.7.7/24', family: 4, scope: 'global' },
        { dev: 'eth0', address: '10.8.8.8/24', family: 4, scope: 'global' },
      ],
      rules: [
        ...k.rules.filter((r) => !(r.iif === 'app' && r.family === 4)),
        { family: 4, priority: 2005, table: 1003, iif: 'lo' },
      ],
      routes: [...k.routes, { table: 1001, family: 4, dst: '10.66.0.0/16', type: 'prohibit' }],
      fdb: [...k.fdb, { dev: 'uplink', dst: '198.51.100.99' }, { dev: 'eth0', dst: '198.51.100.98' }],
      sysctls: { ...k.sysctls, 'net.ipv4.ip_forward': '0' },
      nftHash: '',
    };
    const p = planLinuxFull(drifted, d);
    expect(p.ip).toEqual([
      'addr del 10.7.7.7/24 dev web',
      'route del prohibit 10.66.0.0/16 table 1001',
      'rule del pref 2005 iif lo lookup 1003',
      'rule add pref 2000 iif app lookup 1000',
    ]);
    expect(p.bridge).toEqual(['fdb del 00:00:00:00:00:00 dev uplink dst 198.51.100.99']);
    expect(p.sysctl).toEqual([['net.ipv4.ip_forward', '1']]);
    expect(p.nft).toBe(d.nft);
  });

  it('remove: against the empty state everything we own goes, children first', () => {
    const d = render('vrf-device');
    const p = planLinuxFull(simulatedKernel(d), emptyLinuxDesired(d.ownership));
    const dels = p.ip.filter((l) => l.startsWith('link del'));
    expect(dels.indexOf('link del dev app')).toBeLessThan(dels.indexOf('link del dev trunk0.100'));
    expect(dels.indexOf('link del dev trunk0.100')).toBeLessThan(dels.indexOf('link del dev trunk0'));
    expect(dels).toHaveLength(d.links.length);
    expect(dels).not.toContain('link del dev eth0');
    expect(p.ip).toContain('route del unreachable 0.0.0.0/0 table 1000 metric 4278198272');
    expect(p.ip).toContain('route del unreachable ::/0 table 1001 metric 4278198272');
    expect(p.ip.some((l) => l.includes('via'))).toBe(false); // routes through deleted links go with them
    expect(p.ip).toContain('-M route del 0');
    expect(p.ip).toContain('fou del port 4754');
    expect(p.nft).toBe('delete table inet vce\n');
    expect(planLinuxFull(EMPTY_CURRENT, emptyLinuxDesired(d.ownership))).toEqual({
      ip: [],
      bridge: [],
      sysctl: [],
    });
  });

  it('refuses to touch a link it does not own', () => {
    const d = render('policy-routing');
    const k = simulatedKernel(d);
    const foreign: LinuxCurrent = {
      ...k,
      links: k.links.map((l) => (l.name === 'web' ? { name: 'web', up: true, info: {} } : l)),
    };
    expect(() => planLinux(foreign, d)).toThrow(LinuxPlanError);
  });
});

describe('parsing iproute2 JSON (captured from iproute2 6.1)', () => {
  it('routes: default, host routes, kernel and local routes left out, v6 unreachable via lo, MPLS label', () => {
    const v4 =
      '[{"type":"unreachable","dst":"default","table":"1000","metric":4278198272,"flags":[]},{"dst":"10.0.0.0/24","dev":"vx0","table":"1000","scope":"link","flags":[]},{"dst":"10.8.0.0/24","gateway":"10.0.0.2","dev":"vx0","table":"1000","flags":[]},{"type":"blackhole","dst":"10.9.0.0/24","table":"1000","flags":[]},{"dst":"10.0.0.0/24","dev":"vx0","protocol":"kernel","scope":"link","prefsrc":"10.0.0.1","flags":[]},{"type":"local","dst":"10.0.0.1","dev":"vx0","table":"local","protocol":"kernel","scope":"host","prefsrc":"10.0.0.1","flags":[]},{"dst":"192.168.0.0/16","encap":"mpls","dst":"16","dev":"t0","table":"1000","flags":[]},{"dst":"10.3.3.3","dev":"vx0","table":"1000","flags":[]}]';
    expect(parseRoutes(v4, 4)).toEqual([
      { table: 1000, family: 4, dst: '0.0.0.0/0', type: 'unreachable', metric: 4278198272 },
      { table: 1000, family: 4, dst: '10.0.0.0/24', type: 'unicast', dev: 'vx0' },
      { table: 1000, family: 4, dst: '10.8.0.0/24', type: 'unicast', via: '10.0.0.2', dev: 'vx0' },
      { table: 1000, family: 4, dst: '10.9.0.0/24', type: 'blackhole' },
      { table: 1000, family: 4, dst: '192.168.0.0/16', type: 'unicast', dev: 't0', mplsLabel: 16 },
      { table: 1000, family: 4, dst: '10.3.3.3/32', type: 'unicast', dev: 'vx0' },
    ]);
    const v6 =
      '[{"dst":"2001:db8:1::/64","gateway":"2001:db8::2","dev":"vx0","table":"1000","metric":1024,"flags":[],"pref":"medium"},{"type":"unreachable","dst":"default","dev":"lo","table":"1000","metric":4278198272,"flags":[],"pref":"medium"},{"dst":"fe80::/64","dev":"vx0","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},{"type":"multicast","dst":"ff00::/8","dev":"vx0","table":"local","protocol":"kernel","metric":256,"flags":[],"pref":"medium"}]';
    expect(parseRoutes(v6, 6)).toEqual([
      { table: 1000, family: 6, dst: '2001:db8:1::/64', type: 'unicast', via: '2001:db8::2', dev: 'vx0' },
      { table: 1000, family: 6, dst: '::/0', type: 'unreachable', metric: 4278198272 },
    ]);
  });

  it('rules: source prefixes, named tables, foreign selectors, l3mdev left out', () => {
    const j =
      '[{"priority":0,"src":"all","table":"local"},{"priority":1000,"l3mdev":true,"table":"unspec"},{"priority":2000,"src":"10.1.1.1","iif":"lo","table":"1000"},{"priority":2000,"src":"10.1.0.0","srclen":16,"table":"1000"},{"priority":2002,"src":"all","fwmark":"0x5","table":"1000"},{"priority":32766,"src":"all","table":"main"}]';
    expect(parseRules(j, 4)).toEqual([
      { family: 4, priority: 0, table: 255 },
      { family: 4, priority: 2000, table: 1000, iif: 'lo', from: '10.1.1.1/32' },
      { family: 4, priority: 2000, table: 1000, from: '10.1.0.0/16' },
      { family: 4, priority: 2002, table: 1000, foreign: true },
      { family: 4, priority: 32766, table: 254 },
    ]);
  });

  it('links, addresses, FDB and the nft table hash', () => {
    const links = parseLinks(
      '[{"ifindex":4,"ifname":"vx1","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1450,"address":"02:00:00:00:00:02","linkinfo":{"info_kind":"vxlan","info_data":{"id":11,"local":"127.0.0.1","port":4789,"learning":false,"tos":"0xb8"}},"ifalias":"vce:if:y"}]',
    );
    expect(links).toEqual([
      {
        name: 'vx1',
        kind: 'vxlan',
        alias: 'vce:if:y',
        parent: undefined,
        master: undefined,
        mac: '02:00:00:00:00:02',
        mtu: 1450,
        up: true,
        info: { id: 11, local: '127.0.0.1', port: 4789, learning: false, tos: '0xb8' },
      },
    ]);
    expect(
      parseAddresses(
        '[{"ifname":"vx0","addr_info":[{"family":"inet","local":"10.0.0.1","prefixlen":24,"scope":"global"},{"family":"inet6","local":"fe80::ff:fe00:1","prefixlen":64,"scope":"link"}]}]',
      ),
    ).toEqual([
      { dev: 'vx0', address: '10.0.0.1/24', family: 4, scope: 'global' },
      { dev: 'vx0', address: 'fe80::ff:fe00:1/64', family: 6, scope: 'link' },
    ]);
    expect(
      parseFdb(
        '[{"mac":"02:00:00:00:00:01","flags":[],"master":"br0","state":"permanent"},{"mac":"00:00:00:00:00:00","ifname":"vx0","dst":"192.0.2.1","flags":["self"],"state":"permanent"},{"mac":"00:00:00:00:00:00","ifname":"vx0","dst":"192.0.2.2","port":4790,"flags":["self"],"state":"permanent"}]',
      ),
    ).toEqual([
      { dev: 'vx0', dst: '192.0.2.1' },
      { dev: 'vx0', dst: '192.0.2.2', port: 4790 },
    ]);
    expect(nftHashFromListing('table inet vce {\n\tcomment "vce:0123abcd"\n\tset x {\n')).toBe('0123abcd');
    expect(nftHashFromListing('table inet vce {\n\tset x {\n')).toBe('');
  });
});

describe('the shell', () => {
  it('groups batch lines by their family option, keeping the order inside each', () => {
    expect(
      batchesOf([
        'link add a',
        '-6 rule add pref 1',
        'rule add pref 1',
        '-M route replace 0 dev v',
        '-6 fou add port 1 ipproto 47',
      ]),
    ).toEqual([
      { option: '', lines: ['link add a', 'rule add pref 1'] },
      { option: '-6', lines: ['rule add pref 1', 'fou add port 1 ipproto 47'] },
      { option: '-M', lines: ['route replace 0 dev v'] },
    ]);
  });

  it('runs one ip batch per family option, the bridge batch, nft and sysctl, all with argument arrays in the netns', async () => {
    const calls: { cmd: string; args: readonly string[]; input?: string }[] = [];
    const exec: Exec = (cmd, args, input) => {
      calls.push({ cmd, args, ...(input !== undefined ? { input } : {}) });
      const j = args.includes('-j');
      if (args.includes('nft') && args.includes('list'))
        return Promise.resolve({ code: 1, stdout: '', stderr: 'Error: No such file or directory' });
      if (args.includes('sysctl') && args.includes('-n'))
        return Promise.resolve({ code: 0, stdout: '0\n', stderr: '' });
      return Promise.resolve({ code: 0, stdout: j ? '[]' : '', stderr: '' });
    };
    const d = render('policy-routing');
    const plan = await applyLinux(d, { netns: 'ns1', exec });
    const writes = calls.filter((c) => c.input !== undefined && c.input !== '');
    expect(writes.map((c) => [c.cmd, ...c.args].join(' '))).toEqual([
      'ip -n ns1 -batch -',
      'ip -n ns1 -6 -batch -',
      'bridge -n ns1 -batch -',
      'ip netns exec ns1 nft -f -',
    ]);
    expect(writes[0]!.input).toBe(plan.ip.filter((l) => !l.startsWith('-')).join('\n') + '\n');
    const sysctl = calls.find((c) => c.args.includes('-w'))!;
    expect(sysctl.args.slice(0, 6)).toEqual(['netns', 'exec', 'ns1', 'sysctl', '-q', '-w']);
  });
});
