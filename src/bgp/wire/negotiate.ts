/**
 * Session negotiation: build our OPEN from local options, and combine it with the peer's OPEN
 * into the session parameters (`Negotiated`) and the per-session `CodecContext`.
 *
 * Pure functions; throws NotificationError for a peer OPEN we must refuse and LocalUsageError for
 * bad local options.
 *
 * Rules, each cited where applied:
 * - Peer AS from the 4-octet AS capability when present, else My AS (RFC 6793 §4.1); AS_TRANS in
 *   My AS without the capability, AS 0 (RFC 7607 §2) or an AS other than expected → (2, 2).
 * - BGP Identifier equal to ours from an internal peer → (2, 3) (RFC 6286 §2.2).
 * - Optional parameters other than Capabilities → (2, 4) (RFC 4271 §6.2).
 * - Hold time = min(ours, theirs); 0 disables keepalives, else ≥ 3 (RFC 4271 §4.2, §6.2);
 *   keepalive = hold / 3 (RFC 4271 §10 suggested ratio), at least 1 s.
 * - Families = intersection of both MP capability sets; a speaker that sends no MP capability
 *   speaks IPv4 unicast only (RFC 4760 §8). No common family → (2, 7) Unsupported Capability
 *   with our MP capabilities as data (RFC 5492 §5; FRR does the same).
 * - 4-octet AS, Extended Message, Route Refresh, Enhanced Route Refresh: both sides advertised it
 *   (RFC 6793 §4, RFC 8654 §3, RFC 2918 §2, RFC 7313 §3.1 which also requires Route Refresh).
 * - ADD-PATH per family: receive when we receive and the peer sends, send when we send and the
 *   peer receives (RFC 7911 §4).
 */
import {
  AS_TRANS,
  CapabilityCode,
  NotificationCode,
  OpenErrorSubcode,
  afiSafiCode,
  afiSafiName,
  type AfiSafiName,
} from './constants.ts';
import { encodeCapability, findCapabilities } from './capabilities.ts';
import { LocalUsageError, NotificationError } from './errors.ts';
import { BGP_VERSION } from './open.ts';
import type { Capability, CodecContext, OpenMessage } from './types.ts';

export type AddPathMode = 'receive' | 'send' | 'both';

export interface LocalSessionOptions {
  readonly localAsn: number;
  readonly routerId: number;
  readonly holdTime: number;
  readonly families: readonly AfiSafiName[];
  readonly routeRefresh?: boolean; // default true
  readonly enhancedRouteRefresh?: boolean; // default true
  readonly extendedMessage?: boolean; // default true
  readonly gracefulRestart?: {
    readonly restartTime: number;
    readonly notification?: boolean; // RFC 8538 N bit, default false
    /** R bit: we are restarting (RFC 4724 §3). Default false. */
    readonly restarting?: boolean;
    /** F bit for every family: forwarding was preserved across our restart. Default false. */
    readonly forwardingState?: boolean;
  };
  readonly addPath?: Partial<Record<AfiSafiName, AddPathMode>>;
  readonly fqdn?: { readonly hostname: string; readonly domain: string };
}

export interface PeerGracefulRestart {
  readonly restartTime: number;
  readonly restartState: boolean;
  readonly notification: boolean;
  readonly families: Map<AfiSafiName, { readonly forwardingState: boolean }>;
}

export interface Negotiated {
  readonly peerAsn: number;
  readonly peerBgpId: number;
  readonly holdTime: number;
  readonly keepaliveTime: number;
  readonly families: Set<AfiSafiName>;
  readonly ctx: CodecContext;
  readonly routeRefresh: boolean;
  readonly enhancedRouteRefresh: boolean;
  readonly peerGracefulRestart?: PeerGracefulRestart;
  readonly peerCapabilities: readonly Capability[];
}

export interface NegotiateExpectations {
  /** Accepted peer AS numbers; undefined accepts any (dynamic neighbours). */
  readonly peerAsn?: number | readonly number[];
  /** Overrides the eBGP/iBGP decision (default: peer AS ≠ local AS). */
  readonly ebgp?: boolean;
  readonly localBgpId: number;
}

const ADD_PATH_CODE: Record<AddPathMode, 1 | 2 | 3> = { receive: 1, send: 2, both: 3 }; // RFC 7911 §4

function checkLocal(opts: LocalSessionOptions): void {
  const { localAsn, routerId, holdTime } = opts;
  if (!Number.isInteger(localAsn) || localAsn < 1 || localAsn > 0xffffffff) {
    throw new LocalUsageError(`local AS ${localAsn} not in 1..4294967295`);
  }
  if (!Number.isInteger(routerId) || routerId < 1 || routerId > 0xffffffff) {
    throw new LocalUsageError(`router id ${routerId} must be a non-zero u32 (RFC 6286 §2.2)`);
  }
  if (!Number.isInteger(holdTime) || holdTime < 0 || holdTime > 0xffff || holdTime === 1 || holdTime === 2) {
    throw new LocalUsageError(`hold time ${holdTime} must be 0 or 3..65535 (RFC 4271 §4.2)`);
  }
}

