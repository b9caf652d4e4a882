/**
 * The RIB parts on their own: FamilyRib (paths, counters, stale marks, the IPv4 hash table, the
 * dirty queue, best path), AttrSetTable (reference counts, freeing, id reuse), AdjRibOut (grouping
 * per out set, what is due, re-send) and exportTransform (RFC 4271 / RFC 1997 / RFC 4456 rules).
 */
import { describe, expect, it } from 'vitest';
import { formatPrefix, parseAddress, parsePrefix } from '../../src/lib/ip.ts';
import { AsPathSegmentType, WellKnownCommunity } from '../../src/bgp/wire/constants.ts';
import type { AsPathSegment, Nlri, PathAttributes } from '../../src/bgp/wire/types.ts';
import { AttrSetTable, type AttrSet } from '../../src/bgp/rib/attr-set.ts';
import { DEFAULT_DECISION_OPTIONS, type PathSource } from '../../src/bgp/rib/decision.ts';
import { FamilyRib } from '../../src/bgp/rib/family-rib.ts';
import { AdjRibOut, WITHDRAW } from '../../src/bgp/rib/adj-out.ts';
import {
  exportTransform,
  prependAs,
  type ExportSource,
  type ExportTarget,
} from '../../src/bgp/rib/export.ts';
import { deepFreeze } from './policy-helpers.ts';

const SEED = 0x5eed;
const seq = (...asns: number[]): AsPathSegment => ({ type: AsPathSegmentType.AS_SEQUENCE, asns });
const nlri = (s: string): Nlri => ({ prefix: parsePrefix(s) });

function setup(family: 'ipv4-unicast' | 'ipv6-unicast' = 'ipv4-unicast') {
  const table = new AttrSetTable();
  const freed: number[] = [];
  table.onRelease((s) => freed.push(s.id));
  const rib = new FamilyRib(family, table);
  /** A fresh set (no references yet: the paths that use it decide its lifetime). */
  const make = (attrs: PathAttributes, source = 1): AttrSet => table.create(attrs, source);
  return { table, rib, freed, make };
}

const sources: PathSource[] = [
  { local: true, ebgp: false, bgpId: 0, address: new Uint8Array(4) },
  { local: false, ebgp: true, bgpId: 1, address: parseAddress('10.0.0.1') },
  { local: false, ebgp: true, bgpId: 2, address: parseAddress('10.0.0.2') },
  { local: false, ebgp: false, bgpId: 3, address: parseAddress('10.0.0.3') },
];
const sourceOf = (peer: number): PathSource => sources[peer]!;

function drained(rib: FamilyRib): number[] {
  const out: number[] = [];
  rib.drainDirty((d) => out.push(d));
  return out;
}

