/**
 * `vce lab`: one process, three speakers on loopback over real TCP sessions — an embedded PE
 * (AS 65000) and two vCEs (AS 65001, 65002), each originating IPv4 and IPv6 prefixes. Prints
 * progress, the BGP summary and every speaker's routes once converged, then keeps running with
 * each speaker's management API up until Ctrl-C, which closes every session with Cease.
 */
import pc from 'picocolors';
import { buildAgentConfig } from '../agent/config.ts';
import { startAgent, type RunningAgent } from '../agent/run.ts';
import { neighborViews, routeViews } from '../bgp/rib-view.ts';
import { formatRoutes, formatSummary } from '../cli/show.ts';
import type { Speaker } from '../bgp/speaker.ts';
import pino from 'pino';
import { runPushLab, type PushLab } from './push.ts';

export interface LabOptions {
  readonly basePort: number;
  /** Return once converged instead of waiting for Ctrl-C (tests). */
  readonly detach?: boolean;
  readonly quiet?: boolean;
}

interface Node {
  name: string;
  role: 'pe' | 'vce';
  address: string;
  asn: number;
  networks: string[];
}

const NODES: Node[] = [
  {
    name: 'pe1',
    role: 'pe',
    address: '127.0.0.1',
    asn: 65000,
    networks: ['192.0.2.0/24', '2001:db8:ffff::/48'],
  },
  {
    name: 'vce-a',
    role: 'vce',
    address: '127.0.0.2',
    asn: 65001,
    networks: ['10.1.0.0/16', '2001:db8:1::/48'],
  },
  {
    name: 'vce-b',
    role: 'vce',
    address: '127.0.0.3',
    asn: 65002,
    networks: ['10.2.0.0/16', '2001:db8:2::/48'],
  },
];

function nodeConfig(n: Node, i: number, basePort: number): unknown {
  const pe = NODES[0]!;
  const neighbors =
    n.role === 'pe'
      ? NODES.filter((x) => x.role === 'vce').map((v) => ({
          address: v.address,
          'peer-asn': v.asn,
          description: v.name,
          passive: true,
          'afi-safis': ['ipv4-unicast', 'ipv6-unicast'],
          'import-policy': 'accept-all',
          'export-policy': 'accept-all',
          'hold-time': 9,
        }))
      : [
          {
            address: pe.address,
            'peer-asn': pe.asn,
            description: pe.name,
            'remote-port': basePort,
            'local-address': n.address,
            'afi-safis': ['ipv4-unicast', 'ipv6-unicast'],
            'import-policy': 'accept-all',
            'export-policy': 'accept-all',
            'hold-time': 9,
            'connect-retry': 1,
          },
        ];
  return {
    'router-id': `10.255.0.${i + 1}`,
    api: { listen: `127.0.0.1:${basePort + 1 + i}` },
    'log-level': 'warn',
    bgp: { asn: n.asn, listen: { address: n.address, port: basePort }, neighbors, networks: n.networks },
  };
}

function converged(agents: RunningAgent[]): boolean {
  const total = NODES.length;
  for (const a of agents) {
    const sp: Speaker = a.speaker;
    if (!sp.peerList().every((p) => p.established)) return false;
    // every node must hold every node's prefixes
    for (const f of ['ipv4-unicast', 'ipv6-unicast'] as const)
      if (sp.rib(f).countBest() < total) return false;
  }
  return true;
}

export interface Lab {
  readonly agents: RunningAgent[];
  readonly push: PushLab;
  stop(): Promise<void>;
}

export async function runLab(opts: LabOptions): Promise<Lab> {
  const say = (s: string): void => {
    if (opts.quiet !== true) process.stdout.write(s + '\n');
  };
  say(pc.bold('vce lab: an embedded PE and two vCEs on loopback'));
  const agents: RunningAgent[] = [];
  for (const [i, n] of NODES.entries()) {
    const cfg = buildAgentConfig(nodeConfig(n, i, opts.basePort));
    const agent = await startAgent(cfg, pino({ level: 'warn' }));
    agents.push(agent);
    say(
      `  started ${pc.cyan(n.name.padEnd(6))} AS ${n.asn}  BGP ${n.address}:${opts.basePort}  API ${agent.apiUrl ?? '-'}`,
    );
    agent.speaker.on('peer-established', (p: { cfg: { address: string; description?: string } }) =>
      say(`  ${pc.green('established')} ${n.name} <-> ${p.cfg.description ?? p.cfg.address}`),
    );
  }
  const deadline = Date.now() + 30_000;
  await new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (converged(agents)) return resolve();
      if (Date.now() > deadline) return reject(new Error('lab did not converge within 30 s'));
      setTimeout(check, 50);
    };
    check();
  });
  for (const [i, a] of agents.entries()) {
    const n = NODES[i]!;
    say(`\n${pc.bold(`== ${n.name} (AS ${n.asn}) ==`)}  API ${a.apiUrl ?? ''}`);
    say(formatSummary(neighborViews(a.speaker)));
    say(formatRoutes(routeViews(a.speaker, 'ipv4-unicast')));
    say(formatRoutes(routeViews(a.speaker, 'ipv6-unicast')));
  }
  const push = await runPushLab(opts.basePort, say);
  const lab: Lab = {
    agents,
    push,
    async stop() {
      await push.stop();
      await Promise.all(agents.map((a) => a.stop()));
    },
  };
  if (opts.detach === true) return lab;
  say(
    `\nlab running. Try: ${pc.cyan(`vce show bgp summary --api ${agents[0]?.apiUrl ?? ''}`)}\n` +
      `                 ${pc.cyan(`vce tenant show acme --controller ${push.controller.url} --token lab-operator-token`)}  — Ctrl-C to stop`,
  );
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      say('\nstopping: closing every session with Cease/Administrative Shutdown');
      void lab.stop().then(() => resolve());
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  process.exit(0);
}
