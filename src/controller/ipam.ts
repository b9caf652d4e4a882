/**
 * Address and identifier management (draft §5.1: tenant address blocks come from predetermined
 * pools and are kept apart from the DC underlay blocks). Allocations are store keys under the
 * pool (`/ipam/{pool}/{item}` -> owner), created with compare-and-swap so two controllers never
 * hand out the same block; items freed by a terminated tenant stay quarantined until the residue
 * check of its termination passes.
 */
import {
  formatPrefix,
  makePrefix,
  numberToIPv4,
  ipv4ToNumber,
  parsePrefix,
  prefixContains,
  type Prefix,
} from '../lib/ip.ts';
import { KEYS } from './model.ts';
import { ConflictError, Repo, del, put } from './repo.ts';

export interface IpamConfig {
  /** Tenant address blocks (attachments without addresses get a /24 from here). */
  readonly tenantPool: string;
  /** PE-CE link subnets (/30 each). */
  readonly linkPool: string;
  /** The DC underlay: no tenant block may overlap it. */
  readonly underlay: readonly string[];
  /** VNIs handed out to attachments without one. */
  readonly vniRange: readonly [number, number];
}

export const DEFAULT_IPAM: IpamConfig = {
  tenantPool: '10.128.0.0/9',
  linkPool: '100.64.0.0/16',
  underlay: ['172.16.0.0/12'],
  vniRange: [10000, 99999],
};

export interface Allocation {
  readonly owner: string;
  readonly tenant: string;
}

export class IpamError extends Error {
  override readonly name = 'IpamError';
  readonly code = 'IPAM';
}

export class Ipam {
  constructor(
    private readonly repo: Repo,
    readonly cfg: IpamConfig = DEFAULT_IPAM,
  ) {}

  /** Refuses a tenant prefix overlapping the underlay (draft §5.1). */
  checkTenantPrefix(text: string): void {
    const p = parsePrefix(text, true);
    for (const u of this.cfg.underlay) {
      const q = parsePrefix(u);
      if (q.addr.length !== p.addr.length) continue;
      if (prefixContains(q, p) || prefixContains(p, q))
        throw new IpamError(`${text} overlaps the DC underlay block ${u}`);
    }
  }

  /** Allocates the first free IPv4 block of `len` bits in `pool` for `owner`. */
  async allocatePrefix(pool: 'tenant' | 'link', len: number, owner: string, tenant: string): Promise<Prefix> {
    const base = parsePrefix(pool === 'tenant' ? this.cfg.tenantPool : this.cfg.linkPool);
    const used = new Set(
      (await this.repo.kv.range(KEYS.ipamPool(pool))).entries.map((e) =>
        e.key.slice(KEYS.ipamPool(pool).length),
      ),
    );
    const size = 2 ** (32 - len);
    const start = ipv4ToNumber(base.addr);
    const count = 2 ** (len - base.len);
    for (let i = 0; i < count; i++) {
      const p = makePrefix(numberToIPv4((start + i * size) >>> 0), len);
      const name = formatPrefix(p).replace('/', '_');
      if (used.has(name)) continue;
      try {
        await this.repo.commit({ [KEYS.ipam(pool, name)]: 0 }, [
          put(KEYS.ipam(pool, name), { owner, tenant }),
        ]);
        return p;
      } catch (e) {
        if (!(e instanceof ConflictError)) throw e;
      }
    }
    throw new IpamError(`pool ${pool} has no free /${len}`);
  }

  /** Allocates a VNI for `owner`. */
  async allocateVni(owner: string, tenant: string): Promise<number> {
    const used = new Set(
      (await this.repo.kv.range(KEYS.ipamPool('vni'))).entries.map((e) =>
        Number(e.key.slice(KEYS.ipamPool('vni').length)),
      ),
    );
    for (let v = this.cfg.vniRange[0]; v <= this.cfg.vniRange[1]; v++) {
      if (used.has(v)) continue;
      try {
        await this.repo.commit({ [KEYS.ipam('vni', String(v))]: 0 }, [
          put(KEYS.ipam('vni', String(v)), { owner, tenant }),
        ]);
        return v;
      } catch (e) {
        if (!(e instanceof ConflictError)) throw e;
      }
    }
    throw new IpamError('no free VNI');
  }

  /** Claims a given VNI (an attachment that names its own); refuses one already taken. */
  async claimVni(vni: number, owner: string, tenant: string): Promise<void> {
    const k = KEYS.ipam('vni', String(vni));
    const cur = await this.repo.get<Allocation>(k);
    if (cur !== undefined && cur.value.owner === owner) return;
    if (cur !== undefined)
      throw new IpamError(
        `VNI ${vni} is in use (${cur.value.tenant === tenant ? cur.value.owner : 'another tenant'})`,
      );
    await this.repo.commit({ [k]: 0 }, [put(k, { owner, tenant })]);
  }

  /** Everything a tenant holds. */
  async ofTenant(tenant: string): Promise<{ key: string; value: Allocation }[]> {
    const all = await this.repo.kv.range('/vce/v1/ipam/');
    return all.entries
      .map((e) => ({ key: e.key, value: JSON.parse(e.value) as Allocation }))
      .filter((a) => a.value.tenant === tenant);
  }

  /** Frees everything `owner` holds. */
  async release(owner: string): Promise<number> {
    const all = await this.repo.kv.range('/vce/v1/ipam/');
    const mine = all.entries.filter((e) => (JSON.parse(e.value) as Allocation).owner === owner);
    if (mine.length > 0)
      await this.repo.kv.txn(
        [],
        mine.map((e) => del(e.key)),
      );
    return mine.length;
  }
}
