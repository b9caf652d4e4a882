/**
 * The naming scheme and checks every WAN adapter shares, and the embedded PE's VRF entry.
 */
import { describe, expect, it } from 'vitest';
import {
  bindingIdOf,
  canonicalRd,
  canonicalRt,
  canonicalRts,
  checkSpec,
  stableNumber,
  staticPrefixesOf,
  vrfNameOf,
} from '../../src/controller/wan/naming.ts';
import { EmbeddedPeAdapter, attachmentName } from '../../src/controller/wan/embedded.ts';
import { createWanAdapter } from '../../src/controller/wan/index.ts';
import { buildAgentConfig } from '../../src/agent/config.ts';
import { WanError, type WanBindingSpec } from '../../src/controller/wan/types.ts';

const spec: WanBindingSpec = {
  id: 'b-1',
  tenant: 't',
  pe: 'pe1',
  vrf: 'vpn',
  rd: '65000:1',
  importRts: ['65000:1'],
  exportRts: ['rt:65000:1'],
  attachment: { kind: 'vlan', id: 100 },
  protocol: 'bgp',
  peAddress: '192.0.2.1',
  peAsn: 65000,
  ceAddress: '192.0.2.2',
  ceAsn: 65100,
};

describe('WAN naming', () => {
  it('derives the VRF name from the binding id and back, ignoring VRFs outside the prefix', () => {
    expect(vrfNameOf('vce-', 'b-1')).toBe('vce-b-1');
    expect(bindingIdOf('vce-', 'vce-b-1')).toBe('b-1');
    expect(bindingIdOf('vce-', 'customer-red')).toBeUndefined();
    expect(bindingIdOf('vce-', 'vce-')).toBeUndefined();
  });

  it('writes RDs and route targets in one canonical form (4-octet ASNs in asplain)', () => {
    expect(canonicalRd('4200000000:7')).toBe('4200000000:7');
    expect(canonicalRd('192.0.2.1:7')).toBe('192.0.2.1:7');
    expect(canonicalRt('rt:65000:1')).toBe('65000:1');
    expect(canonicalRts(['65000:2', 'rt:65000:1', '65000:2'])).toEqual(['65000:1', '65000:2']);
  });

  it('gives a stable non-zero 31-bit number per id', () => {
    expect(stableNumber('b-1')).toBe(stableNumber('b-1'));
    expect(stableNumber('b-1')).not.toBe(stableNumber('b-2'));
    for (const id of ['', 'a', 'b-1', 'x'.repeat(56)]) {
      expect(stableNumber(id)).toBeGreaterThan(0);
      expect(stableNumber(id)).toBeLessThan(2 ** 31);
    }
  });

  it('refuses a bad binding naming the field', () => {
    const refused = (s: Partial<WanBindingSpec>): string => {
      try {
        checkSpec('x', { ...spec, ...s });
      } catch (e) {
        expect(e).toBeInstanceOf(WanError);
        return (e as Error).message;
      }
      return 'accepted';
    };
    expect(refused({})).toBe('accepted');
    expect(refused({ id: 'has space' })).toMatch(/: id:/);
    expect(refused({ rd: '65000' })).toMatch(/: rd:/);
    expect(refused({ importRts: ['x:y'] })).toMatch(/importRts/);
    expect(refused({ importRts: [], exportRts: [] })).toMatch(/route targets/);
    expect(refused({ ceAsn: undefined })).toMatch(/ceAsn/);
    expect(refused({ ceAddress: 'nope' })).toMatch(/ceAddress/);
    expect(refused({ dynamicRange: '10.0.0.0/33' })).toMatch(/dynamicRange/);
    expect(refused({ dynamicRange: '10.0.0.0/24', ceAddress: '', ceAsn: undefined })).toBe('accepted');
    expect(refused({ protocol: 'static', staticPrefixes: ['10.0.0.1/8'] })).toMatch(/staticPrefixes/);
  });

  it('routes static prefixes only for protocol static, canonical and sorted', () => {
    expect(staticPrefixesOf({ ...spec, staticPrefixes: ['10.0.0.0/8'] })).toEqual([]);
    expect(
      staticPrefixesOf({ ...spec, protocol: 'static', staticPrefixes: ['2001:DB8:0::/32', '10.0.0.0/8'] }),
    ).toEqual(['10.0.0.0/8', '2001:db8::/32']);
  });
});

