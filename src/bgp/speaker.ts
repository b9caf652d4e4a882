/**
 * The BGP speaker: neighbours, their sessions, one RIB per address family, policy, and the
 * flow between them. One writer: every RIB change happens synchronously in an event handler
 * (incoming UPDATEs in ./rib-in.ts); the best-path run and the Adj-RIB-Out update happen once per
 * event-loop turn for every destination touched in that turn (`flush`, ./rib-out.ts), and UPDATEs
 * are built only when a socket drains. Sessions and connection collisions are handled here.
 */
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { AFI_IPV4, formatAddress, makePrefix, parseAddress, prefixContains, type Prefix } from '../lib/ip.ts';
import {
  afiSafiCode,
  afiSafiName,
  CeaseSubcode,
  RouteRefreshSubtype,
  type AfiSafiName,
} from './wire/constants.ts';
import type { Negotiated } from './wire/negotiate.ts';
import type { FsmConfig, FsmEvent } from './fsm.ts';
import { resolveCollision } from './fsm.ts';
import { setMinTtl, setTcpMd5, setTtl, socketFamily, socketFd } from '../lib/sockopt.ts';
import { Session } from './session.ts';
import type { BfdManager, BfdStateChange } from '../bfd/transport.ts';
import { AttrSetTable, type AttrSet } from './rib/attr-set.ts';
import { FamilyRib } from './rib/family-rib.ts';
import { DEFAULT_DECISION_OPTIONS, type DecisionOptions, type PathSource } from './rib/decision.ts';
import { Peer, type NeighborConfig } from './peer.ts';
import { RibOut } from './rib-out.ts';
import { RibIn } from './rib-in.ts';
import type { PolicyBook } from './policy/index.ts';

/** A listen range accepting peers with no per-peer configuration (draft 7.2.1.1, RFC-less common practice). */
export interface DynamicNeighborRange {
  readonly prefix: Prefix;
  /** Accepted AS numbers, or 'any'. */
  readonly peerAsns: readonly number[] | 'any';
  /** Everything of a neighbour but its address and AS. */
  readonly template: Omit<NeighborConfig, 'address' | 'peerAsn' | 'peerAsns'>;
  /** At most this many peers from the range at once. */
  readonly limit: number;
}

export interface SpeakerConfig {
  readonly asn: number;
  readonly routerId: number;
  readonly clusterId?: number;
  readonly listen?: { readonly address: string; readonly port: number } | false;
  readonly neighbors: readonly NeighborConfig[];
  readonly dynamicNeighbors?: readonly DynamicNeighborRange[];
  /** Locally originated prefixes. */
  readonly networks: readonly Prefix[];
  readonly decision?: DecisionOptions;
  readonly policies: PolicyBook;
  readonly families?: readonly AfiSafiName[];
  /** Context routes to advertise in BGP (used by the agent, which originates them). */
  readonly redistribute?: readonly ('connected' | 'static')[];
}

export interface SpeakerLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

const LOCAL_PEER = 0;
const LOCAL_SOURCE: PathSource & { rrClient: boolean } = {
  local: true,
  ebgp: false,
  bgpId: 0,
  address: new Uint8Array(4),
  rrClient: false,
};

function normalizeAddress(a: string): string {
  return a.replace(/^::ffff:/, '');
}

export class Speaker extends EventEmitter {
  readonly attrs = new AttrSetTable();
  readonly ribs = new Map<AfiSafiName, FamilyRib>();
  readonly peers: Peer[] = []; // index 0 unused (local)
  private readonly byAddress = new Map<string, Peer>();
  private readonly servers: net.Server[] = [];
  private flushScheduled = false;
  readonly out: RibOut;
  readonly in: RibIn;
  readonly decision: DecisionOptions;
  private localSets = new Map<string, number>();
  listenPort: number | undefined;

