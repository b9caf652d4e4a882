/**
 * The BFD runtime shell: UDP sockets, real timers and session ownership around the sans-I/O
 * `BfdSession` cores (RFC 5881 single hop, RFC 5883 multihop).
 *
 * Owns: per local address and mode, one receive socket bound to <local>:3784 (single hop) or
 * <local>:4784 (multihop) and one transmit socket bound to <local>:<p>, p in 49152–65535 (RFC 5881
 * §4: the same source port for every packet of a session; we share it between the sessions of a
 * local address), sending with TTL/Hop Limit 255 (RFC 5881 §5, RFC 5883 §5 recommends it too);
 * demultiplexing by Your Discriminator, or by (peer, local address, mode) when it is 0 (RFC 5880
 * §6.3); the refcounted session table (`acquire` / `release`) used by BGP neighbours and static
 * routes; 'up' / 'down' / 'state' events.
 *
 * Invariants:
 * - One timer per session, always set to the core's `pollTimeout()`; every input is followed by
 *   `drive()`, which sends what the core queued, emits its events and re-arms the timer.
 * - Bytes from the network never throw: undecodable packets and packets for no session are
 *   counted in `stats` and dropped (RFC 5880 §6.8.6).
 * - Releasing the last reference sends one AdminDown packet (diag 7) so the peer does not take
 *   the removal for a failure (RFC 5880 §6.8.16), then frees the session and idle sockets.
 *
 * Known limits:
 * - GTSM receive check (RFC 5881 §5: single-hop packets MUST arrive with TTL 255; RFC 5883 §5
 *   multihop may check a minimum): Node's dgram API cannot read the received TTL (no
 *   IP_RECVTTL / recvmsg ancillary data), so the check is not done here. Enforce it in the
 *   kernel, e.g. nftables:
 *     `udp dport 3784 ip ttl != 255 drop` and `udp dport 3784 ip6 hoplimit != 255 drop`.
 * - Single hop is not bound to an interface (SO_BINDTODEVICE is unavailable in dgram); the local
 *   address identifies the link.
 * - Echo mode and Demand mode initiation are not implemented (see session.ts).
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIPv6 } from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  BFD_MULTIHOP_PORT,
  BFD_SINGLE_HOP_PORT,
  BfdDiag,
  BfdPacketError,
  bfdDiagName,
  decodeBfd,
  type BfdAuthKey,
  type BfdState,
} from './packet.ts';
import { BfdSession, type BfdNegotiated, type BfdSessionConfig } from './session.ts';

export interface BfdManagerOptions {
  /** Receive port for single hop (default 3784, RFC 5881 §4). */
  singleHopPort?: number;
  /** Receive port for multihop (default 4784, RFC 5883 §3). */
  multihopPort?: number;
  /** Source port range (default 49152–65535, RFC 5881 §4). */
  sourcePorts?: { min: number; max: number };
  /** SO_REUSEADDR on the receive sockets (lets a more specific bind coexist with a 0.0.0.0 one). */
  reuseAddr?: boolean;
  /** Defaults for `acquire` (default 300 ms / 300 ms / 3). */
  defaults?: { desiredMinTxUs?: number; requiredMinRxUs?: number; detectMult?: number };
  /** Monotonic ms clock (default performance.now). */
  clock?: () => number;
  /** Random source for jitter, discriminators and source ports (default Math.random). */
  random?: () => number;
}

export interface BfdPeerOptions {
  localAddress: string;
  multihop?: boolean;
  desiredMinTxUs?: number;
  requiredMinRxUs?: number;
  detectMult?: number;
  passive?: boolean;
  auth?: BfdAuthKey;
}

export interface BfdPeerInfo {
  peer: string;
  localAddress: string;
  multihop: boolean;
  state: BfdState;
  diag: number;
  localDiscr: number;
  remoteDiscr: number;
  refs: number;
  negotiated: BfdNegotiated;
}

export interface BfdStateChange {
  peer: string;
  localAddress: string;
  multihop: boolean;
  from: BfdState;
  to: BfdState;
  diag: number;
  diagName: string;
  /** The peer's state as last received: AdminDown means it went down on purpose (RFC 5882 §3.2). */
  remoteState: BfdState;
}

export interface BfdManagerEvents {
  up: [BfdStateChange];
  down: [BfdStateChange];
  state: [BfdStateChange];
  error: [Error];
}

export class BfdTransportError extends Error {
  override readonly name = 'BfdTransportError';
  readonly code = 'BFD_TRANSPORT';
}

interface Endpoint {
  key: string;
  rx: Socket;
  tx: Socket;
  users: number;
}

