/**
 * WAN adapter for a real gobgpd (GoBGP 3.x) as the PE control plane (draft §7.2.1: the WAN
 * provisioning system provisions the PE VRF and its policies from the connection ids and the
 * tenant context). It drives gobgpd through its `gobgp` CLI (`gobgp -u HOST -p PORT ...`, run with
 * execFile and argument arrays, never a shell) against gobgpd's gRPC API.
 *
 * A binding `id` owns on gobgpd: the VRF `<prefix><id>` (RD, import/export route targets, a
 * numeric id hashed from the binding id), the PE-CE neighbour bound to that VRF (protocol bgp, IPv4
 * and IPv6 unicast), and the VRF's static routes towards the vCE (protocol static). Nothing else
 * is touched: neighbours and VRFs outside the prefix are only read.
 *
 * Every change reads gobgpd first (`vrf -j`, `neighbor -j`, the VPN RIBs) and applies only the
 * difference; a changed RD or route target recreates the VRF (GoBGP has no way to change a VRF in
 * place, and refuses to delete a VRF a neighbour uses: the neighbour is removed first and added
 * back, so its session restarts). Calls on one adapter run one at a time.
 *
 * Not expressible with GoBGP 3.x, hence refused or left to gobgpd's configuration (see
 * docs/wan-adapters.md): dynamic neighbours bound to a VRF (`dynamicRange`: peer groups carry no
 * VRF in GoBGP, and the 3.10 CLI has no peer-group or dynamic-neighbor command); per-neighbour
 * transport settings (passive mode, remote port, local address, timers, MD5) and BFD, which the
 * CLI's `neighbor add` cannot set.
 */
import { execFile } from 'node:child_process';
import { formatAddress, parseAddress, parsePrefix } from '../../lib/ip.ts';
import { WanError, type WanAdapter, type WanBindingSpec, type WanBindingStatus } from './types.ts';
import {
  DEFAULT_NAME_PREFIX,
  bindingIdOf,
  canonicalRd,
  canonicalRts,
  checkSpec,
  stableNumber,
  staticPrefixesOf,
  vrfNameOf,
} from './naming.ts';
import {
  FAMILY_CODES,
  pathNextHop,
  rdArg,
  rdFromAny,
  rdText,
  rtArg,
  rtFromAny,
  sessionState,
  type GobgpPath,
  type GobgpPeer,
  type GobgpRib,
  type GobgpVrf,
} from './gobgp-json.ts';

export interface GobgpAdapterOptions {
  /** Where gobgpd's gRPC API listens. */
  readonly host: string;
  readonly port: number;
  /** Prefix of the VRF names this adapter owns (default `vce-`). */
  readonly namePrefix?: string;
  /** The `gobgp` binary (default `gobgp` on PATH). */
  readonly cli?: string;
  /** Per CLI call (default 10 000 ms). */
  readonly timeoutMs?: number;
  /** Told every change made on gobgpd (the CLI command), for audit logs and tests. */
  readonly onChange?: (change: string) => void;
}

/** Why dynamic-neighbour bindings are refused (documented in docs/wan-adapters.md). */
export const GOBGP_DYNAMIC_UNSUPPORTED =
  'dynamic neighbours cannot be bound to a VRF in GoBGP 3.x (peer groups have no vrf, so a ' +
  'dynamic neighbour always lands in the global table), and the 3.10 CLI has no peer-group or ' +
  'dynamic-neighbor command; provision the vCE as a configured neighbour instead';

/** Why BFD bindings are refused: a vCE tracking its PE with BFD would never see it come up. */
export const GOBGP_BFD_UNSUPPORTED =
  'gobgpd has no BFD (RFC 5880); the vCE would wait for a BFD session that never comes up';

const NEIGHBOR_FAMILIES = ['ipv4-unicast', 'ipv6-unicast'] as const;

interface Observed {
  readonly vrfs: readonly GobgpVrf[];
  readonly peers: readonly GobgpPeer[];
}

interface VrfView {
  readonly rd: string;
  readonly importRts: string[];
  readonly exportRts: string[];
}

function vrfView(v: GobgpVrf): VrfView {
  return {
    rd: v.rd === undefined ? '' : rdFromAny(v.rd),
    importRts: [...new Set((v.import_rt ?? []).map(rtFromAny))].sort(),
    exportRts: [...new Set((v.export_rt ?? []).map(rtFromAny))].sort(),
  };
}

