/**
 * The BGP FSM core (src/bgp/fsm.ts) on a virtual clock: two cores wired through an in-memory link,
 * and single cores driven with hand-made bytes. No sockets, no real timers: a hold-timer test takes
 * milliseconds.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BgpFsm,
  FSM_DEFAULTS,
  resolveCollision,
  type FsmConfig,
  type FsmEvent,
  type FsmState,
} from '../../src/bgp/fsm.ts';
import { MessageType } from '../../src/bgp/wire/constants.ts';
import { LocalUsageError, NotificationError } from '../../src/bgp/wire/errors.ts';
import { Framer, encodeMessage } from '../../src/bgp/wire/header.ts';
import { buildOpen } from '../../src/bgp/wire/negotiate.ts';
import { decodeNotification, encodeKeepalive, encodeNotification } from '../../src/bgp/wire/notification.ts';
import { encodeOpen } from '../../src/bgp/wire/open.ts';
import { encodeRouteRefresh } from '../../src/bgp/wire/route-refresh.ts';
import type { NotificationMessage } from '../../src/bgp/wire/types.ts';

const T0 = 1_000_000;
const SEED = 20240611;

function cfgA(over: Partial<FsmConfig> = {}): FsmConfig {
  return {
    localAsn: 65001,
    routerId: 0x01010101,
    holdTime: 9,
    families: ['ipv4-unicast'],
    peerAsn: 65002,
    passive: false,
    connectRetryTime: 5,
    idleHoldTime: 1,
    maxIdleHoldTime: 30,
    ...over,
  };
}

function cfgB(over: Partial<FsmConfig> = {}): FsmConfig {
  return cfgA({ localAsn: 65002, routerId: 0x02020202, peerAsn: 65001, ...over });
}

type EventOf<T extends FsmEvent['type']> = Extract<FsmEvent, { type: T }>;

class Side {
  readonly events: { at: number; ev: FsmEvent }[] = [];
  /** Everything this side transmits is dropped (it "stops sending"). */
  mute = false;
  /** The socket is stuck: what the core hands out piles up in the shell's backlog. */
  blocked = false;
  backlog = 0;
  constructor(
    readonly name: 'a' | 'b',
    readonly fsm: BgpFsm,
  ) {}

  of<T extends FsmEvent['type']>(type: T): (EventOf<T> & { at: number })[] {
    const out: (EventOf<T> & { at: number })[] = [];
    for (const { at, ev } of this.events) if (ev.type === type) out.push({ ...(ev as EventOf<T>), at });
    return out;
  }

  states(): FsmState[] {
    return this.of('state').map((e) => e.to);
  }
}

interface Sent {
  at: number;
  from: 'a' | 'b';
  type: number;
  bytes: Uint8Array;
  delivered: boolean;
}

/** Two cores and the shell around them: connects, pumps bytes both ways, runs the virtual clock. */
class Link {
  now = T0;
  up = false;
  readonly a: Side;
  readonly b: Side;
  readonly log: Sent[] = [];

  constructor(ca: FsmConfig, cb: FsmConfig) {
    this.a = new Side('a', new BgpFsm(ca));
    this.b = new Side('b', new BgpFsm(cb));
  }

  peer(s: Side): Side {
    return s === this.a ? this.b : this.a;
  }

  sent(from: 'a' | 'b', type: number): Sent[] {
    return this.log.filter((m) => m.from === from && m.type === type);
  }

  private connect(s: Side): void {
    if (this.up) return; // a connection already exists: the harness models one connection only
    const p = this.peer(s);
    if (p.fsm.state === 'active' || p.fsm.state === 'connect') {
      this.up = true;
      s.fsm.handleConnected(this.now);
      p.fsm.handleConnected(this.now);
    } else {
      s.fsm.handleConnectFailed(this.now); // refused: the peer is Idle
    }
  }

  private disconnect(s: Side, abort: boolean): void {
    if (!this.up) return;
    if (!abort) this.pumpTx(s); // flush (the NOTIFICATION) before closing
    this.up = false;
    this.peer(s).fsm.handleTransportClosed(this.now);
  }

  private pumpEvents(s: Side): boolean {
    let progress = false;
    for (let ev = s.fsm.pollEvent(); ev !== undefined; ev = s.fsm.pollEvent()) {
      progress = true;
      s.events.push({ at: this.now, ev });
      if (ev.type === 'connect') this.connect(s);
      else if (ev.type === 'disconnect') this.disconnect(s, ev.abort === true);
    }
    return progress;
  }

