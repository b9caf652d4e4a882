/**
 * Dynamic neighbours (draft 7.2.1.1: the PE side needs no per-vCE configuration): a PE speaker
 * accepts sessions from any address of a listen range whose AS is in the configured range, learns
 * and re-advertises their routes, refuses other addresses and other ASes, honours the range limit,
 * and forgets a neighbour — its routes included — when its session ends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgentConfig } from '../../src/agent/config.ts';
import { startAgent, type RunningAgent } from '../../src/agent/run.ts';
import { neighborViews, routeViews } from '../../src/bgp/rib-view.ts';
import { freePort, waitFor } from '../interop/harness/common.ts';

const PE = '127.0.2.1';
let pe: RunningAgent;
let pePort: number;
const vces: RunningAgent[] = [];

async function vce(address: string, asn: number, network: string): Promise<RunningAgent> {
  const a = await startAgent(
    buildAgentConfig({
      'router-id': address,
      'log-level': 'silent',
      bgp: {
        asn,
        listen: false,
        neighbors: [
          {
            address: PE,
            'peer-asn': 65000,
            'remote-port': pePort,
            'local-address': address,
            'connect-retry': 1,
            'import-policy': 'accept-all',
            'export-policy': 'accept-all',
          },
        ],
        networks: [network],
      },
    }),
  );
  vces.push(a);
  return a;
}

const ok = <T>(v: T | false): Promise<T | undefined> => Promise.resolve(v === false ? undefined : v);

beforeAll(async () => {
  pePort = await freePort(PE);
  pe = await startAgent(
    buildAgentConfig({
      'router-id': PE,
      'log-level': 'silent',
      bgp: {
        asn: 65000,
        listen: { address: PE, port: pePort },
        'dynamic-neighbors': [
          {
            prefix: '127.0.2.0/28',
            'peer-as-range': '65100-65199',
            limit: 3,
            template: { 'import-policy': 'accept-all', 'export-policy': 'accept-all', 'hold-time': 9 },
          },
        ],
      },
    }),
  );
});

afterAll(async () => {
  await Promise.all([pe.stop(), ...vces.map((v) => v.stop())]);
});

describe('dynamic neighbors', () => {
  it('accepts peers from the range with no per-peer configuration and exchanges their routes', async () => {
    const a = await vce('127.0.2.2', 65101, '10.102.0.0/16');
    const b = await vce('127.0.2.3', 65102, '10.103.0.0/16');
    await waitFor(() => ok(neighborViews(pe.speaker).filter((n) => n.state === 'established').length === 2), {
      timeoutMs: 10_000,
      what: 'two dynamic sessions',
    });
    const views = neighborViews(pe.speaker);
    expect(views.map((n) => [n.address, n['peer-asn']]).sort()).toEqual([
      ['127.0.2.2', 65101],
      ['127.0.2.3', 65102],
    ]);
    // b learns a's route through the PE
    await waitFor(() => ok(routeViews(b.speaker, 'ipv4-unicast').some((r) => r.prefix === '10.102.0.0/16')), {
      timeoutMs: 5000,
      what: "a's route at b",
    });
    expect(
      routeViews(b.speaker, 'ipv4-unicast').find((r) => r.prefix === '10.102.0.0/16')?.paths[0]?.['as-path'],
    ).toBe('65000 65101');
    void a;
  });

  it('refuses an AS outside the range with OPEN error Bad Peer AS, and addresses outside the prefix', async () => {
    const bad = await vce('127.0.2.4', 65300, '10.104.0.0/16');
    const outside = await vce('127.0.3.9', 65150, '10.105.0.0/16');
    await waitFor(
      () => ok(/BAD_PEER_AS|bad peer as|2\/2/i.test(neighborViews(bad.speaker)[0]?.['last-error'] ?? '')),
      {
        timeoutMs: 5000,
        what: 'Bad Peer AS at the refused vCE',
      },
    );
    expect(neighborViews(outside.speaker)[0]?.state).not.toBe('established');
    expect(neighborViews(pe.speaker).map((n) => n.address)).not.toContain('127.0.3.9');
    await Promise.all([bad.stop(), outside.stop()]);
  });

  it('honours the range limit', async () => {
    await vce('127.0.2.5', 65105, '10.106.0.0/16'); // third: fits
    const fourth = await vce('127.0.2.6', 65106, '10.107.0.0/16');
    await waitFor(() => ok(neighborViews(pe.speaker).filter((n) => n.state === 'established').length === 3), {
      timeoutMs: 10_000,
      what: 'three dynamic sessions',
    });
    expect(neighborViews(fourth.speaker)[0]?.state).not.toBe('established');
    await fourth.stop();
  });

  it('forgets a neighbour and its routes when its session ends', async () => {
    const a = vces[0]!;
    await a.stop();
    await waitFor(() => ok(!neighborViews(pe.speaker).some((n) => n.address === '127.0.2.2')), {
      timeoutMs: 5000,
      what: 'the neighbour removed',
    });
    expect(routeViews(pe.speaker, 'ipv4-unicast').map((r) => r.prefix)).not.toContain('10.102.0.0/16');
  });
});
