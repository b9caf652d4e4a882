/**
 * Data plane verbs: `vce capture --interface X --write FILE.pcap [--count N] [--seconds S]` saves
 * what the forwarder sees on one attachment (both directions) in pcap format, streamed from the
 * agent's API; `vce show interfaces` lists attachments with their counters.
 */
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Command } from 'commander';
import Table from 'cli-table3';

const API = process.env['VCE_API'] ?? 'http://127.0.0.1:8179';

interface IfaceView {
  name: string;
  kind: string;
  vrf: string;
  zone: string | null;
  vni: number | null;
  vlan: number | null;
  'outer-vlan': number | null;
  vsid: number | null;
  addresses: string[];
  counters: {
    'in-packets': number;
    'in-bytes': number;
    'out-packets': number;
    'out-bytes': number;
    'dropped-packets': number;
    drops: Record<string, number>;
  };
}

export function formatInterfaces(list: readonly IfaceView[]): string {
  const t = new Table({
    head: [
      'Interface',
      'Kind',
      'VRF',
      'Zone',
      'Id',
      'Addresses',
      'In pkts',
      'In bytes',
      'Out pkts',
      'Out bytes',
      'Drops',
    ],
    style: { head: [], border: [] },
  });
  for (const i of list) {
    const id =
      i.vni !== null
        ? `vni ${i.vni}`
        : i.vsid !== null
          ? `vsid ${i.vsid}`
          : i.vlan !== null
            ? `vlan ${i['outer-vlan'] !== null ? `${i['outer-vlan']}.` : ''}${i.vlan}`
            : '';
    const drops = Object.entries(i.counters.drops)
      .map(([k, v]) => `${k}:${v}`)
      .join(' ');
    t.push(
      [
        i.name,
        i.kind,
        i.vrf,
        i.zone ?? '',
        id,
        i.addresses.join(' '),
        i.counters['in-packets'],
        i.counters['in-bytes'],
        i.counters['out-packets'],
        i.counters['out-bytes'],
        drops,
      ].map(String),
    );
  }
  return t.toString();
}

export function dataplaneCommands(program: Command): void {
  program
    .command('capture')
    .description('write what the forwarder sees on an interface to a pcap file (tshark/wireshark read it)')
    .requiredOption('-i, --interface <name>', 'attachment circuit name')
    .requiredOption('-w, --write <file>', 'pcap file to write')
    .option('-c, --count <n>', 'stop after this many frames', '100')
    .option('--seconds <s>', 'stop after this many seconds', '60')
    .option('--api <url>', 'agent API base URL', API)
    .action(async (o: { interface: string; write: string; count: string; seconds: string; api: string }) => {
      const q = new URLSearchParams({ interface: o.interface, count: o.count, seconds: o.seconds });
      const res = await fetch(new URL(`/api/v1/dataplane/capture?${q.toString()}`, o.api));
      if (!res.ok || res.body === null) {
        const body = (await res.json().catch(() => ({}))) as { message?: string };
        process.stderr.write(`vce capture: ${res.status} ${body.message ?? res.statusText}\n`);
        process.exit(1);
      }
      await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), createWriteStream(o.write));
    });
  program.commands
    .find((c) => c.name() === 'show')!
    .command('interfaces')
    .description('data plane attachments and their counters')
    .option('--api <url>', 'agent API base URL', API)
    .option('--json', 'print JSON')
    .action(async (o: { api: string; json?: boolean }) => {
      const res = await fetch(new URL('/api/v1/dataplane/interfaces', o.api));
      const body = (await res.json()) as { interfaces: IfaceView[]; message?: string };
      if (!res.ok) throw new Error(`${res.status} ${body.message ?? res.statusText}`);
      process.stdout.write(
        (o.json === true ? JSON.stringify(body, null, 2) : formatInterfaces(body.interfaces)) + '\n',
      );
    });
}