describe('FamilyRib paths and counters', () => {
  it('upsert adds, replaces in place and remove takes away; received/accepted follow', () => {
    const { rib, table, make } = setup();
    const a = make({ origin: 0, asPath: [seq(65001)] });
    const b = make({ origin: 1, asPath: [seq(65001)] });
    const d = rib.findOrAdd(nlri('10.0.0.0/8'));
    rib.upsert(d, 1, 0, a.id, a.id);
    expect(rib.received[1]).toBe(1);
    expect(rib.accepted[1]).toBe(1);
    expect(table.refCount(a.id)).toBe(2); // raw and accepted are the same set: two references
    // replace: same (peer, path id), new set
    rib.upsert(d, 1, 0, b.id, b.id);
    expect(rib.received[1]).toBe(1);
    expect(rib.accepted[1]).toBe(1);
    expect(table.refCount(b.id)).toBe(2);
    // a second path id from the same peer is a second path
    rib.upsert(d, 1, 7, b.id, -1);
    expect(rib.received[1]).toBe(2);
    expect(rib.accepted[1]).toBe(1);
    expect(table.refCount(b.id)).toBe(3);
    // accepted -> rejected on re-import
    rib.upsert(d, 1, 0, b.id, -1);
    expect(rib.accepted[1]).toBe(0);
    expect(rib.received[1]).toBe(2);
    // rejected -> accepted
    rib.upsert(d, 1, 7, b.id, b.id);
    expect(rib.accepted[1]).toBe(1);
    expect(rib.remove(d, 1, 7)).toBe(true);
    expect(rib.remove(d, 1, 7)).toBe(false);
    expect(rib.remove(d, 2, 0)).toBe(false);
    expect(rib.remove(d, 1, 0)).toBe(true);
    expect(rib.received[1]).toBe(0);
    expect(rib.accepted[1]).toBe(0);
    expect(rib.dHead[d]).toBe(-1);
  });

  it('reference counts reach zero and the set is freed with the last path; its id is reused', () => {
    const { rib, table, freed, make } = setup();
    const raw = make({ origin: 0, asPath: [seq(65001)], med: 5 });
    const acc = make({ origin: 0, asPath: [seq(65001)], med: 5, localPref: 300 }); // "after import policy"
    const d1 = rib.findOrAdd(nlri('10.1.0.0/16'));
    const d2 = rib.findOrAdd(nlri('10.2.0.0/16'));
    rib.upsert(d1, 1, 0, raw.id, acc.id);
    rib.upsert(d2, 1, 0, raw.id, acc.id);
    expect(table.refCount(raw.id)).toBe(2);
    expect(table.refCount(acc.id)).toBe(2);
    const size = table.size;
    rib.remove(d1, 1, 0);
    expect(freed).toEqual([]);
    expect(table.refCount(acc.id)).toBe(1);
    rib.remove(d2, 1, 0);
    expect(freed.sort()).toEqual([raw.id, acc.id].sort());
    expect(table.refCount(raw.id)).toBe(0);
    expect(table.size).toBe(size - 2);
    expect(() => table.get(acc.id)).toThrow(/does not exist/);
    const again = make({ origin: 2 });
    expect([raw.id, acc.id]).toContain(again.id);
    expect(table.get(again.id)).toBe(again);
  });

  it('replacing a path releases the old sets once the new ones are referenced (same set kept alive)', () => {
    const { rib, table, freed, make } = setup();
    const a = make({ origin: 0 });
    const d = rib.findOrAdd(nlri('10.3.0.0/16'));
    rib.upsert(d, 1, 0, a.id, a.id);
    rib.upsert(d, 1, 0, a.id, a.id); // no change: nothing happens
    expect(table.refCount(a.id)).toBe(2);
    const b = make({ origin: 1 });
    rib.upsert(d, 1, 0, b.id, b.id);
    expect(freed).toEqual([a.id]);
    expect(table.refCount(b.id)).toBe(2);
  });

  it('markStale, a refresh clears the mark, removePeer(onlyStale) sweeps the rest', () => {
    const { rib, table, freed, make } = setup();
    const a = make({ origin: 0 });
    const ds = ['10.0.1.0/24', '10.0.2.0/24', '10.0.3.0/24'].map((p) => rib.findOrAdd(nlri(p)));
    for (const d of ds) rib.upsert(d, 1, 0, a.id, a.id);
    rib.upsert(ds[0]!, 2, 0, a.id, a.id); // another peer's path stays untouched
    expect(rib.markStale(1)).toBe(3);
    const stale = (d: number, peer: number): boolean => {
      for (let p = rib.dHead[d]!; p >= 0; p = rib.pNext[p]!) if (rib.pPeer[p] === peer) return rib.isStale(p);
      throw new Error('no path');
    };
    expect(ds.map((d) => stale(d, 1))).toEqual([true, true, true]);
    expect(stale(ds[0]!, 2)).toBe(false);
    rib.upsert(ds[1]!, 1, 0, a.id, a.id); // re-announced after the restart: fresh again
    expect(stale(ds[1]!, 1)).toBe(false);
    expect(rib.removePeer(1, true)).toBe(2);
    expect(rib.received[1]).toBe(1);
    expect(rib.received[2]).toBe(1);
    expect(stale(ds[1]!, 1)).toBe(false);
    expect(rib.removePeer(1)).toBe(1);
    expect(rib.removePeer(2)).toBe(1);
    expect(freed).toEqual([a.id]);
    expect(table.refCount(a.id)).toBe(0);
  });

  it('reimport applies a new import result to every path of one peer', () => {
    const { rib, make } = setup();
    const a = make({ origin: 0 });
    const d1 = rib.findOrAdd(nlri('10.4.0.0/16'));
    const d2 = rib.findOrAdd(nlri('10.5.0.0/16'));
    rib.upsert(d1, 1, 0, a.id, a.id);
    rib.upsert(d2, 1, 0, a.id, a.id);
    rib.upsert(d2, 2, 0, a.id, a.id);
    drained(rib);
    rib.reimport(1, (_raw, d) => (d === d1 ? -1 : a.id));
    expect(rib.accepted[1]).toBe(1);
    expect(rib.accepted[2]).toBe(1);
    expect(drained(rib)).toEqual([d1]); // d2 unchanged: not dirty
  });
});

