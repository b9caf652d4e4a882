/**
 * The `vce` command: `vce agent`, `vce lab`, and the operator's `vce show ...` verbs, which talk
 * to an agent's management API (tables by default, `--json` for scripts).
 */
import { Command } from 'commander';
import { runAgentCommand } from '../agent/run.ts';
import { showCommands } from './show.ts';
import { dataplaneCommands } from './dataplane.ts';
import { controllerCommands } from './controller.ts';

const program = new Command();
program.name('vce').description('BGP/MPLS IP VPN virtual CE: agent, lab and operator CLI').version('0.1.0');

program
  .command('agent')
  .description('run the vCE agent in the foreground, from a file or from the controller')
  .option('-c, --config <file>', 'configuration file (YAML or JSON)')
  .option('--controller <url>', 'take the configuration from this controller')
  .option('--token <token>', 'agent token (controller mode)', process.env['VCE_TOKEN'])
  .option('--id <vce>', 'this vCE instance id (controller mode)')
  .option('--api <host:port>', 'local management API (controller mode)')
  .action(async (o: { config?: string; controller?: string; token?: string; id?: string; api?: string }) => {
    if (o.controller !== undefined) {
      if (o.token === undefined || o.id === undefined) {
        process.stderr.write('vce agent: --controller needs --token and --id\n');
        process.exit(2);
      }
      const { ControllerClient } = await import('../agent/controller-client.ts');
      const { default: pino } = await import('pino');
      const client = new ControllerClient({
        url: o.controller,
        token: o.token,
        id: o.id,
        local: o.api === undefined ? {} : { api: { listen: o.api } },
        log: pino({ level: 'info' }),
      });
      client.start();
      const stop = (): void => void client.stop().then(() => process.exit(0));
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
      return;
    }
    if (o.config === undefined) {
      process.stderr.write('vce agent: --config FILE or --controller URL is required\n');
      process.exit(2);
    }
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
controllerCommands(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`vce: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
