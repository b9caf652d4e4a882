/**
 * The data plane part of the agent API: attachment circuits with their counters (per interface,
 * hence per VLAN, and per QoS class), the neighbour cache, the flow table, and packet capture as
 * a pcap stream (`vce capture` writes it to a file that tshark reads). Prometheus gauges for the
 * same counters are registered with the agent's registry.
 */
import { copyOut } from '../lib/bytes.ts';
import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { Gauge, type Registry } from 'prom-client';
import { formatAddress, formatIPv4 } from '../lib/ip.ts';
import { formatMac } from '../dataplane/frames/ethernet.ts';
import { encodePcapHeader, encodeRecordHeader } from '../dataplane/frames/pcap.ts';
import { DROP_REASONS } from '../dataplane/counters.ts';
import type { AgentDataplane } from './dataplane.ts';
import type { Forwarder, Iface } from '../dataplane/forwarder.ts';

function ifaceView(fwd: Forwarder, f: Iface): object {
  const c = f.cfg;
  return {
    name: c.name,
    kind: c.kind,
    vrf: c.context,
    zone: c.zone ?? null,
    mac: formatMac(c.mac),
    mtu: c.mtu,
    addresses: c.addresses.map((a) => `${formatAddress(a.address)}/${a.prefix.len}`),
    vni: c.vni ?? null,
    trunk: c.trunk ?? null,
    vlan: c.vlan ?? null,
    'outer-vlan': c.outerVlan ?? null,
    vsid: c.vsid ?? null,
    remotes: (c.remotes ?? []).map((r) => `${r.address}:${r.port}`),
    'qos-policy': c.qosPolicy ?? null,
    counters: fwd.counters.read(f.index),
    'qos-classes': f.qos?.counters() ?? [],
  };
}

