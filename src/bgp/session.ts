/**
 * The I/O shell around one BgpFsm: a TCP socket, one real timer, and back-pressure. Everything
 * protocol-related happens in the pure core (./fsm.ts); this file only moves bytes and time.
 *
 * Writes: every message the core emits is written with the socket corked, so a burst leaves in
 * one writev. UPDATEs are produced lazily: when the socket has drained, `produce()` is asked for
 * the next batch (up to ~1 MiB), so a slow peer never makes us build a large queue (RFC 9687's
 * send-hold timer in the core ends a session that stops reading altogether).
 */
import net from 'node:net';
import { BgpFsm, type FsmConfig, type FsmEvent } from './fsm.ts';
import { CeaseSubcode } from './wire/constants.ts';
import { connectTcp } from '../lib/sockopt.ts';

export interface SessionEndpoint {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress?: string;
  /** TCP-MD5 key (RFC 2385) for the outgoing connection. */
  readonly md5Key?: string;
  /** TTL / hop limit of sent packets (GTSM, RFC 5082: 255). */
  readonly ttl?: number;
  /** Minimum TTL / hop limit accepted (GTSM: 256 - hops). */
  readonly minTtl?: number;
}

export interface SessionHooks {
  onEvent(session: Session, ev: FsmEvent): void;
  /** Called when the socket can take more: return UPDATE messages (empty when none pending). */
  produce(session: Session, budgetBytes: number): Uint8Array[];
  /** An exception escaped onEvent/produce (a bug of ours); the session is reset, not the process. */
  onInternalError?(session: Session, error: unknown): void;
  /** Socket options (MD5/TTL) could not be set on an outgoing connection (reported as a failed connect). */
  onConnectError?(session: Session, error: unknown): void;
}

/** Upper bound (s) of an outgoing attempt with TCP-MD5/GTSM options (see Session.connect). */
const SECURED_CONNECT_TIMEOUT = 10;

const WRITE_BUDGET = 1 << 20;

export function monotonicMs(): number {
  return performance.now();
}

export class Session {
  readonly fsm: BgpFsm;
  socket: net.Socket | undefined;
  /** The outbound connection attempt in flight, if any (at most one; the core owns one connection). */
  private pending: net.Socket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private writing = false;
  private closed = false;
  /** Local address of the current TCP connection (for next-hop-self). */
  localAddress: string | undefined;

  constructor(
    private readonly cfg: FsmConfig,
    readonly endpoint: SessionEndpoint,
    private readonly hooks: SessionHooks,
    readonly inbound = false,
  ) {
    this.fsm = new BgpFsm(cfg);
  }

  start(): void {
    this.fsm.start(monotonicMs());
    this.run();
  }

  /** Adopts an accepted inbound connection. */
  attach(socket: net.Socket): void {
    this.bind(socket);
    this.fsm.handleConnected(monotonicMs());
    this.run();
  }

  stop(cease?: { subcode: number; message?: string }): void {
    this.fsm.stop(monotonicMs(), cease);
    this.run();
  }

  /** Closes this connection with Cease/7 after losing a collision (RFC 4271 §6.8). */
  closeForCollision(): void {
    this.fsm.closeForCollision(monotonicMs());
    this.run();
  }

  /** Runs an input against the core then services its outputs. */
  input(f: (fsm: BgpFsm, now: number) => void): void {
    f(this.fsm, monotonicMs());
    this.run();
  }

  /** Ends the shell for good (after the core went idle and the owner discards this session). */
  dispose(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.abortPending();
    this.socket?.destroy();
    this.socket = undefined;
  }

  /** Abandons the outbound attempt in flight: it must never be reported to the core later. */
  private abortPending(): void {
    const p = this.pending;
    this.pending = undefined;
    p?.destroy();
  }

  /** An outbound connection attempt is in flight. */
  get connecting(): boolean {
    return this.pending !== undefined;
  }

