/**
 * Interop with FRR 8.4 bfdd, run standalone (no zebra, no watchfrr) with its own vty socket:
 *
 *   vce BfdManager 127.0.0.152 ── single hop, UDP 3784 ── bfdd 127.0.0.151
 *
 * bfdd 8.4 always binds 0.0.0.0:3784 / 4784 (no option changes the ports; `--bfdctl` is only its
 * control socket), with SO_REUSEADDR. Our receive socket binds 127.0.0.152:3784 with reuseAddr,
 * which Linux prefers for packets to that address. This is the only test file that may use 3784.
 *
 * Covers: the session comes up, both sides agree on the negotiated timers (`show bfd peers json`),
 * SIGSTOP of bfdd is detected within the detection time (diag 1), SIGCONT brings it back Up,
 * releasing our session shows up in FRR as a neighbour-signalled down.
 * Not covered: authentication — FRR 8.4 bfdd has no authentication commands at all (there is no
 * `authentication` under `bfd` / `peer`; checked with vtysh), so auth is unit-tested only.
 */
import { chownSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BfdManager, type BfdStateChange } from '../../src/bfd/transport.ts';
import { buildAgentConfig } from '../../src/agent/config.ts';
import { startAgent } from '../../src/agent/run.ts';
import { startFrr } from './harness/frr.ts';
import {
  type DaemonHandle,
  freePort,
  requireDaemon,
  run,
  startDaemon,
  stopAll,
  tmpDir,
  type WaitForOptions,
  waitFor,
} from './harness/common.ts';

/** `waitFor` for synchronous checks. */
function waitSync<T>(fn: () => T | undefined, opts: WaitForOptions): Promise<T> {
  return waitFor(() => Promise.resolve(fn()), opts);
}

const BFDD = '/usr/lib/frr/bfdd';
const FRR_ADDR = '127.0.0.151';
const OUR_ADDR = '127.0.0.152';
const AGENT_ADDR = '127.0.0.154';
/** FRR side: 300 ms / 300 ms × 3. Ours: TX 200 ms, RX 250 ms × 4. */
const FRR_TIMERS = { rx: 300, tx: 300, mult: 3 };
const OUR = { desiredMinTxUs: 200_000, requiredMinRxUs: 250_000, detectMult: 4 };

interface FrrBfdPeer {
  peer: string;
  local?: string;
  status: string;
  diagnostic?: string;
  'remote-diagnostic'?: string;
  id: number;
  'remote-id': number;
  'receive-interval': number;
  'transmit-interval': number;
  'detect-multiplier': number;
  'remote-receive-interval': number;
  'remote-transmit-interval': number;
  'remote-detect-multiplier': number;
}

let bfdd: DaemonHandle | undefined;
let vtyDir = '';
let mgr: BfdManager | undefined;
const events: (BfdStateChange & { at: number })[] = [];

async function vtysh(...commands: string[]): Promise<string> {
  const args = ['--vty_socket', vtyDir, '-d', 'bfdd'];
  for (const c of commands) args.push('-c', c);
  return (await run('vtysh', args)).stdout;
}

async function frrPeer(): Promise<FrrBfdPeer | undefined> {
  const peers = JSON.parse(await vtysh('show bfd peers json')) as FrrBfdPeer[];
  return peers.find((p) => p.peer === OUR_ADDR);
}

const ours = (): ReturnType<BfdManager['get']> => mgr?.get(FRR_ADDR, { localAddress: OUR_ADDR });

