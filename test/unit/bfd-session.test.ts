/**
 * The BFD session core (src/bfd/session.ts) on a virtual clock: two cores wired through an
 * in-memory link (1 ms latency, drops on demand). Detection-time tests take milliseconds of real
 * time. Random sources are seeded (mulberry32) so every run sends at the same instants.
 */
import { describe, expect, it } from 'vitest';
import { decodeBfd, encodeBfd, type BfdPacket } from '../../src/bfd/packet.ts';
import { BfdSession, type BfdSessionConfig, type BfdSessionEvent } from '../../src/bfd/session.ts';

const T0 = 1_000_000;
const SEED = 0x5eed5880;

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Side = 'a' | 'b';
interface Sent {
  at: number;
  from: Side;
  pkt: BfdPacket;
  bytes: Uint8Array;
}

class Link {
  now = T0;
  readonly drop = { a: false, b: false }; // drop packets sent by that side
  readonly sent: Sent[] = [];
  readonly events: (BfdSessionEvent & { side: Side; at: number })[] = [];
  private inflight: { at: number; to: Side; bytes: Uint8Array }[] = [];
  readonly a: BfdSession;
  readonly b: BfdSession;

  constructor(ca: Partial<BfdSessionConfig> = {}, cb: Partial<BfdSessionConfig> = {}, seed = SEED) {
    this.a = new BfdSession({ ...base(1), random: mulberry32(seed), ...ca });
    this.b = new BfdSession({ ...base(2), random: mulberry32(seed + 1), ...cb });
  }

  session(s: Side): BfdSession {
    return s === 'a' ? this.a : this.b;
  }

  start(): this {
    this.a.start(this.now);
    this.b.start(this.now);
    this.flush();
    return this;
  }

  /** Inject raw bytes as if `to`'s peer had sent them. */
  inject(to: Side, bytes: Uint8Array): void {
    this.inflight.push({ at: this.now + 1, to, bytes });
  }

  private flush(): void {
    for (const side of ['a', 'b'] as const) {
      const s = this.session(side);
      for (let out = s.pollTransmit(); out !== undefined; out = s.pollTransmit()) {
        this.sent.push({ at: this.now, from: side, pkt: decodeBfd(out), bytes: out });
        if (!this.drop[side])
          this.inflight.push({ at: this.now + 1, to: side === 'a' ? 'b' : 'a', bytes: out });
      }
      for (let e = s.pollEvent(); e !== undefined; e = s.pollEvent())
        this.events.push({ ...e, side, at: this.now });
    }
  }

  /** Runs the virtual clock up to `until` (absolute ms). */
  runTo(until: number): void {
    for (;;) {
      this.flush();
      let next = Infinity;
      for (const p of this.inflight) next = Math.min(next, p.at);
      for (const s of [this.a, this.b]) next = Math.min(next, s.pollTimeout() ?? Infinity);
      if (next > until) break;
      this.now = Math.max(this.now, next);
      const due = this.inflight.filter((p) => p.at <= this.now);
      this.inflight = this.inflight.filter((p) => p.at > this.now);
      for (const p of due) this.session(p.to).handlePacket(this.now, decodeBfd(p.bytes), p.bytes);
      for (const s of [this.a, this.b]) {
        const t = s.pollTimeout();
        if (t !== undefined && t <= this.now) s.handleTimeout(this.now);
      }
    }
    this.now = until;
    this.flush();
  }

  run(ms: number): void {
    this.runTo(this.now + ms);
  }

  /** Runs until `pred` holds (checked after every step), at most `maxMs`. */
  runUntil(pred: () => boolean, maxMs = 60_000): number {
    const end = this.now + maxMs;
    while (!pred()) {
      if (this.now >= end) throw new Error(`runUntil: not reached within ${maxMs} ms`);
      this.run(1);
    }
    return this.now;
  }

  up(): boolean {
    return this.a.state === 'Up' && this.b.state === 'Up' && !this.a.pollActive && !this.b.pollActive;
  }
}

