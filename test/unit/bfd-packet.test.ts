/**
 * BFD Control packet codec (src/bfd/packet.ts, RFC 5880 §4): annotated-hex vectors tested three
 * ways, every §6.8.6 packet check, every auth type with a vector whose digest was computed
 * independently (Python hashlib over the packet with the zero-padded key in the digest field,
 * as §6.7.3/§6.7.4 describe), verifyAuth's sequence windows, and fast-check properties.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BfdPacketError,
  bfdAuthTypeName,
  bfdDiagName,
  decodeBfd,
  encodeBfd,
  verifyAuth,
  type BfdAuthKey,
  type BfdPacket,
} from '../../src/bfd/packet.ts';
import { hex, toHex } from '../../src/lib/bytes.ts';

const SEED = 5880;

const BASE: BfdPacket = {
  diag: 0,
  state: 'Up',
  poll: false,
  final: false,
  cpi: false,
  demand: false,
  multipoint: false,
  detectMult: 3,
  myDiscr: 1,
  yourDiscr: 2,
  desiredMinTxUs: 300_000,
  requiredMinRxUs: 300_000,
  requiredMinEchoRxUs: 0,
};

const DOWN_POLL = hex`
  27           # version 1, diag 7 Administratively Down
  60           # state 1 Down, P
  05           # detect mult 5
  18           # length 24
  00 00 00 0a  # my discriminator 10
  00 00 00 00  # your discriminator 0
  00 0f 42 40  # desired min TX 1 000 000 us
  00 00 c3 50  # required min RX 50 000 us
  00 00 00 00  # required min echo RX 0
`;
const DOWN_POLL_PKT: BfdPacket = {
  ...BASE,
  diag: 7,
  state: 'Down',
  poll: true,
  detectMult: 5,
  myDiscr: 10,
  yourDiscr: 0,
  desiredMinTxUs: 1_000_000,
  requiredMinRxUs: 50_000,
};

const UP_FINAL_DEMAND = hex`
  20           # version 1, diag 0
  d2           # state 3 Up, F, D
  03 18        # detect mult 3, length 24
  00 00 00 01  # my discriminator 1
  00 00 00 02  # your discriminator 2
  00 04 93 e0  # desired min TX 300 000 us
  00 04 93 e0  # required min RX 300 000 us
  00 00 00 00  # required min echo RX 0
`;

const HEADER_AUTH = (len: string): string => `
  20 c4        # version 1, Up, A
  03 ${len}    # detect mult 3, length
  00 00 00 01  00 00 00 02  # my / your discriminator
  00 04 93 e0  00 04 93 e0  00 00 00 00  # intervals 300 ms, no echo
`;

/** Key "secret", Key ID 1, sequence number 42. */
const AUTH_VECTORS: { type: 1 | 2 | 3 | 4 | 5; bytes: Uint8Array }[] = [
  {
    type: 1,
    bytes: hex(`${HEADER_AUTH('21')}
      01 09 01          # Simple Password, Auth Len 9, Key ID 1
      73 65 63 72 65 74 # "secret"
    `),
  },
  {
    type: 2,
    bytes: hex(`${HEADER_AUTH('30')}
      02 18 01 00       # Keyed MD5, Auth Len 24, Key ID 1, reserved
      00 00 00 2a       # sequence number 42
      2a db 87 c1 0d 02 50 57 c7 7c 53 07 fc f9 d5 7c  # MD5 digest
    `),
  },
  {
    type: 3,
    bytes: hex(`${HEADER_AUTH('30')}
      03 18 01 00       # Meticulous Keyed MD5, Auth Len 24, Key ID 1
      00 00 00 2a       # sequence number 42
      f3 5b 10 68 fa a6 64 09 2f 3a b8 f0 b6 6c 97 b6  # MD5 digest
    `),
  },
  {
    type: 4,
    bytes: hex(`${HEADER_AUTH('34')}
      04 1c 01 00       # Keyed SHA1, Auth Len 28, Key ID 1
      00 00 00 2a       # sequence number 42
      e1 db 4b 02 77 42 06 3d 3a e3 bd 98 76 bd 91 36 df 74 44 e8  # SHA1 hash
    `),
  },
  {
    type: 5,
    bytes: hex(`${HEADER_AUTH('34')}
      05 1c 01 00       # Meticulous Keyed SHA1, Auth Len 28, Key ID 1
      00 00 00 2a       # sequence number 42
      e5 6d 1d 1c f6 d2 b8 d5 a9 51 96 f7 08 42 32 3d 38 d3 79 5f  # SHA1 hash
    `),
  },
];

