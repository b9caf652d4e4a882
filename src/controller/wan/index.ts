/**
 * WAN adapters (draft §7.2.1): one factory for every kind of PE control plane the controller
 * provisions. The interface and what each method guarantees: ./types.ts and docs/wan-adapters.md.
 */
import { EmbeddedPeAdapter, type EmbeddedPeOptions } from './embedded.ts';
import { GobgpAdapter, type GobgpAdapterOptions } from './gobgp.ts';
import { WanError, type WanAdapter } from './types.ts';

export type WanAdapterConfig =
  ({ readonly kind: 'gobgp' } & GobgpAdapterOptions) | ({ readonly kind: 'embedded' } & EmbeddedPeOptions);

export function createWanAdapter(cfg: WanAdapterConfig): WanAdapter {
  switch (cfg.kind) {
    case 'gobgp': {
      const { kind: _k, ...o } = cfg;
      return new GobgpAdapter(o);
    }
    case 'embedded': {
      const { kind: _k, ...o } = cfg;
      return new EmbeddedPeAdapter(o);
    }
    default:
      throw new WanError(String((cfg as { kind?: unknown }).kind), 'unknown WAN adapter kind');
  }
}

export { EmbeddedPeAdapter, GobgpAdapter, WanError };
export { GOBGP_DYNAMIC_UNSUPPORTED } from './gobgp.ts';
export type { EmbeddedPeOptions, GobgpAdapterOptions };
export type { WanAdapter, WanBindingSpec, WanBindingStatus, WanNeighborStatus } from './types.ts';
