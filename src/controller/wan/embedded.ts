/**
 * WAN adapter for our own agent in the PE role (the embedded PE of the lab, draft §7.2.1). A PE
 * VRF is a routing context of the PE agent: route distinguisher and route targets, its own BGP
 * speaker listening on the PE's attachment address with the vCE as neighbour (or a
 * dynamic-neighbour range, draft §7.2.1.1), static routes towards the vCE for protocol static.
 * The PE agent's default context speaks VPNv4/VPNv6 to the remote PEs (RFC 4364; the agent's
 * case 1-B wiring): the VRF's static routes and the routes its speaker learns from the vCE leave
 * as VPN routes with the VRF's RD and export targets, and the remote PEs' VPN routes with an
 * imported target come back into the VRF (FIB) and are advertised to the vCE (src/agent/pe-vrf.ts).
 *
 * The adapter changes only the VRFs named `<prefix><id>` of the PE agent's configuration document
 * (YAML/JSON object): it reads the running document (`GET /api/v1/config`), or holds it when it is
 * the PE's only writer (`config`), validates the changed document locally, and has the agent apply
 * it with its own diff (`PUT /api/v1/config` over the network, or `agent.apply()` in-process), so
 * what did not change keeps running. Status and `list()` come from the PE itself (`/api/v1/vrfs`,
 * `/api/v1/vrfs/{name}`, `/api/v1/bgp/neighbors?vrf=`, `/api/v1/vrfs/{name}/fib`), never from the
 * document.
 */
import { buildAgentConfig, ConfigError } from '../../agent/config.ts';
import type { RunningAgent } from '../../agent/run.ts';
import { neighborViews } from '../../bgp/rib-view.ts';
import { parseAddress, parsePrefix } from '../../lib/ip.ts';
import { WanError, type WanAdapter, type WanBindingSpec, type WanBindingStatus } from './types.ts';
import {
  DEFAULT_NAME_PREFIX,
  bindingIdOf,
  canonicalRd,
  canonicalRts,
  checkSpec,
  staticPrefixesOf,
  vrfNameOf,
} from './naming.ts';

export interface EmbeddedPeOptions {
  /** The PE agent's management API (`http://host:port`); or `agent` for one in this process. */
  readonly api?: string;
  readonly agent?: RunningAgent;
  /**
   * The configuration document the PE agent runs now, when this adapter is its only writer: the
   * adapter then holds it and changes only its VRFs. Absent: before every change the adapter
   * reads the running document from the PE (`GET /api/v1/config`) and writes it back with its
   * VRFs changed.
   */
  readonly config?: Readonly<Record<string, unknown>>;
  /** Prefix of the VRF (routing context) names this adapter owns (default `vce-`). */
  readonly namePrefix?: string;
  /** Port of the PE VRF speakers' listeners on the attachment addresses (default 179). */
  readonly bgpPort?: number;
  /**
   * Neighbour settings added to every PE-CE neighbour and dynamic-range template (agent config
   * keys: `passive`, `connect-retry`, `hold-time`, `remote-port`, policies...). The defaults
   * are `import-policy`/`export-policy: accept-all` (RFC 8212 needs explicit eBGP policies).
   */
  readonly neighborDefaults?: Readonly<Record<string, unknown>>;
  /** Bearer token for the PE agent's API, if it asks for one. */
  readonly token?: string;
  /** Per API request (default 10 000 ms). */
  readonly timeoutMs?: number;
  /** Told every change the PE agent reports for an applied document, for audit logs and tests. */
  readonly onChange?: (change: string) => void;
}

interface NeighborJson {
  readonly address: string;
  readonly state: string;
  readonly 'afi-safis': Readonly<Record<string, { readonly received: number }>>;
}

interface VrfJson {
  readonly name: string;
  readonly 'route-distinguisher': string | null;
  readonly 'route-targets': { readonly import: readonly string[]; readonly export: readonly string[] };
}

