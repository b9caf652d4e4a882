/**
 * Hostile UPDATEs against vce (RFC 7606 revised error handling, RFC 4271 §6.3):
 *
 *   ExaBGP 127.0.0.53 (AS 65053) ──► vce X 127.0.0.51 (AS 65000) ◄── vce Y 127.0.0.52 (AS 65052)
 *   raw client 127.0.0.54 (AS 65054) ──┘                              (well-behaved bystander)
 *
 * ExaBGP announces a good route, then the same prefix again with one malformed attribute, sent
 * with its generic `attribute [ code flags value ]` syntax. ExaBGP 4.2 packs a generic attribute
 * byte-exact even for a known code when no parsed attribute of that code is present, so ORIGIN,
 * AS_PATH, COMMUNITIES, ATOMIC_AGGREGATE, AGGREGATOR and LARGE_COMMUNITY can all be mangled this
 * way. The exception is LOCAL_PREF: ExaBGP's `Attributes.pack` skips LOCAL_PREF (code 5) on eBGP
 * sessions whatever its origin, so class (e) uses a raw TCP client built on our own codecs.
 *
 * After every case: X's session with the hostile peer is in the state the RFC asks for, Y's
 * session is still established with its routes intact both ways, and the process is alive.
 */
import { type Socket, connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgentConfig } from '../../src/agent/config.ts';
import { type RunningAgent, startAgent } from '../../src/agent/run.ts';
import type { Peer } from '../../src/bgp/peer.ts';
import { type PathView, neighborViews, routeViews } from '../../src/bgp/rib-view.ts';
import type { Speaker } from '../../src/bgp/speaker.ts';
import { Framer } from '../../src/bgp/wire/header.ts';
import { MessageType } from '../../src/bgp/wire/constants.ts';
import { encodeKeepalive } from '../../src/bgp/wire/notification.ts';
import { encodeOpen } from '../../src/bgp/wire/open.ts';
import { encodeUpdate } from '../../src/bgp/wire/update.ts';
import type { UpdateError } from '../../src/bgp/wire/errors.ts';
import { parsePrefix } from '../../src/lib/ip.ts';
import { type WaitForOptions, freePort, requireDaemon, stopAll, waitFor } from './harness/common.ts';
import { type ExabgpDaemon, startExabgp } from './harness/exabgp.ts';

/** `waitFor` for synchronous checks (in-process RIB and neighbour views). */
const poll = <T>(fn: () => T | undefined, opts: WaitForOptions): Promise<T> =>
  waitFor(() => Promise.resolve(fn()), opts);

const available = requireDaemon('exabgp');

const X = { addr: '127.0.0.51', asn: 65000 };
const Y = { addr: '127.0.0.52', asn: 65052 };
const E = { addr: '127.0.0.53', asn: 65053 };
const R = { addr: '127.0.0.54', asn: 65054 };

/** Baseline route from ExaBGP that must survive every hostile case. */
const STABLE = '10.53.0.0/24';

function neighborOf(sp: Speaker, addr: string): ReturnType<typeof neighborViews>[number] {
  const n = neighborViews(sp).find((v) => v.address === addr);
  if (n === undefined) throw new Error(`no neighbour ${addr}`);
  return n;
}

function pathOf(sp: Speaker, prefix: string): PathView | undefined {
  return routeViews(sp, 'ipv4-unicast', parsePrefix(prefix))[0]?.paths[0];
}

/** The accepted attribute set of the best path for `prefix` (shows what PathView does not). */
function attrsOf(sp: Speaker, prefix: string): ReturnType<Speaker['attrs']['get']>['attrs'] | undefined {
  const rib = sp.rib('ipv4-unicast');
  const d = rib.find({ prefix: parsePrefix(prefix) });
  if (d < 0) return undefined;
  const p = rib.dBest[d]!;
  if (p < 0) return undefined;
  return sp.attrs.get(rib.pAttr[p]!).attrs;
}

/** A minimal BGP speaker on a raw socket: OPEN, KEEPALIVEs, then whatever bytes we like. */
class RawPeer {
  private sock!: Socket;
  private readonly framer = new Framer();
  established = false;
  closed = false;
  readonly notifications: { code: number; subcode: number }[] = [];

  constructor(
    private readonly local: string,
    private readonly asn: number,
  ) {}