/** Our OPEN (without `type`), ready for `encodeOpen`. */
export function buildOpen(opts: LocalSessionOptions): Omit<OpenMessage, 'type'> {
  checkLocal(opts);
  const families = [...new Set(opts.families)];
  const caps: Capability[] = [];
  for (const f of families) caps.push({ code: CapabilityCode.MULTIPROTOCOL, ...afiSafiCode(f) });
  if (opts.routeRefresh !== false) caps.push({ code: CapabilityCode.ROUTE_REFRESH });
  if (opts.enhancedRouteRefresh !== false) caps.push({ code: CapabilityCode.ENHANCED_ROUTE_REFRESH });
  caps.push({ code: CapabilityCode.FOUR_OCTET_AS, asn: opts.localAsn }); // RFC 6793 §3: always
  if (opts.extendedMessage !== false) caps.push({ code: CapabilityCode.EXTENDED_MESSAGE });
  const gr = opts.gracefulRestart;
  if (gr !== undefined) {
    caps.push({
      code: CapabilityCode.GRACEFUL_RESTART,
      restartState: gr.restarting === true,
      notification: gr.notification === true,
      restartTime: gr.restartTime,
      families: families.map((f) => ({ ...afiSafiCode(f), forwardingState: gr.forwardingState === true })),
    });
  }
  if (opts.addPath !== undefined) {
    const entries: { afi: number; safi: number; sendReceive: 1 | 2 | 3 }[] = [];
    for (const f of families) {
      const mode = opts.addPath[f];
      if (mode !== undefined) entries.push({ ...afiSafiCode(f), sendReceive: ADD_PATH_CODE[mode] });
    }
    if (entries.length > 0) caps.push({ code: CapabilityCode.ADD_PATH, families: entries });
  }
  if (opts.fqdn !== undefined) caps.push({ code: CapabilityCode.FQDN, ...opts.fqdn });
  return {
    version: BGP_VERSION,
    myAs: opts.localAsn <= 0xffff ? opts.localAsn : AS_TRANS, // RFC 6793 §4.1
    holdTime: opts.holdTime,
    bgpId: opts.routerId,
    capabilities: caps,
    otherParams: [],
  };
}

function openError(subcode: number, message: string, data?: Uint8Array): NotificationError {
  return new NotificationError(NotificationCode.OPEN_MESSAGE_ERROR, subcode, message, data);
}

/** Families named by MP capabilities; none at all means IPv4 unicast only (RFC 4760 §8). */
function mpFamilies(caps: readonly Capability[]): Set<AfiSafiName> {
  const mp = findCapabilities(caps, CapabilityCode.MULTIPROTOCOL);
  if (mp.length === 0) return new Set<AfiSafiName>(['ipv4-unicast']);
  const out = new Set<AfiSafiName>();
  for (const c of mp) {
    const name = afiSafiName(c.afi, c.safi);
    if (name !== undefined) out.add(name);
  }
  return out;
}

function has(caps: readonly Capability[], code: 2 | 6 | 70): boolean {
  return findCapabilities(caps, code).length > 0;
}