describe.skipIf(!requireDaemon(BFDD) || !requireDaemon('vtysh'))('BFD interop with FRR bfdd', () => {
  beforeAll(async () => {
    const dir = await tmpDir('bfdd');
    vtyDir = dir;
    // bfdd 8.4 has no -S: it drops privileges to frr:frr (root is not in frrvty), so the dir
    // holding its pid file and vty socket must belong to frr.
    const uid = Number((await run('id', ['-u', 'frr'])).stdout.trim());
    const gid = Number((await run('id', ['-g', 'frr'])).stdout.trim());
    chownSync(dir, uid, gid);
    const conf = join(dir, 'bfdd.conf');
    await writeFile(
      conf,
      [
        'bfd',
        ` peer ${OUR_ADDR} local-address ${FRR_ADDR}`,
        `  receive-interval ${FRR_TIMERS.rx}`,
        `  transmit-interval ${FRR_TIMERS.tx}`,
        `  detect-multiplier ${FRR_TIMERS.mult}`,
        ' !',
        // The BFD peer of the vce agent whose BGP session to FRR bgpd is coupled to BFD (RFC 9384).
        ` peer ${AGENT_ADDR} local-address ${FRR_ADDR}`,
        `  receive-interval ${FRR_TIMERS.rx}`,
        `  transmit-interval ${FRR_TIMERS.tx}`,
        `  detect-multiplier ${FRR_TIMERS.mult}`,
        ' !',
        '!',
        '',
      ].join('\n'),
    );
    bfdd = await startDaemon({
      name: 'frr-bfdd',
      cmd: BFDD,
      args: [
        '-f',
        conf,
        '-i',
        join(dir, 'bfdd.pid'),
        '-z',
        join(dir, 'zserv.api'),
        '--vty_socket',
        dir,
        '--bfdctl',
        join(dir, 'bfdd.sock'),
        '-P',
        '0',
        '-u',
        'frr',
        '-g',
        'frr',
        '--log',
        'stdout',
      ],
      dir,
      leftovers: (pid) => [`/var/tmp/frr/bfdd.${pid}`],
      readyCheck: async () => (await frrPeer()) !== undefined,
    });
    mgr = new BfdManager({ reuseAddr: true });
    for (const k of ['up', 'down'] as const) mgr.on(k, (c) => events.push({ ...c, at: Date.now() }));
    await mgr.acquire(FRR_ADDR, { localAddress: OUR_ADDR, ...OUR });
  });

  afterAll(async () => {
    if (bfdd?.alive() === true) process.kill(bfdd.pid, 'SIGCONT');
    await mgr?.close();
    await stopAll();
  });

  it('comes up and negotiates the timers', async () => {
    await waitFor(
      async () => (ours()?.state === 'Up' && (await frrPeer())?.status === 'up' ? true : undefined),
      {
        what: 'BFD session Up on both sides',
        timeoutMs: 15_000,
        describe: async () =>
          `ours: ${JSON.stringify(ours())}\nfrr: ${JSON.stringify(await frrPeer())}\n${await bfdd?.logTail(20)}`,
      },
    );
    // Wait for both Poll Sequences (the 1 s floor dropped on Up) to settle.
    const p = await waitFor(
      async () => {
        const f = await frrPeer();
        return f?.['remote-transmit-interval'] === 200 ? f : undefined;
      },
      {
        what: 'FRR sees our 200 ms TX',
        timeoutMs: 5000,
        describe: async () => JSON.stringify(await frrPeer()),
      },
    );
    expect(p).toMatchObject({
      'receive-interval': 300,
      'transmit-interval': 300,
      'detect-multiplier': 3,
      'remote-receive-interval': 250,
      'remote-transmit-interval': 200,
      'remote-detect-multiplier': 4,
    });
    expect(p['remote-id']).toBe(ours()?.localDiscr);
    expect(ours()?.remoteDiscr).toBe(p.id);
    const n = await waitSync(
      () => (ours()?.negotiated.detectTimeUs === 900_000 ? ours()?.negotiated : undefined),
      {
        what: 'our detection time',
        timeoutMs: 5000,
        describe: () => JSON.stringify(ours()),
      },
    );
    expect(n).toMatchObject({
      txIntervalUs: 300_000, // max(our 200 ms, FRR's RequiredMinRx 300 ms)
      detectTimeUs: 900_000, // FRR mult 3 × max(our RequiredMinRx 250 ms, FRR DesiredMinTx 300 ms)
      remoteMinRxUs: 300_000,
      remoteDesiredMinTxUs: 300_000,
      remoteDetectMult: 3,
    });
  });

  it('detects a frozen bfdd within the detection time and recovers after SIGCONT', async () => {
    const pid = bfdd!.pid;
    events.length = 0;
    const stoppedAt = Date.now();
    process.kill(pid, 'SIGSTOP');
    let down: BfdStateChange & { at: number };
    try {
      down = await waitSync(() => events.find((e) => e.to === 'Down'), {
        what: 'our session Down',
        timeoutMs: 5000,
        intervalMs: 5,
      });
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const took = down.at - stoppedAt;
    if (process.env.VCE_BFD_DEBUG === '1') console.log(`detection took ${took} ms`);
    expect(down.diag).toBe(1); // Control Detection Time Expired
    // The last packet from bfdd arrived at most one TX interval (300 ms) before SIGSTOP.
    expect(took).toBeLessThanOrEqual(900 + 300);
    expect(took).toBeGreaterThanOrEqual(900 - 300 - 50);
    await waitFor(
      async () => (ours()?.state === 'Up' && (await frrPeer())?.status === 'up' ? true : undefined),
      {
        what: 'BFD session Up again after SIGCONT',
        timeoutMs: 15_000,
        describe: async () => `ours: ${JSON.stringify(ours())}\nfrr: ${JSON.stringify(await frrPeer())}`,
      },
    );
  });

  it('releasing our session is seen by FRR as neighbour-signalled down', async () => {
    mgr!.release(FRR_ADDR, { localAddress: OUR_ADDR });
    const p = await waitFor(
      async () => {
        const f = await frrPeer();
        return f !== undefined && f.status !== 'up' ? f : undefined;
      },
      { what: 'FRR session down', timeoutMs: 5000 },
    );
    expect(p.diagnostic).toMatch(/neighbor/i);
    expect(p['remote-diagnostic']).toMatch(/administratively/i);
  });

  it('RFC 9384: BFD down ends the coupled BGP session with Cease/BFD Down and takes the tracked static route out of the FIB', async () => {
    const [bgpPort, agentPort] = await Promise.all([freePort(FRR_ADDR), freePort(AGENT_ADDR)]);
    const bgpd = await startFrr({
      asn: 65151,
      routerId: FRR_ADDR,
      listenAddress: FRR_ADDR,
      listenPort: bgpPort,
      neighbors: [
        { address: AGENT_ADDR, port: agentPort, peerAsn: 65154, passive: true, families: ['ipv4-unicast'] },
      ],
    });
    const agent = await startAgent(
      buildAgentConfig({
        'router-id': AGENT_ADDR,
        'log-level': 'silent',
        bfd: { 'reuse-address': true }, // bfdd holds 0.0.0.0:3784 with SO_REUSEADDR
        // A static route tracked by the same BFD session (refcounted): out of the FIB while BFD is down.
        interfaces: [{ name: 'lo', addresses: [`${AGENT_ADDR}/8`] }],
        'static-routes': [{ prefix: '10.151.0.0/16', 'next-hop': FRR_ADDR, bfd: true }],
        bgp: {
          asn: 65154,
          listen: { address: AGENT_ADDR, port: agentPort },
          neighbors: [
            {
              address: FRR_ADDR,
              'peer-asn': 65151,
              'remote-port': bgpPort,
              'local-address': AGENT_ADDR,
              'connect-retry': 1,
              'import-policy': 'accept-all',
              'export-policy': 'accept-all',
              bfd: { 'min-tx': 200, 'min-rx': 250, multiplier: 4 },
            },
          ],
        },
      }),
    );
    try {
      const bfdOf = () => agent.speaker.bfd?.get(FRR_ADDR, { localAddress: AGENT_ADDR });
      await waitFor(
        async () =>
          (await bgpd.neighborState(AGENT_ADDR)) === 'established' && bfdOf()?.state === 'Up'
            ? true
            : undefined,
        {
          what: 'BGP Established and BFD Up',
          timeoutMs: 20_000,
          describe: () => Promise.resolve(JSON.stringify(bfdOf())),
        },
      );
      const staticInFib = () =>
        agent.contexts
          .get('default')!
          .fib(4)
          .some((e) => e.prefix === '10.151.0.0/16');
      await waitSync(() => (staticInFib() ? true : undefined), {
        what: 'BFD-tracked static route in the FIB',
        timeoutMs: 5000,
      });
      const peer = agent.speaker.neighbor(FRR_ADDR)!;
      const flaps = peer.stats.flaps;
      process.kill(bfdd!.pid, 'SIGSTOP'); // bfdd freezes; bgpd keeps running and keeps BGP alive
      try {
        await waitSync(() => (peer.stats.flaps > flaps ? true : undefined), {
          what: 'BGP session closed by BFD',
          timeoutMs: 5000,
        });
      } finally {
        process.kill(bfdd!.pid, 'SIGCONT');
      }
      expect(peer.stats.lastError).toMatch(/^BFD down \(/);
      expect(staticInFib()).toBe(false);
      const info = await waitFor(
        async () => {
          const i = await bgpd.neighborInfo(AGENT_ADDR);
          return i.lastNotificationReason !== undefined ? i : undefined;
        },
        { what: 'FRR records our NOTIFICATION', timeoutMs: 5000 },
      );
      expect(info.lastNotificationReason).toMatch(/Cease/);
      expect(info.lastNotificationReason).toMatch(/BFD|10/i);
      // BFD comes back, and so does BGP
      await waitFor(
        async () =>
          (await bgpd.neighborState(AGENT_ADDR)) === 'established' && bfdOf()?.state === 'Up'
            ? true
            : undefined,
        { what: 'BGP and BFD back', timeoutMs: 30_000 },
      );
      await waitSync(() => (staticInFib() ? true : undefined), {
        what: 'static route back in the FIB',
        timeoutMs: 5000,
      });
    } finally {
      await agent.stop();
      await bgpd.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------------
/**
 * Interop with BIRD 2.0.12's BFD, in this file so that it runs after the FRR block above and
 * never alongside it: BIRD binds 0.0.0.0:3784 / 4784 (and [::]) with no option to change the
 * ports (2.0.12's `protocol bfd` grammar has none), just like bfdd, and with two wildcard
 * sockets on a port Linux would hand our packets to either daemon. bfdd is stopped first.
 *
 *   vce BfdManager 127.0.0.172 ── multihop, UDP 4784 ── BIRD 127.0.0.171
 *
 * Multihop because BIRD 2.0.12 does not create single-hop sessions to 127/8 neighbours on `lo`
 * (`neighbor ... dev "lo"` never shows up in `show bfd sessions`); a multihop neighbour with an
 * explicit `local` address does.
 *
 * Covers: the session comes up with the negotiated timers on both sides (`birdc show bfd
 * sessions`), SIGSTOP of bird is detected within the detection time (diag 1), SIGCONT brings it
 * back Up; authentication interop for simple password, keyed MD5, meticulous keyed MD5, keyed
 * SHA1 and meticulous keyed SHA1 (BIRD restarted per method, key ID 7), and a wrong SHA1 key
 * keeps the session down.
 */
type BfdAuth = NonNullable<Parameters<BfdManager['acquire']>[1]['auth']>;

const BIRD_ADDR = '127.0.0.171';
const OUR_BIRD_ADDR = '127.0.0.172';
/** BIRD side: 300 ms / 300 ms × 3 (`interval 300 ms; multiplier 3`). Ours: TX 200, RX 250 × 4. */
const OUR_VS_BIRD = { multihop: true, desiredMinTxUs: 200_000, requiredMinRxUs: 250_000, detectMult: 4 };

interface BirdBfdSession {
  address: string;
  state: string;
  /** Seconds: BIRD's TX interval, max(its min tx, our RequiredMinRx). */
  interval: number;
  /** Seconds: BIRD's detection time, our mult × max(its min rx, our DesiredMinTx). */
  timeout: number;
}

interface BirdBfd {
  handle: DaemonHandle;
  session(): Promise<BirdBfdSession | undefined>;
  show(): Promise<string>;
}

async function startBirdBfd(auth?: { method: string; password: string; id: number }): Promise<BirdBfd> {
  const dir = await tmpDir('bird-bfd');
  const conf = join(dir, 'bird.conf');
  const sock = join(dir, 'bird.ctl');
  await writeFile(
    conf,
    [
      'log stderr all;',
      `router id ${BIRD_ADDR};`,
      'protocol device { }',
      'protocol bfd vcebfd {',
      '  multihop {',
      '    interval 300 ms;',
      '    multiplier 3;',
      ...(auth === undefined
        ? []
        : [`    authentication ${auth.method};`, `    password "${auth.password}" { id ${auth.id}; };`]),
      '  };',
      `  neighbor ${OUR_BIRD_ADDR} local ${BIRD_ADDR} multihop yes;`,
      '}',
      '',
    ].join('\n'),
  );
  const birdc = async (...cmd: string[]): Promise<string> =>
    (await run('birdc', ['-s', sock, ...cmd], 2000)).stdout;
  const handle = await startDaemon({
    name: 'bird-bfd',
    cmd: 'bird',
    args: ['-f', '-c', conf, '-s', sock, '-P', join(dir, 'bird.pid')],
    dir,
    readyCheck: async () => (await birdc('show', 'status')).includes('Daemon is up and running'),
  });
  const show = (): Promise<string> => birdc('show', 'bfd', 'sessions');
  return {
    handle,
    show,
    async session() {
      // IP address  Interface  State  Since  Interval  Timeout
      for (const line of (await show()).split('\n')) {
        const m = /^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+([\d.]+)\s+([\d.]+)\s*$/.exec(line.trim());
        if (m !== null && m[1] === OUR_BIRD_ADDR)
          return { address: m[1], state: m[3]!, interval: Number(m[5]), timeout: Number(m[6]) };
      }
      return undefined;
    },
  };
}

describe.skipIf(!requireDaemon('bird') || !requireDaemon('birdc'))('BFD interop with BIRD 2', () => {
  let bird: BirdBfd | undefined;
  let bmgr: BfdManager | undefined;
  const bevents: (BfdStateChange & { at: number })[] = [];
  const mine = (): ReturnType<BfdManager['get']> =>
    bmgr?.get(BIRD_ADDR, { localAddress: OUR_BIRD_ADDR, multihop: true });

  /** Fresh BIRD (with `auth`) and a fresh manager acquiring the session (with `ours`). */
  async function setup(
    auth?: { method: string; password: string; id: number },
    ours?: BfdAuth,
  ): Promise<void> {
    await teardown();
    bird = await startBirdBfd(auth);
    bmgr = new BfdManager({ reuseAddr: true }); // BIRD holds 0.0.0.0:4784 with SO_REUSEADDR
    for (const k of ['up', 'down'] as const) bmgr.on(k, (c) => bevents.push({ ...c, at: Date.now() }));
    await bmgr.acquire(BIRD_ADDR, {
      localAddress: OUR_BIRD_ADDR,
      ...OUR_VS_BIRD,
      ...(ours ? { auth: ours } : {}),
    });
  }

  async function teardown(): Promise<void> {
    if (bird?.handle.alive() === true) process.kill(bird.handle.pid, 'SIGCONT');
    await bmgr?.close();
    bmgr = undefined;
    await bird?.handle.stop();
    bird = undefined;
  }

  const bothUp = (what: string) =>
    waitFor(
      async () => (mine()?.state === 'Up' && (await bird?.session())?.state === 'Up' ? true : undefined),
      {
        what,
        timeoutMs: 15_000,
        describe: async () =>
          `ours: ${JSON.stringify(mine())}\nbird: ${await bird?.show()}\n${await bird?.handle.logTail(20)}`,
      },
    );

  beforeAll(async () => {
    await bfdd?.stop(); // the FRR block leaves bfdd running; it holds the same wildcard ports
    bfdd = undefined;
  });

  afterAll(async () => {
    await teardown();
  });

  it('comes up and negotiates the timers', async () => {
    await setup();
    await bothUp('BFD session Up with BIRD');
    // BIRD: TX max(300, our RX 250) = 0.3 s, detection our mult 4 × max(300, our TX 200) = 1.2 s.
    const b = await waitFor(
      async () => {
        const s = await bird?.session();
        return s?.state === 'Up' && s.interval === 0.3 && s.timeout === 1.2 ? s : undefined;
      },
      { what: 'BIRD negotiated timers', timeoutMs: 5000, describe: async () => String(await bird?.show()) },
    );
    expect(b).toMatchObject({ state: 'Up', interval: 0.3, timeout: 1.2 });
    const n = await waitSync(
      () => (mine()?.negotiated.detectTimeUs === 900_000 ? mine()?.negotiated : undefined),
      {
        what: 'our detection time',
        timeoutMs: 5000,
        describe: () => JSON.stringify(mine()),
      },
    );
    expect(n).toMatchObject({
      txIntervalUs: 300_000, // max(our 200 ms, BIRD's RequiredMinRx 300 ms)
      detectTimeUs: 900_000, // BIRD mult 3 × max(our RequiredMinRx 250 ms, BIRD DesiredMinTx 300 ms)
      remoteMinRxUs: 300_000,
      remoteDesiredMinTxUs: 300_000,
      remoteDetectMult: 3,
    });
  });

  it('detects a frozen bird within the detection time and recovers after SIGCONT', async () => {
    if (mine()?.state !== 'Up') await setup();
    await bothUp('BFD session Up with BIRD');
    const pid = bird!.handle.pid;
    bevents.length = 0;
    const stoppedAt = Date.now();
    process.kill(pid, 'SIGSTOP');
    let down: BfdStateChange & { at: number };
    try {
      down = await waitSync(() => bevents.find((e) => e.to === 'Down'), {
        what: 'our session Down',
        timeoutMs: 5000,
        intervalMs: 5,
      });
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const took = down.at - stoppedAt;
    if (process.env.VCE_BFD_DEBUG === '1') console.log(`BIRD detection took ${took} ms`);
    expect(down.diag).toBe(1); // Control Detection Time Expired
    // The last packet from BIRD arrived at most one TX interval (300 ms) before SIGSTOP.
    expect(took).toBeLessThanOrEqual(900 + 300);
    expect(took).toBeGreaterThanOrEqual(900 - 300 - 50);
    await bothUp('BFD session Up again after SIGCONT');
  });

  const methods: { name: string; method: string; type: BfdAuth['type']; secret: string }[] = [
    { name: 'simple password', method: 'simple', type: 1, secret: 'vce-bird-simple' },
    { name: 'keyed MD5', method: 'keyed md5', type: 2, secret: 'vce-bird-md5-key' }, // 16 bytes
    { name: 'meticulous keyed MD5', method: 'meticulous keyed md5', type: 3, secret: 'vce-md5-meticul' },
    { name: 'keyed SHA1', method: 'keyed sha1', type: 4, secret: 'vce-bird-sha1-key-20' }, // 20 bytes
    {
      name: 'meticulous keyed SHA1',
      method: 'meticulous keyed sha1',
      type: 5,
      secret: 'vce-sha1-meticulous',
    },
  ];
  for (const m of methods) {
    it(`authentication: ${m.name} interoperates`, async () => {
      await setup(
        { method: m.method, password: m.secret, id: 7 },
        { type: m.type, keyId: 7, secret: m.secret },
      );
      await bothUp(`BFD session Up with BIRD (${m.name})`);
      // Stays Up over several detection times (sequence numbers advance correctly both ways).
      bevents.length = 0;
      await new Promise((r) => setTimeout(r, 3000));
      expect(bevents.filter((e) => e.to === 'Down')).toEqual([]);
      expect(mine()?.state).toBe('Up');
      expect((await bird?.session())?.state).toBe('Up');
    });
  }

  it('authentication: a wrong keyed SHA1 key keeps the session down on both sides', async () => {
    await setup(
      { method: 'keyed sha1', password: 'vce-bird-sha1-key-20', id: 7 },
      { type: 4, keyId: 7, secret: 'not-the-right-key' },
    );
    await new Promise((r) => setTimeout(r, 3000));
    expect(mine()?.state).not.toBe('Up');
    const s = await bird?.session();
    expect(s?.state).not.toBe('Up');
  });
});
