/**
 * The WAN adapter conformance suite (draft §7.2.1 push model, §7.2.1.1 dynamic neighbours), run
 * against every adapter: `describeWanConformance(name, setup)`. The setup starts the PE (a real
 * daemon or our agent) and returns the adapter plus the addresses to use; the suite runs vCEs
 * (our agent, a BGP neighbour to the binding's PE address) on 127.x loopback addresses.
 *
 * What an adapter must do (docs/wan-adapters.md):
 * - provision creates the PE VRF with the binding's RD and route targets (status shows them);
 * - provisioning again changes nothing on the PE (no change reported, the session stays up);
 * - the vCE's BGP session comes up in the VRF, and the VRF holds the vCE's prefixes;
 * - protocol static installs the prefixes towards the vCE, and follows changes of the list;
 * - a changed route target is applied;
 * - deprovision removes everything (VRF, neighbours, routes), list() no longer shows the
 *   binding, and a second deprovision succeeds;
 * - dynamic-neighbour mode: a vCE from the range comes up with no per-vCE provisioning; an
 *   adapter that cannot do it refuses such a binding with a WanError (and the test is skipped
 *   with that reason, never silently);
 * - a bad binding is refused before anything is changed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgentConfig } from '../../src/agent/config.ts';
import { startAgent, type RunningAgent } from '../../src/agent/run.ts';
import { routeViews } from '../../src/bgp/rib-view.ts';
import {
  WanError,
  type WanAdapter,
  type WanBindingSpec,
  type WanBindingStatus,
} from '../../src/controller/wan/types.ts';
import { waitFor } from './harness/common.ts';

export interface WanTestbed {
  readonly adapter: WanAdapter;
  /** Every change the adapter reported making on the PE (its `onChange` log). */
  readonly changes: readonly string[];
  readonly peAsn: number;
  /** Where the vCE of binding `a` (BGP) dials, and binding `dyn` (dynamic range). */
  readonly peA: { readonly address: string; readonly port: number };
  readonly peDyn: { readonly address: string; readonly port: number };
  /** The PE address of the static binding `b` (no session). */
  readonly peB: string;
  readonly ceA: string;
  readonly ceB: string;
  stop(): Promise<void>;
}

export interface ConformanceOptions {
  /**
   * Dynamic-neighbour mode: a range and two vCE addresses inside it; or why the adapter cannot
   * do it (the test is then skipped under a name that carries the reason, and the suite checks
   * that such a binding is refused).
   */
  readonly dynamic:
    { readonly range: string; readonly ces: readonly [string, string] } | { readonly unsupported: string };
}

export interface Ce {
  readonly address: string;
  readonly agent: RunningAgent;
  /** Session towards the PE established, and how often it went down. */
  established(): boolean;
  flaps(): number;
  /** Prefixes the vCE holds from the PE (IPv4 and IPv6 unicast best paths). */
  learned(): string[];
  stop(): Promise<void>;
}

/** TEST-NET next hops (gobgpd treats a 127/8 NEXT_HOP as withdraw): 198.51.100.N, 2001:db8:ffff::N. */
function nextHops(address: string): { v4: string; v6: string } {
  const n = Number(address.split('.').at(-1));
  return { v4: `198.51.100.${n}`, v6: `2001:db8:ffff::${n.toString(16)}` };
}