  private pumpTx(s: Side): boolean {
    let progress = false;
    for (let m = s.fsm.pollTransmit(); m !== undefined; m = s.fsm.pollTransmit()) {
      progress = true;
      const deliver = this.up && !s.mute && !s.blocked;
      this.log.push({ at: this.now, from: s.name, type: m[18]!, bytes: m, delivered: deliver });
      if (s.blocked && this.up) {
        s.backlog += m.length;
        s.fsm.handleWritable(this.now, s.backlog);
      }
      if (deliver) this.peer(s).fsm.handleBytes(this.now, m);
    }
    return progress;
  }

  /** Drain events and transmit queues until nothing moves. */
  settle(): void {
    for (let i = 0; i < 10_000; i++) {
      let progress = false;
      for (const s of [this.a, this.b]) {
        if (this.pumpEvents(s)) progress = true;
        if (this.pumpTx(s)) progress = true;
      }
      if (!progress) return;
    }
    throw new Error('link does not settle');
  }

  /** Advance the clock to `until` (absolute ms), firing timers in order. */
  advanceTo(until: number, stop?: () => boolean): void {
    this.settle();
    for (let i = 0; i < 100_000; i++) {
      if (stop?.() === true) return;
      const ta = this.a.fsm.pollTimeout();
      const tb = this.b.fsm.pollTimeout();
      const next = Math.min(ta ?? Infinity, tb ?? Infinity);
      if (next > until) {
        this.now = until;
        return;
      }
      this.now = Math.max(this.now, next);
      for (const s of [this.a, this.b]) {
        const t = s.fsm.pollTimeout();
        if (t !== undefined && t <= this.now) s.fsm.handleTimeout(this.now);
      }
      this.settle();
    }
    throw new Error('too many timer firings');
  }

  run(ms: number): void {
    this.advanceTo(this.now + ms);
  }

  /** Run until `pred` holds (checked after every step), at most `maxMs`. */
  until(pred: () => boolean, maxMs = 600_000): void {
    this.advanceTo(this.now + maxMs, pred);
    if (!pred()) throw new Error(`condition not met within ${maxMs} ms`);
  }

  startBoth(): void {
    this.a.fsm.start(this.now);
    this.b.fsm.start(this.now);
    this.settle();
  }

  established(): boolean {
    return this.a.fsm.state === 'established' && this.b.fsm.state === 'established';
  }
}

function notificationOf(bytes: Uint8Array): NotificationMessage {
  expect(bytes[18]).toBe(MessageType.NOTIFICATION);
  return decodeNotification(bytes.subarray(19));
}

/** A single core driven by hand: `feed` delivers bytes from a scripted peer. */
class Manual {
  now = T0;
  readonly fsm: BgpFsm;
  readonly events: FsmEvent[] = [];
  private readonly framer = new Framer(65535);

  constructor(cfg: FsmConfig = cfgA()) {
    this.fsm = new BgpFsm(cfg);
  }

  feed(bytes: Uint8Array): this {
    this.fsm.handleBytes(this.now, bytes);
    return this.drainEvents();
  }

  drainEvents(): this {
    for (let e = this.fsm.pollEvent(); e !== undefined; e = this.fsm.pollEvent()) this.events.push(e);
    return this;
  }

  /** Everything the core transmitted since the last call, framed. */
  sent(): { type: number; body: Uint8Array }[] {
    for (let m = this.fsm.pollTransmit(); m !== undefined; m = this.fsm.pollTransmit()) this.framer.push(m);
    const out: { type: number; body: Uint8Array }[] = [];
    for (let m = this.framer.next(); m !== undefined; m = this.framer.next()) out.push(m);
    return out;
  }

  sentNotification(): NotificationMessage | undefined {
    const n = this.sent().find((m) => m.type === MessageType.NOTIFICATION);
    return n === undefined ? undefined : decodeNotification(n.body);
  }

  at(ms: number): this {
    this.now = ms;
    this.fsm.handleTimeout(ms);
    return this.drainEvents();
  }

  down(): EventOf<'down'> | undefined {
    return this.events.find((e): e is EventOf<'down'> => e.type === 'down');
  }

  toOpenSent(): this {
    this.fsm.start(this.now);
    this.fsm.handleConnected(this.now);
    this.drainEvents();
    expect(this.fsm.state).toBe('opensent');
    expect(this.sent().map((m) => m.type)).toEqual([MessageType.OPEN]);
    return this;
  }

  toOpenConfirm(peer: FsmConfig = cfgB()): this {
    this.toOpenSent().feed(encodeOpen(buildOpen(peer)));
    expect(this.fsm.state).toBe('openconfirm');
    expect(this.sent().map((m) => m.type)).toEqual([MessageType.KEEPALIVE]);
    return this;
  }

