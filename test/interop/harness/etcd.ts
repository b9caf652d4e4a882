/**
 * Interop harness for etcd (Debian `etcd-server`, etcd 3.4): a single member or a small
 * cluster on loopback, each member in its own temp dir on free ports.
 *
 * - Ready means `GET /health` on the client port answers `{"health":"true"}` (the member has
 *   a leader and can commit): polled with short backoff, never a fixed sleep.
 * - `kill()` stops the process by PID (its process group) but keeps the data dir, so
 *   `restart()` brings the same member back on the same ports and data (reconnect tests).
 * - `stop()` stops it and removes the temp dir; the shared daemon registry kills anything
 *   left running (and removes its dir) when the test process exits.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, startDaemon, tmpDir, waitFor, type DaemonHandle } from './common.ts';

export const ETCD_BIN = '/usr/bin/etcd';

/**
 * Whether etcd is installed. Missing: throws when `CI` is set (the file must not silently
 * skip in CI), otherwise returns false for `describe.skipIf`.
 */
export function etcdAvailable(): boolean {
  if (existsSync(ETCD_BIN)) return true;
  if (process.env.CI !== undefined) {
    throw new Error(`interop: ${ETCD_BIN} is not installed (run: bash scripts/install-deps)`);
  }
  return false;
}

export interface EtcdMember {
  readonly name: string;
  /** `http://127.0.0.1:<port>` */
  readonly clientUrl: string;
  readonly peerUrl: string;
  /** The member's temp dir (data in `data/`). */
  readonly dir: string;
  /** PID of the running process (the last one started). */
  pid(): number;
  alive(): boolean;
  healthy(): Promise<boolean>;
  /** Whether this member is the raft leader (from its status). */
  isLeader(): Promise<boolean>;
  logTail(lines?: number): Promise<string>;
  /** Stops the process (default SIGKILL) and waits until it is gone; keeps the data. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the member again on the same ports and data dir; resolves once healthy. */
  restart(): Promise<void>;
  /** Stops the process and removes the temp dir. */
  stop(): Promise<void>;
}

interface MemberPlan {
  name: string;
  dir: string;
  clientPort: number;
  peerPort: number;
}

async function planMember(name: string): Promise<MemberPlan> {
  const dir = await tmpDir(`etcd-${name}`);
  return { name, dir, clientPort: await freePort(), peerPort: await freePort() };
}

const peerUrl = (p: MemberPlan): string => `http://127.0.0.1:${p.peerPort}`;
const clientUrl = (p: MemberPlan): string => `http://127.0.0.1:${p.clientPort}`;

/** `{member_id, leader}` of a member, through etcd's JSON gateway (`/v3/maintenance/status`). */
async function status(url: string): Promise<{ memberId: string; leader: string }> {
  const res = await fetch(`${url}/v3/maintenance/status`, {
    method: 'POST',
    body: '{}',
    signal: AbortSignal.timeout(2000),
  });
  if (!res.ok) throw new Error(`etcd status at ${url}: HTTP ${res.status}`);
  const body = (await res.json()) as { header?: { member_id?: string }; leader?: string };
  return { memberId: body.header?.member_id ?? '', leader: body.leader ?? '' };
}

async function health(url: string): Promise<boolean> {
  const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
  if (!res.ok) return false;
  const body = (await res.json()) as { health?: unknown };
  return body.health === 'true' || body.health === true;
}

/**
 * Starts one member of the cluster `all` (all members start together: none is healthy before
 * a quorum runs).
 */
