/**
 * Linux kernel renderer: the data plane's desired state (`DataplaneConfig` + the contexts' routes)
 * turned into a normalized desired kernel state: links, addresses, routes, policy rules, VXLAN
 * flood entries, FOU receive ports, sysctls and one nftables table. Pure: no I/O, no clock; the same
 * input gives byte-identical output (golden-tested in `test/unit/linux-render.test.ts`).
 * `linux-plan.ts` diffs it against what the kernel holds, `linux-apply.ts` runs the difference.
 *
 * Routing contexts (VRFs). One kernel routing table per context, id `tableBase + i` where `i` is
 * the context's index in sorted name order. Two ways to bind interfaces to it:
 * - `vrf-device`: an l3mdev VRF device per context (`ip link add vrf-<ctx> type vrf table N`), every
 *   interface of the context enslaved to it. The kernel fills the table with connected and local
 *   routes and adds its own `l3mdev` rule; we add no rules.
 * - `policy-routing`, for kernels without CONFIG_NET_VRF: per interface `iif DEV lookup N` (transit
 *   traffic) and `oif DEV lookup N` (sockets bound to the device), plus `from ADDR iif lo lookup N`
 *   for each of the vCE's own addresses that no other context uses (so replies the vCE sends leave
 *   through the right context); connected routes are copied into table N. All rules of context `i`
 *   have priority `rulePriority + i`.
 * Both modes put `unreachable default metric 4278198272` (IPv4 and IPv6) into every table, as the
 * kernel's VRF documentation recommends, so a lookup never falls through to the main table.
 *
 * Attachments: vxlan -> `vxlan` link with `nolearning` and one all-zeros FDB entry per remote
 * (head-end replication of BUM traffic, RFC 7348 §4.2 without multicast); vlan -> 802.1Q link on
 * the trunk; qinq -> one shared 802.1ad link per (trunk, S-tag) and an 802.1Q link on it;
 * nvgre -> `gretap` (key = VSID << 8 | FlowID 0, RFC 7637 §3.2) sent as GRE-in-UDP (RFC 8086)
 * with `encap fou`, received through `ip fou add port <gre port> ipproto 47`; mpls-udp -> an `ipip`
 * tunnel in `mode mplsip` with `encap fou` (MPLS-in-UDP, RFC 7510) received through `ip fou add port
 * <mpls port> ipproto 137`, and routes through it carry `encap mpls <label>` (explicit null 0 / 2 by
 * default, RFC 3032 §2.1). Outer DSCP: `tos inherit` (uniform) or the fixed pipe value (RFC 2983).
 *
 * Names: kernel interface names are at most 15 bytes (IFNAMSIZ 16). A config name that fits is
 * used as is; a longer one becomes `<first 8 chars>-<6 hex of FNV-1a>` (stable); `names` keeps
 * the mapping. Every link we create carries the alias `vce:<role>:<config name>`: that marker is
 * what makes a link ours (the plan never touches a link without it).
 *
 * Filtering, self protection and QoS are nftables (`linux-nft.ts`). `tc` stays empty: this
 * renderer marks DSCP and polices with nftables, see there for why.
 */
import {
  AFI_IPV4,
  comparePrefix,
  formatAddress,
  formatPrefix,
  makePrefix,
  type Prefix,
} from '../../lib/ip.ts';
import type { DataplaneConfig, DpInterface, DpRoute } from '../types.ts';
import { LinuxRenderError } from './linux-errors.ts';
import { renderNft } from './linux-nft.ts';
import {
  ALIAS_MARKER,
  DEFAULT_MAX_CONTEXTS,
  DEFAULT_RULE_PRIORITY,
  DEFAULT_TABLE_BASE,
  UNREACHABLE_METRIC,
  aliasSafe,
  formatMac,
  shortIfName,
  type AddrSpec,
  type FdbSpec,
  type FouSpec,
  type LinkSpec,
  type LinuxDesired,
  type LinuxRenderOptions,
  type MplsRouteSpec,
  type RouteSpec,
  type RuleSpec,
} from './linux-spec.ts';

export { LinuxRenderError };

export * from './linux-spec.ts';

const IPPROTO_GRE = 47; // RFC 8086 §3 (GRE-in-UDP carries protocol 47)
const IPPROTO_MPLS = 137; // RFC 4023 §3, RFC 7510 §3 (MPLS-in-IP / MPLS-in-UDP)
const MPLS_IPV4_EXPLICIT_NULL = 0; // RFC 3032 §2.1
const MPLS_IPV6_EXPLICIT_NULL = 2; // RFC 3032 §2.1