describe('FamilyRib IPv4 hash table', () => {
  it('100k prefixes through several rehashes: every one found, differential against a Map', () => {
    const { rib } = setup();
    const ref = new Map<string, number>();
    let x = SEED;
    const rnd = (): number => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return x;
    };
    const keys: [number, number][] = [];
    const startSlots = (rib as unknown as { slots: Int32Array }).slots.length;
    for (let i = 0; i < 100_000; i++) {
      const len = 8 + (rnd() % 25); // 8..32
      const addr = len === 32 ? rnd() : (rnd() & (-1 << (32 - len))) >>> 0;
      keys.push([addr, len]);
      const d = rib.findOrAddV4(addr, len);
      const k = `${addr}/${len}`;
      const known = ref.get(k);
      if (known === undefined) ref.set(k, d);
      else if (d !== known) throw new Error(`duplicate ${k} got a second destination`);
    }
    expect(rib.destCount).toBe(ref.size);
    expect((rib as unknown as { slots: Int32Array }).slots.length).toBeGreaterThan(startSlots);
    const wrong: string[] = []; // collected, not asserted one by one (100k expect calls are slow)
    for (const [addr, len] of keys) {
      const d = rib.findV4(addr, len);
      if (d !== ref.get(`${addr}/${len}`) || rib.v4Addr(d) !== addr || rib.v4Len(d) !== len)
        wrong.push(`${addr}/${len}`);
    }
    expect(wrong).toEqual([]);
    // absent keys: fresh /32 addresses
    let misses = 0;
    for (let i = 0; i < 10_000; i++) {
      const addr = rnd() >>> 0;
      if (ref.has(`${addr}/32`)) continue;
      if (rib.findV4(addr, 32) !== -1) wrong.push(`${addr}/32`);
      misses++;
    }
    expect(wrong).toEqual([]);
    expect(misses).toBeGreaterThan(9_000);
    // the capacity follows and Adj-RIB-Out arrays can size on it
    expect(rib.capacity).toBeGreaterThanOrEqual(rib.destCount);
  });

  it('find/findOrAdd/nlriOf agree for IPv4 (0.0.0.0/0 included) and for IPv6 keys', () => {
    const { rib } = setup();
    for (const p of ['0.0.0.0/0', '10.0.0.0/8', '10.0.0.0/9', '255.255.255.255/32']) {
      const d = rib.findOrAdd(nlri(p));
      expect(rib.find(nlri(p))).toBe(d);
      expect(formatPrefix(rib.nlriOf(d).prefix)).toBe(p);
    }
    expect(rib.find(nlri('10.0.0.0/10'))).toBe(-1);
    const v6 = setup('ipv6-unicast').rib;
    const d = v6.findOrAdd(nlri('2001:db8::/32'));
    expect(v6.findOrAdd(nlri('2001:db8::/32'))).toBe(d);
    expect(v6.find(nlri('2001:db8::/33'))).toBe(-1);
    expect(formatPrefix(v6.nlriOf(d).prefix)).toBe('2001:db8::/32');
  });

  it('onGrow reports the new capacity', () => {
    const { rib } = setup();
    const seen: number[] = [];
    rib.onGrow = (c) => seen.push(c);
    for (let i = 0; i < 40; i++) rib.findOrAddV4((i << 8) >>> 0, 24);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.at(-1)).toBe(rib.capacity);
  });
});