describe('embedded PE: the VRF entry of a binding', () => {
  const base = { 'router-id': '192.0.2.1', bgp: { asn: 65000, listen: false } };
  const adapter = new EmbeddedPeAdapter({
    api: 'http://127.0.0.1:9',
    config: base,
    bgpPort: 1179,
    neighborDefaults: { passive: true },
  });

  it('a BGP binding: RD, RTs, the attachment, a speaker on the PE address with the vCE', () => {
    const v = adapter.vrfEntry(spec);
    expect(v).toEqual({
      name: 'vce-b-1',
      'route-distinguisher': '65000:1',
      'route-targets': { import: ['65000:1'], export: ['65000:1'] },
      interfaces: [{ name: 'vlan100', description: 'wan binding b-1 (tenant t, VPN vpn)' }],
      bgp: {
        asn: 65000,
        listen: { address: '192.0.2.1', port: 1179 },
        neighbors: [
          {
            address: '192.0.2.2',
            'peer-asn': 65100,
            'local-address': '192.0.2.1',
            description: 'wan binding b-1',
            'import-policy': 'accept-all',
            'export-policy': 'accept-all',
            passive: true,
          },
        ],
      },
    });
    expect(() => buildAgentConfig({ ...base, vrfs: [v] })).not.toThrow();
  });

  it('a static binding: routes to the vCE (an interface route for the other family), no speaker', () => {
    const v = adapter.vrfEntry({
      ...spec,
      protocol: 'static',
      attachment: { kind: 'qinq', id: 10, outer: 20 },
      staticPrefixes: ['10.1.0.0/16', '2001:db8:1::/48'],
    });
    expect(v['static-routes']).toEqual([
      { prefix: '10.1.0.0/16', 'next-hop': '192.0.2.2' },
      { prefix: '2001:db8:1::/48', interface: 'qinq20.10' },
    ]);
    expect(v['bgp']).toBeUndefined();
    expect(() => buildAgentConfig({ ...base, vrfs: [v] })).not.toThrow();
  });

  it('a dynamic binding: a listen range, no per-vCE neighbour', () => {
    const v = adapter.vrfEntry({ ...spec, ceAddress: '', ceAsn: undefined, dynamicRange: '192.0.2.0/26' });
    expect(v['bgp']).toMatchObject({
      'dynamic-neighbors': [{ prefix: '192.0.2.0/26', 'peer-asns': 'any', template: { passive: true } }],
    });
    expect((v['bgp'] as Record<string, unknown>)['neighbors']).toBeUndefined();
    expect(() => buildAgentConfig({ ...base, vrfs: [v] })).not.toThrow();
  });

  it('names attachment circuits by kind', () => {
    expect(attachmentName({ kind: 'vxlan', id: 5000 })).toBe('vxlan5000');
    expect(attachmentName({ kind: 'vlan', id: 7 })).toBe('vlan7');
  });

  it('the factory makes both kinds; the embedded one needs exactly one of api or agent', () => {
    expect(createWanAdapter({ kind: 'gobgp', host: '127.0.0.1', port: 50051 }).kind).toBe('gobgp');
    expect(createWanAdapter({ kind: 'embedded', api: 'http://127.0.0.1:9' }).kind).toBe('embedded');
    expect(() => createWanAdapter({ kind: 'embedded' })).toThrow(WanError);
  });

  it('refuses BFD-tracked static bindings (they need an agent restart)', async () => {
    await expect(
      adapter.provision({ ...spec, protocol: 'static', bfd: true, staticPrefixes: ['10.0.0.0/8'] }),
    ).rejects.toThrow(/BFD-tracked static/);
  });
});