export function registerDataplaneRoutes(
  app: FastifyInstance,
  dp: AgentDataplane | undefined,
  reg: Registry,
): void {
  const fwdOr404 = (reply: { status(n: number): { send(b: object): unknown } }): Forwarder | undefined => {
    const fwd = dp?.driver.forwarder;
    if (fwd === undefined)
      reply.status(404).send({
        error: 'not-found',
        message:
          dp === undefined
            ? 'this agent has no data plane configured'
            : 'the linux driver forwards in the kernel: see `ip -s link`, `nft list table inet vce`',
      });
    return fwd;
  };

  app.get('/api/v1/dataplane/interfaces', async (_req, reply) => {
    const fwd = fwdOr404(reply);
    if (fwd === undefined) return reply;
    return { interfaces: fwd.ifaces.map((f) => ifaceView(fwd, f)), unattached: fwd.counters.read(0) };
  });

  app.get<{ Params: { name: string } }>('/api/v1/dataplane/interfaces/:name', async (req, reply) => {
    const fwd = fwdOr404(reply);
    if (fwd === undefined) return reply;
    const f = fwd.byName.get(req.params.name);
    if (f === undefined)
      return reply.status(404).send({ error: 'not-found', message: `no interface "${req.params.name}"` });
    return ifaceView(fwd, f);
  });

  app.get('/api/v1/dataplane/neighbors', async (_req, reply) => {
    const fwd = fwdOr404(reply);
    if (fwd === undefined) return reply;
    const now = Date.now();
    return {
      neighbors: fwd.neighbors.list().map((n) => ({
        interface: fwd.iface(n.iface).cfg.name,
        address: n.addr6 === undefined ? formatIPv4(numToBytes(n.addr4)) : formatAddress(n.addr6),
        mac: n.state === 1 ? formatMac(n.mac) : null,
        state: n.state === 1 ? 'reachable' : 'incomplete',
        remote: n.remote >= 0 ? `${fwd.endpoints[n.remote]!.address}:${fwd.endpoints[n.remote]!.port}` : null,
        'expires-in-ms': n.state === 1 ? Math.max(0, n.expires - now) : null,
        waiting: n.queue.length,
      })),
    };
  });

  app.get('/api/v1/dataplane/flows', async (_req, reply) => {
    const fwd = fwdOr404(reply);
    if (fwd === undefined) return reply;
    return { ...fwd.firewall.stats(), rules: fwd.firewall.ruleCounters() };
  });

  app.get<{ Querystring: { interface?: string; count?: string; seconds?: string } }>(
    '/api/v1/dataplane/capture',
    async (req, reply) => {
      const fwd = fwdOr404(reply);
      if (fwd === undefined) return reply;
      const name = req.query.interface;
      const f = name === undefined ? undefined : fwd.byName.get(name);
      if (f === undefined)
        return reply
          .status(400)
          .send({ error: 'bad-request', message: `interface: no interface "${name ?? ''}"` });
      const count = req.query.count === undefined ? 100 : Number(req.query.count);
      const seconds = req.query.seconds === undefined ? 60 : Number(req.query.seconds);
      if (!Number.isInteger(count) || count < 1 || count > 1_000_000)
        return reply.status(400).send({ error: 'bad-request', message: 'count: an integer 1..1000000' });
      if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600)
        return reply.status(400).send({ error: 'bad-request', message: 'seconds: a number in (0, 3600]' });
      if (fwd.taps[f.index] !== undefined)
        return reply
          .status(409)
          .send({ error: 'conflict', message: `a capture is already running on ${name}` });
      const out = new PassThrough();
      out.write(encodePcapHeader());
      let n = 0;
      const finish = (): void => {
        if (fwd.taps[f.index] === undefined) return;
        fwd.taps[f.index] = undefined;
        clearTimeout(timer);
        out.end();
      };
      const timer = setTimeout(finish, seconds * 1000);
      fwd.taps[f.index] = (_i, buf, off, len) => {
        // MPLS-in-UDP frames have no Ethernet header: a pseudo one (MPLS EtherType) keeps one link type
        const frame =
          f.cfg.kind === 'mpls-udp' ? withPseudoEthernet(buf, off, len) : copyOut(buf, off, off + len);
        out.write(encodeRecordHeader(Date.now(), frame.length, frame.length));
        out.write(frame);
        if (++n >= count) finish();
      };
      req.raw.on('close', finish);
      return reply.type('application/vnd.tcpdump.pcap').send(out);
    },
  );

  // ---------------------------------------------------------------- metrics
  if (dp?.driver.forwarder === undefined) return;
  let fwd: Forwarder = dp.driver.forwarder;
  const g = (
    name: string,
    help: string,
    labels: string[],
    fill: (set: (l: Record<string, string>, v: number) => void) => void,
  ): void => {
    new Gauge({
      name,
      help,
      labelNames: labels,
      registers: [reg],
      collect() {
        this.reset();
        fwd = dp.driver.forwarder ?? fwd; // the driver is replaced on reconfiguration
        fill((l, v) => this.set(l, v));
      },
    });
  };
  g(
    'vce_dp_interface_packets',
    'Packets per attachment and direction',
    ['interface', 'vrf', 'direction'],
    (set) => {
      for (const f of fwd.ifaces) {
        const c = fwd.counters.read(f.index);
        set({ interface: f.cfg.name, vrf: f.cfg.context, direction: 'in' }, c['in-packets']);
        set({ interface: f.cfg.name, vrf: f.cfg.context, direction: 'out' }, c['out-packets']);
      }
    },
  );
  g(
    'vce_dp_interface_bytes',
    'Bytes per attachment and direction (accounting)',
    ['interface', 'vrf', 'direction'],
    (set) => {
      for (const f of fwd.ifaces) {
        const c = fwd.counters.read(f.index);
        set({ interface: f.cfg.name, vrf: f.cfg.context, direction: 'in' }, c['in-bytes']);
        set({ interface: f.cfg.name, vrf: f.cfg.context, direction: 'out' }, c['out-bytes']);
      }
    },
  );
  g('vce_dp_drops', 'Dropped packets per attachment and reason', ['interface', 'reason'], (set) => {
    for (let i = 0; i <= fwd.ifaces.length; i++) {
      const c = fwd.counters.read(i);
      const name = i === 0 ? '(unattached)' : fwd.iface(i).cfg.name;
      for (const r of DROP_REASONS)
        if (c.drops[r] !== undefined) set({ interface: name, reason: r }, c.drops[r]);
    }
  });
  g('vce_dp_qos_class_bytes', 'Bytes per QoS class on egress', ['interface', 'class'], (set) => {
    for (const f of fwd.ifaces)
      for (const c of f.qos?.counters() ?? []) set({ interface: f.cfg.name, class: c.class }, c.bytes);
  });
  g(
    'vce_dp_qos_class_dropped',
    'Packets dropped by the policer per QoS class',
    ['interface', 'class'],
    (set) => {
      for (const f of fwd.ifaces)
        for (const c of f.qos?.counters() ?? []) set({ interface: f.cfg.name, class: c.class }, c.dropped);
    },
  );
  g('vce_dp_flows', 'Flow table entries', [], (set) => set({}, fwd.firewall.stats().flows));
}

function numToBytes(n: number): Uint8Array {
  return new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
}

function withPseudoEthernet(buf: Uint8Array, off: number, len: number): Uint8Array {
  const b = new Uint8Array(14 + len);
  b[12] = 0x88;
  b[13] = 0x47;
  b.set(buf.subarray(off, off + len), 14);
  return b;
}