  toEstablished(peer: FsmConfig = cfgB()): this {
    this.toOpenConfirm(peer).feed(encodeKeepalive());
    expect(this.fsm.state).toBe('established');
    return this;
  }
}

const UPDATE_EOR = encodeMessage(MessageType.UPDATE, Uint8Array.of(0, 0, 0, 0)); // IPv4 End-of-RIB

// ------------------------------------------------------------------------------------------ tests

describe('session establishment over an in-memory link', () => {
  it('two active speakers reach Established and agree on the timers', () => {
    const link = new Link(cfgA(), cfgB({ holdTime: 30 }));
    link.startBoth();
    expect(link.established()).toBe(true);
    expect(link.a.states()).toEqual(['connect', 'opensent', 'openconfirm', 'established']);
    const [est] = link.a.of('established');
    expect(est?.negotiated.holdTime).toBe(9);
    expect(est?.negotiated.keepaliveTime).toBe(3);
    expect(est?.negotiated.peerAsn).toBe(65002);
    expect(link.a.of('open')[0]?.open.bgpId).toBe(0x02020202);
    expect(link.b.of('open')[0]?.open.bgpId).toBe(0x01010101);
    expect(link.a.fsm.stats.establishedTransitions).toBe(1);
    expect(link.a.fsm.stats.establishedAt).toBe(T0);
    expect(link.a.fsm.negotiated?.families.has('ipv4-unicast')).toBe(true);
  });

  it('active towards passive', () => {
    const link = new Link(cfgA(), cfgB({ passive: true }));
    link.startBoth();
    expect(link.established()).toBe(true);
    expect(link.b.states()).toEqual(['active', 'opensent', 'openconfirm', 'established']);
    expect(link.b.of('connect')).toHaveLength(0);
  });

  it('passive towards active', () => {
    const link = new Link(cfgA({ passive: true }), cfgB());
    link.startBoth();
    expect(link.established()).toBe(true);
  });

  it('two passive speakers never connect and have nothing to time', () => {
    const link = new Link(cfgA({ passive: true }), cfgB({ passive: true }));
    link.startBoth();
    link.run(600_000);
    expect(link.a.fsm.state).toBe('active');
    expect(link.b.fsm.state).toBe('active');
    expect(link.a.of('connect')).toHaveLength(0);
    expect(link.a.fsm.pollTimeout()).toBeUndefined();
  });

  it('retries an unreachable peer every ConnectRetryTime, then connects when it appears', () => {
    const link = new Link(cfgA(), cfgB({ passive: true }));
    link.a.fsm.start(link.now);
    link.run(12_000);
    expect(link.a.of('connect').map((e) => e.at - T0)).toEqual([0, 5_000, 10_000]);
    expect(link.a.fsm.state).toBe('active');
    expect(link.a.of('down')).toHaveLength(0); // a refused connection is not a session failure
    link.b.fsm.start(link.now);
    link.until(() => link.established(), 5_000);
    expect(link.now - T0).toBe(15_000);
  });

  it('survives the peer OPEN and KEEPALIVE arriving one byte at a time', () => {
    const m = new Manual().toOpenSent();
    const bytes = new Uint8Array([...encodeOpen(buildOpen(cfgB())), ...encodeKeepalive()]);
    for (let i = 0; i < bytes.length; i++) m.feed(bytes.subarray(i, i + 1));
    expect(m.fsm.state).toBe('established');
  });

  it('DelayOpen: the side that delays answers the peer OPEN at once (event 20)', () => {
    const link = new Link(cfgA({ delayOpen: 2 }), cfgB({ passive: true }));
    link.startBoth();
    expect(link.established()).toBe(true);
    expect(link.a.states()).toEqual(['connect', 'opensent', 'openconfirm', 'established']);
  });

  it('DelayOpen on both sides: the shorter timer sends the first OPEN (event 12)', () => {
    const link = new Link(cfgA({ delayOpen: 2 }), cfgB({ passive: true, delayOpen: 3 }));
    link.startBoth();
    expect(link.a.fsm.state).toBe('connect');
    link.until(() => link.established(), 10_000);
    expect(link.now - T0).toBe(2_000);
    expect(link.sent('a', MessageType.OPEN)[0]?.at).toBe(T0 + 2_000);
  });
});

