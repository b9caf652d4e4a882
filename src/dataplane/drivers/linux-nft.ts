/**
 * nftables part of the Linux renderer: one table, `inet vce`, holding the zone-pair firewall, the
 * vCE's self protection and the DiffServ marker / policer. Pure text generation; the same rules as
 * the userspace data plane (`../acl/zones.ts`, `../acl/self.ts`, `../qos/diffserv.ts`):
 *
 * - prerouting (raw): conntrack zone = context index + 1 by input interface (output: by output
 *   interface and VRF device), so flows of two contexts with overlapping addresses never mix; the
 *   TCP / UDP idle timeouts of `ZonePolicy.flows` as `ct timeout` objects (ICMP: a sysctl, nft
 *   1.0.6 has no ICMP timeout object).
 * - forward: packets from our interfaces jump to `zones`; packets from elsewhere into our
 *   interfaces are dropped (policy-routing mode keeps connected routes in the main table too).
 *   `zones`: same zone -> the intra-zone verdict; both sides without a zone -> accept (as the
 *   forwarder); established / related -> accept; TCP opening without a plain SYN -> drop (strict,
 *   as the userspace flow table); `flows.max` new flows -> drop beyond (`ct count`); the rules
 *   in order (`*` = any zone, never "no zone"); the default verdict.
 * - input: from our interfaces only: established / related, ND (RFC 4861 §6.1: hop limit 255),
 *   ICMP when allowed, BGP (TCP 179 either port, RFC 4271 §8.2.1) and BFD (UDP 3784 RFC 5881 §4,
 *   4784 RFC 5883 §2, echo 3785 also from ourselves) from the configured peers, the extra allows,
 *   then drop. ARP is not IP and never reaches this table.
 * - postrouting (mangle priority): per outgoing interface a jump to its QoS policy chain: per class
 *   (first match wins) the policer `limit name ... over` (drop, or re-mark and stop), then the DSCP
 *   set (`ip dscp set` / `ip6 dscp set`), counted; unmatched packets are counted as `default`.
 *
 * Why nftables and not `tc` for marking and policing: `tc` would need a classifier (u32 / flower /
 * matchall) and the `pedit` / `skbedit` / `police` actions per class; the kernel this was built on
 * (6.18, no tc classifiers, no act_pedit) has none of them, so tc output could not be tested live,
 * while the nft rules are (`test/interop/linux-kernel.test.ts`). nft also matches the same
 * `PacketMatch` fields with one syntax, and its byte `limit` is the same single-rate token bucket
 * (RFC 2697 with EBS = 0) as the userspace policer. `tc` would still be the tool for shaping
 * (queueing), which the data plane does not ask for.
 *
 * VRF-device mode: in the forward and input hooks the kernel reports the VRF device as the input
 * interface; the enslaved device is the secondary input interface, so those chains match
 * `meta sdifname` instead of `iifname` there.
 */
import { createHash } from 'node:crypto';
import { AFI_IPV4, formatAddress, formatPrefix, prefixContains, type Prefix } from '../../lib/ip.ts';
import type { DataplaneConfig, PacketMatch, PortRange, Protocol } from '../types.ts';
import { LinuxRenderError } from './linux-errors.ts';

export const NFT_TABLE = 'vce';
/** Table comment prefix; the rest is the hash of the table body. */
export const NFT_HASH_PREFIX = 'vce:';

export const BGP_PORT = 179; // RFC 4271 §8.2.1
export const BFD_CONTROL_PORT = 3784; // RFC 5881 §4
export const BFD_ECHO_PORT = 3785; // RFC 5881 §4
export const BFD_MULTIHOP_PORT = 4784; // RFC 5883 §2

export interface NftInput {
  readonly cfg: DataplaneConfig;
  readonly vrfMode: 'vrf-device' | 'policy-routing';
  /** Config interface name -> kernel name. */
  readonly names: Readonly<Record<string, string>>;
  /** Kernel interface name -> conntrack zone (context index + 1). */
  readonly ctZone: ReadonlyMap<string, number>;
  /** VRF device -> conntrack zone (vrf-device mode). */
  readonly vrfZone: ReadonlyMap<string, number>;
}

