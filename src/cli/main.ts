/**
 * The `vce` command: `vce agent`, `vce lab`, and the operator's `vce show ...` verbs, which talk
 * to an agent's management API (tables by default, `--json` for scripts).
 */
import { Command } from 'commander';
import { runAgentCommand } from '../agent/run.ts';
import { showCommands } from './show.ts';
import { dataplaneCommands } from './dataplane.ts';

const program = new Command();
program.name('vce').description('BGP/MPLS IP VPN virtual CE: agent, lab and operator CLI').version('0.1.0');

program
  .command('agent')
  .description('run the vCE agent in the foreground')
  .requiredOption('-c, --config <file>', 'configuration file (YAML or JSON)')
  .action(async (o: { config: string }) => {
    await runAgentCommand(o.config);
  });

program
  .command('lab')
  .description('bring up the embedded lab: a PE speaker and two vCEs on loopback, with their APIs')
  .option('--base-port <port>', 'first TCP port to use', '17900')
  .action(async (o: { basePort: string }) => {
    const { runLab } = await import('../lab/lab.ts');
    await runLab({ basePort: Number(o.basePort) });
  });

program
  .command('config')
  .description('agent configuration')
  .command('apply')
  .description('validate a configuration file and apply the difference to a running agent')
  .argument('<file>', 'configuration file (YAML or JSON)')
  .option('--api <url>', 'agent API base URL', process.env['VCE_API'] ?? 'http://127.0.0.1:8179')
  .action(async (file: string, o: { api: string }) => {
    const { readFile } = await import('node:fs/promises');
    const { parse } = await import('yaml');
    const text = await readFile(file, 'utf8');
    const body: unknown = file.endsWith('.json') ? JSON.parse(text) : parse(text);
    const res = await fetch(new URL('/api/v1/config', o.api), {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const out = (await res.json()) as { changes?: string[]; message?: string };
    if (!res.ok) {
      process.stderr.write(`vce config apply: ${res.status} ${out.message ?? ''}\n`);
      process.exit(res.status === 400 ? 2 : 1);
    }
    process.stdout.write(
      (out.changes ?? []).length === 0 ? 'no change\n' : `${(out.changes ?? []).join('\n')}\n`,
    );
  });

showCommands(program);
dataplaneCommands(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`vce: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