/** What the adapter needs of a PE agent: the API over HTTP, or the agent object itself. */
interface PeClient {
  /** The running document, or undefined when the PE does not tell it. */
  readConfig(): Promise<Record<string, unknown> | undefined>;
  apply(doc: Record<string, unknown>): Promise<readonly string[]>;
  vrfNames(): Promise<string[]>;
  vrf(name: string): Promise<VrfJson | undefined>;
  neighbors(vrf: string): Promise<NeighborJson[]>;
  fib(vrf: string): Promise<string[]>;
}

type Vrf = Record<string, unknown> & { name: string };

/** The attachment circuit as an interface name of the PE VRF (VLAN, QinQ or VXLAN connection id). */
export function attachmentName(a: WanBindingSpec['attachment']): string {
  if (a.kind === 'qinq') return `qinq${a.outer ?? 0}.${a.id}`;
  return `${a.kind}${a.id}`;
}

export class EmbeddedPeAdapter implements WanAdapter {
  readonly kind = 'embedded';
  private readonly prefix: string;
  private readonly client: PeClient;
  /** The held document (`config` given), else undefined: read from the PE each time. */
  private doc: Record<string, unknown> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(readonly opts: EmbeddedPeOptions) {
    this.prefix = opts.namePrefix ?? DEFAULT_NAME_PREFIX;
    if ((opts.api === undefined) === (opts.agent === undefined))
      throw new WanError('embedded', 'give exactly one of api (URL of the PE agent) or agent');
    this.client =
      opts.agent !== undefined
        ? inProcessClient(opts.agent)
        : httpClient(opts.api!.replace(/\/+$/, ''), opts.token, opts.timeoutMs ?? 10_000);
    if (opts.config !== undefined) {
      this.doc = structuredClone(opts.config);
      vrfsOf(this.doc); // a malformed `vrfs` fails here, not at the first binding
    }
  }

  vrfName(spec: Pick<WanBindingSpec, 'id'>): string {
    return vrfNameOf(this.prefix, spec.id);
  }

  async provision(spec: WanBindingSpec): Promise<void> {
    checkSpec(this.kind, spec);
    const want = this.vrfEntry(spec);
    return this.serial(async () => {
      const doc = await this.current();
      const vrfs = vrfsOf(doc);
      const i = vrfs.findIndex((v) => v.name === want.name);
      const same = i >= 0 && JSON.stringify(vrfs[i]) === JSON.stringify(want);
      // Unchanged and running: nothing to do. Unchanged but absent (the PE restarted from its
      // file): the held document goes back.
      if (same && (await this.client.vrfNames()).includes(want.name)) return;
      const next = vrfs.slice();
      if (i >= 0) next[i] = want;
      else next.push(want);
      await this.push({ ...doc, vrfs: next });
    });
  }

  async deprovision(spec: WanBindingSpec): Promise<void> {
    checkSpec(this.kind, spec, { forDeprovision: true });
    const name = this.vrfName(spec);
    return this.serial(async () => {
      const doc = await this.current();
      const vrfs = vrfsOf(doc);
      const held = vrfs.some((v) => v.name === name);
      if (!held && !(await this.client.vrfNames()).includes(name)) return;
      await this.push({ ...doc, vrfs: vrfs.filter((v) => v.name !== name) });
    });
  }

  async status(spec: WanBindingSpec): Promise<WanBindingStatus> {
    checkSpec(this.kind, spec, { forDeprovision: true });
    const name = this.vrfName(spec);
    return this.serial(async () => {
      const v = await this.client.vrf(name);
      if (v === undefined) return { present: false, neighbors: [], routes: [] };
      const [neighbors, routes] = await Promise.all([this.client.neighbors(name), this.client.fib(name)]);
      return {
        present: true,
        ...(v['route-distinguisher'] === null ? {} : { rd: canonicalRd(v['route-distinguisher']) }),
        importRts: canonicalRts(v['route-targets'].import),
        exportRts: canonicalRts(v['route-targets'].export),
        neighbors: neighbors
          .map((n) => ({
            address: n.address,
            state: n.state,
            established: n.state === 'established',
            received: Object.values(n['afi-safis']).reduce((s, f) => s + f.received, 0),
          }))
          .sort((a, b) => a.address.localeCompare(b.address)),
        routes: [...new Set(routes)].sort(),
      };
    });
  }

