/**
 * Capabilities Advertisement (RFC 5492): one descriptor per capability code we understand, each
 * with its value decoder, length and encoder. Codes we do not understand (including the
 * pre-standard Cisco route refresh, 128) are kept as `{code, value, unknown: true}` and ignored,
 * as RFC 5492 §5 requires.
 *
 * Invariants:
 * - Decoded byte fields (unknown values) are views into the OPEN being decoded.
 * - A capability we understand but whose value is malformed (bad length, truncated strings) is an
 *   OPEN Message Error with subcode 0 "Unspecific": RFC 4271 §6.2 says so for a recognised but
 *   malformed optional parameter, and BIRD (`bgp_read_capabilities`) does the same. Subcode 7
 *   "Unsupported Capability" (RFC 5492 §5) is for a capability we require and the peer lacks.
 * - An ADD-PATH capability with a Send/Receive value outside 1..3 is kept as unknown (ignored, as
 *   BIRD does), since RFC 7911 §4 defines no error for it.
 *
 * Formats: MP RFC 4760 §8, Route Refresh RFC 2918 §2, Extended Message RFC 8654 §3, Graceful
 * Restart RFC 4724 §3 (+ N bit RFC 8538 §2), 4-octet AS RFC 6793 §3, ADD-PATH RFC 7911 §4,
 * Enhanced Route Refresh RFC 7313 §3.1, FQDN draft-walton-bgp-hostname-capability §3.
 */
import { Reader, ShortReadError, Writer } from '../../lib/bytes.ts';
import { CapabilityCode, NotificationCode, OpenErrorSubcode, capabilityName } from './constants.ts';
import { LocalUsageError, NotificationError } from './errors.ts';
import type { Capability } from './types.ts';

/** A capability we interpret (every member of the union except the raw, unknown one). */
export type KnownCapability = Exclude<Capability, { readonly unknown: true }>;
export type UnknownCapability = Extract<Capability, { readonly unknown: true }>;

export function isUnknownCapability(c: Capability): c is UnknownCapability {
  return 'unknown' in c;
}

/** Narrow to the interpreted capability with this code (the raw form shares `code: number`). */
export function findCapabilities<C extends KnownCapability['code']>(
  caps: readonly Capability[],
  code: C,
): Extract<KnownCapability, { code: C }>[] {
  const out: Extract<KnownCapability, { code: C }>[] = [];
  for (const c of caps) {
    if (c.code === code && !isUnknownCapability(c)) out.push(c as Extract<KnownCapability, { code: C }>);
  }
  return out;
}

interface CapabilityDescriptor {
  readonly code: number;
  readonly name: string;
  /** Value bytes to capability; returns undefined to keep it as unknown. Throws ShortReadError. */
  readonly decode: (r: Reader, length: number) => KnownCapability | undefined;
  readonly length: (c: KnownCapability) => number;
  readonly encode: (w: Writer, c: KnownCapability) => void;
}

const GR_RESTART_STATE = 0x8000; // RFC 4724 §3 R bit
const GR_NOTIFICATION = 0x4000; // RFC 8538 §2 N bit
const GR_TIME_MASK = 0x0fff;
const GR_FORWARDING_STATE = 0x80; // RFC 4724 §3 F bit

const textDecoder = new TextDecoder('utf-8');
const textEncoder = new TextEncoder();

function malformed(message: string): NotificationError {
  return new NotificationError(NotificationCode.OPEN_MESSAGE_ERROR, OpenErrorSubcode.UNSPECIFIC, message);
}

function exactly(n: number, length: number, code: number): void {
  if (length !== n) throw malformed(`${capabilityName(code)} capability length ${length}, expected ${n}`);
}

function empty(code: 2 | 6 | 70): CapabilityDescriptor {
  return {
    code,
    name: capabilityName(code),
    decode: (_r, length) => {
      exactly(0, length, code);
      return { code };
    },
    length: () => 0,
    encode: () => undefined,
  };
}