describe('FamilyRib dirty queue and best path', () => {
  it('each change marks the destination once; drain visits each once and clears', () => {
    const { rib, make } = setup();
    const a = make({ origin: 0, asPath: [seq(65001)] });
    const d1 = rib.findOrAdd(nlri('10.0.0.0/8'));
    const d2 = rib.findOrAdd(nlri('11.0.0.0/8'));
    rib.upsert(d1, 1, 0, a.id, a.id);
    rib.upsert(d1, 2, 0, a.id, a.id);
    rib.upsert(d2, 1, 0, a.id, -1); // rejected: no best-path change possible, not dirty
    expect(rib.dirtyCount).toBe(1);
    expect(drained(rib)).toEqual([d1]);
    expect(rib.dirtyCount).toBe(0);
    expect(drained(rib)).toEqual([]);
    rib.remove(d2, 1, 0); // removing a rejected path: not dirty
    rib.remove(d1, 2, 0);
    expect(drained(rib)).toEqual([d1]);
    // a destination marked again while being drained is visited again
    rib.upsert(d1, 2, 0, a.id, a.id);
    const visits: number[] = [];
    rib.drainDirty((d) => {
      visits.push(d);
      if (visits.length === 1) rib.remove(d1, 2, 0);
    });
    expect(visits).toEqual([d1, d1]);
  });

  it('decide picks the best path; bestAttr/bestPeer follow; rejected paths never win', () => {
    const { rib, make } = setup();
    const long = make({ origin: 0, asPath: [seq(65002, 65009)] }, 2);
    const short = make({ origin: 0, asPath: [seq(65001)] }, 1);
    const d = rib.findOrAdd(nlri('10.0.0.0/8'));
    rib.upsert(d, 2, 0, long.id, long.id);
    expect(rib.decide(d, sourceOf, DEFAULT_DECISION_OPTIONS)).toBe(true);
    expect(rib.bestPeer(d)).toBe(2);
    rib.upsert(d, 1, 0, short.id, short.id);
    rib.decide(d, sourceOf, DEFAULT_DECISION_OPTIONS);
    expect(rib.bestPeer(d)).toBe(1);
    expect(rib.bestAttr(d)).toBe(short.id);
    rib.upsert(d, 1, 0, short.id, -1); // import policy now rejects it
    rib.decide(d, sourceOf, DEFAULT_DECISION_OPTIONS);
    expect(rib.bestPeer(d)).toBe(2);
    rib.upsert(d, 2, 0, long.id, -1);
    rib.decide(d, sourceOf, DEFAULT_DECISION_OPTIONS);
    expect(rib.bestAttr(d)).toBe(-1);
    expect(rib.countBest()).toBe(0);
    rib.remove(d, 1, 0);
    rib.decide(d, sourceOf, DEFAULT_DECISION_OPTIONS); // one rejected path left
    expect(rib.bestPeer(d)).toBe(-1);
  });
});

// ------------------------------------------------------------------------------ AdjRibOut

/** Packs one group the way RibOut.produce does; returns the destinations sent. */
function pack(adj: AdjRibOut, key: number): number[] {
  const list = adj.groups.get(key);
  const out: number[] = [];
  if (list === undefined) return out;
  for (; list.pos < list.length; list.pos++) {
    const d = list.data[list.pos]!;
    if (!adj.isDue(d, key)) continue;
    adj.sent(d);
    out.push(d);
  }
  adj.groups.delete(key);
  return out;
}

function packAll(adj: AdjRibOut): Map<number, number[]> {
  const m = new Map<number, number[]>();
  for (const key of [...adj.groups.keys()]) {
    const sent = pack(adj, key);
    if (sent.length > 0) m.set(key, sent);
  }
  return m;
}

