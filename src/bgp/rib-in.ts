/**
 * From the wire to the Adj-RIBs-In: one UPDATE at a time, synchronously (RFC 4271 §9.1). The hot
 * path (IPv4 unicast): raw attribute bytes are hashed and looked up in the peer's cache; only a new
 * set is copied, decoded (RFC 7606 checks included), interned and run through loop detection and
 * import policy; each prefix then costs one hash-table probe and one path upsert. Other families
 * go through MP_REACH/MP_UNREACH and a canonical-key intern. RFC 7606 actions are applied here:
 * treat-as-withdraw really withdraws, AFI/SAFI disable drops the family for the session, session
 * reset sends the NOTIFICATION. Max-prefix (RFC 4486) is checked after every UPDATE.
 */
import { ByteArena } from '../lib/byte-arena.ts';
import { AFI_IPV4, type Prefix } from '../lib/ip.ts';
import { afiSafiCode, afiSafiName, CeaseSubcode, type AfiSafiName } from './wire/constants.ts';
import { NotificationError, UpdateError } from './wire/errors.ts';
import type { DecodedAttributes, Nlri, UpdateMessage } from './wire/types.ts';
import { decodeAttributes } from './wire/attributes.ts';
import { decodeNlri, forEachIPv4Prefix } from './wire/nlri.ts';
import { isEndOfRib } from './wire/update.ts';
import { asPathContains, type AttrSet } from './rib/attr-set.ts';
import type { FamilyRib } from './rib/family-rib.ts';
import type { NeighborConfig, Peer, RawEntry } from './peer.ts';
import { canonicalKey, type Speaker } from './speaker.ts';

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

export class RibIn {
  private readonly arena = new ByteArena();

  constructor(private readonly sp: Speaker) {}

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

  onUpdate(p: Peer, u: UpdateMessage): void {
    const ctx = p.negotiated!.ctx;
    p.stats.updatesIn++;
    let decoded: DecodedAttributes | undefined;
    try {
      const eor = u.attributes.length === 0 && u.nlri.length === 0 && u.withdrawn.length === 0;
      if (eor) {
        this.sp.onEndOfRib(p, 'ipv4-unicast');
        return;
      }
      const v4 = this.sp.ribs.get('ipv4-unicast');
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
        this.sp.emit('update-error', p, decoded.errors);
      }
      const eorFamily = isEndOfRib(u, decoded);
      if (eorFamily !== undefined) {
        this.sp.onEndOfRib(p, eorFamily);
        return;
      }
      const withdrawAll = decoded.action === 'treat-as-withdraw';
      // MP_UNREACH (RFC 4760 §4)
      const mu = decoded.mpUnreach;
      if (mu !== undefined) {
        const f = afiSafiName(mu.afi, mu.safi);
        if (f !== undefined && this.sp.ribs.has(f) && p.negotiated!.families.has(f) && !p.disabled.has(f)) {
          const rib = this.sp.rib(f);
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
        if (f !== undefined && this.sp.ribs.has(f) && p.negotiated!.families.has(f) && !p.disabled.has(f)) {
          const rib = this.sp.rib(f);
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
        this.sp.log.warn({ peer: p.cfg.address, err: e.message }, 'UPDATE error: session reset');
        p.primary?.input((fsm, now) => fsm.sendNotification(now, e));
        return;
      }
      throw e;
    } finally {
      this.checkMaxPrefix(p);
      this.sp.scheduleFlush();
    }
  }

  /** RFC 7606 §5.3 / RFC 4760 §7: stop using this family on this session and drop its routes. */
  private disableFamily(p: Peer, f: AfiSafiName): void {
    if (p.disabled.has(f)) return;
    p.disabled.add(f);
    this.sp.ribs.get(f)?.removePeer(p.index);
    this.sp.log.warn({ peer: p.cfg.address, family: f }, 'AFI/SAFI disabled after a malformed UPDATE');
  }

  /** Interns attributes received from p (raw, pre-policy), keyed by the raw bytes hash. */
  private internRaw(p: Peer, attrs: AttrSet['attrs'], hash: number | undefined): number {
    const set = this.sp.attrs.create(attrs, p.index);
    set.cacheKey = hash;
    return set.id;
  }

  /** Interns attributes by a canonical text key (MP families, policy results). */
  private internByKey(p: Peer, attrs: AttrSet['attrs']): number {
    const key = canonicalKey(attrs);
    const hit = p.setByKey.get(key);
    if (hit !== undefined) return hit;
    const set = this.sp.attrs.create(attrs, p.index);
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
    const set = this.sp.attrs.get(rawId);
    const a = set.attrs;
    // RFC 4271 §9.1.2: our own AS in the path; RFC 4456 §8: our router id / cluster id.
    if (asPathContains(a.asPath, this.sp.cfg.asn)) return -1;
    if (a.originatorId !== undefined && a.originatorId === this.sp.cfg.routerId) return -1;
    if (a.clusterList?.includes(this.sp.cfg.clusterId ?? this.sp.cfg.routerId) === true) return -1;
    const { names, defaultAccept } = this.importPolicy(p);
    if (names.length === 0) return defaultAccept ? rawId : -1;
    const r = this.sp.cfg.policies.evaluate(
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
    const perPrefix = this.sp.cfg.policies.dependsOnPrefix(p.cfg.importPolicy ?? []);
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
    const perPrefix = this.sp.cfg.policies.dependsOnPrefix(p.cfg.importPolicy ?? []);
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
    for (const p of this.sp.peers) {
      if (p === undefined) continue;
      p.importCache.clear();
      for (const first of p.rawCache.values())
        for (let e: RawEntry | undefined = first; e !== undefined; e = e.next) e.acc = -2;
      for (const rib of this.sp.ribs.values()) {
        rib.reimport(p.index, (raw, d) => this.importSet(p, raw, rib.family, rib.nlriOf(d).prefix));
      }
    }
    for (const p of this.sp.peers) {
      if (p === undefined) continue;
      p.exportCache.clear();
      p.outSets.clear(); // queued entries of old out sets are skipped; re-export queues new ones
      p.outByKey.clear();
    }
    this.sp.out.reexportAll();
    this.sp.scheduleFlush();
  }

  private checkMaxPrefix(p: Peer): void {
    const n = p.negotiated;
    if (n === undefined) return;
    for (const [f, mp] of Object.entries(p.cfg.maxPrefix) as [
      AfiSafiName,
      NonNullable<NeighborConfig['maxPrefix'][AfiSafiName]>,
    ][]) {
      const count = this.sp.ribs.get(f)?.received[p.index] ?? 0;
      if (count > mp.limit) {
        // RFC 4486 §4: Cease/1 with AFI (2), SAFI (1) and the limit (4).
        const { afi, safi } = afiSafiCode(f);
        const data = new Uint8Array(7);
        const dv = new DataView(data.buffer);
        dv.setUint16(0, afi);
        dv.setUint8(2, safi);
        dv.setUint32(3, mp.limit);
        this.sp.log.warn(
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
        this.sp.log.warn(
          { peer: p.cfg.address, family: f, count, limit: mp.limit },
          'maximum prefix warning threshold reached',
        );
      }
    }
  }
}
