/**
 * `vce agent`: runs one speaker with its management API in the foreground. SIGTERM/SIGINT close
 * every session with Cease/Administrative Shutdown and exit 0; an invalid configuration exits 2
 * with a message naming the field.
 */
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import { loadAgentConfig, ConfigError, type AgentConfig } from './config.ts';
import { Speaker } from '../bgp/speaker.ts';
import { buildAgentApi } from './api.ts';

export interface RunningAgent {
  readonly speaker: Speaker;
  readonly api?: FastifyInstance;
  readonly apiUrl?: string;
  stop(): Promise<void>;
}

export async function startAgent(
  cfg: AgentConfig,
  logger = pino({ level: cfg.logLevel }),
): Promise<RunningAgent> {
  const speaker = new Speaker(cfg.speaker, logger);
  await speaker.start();
  let api: FastifyInstance | undefined;
  let apiUrl: string | undefined;
  if (cfg.api !== undefined) {
    api = await buildAgentApi({ speaker });
    apiUrl = await api.listen({ host: cfg.api.host, port: cfg.api.port });
  }
  logger.info(
    { routerId: cfg.routerIdText, asn: cfg.speaker.asn, api: apiUrl, bgpPort: speaker.listenPort },
    'vce agent started',
  );
  return {
    speaker,
    api,
    apiUrl,
    async stop() {
      await speaker.stop();
      await api?.close();
    },
  };
}

export async function runAgentCommand(file: string): Promise<void> {
  let cfg: AgentConfig;
  try {
    cfg = await loadAgentConfig(file);
  } catch (e) {
    if (e instanceof ConfigError || (e as NodeJS.ErrnoException).code === 'ENOENT') {
      process.stderr.write(`vce agent: invalid configuration: ${(e as Error).message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const agent = await startAgent(cfg);
  let stopping = false;
  const shutdown = (): void => {
    if (stopping) return;
    stopping = true;
    void agent.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}
