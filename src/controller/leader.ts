/**
 * Leader election over the store (several controller replicas on one etcd: one leads the
 * workflows, all serve reads). The leader holds `KEYS.leader` attached to a lease it keeps alive;
 * when it dies the lease expires, the key goes, and a follower watching the key takes over.
 */
import { EventEmitter } from 'node:events';
import type { Kv, Watch } from './store/types.ts';
import { KEYS } from './model.ts';

export class LeaderElection extends EventEmitter {
  private lease = 0;
  private timer: NodeJS.Timeout | undefined;
  private watch: Watch | undefined;
  private stopped = false;
  leader = false;

  constructor(
    private readonly kv: Kv,
    readonly id: string,
    private readonly ttlSeconds = 5,
  ) {
    super();
  }

  async start(): Promise<void> {
    await this.campaign();
    const rev = await this.kv.revision();
    this.watch = await this.kv.watch(KEYS.leader, rev + 1, {
      onEvents: (evs) => {
        if (evs.some((e) => e.type === 'delete') && !this.leader) void this.campaign();
      },
      onError: () => {
        // the watch broke (compaction, connection): fall back to periodic campaigns
        if (!this.stopped) this.timer ??= setInterval(() => void this.campaign(), this.ttlSeconds * 500);
      },
    });
  }

  /** Tries to become leader; returns whether we are. */
  async campaign(): Promise<boolean> {
    if (this.stopped || this.leader) return this.leader;
    this.lease = await this.kv.grantLease(this.ttlSeconds);
    const r = await this.kv.txn(
      [{ key: KEYS.leader, modRevision: 0 }],
      [
        {
          type: 'put',
          key: KEYS.leader,
          value: JSON.stringify({ id: this.id, since: new Date().toISOString() }),
          lease: this.lease,
        },
      ],
    );
    if (!r.succeeded) {
      await this.kv.revokeLease(this.lease).catch(() => undefined);
      this.lease = 0;
      return false;
    }
    this.leader = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = setInterval(
      () => {
        this.kv.keepAlive(this.lease).catch(() => this.lose());
      },
      (this.ttlSeconds * 1000) / 3,
    );
    this.timer.unref();
    this.emit('elected');
    return true;
  }

  private lose(): void {
    if (!this.leader) return;
    this.leader = false;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.emit('lost');
    void this.campaign();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.watch?.cancel();
    if (this.leader && this.lease !== 0) await this.kv.revokeLease(this.lease).catch(() => undefined);
    this.leader = false;
  }
}