const peerAddress = (p: GobgpPeer): string => p.conf?.neighbor_address ?? p.state?.neighbor_address ?? '';

function peerFamilies(p: GobgpPeer): string[] {
  const out: string[] = [];
  for (const a of p.afi_safis ?? []) {
    const f = a.config?.family;
    for (const [name, [afi, safi]] of Object.entries(FAMILY_CODES))
      if (f?.afi === afi && f.safi === safi) out.push(name);
  }
  return out.sort();
}

/** An address in one text form (an IPv4-mapped IPv6 address as the IPv4 address). */
function addressKey(a: string): string {
  let b: Uint8Array;
  try {
    b = parseAddress(a);
  } catch {
    return a; // not an address (a path without next hop): compares unequal to every address
  }
  const mapped =
    b.length === 16 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  return formatAddress(mapped ? b.subarray(12) : b);
}

/** The static route's next hop for gobgpd: the vCE address, IPv4-mapped for an IPv6 prefix. */
function staticNextHop(prefix: string, ce: string): string {
  const v6 = parsePrefix(prefix).addr.length === 16;
  const ceV6 = parseAddress(ce).length === 16;
  return v6 && !ceV6 ? `::ffff:${ce}` : ce;
}

const familyOf = (prefix: string): 'ipv4' | 'ipv6' => (prefix.includes(':') ? 'ipv6' : 'ipv4');

export class GobgpAdapter implements WanAdapter {
  readonly kind = 'gobgp';
  private readonly prefix: string;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(readonly opts: GobgpAdapterOptions) {
    this.prefix = opts.namePrefix ?? DEFAULT_NAME_PREFIX;
  }

  /** The VRF name a binding owns on gobgpd. */
  vrfName(spec: Pick<WanBindingSpec, 'id'>): string {
    return vrfNameOf(this.prefix, spec.id);
  }

  async provision(spec: WanBindingSpec): Promise<void> {
    checkSpec(this.kind, spec);
    if (spec.dynamicRange !== undefined)
      throw new WanError(this.kind, `binding ${spec.id}: ${GOBGP_DYNAMIC_UNSUPPORTED}`);
    if (spec.bfd === true) throw new WanError(this.kind, `binding ${spec.id}: ${GOBGP_BFD_UNSUPPORTED}`);
    return this.serial(() => this.doProvision(spec));
  }

  async deprovision(spec: WanBindingSpec): Promise<void> {
    checkSpec(this.kind, spec, { forDeprovision: true });
    return this.serial(async () => {
      const name = this.vrfName(spec);
      const seen = await this.observe();
      for (const p of seen.peers)
        if (p.conf?.vrf === name) await this.change('neighbor', 'del', peerAddress(p));
      // Deleting the VRF withdraws its static routes with it.
      if (seen.vrfs.some((v) => v.name === name)) await this.change('vrf', 'del', name);
    });
  }

  async status(spec: WanBindingSpec): Promise<WanBindingStatus> {
    checkSpec(this.kind, spec, { forDeprovision: true });
    return this.serial(async () => {
      const name = this.vrfName(spec);
      const seen = await this.observe();
      const neighbors = seen.peers
        .filter((p) => p.conf?.vrf === name)
        .map((p) => {
          const state = sessionState(p.state?.session_state);
          return {
            address: peerAddress(p),
            state,
            established: state === 'established',
            received: (p.afi_safis ?? []).reduce((n, a) => n + (a.state?.received ?? 0), 0),
          };
        })
        .sort((a, b) => a.address.localeCompare(b.address));
      const vrf = seen.vrfs.find((v) => v.name === name);
      if (vrf === undefined) return { present: false, neighbors, routes: [] };
      const view = vrfView(vrf);
      return { present: true, ...view, neighbors, routes: await this.vrfRoutes(name, view.rd) };
    });
  }