/** A vCE: our agent with one eBGP neighbour, the PE, advertising `prefixes`. */
export async function startCe(o: {
  address: string;
  asn: number;
  pe: { address: string; port: number };
  peAsn: number;
  prefixes: readonly string[];
}): Promise<Ce> {
  const nh = nextHops(o.address);
  const agent = await startAgent(
    buildAgentConfig({
      'router-id': o.address,
      'log-level': 'silent',
      policies: {
        'policy-definitions': [
          {
            name: 'to-pe',
            statements: [
              {
                name: 'v4',
                conditions: { 'afi-safi-in': ['ipv4-unicast'] },
                actions: { 'policy-result': 'accept-route', 'bgp-actions': { 'set-next-hop': nh.v4 } },
              },
              {
                name: 'v6',
                conditions: { 'afi-safi-in': ['ipv6-unicast'] },
                actions: { 'policy-result': 'accept-route', 'bgp-actions': { 'set-next-hop': nh.v6 } },
              },
            ],
          },
        ],
      },
      bgp: {
        asn: o.asn,
        listen: false,
        networks: [...o.prefixes],
        neighbors: [
          {
            address: o.pe.address,
            'peer-asn': o.peAsn,
            'remote-port': o.pe.port,
            'local-address': o.address,
            'connect-retry': 1,
            'import-policy': 'accept-all',
            'export-policy': 'to-pe',
          },
        ],
      },
    }),
  );
  const peer = () => agent.speaker.neighbor(o.pe.address);
  return {
    address: o.address,
    agent,
    established: () => peer()?.established === true,
    flaps: () => peer()?.stats.flaps ?? 0,
    learned: () =>
      (['ipv4-unicast', 'ipv6-unicast'] as const)
        .flatMap((f) => routeViews(agent.speaker, f))
        .filter((r) => r.paths.some((p) => p.best && p.from !== 'local'))
        .map((r) => r.prefix)
        .sort(),
    stop: () => agent.stop(),
  };
}

const CE_ASN = 65101;
const A_PREFIXES = ['10.61.1.0/24', '10.61.2.0/24', '2001:db8:61:1::/64'];
const B_PREFIXES = ['10.62.0.0/16', '2001:db8:62::/48'];

/** `status` polled until `ok` holds; the last status is in the timeout message. */
export async function statusUntil(
  adapter: WanAdapter,
  spec: WanBindingSpec,
  what: string,
  ok: (s: WanBindingStatus) => boolean,
  timeoutMs = 15_000,
): Promise<WanBindingStatus> {
  let last: WanBindingStatus | undefined;
  return waitFor(
    async () => {
      last = await adapter.status(spec);
      return ok(last) ? last : undefined;
    },
    { what, timeoutMs, intervalMs: 100, describe: () => `last status: ${JSON.stringify(last)}` },
  );
}

const hasAll = (have: readonly string[], want: readonly string[]): boolean =>
  want.every((p) => have.includes(p));