function base(localDiscr: number): BfdSessionConfig {
  return { localDiscr, desiredMinTxUs: 300_000, requiredMinRxUs: 300_000, detectMult: 3 };
}

const states = (l: Link, side: Side): string[] =>
  l.events.filter((e) => e.side === side).map((e) => `${e.from}->${e.to}/${e.diag}`);

describe('session establishment', () => {
  it('comes up Down → Init → Up on both sides', () => {
    const l = new Link().start();
    l.runUntil(() => l.up(), 10_000);
    const all = [...states(l, 'a'), ...states(l, 'b')];
    expect(all).toContain('Down->Init/0');
    expect(all.filter((s) => s.endsWith('->Up/0'))).toHaveLength(2);
    expect(l.a.remoteDiscr).toBe(2);
    expect(l.b.remoteDiscr).toBe(1);
    // Before Up, DesiredMinTx is at least 1 s (§6.8.3)
    const early = l.sent.filter((s) => s.pkt.state !== 'Up');
    expect(early.every((s) => s.pkt.desiredMinTxUs === 1_000_000)).toBe(true);
    expect(l.now - T0).toBeLessThan(100); // immediate packets on state changes
  });

  it('a passive side stays silent until it hears the peer', () => {
    const l = new Link({ passive: true }, {});
    l.a.start(l.now);
    l.run(5000);
    expect(l.sent.filter((s) => s.from === 'a')).toHaveLength(0);
    l.b.start(l.now);
    l.runUntil(() => l.up(), 10_000);
  });
});

describe('timer negotiation (§6.8.2–§6.8.4)', () => {
  it('negotiates TX intervals and detection times per side', () => {
    const l = new Link(
      { desiredMinTxUs: 100_000, requiredMinRxUs: 300_000, detectMult: 3 },
      { desiredMinTxUs: 200_000, requiredMinRxUs: 50_000, detectMult: 5 },
    ).start();
    l.runUntil(() => l.up());
    l.run(3000);
    expect(l.a.negotiated).toEqual({
      txIntervalUs: 100_000, // max(100 ms, B's RequiredMinRx 50 ms)
      detectTimeUs: 1_500_000, // B's mult 5 × max(A RequiredMinRx 300 ms, B DesiredMinTx 200 ms)
      remoteMinRxUs: 50_000,
      remoteDesiredMinTxUs: 200_000,
      remoteDetectMult: 5,
    });
    expect(l.b.negotiated).toMatchObject({
      txIntervalUs: 300_000, // max(200 ms, A's RequiredMinRx 300 ms)
      detectTimeUs: 300_000, // 3 × max(50 ms, 100 ms)
    });
    // Steady-state gaps between A's packets lie in 75–100 % of 100 ms (§6.8.7)
    const from = l.now - 2000;
    const times = l.sent.filter((s) => s.from === 'a' && s.at >= from).map((s) => s.at);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(gaps.length).toBeGreaterThan(15);
    for (const g of gaps) {
      expect(g).toBeGreaterThanOrEqual(75);
      expect(g).toBeLessThanOrEqual(100);
    }
  });

  it('entering Up drops the 1 s floor with a Poll Sequence', () => {
    const l = new Link().start();
    l.runUntil(() => l.a.state === 'Up' && l.b.state === 'Up');
    l.runUntil(() => l.up());
    const polls = l.sent.filter((s) => s.pkt.poll);
    const finals = l.sent.filter((s) => s.pkt.final);
    expect(polls.length).toBeGreaterThan(0);
    expect(finals.length).toBeGreaterThan(0);
    expect(polls.every((s) => s.pkt.desiredMinTxUs === 300_000 && s.pkt.state === 'Up')).toBe(true);
    expect(l.sent.some((s) => s.pkt.poll && s.pkt.final)).toBe(false);
    expect(l.a.negotiated.txIntervalUs).toBe(300_000);
  });
});