  list(): Promise<string[]> {
    return this.serial(async () => {
      const seen = await this.observe();
      const ids = new Set<string>();
      for (const n of [...seen.vrfs.map((v) => v.name), ...seen.peers.map((p) => p.conf?.vrf ?? '')]) {
        const id = bindingIdOf(this.prefix, n);
        if (id !== undefined) ids.add(id);
      }
      return [...ids].sort();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue.catch(() => undefined);
  }

  // ------------------------------------------------------------------------------------------

  private async doProvision(spec: WanBindingSpec): Promise<void> {
    const name = this.vrfName(spec);
    const want: VrfView = {
      rd: canonicalRd(spec.rd),
      importRts: canonicalRts(spec.importRts),
      exportRts: canonicalRts(spec.exportRts),
    };
    let seen = await this.observe();
    // Refuse before changing anything: an RD another VRF uses (routes would be mixed up), a
    // neighbour address configured outside this binding's VRF.
    const clash = seen.vrfs.find((v) => v.name !== name && v.rd !== undefined && rdFromAny(v.rd) === want.rd);
    if (clash !== undefined)
      throw new WanError(this.kind, `binding ${spec.id}: RD ${want.rd} is already used by VRF ${clash.name}`);
    const ce = spec.protocol === 'bgp' ? addressKey(spec.ceAddress) : undefined;
    const other = seen.peers.find(
      (p) => ce !== undefined && addressKey(peerAddress(p)) === ce && p.conf?.vrf !== name,
    );
    if (other !== undefined)
      throw new WanError(
        this.kind,
        `binding ${spec.id}: neighbour ${spec.ceAddress} is already configured ${other.conf?.vrf === undefined || other.conf.vrf === '' ? 'in the global table' : `in VRF ${other.conf.vrf}`}`,
      );

    // The VRF, recreated when its RD or route targets differ.
    const cur = seen.vrfs.find((v) => v.name === name);
    if (cur !== undefined && JSON.stringify(vrfView(cur)) !== JSON.stringify(want)) {
      for (const p of seen.peers)
        if (p.conf?.vrf === name) await this.change('neighbor', 'del', peerAddress(p));
      await this.change('vrf', 'del', name);
    }
    if (cur === undefined || JSON.stringify(vrfView(cur)) !== JSON.stringify(want)) {
      const rts = [
        ...(want.importRts.length > 0 ? ['import', ...want.importRts.map(rtArg)] : []),
        ...(want.exportRts.length > 0 ? ['export', ...want.exportRts.map(rtArg)] : []),
      ];
      await this.change(
        'vrf',
        'add',
        name,
        'id',
        String(stableNumber(spec.id)),
        'rd',
        rdArg(want.rd),
        'rt',
        ...rts,
      );
      seen = await this.observe();
      const made = seen.vrfs.find((v) => v.name === name);
      if (made === undefined || JSON.stringify(vrfView(made)) !== JSON.stringify(want))
        throw new WanError(
          this.kind,
          `VRF ${name} reads back as ${made === undefined ? 'absent' : JSON.stringify(vrfView(made))}, not ${JSON.stringify(want)}`,
        );
    }

    // The PE-CE neighbour (protocol bgp): exactly one, the vCE, in this VRF.
    for (const p of seen.peers) {
      if (p.conf?.vrf !== name) continue;
      const keep =
        ce !== undefined &&
        addressKey(peerAddress(p)) === ce &&
        p.conf.peer_asn === spec.ceAsn &&
        JSON.stringify(peerFamilies(p)) === JSON.stringify([...NEIGHBOR_FAMILIES]);
      if (!keep) await this.change('neighbor', 'del', peerAddress(p));
    }
    if (ce !== undefined) {
      const has = (await this.observe()).peers.some(
        (p) => p.conf?.vrf === name && addressKey(peerAddress(p)) === ce,
      );
      if (!has)
        await this.change(
          'neighbor',
          'add',
          spec.ceAddress,
          'as',
          String(spec.ceAsn),
          'vrf',
          name,
          'family',
          NEIGHBOR_FAMILIES.join(','),
        );
    }

    // Static routes towards the vCE (protocol static): add what is missing, remove the rest.
    const wantStatic = new Map(staticPrefixesOf(spec).map((p) => [p, staticNextHop(p, spec.ceAddress)]));
    const have = await this.localRoutes(want.rd);
    for (const [p, nh] of have) {
      const w = wantStatic.get(p);
      if (w !== undefined && addressKey(w) === addressKey(nh)) continue;
      await this.change('vrf', name, 'rib', 'del', p, '-a', familyOf(p));
    }
    for (const [p, nh] of wantStatic) {
      const h = have.get(p);
      if (h !== undefined && addressKey(h) === addressKey(nh)) continue;
      await this.change('vrf', name, 'rib', 'add', p, 'nexthop', nh, '-a', familyOf(p));
    }
  }

  /** VRFs and neighbours as gobgpd holds them. */
  private async observe(): Promise<Observed> {
    const [vrfs, peers] = await Promise.all([
      this.json<GobgpVrf[] | null>('vrf'),
      this.json<GobgpPeer[] | null>('neighbor'),
    ]);
    return { vrfs: vrfs ?? [], peers: peers ?? [] };
  }

  /** Every path of both VPN RIBs whose RD is `rd` (the VRF's own routes: static and learned). */
  private async vpnPaths(rd: string): Promise<GobgpPath[]> {
    const out: GobgpPath[] = [];
    for (const fam of ['vpnv4', 'vpnv6']) {
      const rib = (await this.json<GobgpRib | null>('global', 'rib', '-a', fam)) ?? {};
      for (const paths of Object.values(rib))
        for (const p of paths) {
          const r = p.nlri?.rd;
          if (r === undefined || p.nlri?.prefix === undefined) continue;
          if (rdText(r.type ?? 0, r.admin ?? 0, r.assigned ?? 0) === rd) out.push(p);
        }
    }
    return out;
  }

  /** The VRF's locally added routes (no `neighbor-ip`): prefix -> next hop. */
  private async localRoutes(rd: string): Promise<Map<string, string>> {
    const m = new Map<string, string>();
    for (const p of await this.vpnPaths(rd))
      if (p['neighbor-ip'] === undefined) m.set(p.nlri!.prefix!, pathNextHop(p) ?? '');
    return m;
  }

  /**
   * The VRF's table: its own routes (static, and learned from its CEs: VPN paths with its RD) and
   * the VPN routes it imports (`gobgp vrf NAME rib`, filtered by its import route targets).
   */
  private async vrfRoutes(name: string, rd: string): Promise<string[]> {
    const set = new Set((await this.vpnPaths(rd)).map((p) => p.nlri!.prefix!));
    for (const fam of ['ipv4', 'ipv6']) {
      const rib = (await this.json<GobgpRib | null>('vrf', name, 'rib', '-a', fam)) ?? {};
      for (const paths of Object.values(rib))
        for (const p of paths) if (p.nlri?.prefix) set.add(p.nlri.prefix);
    }
    return [...set].map((p) => formatPrefixText(p)).sort();
  }

  /** A CLI call that changes gobgpd: reported to `onChange` once done. */
  private async change(...args: string[]): Promise<void> {
    await this.cli(...args);
    this.opts.onChange?.(`gobgp ${args.join(' ')}`);
  }

  private async json<T>(...args: string[]): Promise<T> {
    const out = (await this.cli(...args, '-j')).trim();
    if (out === '') return null as T;
    try {
      return JSON.parse(out) as T;
    } catch {
      throw new WanError(this.kind, `gobgp ${args.join(' ')} -j printed no JSON: ${out.slice(0, 200)}`);
    }
  }

  /** `gobgp -u HOST -p PORT ...args` (execFile, no shell); stdout, or a WanError with stderr. */
  private cli(...args: string[]): Promise<string> {
    const argv = ['-u', this.opts.host, '-p', String(this.opts.port), ...args];
    return new Promise((resolve, reject) => {
      execFile(
        this.opts.cli ?? 'gobgp',
        argv,
        { timeout: this.opts.timeoutMs ?? 10_000, maxBuffer: 256 * 1024 * 1024 },
        (err, stdout, stderr) => {
          if (err === null) {
            resolve(stdout);
            return;
          }
          const detail = `${stderr}${stdout}`.trim().split('\n').slice(-5).join(' | ');
          reject(new WanError(this.kind, `gobgp ${args.join(' ')}: ${detail || err.message}`));
        },
      );
    });
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new WanError(this.kind, 'adapter closed'));
    const run = this.queue.then(f);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function formatPrefixText(p: string): string {
  try {
    const x = parsePrefix(p, true);
    return `${formatAddress(x.addr)}/${x.len}`;
  } catch {
    return p;
  }
}
