/**
 * Socket options Node does not expose, set through libc `setsockopt`/`getsockopt` via koffi (FFI):
 * TCP-MD5 signatures (RFC 2385, Linux TCP_MD5SIG), GTSM (RFC 5082: send with TTL/hop limit 255,
 * drop anything that arrived with less than 254: IP_MINTTL / IPV6_MINHOPCOUNT) and a TCP-AO
 * (RFC 5925) availability probe so configuration can fail with a clear message.
 *
 * Owns: the Linux constants and the byte layout of `struct tcp_md5sig` (built as plain bytes,
 * `tcpMd5sigBytes`, so it is testable without a kernel), errno → `SockoptError`, the fd of a Node
 * socket or server (`socketFd`), and `connectTcp`, the only way to get options onto an outgoing
 * socket before its SYN leaves.
 *
 * Where each option must go (Linux):
 * - Passive side: on the LISTENING socket (`socketFd(server)` after 'listening'), one MD5 key per
 *   peer address, before the peer connects: the kernel checks the SYN against the listener's keys
 *   and the accepted socket inherits them. IP_MINTTL / IP_TTL on the listener apply to the SYN
 *   (and SYN-ACK) and are inherited by accepted sockets too.
 * - Active side: before connect(). `net.connect()` creates its fd inside the connect call (libuv
 *   opens the socket lazily; for an IP literal the syscall runs on the next tick, no 'lookup'
 *   event fires), so there is no public moment to set options. `connectTcp` therefore creates
 *   the fd itself (libc `socket()`), sets the options, wraps it with `new net.Socket({ fd })`
 *   (libuv guesses TCP from the fd) and calls `socket.connect()` in the same synchronous call.
 *
 * Invariants:
 * - koffi and libc are loaded lazily on first use: importing this module never fails; on a
 *   platform without glibc's `libc.so.6` every call throws `SockoptError` code 'ENOSYS'.
 * - errno is read with `koffi.errno()` right after the failing call (nothing runs in between).
 * - Linux constants only (checked against linux/tcp.h, linux/in.h, linux/in6.h, x86-64 and arm64
 *   share them); `process.platform !== 'linux'` is 'ENOSYS'.
 */
import { createRequire } from 'node:module';
import net from 'node:net';
import type dgram from 'node:dgram';
import { endianness, constants as osConstants } from 'node:os';
import type Koffi from 'koffi';
import { parseIPv4, parseIPv6 } from './ip.ts';

// ---------------------------------------------------------------------------------------------
// Linux constants

export const AF_INET = 2;
export const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;

const SOL_SOCKET = 1;
const SO_DOMAIN = 39;

export const IPPROTO_IP = 0;
export const IPPROTO_TCP = 6;
export const IPPROTO_IPV6 = 41;

export const IP_TOS = 1;
export const IP_TTL = 2;
export const IPV6_TCLASS = 67;
export const IP_MINTTL = 21;
export const IPV6_UNICAST_HOPS = 16;
export const IPV6_MINHOPCOUNT = 73;

export const TCP_MD5SIG = 14;
export const TCP_MD5SIG_MAXKEYLEN = 80;
/** sizeof(struct tcp_md5sig): sockaddr_storage 128 + u8 + u8 + u16 + u32 + key[80]. */
export const TCP_MD5SIG_SIZE = 216;
export const TCP_AO_INFO = 40;
/** sizeof(struct tcp_ao_info_opt) (linux/tcp.h, aligned(8)). */
const TCP_AO_INFO_SIZE = 48;

// ---------------------------------------------------------------------------------------------
// Errors

/** A failed socket-option operation: `code` is the errno name ('EPERM', 'EINVAL', ...). */
export class SockoptError extends Error {
  override readonly name = 'SockoptError';
  constructor(
    /** errno name ('EINVAL', 'ENOPROTOOPT', ...), or 'ENOSYS' when FFI/libc is unavailable. */
    readonly code: string,
    /** errno value (0 when not from a system call). */
    readonly errno: number,
    /** What was attempted: 'setsockopt(TCP_MD5SIG)', 'socket', 'load libc', ... */
    readonly op: string,
    message: string,
  ) {
    super(message);
  }
}