interface Entry {
  key: string;
  peer: string;
  localAddress: string;
  multihop: boolean;
  session: BfdSession;
  endpoint: Endpoint;
  refs: number;
  timer: NodeJS.Timeout | undefined;
  /** The timers in force: the most demanding of every client's request. */
  timers: { desiredMinTxUs: number; requiredMinRxUs: number; detectMult: number };
}

function sessionKey(peer: string, local: string, multihop: boolean): string {
  return `${peer}|${local}|${multihop ? 'mh' : 'sh'}`;
}

export class BfdManager extends EventEmitter<BfdManagerEvents> {
  readonly stats = { received: 0, malformed: 0, noSession: 0, sent: 0, sendErrors: 0 };
  private readonly entries = new Map<string, Entry>();
  private readonly byDiscr = new Map<number, Entry>();
  private readonly endpoints = new Map<string, Promise<Endpoint>>();
  private readonly clock: () => number;
  private readonly random: () => number;
  private closed = false;

  constructor(private readonly opts: BfdManagerOptions = {}) {
    super();
    this.clock = opts.clock ?? (() => performance.now());
    this.random = opts.random ?? Math.random;
  }

  /**
   * A session with `peer` from `opts.localAddress` (created on first use, refcounted). The
   * first caller's timers and auth win; later callers share the session.
   */
  async acquire(peer: string, opts: BfdPeerOptions): Promise<BfdPeerInfo> {
    if (this.closed) throw new BfdTransportError('BfdManager is closed');
    const multihop = opts.multihop === true;
    const key = sessionKey(peer, opts.localAddress, multihop);
    const existing = this.entries.get(key);
    if (existing !== undefined) {
      existing.refs++;
      this.tighten(existing, opts);
      return this.info(existing);
    }
    const endpoint = await this.endpoint(opts.localAddress, multihop);
    const raced = this.entries.get(key); // another acquire finished while we awaited
    if (raced !== undefined) {
      raced.refs++;
      this.tighten(raced, opts);
      return this.info(raced);
    }
    endpoint.users++;
    const d = this.opts.defaults ?? {};
    const cfg: BfdSessionConfig = {
      localDiscr: this.newDiscriminator(),
      desiredMinTxUs: opts.desiredMinTxUs ?? d.desiredMinTxUs ?? 300_000,
      requiredMinRxUs: opts.requiredMinRxUs ?? d.requiredMinRxUs ?? 300_000,
      detectMult: opts.detectMult ?? d.detectMult ?? 3,
      multihop,
      random: this.random,
    };
    if (opts.passive !== undefined) cfg.passive = opts.passive;
    if (opts.auth !== undefined) cfg.auth = opts.auth;
    const entry: Entry = {
      key,
      peer,
      localAddress: opts.localAddress,
      multihop,
      session: new BfdSession(cfg),
      endpoint,
      refs: 1,
      timer: undefined,
      timers: {
        desiredMinTxUs: cfg.desiredMinTxUs,
        requiredMinRxUs: cfg.requiredMinRxUs,
        detectMult: cfg.detectMult,
      },
    };
    this.entries.set(key, entry);
    this.byDiscr.set(cfg.localDiscr, entry);
    entry.session.start(this.clock());
    this.drive(entry);
    return this.info(entry);
  }

  /**
   * A further client shares the session: the most demanding timers win (a BGP neighbour asking for
   * 50 ms is not held to a static route's 300 ms). Changes go through a Poll Sequence (§6.8.3).
   * Timers are not relaxed again when that client leaves.
   */
  private tighten(e: Entry, opts: BfdPeerOptions): void {
    const t = e.timers;
    const want = {
      desiredMinTxUs: Math.min(t.desiredMinTxUs, opts.desiredMinTxUs ?? t.desiredMinTxUs),
      requiredMinRxUs: Math.min(t.requiredMinRxUs, opts.requiredMinRxUs ?? t.requiredMinRxUs),
      detectMult: Math.min(t.detectMult, opts.detectMult ?? t.detectMult),
    };
    if (
      want.desiredMinTxUs === t.desiredMinTxUs &&
      want.requiredMinRxUs === t.requiredMinRxUs &&
      want.detectMult === t.detectMult
    )
      return;
    e.timers = want;
    this.setParams(e.peer, { localAddress: e.localAddress, multihop: e.multihop, ...want });
  }

