/**
 * TCP-MD5 (RFC 2385) and GTSM (RFC 5082) through src/lib/sockopt.ts against the real kernel and
 * a real FRR bgpd:
 *
 * - Node listener with a per-peer key (on the LISTENING socket) and `connectTcp` clients (key set
 *   before the SYN): same key connects and exchanges bytes; a wrong key or no key never
 *   establishes (the kernel drops the unsigned/badly signed SYN: the client just waits). IPv6 and
 *   an IPv4 peer on a dual-stack `::` listener (IPv4-mapped key) too.
 * - GTSM: a listener with minimum TTL 254 drops SYNs sent with TTL 253 (loopback delivery does
 *   not decrement the TTL) and accepts TTL 255; the same with IPv6 hop limits.
 * - FRR 8.4 with `neighbor X password K` (passive): our socket with K gets FRR's OPEN after
 *   sending ours; a wrong key gets nothing.
 *
 * Every "does not connect" check is bounded: the client is given NO_CONNECT_MS, then destroyed.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOpen } from '../../src/bgp/wire/negotiate.ts';
import { encodeOpen } from '../../src/bgp/wire/open.ts';
import {
  type TcpConnectOptions,
  connectTcp,
  setMinTtl,
  setTcpMd5,
  setTtl,
  socketFd,
} from '../../src/lib/sockopt.ts';
import { freePort, requireDaemon, stopAll, waitFor } from './harness/common.ts';
import { FRR_BGPD, type FrrDaemon, startFrr } from './harness/frr.ts';

const NO_CONNECT_MS = 1500;
const KEY = 'vce-md5-secret';

type Outcome = 'connected' | 'timeout' | `error:${string}`;

/** Connects with `connectTcp` and reports what happened within `ms`; always destroys the socket. */
function attempt(opts: TcpConnectOptions, ms = NO_CONNECT_MS): Promise<Outcome> {
  const s = connectTcp(opts);
  return new Promise<Outcome>((resolve) => {
    const done = (o: Outcome): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => done('timeout'), ms);
    s.once('connect', () => done('connected'));
    s.once('error', (e: NodeJS.ErrnoException) => done(`error:${e.code ?? e.message}`));
  });
}

