/**
 * From Loc-RIB to the wire: export rules and policy per (peer, best attribute set), then UPDATE
 * packing per out attribute set. IPv4 unicast is packed straight from the RIB's typed arrays into
 * one slab per write batch (no per-prefix objects); other families go through `packUpdates`.
 * Export results are cached per best set, so per-prefix work is one cache lookup unless an export
 * policy has prefix conditions.
 */
import { AFI_IPV4, parseAddress } from '../lib/ip.ts';
import { afiSafiCode, RouteRefreshSubtype, type AfiSafiName } from './wire/constants.ts';
import { encodeAttributes } from './wire/attributes.ts';
import { encodeEndOfRib, packUpdates } from './wire/update.ts';
import type { Nlri } from './wire/types.ts';
import type { FamilyRib } from './rib/family-rib.ts';
import { WITHDRAW } from './rib/adj-out.ts';
import { exportTransform, type ExportAttrs, type ExportTarget } from './rib/export.ts';
import type { Peer } from './peer.ts';
import type { Session } from './session.ts';
import type { Speaker } from './speaker.ts';
import { canonicalKey } from './speaker.ts';

const HEADER = 19;

interface Slab {
  buf: Uint8Array;
  off: number;
}
const MP_PATH_ID = 1; // the path id we use when ADD-PATH send is negotiated (we send best only)

const FAMILY_INDEX: Record<AfiSafiName, number> = {
  'ipv4-unicast': 0,
  'ipv6-unicast': 1,
  'ipv4-vpn': 2,
  'ipv6-vpn': 3,
};

function isV4Family(f: AfiSafiName): boolean {
  return f === 'ipv4-unicast' || f === 'ipv4-vpn';
}

export class RibOut {
  private readonly targets = new Map<string, ExportTarget>();

  constructor(private readonly sp: Speaker) {}

  private target(p: Peer, f: AfiSafiName): ExportTarget {
    const k = `${p.index}|${f}`;
    let t = this.targets.get(k);
    if (t !== undefined) return t;
    const local = p.primary?.localAddress ?? p.cfg.localAddress ?? '0.0.0.0';
    let localBytes: Uint8Array;
    try {
      localBytes = parseAddress(local);
    } catch {
      localBytes = new Uint8Array(4);
    }
    let self: Uint8Array;
    if (isV4Family(f)) {
      self =
        localBytes.length === 4
          ? localBytes
          : Uint8Array.of(
              this.sp.cfg.routerId >>> 24,
              (this.sp.cfg.routerId >>> 16) & 0xff,
              (this.sp.cfg.routerId >>> 8) & 0xff,
              this.sp.cfg.routerId & 0xff,
            );
    } else if (p.cfg.ipv6NextHop !== undefined) {
      self = p.cfg.ipv6NextHop;
    } else if (localBytes.length === 16) {
      self = localBytes;
    } else {
      // IPv6 routes over an IPv4 session: IPv4-mapped IPv6 address (RFC 4291 §2.5.5.2).
      self = new Uint8Array(16);
      self[10] = 0xff;
      self[11] = 0xff;
      self.set(localBytes, 12);
    }
    t = {
      ebgp: p.source.ebgp,
      rrClient: p.cfg.routeReflectorClient,
      localAsn: this.sp.cfg.asn,
      clusterId: this.sp.cfg.clusterId ?? this.sp.cfg.routerId,
      nextHopSelf: p.cfg.nextHopSelf,
      selfNextHop: self,
    };
    this.targets.set(k, t);
    return t;
  }

  private exportPolicy(p: Peer): { names: readonly string[]; defaultAccept: boolean } {
    // RFC 8212: an eBGP session without an explicit export policy sends nothing.
    const names = p.cfg.exportPolicy ?? [];
    return { names, defaultAccept: p.cfg.exportPolicy === undefined ? !p.source.ebgp : false };
  }