const ERRNO_NAMES = new Map<number, string>();
for (const [name, value] of Object.entries(osConstants.errno)) {
  if (!ERRNO_NAMES.has(value)) ERRNO_NAMES.set(value, name);
}

function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `ERRNO_${errno}`;
}

function invalid(op: string, message: string): SockoptError {
  return new SockoptError('EINVAL', osConstants.errno.EINVAL, op, `${op}: ${message}`);
}

// ---------------------------------------------------------------------------------------------
// libc through koffi (lazy)

interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  close(fd: number): number;
  setsockopt(fd: number, level: number, name: number, value: Uint8Array, len: number): number;
  getsockopt(fd: number, level: number, name: number, value: Uint8Array, len: Uint32Array): number;
  errno(): number;
}

let libc: Libc | undefined;
let loadError: SockoptError | undefined;

function lib(op: string): Libc {
  if (libc !== undefined) return libc;
  if (loadError === undefined) {
    try {
      if (process.platform !== 'linux') throw new Error(`platform ${process.platform} is not Linux`);
      // CJS entry through createRequire: a synchronous, lazy load (importing this module must
      // not fail where the native addon is missing).
      const koffi = createRequire(import.meta.url)('koffi') as typeof Koffi;
      const so = koffi.load('libc.so.6');
      const socket = so.func('int socket(int, int, int)');
      const close = so.func('int close(int)');
      const setsockopt = so.func('int setsockopt(int, int, int, const void *, uint32_t)');
      const getsockopt = so.func('int getsockopt(int, int, int, void *, void *)');
      libc = {
        socket: (d, t, p) => socket(d, t, p) as number,
        close: (fd) => close(fd) as number,
        setsockopt: (fd, l, n, v, len) => setsockopt(fd, l, n, v, len) as number,
        getsockopt: (fd, l, n, v, len) => getsockopt(fd, l, n, v, len) as number,
        errno: () => koffi.errno(),
      };
      return libc;
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      loadError = new SockoptError(
        'ENOSYS',
        osConstants.errno.ENOSYS,
        'load libc',
        `socket options need koffi and glibc's libc.so.6 on Linux: ${why}`,
      );
    }
  }
  const e = loadError;
  throw new SockoptError(e.code, e.errno, op, `${op}: ${e.message}`);
}

function fail(c: Libc, op: string, fd: number): never {
  const errno = c.errno();
  const code = errnoName(errno);
  throw new SockoptError(code, errno, op, `${op} on fd ${fd} failed: ${code} (errno ${errno})`);
}

function checkFd(fd: number, op: string): void {
  if (!Number.isInteger(fd) || fd < 0) throw invalid(op, `bad file descriptor ${fd}`);
}

const LE = endianness() === 'LE';

function intBytes(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, v, LE);
  return b;
}

function setInt(fd: number, level: number, name: number, value: number, op: string): void {
  checkFd(fd, op);
  const c = lib(op);
  if (c.setsockopt(fd, level, name, intBytes(value), 4) !== 0) fail(c, op, fd);
}

function getInt(fd: number, level: number, name: number, op: string): number {
  checkFd(fd, op);
  const c = lib(op);
  const b = new Uint8Array(4);
  const len = new Uint32Array([4]);
  if (c.getsockopt(fd, level, name, b, len) !== 0) fail(c, op, fd);
  return new DataView(b.buffer).getInt32(0, LE);
}

// ---------------------------------------------------------------------------------------------
// File descriptors of Node sockets

/**
 * The kernel fd behind a connected/connecting `net.Socket` or a listening `net.Server`.
 *
 * Node has no public API for this: `_handle` is the libuv TCP wrap (private, but stable for
 * years and what every FFI/sockopt add-on uses) and its `fd` getter exists on Unix. It is -1
 * (or the handle is missing) before connect()/listen() created the socket and after close.
 */
export function socketFd(s: net.Socket | net.Server): number {
  const handle = (s as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new SockoptError(
      'EBADF',
      osConstants.errno.EBADF,
      'socketFd',
      'socketFd: the socket has no file descriptor (not connected/listening yet, or closed)',
    );
  }
  return fd;
}