/** Combine our options with the peer's OPEN. Throws NotificationError when we must refuse it. */
export function negotiate(
  local: LocalSessionOptions,
  remote: OpenMessage,
  expect: NegotiateExpectations,
): Negotiated {
  checkLocal(local);
  const ours = buildOpen(local).capabilities;
  const theirs = remote.capabilities;

  // RFC 4271 §6.2: an optional parameter we do not recognise
  const other = remote.otherParams[0];
  if (other !== undefined) {
    const data = new Uint8Array(2 + Math.min(other.value.length, 0xff));
    data[0] = other.type;
    data[1] = data.length - 2;
    data.set(other.value.subarray(0, data.length - 2), 2);
    throw openError(
      OpenErrorSubcode.UNSUPPORTED_OPTIONAL_PARAMETER,
      `optional parameter ${other.type}`,
      data,
    );
  }

  // Peer AS (RFC 6793 §4.1, RFC 7607 §2)
  const as4Cap = findCapabilities(theirs, CapabilityCode.FOUR_OCTET_AS)[0];
  const myAsField = Uint8Array.of(remote.myAs >>> 8, remote.myAs & 0xff);
  if (as4Cap === undefined && remote.myAs === AS_TRANS) {
    throw openError(OpenErrorSubcode.BAD_PEER_AS, 'AS_TRANS without the 4-octet AS capability', myAsField);
  }
  const peerAsn = as4Cap?.asn ?? remote.myAs;
  if (peerAsn === 0) throw openError(OpenErrorSubcode.BAD_PEER_AS, 'peer AS 0 (RFC 7607)', myAsField);
  const accepted = expect.peerAsn;
  if (accepted !== undefined && !(typeof accepted === 'number' ? [accepted] : accepted).includes(peerAsn)) {
    throw openError(OpenErrorSubcode.BAD_PEER_AS, `peer AS ${peerAsn} is not the configured one`, myAsField);
  }

  // RFC 6286 §2.2: identical identifiers are only an error between internal peers
  if (remote.bgpId === expect.localBgpId && peerAsn === local.localAsn) {
    throw openError(OpenErrorSubcode.BAD_BGP_IDENTIFIER, 'peer BGP Identifier equals ours');
  }
  if (remote.bgpId === 0) throw openError(OpenErrorSubcode.BAD_BGP_IDENTIFIER, 'BGP Identifier is 0');

  // RFC 4271 §4.2: the smaller hold time; zero or at least three seconds
  if (remote.holdTime === 1 || remote.holdTime === 2) {
    throw openError(OpenErrorSubcode.UNACCEPTABLE_HOLD_TIME, `hold time ${remote.holdTime}`);
  }
  const holdTime = Math.min(local.holdTime, remote.holdTime);
  const keepaliveTime = holdTime === 0 ? 0 : Math.max(1, Math.floor(holdTime / 3));

  // RFC 4760 §8: intersection of both MP sets
  const theirFamilies = mpFamilies(theirs);
  const families = new Set<AfiSafiName>();
  for (const f of mpFamilies(ours)) if (theirFamilies.has(f)) families.add(f);
  if (families.size === 0) {
    const mine = findCapabilities(ours, CapabilityCode.MULTIPROTOCOL).map(encodeCapability);
    const data = new Uint8Array(mine.reduce((n, b) => n + b.length, 0));
    let at = 0;
    for (const b of mine) {
      data.set(b, at);
      at += b.length;
    }
    throw openError(OpenErrorSubcode.UNSUPPORTED_CAPABILITY, 'no address family in common', data);
  }

  // RFC 7911 §4: ADD-PATH directions per family (first entry per family wins)
  const theirAddPath = new Map<AfiSafiName, 1 | 2 | 3>();
  for (const c of findCapabilities(theirs, CapabilityCode.ADD_PATH)) {
    for (const e of c.families) {
      const name = afiSafiName(e.afi, e.safi);
      if (name !== undefined && !theirAddPath.has(name)) theirAddPath.set(name, e.sendReceive);
    }
  }
  const addPathRx = new Set<AfiSafiName>();
  const addPathTx = new Set<AfiSafiName>();
  for (const f of families) {
    const mine = local.addPath?.[f];
    const peer = theirAddPath.get(f);
    if (mine === undefined || peer === undefined) continue;
    if ((mine === 'receive' || mine === 'both') && (peer === 2 || peer === 3)) addPathRx.add(f);
    if ((mine === 'send' || mine === 'both') && (peer === 1 || peer === 3)) addPathTx.add(f);
  }

  const routeRefresh = local.routeRefresh !== false && has(theirs, CapabilityCode.ROUTE_REFRESH);
  const enhancedRouteRefresh =
    routeRefresh &&
    local.enhancedRouteRefresh !== false &&
    has(theirs, CapabilityCode.ENHANCED_ROUTE_REFRESH);
  const ebgp = expect.ebgp ?? peerAsn !== local.localAsn;
  const ctx: CodecContext = {
    as4: as4Cap !== undefined, // we always send it
    addPathRx,
    addPathTx,
    extendedMessage: local.extendedMessage !== false && has(theirs, CapabilityCode.EXTENDED_MESSAGE),
    ebgp,
  };

  const grCap = findCapabilities(theirs, CapabilityCode.GRACEFUL_RESTART)[0];
  let peerGracefulRestart: PeerGracefulRestart | undefined;
  if (grCap !== undefined) {
    const grFamilies = new Map<AfiSafiName, { forwardingState: boolean }>();
    for (const e of grCap.families) {
      const name = afiSafiName(e.afi, e.safi);
      if (name !== undefined && families.has(name) && !grFamilies.has(name)) {
        grFamilies.set(name, { forwardingState: e.forwardingState });
      }
    }
    peerGracefulRestart = {
      restartTime: grCap.restartTime,
      restartState: grCap.restartState,
      notification: grCap.notification,
      families: grFamilies,
    };
  }

  return {
    peerAsn,
    peerBgpId: remote.bgpId,
    holdTime,
    keepaliveTime,
    families,
    ctx,
    routeRefresh,
    enhancedRouteRefresh,
    ...(peerGracefulRestart === undefined ? {} : { peerGracefulRestart }),
    peerCapabilities: theirs,
  };
}
