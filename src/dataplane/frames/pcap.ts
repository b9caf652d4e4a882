/**
 * Classic libpcap capture files (the "pcap" format of draft-ietf-opsawg-pcap): a 24-byte global
 * header (magic 0xa1b2c3d4 for microsecond timestamps, version 2.4, snaplen, LINKTYPE_ETHERNET)
 * then per packet a 16-byte record header and the captured bytes. Written little-endian; readers
 * detect the byte order from the magic. Timestamps come from the caller (no clock in here).
 */
import { closeSync, writeSync } from 'node:fs';
import type { Writable } from 'node:stream';

export const PCAP_MAGIC = 0xa1b2c3d4; // microsecond resolution
export const PCAP_VERSION_MAJOR = 2;
export const PCAP_VERSION_MINOR = 4;
export const LINKTYPE_ETHERNET = 1; // tcpdump.org link-layer header types
export const PCAP_DEFAULT_SNAPLEN = 65535;
export const PCAP_HEADER_LENGTH = 24;
export const PCAP_RECORD_HEADER_LENGTH = 16;

export class PcapUsageError extends Error {
  override readonly name = 'PcapUsageError';
  readonly code = 'PCAP_USAGE';
}

function le32(b: Uint8Array, off: number, v: number): void {
  b[off] = v;
  b[off + 1] = v >>> 8;
  b[off + 2] = v >>> 16;
  b[off + 3] = v >>> 24;
}

function le16(b: Uint8Array, off: number, v: number): void {
  b[off] = v;
  b[off + 1] = v >>> 8;
}

/** The 24-byte global header. */
export function encodePcapHeader(snaplen = PCAP_DEFAULT_SNAPLEN, linktype = LINKTYPE_ETHERNET): Uint8Array {
  const b = new Uint8Array(PCAP_HEADER_LENGTH);
  le32(b, 0, PCAP_MAGIC);
  le16(b, 4, PCAP_VERSION_MAJOR);
  le16(b, 6, PCAP_VERSION_MINOR);
  le32(b, 8, 0); // thiszone
  le32(b, 12, 0); // sigfigs
  le32(b, 16, snaplen);
  le32(b, 20, linktype);
  return b;
}

/**
 * A 16-byte record header for a packet seen at `timeMs` (milliseconds since the epoch,
 * fractions kept to the microsecond), `capLen` bytes stored of `origLen`. Writes into `out`
 * at `outOff` (a fresh array by default) and returns `out`.
 */
export function encodeRecordHeader(
  timeMs: number,
  capLen: number,
  origLen: number,
  out: Uint8Array = new Uint8Array(PCAP_RECORD_HEADER_LENGTH),
  outOff = 0,
): Uint8Array {
  const totalUs = Math.round(timeMs * 1000);
  const sec = Math.floor(totalUs / 1_000_000);
  le32(out, outOff, sec);
  le32(out, outOff + 4, totalUs - sec * 1_000_000);
  le32(out, outOff + 8, capLen);
  le32(out, outOff + 12, origLen);
  return out;
}

/**
 * Appends packets to a pcap file descriptor (written synchronously) or a Node writable stream
 * (each record copied, since callers reuse their buffers). The writer owns the target:
 * `close()` closes the descriptor or ends the stream.
 */
export class PcapWriter {
  private readonly record = new Uint8Array(PCAP_RECORD_HEADER_LENGTH);
  private closed = false;

  constructor(
    private readonly target: number | Writable,
    readonly snaplen = PCAP_DEFAULT_SNAPLEN,
  ) {
    this.emit(encodePcapHeader(snaplen), 0, PCAP_HEADER_LENGTH);
  }

  /**
   * Records `buf[off, off + len)` seen at `timeMs`, truncated to the snaplen. Returns false when
   * a stream asks the caller to wait for 'drain'.
   */
  write(buf: Uint8Array, off: number, len: number, timeMs: number): boolean {
    if (this.closed) throw new PcapUsageError('write after close');
    const cap = Math.min(len, this.snaplen);
    if (typeof this.target === 'number') {
      encodeRecordHeader(timeMs, cap, len, this.record);
      this.emit(this.record, 0, PCAP_RECORD_HEADER_LENGTH);
      this.emit(buf, off, cap);
      return true;
    }
    const rec = Buffer.allocUnsafe(PCAP_RECORD_HEADER_LENGTH + cap);
    encodeRecordHeader(timeMs, cap, len, rec);
    rec.set(buf.subarray(off, off + cap), PCAP_RECORD_HEADER_LENGTH);
    return this.target.write(rec);
  }

  /** Closes the descriptor, or ends the stream and resolves once it has flushed. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    const t = this.target;
    if (typeof t === 'number') {
      closeSync(t);
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      t.once('error', reject);
      t.end(() => resolve());
    });
  }

  private emit(b: Uint8Array, off: number, len: number): void {
    if (typeof this.target === 'number') {
      let done = 0;
      while (done < len) done += writeSync(this.target, b, off + done, len - done);
    } else {
      this.target.write(Buffer.from(b.subarray(off, off + len)));
    }
  }
}