  private newOut(p: Peer, attrs: ExportAttrs, dedupe: boolean): number {
    if (dedupe) {
      const key = canonicalKey(attrs);
      const hit = p.outByKey.get(key);
      if (hit !== undefined) return hit;
      const id = p.nextOutId++;
      p.outSets.set(id, { attrs });
      p.outByKey.set(key, id);
      return id;
    }
    const id = p.nextOutId++;
    p.outSets.set(id, { attrs });
    return id;
  }

  /** The out set id peer p should have at destination d of rib, or -1 for nothing. */
  exportFor(p: Peer, rib: FamilyRib, d: number): number {
    const best = rib.bestAttr(d);
    if (best < 0) return -1;
    const bp = rib.bestPeer(d);
    if (bp === p.index || p.disabled.has(rib.family)) return -1;
    const { names, defaultAccept } = this.exportPolicy(p);
    if (names.length === 0 && !defaultAccept) return -1;
    const perPrefix = names.length > 0 && this.sp.cfg.policies.dependsOnPrefix(names);
    const cacheKey = best * 4 + FAMILY_INDEX[rib.family];
    if (!perPrefix) {
      const hit = p.exportCache.get(cacheKey);
      if (hit !== undefined) return hit;
    }
    const set = this.sp.attrs.get(best);
    const src =
      bp === 0 ? { local: true, ebgp: false, bgpId: 0, rrClient: false } : this.sp.peers[bp]!.source;
    const tgt = this.target(p, rib.family);
    let out = exportTransform(set, src, tgt);
    let id = -1;
    if (out !== undefined && names.length > 0) {
      const r = this.sp.cfg.policies.evaluate(
        names,
        {
          prefix: perPrefix ? rib.nlriOf(d).prefix : { afi: AFI_IPV4, addr: new Uint8Array(4), len: 0 },
          family: rib.family,
          attrs: out,
          neighbor: p.addr,
          routeType: src.local ? 'local' : src.ebgp ? 'external' : 'internal',
        },
        defaultAccept,
      );
      if (!r.accept) out = undefined;
      else if (r.attrs !== out || r.nextHopSelf === true || r.nextHop !== undefined) {
        const a: { -readonly [K in keyof ExportAttrs]: ExportAttrs[K] } = { ...(r.attrs as ExportAttrs) };
        if (r.nextHopSelf === true) a.nextHop = tgt.selfNextHop;
        else if (r.nextHop !== undefined) a.nextHop = r.nextHop;
        out = a;
      }
    }
    if (out !== undefined) id = this.newOut(p, out, perPrefix);
    if (!perPrefix) p.exportCache.set(cacheKey, id);
    return id;
  }

  beginFamily(rib: FamilyRib): void {
    for (const p of this.sp.peers) {
      if (p === undefined || p.negotiated?.families.has(rib.family) !== true) continue;
      p.adj(rib.family).ensure(rib.capacity);
    }
  }

  destinationChanged(rib: FamilyRib, d: number): void {
    for (const p of this.sp.peers) {
      if (p === undefined || p.negotiated?.families.has(rib.family) !== true) continue;
      p.adj(rib.family).set(d, this.exportFor(p, rib, d));
    }
  }

  /** Queues the whole table for a peer that just came up. */
  initialDump(p: Peer, f: AfiSafiName): void {
    for (const k of [...this.targets.keys()]) if (k.startsWith(`${p.index}|`)) this.targets.delete(k);
    const rib = this.sp.rib(f);
    const adj = p.adj(f);
    adj.reset();
    adj.ensure(rib.capacity);
    for (let d = 0; d < rib.destCount; d++) if (rib.dBest[d]! >= 0) adj.set(d, this.exportFor(p, rib, d));
  }

  /** Route refresh from the peer: send everything again (RFC 2918 §4; RFC 7313 BoRR/EoRR). */
  resend(p: Peer, f: AfiSafiName, enhanced: boolean): void {
    const rib = this.sp.rib(f);
    if (enhanced) {
      const { afi, safi } = afiSafiCode(f);
      p.primary?.input((fsm) => fsm.sendRouteRefresh(afi, safi, RouteRefreshSubtype.BORR));
      p.eorrPending.add(f);
    }
    p.adj(f).resendAll(rib.destCount);
  }

