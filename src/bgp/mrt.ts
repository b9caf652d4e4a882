/**
 * MRT writer: RIB snapshots in the TABLE_DUMP_V2 format (RFC 6396 §4.3), readable by bgpdump,
 * bgpkit-parser, pybgpstream and friends.
 *
 * Owns: the byte layout of MRT records (common header RFC 6396 §2, PEER_INDEX_TABLE §4.3.1,
 * RIB_IPV4_UNICAST / RIB_IPV6_UNICAST §4.3.2 with RIB entries §4.3.4) and, optionally, the
 * RFC 8050 §4 ADD-PATH subtypes (a 4-octet path identifier in each RIB entry).
 *
 * The input is decoupled from the RIB: callers hand over peers and already-encoded path attributes
 * (4-octet AS_PATH always, RFC 6396 §4.3.4; IPv6 next hops in the abbreviated MP_REACH_NLRI made by
 * `mrtIpv6NextHopAttribute`). The encoder never mutates its input.
 *
 * Invariants:
 * - The first record is the PEER_INDEX_TABLE; then one RIB record per input entry, in input order,
 *   with a sequence number that starts at 0 and grows by one per RIB record across both families
 *   (RFC 6396 §4.3.2), wrapping at 2^32.
 * - The whole dump is encoded into one buffer whose size is computed first; the returned records
 *   are views into it (one allocation, no copies).
 * - Every length field is checked against its width before anything is written: peer count,
 *   entry count and attribute length are 16-bit; a violation throws `LocalUsageError`.
 */
import { open } from 'node:fs/promises';
import { AFI_IPV4, AFI_IPV6, type Prefix } from '../lib/ip.ts';
import { Writer } from '../lib/bytes.ts';
import { AttrFlag, AttrType } from './wire/constants.ts';
import { LocalUsageError } from './wire/errors.ts';

/** MRT record types (RFC 6396 §4; the rest are legacy or not written here). */
export const MrtType = {
  TABLE_DUMP: 12, // RFC 6396 §4.2 (deprecated, not written)
  TABLE_DUMP_V2: 13, // RFC 6396 §4.3
  BGP4MP: 16, // RFC 6396 §4.4
  BGP4MP_ET: 17, // RFC 6396 §4.4
} as const;

/** TABLE_DUMP_V2 subtypes (RFC 6396 §4.3, RFC 8050 §4). */
export const TableDumpV2Subtype = {
  PEER_INDEX_TABLE: 1, // RFC 6396 §4.3.1
  RIB_IPV4_UNICAST: 2, // RFC 6396 §4.3.2
  RIB_IPV4_MULTICAST: 3,
  RIB_IPV6_UNICAST: 4,
  RIB_IPV6_MULTICAST: 5,
  RIB_GENERIC: 6, // RFC 6396 §4.3.3
  RIB_IPV4_UNICAST_ADDPATH: 8, // RFC 8050 §4
  RIB_IPV4_MULTICAST_ADDPATH: 9,
  RIB_IPV6_UNICAST_ADDPATH: 10,
  RIB_IPV6_MULTICAST_ADDPATH: 11,
  RIB_GENERIC_ADDPATH: 12,
} as const;

/** Peer Type bits of a PEER_INDEX_TABLE entry (RFC 6396 §4.3.1: bit 7 = I, bit 6 = A, MSB = bit 0). */
export const MrtPeerType = {
  IPV6: 0x01, // peer IP address is IPv6
  AS4: 0x02, // peer AS is 4 octets
} as const;

export const MRT_HEADER_LENGTH = 12; // RFC 6396 §2

function reverse(table: Record<string, number>): (code: number) => string {
  const m = new Map<number, string>();
  for (const [k, v] of Object.entries(table)) m.set(v, k);
  return (code) => m.get(code) ?? `UNKNOWN(${code})`;
}
export const mrtTypeName = reverse(MrtType);
export const tableDumpV2SubtypeName = reverse(TableDumpV2Subtype);

export interface MrtPeer {
  /** BGP Identifier, unsigned 32-bit. */
  readonly bgpId: number;
  /** 4 or 16 bytes. */
  readonly address: Uint8Array;
  readonly asn: number;
}

