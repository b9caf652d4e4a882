/**
 * Forwarding benchmark (issue 4): packets per second through the vCE's userspace forwarder between
 * two VM namespaces, side by side with the Linux kernel routing the same namespaces (the anchor).
 *
 *   VM1 (10.1.1.10, kernel vxlan VNI 101) ──veth── ROUTER ns ──veth── VM2 (10.1.2.10, VNI 102)
 *
 * Every case uses the same VMs (built by test/interop/harness/netns.ts), the same underlay
 * (172.31.200.0/24, a /30 per VM, the host ends moved into a router namespace) and the same VXLAN
 * encapsulation; only the router differs:
 *  - kernel: two kernel vxlan devices in the router namespace (one per VNI, same dstport) holding
 *    10.1.1.1/24 and 10.1.2.1/24, net.ipv4.ip_forward=1;
 *  - vce: the vCE agent as its own process inside the router namespace (`npm run build`, then
 *    `node dist/cli/main.js agent --config FILE`, what bin/vce.js runs when dist/ is current) with
 *    two vxlan interfaces in one context, no zones, no QoS;
 *  - optional, for the analysis: vce-connected, the agent with connected send sockets
 *    (bench/forwarding/agent-variant.ts, a proposed driver change measured before it is made);
 *    relay, bench/forwarding/relay.ts, Node dgram with no forwarding logic (the floor of the vCE's
 *    I/O layer); relay-connected, the same sending through connected sockets.
 *
 * Measured with iperf3 from VM1 to VM2: UDP with each payload size at each offered rate (`--rates`
 * in packets/s, 0 = `-b 0`, as fast as the sender can), delivered packets/s from the server's
 * report returned to the client (received = packets - lost), offered packets/s from the client,
 * loss, the router process's CPU (utime+stime from /proc/PID/stat, which Linux scales to the exact
 * run time; stime includes the softirq work its sendmsg triggers, i.e. the receiving VM's stack),
 * the iperf3 sender's and receiver's CPU (their getrusage); then TCP throughput. Before each
 * measurement the harness waits (up to `--quiet-wait` s) for the machine to be idle and records how
 * busy it was. Each measurement runs `--runs` times, alternating the case order per round; the
 * table gives medians, and the ratio uses the best median over the offered rates of each case.
 * One extra vce run at the first size and the highest rate with `node --cpu-prof` on the agent
 * gives the profile summary; `--perf` adds a `perf record` of the agent (kernel included).
 *
 * Usage (root):
 *   npx tsx bench/forwarding/run.ts [--duration 3] [--sizes 64,1400] [--runs 3]
 *     [--rates 0,150000,250000] [--cases kernel,vce[,vce-connected,relay,relay-connected]] [--no-tcp]
 *     [--no-profile] [--perf] [--quiet-wait 15] [--out FILE | --no-json]
 * Every option can also come from the environment: FWD_DURATION, FWD_SIZES, FWD_RUNS, FWD_RATES,
 * FWD_CASES, FWD_TCP=0, FWD_PROFILE=0, FWD_PERF=1, FWD_QUIET_WAIT.
 * Results: a markdown table on stdout, JSON in bench/forwarding/results-<date>.json and the
 * profile summaries in results-<date>-profile.txt.
 *
 * Invariants: every namespace, veth, child process and temp file this run created is removed on
 * success, failure and Ctrl-C; processes are stopped by PID.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { NetnsLab, sh, until, type Vm } from '../../test/interop/harness/netns.ts';
import { summarizeProfile, type CpuProfile } from './profile.ts';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BASE = 200; // underlay 172.31.200.0/24
const PORT = 4789; // VXLAN port inside the namespaces (private to them, no collision)
const VNI1 = 101;
const VNI2 = 102;
const IPERF_PORT = 5201;
const GW_MAC = '02:00:5e:00:be:01'; // the relay's gateway MAC (static neighbour in the VMs)

const env = process.env;
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: env['FWD_DURATION'] ?? '3' },
    sizes: { type: 'string', default: env['FWD_SIZES'] ?? '64,1400' },
    runs: { type: 'string', default: env['FWD_RUNS'] ?? '3' },
    rates: { type: 'string', default: env['FWD_RATES'] ?? '0,150000,250000' },
    cases: { type: 'string', default: env['FWD_CASES'] ?? 'kernel,vce' },
    'no-tcp': { type: 'boolean', default: env['FWD_TCP'] === '0' },
    'no-profile': { type: 'boolean', default: env['FWD_PROFILE'] === '0' },
    perf: { type: 'boolean', default: env['FWD_PERF'] === '1' },
    'quiet-wait': { type: 'string', default: env['FWD_QUIET_WAIT'] ?? '15' },
    out: { type: 'string' },
    'no-json': { type: 'boolean', default: false },
  },
});

const CASES = ['kernel', 'vce', 'vce-connected', 'relay', 'relay-connected'] as const;
type Case = (typeof CASES)[number];
const isCase = (c: string): c is Case => (CASES as readonly string[]).includes(c);

const duration = Number(values.duration);
const sizes = values.sizes.split(',').map((s) => Number(s.trim()));
const runs = Number(values.runs);
/** Offered packets/s per UDP measurement (iperf3 -b = rate × payload × 8); 0 = as fast as it can. */
const rates = values.rates.split(',').map((s) => Number(s.trim()));
const cases: Case[] = values.cases.split(',').map((s) => {
  const c = s.trim();
  if (!isCase(c)) throw new Error(`unknown case "${c}" (${CASES.join(', ')})`);
  return c;
});
const quietWait = Number(values['quiet-wait']);
if (!(duration > 0) || sizes.some((s) => !(s >= 16 && s <= 1400)) || !(runs >= 1) || rates.some((r) => !(r >= 0)) || !(quietWait >= 0))
  throw new Error('bad options: --duration > 0, --sizes in 16..1400, --runs >= 1, --rates >= 0, --quiet-wait >= 0');