export interface NftOutput {
  readonly text: string;
  readonly hash: string;
  readonly notes: readonly string[];
}

const q = (s: string): string => `"${s}"`;

/** nft identifiers: a letter, then letters, digits and `_`. */
function ident(prefix: string, s: string, used: Set<string>): string {
  const base = `${prefix}${s.replace(/[^A-Za-z0-9_]/g, '_')}`;
  let out = base;
  for (let i = 2; used.has(out); i++) out = `${base}_${i}`;
  used.add(out);
  return out;
}

function comment(s: string): string {
  return `comment ${q(s.replace(/["\\\n]/g, "'").slice(0, 120))}`;
}

/** `x` for one element, `{ x, y }` for several. */
function set(items: readonly string[]): string {
  return items.length === 1 ? items[0]! : `{ ${items.join(', ')} }`;
}

/** Drops prefixes inside another one of the list (nft refuses overlapping interval elements). */
function minimalPrefixes(list: readonly Prefix[]): Prefix[] {
  const out: Prefix[] = [];
  list.forEach((p, i) => {
    const covered = list.some((o, j) => j !== i && prefixContains(o, p) && (o.len < p.len || j < i));
    if (!covered) out.push(p);
  });
  return out;
}

/** Merges overlapping and adjacent ranges, sorted. */
function mergedPorts(list: readonly PortRange[]): PortRange[] {
  const s = [...list].sort((a, b) => a.from - b.from);
  const out: { from: number; to: number }[] = [];
  for (const r of s) {
    const last = out[out.length - 1];
    if (last !== undefined && r.from <= last.to + 1) last.to = Math.max(last.to, r.to);
    else out.push({ from: r.from, to: r.to });
  }
  return out;
}

function ports(list: readonly PortRange[]): string {
  return set(mergedPorts(list).map((r) => (r.from === r.to ? String(r.from) : `${r.from}-${r.to}`)));
}

const L4_NAMES: Readonly<Record<number, string>> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'ipv6-icmp' };

function protoNumber(p: Protocol): number {
  if (typeof p === 'number') return p;
  return { icmp: 1, tcp: 6, udp: 17, icmpv6: 58 }[p];
}

/** One nft rendering of a match for one family (or both when `family` is undefined). */
interface Variant {
  readonly family?: 4 | 6;
  /** Expressions, ANDed; [] matches everything. */
  readonly exprs: readonly string[];
}

/**
 * A `PacketMatch` as nft expressions: zero variants when it can never match (an empty list, ports
 * with a protocol that has none, prefixes of no allowed family), one when no field needs a family,
 * else one per family that can match. Same semantics as `../acl/match.ts`.
 */
export function matchVariants(m: PacketMatch): Variant[] {
  if (m.source?.length === 0 || m.destination?.length === 0) return [];
  if (m.sourcePorts?.length === 0 || m.destinationPorts?.length === 0 || m.dscp?.length === 0) return [];
  const l4: string[] = [];
  const hasPorts = m.sourcePorts !== undefined || m.destinationPorts !== undefined;
  const proto = m.protocol === undefined ? undefined : protoNumber(m.protocol);
  if (hasPorts) {
    // Ports match TCP and UDP only (match.ts): `tcp dport` implies the protocol.
    const t = proto === undefined ? 'th' : proto === 6 ? 'tcp' : proto === 17 ? 'udp' : undefined;
    if (t === undefined) return [];
    if (t === 'th') l4.push('meta l4proto { tcp, udp }');
    if (m.sourcePorts !== undefined) l4.push(`${t} sport ${ports(m.sourcePorts)}`);
    if (m.destinationPorts !== undefined) l4.push(`${t} dport ${ports(m.destinationPorts)}`);
  } else if (proto !== undefined) {
    l4.push(`meta l4proto ${L4_NAMES[proto] ?? String(proto)}`);
  }
  const familySpecific =
    m.source !== undefined || m.destination !== undefined || m.dscp !== undefined || m.family !== undefined;
  if (!familySpecific) return [{ exprs: l4 }];
  const out: Variant[] = [];
  for (const fam of m.family !== undefined ? [m.family] : ([4, 6] as const)) {
    const ip = fam === 4 ? 'ip' : 'ip6';
    const of = (list: readonly Prefix[] | undefined): Prefix[] | undefined =>
      list === undefined
        ? undefined
        : minimalPrefixes(list.filter((p) => (p.afi === AFI_IPV4) === (fam === 4)));
    const src = of(m.source);
    const dst = of(m.destination);
    if (src?.length === 0 || dst?.length === 0) continue;
    const exprs: string[] = [];
    if (src !== undefined) exprs.push(`${ip} saddr ${set(src.map(formatPrefix))}`);
    if (dst !== undefined) exprs.push(`${ip} daddr ${set(dst.map(formatPrefix))}`);
    if (m.dscp !== undefined)
      exprs.push(`${ip} dscp ${set([...new Set(m.dscp)].sort((a, b) => a - b).map(String))}`);
    if (exprs.length === 0) exprs.push(`meta nfproto ipv${fam}`);
    out.push({ family: fam, exprs: [...exprs, ...l4] });
  }
  return out;
}

