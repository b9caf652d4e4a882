/**
 * Captures real BGP sessions from GoBGP 3.10, BIRD 2.0.12 and FRR 8.4 bgpd into
 * `test/corpus/<daemon>-session.json`, the vectors `test/unit/corpus.test.ts` decodes.
 *
 * Run: `npx tsx test/corpus/capture.ts [gobgp|bird|frr ...]` (default: all three).
 *
 * For each daemon: start it with the interop harness, configured with one eBGP neighbour (us, AS
 * 65010) that it dials on a raw TCP listener of this script, with a handful of routes carrying
 * communities, large and extended communities, MED, a prepended AS path and (gobgp, BIRD) VPN
 * routes. The script plays a minimal peer by hand: sends our OPEN (buildOpen + encodeOpen) on
 * accept, a KEEPALIVE after the daemon's OPEN, records every message both ways (raw bytes,
 * header included), waits for End-of-RIB of every family (or 3 s of quiet), sends a
 * ROUTE-REFRESH for IPv4 unicast and waits for the second table (EoRR or 2 s of quiet), then
 * sends Cease/Administrative Shutdown and records what comes back until the socket closes.
 *
 * BIRD 2.0.12 answers the ROUTE-REFRESH by re-evaluating its routes but sends nothing when they
 * did not change (and no BoRR/EoRR despite Enhanced Route Refresh); gobgp and FRR re-send them.
 *
 * The daemon ASNs are 4-octet (> 65535) so OPENs carry AS_TRANS and AS_PATHs need 4-byte ASNs.
 */
import { writeFile } from 'node:fs/promises';
import { type Socket, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toHex } from '../../src/lib/bytes.ts';
import { ipv4ToNumber, parseIPv4 } from '../../src/lib/ip.ts';
import { type AfiSafiName, MessageType, afiSafiCode, messageTypeName } from '../../src/bgp/wire/constants.ts';
import { buildOpen } from '../../src/bgp/wire/negotiate.ts';
import { encodeKeepalive, encodeShutdownNotification } from '../../src/bgp/wire/notification.ts';
import { encodeOpen } from '../../src/bgp/wire/open.ts';
import { encodeRouteRefresh } from '../../src/bgp/wire/route-refresh.ts';
import { isEndOfRib, splitUpdate } from '../../src/bgp/wire/update.ts';
import { startBird } from '../interop/harness/bird.ts';
import { type Family, type RouteAttrs, freePort, run, sleepMs } from '../interop/harness/common.ts';
import { FRR_BGPD, startFrr } from '../interop/harness/frr.ts';
import { startGobgp } from '../interop/harness/gobgp.ts';

const OUT_DIR = dirname(fileURLToPath(import.meta.url));
const OUR_ASN = 65010;
const OUR_ROUTER_ID = '10.255.0.10';
const HOLD_TIME = 90;

export interface CapturedMessage {
  dir: 'rx' | 'tx';
  /** Message type name, for readers of the JSON (the hex is authoritative). */
  type: string;
  hex: string;
}

export interface CapturedSession {
  daemon: string;
  version: string;
  capturedAt: string;
  /** Our side of the session (the daemon's neighbour). */
  peer: { address: string; asn: number; routerId: string };
  /** The daemon's side. */
  local: { address: string; asn: number; routerId: string };
  families: Family[];
  /** The routes the daemon was told to originate (what the test asserts against). */
  routes: { family: Family; prefix: string; attrs: RouteAttrs }[];
  messages: CapturedMessage[];
}

interface DaemonUnderTest {
  stop(): Promise<void>;
}

interface Plan {
  daemon: 'gobgp' | 'bird' | 'frr';
  version: () => Promise<string>;
  local: { address: string; asn: number; routerId: string };
  peerAddress: string;
  families: Family[];
  routes: { family: Family; prefix: string; attrs: RouteAttrs }[];
  /** Starts the daemon dialling `peerPort` on `peerAddress`; routes are in place on return. */
  start: (listenPort: number, peerPort: number) => Promise<DaemonUnderTest>;
}

/** Full attribute set used on the first IPv4 route of every daemon. */
const RICH: RouteAttrs = {
  origin: 'incomplete',
  asPath: [65100, 4200000100],
  med: 50,
  communities: ['65010:1', '65011:2'],
  largeCommunities: ['4200000001:1:2', '65010:3:4'],
  extCommunities: ['rt:65000:100', 'rt:192.0.2.1:7', 'rt:4200000000:7'],
};