/** The address family of a socket fd (getsockopt SO_DOMAIN): 4 or 6. */
export function socketFamily(fd: number): 4 | 6 {
  const d = getInt(fd, SOL_SOCKET, SO_DOMAIN, 'getsockopt(SO_DOMAIN)');
  if (d === AF_INET) return 4;
  if (d === AF_INET6) return 6;
  throw new SockoptError(
    'EAFNOSUPPORT',
    osConstants.errno.EAFNOSUPPORT,
    'socketFamily',
    `fd ${fd} is not an IP socket`,
  );
}

/** A new non-blocking, close-on-exec TCP socket fd (libc `socket()`); the caller owns it. */
export function createTcpFd(family: 4 | 6): number {
  const op = 'socket';
  const c = lib(op);
  const fd = c.socket(family === 6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(c, op, -1);
  return fd;
}

/** Closes an fd this module created and Node does not own (error paths, probes). */
export function closeFd(fd: number): void {
  lib('close').close(fd);
}

// ---------------------------------------------------------------------------------------------
// TCP-MD5 (RFC 2385)

export interface Md5Peer {
  /** Peer IPv4/IPv6 address (the key is per address; the kernel ignores the port). */
  readonly address: string;
  readonly port?: number;
}

/**
 * The bytes of `struct tcp_md5sig` (linux/tcp.h) for `setsockopt(TCP_MD5SIG)`:
 *
 *   0   struct sockaddr_storage tcpm_addr (128): sockaddr_in or sockaddr_in6, family host order
 *   128 u8  tcpm_flags     (0: TCP_MD5SIG ignores it; TCP_MD5SIG_EXT would read it)
 *   129 u8  tcpm_prefixlen (0)
 *   130 u16 tcpm_keylen    (host order; 0 deletes the key)
 *   132 u32 tcpm_ifindex   (0)
 *   136 u8  tcpm_key[80]
 *
 * `socketFamily` is the family of the socket the key goes on: an IPv6 socket (e.g. a dual-stack
 * `::` listener) takes IPv4 peers as IPv4-mapped sockaddr_in6 (the kernel stores them as IPv4
 * keys); an IPv4 socket cannot take an IPv6 peer.
 */
export function tcpMd5sigBytes(
  peer: Md5Peer,
  key: string | Uint8Array | undefined,
  socketFamily: 4 | 6 = peer.address.includes(':') ? 6 : 4,
  littleEndian = LE,
): Uint8Array {
  const op = 'tcp-md5';
  const keyBytes = typeof key === 'string' ? new TextEncoder().encode(key) : (key ?? new Uint8Array(0));
  if (keyBytes.length > TCP_MD5SIG_MAXKEYLEN) {
    throw invalid(
      op,
      `key is ${keyBytes.length} bytes, at most ${TCP_MD5SIG_MAXKEYLEN} (TCP_MD5SIG_MAXKEYLEN)`,
    );
  }
  const port = peer.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw invalid(op, `bad port ${port}`);
  const v6peer = peer.address.includes(':');
  let addr: Uint8Array;
  try {
    addr = v6peer ? parseIPv6(peer.address) : parseIPv4(peer.address);
  } catch {
    throw invalid(op, `not an IP address: ${peer.address}`);
  }
  if (v6peer && socketFamily === 4) {
    throw new SockoptError(
      'EAFNOSUPPORT',
      osConstants.errno.EAFNOSUPPORT,
      op,
      `${op}: IPv6 peer ${peer.address} on an IPv4 socket`,
    );
  }
  const out = new Uint8Array(TCP_MD5SIG_SIZE);
  const dv = new DataView(out.buffer);
  if (socketFamily === 4) {
    // struct sockaddr_in { u16 sin_family; be16 sin_port; be32 sin_addr; u8 zero[8]; }
    dv.setUint16(0, AF_INET, littleEndian);
    dv.setUint16(2, port, false);
    out.set(addr, 4);
  } else {
    // struct sockaddr_in6 { u16 family; be16 port; be32 flowinfo; u8 addr[16]; u32 scope_id; }
    dv.setUint16(0, AF_INET6, littleEndian);
    dv.setUint16(2, port, false);
    if (v6peer) out.set(addr, 8);
    else {
      out[18] = 0xff; // ::ffff:a.b.c.d (RFC 4291 §2.5.5.2)
      out[19] = 0xff;
      out.set(addr, 20);
    }
  }
  dv.setUint16(130, keyBytes.length, littleEndian);
  out.set(keyBytes, 136);
  return out;
}

/**
 * Sets (or with an empty/undefined key removes) the TCP-MD5 key for `peer` on socket `fd`.
 * Removing a key that is not there is a no-op. On a listening socket this must happen before the
 * peer's SYN arrives; on an outgoing socket before connect() (see `connectTcp`).
 */
export function setTcpMd5(fd: number, peer: Md5Peer, key: string | Uint8Array | undefined): void {
  const op = 'setsockopt(TCP_MD5SIG)';
  checkFd(fd, op);
  const bytes = tcpMd5sigBytes(peer, key, socketFamily(fd));
  const c = lib(op);
  if (c.setsockopt(fd, IPPROTO_TCP, TCP_MD5SIG, bytes, bytes.length) !== 0) {
    const removing = key === undefined || key.length === 0;
    if (removing && c.errno() === osConstants.errno.ENOENT) return;
    fail(c, op, fd);
  }
}

// ---------------------------------------------------------------------------------------------
// TTL / GTSM (RFC 5082)

function checkTtl(v: number, min: number, op: string): void {
  if (!Number.isInteger(v) || v < min || v > 255) throw invalid(op, `TTL ${v} not in ${min}..255`);
}

/**
 * Drop received packets whose TTL (IPv4) / hop limit (IPv6) is below `minTtl` (0 disables).
 * On a listener the SYN itself is dropped, so a too-distant peer cannot even connect. GTSM: 254.
 */
export function setMinTtl(fd: number, family: 4 | 6, minTtl: number): void {
  const op = family === 6 ? 'setsockopt(IPV6_MINHOPCOUNT)' : 'setsockopt(IP_MINTTL)';
  checkTtl(minTtl, 0, op);
  if (family === 6) setInt(fd, IPPROTO_IPV6, IPV6_MINHOPCOUNT, minTtl, op);
  else setInt(fd, IPPROTO_IP, IP_MINTTL, minTtl, op);
}

export function getMinTtl(fd: number, family: 4 | 6): number {
  return family === 6
    ? getInt(fd, IPPROTO_IPV6, IPV6_MINHOPCOUNT, 'getsockopt(IPV6_MINHOPCOUNT)')
    : getInt(fd, IPPROTO_IP, IP_MINTTL, 'getsockopt(IP_MINTTL)');
}

/** TTL (IPv4) / unicast hop limit (IPv6) of sent packets. GTSM: 255. */
export function setTtl(fd: number, family: 4 | 6, ttl: number): void {
  const op = family === 6 ? 'setsockopt(IPV6_UNICAST_HOPS)' : 'setsockopt(IP_TTL)';
  checkTtl(ttl, 1, op);
  if (family === 6) setInt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, ttl, op);
  else setInt(fd, IPPROTO_IP, IP_TTL, ttl, op);
}