async function startMember(plan: MemberPlan, all: readonly MemberPlan[], token: string): Promise<EtcdMember> {
  const args = [
    '--name',
    plan.name,
    '--data-dir',
    join(plan.dir, 'data'),
    '--listen-client-urls',
    clientUrl(plan),
    '--advertise-client-urls',
    clientUrl(plan),
    '--listen-peer-urls',
    peerUrl(plan),
    '--initial-advertise-peer-urls',
    peerUrl(plan),
    '--initial-cluster',
    all.map((m) => `${m.name}=${peerUrl(m)}`).join(','),
    '--initial-cluster-token',
    token,
    '--initial-cluster-state',
    'new',
    '--logger',
    'zap',
    '--log-outputs',
    'stderr',
  ];
  let runs = 0;
  const launch = async (): Promise<DaemonHandle> => {
    // Each run logs into its own sub-dir (removed when that run stops); the data dir stays
    // until `stop()`, and goes with the registry's cleanup if the test process dies.
    const runDir = join(plan.dir, `run-${++runs}`);
    await mkdir(runDir, { recursive: true });
    return startDaemon({
      name: `etcd-${plan.name}`,
      cmd: ETCD_BIN,
      args,
      dir: runDir,
      cwd: plan.dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: plan.dir },
      readyCheck: () => health(clientUrl(plan)),
      readyTimeoutMs: 20_000,
      leftovers: () => [plan.dir],
    });
  };
  let daemon = await launch();
  return {
    name: plan.name,
    clientUrl: clientUrl(plan),
    peerUrl: peerUrl(plan),
    dir: plan.dir,
    pid: () => daemon.pid,
    alive: () => daemon.alive(),
    healthy: () => health(clientUrl(plan)).catch(() => false),
    isLeader: async () => {
      const st = await status(clientUrl(plan));
      return st.memberId !== '' && st.memberId === st.leader;
    },
    logTail: (lines) => daemon.logTail(lines),
    kill: async (signal = 'SIGKILL') => {
      if (!daemon.alive()) return;
      try {
        process.kill(-daemon.pid, signal);
      } catch {
        process.kill(daemon.pid, signal);
      }
      await waitFor(() => Promise.resolve(daemon.alive() ? undefined : true), {
        what: `etcd ${plan.name} (pid ${daemon.pid}) to exit after ${signal}`,
        intervalMs: 20,
      });
    },
    restart: async () => {
      if (daemon.alive()) throw new Error(`etcd ${plan.name} is still running`);
      daemon = await launch();
    },
    stop: () => daemon.stop(),
  };
}

/** Starts a single-member etcd on free loopback ports; resolves once it is healthy. */
export async function startEtcd(name = 'solo'): Promise<EtcdMember> {
  const plan = await planMember(name);
  return startMember(plan, [plan], `vce-${plan.clientPort}`);
}

export interface EtcdCluster {
  readonly members: readonly EtcdMember[];
  /** Client URLs of every member. */
  readonly endpoints: string[];
  /** Every member answers healthy. */
  healthy(): Promise<boolean>;
  /** Index of the current leader among `members` (polls until one is elected). */
  leaderIndex(): Promise<number>;
  stop(): Promise<void>;
}

/** Starts an `n`-member cluster on loopback; resolves once every member is healthy. */
export async function startEtcdCluster(n = 3): Promise<EtcdCluster> {
  const plans: MemberPlan[] = [];
  for (let i = 1; i <= n; i++) plans.push(await planMember(`m${i}`));
  const token = `vce-cluster-${plans[0]!.clientPort}`;
  const started = await Promise.allSettled(plans.map((p) => startMember(p, plans, token)));
  const members = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) {
    await Promise.allSettled(members.map((m) => m.stop()));
    throw failed.reason;
  }
  return {
    members,
    endpoints: members.map((m) => m.clientUrl),
    healthy: async () => (await Promise.all(members.map((m) => m.healthy()))).every(Boolean),
    leaderIndex: () =>
      waitFor(
        async () => {
          const flags = await Promise.all(
            members.map((m) => (m.alive() ? m.isLeader() : Promise.resolve(false))),
          );
          const i = flags.indexOf(true);
          return i < 0 ? undefined : i;
        },
        { what: 'an etcd leader' },
      ),
    stop: async () => {
      await Promise.allSettled(members.map((m) => m.stop()));
    },
  };
}
