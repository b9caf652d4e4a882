/**
 * `vce show bgp summary | neighbors | routes`: reads an agent's API and prints tables (or JSON).
 * The formatting functions are pure so the lab prints the same tables from in-process data.
 */
import type { Command } from 'commander';
import Table from 'cli-table3';
import type { NeighborView, RouteView } from '../bgp/rib-view.ts';
import type { FibEntry } from '../routing/context.ts';

function fmtUptime(s: number, state = 'established'): string {
  if (state !== 'established') return 'never';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

export function formatSummary(ns: readonly NeighborView[]): string {
  const t = new Table({
    head: ['Neighbor', 'AS', 'State', 'Up/Down', 'Family', 'Rcvd', 'Accepted', 'Advertised'],
    style: { head: [], border: [] },
  });
  for (const n of ns) {
    const fams = Object.entries(n['afi-safis']);
    fams.forEach(([f, c], i) => {
      t.push(
        i === 0
          ? [
              n.address,
              n['peer-asn'],
              n.state,
              fmtUptime(n['uptime-s'], n.state),
              f,
              c.received,
              c.accepted,
              c.advertised,
            ]
          : ['', '', '', '', f, c.received, c.accepted, c.advertised],
      );
    });
  }
  return t.toString();
}

export function formatNeighbors(ns: readonly NeighborView[]): string {
  return ns
    .map((n) =>
      [
        `BGP neighbor ${n.address}, remote AS ${n['peer-asn']}${n.description !== undefined ? ` (${n.description})` : ''}`,
        `  state ${n.state}, up for ${fmtUptime(n['uptime-s'], n.state)}, router id ${n['router-id'] ?? '-'}`,
        `  messages in ${n.messages.in} out ${n.messages.out}; updates in ${n.messages['updates-in']} out ${n.messages['updates-out']}; flaps ${n.flaps}`,
        `  last error: ${n['last-error'] ?? 'none'}`,
        ...Object.entries(n['afi-safis']).map(
          ([f, c]) => `  ${f}: received ${c.received}, accepted ${c.accepted}, advertised ${c.advertised}`,
        ),
      ].join('\n'),
    )
    .join('\n\n');
}

export function formatRoutes(rs: readonly RouteView[]): string {
  const t = new Table({
    head: ['', 'Prefix', 'Next hop', 'AS path', 'Origin', 'MED', 'LocPrf', 'Communities', 'From', 'Reason'],
    style: { head: [], border: [] },
  });
  for (const r of rs) {
    r.paths.forEach((p, i) => {
      const comm = [...p.communities, ...p['large-communities'], ...p['ext-communities']].join(' ');
      t.push([
        p.best ? '*>' : p.reason === 'rejected-by-policy' ? ' x' : ' *',
        i === 0 ? (r.rd !== undefined ? `${r.rd}:${r.prefix}` : r.prefix) : '',
        p['next-hop'],
        p['as-path'] === '' ? '(local)' : p['as-path'],
        p.origin,
        p.med ?? '',
        p['local-pref'] ?? '',
        comm,
        p.from,
        p.reason,
      ]);
    });
  }
  return t.toString();
}

async function get<T>(api: string, path: string): Promise<T> {
  const res = await fetch(new URL(path, api));
  const body = (await res.json()) as T & { message?: string };
  if (!res.ok) throw new Error(`${res.status} ${body.message ?? res.statusText}`);
  return body;
}

export function formatFib(rs: readonly FibEntry[]): string {
  const t = new Table({
    head: ['Prefix', 'Action', 'Next hop', 'Interface', 'Source', 'Distance', 'Also'],
    style: { head: [], border: [] },
  });
  for (const r of rs)
    t.push([
      r.prefix,
      r.action,
      r['next-hop'] ?? '',
      r.interface ?? '',
      r.source,
      r.distance,
      r.alternatives.join(' '),
    ]);
  return t.toString();
}

export function showCommands(program: Command): void {
  const show = program.command('show').description('show operational state of an agent');
  show
    .command('fib')
    .description('the FIB of a routing context, with the source of every entry')
    .option('--vrf <name>', 'routing context', 'default')
    .option('--api <url>', 'agent API base URL', process.env['VCE_API'] ?? 'http://127.0.0.1:8179')
    .option('--json', 'print JSON')
    .action(async (o: { api: string; json?: boolean; vrf: string }) => {
      const rs = await get<FibEntry[]>(o.api, `/api/v1/vrfs/${encodeURIComponent(o.vrf)}/fib`);
      process.stdout.write((o.json === true ? JSON.stringify(rs, null, 2) : formatFib(rs)) + '\n');
    });
  show
    .command('bfd')
    .description('BFD sessions')
    .option('--api <url>', 'agent API base URL', process.env['VCE_API'] ?? 'http://127.0.0.1:8179')
    .option('--json', 'print JSON')
    .action(async (o: { api: string; json?: boolean }) => {
      const rs = await get<Record<string, string | number | boolean>[]>(o.api, '/api/v1/bfd/sessions');
      if (o.json === true) return void process.stdout.write(JSON.stringify(rs, null, 2) + '\n');
      const t = new Table({
        head: ['Peer', 'Local', 'Hop', 'State', 'Diag', 'TX ms', 'Detect ms', 'Clients'],
        style: { head: [], border: [] },
      });
      for (const r of rs)
        t.push(
          [
            r['peer'],
            r['local-address'],
            r['multihop'] === true ? 'multi' : 'single',
            r['state'],
            r['diagnostic'],
            r['tx-interval-ms'],
            r['detect-time-ms'],
            r['clients'],
          ].map(String),
        );
      process.stdout.write(t.toString() + '\n');
    });
  const bgp = show.command('bgp').description('BGP state');
  const common = (c: Command): Command =>
    c
      .option('--api <url>', 'agent API base URL', process.env['VCE_API'] ?? 'http://127.0.0.1:8179')
      .option('--json', 'print JSON');
  common(bgp.command('summary').description('one line per neighbour and family')).action(
    async (o: { api: string; json?: boolean }) => {
      const ns = await get<NeighborView[]>(o.api, '/api/v1/bgp/neighbors');
      process.stdout.write((o.json === true ? JSON.stringify(ns, null, 2) : formatSummary(ns)) + '\n');
    },
  );
  common(bgp.command('neighbors').description('neighbour details')).action(
    async (o: { api: string; json?: boolean }) => {
      const ns = await get<NeighborView[]>(o.api, '/api/v1/bgp/neighbors');
      process.stdout.write((o.json === true ? JSON.stringify(ns, null, 2) : formatNeighbors(ns)) + '\n');
    },
  );
  common(
    bgp
      .command('routes')
      .option('--vrf <name>', 'routing context')
      .description('routes of one family')
      .argument('[prefix]', 'exact prefix')
      .option('--afi-safi <family>', 'address family', 'ipv4-unicast'),
  ).action(async (prefix: string | undefined, o: { api: string; json?: boolean; afiSafi: string }) => {
    const q = prefix === undefined ? '' : `?prefix=${encodeURIComponent(prefix)}`;
    const rs = await get<RouteView[]>(o.api, `/api/v1/bgp/rib/${o.afiSafi}${q}`);
    process.stdout.write((o.json === true ? JSON.stringify(rs, null, 2) : formatRoutes(rs)) + '\n');
  });
}
