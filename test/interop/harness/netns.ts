/**
 * VMs as Linux network namespaces for data plane tests: each VM gets a veth pair to the root
 * namespace (its underlay, a /30 out of 172.31.<base>.0/24) and a kernel `vxlan` device pointing
 * at the vCE's UDP port on the root side, with the VM's addresses and default routes on it. The
 * tests then run the real tools (ping, socat, traceroute) inside the namespace.
 *
 * Every name carries the test process's pid so parallel files never collide; `destroy` removes
 * the namespaces (their veth ends go with them) even after a failure.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function sh(cmd: string, args: readonly string[], input?: string): Promise<string> {
  if (input === undefined) {
    const r = await run(cmd, args, { maxBuffer: 16 << 20 });
    return r.stdout;
  }
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')}: ${err}`)),
    );
    c.stdin.end(input);
  });
}

/** True when this process can create network namespaces (root, iproute2 present). */
export async function netnsAvailable(): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  const probe = `vce-probe-${process.pid}`;
  try {
    await sh('ip', ['netns', 'add', probe]);
    await sh('ip', ['netns', 'del', probe]);
    return true;
  } catch {
    return false;
  }
}

export interface VmSpec {
  readonly name: string;
  /** Tunnel kind of the VM's device (kernel vxlan; the others are built by the tests). */
  readonly vni: number;
  readonly mac?: string;
  /** CIDR addresses on the VM's vxlan device. */
  readonly addresses: readonly string[];
  readonly gateway4?: string;
  /** IPv6 default route: an address, or 'ra' to wait for a router advertisement. */
  readonly gateway6?: string;
  readonly mtu?: number;
}

export interface Vm {
  readonly name: string;
  readonly ns: string;
  /** Underlay addresses: the VM's VTEP and the root-side address the vCE is reached at. */
  readonly vtep: string;
  readonly host: string;
  readonly hostIf: string;
  exec(cmd: string, args: readonly string[]): Promise<string>;
  /** Runs a command in the VM and returns its exit status and output (never throws on failure). */
  try(cmd: string, args: readonly string[], timeoutMs?: number): Promise<{ code: number; out: string }>;
  spawn(cmd: string, args: readonly string[]): ChildProcess;
}

export class NetnsLab {
  readonly vms: Vm[] = [];
  private n = 0;
  private readonly tag: string;

  /** `base`: third octet of this lab's 172.31.x.0/24 underlay (unique per test file). */
  constructor(
    private readonly base: number,
    readonly vcePort: number,
  ) {
    this.tag = `v${process.pid % 100000}${base}`;
  }

  async addVm(spec: VmSpec): Promise<Vm> {
    const i = this.n++;
    const ns = `vce-${this.tag}-${spec.name}`;
    const hostIf = `${this.tag}h${i}`.slice(0, 15);
    const host = `172.31.${this.base}.${i * 4 + 1}`;
    const vtep = `172.31.${this.base}.${i * 4 + 2}`;
    const ip = (...a: string[]): Promise<string> => sh('ip', ['-n', ns, ...a]);
    await sh('ip', ['netns', 'add', ns]);
    const vm: Vm = {
      name: spec.name,
      ns,
      vtep,
      host,
      hostIf,
      exec: (cmd, args) => sh('ip', ['netns', 'exec', ns, cmd, ...args]),
      try: (cmd, args, timeoutMs = 15000) =>
        new Promise((resolve) => {
          execFile(
            'ip',
            ['netns', 'exec', ns, cmd, ...args],
            { timeout: timeoutMs, maxBuffer: 16 << 20 },
            (err, stdout, stderr) =>
              resolve({
                code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1,
                out: stdout + stderr,
              }),
          );
        }),
      spawn: (cmd, args) =>
        spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] }),
    };
    this.vms.push(vm);
    await sh('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await sh('ip', ['addr', 'add', `${host}/30`, 'dev', hostIf]);
    await sh('ip', ['link', 'set', hostIf, 'up']);
    await ip('link', 'set', 'lo', 'up');
    await ip('addr', 'add', `${vtep}/30`, 'dev', 'eth0');
    await ip('link', 'set', 'eth0', 'up');
    const vx = ['link', 'add', 'vx0'];
    if (spec.mac !== undefined) vx.push('address', spec.mac);
    vx.push(
      'type',
      'vxlan',
      'id',
      String(spec.vni),
      'remote',
      host,
      'local',
      vtep,
      'dstport',
      String(this.vcePort),
      'dev',
      'eth0',
    );
    await ip(...vx);
    if (spec.mtu !== undefined) await ip('link', 'set', 'vx0', 'mtu', String(spec.mtu));
    for (const a of spec.addresses)
      await ip('addr', 'add', a, 'dev', 'vx0', ...(a.includes(':') ? ['nodad'] : []));
    await sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.vx0.accept_ra=2']);
    // veth and vxlan offload the inner TCP/UDP checksum to a "NIC" that never computes it: the
    // datagram reaching the vCE's socket would carry a partial checksum. Real hosts finalize it.
    await sh('ip', ['netns', 'exec', ns, 'ethtool', '-K', 'vx0', 'tx', 'off']).catch(() => undefined);
    await ip('link', 'set', 'vx0', 'up');
    if (spec.gateway4 !== undefined) await ip('route', 'add', 'default', 'via', spec.gateway4);
    if (spec.gateway6 !== undefined && spec.gateway6 !== 'ra')
      await ip('-6', 'route', 'add', 'default', 'via', spec.gateway6);
    return vm;
  }

  async destroy(): Promise<void> {
    for (const vm of this.vms) {
      await sh('ip', ['netns', 'del', vm.ns]).catch(() => undefined);
      await sh('ip', ['link', 'del', vm.hostIf]).catch(() => undefined);
    }
  }
}

/** Waits until `fn` resolves true, polling (for kernel state that has no event to wait on). */
export async function until(fn: () => Promise<boolean>, timeoutMs = 10000, stepMs = 100): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}