describe('keepalive and hold timers', () => {
  it('sends KEEPALIVE every hold/3 seconds', () => {
    const link = new Link(cfgA({ holdTime: 90 }), cfgB({ holdTime: 30 }));
    link.startBoth();
    link.run(60_000);
    const times = link.sent('a', MessageType.KEEPALIVE).map((m) => m.at - T0);
    expect(times).toEqual([0, 10_000, 20_000, 30_000, 40_000, 50_000, 60_000]);
    expect(link.established()).toBe(true);
    expect(link.a.of('down')).toHaveLength(0);
  });

  it('tears the session down with 4/0 when the peer stops sending', () => {
    const link = new Link(cfgA(), cfgB());
    link.startBoth();
    link.run(20_000);
    const lastFromB = link.now;
    link.b.mute = true;
    link.until(() => link.a.fsm.state === 'idle', 60_000);
    const down = link.a.of('down')[0];
    expect(down?.reason).toBe('hold timer expired');
    expect(down?.sent).toEqual({ code: 4, subcode: 0 });
    // the last KEEPALIVE from b was delivered at or before lastFromB; hold time is 9 s
    expect(down!.at - lastFromB).toBeLessThanOrEqual(9_000);
    expect(down!.at - lastFromB).toBeGreaterThan(6_000);
    const got = link.b.of('down')[0]?.received;
    expect([got?.code, got?.subcode]).toEqual([4, 0]);
    expect(link.a.fsm.stats.flaps).toBe(1);
    expect(link.a.fsm.stats.lastError).toMatch(/hold timer expired.*4\/0/);
  });

  it('hold time 0 (negotiated from one side): no keepalives, never expires', () => {
    const link = new Link(cfgA({ holdTime: 0 }), cfgB({ holdTime: 9 }));
    link.startBoth();
    expect(link.established()).toBe(true);
    expect(link.a.fsm.negotiated?.holdTime).toBe(0);
    const before = link.log.length;
    link.run(3_600_000);
    expect(link.established()).toBe(true);
    expect(link.log.length).toBe(before);
    expect(link.a.fsm.pollTimeout()).toBeUndefined();
    expect(link.b.fsm.pollTimeout()).toBeUndefined();
  });

  it('OpenSent waits 4 minutes for the peer OPEN, then sends 4/0', () => {
    const m = new Manual().toOpenSent();
    expect(m.fsm.pollTimeout()).toBe(T0 + 240_000);
    m.at(T0 + 239_999);
    expect(m.fsm.state).toBe('opensent');
    m.at(T0 + 240_000);
    expect(m.fsm.state).toBe('idle');
    expect(m.sentNotification()).toMatchObject({ code: 4, subcode: 0 });
  });

  it('UPDATEs restart the hold timer; an UPDATE sent restarts the keepalive timer', () => {
    const m = new Manual().toEstablished();
    m.at(T0 + 8_000); // no expiry yet (hold 9 s from Established at 0)
    m.sent();
    m.feed(UPDATE_EOR);
    expect(m.events.filter((e) => e.type === 'update')).toHaveLength(1);
    m.at(T0 + 16_000);
    expect(m.fsm.state).toBe('established'); // hold restarted at 8 s, expires at 17 s
    m.at(T0 + 17_000);
    expect(m.fsm.state).toBe('idle');

    const k = new Manual().toEstablished();
    k.now = T0 + 2_000;
    k.fsm.handleTimeout(k.now);
    k.fsm.sendUpdate(UPDATE_EOR);
    expect(k.sent().map((x) => x.type)).toEqual([MessageType.UPDATE]);
    expect(k.fsm.pollTimeout()).toBe(T0 + 5_000); // keepalive moved from 3 s to 2 + 3 s
  });
});

describe('OPEN errors', () => {
  it('bad peer AS: the other side receives NOTIFICATION 2/2', () => {
    const link = new Link(cfgA({ peerAsn: 65099 }), cfgB());
    link.startBoth();
    const down = link.a.of('down')[0];
    expect(down?.sent).toEqual({ code: 2, subcode: 2 });
    const got = link.b.of('down')[0]?.received;
    expect([got?.code, got?.subcode]).toEqual([2, 2]);
    expect(link.a.fsm.state).toBe('idle');
  });

  it('a list of accepted peer ASes, or none at all (dynamic neighbours)', () => {
    const list = new Link(cfgA({ peerAsn: [65000, 65002] }), cfgB());
    list.startBoth();
    expect(list.established()).toBe(true);
    const any = new Link(cfgA({ peerAsn: undefined }), cfgB());
    any.startBoth();
    expect(any.established()).toBe(true);
  });

  it('version mismatch: an OPEN with version 3 gets 2/1 with the supported version', () => {
    const m = new Manual().toOpenSent();
    m.feed(encodeOpen({ ...buildOpen(cfgB()), version: 3 }));
    const n = m.sentNotification();
    expect([n?.code, n?.subcode]).toEqual([2, 1]);
    expect([...n!.data]).toEqual([0, 4]);
    expect(m.fsm.state).toBe('idle');
  });

  it('receiving 2/1 (version error) in OpenSent goes Idle without damping (event 24)', () => {
    const m = new Manual().toOpenSent();
    m.feed(encodeNotification(2, 1, Uint8Array.of(0, 3)));
    expect(m.fsm.state).toBe('idle');
    expect(m.sent()).toEqual([]); // never answer a NOTIFICATION
    expect(m.fsm.idleHoldTime).toBe(1); // not doubled
    expect(m.down()?.received?.code).toBe(2);
  });
});

