/**
 * The BGP speaker: neighbours, their sessions, one RIB per address family, policy, and the
 * flow between them. One writer: every RIB change happens synchronously in an event handler here;
 * the best-path run and the Adj-RIB-Out update happen once per event-loop turn for every
 * destination touched in that turn (`flush`), and UPDATEs are built only when a socket drains.
 *
 * Incoming UPDATE (hot path, IPv4 unicast): raw attribute bytes are hashed and looked up in the
 * peer's cache; only a new set is decoded (RFC 7606 checks included), interned and run through
 * import policy; each prefix then costs one hash-table probe and one path upsert.
 */
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { ByteArena } from '../lib/byte-arena.ts';
import { AFI_IPV4, formatAddress, parseAddress, type Prefix } from '../lib/ip.ts';
import {
  afiSafiCode,
  afiSafiName,
  CeaseSubcode,
  RouteRefreshSubtype,
  type AfiSafiName,
} from './wire/constants.ts';
import { NotificationError, UpdateError } from './wire/errors.ts';
import type { Negotiated } from './wire/negotiate.ts';
import type { DecodedAttributes, Nlri, UpdateMessage } from './wire/types.ts';
import { decodeAttributes } from './wire/attributes.ts';
import { decodeNlri, forEachIPv4Prefix } from './wire/nlri.ts';
import type { FsmConfig, FsmEvent } from './fsm.ts';
import { resolveCollision } from './fsm.ts';
import { Session } from './session.ts';
import { AttrSetTable, asPathContains, type AttrSet } from './rib/attr-set.ts';
import { FamilyRib } from './rib/family-rib.ts';
import { DEFAULT_DECISION_OPTIONS, type DecisionOptions, type PathSource } from './rib/decision.ts';
import { Peer, type NeighborConfig, type RawEntry } from './peer.ts';
import { RibOut } from './rib-out.ts';
import type { PolicyBook } from './policy/index.ts';
import { isEndOfRib } from './wire/update.ts';

