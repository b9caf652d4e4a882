/**
 * src/lib/sockopt.ts: the exact bytes of `struct tcp_md5sig` (linux/tcp.h) for IPv4, IPv6,
 * IPv4-mapped and big-endian hosts, input validation, and typed errors from real syscalls on
 * bad fds (no network: a loopback listener at most).
 */
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../src/lib/bytes.ts';
import {
  SockoptError,
  TCP_MD5SIG_SIZE,
  connectTcp,
  getMinTtl,
  getTtl,
  setMinTtl,
  setTcpMd5,
  setTtl,
  socketFamily,
  socketFd,
  tcpAoAvailable,
  tcpMd5sigBytes,
} from '../../src/lib/sockopt.ts';

const z = (n: number): string => '00'.repeat(n);
const ascii = (s: string): string => Buffer.from(s, 'ascii').toString('hex');

function caught(fn: () => unknown): SockoptError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SockoptError);
    return e as SockoptError;
  }
  throw new Error('expected a SockoptError');
}

async function withServer<T>(host: string, fn: (srv: net.Server) => T): Promise<T> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, host, resolve));
  try {
    return fn(srv);
  } finally {
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }
}

describe('tcpMd5sigBytes (struct tcp_md5sig, 216 bytes)', () => {
  it('IPv4 peer on an IPv4 socket: sockaddr_in, keylen, key', () => {
    const b = tcpMd5sigBytes({ address: '192.0.2.1', port: 179 }, 'abc', 4, true);
    expect(b.length).toBe(TCP_MD5SIG_SIZE);
    expect(toHex(b)).toBe(
      '0200' + // sin_family AF_INET (host order, LE)
        '00b3' + // sin_port 179 (network order)
        'c0000201' + // sin_addr
        z(120) + // sin_zero + rest of sockaddr_storage (128 total)
        '00' + // tcpm_flags
        '00' + // tcpm_prefixlen
        '0300' + // tcpm_keylen 3 (LE)
        z(4) + // tcpm_ifindex
        ascii('abc') +
        z(77), // tcpm_key[80]
    );
  });

  it('IPv6 peer: sockaddr_in6 (flowinfo, addr at 8, scope_id)', () => {
    const b = tcpMd5sigBytes({ address: '2001:db8::1' }, new Uint8Array([1, 2]), 6, true);
    expect(toHex(b)).toBe(
      '0a00' + // AF_INET6 = 10
        '0000' + // port
        z(4) + // sin6_flowinfo
        '20010db8000000000000000000000001' +
        z(4) + // sin6_scope_id
        z(128 - 28) +
        '0000' +
        '0200' +
        z(4) +
        '0102' +
        z(78),
    );
  });

  it('IPv4 peer on an IPv6 (dual-stack) socket: IPv4-mapped sockaddr_in6', () => {
    const b = tcpMd5sigBytes({ address: '127.0.0.9' }, 'k', 6, true);
    expect(toHex(b.subarray(0, 28))).toBe('0a00' + '0000' + z(4) + z(10) + 'ffff' + '7f000009' + z(4));
    expect(b[130]).toBe(1);
  });

  it('big-endian host: family and keylen in host order, port still network order', () => {
    const b = tcpMd5sigBytes({ address: '10.0.0.1', port: 0x1234 }, 'xy', 4, false);
    expect(toHex(b.subarray(0, 8))).toBe('0002' + '1234' + '0a000001');
    expect(toHex(b.subarray(128, 136))).toBe('0000' + '0002' + z(4));
  });

  it('no key / empty key: keylen 0 (delete)', () => {
    for (const key of [undefined, '', new Uint8Array(0)]) {
      const b = tcpMd5sigBytes({ address: '192.0.2.1' }, key, 4, true);
      expect(toHex(b.subarray(128))).toBe(z(TCP_MD5SIG_SIZE - 128));
    }
  });

  it('the family defaults to the peer address', () => {
    expect(tcpMd5sigBytes({ address: '::1' }, 'k', undefined, true)[0]).toBe(10);
    expect(tcpMd5sigBytes({ address: '127.0.0.1' }, 'k', undefined, true)[0]).toBe(2);
  });

  it('80-byte keys are accepted, 81 bytes are EINVAL (TCP_MD5SIG_MAXKEYLEN)', () => {
    const b = tcpMd5sigBytes({ address: '192.0.2.1' }, 'k'.repeat(80), 4, true);
    expect(b[130]).toBe(80);
    expect(b[215]).toBe('k'.charCodeAt(0));
    const e = caught(() => tcpMd5sigBytes({ address: '192.0.2.1' }, 'k'.repeat(81), 4));
    expect(e).toMatchObject({ code: 'EINVAL', errno: 22, op: 'tcp-md5' });
    expect(e.message).toMatch(/81 bytes, at most 80/);
  });

  it('a UTF-8 key counts bytes, not characters', () => {
    expect(caught(() => tcpMd5sigBytes({ address: '192.0.2.1' }, 'é'.repeat(41), 4)).code).toBe('EINVAL');
  });

  it('bad addresses, ports and families are typed errors', () => {
    expect(caught(() => tcpMd5sigBytes({ address: 'peer.example' }, 'k')).code).toBe('EINVAL');
    expect(caught(() => tcpMd5sigBytes({ address: '300.0.0.1' }, 'k')).code).toBe('EINVAL');
    expect(caught(() => tcpMd5sigBytes({ address: '192.0.2.1', port: 70000 }, 'k')).code).toBe('EINVAL');
    const e = caught(() => tcpMd5sigBytes({ address: '2001:db8::1' }, 'k', 4));
    expect(e).toMatchObject({ code: 'EAFNOSUPPORT', name: 'SockoptError' });
  });
});

