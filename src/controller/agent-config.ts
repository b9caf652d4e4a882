/**
 * The desired configuration of one vCE agent, computed from the model: its routing contexts, one
 * interface per attachment (VXLAN towards the hosts of the VMs on the segment), the PE-CE link of
 * each active WAN binding with its BGP neighbour or static default route, and the zone policy.
 * The result is the agent's own configuration document (what `vce agent --config` reads), so the
 * agent validates and diffs it with its own code.
 */
import type { Attachment, Endpoint, Host, Pe, VceInstance, WanBinding } from './model.ts';

export interface AgentConfigInputs {
  readonly vce: VceInstance;
  readonly attachments: readonly Attachment[];
  readonly endpoints: readonly Endpoint[];
  readonly bindings: readonly WanBinding[];
  readonly hosts: ReadonlyMap<string, Host>;
  readonly pes: ReadonlyMap<string, Pe>;
}

/** Interface names: at most 15 characters (the kernel renderer's limit), stable per object. */
function ifName(prefix: string, id: string): string {
  const n = `${prefix}${id}`;
  return n.length <= 15 ? n : `${prefix}${id.slice(0, 15 - prefix.length)}`;
}

export function agentConfig(inp: AgentConfigInputs): Record<string, unknown> {
  const { vce } = inp;
  const host = inp.hosts.get(vce.host);
  const port = vce.vxlanPort ?? 4789;
  const contexts = vce.contexts.map((c) => {
    const interfaces: Record<string, unknown>[] = [];
    const statics: Record<string, unknown>[] = [];
    const neighbors: Record<string, unknown>[] = [];
    for (const a of inp.attachments.filter((x) => x.context === c.name)) {
      const vmHosts = [...new Set(inp.endpoints.filter((e) => e.attachment === a.id).map((e) => e.host))];
      const remotes = (vmHosts.length > 0 ? vmHosts : [vce.host])
        .map((h) => inp.hosts.get(h)?.underlay)
        .filter((u): u is string => u !== undefined)
        .map((u) => `${u}:${port}`);
      interfaces.push({
        name: ifName('a-', a.id),
        kind: 'vxlan',
        vni: a.vni,
        remotes,
        addresses: a.addresses,
        ...(a.zone === undefined ? {} : { zone: a.zone }),
        ...(a.qosProfile === undefined ? {} : { 'qos-policy': a.qosProfile }),
      });
    }
    for (const b of inp.bindings.filter((x) => x.context === c.name && x.state !== 'deprovisioning')) {
      const pe = inp.pes.get(b.pe);
      if (pe === undefined || b.ceAddress === undefined || b.peAddress === undefined) continue;
      const link: Record<string, unknown> = { name: ifName('w-', b.id), addresses: [`${b.ceAddress}/30`] };
      if (pe.dataplane !== undefined && b.peAttachment.kind === 'vxlan')
        Object.assign(link, {
          kind: 'vxlan',
          vni: b.peAttachment.id,
          remotes: [`${pe.dataplane}:${port}`],
          zone: 'wan',
        });
      interfaces.push(link);
      if (b.protocol === 'static') {
        statics.push({ prefix: '0.0.0.0/0', 'next-hop': b.peAddress, ...(b.bfd ? { bfd: true } : {}) });
      } else {
        neighbors.push({
          address: b.peAddress,
          'peer-asn': pe.asn,
          'remote-port': pe.bgpPort ?? 179,
          'local-address': b.ceAddress,
          'connect-retry': 2,
          'import-policy': 'accept-all',
          'export-policy': 'accept-all',
          description: `wan binding ${b.id} (${b.wanVrf} on ${b.pe})`,
          ...(b.bfd ? { bfd: true } : {}),
        });
      }
    }
    const ctx: Record<string, unknown> = { interfaces };
    if (c.routeDistinguisher !== undefined) ctx['route-distinguisher'] = c.routeDistinguisher;
    if (statics.length > 0) ctx['static-routes'] = statics;
    if (neighbors.length > 0)
      ctx['bgp'] = { asn: vce.asn, listen: false, redistribute: ['connected', 'static'], neighbors };
    return { name: c.name, ctx };
  });
  const def = contexts.find((c) => c.name === 'default');
  const doc: Record<string, unknown> = {
    'router-id': vce.routerId,
    tenant: vce.tenant,
    ...(def?.ctx ?? {}),
    vrfs: contexts.filter((c) => c.name !== 'default').map((c) => ({ name: c.name, ...c.ctx })),
  };
  const anyDataplane = contexts.some((c) =>
    (c.ctx['interfaces'] as Record<string, unknown>[]).some((i) => i['kind'] !== undefined),
  );
  if (anyDataplane) {
    // rules naming a zone no interface has yet would be refused by the agent: keep them for later
    const zones = new Set(
      contexts.flatMap((c) => (c.ctx['interfaces'] as Record<string, unknown>[]).map((i) => i['zone'])),
    );
    const usable = (z: unknown): boolean => z === '*' || zones.has(z);
    doc['dataplane'] = {
      listen: host?.underlay ?? '0.0.0.0',
      'vxlan-port': port,
      zones: { rules: vce.zoneRules.filter((r) => usable(r['from']) && usable(r['to'])) },
      ...(vce.qosPolicies === undefined || vce.qosPolicies.length === 0
        ? {}
        : { 'qos-policies': vce.qosPolicies }),
    };
  }
  return doc;
}
