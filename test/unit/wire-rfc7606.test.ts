// RFC 7606 (revised UPDATE error handling), one test per rule, plus RFC 4271 §6.3 / RFC 6793 §6 /
// RFC 8092 §5 / RFC 9234 §5 rules, and random bytes proving decoders only throw UpdateError.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { hex, toHex } from '../../src/lib/bytes.ts';
import { AFI_SAFIS, UpdateErrorSubcode as Sub } from '../../src/bgp/wire/constants.ts';
import { UpdateError, type UpdateErrorAction } from '../../src/bgp/wire/errors.ts';
import {
  DEFAULT_CODEC_CONTEXT,
  type CodecContext,
  type DecodedAttributes,
} from '../../src/bgp/wire/types.ts';
import { decodeAttributes } from '../../src/bgp/wire/attributes.ts';
import { decodeNlri, forEachIPv4Prefix } from '../../src/bgp/wire/nlri.ts';
import { splitUpdate } from '../../src/bgp/wire/update.ts';

const SEED = 0x7606;
const ctx = (o: Partial<CodecContext> = {}): CodecContext => ({ ...DEFAULT_CODEC_CONTEXT, ...o });
const EBGP = ctx();
const IBGP = ctx({ ebgp: false });

const ORIGIN = '40 01 01 00';
const AS_PATH = '40 02 06 02 01 00 00 fd e9'; // AS_SEQUENCE 65001
const NEXT_HOP = '40 03 04 c0 00 02 01';
const BASE = `${ORIGIN} ${AS_PATH} ${NEXT_HOP}`;
const LOCAL_PREF = '40 05 04 00 00 00 64';

interface Outcome {
  readonly action?: UpdateErrorAction;
  readonly subcodes: number[];
  readonly thrown?: UpdateError;
  readonly d?: DecodedAttributes;
}

function run(raw: string, c: CodecContext = EBGP, hasNlri = true): Outcome {
  try {
    const d = decodeAttributes(hex(raw), c, hasNlri);
    return { action: d.action, subcodes: d.errors.map((e) => e.subcode), d };
  } catch (e) {
    if (!(e instanceof UpdateError)) throw e;
    return { action: e.action, subcodes: [e.subcode], thrown: e };
  }
}

function thrownAction(f: () => unknown): UpdateErrorAction | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof UpdateError) return e.action;
    throw e;
  }
  return undefined;
}