  constructor(
    public cfg: SpeakerConfig,
    readonly log: SpeakerLog = { info: () => undefined, warn: () => undefined },
    /** BFD for neighbours configured with `bfd` (RFC 5880; RFC 9384 Cease/10 when it goes down). */
    readonly bfd?: BfdManager,
  ) {
    super();
    bfd?.on('down', (c) => this.onBfdDown(c));
    this.decision = cfg.decision ?? DEFAULT_DECISION_OPTIONS;
    for (const f of cfg.families ?? (['ipv4-unicast', 'ipv6-unicast', 'ipv4-vpn', 'ipv6-vpn'] as const)) {
      const rib = new FamilyRib(f, this.attrs);
      this.ribs.set(f, rib);
    }
    this.out = new RibOut(this);
    this.in = new RibIn(this);
    this.peers.push(undefined as unknown as Peer); // index 0 is the local pseudo-peer
    this.attrs.onRelease((set) => {
      const p = this.peers[set.source];
      if (p !== undefined) p.forgetSet(set);
      for (const q of this.peers) if (q !== undefined) q.forgetExports(set.id);
    });
    for (const n of cfg.neighbors) this.addNeighbor(n);
  }

  rib(family: AfiSafiName): FamilyRib {
    const r = this.ribs.get(family);
    if (r === undefined) throw new Error(`address family ${family} not enabled`);
    return r;
  }

  sourceOf = (peer: number): PathSource => (peer === LOCAL_PEER ? LOCAL_SOURCE : this.peers[peer]!.source);