/** The variants split per family (for statements that need one: `ip dscp set`). */
function perFamily(vs: readonly Variant[]): { family: 4 | 6; exprs: readonly string[] }[] {
  return vs.flatMap((v) =>
    v.family !== undefined
      ? [{ family: v.family, exprs: v.exprs }]
      : ([4, 6] as const).map((family) => ({ family, exprs: [`meta nfproto ipv${family}`, ...v.exprs] })),
  );
}

function line(...parts: (string | undefined)[]): string {
  return parts.filter((p) => p !== undefined && p !== '').join(' ');
}

function addressSet(list: readonly Uint8Array[], fam: 4 | 6): string[] {
  return [...new Set(list.filter((a) => (a.length === 4) === (fam === 4)).map(formatAddress))];
}

export function renderNft(inp: NftInput): NftOutput {
  const { cfg } = inp;
  const z = cfg.zones;
  const notes: string[] = [];
  const iif = inp.vrfMode === 'vrf-device' ? 'meta sdifname' : 'iifname';
  const kname = (n: string): string => inp.names[n] ?? n;
  const used = new Set<string>(['vce_if', 'zoned']);
  const zoneSet = new Map<string, string>();
  for (const zone of z.zones) zoneSet.set(zone, ident('zone_', zone, used));
  const ifs = cfg.interfaces.map((i) => kname(i.name));
  const zoned = cfg.interfaces.filter((i) => i.zone !== undefined).map((i) => kname(i.name));
  const zoneRef = (zone: string, path: string): string => {
    if (zone === '*') return '@zoned';
    const s = zoneSet.get(zone);
    if (s === undefined) throw new LinuxRenderError(path, `unknown zone "${zone}"`);
    return `@${s}`;
  };
  cfg.interfaces.forEach((i, n) => {
    if (i.zone !== undefined) zoneRef(i.zone, `interfaces[${n}].zone`);
  });

  const body: string[] = [];
  const block = (head: string, lines: readonly string[]): void => {
    body.push(`\t${head} {`, ...lines.map((l) => `\t\t${l}`), '\t}');
  };
  const elements = (names: readonly string[]): string[] =>
    names.length === 0 ? [] : [`elements = { ${names.map(q).join(', ')} }`];

  // Objects.
  const f = z.flows;
  const tr = f.tcpTransitory;
  body.push(
    `\tct timeout ct_tcp { protocol tcp; l3proto inet; policy = { established: ${f.tcpEstablished}, syn_sent: ${tr}, syn_recv: ${tr}, fin_wait: ${tr}, close_wait: ${tr}, last_ack: ${tr}, time_wait: ${tr}, close: ${tr} }; }`,
    `\tct timeout ct_udp { protocol udp; l3proto inet; policy = { unreplied: ${f.udp}, replied: ${f.udp} }; }`,
  );
  block('set vce_if', ['type ifname', ...elements(ifs)]);
  block('set zoned', ['type ifname', ...elements(zoned)]);
  for (const zone of z.zones)
    block(`set ${zoneSet.get(zone)!}`, [
      'type ifname',
      ...elements(cfg.interfaces.filter((i) => i.zone === zone).map((i) => kname(i.name))),
    ]);
  const limits = new Map<string, string>(); // "policy/class" -> limit object name
  for (const pol of cfg.qos)
    for (const c of pol.classes) {
      if (c.police === undefined) continue;
      const name = ident('police_', `${pol.name}_${c.name}`, used);
      limits.set(`${pol.name}/${c.name}`, name);
      const rate = Math.max(1, Math.round(c.police.rateBitsPerSecond / 8));
      block(`limit ${name}`, [
        `rate over ${rate} bytes/second burst ${Math.max(1, Math.round(c.police.burstBytes))} bytes`,
      ]);
    }

  // Conntrack zones and timeouts.
  const zoneMap = (pairs: readonly (readonly [string, number])[]): string =>
    `{ ${pairs.map(([n, id]) => `${q(n)} : ${id}`).join(', ')} }`;
  const pre = ['type filter hook prerouting priority raw; policy accept;'];
  const ctIn = [...inp.ctZone];
  if (ctIn.length > 0) {
    pre.push(`ct zone set iifname map ${zoneMap(ctIn)}`);
    pre.push('iifname @vce_if meta l4proto tcp ct timeout set "ct_tcp"');
    pre.push('iifname @vce_if meta l4proto udp ct timeout set "ct_udp"');
  }
  block('chain prerouting', pre);
  const ctOut = [...ctIn, ...inp.vrfZone];
  block('chain output', [
    'type filter hook output priority raw; policy accept;',
    ...(ctOut.length > 0 ? [`ct zone set oifname map ${zoneMap(ctOut)}`] : []),
  ]);

  // Forwarding between zones.
  block('chain forward', [
    'type filter hook forward priority filter; policy accept;',
    `${iif} @vce_if jump zones`,
    `oifname @vce_if counter drop ${comment('into a context from outside')}`,
  ]);
  const verdict = (a: 'allow' | 'deny'): string => (a === 'allow' ? 'accept' : 'drop');
  const zl = [`oifname != @vce_if counter drop ${comment('out of the contexts')}`];
  for (const zone of z.zones) {
    const s = `@${zoneSet.get(zone)!}`;
    zl.push(`${iif} ${s} oifname ${s} counter ${verdict(z.intraZone)} ${comment(`intra-zone ${zone}`)}`);
  }
  zl.push(`${iif} != @zoned oifname != @zoned accept ${comment('no zone')}`);
  zl.push('ct state established,related accept');
  zl.push('ct state invalid counter drop');
  zl.push(`ct state new tcp flags & (fin|syn|rst|ack) != syn counter drop ${comment('tcp without syn')}`);
  zl.push(`ct state new ct count over ${f.max} counter drop ${comment('flow table full')}`);
  z.rules.forEach((r, i) => {
    const path = `zones.rules[${i}]`;
    const from = zoneRef(r.from, `${path}.from`);
    const to = zoneRef(r.to, `${path}.to`);
    const vs = matchVariants(r.match);
    if (vs.length === 0) notes.push(`zone rule "${r.name ?? i}" can never match: not rendered`);
    for (const v of vs)
      zl.push(
        line(
          `${iif} ${from} oifname ${to}`,
          ...v.exprs,
          'counter',
          verdict(r.action),
          comment(r.name ?? `rule-${i}`),
        ),
      );
  });
  zl.push(`counter ${verdict(z.defaultAction)} ${comment('default')}`);
  block('chain zones', zl);

  // The vCE itself.
  const self = z.self;
  const il = [
    'type filter hook input priority filter; policy accept;',
    `${iif} != @vce_if accept`,
    'ct state established,related accept',
  ];
  // RFC 4861 §6.1.1, §7.1.1: RS, RA, NS, NA, redirect only with hop limit 255.
  il.push(
    'icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect } ip6 hoplimit 255 accept',
  );
  if (self.icmp) il.push('meta l4proto { icmp, ipv6-icmp } accept');
  for (const fam of [4, 6] as const) {
    const ip = fam === 4 ? 'ip' : 'ip6';
    const bgp = addressSet(self.bgpPeers, fam);
    if (bgp.length > 0) {
      il.push(`${ip} saddr ${set(bgp)} tcp dport ${BGP_PORT} accept`);
      il.push(`${ip} saddr ${set(bgp)} tcp sport ${BGP_PORT} accept`);
    }
    const bfd = addressSet(self.bfdPeers, fam);
    if (bfd.length > 0)
      il.push(
        `${ip} saddr ${set(bfd)} udp dport { ${BFD_CONTROL_PORT}, ${BFD_ECHO_PORT}, ${BFD_MULTIHOP_PORT} } accept`,
      );
  }
  if (self.bfdPeers.length > 0)
    il.push(`udp dport ${BFD_ECHO_PORT} fib saddr type local accept ${comment('our own BFD echo')}`);
  self.allow.forEach((m, i) => {
    const vs = matchVariants(m);
    if (vs.length === 0) notes.push(`self allow ${i} can never match: not rendered`);
    for (const v of vs) il.push(line(...v.exprs, 'accept', comment(`self allow ${i}`)));
  });
  il.push(`counter drop ${comment('to the vCE from a VM interface')}`);
  block('chain input', il);

  // DiffServ.
  const policies = new Map(cfg.qos.map((p) => [p.name, p]));
  const qosIfs = cfg.interfaces.filter((i) => i.qosPolicy !== undefined);
  const chainOf = new Map<string, string>();
  for (const i of qosIfs) {
    if (!policies.has(i.qosPolicy!))
      throw new LinuxRenderError(`interfaces.${i.name}.qosPolicy`, `no QoS policy "${i.qosPolicy}"`);
    if (!chainOf.has(i.qosPolicy!)) chainOf.set(i.qosPolicy!, ident('qos_', i.qosPolicy!, used));
  }
  if (qosIfs.length > 0)
    block('chain postrouting', [
      'type filter hook postrouting priority mangle; policy accept;',
      `oifname vmap { ${qosIfs.map((i) => `${q(kname(i.name))} : jump ${chainOf.get(i.qosPolicy!)!}`).join(', ')} }`,
    ]);
  for (const [pname, chain] of chainOf) {
    const pol = policies.get(pname)!;
    const ql: string[] = [];
    for (const c of pol.classes) {
      const vs = matchVariants(c.match);
      if (vs.length === 0) {
        notes.push(`QoS class "${pname}/${c.name}" can never match: not rendered`);
        continue;
      }
      const lim = limits.get(`${pname}/${c.name}`);
      const dscpSet = (fam: 4 | 6, d: number): string => `${fam === 4 ? 'ip' : 'ip6'} dscp set ${d}`;
      if (c.police !== undefined && lim !== undefined) {
        const exceed = c.police.exceed;
        if (exceed === 'drop')
          for (const v of vs)
            ql.push(line(...v.exprs, `limit name ${q(lim)}`, 'counter drop', comment(`${c.name} exceed`)));
        else
          for (const v of perFamily(vs))
            ql.push(
              line(
                ...v.exprs,
                `limit name ${q(lim)}`,
                'counter',
                dscpSet(v.family, exceed.remark),
                'return',
                comment(`${c.name} exceed`),
              ),
            );
      }
      if (c.setDscp !== undefined)
        for (const v of perFamily(vs))
          ql.push(line(...v.exprs, 'counter', dscpSet(v.family, c.setDscp), 'return', comment(c.name)));
      else for (const v of vs) ql.push(line(...v.exprs, 'counter return', comment(c.name)));
    }
    ql.push(`counter ${comment('default')}`);
    block(`chain ${chain}`, ql);
  }

  const bodyText = body.join('\n');
  const hash = createHash('sha256').update(bodyText).digest('hex').slice(0, 16);
  const text = [
    `table inet ${NFT_TABLE}`,
    `delete table inet ${NFT_TABLE}`,
    `table inet ${NFT_TABLE} {`,
    `\tcomment ${q(NFT_HASH_PREFIX + hash)}`,
    bodyText,
    '}',
    '',
  ].join('\n');
  return { text, hash, notes };
}