const DESCRIPTORS: readonly CapabilityDescriptor[] = [
  {
    code: CapabilityCode.MULTIPROTOCOL, // RFC 4760 §8: AFI(2) Reserved(1) SAFI(1)
    name: 'MULTIPROTOCOL',
    decode: (r, length) => {
      exactly(4, length, 1);
      const afi = r.u16();
      r.u8();
      return { code: 1, afi, safi: r.u8() };
    },
    length: () => 4,
    encode: (w, c) => {
      const mp = c as Extract<KnownCapability, { code: 1 }>;
      w.u16(mp.afi).u8(0).u8(mp.safi);
    },
  },
  empty(CapabilityCode.ROUTE_REFRESH), // RFC 2918 §2
  empty(CapabilityCode.EXTENDED_MESSAGE), // RFC 8654 §3
  empty(CapabilityCode.ENHANCED_ROUTE_REFRESH), // RFC 7313 §3.1
  {
    code: CapabilityCode.GRACEFUL_RESTART, // RFC 4724 §3: flags/time(2), then AFI(2) SAFI(1) flags(1)*
    name: 'GRACEFUL_RESTART',
    decode: (r, length) => {
      if (length < 2 || (length - 2) % 4 !== 0) {
        throw malformed(`GRACEFUL_RESTART capability length ${length}, expected 2 + 4n`);
      }
      const ft = r.u16();
      const families: { afi: number; safi: number; forwardingState: boolean }[] = [];
      for (let i = 2; i < length; i += 4) {
        const afi = r.u16();
        const safi = r.u8();
        families.push({ afi, safi, forwardingState: (r.u8() & GR_FORWARDING_STATE) !== 0 });
      }
      return {
        code: 64,
        restartState: (ft & GR_RESTART_STATE) !== 0,
        notification: (ft & GR_NOTIFICATION) !== 0,
        restartTime: ft & GR_TIME_MASK,
        families,
      };
    },
    length: (c) => 2 + 4 * (c as Extract<KnownCapability, { code: 64 }>).families.length,
    encode: (w, c) => {
      const gr = c as Extract<KnownCapability, { code: 64 }>;
      if (!Number.isInteger(gr.restartTime) || gr.restartTime < 0 || gr.restartTime > GR_TIME_MASK) {
        throw new LocalUsageError(`graceful restart time ${gr.restartTime} not in 0..4095`);
      }
      w.u16(
        (gr.restartState ? GR_RESTART_STATE : 0) | (gr.notification ? GR_NOTIFICATION : 0) | gr.restartTime,
      );
      for (const f of gr.families)
        w.u16(f.afi)
          .u8(f.safi)
          .u8(f.forwardingState ? GR_FORWARDING_STATE : 0);
    },
  },
  {
    code: CapabilityCode.FOUR_OCTET_AS, // RFC 6793 §3: the 4-octet AS number
    name: 'FOUR_OCTET_AS',
    decode: (r, length) => {
      exactly(4, length, 65);
      return { code: 65, asn: r.u32() };
    },
    length: () => 4,
    encode: (w, c) => {
      w.u32((c as Extract<KnownCapability, { code: 65 }>).asn);
    },
  },
  {
    code: CapabilityCode.ADD_PATH, // RFC 7911 §4: (AFI(2) SAFI(1) Send/Receive(1))*
    name: 'ADD_PATH',
    decode: (r, length) => {
      if (length % 4 !== 0) throw malformed(`ADD_PATH capability length ${length}, expected 4n`);
      const families: { afi: number; safi: number; sendReceive: 1 | 2 | 3 }[] = [];
      let valid = true;
      for (let i = 0; i < length; i += 4) {
        const afi = r.u16();
        const safi = r.u8();
        const sendReceive = r.u8();
        if (sendReceive === 1 || sendReceive === 2 || sendReceive === 3)
          families.push({ afi, safi, sendReceive });
        else valid = false;
      }
      return valid ? { code: 69, families } : undefined;
    },
    length: (c) => 4 * (c as Extract<KnownCapability, { code: 69 }>).families.length,
    encode: (w, c) => {
      for (const f of (c as Extract<KnownCapability, { code: 69 }>).families)
        w.u16(f.afi).u8(f.safi).u8(f.sendReceive);
    },
  },
  {
    code: CapabilityCode.FQDN, // draft-walton-bgp-hostname-capability §3: len(1) hostname len(1) domain
    name: 'FQDN',
    decode: (r, length) => {
      const end = r.pos + length;
      const hostname = textDecoder.decode(r.bytes(r.u8()));
      const domain = textDecoder.decode(r.bytes(r.u8()));
      if (r.pos !== end) throw malformed(`FQDN capability length ${length} does not match its strings`);
      return { code: 73, hostname, domain };
    },
    length: (c) => {
      const f = c as Extract<KnownCapability, { code: 73 }>;
      return 2 + utf8Length(f.hostname, 'hostname') + utf8Length(f.domain, 'domain');
    },
    encode: (w, c) => {
      const f = c as Extract<KnownCapability, { code: 73 }>;
      const h = textEncoder.encode(f.hostname);
      const d = textEncoder.encode(f.domain);
      w.u8(h.length).bytes(h).u8(d.length).bytes(d);
    },
  },
];