describe('FSM errors (RFC 6608) and bad messages', () => {
  it('UPDATE in OpenSent → 5/1', () => {
    const m = new Manual().toOpenSent().feed(UPDATE_EOR);
    const n = m.sentNotification();
    expect([n?.code, n?.subcode]).toEqual([5, 1]);
    expect(m.fsm.state).toBe('idle');
    expect(m.events.filter((e) => e.type === 'update')).toHaveLength(0);
  });

  it('UPDATE in OpenConfirm → 5/2', () => {
    const n = new Manual().toOpenConfirm().feed(UPDATE_EOR).sentNotification();
    expect([n?.code, n?.subcode]).toEqual([5, 2]);
  });

  it('OPEN in Established → 5/3', () => {
    const n = new Manual()
      .toEstablished()
      .feed(encodeOpen(buildOpen(cfgB())))
      .sentNotification();
    expect([n?.code, n?.subcode]).toEqual([5, 3]);
  });

  it('OPEN in OpenConfirm → 5/2', () => {
    const n = new Manual()
      .toOpenConfirm()
      .feed(encodeOpen(buildOpen(cfgB())))
      .sentNotification();
    expect([n?.code, n?.subcode]).toEqual([5, 2]);
  });

  it('KEEPALIVE in OpenSent → 5/1', () => {
    const n = new Manual().toOpenSent().feed(encodeKeepalive()).sentNotification();
    expect([n?.code, n?.subcode]).toEqual([5, 1]);
  });

  it('ROUTE-REFRESH in OpenConfirm → 5/2', () => {
    const n = new Manual().toOpenConfirm().feed(encodeRouteRefresh(1, 1)).sentNotification();
    expect([n?.code, n?.subcode]).toEqual([5, 2]);
  });

  it('unknown message type → 1/3 with the type as data', () => {
    const m = new Manual().toEstablished().feed(encodeMessage(9, new Uint8Array(4)));
    const n = m.sentNotification();
    expect([n?.code, n?.subcode, ...n!.data]).toEqual([1, 3, 9]);
    expect(m.down()?.error).toBeInstanceOf(NotificationError);
  });

  it('bad marker → 1/1, and the rest of the chunk is ignored', () => {
    const bad = encodeKeepalive();
    bad[0] = 0;
    const m = new Manual().toEstablished().feed(new Uint8Array([...bad, ...UPDATE_EOR]));
    const n = m.sentNotification();
    expect([n?.code, n?.subcode]).toEqual([1, 1]);
    expect(m.events.filter((e) => e.type === 'update')).toHaveLength(0);
  });

  it('a session-reset UPDATE error sends 3/x', () => {
    // withdrawn routes length 5 with only 2 bytes after it: RFC 7606 §4 session reset
    const m = new Manual().toEstablished().feed(encodeMessage(MessageType.UPDATE, Uint8Array.of(0, 5, 0, 0)));
    const n = m.sentNotification();
    expect(n?.code).toBe(3);
    expect(m.fsm.state).toBe('idle');
    expect(m.down()?.sent?.code).toBe(3);
  });

  it('a NOTIFICATION from the peer ends the session and is recorded, unanswered', () => {
    const m = new Manual().toEstablished().feed(encodeNotification(6, 3));
    expect(m.fsm.state).toBe('idle');
    expect(m.sent()).toEqual([]);
    expect(m.down()?.received?.subcode).toBe(3);
    expect(m.fsm.stats.notificationsIn).toBe(1);
    expect(m.events.map((e) => e.type).slice(-3)).toEqual(['state', 'disconnect', 'down']);
  });

  it('the speaker reports an UPDATE error with sendNotification', () => {
    const m = new Manual().toEstablished();
    m.fsm.sendUpdate(UPDATE_EOR);
    m.fsm.sendNotification(m.now, new NotificationError(3, 11, 'malformed AS_PATH'));
    m.drainEvents();
    expect(m.sent().map((x) => x.type)).toEqual([MessageType.NOTIFICATION]); // queued UPDATE dropped
    expect(m.down()?.sent).toEqual({ code: 3, subcode: 11 });
  });

  it(`random bytes in Established never throw out of handleBytes (seed ${SEED})`, () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }),
        fc.boolean(),
        (chunks, marker) => {
          const m = new Manual().toEstablished();
          for (const c of chunks) {
            const chunk =
              marker && c.length >= 19 ? new Uint8Array([...new Uint8Array(16).fill(0xff), ...c]) : c;
            m.feed(chunk);
          }
          expect(['established', 'idle']).toContain(m.fsm.state);
          expect(m.down()?.error === undefined || m.down()?.error instanceof NotificationError).toBe(true);
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });
});

