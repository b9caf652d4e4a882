/**
 * What `gobgp ... -j` prints (GoBGP 3.x), read into plain values, and the text forms its CLI
 * parses. Owns the few protobuf messages GoBGP prints as `google.protobuf.Any` (VRF route
 * distinguishers and route targets: `{type_url, value: base64}`), decoded with a minimal
 * protobuf reader (varint and length-delimited fields only, which is all these messages use).
 *
 * Quirks of the 3.10 CLI handled here:
 * - `gobgp vrf -j` prints RD and RTs as protobuf Any, not text;
 * - the CLI parses a 4-octet-AS RD or RT only in asdot (`64086.59904:7`); an asplain ASN above
 *   65535 is silently truncated to 65535 (`4200000000:1` becomes `65535:1`), so we always write
 *   asdot for 4-octet values and read back what the PE holds;
 * - IPv4 and IPv6 path JSON share one shape; locally added paths have no `neighbor-ip`.
 */
import { formatRd, parseRd } from '../../bgp/wire/rd.ts';
import { formatExtCommunity, parseExtCommunity } from '../../bgp/wire/communities.ts';
import { parseIPv4 } from '../../lib/ip.ts';

// --- a minimal protobuf reader ---------------------------------------------------------------

type PbField = { readonly no: number; readonly varint?: number; readonly bytes?: Uint8Array };

/** The fields of one protobuf message (wire types 0, 1, 2 and 5; 1 and 5 are skipped). */
export function decodePb(b: Uint8Array): PbField[] {
  const out: PbField[] = [];
  let i = 0;
  const varint = (): number => {
    let n = 0;
    let mul = 1;
    for (;;) {
      if (i >= b.length) throw new Error('protobuf: truncated varint');
      const x = b[i++]!;
      n += (x & 0x7f) * mul;
      if ((x & 0x80) === 0) return n;
      mul *= 128;
      if (mul > 2 ** 63) throw new Error('protobuf: varint too long');
    }
  };
  while (i < b.length) {
    const key = varint();
    const no = Math.floor(key / 8);
    switch (key % 8) {
      case 0:
        out.push({ no, varint: varint() });
        break;
      case 1:
        i += 8;
        break;
      case 2: {
        const len = varint();
        if (i + len > b.length) throw new Error('protobuf: truncated field');
        out.push({ no, bytes: b.subarray(i, i + len) });
        i += len;
        break;
      }
      case 5:
        i += 4;
        break;
      default:
        throw new Error(`protobuf: wire type ${key % 8} not supported`);
    }
  }
  return out;
}

function num(f: PbField[], no: number): number {
  return f.find((x) => x.no === no)?.varint ?? 0;
}

function str(f: PbField[], no: number): string {
  const b = f.find((x) => x.no === no)?.bytes;
  return b === undefined ? '' : Buffer.from(b).toString('utf8');
}

// --- RDs and route targets ---------------------------------------------------------------------

export interface PbAny {
  readonly type_url?: string;
  readonly value?: string;
}