  list(): Promise<string[]> {
    return this.serial(async () =>
      (await this.client.vrfNames())
        .map((n) => bindingIdOf(this.prefix, n))
        .filter((id): id is string => id !== undefined)
        .sort(),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue.catch(() => undefined);
  }

  /** The PE VRF (agent routing context) of a binding, as a configuration entry. */
  vrfEntry(spec: WanBindingSpec): Vrf {
    if (spec.bfd === true && spec.protocol === 'static')
      throw new WanError(
        this.kind,
        `binding ${spec.id}: BFD-tracked static routes need a PE interface address and an agent restart; use protocol bgp with bfd`,
      );
    const iface = attachmentName(spec.attachment);
    const entry: Vrf = {
      name: this.vrfName(spec),
      'route-distinguisher': canonicalRd(spec.rd),
      'route-targets': { import: canonicalRts(spec.importRts), export: canonicalRts(spec.exportRts) },
      interfaces: [
        { name: iface, description: `wan binding ${spec.id} (tenant ${spec.tenant}, VPN ${spec.vrf})` },
      ],
    };
    const statics = staticPrefixesOf(spec).map((p) => {
      const sameFamily = parsePrefix(p).addr.length === parseAddress(spec.ceAddress).length;
      return sameFamily ? { prefix: p, 'next-hop': spec.ceAddress } : { prefix: p, interface: iface };
    });
    if (statics.length > 0) entry['static-routes'] = statics;
    if (spec.protocol === 'bgp' || spec.dynamicRange !== undefined) {
      const common = {
        description: `wan binding ${spec.id}`,
        'import-policy': 'accept-all',
        'export-policy': 'accept-all',
        ...(spec.bfd === true ? { bfd: true } : {}),
        ...this.opts.neighborDefaults,
      };
      const bgp: Record<string, unknown> = {
        asn: spec.peAsn,
        listen: { address: spec.peAddress, port: this.opts.bgpPort ?? 179 },
      };
      if (spec.dynamicRange !== undefined) {
        bgp['dynamic-neighbors'] = [
          {
            prefix: spec.dynamicRange,
            ...(spec.ceAsn === undefined ? { 'peer-asns': 'any' } : { 'peer-asn': spec.ceAsn }),
            template: { 'local-address': spec.peAddress, ...common },
          },
        ];
      } else {
        bgp['neighbors'] = [
          { address: spec.ceAddress, 'peer-asn': spec.ceAsn, 'local-address': spec.peAddress, ...common },
        ];
      }
      entry['bgp'] = bgp;
    }
    return entry;
  }

  /** The document to change: the held one, or the one the PE runs now. */
  private async current(): Promise<Record<string, unknown>> {
    if (this.doc !== undefined) return this.doc;
    const doc = await this.client.readConfig();
    if (doc === undefined)
      throw new WanError(
        this.kind,
        'the PE agent does not tell its configuration (GET /api/v1/config); give the adapter `config`',
      );
    return doc;
  }

  /** Validates a whole document here, then has the PE apply it; holds it once applied. */
  private async push(next: Record<string, unknown>): Promise<void> {
    try {
      buildAgentConfig(next);
    } catch (e) {
      if (e instanceof ConfigError) throw new WanError(this.kind, `PE configuration refused: ${e.message}`);
      throw e;
    }
    const changes = await this.client.apply(next);
    if (this.doc !== undefined) this.doc = next;
    for (const c of changes) this.opts.onChange?.(c);
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new WanError(this.kind, 'adapter closed'));
    const run = this.queue.then(f);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function vrfsOf(doc: Record<string, unknown>): Vrf[] {
  const v = doc['vrfs'];
  if (v === undefined) return [];
  if (
    !Array.isArray(v) ||
    !v.every((x) => typeof x === 'object' && x !== null && typeof (x as Vrf).name === 'string')
  )
    throw new WanError('embedded', 'the PE configuration has a malformed vrfs list');
  return v as Vrf[];
}

// --- PE clients ------------------------------------------------------------------------------

function httpClient(base: string, token: string | undefined, timeoutMs: number): PeClient {
  const call = async <T>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: T }> => {
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      throw new WanError('embedded', `${method} ${base}${path}: ${(e as Error).message}`);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text === '' ? null : JSON.parse(text);
    } catch {
      json = { message: text.slice(0, 200) };
    }
    return { status: res.status, json: json as T };
  };
  const ok = async <T>(path: string): Promise<T> => {
    const r = await call<T & { message?: string }>('GET', path);
    if (r.status !== 200)
      throw new WanError('embedded', `GET ${path}: ${r.status} ${r.json?.message ?? ''}`.trim());
    return r.json;
  };
  return {
    async readConfig() {
      const r = await call<Record<string, unknown>>('GET', '/api/v1/config');
      if (r.status === 404) return undefined;
      if (r.status !== 200 || typeof r.json !== 'object' || r.json === null)
        throw new WanError('embedded', `GET /api/v1/config: ${r.status}`);
      return r.json;
    },
    async apply(doc) {
      const r = await call<{ changes?: string[]; message?: string }>('PUT', '/api/v1/config', doc);
      if (r.status !== 200)
        throw new WanError(
          'embedded',
          `PE refused the configuration (${r.status}): ${r.json?.message ?? ''}`,
        );
      return r.json.changes ?? [];
    },
    async vrfNames() {
      return (await ok<{ name: string }[]>('/api/v1/vrfs')).map((v) => v.name);
    },
    async vrf(name) {
      const r = await call<VrfJson & { message?: string }>('GET', `/api/v1/vrfs/${encodeURIComponent(name)}`);
      if (r.status === 404) return undefined;
      if (r.status !== 200) throw new WanError('embedded', `GET /api/v1/vrfs/${name}: ${r.status}`);
      return r.json;
    },
    async neighbors(vrf) {
      const r = await call<NeighborJson[]>('GET', `/api/v1/bgp/neighbors?vrf=${encodeURIComponent(vrf)}`);
      return r.status === 200 ? r.json : []; // 404: the context runs no BGP (protocol static)
    },
    async fib(vrf) {
      return (await ok<{ prefix: string }[]>(`/api/v1/vrfs/${encodeURIComponent(vrf)}/fib`)).map(
        (e) => e.prefix,
      );
    },
  };
}

function inProcessClient(agent: RunningAgent): PeClient {
  return {
    async readConfig() {
      const r = await agent.api?.inject({ method: 'GET', url: '/api/v1/config' });
      return r?.statusCode === 200 ? r.json<Record<string, unknown>>() : undefined;
    },
    async apply(doc) {
      try {
        return (await agent.apply(buildAgentConfig(doc))).changes;
      } catch (e) {
        throw new WanError('embedded', `PE refused the configuration: ${(e as Error).message}`);
      }
    },
    vrfNames: () => Promise.resolve([...agent.contexts.keys()]),
    vrf(name) {
      const c = agent.contexts.get(name);
      return Promise.resolve(
        c === undefined
          ? undefined
          : { name, 'route-distinguisher': c.routeDistinguisher ?? null, 'route-targets': c.routeTargets },
      );
    },
    neighbors(vrf) {
      const sp = agent.contexts.get(vrf)?.speaker;
      return Promise.resolve(sp === undefined ? [] : neighborViews(sp));
    },
    fib(vrf) {
      return Promise.resolve((agent.contexts.get(vrf)?.fib() ?? []).map((e) => e.prefix));
    },
  };
}