describe('Poll/Final (§6.5, §6.8.3)', () => {
  it('an increased TX interval applies only after the Final', () => {
    const l = new Link(
      { desiredMinTxUs: 100_000, requiredMinRxUs: 100_000 },
      { desiredMinTxUs: 100_000, requiredMinRxUs: 50_000 },
    ).start();
    l.runUntil(() => l.up());
    l.drop.b = true; // hold back B's Final
    const n = l.sent.length;
    l.a.setParams(l.now, { desiredMinTxUs: 500_000 });
    expect(l.a.pollActive).toBe(true);
    expect(l.a.negotiated.txIntervalUs).toBe(100_000);
    l.run(250);
    expect(l.a.negotiated.txIntervalUs).toBe(100_000); // still polling, old interval in force
    const polled = l.sent.slice(n).filter((s) => s.from === 'a' && s.pkt.poll);
    expect(polled.length).toBeGreaterThan(1);
    expect(polled.every((s) => s.pkt.desiredMinTxUs === 500_000)).toBe(true);
    expect(l.a.state).toBe('Up');
    l.drop.b = false;
    l.runUntil(() => !l.a.pollActive, 1000);
    expect(l.a.negotiated.txIntervalUs).toBe(500_000);
    expect(l.b.negotiated.detectTimeUs).toBe(3 * 500_000);
    l.run(5000);
    expect(l.up()).toBe(true);
  });

  it('a reduced RequiredMinRx keeps the old detection time until the Final', () => {
    const l = new Link({ requiredMinRxUs: 600_000 }, {}).start();
    l.runUntil(() => l.up());
    expect(l.a.negotiated.detectTimeUs).toBe(1_800_000);
    l.drop.b = true;
    l.a.setParams(l.now, { requiredMinRxUs: 300_000 });
    expect(l.a.negotiated.detectTimeUs).toBe(1_800_000);
    l.drop.b = false;
    l.runUntil(() => !l.a.pollActive, 2000);
    expect(l.a.negotiated.detectTimeUs).toBe(900_000);
    expect(l.b.negotiated.txIntervalUs).toBe(300_000);
  });

  it('answers a Poll at once with a Final without P', () => {
    const l = new Link().start();
    l.runUntil(() => l.up());
    const n = l.sent.length;
    l.b.setParams(l.now, { requiredMinRxUs: 400_000 });
    l.run(3);
    const fin = l.sent.slice(n).find((s) => s.from === 'a' && s.pkt.final);
    expect(fin?.pkt.poll).toBe(false);
    expect(fin!.at - l.sent[n]!.at).toBeLessThanOrEqual(2);
  });
});

describe('detection and AdminDown', () => {
  it('declares Down with diag 1 when the peer goes silent; the peer follows with diag 3', () => {
    const l = new Link().start();
    l.runUntil(() => l.up());
    l.run(2000);
    l.drop.b = true;
    const lastHeard = l.sent.filter((s) => s.from === 'b').at(-1)!.at + 1;
    l.runUntil(() => l.a.state === 'Down', 5000);
    const down = l.events.find((e) => e.side === 'a' && e.to === 'Down')!.at;
    expect(l.a.diag).toBe(1);
    expect(down - lastHeard).toBeLessThanOrEqual(900); // 3 × 300 ms
    expect(down - lastHeard).toBeGreaterThanOrEqual(900);
    expect(l.a.remoteDiscr).toBe(0);
    l.runUntil(() => l.b.state === 'Down', 2000);
    expect(l.b.diag).toBe(3);
    l.drop.b = false;
    l.runUntil(() => l.up(), 10_000);
  });

  it('AdminDown is sent with diag 7 and puts the peer Down with diag 3, then recovers', () => {
    const l = new Link().start();
    l.runUntil(() => l.up());
    l.a.adminDown(l.now);
    l.run(2500);
    expect(states(l, 'a').at(-1)).toBe('Up->AdminDown/7');
    expect(states(l, 'b').at(-1)).toBe('Up->Down/3');
    expect(l.sent.filter((s) => s.from === 'a').at(-1)?.pkt).toMatchObject({ state: 'AdminDown', diag: 7 });
    expect(l.b.state).toBe('Down'); // stays Down while the peer is AdminDown
    l.a.adminUp(l.now);
    l.runUntil(() => l.up(), 10_000);
    expect(l.a.diag).toBe(0);
  });

  it('the other side going AdminDown works the same', () => {
    const l = new Link().start();
    l.runUntil(() => l.up());
    l.b.adminDown(l.now, 5);
    l.run(10);
    expect(states(l, 'b').at(-1)).toBe('Up->AdminDown/5');
    expect(l.a.state).toBe('Down');
    expect(l.a.diag).toBe(3);
    l.run(5000);
    expect(l.a.state).toBe('Down'); // no detection expiry, no bounce
    l.b.adminUp(l.now);
    l.runUntil(() => l.up(), 10_000);
  });
});

