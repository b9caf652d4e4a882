/**
 * A neutral, minimal and fast BGP sender/receiver for the propagation benchmark. It shares no code
 * with vce's own speaker (src/bgp) on purpose: the harness must measure every DUT the same way.
 *
 * Owns: raw OPEN/KEEPALIVE/UPDATE bytes (RFC 4271 §4, 4-octet AS RFC 6793, IPv4 unicast only), the
 * deterministic workload (unique prefixes with a realistic length mix, ~10 prefixes per attribute
 * set, one attribute set per UPDATE of at most 4096 bytes), a push framer, a session shell
 * (connect, handshake, keepalives) and the monitor's counter of distinct expected prefixes.
 *
 * Invariants:
 * - The workload is a pure function of (N, seed): the same bytes on every run and every machine.
 * - The whole UPDATE stream is built before t0; sending is only socket writes of ~1 MiB slices that
 *   wait for 'drain' (back-pressure), so the tester costs almost no CPU while measured.
 * - The monitor does no allocation per prefix: NLRI are looked up in an open-addressing table on
 *   one Uint32Array (address, length+1 | seen bit), filled before t0 with the expected prefixes.
 */
import { connect, type Socket } from 'node:net';

// ---------------------------------------------------------------- constants (RFC 4271 §4)
export const BGP_HEADER = 19;
export const BGP_MAX = 4096;
export const MSG_OPEN = 1;
export const MSG_UPDATE = 2;
export const MSG_NOTIFICATION = 3;
export const MSG_KEEPALIVE = 4;

/** Dotted quad -> unsigned 32-bit. */
export function ip4(s: string): number {
  const p = s.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255))
    throw new Error(`bad IPv4 ${s}`);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

export function fmt4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function header(buf: Uint8Array, off: number, len: number, type: number): void {
  buf.fill(0xff, off, off + 16);
  buf[off + 16] = len >>> 8;
  buf[off + 17] = len & 255;
  buf[off + 18] = type;
}

/** OPEN with capabilities MP (IPv4 unicast, RFC 4760), route refresh (RFC 2918), 4-octet AS (RFC 6793). */
export function encodeOpen(asn: number, holdTime: number, bgpId: number): Uint8Array {
  const caps = [1, 4, 0, 1, 0, 1, 2, 0, 65, 4, asn >>> 24, (asn >>> 16) & 255, (asn >>> 8) & 255, asn & 255];
  const len = BGP_HEADER + 10 + 2 + caps.length;
  const b = new Uint8Array(len);
  header(b, 0, len, MSG_OPEN);
  const my = asn > 0xffff ? 23456 : asn; // AS_TRANS, RFC 6793 §9
  b.set([4, my >>> 8, my & 255, holdTime >>> 8, holdTime & 255], 19);
  b.set([bgpId >>> 24, (bgpId >>> 16) & 255, (bgpId >>> 8) & 255, bgpId & 255], 24);
  b[28] = 2 + caps.length; // optional parameters length
  b[29] = 2; // capabilities, RFC 5492 §4
  b[30] = caps.length;
  b.set(caps, 31);
  return b;
}

export function encodeKeepalive(): Uint8Array {
  const b = new Uint8Array(BGP_HEADER);
  header(b, 0, BGP_HEADER, MSG_KEEPALIVE);
  return b;
}

// ---------------------------------------------------------------- deterministic workload
/** mulberry32: small, fast, good enough for workload shapes. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

function hash(addr: number, len: number): number {
  let h = Math.imul(addr ^ Math.imul(len + 1, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * A set of IPv4 prefixes on one Uint32Array: slot i holds [address, (length + 1) | SEEN].
 * `markSeen` returns 1 the first time an expected prefix is seen, 0 for repeats, -1 when unexpected.
 */