  async connect(host: string, port: number): Promise<void> {
    this.sock = connect({ host, port, localAddress: this.local });
    this.sock.on('error', () => undefined);
    this.sock.on('close', () => (this.closed = true));
    this.sock.on('data', (chunk: Buffer) => {
      this.framer.push(new Uint8Array(chunk));
      for (let m = this.framer.next(); m !== undefined; m = this.framer.next()) {
        if (m.type === MessageType.OPEN) this.sock.write(encodeKeepalive());
        else if (m.type === MessageType.KEEPALIVE) {
          if (!this.established) this.established = true;
          else this.sock.write(encodeKeepalive());
        } else if (m.type === MessageType.NOTIFICATION) {
          this.notifications.push({ code: m.body[0]!, subcode: m.body[1]! });
        }
      }
    });
    await new Promise<void>((resolve, reject) => {
      this.sock.once('connect', resolve);
      this.sock.once('error', reject);
    });
    this.sock.write(
      encodeOpen({
        version: 4,
        myAs: this.asn,
        holdTime: 90,
        bgpId: 0x0a000036,
        capabilities: [
          { code: 1, afi: 1, safi: 1 },
          { code: 65, asn: this.asn },
        ],
        otherParams: [],
      }),
    );
    await poll(() => (this.established ? true : undefined), { what: 'raw peer established' });
  }

  send(bytes: Uint8Array): void {
    this.sock.write(bytes);
  }

  close(): void {
    this.sock?.destroy();
  }
}

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const u32hex = (n: number): string => n.toString(16).padStart(8, '0');

