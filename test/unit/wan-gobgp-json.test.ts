/**
 * What `gobgp -j` prints (GoBGP 3.10), read back: VRF RDs and route targets arrive as protobuf
 * `Any` (vectors captured from a live gobgpd), and the CLI's asdot argument forms.
 */
import { describe, expect, it } from 'vitest';
import {
  decodePb,
  rdArg,
  rdFromAny,
  rdText,
  rtArg,
  rtFromAny,
  sessionState,
} from '../../src/controller/wan/gobgp-json.ts';

const any = (kind: string, value: string) => ({ type_url: `type.googleapis.com/apipb.${kind}`, value });

describe('gobgp -j: RDs and route targets as protobuf Any', () => {
  it('decodes the three RD types (RFC 4364 §4.2)', () => {
    expect(rdFromAny(any('RouteDistinguisherTwoOctetASN', 'COj7AxBk'))).toBe('65000:100');
    expect(rdFromAny(any('RouteDistinguisherIPAddress', 'CgkxOTIuMC4yLjEQBQ=='))).toBe('192.0.2.1:5');
    expect(rdFromAny(any('RouteDistinguisherFourOctetASN', 'CIDU29IPEAM='))).toBe('4200000000:3');
    expect(rdFromAny(any('SomethingElse', ''))).toBe('unknown:SomethingElse');
  });

  it('decodes route targets of the three administrator types (RFC 4360 §3, RFC 5668)', () => {
    expect(rtFromAny(any('TwoOctetAsSpecificExtended', 'CAEQAhjo+wMgAQ=='))).toBe('65000:1');
    expect(rtFromAny(any('TwoOctetAsSpecificExtended', 'CAEQAhjo+wMgAw=='))).toBe('65000:3');
    expect(rtFromAny(any('IPv4AddressSpecificExtended', 'CAEQAhoJMTkyLjAuMi4xIAc='))).toBe('192.0.2.1:7');
    expect(rtFromAny(any('FourOctetAsSpecificExtended', 'CAEQAhiA1NvSDyAB'))).toBe('4200000000:1');
    // what the 3.10 CLI made of "4200000000:1" written in asplain: 65535:1 (hence rtArg's asdot)
    expect(rtFromAny(any('TwoOctetAsSpecificExtended', 'CAEQAhj//wMgAQ=='))).toBe('65535:1');
  });

  it('path JSON RDs ({type, admin, assigned}) read to the same text', () => {
    expect(rdText(0, 65000, 11)).toBe('65000:11');
    expect(rdText(1, '192.0.2.1', 5)).toBe('192.0.2.1:5');
    expect(rdText(2, 4200000000, 3)).toBe('4200000000:3');
  });

  it('the protobuf reader takes varints, strings and skips fixed fields; truncation throws', () => {
    // field 1 varint 300, field 2 fixed64 (skipped), field 3 "hi", field 4 fixed32 (skipped)
    const b = Uint8Array.from([
      0x08, 0xac, 0x02, 0x11, 1, 2, 3, 4, 5, 6, 7, 8, 0x1a, 0x02, 0x68, 0x69, 0x25, 1, 2, 3, 4,
    ]);
    const f = decodePb(b);
    expect(f.map((x) => x.no)).toEqual([1, 3]);
    expect(f[0]!.varint).toBe(300);
    expect(Buffer.from(f[1]!.bytes!).toString()).toBe('hi');
    expect(() => decodePb(Uint8Array.from([0x08, 0x80]))).toThrow(/truncated/);
    expect(() => decodePb(Uint8Array.from([0x1a, 0x05, 0x68]))).toThrow(/truncated/);
  });
});

describe('gobgp CLI arguments', () => {
  it('writes 4-octet ASNs in asdot, the only 4-octet form the 3.10 CLI parses', () => {
    expect(rdArg('4200000000:3')).toBe('64086.59904:3');
    expect(rtArg('4200000000:1')).toBe('64086.59904:1');
    expect(rdArg('65000:100')).toBe('65000:100');
    expect(rdArg('192.0.2.1:5')).toBe('192.0.2.1:5');
    expect(rtArg('65000:1')).toBe('65000:1');
    expect(rtArg('192.0.2.1:7')).toBe('192.0.2.1:7');
  });

  it('names session states as RFC 4271 §8.2.2 does', () => {
    expect(sessionState(6)).toBe('established');
    expect(sessionState(3)).toBe('active');
    expect(sessionState('SESSION_STATE_IDLE')).toBe('idle');
    expect(sessionState(undefined)).toBe('idle');
  });
});