describe('RFC 7606 §3 error handling procedures', () => {
  it('a valid UPDATE has no errors', () => {
    expect(run(BASE)).toMatchObject({ action: undefined, subcodes: [] });
    expect(run(`${BASE} ${LOCAL_PREF}`, IBGP)).toMatchObject({ action: undefined, subcodes: [] });
  });
  it('§3.a session-reset errors are thrown as UpdateError (UPDATE Message Error, code 3)', () => {
    const o = run(`${BASE} 40 63 01 00 # unknown well-known`);
    expect(o.thrown).toBeInstanceOf(UpdateError);
    expect(o.thrown!.errorCode).toBe(3);
  });
  it('§3.b lengths exceeding the message: Malformed Attribute List, session-reset', () => {
    for (const body of [hex`00 05 00 00`, hex`00 00 00 05 40`, hex`00`]) {
      try {
        splitUpdate(body);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(UpdateError);
        expect((e as UpdateError).action).toBe('session-reset');
        expect((e as UpdateError).subcode).toBe(Sub.MALFORMED_ATTRIBUTE_LIST);
      }
    }
  });
  it('§3.c flags conflict -> treat-as-withdraw for ORIGIN / NEXT_HOP / COMMUNITIES', () => {
    expect(run(`c0 01 01 00 ${AS_PATH} ${NEXT_HOP}`)).toMatchObject({
      action: 'treat-as-withdraw',
      subcodes: [Sub.ATTRIBUTE_FLAGS_ERROR],
    });
    expect(run(`${ORIGIN} ${AS_PATH} 00 03 04 c0 00 02 01`).action).toBe('treat-as-withdraw');
    expect(run(`${BASE} 80 08 04 fd e8 00 64`).action).toBe('treat-as-withdraw');
  });
  it('§3.c unless the attribute says otherwise: AGGREGATOR -> attribute-discard, MP_REACH -> reset', () => {
    const o = run(`${BASE} 40 07 08 00 00 fd e9 c0 00 02 01`);
    expect(o.action).toBe('attribute-discard');
    expect(o.d!.attrs.aggregator).toBeUndefined();
    expect(run(`c0 0e 05 00 02 01 00 00 ${ORIGIN} ${AS_PATH}`).thrown?.action).toBe('session-reset');
  });
  it('§3.c Partial and Extended Length bits are not flag conflicts', () => {
    expect(run(`50 01 00 01 00 ${AS_PATH} ${NEXT_HOP} e0 08 04 fd e8 00 64`).action).toBeUndefined();
  });
  it('§3.d missing ORIGIN / AS_PATH / NEXT_HOP -> treat-as-withdraw (Missing Well-known Attribute)', () => {
    for (const raw of [`${AS_PATH} ${NEXT_HOP}`, `${ORIGIN} ${NEXT_HOP}`, `${ORIGIN} ${AS_PATH}`]) {
      expect(run(raw)).toMatchObject({
        action: 'treat-as-withdraw',
        subcodes: [Sub.MISSING_WELL_KNOWN_ATTRIBUTE],
      });
    }
    const e = run(`${ORIGIN} ${AS_PATH}`).d!.errors[0]!;
    expect(toHex(e.data)).toBe('03'); // RFC 4271 §6.3: the missing type code
  });
  it('§3.d NEXT_HOP is not required when the only NLRI is in MP_REACH_NLRI (RFC 4760 §3)', () => {
    const mp = `80 0e 1e 00 02 01                  # MP_REACH_NLRI, 30 bytes, IPv6 unicast
      10 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01   # next hop 2001:db8::1
      00 40 20 01 0d b8 00 00 00 01                        # reserved, 2001:db8:0:1::/64`;
    expect(run(`${mp}\n${ORIGIN} ${AS_PATH}`, EBGP, false)).toMatchObject({
      action: undefined,
      subcodes: [],
    });
    expect(run(`${mp}\n${ORIGIN}`, EBGP, false)).toMatchObject({
      action: 'treat-as-withdraw',
      subcodes: [Sub.MISSING_WELL_KNOWN_ATTRIBUTE],
    });
  });
  it('§3.d LOCAL_PREF is mandatory from iBGP peers (RFC 4271 §5.1.5)', () => {
    expect(run(BASE, IBGP)).toMatchObject({
      action: 'treat-as-withdraw',
      subcodes: [Sub.MISSING_WELL_KNOWN_ATTRIBUTE],
    });
  });
  it('§3.d nothing is missing in an UPDATE without reachable NLRI', () => {
    expect(run('', EBGP, false)).toMatchObject({ action: undefined, subcodes: [] });
  });
  it('§3.e / §7.1 ORIGIN: bad length or value -> treat-as-withdraw', () => {
    expect(run(`40 01 02 00 00 ${AS_PATH} ${NEXT_HOP}`)).toMatchObject({
      action: 'treat-as-withdraw',
      subcodes: [Sub.ATTRIBUTE_LENGTH_ERROR],
    });
    expect(run(`40 01 01 03 ${AS_PATH} ${NEXT_HOP}`)).toMatchObject({
      action: 'treat-as-withdraw',
      subcodes: [Sub.INVALID_ORIGIN_ATTRIBUTE],
    });
  });
  it('§3.e / §7.2 AS_PATH: bad segment type, zero count, overrun, underrun -> treat-as-withdraw', () => {
    const bad = [
      '40 02 06 05 01 00 00 fd e9', // segment type 5
      '40 02 02 02 00', // zero-length segment
      '40 02 06 02 02 00 00 fd e9', // count 2, one ASN: overrun
      '40 02 07 02 01 00 00 fd e9 02', // a trailing byte: underrun
    ];
    for (const a of bad) {
      expect(run(`${ORIGIN} ${a} ${NEXT_HOP}`)).toMatchObject({
        action: 'treat-as-withdraw',
        subcodes: [Sub.MALFORMED_AS_PATH],
      });
    }
  });
  it('§7.2 AS_PATH confederation segments: rejected from eBGP, accepted from iBGP', () => {
    const confed = '40 02 06 03 01 00 00 fd e9';
    expect(run(`${ORIGIN} ${confed} ${NEXT_HOP}`, EBGP).action).toBe('treat-as-withdraw');
    expect(run(`${ORIGIN} ${confed} ${NEXT_HOP} ${LOCAL_PREF}`, IBGP).action).toBeUndefined();
  });
  it('§3.e / §7.3 NEXT_HOP length other than 4 -> treat-as-withdraw', () => {
    expect(run(`${ORIGIN} ${AS_PATH} 40 03 05 c0 00 02 01 00`)).toMatchObject({
      action: 'treat-as-withdraw',
      subcodes: [Sub.ATTRIBUTE_LENGTH_ERROR],
    });
  });
  it('§3.e / §7.4 MULTI_EXIT_DISC length other than 4 -> treat-as-withdraw', () => {
    expect(run(`${BASE} 80 04 03 00 00 64`).action).toBe('treat-as-withdraw');
  });
  it('§7.5 LOCAL_PREF: discarded from eBGP, bad length from iBGP -> treat-as-withdraw', () => {
    const e = run(`${BASE} ${LOCAL_PREF}`, EBGP);
    expect(e.action).toBe('attribute-discard');
    expect(e.d!.attrs.localPref).toBeUndefined();
    expect(run(`${BASE} 40 05 02 00 64`, IBGP).action).toBe('treat-as-withdraw');
  });
  it('§3.f / §7.6 ATOMIC_AGGREGATE length other than 0 -> attribute-discard', () => {
    const o = run(`${BASE} 40 06 01 00`);
    expect(o).toMatchObject({ action: 'attribute-discard', subcodes: [Sub.ATTRIBUTE_LENGTH_ERROR] });
    expect(o.d!.attrs.atomicAggregate).toBeUndefined();
  });
  it('§3.f / §7.7 AGGREGATOR length other than 8 (4-byte AS) or 6 (2-byte AS) -> attribute-discard', () => {
    expect(run(`${BASE} c0 07 06 fd e9 c0 00 02 01`).action).toBe('attribute-discard');
    const old = ctx({ as4: false });
    const oldBase = `${ORIGIN} 40 02 04 02 01 fd e9 ${NEXT_HOP}`;
    expect(run(`${oldBase} c0 07 08 00 00 fd e9 c0 00 02 01`, old).action).toBe('attribute-discard');
    expect(run(`${oldBase} c0 07 06 fd e9 c0 00 02 01`, old).action).toBeUndefined();
  });
  it('§3.g a repeated attribute: the first stays, the rest are discarded', () => {
    const o = run(`${BASE} 40 01 01 02`);
    expect(o.action).toBe('attribute-discard');
    expect(o.d!.attrs.origin).toBe(0);
  });
  it('§3.g a repeated MP_REACH_NLRI or MP_UNREACH_NLRI -> session-reset (Malformed Attribute List)', () => {
    const reach = '80 0e 0b 00 01 01 04 c0 00 02 01 00 08 0a';
    const unreach = '80 0f 03 00 02 01';
    for (const raw of [`${reach} ${BASE} ${reach}`, `${unreach} ${unreach}`]) {
      const o = run(raw, EBGP, false);
      expect(o.thrown?.action).toBe('session-reset');
      expect(o.subcodes).toEqual([Sub.MALFORMED_ATTRIBUTE_LIST]);
    }
    expect(run(`${reach} 80 0f 03 00 02 01 ${BASE}`, EBGP, false).action).toBeUndefined();
  });
  it('§3.h several errors: every one reported, the strongest action wins', () => {
    const o = run(`40 01 01 07 ${AS_PATH} ${NEXT_HOP} 40 06 01 00 c0 07 03 00 00 00`);
    expect(o.action).toBe('treat-as-withdraw');
    expect(o.d!.errors.map((e) => e.action)).toEqual([
      'treat-as-withdraw',
      'attribute-discard',
      'attribute-discard',
    ]);
  });
  it('§3.i the Withdrawn Routes field is checked like the NLRI field', () => {
    const u = splitUpdate(hex`00 02 21 0a  00 00 # withdrawn: a /33`);
    expect(thrownAction(() => forEachIPv4Prefix(u.withdrawn, false, () => undefined))).toBe('session-reset');
    expect(thrownAction(() => decodeNlri(u.withdrawn, 'ipv4-unicast', false))).toBe('session-reset');
  });
  it('§3.j NLRI that cannot be parsed: NLRI field -> session-reset, MP NLRI -> afi-safi-disable', () => {
    expect(thrownAction(() => decodeNlri(hex`18 0a 00`, 'ipv4-unicast', false, 'nlri'))).toBe(
      'session-reset',
    );
    expect(thrownAction(() => decodeNlri(hex`18 0a 00`, 'ipv6-unicast', false, 'mp'))).toBe(
      'afi-safi-disable',
    );
  });
});