describe.skipIf(!available)('interop: hostile UPDATEs from ExaBGP (RFC 7606)', () => {
  let exa: ExabgpDaemon;
  let agentX: RunningAgent;
  let agentY: RunningAgent;
  let raw: RawPeer | undefined;
  const errors: { peer: string; errors: UpdateError[] }[] = [];
  const downs: { peer: string; reason: string }[] = [];

  const sx = (): Speaker => agentX.speaker;

  beforeAll(async () => {
    const [xPort, yPort] = await Promise.all([freePort(X.addr), freePort(Y.addr)]);
    const base = {
      'afi-safis': ['ipv4-unicast', 'ipv6-unicast'],
      'import-policy': 'accept-all',
      'export-policy': 'accept-all',
      'connect-retry': 1,
    };
    agentX = await startAgent(
      buildAgentConfig({
        'router-id': X.addr,
        'log-level': 'silent',
        bgp: {
          asn: X.asn,
          listen: { address: X.addr, port: xPort },
          neighbors: [
            { ...base, address: E.addr, 'peer-asn': E.asn, passive: true, 'hold-time': 30 },
            {
              ...base,
              address: Y.addr,
              'peer-asn': Y.asn,
              passive: false,
              'remote-port': yPort,
              'local-address': X.addr,
              'hold-time': 9,
            },
            { ...base, address: R.addr, 'peer-asn': R.asn, passive: true, 'afi-safis': ['ipv4-unicast'] },
          ],
          networks: ['10.51.0.0/16'],
        },
      }),
    );
    agentY = await startAgent(
      buildAgentConfig({
        'router-id': Y.addr,
        'log-level': 'silent',
        bgp: {
          asn: Y.asn,
          listen: { address: Y.addr, port: yPort },
          neighbors: [{ ...base, address: X.addr, 'peer-asn': X.asn, passive: true, 'hold-time': 9 }],
          networks: ['10.52.0.0/16'],
        },
      }),
    );
    sx().on('update-error', (p: Peer, errs: UpdateError[]) =>
      errors.push({ peer: p.cfg.address, errors: [...errs] }),
    );
    sx().on('peer-down', (p: Peer, reason: string) => downs.push({ peer: p.cfg.address, reason }));
    exa = await startExabgp({
      asn: E.asn,
      routerId: E.addr,
      localAddress: E.addr,
      peerAddress: X.addr,
      peerPort: xPort,
      peerAsn: X.asn,
      families: ['ipv4-unicast'],
      holdTime: 30,
    });
    await exa.waitEstablished();
    await poll(() => (neighborOf(agentY.speaker, X.addr).state === 'established' ? true : undefined), {
      what: 'X <-> Y established',
    });
    await exa.announce('ipv4-unicast', STABLE, { communities: ['65053:1'] });
    await poll(() => pathOf(agentY.speaker, STABLE), { what: `${STABLE} via X on Y` });
    raw = new RawPeer(R.addr, R.asn);
    await raw.connect(X.addr, xPort);
  });

  afterAll(async () => {
    raw?.close();
    await Promise.allSettled([agentX?.stop(), agentY?.stop()]);
    await stopAll(exa);
  });

  /** Everything that must hold after each hostile case. */
  function bystanderIntact(): void {
    expect(neighborOf(sx(), Y.addr).state).toBe('established');
    expect(neighborOf(agentY.speaker, X.addr).state).toBe('established');
    expect(pathOf(sx(), '10.52.0.0/16')?.['as-path']).toBe(String(Y.asn));
    expect(pathOf(agentY.speaker, '10.51.0.0/16')?.['as-path']).toBe(String(X.asn));
    expect(pathOf(agentY.speaker, STABLE)?.['as-path']).toBe(`${X.asn} ${E.asn}`);
  }

  async function announceGood(prefix: string): Promise<void> {
    await exa.announce('ipv4-unicast', prefix, { communities: ['65053:100'] });
    await poll(() => pathOf(sx(), prefix), { what: `${prefix} from exabgp on X` });
    await poll(() => pathOf(agentY.speaker, prefix), { what: `${prefix} via X on Y` });
  }

  /** Re-announces `prefix` with one raw attribute and waits for the matching update-error. */
  async function announceHostile(
    prefix: string,
    code: number,
    flags: number,
    valueHex: string,
    communities = ['65053:100'],
  ): Promise<UpdateError[]> {
    const before = errors.length;
    // A parsed `community` wins over a generic attribute of the same code in ExaBGP: omit it then.
    await exa.announce('ipv4-unicast', prefix, code === 0x08 ? {} : { communities }, [
      { code, flags, hex: valueHex },
    ]);
    const got = await poll(
      () => errors.slice(before).find((e) => e.peer === E.addr && e.errors.some((x) => x.attrType === code)),
      {
        what: `update-error for attribute ${code} from exabgp`,
        describe: () => JSON.stringify(neighborOf(sx(), E.addr)),
      },
    );
    return got.errors;
  }

  async function treatAsWithdraw(
    prefix: string,
    code: number,
    flags: number,
    valueHex: string,
  ): Promise<void> {
    await announceGood(prefix);
    const errs = await announceHostile(prefix, code, flags, valueHex);
    expect(errs.map((e) => e.action)).toContain('treat-as-withdraw');
    await poll(() => (pathOf(sx(), prefix) === undefined ? true : undefined), {
      what: `${prefix} withdrawn on X`,
    });
    await poll(() => (pathOf(agentY.speaker, prefix) === undefined ? true : undefined), {
      what: `${prefix} withdrawn on Y`,
    });
    expect(neighborOf(sx(), E.addr).state).toBe('established');
    expect(await exa.neighborState()).toBe('established');
    expect(pathOf(sx(), STABLE)).toBeDefined();
    bystanderIntact();
  }

  it('(a) ORIGIN value 5 -> treat-as-withdraw, session stays up', async () => {
    await treatAsWithdraw('10.53.1.0/24', 0x01, 0x40, '05');
  });

  it('(b) AS_PATH with segment type 5 -> treat-as-withdraw', async () => {
    // One segment: type 5 (undefined), 1 ASN, 4-octet ASNs (ExaBGP negotiates RFC 6793).
    await treatAsWithdraw('10.53.2.0/24', 0x02, 0x40, `0501${u32hex(E.asn)}`);
  });

  it('(c) COMMUNITIES length not a multiple of 4 -> treat-as-withdraw', async () => {
    await treatAsWithdraw('10.53.3.0/24', 0x08, 0xc0, 'fde50001ff');
  });

  it('(h) LARGE_COMMUNITY length not a multiple of 12 -> treat-as-withdraw', async () => {
    await treatAsWithdraw('10.53.8.0/24', 0x20, 0xc0, '0000fde5000000010000');
  });

  it('(d) ATOMIC_AGGREGATE with a value / AGGREGATOR of bad length -> attribute-discard, route kept', async () => {
    const prefix = '10.53.4.0/24';
    await announceGood(prefix);
    let errs = await announceHostile(prefix, 0x06, 0x40, '01', ['65053:4']);
    expect(errs.find((e) => e.attrType === 0x06)?.action).toBe('attribute-discard');
    const p = await poll(
      () => {
        const v = pathOf(sx(), prefix);
        return v?.communities.includes('65053:4') === true ? v : undefined;
      },
      { what: `${prefix} updated (communities 65053:4) on X` },
    );
    expect(p['as-path']).toBe(String(E.asn));
    expect(attrsOf(sx(), prefix)?.atomicAggregate).toBeUndefined();

    errs = await announceHostile(prefix, 0x07, 0xc0, '0001', ['65053:5']);
    expect(errs.find((e) => e.attrType === 0x07)?.action).toBe('attribute-discard');
    const p2 = await poll(
      () => {
        const v = pathOf(sx(), prefix);
        return v?.communities.includes('65053:5') === true ? v : undefined;
      },
      { what: `${prefix} updated (communities 65053:5) on X` },
    );
    expect(p2['as-path']).toBe(String(E.asn));
    expect(attrsOf(sx(), prefix)?.aggregator).toBeUndefined();
    // Y gets the route, without the discarded attribute.
    await poll(
      () => (pathOf(agentY.speaker, prefix)?.communities.includes('65053:5') === true ? true : undefined),
      {
        what: `${prefix} updated on Y`,
      },
    );
    expect(attrsOf(agentY.speaker, prefix)?.aggregator).toBeUndefined();
    expect(neighborOf(sx(), E.addr).state).toBe('established');
    bystanderIntact();
  });

  // ExaBGP never sends LOCAL_PREF to an eBGP peer (Attributes.pack skips code 5 when the ASes
  // differ, generic attributes included), so this class uses the raw client.
  it('(e) LOCAL_PREF from an eBGP peer -> attribute discarded, route accepted (raw client)', async () => {
    const before = errors.length;
    const attrs = hex(
      '40 01 01 00' + // ORIGIN IGP
        `40 02 06 02 01 ${u32hex(R.asn)}` + // AS_PATH: AS_SEQUENCE [65054]
        '40 03 04 c6 33 64 36' + // NEXT_HOP 198.51.100.54
        '40 05 04 00 00 01 f4', // LOCAL_PREF 500
    );
    raw!.send(encodeUpdate({ attributes: attrs, nlri: hex('18 0a 36 01') })); // 10.54.1.0/24
    const p = await poll(() => pathOf(sx(), '10.54.1.0/24'), {
      what: '10.54.1.0/24 from raw peer on X',
    });
    expect(p['local-pref']).not.toBe(500);
    expect(p['as-path']).toBe(String(R.asn));
    expect(attrsOf(sx(), '10.54.1.0/24')?.localPref).toBeUndefined();
    const e = errors.slice(before).find((x) => x.peer === R.addr);
    expect(e?.errors.map((x) => x.action)).toEqual(['attribute-discard']);
    await poll(() => pathOf(agentY.speaker, '10.54.1.0/24'), { what: '10.54.1.0/24 via X on Y' });
    expect(neighborOf(sx(), R.addr).state).toBe('established');
    expect(raw!.closed).toBe(false);
    expect(raw!.notifications).toEqual([]);
    bystanderIntact();
  });

  it('(f) unknown optional transitive attribute -> accepted, passed on byte-exact with Partial set', async () => {
    const prefix = '10.53.6.0/24';
    await exa.announce('ipv4-unicast', prefix, { communities: ['65053:6'] }, [
      { code: 0xf0, flags: 0xc0, hex: 'deadbeef01' },
    ]);
    await poll(() => pathOf(sx(), prefix), { what: `${prefix} on X` });
    const onX = attrsOf(sx(), prefix)?.unknown ?? [];
    expect(
      onX.map((u) => ({ code: u.code, flags: u.flags, value: Buffer.from(u.value).toString('hex') })),
    ).toEqual([{ code: 0xf0, flags: 0xc0, value: 'deadbeef01' }]);
    await poll(() => pathOf(agentY.speaker, prefix), { what: `${prefix} via X on Y` });
    const onY = attrsOf(agentY.speaker, prefix)?.unknown ?? [];
    expect(
      onY.map((u) => ({ code: u.code, flags: u.flags, value: Buffer.from(u.value).toString('hex') })),
    ).toEqual([
      { code: 0xf0, flags: 0xe0, value: 'deadbeef01' }, // Optional | Transitive | Partial
    ]);
    expect(errors.filter((e) => e.errors.some((x) => x.attrType === 0xf0))).toEqual([]);
    bystanderIntact();
  });

  it('(g) unknown well-known attribute -> NOTIFICATION 3/2 (RFC 4271 §6.3), session re-establishes', async () => {
    const prefix = '10.53.7.0/24';
    const notesBefore = (await exa.notifications()).length;
    const downsBefore = downs.length;
    // Flags 0x40: Transitive, not Optional -> a well-known attribute we cannot recognise.
    await exa.announce('ipv4-unicast', prefix, {}, [{ code: 0xf1, flags: 0x40, hex: '00' }]);
    const note = await waitFor(async () => (await exa.notifications()).slice(notesBefore)[0], {
      what: 'exabgp to receive a NOTIFICATION',
      describe: () => exa.handle.logTail(20),
    });
    expect(note).toMatchObject({ code: 3, subcode: 2 });
    await poll(() => downs.slice(downsBefore).find((d) => d.peer === E.addr), {
      what: 'X to report exabgp down',
    });
    // ExaBGP keeps the route in its Adj-RIB-Out and would resend it on reconnect: withdraw it.
    await exa.withdraw('ipv4-unicast', prefix);
    await poll(
      () =>
        neighborOf(sx(), E.addr).state === 'established' && pathOf(sx(), STABLE) !== undefined
          ? true
          : undefined,
      {
        what: 'exabgp session back with its routes',
        timeoutMs: 30_000,
        describe: () => JSON.stringify(neighborOf(sx(), E.addr)),
      },
    );
    expect(pathOf(sx(), prefix)).toBeUndefined();
    await poll(() => pathOf(agentY.speaker, STABLE), { what: `${STABLE} back on Y` });
    bystanderIntact();
    expect(neighborOf(sx(), R.addr).state).toBe('established');
  }, 60_000);
});
