/**
 * `vce agent --controller URL --token T --id VCE`: the agent takes its configuration from the
 * controller instead of a file. It opens the controller's configuration stream (server-sent
 * events, resumed from the last revision it applied after any disconnection), applies each
 * configuration with its own diff logic, and reports its status (contexts, sessions, BFD, FIB
 * sizes, counters) under a lease after each change and periodically. Losing the controller
 * changes nothing on the agent: it keeps forwarding with the last configuration it applied.
 * Agents never talk to the store.
 */
import type { Logger } from 'pino';
import { buildAgentConfig, ConfigError, type AgentConfig } from './config.ts';
import { startAgent, type RunningAgent } from './run.ts';
import { ApplyRefused } from './apply.ts';
import { neighborViews } from '../bgp/rib-view.ts';

export interface ControllerClientOptions {
  readonly url: string;
  readonly token: string;
  readonly id: string;
  /** Local settings the controller does not own (management API, log level, BFD ports). */
  readonly local?: Record<string, unknown>;
  readonly statusIntervalMs?: number;
  readonly log: Logger;
}

export class ControllerClient {
  agent: RunningAgent | undefined;
  /** Revision of the configuration running now (0 = none yet). */
  revision = 0;
  private lastError: string | undefined;
  private stopped = false;
  private abort: AbortController | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();
  /** Resolves on every applied revision (tests). */
  readonly applied: ((rev: number) => void)[] = [];

  constructor(private readonly opts: ControllerClientOptions) {}

  start(): void {
    void this.loop();
    this.statusTimer = setInterval(() => void this.report(), this.opts.statusIntervalMs ?? 10_000);
    this.statusTimer.unref();
  }

  private headers(): Record<string, string> {
    return { authorization: `Bearer ${this.opts.token}` };
  }

  /** Reads the stream; reconnects with back-off, resuming from the revision last applied. */
  private async loop(): Promise<void> {
    let backoff = 250;
    while (!this.stopped) {
      this.abort = new AbortController();
      try {
        const res = await fetch(
          `${this.opts.url}/api/v1/agents/${encodeURIComponent(this.opts.id)}/config/stream?revision=${this.revision}`,
          {
            headers: this.headers(),
            signal: this.abort.signal,
          },
        );
        if (!res.ok || res.body === null) throw new Error(`config stream: HTTP ${res.status}`);
        backoff = 250;
        const dec = new TextDecoder();
        let buf = '';
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += dec.decode(chunk, { stream: true });
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const frame = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const data = frame
              .split('\n')
              .filter((l) => l.startsWith('data: '))
              .map((l) => l.slice(6))
              .join('\n');
            if (data === '') continue;
            const msg = JSON.parse(data) as { revision: number; config: Record<string, unknown> };
            this.enqueue(msg.revision, msg.config);
          }
        }
        throw new Error('config stream closed');
      } catch (e) {
        if (this.stopped) return;
        this.opts.log.warn(
          { err: (e as Error).message, retryInMs: backoff },
          'controller unreachable; keeping the running configuration',
        );
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
  }

  private enqueue(rev: number, doc: Record<string, unknown>): void {
    this.queue = this.queue
      .then(() => this.apply(rev, doc))
      .catch((e: Error) => this.opts.log.error({ err: e.message }, 'apply failed'));
  }

  private async apply(rev: number, doc: Record<string, unknown>): Promise<void> {
    if (rev <= this.revision) return;
    let cfg: AgentConfig;
    try {
      cfg = buildAgentConfig({ ...doc, ...this.opts.local });
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      this.lastError = e.message;
      this.opts.log.error({ rev, err: e.message }, 'configuration from the controller refused');
      this.revision = rev; // reported with the error; the running configuration stays
      await this.report();
      return;
    }
    if (this.agent === undefined) {
      this.agent = await startAgent(cfg, this.opts.log);
    } else {
      try {
        await this.agent.apply(cfg);
      } catch (e) {
        if (!(e instanceof ApplyRefused)) throw e;
        // a change that needs a restart (router id, API, BFD ports): restart in place
        this.opts.log.warn({ reason: e.message }, 'restarting the agent for a new configuration');
        await this.agent.stop();
        this.agent = await startAgent(cfg, this.opts.log);
      }
    }
    this.lastError = undefined;
    this.revision = rev;
    this.opts.log.info({ rev }, 'configuration from the controller applied');
    await this.report();
    for (const f of this.applied.splice(0)) f(rev);
  }

  /** What the controller's reconciler, workflows and accounting read. */
  status(): Record<string, unknown> {
    const a = this.agent;
    const contexts = a === undefined ? [] : [...a.contexts.values()];
    const fwd = a?.dataplane?.driver.forwarder;
    const counters: Record<string, unknown> = {};
    for (const f of fwd?.ifaces ?? []) {
      const c = fwd!.counters.read(f.index);
      counters[f.cfg.name] = {
        inBytes: c['in-bytes'],
        outBytes: c['out-bytes'],
        inPackets: c['in-packets'],
        outPackets: c['out-packets'],
      };
    }
    return {
      vce: this.opts.id,
      configRevision: this.revision,
      configError: this.lastError,
      contexts: contexts.map((c) => ({
        name: c.name,
        fibSize: c.fib().length,
        interfaces: c.interfaces.map((i) => i.name),
      })),
      bgp: contexts.flatMap((c) =>
        c.speaker === undefined
          ? []
          : neighborViews(c.speaker).map((n) => ({
              vrf: c.name,
              peer: n.address,
              state: n.state,
              received: Object.values(n['afi-safis']).reduce((s, x) => s + x.received, 0),
            })),
      ),
      bfd: [],
      counters,
      at: new Date().toISOString(),
    };
  }

  async report(): Promise<void> {
    if (this.stopped) return;
    try {
      const res = await fetch(`${this.opts.url}/api/v1/agents/${encodeURIComponent(this.opts.id)}/status`, {
        method: 'PUT',
        headers: { ...this.headers(), 'content-type': 'application/json' },
        body: JSON.stringify(this.status()),
      });
      if (!res.ok) this.opts.log.warn({ status: res.status }, 'status report refused');
    } catch (e) {
      this.opts.log.debug({ err: (e as Error).message }, 'status report failed');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    if (this.statusTimer !== undefined) clearInterval(this.statusTimer);
    await this.queue;
    await this.agent?.stop();
  }
}