/** DSCP of sent packets (IP_TOS / IPV6_TCLASS; the two ECN bits stay 0). */
export function setDscp(fd: number, family: 4 | 6, dscp: number): void {
  if (!Number.isInteger(dscp) || dscp < 0 || dscp > 63)
    throw new SockoptError('EINVAL', osConstants.errno.EINVAL, 'setDscp', `DSCP ${dscp} out of range 0..63`);
  if (family === 6) setInt(fd, IPPROTO_IPV6, IPV6_TCLASS, dscp << 2, 'setsockopt(IPV6_TCLASS)');
  else setInt(fd, IPPROTO_IP, IP_TOS, dscp << 2, 'setsockopt(IP_TOS)');
}

/** The kernel fd behind a bound `dgram.Socket` (private handle, as for TCP above). */
export function datagramFd(s: dgram.Socket): number {
  const sym = Object.getOwnPropertySymbols(s).find((x) => x.description === 'state symbol');
  const state = sym === undefined ? undefined : (s as unknown as Record<symbol, { handle?: { fd?: unknown } }>)[sym];
  const fd = state?.handle?.fd;
  if (typeof fd !== 'number' || fd < 0)
    throw new SockoptError('EBADF', osConstants.errno.EBADF, 'datagramFd', 'datagramFd: the socket is not bound');
  return fd;
}

