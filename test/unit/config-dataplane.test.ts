/**
 * The data plane part of the agent configuration: defaults, every kind of attachment, and errors
 * that name the field.
 */
import { describe, expect, it } from 'vitest';
import { buildAgentConfig, ConfigError } from '../../src/agent/config.ts';

const base = (interfaces: unknown[], dataplane?: unknown): unknown => ({
  'router-id': '10.0.0.1',
  vrfs: [{ name: 'red', interfaces }],
  ...(dataplane === undefined ? {} : { dataplane }),
});

function error(raw: unknown): string {
  try {
    buildAgentConfig(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('dataplane configuration', () => {
  it('no data plane without kinds or section', () => {
    const c = buildAgentConfig(base([{ name: 'a', addresses: ['10.0.0.1/24'] }]));
    expect(c.dataplane).toBeUndefined();
  });

  it('every attachment kind with defaults', () => {
    const c = buildAgentConfig(
      base(
        [
          { name: 'trunk', kind: 'vxlan', vni: 10, remotes: ['192.0.2.1'] },
          { name: 'v100', kind: 'vlan', trunk: 'trunk', vlan: 100, addresses: ['10.1.0.1/24'], zone: 'web' },
          {
            name: 'q',
            kind: 'qinq',
            trunk: 'trunk',
            'outer-vlan': 200,
            vlan: 300,
            addresses: ['10.2.0.1/24'],
            zone: 'app',
          },
          { name: 'g', kind: 'nvgre', vsid: 5000, remotes: ['192.0.2.2'], addresses: ['10.3.0.1/24'] },
          {
            name: 'pe',
            kind: 'mpls-udp',
            remotes: ['[2001:db8::1]:7000'],
            addresses: ['10.9.0.1/30'],
            mac: '02:00:00:00:00:09',
          },
        ],
        {
          zones: {
            rules: [
              {
                from: 'web',
                to: 'app',
                action: 'allow',
                protocol: 'tcp',
                'destination-ports': [80, '8000-8080'],
              },
            ],
          },
          'qos-policies': [
            { name: 'q1', classes: [{ name: 'voice', match: { dscp: ['ef'] }, police: { rate: '10mbit' } }] },
          ],
          'tunnel-qos': { mode: 'pipe', 'outer-dscp': 'cs1' },
        },
      ),
    );
    const d = c.dataplane!;
    expect(d.driver).toBe('userspace');
    expect([d.vxlanPort, d.greUdpPort, d.mplsUdpPort]).toEqual([4789, 4754, 6635]);
    const byName = new Map(d.interfaces.map((i) => [i.name, i]));
    expect(byName.get('trunk')!.remotes).toEqual([{ address: '192.0.2.1', port: 4789 }]);
    expect(byName.get('g')!.remotes).toEqual([{ address: '192.0.2.2', port: 4754 }]);
    expect(byName.get('pe')!.remotes).toEqual([{ address: '2001:db8::1', port: 7000 }]);
    expect([...byName.get('pe')!.mac]).toEqual([2, 0, 0, 0, 0, 9]);
    // a derived MAC is locally administered unicast
    expect(byName.get('v100')!.mac[0]! & 3).toBe(2);
    expect(d.zones.zones).toEqual(['app', 'web']);
    expect(d.zones.rules[0]!.match.destinationPorts).toEqual([
      { from: 80, to: 80 },
      { from: 8000, to: 8080 },
    ]);
    expect(d.tunnelQos).toEqual({ mode: 'pipe', outerDscp: 8 });
    expect(d.qos[0]!.classes[0]!.match.dscp).toEqual([46]);
    expect(d.qos[0]!.classes[0]!.police!.rateBitsPerSecond).toBe(10e6);
  });

  it('errors name the field', () => {
    expect(error(base([{ name: 'a', kind: 'vxlan', remotes: ['192.0.2.1'] }]))).toMatch(
      /vrfs\[0\]\.interfaces\[0\].*needs `vni`/,
    );
    expect(error(base([{ name: 'a', kind: 'vlan', vlan: 5, trunk: 'nope' }]))).toMatch(
      /trunk.*"nope" is not a vxlan interface/,
    );
    expect(error(base([{ name: 'a', vni: 5 }]))).toMatch(/vni.*only meaningful with a data plane `kind`/);
    expect(
      error(
        base([{ name: 'a', kind: 'vxlan', vni: 5, remotes: ['192.0.2.1'], zone: 'web' }], {
          zones: { rules: [{ from: 'web', to: 'dbx', action: 'allow' }] },
        }),
      ),
    ).toMatch(/dataplane\.zones\.rules\[0\]\.to.*no interface is in zone "dbx"/);
    expect(
      error(base([{ name: 'a', kind: 'vxlan', vni: 5, remotes: ['192.0.2.1'], 'qos-policy': 'gold' }])),
    ).toMatch(/qos-policy.*no QoS policy named "gold"/);
    expect(
      error(
        base([
          { name: 'a', kind: 'vxlan', vni: 5, remotes: ['192.0.2.1'] },
          { name: 'b', kind: 'vxlan', vni: 5, remotes: ['192.0.2.2'] },
        ]),
      ),
    ).toMatch(/VNI 5 is already used by a/);
    expect(
      error(base([{ name: 'a', kind: 'vxlan', vni: 5, remotes: ['192.0.2.1'], mac: '01:00:5e:00:00:01' }])),
    ).toMatch(/multicast/);
    expect(
      error(
        base([{ name: 'a', kind: 'vxlan', vni: 5, remotes: ['192.0.2.1'], zone: 'z' }], {
          zones: { rules: [{ from: 'z', to: 'z', action: 'allow', 'destination-ports': [1] }] },
        }),
      ),
    ).toMatch(/port matches need `protocol: tcp`/);
    expect(
      error(
        base([{ name: 'a', kind: 'vxlan', vni: 5, remotes: ['192.0.2.1'] }], {
          'qos-policies': [{ name: 'x', classes: [{ name: 'c', 'set-dscp': 'af99' }] }],
        }),
      ),
    ).toMatch(/set-dscp.*not a DSCP/);
  });
});
