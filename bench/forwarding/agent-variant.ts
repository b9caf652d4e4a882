/**
 * The vCE agent with one change to its userspace driver, to measure a proposed fix before it is
 * made in src/: datagrams with outer DSCP 0 leave through one connected UDP socket per tunnel
 * endpoint (`send(buf, off, len)`: no per-datagram address lookup, no process.nextTick, no
 * route lookup in the kernel) instead of `send(buf, off, len, port, address)` on the unconnected
 * listening socket. Everything else (receive path, Forwarder) is the agent's own code, loaded from
 * the compiled dist/ like `bin/vce.js` does (falls back to src/ through tsx when dist/ is absent).
 *
 *   node --import tsx bench/forwarding/agent-variant.ts --config FILE
 */
import dgram from 'node:dgram';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

type RunModule = typeof import('../../src/agent/run.ts');
type ConfigModule = typeof import('../../src/agent/config.ts');

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values } = parseArgs({ options: { config: { type: 'string' } } });
if (values.config === undefined) throw new Error('--config FILE is required');

const fromDist = existsSync(join(REPO, 'dist', 'agent', 'run.js'));
const mod = (p: string): string => pathToFileURL(join(REPO, fromDist ? 'dist' : 'src', `${p}${fromDist ? '.js' : '.ts'}`)).href;
const { startAgent } = (await import(mod('agent/run'))) as RunModule;
const { buildAgentConfig } = (await import(mod('agent/config'))) as ConfigModule;

const agent = await startAgent(buildAgentConfig(JSON.parse(readFileSync(values.config, 'utf8'))));
const fwd = agent.dataplane?.driver.forwarder;
if (fwd === undefined) throw new Error('no userspace forwarder');
const listen = agent.dataplane!.config.listenAddress;

const connected: dgram.Socket[] = [];
for (const e of fwd.endpoints) {
  const s = dgram.createSocket({ type: e.family === 6 ? 'udp6' : 'udp4', sendBufferSize: 4 << 20 });
  s.on('error', () => undefined); // ICMP errors come back on a connected socket
  await new Promise<void>((r) => s.bind(0, listen, () => r()));
  await new Promise<void>((r) => s.connect(e.port, e.address, () => r()));
  connected.push(s);
}
const original = fwd.transmit;
fwd.transmit = (tunnel, ep, buf, off, len, dscp) => {
  if (dscp !== 0) return original(tunnel, ep, buf, off, len, dscp);
  connected[ep]!.send(buf, off, len);
};

const stop = (): void => {
  for (const s of connected) s.close();
  void agent.stop().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