function anyBody(a: PbAny): { kind: string; f: PbField[] } {
  const kind = (a.type_url ?? '').replace(/^.*\//, '').replace(/^apipb\./, '');
  return { kind, f: decodePb(Buffer.from(a.value ?? '', 'base64')) };
}

/** An RD printed as Any by `gobgp vrf -j`, in canonical text (`65000:1`, `192.0.2.1:1`, ...). */
export function rdFromAny(a: PbAny): string {
  const { kind, f } = anyBody(a);
  switch (kind) {
    case 'RouteDistinguisherTwoOctetASN':
      return rdText(0, num(f, 1), num(f, 2));
    case 'RouteDistinguisherIPAddress':
      return rdText(1, str(f, 1), num(f, 2));
    case 'RouteDistinguisherFourOctetASN':
      return rdText(2, num(f, 1), num(f, 2));
    default:
      return `unknown:${kind}`;
  }
}

/** An RD as path JSON prints it (`{type, admin, assigned}`), in canonical text. */
export function rdText(type: number, admin: number | string, assigned: number): string {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  v.setUint16(0, type);
  if (type === 1) {
    b.set(parseIPv4(String(admin)), 2);
    v.setUint16(6, assigned);
  } else if (type === 2) {
    v.setUint32(2, Number(admin));
    v.setUint16(6, assigned);
  } else {
    v.setUint16(2, Number(admin));
    v.setUint32(4, assigned);
  }
  return formatRd(b);
}

/** A route target printed as Any by `gobgp vrf -j`, canonical without `rt:` (others: `0x...`). */
export function rtFromAny(a: PbAny): string {
  const { kind, f } = anyBody(a);
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  const nonTransitive = num(f, 1) === 0 ? 0x40 : 0; // RFC 4360 §2: T bit set = non-transitive
  b[1] = num(f, 2);
  switch (kind) {
    case 'TwoOctetAsSpecificExtended':
      b[0] = 0x00 | nonTransitive;
      v.setUint16(2, num(f, 3));
      v.setUint32(4, num(f, 4));
      break;
    case 'IPv4AddressSpecificExtended':
      b[0] = 0x01 | nonTransitive;
      b.set(parseIPv4(str(f, 3)), 2);
      v.setUint16(6, num(f, 4));
      break;
    case 'FourOctetAsSpecificExtended':
      b[0] = 0x02 | nonTransitive;
      v.setUint32(2, num(f, 3));
      v.setUint16(6, num(f, 4));
      break;
    default:
      return `unknown:${kind}`;
  }
  const t = formatExtCommunity(b);
  return t.startsWith('rt:') ? t.slice(3) : t;
}

/** asdot (`64086.59904`) for a 4-octet ASN: the only 4-octet form the 3.10 CLI parses. */
function asdot(asn: number): string {
  return `${Math.floor(asn / 65536)}.${asn % 65536}`;
}

/** A canonical RD as the CLI's `rd` argument. */
export function rdArg(rd: string): string {
  const b = parseRd(rd);
  const v = new DataView(b.buffer, b.byteOffset, 8);
  if (v.getUint16(0) === 2) return `${asdot(v.getUint32(2))}:${v.getUint16(6)}`;
  return formatRd(b).replace(/L:/, ':');
}

/** A canonical route target as a CLI `rt` argument. */
export function rtArg(rt: string): string {
  const b = parseExtCommunity(`rt:${rt}`);
  const v = new DataView(b.buffer, b.byteOffset, 8);
  if ((b[0]! & 0x3f) === 0x02) return `${asdot(v.getUint32(2))}:${v.getUint16(6)}`;
  return rt;
}

// --- JSON shapes (only the fields we read) -----------------------------------------------------

export interface GobgpVrf {
  readonly name: string;
  readonly rd?: PbAny;
  readonly import_rt?: readonly PbAny[];
  readonly export_rt?: readonly PbAny[];
  readonly id?: number;
}

export interface GobgpPeer {
  readonly conf?: { readonly neighbor_address?: string; readonly peer_asn?: number; readonly vrf?: string };
  readonly state?: {
    readonly neighbor_address?: string;
    readonly session_state?: number | string;
    readonly peer_asn?: number;
  };
  readonly afi_safis?: readonly {
    readonly config?: { readonly family?: { readonly afi?: number; readonly safi?: number } };
    readonly state?: { readonly received?: number; readonly accepted?: number };
  }[];
}

export interface GobgpPath {
  readonly nlri?: {
    readonly prefix?: string;
    readonly rd?: { readonly type?: number; readonly admin?: number | string; readonly assigned?: number };
  };
  readonly attrs?: readonly { readonly type: number; readonly nexthop?: string }[];
  readonly 'neighbor-ip'?: string;
  readonly best?: boolean;
}

export type GobgpRib = Record<string, readonly GobgpPath[]>;

// gobgp api.PeerState.SessionState (RFC 4271 §8.2.2 states)
const SESSION_STATE: Readonly<Record<number, string>> = {
  0: 'unknown',
  1: 'idle',
  2: 'connect',
  3: 'active',
  4: 'opensent',
  5: 'openconfirm',
  6: 'established',
};

export function sessionState(s: number | string | undefined): string {
  if (typeof s === 'number') return SESSION_STATE[s] ?? 'unknown';
  if (typeof s === 'string') return s.toLowerCase().replace(/^session_state_/, '');
  return 'idle';
}

/** The `[afi, safi]` family codes of the address families we provision (RFC 4760). */
export const FAMILY_CODES: Readonly<Record<string, readonly [number, number]>> = {
  'ipv4-unicast': [1, 1],
  'ipv6-unicast': [2, 1],
};

/** The next hop of a path (NEXT_HOP or MP_REACH_NLRI), if any. */
export function pathNextHop(p: GobgpPath): string | undefined {
  return p.attrs?.find((a) => a.type === 3 || a.type === 14)?.nexthop;
}
