/**
 * The trivial DUT: a BGP byte relay that measures the harness itself. It accepts both sessions on
 * --address:--port, answers OPEN with OPEN + KEEPALIVE (AS 65000), and once the tester's session is
 * up pipes the tester's bytes to the monitor unchanged (with back-pressure). No parsing after the
 * handshake, no RIB: what it costs is the floor of the harness (sockets + tester + monitor).
 *
 * Usage: node --import tsx bench/bgp-propagation/relay.ts --address 127.0.0.10 --port P --tester 127.0.0.11
 */
import { createServer, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { BGP_HEADER, encodeKeepalive, encodeOpen, ip4, MSG_KEEPALIVE, MSG_OPEN } from './lib.ts';

const { values } = parseArgs({
  options: { address: { type: 'string' }, port: { type: 'string' }, tester: { type: 'string' } },
});
const address = values.address ?? '127.0.0.10';
const port = Number(values.port ?? '1790');
const testerAddr = values.tester ?? '127.0.0.11';

let monitor: Socket | undefined;
const pending: Buffer[] = [];

function forward(tester: Socket, data: Buffer): void {
  if (monitor === undefined) {
    pending.push(data);
    return;
  }
  if (!monitor.write(data)) {
    tester.pause();
    monitor.once('drain', () => tester.resume());
  }
}

/** Runs the handshake on `sock`; calls `up(rest)` with the bytes that followed the peer's KEEPALIVE. */
function handshake(sock: Socket, up: (rest: Buffer) => void): void {
  let acc: Buffer = Buffer.alloc(0);
  let gotOpen = false;
  let done = false;
  sock.write(encodeOpen(65000, 180, ip4(address)));
  sock.on('data', (chunk: Buffer) => {
    if (done) return;
    acc = acc.length === 0 ? chunk : Buffer.concat([acc, chunk]);
    let off = 0;
    while (acc.length - off >= BGP_HEADER) {
      const len = acc.readUInt16BE(off + 16);
      if (acc.length - off < len) break;
      const type = acc[off + 18];
      off += len;
      if (type === MSG_OPEN) {
        gotOpen = true;
        sock.write(encodeKeepalive());
      } else if (type === MSG_KEEPALIVE && gotOpen) {
        done = true;
        up(acc.subarray(off));
        return;
      }
    }
    acc = acc.subarray(off);
  });
}

const server = createServer((sock) => {
  sock.setNoDelay(true);
  sock.on('error', () => sock.destroy());
  const isTester = sock.remoteAddress === testerAddr;
  handshake(sock, (rest) => {
    if (!isTester) {
      monitor = sock;
      for (const b of pending.splice(0)) monitor.write(b);
      // KEEPALIVEs to the monitor every 30 s; the monitor's own messages are ignored.
      setInterval(() => sock.write(encodeKeepalive()), 30_000).unref();
      return;
    }
    setInterval(() => sock.write(encodeKeepalive()), 30_000).unref();
    if (rest.length > 0) forward(sock, rest);
    sock.on('data', (chunk: Buffer) => forward(sock, chunk));
  });
});
server.listen(port, address);
process.on('SIGTERM', () => process.exit(0));