export function describeWanConformance(
  name: string,
  setup: () => Promise<WanTestbed>,
  opts: ConformanceOptions,
): void {
  const dyn = opts.dynamic;
  describe(`WAN adapter conformance: ${name}`, () => {
    let tb: WanTestbed;
    const ces: Ce[] = [];
    let A: WanBindingSpec;
    let B: WanBindingSpec;

    beforeAll(async () => {
      tb = await setup();
      const base = {
        tenant: 'acme',
        vrf: 'acme-vpn',
        peAsn: tb.peAsn,
        bfd: false,
      } as const;
      A = {
        ...base,
        id: 'conf-a',
        pe: 'pe1',
        rd: `${tb.peAsn}:101`,
        importRts: [`${tb.peAsn}:1`],
        exportRts: [`${tb.peAsn}:1`, `${tb.peAsn}:2`],
        attachment: { kind: 'vlan', id: 101 },
        protocol: 'bgp',
        peAddress: tb.peA.address,
        ceAddress: tb.ceA,
        ceAsn: CE_ASN,
      };
      B = {
        ...base,
        id: 'conf-b',
        pe: 'pe1',
        rd: `${tb.peAsn}:102`,
        importRts: [`${tb.peAsn}:3`],
        exportRts: [`${tb.peAsn}:3`],
        attachment: { kind: 'vxlan', id: 5102 },
        protocol: 'static',
        peAddress: tb.peB,
        ceAddress: tb.ceB,
        staticPrefixes: B_PREFIXES,
      };
    }, 20_000);

    afterAll(async () => {
      await Promise.allSettled(ces.map((c) => c.stop()));
      await tb?.adapter.close();
      await tb?.stop();
    });

    it('provision creates the VRF with its RD and route targets', async () => {
      expect(await tb.adapter.list()).not.toContain(A.id);
      await tb.adapter.provision(A);
      const st = await tb.adapter.status(A);
      expect(st).toMatchObject({
        present: true,
        rd: `${tb.peAsn}:101`,
        importRts: [`${tb.peAsn}:1`],
        exportRts: [`${tb.peAsn}:1`, `${tb.peAsn}:2`],
      });
      expect(await tb.adapter.list()).toContain(A.id);
    });

    it("the vCE's session comes up in the VRF and the VRF holds the vCE's prefixes", async () => {
      await tb.adapter.provision(A);
      ces.push(
        await startCe({ address: tb.ceA, asn: CE_ASN, pe: tb.peA, peAsn: tb.peAsn, prefixes: A_PREFIXES }),
      );
      const st = await statusUntil(
        tb.adapter,
        A,
        'vCE A established with its prefixes in the PE VRF',
        (s) =>
          s.neighbors.some((n) => n.address === tb.ceA && n.established && n.received >= A_PREFIXES.length) &&
          hasAll(s.routes, A_PREFIXES),
      );
      expect(st.neighbors.map((n) => n.address)).toEqual([tb.ceA]);
      expect(st.neighbors[0]).toMatchObject({
        state: 'established',
        established: true,
        received: A_PREFIXES.length,
      });
    });

    it('provisioning again changes nothing', async () => {
      await statusUntil(tb.adapter, A, 'vCE A established', (s) => s.neighbors.some((n) => n.established));
      const ce = ces[0]!;
      const flaps = ce.flaps();
      const before = tb.changes.length;
      const st1 = await tb.adapter.status(A);
      await tb.adapter.provision(A);
      await tb.adapter.provision({
        ...A,
        importRts: [...A.importRts].reverse(),
        exportRts: [...A.exportRts].reverse(),
      });
      expect(tb.changes.slice(before)).toEqual([]);
      expect(await tb.adapter.status(A)).toEqual(st1);
      expect(ce.established()).toBe(true);
      expect(ce.flaps()).toBe(flaps);
    });

    it('protocol static installs the prefixes towards the vCE and follows the list', async () => {
      await tb.adapter.provision(B);
      const st = await statusUntil(tb.adapter, B, 'static prefixes in the PE VRF', (s) =>
        hasAll(s.routes, B_PREFIXES),
      );
      expect(st).toMatchObject({ present: true, rd: `${tb.peAsn}:102`, neighbors: [] });
      const before = tb.changes.length;
      await tb.adapter.provision(B);
      expect(tb.changes.slice(before)).toEqual([]);
      const fewer = { ...B, staticPrefixes: ['10.62.0.0/16', '10.63.0.0/16'] };
      await tb.adapter.provision(fewer);
      const st2 = await statusUntil(
        tb.adapter,
        fewer,
        'static prefixes follow the list',
        (s) => hasAll(s.routes, ['10.62.0.0/16', '10.63.0.0/16']) && !s.routes.includes('2001:db8:62::/48'),
      );
      expect(st2.routes).not.toContain('2001:db8:62::/48');
      B = fewer;
    });

    it('a changed route target is applied', async () => {
      const changed = { ...A, importRts: [`${tb.peAsn}:1`, `${tb.peAsn}:9`], exportRts: [`${tb.peAsn}:9`] };
      await tb.adapter.provision(changed);
      const st = await statusUntil(
        tb.adapter,
        changed,
        'new route targets, vCE A back with its prefixes',
        (s) =>
          s.present &&
          s.neighbors.some((n) => n.address === tb.ceA && n.established) &&
          hasAll(s.routes, A_PREFIXES),
        20_000,
      );
      expect(st).toMatchObject({
        rd: `${tb.peAsn}:101`,
        importRts: [`${tb.peAsn}:1`, `${tb.peAsn}:9`],
        exportRts: [`${tb.peAsn}:9`],
      });
      A = changed;
    });

    it('a bad binding is refused before anything changes', async () => {
      const before = tb.changes.length;
      const ids = await tb.adapter.list();
      await expect(tb.adapter.provision({ ...A, id: 'conf-bad', rd: 'not-an-rd' })).rejects.toBeInstanceOf(
        WanError,
      );
      await expect(tb.adapter.provision({ ...A, id: 'bad id!' })).rejects.toBeInstanceOf(WanError);
      expect(tb.changes.length).toBe(before);
      expect(await tb.adapter.list()).toEqual(ids);
    });

    it('deprovision removes everything, list() no longer shows it, and a second one succeeds', async () => {
      await tb.adapter.deprovision(A);
      await tb.adapter.deprovision(B);
      for (const s of [A, B])
        expect(await tb.adapter.status(s)).toEqual({ present: false, neighbors: [], routes: [] });
      const ids = await tb.adapter.list();
      expect(ids).not.toContain(A.id);
      expect(ids).not.toContain(B.id);
      await waitFor(() => Promise.resolve(ces[0]!.established() ? undefined : true), {
        what: "vCE A's session gone with its binding",
        timeoutMs: 10_000,
      });
      const before = tb.changes.length;
      await tb.adapter.deprovision(A);
      await tb.adapter.deprovision(B);
      await tb.adapter.deprovision({ ...A, id: 'never-provisioned' });
      expect(tb.changes.length).toBe(before);
    });

    describe('dynamic-neighbour mode (draft §7.2.1.1)', () => {
      const dynSpec = (): WanBindingSpec => ({
        ...A,
        id: 'conf-dyn',
        rd: `${tb.peAsn}:104`,
        importRts: [`${tb.peAsn}:4`],
        exportRts: [`${tb.peAsn}:4`],
        attachment: { kind: 'vlan', id: 104 },
        peAddress: tb.peDyn.address,
        ceAddress: '',
        ceAsn: undefined, // any AS: the vCEs of the range need no per-vCE configuration at all
        dynamicRange: 'range' in dyn ? dyn.range : '127.0.0.0/8',
      });

      if ('unsupported' in dyn) {
        it.skip(`a vCE from the range comes up with no per-vCE provisioning: UNSUPPORTED by ${name}: ${dyn.unsupported}`, () =>
          undefined);

        it('a dynamic binding is refused with a WanError naming why, and nothing changes', async () => {
          const before = tb.changes.length;
          const err = await tb.adapter.provision(dynSpec()).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(err).toBeInstanceOf(WanError);
          expect((err as Error).message).toContain('dynamic');
          expect(tb.changes.length).toBe(before);
          expect(await tb.adapter.list()).not.toContain('conf-dyn');
        });
        return;
      }

      it('a vCE from the range comes up with no per-vCE provisioning', async () => {
        const spec = dynSpec();
        await tb.adapter.provision(spec);
        const [c1, c2] = dyn.ces;
        const before = tb.changes.length;
        ces.push(
          await startCe({
            address: c1,
            asn: CE_ASN + 1,
            pe: tb.peDyn,
            peAsn: tb.peAsn,
            prefixes: ['10.64.1.0/24'],
          }),
        );
        ces.push(
          await startCe({
            address: c2,
            asn: CE_ASN + 2,
            pe: tb.peDyn,
            peAsn: tb.peAsn,
            prefixes: ['10.64.2.0/24'],
          }),
        );
        const st = await statusUntil(
          tb.adapter,
          spec,
          'both vCEs of the range established with their prefixes',
          (s) =>
            [c1, c2].every((a) => s.neighbors.some((n) => n.address === a && n.established)) &&
            hasAll(s.routes, ['10.64.1.0/24', '10.64.2.0/24']),
        );
        expect(st.neighbors.map((n) => n.address)).toEqual([c1, c2]);
        expect(tb.changes.length).toBe(before);
        await tb.adapter.deprovision(spec);
        expect(await tb.adapter.status(spec)).toEqual({ present: false, neighbors: [], routes: [] });
        expect(await tb.adapter.list()).not.toContain(spec.id);
      });
    });
  });
}