describe.skipIf(process.platform !== 'linux')('syscalls (Linux)', () => {
  it('errno becomes a typed SockoptError (EBADF on a closed fd)', () => {
    const e = caught(() => setMinTtl(987_654, 4, 254));
    expect(e).toMatchObject({ code: 'EBADF', errno: 9, op: 'setsockopt(IP_MINTTL)' });
    expect(e.message).toMatch(/fd 987654 failed: EBADF/);
    expect(caught(() => setTcpMd5(987_654, { address: '127.0.0.1' }, 'k')).code).toBe('EBADF');
  });

  it('argument checks happen before any syscall', () => {
    expect(caught(() => setTtl(0, 4, 0)).code).toBe('EINVAL');
    expect(caught(() => setTtl(0, 4, 256)).code).toBe('EINVAL');
    expect(caught(() => setMinTtl(-1, 6, 254)).code).toBe('EINVAL');
    expect(caught(() => connectTcp({ host: 'localhost', port: 179 })).code).toBe('EINVAL');
  });

  it('connectTcp closes its fd when an option is rejected', () => {
    const fds = (): number => readdirSync('/proc/self/fd').length;
    const before = fds();
    for (let i = 0; i < 20; i++) {
      expect(caught(() => connectTcp({ host: '127.0.0.1', port: 1, md5Key: 'k'.repeat(81) })).code).toBe(
        'EINVAL',
      );
      expect(caught(() => connectTcp({ host: '::1', port: 1, ttl: 256 })).code).toBe('EINVAL');
    }
    expect(fds()).toBe(before);
  });

  it('socketFd needs a socket that has an fd', () => {
    expect(caught(() => socketFd(new net.Socket())).code).toBe('EBADF');
    expect(caught(() => socketFd(net.createServer())).code).toBe('EBADF');
  });

  it('TTL and minimum TTL round-trip on an IPv4 listener', async () => {
    await withServer('127.0.0.1', (srv) => {
      const fd = socketFd(srv);
      expect(socketFamily(fd)).toBe(4);
      expect(getMinTtl(fd, 4)).toBe(0);
      setMinTtl(fd, 4, 254);
      setTtl(fd, 4, 255);
      expect(getMinTtl(fd, 4)).toBe(254);
      expect(getTtl(fd, 4)).toBe(255);
      setTcpMd5(fd, { address: '127.0.0.2' }, 'secret');
      setTcpMd5(fd, { address: '127.0.0.2' }, undefined);
      setTcpMd5(fd, { address: '127.0.0.2' }, undefined); // removing twice is a no-op
      expect(caught(() => setTcpMd5(fd, { address: '::1' }, 'k')).code).toBe('EAFNOSUPPORT');
    });
  });

  it('hop limit and minimum hop count round-trip on an IPv6 listener', async () => {
    await withServer('::1', (srv) => {
      const fd = socketFd(srv);
      expect(socketFamily(fd)).toBe(6);
      setMinTtl(fd, 6, 254);
      setTtl(fd, 6, 255);
      expect(getMinTtl(fd, 6)).toBe(254);
      expect(getTtl(fd, 6)).toBe(255);
      setTcpMd5(fd, { address: '::1' }, 'secret');
      setTcpMd5(fd, { address: '127.0.0.2' }, 'secret'); // IPv4-mapped on an IPv6 socket
    });
  });

  it('tcpAoAvailable answers a boolean (false on a kernel without CONFIG_TCP_AO)', () => {
    expect(typeof tcpAoAvailable()).toBe('boolean');
    expect(tcpAoAvailable()).toBe(tcpAoAvailable()); // cached
  });
});