  /** Drops one reference; the last one sends AdminDown and frees the session. */
  release(peer: string, opts: Pick<BfdPeerOptions, 'localAddress' | 'multihop'>): void {
    const entry = this.entries.get(sessionKey(peer, opts.localAddress, opts.multihop === true));
    if (entry === undefined) return;
    if (--entry.refs > 0) return;
    entry.session.adminDown(this.clock(), BfdDiag.ADMINISTRATIVELY_DOWN);
    this.drive(entry);
    this.destroy(entry);
  }

  /** Changes a session's timers (a Poll Sequence when Up). */
  setParams(
    peer: string,
    opts: Pick<
      BfdPeerOptions,
      'localAddress' | 'multihop' | 'desiredMinTxUs' | 'requiredMinRxUs' | 'detectMult'
    >,
  ): void {
    const entry = this.entries.get(sessionKey(peer, opts.localAddress, opts.multihop === true));
    if (entry === undefined) throw new BfdTransportError(`BFD: no session with ${peer}`);
    const p: { desiredMinTxUs?: number; requiredMinRxUs?: number; detectMult?: number } = {};
    if (opts.desiredMinTxUs !== undefined)
      p.desiredMinTxUs = entry.timers.desiredMinTxUs = opts.desiredMinTxUs;
    if (opts.requiredMinRxUs !== undefined)
      p.requiredMinRxUs = entry.timers.requiredMinRxUs = opts.requiredMinRxUs;
    if (opts.detectMult !== undefined) p.detectMult = entry.timers.detectMult = opts.detectMult;
    entry.session.setParams(this.clock(), p);
    this.drive(entry);
  }

  /** AdminDown / back, e.g. for maintenance. */
  setAdminDown(peer: string, opts: Pick<BfdPeerOptions, 'localAddress' | 'multihop'>, down: boolean): void {
    const entry = this.entries.get(sessionKey(peer, opts.localAddress, opts.multihop === true));
    if (entry === undefined) throw new BfdTransportError(`BFD: no session with ${peer}`);
    if (down) entry.session.adminDown(this.clock());
    else entry.session.adminUp(this.clock());
    this.drive(entry);
  }

  get(peer: string, opts: Pick<BfdPeerOptions, 'localAddress' | 'multihop'>): BfdPeerInfo | undefined {
    const entry = this.entries.get(sessionKey(peer, opts.localAddress, opts.multihop === true));
    return entry === undefined ? undefined : this.info(entry);
  }

  list(): BfdPeerInfo[] {
    return [...this.entries.values()].map((e) => this.info(e));
  }

  /** Sends AdminDown on every session and closes all sockets. */
  async close(): Promise<void> {
    this.closed = true;
    for (const e of [...this.entries.values()]) {
      e.refs = 1;
      this.release(e.peer, e);
    }
    await new Promise((resolve) => setImmediate(resolve)); // let the AdminDown packets leave
    const eps = await Promise.allSettled([...this.endpoints.values()]);
    this.endpoints.clear();
    for (const r of eps) if (r.status === 'fulfilled') this.closeEndpoint(r.value);
  }

  // ------------------------------------------------------------------------------- internals

  private info(e: Entry): BfdPeerInfo {
    return {
      peer: e.peer,
      localAddress: e.localAddress,
      multihop: e.multihop,
      state: e.session.state,
      diag: e.session.diag,
      localDiscr: e.session.localDiscr,
      remoteDiscr: e.session.remoteDiscr,
      refs: e.refs,
      negotiated: e.session.negotiated,
    };
  }

  private newDiscriminator(): number {
    for (;;) {
      const d = (Math.floor(this.random() * 0xffffffff) + 1) >>> 0;
      if (d !== 0 && !this.byDiscr.has(d)) return d;
    }
  }

  private destroy(entry: Entry): void {
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    entry.timer = undefined;
    this.entries.delete(entry.key);
    this.byDiscr.delete(entry.session.localDiscr);
    const ep = entry.endpoint;
    if (--ep.users === 0 && !this.closed) {
      this.endpoints.delete(ep.key);
      // Let the final AdminDown leave before the socket closes.
      setImmediate(() => this.closeEndpoint(ep));
    }
  }

  private closeEndpoint(ep: Endpoint): void {
    for (const s of [ep.rx, ep.tx]) {
      try {
        s.close();
      } catch {
        // already closed
      }
    }
  }

