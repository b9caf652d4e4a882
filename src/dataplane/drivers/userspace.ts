/**
 * The userspace driver: the I/O shell around the Forwarder. One UDP socket per tunnel service in
 * use (VXLAN 4789, GRE-in-UDP 4754, MPLS-in-UDP 6635 by default) and address family, bound to the
 * configured listen address; datagrams go to `Forwarder.receive`, and the forwarder's transmit
 * sink sends datagrams back out. The outer DSCP (RFC 2983 pipe / uniform) is set per packet by
 * sending through a socket whose IP_TOS / IPV6_TCLASS holds that DSCP (one unbound socket per
 * DSCP value in use, created on first need), since Node cannot set the TOS of one datagram.
 * A timer drives ARP/ND retries, ageing, router advertisements and the flow-table sweep.
 */
import dgram from 'node:dgram';
import { datagramFd, setDscp } from '../../lib/sockopt.ts';
import { Forwarder, TUNNEL_GRE, TUNNEL_MPLS, TUNNEL_VXLAN } from '../forwarder.ts';
import type { DataplaneConfig, DpRoute, RouteChange } from '../types.ts';

const TICK_MS = 250;

export interface UserspaceDriverOptions {
  /** Routing context names in the agent's order (interfaces refer to them by name). */
  readonly contexts: readonly string[];
  readonly log?: { warn(obj: object, msg: string): void };
}

export class UserspaceDriver {
  readonly forwarder: Forwarder;
  private readonly sockets = new Map<string, dgram.Socket>();
  private readonly tosSockets = new Map<string, dgram.Socket>();
  private timer: NodeJS.Timeout | undefined;
  private readonly ports: number[];
  private readonly bound = new WeakSet<dgram.Socket>();
  /** Connected send sockets, indexed by endpoint * 64 + DSCP. */
  private readonly connected: (dgram.Socket | undefined)[] = [];
  private readonly connecting = new Set<number>();
  private fastPath = false;

  constructor(
    readonly config: DataplaneConfig,
    private readonly opts: UserspaceDriverOptions,
  ) {
    this.forwarder = new Forwarder(config, opts.contexts);
    this.ports = [config.vxlanPort, config.greUdpPort, config.mplsUdpPort];
    this.forwarder.transmit = (tunnel, ep, buf, off, len, dscp) => this.send(tunnel, ep, buf, off, len, dscp);
  }

  /** Binds the sockets the configured interfaces need. */
  async start(): Promise<void> {
    const kinds = new Set(this.config.interfaces.map((i) => i.kind));
    const need: number[] = [];
    if (kinds.has('vxlan')) need.push(TUNNEL_VXLAN);
    if (kinds.has('nvgre')) need.push(TUNNEL_GRE);
    if (kinds.has('mpls-udp')) need.push(TUNNEL_MPLS);
    const family = this.config.listenAddress.includes(':') ? 6 : 4;
    for (const t of need) await this.bind(t, family);
    // outer DSCPs known from the configuration get their socket before the first packet
    const dscps = new Set<number>([this.config.tunnelQos.outerDscp]);
    if (this.config.tunnelQos.mode === 'uniform')
      for (const q of this.config.qos)
        for (const c of q.classes) if (c.setDscp !== undefined) dscps.add(c.setDscp);
    dscps.delete(0);
    for (const t of need)
      for (const d of dscps) {
        const s = this.tosSocket(t, family, d);
        if (s !== undefined)
          await new Promise<void>((r) => (this.bound.has(s) ? r() : s.once('listening', () => r())));
      }
    // One connected socket per endpoint (and DSCP), opened on first use: Node skips the address
    // lookup and the kernel its route lookup on every send (+14-16 % packets/s, BENCHMARKS.md).
    // Only with a specific listen address: connecting a wildcard-bound socket would freeze the
    // source address chosen at that moment.
    this.fastPath = !['0.0.0.0', '::'].includes(this.config.listenAddress);
    this.timer = setInterval(() => this.forwarder.tick(Date.now()), TICK_MS);
    this.timer.unref();
    this.forwarder.tick(Date.now());
  }

