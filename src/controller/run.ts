/**
 * `vce controller`: the DC orchestrator — the store (SQLite by default, etcd for a cluster), the
 * workflow runner (on the elected leader only), and the REST API (every replica serves it).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import { buildControllerApi } from './api.ts';
import { ControllerCore, type AdapterFactory } from './core.ts';
import { LeaderElection } from './leader.ts';
import { Reconciler, type ReconcilerOptions } from './reconcile.ts';
import { WorkflowRunner, type WorkflowOptions } from './workflows.ts';
import type { Kv, Watch } from './store/types.ts';
import { KEYS, type Operation } from './model.ts';
import type { IpamConfig } from './ipam.ts';
import { createWanAdapter } from './wan/index.ts';

export interface ControllerOptions {
  readonly store:
    | { readonly kind: 'sqlite'; readonly file: string }
    | { readonly kind: 'etcd'; readonly endpoints: readonly string[]; readonly prefix?: string };
  readonly listen: { readonly host: string; readonly port: number };
  /** The bootstrap operator token; generated (and logged once) when absent. */
  readonly operatorToken?: string;
  /** How to reach a PE (default: the adapters of `wan/index.ts` from the PE's registration). */
  readonly makeAdapter?: AdapterFactory;
  readonly ipam?: IpamConfig;
  readonly workflow?: Partial<WorkflowOptions>;
  readonly logLevel?: string;
  readonly statusLeaseSeconds?: number;
  /** The reconciler the leader runs (interval, grace times; intervalMs 0: on demand only). */
  readonly reconcile?: Partial<ReconcilerOptions>;
}

export interface RunningController {
  readonly core: ControllerCore;
  readonly runner: WorkflowRunner;
  readonly api: FastifyInstance;
  readonly url: string;
  readonly operatorToken: string;
  readonly election: LeaderElection;
  /** Runs on the leader only (started when elected, stopped when the leadership is lost). */
  readonly reconciler: Reconciler;
  stop(): Promise<void>;
}

/** A PE's registered adapter settings as the WAN adapter factory takes them. */
export const defaultAdapters: AdapterFactory = (pe) =>
  pe.adapter.kind === 'gobgp'
    ? createWanAdapter({ kind: 'gobgp', host: pe.adapter.host, port: pe.adapter.port })
    : createWanAdapter({
        kind: 'embedded',
        api: pe.adapter.api,
        bgpPort: pe.bgpPort,
        // the vCE dials its PE (its contexts do not listen): the PE side waits
        neighborDefaults: { passive: true, 'import-policy': 'accept-all', 'export-policy': 'accept-all' },
      });

async function openStore(o: ControllerOptions['store']): Promise<Kv> {
  if (o.kind === 'sqlite') {
    const { openSqliteKv } = await import('./store/sqlite.ts');
    return openSqliteKv(o.file);
  }
  const { openEtcdKv } = await import('./store/etcd.ts');
  return openEtcdKv([...o.endpoints], { prefix: o.prefix });
}

export async function startController(opts: ControllerOptions): Promise<RunningController> {
  const log = pino({ level: opts.logLevel ?? 'info' });
  const kv = await openStore(opts.store);
  // A SQLite file has one writer (opening it takes an exclusive lock): a leader key found now was
  // left by a controller that died without revoking its lease (kill -9), never by a live one.
  // Waiting for the lease to expire would hold the resumed operations back by its TTL.
  if (kv.backend === 'sqlite') await kv.delete(KEYS.leader);
  const core = new ControllerCore(kv, opts.makeAdapter ?? defaultAdapters, opts.ipam);
  const runner = new WorkflowRunner(core, { waitTimeoutMs: 120_000, retryMs: 500, log, ...opts.workflow });
  const operatorToken = opts.operatorToken ?? randomBytes(24).toString('base64url');
  if (opts.operatorToken === undefined)
    log.warn({ token: operatorToken }, 'generated operator token (set one with --token)');
  const api = await buildControllerApi({
    core,
    runner,
    operatorToken,
    statusLeaseSeconds: opts.statusLeaseSeconds,
  });
  const reconciler = new Reconciler(core, { log, ...opts.reconcile });
  const election = new LeaderElection(kv, randomUUID());
  // Only the leader runs workflows; followers serve the API and queue operations in the store.
  let paused = true;
  // Operations submitted to any replica are stored; the leader watches for them.
  let opsWatch: Watch | undefined;
  election.on('elected', () => {
    paused = false;
    log.info({ id: election.id }, 'leading the workflows');
    reconciler.start();
    void (async () => {
      const rev = await kv.revision();
      opsWatch?.cancel();
      opsWatch = await kv.watch(KEYS.operations, rev + 1, {
        onEvents: (evs) => {
          for (const e of evs) {
            if (e.type !== 'put' || paused) continue;
            const op = JSON.parse(e.value) as Operation;
            if (op.state === 'pending') runner.kick(op.id);
          }
        },
        onError: (err) => log.warn({ err: err.message }, 'operations watch ended'),
      });
      await runner.resumeAll();
    })().catch((e: Error) => log.error({ err: e.message }, 'cannot start leading'));
  });
  election.on('lost', () => {
    paused = true;
    opsWatch?.cancel();
    log.warn({ id: election.id }, 'lost the leadership');
    void reconciler.stop();
  });
  const kick = runner.kick.bind(runner);
  runner.kick = (id: string) => {
    if (!paused) kick(id);
  };
  await election.start();
  const url = await api.listen({ host: opts.listen.host, port: opts.listen.port });
  log.info({ url, store: kv.backend, leader: election.leader }, 'vce controller started');
  return {
    core,
    runner,
    api,
    url,
    operatorToken,
    election,
    reconciler,
    async stop() {
      await reconciler.stop();
      opsWatch?.cancel();
      runner.stop();
      await api.close();
      await election.stop();
      await core.close();
      await kv.close();
    },
  };
}