export class PrefixSet {
  private readonly slots: Uint32Array;
  private readonly mask: number;
  size = 0;
  constructor(expected: number) {
    let cap = 1024;
    while (cap < expected * 2) cap *= 2;
    this.slots = new Uint32Array(cap * 2);
    this.mask = cap - 1;
  }
  /** Adds; false when already present. */
  add(addr: number, len: number): boolean {
    const s = this.slots;
    let i = hash(addr, len) & this.mask;
    while (true) {
      const tag = s[i * 2 + 1]!;
      if (tag === 0) {
        s[i * 2] = addr;
        s[i * 2 + 1] = len + 1;
        this.size++;
        return true;
      }
      if ((tag & 0xff) === len + 1 && s[i * 2] === addr) return false;
      i = (i + 1) & this.mask;
    }
  }
  markSeen(addr: number, len: number): number {
    const s = this.slots;
    let i = hash(addr, len) & this.mask;
    while (true) {
      const tag = s[i * 2 + 1]!;
      if (tag === 0) return -1;
      if ((tag & 0xff) === len + 1 && s[i * 2] === addr) {
        if (tag & 0x100) return 0;
        s[i * 2 + 1] = tag | 0x100;
        return 1;
      }
      i = (i + 1) & this.mask;
    }
  }
  clearSeen(): void {
    const s = this.slots;
    for (let i = 1; i < s.length; i += 2) s[i] = s[i]! & 0xff;
  }
}

export interface Workload {
  readonly n: number;
  readonly seed: number;
  /** Concatenated UPDATE messages. */
  readonly stream: Uint8Array;
  readonly updates: number;
  readonly attributeSets: number;
  /** The N prefixes, for the monitor. */
  readonly expected: PrefixSet;
  /** Prefix length histogram (index = length). */
  readonly lengths: number[];
}

const ORIGIN_AS = 65001;

/**
 * N unique IPv4 prefixes (75 % /24, 20 % /16-/23, 5 % /25-/32; first octet 1-223 without 10 and 127)
 * in UPDATEs of 5-15 prefixes (mean 10) that each carry a distinct attribute set: ORIGIN, AS_PATH of
 * 2-6 4-octet ASNs starting with the tester's AS, NEXT_HOP = `nextHop`, MED on half, 1-4
 * COMMUNITIES on 40 %.
 */
