/**
 * The GoBGP WAN adapter against a real gobgpd (GoBGP 3.x) as the PE: the conformance suite, then
 * what is particular to GoBGP (4-octet route targets through the CLI's asdot, refusals).
 *
 *   gobgpd 127.0.51.1 (AS 65000, VRFs vce-<id>) <── eBGP, the vCE dials ── vCE 127.0.51.2 (AS 65101)
 *
 * gobgpd is started here on free loopback ports and stopped by PID; when it is not installed the
 * file is skipped locally and fails in CI (`requireDaemon`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GOBGP_BFD_UNSUPPORTED,
  GOBGP_DYNAMIC_UNSUPPORTED,
  GobgpAdapter,
} from '../../src/controller/wan/gobgp.ts';
import { createWanAdapter } from '../../src/controller/wan/index.ts';
import { WanError, type WanBindingSpec } from '../../src/controller/wan/types.ts';
import { freePort, requireDaemon } from './harness/common.ts';
import { startGobgp, type GobgpDaemon } from './harness/gobgp.ts';
import { describeWanConformance, type WanTestbed } from './wan-conformance.ts';

const PE = '127.0.51.1';
const PE_ASN = 65000;
const available = requireDaemon('gobgpd') && requireDaemon('gobgp');

async function gobgpPe(routerId: string): Promise<{ daemon: GobgpDaemon; port: number }> {
  const port = await freePort(routerId);
  const daemon = await startGobgp({
    asn: PE_ASN,
    routerId,
    listenAddress: routerId,
    listenPort: port,
    neighbors: [],
  });
  return { daemon, port };
}

if (available) {
  describeWanConformance(
    'gobgp',
    async (): Promise<WanTestbed> => {
      const { daemon, port } = await gobgpPe(PE);
      const changes: string[] = [];
      const adapter = createWanAdapter({
        kind: 'gobgp',
        host: '127.0.0.1',
        port: daemon.config.grpcPort,
        onChange: (c) => changes.push(c),
      });
      return {
        adapter,
        changes,
        peAsn: PE_ASN,
        peA: { address: PE, port },
        peB: PE,
        peDyn: { address: PE, port },
        ceA: '127.0.51.2',
        ceB: '127.0.51.3',
        stop: () => daemon.stop(),
      };
    },
    { dynamic: { unsupported: GOBGP_DYNAMIC_UNSUPPORTED } },
  );
} else {
  describe('WAN adapter conformance: gobgp', () => {
    it.skip('gobgpd / gobgp are not installed (scripts/install-deps)', () => undefined);
  });
}

describe.skipIf(!available)('GoBGP adapter specifics', () => {
  const G = '127.0.51.11';
  let daemon: GobgpDaemon;
  let adapter: GobgpAdapter;
  const spec: WanBindingSpec = {
    id: 'spec-1',
    tenant: 't',
    pe: 'pe',
    vrf: 'v',
    rd: '4200000000:7',
    importRts: ['4200000000:1', '192.0.2.1:5'],
    exportRts: ['4200000000:2'],
    attachment: { kind: 'qinq', id: 10, outer: 20 },
    protocol: 'static',
    peAddress: G,
    peAsn: PE_ASN,
    ceAddress: '127.0.51.12',
    staticPrefixes: ['10.65.0.0/16'],
  };

  beforeAll(async () => {
    daemon = (await gobgpPe(G)).daemon;
    adapter = new GobgpAdapter({ host: '127.0.0.1', port: daemon.config.grpcPort, namePrefix: 'wan-' });
  });

  afterAll(async () => {
    await adapter?.close();
    await daemon?.stop();
  });

  it('4-octet AS RDs and route targets survive the CLI (written in asdot, read back in asplain)', async () => {
    await adapter.provision(spec);
    expect(await adapter.status(spec)).toMatchObject({
      present: true,
      rd: '4200000000:7',
      importRts: ['192.0.2.1:5', '4200000000:1'],
      exportRts: ['4200000000:2'],
      routes: ['10.65.0.0/16'],
    });
    expect(JSON.parse(await daemon.cli('vrf', '-j'))).toMatchObject([{ name: 'wan-spec-1' }]);
    expect(await adapter.list()).toEqual(['spec-1']);
  });

  it('refuses what gobgpd cannot do or what it does not own, changing nothing', async () => {
    const refused = async (s: WanBindingSpec): Promise<string> => {
      const e = await adapter.provision(s).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(WanError);
      return (e as Error).message;
    };
    expect(await refused({ ...spec, id: 'spec-2', bfd: true })).toContain(GOBGP_BFD_UNSUPPORTED);
    expect(await refused({ ...spec, id: 'spec-2', rd: '4200000000:7' })).toMatch(
      /already used by VRF wan-spec-1/,
    );
    await daemon.cli('neighbor', 'add', '127.0.51.13', 'as', '65013');
    expect(
      await refused({
        ...spec,
        id: 'spec-2',
        rd: '65000:9',
        protocol: 'bgp',
        ceAddress: '127.0.51.13',
        ceAsn: 65013,
      }),
    ).toMatch(/already configured in the global table/);
    expect(await adapter.list()).toEqual(['spec-1']);
    await daemon.cli('neighbor', 'del', '127.0.51.13');
    await adapter.deprovision(spec);
    expect(await adapter.list()).toEqual([]);
  });
});
