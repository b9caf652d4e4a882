/**
 * The decision process (src/bgp/rib/decision.ts): every step decides in RFC 4271 §9.1.2.2 order
 * even when every later step favours the loser, `explain` names that step, and two properties:
 * with always-compare-med `comparePaths` is a strict total order on distinct candidates, and
 * `selectBest` agrees with a naive RFC elimination (per-neighbour-AS MED) whatever the input order.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAddress } from '../../src/lib/ip.ts';
import { AsPathSegmentType, WellKnownCommunity } from '../../src/bgp/wire/constants.ts';
import type { AsPathSegment, PathAttributes } from '../../src/bgp/wire/types.ts';
import { AttrSetTable, asPathLength, firstAs } from '../../src/bgp/rib/attr-set.ts';
import {
  comparePaths,
  DEFAULT_DECISION_OPTIONS,
  explain,
  selectBest,
  type Candidate,
  type DecisionOptions,
  type DecisionReason,
  type PathSource,
} from '../../src/bgp/rib/decision.ts';

const SEED = 9122;
const { AS_SET, AS_SEQUENCE, AS_CONFED_SEQUENCE, AS_CONFED_SET } = AsPathSegmentType;

const table = new AttrSetTable();
const seq = (...asns: number[]): AsPathSegment => ({ type: AS_SEQUENCE, asns });

interface Knobs {
  attrs?: Partial<PathAttributes>;
  source?: Partial<PathSource>;
  pathId?: number;
}

const BASE_ATTRS: PathAttributes = { origin: 0, asPath: [seq(65001)], nextHop: Uint8Array.of(192, 0, 2, 1) };
const BASE_SOURCE: PathSource = { local: false, ebgp: true, bgpId: 5, address: parseAddress('10.0.0.5') };

function cand(k: Knobs = {}): Candidate {
  const attrs = { ...BASE_ATTRS, ...k.attrs };
  return { attr: table.create(attrs, 1), source: { ...BASE_SOURCE, ...k.source }, pathId: k.pathId ?? 0 };
}

const opts = (o: Partial<DecisionOptions> = {}): DecisionOptions => ({ ...DEFAULT_DECISION_OPTIONS, ...o });

// Each step with a setting that wins and one that loses. Every as-path starts with AS 65001 so the
// MED step always applies (same neighbouring AS).
const STEPS: { step: DecisionReason; better: Knobs; worse: Knobs }[] = [
  { step: 'local-pref', better: { attrs: { localPref: 200 } }, worse: { attrs: { localPref: 100 } } },
  { step: 'local-origin', better: { source: { local: true } }, worse: { source: { local: false } } },
  {
    step: 'as-path-length',
    better: { attrs: { asPath: [seq(65001)] } },
    worse: { attrs: { asPath: [seq(65001, 65002)] } },
  },
  { step: 'origin', better: { attrs: { origin: 0 } }, worse: { attrs: { origin: 2 } } },
  { step: 'med', better: { attrs: { med: 10 } }, worse: { attrs: { med: 20 } } },
  { step: 'ebgp-over-ibgp', better: { source: { ebgp: true } }, worse: { source: { ebgp: false } } },
  { step: 'router-id', better: { source: { bgpId: 1 } }, worse: { source: { bgpId: 2 } } },
  {
    step: 'cluster-list-length',
    better: { attrs: { clusterList: [] } },
    worse: { attrs: { clusterList: [7, 8] } },
  },
  {
    step: 'peer-address',
    better: { source: { address: parseAddress('10.0.0.1') } },
    worse: { source: { address: parseAddress('10.0.0.2') } },
  },
  { step: 'path-id', better: { pathId: 1 }, worse: { pathId: 2 } },
];

function merge(list: Knobs[]): Knobs {
  const out: Required<Knobs> = { attrs: {}, source: {}, pathId: 0 };
  for (const k of list) {
    Object.assign(out.attrs, k.attrs);
    Object.assign(out.source, k.source);
    if (k.pathId !== undefined) out.pathId = k.pathId;
  }
  return out;
}

describe('each step decides, in order', () => {
  it.each(STEPS.map((s, i) => [s.step, i] as const))(
    '%s decides even when every later step favours the loser',
    (step, i) => {
      const later = STEPS.slice(i + 1);
      // winner: better at this step, worse at every later one; loser the opposite
      const win = cand(merge([STEPS[i]!.better, ...later.map((s) => s.worse)]));
      const lose = cand(merge([STEPS[i]!.worse, ...later.map((s) => s.better)]));
      for (const o of [opts(), opts({ alwaysCompareMed: true })]) {
        const ab = comparePaths(win, lose, o);
        expect(ab.reason).toBe(step);
        expect(ab.cmp).toBeLessThan(0);
        const ba = comparePaths(lose, win, o);
        expect(ba.reason).toBe(step);
        expect(ba.cmp).toBeGreaterThan(0);
        expect(explain(win, lose, o)).toBe(step);
        expect(selectBest([lose, win], o)).toBe(1);
        expect(selectBest([win, lose], o)).toBe(0);
      }
    },
  );

  it('identical candidates compare equal (path-id 0)', () => {
    expect(comparePaths(cand(), cand())).toEqual({ cmp: 0, reason: 'path-id' });
  });

  it('a missing LOCAL_PREF counts as 100', () => {
    const none = cand();
    expect(comparePaths(none, cand({ attrs: { localPref: 100 } })).reason).not.toBe('local-pref');
    expect(comparePaths(none, cand({ attrs: { localPref: 101 } }))).toMatchObject({ reason: 'local-pref' });
    expect(comparePaths(none, cand({ attrs: { localPref: 99 } })).cmp).toBeLessThan(0);
  });

  it('ignore-as-path-length skips the step', () => {
    const short = cand({ attrs: { asPath: [seq(65001)], origin: 2 } });
    const long = cand({ attrs: { asPath: [seq(65001, 65002, 65003)], origin: 0 } });
    expect(comparePaths(short, long).reason).toBe('as-path-length');
    const r = comparePaths(short, long, opts({ ignoreAsPathLength: true }));
    expect(r.reason).toBe('origin');
    expect(r.cmp).toBeGreaterThan(0);
  });

  it('only one candidate: index 0; none: -1', () => {
    expect(selectBest([])).toBe(-1);
    expect(selectBest([cand()])).toBe(0);
  });
});

describe('AS_PATH length (RFC 4271 §9.1.2.2 a, RFC 5065 §5.3)', () => {
  it('AS_SET counts 1, confederation segments 0', () => {
    expect(asPathLength(undefined)).toBe(0);
    expect(asPathLength([])).toBe(0);
    expect(asPathLength([seq(1, 2, 3)])).toBe(3);
    expect(asPathLength([seq(1), { type: AS_SET, asns: [2, 3, 4, 5] }])).toBe(2);
    expect(
      asPathLength([
        { type: AS_CONFED_SEQUENCE, asns: [64512, 64513] },
        { type: AS_CONFED_SET, asns: [64514] },
        seq(1),
      ]),
    ).toBe(1);
  });
  it('an AS_SET of four ASes beats a sequence of three', () => {
    const withSet = cand({
      attrs: { asPath: [seq(65001), { type: AS_SET, asns: [1, 2, 3, 4] }] },
      source: { bgpId: 9 },
    });
    const three = cand({ attrs: { asPath: [seq(65001, 2, 3)] }, source: { bgpId: 1 } });
    expect(comparePaths(withSet, three)).toMatchObject({ reason: 'as-path-length' });
    expect(comparePaths(withSet, three).cmp).toBeLessThan(0);
  });
  it('confederation segments do not count', () => {
    const confed = cand({
      attrs: { asPath: [{ type: AS_CONFED_SEQUENCE, asns: [64512, 64513, 64514] }, seq(65001)] },
      source: { bgpId: 9 },
    });
    const two = cand({ attrs: { asPath: [seq(65001, 65002)] }, source: { bgpId: 1 } });
    expect(comparePaths(confed, two).cmp).toBeLessThan(0);
    expect(explain(confed, two)).toBe('as-path-length');
  });
  it('the neighbouring AS is the first AS of the first AS_SEQUENCE after confederation segments', () => {
    expect(firstAs([{ type: AS_CONFED_SEQUENCE, asns: [64512] }, seq(65009, 1)])).toBe(65009);
    expect(firstAs([])).toBe(0);
    expect(firstAs([{ type: AS_SET, asns: [1, 2] }])).toBe(0);
  });
});

describe('MED (RFC 4271 §9.1.2.2 c)', () => {
  const lowMedOtherAs = (): Candidate =>
    cand({ attrs: { asPath: [seq(65002)], med: 1 }, source: { bgpId: 9 } });
  const highMed = (): Candidate => cand({ attrs: { asPath: [seq(65001)], med: 50 }, source: { bgpId: 1 } });

  it('is compared only within the same neighbouring AS by default', () => {
    const a = lowMedOtherAs();
    const b = highMed();
    const r = comparePaths(a, b);
    expect(r.reason).toBe('router-id');
    expect(r.cmp).toBeGreaterThan(0);
    expect(explain(b, a)).toBe('router-id');
  });
  it('always-compare-med compares it across neighbouring ASes', () => {
    const o = opts({ alwaysCompareMed: true });
    const a = lowMedOtherAs();
    const b = highMed();
    expect(comparePaths(a, b, o)).toMatchObject({ reason: 'med' });
    expect(comparePaths(a, b, o).cmp).toBeLessThan(0);
    expect(explain(a, b, o)).toBe('med');
  });
  it('a missing MED is 0 by default and the worst value with med-missing-as-worst', () => {
    const none = cand({ source: { bgpId: 9 } });
    const some = cand({ attrs: { med: 100 }, source: { bgpId: 1 } });
    expect(comparePaths(none, some)).toMatchObject({ reason: 'med' });
    expect(comparePaths(none, some).cmp).toBeLessThan(0);
    const worst = opts({ medMissingAsWorst: true });
    expect(comparePaths(none, some, worst)).toMatchObject({ reason: 'med' });
    expect(comparePaths(none, some, worst).cmp).toBeGreaterThan(0);
    // a MED of exactly 2^32-1 ties with a missing one under med-missing-as-worst
    const max = cand({ attrs: { med: 0xffffffff }, source: { bgpId: 1 } });
    expect(comparePaths(none, max, worst).reason).toBe('router-id');
  });
  it('deterministic MED: the non-transitive triangle has one answer in every order', () => {
    // A beats B on MED (same AS), B beats C on router id, C beats A on router id: a cycle pairwise.
    const A = cand({ attrs: { asPath: [seq(100)], med: 10 }, source: { bgpId: 3 } });
    const B = cand({ attrs: { asPath: [seq(100)], med: 20 }, source: { bgpId: 1 } });
    const C = cand({ attrs: { asPath: [seq(200)], med: 5 }, source: { bgpId: 2 } });
    expect(comparePaths(A, B).cmp).toBeLessThan(0);
    expect(comparePaths(B, C).cmp).toBeLessThan(0);
    expect(comparePaths(C, A).cmp).toBeLessThan(0);
    const orders = [
      [A, B, C],
      [A, C, B],
      [B, A, C],
      [B, C, A],
      [C, A, B],
      [C, B, A],
    ];
    for (const o of orders) expect(o[selectBest(o)]).toBe(C); // group 100 -> A; A vs C -> C (router id)
    // always-compare-med: C has the lowest MED overall
    for (const o of orders) expect(o[selectBest(o, opts({ alwaysCompareMed: true }))]).toBe(C);
    // move C's MED up: with always-compare-med A now wins, without it C still does
    const C2 = cand({ attrs: { asPath: [seq(200)], med: 15 }, source: { bgpId: 2 } });
    for (const o of [
      [A, B, C2],
      [C2, B, A],
      [B, C2, A],
    ]) {
      expect(o[selectBest(o, opts({ alwaysCompareMed: true }))]).toBe(A);
      expect(o[selectBest(o)]).toBe(C2);
    }
  });
});

describe('router id and reflection (RFC 4456 §9)', () => {
  it('ORIGINATOR_ID stands in for the BGP identifier', () => {
    const reflected = cand({ attrs: { originatorId: 1 }, source: { bgpId: 9, ebgp: false } });
    const direct = cand({ source: { bgpId: 2, ebgp: false } });
    expect(comparePaths(reflected, direct)).toMatchObject({ reason: 'router-id' });
    expect(comparePaths(reflected, direct).cmp).toBeLessThan(0);
    const reflectedHigh = cand({ attrs: { originatorId: 3 }, source: { bgpId: 1, ebgp: false } });
    expect(comparePaths(reflectedHigh, direct).cmp).toBeGreaterThan(0);
  });
  it('identifiers compare unsigned', () => {
    const high = cand({ source: { bgpId: 0x80000000 } });
    const low = cand({ source: { bgpId: 0x7fffffff } });
    expect(comparePaths(low, high)).toMatchObject({ reason: 'router-id' });
    expect(comparePaths(low, high).cmp).toBeLessThan(0);
  });
  it('equal originator: the shorter CLUSTER_LIST wins', () => {
    const a = cand({ attrs: { originatorId: 4, clusterList: [1] }, source: { bgpId: 9 } });
    const b = cand({ attrs: { originatorId: 4, clusterList: [1, 2] }, source: { bgpId: 1 } });
    expect(explain(a, b)).toBe('cluster-list-length');
    expect(comparePaths(a, b).cmp).toBeLessThan(0);
  });
  it('peer address: an IPv4 address sorts before an IPv6 one, then bytewise', () => {
    const v4 = cand({ source: { address: parseAddress('192.0.2.200') } });
    const v6 = cand({ source: { address: parseAddress('::1') } });
    expect(comparePaths(v4, v6)).toMatchObject({ reason: 'peer-address' });
    expect(comparePaths(v4, v6).cmp).toBeLessThan(0);
  });
});

// ------------------------------------------------------------------------- properties

const ADDRESSES = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '2001:db8::1'].map(parseAddress);

const arbCandidate = fc
  .record({
    localPref: fc.constantFrom(undefined, 100, 200),
    local: fc.boolean(),
    first: fc.constantFrom(65001, 65002, 65003),
    rest: fc.array(fc.constantFrom(1, 2), { maxLength: 2 }),
    asSet: fc.boolean(),
    origin: fc.constantFrom(0, 1, 2),
    med: fc.constantFrom(undefined, 0, 1, 2, 3),
    ebgp: fc.boolean(),
    bgpId: fc.integer({ min: 1, max: 4 }),
    originatorId: fc.constantFrom(undefined, 1, 2, 3),
    clusterLen: fc.integer({ min: 0, max: 2 }),
    address: fc.integer({ min: 0, max: ADDRESSES.length - 1 }),
    pathId: fc.integer({ min: 0, max: 3 }),
  })
  .map((r) => {
    const asPath: AsPathSegment[] = [seq(r.first, ...r.rest)];
    if (r.asSet) asPath.push({ type: AS_SET, asns: [7, 8, 9] });
    const attrs: PathAttributes = {
      origin: r.origin,
      asPath,
      nextHop: Uint8Array.of(192, 0, 2, 1),
      ...(r.localPref === undefined ? {} : { localPref: r.localPref }),
      ...(r.med === undefined ? {} : { med: r.med }),
      ...(r.originatorId === undefined ? {} : { originatorId: r.originatorId }),
      clusterList: [1, 2].slice(0, r.clusterLen),
    };
    const c: Candidate = {
      attr: table.create(attrs, 1),
      source: { local: r.local, ebgp: r.ebgp, bgpId: r.bgpId, address: ADDRESSES[r.address]! },
      pathId: r.pathId,
    };
    return { c, key: `${r.address}/${r.pathId}` };
  });

/** Distinct candidates: no two share (peer address, path id), as in a real destination. */
const arbDistinct = fc
  .uniqueArray(arbCandidate, { minLength: 1, maxLength: 8, selector: (x) => x.key })
  .map((xs) => xs.map((x) => x.c));