export function buildWorkload(n: number, seed: number, nextHop: number): Workload {
  const rnd = prng(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
  const expected = new PrefixSet(n);
  const lengths = new Array<number>(33).fill(0);
  const addrs = new Uint32Array(n);
  const lens = new Uint8Array(n);
  for (let k = 0; k < n;) {
    const r = rnd();
    const len = r < 0.75 ? 24 : r < 0.95 ? int(16, 23) : int(25, 32);
    let first = int(1, 223);
    if (first === 10 || first === 127) first = 11;
    const addr = (((first << 24) | int(0, 0xffffff)) & mask(len)) >>> 0;
    if (!expected.add(addr, len)) continue;
    addrs[k] = addr;
    lens[k] = len;
    lengths[len]!++;
    k++;
  }

  // Messages are built into a buffer sized for the worst case, then trimmed by a view.
  const maxSets = n; // at least one prefix per set
  const out = new Uint8Array(n * 5 + maxSets * (BGP_HEADER + 4 + 4 + 3 + 2 + 6 * 4 + 3 + 7 + 7 + 3 + 16));
  let o = 0;
  const seen = new Set<string>();
  let sets = 0;
  for (let k = 0; k < n;) {
    const count = Math.min(n - k, int(5, 15));
    // A distinct attribute set (checked by its key; workload generation is not timed).
    let path: number[];
    let med: number | undefined;
    let comms: number[];
    let origin: number;
    for (;;) {
      path = [ORIGIN_AS];
      const hops = int(1, 5);
      for (let h = 0; h < hops; h++) path.push(rnd() < 0.7 ? int(1, 64495) : int(131072, 4199999999));
      med = rnd() < 0.5 ? int(0, 1000) : undefined;
      comms = [];
      if (rnd() < 0.4) {
        const nc = int(1, 4);
        for (let c = 0; c < nc; c++)
          comms.push(((path[int(0, path.length - 1)]! & 0xffff) * 65536 + int(1, 999)) >>> 0);
      }
      origin = rnd() < 0.9 ? 0 : 2;
      const key = `${path.join(' ')}|${med}|${comms.join(' ')}|${origin}`;
      if (!seen.has(key)) {
        seen.add(key);
        break;
      }
    }
    const start = o;
    o += BGP_HEADER;
    out[o++] = 0; // withdrawn routes length
    out[o++] = 0;
    const attrLenAt = o;
    o += 2;
    // ORIGIN (RFC 4271 §5.1.1)
    out.set([0x40, 1, 1, origin], o);
    o += 4;
    // AS_PATH: one AS_SEQUENCE of 4-octet ASNs (RFC 6793)
    out.set([0x40, 2, 2 + path.length * 4, 2, path.length], o);
    o += 5;
    for (const a of path) {
      out.set([a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255], o);
      o += 4;
    }
    // NEXT_HOP
    out.set([0x40, 3, 4, nextHop >>> 24, (nextHop >>> 16) & 255, (nextHop >>> 8) & 255, nextHop & 255], o);
    o += 7;
    if (med !== undefined) {
      out.set([0x80, 4, 4, med >>> 24, (med >>> 16) & 255, (med >>> 8) & 255, med & 255], o);
      o += 7;
    }
    if (comms.length > 0) {
      out.set([0xc0, 8, comms.length * 4], o);
      o += 3;
      for (const c of comms) {
        out.set([c >>> 24, (c >>> 16) & 255, (c >>> 8) & 255, c & 255], o);
        o += 4;
      }
    }
    const attrLen = o - attrLenAt - 2;
    out[attrLenAt] = attrLen >>> 8;
    out[attrLenAt + 1] = attrLen & 255;
    for (let c = 0; c < count; c++, k++) {
      const len = lens[k]!;
      const a = addrs[k]!;
      out[o++] = len;
      const nb = (len + 7) >> 3;
      for (let b = 0; b < nb; b++) out[o++] = (a >>> (24 - 8 * b)) & 255;
    }
    const msgLen = o - start;
    if (msgLen > BGP_MAX) throw new Error(`UPDATE of ${msgLen} bytes`);
    header(out, start, msgLen, MSG_UPDATE);
    sets++;
  }
  return { n, seed, stream: out.subarray(0, o), updates: sets, attributeSets: sets, expected, lengths };
}

// ---------------------------------------------------------------- framing and counting
export type MessageHandler = (type: number, buf: Uint8Array, start: number, end: number) => void;

/**
 * Push framer: calls `onMessage` for each complete message with its bounds in a buffer it owns for
 * the duration of the call. Only a message split across chunks is copied (into a 64 KiB scratch).
 */
export class Framer {
  private readonly scratch = new Uint8Array(65536);
  private have = 0;
  constructor(private readonly onMessage: MessageHandler) {}

  push(chunk: Uint8Array): void {
    let off = 0;
    if (this.have > 0) {
      const sc = this.scratch;
      if (this.have < BGP_HEADER) {
        const take = Math.min(BGP_HEADER - this.have, chunk.length);
        sc.set(chunk.subarray(0, take), this.have);
        this.have += take;
        off = take;
        if (this.have < BGP_HEADER) return;
      }
      const len = (sc[16]! << 8) | sc[17]!;
      if (len < BGP_HEADER) throw new Error(`bad BGP message length ${len}`);
      const take = Math.min(len - this.have, chunk.length - off);
      sc.set(chunk.subarray(off, off + take), this.have);
      this.have += take;
      off += take;
      if (this.have < len) return;
      this.have = 0;
      this.onMessage(sc[18]!, sc, 0, len);
    }
    const end = chunk.length;
    while (end - off >= BGP_HEADER) {
      const len = (chunk[off + 16]! << 8) | chunk[off + 17]!;
      if (len < BGP_HEADER) throw new Error(`bad BGP message length ${len}`);
      if (end - off < len) break;
      this.onMessage(chunk[off + 18]!, chunk, off, off + len);
      off += len;
    }
    if (off < end) {
      this.scratch.set(chunk.subarray(off, end), 0);
      this.have = end - off;
    }
  }
}

/** Counts NLRI of UPDATEs against the expected set (RFC 4271 §4.3: NLRI follow the attributes). */
export class NlriCounter {
  seen = 0;
  repeats = 0;
  unexpected = 0;
  withdrawn = 0;
  updates = 0;
  constructor(private readonly expected: PrefixSet) {}

  update(buf: Uint8Array, start: number, end: number): void {
    this.updates++;
    let o = start + BGP_HEADER;
    const wl = (buf[o]! << 8) | buf[o + 1]!;
    if (wl > 0) this.withdrawn++;
    o += 2 + wl;
    const al = (buf[o]! << 8) | buf[o + 1]!;
    o += 2 + al;
    const set = this.expected;
    while (o < end) {
      const len = buf[o++]!;
      let a = 0;
      if (len > 24) {
        a = ((buf[o]! << 24) | (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!) >>> 0;
        o += 4;
      } else if (len > 16) {
        a = ((buf[o]! << 24) | (buf[o + 1]! << 16) | (buf[o + 2]! << 8)) >>> 0;
        o += 3;
      } else if (len > 8) {
        a = ((buf[o]! << 24) | (buf[o + 1]! << 16)) >>> 0;
        o += 2;
      } else if (len > 0) {
        a = (buf[o]! << 24) >>> 0;
        o += 1;
      }
      const r = set.markSeen(a, len);
      if (r === 1) this.seen++;
      else if (r === 0) this.repeats++;
      else this.unexpected++;
    }
  }
}

// ---------------------------------------------------------------- session shell
export interface PeerOptions {
  readonly asn: number;
  readonly bgpId: number;
  readonly localAddress: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly holdTime?: number;
}

/** Reads smaller than this pause the socket for READ_COALESCE_MS (see `Peer`). */
const SMALL_READ = 16 * 1024;
/** The most a pause delays the monitor's view of the stream (so t1 may be this much late). */
export const READ_COALESCE_MS = 1;

export class SessionError extends Error {
  override readonly name = 'SessionError';
}

/**
 * A client BGP session: connects (retrying until `deadline`), exchanges OPEN/KEEPALIVE, then hands
 * every message to `onMessage`; sends KEEPALIVEs every holdTime/3. No hold timer of its own: the
 * harness has a run timeout instead.
 */
export class Peer {
  socket: Socket | undefined;
  established = false;
  private keepalive: NodeJS.Timeout | undefined;
  private closed = false;
  bytesIn = 0;
  private readonly rxBuffer = new Uint8Array(256 * 1024);
  private resumeScheduled = false;
  onMessage: MessageHandler = () => undefined;
  onError: (e: Error) => void = () => undefined;

  constructor(private readonly opts: PeerOptions) {}

  /** Resolves when Established; rejects after `deadline` (ms since epoch) or when `alive()` fails. */
  async establish(deadline: number, alive: () => string | undefined): Promise<void> {
    let lastErr = 'no attempt';
    while (Date.now() < deadline && !this.closed) {
      const dead = alive();
      if (dead !== undefined) throw new SessionError(dead);
      try {
        await this.tryOnce(Math.min(deadline, Date.now() + 5000));
        return;
      } catch (e) {
        lastErr = (e as Error).message;
        this.socket?.destroy();
        this.socket = undefined;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    throw new SessionError(`${this.opts.localAddress}: session not established: ${lastErr}`);
  }

  private tryOnce(deadline: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const o = this.opts;
      const hold = o.holdTime ?? 180;
      let gotOpen = false;
      let keepalive: NodeJS.Timeout | undefined;
      let settled = false;
      const fail = (e: Error): void => {
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          reject(e);
        } else this.onError(e);
      };
      const timer = setTimeout(
        () => fail(new SessionError('handshake timeout')),
        Math.max(1, deadline - Date.now()),
      );
      const framer = new Framer((type, buf, start, end) => {
        if (this.established) {
          if (type === MSG_NOTIFICATION) {
            fail(new SessionError(`NOTIFICATION ${buf[start + 19]}/${buf[start + 20]} from the DUT`));
            return;
          }
          this.onMessage(type, buf, start, end);
          return;
        }
        if (type === MSG_OPEN) {
          gotOpen = true;
          const theirHold = (buf[start + 22]! << 8) | buf[start + 23]!;
          const h = Math.min(hold, theirHold);
          sock.write(encodeKeepalive());
          if (h > 0) {
            keepalive = setInterval(() => sock.write(encodeKeepalive()), Math.max(1000, (h * 1000) / 3));
            keepalive.unref();
            this.keepalive = keepalive;
          }
        } else if (type === MSG_KEEPALIVE && gotOpen) {
          this.established = true;
          settled = true;
          clearTimeout(timer);
          resolve();
        } else if (type === MSG_NOTIFICATION) {
          fail(new SessionError(`NOTIFICATION ${buf[start + 19]}/${buf[start + 20]} during the handshake`));
        }
      });
      // `onread` reads into one reused buffer: no Buffer and no stream event per read, which matters
      // for DUTs that send one small UPDATE per prefix (GoBGP: 1M reads at N = 1M).
      const onread = {
        buffer: this.rxBuffer,
        callback: (n: number, buf: Uint8Array): boolean => {
          this.bytesIn += n;
          try {
            framer.push(buf.subarray(0, n));
          } catch (e) {
            fail(e as Error);
          }
          // A DUT that trickles small segments would cost one event-loop turn and two syscalls each
          // (GoBGP: ~6 us CPU per UPDATE). After a small read, pause for READ_COALESCE_MS so that the
          // kernel gathers the next ones: bounded extra latency, far less harness CPU.
          if (n < SMALL_READ && !this.resumeScheduled) {
            this.resumeScheduled = true;
            setTimeout(() => {
              this.resumeScheduled = false;
              this.socket?.resume();
            }, READ_COALESCE_MS);
            return false;
          }
          return true;
        },
      };
      const sock = connect(
        { host: o.remoteAddress, port: o.remotePort, localAddress: o.localAddress, onread },
        () => {
          sock.write(encodeOpen(o.asn, hold, o.bgpId));
        },
      );
      this.socket = sock;
      sock.on('error', (e) => fail(e));
      sock.on('close', () => {
        if (keepalive !== undefined) clearInterval(keepalive);
        // A socket of an earlier, failed attempt is no concern of the current session.
        if (!this.closed && this.socket === sock)
          fail(new SessionError(`${o.localAddress}: connection closed by the DUT`));
      });
      sock.setNoDelay(true);
    });
  }

  /** Writes `stream` in slices of `slice` bytes, waiting for 'drain' whenever the socket says so. */
  async send(stream: Uint8Array, slice = 1 << 20): Promise<void> {
    const sock = this.socket;
    if (sock === undefined) throw new SessionError('not connected');
    for (let off = 0; off < stream.length; off += slice) {
      if (this.closed) throw new SessionError('closed while sending');
      const ok = sock.write(stream.subarray(off, Math.min(stream.length, off + slice)));
      if (!ok) {
        await new Promise<void>((resolve, reject) => {
          const onDrain = (): void => {
            sock.off('close', onClose);
            resolve();
          };
          const onClose = (): void => {
            sock.off('drain', onDrain);
            reject(new SessionError('closed while sending'));
          };
          sock.once('drain', onDrain);
          sock.once('close', onClose);
        });
      }
    }
  }

  close(): void {
    this.closed = true;
    if (this.keepalive !== undefined) clearInterval(this.keepalive);
    this.socket?.destroy();
    this.socket = undefined;
  }
}