function key(type: BfdAuthKey['type'], secret = 'secret', keyId = 1): BfdAuthKey {
  return { type, keyId, secret };
}

function errorCode(bytes: Uint8Array): string {
  try {
    decodeBfd(bytes);
    return 'ok';
  } catch (e) {
    expect(e).toBeInstanceOf(BfdPacketError);
    return (e as BfdPacketError).code;
  }
}

describe('BFD control packet without auth', () => {
  it('decodes', () => {
    expect(decodeBfd(DOWN_POLL)).toEqual(DOWN_POLL_PKT);
    expect(decodeBfd(UP_FINAL_DEMAND)).toEqual({ ...BASE, final: true, demand: true });
  });
  it('encodes exact bytes', () => {
    expect(toHex(encodeBfd(DOWN_POLL_PKT))).toBe(toHex(DOWN_POLL));
    expect(toHex(encodeBfd({ ...BASE, final: true, demand: true }))).toBe(toHex(UP_FINAL_DEMAND));
  });
  it('round trips', () => {
    for (const b of [DOWN_POLL, UP_FINAL_DEMAND]) expect(toHex(encodeBfd(decodeBfd(b)))).toBe(toHex(b));
  });
  it('ignores bytes after Length and reads views, not copies', () => {
    const padded = new Uint8Array(30);
    padded.set(DOWN_POLL);
    expect(decodeBfd(padded)).toEqual(DOWN_POLL_PKT);
  });
  it('names diagnostics and auth types', () => {
    expect(bfdDiagName(1)).toBe('Control Detection Time Expired');
    expect(bfdDiagName(3)).toBe('Neighbor Signaled Session Down');
    expect(bfdDiagName(20)).toBe('Reserved (20)');
    expect(bfdAuthTypeName(5)).toBe('Meticulous Keyed SHA1');
  });
  it('refuses to encode P and F together or out-of-range fields', () => {
    expect(() => encodeBfd({ ...BASE, poll: true, final: true })).toThrow(/P and F/);
    expect(() => encodeBfd({ ...BASE, detectMult: 256 })).toThrow(/detect mult/);
  });
});

describe('§6.8.6 packet checks', () => {
  const mutate = (f: (b: Uint8Array) => void, base = UP_FINAL_DEMAND): Uint8Array => {
    const b = Uint8Array.from(base);
    f(b);
    return b;
  };
  it.each([
    ['short payload', UP_FINAL_DEMAND.subarray(0, 23), 'SHORT'],
    ['version 2', mutate((b) => (b[0] = 0x40)), 'BAD_VERSION'],
    ['version 0', mutate((b) => (b[0] = 0x00)), 'BAD_VERSION'],
    ['length 23', mutate((b) => (b[3] = 23)), 'BAD_LENGTH'],
    ['length beyond payload', mutate((b) => (b[3] = 25)), 'BAD_LENGTH'],
    ['detect mult 0', mutate((b) => (b[2] = 0)), 'ZERO_DETECT_MULT'],
    ['M bit', mutate((b) => (b[1] = b[1]! | 1)), 'MULTIPOINT'],
    ['my discriminator 0', mutate((b) => b.fill(0, 4, 8)), 'ZERO_MY_DISCR'],
    ['your discriminator 0 in Up', mutate((b) => b.fill(0, 8, 12)), 'ZERO_YOUR_DISCR'],
    ['A bit, length 24', mutate((b) => (b[1] = b[1]! | 4)), 'BAD_LENGTH'],
    ['A bit, Auth Len disagrees', mutate((b) => (b[25] = 20), AUTH_VECTORS[1]!.bytes), 'BAD_AUTH'],
    ['MD5 with Auth Len 28', mutate((b) => (b[24] = 2), AUTH_VECTORS[3]!.bytes), 'BAD_AUTH'],
    ['unknown auth type 9', mutate((b) => (b[24] = 9), AUTH_VECTORS[1]!.bytes), 'BAD_AUTH'],
    [
      'password Auth Len 3',
      hex`20 c4 03 1b 00000001 00000002 00000000 00000000 00000000 01 03 01`,
      'BAD_AUTH',
    ],
  ])('%s → %s', (_name, bytes, code) => {
    expect(errorCode(bytes)).toBe(code);
  });
  it('accepts your discriminator 0 in Down and AdminDown', () => {
    expect(errorCode(DOWN_POLL)).toBe('ok');
    expect(errorCode(mutate((b) => (b[1] = 0x00), DOWN_POLL))).toBe('ok');
  });
});

