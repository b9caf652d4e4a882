/**
 * Controller verbs: `vce controller` runs it; `vce tenant create|list|show|delete`,
 * `vce binding create|list|show|delete` and `vce operation show|list` talk to its API (tables by
 * default, `--json` for scripts). The API URL and token come from --controller/--token or
 * VCE_CONTROLLER / VCE_TOKEN.
 */
import type { Command } from 'commander';
import Table from 'cli-table3';

const URL_DEFAULT = process.env['VCE_CONTROLLER'] ?? 'http://127.0.0.1:8180';

interface Common {
  controller: string;
  token?: string;
  json?: boolean;
}

async function call<T>(o: Common, method: string, path: string, body?: unknown): Promise<T> {
  const token = o.token ?? process.env['VCE_TOKEN'];
  if (token === undefined) throw new Error('a token is needed: --token or VCE_TOKEN');
  const res = await fetch(new URL(path, o.controller), {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const parsed = (text === '' ? {} : JSON.parse(text)) as T & { message?: string };
  if (!res.ok) throw new Error(`${res.status} ${parsed.message ?? res.statusText}`);
  return parsed;
}

function out(o: Common, data: unknown, table: () => string): void {
  process.stdout.write((o.json === true ? JSON.stringify(data, null, 2) : table()) + '\n');
}

function tbl(head: string[], rows: unknown[][]): string {
  const t = new Table({ head, style: { head: [], border: [] } });
  for (const r of rows)
    t.push(
      r.map((x) =>
        x === undefined || x === null
          ? ''
          : typeof x === 'object'
            ? JSON.stringify(x)
            : String(x as string | number | boolean),
      ),
    );
  return t.toString();
}

interface Op {
  id: string;
  kind: string;
  mode?: string;
  tenant: string;
  target: string;
  state: string;
  error?: string;
  steps: { name: string; state: string; error?: string; result?: unknown }[];
}

function formatOperation(op: Op): string {
  return (
    `operation ${op.id} (${op.kind}${op.mode === undefined ? '' : ` ${op.mode}`} ${op.target}): ${op.state}${op.error === undefined ? '' : ` — ${op.error}`}\n` +
    tbl(
      ['Step', 'State', 'Detail'],
      op.steps.map((s) => [s.name, s.state, s.error ?? s.result]),
    )
  );
}

async function waitOperation(o: Common, id: string): Promise<Op> {
  for (;;) {
    const op = await call<Op>(o, 'GET', `/api/v1/operations/${id}`);
    if (op.state === 'succeeded' || op.state === 'failed' || op.state === 'rolled-back') return op;
    await new Promise((r) => setTimeout(r, 300));
  }
}

export function controllerCommands(program: Command): void {
  const common = (c: Command): Command =>
    c
      .option('--controller <url>', 'controller API base URL', URL_DEFAULT)
      .option('--token <token>', 'bearer token')
      .option('--json', 'print JSON');

  program
    .command('controller')
    .description('run the DC controller (store, workflows, API)')
    .option('--store <spec>', 'sqlite:FILE or etcd:URL[,URL...]', 'sqlite:vce-controller.db')
    .option('--listen <host:port>', 'API address', '127.0.0.1:8180')
    .option('--token <token>', 'bootstrap operator token (generated when absent)', process.env['VCE_TOKEN'])
    .action(async (o: { store: string; listen: string; token?: string }) => {
      const { startController } = await import('../controller/run.ts');
      const [kind, rest] = [o.store.slice(0, o.store.indexOf(':')), o.store.slice(o.store.indexOf(':') + 1)];
      const store =
        kind === 'etcd'
          ? { kind: 'etcd' as const, endpoints: rest.split(',') }
          : { kind: 'sqlite' as const, file: rest };
      const i = o.listen.lastIndexOf(':');
      // Fault injection for crash tests: VCE_CRASH_BEFORE_STEP=STEP[:N] kills the process (SIGKILL,
      // nothing flushed) the N-th time (default 1st) a workflow step is about to run.
      const crash = process.env['VCE_CRASH_BEFORE_STEP'];
      let seen = 0;
      const beforeStep =
        crash === undefined
          ? undefined
          : (_op: unknown, step: string): void => {
              const [name, n] = crash.split(':');
              if (step === name && ++seen >= Number(n ?? 1)) process.kill(process.pid, 'SIGKILL');
            };
      const c = await startController({
        workflow: { beforeStep },
        store,
        listen: { host: o.listen.slice(0, i), port: Number(o.listen.slice(i + 1)) },
        operatorToken: o.token,
      });
      const stop = (): void => void c.stop().then(() => process.exit(0));
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });

  const tenant = program.command('tenant').description('tenants');
  common(tenant.command('create').argument('<id>').option('--name <name>', 'display name')).action(
    async (id: string, o: Common & { name?: string }) => {
      const t = await call(o, 'POST', '/api/v1/tenants', { id, name: o.name ?? id });
      out(o, t, () => `tenant ${id} created`);
    },
  );
  common(tenant.command('list')).action(async (o: Common) => {
    const r = await call<{ items: { id: string; name: string; state: string; createdAt: string }[] }>(
      o,
      'GET',
      '/api/v1/tenants?limit=1000',
    );
    out(o, r.items, () =>
      tbl(
        ['Tenant', 'Name', 'State', 'Created'],
        r.items.map((t) => [t.id, t.name, t.state, t.createdAt]),
      ),
    );
  });
  common(tenant.command('show').argument('<id>')).action(async (id: string, o: Common) => {
    const [t, vces, bindings] = await Promise.all([
      call<Record<string, unknown>>(o, 'GET', `/api/v1/tenants/${id}`),
      call<{ items: { id: string; host: string; contexts: { name: string }[] }[] }>(
        o,
        'GET',
        `/api/v1/tenants/${id}/vces`,
      ),
      call<{
        items: { id: string; vce: string; context: string; pe: string; wanVrf: string; state: string }[];
      }>(o, 'GET', `/api/v1/tenants/${id}/bindings`),
    ]);
    out(o, { tenant: t, vces: vces.items, bindings: bindings.items }, () =>
      [
        `tenant ${id}: ${String(t['name'])} (${String(t['state'])})`,
        tbl(
          ['vCE', 'Host', 'Contexts'],
          vces.items.map((v) => [v.id, v.host, v.contexts.map((c) => c.name).join(' ')]),
        ),
        tbl(
          ['Binding', 'vCE', 'Context', 'PE', 'WAN VRF', 'State'],
          bindings.items.map((b) => [b.id, b.vce, b.context, b.pe, b.wanVrf, b.state]),
        ),
      ].join('\n'),
    );
  });
  common(
    tenant.command('delete').argument('<id>').option('--wait', 'wait for the termination to finish'),
  ).action(async (id: string, o: Common & { wait?: boolean }) => {
    let op = await call<Op>(o, 'DELETE', `/api/v1/tenants/${id}`);
    if (o.wait === true) op = await waitOperation(o, op.id);
    out(o, op, () => formatOperation(op));
  });

  const binding = program.command('binding').description('WAN bindings (push model)');
  common(
    binding
      .command('create')
      .argument('<tenant>')
      .requiredOption('--file <json>', 'binding document (JSON)')
      .option('--wait', 'wait for the operation'),
  ).action(async (t: string, o: Common & { file: string; wait?: boolean }) => {
    const { readFile } = await import('node:fs/promises');
    const body = JSON.parse(await readFile(o.file, 'utf8')) as unknown;
    const r = await call<{ operation: Op }>(o, 'POST', `/api/v1/tenants/${t}/bindings`, body);
    const op = o.wait === true ? await waitOperation(o, r.operation.id) : r.operation;
    out(o, op, () => formatOperation(op));
  });
  common(binding.command('list').argument('<tenant>')).action(async (t: string, o: Common) => {
    const r = await call<{
      items: {
        id: string;
        vce: string;
        context: string;
        pe: string;
        wanVrf: string;
        rd: string;
        state: string;
      }[];
    }>(o, 'GET', `/api/v1/tenants/${t}/bindings`);
    out(o, r.items, () =>
      tbl(
        ['Binding', 'vCE', 'Context', 'PE', 'WAN VRF', 'RD', 'State'],
        r.items.map((b) => [b.id, b.vce, b.context, b.pe, b.wanVrf, b.rd, b.state]),
      ),
    );
  });
  common(
    binding
      .command('delete')
      .argument('<tenant>')
      .argument('<id>')
      .option('--wait', 'wait for the operation'),
  ).action(async (t: string, id: string, o: Common & { wait?: boolean }) => {
    let op = await call<Op>(o, 'DELETE', `/api/v1/tenants/${t}/bindings/${id}`);
    if (o.wait === true) op = await waitOperation(o, op.id);
    out(o, op, () => formatOperation(op));
  });

  const operation = program.command('operation').description('provisioning operations');
  common(operation.command('show').argument('<id>')).action(async (id: string, o: Common) => {
    const op = await call<Op>(o, 'GET', `/api/v1/operations/${id}`);
    out(o, op, () => formatOperation(op));
  });
  common(operation.command('list').option('--tenant <id>')).action(
    async (o: Common & { tenant?: string }) => {
      const r = await call<{ items: Op[] }>(
        o,
        'GET',
        `/api/v1/operations${o.tenant === undefined ? '' : `?tenant=${o.tenant}`}`,
      );
      out(o, r.items, () =>
        tbl(
          ['Operation', 'Kind', 'Tenant', 'Target', 'State'],
          r.items.map((x) => [x.id, x.kind, x.tenant, x.target, x.state]),
        ),
      );
    },
  );
}