export interface MrtPath {
  /** Index into `MrtDumpInput.peers`. */
  readonly peerIndex: number;
  /** Unix seconds when the route was received. */
  readonly originatedTime: number;
  /** RFC 8050: written only when the dump is `addPath`; defaults to 0 there. */
  readonly pathId?: number;
  /**
   * Path attributes, already encoded with 4-octet AS_PATH; for IPv6 an MP_REACH_NLRI carrying only
   * the next hop (RFC 6396 §4.3.4, see `mrtIpv6NextHopAttribute`).
   */
  readonly attributes: Uint8Array;
}

export interface MrtRibEntry {
  readonly prefix: Prefix;
  readonly paths: readonly MrtPath[];
}

export interface MrtDumpInput {
  readonly collectorBgpId: number;
  readonly viewName?: string;
  readonly peers: readonly MrtPeer[];
  readonly entries: readonly MrtRibEntry[];
  /** Unix seconds written in every record header. */
  readonly timestamp: number;
  /** Write the RFC 8050 *_ADDPATH subtypes with a path identifier per RIB entry. */
  readonly addPath?: boolean;
}

const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;

function checkU32(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > U32_MAX)
    throw new LocalUsageError(`MRT: ${what} ${v} out of range`);
}

function peerEntryLength(p: MrtPeer): number {
  if (p.address.length !== 4 && p.address.length !== 16) {
    throw new LocalUsageError(`MRT: peer address must be 4 or 16 bytes, got ${p.address.length}`);
  }
  checkU32(p.bgpId, 'peer BGP ID');
  checkU32(p.asn, 'peer AS');
  return 1 + 4 + p.address.length + (p.asn > U16_MAX ? 4 : 2);
}

/** Length of a RIB record body (RFC 6396 §4.3.2) without the MRT header. */
function ribRecordLength(e: MrtRibEntry, peerCount: number, addPath: boolean): number {
  const maxLen = e.prefix.afi === AFI_IPV4 ? 32 : 128;
  if ((e.prefix.afi !== AFI_IPV4 && e.prefix.afi !== AFI_IPV6) || e.prefix.len > maxLen) {
    throw new LocalUsageError(`MRT: bad prefix (afi ${e.prefix.afi}, length ${e.prefix.len})`);
  }
  if (e.paths.length > U16_MAX) throw new LocalUsageError(`MRT: ${e.paths.length} paths for one prefix`);
  let n = 4 + 1 + ((e.prefix.len + 7) >> 3) + 2;
  for (const p of e.paths) {
    if (!Number.isInteger(p.peerIndex) || p.peerIndex < 0 || p.peerIndex >= peerCount) {
      throw new LocalUsageError(`MRT: peer index ${p.peerIndex} not in the peer table (${peerCount})`);
    }
    checkU32(p.originatedTime, 'originated time');
    if (p.pathId !== undefined) checkU32(p.pathId, 'path identifier');
    if (p.attributes.length > U16_MAX) {
      throw new LocalUsageError(`MRT: attributes of ${p.attributes.length} bytes exceed 65535`);
    }
    n += 2 + 4 + (addPath ? 4 : 0) + 2 + p.attributes.length;
  }
  return n;
}

function ribSubtype(afi: number, addPath: boolean): number {
  if (afi === AFI_IPV4) {
    return addPath ? TableDumpV2Subtype.RIB_IPV4_UNICAST_ADDPATH : TableDumpV2Subtype.RIB_IPV4_UNICAST;
  }
  return addPath ? TableDumpV2Subtype.RIB_IPV6_UNICAST_ADDPATH : TableDumpV2Subtype.RIB_IPV6_UNICAST;
}

/**
 * Encodes a TABLE_DUMP_V2 dump: the PEER_INDEX_TABLE record, then one RIB record per entry.
 * Each returned record is a complete MRT record (header included), a view into one shared buffer.
 */