function plans(): Plan[] {
  const gobgp: Plan = {
    daemon: 'gobgp',
    version: async () => (await run('gobgpd', ['--version'])).stdout.trim(),
    local: { address: '127.0.0.21', asn: 4200000021, routerId: '10.255.0.21' },
    peerAddress: '127.0.0.31',
    families: ['ipv4-unicast', 'ipv6-unicast', 'ipv4-vpn', 'ipv6-vpn'],
    routes: [
      { family: 'ipv4-unicast', prefix: '10.21.1.0/24', attrs: RICH },
      { family: 'ipv4-unicast', prefix: '10.21.2.0/25', attrs: { med: 0, communities: ['65010:21'] } },
      { family: 'ipv6-unicast', prefix: '2001:db8:21::/48', attrs: { med: 60, communities: ['65010:6'] } },
      {
        family: 'ipv4-vpn',
        prefix: '10.21.100.0/24',
        attrs: { rd: '65000:100', label: 100, extCommunities: ['rt:65000:100'], med: 70 },
      },
      {
        family: 'ipv6-vpn',
        prefix: '2001:db8:21:100::/64',
        attrs: { rd: '192.0.2.1:5', label: 200, extCommunities: ['rt:4200000000:7'] },
      },
    ],
    start: async (listenPort, peerPort) => {
      const d = await startGobgp({
        asn: gobgp.local.asn,
        routerId: gobgp.local.routerId,
        listenAddress: gobgp.local.address,
        listenPort,
        neighbors: [
          { address: gobgp.peerAddress, port: peerPort, peerAsn: OUR_ASN, families: gobgp.families },
        ],
      });
      for (const r of gobgp.routes) await d.addRoute(r.family, r.prefix, r.attrs);
      return d;
    },
  };
  const bird: Plan = {
    daemon: 'bird',
    version: async () => {
      const r = await run('bird', ['--version']);
      return `${r.stdout}${r.stderr}`.trim();
    },
    local: { address: '127.0.0.22', asn: 4200000022, routerId: '10.255.0.22' },
    peerAddress: '127.0.0.32',
    families: ['ipv4-unicast', 'ipv6-unicast', 'ipv4-vpn', 'ipv6-vpn'],
    routes: [
      { family: 'ipv4-unicast', prefix: '10.22.1.0/24', attrs: RICH },
      { family: 'ipv4-unicast', prefix: '10.22.2.0/25', attrs: { communities: ['65010:22'] } },
      { family: 'ipv6-unicast', prefix: '2001:db8:22::/48', attrs: { med: 60, communities: ['65010:6'] } },
      {
        family: 'ipv4-vpn',
        prefix: '10.22.100.0/24',
        attrs: { rd: '65000:200', extCommunities: ['rt:65000:200'], med: 70 },
      },
      {
        family: 'ipv6-vpn',
        prefix: '2001:db8:22:100::/64',
        attrs: { rd: '192.0.2.1:6', extCommunities: ['rt:4200000000:8'] },
      },
    ],
    start: async (listenPort, peerPort) => {
      const d = await startBird({
        asn: bird.local.asn,
        routerId: bird.local.routerId,
        listenAddress: bird.local.address,
        listenPort,
        neighbors: [{ address: bird.peerAddress, port: peerPort, peerAsn: OUR_ASN, families: bird.families }],
        staticRoutes: bird.routes,
      });
      return d;
    },
  };
  const frr: Plan = {
    daemon: 'frr',
    version: async () => (await run(FRR_BGPD, ['--version'])).stdout.split('\n')[0]!.trim(),
    local: { address: '127.0.0.23', asn: 4200000023, routerId: '10.255.0.23' },
    peerAddress: '127.0.0.33',
    families: ['ipv4-unicast', 'ipv6-unicast'],
    routes: [
      { family: 'ipv4-unicast', prefix: '10.23.1.0/24', attrs: RICH },
      { family: 'ipv4-unicast', prefix: '10.23.2.0/25', attrs: { communities: ['65010:23'] } },
      { family: 'ipv6-unicast', prefix: '2001:db8:23::/48', attrs: { med: 60, communities: ['65010:6'] } },
    ],
    start: (listenPort, peerPort) =>
      startFrr({
        asn: frr.local.asn,
        routerId: frr.local.routerId,
        listenAddress: frr.local.address,
        listenPort,
        neighbors: [{ address: frr.peerAddress, port: peerPort, peerAsn: OUR_ASN, families: frr.families }],
        staticRoutes: frr.routes,
      }),
  };
  return [gobgp, bird, frr];
}

/** Splits the received byte stream into whole messages (header included), by the length field. */
class Splitter {
  private buf = new Uint8Array(0);
  push(chunk: Uint8Array): Uint8Array[] {
    const joined = new Uint8Array(this.buf.length + chunk.length);
    joined.set(this.buf);
    joined.set(chunk, this.buf.length);
    const out: Uint8Array[] = [];
    let at = 0;
    while (joined.length - at >= 19) {
      const len = (joined[at + 16]! << 8) | joined[at + 17]!;
      if (len < 19) throw new Error(`bad length ${len} in the captured stream`);
      if (joined.length - at < len) break;
      out.push(joined.slice(at, at + len));
      at += len;
    }
    this.buf = joined.slice(at);
    return out;
  }
}