  /** Recomputes every peer's wanted routes (export policy changed). */
  reexportAll(): void {
    for (const p of this.sp.peers) {
      if (p === undefined || p.negotiated === undefined) continue;
      for (const f of p.negotiated.families) {
        const rib = this.sp.ribs.get(f);
        if (rib === undefined) continue;
        const adj = p.adj(f);
        adj.ensure(rib.capacity);
        for (let d = 0; d < rib.destCount; d++) adj.set(d, this.exportFor(p, rib, d));
      }
    }
  }

  /** Builds the next UPDATE messages for p, up to about `budget` bytes. */
  produce(p: Peer, _s: Session, budget: number): Uint8Array[] {
    const n = p.negotiated;
    const out: Uint8Array[] = [];
    if (n === undefined) return out;
    let used = 0;
    const slab: Slab = { buf: new Uint8Array(0), off: 0 };
    for (const f of n.families) {
      const rib = this.sp.ribs.get(f);
      if (rib === undefined) continue;
      const adj = p.adj(f);
      for (const [key, list] of adj.groups) {
        if (used >= budget) return out;
        used +=
          f === 'ipv4-unicast'
            ? this.packV4(p, rib, key, list, budget - used, out, slab)
            : this.packMp(p, rib, key, list, budget - used, out);
        if (list.pos >= list.length) adj.groups.delete(key);
        else return out;
      }
      if (adj.groups.size === 0) {
        if (p.eorPending.delete(f)) out.push(encodeEndOfRib(f));
        // RFC 7313 §4: EoRR after the last UPDATE of the re-send; it goes in the FSM's UPDATE
        // lane, so it is queued only once every UPDATE of this batch has been handed over.
        if (out.length === 0 && p.eorrPending.delete(f)) {
          const { afi, safi } = afiSafiCode(f);
          p.primary?.fsm.sendRouteRefresh(afi, safi, RouteRefreshSubtype.EORR);
        }
      }
    }
    p.stats.updatesOut += out.length;
    return out;
  }

  private attrBytes(p: Peer, key: number, family: AfiSafiName): Uint8Array | undefined {
    const o = p.outSets.get(key);
    if (o === undefined) return undefined;
    if (o.bytes === undefined && o.attrs !== undefined && family === 'ipv4-unicast') {
      o.bytes = encodeAttributes(o.attrs, p.negotiated!.ctx);
      o.attrs = undefined; // the bytes are all the packer needs from now on
    }
    return o.bytes;
  }

