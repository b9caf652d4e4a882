/**
 * The `vce` command: `vce agent`, `vce lab`, and the operator's `vce show ...` verbs, which talk
 * to an agent's management API (tables by default, `--json` for scripts).
 */
import { Command } from 'commander';
import { runAgentCommand } from '../agent/run.ts';
import { showCommands } from './show.ts';

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

showCommands(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`vce: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