describe('RFC 7606 §4 attribute length fields', () => {
  it('a value overrunning the section -> treat-as-withdraw, the walk stops', () => {
    const o = run(`${BASE} c0 08 08 fd e8 00 64`);
    expect(o).toMatchObject({ action: 'treat-as-withdraw', subcodes: [Sub.MALFORMED_ATTRIBUTE_LIST] });
    expect(o.d!.attrs.communities).toBeUndefined();
    expect(o.d!.attrs.nextHop).toBeDefined();
  });
  it('fewer than 3 (or 4 with Extended Length) octets left -> treat-as-withdraw', () => {
    for (const tail of ['40', '40 01', '50 01 00'])
      expect(run(`${BASE} ${tail}`).action).toBe('treat-as-withdraw');
  });
  it('a zero length is malformed except for AS_PATH and ATOMIC_AGGREGATE', () => {
    expect(run(`${BASE} c0 08 00`).action).toBe('treat-as-withdraw');
    expect(run(`${BASE} 40 06 00`).action).toBeUndefined();
    expect(run(`${ORIGIN} 40 02 00 ${NEXT_HOP}`).action).toBeUndefined();
  });
  it('a broken walk in an UPDATE without NLRI -> session-reset (§5.2)', () => {
    expect(run(`${BASE} c0 08 08 fd e8`, EBGP, false).thrown?.action).toBe('session-reset');
  });
});