describe('authentication sections (§4.2–§4.4)', () => {
  it.each(AUTH_VECTORS)(
    'type $type: encode computes the vector, decode and round trip',
    ({ type, bytes }) => {
      expect(toHex(encodeBfd(BASE, { ...key(type), seq: 42 }))).toBe(toHex(bytes));
      const pkt = decodeBfd(bytes);
      expect(pkt.auth?.type).toBe(type);
      expect(pkt.auth?.keyId).toBe(1);
      if (pkt.auth !== undefined && pkt.auth.type !== 1) expect(pkt.auth.seq).toBe(42);
      expect(toHex(encodeBfd(pkt))).toBe(toHex(bytes));
      expect(verifyAuth(pkt, bytes, new Map([[1, key(type)]]), { seqKnown: false, rcvSeq: 0 })).toEqual({
        ok: true,
      });
    },
  );

  it.each(AUTH_VECTORS)('type $type: wrong secret, wrong key id, wrong type fail', ({ type, bytes }) => {
    const pkt = decodeBfd(bytes);
    const st = { seqKnown: false, rcvSeq: 0 };
    expect(verifyAuth(pkt, bytes, new Map([[1, key(type, 'secreT')]]), st).ok).toBe(false);
    expect(verifyAuth(pkt, bytes, new Map([[2, key(type, 'secret', 2)]]), st)).toEqual({
      ok: false,
      reason: 'key-id',
    });
    const other = type === 1 ? 2 : 1;
    expect(verifyAuth(pkt, bytes, new Map([[1, key(other)]]), st)).toEqual({ ok: false, reason: 'type' });
    expect(st.seqKnown).toBe(false);
  });

  it('a tampered packet fails the digest', () => {
    const b = Uint8Array.from(AUTH_VECTORS[3]!.bytes);
    b[15] = 0x01; // desired min TX changed in flight
    expect(verifyAuth(decodeBfd(b), b, new Map([[1, key(4)]]), { seqKnown: false, rcvSeq: 0 })).toEqual({
      ok: false,
      reason: 'digest',
    });
  });

  it('A bit vs configured auth (§6.8.6)', () => {
    const plain = decodeBfd(UP_FINAL_DEMAND);
    expect(
      verifyAuth(plain, UP_FINAL_DEMAND, new Map([[1, key(2)]]), { seqKnown: false, rcvSeq: 0 }),
    ).toEqual({
      ok: false,
      reason: 'no-auth',
    });
    const md5 = AUTH_VECTORS[1]!.bytes;
    expect(verifyAuth(decodeBfd(md5), md5, new Map(), { seqKnown: false, rcvSeq: 0 })).toEqual({
      ok: false,
      reason: 'unexpected-auth',
    });
  });

  const window = (type: 2 | 3 | 4 | 5, rcvSeq: number, seq: number): boolean => {
    const bytes = encodeBfd(BASE, { ...key(type), seq });
    return verifyAuth(decodeBfd(bytes), bytes, new Map([[1, key(type)]]), { seqKnown: true, rcvSeq }).ok;
  };
  it('keyed: sequence in [rcv, rcv + 3×DetectMult] (§6.7.3)', () => {
    for (const type of [2, 4] as const) {
      expect(window(type, 100, 100)).toBe(true);
      expect(window(type, 100, 109)).toBe(true); // 3 × detect mult 3
      expect(window(type, 100, 110)).toBe(false);
      expect(window(type, 100, 99)).toBe(false);
      expect(window(type, 0xfffffffe, 3)).toBe(true); // wraps
    }
  });
  it('meticulous: sequence in (rcv, rcv + 3×DetectMult] (§6.7.3)', () => {
    for (const type of [3, 5] as const) {
      expect(window(type, 100, 100)).toBe(false); // replay
      expect(window(type, 100, 101)).toBe(true);
      expect(window(type, 100, 109)).toBe(true);
      expect(window(type, 100, 110)).toBe(false);
      expect(window(type, 0xffffffff, 0)).toBe(true);
    }
  });
  it('records the accepted sequence number', () => {
    const st = { seqKnown: false, rcvSeq: 0 };
    const b = encodeBfd(BASE, { ...key(5), seq: 7 });
    expect(verifyAuth(decodeBfd(b), b, new Map([[1, key(5)]]), st).ok).toBe(true);
    expect(st).toEqual({ seqKnown: true, rcvSeq: 7 });
    expect(verifyAuth(decodeBfd(b), b, new Map([[1, key(5)]]), st)).toEqual({
      ok: false,
      reason: 'sequence',
    });
  });
});