function isUnspecified(addr: string): boolean {
  return addr === '' || addr === '0.0.0.0' || addr === '::';
}

function familyOf(addr: string): 4 | 6 {
  return addr.includes(':') ? 6 : 4;
}

function prefixFamily(p: Prefix): 4 | 6 {
  return p.afi === AFI_IPV4 ? 4 : 6;
}

/** GRE key as `ip -j -d link` prints it (a dotted quad, `inet_ntop` of the big-endian key). */
function dottedKey(key: number): string {
  return [key >>> 24, (key >>> 16) & 0xff, (key >>> 8) & 0xff, key & 0xff].join('.');
}

export function renderLinux(
  cfg: DataplaneConfig,
  routes: readonly DpRoute[],
  opts: LinuxRenderOptions,
): LinuxDesired {
  const tableBase = opts.tableBase ?? DEFAULT_TABLE_BASE;
  const rulePriority = opts.rulePriority ?? DEFAULT_RULE_PRIORITY;
  const maxContexts = opts.maxContexts ?? DEFAULT_MAX_CONTEXTS;
  const vrfDevices = opts.vrfMode === 'vrf-device';
  const notes: string[] = [];

  // Contexts, sorted: the table id is the index (stable for a given set of contexts).
  const contexts = [
    ...new Set([...cfg.interfaces.map((i) => i.context), ...routes.map((r) => r.context)]),
  ].sort();
  if (contexts.length > maxContexts)
    throw new LinuxRenderError(
      'interfaces',
      `${contexts.length} contexts, at most ${maxContexts} (maxContexts)`,
    );
  const table = new Map(contexts.map((c, i) => [c, tableBase + i]));
  const ctxIndex = new Map(contexts.map((c, i) => [c, i]));

  // Names.
  const byName = new Map<string, { iface: DpInterface; index: number }>();
  cfg.interfaces.forEach((iface, index) => {
    if (byName.has(iface.name))
      throw new LinuxRenderError(`interfaces[${index}].name`, `duplicate interface "${iface.name}"`);
    byName.set(iface.name, { iface, index });
  });
  const names: Record<string, string> = {};
  const taken = new Map<string, string>();
  const claim = (kernel: string, owner: string, path: string): string => {
    const other = taken.get(kernel);
    if (other !== undefined)
      throw new LinuxRenderError(path, `kernel name "${kernel}" of ${owner} is also ${other}`);
    taken.set(kernel, owner);
    return kernel;
  };
  const vrfName = new Map<string, string>();
  if (vrfDevices)
    for (const c of contexts) vrfName.set(c, claim(shortIfName(`vrf-${c}`), `context ${c}`, `contexts.${c}`));
  cfg.interfaces.forEach((iface, i) => {
    names[iface.name] = claim(shortIfName(iface.name), `interface ${iface.name}`, `interfaces[${i}].name`);
  });
  const kname = (n: string): string => names[n]!;

  // Links, parents before children.
  const tos = cfg.tunnelQos.mode === 'uniform' ? 1 : (cfg.tunnelQos.outerDscp & 0x3f) << 2;
  const tosArg = tos === 1 ? 'inherit' : `0x${tos.toString(16)}`;
  const local = isUnspecified(cfg.listenAddress) ? undefined : cfg.listenAddress;
  const links: LinkSpec[] = [];
  const fdb: FdbSpec[] = [];
  const fou = new Map<string, FouSpec>();
  const addFou = (port: number, ipproto: number): void => {
    const family = local === undefined ? 4 : familyOf(local);
    fou.set(`${family}|${port}|${ipproto}`, { port, ipproto, family });
  };
  if (vrfDevices)
    for (const c of contexts) {
      const t = table.get(c)!;
      links.push({
        name: vrfName.get(c)!,
        kind: 'vrf',
        alias: `${ALIAS_MARKER}vrf:${aliasSafe(c)}`,
        typeArgs: ['table', String(t)],
        identity: { table: t },
      });
    }
  const outer = new Map<string, LinkSpec>();
  const depth = (iface: DpInterface): number => (iface.kind === 'vlan' ? 1 : iface.kind === 'qinq' ? 2 : 0);
  const ordered = [...byName.values()].sort((a, b) => depth(a.iface) - depth(b.iface) || a.index - b.index);
  const mplsContexts = new Set<string>();
  const mplsDevices: string[] = [];
  for (const { iface, index } of ordered) {
    const path = `interfaces[${index}]`;
    const name = kname(iface.name);
    const base = {
      name,
      alias: `${ALIAS_MARKER}if:${aliasSafe(iface.name)}`,
      master: vrfName.get(iface.context),
      mtu: iface.mtu,
      interface: iface.name,
    };
    const mac = formatMac(iface.mac);
    const need = <T>(v: T | undefined, field: string): T => {
      if (v === undefined) throw new LinuxRenderError(`${path}.${field}`, `required for kind ${iface.kind}`);
      return v;
    };
    const trunkOf = (): { name: string; mtu: number } => {
      const t = byName.get(need(iface.trunk, 'trunk'));
      if (t === undefined) throw new LinuxRenderError(`${path}.trunk`, `no interface "${iface.trunk}"`);
      if (t.iface.kind !== 'vxlan' && t.iface.kind !== 'nvgre')
        throw new LinuxRenderError(
          `${path}.trunk`,
          `trunk "${iface.trunk}" is ${t.iface.kind}, not an Ethernet tunnel (vxlan, nvgre)`,
        );
      if (iface.mtu > t.iface.mtu)
        throw new LinuxRenderError(`${path}.mtu`, `${iface.mtu} exceeds the trunk's MTU ${t.iface.mtu}`);
      return { name: kname(t.iface.name), mtu: t.iface.mtu };
    };
    switch (iface.kind) {
      case 'vxlan': {
        const vni = need(iface.vni, 'vni');
        const args = ['id', String(vni), 'dstport', String(cfg.vxlanPort)];
        if (local !== undefined) args.push('local', local);
        args.push('nolearning', 'tos', tosArg);
        links.push({
          ...base,
          kind: 'vxlan',
          mac,
          typeArgs: args,
          identity: { id: vni, port: cfg.vxlanPort, local: local ?? '', learning: false, tos },
        });
        for (const r of iface.remotes ?? [])
          fdb.push({ dev: name, dst: r.address, ...(r.port !== cfg.vxlanPort ? { port: r.port } : {}) });
        break;
      }
      case 'vlan': {
        const trunk = trunkOf();
        const id = need(iface.vlan, 'vlan');
        links.push({
          ...base,
          kind: 'vlan',
          mac,
          parent: trunk.name,
          typeArgs: ['protocol', '802.1Q', 'id', String(id)],
          identity: { protocol: '802.1Q', id },
        });
        break;
      }
      case 'qinq': {
        const trunk = trunkOf();
        const s = need(iface.outerVlan, 'outerVlan');
        const c = need(iface.vlan, 'vlan');
        const key = `${iface.trunk}.${s}`;
        let o = outer.get(key);
        if (o === undefined) {
          o = {
            name: claim(shortIfName(`${trunk.name}.${s}`), `802.1ad link ${key}`, `${path}.outerVlan`),
            kind: 'vlan',
            alias: `${ALIAS_MARKER}qinq:${aliasSafe(key)}`,
            parent: trunk.name,
            mtu: trunk.mtu,
            typeArgs: ['protocol', '802.1ad', 'id', String(s)],
            identity: { protocol: '802.1ad', id: s },
          };
          outer.set(key, o);
          links.push(o);
        }
        links.push({
          ...base,
          kind: 'vlan',
          mac,
          parent: o.name,
          typeArgs: ['protocol', '802.1Q', 'id', String(c)],
          identity: { protocol: '802.1Q', id: c },
        });
        break;
      }
      case 'nvgre': {
        const vsid = need(iface.vsid, 'vsid');
        const remotes = need(iface.remotes, 'remotes');
        const r = remotes[0];
        if (r === undefined) throw new LinuxRenderError(`${path}.remotes`, 'nvgre needs one remote');
        if (remotes.length > 1)
          notes.push(
            `${iface.name}: a gretap link has one remote; ${remotes.length - 1} more remote(s) not rendered (no head-end replication for NVGRE)`,
          );
        const v6 = familyOf(r.address) === 6;
        const key = ((vsid & 0xffffff) << 8) >>> 0; // RFC 7637 §3.2: VSID (24 bits) | FlowID (8 bits)
        const args = ['remote', r.address];
        if (local !== undefined) args.push('local', local);
        args.push('key', String(key), 'encap', 'fou', 'encap-sport', 'auto', 'encap-dport', String(r.port));
        args.push(v6 ? 'tclass' : 'tos', tosArg);
        links.push({
          ...base,
          kind: v6 ? 'ip6gretap' : 'gretap',
          mac,
          typeArgs: args,
          identity: { remote: r.address, local: local ?? 'any', ikey: dottedKey(key) },
        });
        addFou(cfg.greUdpPort, IPPROTO_GRE);
        break;
      }
      case 'mpls-udp': {
        const remotes = need(iface.remotes, 'remotes');
        const r = remotes[0];
        if (r === undefined) throw new LinuxRenderError(`${path}.remotes`, 'mpls-udp needs one remote');
        if (familyOf(r.address) === 6 || (local !== undefined && familyOf(local) === 6))
          throw new LinuxRenderError(
            `${path}.remotes`,
            'MPLS-in-UDP over IPv6 has no Linux tunnel device (ipip mode mplsip is IPv4 only)',
          );
        if (remotes.length > 1)
          notes.push(
            `${iface.name}: an ipip tunnel has one remote; ${remotes.length - 1} more remote(s) not rendered`,
          );
        const args = ['mode', 'mplsip', 'remote', r.address];
        if (local !== undefined) args.push('local', local);
        args.push('encap', 'fou', 'encap-sport', 'auto', 'encap-dport', String(r.port), 'tos', tosArg);
        // ipip is not Ethernet: no MAC address.
        links.push({
          ...base,
          kind: 'ipip',
          typeArgs: args,
          identity: { remote: r.address, local: local ?? 'any' },
        });
        addFou(cfg.mplsUdpPort, IPPROTO_MPLS);
        mplsContexts.add(iface.context);
        mplsDevices.push(name);
        break;
      }
    }
  }

  // Addresses.
  const addresses: AddrSpec[] = [];
  for (const iface of cfg.interfaces)
    for (const a of iface.addresses)
      addresses.push({
        dev: kname(iface.name),
        address: `${formatAddress(a.address)}/${a.prefix.len}`,
        family: a.address.length === 4 ? 4 : 6,
      });

  // Routes: catch-alls, connected (policy-routing: the kernel puts them into main), then the FIB.
  const routeMap = new Map<string, { spec: RouteSpec; prefix: Prefix }>();
  const putRoute = (spec: RouteSpec, prefix: Prefix): void => {
    routeMap.set(`${spec.table}|${spec.dst}|${spec.metric ?? ''}`, { spec, prefix });
  };
  for (const c of contexts) {
    const t = table.get(c)!;
    for (const fam of [4, 6] as const) {
      const p = makePrefix(new Uint8Array(fam === 4 ? 4 : 16), 0);
      putRoute(
        { table: t, family: fam, dst: formatPrefix(p), type: 'unreachable', metric: UNREACHABLE_METRIC },
        p,
      );
    }
  }
  if (!vrfDevices)
    for (const iface of cfg.interfaces)
      for (const a of iface.addresses) {
        const p = makePrefix(a.prefix.addr, a.prefix.len);
        const fam = prefixFamily(p);
        putRoute(
          {
            table: table.get(iface.context)!,
            family: fam,
            dst: formatPrefix(p),
            type: 'unicast',
            dev: kname(iface.name),
          },
          p,
        );
      }
  routes.forEach((r, i) => {
    const path = `routes[${i}]`;
    const t = table.get(r.context)!;
    const fam = prefixFamily(r.prefix);
    const dst = formatPrefix(r.prefix);
    if (r.action !== 'forward') {
      putRoute(
        { table: t, family: fam, dst, type: r.action === 'blackhole' ? 'blackhole' : 'unreachable' },
        r.prefix,
      );
      return;
    }
    const out = r.interface === undefined ? undefined : byName.get(r.interface)?.iface;
    if (r.interface !== undefined && out === undefined)
      throw new LinuxRenderError(`${path}.interface`, `no interface "${r.interface}"`);
    if (out === undefined && r.nextHop === undefined)
      throw new LinuxRenderError(path, 'a forward route needs a next hop or an interface');
    if (r.nextHop !== undefined && (r.nextHop.length === 4 ? 4 : 6) !== fam)
      throw new LinuxRenderError(`${path}.nextHop`, 'next hop family differs from the prefix family');
    if (out?.kind === 'mpls-udp') {
      // Point-to-point tunnel: no gateway; the label is pushed by the route (lwtunnel mpls).
      const label = out.label ?? (fam === 4 ? MPLS_IPV4_EXPLICIT_NULL : MPLS_IPV6_EXPLICIT_NULL);
      putRoute(
        { table: t, family: fam, dst, type: 'unicast', dev: kname(out.name), mplsLabel: label },
        r.prefix,
      );
      return;
    }
    putRoute(
      {
        table: t,
        family: fam,
        dst,
        type: 'unicast',
        ...(r.nextHop !== undefined ? { via: formatAddress(r.nextHop) } : {}),
        ...(out !== undefined ? { dev: kname(out.name) } : {}),
      },
      r.prefix,
    );
  });
  const routeList = [...routeMap.values()]
    .sort(
      (a, b) =>
        a.spec.table - b.spec.table ||
        comparePrefix(a.prefix, b.prefix) ||
        (a.spec.metric ?? 0) - (b.spec.metric ?? 0),
    )
    .map((x) => x.spec);

  // Policy rules.
  const rules: RuleSpec[] = [];
  if (!vrfDevices) {
    const owners = new Map<string, Set<string>>();
    for (const iface of cfg.interfaces)
      for (const a of iface.addresses) {
        const s = formatAddress(a.address);
        const set = owners.get(s) ?? new Set<string>();
        set.add(iface.context);
        owners.set(s, set);
      }
    for (const [addr, ctxs] of owners)
      if (ctxs.size > 1)
        notes.push(
          `address ${addr} is ours in contexts ${[...ctxs].sort().join(', ')}: no source rule, replies from it follow the main table (policy-routing mode)`,
        );
    for (const c of contexts) {
      const t = table.get(c)!;
      const priority = rulePriority + ctxIndex.get(c)!;
      const ifaces = cfg.interfaces.filter((i) => i.context === c);
      for (const fam of [4, 6] as const) {
        for (const iface of ifaces) rules.push({ family: fam, priority, table: t, iif: kname(iface.name) });
        for (const iface of ifaces) rules.push({ family: fam, priority, table: t, oif: kname(iface.name) });
        for (const iface of ifaces)
          for (const a of iface.addresses) {
            if ((a.address.length === 4 ? 4 : 6) !== fam) continue;
            const s = formatAddress(a.address);
            if (owners.get(s)!.size > 1) continue;
            rules.push({ family: fam, priority, table: t, from: `${s}/${fam === 4 ? 32 : 128}`, iif: 'lo' });
          }
      }
    }
  }

  // MPLS receive: Linux pops a label into a device; explicit null can name only one VRF.
  const mplsRoutes: MplsRouteSpec[] = [];
  const sysctls: Record<string, string> = {
    'net.ipv4.ip_forward': '1',
    'net.ipv6.conf.all.forwarding': '1',
    'net.netfilter.nf_conntrack_icmp_timeout': String(cfg.zones.flows.icmp),
    'net.netfilter.nf_conntrack_icmpv6_timeout': String(cfg.zones.flows.icmp),
  };
  if (mplsDevices.length > 0) {
    sysctls['net.mpls.platform_labels'] = '16';
    // A name with dots needs sysctl's slash form (`net/mpls/conf/a.b/input`).
    for (const d of mplsDevices)
      sysctls[d.includes('.') ? `net/mpls/conf/${d}/input` : `net.mpls.conf.${d}.input`] = '1';
    const only = mplsContexts.size === 1 ? [...mplsContexts][0]! : undefined;
    if (vrfDevices && only !== undefined) {
      for (const label of [MPLS_IPV4_EXPLICIT_NULL, MPLS_IPV6_EXPLICIT_NULL])
        mplsRoutes.push({ label, dev: vrfName.get(only)! });
    } else if (vrfDevices) {
      notes.push(
        `mpls-udp in ${mplsContexts.size} contexts: an explicit-null label pops into one VRF device only, receive not rendered`,
      );
    } else {
      notes.push(
        'mpls-udp receive not rendered: Linux MPLS pops a label into a VRF device, which policy-routing mode does not have',
      );
    }
  }

  if (cfg.interfaces.some((i) => i.routerAdvertisements))
    notes.push(
      'router advertisements are not rendered: the kernel does not send them (run radvd, or use the userspace driver)',
    );
  if (mplsDevices.length > 0)
    notes.push(
      'MPLS TC is 0 on labels the kernel pushes (lwtunnel mpls has no TC): mplsTc and the tunnel QoS mode do not reach the label',
    );

  const nft = renderNft({
    cfg,
    vrfMode: opts.vrfMode,
    names,
    ctZone: new Map(cfg.interfaces.map((i) => [kname(i.name), ctxIndex.get(i.context)! + 1])),
    vrfZone: new Map(
      contexts.filter((c) => vrfName.has(c)).map((c) => [vrfName.get(c)!, ctxIndex.get(c)! + 1]),
    ),
  });
  notes.push(...nft.notes);

  return {
    links,
    addresses,
    routes: routeList,
    rules,
    fdb,
    fou: [...fou.values()],
    mplsRoutes,
    sysctls,
    nft: nft.text,
    nftHash: nft.hash,
    tc: [],
    names,
    tables: Object.fromEntries(table),
    ownership: { tableBase, tableCount: maxContexts, rulePriority, ruleCount: maxContexts },
    notes,
  };
}