const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);

/** RFC 4271 §9.1.2.2 as written: eliminate step by step; MED per neighbouring AS. */
function naiveBest(cands: readonly Candidate[], o: DecisionOptions): Candidate {
  let s = [...cands];
  const keep = (f: (c: Candidate) => number): void => {
    const m = Math.min(...s.map(f));
    s = s.filter((c) => f(c) === m);
  };
  keep((c) => -(c.attr.localPref ?? 100));
  keep((c) => (c.source.local ? 0 : 1));
  keep((c) => c.attr.asPathLength);
  keep((c) => c.attr.origin);
  const med = (c: Candidate): number => c.attr.med ?? (o.medMissingAsWorst ? 0xffffffff : 0);
  if (o.alwaysCompareMed) keep(med);
  else s = s.filter((c) => !s.some((d) => d.attr.neighborAs === c.attr.neighborAs && med(d) < med(c)));
  keep((c) => (c.source.ebgp ? 0 : 1));
  keep((c) => c.attr.originatorId ?? c.source.bgpId);
  keep((c) => c.attr.clusterListLength);
  // peer address (length first, then bytes), then path id
  s.sort((a, b) => {
    const x = a.source.address;
    const y = b.source.address;
    if (x.length !== y.length) return x.length - y.length;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
    return a.pathId - b.pathId;
  });
  return s[0]!;
}