  private async bind(tunnel: number, family: 4 | 6): Promise<void> {
    const s = dgram.createSocket({
      type: family === 6 ? 'udp6' : 'udp4',
      recvBufferSize: 4 << 20,
      sendBufferSize: 4 << 20,
    });
    s.on('message', (msg, rinfo) =>
      this.forwarder.receive(tunnel, msg, msg.length, rinfo.address, Date.now()),
    );
    s.on('error', (e) => this.opts.log?.warn({ err: e.message, tunnel }, 'data plane socket error'));
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(this.ports[tunnel], this.config.listenAddress, () => {
        s.off('error', reject);
        resolve();
      });
    });
    this.sockets.set(`${tunnel}/${family}`, s);
  }

  /** The bound port of a tunnel service (tests bind port 0). */
  port(tunnel: number): number {
    for (const [k, s] of this.sockets) if (k.startsWith(`${tunnel}/`)) return s.address().port;
    return -1;
  }

  /** A socket connected to endpoint `ep` sending with `dscp` (the fast path of `send`). */
  private async connectEndpoint(ep: number, dscp: number): Promise<void> {
    const e = this.forwarder.endpoints[ep]!;
    const s = dgram.createSocket({ type: e.family === 6 ? 'udp6' : 'udp4', sendBufferSize: 4 << 20 });
    // ICMP errors (the remote VTEP is down) surface as socket errors on connected sockets
    s.on('error', (err) => this.opts.log?.warn({ err: err.message, remote: e.address }, 'tunnel send error'));
    this.connecting.add(ep * 64 + dscp);
    try {
      await new Promise<void>((r) => s.bind(0, this.config.listenAddress, () => r()));
      if (dscp !== 0) setDscp(datagramFd(s), e.family, dscp);
      await new Promise<void>((r) => s.connect(e.port, e.address, () => r()));
      this.connected[ep * 64 + dscp] = s;
    } catch (err) {
      this.opts.log?.warn({ err: (err as Error).message, remote: e.address }, 'cannot open a tunnel socket');
      s.close();
    }
  }

  private send(tunnel: number, ep: number, buf: Uint8Array, off: number, len: number, dscp: number): void {
    const c = this.connected[ep * 64 + dscp];
    if (c !== undefined) {
      c.send(buf, off, len);
      return;
    }
    if (this.fastPath && !this.connecting.has(ep * 64 + dscp)) void this.connectEndpoint(ep, dscp);
    const e = this.forwarder.endpoints[ep]!;
    const s = dscp === 0 ? this.sockets.get(`${tunnel}/${e.family}`) : this.tosSocket(tunnel, e.family, dscp);
    if (s === undefined) return;
    s.send(buf, off, len, e.port, e.address);
  }

  private tosSocket(tunnel: number, family: 4 | 6, dscp: number): dgram.Socket | undefined {
    const k = `${tunnel}/${family}/${dscp}`;
    let s = this.tosSockets.get(k);
    if (s !== undefined) return s;
    const base = this.sockets.get(`${tunnel}/${family}`);
    if (base === undefined) return undefined;
    s = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4', sendBufferSize: 4 << 20 });
    // bound synchronously enough: sends before 'listening' are queued by Node until bound
    s.bind(0, this.config.listenAddress, () => {
      this.bound.add(s);
      try {
        setDscp(datagramFd(s), family, dscp);
      } catch (e) {
        this.opts.log?.warn({ err: (e as Error).message, dscp }, 'cannot set the outer DSCP');
      }
    });
    s.on('error', (e) => this.opts.log?.warn({ err: e.message }, 'data plane socket error'));
    this.tosSockets.set(k, s);
    return s;
  }

  syncRoutes(context: string, routes: readonly DpRoute[]): number {
    return this.forwarder.syncRoutes(context, routes);
  }

  updateRoutes(context: string, changes: readonly RouteChange[]): number {
    let n = 0;
    for (const c of changes) n += this.forwarder.updateRoute(context, c.prefix, c.route);
    return n;
  }

  needsFullSync(context: string): boolean {
    return this.forwarder.tables.hasRecursive(context);
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    const all = [
      ...this.sockets.values(),
      ...this.tosSockets.values(),
      ...this.connected.filter((x): x is dgram.Socket => x !== undefined),
    ];
    this.connected.length = 0;
    this.sockets.clear();
    this.tosSockets.clear();
    await Promise.all(all.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
