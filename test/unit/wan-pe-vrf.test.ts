/**
 * The agent as a PE (src/agent/pe-vrf.ts, RFC 4364 §4.3): a routing context with its own speaker
 * exports the routes its CE advertises as VPN routes (its RD, export route targets, the CE's
 * AS_PATH) and advertises to its CE the remote VPN routes it imports; both follow
 * reconfiguration (route targets changed, context removed) and withdrawals.
 *
 *   CE 127.0.52.133 (AS 65300) ─eBGP─ PE VRF v (127.0.52.132) │ PE default 127.0.52.130 ══ iBGP VPN ══ R 127.0.52.131
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgentConfig } from '../../src/agent/config.ts';
import { startAgent, type RunningAgent } from '../../src/agent/run.ts';
import { routeViews } from '../../src/bgp/rib-view.ts';
import { freePort, waitFor } from '../interop/harness/common.ts';

const PE = '127.0.52.130';
const R = '127.0.52.131';
const VRF = '127.0.52.132';
const CE = '127.0.52.133';
let pe: RunningAgent;
let r: RunningAgent;
let ce: RunningAgent;
let pePort: number;
let rPort: number;
let vrfPort: number;

function peDoc(vrf: Record<string, unknown> | undefined): Record<string, unknown> {
  return {
    'router-id': PE,
    'log-level': 'silent',
    bgp: {
      asn: 65000,
      listen: { address: PE, port: pePort },
      neighbors: [
        {
          address: R,
          'peer-asn': 65000,
          'remote-port': rPort,
          'local-address': PE,
          'connect-retry': 1,
          'afi-safis': ['ipv4-vpn'],
        },
      ],
    },
    vrfs: vrf === undefined ? [] : [vrf],
  };
}

const vrfV = (rts: Record<string, string[]>): Record<string, unknown> => ({
  name: 'v',
  'route-distinguisher': '65000:9',
  'route-targets': rts,
  bgp: {
    asn: 65000,
    listen: { address: VRF, port: vrfPort },
    neighbors: [
      {
        address: CE,
        'peer-asn': 65300,
        passive: true,
        'import-policy': 'accept-all',
        'export-policy': 'accept-all',
      },
    ],
  },
});

/** R's VPN routes: prefix -> "rd rts as-path". */
function atR(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of routeViews(r.speaker, 'ipv4-vpn')) {
    const p = v.paths.find((x) => x.best);
    if (p !== undefined && p.from !== 'local')
      out[v.prefix] = `${v.rd} ${p['ext-communities'].join(',')} ${p['as-path']}`;
  }
  return out;
}

function atCe(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of routeViews(ce.speaker, 'ipv4-unicast')) {
    const p = v.paths.find((x) => x.best);
    if (p !== undefined && p.from !== 'local') out[v.prefix] = p['as-path'];
  }
  return out;
}

async function until<T>(f: () => T, ok: (v: T) => boolean, what: string): Promise<void> {
  await waitFor(() => Promise.resolve(ok(f()) ? true : undefined), {
    what,
    timeoutMs: 8000,
    describe: () => JSON.stringify(f()),
  });
}

beforeAll(async () => {
  [pePort, rPort, vrfPort] = await Promise.all([freePort(PE), freePort(R), freePort(VRF)]);
  r = await startAgent(
    buildAgentConfig({
      'router-id': R,
      'log-level': 'silent',
      bgp: {
        asn: 65000,
        listen: { address: R, port: rPort },
        neighbors: [
          {
            address: PE,
            'peer-asn': 65000,
            'remote-port': pePort,
            'local-address': R,
            'connect-retry': 1,
            'afi-safis': ['ipv4-vpn'],
          },
        ],
      },
      // a remote site: exported with RT 65000:6
      vrfs: [
        {
          name: 'r',
          'route-distinguisher': '65000:10',
          'route-targets': { export: ['65000:6'] },
          'static-routes': [{ prefix: '10.82.0.0/16', interface: 'r0' }],
        },
      ],
    }),
  );
  pe = await startAgent(buildAgentConfig(peDoc(vrfV({ import: ['65000:6'], export: ['65000:5'] }))));
  ce = await startAgent(
    buildAgentConfig({
      'router-id': CE,
      'log-level': 'silent',
      bgp: {
        asn: 65300,
        listen: false,
        networks: ['10.81.0.0/16'],
        neighbors: [
          {
            address: VRF,
            'peer-asn': 65000,
            'remote-port': vrfPort,
            'local-address': CE,
            'connect-retry': 1,
            'import-policy': 'accept-all',
            'export-policy': 'accept-all',
          },
        ],
      },
    }),
  );
});

afterAll(async () => {
  await Promise.allSettled([ce?.stop(), pe?.stop(), r?.stop()]);
});

describe('the agent as a PE: BGP-learned routes to and from the VPN', () => {
  it("exports the CE's routes as VPN routes with the VRF's RD, export RT and the CE's AS_PATH", async () => {
    await until(atR, (m) => m['10.81.0.0/16'] !== undefined, "CE's route at R");
    expect(atR()).toEqual({ '10.81.0.0/16': '65000:9 rt:65000:5 65300' });
  });

  it('advertises to the CE the remote VPN routes it imports', async () => {
    await until(atCe, (m) => m['10.82.0.0/16'] !== undefined, 'remote route at the CE');
    expect(atCe()).toEqual({ '10.82.0.0/16': '65000' });
  });

  it('a changed export RT re-exports; a dropped import RT withdraws from the CE', async () => {
    await pe.apply(buildAgentConfig(peDoc(vrfV({ export: ['65000:7'] }))));
    await until(atR, (m) => m['10.81.0.0/16'] === '65000:9 rt:65000:7 65300', 'new RT at R');
    await until(atCe, (m) => m['10.82.0.0/16'] === undefined, 'remote route gone from the CE');
    expect(pe.contexts.get('v')!.routeTargets).toEqual({ import: [], export: ['rt:65000:7'] });
  });

  it("removing the VRF withdraws the CE's routes from the VPN", async () => {
    await pe.apply(buildAgentConfig(peDoc(undefined)));
    await until(atR, (m) => m['10.81.0.0/16'] === undefined, "CE's route withdrawn at R");
    expect(atR()).toEqual({});
  });
});