describe('properties', () => {
  it(`with always-compare-med comparePaths is a strict total order on distinct candidates (seed ${SEED})`, () => {
    const o = opts({ alwaysCompareMed: true });
    fc.assert(
      fc.property(arbDistinct, (cs) => {
        for (const a of cs) {
          for (const b of cs) {
            const ab = comparePaths(a, b, o).cmp;
            if (a === b) {
              expect(ab).toBe(0);
              continue;
            }
            expect(ab).not.toBe(0); // total
            expect(sign(comparePaths(b, a, o).cmp)).toBe(-sign(ab)); // antisymmetric
            for (const c of cs) {
              if (ab < 0 && comparePaths(b, c, o).cmp < 0) expect(comparePaths(a, c, o).cmp).toBeLessThan(0); // transitive
            }
          }
        }
      }),
      { seed: SEED, numRuns: 400 },
    );
  });

  const withOrder = arbDistinct.chain((cs) =>
    fc.tuple(fc.constant(cs), fc.shuffledSubarray(cs, { minLength: cs.length, maxLength: cs.length })),
  );

  for (const [label, o] of [
    ['per-neighbour-AS MED (deterministic)', opts()],
    ['always-compare-med', opts({ alwaysCompareMed: true })],
    ['med-missing-as-worst', opts({ medMissingAsWorst: true })],
  ] as const) {
    it(`selectBest (${label}) does not depend on input order and matches RFC elimination (seed ${SEED})`, () => {
      fc.assert(
        fc.property(withOrder, ([cs, shuffled]) => {
          const a = cs[selectBest(cs, o)]!;
          const b = shuffled[selectBest(shuffled, o)];
          expect(b).toBe(a);
          expect(a).toBe(naiveBest(cs, o));
          // the winner beats every candidate it is directly comparable with (MED included); a path
          // from another AS may beat it with MED ignored, if its own AS eliminated it on MED
          for (const c of cs) {
            if (c === a || !(o.alwaysCompareMed || a.attr.neighborAs === c.attr.neighborAs)) continue;
            expect(comparePaths(a, c, o).cmp).toBeLessThan(0);
          }
        }),
        { seed: SEED, numRuns: 400 },
      );
    });
  }
});

describe('well-known communities are precomputed on the set', () => {
  it('NO_EXPORT, NO_EXPORT_SUBCONFED and NO_ADVERTISE', () => {
    const t = new AttrSetTable();
    expect(t.create({ communities: [WellKnownCommunity.NO_EXPORT] }, 1).noExport).toBe(true);
    expect(t.create({ communities: [WellKnownCommunity.NO_EXPORT_SUBCONFED] }, 1).noExport).toBe(true);
    expect(t.create({ communities: [WellKnownCommunity.NO_ADVERTISE] }, 1)).toMatchObject({
      noAdvertise: true,
      noExport: false,
    });
    expect(t.create({}, 1)).toMatchObject({
      noAdvertise: false,
      noExport: false,
      origin: 2,
      asPathLength: 0,
      neighborAs: 0,
    });
  });
});