describe('RFC 7606 §5 NLRI', () => {
  it('§5.1 MP_REACH_NLRI is accepted in any position', () => {
    const o = run(`${BASE} 80 0e 0b 00 01 01 04 c0 00 02 02 00 08 0a`, EBGP, false);
    expect(o.action).toBeUndefined();
    expect(o.d!.mpReach?.nlri).toEqual(hex`08 0a`);
  });
  it('§5.2 no reachable NLRI and an error beyond attribute discard -> session-reset', () => {
    const o = run(`40 01 01 09 ${AS_PATH}`, EBGP, false);
    expect(o.thrown?.action).toBe('session-reset');
    expect(o.subcodes).toEqual([Sub.INVALID_ORIGIN_ATTRIBUTE]);
    // Withdrawals and MP_UNREACH_NLRI are not reachable NLRI, nor is an empty MP_REACH_NLRI.
    expect(run(`80 0f 03 00 02 01 40 01 01 09`, EBGP, false).thrown?.action).toBe('session-reset');
    expect(run(`80 0e 05 00 01 01 00 00 40 01 01 09`, EBGP, false).thrown?.action).toBe('session-reset');
  });
  it('§5.2 no reachable NLRI and only attribute-discard errors -> no reset', () => {
    expect(run(`${ORIGIN} 40 06 01 00`, EBGP, false).action).toBe('attribute-discard');
  });
  it('§5.2 End-of-RIB (only MP_UNREACH_NLRI, no NLRI) is clean', () => {
    expect(run('80 0f 03 00 02 01', EBGP, false)).toMatchObject({ action: undefined, subcodes: [] });
  });
  it('§5.3 MP_REACH_NLRI shorter than 5, MP_UNREACH_NLRI shorter than 3 -> session-reset', () => {
    expect(run(`80 0e 04 00 02 01 00 ${BASE}`).thrown?.action).toBe('session-reset');
    expect(run(`80 0f 02 00 02 ${BASE}`).thrown?.action).toBe('session-reset');
  });
  it('§5.3 a next hop length overrunning MP_REACH_NLRI -> session-reset', () => {
    expect(run(`80 0e 06 00 01 01 04 c0 00 ${BASE}`).thrown?.subcode).toBe(Sub.OPTIONAL_ATTRIBUTE_ERROR);
  });
});