function typeName(msg: Uint8Array): string {
  const t = msg[18]!;
  if (t !== MessageType.UPDATE) return messageTypeName(t);
  const u = splitUpdate(msg.subarray(19));
  const eor = isEndOfRib(u);
  return eor === undefined ? 'UPDATE' : `UPDATE (End-of-RIB ${eor})`;
}

/** Resolves when `cond()` holds, checking every 50 ms, or after `timeoutMs` (returns false then). */
async function until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await sleepMs(50);
  }
  return cond();
}

async function captureOne(plan: Plan): Promise<CapturedSession> {
  const [listenPort, peerPort] = await Promise.all([
    freePort(plan.local.address),
    freePort(plan.peerAddress),
  ]);
  const messages: CapturedMessage[] = [];
  const familyNames = plan.families as AfiSafiName[];
  const ourOpen = encodeOpen(
    buildOpen({
      localAsn: OUR_ASN,
      routerId: ipv4ToNumber(parseIPv4(OUR_ROUTER_ID)),
      holdTime: HOLD_TIME,
      families: familyNames,
      routeRefresh: true,
      enhancedRouteRefresh: true,
      extendedMessage: false,
      // Advertising Graceful Restart makes FRR send End-of-RIB (RFC 4724 §2), as BIRD always does.
      gracefulRestart: { restartTime: 120 },
    }),
  );

  let socket: Socket | undefined;
  let closed = false;
  let established = false;
  let lastRx = 0;
  const eors = new Set<string>();
  let eorr = false;
  const splitter = new Splitter();

  const send = (msg: Uint8Array): void => {
    messages.push({ dir: 'tx', type: typeName(msg), hex: toHex(msg) });
    socket?.write(msg);
  };

  const server = createServer((s) => {
    if (socket !== undefined) {
      s.destroy(); // one session only
      return;
    }
    socket = s;
    s.on('data', (chunk: Buffer) => {
      for (const m of splitter.push(new Uint8Array(chunk))) {
        lastRx = Date.now();
        messages.push({ dir: 'rx', type: typeName(m), hex: toHex(m) });
        const t = m[18]!;
        if (t === MessageType.OPEN) send(encodeKeepalive());
        else if (t === MessageType.KEEPALIVE) established = true;
        else if (t === MessageType.UPDATE) {
          const eor = isEndOfRib(splitUpdate(m.subarray(19)));
          if (eor !== undefined) eors.add(eor);
        } else if (t === MessageType.ROUTE_REFRESH && m[21] === 2) eorr = true; // RFC 7313 EoRR
      }
    });
    s.on('close', () => {
      closed = true;
    });
    s.on('error', () => {
      closed = true;
    });
    send(ourOpen);
  });
  await new Promise<void>((resolve) => server.listen(peerPort, plan.peerAddress, resolve));

  let daemon: DaemonUnderTest | undefined;
  try {
    daemon = await plan.start(listenPort, peerPort);
    if (!(await until(() => established, 30_000))) throw new Error(`${plan.daemon}: no session`);
    server.close(); // no further connections
    // The first table: End-of-RIB for every family, or 3 s without a message.
    await until(() => familyNames.every((f) => eors.has(f)) || Date.now() - lastRx > 3000, 30_000);
    if (plan.daemon === 'gobgp') await sleepMs(1500); // let a late VPN UPDATE arrive, if any
    // The second table, via ROUTE-REFRESH (RFC 2918) for IPv4 unicast.
    const { afi, safi } = afiSafiCode('ipv4-unicast');
    const refreshAt = Date.now();
    send(encodeRouteRefresh(afi, safi));
    await until(() => eorr || (Date.now() - refreshAt > 2000 && Date.now() - lastRx > 2000), 15_000);
    send(encodeShutdownNotification(2, 'vce corpus capture done'));
    await until(() => closed, 5000);
  } finally {
    socket?.destroy();
    server.close();
    await daemon?.stop();
  }
  if (closed === false) console.warn(`${plan.daemon}: socket still open after Cease`);

  return {
    daemon: plan.daemon,
    version: await plan.version(),
    capturedAt: new Date().toISOString(),
    peer: { address: plan.peerAddress, asn: OUR_ASN, routerId: OUR_ROUTER_ID },
    local: plan.local,
    families: plan.families,
    routes: plan.routes,
    messages,
  };
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  for (const plan of plans()) {
    if (wanted.length > 0 && !wanted.includes(plan.daemon)) continue;
    const session = await captureOne(plan);
    const file = join(OUT_DIR, `${plan.daemon}-session.json`);
    await writeFile(file, JSON.stringify(session, null, 2) + '\n');
    const counts = new Map<string, number>();
    for (const m of session.messages) counts.set(`${m.dir} ${m.type}`, (counts.get(`${m.dir} ${m.type}`) ?? 0) + 1);
    console.log(`${file}: ${session.version}`);
    for (const [k, v] of counts) console.log(`  ${v} × ${k}`);
  }
}

await main();