describe('AdjRibOut', () => {
  it('groups destinations by out set, withdrawals apart; advertised counts what was sent', () => {
    const adj = new AdjRibOut();
    adj.ensure(16);
    adj.set(0, 5);
    adj.set(1, 5);
    adj.set(2, 6);
    adj.set(3, 5);
    expect(adj.groups.size).toBe(2);
    expect(adj.isDue(0, 5)).toBe(true);
    expect(adj.isDue(0, 6)).toBe(false);
    expect(packAll(adj)).toEqual(
      new Map([
        [5, [0, 1, 3]],
        [6, [2]],
      ]),
    );
    expect(adj.advertised).toBe(4);
    adj.set(1, -1);
    adj.set(2, -1);
    adj.set(9, -1); // never advertised: nothing to withdraw
    expect(packAll(adj)).toEqual(new Map([[WITHDRAW, [1, 2]]]));
    expect(adj.advertised).toBe(2);
    adj.set(0, 5); // unchanged: not queued
    expect(adj.groups.size).toBe(0);
  });

  it('an entry whose want changed is skipped in its old group and sent in the new one', () => {
    const adj = new AdjRibOut();
    adj.ensure(4);
    adj.set(0, 5);
    adj.set(0, 6);
    adj.set(1, 5);
    adj.set(1, -1); // announced then withdrawn before anything was sent: nothing at all
    expect(packAll(adj)).toEqual(new Map([[6, [0]]]));
    expect(adj.adv[0]).toBe(7);
    expect(adj.adv[1]).toBe(0);
  });

  it('want changing back to what was sent cancels the queued entry', () => {
    const adj = new AdjRibOut();
    adj.ensure(4);
    adj.set(0, 5);
    packAll(adj);
    adj.set(0, 6);
    adj.set(0, 5);
    expect(packAll(adj)).toEqual(new Map());
    expect(adj.adv[0]).toBe(6);
  });

  it('a destination is queued again after its cancelled entry was packed (stale queued mark)', () => {
    const adj = new AdjRibOut();
    adj.ensure(4);
    adj.set(0, 5);
    packAll(adj); // peer has set 5
    adj.set(0, 6); // queued in group 6
    adj.set(0, 5); // back to what the peer has
    expect(packAll(adj)).toEqual(new Map()); // group 6 packed: entry skipped
    adj.set(0, 6); // must be queued again
    expect(packAll(adj)).toEqual(new Map([[6, [0]]]));
    expect(adj.adv[0]).toBe(7);
  });

  it('re-queued into the same group while that group is half packed', () => {
    const adj = new AdjRibOut();
    adj.ensure(4);
    adj.set(0, 5);
    adj.set(1, 5);
    // pack only the first entry of group 5 (a budget ran out)
    const list = adj.groups.get(5)!;
    expect(adj.isDue(0, 5)).toBe(true);
    adj.sent(0);
    list.pos = 1;
    adj.set(0, 6);
    adj.set(0, 5); // back to adv
    adj.set(0, 6);
    expect(packAll(adj)).toEqual(
      new Map([
        [5, [1]],
        [6, [0]],
      ]),
    );
  });

  it('reset forgets everything; resendAll queues every wanted destination again', () => {
    const adj = new AdjRibOut();
    adj.ensure(8);
    adj.set(0, 5);
    adj.set(1, 5);
    adj.set(2, 6);
    packAll(adj);
    adj.set(3, 6); // queued, not yet sent
    adj.resendAll(8);
    expect(adj.advertised).toBe(0);
    expect(packAll(adj)).toEqual(
      new Map([
        [5, [0, 1]],
        [6, [2, 3]],
      ]),
    );
    expect(adj.advertised).toBe(4);
    adj.reset();
    expect(adj.advertised).toBe(0);
    expect(adj.groups.size).toBe(0);
    expect([...adj.want.subarray(0, 4)]).toEqual([0, 0, 0, 0]);
    adj.set(0, 5);
    expect(packAll(adj)).toEqual(new Map([[5, [0]]]));
  });

  it('ensure grows the arrays and keeps their contents', () => {
    const adj = new AdjRibOut();
    adj.ensure(2);
    adj.set(1, 3);
    adj.ensure(1000);
    expect(adj.want.length).toBeGreaterThanOrEqual(1000);
    expect(adj.want[1]).toBe(4);
    expect(packAll(adj)).toEqual(new Map([[3, [1]]]));
  });
});

// ------------------------------------------------------------------------------ export rules