  // ------------------------------------------------------------------ lifecycle
  async start(): Promise<void> {
    const l = this.cfg.listen;
    if (l !== false && l !== undefined) {
      const server = net.createServer((s) => this.accept(s));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: l.address, port: l.port }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const addr = server.address();
      if (addr !== null && typeof addr === 'object') this.listenPort = addr.port;
      this.servers.push(server);
      this.secureListener(server);
    }
    this.originateNetworks();
    for (const p of this.peers) if (p !== undefined && !p.cfg.shutdown) this.startPeer(p);
  }

  /**
   * TCP-MD5 (RFC 2385) and GTSM (RFC 5082) on a listening socket; Linux checks both against the
   * SYN and the accepted socket inherits them. MD5 keys are per peer address: once a neighbour has
   * a key, the kernel accepts only signed SYNs from that address (others stay unsigned). `only`:
   * install just this (newly added) neighbour's key, then recompute the GTSM options.
   *
   * GTSM: IP_MINTTL is per socket, not per peer. It goes on the listener (so a too-distant SYN is
   * dropped before any state exists, the RFC 5082 behaviour) only when every neighbour — and every
   * dynamic-neighbor template — uses ttl-security with the same hops. Otherwise the listener sets
   * no minimum and `accept` sets it on each accepted socket of a GTSM neighbour: the handshake from
   * a distant spoofer then completes, and bytes it sent before `accept` ran (its OPEN) are already
   * queued, but every later segment with a lower TTL is dropped by the kernel: its KEEPALIVE (sent
   * only after our OPEN, hence after the minimum was set) never arrives, so our side never reaches
   * Established (the far side may believe it is, until its hold timer expires). The listener sends TTL 255 as soon as any neighbour
   * uses GTSM (inherited by every accepted socket, GTSM or not — harmless for a direct peer).
   */
  private secureListener(server: net.Server, only?: Peer): void {
    let fd: number;
    let fam: 4 | 6;
    try {
      fd = socketFd(server);
      fam = socketFamily(fd);
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'listener socket options unavailable');
      return;
    }
    for (const p of only !== undefined ? [only] : this.peers) {
      const key = p?.cfg.password;
      if (p === undefined || key === undefined || key === '') continue;
      const address = normalizeAddress(p.cfg.address);
      try {
        setTcpMd5(fd, { address }, key);
      } catch (e) {
        this.log.warn(
          { peer: address, err: (e as Error).message },
          'TCP-MD5 key not installed on the listener',
        );
      }
    }
    const hops = [
      ...this.peers.filter((p) => p !== undefined).map((p) => p.cfg.ttlSecurity?.hops),
      ...(this.cfg.dynamicNeighbors ?? []).map((r) => r.template.ttlSecurity?.hops),
    ];
    if (!hops.some((h) => h !== undefined)) return;
    const uniform = hops.every((h) => h === hops[0]) ? hops[0] : undefined;
    // A dual-stack (IPv6) listener also carries IPv4 peers (v4-mapped): set both levels.
    for (const f of fam === 6 ? ([6, 4] as const) : ([4] as const)) {
      try {
        setTtl(fd, f, 255);
        setMinTtl(fd, f, uniform === undefined ? 0 : 256 - uniform);
      } catch (e) {
        this.log.warn({ family: f, err: (e as Error).message }, 'GTSM options not set on the listener');
      }
    }
  }

  /** Closes every session with Cease/Administrative Shutdown (RFC 9003 message) and stops listening. */
  async stop(message = 'vce shutting down'): Promise<void> {
    for (const s of this.servers) s.close();
    const waits: Promise<void>[] = [];
    for (const p of this.peers) {
      if (p === undefined) continue;
      this.clearPeerTimers(p);
      p.adminDown = true; // no replacement session (onDown) and no inbound adoption after stop
      for (const s of [...p.sessions]) {
        const sock = s.socket;
        if (sock !== undefined) waits.push(new Promise((r) => sock.once('close', () => r())));
        s.stop({ subcode: CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, message });
      }
    }
    // Wait for the peers to take the NOTIFICATIONs and close, at most 2 s.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(waits), new Promise((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
    for (const p of this.peers) if (p !== undefined) for (const s of p.sessions) s.dispose();
  }

  private clearPeerTimers(p: Peer): void {
    if (p.staleTimer !== undefined) clearTimeout(p.staleTimer);
    if (p.restartTimer !== undefined) clearTimeout(p.restartTimer);
    p.staleTimer = undefined;
    p.restartTimer = undefined;
  }

  addNeighbor(cfg: NeighborConfig): Peer {
    const key = normalizeAddress(cfg.address);
    if (this.byAddress.has(key)) throw new Error(`neighbor ${cfg.address} configured twice`);
    const p = new Peer(this.peers.length, cfg, parseAddress(key));
    this.peers.push(p);
    this.byAddress.set(key, p);
    for (const s of this.servers) this.secureListener(s, p); // added after start
    return p;
  }

  neighbor(address: string): Peer | undefined {
    return this.byAddress.get(normalizeAddress(address));
  }

  private fsmConfig(p: Peer, passive: boolean): FsmConfig {
    const c = p.cfg;
    return {
      localAsn: this.cfg.asn,
      routerId: this.cfg.routerId,
      holdTime: c.holdTime,
      families: c.families,
      addPath: c.addPath,
      gracefulRestart: c.gracefulRestart,
      peerAsn: c.peerAsns === undefined ? c.peerAsn : c.peerAsns === 'any' ? undefined : c.peerAsns,
      passive,
      connectRetryTime: c.connectRetryTime,
      idleHoldTime: 1,
      maxIdleHoldTime: 120,
    };
  }

  private newSession(p: Peer, passive: boolean, inbound: boolean): Session {
    const c = p.cfg;
    return new Session(
      this.fsmConfig(p, passive),
      {
        remoteAddress: normalizeAddress(c.address),
        remotePort: c.remotePort,
        localAddress: c.localAddress,
        md5Key: c.password,
        ttl: c.ttlSecurity === undefined ? undefined : 255,
        minTtl: c.ttlSecurity === undefined ? undefined : 256 - c.ttlSecurity.hops,
      },
      {
        onEvent: (s, ev) => this.onSessionEvent(p, s, ev),
        produce: (s, budget) => this.out.produce(p, s, budget),
        onConnectError: (_s, e) =>
          this.log.warn(
            { peer: c.address, err: (e as Error).message },
            'TCP-MD5/GTSM options not set: connect failed',
          ),
      },
      inbound,
    );
  }

  /** (Re)enables a neighbour: starts its session, or restarts one stopped by stopPeer/max-prefix. */
  startPeer(p: Peer): void {
    p.adminDown = false;
    if (p.restartTimer !== undefined) {
      clearTimeout(p.restartTimer);
      p.restartTimer = undefined;
    }
    if (p.sessions.length > 0) {
      for (const s of p.sessions) if (s.fsm.state === 'idle') s.input((fsm, now) => fsm.start(now));
      return;
    }
    const s = this.newSession(p, p.cfg.passive, false);
    p.sessions.push(s);
    s.start();
  }

  /** Administrative stop (Cease/2 with an optional RFC 9003 message); the peer stays down. */
  stopPeer(p: Peer, subcode: number = CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, message?: string): void {
    p.adminDown = true;
    for (const s of p.sessions) s.stop({ subcode, message });
  }

  /** Inbound TCP connection: find the neighbour, then attach or resolve a collision. */
  /** A peer for an unconfigured address inside a dynamic-neighbor range, or undefined. */
  private dynamicPeer(remote: string): Peer | undefined {
    let addr: Uint8Array;
    try {
      addr = parseAddress(remote);
    } catch {
      return undefined;
    }
    const ranges = this.cfg.dynamicNeighbors ?? [];
    const r = ranges.find((x) => prefixContains(x.prefix, makePrefix(addr, addr.length * 8)));
    if (r === undefined) return undefined;
    const live = this.peers.filter(
      (q) => q?.dynamic === true && prefixContains(r.prefix, makePrefix(q.addr, q.addr.length * 8)),
    ).length;
    if (live >= r.limit) {
      this.log.warn({ remote, limit: r.limit }, 'dynamic neighbor range full: connection refused');
      return undefined;
    }
    const p = this.addNeighbor({
      ...r.template,
      address: remote,
      peerAsn: 0,
      peerAsns: r.peerAsns,
      passive: true,
    });
    p.dynamic = true;
    this.log.info({ remote }, 'dynamic neighbor accepted');
    return p;
  }

  /**
   * Removes a configured neighbour (reconfiguration): its session ends with Cease/Peer
   * De-configured (RFC 4486), then its routes and state go. Other sessions are not touched.
   */
  removeNeighbor(p: Peer): void {
    p.adminDown = true;
    for (const s of [...p.sessions]) s.stop({ subcode: CeaseSubcode.PEER_DECONFIGURED });
    this.removeDynamic(p);
  }

  /** New policies (reconfiguration): every path is re-imported from the kept Adj-RIB-In and re-exported. */
  setPolicies(book: PolicyBook): void {
    this.cfg = { ...this.cfg, policies: book };
    this.reimportAll();
  }

  /** Forgets a peer (dynamic and ended, or removed): its routes, its state, its index. */
  private removeDynamic(p: Peer): void {
    this.bfdRelease(p);
    for (const rib of this.ribs.values()) rib.removePeer(p.index);
    for (const s of p.sessions) setImmediate(() => s.dispose());
    p.sessions.length = 0;
    this.clearPeerTimers(p);
    this.byAddress.delete(normalizeAddress(p.cfg.address));
    this.peers[p.index] = undefined as unknown as Peer; // indices are never reused
    this.emit('peer-removed', p);
    this.scheduleFlush();
  }

  private accept(socket: net.Socket): void {
    const remote = normalizeAddress(socket.remoteAddress ?? '');
    const p = this.byAddress.get(remote) ?? this.dynamicPeer(remote);
    if (p === undefined || p.adminDown || p.cfg.shutdown) {
      this.log.warn({ remote }, 'connection from unconfigured or shut down neighbor refused');
      socket.destroy();
      return;
    }
    const gtsm = p.cfg.ttlSecurity;
    if (gtsm !== undefined) {
      // Per accepted socket when the listener could not hold one minimum for all (secureListener).
      try {
        const fd = socketFd(socket);
        const f = remote.includes(':') ? 6 : 4;
        setTtl(fd, f, 255);
        setMinTtl(fd, f, 256 - gtsm.hops);
      } catch (e) {
        this.log.warn({ remote, err: (e as Error).message }, 'GTSM not enforceable: connection refused');
        socket.destroy();
        return;
      }
    }
    const primary = p.primary;
    const st = primary?.fsm.state;
    // Adopt the connection when the primary core waits without a connection of its own. While its
    // own outbound attempt is in flight (Connect), the inbound one gets a core of its own and the
    // OPENs decide (RFC 4271 §6.8): one core never gets two connections.
    if (
      primary !== undefined &&
      (st === 'connect' || st === 'active') &&
      primary.socket === undefined &&
      !primary.connecting
    ) {
      primary.attach(socket);
      return;
    }
    if (st === 'established' || p.sessions.length >= 2) {
      socket.destroy(); // RFC 4271 §6.8: an Established connection wins
      return;
    }
    const s = this.newSession(p, true, true);
    p.sessions.push(s);
    s.input((fsm, now) => fsm.start(now));
    s.attach(socket);
  }

  // ------------------------------------------------------------------ session events
  private onSessionEvent(p: Peer, s: Session, ev: FsmEvent): void {
    switch (ev.type) {
      case 'open':
        this.resolveCollisions(p, s, ev.open.bgpId);
        break;
      case 'established':
        this.onEstablished(p, s, ev.negotiated);
        break;
      case 'update':
        if (p.negotiated !== undefined && p.primary === s) this.in.onUpdate(p, ev.update);
        break;
      case 'route-refresh':
        if (p.primary === s) this.onRouteRefresh(p, ev.msg.afi, ev.msg.safi, ev.msg.subtype);
        break;
      case 'down':
        this.onDown(p, s, ev);
        break;
      case 'state':
        this.emit('peer-state', p, ev.from, ev.to);
        break;
      default:
        break;
    }
  }

  private resolveCollisions(p: Peer, s: Session, remoteId: number): void {
    for (const o of p.sessions) {
      if (o === s) continue;
      const st = o.fsm.state;
      if (st === 'established') {
        s.closeForCollision();
        return;
      }
      if (st !== 'opensent' && st !== 'openconfirm') {
        // No competing connection yet: the other session only tries to connect. Drop it.
        this.dropSession(p, o);
        continue;
      }
      const keep = resolveCollision(this.cfg.routerId, remoteId);
      const localInitiated = keep === 'keep-local-initiated';
      const loser = s.inbound === localInitiated ? s : o;
      loser.closeForCollision();
      this.dropSession(p, loser);
      return;
    }
    // s is now the only session: make it primary.
    const i = p.sessions.indexOf(s);
    if (i > 0) {
      p.sessions.splice(i, 1);
      p.sessions.unshift(s);
    }
  }

  private dropSession(p: Peer, s: Session): void {
    const i = p.sessions.indexOf(s);
    if (i >= 0) p.sessions.splice(i, 1);
    setImmediate(() => s.dispose());
  }

  private onEstablished(p: Peer, s: Session, n: Negotiated): void {
    // Keep only this session.
    for (const o of [...p.sessions]) if (o !== s) this.dropSession(p, o);
    if (p.sessions[0] !== s) {
      p.sessions.splice(p.sessions.indexOf(s), 1);
      p.sessions.unshift(s);
    }
    p.negotiated = n;
    if (p.dynamic) p.cfg = { ...p.cfg, peerAsn: n.peerAsn };
    p.source = {
      local: false,
      ebgp: n.ctx.ebgp,
      bgpId: n.peerBgpId,
      address: p.addr,
      rrClient: p.cfg.routeReflectorClient,
    };
    p.stats.establishedAt = Date.now();
    p.disabled.clear();
    p.warned.clear();
    this.log.info({ peer: p.cfg.address, asn: n.peerAsn, families: [...n.families] }, 'session established');
    // Graceful restart: paths kept stale from the previous session wait for the new End-of-RIB;
    // a peer that no longer offers GR for a family gets its stale paths flushed now.
    for (const f of [...p.staleFamilies]) {
      const keep = n.peerGracefulRestart?.families.get(f)?.forwardingState === true;
      if (!keep || !n.families.has(f)) this.flushStale(p, f);
    }
    for (const f of n.families) {
      if (!this.ribs.has(f)) continue;
      p.eorPending.add(f);
      this.out.initialDump(p, f);
    }
    this.bfdAcquire(p, s);
    this.emit('peer-established', p);
    this.scheduleFlush();
    s.kick();
  }

  private onDown(p: Peer, s: Session, ev: Extract<FsmEvent, { type: 'down' }>): void {
    p.stats.lastError = ev.reason;
    if (p.dynamic && (p.primary === s || p.negotiated === undefined)) {
      // A dynamic neighbour exists only while its session does (no graceful-restart retention).
      p.negotiated = undefined;
      this.removeDynamic(p);
      this.emit('peer-down', p, ev.reason);
      return;
    }
    if (p.primary !== s || p.negotiated === undefined) {
      // A losing or never-established connection.
      if (p.primary !== s) this.dropSession(p, s);
      this.emit('peer-down', p, ev.reason);
      return;
    }
    const n = p.negotiated;
    p.negotiated = undefined;
    this.bfdRelease(p);
    p.stats.lastDownAt = Date.now();
    p.stats.flaps++;
    p.eorPending.clear();
    p.eorrPending.clear();
    for (const a of p.adjOut.values()) a.reset();
    this.log.warn({ peer: p.cfg.address, reason: ev.reason }, 'session down');
    // RFC 4724 §4.2 helper: keep the routes stale when the peer restarts (not after a NOTIFICATION,
    // unless both sides agreed on RFC 8538's N bit).
    const gr = n.peerGracefulRestart;
    const notified = ev.received !== undefined || ev.sent !== undefined;
    const helper = gr !== undefined && p.cfg.gracefulRestart !== undefined && (!notified || gr.notification);
    for (const f of n.families) {
      const rib = this.ribs.get(f);
      if (rib === undefined) continue;
      if (helper && gr.families.has(f)) {
        rib.markStale(p.index);
        p.staleFamilies.add(f);
      } else rib.removePeer(p.index);
    }
    if (p.staleFamilies.size > 0 && gr !== undefined) {
      if (p.staleTimer !== undefined) clearTimeout(p.staleTimer);
      p.staleTimer = setTimeout(() => {
        p.staleTimer = undefined;
        for (const f of [...p.staleFamilies]) this.flushStale(p, f);
      }, gr.restartTime * 1000);
    }
    p.clearCaches();
    this.emit('peer-down', p, ev.reason);
    this.scheduleFlush();
    // An inbound-born session continues passive; replace it by a session of the configured mode.
    if (s.inbound && !p.cfg.passive && !p.adminDown) {
      this.dropSession(p, s);
      const fresh = this.newSession(p, false, false);
      p.sessions.unshift(fresh);
      setTimeout(() => fresh.start(), 1000).unref();
    }
  }

  private flushStale(p: Peer, f: AfiSafiName): void {
    p.staleFamilies.delete(f);
    const n = this.ribs.get(f)?.removePeer(p.index, true) ?? 0;
    if (n > 0) this.log.info({ peer: p.cfg.address, family: f, routes: n }, 'stale routes flushed');
    if (p.staleFamilies.size === 0 && p.staleTimer !== undefined) {
      clearTimeout(p.staleTimer);
      p.staleTimer = undefined;
    }
    this.scheduleFlush();
  }

  private onRouteRefresh(p: Peer, afi: number, safi: number, subtype: number): void {
    const f = afiSafiName(afi, safi);
    if (subtype !== RouteRefreshSubtype.NORMAL) return; // BoRR/EoRR from the peer: we do not keep stale marks per refresh
    if (f === undefined || p.negotiated?.families.has(f) !== true || !this.ribs.has(f)) return; // RFC 2918 §4: ignore
    this.out.resend(p, f, p.negotiated.enhancedRouteRefresh);
    p.primary?.kick();
  }

  /** Asks the peer to re-send its routes (soft reset in, RFC 2918). */
  refreshFrom(p: Peer, family: AfiSafiName): boolean {
    if (p.negotiated?.routeRefresh !== true || !p.negotiated.families.has(family)) return false;
    const { afi, safi } = afiSafiCode(family);
    p.primary?.input((fsm) => fsm.sendRouteRefresh(afi, safi));
    return true;
  }

  // ------------------------------------------------------------------ BFD (RFC 5880, RFC 9384)
  /** Starts BFD towards an Established neighbour configured with `bfd`. */
  private bfdAcquire(p: Peer, s: Session): void {
    const b = p.cfg.bfd;
    const localAddress = s.localAddress;
    if (b === undefined || this.bfd === undefined || localAddress === undefined) return;
    if (p.bfdSession !== undefined) return;
    const key = { localAddress, multihop: b.multihop };
    p.bfdSession = key;
    this.bfd
      .acquire(normalizeAddress(p.cfg.address), {
        ...key,
        desiredMinTxUs: b.minTxMs * 1000,
        requiredMinRxUs: b.minRxMs * 1000,
        detectMult: b.multiplier,
      })
      .catch((e: unknown) => {
        p.bfdSession = undefined;
        this.log.warn({ peer: p.cfg.address, err: (e as Error).message }, 'BFD session could not start');
      });
  }

  private bfdRelease(p: Peer): void {
    const key = p.bfdSession;
    if (key === undefined || this.bfd === undefined) return;
    p.bfdSession = undefined;
    this.bfd.release(normalizeAddress(p.cfg.address), key);
  }

  /**
   * BFD went down: the coupled BGP session ends with Cease/BFD Down (RFC 9384) — unless either side
   * took BFD down administratively, which is not a failure (RFC 5882 §3.2).
   */
  private onBfdDown(c: BfdStateChange): void {
    const p = this.byAddress.get(normalizeAddress(c.peer));
    if (p === undefined || p.bfdSession === undefined || p.bfdSession.localAddress !== c.localAddress) return;
    if (c.remoteState === 'AdminDown' || c.to === 'AdminDown') {
      this.log.info({ peer: p.cfg.address }, 'BFD taken down administratively: BGP session kept');
      return;
    }
    this.log.warn({ peer: p.cfg.address, diag: c.diagName }, 'BFD down: closing the BGP session (Cease/10)');
    p.primary?.input((fsm, now) => fsm.cease(now, CeaseSubcode.BFD_DOWN));
    p.stats.lastError = `BFD down (${c.diagName}): sent Cease/BFD Down`; // after the FSM's own note
  }

  /** Re-applies import policy to every path of every peer (after a policy change). */
  reimportAll(): void {
    this.in.reimportAll();
  }

  onEndOfRib(p: Peer, f: AfiSafiName): void {
    if (p.staleFamilies.has(f)) this.flushStale(p, f);
    this.emit('end-of-rib', p, f);
  }
  // ------------------------------------------------------------------ local routes
  private originateNetworks(): void {
    for (const pfx of this.cfg.networks) this.originate(pfx);
  }

  /** Adds a locally originated prefix (ORIGIN IGP, empty AS_PATH). */
  originate(
    pfx: Prefix,
    extra: Partial<AttrSet['attrs']> = {},
    /** For VPN families (RFC 4364): the route distinguisher and the label stack to advertise. */
    vpn?: { readonly rd: Uint8Array; readonly labels: readonly number[] },
  ): void {
    const v4 = pfx.afi === AFI_IPV4;
    const family: AfiSafiName =
      vpn === undefined ? (v4 ? 'ipv4-unicast' : 'ipv6-unicast') : v4 ? 'ipv4-vpn' : 'ipv6-vpn';
    const rib = this.ribs.get(family);
    if (rib === undefined) return;
    const attrs: AttrSet['attrs'] = {
      origin: 0,
      asPath: [],
      nextHop: new Uint8Array(v4 ? 4 : 16),
      ...extra,
    };
    const key = canonicalKey(attrs);
    let id = this.localSets.get(key);
    if (id === undefined) {
      id = this.attrs.create(attrs, LOCAL_PEER).id;
      this.localSets.set(key, id);
      this.attrs.ref(id); // local sets live as long as the speaker
    }
    const nlri = vpn === undefined ? { prefix: pfx } : { prefix: pfx, rd: vpn.rd };
    rib.upsert(rib.findOrAdd(nlri), LOCAL_PEER, 0, id, id, vpn?.labels);
    this.scheduleFlush();
  }

  withdrawLocal(pfx: Prefix, rd?: Uint8Array): void {
    const v4 = pfx.afi === AFI_IPV4;
    const family: AfiSafiName =
      rd === undefined ? (v4 ? 'ipv4-unicast' : 'ipv6-unicast') : v4 ? 'ipv4-vpn' : 'ipv6-vpn';
    const rib = this.ribs.get(family);
    if (rib === undefined) return;
    const d = rib.find(rd === undefined ? { prefix: pfx } : { prefix: pfx, rd });
    if (d >= 0) rib.remove(d, LOCAL_PEER, 0);
    this.scheduleFlush();
  }

  // ------------------------------------------------------------------ best path and output
  scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Runs the decision process for dirty destinations and updates every Adj-RIB-Out. */
  flush(): void {
    let changed = 0;
    // FIB followers (the data plane) learn which destinations were decided again.
    const follow = this.listenerCount('best-changed') > 0;
    for (const [family, rib] of this.ribs) {
      if (rib.dirtyCount === 0) continue;
      changed += rib.dirtyCount;
      const decided: number[] | undefined = follow ? [] : undefined;
      this.out.beginFamily(rib);
      rib.drainDirty((d) => {
        rib.decide(d, this.sourceOf, this.decision);
        decided?.push(d);
        this.out.destinationChanged(rib, d);
      });
      if (decided !== undefined) this.emit('best-changed', family, decided);
    }
    for (const p of this.peers) {
      if (p === undefined || p.negotiated === undefined) continue;
      p.primary?.kick();
    }
    if (changed > 0) this.emit('rib-changed', changed);
  }

  peerList(): Peer[] {
    return this.peers.filter((p): p is Peer => p !== undefined);
  }

  /** For the API: a human form of a peer index. */
  peerName(index: number): string {
    return index === LOCAL_PEER ? 'local' : formatAddress(this.peers[index]!.addr);
  }
}

/** A stable text key for a set of attributes (used only off the IPv4 hot path). */
export function canonicalKey(a: unknown): string {
  return JSON.stringify(a, (_k, v: unknown) =>
    v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v,
  );
}