describe('peer-driven transmission changes', () => {
  it('RequiredMinRx 0 from the peer stops our periodic packets', () => {
    const l = new Link().start();
    l.runUntil(() => l.up());
    l.b.setParams(l.now, { requiredMinRxUs: 0 });
    l.run(100);
    const n = l.sent.filter((s) => s.from === 'a').length;
    l.run(10_000);
    expect(l.sent.filter((s) => s.from === 'a').length).toBe(n);
    expect(l.a.negotiated.txIntervalUs).toBe(0);
    expect(l.a.state).toBe('Up');
    expect(l.b.state).toBe('Up'); // B runs no detection timer (it asked for no packets)
    l.b.setParams(l.now, { requiredMinRxUs: 300_000 });
    l.run(2000);
    expect(l.sent.filter((s) => s.from === 'a').length).toBeGreaterThan(n + 3);
    expect(l.up()).toBe(true);
  });

  it('honours the peer Demand bit while both are Up (§6.6)', () => {
    const s = new BfdSession({ ...base(1), random: mulberry32(SEED) });
    let now = T0;
    s.start(now);
    const peer = (state: BfdPacket['state'], demand: boolean): void => {
      const p: BfdPacket = {
        diag: 0,
        state,
        poll: false,
        final: false,
        cpi: false,
        demand,
        multipoint: false,
        detectMult: 3,
        myDiscr: 9,
        yourDiscr: state === 'Down' ? 0 : 1,
        desiredMinTxUs: 300_000,
        requiredMinRxUs: 300_000,
        requiredMinEchoRxUs: 0,
      };
      const b = encodeBfd(p);
      s.handlePacket(now, decodeBfd(b), b);
    };
    peer('Init', false);
    expect(s.state).toBe('Up');
    peer('Up', true);
    expect(s.pollActive).toBe(true); // our own Poll (1 s floor dropped) still runs periodic packets
    const fin: BfdPacket = {
      diag: 0,
      state: 'Up',
      poll: false,
      final: true,
      cpi: false,
      demand: true,
      multipoint: false,
      detectMult: 3,
      myDiscr: 9,
      yourDiscr: 1,
      desiredMinTxUs: 300_000,
      requiredMinRxUs: 300_000,
      requiredMinEchoRxUs: 0,
    };
    const fb = encodeBfd(fin);
    now += 10;
    s.handlePacket(now, decodeBfd(fb), fb);
    expect(s.pollActive).toBe(false);
    expect(s.negotiated.txIntervalUs).toBe(0);
    while (s.pollTransmit() !== undefined);
    // Only the detection timer is left; nothing is sent while it runs
    expect(s.pollTimeout()).toBe(now + 900);
    peer('Up', false);
    expect(s.negotiated.txIntervalUs).toBe(300_000);
  });
});