describe('properties', () => {
  it(`random bytes only throw BfdPacketError (seed ${SEED})`, () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 64 }), (b) => {
        try {
          decodeBfd(b);
        } catch (e) {
          if (!(e instanceof BfdPacketError)) throw e;
        }
      }),
      { seed: SEED, numRuns: 5000 },
    );
  });
  it(`mutated valid packets only throw BfdPacketError (seed ${SEED})`, () => {
    const all = [DOWN_POLL, UP_FINAL_DEMAND, ...AUTH_VECTORS.map((v) => v.bytes)];
    fc.assert(
      fc.property(
        fc.constantFrom(...all),
        fc.array(fc.tuple(fc.nat(60), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        (base, edits) => {
          const b = Uint8Array.from(base);
          for (const [i, v] of edits) if (i < b.length) b[i] = v;
          try {
            const p = decodeBfd(b);
            verifyAuth(p, b, new Map([[1, key(2)]]), { seqKnown: true, rcvSeq: 40 });
          } catch (e) {
            if (!(e instanceof BfdPacketError)) throw e;
          }
        },
      ),
      { seed: SEED, numRuns: 3000 },
    );
  });
  it(`encode → decode is the identity (seed ${SEED})`, () => {
    const states = ['AdminDown', 'Down', 'Init', 'Up'] as const;
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    const arb = fc
      .record({
        diag: fc.integer({ min: 0, max: 31 }),
        state: fc.constantFrom(...states),
        pf: fc.constantFrom([false, false], [true, false], [false, true]),
        cpi: fc.boolean(),
        demand: fc.boolean(),
        detectMult: fc.integer({ min: 1, max: 255 }),
        myDiscr: fc.integer({ min: 1, max: 0xffffffff }),
        yourDiscr: fc.integer({ min: 1, max: 0xffffffff }),
        desiredMinTxUs: u32,
        requiredMinRxUs: u32,
        requiredMinEchoRxUs: u32,
        auth: fc.option(
          fc.oneof(
            fc.record({
              type: fc.constant(1 as const),
              keyId: fc.integer({ min: 0, max: 255 }),
              password: fc.uint8Array({ minLength: 1, maxLength: 16 }),
            }),
            fc.integer({ min: 2, max: 5 }).chain((type) =>
              fc.record({
                type: fc.constant(type as 2 | 3 | 4 | 5),
                keyId: fc.integer({ min: 0, max: 255 }),
                seq: u32,
                digest: fc.uint8Array({ minLength: type <= 3 ? 16 : 20, maxLength: type <= 3 ? 16 : 20 }),
              }),
            ),
          ),
          { nil: undefined },
        ),
      })
      .map(({ pf, auth, ...r }): BfdPacket => {
        const p: BfdPacket = { ...r, poll: pf[0], final: pf[1], multipoint: false };
        if (auth !== undefined) p.auth = auth;
        return p;
      });
    fc.assert(
      fc.property(arb, (p) => {
        const bytes = encodeBfd(p);
        expect(decodeBfd(bytes)).toEqual(p);
        expect(toHex(encodeBfd(decodeBfd(bytes)))).toBe(toHex(bytes));
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });
});
