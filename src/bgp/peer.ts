/**
 * One configured BGP neighbour: its configuration, its session(s) (two at once only during a
 * connection collision, RFC 4271 §6.8), and the per-peer caches that keep per-prefix work off
 * the hot path: received attribute bytes -> interned set, set -> import result, best set ->
 * export result, out set -> encoded bytes. Caches drop entries when the attribute table frees a set.
 */
import type { AfiSafiName } from './wire/constants.ts';
import type { AddPathMode, Negotiated } from './wire/negotiate.ts';
import type { CodecContext, DecodedAttributes } from './wire/types.ts';
import type { Session } from './session.ts';
import type { ExportAttrs } from './rib/export.ts';
import { AdjRibOut } from './rib/adj-out.ts';
import type { PathSource } from './rib/decision.ts';
import type { AttrSet } from './rib/attr-set.ts';

export interface MaxPrefixConfig {
  readonly limit: number;
  readonly warningThresholdPct: number; // default 75
  /** Seconds before the session may come back after a max-prefix teardown; 0 = stays down until reset. */
  readonly restartSeconds: number;
}

export interface NeighborConfig {
  readonly address: string;
  /** The peer's AS; for a dynamic neighbour, the AS it came up with (0 until then). */
  readonly peerAsn: number;
  /** Dynamic neighbours: the accepted AS numbers (undefined: exactly `peerAsn`; 'any': any). */
  readonly peerAsns?: readonly number[] | 'any';
  readonly description?: string;
  readonly passive: boolean;
  readonly remotePort: number;
  readonly localAddress?: string;
  readonly families: readonly AfiSafiName[];
  /** Policy chains; undefined = none configured (RFC 8212 applies to eBGP). */
  readonly importPolicy?: readonly string[];
  readonly exportPolicy?: readonly string[];
  readonly holdTime: number;
  readonly connectRetryTime: number;
  readonly routeReflectorClient: boolean;
  readonly nextHopSelf: boolean;
  readonly maxPrefix: Partial<Record<AfiSafiName, MaxPrefixConfig>>;
  readonly addPath: Partial<Record<AfiSafiName, AddPathMode>>;
  /** Graceful restart: advertise the capability (helper mode) with this restart time. */
  readonly gracefulRestart?: { readonly restartTime: number };
  /** Next hop to send for IPv6 families when the session runs over IPv4. */
  readonly ipv6NextHop?: Uint8Array;
  readonly shutdown: boolean;
  /** BFD liveness for this neighbour (RFC 9384: BFD down ends the session with Cease/10). */
  readonly bfd?: BfdClientConfig;
  /** TCP-MD5 key (RFC 2385). */
  readonly password?: string;
  /** GTSM (RFC 5082): send with TTL 255, accept TTL >= 256 - hops. */
  readonly ttlSecurity?: { readonly hops: number };
}

export interface BfdClientConfig {
  readonly minTxMs: number;
  readonly minRxMs: number;
  readonly multiplier: number;
  readonly multihop: boolean;
}

export interface RawEntry {
  readonly bytes: Uint8Array; // private copy
  readonly decoded: DecodedAttributes;
  setId: number; // -1 until an IPv4 set was made
  /** Import policy result for setId: accepted set id, -1 rejected, -2 not evaluated yet. */
  acc: number;
  /** Next entry with the same hash (collision chain). */
  next: RawEntry | undefined;
}

export interface OutSet {
  /** Dropped once encoded for IPv4 unicast (the bytes are all the packer needs). */
  attrs: ExportAttrs | undefined;
  bytes?: Uint8Array; // encoded attributes (IPv4 unicast only)
}

export interface PeerStats {
  updatesIn: number;
  updatesOut: number;
  errors7606: number;
  lastError?: string;
  establishedAt?: number; // ms epoch
  lastDownAt?: number;
  flaps: number;
}