/** Connects, sends `ping`, resolves with what the echo server answered. */
function echo(opts: TcpConnectOptions): Promise<string> {
  const s = connectTcp(opts);
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no echo from ${opts.host}:${opts.port} within 5 s`));
    }, 5000);
    s.once('connect', () => s.write('ping'));
    s.once('data', (d) => {
      clearTimeout(timer);
      s.destroy();
      resolve(String(d));
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

interface Echo {
  server: net.Server;
  fd: number;
  port: number;
}

async function echoServer(host: string): Promise<Echo> {
  const server = net.createServer((c) => {
    c.on('error', () => undefined);
    c.on('data', (d) => c.end(`echo:${String(d)}`));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return { server, fd: socketFd(server), port: (server.address() as net.AddressInfo).port };
}

function closeServer(e: Echo | undefined): Promise<void> {
  return new Promise((resolve) => (e === undefined ? resolve() : e.server.close(() => resolve())));
}

describe.skipIf(process.platform !== 'linux')('TCP-MD5 between Node sockets', () => {
  const S = '127.0.0.61';
  const C = '127.0.0.62';
  const C2 = '127.0.0.63';
  let v4: Echo | undefined;
  let v6: Echo | undefined;
  let dual: Echo | undefined;

  beforeAll(async () => {
    v4 = await echoServer(S);
    setTcpMd5(v4.fd, { address: C }, KEY); // keys go on the listening socket, per peer
    v6 = await echoServer('::1');
    setTcpMd5(v6.fd, { address: '::1' }, KEY);
    dual = await echoServer('::');
    setTcpMd5(dual.fd, { address: C2 }, KEY); // IPv4 peer of an IPv6 socket: IPv4-mapped key
  });
  afterAll(async () => {
    await Promise.all([closeServer(v4), closeServer(v6), closeServer(dual)]);
  });

  it('the same key on both ends: connects and exchanges bytes', async () => {
    expect(await echo({ host: S, port: v4!.port, localAddress: C, md5Key: KEY })).toBe('echo:ping');
  });

  it('a wrong key does not establish', async () => {
    expect(await attempt({ host: S, port: v4!.port, localAddress: C, md5Key: 'wrong' })).toBe('timeout');
  });

  it('no key does not establish when the listener expects one', async () => {
    expect(await attempt({ host: S, port: v4!.port, localAddress: C })).toBe('timeout');
  });

  it('a key the listener does not expect does not establish', async () => {
    expect(await attempt({ host: S, port: v4!.port, localAddress: C2, md5Key: KEY })).toBe('timeout');
  });

  it('removing the key on the listener lets unsigned peers in again', async () => {
    const e = await echoServer(S);
    try {
      setTcpMd5(e.fd, { address: C }, KEY);
      setTcpMd5(e.fd, { address: C }, undefined);
      expect(await echo({ host: S, port: e.port, localAddress: C })).toBe('echo:ping');
    } finally {
      await closeServer(e);
    }
  });

  it('IPv6: same key connects, wrong key does not', async () => {
    expect(await echo({ host: '::1', port: v6!.port, md5Key: KEY })).toBe('echo:ping');
    expect(await attempt({ host: '::1', port: v6!.port, md5Key: 'wrong' })).toBe('timeout');
  });

  it('an IPv4 peer of a dual-stack listener (IPv4-mapped key)', async () => {
    expect(await echo({ host: S, port: dual!.port, localAddress: C2, md5Key: KEY })).toBe('echo:ping');
    expect(await attempt({ host: S, port: dual!.port, localAddress: C2, md5Key: 'wrong' })).toBe('timeout');
  });
});

describe.skipIf(process.platform !== 'linux')('GTSM (RFC 5082) on Node sockets', () => {
  let v4: Echo | undefined;
  let v6: Echo | undefined;

  beforeAll(async () => {
    v4 = await echoServer('127.0.0.64');
    setMinTtl(v4.fd, 4, 254);
    setTtl(v4.fd, 4, 255); // the SYN-ACK and accepted sockets send with 255 too
    v6 = await echoServer('::1');
    setMinTtl(v6.fd, 6, 254);
    setTtl(v6.fd, 6, 255);
  });
  afterAll(async () => {
    await Promise.all([closeServer(v4), closeServer(v6)]);
  });

  it('IPv4: TTL 253 is dropped, TTL 255 connects (and the reply passes minimum TTL 254)', async () => {
    const to = { host: '127.0.0.64', port: v4!.port, localAddress: '127.0.0.65' };
    expect(await attempt({ ...to, ttl: 253 })).toBe('timeout');
    expect(await echo({ ...to, ttl: 255, minTtl: 254 })).toBe('echo:ping');
  });

  it('IPv6: hop limit 253 is dropped, 255 connects', async () => {
    expect(await attempt({ host: '::1', port: v6!.port, ttl: 253 })).toBe('timeout');
    expect(await echo({ host: '::1', port: v6!.port, ttl: 255, minTtl: 254 })).toBe('echo:ping');
  });

  it('MD5 and GTSM together', async () => {
    const e = await echoServer('127.0.0.64');
    try {
      setTcpMd5(e.fd, { address: '127.0.0.66' }, KEY);
      setMinTtl(e.fd, 4, 254);
      const to = { host: '127.0.0.64', port: e.port, localAddress: '127.0.0.66', md5Key: KEY };
      expect(await attempt({ ...to, ttl: 64 })).toBe('timeout');
      expect(await echo({ ...to, ttl: 255 })).toBe('echo:ping');
    } finally {
      await closeServer(e);
    }
  });
});

const frrAvailable = requireDaemon(FRR_BGPD) && requireDaemon('vtysh');

describe.skipIf(!frrAvailable)('TCP-MD5 with FRR bgpd (neighbor password)', () => {
  const F = { addr: '127.0.0.67', asn: 65067 };
  const US = { addr: '127.0.0.68', asn: 65068 };
  let frr: FrrDaemon | undefined;
  let port = 0;

  beforeAll(async () => {
    port = await freePort(F.addr);
    frr = await startFrr({
      asn: F.asn,
      routerId: F.addr,
      listenAddress: F.addr,
      listenPort: port,
      neighbors: [
        { address: US.addr, peerAsn: US.asn, passive: true, families: ['ipv4-unicast'], password: KEY },
      ],
    });
    // bgpd sets the key on its listening socket once the neighbour is configured.
    await waitFor(
      async () =>
        (await frr!.vtysh(`show bgp neighbors ${US.addr}`)).includes('BGP state') ? true : undefined,
      {
        what: `FRR neighbour ${US.addr} configured`,
      },
    );
  });
  afterAll(async () => {
    await stopAll(frr);
  });

  /** Connects with `md5Key`, sends our OPEN, resolves with the first message FRR sends. */
  function firstMessageFromFrr(md5Key: string, ms: number): Promise<Uint8Array | 'timeout'> {
    const s = connectTcp({ host: F.addr, port, localAddress: US.addr, md5Key });
    const open = encodeOpen(
      buildOpen({ localAsn: US.asn, routerId: 0x7f000044, holdTime: 90, families: ['ipv4-unicast'] }),
    );
    return new Promise((resolve, reject) => {
      let buf = Buffer.alloc(0);
      const done = (r: Uint8Array | 'timeout'): void => {
        clearTimeout(timer);
        s.destroy();
        resolve(r);
      };
      const timer = setTimeout(() => done('timeout'), ms);
      s.once('connect', () => s.write(open));
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 19 && buf.length >= buf.readUInt16BE(16))
          done(buf.subarray(0, buf.readUInt16BE(16)));
      });
      s.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  it('the same key: FRR answers with its OPEN', async () => {
    const msg = await firstMessageFromFrr(KEY, 10_000);
    expect(msg).not.toBe('timeout');
    const m = Buffer.from(msg as Uint8Array);
    expect(m.subarray(0, 16).every((b) => b === 0xff)).toBe(true);
    expect(m[18]).toBe(1); // OPEN
    expect(m[19]).toBe(4); // version
    expect(m.readUInt16BE(20)).toBe(F.asn);
  });

  it('a wrong key: no connection at all', async () => {
    expect(await firstMessageFromFrr('not-the-key', NO_CONNECT_MS)).toBe('timeout');
  });
});
