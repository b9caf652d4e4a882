/**
 * Internet checksum (src/dataplane/frames/checksum.ts): RFC 1071's numerical example, a known
 * IPv4 header, RFC 1624's own incremental-update example, and fast-check differentials against
 * a naive reference (sum mod 0xffff, an independent way to compute a ones'-complement sum) and
 * against full recomputation.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hex } from '../../src/lib/bytes.ts';
import { parseIPv4, parseIPv6 } from '../../src/lib/ip.ts';
import {
  finish,
  incremental,
  incremental32,
  pseudoHeader4,
  pseudoHeader6,
  sum16,
  verifies,
} from '../../src/dataplane/frames/checksum.ts';

const SEED = 1071;

/** Ones'-complement sum via arithmetic mod 2^16-1 (different algorithm from the code under test). */
function naiveSum(bytes: Uint8Array): number {
  let total = 0;
  for (let i = 0; i < bytes.length; i += 2) total += (bytes[i]! << 8) + (bytes[i + 1] ?? 0);
  if (total === 0) return 0;
  const m = total % 0xffff;
  return m === 0 ? 0xffff : m;
}

function naiveChecksum(bytes: Uint8Array): number {
  return ~naiveSum(bytes) & 0xffff;
}

describe('sum16 / finish', () => {
  it('RFC 1071 §3 numerical example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2', () => {
    const b = hex`00 01 f2 03 f4 f5 f6 f7`;
    expect(sum16(b, 0, 8)).toBe(0xddf2);
    expect(finish(sum16(b, 0, 8))).toBe(0x220d);
  });

  it('a known IPv4 header checksums to b861 and then verifies', () => {
    const h = hex`
      45 00 00 73  00 00 40 00  40 11 00 00   # checksum zeroed
      c0 a8 00 01  c0 a8 00 c7                # 192.168.0.1 -> 192.168.0.199
    `;
    expect(finish(sum16(h, 0, 20))).toBe(0xb861);
    h[10] = 0xb8;
    h[11] = 0x61;
    expect(verifies(h, 0, 20)).toBe(true);
  });

  it('pads an odd trailing byte with zero and respects offset', () => {
    const b = hex`ff ff  12 34 56`;
    expect(sum16(b, 2, 3)).toBe((0x1234 + 0x5600) & 0xffff);
    expect(sum16(b, 2, 0, 0x1234)).toBe(0x1234);
  });

  it(`matches the naive reference on random data (seed ${SEED})`, () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat(16), (data, pad) => {
        const buf = new Uint8Array(pad + data.length);
        buf.set(data, pad);
        expect(sum16(buf, pad, data.length)).toBe(naiveSum(data));
        expect(finish(sum16(buf, pad, data.length))).toBe(naiveChecksum(data));
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  it(`partial sums of even-length pieces add up (seed ${SEED})`, () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.nat(200), (data, cut0) => {
        const cut = Math.min(cut0 * 2, data.length & ~1);
        const whole = sum16(data, 0, data.length);
        const parts = sum16(data, cut, data.length - cut, sum16(data, 0, cut));
        expect(finish(parts)).toBe(finish(whole));
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
});

describe('pseudo-headers', () => {
  it('IPv4: src, dst, protocol, length', () => {
    const b = new Uint8Array(8);
    b.set(parseIPv4('192.0.2.1'), 0);
    b.set(parseIPv4('198.51.100.7'), 4);
    const expected = naiveSum(hex`c0 00 02 01  c6 33 64 07  00 11  00 1c`);
    expect(pseudoHeader4(b, 0, 4, 17, 28)).toBe(expected);
  });

  it('IPv6: src, dst, 32-bit length, next header (RFC 8200 §8.1)', () => {
    const b = new Uint8Array(32);
    b.set(parseIPv6('2001:db8::1'), 0);
    b.set(parseIPv6('ff02::1:ff00:2'), 16);
    const ph = new Uint8Array(40);
    ph.set(b, 0);
    ph.set(hex`00 01 00 20  00 00 00 3a`, 32); // length 0x10020 exercises the high word
    expect(pseudoHeader6(b, 0, 16, 58, 0x10020)).toBe(naiveSum(ph));
  });
});

describe('incremental (RFC 1624)', () => {
  it('RFC 1624 §4 example: HC 0xDD2F, m 0x5555 -> 0x3285 gives 0x0000 (eqn. 2 would give 0xFFFF)', () => {
    expect(incremental(0xdd2f, 0x5555, 0x3285)).toBe(0x0000);
  });

  it('TTL decrement on the known IPv4 header', () => {
    // TTL/protocol word 0x4011 -> 0x3f11 on the b861 header above
    const h = hex`45 00 00 73 00 00 40 00 3f 11 00 00 c0 a8 00 01 c0 a8 00 c7`;
    expect(incremental(0xb861, 0x4011, 0x3f11)).toBe(finish(sum16(h, 0, 20)));
  });

  it(`equals full recomputation for any one-word change (seed ${SEED})`, () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 4, maxLength: 64 }).map((a) => (a.length % 2 === 0 ? a : a.subarray(1))),
        fc.nat(),
        fc.integer({ min: 0, max: 0xffff }),
        (data0, pick, newWord) => {
          const data = Uint8Array.from(data0);
          data[0] = 0x45; // a non-zero word, as in every real header (see RFC 1624 §3 on ±0)
          const words = data.length / 2;
          const ckIdx = 1; // word 1 holds the checksum
          data[2] = 0;
          data[3] = 0;
          const ck = finish(sum16(data, 0, data.length));
          data[2] = ck >>> 8;
          data[3] = ck & 0xff;
          let w = 2 + (pick % Math.max(1, words - 2));
          if (w >= words) w = 0;
          if (w === ckIdx) return;
          const oldWord = (data[w * 2]! << 8) | data[w * 2 + 1]!;
          if (w === 0) newWord = (newWord & 0xff) | 0x4500;
          data[w * 2] = newWord >>> 8;
          data[w * 2 + 1] = newWord & 0xff;
          const inc = incremental(ck, oldWord, newWord);
          data[2] = 0;
          data[3] = 0;
          expect(inc).toBe(finish(sum16(data, 0, data.length)));
        },
      ),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it(`incremental32 equals two word updates and full recomputation (seed ${SEED})`, () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 12, maxLength: 12 }), fc.nat(0xffffffff), (data0, newV) => {
        const data = Uint8Array.from(data0);
        data[0] = 0x45;
        data[2] = 0;
        data[3] = 0;
        const ck = finish(sum16(data, 0, 12));
        const oldV = ((data[8]! << 24) | (data[9]! << 16) | (data[10]! << 8) | data[11]!) >>> 0;
        data[8] = newV >>> 24;
        data[9] = (newV >>> 16) & 0xff;
        data[10] = (newV >>> 8) & 0xff;
        data[11] = newV & 0xff;
        expect(incremental32(ck, oldV, newV)).toBe(finish(sum16(data, 0, 12)));
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });
});