export function getTtl(fd: number, family: 4 | 6): number {
  return family === 6
    ? getInt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 'getsockopt(IPV6_UNICAST_HOPS)')
    : getInt(fd, IPPROTO_IP, IP_TTL, 'getsockopt(IP_TTL)');
}

// ---------------------------------------------------------------------------------------------
// TCP-AO (RFC 5925) probe

let aoAvailable: boolean | undefined;

/**
 * Whether the kernel supports TCP-AO (CONFIG_TCP_AO, Linux ≥ 6.7). Probes once with
 * getsockopt(TCP_AO_INFO) on a throwaway socket: a kernel without TCP-AO answers ENOPROTOOPT;
 * one with it answers ENOENT (no keys yet) or succeeds. False too when FFI is unavailable.
 */
export function tcpAoAvailable(): boolean {
  if (aoAvailable !== undefined) return aoAvailable;
  let fd = -1;
  try {
    const c = lib('getsockopt(TCP_AO_INFO)');
    fd = createTcpFd(4);
    const buf = new Uint8Array(TCP_AO_INFO_SIZE);
    const len = new Uint32Array([TCP_AO_INFO_SIZE]);
    const r = c.getsockopt(fd, IPPROTO_TCP, TCP_AO_INFO, buf, len);
    aoAvailable = r === 0 || c.errno() !== osConstants.errno.ENOPROTOOPT;
  } catch {
    aoAvailable = false;
  } finally {
    if (fd >= 0) closeFd(fd);
  }
  return aoAvailable;
}

// ---------------------------------------------------------------------------------------------
// Outgoing connections with options set before the SYN

export interface TcpConnectOptions {
  readonly host: string; // IP literal
  readonly port: number;
  readonly localAddress?: string;
  readonly localPort?: number;
  /** TCP-MD5 key for `host` (RFC 2385). */
  readonly md5Key?: string | Uint8Array;
  /** TTL / hop limit of sent packets (GTSM: 255). */
  readonly ttl?: number;
  /** Minimum TTL / hop limit accepted (GTSM: 254). */
  readonly minTtl?: number;
}

/**
 * `net.connect` with socket options applied before the SYN is sent: creates the fd with libc,
 * sets MD5/TTL/min-TTL on it, hands it to Node (`new net.Socket({ fd })`) and connects in the
 * same synchronous call. Events and errors are the usual `net.Socket` ones ('connect', 'error'
 * with ECONNREFUSED...). Option errors throw `SockoptError` synchronously, with the fd closed.
 *
 * `manualStart` (an undocumented but long-standing `net.Socket` option) keeps Node from starting
 * to read the not-yet-connected fd in the constructor (which fails with ENOTCONN if connect is
 * late); reading starts on 'connect' as for any socket. Do not call `connect()` again on the
 * returned socket: after a destroy Node would make a fresh fd without the options.
 *
 * With an MD5 key, a closed port is not ECONNREFUSED: the peer's RST is unsigned and the kernel
 * drops it (RFC 2385 §2), so the attempt just waits; callers need their own connect timeout.
 */
export function connectTcp(opts: TcpConnectOptions): net.Socket {
  const family = net.isIP(opts.host);
  if (family !== 4 && family !== 6) throw invalid('connectTcp', `host must be an IP literal: ${opts.host}`);
  const fd = createTcpFd(family);
  let socket: net.Socket;
  try {
    if (opts.md5Key !== undefined && opts.md5Key.length > 0)
      setTcpMd5(fd, { address: opts.host }, opts.md5Key);
    if (opts.ttl !== undefined) setTtl(fd, family, opts.ttl);
    if (opts.minTtl !== undefined) setMinTtl(fd, family, opts.minTtl);
    socket = new net.Socket({ fd, manualStart: true } as net.SocketConstructorOpts);
  } catch (e) {
    closeFd(fd);
    throw e;
  }
  const target: net.TcpSocketConnectOpts = { host: opts.host, port: opts.port };
  if (opts.localAddress !== undefined) target.localAddress = opts.localAddress;
  if (opts.localPort !== undefined) target.localPort = opts.localPort;
  socket.connect(target);
  return socket;
}
