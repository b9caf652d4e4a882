/**
 * Snapshot of the speaker's unicast RIBs as an MRT TABLE_DUMP_V2 file (RFC 6396): every path of
 * every IPv4 and IPv6 unicast destination, attributes encoded with 4-octet AS numbers.
 */
import { AFI_IPV4 } from '../lib/ip.ts';
import { encodeAttributes } from './wire/attributes.ts';
import { DEFAULT_CODEC_CONTEXT } from './wire/types.ts';
import {
  mrtIpv6NextHopAttribute,
  writeMrtFile,
  type MrtDumpInput,
  type MrtPath,
  type MrtPeer,
  type MrtRibEntry,
} from './mrt.ts';
import type { Speaker } from './speaker.ts';

const AS4 = { ...DEFAULT_CODEC_CONTEXT, as4: true, ebgp: false };

export function mrtSnapshot(sp: Speaker): MrtDumpInput {
  const peers: MrtPeer[] = [{ bgpId: sp.cfg.routerId, address: new Uint8Array(4), asn: sp.cfg.asn }];
  const peerIndex = new Map<number, number>([[0, 0]]);
  for (const p of sp.peerList()) {
    peerIndex.set(p.index, peers.length);
    peers.push({ bgpId: p.negotiated?.peerBgpId ?? 0, address: p.addr, asn: p.cfg.peerAsn });
  }
  const now = Math.floor(Date.now() / 1000);
  const entries: MrtRibEntry[] = [];
  const encoded = new Map<number, Uint8Array>();
  for (const family of ['ipv4-unicast', 'ipv6-unicast'] as const) {
    const rib = sp.ribs.get(family);
    if (rib === undefined) continue;
    for (let d = 0; d < rib.destCount; d++) {
      const paths: MrtPath[] = [];
      for (let p = rib.dHead[d]!; p >= 0; p = rib.pNext[p]!) {
        const id = rib.pAttr[p]!;
        if (id < 0) continue;
        let bytes = encoded.get(id);
        if (bytes === undefined) {
          const a = sp.attrs.get(id).attrs;
          if (family === 'ipv4-unicast') bytes = encodeAttributes(a, AS4);
          else {
            const attrs = encodeAttributes(Object.assign({}, a, { nextHop: undefined }), AS4);
            const mp = mrtIpv6NextHopAttribute(a.nextHop ?? new Uint8Array(16), a.linkLocalNextHop);
            bytes = new Uint8Array(attrs.length + mp.length);
            bytes.set(mp, 0);
            bytes.set(attrs, mp.length);
          }
          encoded.set(id, bytes);
        }
        paths.push({ peerIndex: peerIndex.get(rib.pPeer[p]!) ?? 0, originatedTime: now, attributes: bytes });
      }
      if (paths.length > 0) entries.push({ prefix: rib.nlriOf(d).prefix, paths });
    }
  }
  entries.sort((a, b) => (a.prefix.afi === AFI_IPV4 ? 0 : 1) - (b.prefix.afi === AFI_IPV4 ? 0 : 1));
  return { collectorBgpId: sp.cfg.routerId, viewName: 'vce', peers, entries, timestamp: now };
}

export async function dumpRib(sp: Speaker, file: string): Promise<{ entries: number }> {
  const snap = mrtSnapshot(sp);
  await writeMrtFile(file, snap);
  return { entries: snap.entries.length };
}