describe('ManualStop, Cease and collisions', () => {
  it('ManualStop sends Cease/2 with the shutdown message and stays down until start()', () => {
    const link = new Link(cfgA(), cfgB());
    link.startBoth();
    link.a.fsm.stop(link.now, { subcode: 2, message: 'maintenance window' });
    link.settle();
    const got = link.b.of('down')[0]?.received;
    expect([got?.code, got?.subcode, got?.shutdownMessage]).toEqual([6, 2, 'maintenance window']);
    expect(link.a.of('down')[0]?.sent).toEqual({ code: 6, subcode: 2 });
    const connects = link.a.of('connect').length;
    link.run(600_000);
    expect(link.a.fsm.state).toBe('idle');
    expect(link.a.of('connect')).toHaveLength(connects); // no automatic restart
    expect(link.b.of('connect').length).toBeGreaterThan(10); // b keeps trying (and is refused)
    link.a.fsm.start(link.now);
    link.until(() => link.established(), 10_000);
  });

  it('ManualStop without a message: plain Cease/2; stop() while Idle cancels the restart', () => {
    const link = new Link(cfgA(), cfgB());
    link.startBoth();
    link.b.fsm.stop(link.now);
    link.settle();
    const got = link.a.of('down')[0]?.received;
    expect([got?.code, got?.subcode, got?.data.length]).toEqual([6, 2, 0]);
    expect(link.a.fsm.pollTimeout()).toBe(link.now + 1_000); // a's idle hold
    link.a.fsm.stop(link.now);
    expect(link.a.fsm.pollTimeout()).toBeUndefined();
  });

  it('cease() (e.g. BFD down, subcode 10) restarts automatically after the idle hold', () => {
    const link = new Link(cfgA(), cfgB({ passive: true }));
    link.startBoth();
    link.a.fsm.cease(link.now, 10);
    link.settle();
    expect(link.b.of('down')[0]?.received?.subcode).toBe(10);
    link.until(() => link.established(), 10_000);
    expect(link.a.fsm.stats.establishedTransitions).toBe(2);
  });

  it('resolveCollision keeps the connection of the higher BGP id (unsigned)', () => {
    expect(resolveCollision(0x02020202, 0x01010101)).toBe('keep-local-initiated');
    expect(resolveCollision(0x01010101, 0x02020202)).toBe('keep-remote-initiated');
    expect(resolveCollision(0xc0000001, 0x01010101)).toBe('keep-local-initiated');
    expect(resolveCollision(-1, 0x7fffffff)).toBe('keep-local-initiated'); // -1 is 255.255.255.255
    expect(resolveCollision(7, 7, 65002, 65001)).toBe('keep-local-initiated'); // RFC 6286 §2.3
    expect(resolveCollision(7, 7, 65001, 65002)).toBe('keep-remote-initiated');
  });

  it('closeForCollision: Cease/7, Idle, no damping, no automatic restart', () => {
    const m = new Manual().toOpenConfirm();
    m.fsm.closeForCollision(m.now);
    m.drainEvents();
    const n = m.sentNotification();
    expect([n?.code, n?.subcode]).toEqual([6, 7]);
    expect(m.fsm.state).toBe('idle');
    expect(m.fsm.idleHoldTime).toBe(1);
    expect(m.fsm.pollTimeout()).toBeUndefined();
    expect(m.down()?.reason).toBe('connection collision');
  });
});