  /** Sends what the core queued, emits its events, re-arms its timer. */
  private drive(entry: Entry): void {
    const s = entry.session;
    const port = this.opts.multihopPort ?? BFD_MULTIHOP_PORT;
    const dst = entry.multihop ? port : (this.opts.singleHopPort ?? BFD_SINGLE_HOP_PORT);
    for (let out = s.pollTransmit(); out !== undefined; out = s.pollTransmit()) {
      entry.endpoint.tx.send(out, dst, entry.peer, (err) => {
        if (err === null) this.stats.sent++;
        else this.stats.sendErrors++;
      });
    }
    for (let ev = s.pollEvent(); ev !== undefined; ev = s.pollEvent()) {
      const change: BfdStateChange = {
        peer: entry.peer,
        localAddress: entry.localAddress,
        multihop: entry.multihop,
        from: ev.from,
        to: ev.to,
        diag: ev.diag,
        diagName: bfdDiagName(ev.diag),
        remoteState: s.remoteSessionState,
      };
      this.emit('state', change);
      if (ev.to === 'Up') this.emit('up', change);
      else if (ev.from === 'Up') this.emit('down', change);
    }
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    entry.timer = undefined;
    if (!this.entries.has(entry.key)) return;
    const at = s.pollTimeout();
    if (at === undefined) return;
    entry.timer = setTimeout(
      () => {
        entry.timer = undefined;
        // Handle the timeout in the check phase, after this loop turn has read the sockets: when
        // our own event loop stalled, the peer's packets may already wait in the kernel, and a
        // detection timer must not expire on packets we simply had not read yet.
        setImmediate(() => {
          if (!this.entries.has(entry.key) || entry.timer !== undefined) return;
          s.handleTimeout(this.clock());
          this.drive(entry);
        });
      },
      Math.max(0, at - this.clock()),
    );
  }

  private onMessage(localAddress: string, multihop: boolean, msg: Uint8Array, rinfo: RemoteInfo): void {
    this.stats.received++;
    let pkt;
    try {
      pkt = decodeBfd(msg);
    } catch (e) {
      if (e instanceof BfdPacketError) {
        this.stats.malformed++;
        return;
      }
      throw e;
    }
    // RFC 5880 §6.3 / §6.8.6: Your Discriminator selects the session; when 0, the addresses do.
    const entry =
      pkt.yourDiscr !== 0
        ? this.byDiscr.get(pkt.yourDiscr)
        : this.entries.get(sessionKey(rinfo.address, localAddress, multihop));
    if (entry === undefined || entry.multihop !== multihop || entry.localAddress !== localAddress) {
      this.stats.noSession++;
      return;
    }
    entry.session.handlePacket(this.clock(), pkt, msg);
    this.drive(entry);
  }

  private endpoint(localAddress: string, multihop: boolean): Promise<Endpoint> {
    const key = `${localAddress}|${multihop ? 'mh' : 'sh'}`;
    let p = this.endpoints.get(key);
    if (p === undefined) {
      p = this.openEndpoint(key, localAddress, multihop);
      this.endpoints.set(key, p);
      p.catch(() => this.endpoints.delete(key));
    }
    return p;
  }

  private async openEndpoint(key: string, localAddress: string, multihop: boolean): Promise<Endpoint> {
    const type = isIPv6(localAddress) ? 'udp6' : 'udp4';
    const rxPort = multihop
      ? (this.opts.multihopPort ?? BFD_MULTIHOP_PORT)
      : (this.opts.singleHopPort ?? BFD_SINGLE_HOP_PORT);
    const rx = createSocket({ type, reuseAddr: this.opts.reuseAddr === true });
    await bind(rx, rxPort, localAddress);
    rx.on('message', (msg, rinfo) => this.onMessage(localAddress, multihop, msg, rinfo));
    rx.on('error', (err) => this.emit('error', err));
    const { min, max } = this.opts.sourcePorts ?? { min: 49152, max: 65535 };
    let lastErr: unknown;
    for (let attempt = 0; attempt < 64; attempt++) {
      const port = min + Math.floor(this.random() * (max - min + 1));
      const tx = createSocket({ type });
      try {
        await bind(tx, port, localAddress);
      } catch (e) {
        lastErr = e;
        tx.close();
        continue;
      }
      tx.setTTL(255); // RFC 5881 §5 (GTSM), IPv6 Hop Limit for udp6
      // Replies come to the receive port; anything arriving here is ignored.
      tx.on('message', () => undefined);
      tx.on('error', (err) => this.emit('error', err));
      return { key, rx, tx, users: 0 };
    }
    rx.close();
    throw new BfdTransportError(`BFD: no free source port on ${localAddress}: ${String(lastErr)}`);
  }
}

function bind(s: Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void =>
      reject(new BfdTransportError(`BFD: bind ${address}:${port}: ${err.message}`));
    s.once('error', onError);
    s.bind(port, address, () => {
      s.removeListener('error', onError);
      resolve();
    });
  });
}
