/**
 * The userspace forwarder proven with real Linux hosts: VMs are network namespaces whose kernel
 * `vxlan` devices point at the vCE agent's UDP port; ping, ping -6 (default route from our router
 * advertisements), socat TCP transfers, traceroute and tshark run inside them. Two tenants' routing
 * contexts use the same subnets; a three-tier zone policy blocks app -> db except one port.
 */
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgentConfig } from '../../src/agent/config.ts';
import { startAgent, type RunningAgent } from '../../src/agent/run.ts';
import { NetnsLab, netnsAvailable, sh, until, type Vm } from './harness/netns.ts';

const available = await netnsAvailable();
if (!available && process.env['CI'] !== undefined)
  throw new Error('network namespaces are required in CI (run as root)');

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '0.0.0.0', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const BASE = 41; // 172.31.41.0/24 underlay for this file
const vtep = (i: number): string => `172.31.${BASE}.${i * 4 + 2}`;

describe.skipIf(!available)('userspace data plane with Linux VMs (netns + kernel vxlan)', () => {
  let lab: NetnsLab;
  let agent: RunningAgent;
  let port: number;
  let tmp: string;
  let raw: {
    dataplane: { zones: { rules: object[] } & Record<string, unknown> } & Record<string, unknown>;
  } & Record<string, unknown>;
  const vm: Record<string, Vm> = {};

  beforeAll(async () => {
    port = await freeUdpPort();
    tmp = await mkdtemp(join(tmpdir(), 'vce-dp-'));
    const remote = (i: number): string[] => [`${vtep(i)}:${port}`];
    raw = {
      'router-id': '10.255.0.1',
      'log-level': 'silent',
      api: { listen: '127.0.0.1:0' },
      vrfs: [
        {
          name: 'red',
          interfaces: [
            {
              name: 'web',
              kind: 'vxlan',
              vni: 101,
              remotes: remote(0),
              zone: 'web',
              addresses: ['10.1.1.1/24', '2001:db8:1::1/64'],
            },
            {
              name: 'app',
              kind: 'vxlan',
              vni: 102,
              remotes: remote(1),
              zone: 'app',
              addresses: ['10.1.2.1/24', '2001:db8:2::1/64'],
              'qos-policy': 'marking',
            },
            {
              name: 'db',
              kind: 'vxlan',
              vni: 103,
              remotes: remote(2),
              zone: 'db',
              addresses: ['10.1.3.1/24'],
            },
          ],
        },
        {
          name: 'blue',
          interfaces: [
            { name: 'b1', kind: 'vxlan', vni: 201, remotes: remote(3), addresses: ['10.1.1.1/24'] },
            { name: 'b2', kind: 'vxlan', vni: 202, remotes: remote(4), addresses: ['10.1.2.1/24'] },
          ],
        },
      ],
      dataplane: {
        listen: '0.0.0.0',
        'vxlan-port': port,
        zones: {
          'default-action': 'deny',
          rules: [
            { name: 'web-to-app', from: 'web', to: 'app', action: 'allow' },
            {
              name: 'app-to-db-sql',
              from: 'app',
              to: 'db',
              action: 'allow',
              protocol: 'tcp',
              'destination-ports': [5432],
            },
          ],
        },
        'qos-policies': [
          {
            name: 'marking',
            classes: [
              { name: 'voice', match: { protocol: 'udp', 'destination-ports': [9000] }, 'set-dscp': 'ef' },
            ],
          },
        ],
      },
    };
    agent = await startAgent(buildAgentConfig(raw));
    lab = new NetnsLab(BASE, port);
    const specs = [
      {
        name: 'web',
        vni: 101,
        addresses: ['10.1.1.10/24', '2001:db8:1::10/64'],
        gateway4: '10.1.1.1',
        gateway6: 'ra',
      },
      {
        name: 'app',
        vni: 102,
        addresses: ['10.1.2.10/24', '2001:db8:2::10/64'],
        gateway4: '10.1.2.1',
        gateway6: 'ra',
      },
      { name: 'db', vni: 103, addresses: ['10.1.3.10/24'], gateway4: '10.1.3.1' },
      { name: 'blue1', vni: 201, addresses: ['10.1.1.10/24'], gateway4: '10.1.1.1' },
      { name: 'blue2', vni: 202, addresses: ['10.1.2.10/24'], gateway4: '10.1.2.1' },
    ];
    for (const s of specs) vm[s.name] = await lab.addVm(s);
  });

  afterAll(async () => {
    await lab?.destroy();
    await agent?.stop();
    if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
  });

  it('pings between subnets of one context (IPv4), and the vCE answers ping itself', async () => {
    const r = await vm['web']!.try('ping', ['-c', '3', '-i', '0.2', '-W', '2', '10.1.2.10']);
    expect(r.out).toMatch(/3 received/);
    const own = await vm['web']!.try('ping', ['-c', '1', '-W', '2', '10.1.1.1']);
    expect(own.out).toMatch(/1 received/);
  });

  it('IPv6: VMs take their default route from our router advertisements and ping -6 passes', async () => {
    for (const n of ['web', 'app'])
      await until(
        async () => /default via fe80::/.test(await vm[n]!.exec('ip', ['-6', 'route', 'show', 'default'])),
        15000,
      );
    const r = await vm['web']!.try('ping', ['-6', '-c', '3', '-i', '0.2', '-W', '2', '2001:db8:2::10']);
    expect(r.out).toMatch(/3 received/);
  });

  it('a TCP transfer of 4 MB arrives intact', async () => {
    const file = join(tmp, 'payload');
    const data = randomBytes(4 << 20);
    await writeFile(file, data);
    const sink = vm['app']!.spawn('sh', ['-c', 'socat -u TCP-LISTEN:5000,reuseaddr - | sha256sum']);
    let digest = '';
    sink.stdout!.on('data', (d: Buffer) => (digest += d.toString()));
    const done = new Promise<void>((r) => sink.on('close', () => r()));
    const send = await vm['web']!.try('socat', [
      '-u',
      `OPEN:${file}`,
      'TCP:10.1.2.10:5000,retry=50,interval=0.1',
    ]);
    expect(send.code).toBe(0);
    await done;
    expect(digest.split(' ')[0]).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('two tenants with the same subnets never see each other', async () => {
    const blue = await vm['blue1']!.try('ping', ['-c', '2', '-i', '0.2', '-W', '2', '10.1.2.10']);
    expect(blue.out).toMatch(/2 received/);
    // red web sends to 10.1.2.10: red app gets it, blue2 (same address) must not
    const listen = (v: Vm): { got: () => string; stop: () => void } => {
      const p = v.spawn('socat', ['-u', 'UDP-RECV:7000', '-']);
      let got = '';
      p.stdout!.on('data', (d: Buffer) => (got += d.toString()));
      return { got: () => got, stop: () => p.kill() };
    };
    const red = listen(vm['app']!);
    const other = listen(vm['blue2']!);
    await until(
      async () => {
        await vm['web']!.try('sh', ['-c', 'echo red-tenant | socat -u - UDP:10.1.2.10:7000']);
        return red.got().includes('red-tenant');
      },
      10000,
      200,
    );
    red.stop();
    other.stop();
    expect(other.got()).toBe('');
  });

  it('zones: app -> db only on tcp/5432, return traffic passes, db cannot open connections to app', async () => {
    const db = vm['db']!.spawn('socat', ['TCP-LISTEN:5432,reuseaddr,fork', 'SYSTEM:echo db-hello']);
    const db2 = vm['db']!.spawn('socat', ['TCP-LISTEN:2222,reuseaddr,fork', 'SYSTEM:echo ssh-hello']);
    const app = vm['app']!.spawn('socat', ['TCP-LISTEN:8080,reuseaddr,fork', 'SYSTEM:echo app-hello']);
    try {
      // allowed: the answer comes back (return traffic of an allowed flow)
      let ok = { code: 1, out: '' };
      await until(
        async () => {
          ok = await vm['app']!.try('socat', ['-T', '2', '-', 'TCP:10.1.3.10:5432,connect-timeout=2'], 5000);
          return ok.out.includes('db-hello');
        },
        10000,
        200,
      );
      // blocked port
      const blocked = await vm['app']!.try(
        'socat',
        ['-T', '1', '-', 'TCP:10.1.3.10:2222,connect-timeout=1'],
        5000,
      );
      expect(blocked.out).not.toContain('ssh-hello');
      expect(blocked.code).not.toBe(0);
      // db -> app: no rule, default deny
      const reverse = await vm['db']!.try(
        'socat',
        ['-T', '1', '-', 'TCP:10.1.2.10:8080,connect-timeout=1'],
        5000,
      );
      expect(reverse.out).not.toContain('app-hello');
      // web -> db: no rule
      const ping = await vm['web']!.try('ping', ['-c', '1', '-W', '1', '10.1.3.10']);
      expect(ping.out).toMatch(/0 received/);
      const res = await fetch(`${agent.apiUrl}/api/v1/dataplane/interfaces/app`);
      const view = (await res.json()) as { counters: { drops: Record<string, number> } };
      expect(view.counters.drops['acl']).toBeGreaterThan(0);
    } finally {
      db.kill();
      db2.kill();
      app.kill();
    }
  });

  it('traceroute sees the vCE as the first hop (TTL exceeded) and unknown networks are unreachable', async () => {
    const tr = await vm['web']!.try('traceroute', ['-n', '-q', '1', '-w', '2', '-m', '3', '10.1.2.10']);
    expect(tr.out).toMatch(/^\s*1\s+10\.1\.1\.1\s/m);
    expect(tr.out).toMatch(/^\s*2\s+10\.1\.2\.10\s/m);
    const un = await vm['web']!.try('ping', ['-c', '1', '-W', '2', '10.9.9.9']);
    expect(un.out).toMatch(/From 10\.1\.1\.1.*Destination Net Unreachable/);
  });

  it('vce capture writes what the forwarder sees on an interface as pcap that tshark reads', async () => {
    const file = join(tmp, 'capture.pcap');
    const cli = spawn(
      process.execPath,
      [
        'bin/vce.js',
        'capture',
        '--api',
        agent.apiUrl!,
        '-i',
        'web',
        '-w',
        file,
        '-c',
        '1000',
        '--seconds',
        '3',
      ],
      { stdio: 'inherit' },
    );
    const exited = new Promise<number | null>((r) => cli.on('exit', (code) => r(code)));
    const fwd = agent.dataplane!.driver.forwarder!;
    const web = fwd.byName.get('web')!;
    await until(() => Promise.resolve(fwd.taps[web.index] !== undefined), 20000, 50);
    await vm['web']!.try('ping', ['-c', '2', '-i', '0.2', '-W', '2', '10.1.1.1']);
    expect(await exited).toBe(0);
    const out = await sh('tshark', ['-r', file, '-T', 'fields', '-e', 'eth.src', '-e', 'icmp.type']);
    // other frames may be seen too (ARP, router advertisements): the pings are in order
    const icmp = out
      .trim()
      .split('\n')
      .map((l) => l.split('\t')[1])
      .filter((t) => t !== undefined && t !== '');
    expect(icmp).toEqual(['8', '0', '8', '0']);
  });

  it('DSCP marking: udp/9000 leaves towards app as EF, inner and outer (uniform), seen by tshark', async () => {
    const pcap = join(tmp, 'dscp.pcap');
    const cap = sh('tshark', [
      '-i',
      vm['app']!.hostIf,
      '-f',
      `udp port ${port}`,
      '-a',
      'duration:4',
      '-w',
      pcap,
    ]);
    // let tshark start (it has no ready event we can read through execFile)
    await until(async () => (await readFile(pcap).catch(() => Buffer.alloc(0))).length >= 24, 5000, 50);
    for (let i = 0; i < 5; i++)
      await vm['web']!.try('sh', ['-c', 'echo voice | socat -u - UDP:10.1.2.10:9000']);
    await cap;
    const out = await sh('tshark', [
      '-r',
      pcap,
      '-d',
      `udp.port==${port},vxlan`,
      '-Y',
      'udp.dstport==9000 && !icmp',
      '-T',
      'fields',
      '-e',
      'ip.dsfield.dscp',
    ]);
    const lines = out
      .trim()
      .split('\n')
      .filter((l) => l !== '');
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l).toBe('46,46');
  });

  it('reconfiguration: a new zone rule applies at once; counters and flows are kept', async () => {
    const before = agent.dataplane!.driver.forwarder!.counters.read(
      agent.dataplane!.driver.forwarder!.byName.get('web')!.index,
    );
    raw.dataplane.zones.rules.push({
      name: 'db-to-app-8080',
      from: 'db',
      to: 'app',
      action: 'allow',
      protocol: 'tcp',
      'destination-ports': [8080],
    });
    const report = await agent.apply(buildAgentConfig(raw));
    expect(report.changes).toContain('dataplane: reconfigured (counters and flows kept)');
    const fwd = agent.dataplane!.driver.forwarder!;
    expect(fwd.counters.read(fwd.byName.get('web')!.index)['in-packets']).toBeGreaterThanOrEqual(
      before['in-packets'],
    );
    const app = vm['app']!.spawn('socat', ['TCP-LISTEN:8080,reuseaddr,fork', 'SYSTEM:echo app-hello']);
    try {
      let r = { code: 1, out: '' };
      await until(
        async () => {
          r = await vm['db']!.try('socat', ['-T', '2', '-', 'TCP:10.1.2.10:8080,connect-timeout=2'], 5000);
          return r.out.includes('app-hello');
        },
        10000,
        200,
      );
    } finally {
      app.kill();
    }
  });
});