export interface SpeakerConfig {
  readonly asn: number;
  readonly routerId: number;
  readonly clusterId?: number;
  readonly listen?: { readonly address: string; readonly port: number } | false;
  readonly neighbors: readonly NeighborConfig[];
  /** Locally originated prefixes. */
  readonly networks: readonly Prefix[];
  readonly decision?: DecisionOptions;
  readonly policies: PolicyBook;
  readonly families?: readonly AfiSafiName[];
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

/** FNV-1a over bytes: the attribute cache key (collisions are resolved by comparing bytes). */
function fnv(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function normalizeAddress(a: string): string {
  return a.replace(/^::ffff:/, '');
}

export class Speaker extends EventEmitter {
  readonly attrs = new AttrSetTable();
  private readonly arena = new ByteArena();
  readonly ribs = new Map<AfiSafiName, FamilyRib>();
  readonly peers: Peer[] = []; // index 0 unused (local)
  private readonly byAddress = new Map<string, Peer>();
  private readonly servers: net.Server[] = [];
  private flushScheduled = false;
  readonly out: RibOut;
  readonly decision: DecisionOptions;
  private localSets = new Map<string, number>();
  readonly startedAt = Date.now();
  listenPort: number | undefined;

  constructor(
    public cfg: SpeakerConfig,
    readonly log: SpeakerLog = { info: () => undefined, warn: () => undefined },
  ) {
    super();
    this.decision = cfg.decision ?? DEFAULT_DECISION_OPTIONS;
    for (const f of cfg.families ?? (['ipv4-unicast', 'ipv6-unicast', 'ipv4-vpn', 'ipv6-vpn'] as const)) {
      const rib = new FamilyRib(f, this.attrs);
      this.ribs.set(f, rib);
    }
    this.out = new RibOut(this);
    this.peers.push(undefined as unknown as Peer); // index 0 is the local pseudo-peer
    this.attrs.onRelease((set) => {
      const p = this.peers[set.source];
      if (p !== undefined) p.forgetSet(set);
      for (const q of this.peers) if (q !== undefined) for (let f = 0; f < 4; f++) q.exportCache.delete(set.id * 4 + f);
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
    }
    this.originateNetworks();
    for (const p of this.peers) if (p !== undefined && !p.cfg.shutdown) this.startPeer(p);
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
    await Promise.race([Promise.all(waits), new Promise((r) => setTimeout(r, 2000))]);
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
      peerAsn: c.peerAsn,
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
      { remoteAddress: normalizeAddress(c.address), remotePort: c.remotePort, localAddress: c.localAddress },
      {
        onEvent: (s, ev) => this.onSessionEvent(p, s, ev),
        produce: (s, budget) => this.out.produce(p, s, budget),
      },
      inbound,
    );
  }

  startPeer(p: Peer): void {
    p.adminDown = false;
    if (p.sessions.length > 0) return;
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
  private accept(socket: net.Socket): void {
    const remote = normalizeAddress(socket.remoteAddress ?? '');
    const p = this.byAddress.get(remote);
    if (p === undefined || p.adminDown || p.cfg.shutdown) {
      this.log.warn({ remote }, 'connection from unconfigured or shut down neighbor refused');
      socket.destroy();
      return;
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
        if (p.negotiated !== undefined && p.primary === s) this.onUpdate(p, ev.update);
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
    this.emit('peer-established', p);
    this.scheduleFlush();
    s.kick();
  }

  private onDown(p: Peer, s: Session, ev: Extract<FsmEvent, { type: 'down' }>): void {
    p.stats.lastError = ev.reason;
    if (p.primary !== s || p.negotiated === undefined) {
      // A losing or never-established connection.
      if (p.primary !== s) this.dropSession(p, s);
      this.emit('peer-down', p, ev.reason);
      return;
    }
    const n = p.negotiated;
    p.negotiated = undefined;
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

  // ------------------------------------------------------------------ incoming UPDATE
  // The per-prefix callbacks are created once and read their context from `cursor`: a closure
  // made per UPDATE costs more than the prefixes it handles (measured under tsx).
  private readonly cursor = { rib: undefined as FamilyRib | undefined, peer: 0, raw: -1, acc: -1 };
  private setCursor(rib: FamilyRib, peer: number, raw: number, acc: number): void {
    const c = this.cursor;
    c.rib = rib;
    c.peer = peer;
    c.raw = raw;
    c.acc = acc;
  }
  private readonly v4Upsert = (addr: number, len: number, pid: number): void => {
    const c = this.cursor;
    const rib = c.rib!;
    rib.upsert(rib.findOrAddV4(addr, len), c.peer, pid, c.raw, c.acc);
  };
  private readonly v4Withdraw = (addr: number, len: number, pid: number): void => {
    const c = this.cursor;
    const rib = c.rib!;
    const d = rib.findV4(addr, len);
    if (d >= 0) rib.remove(d, c.peer, pid);
  };

  private onUpdate(p: Peer, u: UpdateMessage): void {
    const ctx = p.negotiated!.ctx;
    p.stats.updatesIn++;
    let decoded: DecodedAttributes | undefined;
    try {
      const eor = u.attributes.length === 0 && u.nlri.length === 0 && u.withdrawn.length === 0;
      if (eor) {
        this.onEndOfRib(p, 'ipv4-unicast');
        return;
      }
      const v4 = this.ribs.get('ipv4-unicast');
      const v4ok =
        v4 !== undefined && p.negotiated!.families.has('ipv4-unicast') && !p.disabled.has('ipv4-unicast');
      const addPathV4 = ctx.addPathRx.has('ipv4-unicast');
      if (u.withdrawn.length > 0 && v4ok) {
        this.setCursor(v4, p.index, -1, -1);
        forEachIPv4Prefix(u.withdrawn, addPathV4, this.v4Withdraw);
      }
      if (u.attributes.length === 0) return;
      const hasNlri = u.nlri.length > 0;
      // Cache decoded attributes by their raw bytes (only without MP attributes: those embed NLRI).
      const h = fnv(u.attributes);
      let entry = p.rawCache.get(h);
      while (entry !== undefined && !sameBytes(entry.bytes, u.attributes)) entry = entry.next;
      if (entry === undefined) {
        // Decode from a private copy (Buffer#slice would not copy): decoded values are views,
        // and views into the socket's chunk would keep the whole chunk alive.
        const bytes = this.arena.copy(u.attributes);
        decoded = decodeAttributes(bytes, ctx, hasNlri);
        if (decoded.mpReach === undefined && decoded.mpUnreach === undefined && hasNlri) {
          entry = { bytes, decoded, setId: -1, acc: -2, next: p.rawCache.get(h) };
          p.rawCache.set(h, entry);
        }
      } else decoded = entry.decoded;
      if (decoded.errors.length > 0) {
        p.stats.errors7606 += decoded.errors.length;
        p.stats.lastError = decoded.errors.map((e) => e.message).join('; ');
        this.emit('update-error', p, decoded.errors);
      }
      const eorFamily = isEndOfRib(u, decoded);
      if (eorFamily !== undefined) {
        this.onEndOfRib(p, eorFamily);
        return;
      }
      const withdrawAll = decoded.action === 'treat-as-withdraw';
      // MP_UNREACH (RFC 4760 §4)
      const mu = decoded.mpUnreach;
      if (mu !== undefined) {
        const f = afiSafiName(mu.afi, mu.safi);
        if (f !== undefined && this.ribs.has(f) && p.negotiated!.families.has(f) && !p.disabled.has(f)) {
          const rib = this.rib(f);
          for (const n of decodeNlri(mu.nlri, f, ctx.addPathRx.has(f), 'mp')) {
            const d = rib.find(n);
            if (d >= 0) rib.remove(d, p.index, n.pathId ?? 0);
          }
        }
      }
      if (decoded.action === 'afi-safi-disable') {
        const f =
          decoded.mpReach !== undefined ? afiSafiName(decoded.mpReach.afi, decoded.mpReach.safi) : undefined;
        if (f !== undefined) this.disableFamily(p, f);
        return;
      }
      // IPv4 NLRI in the UPDATE's own field
      if (hasNlri && v4ok) {
        if (withdrawAll) {
          this.setCursor(v4, p.index, -1, -1);
          forEachIPv4Prefix(u.nlri, addPathV4, this.v4Withdraw);
        } else {
          let raw = entry?.setId ?? -1;
          if (raw < 0) {
            raw = this.internRaw(p, decoded.attrs, entry === undefined ? undefined : h);
            if (entry !== undefined) entry.setId = raw;
          }
          this.importV4(p, v4, raw, u.nlri, addPathV4, entry);
        }
      }
      const mr = decoded.mpReach;
      if (mr !== undefined) {
        const f = afiSafiName(mr.afi, mr.safi);
        if (f !== undefined && this.ribs.has(f) && p.negotiated!.families.has(f) && !p.disabled.has(f)) {
          const rib = this.rib(f);
          const items = decodeNlri(mr.nlri, f, ctx.addPathRx.has(f), 'mp');
          if (withdrawAll) {
            for (const n of items) {
              const d = rib.find(n);
              if (d >= 0) rib.remove(d, p.index, n.pathId ?? 0);
            }
          } else {
            // Object.assign rather than a spread that adds fields: keeps V8's fast object shape.
            const attrs: AttrSet['attrs'] = Object.assign({}, decoded.attrs, {
              nextHop: mr.nextHop,
              linkLocalNextHop: mr.linkLocalNextHop,
            });
            const raw = this.internByKey(p, attrs);
            this.importMp(p, rib, raw, items);
          }
        }
      }
    } catch (e) {
      if (e instanceof UpdateError && e.action !== 'session-reset') {
        // An NLRI field we cannot parse in an MP attribute: RFC 7606 §5.3 / RFC 4760 §7.
        const f = decoded?.mpReach ?? decoded?.mpUnreach;
        const fam = f !== undefined ? afiSafiName(f.afi, f.safi) : undefined;
        if (fam !== undefined && e.action === 'afi-safi-disable') {
          this.disableFamily(p, fam);
          return;
        }
      }
      if (e instanceof NotificationError) {
        p.stats.lastError = e.message;
        this.log.warn({ peer: p.cfg.address, err: e.message }, 'UPDATE error: session reset');
        p.primary?.input((fsm, now) => fsm.sendNotification(now, e));
        return;
      }
      throw e;
    } finally {
      this.checkMaxPrefix(p);
      this.scheduleFlush();
    }
  }

  /** RFC 7606 §5.3 / RFC 4760 §7: stop using this family on this session and drop its routes. */
  private disableFamily(p: Peer, f: AfiSafiName): void {
    if (p.disabled.has(f)) return;
    p.disabled.add(f);
    this.ribs.get(f)?.removePeer(p.index);
    this.log.warn({ peer: p.cfg.address, family: f }, 'AFI/SAFI disabled after a malformed UPDATE');
  }

  private onEndOfRib(p: Peer, f: AfiSafiName): void {
    if (p.staleFamilies.has(f)) this.flushStale(p, f);
    this.emit('end-of-rib', p, f);
  }

  /** Interns attributes received from p (raw, pre-policy), keyed by the raw bytes hash. */
  private internRaw(p: Peer, attrs: AttrSet['attrs'], hash: number | undefined): number {
    const set = this.attrs.create(attrs, p.index);
    set.cacheKey = hash;
    return set.id;
  }

  /** Interns attributes by a canonical text key (MP families, policy results). */
  private internByKey(p: Peer, attrs: AttrSet['attrs']): number {
    const key = canonicalKey(attrs);
    const hit = p.setByKey.get(key);
    if (hit !== undefined) return hit;
    const set = this.attrs.create(attrs, p.index);
    p.setByKey.set(key, set.id);
    set.cacheKey = key;
    return set.id;
  }

  private importPolicy(p: Peer): { names: readonly string[]; defaultAccept: boolean } {
    const names = p.cfg.importPolicy ?? [];
    // RFC 8212: an eBGP session without an explicit import policy accepts nothing.
    const defaultAccept = p.cfg.importPolicy === undefined ? !p.source.ebgp : false;
    return { names, defaultAccept };
  }

  /** Loop detection, then import policy for a set: accepted set id or -1. */
  private importSet(p: Peer, rawId: number, family: AfiSafiName, prefix: Prefix | undefined): number {
    const set = this.attrs.get(rawId);
    const a = set.attrs;
    // RFC 4271 §9.1.2: our own AS in the path; RFC 4456 §8: our router id / cluster id.
    if (asPathContains(a.asPath, this.cfg.asn)) return -1;
    if (a.originatorId !== undefined && a.originatorId === this.cfg.routerId) return -1;
    if (a.clusterList?.includes(this.cfg.clusterId ?? this.cfg.routerId) === true) return -1;
    const { names, defaultAccept } = this.importPolicy(p);
    if (names.length === 0) return defaultAccept ? rawId : -1;
    const r = this.cfg.policies.evaluate(
      names,
      {
        prefix: prefix ?? { afi: AFI_IPV4, addr: new Uint8Array(4), len: 0 },
        family,
        attrs: a,
        neighbor: p.addr,
        routeType: p.source.ebgp ? 'external' : 'internal',
      },
      defaultAccept,
    );
    if (!r.accept) return -1;
    if (r.attrs === a) return rawId;
    return this.internByKey(p, r.attrs);
  }

  private importV4(
    p: Peer,
    rib: FamilyRib,
    raw: number,
    nlri: Uint8Array,
    addPath: boolean,
    entry: RawEntry | undefined,
  ): void {
    const perPrefix = this.cfg.policies.dependsOnPrefix(p.cfg.importPolicy ?? []);
    if (!perPrefix) {
      // The import result lives on the raw cache entry (no separate map on the hot path).
      let acc = entry !== undefined && entry.acc !== -2 ? entry.acc : p.importCache.get(raw);
      if (acc === undefined) {
        acc = this.importSet(p, raw, 'ipv4-unicast', undefined);
        if (entry !== undefined) entry.acc = acc;
        else p.importCache.set(raw, acc);
      }
      this.setCursor(rib, p.index, raw, acc);
      forEachIPv4Prefix(nlri, addPath, this.v4Upsert);
      return;
    }
    forEachIPv4Prefix(nlri, addPath, (addr, len, pid) => {
      const d = rib.findOrAddV4(addr, len);
      const acc = this.importSet(p, raw, 'ipv4-unicast', rib.nlriOf(d).prefix);
      rib.upsert(d, p.index, pid, raw, acc);
    });
  }

  private importMp(p: Peer, rib: FamilyRib, raw: number, items: readonly Nlri[]): void {
    const perPrefix = this.cfg.policies.dependsOnPrefix(p.cfg.importPolicy ?? []);
    let acc = perPrefix ? undefined : p.importCache.get(raw);
    if (!perPrefix && acc === undefined) {
      acc = this.importSet(p, raw, rib.family, undefined);
      p.importCache.set(raw, acc);
    }
    for (const n of items) {
      const d = rib.findOrAdd(n);
      const a = acc ?? this.importSet(p, raw, rib.family, n.prefix);
      rib.upsert(d, p.index, n.pathId ?? 0, raw, a, n.labels);
    }
  }

  /** Re-applies import policy to every path of every peer (after a policy change). */
  reimportAll(): void {
    for (const p of this.peers) {
      if (p === undefined) continue;
      p.importCache.clear();
      for (const first of p.rawCache.values()) for (let e: RawEntry | undefined = first; e !== undefined; e = e.next) e.acc = -2;
      for (const rib of this.ribs.values()) {
        rib.reimport(p.index, (raw, d) => this.importSet(p, raw, rib.family, rib.nlriOf(d).prefix));
      }
    }
    for (const p of this.peers) if (p !== undefined) p.exportCache.clear();
    this.out.reexportAll();
    this.scheduleFlush();
  }

  private checkMaxPrefix(p: Peer): void {
    const n = p.negotiated;
    if (n === undefined) return;
    for (const [f, mp] of Object.entries(p.cfg.maxPrefix) as [
      AfiSafiName,
      NonNullable<NeighborConfig['maxPrefix'][AfiSafiName]>,
    ][]) {
      const count = this.ribs.get(f)?.received[p.index] ?? 0;
      if (count > mp.limit) {
        // RFC 4486 §4: Cease/1 with AFI (2), SAFI (1) and the limit (4).
        const { afi, safi } = afiSafiCode(f);
        const data = new Uint8Array(7);
        const dv = new DataView(data.buffer);
        dv.setUint16(0, afi);
        dv.setUint8(2, safi);
        dv.setUint32(3, mp.limit);
        this.log.warn(
          { peer: p.cfg.address, family: f, count, limit: mp.limit },
          'maximum prefixes exceeded',
        );
        p.adminDown = true;
        p.primary?.input((fsm, now) => fsm.cease(now, CeaseSubcode.MAXIMUM_PREFIXES_REACHED, data));
        p.primary?.input((fsm, now) => fsm.stop(now));
        // After the cease: its 'down' event (handled synchronously above) sets the generic reason.
        p.stats.lastError = `maximum prefix limit ${mp.limit} exceeded for ${f} (sent CEASE/MAXIMUM_PREFIXES_REACHED)`;
        if (mp.restartSeconds > 0) {
          if (p.restartTimer !== undefined) clearTimeout(p.restartTimer);
          p.restartTimer = setTimeout(() => {
            p.restartTimer = undefined;
            p.adminDown = false;
            for (const s of p.sessions) s.input((fsm, now) => fsm.start(now));
          }, mp.restartSeconds * 1000);
        }
        return;
      }
      if (count * 100 >= mp.limit * mp.warningThresholdPct && !p.warned.has(f)) {
        p.warned.add(f);
        this.log.warn(
          { peer: p.cfg.address, family: f, count, limit: mp.limit },
          'maximum prefix warning threshold reached',
        );
      }
    }
  }

  // ------------------------------------------------------------------ local routes
  private originateNetworks(): void {
    for (const pfx of this.cfg.networks) this.originate(pfx);
  }

  /** Adds a locally originated prefix (ORIGIN IGP, empty AS_PATH). */
  originate(pfx: Prefix, extra: Partial<AttrSet['attrs']> = {}): void {
    const family: AfiSafiName = pfx.afi === AFI_IPV4 ? 'ipv4-unicast' : 'ipv6-unicast';
    const rib = this.ribs.get(family);
    if (rib === undefined) return;
    const attrs: AttrSet['attrs'] = {
      origin: 0,
      asPath: [],
      nextHop: new Uint8Array(pfx.afi === AFI_IPV4 ? 4 : 16),
      ...extra,
    };
    const key = canonicalKey(attrs);
    let id = this.localSets.get(key);
    if (id === undefined) {
      id = this.attrs.create(attrs, LOCAL_PEER).id;
      this.localSets.set(key, id);
      this.attrs.ref(id); // local sets live as long as the speaker
    }
    rib.upsert(rib.findOrAdd({ prefix: pfx }), LOCAL_PEER, 0, id, id);
    this.scheduleFlush();
  }

  withdrawLocal(pfx: Prefix): void {
    const family: AfiSafiName = pfx.afi === AFI_IPV4 ? 'ipv4-unicast' : 'ipv6-unicast';
    const rib = this.ribs.get(family);
    if (rib === undefined) return;
    const d = rib.find({ prefix: pfx });
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
    for (const rib of this.ribs.values()) {
      if (rib.dirtyCount === 0) continue;
      changed += rib.dirtyCount;
      this.out.beginFamily(rib);
      rib.drainDirty((d) => {
        rib.decide(d, this.sourceOf, this.decision);
        this.out.destinationChanged(rib, d);
      });
    }
    for (const p of this.peers) {
      if (p === undefined || p.negotiated === undefined) continue;
      p.primary?.kick();
    }
    if (changed > 0) this.emit('rib-changed', changed);
  }

  /** Family names this speaker holds a RIB for. */
  families(): AfiSafiName[] {
    return [...this.ribs.keys()];
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
export function canonicalKey(a: object): string {
  return JSON.stringify(a, (_k, v: unknown) =>
    v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v,
  );
}