describe('authentication (§6.7)', () => {
  const md5 = { type: 3 as const, keyId: 7, secret: 'bfd-secret' };
  it.each([1, 2, 3, 4, 5] as const)('type %i: comes up and stays up', (type) => {
    const auth = { type, keyId: 7, secret: 'bfd-secret' };
    const l = new Link({ auth }, { auth }).start();
    l.runUntil(() => l.up());
    l.run(5000);
    expect(l.up()).toBe(true);
    expect(l.a.stats.authFailures + l.b.stats.authFailures).toBe(0);
    expect(l.sent.every((s) => s.pkt.auth?.type === type && s.pkt.auth.keyId === 7)).toBe(true);
  });

  it('a wrong key never comes up', () => {
    const l = new Link({ auth: md5 }, { auth: { ...md5, secret: 'other' } }).start();
    l.run(10_000);
    expect(l.a.state).toBe('Down');
    expect(l.b.state).toBe('Down');
    expect(l.a.stats.authFailures).toBeGreaterThan(3);
    expect(l.a.lastDiscard).toBe('authentication: digest');
  });

  it('auth on one side only never comes up', () => {
    const l = new Link({ auth: md5 }, {}).start();
    l.run(5000);
    expect(l.a.lastDiscard).toBe('authentication: no-auth');
    expect(l.b.lastDiscard).toBe('authentication: unexpected-auth');
    expect(l.a.state).toBe('Down');
  });

  it('a replayed packet outside the sequence window is discarded', () => {
    const l = new Link({ auth: md5 }, { auth: md5 }).start();
    l.runUntil(() => l.up());
    const old = l.sent.filter((s) => s.from === 'a').at(-1)!;
    l.run(5000); // A sends many more packets: the old sequence number falls behind the window
    const before = l.b.stats.authFailures;
    l.inject('b', old.bytes);
    l.run(2);
    expect(l.b.stats.authFailures).toBe(before + 1);
    expect(l.b.lastDiscard).toBe('authentication: sequence');
    expect(l.up()).toBe(true);
  });

  it('meticulous: replaying the latest packet is discarded', () => {
    const l = new Link({ auth: md5 }, { auth: md5 }).start();
    l.runUntil(() => l.up());
    l.run(1000);
    const last = l.sent.filter((s) => s.from === 'a').at(-1)!;
    l.inject('b', last.bytes);
    l.run(1);
    expect(l.b.lastDiscard).toBe('authentication: sequence');
  });
});

describe('jitter (§6.8.7)', () => {
  const gaps = (detectMult: number, seed: number): number[] => {
    const l = new Link(
      { desiredMinTxUs: 1_000_000, detectMult },
      { requiredMinRxUs: 1_000_000 },
      seed,
    ).start();
    l.runUntil(() => l.up());
    const from = l.now;
    l.run(200_000);
    const t = l.sent.filter((s) => s.from === 'a' && s.at > from).map((s) => s.at);
    return t.slice(1).map((x, i) => x - t[i]!);
  };
  it(`75–100 % of the interval (seed ${SEED})`, () => {
    const g = gaps(3, SEED);
    expect(g.length).toBeGreaterThan(150);
    expect(Math.min(...g)).toBeGreaterThanOrEqual(750);
    expect(Math.max(...g)).toBeLessThanOrEqual(1000);
    expect(Math.min(...g)).toBeLessThan(770); // the whole range is used
    expect(Math.max(...g)).toBeGreaterThan(980);
  });
  it(`75–90 % when DetectMult is 1 (seed ${SEED})`, () => {
    const g = gaps(1, SEED + 7);
    expect(Math.min(...g)).toBeGreaterThanOrEqual(750);
    expect(Math.max(...g)).toBeLessThanOrEqual(900);
    expect(Math.max(...g)).toBeGreaterThan(880);
  });
});

describe('configuration errors', () => {
  it('rejects discriminator 0 and bad intervals', () => {
    expect(() => new BfdSession({ ...base(0) })).toThrow(/discriminator/);
    expect(() => new BfdSession({ ...base(1), desiredMinTxUs: 0 })).toThrow(/desiredMinTx/);
    expect(() => new BfdSession({ ...base(1), detectMult: 0 })).toThrow(/detectMult/);
  });
});