  /** Packs one group of IPv4 unicast destinations; returns bytes produced. */
  private packV4(
    p: Peer,
    rib: FamilyRib,
    key: number,
    list: { data: Int32Array; length: number; pos: number },
    budget: number,
    out: Uint8Array[],
    slab: Slab,
  ): number {
    const adj = p.adj('ipv4-unicast');
    const ctx = p.negotiated!.ctx;
    const maxLen = ctx.extendedMessage ? 65535 : 4096;
    const addPath = ctx.addPathTx.has('ipv4-unicast');
    const withdraw = key === WITHDRAW;
    const attrs = withdraw ? undefined : this.attrBytes(p, key, 'ipv4-unicast');
    if (!withdraw && attrs === undefined) {
      list.pos = list.length; // its best changed since: the entries are stale
      return 0;
    }
    const fixed = HEADER + 4 + (attrs?.length ?? 0);
    if (fixed + 5 + (addPath ? 4 : 0) > maxLen) throw new Error('attributes too large for one UPDATE');
    let produced = 0;
    while (list.pos < list.length && produced < budget) {
      // Messages are carved out of one shared slab per write batch (no allocation per message).
      if (slab.buf.length - slab.off < maxLen) {
        slab.buf = new Uint8Array(Math.max(1 << 20, maxLen * 2));
        slab.off = 0;
      }
      const buf = slab.buf;
      const start = slab.off;
      let w = start + HEADER + 2; // withdrawn routes start (for withdraw groups)
      let count = 0;
      if (!withdraw) {
        // withdrawn length 0, attribute length, attributes, then NLRI
        buf[start + HEADER] = 0;
        buf[start + HEADER + 1] = 0;
        buf[start + HEADER + 2] = attrs!.length >> 8;
        buf[start + HEADER + 3] = attrs!.length & 0xff;
        buf.set(attrs!, start + HEADER + 4);
        w = start + fixed;
      }
      const limit = start + maxLen - (withdraw ? 2 : 0);
      while (list.pos < list.length) {
        const d = list.data[list.pos]!;
        if (!adj.isDue(d, key)) {
          list.pos++;
          continue;
        }
        const len = rib.v4Len(d);
        const nb = (len + 7) >> 3;
        if (w + 1 + nb + (addPath ? 4 : 0) > limit) break;
        if (addPath) {
          buf[w] = 0;
          buf[w + 1] = 0;
          buf[w + 2] = 0;
          buf[w + 3] = MP_PATH_ID;
          w += 4;
        }
        const a = rib.v4Addr(d);
        buf[w++] = len;
        if (nb > 0) buf[w++] = a >>> 24;
        if (nb > 1) buf[w++] = (a >>> 16) & 0xff;
        if (nb > 2) buf[w++] = (a >>> 8) & 0xff;
        if (nb > 3) buf[w++] = a & 0xff;
        adj.sent(d);
        list.pos++;
        count++;
      }
      if (count === 0) break;
      if (withdraw) {
        const wl = w - (start + HEADER + 2);
        buf[start + HEADER] = wl >> 8;
        buf[start + HEADER + 1] = wl & 0xff;
        buf[w++] = 0; // total path attribute length
        buf[w++] = 0;
      }
      const total = w - start;
      buf.fill(0xff, start, start + 16);
      buf[start + 16] = total >> 8;
      buf[start + 17] = total & 0xff;
      buf[start + 18] = 2; // UPDATE
      out.push(buf.subarray(start, w));
      produced += total;
      slab.off = w;
    }
    return produced;
  }

  /** Packs one group of another family via MP_REACH / MP_UNREACH. */
  private packMp(
    p: Peer,
    rib: FamilyRib,
    key: number,
    list: { data: Int32Array; length: number; pos: number },
    budget: number,
    out: Uint8Array[],
  ): number {
    const f = rib.family;
    const adj = p.adj(f);
    const ctx = p.negotiated!.ctx;
    const addPath = ctx.addPathTx.has(f);
    const withdraw = key === WITHDRAW;
    const o = withdraw ? undefined : p.outSets.get(key);
    if (!withdraw && o?.attrs === undefined) {
      list.pos = list.length;
      return 0;
    }
    const items: Nlri[] = [];
    const maxItems = 2000;
    while (list.pos < list.length && items.length < maxItems) {
      const d = list.data[list.pos++]!;
      if (!adj.isDue(d, key)) continue;
      const k = rib.nlriOf(d);
      const best = rib.dBest[d]!;
      const labels = best >= 0 ? rib.pLabels[best] : undefined;
      items.push({
        prefix: k.prefix,
        rd: k.rd,
        labels: f.endsWith('-vpn') ? (labels ?? [0]) : undefined,
        pathId: addPath ? MP_PATH_ID : undefined,
      });
      adj.sent(d);
    }
    if (items.length === 0) return 0;
    const attrs = o?.attrs;
    const msgs = packUpdates({
      family: f,
      attributes: attrs, // packUpdates moves the next hop into MP_REACH_NLRI
      nextHop: attrs?.nextHop,
      linkLocalNextHop: attrs?.linkLocalNextHop,
      items,
      ctx,
      maxLength: ctx.extendedMessage ? 65535 : 4096,
    });
    let n = 0;
    for (const m of msgs) {
      out.push(m);
      n += m.length;
    }
    void budget;
    return n;
  }
}