describe('damping of flapping peers', () => {
  it('idle hold doubles on each flap up to the cap, and resets after a stable session', () => {
    const link = new Link(
      cfgA({ idleHoldTime: 1, maxIdleHoldTime: 8 }),
      cfgB({ passive: true, idleHoldTime: 0 }),
    );
    link.startBoth();
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      expect(link.established()).toBe(true);
      link.run(1_000);
      link.a.fsm.cease(link.now, 10);
      link.settle();
      const downAt = link.now;
      const connects = link.a.of('connect').length;
      link.until(() => link.a.of('connect').length > connects, 60_000);
      delays.push(link.now - downAt);
      link.until(() => link.established(), 10_000);
    }
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
    expect(link.a.fsm.stats.flaps).toBe(6);

    link.run(16_000); // 2 × the cap: stable
    link.a.fsm.cease(link.now, 10);
    link.settle();
    const downAt = link.now;
    const connects = link.a.of('connect').length;
    link.until(() => link.a.of('connect').length > connects, 60_000);
    expect(link.now - downAt).toBe(1_000);
  });

  it('a peer that keeps refusing our OPEN backs off too (each failure doubles)', () => {
    const link = new Link(
      cfgA({ peerAsn: 65099, idleHoldTime: 1, maxIdleHoldTime: 4 }),
      cfgB({ passive: true, idleHoldTime: 0 }),
    );
    link.startBoth();
    link.run(30_000);
    const downs = link.a.of('down').map((d) => d.at - T0);
    const gaps = downs.slice(1).map((d, i) => d - downs[i]!);
    expect(gaps.slice(0, 4)).toEqual([1_000, 2_000, 4_000, 4_000]);
  });

  it('a session lost in OpenConfirm or Established by TCP close is damped; in OpenSent it goes Active', () => {
    const m = new Manual().toOpenSent();
    m.fsm.handleTransportClosed(m.now);
    m.drainEvents();
    expect(m.fsm.state).toBe('active');
    expect(m.fsm.pollTimeout()).toBe(m.now + 5_000); // ConnectRetryTimer
    expect(m.fsm.idleHoldTime).toBe(1);

    const e = new Manual().toEstablished();
    e.fsm.handleTransportClosed(e.now);
    e.drainEvents();
    expect(e.fsm.state).toBe('idle');
    expect(e.down()?.reason).toBe('connection closed by peer');
    expect(e.fsm.idleHoldTime).toBe(2);
    expect(e.fsm.stats.flaps).toBe(1);
    expect(e.fsm.pollTimeout()).toBe(e.now + 1_000);
    e.at(e.now + 1_000);
    expect(e.fsm.state).toBe('connect');
    expect(e.events.at(-1)).toEqual({ type: 'connect' });
  });
});

describe('send hold timer (RFC 9687)', () => {
  it('a peer that stops reading is dropped with 8/0 after SendHoldTime, without waiting to flush', () => {
    const link = new Link(cfgA({ holdTime: 30, sendHoldTime: 5 }), cfgB({ holdTime: 30 }));
    link.startBoth();
    link.run(1_000);
    link.a.blocked = true;
    link.until(() => link.a.fsm.state === 'idle', 60_000);
    expect(link.now - T0).toBe(15_000); // keepalive at 10 s stuck, + 5 s
    const down = link.a.of('down')[0];
    expect(down?.reason).toBe('send hold timer expired');
    expect(down?.sent).toEqual({ code: 8, subcode: 0 });
    expect(link.a.of('disconnect')[0]?.abort).toBe(true);
    const stuck = link.sent('a', MessageType.NOTIFICATION)[0];
    expect(stuck?.delivered).toBe(false); // handed to the shell, never written
    expect(notificationOf(stuck!.bytes)).toMatchObject({ code: 8, subcode: 0 });
    expect(link.b.of('down')[0]?.reason).toBe('connection closed by peer');
  });

  it('progress restarts it, draining stops it, and the default is max(8 min, 2 × hold)', () => {
    const m = new Manual(cfgA({ holdTime: 300 })).toEstablished(cfgB({ holdTime: 300 }));
    const feedKeepalives = (until: number): void => {
      while (m.now + 60_000 <= until) {
        m.at(m.now + 60_000);
        m.feed(encodeKeepalive());
      }
      m.at(until);
    };
    m.fsm.handleWritable(m.now, 100);
    const start = m.now;
    feedKeepalives(start + 599_000);
    expect(m.fsm.state).toBe('established');
    m.fsm.handleWritable(m.now, 50); // progress at 599 s: restart
    feedKeepalives(start + 1_000_000);
    expect(m.fsm.state).toBe('established');
    m.fsm.handleWritable(m.now, 0); // drained
    feedKeepalives(start + 2_000_000);
    expect(m.fsm.state).toBe('established');
    m.fsm.handleWritable(m.now, 10);
    const blockedAt = m.now;
    feedKeepalives(blockedAt + 599_999);
    expect(m.fsm.state).toBe('established');
    m.at(blockedAt + 600_000);
    expect(m.fsm.state).toBe('idle');
    expect(m.down()?.sent).toEqual({ code: 8, subcode: 0 });
  });
});