export function encodeMrtTableDump(input: MrtDumpInput): Uint8Array[] {
  const addPath = input.addPath === true;
  checkU32(input.timestamp, 'timestamp');
  checkU32(input.collectorBgpId, 'collector BGP ID');
  const view = new TextEncoder().encode(input.viewName ?? '');
  if (view.length > U16_MAX) throw new LocalUsageError('MRT: view name too long');
  if (input.peers.length > U16_MAX)
    throw new LocalUsageError(`MRT: ${input.peers.length} peers exceed 65535`);

  // Sizes first (RFC 6396 §4.3.1 peer index table; §4.3.2 RIB records), then one buffer.
  let peerTableLength = 4 + 2 + view.length + 2;
  for (const p of input.peers) peerTableLength += peerEntryLength(p);
  const ribLengths = new Array<number>(input.entries.length);
  let total = MRT_HEADER_LENGTH + peerTableLength;
  for (let i = 0; i < input.entries.length; i++) {
    const len = ribRecordLength(input.entries[i]!, input.peers.length, addPath);
    ribLengths[i] = len;
    total += MRT_HEADER_LENGTH + len;
  }

  const w = new Writer(total);
  const records: Uint8Array[] = [];
  const header = (subtype: number, length: number): void => {
    w.u32(input.timestamp).u16(MrtType.TABLE_DUMP_V2).u16(subtype).u32(length); // RFC 6396 §2
  };

  let start = w.pos;
  header(TableDumpV2Subtype.PEER_INDEX_TABLE, peerTableLength);
  w.u32(input.collectorBgpId).u16(view.length).bytes(view).u16(input.peers.length);
  for (const p of input.peers) {
    const as4 = p.asn > U16_MAX;
    w.u8((p.address.length === 16 ? MrtPeerType.IPV6 : 0) | (as4 ? MrtPeerType.AS4 : 0));
    w.u32(p.bgpId).bytes(p.address);
    if (as4) w.u32(p.asn);
    else w.u16(p.asn);
  }
  records.push(w.buf.subarray(start, w.pos));

  let seq = 0;
  for (let i = 0; i < input.entries.length; i++) {
    const e = input.entries[i]!;
    start = w.pos;
    header(ribSubtype(e.prefix.afi, addPath), ribLengths[i]!);
    w.u32(seq)
      .u8(e.prefix.len)
      .bytes(e.prefix.addr.subarray(0, (e.prefix.len + 7) >> 3));
    w.u16(e.paths.length);
    for (const p of e.paths) {
      w.u16(p.peerIndex).u32(p.originatedTime); // RFC 6396 §4.3.4
      if (addPath) w.u32(p.pathId ?? 0); // RFC 8050 §4
      w.u16(p.attributes.length).bytes(p.attributes);
    }
    records.push(w.buf.subarray(start, w.pos));
    seq = (seq + 1) >>> 0; // RFC 6396 §4.3.2: wraps back to 0
  }
  w.finish();
  return records;
}

/**
 * The abbreviated MP_REACH_NLRI of a TABLE_DUMP_V2 RIB entry (RFC 6396 §4.3.4): only the next-hop
 * length and the next hop (16 bytes, or 32 with a link-local address), no AFI/SAFI, no NLRI.
 */
export function mrtIpv6NextHopAttribute(nextHop: Uint8Array, linkLocal?: Uint8Array): Uint8Array {
  if (nextHop.length !== 16 || (linkLocal !== undefined && linkLocal.length !== 16)) {
    throw new LocalUsageError('MRT: IPv6 next hops must be 16 bytes');
  }
  const nhLen = linkLocal === undefined ? 16 : 32;
  const w = new Writer(3 + 1 + nhLen);
  w.u8(AttrFlag.OPTIONAL)
    .u8(AttrType.MP_REACH_NLRI)
    .u8(1 + nhLen); // RFC 4760 §3: optional, non-transitive
  w.u8(nhLen).bytes(nextHop);
  if (linkLocal !== undefined) w.bytes(linkLocal);
  return w.finish();
}

const FILE_CHUNK = 1 << 20;

/** Writes the dump to `path` (created or truncated), batching records into ~1 MiB writes. */
export async function writeMrtFile(path: string, input: MrtDumpInput): Promise<void> {
  const records = encodeMrtTableDump(input);
  const fh = await open(path, 'w');
  try {
    // All records are consecutive views of one buffer: write it in large slices.
    const first = records[0]!;
    const last = records[records.length - 1]!;
    const all = new Uint8Array(
      first.buffer,
      first.byteOffset,
      last.byteOffset + last.length - first.byteOffset,
    );
    for (let off = 0; off < all.length; off += FILE_CHUNK) {
      const slice = all.subarray(off, Math.min(all.length, off + FILE_CHUNK));
      let done = 0;
      while (done < slice.length) {
        const { bytesWritten } = await fh.write(slice, done, slice.length - done);
        done += bytesWritten;
      }
    }
  } finally {
    await fh.close();
  }
}
