/**
 * The controller's core services over the store: reading the model, computing and publishing each
 * vCE agent's desired configuration (a store key the agent's config stream watches), reading what
 * agents report, and reaching PEs through their WAN adapters.
 */
import { createHash } from 'node:crypto';
import { agentConfig } from './agent-config.ts';
import { Ipam, type IpamConfig } from './ipam.ts';
import {
  KEYS,
  type Attachment,
  type Endpoint,
  type Host,
  type Pe,
  type VceInstance,
  type WanBinding,
} from './model.ts';
import { Repo, put } from './repo.ts';
import type { Kv } from './store/types.ts';
import type { WanAdapter, WanBindingSpec } from './wan/types.ts';

/** What an agent reports under its lease (PUT /api/v1/agents/{id}/status). */
export interface AgentStatus {
  readonly vce: string;
  /** The store revision of the configuration the agent runs. */
  readonly configRevision: number;
  /** The last configuration was refused by the agent (message), or undefined. */
  readonly configError?: string;
  readonly contexts: readonly {
    readonly name: string;
    readonly fibSize: number;
    readonly interfaces: readonly string[];
  }[];
  readonly bgp: readonly {
    readonly vrf: string;
    readonly peer: string;
    readonly state: string;
    readonly received: number;
  }[];
  readonly bfd: readonly { readonly peer: string; readonly state: string }[];
  readonly counters: Record<
    string,
    {
      readonly inBytes: number;
      readonly outBytes: number;
      readonly inPackets: number;
      readonly outPackets: number;
    }
  >;
  readonly at: string;
}

export interface AgentConfigDoc {
  readonly vce: string;
  /** Bumped on every change; the agent reports the one it runs. */
  readonly config: Record<string, unknown>;
  readonly hash: string;
}

export type AdapterFactory = (pe: Pe) => WanAdapter;

export class ControllerCore {
  readonly repo: Repo;
  readonly ipam: Ipam;
  private readonly adapters = new Map<string, { key: string; adapter: WanAdapter }>();

  constructor(
    readonly kv: Kv,
    private readonly makeAdapter: AdapterFactory,
    ipamCfg?: IpamConfig,
  ) {
    this.repo = new Repo(kv);
    this.ipam = new Ipam(this.repo, ipamCfg);
  }

  async tenantOf(kind: string, id: string): Promise<string | undefined> {
    return (await this.repo.get<string>(KEYS.index(kind, id)))?.value;
  }

  async owned<T>(tenant: string, kind: string): Promise<T[]> {
    return (await this.repo.all<T>(KEYS.ownedKind(tenant, kind))).map((d) => d.value);
  }

  async ownedOne<T>(tenant: string, kind: string, id: string): Promise<T | undefined> {
    return (await this.repo.get<T>(KEYS.owned(tenant, kind, id)))?.value;
  }

  async hosts(): Promise<Map<string, Host>> {
    return new Map((await this.repo.all<Host>(KEYS.hosts)).map((d) => [d.value.id, d.value]));
  }

  async pes(): Promise<Map<string, Pe>> {
    return new Map((await this.repo.all<Pe>(KEYS.pes)).map((d) => [d.value.id, d.value]));
  }

  /**
   * Recomputes a vCE's desired configuration and publishes it when it changed. Returns the store
   * revision of the configuration the agent must reach.
   */
  async publishAgentConfig(tenant: string, vceId: string): Promise<number> {
    const key = KEYS.agentConfig(vceId);
    const vce = await this.ownedOne<VceInstance>(tenant, 'vces', vceId);
    const cur = await this.repo.get<AgentConfigDoc>(key);
    if (vce === undefined) {
      // the vCE is gone: it keeps an empty configuration (no tenant state) until it deregisters
      const config = { 'router-id': cur?.value.config['router-id'] ?? '192.0.2.1' };
      const hash = sha(JSON.stringify(config));
      if (cur?.value.hash === hash) return cur.rev;
      return this.repo.commit({ [key]: cur?.rev ?? 0 }, [put(key, { vce: vceId, config, hash })]);
    }
    const [attachments, endpoints, bindings, hosts, pes] = await Promise.all([
      this.owned<Attachment>(tenant, 'attachments'),
      this.owned<Endpoint>(tenant, 'endpoints'),
      this.owned<WanBinding>(tenant, 'bindings'),
      this.hosts(),
      this.pes(),
    ]);
    const config = agentConfig({
      vce,
      attachments: attachments.filter((a) => a.vce === vceId),
      endpoints,
      bindings: bindings.filter((b) => b.vce === vceId),
      hosts,
      pes,
    });
    const hash = sha(JSON.stringify(config));
    if (cur?.value.hash === hash) return cur.rev;
    return this.repo.commit({ [key]: cur?.rev ?? 0 }, [put(key, { vce: vceId, config, hash })]);
  }

  async agentStatus(vceId: string): Promise<AgentStatus | undefined> {
    return (await this.repo.get<AgentStatus>(KEYS.agentStatus(vceId)))?.value;
  }

  adapter(pe: Pe): WanAdapter {
    const key = JSON.stringify(pe.adapter);
    const cur = this.adapters.get(pe.id);
    if (cur !== undefined && cur.key === key) return cur.adapter;
    if (cur !== undefined) void cur.adapter.close();
    const adapter = this.makeAdapter(pe);
    this.adapters.set(pe.id, { key, adapter });
    return adapter;
  }

  async wanSpec(b: WanBinding): Promise<{ spec: WanBindingSpec; adapter: WanAdapter }> {
    const pe = (await this.pes()).get(b.pe);
    if (pe === undefined) throw new Error(`PE "${b.pe}" is not registered`);
    const vce = await this.ownedOne<VceInstance>(b.tenant, 'vces', b.vce);
    return {
      adapter: this.adapter(pe),
      spec: {
        id: b.id,
        tenant: b.tenant,
        pe: b.pe,
        vrf: b.wanVrf,
        rd: b.rd,
        importRts: b.importRts,
        exportRts: b.exportRts,
        attachment: b.peAttachment,
        protocol: b.protocol,
        peAddress: b.peAddress ?? '',
        peAsn: pe.asn,
        ceAddress: b.ceAddress ?? '',
        ceAsn: vce?.asn,
        staticPrefixes: b.staticPrefixes,
        bfd: b.bfd,
        dynamicRange: b.dynamic ? pe.dynamicRange : undefined,
      },
    };
  }

  async close(): Promise<void> {
    for (const a of this.adapters.values()) await a.adapter.close();
    this.adapters.clear();
  }
}

export function sha(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