interface CpuFields {
  /**
   * Router process CPU, utime + stime and stime alone, % of one core over the measurement;
   * absent for the kernel (it routes in softirq, on whichever CPU raised it).
   */
  routerCpuPct?: number;
  routerSysPct?: number;
  /** iperf3's own getrusage: the sender (client in VM1) and the receiver (server in VM2). */
  senderCpuPct: number;
  receiverCpuPct: number;
  /** Machine busy (% of all CPUs) just before the measurement: other work on the machine. */
  busyBeforePct: number;
}

interface UdpResult extends CpuFields {
  case: Case;
  size: number;
  /** Target offered packets/s (0: unlimited, iperf3 -b 0). */
  rate: number;
  run: number;
  seconds: number;
  sent: number;
  received: number;
  lost: number;
  offeredPps: number;
  deliveredPps: number;
  lossPct: number;
  profiled?: 'cpu-prof' | 'perf';
}

interface TcpResult extends CpuFields {
  case: Case;
  run: number;
  gbps: number;
  retransmits: number;
}

const log = (s: string): void => void process.stderr.write(`${s}\n`);
const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const pct = (n: number | undefined): string => (n === undefined ? 'n/a' : `${n.toFixed(n < 10 ? 1 : 0)} %`);
const rateText = (r: number): string => (r === 0 ? 'max (-b 0)' : int(r));

// ---------------------------------------------------------------------------------------------
// processes and cleanup

const children = new Set<ChildProcess>();
let lab: NetnsLab | undefined;
let routerNs: string | undefined;
let tmp: string | undefined;
let cleaned = false;

async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  for (const c of children) {
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  children.clear();
  // the router namespace takes the host ends of the veths with it; the lab removes the VMs
  if (routerNs !== undefined) await sh('ip', ['netns', 'del', routerNs]).catch(() => undefined);
  await lab?.destroy();
  if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
}

function onSignal(sig: NodeJS.Signals): void {
  log(`\n${sig}: cleaning up`);
  void cleanup().finally(() => process.exit(130));
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

function track<T extends ChildProcess>(c: T): T {
  children.add(c);
  c.on('exit', () => children.delete(c));
  return c;
}

/** Runs a command in a namespace; stdout and stderr apart; never throws. */
function nsExec(ns: string, cmd: readonly string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = execFile('ip', ['netns', 'exec', ns, ...cmd], { timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }),
    );
    track(c);
  });
}

async function stopChild(c: ChildProcess, timeoutMs = 10000): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return;
  const exited = new Promise<void>((r) => c.once('exit', () => r()));
  process.kill(c.pid, 'SIGTERM');
  const t = setTimeout(() => {
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) process.kill(c.pid, 'SIGKILL');
  }, timeoutMs);
  await exited;
  clearTimeout(t);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// CPU accounting

const CLK_TCK = 100; // Linux USER_HZ on every architecture Node supports