  private bind(socket: net.Socket): void {
    this.socket = socket;
    this.localAddress = socket.localAddress?.replace(/^::ffff:/, '');
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      if (this.socket !== socket) return;
      // A plain Uint8Array view: every subarray taken downstream (messages, attributes, NLRI) is
      // then a cheap Uint8Array instead of a Buffer built through Symbol.species.
      this.fsm.handleBytes(monotonicMs(), new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
      this.run();
    });
    socket.on('drain', () => {
      if (this.socket !== socket) return;
      this.fsm.handleWritable(monotonicMs(), 0);
      this.run();
    });
    const gone = (): void => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.fsm.handleTransportClosed(monotonicMs());
      this.run();
    };
    socket.on('close', gone);
    socket.on('error', () => {
      /* 'close' follows */
    });
  }

  private connect(): void {
    const { remoteAddress, remotePort, localAddress, md5Key, ttl, minTtl } = this.endpoint;
    this.abortPending();
    const secured = (md5Key !== undefined && md5Key.length > 0) || ttl !== undefined || minTtl !== undefined;
    let socket: net.Socket;
    let timeout: NodeJS.Timeout | undefined;
    if (!secured) socket = net.connect({ host: remoteAddress, port: remotePort, localAddress });
    else {
      // Options must be on the fd before the SYN: connectTcp makes the fd itself (never reused:
      // each attempt is a fresh socket). With an MD5 key the peer's unsigned RST is dropped, so a
      // closed port never gives ECONNREFUSED: bound the attempt ourselves.
      try {
        socket = connectTcp({
          host: remoteAddress,
          port: remotePort,
          ...(localAddress !== undefined ? { localAddress } : {}),
          ...(md5Key !== undefined && md5Key.length > 0 ? { md5Key } : {}),
          ...(ttl !== undefined ? { ttl } : {}),
          ...(minTtl !== undefined ? { minTtl } : {}),
        });
      } catch (e) {
        // Options refused (no FFI, bad key, ...): a failed attempt, reported asynchronously like
        // any connect error so the core never sees it inside its own 'connect' event.
        this.hooks.onConnectError?.(this, e);
        socket = new net.Socket();
        const s = socket;
        process.nextTick(() => s.destroy(e instanceof Error ? e : new Error(String(e))));
      }
      const s = socket;
      const secs = Math.max(1, Math.min(this.cfg.connectRetryTime, SECURED_CONNECT_TIMEOUT));
      timeout = setTimeout(() => s.destroy(new Error(`connect timeout (${secs} s)`)), secs * 1000);
      timeout.unref?.();
      const clear = (): void => clearTimeout(timeout);
      s.once('connect', clear);
      s.once('close', clear);
    }
    this.pending = socket;
    socket.once('connect', () => {
      // Only the current attempt counts: one replaced by a ConnectRetry, dropped by the core, or
      // overtaken by an adopted connection must not reach the core (it would be a second one).
      if (this.pending !== socket) return void socket.destroy();
      this.pending = undefined;
      if (this.closed || this.socket !== undefined) return void socket.destroy();
      this.bind(socket);
      this.fsm.handleConnected(monotonicMs());
      this.run();
    });
    socket.once('error', () => {
      if (this.pending !== socket) return; // connected (then 'close' reports it) or abandoned
      this.pending = undefined;
      socket.destroy();
      if (this.closed) return;
      this.fsm.handleConnectFailed(monotonicMs());
      this.run();
    });
  }

  /** Services the core: events, transmit, timer. Re-entrant calls are folded into the running one. */
  private run(): void {
    if (this.closed) return;
    let ev: FsmEvent | undefined;
    while ((ev = this.fsm.pollEvent()) !== undefined) {
      switch (ev.type) {
        case 'connect':
          this.connect();
          break;
        case 'disconnect': {
          this.abortPending(); // in Connect: drop the attempt in flight (ConnectRetry, stop)
          const s = this.socket;
          this.socket = undefined;
          if (s !== undefined) {
            if (ev.abort === true)
              s.destroy(); // RFC 9687: the peer is not reading
            else {
              this.flush(s);
              s.end();
              s.destroySoon();
            }
          }
          break;
        }
        default:
          break;
      }
      try {
        this.hooks.onEvent(this, ev);
      } catch (e) {
        this.internalError(e);
      }
    }
    if (this.socket !== undefined) this.pump(this.socket);
    this.schedule();
  }

  private flush(socket: net.Socket): void {
    let b: Uint8Array | undefined;
    socket.cork();
    while ((b = this.fsm.pollTransmit()) !== undefined) socket.write(b);
    socket.uncork();
  }

  /** Writes what the core has, then asks for UPDATEs while the socket keeps up. */
  private pump(socket: net.Socket): void {
    if (this.writing) return;
    this.writing = true;
    try {
      socket.cork();
      let written = 0;
      let ok = true;
      for (;;) {
        let b: Uint8Array | undefined;
        while ((b = this.fsm.pollTransmit()) !== undefined) {
          written += b.length;
          ok = socket.write(b);
        }
        if (!ok || written >= WRITE_BUDGET || this.fsm.state !== 'established') break;
        let batch: Uint8Array[];
        try {
          batch = this.hooks.produce(this, WRITE_BUDGET - written);
        } catch (e) {
          this.internalError(e);
          break;
        }
        if (batch.length === 0) {
          // produce() may have queued a route-refresh marker (EoRR) directly: write it too.
          while ((b = this.fsm.pollTransmit()) !== undefined) ok = socket.write(b);
          break;
        }
        for (const m of batch) this.fsm.sendUpdate(m);
      }
      socket.uncork();
      const backlog = socket.writableLength;
      this.fsm.handleWritable(monotonicMs(), backlog);
      // More to produce and the socket still takes data: continue on the next turn, so reading
      // (keepalives, other peers) is never starved by one large table dump.
      if (ok && written >= WRITE_BUDGET) setImmediate(() => this.kick());
    } finally {
      this.writing = false;
    }
  }

  /**
   * A bug of ours surfaced while handling this session: it must not take the process (and every
   * other session) down. The session is reset with Cease/Out of Resources (RFC 4486) and restarts.
   */
  private internalError(e: unknown): void {
    this.hooks.onInternalError?.(this, e);
    if (this.fsm.state !== 'idle') this.fsm.cease(monotonicMs(), CeaseSubcode.OUT_OF_RESOURCES);
  }

  /** Asks the shell to try writing (new UPDATEs became available). */
  kick(): void {
    if (this.closed) return;
    if (this.socket !== undefined && !this.socket.writableNeedDrain) this.pump(this.socket);
    this.schedule();
  }

  private schedule(): void {
    const at = this.fsm.pollTimeout();
    if (at === undefined) {
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = undefined;
      this.timerAt = Infinity;
      return;
    }
    if (this.timer !== undefined && at === this.timerAt) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = Infinity;
        this.fsm.handleTimeout(monotonicMs());
        this.run();
      },
      Math.max(0, at - monotonicMs()),
    );
    this.timer.unref?.();
  }
}