export class Peer {
  readonly sessions: Session[] = [];
  negotiated: Negotiated | undefined;
  /** Source facts for the decision process, filled when established. */
  source: PathSource & { rrClient: boolean };
  readonly adjOut = new Map<AfiSafiName, AdjRibOut>();
  /** Raw attribute bytes hash -> entry chain (IPv4 plain-NLRI updates). */
  readonly rawCache = new Map<number, RawEntry>();
  /** Canonical attribute key -> set id (attributes of MP families, policy results). */
  readonly setByKey = new Map<string, number>();
  readonly importCache = new Map<number, number>(); // raw set id -> accepted set id or -1
  /** (best set id × 4 + family index) -> out set id or -1: out sets are family-specific. */
  readonly exportCache = new Map<number, number>();
  readonly outSets = new Map<number, OutSet>();
  readonly outByKey = new Map<string, number>();
  nextOutId = 0;
  /** Families whose End-of-RIB we still owe the peer after the initial dump. */
  readonly eorPending = new Set<AfiSafiName>();
  /** Families whose Enhanced Route Refresh EoRR we owe after a re-send. */
  readonly eorrPending = new Set<AfiSafiName>();
  /** Families disabled by RFC 7606 AFI/SAFI disable for this session. */
  readonly disabled = new Set<AfiSafiName>();
  /** Graceful restart: families with stale paths awaiting End-of-RIB. */
  readonly staleFamilies = new Set<AfiSafiName>();
  staleTimer: NodeJS.Timeout | undefined;
  restartTimer: NodeJS.Timeout | undefined;
  /** The BFD session coupled to this neighbour while Established. */
  bfdSession: { localAddress: string; multihop: boolean } | undefined;
  /** Created from a dynamic-neighbor listen range; removed when its session ends. */
  dynamic = false;
  /** Set when max-prefix (or an operator) stopped the peer. */
  adminDown = false;
  readonly warned = new Set<AfiSafiName>();
  readonly stats: PeerStats = { updatesIn: 0, updatesOut: 0, errors7606: 0, flaps: 0 };
  readonly addr: Uint8Array;

  constructor(
    readonly index: number,
    public cfg: NeighborConfig,
    addr: Uint8Array,
  ) {
    this.addr = addr;
    this.source = { local: false, ebgp: true, bgpId: 0, address: addr, rrClient: cfg.routeReflectorClient };
  }

  get primary(): Session | undefined {
    return this.sessions[0];
  }

  get established(): boolean {
    return this.negotiated !== undefined;
  }

  get ctx(): CodecContext | undefined {
    return this.negotiated?.ctx;
  }

  /** The session state as the API names it. */
  get state(): string {
    const s = this.primary;
    if (this.negotiated !== undefined) return 'established';
    let best = s?.fsm.state ?? 'idle';
    for (const o of this.sessions) {
      const st = o.fsm.state;
      if (st === 'openconfirm' || (st === 'opensent' && best !== 'openconfirm')) best = st;
    }
    return best;
  }

  adj(family: AfiSafiName): AdjRibOut {
    let a = this.adjOut.get(family);
    if (a === undefined) {
      a = new AdjRibOut();
      this.adjOut.set(family, a);
    }
    return a;
  }

  clearCaches(): void {
    this.rawCache.clear();
    this.setByKey.clear();
    this.importCache.clear();
    this.exportCache.clear();
    this.outSets.clear();
    this.outByKey.clear();
  }

  /**
   * A best-path attribute set was freed: its export results go, and so do the out sets made from
   * it (every destination that used it has been re-decided, so no queued entry still needs them).
   */
  forgetExports(setId: number): void {
    for (let f = 0; f < 4; f++) {
      const key = setId * 4 + f;
      const out = this.exportCache.get(key);
      if (out === undefined) continue;
      this.exportCache.delete(key);
      if (out >= 0) this.outSets.delete(out);
    }
  }

  /** Drops every cache entry that mentions a freed attribute set received from this peer. */
  forgetSet(set: AttrSet): void {
    this.importCache.delete(set.id);
    const k = set.cacheKey;
    if (k === undefined) return;
    if (typeof k === 'string') {
      if (this.setByKey.get(k) === set.id) this.setByKey.delete(k);
      return;
    }
    let prev: RawEntry | undefined;
    for (let e = this.rawCache.get(k); e !== undefined; prev = e, e = e.next) {
      if (e.setId !== set.id) continue;
      if (prev !== undefined) prev.next = e.next;
      else if (e.next !== undefined) this.rawCache.set(k, e.next);
      else this.rawCache.delete(k);
      return;
    }
  }
}