describe('transmit queue, UPDATE and ROUTE-REFRESH', () => {
  it('sendUpdate and sendRouteRefresh only in Established', () => {
    const m = new Manual().toOpenConfirm();
    expect(() => m.fsm.sendUpdate(UPDATE_EOR)).toThrow(LocalUsageError);
    expect(() => m.fsm.sendRouteRefresh(1, 1)).toThrow(LocalUsageError);
    m.feed(encodeKeepalive());
    expect(() => m.fsm.sendUpdate(encodeKeepalive())).toThrow(LocalUsageError);
    const noRr = new Manual().toEstablished(cfgB({ routeRefresh: false }));
    expect(() => noRr.fsm.sendRouteRefresh(1, 1)).toThrow(LocalUsageError);
  });

  it('priority order NOTIFICATION > KEEPALIVE > ROUTE-REFRESH > UPDATE, BoRR/EoRR in order with UPDATEs', () => {
    const m = new Manual().toEstablished();
    m.fsm.sendRouteRefresh(1, 1, 1); // BoRR
    m.fsm.sendUpdate(UPDATE_EOR);
    m.fsm.sendRouteRefresh(1, 1, 2); // EoRR
    m.fsm.sendRouteRefresh(1, 1); // normal request
    expect(m.fsm.queuedBytes).toBe(23 * 4);
    expect(m.fsm.wantsWrite).toBe(true);
    m.at(T0 + 3_000); // keepalive
    expect(m.fsm.queuedBytes).toBe(23 * 4 + 19);
    const order = m.sent().map((x) => (x.type === MessageType.ROUTE_REFRESH ? `rr${x.body[2]}` : x.type));
    expect(order).toEqual([MessageType.KEEPALIVE, 'rr0', 'rr1', MessageType.UPDATE, 'rr2']);
    expect(m.fsm.queuedBytes).toBe(0);
    expect(m.fsm.stats.updatesOut).toBe(1);

    m.fsm.sendUpdate(UPDATE_EOR);
    m.fsm.stop(m.now);
    expect(m.sent().map((x) => x.type)).toEqual([MessageType.NOTIFICATION]);
  });

  it('UPDATE and ROUTE-REFRESH flow between two speakers', () => {
    const link = new Link(cfgA(), cfgB());
    link.startBoth();
    link.a.fsm.sendUpdate(UPDATE_EOR);
    link.a.fsm.sendRouteRefresh(1, 1);
    link.settle();
    expect(link.b.of('update')).toHaveLength(1);
    expect(link.b.of('route-refresh')[0]?.msg).toMatchObject({ afi: 1, safi: 1, subtype: 0 });
    expect(link.b.fsm.stats.updatesIn).toBe(1);
    expect(link.a.fsm.stats.updatesOut).toBe(1);
  });

  it('a ROUTE-REFRESH for a family not negotiated is ignored (RFC 2918 §4)', () => {
    const m = new Manual().toEstablished().feed(encodeRouteRefresh(2, 1));
    expect(m.events.filter((e) => e.type === 'route-refresh')).toHaveLength(0);
    expect(m.fsm.state).toBe('established');
  });

  it('rejects a configuration it cannot run with', () => {
    expect(() => new BgpFsm(cfgA({ connectRetryTime: 0 }))).toThrow(LocalUsageError);
    expect(() => new BgpFsm(cfgA({ idleHoldTime: -1 }))).toThrow(LocalUsageError);
    expect(() => new BgpFsm(cfgA({ holdTime: 2 }))).toThrow(LocalUsageError);
    expect(() => new BgpFsm(cfgA({ sendHoldTime: 0 }))).toThrow(LocalUsageError);
    expect(new BgpFsm({ ...cfgA(), ...FSM_DEFAULTS }).state).toBe('idle');
  });

  it('a second connection on one core is a LocalUsageError; Idle refuses connections', () => {
    const m = new Manual().toOpenSent();
    expect(() => m.fsm.handleConnected(m.now)).toThrow(LocalUsageError);
    const idle = new Manual();
    idle.fsm.handleConnected(idle.now);
    expect(idle.drainEvents().events).toEqual([{ type: 'disconnect' }]);
  });
});