describe('RFC 7606 §7 per attribute', () => {
  it('§7.8 COMMUNITIES length not a non-zero multiple of 4 -> treat-as-withdraw', () => {
    expect(run(`${BASE} c0 08 05 fd e8 00 64 00`).action).toBe('treat-as-withdraw');
  });
  it('§7.9 ORIGINATOR_ID: discarded from eBGP, bad length from iBGP -> treat-as-withdraw', () => {
    const o = run(`${BASE} 80 09 04 0a 00 00 01`);
    expect(o.action).toBe('attribute-discard');
    expect(o.d!.attrs.originatorId).toBeUndefined();
    expect(run(`${BASE} ${LOCAL_PREF} 80 09 03 0a 00 00`, IBGP).action).toBe('treat-as-withdraw');
  });
  it('§7.10 CLUSTER_LIST: discarded from eBGP, bad length from iBGP -> treat-as-withdraw', () => {
    expect(run(`${BASE} 80 0a 04 0a 00 00 01`).action).toBe('attribute-discard');
    expect(run(`${BASE} ${LOCAL_PREF} 80 0a 06 0a 00 00 01 00 00`, IBGP).action).toBe('treat-as-withdraw');
  });
  it('§7.11 MP_REACH_NLRI next hop length inconsistent with the family -> session-reset', () => {
    expect(
      run(`80 0e 0a 00 02 01 05 20 01 0d b8 00 00 ${ORIGIN} ${AS_PATH}`, EBGP, false).thrown?.action,
    ).toBe('session-reset');
    expect(
      run(`80 0e 0a 00 01 80 05 00 00 00 00 00 00 ${ORIGIN} ${AS_PATH}`, EBGP, false).thrown?.action,
    ).toBe('session-reset');
  });
  it('§7.14 EXTENDED_COMMUNITIES length not a multiple of 8 -> treat-as-withdraw; unknown types are fine', () => {
    expect(run(`${BASE} c0 10 07 00 02 fd e8 00 00 00`).action).toBe('treat-as-withdraw');
    expect(run(`${BASE} c0 10 08 8f ff 01 02 03 04 05 06`).action).toBeUndefined();
  });
  it('RFC 8092 §5 LARGE_COMMUNITY length not a non-zero multiple of 12 -> treat-as-withdraw', () => {
    expect(run(`${BASE} c0 20 0d 00 00 fd e8 00 00 00 01 00 00 00 02 00`).action).toBe('treat-as-withdraw');
  });
  it('RFC 9234 §5 OTC length other than 4 -> treat-as-withdraw', () => {
    expect(run(`${BASE} c0 23 02 fd e8`).action).toBe('treat-as-withdraw');
  });
});

