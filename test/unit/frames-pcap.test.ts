/**
 * pcap writer (src/dataplane/frames/pcap.ts): global and record headers to exact bytes, the
 * same file through a descriptor and through a stream, snaplen truncation. The tshark oracle
 * (frames-tshark.test.ts) reads files written here.
 */
import { mkdtempSync, openSync, readFileSync, rmSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hex, toHex } from '../../src/lib/bytes.ts';
import {
  PcapUsageError,
  PcapWriter,
  encodePcapHeader,
  encodeRecordHeader,
} from '../../src/dataplane/frames/pcap.ts';

const dir = mkdtempSync(join(tmpdir(), 'frames-pcap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const GLOBAL = hex`
  d4 c3 b2 a1   # magic 0xa1b2c3d4, little-endian
  02 00 04 00   # version 2.4
  00 00 00 00   # thiszone
  00 00 00 00   # sigfigs
  ff ff 00 00   # snaplen 65535
  01 00 00 00   # LINKTYPE_ETHERNET
`;

describe('pcap headers', () => {
  it('global header', () => {
    expect(toHex(encodePcapHeader())).toBe(toHex(GLOBAL));
    expect(toHex(encodePcapHeader(128).subarray(16, 20))).toBe('80000000');
  });

  it('record header: seconds and microseconds from milliseconds', () => {
    expect(toHex(encodeRecordHeader(1_700_000_000_123.456, 60, 1514))).toBe(
      toHex(hex`
        00 f1 53 65   # 1700000000 s
        40 e2 01 00   # 123456 us
        3c 00 00 00   # captured 60
        ea 05 00 00   # original 1514
      `),
    );
    const out = new Uint8Array(20);
    encodeRecordHeader(999.9996, 1, 1, out, 4);
    expect(toHex(out.subarray(4, 12))).toBe('01000000' + '00000000'); // rounds up into the next second
  });
});

describe('PcapWriter', () => {
  const frame = Uint8Array.from({ length: 100 }, (_, i) => i);

  it('writes the same bytes to a descriptor and to a stream', async () => {
    const a = join(dir, 'fd.pcap');
    const w1 = new PcapWriter(openSync(a, 'w'));
    w1.write(frame, 10, 60, 1000.5);
    w1.write(frame, 0, 100, 2000);
    await w1.close();
    const b = join(dir, 'stream.pcap');
    const w2 = new PcapWriter(createWriteStream(b));
    w2.write(frame, 10, 60, 1000.5);
    w2.write(frame, 0, 100, 2000);
    await w2.close();
    const fa = readFileSync(a);
    expect(toHex(readFileSync(b))).toBe(toHex(fa));
    expect(fa.length).toBe(24 + 16 + 60 + 16 + 100);
    expect(toHex(fa.subarray(24, 40))).toBe(toHex(encodeRecordHeader(1000.5, 60, 60)));
    expect(toHex(fa.subarray(40, 100))).toBe(toHex(frame.subarray(10, 70)));
  });

  it('truncates to the snaplen and keeps the original length', async () => {
    const p = join(dir, 'snap.pcap');
    const w = new PcapWriter(openSync(p, 'w'), 32);
    w.write(frame, 0, 100, 0);
    await w.close();
    const f = readFileSync(p);
    expect(f.length).toBe(24 + 16 + 32);
    expect(toHex(f.subarray(24 + 8, 24 + 16))).toBe('20000000' + '64000000');
    expect(() => w.write(frame, 0, 1, 0)).toThrow(PcapUsageError);
    await w.close(); // idempotent
  });
});