/** [utime, stime] of a process in seconds. */
function processCpu(pid: number): [number, number] {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  // after "pid (comm) " the fields start at 3 (state): utime is field 14, stime field 15
  return [Number(f[11]) / CLK_TCK, Number(f[12]) / CLK_TCK];
}

/** [busy, total] jiffies over all CPUs (tick-sampled: only good for steady load). */
function machineTicks(): [number, number] {
  const v = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return [total - v[3]! - v[4]!, total];
}

/** Waits up to `quietWait` s for the machine to be under 15 % busy; returns the last busy %. */
async function waitQuiet(): Promise<number> {
  const end = Date.now() + quietWait * 1000;
  for (;;) {
    const a = machineTicks();
    await sleep(500);
    const b = machineTicks();
    const busy = (100 * (b[0] - a[0])) / Math.max(1, b[1] - a[1]);
    if (busy < 15 || Date.now() >= end) return busy;
  }
}

function routerWindow(pid: number | undefined): { end(): { routerCpuPct?: number; routerSysPct?: number } } {
  const t0 = performance.now();
  const p0 = pid === undefined ? undefined : processCpu(pid);
  return {
    end() {
      if (pid === undefined || p0 === undefined) return {};
      const wall = (performance.now() - t0) / 1000;
      const p1 = processCpu(pid);
      return { routerCpuPct: (100 * (p1[0] - p0[0] + p1[1] - p0[1])) / wall, routerSysPct: (100 * (p1[1] - p0[1])) / wall };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// topology

const UL = (i: number, host: boolean): string => `172.31.${BASE}.${i * 4 + (host ? 1 : 2)}`;

interface Topology {
  vm1: Vm;
  vm2: Vm;
  rt: string;
  /** The VMs' vx0 MACs (the relay writes them). */
  macs: [string, string];
}

async function buildTopology(): Promise<Topology> {
  lab = new NetnsLab(BASE, PORT);
  routerNs = `vbf-rt-${process.pid}`;
  const rt = routerNs;
  await sh('ip', ['netns', 'add', rt]);
  await sh('ip', ['-n', rt, 'link', 'set', 'lo', 'up']);
  const vm1 = await lab.addVm({ name: 'vbf1', vni: VNI1, addresses: ['10.1.1.10/24'], gateway4: '10.1.1.1' });
  const vm2 = await lab.addVm({ name: 'vbf2', vni: VNI2, addresses: ['10.1.2.10/24'], gateway4: '10.1.2.1' });
  // the harness leaves the host ends in the root namespace: move them into the router namespace
  for (const [i, vm] of [vm1, vm2].entries()) {
    await sh('ip', ['link', 'set', vm.hostIf, 'netns', rt]);
    await sh('ip', ['-n', rt, 'addr', 'add', `${UL(i, true)}/30`, 'dev', vm.hostIf]);
    await sh('ip', ['-n', rt, 'link', 'set', vm.hostIf, 'up']);
  }
  const mac = async (vm: Vm): Promise<string> => (JSON.parse(await sh('ip', ['-n', vm.ns, '-j', 'link', 'show', 'vx0'])) as { address: string }[])[0]!.address;
  return { vm1, vm2, rt, macs: [await mac(vm1), await mac(vm2)] };
}

async function setGatewayNeighbors(t: Topology, mac: string | undefined): Promise<void> {
  // the gateway MAC differs between routers; the relay answers no ARP (static entries)
  for (const [i, vm] of [t.vm1, t.vm2].entries()) {
    await sh('ip', ['-n', vm.ns, 'neigh', 'flush', 'dev', 'vx0', 'nud', 'all']).catch(() => undefined);
    if (mac !== undefined) await sh('ip', ['-n', vm.ns, 'neigh', 'replace', i === 0 ? '10.1.1.1' : '10.1.2.1', 'lladdr', mac, 'dev', 'vx0', 'nud', 'permanent']);
  }
}

/** A router under test; `pid` is its process (none for the kernel). */
interface Router {
  pid?: number;
  stop(): Promise<void>;
}

async function kernelUp(t: Topology): Promise<Router> {
  const ip = (...a: string[]): Promise<string> => sh('ip', ['-n', t.rt, ...a]);
  const down = async (): Promise<void> => {
    await sh('ip', ['netns', 'exec', t.rt, 'sysctl', '-qw', 'net.ipv4.ip_forward=0']);
    for (const dev of ['vbfk0', 'vbfk1']) await ip('link', 'del', dev).catch(() => undefined);
  };
  try {
    for (const [i, vm] of [t.vm1, t.vm2].entries()) {
      const dev = `vbfk${i}`;
      await ip('link', 'add', dev, 'type', 'vxlan', 'id', String(i === 0 ? VNI1 : VNI2), 'remote', vm.vtep, 'local', UL(i, true), 'dstport', String(PORT), 'dev', vm.hostIf);
      await ip('addr', 'add', i === 0 ? '10.1.1.1/24' : '10.1.2.1/24', 'dev', dev);
      await ip('link', 'set', dev, 'up');
    }
    await sh('ip', ['netns', 'exec', t.rt, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    await setGatewayNeighbors(t, undefined);
  } catch (e) {
    await down();
    throw e;
  }
  return { stop: down };
}

function agentConfig(): object {
  return {
    'router-id': '10.255.0.1',
    'log-level': 'silent',
    api: { listen: '127.0.0.1:0' },
    vrfs: [
      {
        name: 'red',
        interfaces: [
          { name: 'vm1', kind: 'vxlan', vni: VNI1, remotes: [`${UL(0, false)}:${PORT}`], addresses: ['10.1.1.1/24'] },
          { name: 'vm2', kind: 'vxlan', vni: VNI2, remotes: [`${UL(1, false)}:${PORT}`], addresses: ['10.1.2.1/24'] },
        ],
      },
    ],
    dataplane: { listen: '0.0.0.0', 'vxlan-port': PORT },
  };
}

/** Starts a Node process in the router namespace; resolves once `probe` passes. */
async function nodeRouter(t: Topology, args: readonly string[], probe: () => Promise<boolean>): Promise<Router> {
  // `ip netns exec` execs the command: the child's PID is the router's
  const child = track(spawn('ip', ['netns', 'exec', t.rt, process.execPath, ...args], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] }));
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  try {
    await until(async () => {
      if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited (${child.exitCode}): ${err}`);
      return probe();
    }, 30000, 200);
  } catch (e) {
    await stopChild(child);
    throw e;
  }
  return { pid: child.pid!, stop: () => stopChild(child) };
}

/**
 * What `node` runs for the agent: bin/vce.js runs dist/ only while it is newer than every file
 * in src/; others editing src/ during the run would flip it to the tsx loader mid-run, so once the
 * build has emitted, the compiled entry is run directly (what bin/vce.js does when current).
 */
let agentEntry = join(REPO, 'bin', 'vce.js');

async function agentUp(t: Topology, nodeArgs: readonly string[] = []): Promise<Router> {
  const file = join(tmp!, 'agent.json');
  writeFileSync(file, JSON.stringify(agentConfig(), null, 2));
  await setGatewayNeighbors(t, undefined);
  // the agent answers ping on its interface address once its data plane is up
  return nodeRouter(t, [...nodeArgs, agentEntry, 'agent', '--config', file], async () => (await t.vm1.try('ping', ['-c', '1', '-W', '1', '10.1.1.1'], 3000)).code === 0);
}

/** The agent with connected send sockets (bench/forwarding/agent-variant.ts). */
async function variantUp(t: Topology): Promise<Router> {
  const file = join(tmp!, 'agent.json');
  writeFileSync(file, JSON.stringify(agentConfig(), null, 2));
  await setGatewayNeighbors(t, undefined);
  return nodeRouter(t, ['--import', 'tsx', join(REPO, 'bench', 'forwarding', 'agent-variant.ts'), '--config', file], async () => (await t.vm1.try('ping', ['-c', '1', '-W', '1', '10.1.1.1'], 3000)).code === 0);
}

async function relayUp(t: Topology, connected: boolean): Promise<Router> {
  await setGatewayNeighbors(t, GW_MAC);
  const args = ['--import', 'tsx', join(REPO, 'bench', 'forwarding', 'relay.ts'), '--port', String(PORT), '--a', UL(0, false), '--b', UL(1, false)];
  args.push('--vni-a', String(VNI1), '--vni-b', String(VNI2), '--mac-a', t.macs[0], '--mac-b', t.macs[1], '--gw-mac', GW_MAC);
  if (connected) args.push('--connected');
  return nodeRouter(t, args, async () => (await t.vm1.try('ping', ['-c', '1', '-W', '1', '10.1.2.10'], 3000)).code === 0);
}

function routerUp(t: Topology, c: Case): Promise<Router> {
  switch (c) {
    case 'kernel':
      return kernelUp(t);
    case 'vce':
      return agentUp(t);
    case 'vce-connected':
      return variantUp(t);
    case 'relay':
      return relayUp(t, false);
    case 'relay-connected':
      return relayUp(t, true);
  }
}

async function ready(t: Topology): Promise<void> {
  // resolves ARP on both sides of the router before anything is measured
  await until(async () => (await t.vm1.try('ping', ['-c', '1', '-W', '1', '10.1.2.10'], 3000)).code === 0, 20000, 200);
  await t.vm2.try('ping', ['-c', '1', '-W', '1', '10.1.1.10'], 3000);
}

// ---------------------------------------------------------------------------------------------
// iperf3

async function iperfServer(t: Topology): Promise<void> {
  const child = track(spawn('ip', ['netns', 'exec', t.vm2.ns, 'iperf3', '-s', '-B', '10.1.2.10', '-p', String(IPERF_PORT)], { stdio: 'ignore' }));
  await until(async () => {
    if (child.exitCode !== null) throw new Error('iperf3 server exited');
    return (await sh('ip', ['netns', 'exec', t.vm2.ns, 'ss', '-ltnH'])).includes(`:${IPERF_PORT}`);
  }, 10000, 100);
}

interface IperfSum {
  seconds: number;
  bytes: number;
  bits_per_second: number;
  /** UDP: packets = the highest sequence number the receiver saw, lost_packets = gaps in it. */
  packets: number;
  lost_packets: number;
  /** TCP sender only. */
  retransmits?: number;
}

interface IperfJson {
  error?: string;
  end?: {
    sum_sent?: IperfSum;
    sum_received?: IperfSum;
    cpu_utilization_percent?: { host_total: number; remote_total: number };
  };
}

async function iperfClient(t: Topology, args: readonly string[], seconds = duration): Promise<IperfJson> {
  const cmd = ['iperf3', '-c', '10.1.2.10', '-p', String(IPERF_PORT), '-t', String(seconds), '--json', ...args];
  for (let attempt = 0; ; attempt++) {
    const r = await nsExec(t.vm1.ns, cmd, (seconds + 30) * 1000);
    let j: IperfJson | undefined;
    try {
      j = JSON.parse(r.stdout) as IperfJson;
    } catch {
      j = undefined;
    }
    if (j !== undefined && j.error === undefined) return j;
    // "the server is busy" right after a previous test: retry
    if (attempt >= 2) throw new Error(`iperf3 failed (${r.code}): ${j?.error ?? (r.stderr || r.stdout)}`);
    await sleep(1000);
  }
}

/** `onStart`: called once the machine is quiet, right before iperf3 starts (profilers). */
async function udpRun(t: Topology, c: Case, size: number, rate: number, run: number, pid: number | undefined, onStart?: () => void): Promise<UdpResult> {
  const busyBeforePct = await waitQuiet();
  onStart?.();
  const w = routerWindow(pid);
  const j = await iperfClient(t, ['-u', '-l', String(size), '-b', String(rate * size * 8), '-w', '4M']);
  const cpu = w.end();
  // sum_sent: the client's count; sum_received: the server's report, returned at the end
  const cs = j.end?.sum_sent;
  const ss = j.end?.sum_received;
  if (cs === undefined || ss === undefined) throw new Error('iperf3 UDP: no end.sum_sent / end.sum_received');
  const received = ss.packets - ss.lost_packets;
  return {
    case: c,
    size,
    rate,
    run,
    seconds: ss.seconds,
    sent: cs.packets,
    received,
    lost: ss.lost_packets,
    offeredPps: cs.packets / cs.seconds,
    deliveredPps: received / ss.seconds,
    lossPct: cs.packets > 0 ? (100 * Math.max(0, cs.packets - received)) / cs.packets : 0,
    ...cpu,
    senderCpuPct: j.end?.cpu_utilization_percent?.host_total ?? NaN,
    receiverCpuPct: j.end?.cpu_utilization_percent?.remote_total ?? NaN,
    busyBeforePct,
  };
}

async function tcpRun(t: Topology, c: Case, run: number, pid: number | undefined): Promise<TcpResult> {
  const busyBeforePct = await waitQuiet();
  const w = routerWindow(pid);
  const j = await iperfClient(t, []);
  const cpu = w.end();
  const r = j.end?.sum_received;
  if (r === undefined) throw new Error('iperf3 TCP: no end.sum_received');
  return {
    case: c,
    run,
    gbps: r.bits_per_second / 1e9,
    retransmits: j.end?.sum_sent?.retransmits ?? 0,
    ...cpu,
    senderCpuPct: j.end?.cpu_utilization_percent?.host_total ?? NaN,
    receiverCpuPct: j.end?.cpu_utilization_percent?.remote_total ?? NaN,
    busyBeforePct,
  };
}

async function warmUp(t: Topology): Promise<void> {
  // ARP on both sides, the router's JIT: 1 s at a moderate rate, not recorded
  await ready(t);
  await iperfClient(t, ['-u', '-l', '1400', '-b', '200M'], 1).catch(() => undefined);
}

// ---------------------------------------------------------------------------------------------
// report

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function cpuCells(r: readonly CpuFields[], delivered?: readonly number[]): string {
  const routed = r.every((x) => x.routerCpuPct !== undefined);
  const router = routed ? `${pct(median(r.map((x) => x.routerCpuPct!)))} (sys ${pct(median(r.map((x) => x.routerSysPct!)))})` : 'n/a (softirq)';
  // router CPU time per delivered packet: its cost, whatever share of a core it got
  const perPacket =
    routed && delivered !== undefined ? `${median(r.map((x, i) => (1e6 * x.routerCpuPct!) / 100 / delivered[i]!)).toFixed(1)}` : '–';
  return `${router} | ${perPacket} | ${pct(median(r.map((x) => x.senderCpuPct)))} / ${pct(median(r.map((x) => x.receiverCpuPct)))}`;
}

function table(udp: readonly UdpResult[], tcp: readonly TcpResult[]): string {
  const lines: string[] = [];
  lines.push(
    '| case | packet | offered target (pps) | delivered pps (median) | runs | offered pps | loss | router CPU, % of a core | router CPU µs / packet | iperf3 sender / receiver CPU | TCP Gbit/s |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  );
  /** Best median delivered pps over the offered rates, per case/size. */
  const best = new Map<string, number>();
  for (const size of sizes)
    for (const c of cases)
      for (const rate of rates) {
        const r = udp.filter((x) => x.case === c && x.size === size && x.rate === rate && x.profiled === undefined);
        if (r.length === 0) continue;
        const d = median(r.map((x) => x.deliveredPps));
        const k = `${c}/${size}`;
        best.set(k, Math.max(best.get(k) ?? 0, d));
        lines.push(
          `| ${c} | UDP ${size} B | ${rateText(rate)} | ${int(d)} | ${r.map((x) => int(x.deliveredPps)).join(' / ')} | ` +
            `${int(median(r.map((x) => x.offeredPps)))} | ${median(r.map((x) => x.lossPct)).toFixed(1)} % | ${cpuCells(r, r.map((x) => x.deliveredPps))} | |`,
        );
      }
  for (const c of cases) {
    const r = tcp.filter((x) => x.case === c);
    if (r.length === 0) continue;
    lines.push(`| ${c} | TCP | | | ${r.map((x) => x.gbps.toFixed(2)).join(' / ')} | | | ${cpuCells(r)} | ${median(r.map((x) => x.gbps)).toFixed(2)} |`);
  }
  const others = cases.filter((c) => c !== 'kernel');
  if (cases.includes('kernel') && others.length > 0) {
    lines.push('', `| packet | kernel | ${others.join(' | ')} | ${others.map((c) => `${c} / kernel`).join(' | ')} |`);
    lines.push(`|---|---|${others.map(() => '---|---|').join('')}`);
    for (const size of sizes) {
      const k = best.get(`kernel/${size}`);
      if (k === undefined) continue;
      const v = others.map((c) => best.get(`${c}/${size}`));
      lines.push(
        `| UDP ${size} B (best median pps) | ${int(k)} | ${v.map((x) => (x === undefined ? '–' : int(x))).join(' | ')} | ` +
          `${v.map((x) => (x === undefined ? '–' : `**${(x / k).toFixed(2)}**`)).join(' | ')} |`,
      );
    }
    const kt = tcp.filter((x) => x.case === 'kernel');
    if (kt.length > 0) {
      const k = median(kt.map((x) => x.gbps));
      const v = others.map((c) => {
        const r = tcp.filter((x) => x.case === c);
        return r.length === 0 ? undefined : median(r.map((x) => x.gbps));
      });
      lines.push(
        `| TCP (median Gbit/s) | ${k.toFixed(2)} | ${v.map((x) => (x === undefined ? '–' : x.toFixed(2))).join(' | ')} | ` +
          `${v.map((x) => (x === undefined ? '–' : `**${(x / k).toFixed(2)}**`)).join(' | ')} |`,
      );
    }
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// main

function distCurrent(): boolean {
  const built = join(REPO, 'dist', 'cli', 'main.js');
  if (!existsSync(built)) return false;
  const newest = (dir: string): number => {
    let n = 0;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      n = Math.max(n, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
    }
    return n;
  };
  return statSync(built).mtimeMs >= newest(join(REPO, 'src'));
}

async function build(): Promise<void> {
  // type errors elsewhere in src/ do not stop tsc from emitting; a stale dist/ makes bin/vce.js
  // fall back to the tsx loader (same JIT-compiled code once warm, slower start)
  const code = await new Promise<number>((resolve) => {
    const c = track(spawn('npm', ['run', 'build'], { cwd: REPO, stdio: 'ignore' }));
    c.on('exit', (x) => resolve(x ?? 1));
  });
  if (code !== 0) log('npm run build reported errors (it emits anyway); continuing');
}

async function withRouter<T>(r: Router, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } finally {
    await r.stop();
  }
}

async function profileRun(t: Topology, udp: UdpResult[], rate: number): Promise<string | undefined> {
  const dir = join(tmp!, 'prof');
  mkdirSync(dir);
  const a = await agentUp(t, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
  const us = (): number => Number(process.hrtime.bigint() / 1000n);
  let window: [number, number] = [0, 0];
  const r = await withRouter(a, async () => {
    await warmUp(t);
    let from = 0;
    const x = { ...(await udpRun(t, 'vce', sizes[0]!, rate, 0, a.pid, () => (from = us()))), profiled: 'cpu-prof' as const };
    window = [from, us()];
    return x;
  });
  udp.push(r);
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) {
    log('no .cpuprofile written by the agent');
    return undefined;
  }
  const p = JSON.parse(readFileSync(join(dir, files[0]!), 'utf8')) as CpuProfile;
  return (
    `vce agent, node --cpu-prof, samples during a ${duration} s UDP run of ${sizes[0]} B ` +
    `payloads offered at ${rateText(rate)} pps: delivered ${int(r.deliveredPps)} pps (profiling on), agent CPU ` +
    `${pct(r.routerCpuPct)} (sys ${pct(r.routerSysPct)})\n\n${summarizeProfile(p, 30, window)}`
  );
}

async function perfRun(t: Topology, udp: UdpResult[], rate: number): Promise<string> {
  const data = join(tmp!, 'perf.data');
  const a = await agentUp(t, ['--perf-basic-prof']);
  const r = await withRouter(a, async () => {
    try {
      await warmUp(t);
      let rec: ChildProcess | undefined;
      const start = (): void => {
        rec = track(spawn('perf', ['record', '-q', '-F', '997', '-p', String(a.pid), '-o', data, '--', 'sleep', String(duration)], { stdio: 'ignore' }));
      };
      const x = { ...(await udpRun(t, 'vce', sizes[0]!, rate, 0, a.pid, start)), profiled: 'perf' as const };
      if (rec !== undefined && rec.exitCode === null) await new Promise<void>((res) => rec!.once('exit', () => res()));
      return x;
    } finally {
      rmSync(`/tmp/perf-${a.pid}.map`, { force: true });
    }
  });
  udp.push(r);
  const report = async (sort: string, limit: string): Promise<string> =>
    (await sh('perf', ['report', '-i', data, '--stdio', '--no-children', '--sort', sort, '--percent-limit', limit]).catch((e: Error) => e.message))
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith('#'))
      .join('\n');
  return (
    `vce agent, perf record -F 997 (user + kernel; cpu-clock in a VM: time spent with interrupts off lands on the symbol that re-enables them), ` +
    `${duration} s, ${sizes[0]} B payloads offered at ${rateText(rate)} pps: delivered ${int(r.deliveredPps)} pps, agent CPU ${pct(r.routerCpuPct)} ` +
    `(sys ${pct(r.routerSysPct)})\n\nby object:\n${await report('dso', '0.5')}\n\nby symbol:\n${await report('dso,sym', '0.4')}`
  );
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root (network namespaces)');
  const started = Date.now();
  if (cases.includes('vce') || cases.includes('vce-connected')) await build();
  const fromDist = distCurrent();
  if (fromDist) agentEntry = join(REPO, 'dist', 'cli', 'main.js');
  tmp = mkdtempSync(join(tmpdir(), 'vbf-'));
  const t = await buildTopology();
  await iperfServer(t);
  const udp: UdpResult[] = [];
  const tcp: TcpResult[] = [];

  for (let run = 1; run <= runs; run++) {
    // alternate the order so drift on the machine does not favour one case
    const order = run % 2 === 1 ? cases : [...cases].reverse();
    for (const c of order) {
      const router = await routerUp(t, c);
      await withRouter(router, async () => {
        await warmUp(t);
        for (const size of sizes)
          for (const rate of rates) {
            const r = await udpRun(t, c, size, rate, run, router.pid);
            udp.push(r);
            log(
              `${c} run ${run} UDP ${size} B at ${rateText(rate)}: delivered ${int(r.deliveredPps)} pps, offered ${int(r.offeredPps)}, ` +
                `loss ${r.lossPct.toFixed(1)} %, router ${pct(r.routerCpuPct)} (sys ${pct(r.routerSysPct)}), sender ${pct(r.senderCpuPct)}, ` +
                `receiver ${pct(r.receiverCpuPct)}, busy before ${pct(r.busyBeforePct)}`,
            );
          }
        if (!values['no-tcp']) {
          const r = await tcpRun(t, c, run, router.pid);
          tcp.push(r);
          log(`${c} run ${run} TCP: ${r.gbps.toFixed(2)} Gbit/s, retransmits ${r.retransmits}, router ${pct(r.routerCpuPct)} (sys ${pct(r.routerSysPct)}), busy before ${pct(r.busyBeforePct)}`);
        }
      });
    }
  }

  // profiles at the first size and the highest set rate (where the agent is busiest)
  const profileRate = Math.max(...rates);
  const profiles: string[] = [];
  if (!values['no-profile'] && cases.includes('vce')) {
    const p = await profileRun(t, udp, profileRate);
    if (p !== undefined) profiles.push(p);
  }
  if (values.perf && cases.includes('vce')) profiles.push(await perfRun(t, udp, profileRate));
  for (const p of profiles) log(`\n${p}`);

  const machine = {
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    kernel: release(),
    node: process.version,
    iperf3: (await sh('iperf3', ['--version'])).split('\n')[0]!.trim(),
    agentFromDist: fromDist,
    commit: (await sh('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD']).catch(() => '?')).trim(),
    /** Uncommitted changes under src/ at the time of the run (others may be editing it). */
    dirty: (await sh('git', ['-C', REPO, 'status', '--porcelain', '--', 'src']).catch(() => ''))
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => l.slice(3)),
  };
  const busy = [...udp, ...tcp].map((x) => x.busyBeforePct);
  const md = table(udp, tcp);
  process.stdout.write(
    `\nmachine: ${machine.nproc} CPUs (${machine.cpu}), Linux ${machine.kernel}, Node.js ${machine.node}, ${machine.iperf3}; ` +
      `vce at ${machine.commit}${machine.dirty.length > 0 ? ` + uncommitted ${machine.dirty.join(', ')}` : ''}, ran ${fromDist ? 'compiled (node dist/cli/main.js)' : 'from source (bin/vce.js, tsx)'}; ${duration} s per measurement, ${runs} runs; ` +
      `machine busy before measurements: median ${pct(median(busy))}, max ${pct(Math.max(...busy))}; whole run ${((Date.now() - started) / 1000).toFixed(0)} s\n\n${md}\n`,
  );
  if (!values['no-json']) {
    let out = values.out;
    if (out === undefined) {
      const base = join(REPO, 'bench', 'forwarding', `results-${new Date().toISOString().slice(0, 10)}`);
      out = `${base}.json`;
      for (let i = 2; existsSync(out); i++) out = `${base}-${i}.json`;
    }
    const options = { duration, sizes, runs, rates, cases, quietWait };
    writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), machine, options, udp, tcp, table: md, profiles }, null, 2)}\n`);
    if (profiles.length > 0) writeFileSync(out.replace(/\.json$/, '-profile.txt'), `${profiles.join('\n\n')}\n`);
    log(`results: ${out}`);
  }
}

try {
  await main();
} finally {
  await cleanup();
}