const table = new AttrSetTable();
const SELF = Uint8Array.of(192, 0, 2, 254);
const NH = Uint8Array.of(198, 51, 100, 1);
const FULL: PathAttributes = deepFreeze({
  origin: 0,
  asPath: [seq(65001, 65009)],
  nextHop: NH,
  med: 10,
  localPref: 150,
  originatorId: 0x0a000009,
  clusterList: [0x0a0000ff],
  communities: [65000 * 65536 + 1],
});
const set = (a: PathAttributes): AttrSet => table.create(deepFreeze(a), 1);

const EBGP_SRC: ExportSource = { local: false, ebgp: true, bgpId: 0x0a000001, rrClient: false };
const IBGP_SRC: ExportSource = { local: false, ebgp: false, bgpId: 0x0a000003, rrClient: false };
const LOCAL_SRC: ExportSource = { local: true, ebgp: false, bgpId: 0, rrClient: false };
const EBGP_DST: ExportTarget = {
  ebgp: true,
  rrClient: false,
  localAsn: 65000,
  clusterId: 0x0a0000fe,
  nextHopSelf: false,
  selfNextHop: SELF,
};
const IBGP_DST: ExportTarget = { ...EBGP_DST, ebgp: false };

describe('exportTransform', () => {
  it('eBGP: our AS prepended, next hop self, LOCAL_PREF/ORIGINATOR_ID/CLUSTER_LIST and foreign MED removed', () => {
    const s = set(FULL);
    const out = exportTransform(s, EBGP_SRC, EBGP_DST)!;
    expect(out.asPath).toEqual([seq(65000, 65001, 65009)]);
    expect(out.nextHop).toEqual(SELF);
    expect(out.localPref).toBeUndefined();
    expect(out.med).toBeUndefined();
    expect(out.originatorId).toBeUndefined();
    expect(out.clusterList).toBeUndefined();
    expect(out.linkLocalNextHop).toBeUndefined();
    expect(out.communities).toEqual(FULL.communities);
    expect(s.attrs).toEqual(FULL); // the shared set is untouched
    // our own route keeps its MED (RFC 4271 §5.1.4)
    expect(exportTransform(set({ origin: 0, asPath: [], med: 7 }), LOCAL_SRC, EBGP_DST)).toMatchObject({
      med: 7,
      asPath: [seq(65000)],
    });
    // from iBGP to eBGP: the same rules
    expect(exportTransform(s, IBGP_SRC, EBGP_DST)!.localPref).toBeUndefined();
  });

  it('prepend starts a new segment before an AS_SET or a full sequence', () => {
    const asSet: AsPathSegment = { type: AsPathSegmentType.AS_SET, asns: [1, 2] };
    expect(prependAs([asSet], 65000)).toEqual([seq(65000), asSet]);
    expect(prependAs(undefined, 65000, 3)).toEqual([seq(65000, 65000, 65000)]);
    const full = seq(...new Array<number>(255).fill(7));
    expect(prependAs([full], 65000)).toEqual([seq(65000), full]);
  });

  it('iBGP: LOCAL_PREF defaults to 100, next hop kept unless next-hop-self or our own route', () => {
    const fromEbgp = exportTransform(
      set({ origin: 0, asPath: [seq(65001)], nextHop: NH }),
      EBGP_SRC,
      IBGP_DST,
    )!;
    expect(fromEbgp.localPref).toBe(100);
    expect(fromEbgp.nextHop).toEqual(NH);
    expect(fromEbgp.asPath).toEqual([seq(65001)]); // no prepend inside the AS
    expect(
      exportTransform(set({ ...FULL, originatorId: undefined, clusterList: undefined }), EBGP_SRC, IBGP_DST)!
        .localPref,
    ).toBe(150);
    const nhs = exportTransform(set({ origin: 0, asPath: [seq(65001)], nextHop: NH }), EBGP_SRC, {
      ...IBGP_DST,
      nextHopSelf: true,
    })!;
    expect(nhs.nextHop).toEqual(SELF);
    const own = exportTransform(set({ origin: 0, nextHop: new Uint8Array(4) }), LOCAL_SRC, IBGP_DST)!;
    expect(own).toMatchObject({ nextHop: SELF, localPref: 100, asPath: [] });
    expect(own.originatorId).toBeUndefined();
  });

  it('no iBGP to iBGP without route reflection (RFC 4456 §6)', () => {
    const s = set({ origin: 0, asPath: [], nextHop: NH, localPref: 100 });
    expect(exportTransform(s, IBGP_SRC, IBGP_DST)).toBeUndefined();
  });

  it('reflection: client -> non-client and non-client -> client set ORIGINATOR_ID and CLUSTER_LIST', () => {
    const s = set({ origin: 0, asPath: [], nextHop: NH, localPref: 120 });
    const fromClient = exportTransform(s, { ...IBGP_SRC, rrClient: true }, IBGP_DST)!;
    expect(fromClient.originatorId).toBe(IBGP_SRC.bgpId);
    expect(fromClient.clusterList).toEqual([EBGP_DST.clusterId]);
    expect(fromClient.nextHop).toEqual(NH);
    expect(fromClient.localPref).toBe(120);
    const toClient = exportTransform(s, IBGP_SRC, { ...IBGP_DST, rrClient: true })!;
    expect(toClient.originatorId).toBe(IBGP_SRC.bgpId);
    // an already reflected route keeps its originator and gets our cluster id in front
    const again = exportTransform(set(FULL), { ...IBGP_SRC, rrClient: true }, IBGP_DST)!;
    expect(again.originatorId).toBe(FULL.originatorId);
    expect(again.clusterList).toEqual([EBGP_DST.clusterId, ...FULL.clusterList!]);
    // eBGP-learned and local routes are not "reflected"
    expect(exportTransform(s, EBGP_SRC, { ...IBGP_DST, rrClient: true })!.originatorId).toBeUndefined();
  });

  it('NO_EXPORT (and NO_EXPORT_SUBCONFED) stay inside the AS; NO_ADVERTISE goes nowhere (RFC 1997)', () => {
    for (const c of [WellKnownCommunity.NO_EXPORT, WellKnownCommunity.NO_EXPORT_SUBCONFED]) {
      const s = set({ origin: 0, asPath: [seq(65001)], nextHop: NH, communities: [c] });
      expect(exportTransform(s, EBGP_SRC, EBGP_DST)).toBeUndefined();
      expect(exportTransform(s, EBGP_SRC, IBGP_DST)).toBeDefined();
    }
    const na = set({
      origin: 0,
      asPath: [seq(65001)],
      nextHop: NH,
      communities: [WellKnownCommunity.NO_ADVERTISE],
    });
    expect(exportTransform(na, EBGP_SRC, EBGP_DST)).toBeUndefined();
    expect(exportTransform(na, EBGP_SRC, IBGP_DST)).toBeUndefined();
    expect(
      exportTransform(na, { ...IBGP_SRC, rrClient: true }, { ...IBGP_DST, rrClient: true }),
    ).toBeUndefined();
    expect(exportTransform(na, LOCAL_SRC, IBGP_DST)).toBeUndefined();
  });

  it('IPv6: a link-local next hop is set with next-hop-self and dropped toward eBGP without one', () => {
    const ll = parseAddress('fe80::1');
    const gl = parseAddress('2001:db8::1');
    const s = table.create(
      {
        origin: 0,
        asPath: [seq(65001)],
        nextHop: parseAddress('2001:db8::99'),
        linkLocalNextHop: parseAddress('fe80::99'),
      },
      1,
    );
    const ebgp = exportTransform(s, EBGP_SRC, { ...EBGP_DST, selfNextHop: gl })!;
    expect(ebgp.nextHop).toEqual(gl);
    expect(ebgp.linkLocalNextHop).toBeUndefined();
    const withLl = exportTransform(s, EBGP_SRC, { ...EBGP_DST, selfNextHop: gl, selfLinkLocal: ll })!;
    expect(withLl.linkLocalNextHop).toEqual(ll);
    const ibgpSelf = exportTransform(s, EBGP_SRC, { ...IBGP_DST, nextHopSelf: true, selfNextHop: gl })!;
    expect(ibgpSelf.nextHop).toEqual(gl);
    expect(ibgpSelf.linkLocalNextHop).toBeUndefined();
  });
});
