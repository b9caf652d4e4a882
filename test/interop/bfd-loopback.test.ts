/**
 * The BFD UDP shell (src/bfd/transport.ts) against itself over real sockets on loopback: two
 * BfdManagers on 127.0.0.141 / 127.0.0.142 with non-standard ports (so this file never competes
 * with bfdd for 3784). Proves binding, source ports, demultiplexing, timers and release.
 */
import { createSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { BfdManager, type BfdStateChange } from '../../src/bfd/transport.ts';
import { encodeBfd } from '../../src/bfd/packet.ts';
import { type WaitForOptions, freePort, waitFor } from './harness/common.ts';

/** `waitFor` for synchronous checks. */
function waitSync<T>(fn: () => T | undefined, opts: WaitForOptions): Promise<T> {
  return waitFor(() => Promise.resolve(fn()), opts);
}

const A = '127.0.0.141';
const B = '127.0.0.142';
const managers: BfdManager[] = [];

afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()));
});

async function pair(multihop: boolean): Promise<{ a: BfdManager; b: BfdManager; ev: BfdStateChange[] }> {
  const port = await freePort(A); // a TCP-free port is very likely UDP-free too; both sides use it
  const opts = multihop ? { multihopPort: port } : { singleHopPort: port };
  const a = new BfdManager(opts);
  const b = new BfdManager(opts);
  managers.push(a, b);
  const ev: BfdStateChange[] = [];
  for (const m of [a, b]) {
    m.on('up', (c) => ev.push(c));
    m.on('down', (c) => ev.push(c));
  }
  const t = { desiredMinTxUs: 50_000, requiredMinRxUs: 50_000, detectMult: 3, multihop };
  await a.acquire(B, { localAddress: A, ...t });
  await b.acquire(A, { localAddress: B, ...t });
  return { a, b, ev };
}

describe('BfdManager over loopback UDP', () => {
  it.each([false, true])(
    'comes up, shares by refcount, reports AdminDown on release (multihop %s)',
    async (multihop) => {
      const { a, b, ev } = await pair(multihop);
      await waitSync(
        () =>
          a.get(B, { localAddress: A, multihop })?.state === 'Up' &&
          b.get(A, { localAddress: B, multihop })?.state === 'Up'
            ? true
            : undefined,
        { what: 'both Up', timeoutMs: 5000 },
      );
      expect(ev.filter((e) => e.to === 'Up')).toHaveLength(2);
      const info = a.get(B, { localAddress: A, multihop })!;
      expect(info.negotiated.txIntervalUs).toBeGreaterThanOrEqual(50_000);
      expect(a.stats.malformed + a.stats.noSession).toBe(0);
      // refcounting: a second acquire shares the session; one release keeps it
      await a.acquire(B, { localAddress: A, multihop });
      a.release(B, { localAddress: A, multihop });
      expect(a.get(B, { localAddress: A, multihop })?.refs).toBe(1);
      a.release(B, { localAddress: A, multihop });
      expect(a.get(B, { localAddress: A, multihop })).toBeUndefined();
      const down = await waitSync(() => ev.find((e) => e.peer === A && e.to === 'Down'), {
        what: 'B sees A AdminDown',
        timeoutMs: 2000,
      });
      expect(down.diag).toBe(3); // neighbor signaled session down
      expect(down.diagName).toBe('Neighbor Signaled Session Down');
    },
  );

  it('counts garbage and packets for unknown sessions without throwing', async () => {
    const { a } = await pair(false);
    const port = (a as unknown as { opts: { singleHopPort: number } }).opts.singleHopPort;
    const s = createSocket('udp4');
    const junk = encodeBfd({
      diag: 0,
      state: 'Up',
      poll: false,
      final: false,
      cpi: false,
      demand: false,
      multipoint: false,
      detectMult: 3,
      myDiscr: 5,
      yourDiscr: 12345,
      desiredMinTxUs: 1,
      requiredMinRxUs: 1,
      requiredMinEchoRxUs: 0,
    });
    await new Promise<void>((r) => s.send(Uint8Array.from([1, 2, 3]), port, A, () => r()));
    await new Promise<void>((r) => s.send(junk, port, A, () => r()));
    s.close();
    await waitSync(() => (a.stats.malformed >= 1 && a.stats.noSession >= 1 ? true : undefined), {
      what: 'counted',
      timeoutMs: 2000,
    });
  });
});