describe('RFC 6793 §6 and RFC 4271 §5, §6.3', () => {
  const old = ctx({ as4: false });
  const oldBase = `${ORIGIN} 40 02 04 02 01 5b a0 ${NEXT_HOP}`;
  it('malformed AS4_PATH / AS4_AGGREGATOR -> attribute-discard, AS_PATH kept', () => {
    const o = run(`${oldBase} c0 11 06 07 01 00 00 fd e9`, old);
    expect(o.action).toBe('attribute-discard');
    expect(o.d!.attrs.asPath).toEqual([{ type: 2, asns: [23456] }]);
    expect(run(`${oldBase} c0 11 02 02 00`, old).action).toBe('attribute-discard');
    expect(run(`${oldBase} c0 12 06 fd e9 c0 00 02 01`, old).action).toBe('attribute-discard');
  });
  it('AS4_PATH / AS4_AGGREGATOR from a 4-byte AS speaker are discarded (§4.1)', () => {
    const o = run(`${BASE} c0 11 06 02 01 fa 56 ea 00 c0 12 08 fa 56 ea 00 c0 00 02 01`);
    expect(o.action).toBe('attribute-discard');
    expect(o.d!.attrs.asPath).toEqual([{ type: 2, asns: [65001] }]);
    expect(o.d!.attrs.unknown).toBeUndefined();
  });
  it('confederation segments in AS4_PATH are removed', () => {
    const o = run(`${oldBase} c0 11 0c 03 01 00 00 fe 4c 02 01 fa 56 ea 00`, old);
    expect(o.action).toBeUndefined();
    expect(o.d!.attrs.asPath).toEqual([{ type: 2, asns: [4200000000] }]);
  });
  it('§6.3 an unrecognized well-known attribute -> session-reset with the attribute as data', () => {
    const o = run(`${BASE} 40 63 02 ab cd`);
    expect(o.thrown).toMatchObject({
      action: 'session-reset',
      subcode: Sub.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
    });
    expect(toHex(o.thrown!.data)).toBe('406302abcd');
    expect(o.thrown!.attrType).toBe(0x63);
  });
  it('§5 unknown optional transitive attributes are kept, non-transitive ones dropped', () => {
    const o = run(`${BASE} c0 63 02 ab cd 80 64 01 00`);
    expect(o.action).toBeUndefined();
    expect(o.d!.attrs.unknown).toEqual([{ flags: 0xc0, code: 0x63, value: hex`ab cd` }]);
  });
  it('errors carry the attribute type and the whole attribute as data', () => {
    const e = run(`${BASE} c0 08 03 00 00 00`).d!.errors[0]!;
    expect(e.attrType).toBe(8);
    expect(toHex(e.data)).toBe('c00803000000');
  });
});

describe(`decoders only throw UpdateError on random bytes (fast-check seed ${SEED})`, () => {
  const contexts = [EBGP, IBGP, ctx({ as4: false }), ctx({ as4: false, ebgp: false })];
  const valid = hex(
    `${BASE} 80 0e 0b 00 01 01 04 c0 00 02 01 00 08 0a c0 11 06 02 01 fa 56 ea 00 c0 08 04 00 00 00 01`,
  );
  const onlyUpdateErrors = (f: () => unknown): void => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(UpdateError);
    }
  };
  it('splitUpdate', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (b) => onlyUpdateErrors(() => splitUpdate(b))),
      { seed: SEED, numRuns: 2000 },
    );
  });
  it('decodeAttributes on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.boolean(), fc.nat(3), (b, hasNlri, c) =>
        onlyUpdateErrors(() => decodeAttributes(b, contexts[c]!, hasNlri)),
      ),
      { seed: SEED, numRuns: 3000 },
    );
  });
  it('decodeAttributes on mutations of a valid attribute section', () => {
    const mutation = fc.array(fc.tuple(fc.nat(valid.length - 1), fc.nat(255)), {
      minLength: 1,
      maxLength: 4,
    });
    fc.assert(
      fc.property(mutation, fc.nat(valid.length), fc.boolean(), fc.nat(3), (muts, cut, hasNlri, c) => {
        const b = valid.slice(0, cut);
        for (const [i, v] of muts) if (i < b.length) b[i] = v;
        onlyUpdateErrors(() => decodeAttributes(b, contexts[c]!, hasNlri));
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });
  it('decodeNlri and forEachIPv4Prefix', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 60 }), fc.boolean(), fc.nat(3), (b, addPath, f) => {
        onlyUpdateErrors(() => decodeNlri(b, AFI_SAFIS[f]!, addPath, 'mp'));
        onlyUpdateErrors(() => forEachIPv4Prefix(b, addPath, () => undefined));
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });
});
