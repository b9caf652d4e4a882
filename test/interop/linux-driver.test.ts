/**
 * The agent with `dataplane.driver: linux`: the kernel (inside a test namespace) follows the
 * agent's FIB — connected and static routes at start, a controller route added through the API,
 * removed when its lease is withdrawn — and stopping the agent removes what it installed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgentConfig } from '../../src/agent/config.ts';
import { startAgent, type RunningAgent } from '../../src/agent/run.ts';
import type { LinuxDriver } from '../../src/dataplane/drivers/linux.ts';
import { netnsAvailable, sh, until } from './harness/netns.ts';

const available = await netnsAvailable();
if (!available && process.env['CI'] !== undefined)
  throw new Error('network namespaces are required in CI (run as root)');

describe.skipIf(!available)(
  'agent with the Linux kernel driver (policy routing; this kernel has no VRF device)',
  () => {
    const ns = `vce-kd-${process.pid}`;
    let agent: RunningAgent;
    const routes = async (): Promise<string> => sh('ip', ['-n', ns, 'route', 'show', 'table', 'all']);

    beforeAll(async () => {
      await sh('ip', ['netns', 'add', ns]);
      await sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      await sh('ip', ['-n', ns, 'addr', 'add', '172.31.77.1/24', 'dev', 'lo']);
      agent = await startAgent(
        buildAgentConfig({
          'router-id': '10.255.0.9',
          'log-level': 'silent',
          api: { listen: '127.0.0.1:0' },
          vrfs: [
            {
              name: 'red',
              interfaces: [
                {
                  name: 'red-web',
                  kind: 'vxlan',
                  vni: 301,
                  remotes: ['172.31.77.2'],
                  addresses: ['10.7.1.1/24'],
                  zone: 'web',
                },
                {
                  name: 'red-app',
                  kind: 'vxlan',
                  vni: 302,
                  remotes: ['172.31.77.3'],
                  addresses: ['10.7.2.1/24'],
                  zone: 'app',
                },
              ],
              'static-routes': [{ prefix: '10.70.0.0/16', 'next-hop': '10.7.2.50' }],
            },
          ],
          dataplane: {
            driver: 'linux',
            listen: '172.31.77.1',
            linux: { 'vrf-mode': 'policy-routing', netns: ns },
            zones: {
              rules: [
                { from: 'web', to: 'app', action: 'allow', protocol: 'tcp', 'destination-ports': [8080] },
              ],
            },
          },
        }),
      );
      await (agent.dataplane!.driver as LinuxDriver).settled();
    });

    afterAll(async () => {
      await agent?.stop();
      await sh('ip', ['netns', 'del', ns]).catch(() => undefined);
    });

    it('installs links, the context table and the zone rules', async () => {
      const d = agent.dataplane!.driver as LinuxDriver;
      expect(d.lastError).toBeUndefined();
      const links = await sh('ip', ['-n', ns, '-d', 'link', 'show']);
      expect(links).toMatch(/red-web.*\n.*\n\s*vxlan id 301/);
      expect(await routes()).toMatch(/10\.70\.0\.0\/16 via 10\.7\.2\.50 dev red-app table \d+/);
      const nft = await sh('ip', ['netns', 'exec', ns, 'nft', 'list', 'table', 'inet', 'vce']);
      expect(nft).toMatch(/tcp dport 8080/);
    });

    it('follows controller routes added and removed through the API', async () => {
      const put = await fetch(`${agent.apiUrl}/api/v1/vrfs/red/routes`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ routes: [{ prefix: '10.99.0.0/24', 'next-hop': '10.7.1.20' }] }),
      });
      expect(put.status).toBe(200);
      await until(async () => /10\.99\.0\.0\/24 via 10\.7\.1\.20 dev red-web/.test(await routes()));
      const del = await fetch(`${agent.apiUrl}/api/v1/vrfs/red/routes?prefix=10.99.0.0/24`, {
        method: 'DELETE',
      });
      expect(del.status).toBeLessThan(300);
      await until(async () => !/10\.99\.0\.0\/24/.test(await routes()));
    });

    it('stopping the agent removes what it installed', async () => {
      await agent.stop();
      const links = await sh('ip', ['-n', ns, 'link', 'show']);
      expect(links).not.toMatch(/red-web|red-app/);
      expect(await routes()).not.toMatch(/10\.70\.0\.0/);
      agent = undefined as unknown as RunningAgent;
    });
  },
);