const BY_CODE = new Map<number, CapabilityDescriptor>(DESCRIPTORS.map((d) => [d.code, d]));

function utf8Length(s: string, what: string): number {
  const n = textEncoder.encode(s).length;
  if (n > 255) throw new LocalUsageError(`FQDN ${what} is ${n} bytes, at most 255`);
  return n;
}

/** Length of a capability's value (without the 2-byte code/length header). */
export function capabilityValueLength(c: Capability): number {
  if (isUnknownCapability(c)) return c.value.length;
  const d = BY_CODE.get(c.code);
  if (d === undefined) throw new LocalUsageError(`no encoder for capability ${c.code}`);
  return d.length(c);
}

/** Length of the capability TLV: code(1) length(1) value. */
export function capabilityLength(c: Capability): number {
  return 2 + capabilityValueLength(c);
}

/** Write one capability TLV (RFC 5492 §4) at the writer's position. */
export function writeCapability(w: Writer, c: Capability): void {
  const n = capabilityValueLength(c);
  if (!Number.isInteger(c.code) || c.code < 0 || c.code > 255) {
    throw new LocalUsageError(`bad capability code ${c.code}`);
  }
  if (n > 255)
    throw new LocalUsageError(`capability ${capabilityName(c.code)} value is ${n} bytes, at most 255`);
  w.u8(c.code).u8(n);
  if (isUnknownCapability(c)) w.bytes(c.value);
  else BY_CODE.get(c.code)!.encode(w, c);
}

/** One capability TLV: Capability Code(1), Capability Length(1), Capability Value (RFC 5492 §4). */
export function encodeCapability(c: Capability): Uint8Array {
  const w = new Writer(capabilityLength(c));
  writeCapability(w, c);
  return w.finish();
}

/** Decode a capability value given its code. Throws NotificationError (2, 0) when malformed. */
export function decodeCapabilityValue(code: number, value: Uint8Array): Capability {
  const d = BY_CODE.get(code);
  if (d === undefined) return { code, value, unknown: true };
  const r = new Reader(value);
  try {
    const c = d.decode(r, value.length);
    return c ?? { code, value, unknown: true };
  } catch (e) {
    if (e instanceof ShortReadError) throw malformed(`${d.name} capability truncated`);
    throw e;
  }
}

/** Decode the value of a Capabilities optional parameter: a sequence of TLVs (RFC 5492 §4). */
export function decodeCapabilities(buf: Uint8Array): Capability[] {
  const out: Capability[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (pos + 2 > buf.length) throw malformed('capability header truncated');
    const code = buf[pos]!;
    const length = buf[pos + 1]!;
    pos += 2;
    if (pos + length > buf.length)
      throw malformed(`capability ${capabilityName(code)} overruns its parameter`);
    out.push(decodeCapabilityValue(code, buf.subarray(pos, pos + length)));
    pos += length;
  }
  return out;
}

/** Decode exactly one capability TLV (the inverse of `encodeCapability`). */
export function decodeCapability(tlv: Uint8Array): Capability {
  const caps = decodeCapabilities(tlv);
  if (caps.length !== 1) throw malformed(`expected one capability, found ${caps.length}`);
  return caps[0]!;
}
