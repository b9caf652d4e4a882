/**
 * The policy engine's public shapes (the route it is asked about and the answer it gives) and the
 * per-evaluation working state shared by compiled conditions and actions.
 *
 * Invariants:
 * - The input `attrs` is never mutated (attribute sets are interned and shared). The first action
 *   that really changes something copies it into a private draft; later actions edit the draft.
 *   When no action changed anything, the result carries the input object itself (`===`).
 * - Conditions read the current attributes, so a statement sees the edits of earlier statements
 *   in the chain (OpenConfig routing-policy semantics).
 */
import type { Prefix } from '../../lib/ip.ts';
import type { AfiSafiName } from '../wire/constants.ts';
import type { PathAttributes } from '../wire/types.ts';

export type RouteType = 'internal' | 'external' | 'local';

/** The route a policy chain is evaluated on. */
export interface PolicyRoute {
  readonly prefix: Prefix;
  readonly family: AfiSafiName;
  readonly attrs: PathAttributes;
  /** The peer's address (4 or 16 bytes); absent for locally originated routes. */
  readonly neighbor?: Uint8Array;
  readonly routeType?: RouteType;
}

export interface PolicyResult {
  readonly accept: boolean;
  /** The input object (===) when nothing changed (always so on reject), else a new object. */
  readonly attrs: PathAttributes;
  /** `set-next-hop: self` was the last next-hop action: the caller puts its own address. */
  readonly nextHopSelf?: boolean;
  /**
   * `set-next-hop: <address>` was the last next-hop action. For ipv4-unicast with an IPv4 address
   * it is also written to `attrs.nextHop`; for other families the caller applies it to the
   * MP_REACH_NLRI next hop (RFC 4760 §3).
   */
  readonly nextHop?: Uint8Array;
}

/** What, besides the attributes, the result of a chain may depend on (for caller-side caches). */
export interface PolicyDependencies {
  readonly prefix: boolean;
  readonly family: boolean;
  readonly neighbor: boolean;
  readonly routeType: boolean;
}

export type MutableAttrs = { -readonly [K in keyof PathAttributes]: PathAttributes[K] };

/** Working state of one `evaluate` call. */
export class EvalState {
  /** The current attributes: the input until the first change, then the draft. */
  attrs: PathAttributes;
  /** Last next-hop action: an address, 'self', or none. */
  nextHop: Uint8Array | 'self' | undefined = undefined;
  private draft: MutableAttrs | undefined = undefined;

  constructor(readonly route: PolicyRoute) {
    this.attrs = route.attrs;
  }

  /** The private copy to edit; call only when about to change a value. */
  edit(): MutableAttrs {
    if (this.draft === undefined) {
      this.draft = { ...this.attrs };
      this.attrs = this.draft;
    }
    return this.draft;
  }

  accepted(): PolicyResult {
    const nh = this.nextHop;
    if (nh === undefined) return { accept: true, attrs: this.attrs };
    if (nh === 'self') return { accept: true, attrs: this.attrs, nextHopSelf: true };
    return { accept: true, attrs: this.attrs, nextHop: nh };
  }

  rejected(): PolicyResult {
    return { accept: false, attrs: this.route.attrs };
  }
}

/** A compiled condition: pure, reads the state only. */
export type Condition = (s: EvalState) => boolean;
/** A compiled action: changes the state only through `edit()` and `nextHop`. */
export type Action = (s: EvalState) => void;
