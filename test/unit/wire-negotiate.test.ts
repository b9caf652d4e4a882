/**
 * buildOpen and negotiate: one test per rule (peer AS and AS_TRANS, 4-byte ASNs, BGP Identifier,
 * hold time, families and the implicit IPv4 unicast, ADD-PATH directions, capabilities), plus an
 * end-to-end pass through encodeOpen/decodeOpen between two local configurations.
 */
import { describe, expect, it } from 'vitest';
import { hex, toHex } from '../../src/lib/bytes.ts';
import { LocalUsageError, NotificationError } from '../../src/bgp/wire/errors.ts';
import { buildOpen, negotiate, type LocalSessionOptions } from '../../src/bgp/wire/negotiate.ts';
import { decodeOpen, encodeOpen } from '../../src/bgp/wire/open.ts';
import type { Capability, OpenMessage } from '../../src/bgp/wire/types.ts';

const LOCAL: LocalSessionOptions = {
  localAsn: 65000,
  routerId: 0x0a000001,
  holdTime: 90,
  families: ['ipv4-unicast', 'ipv6-unicast'],
};
const EXPECT = { peerAsn: 65001, localBgpId: 0x0a000001 };

function peer(caps: Capability[], fields: Partial<OpenMessage> = {}): OpenMessage {
  return {
    type: 'open',
    version: 4,
    myAs: 65001,
    holdTime: 180,
    bgpId: 0x0a000002,
    capabilities: [
      { code: 1, afi: 1, safi: 1 },
      { code: 1, afi: 2, safi: 1 },
      { code: 65, asn: 65001 },
      ...caps,
    ],
    otherParams: [],
    ...fields,
  };
}

function refused(f: () => unknown): NotificationError {
  try {
    f();
  } catch (e) {
    if (e instanceof NotificationError) return e;
    throw e;
  }
  throw new Error('expected a NotificationError');
}

describe('buildOpen', () => {
  it('advertises every family, RR, ERR, 4-octet AS and Extended Message by default', () => {
    expect(buildOpen(LOCAL)).toEqual({
      version: 4,
      myAs: 65000,
      holdTime: 90,
      bgpId: 0x0a000001,
      capabilities: [
        { code: 1, afi: 1, safi: 1 },
        { code: 1, afi: 2, safi: 1 },
        { code: 2 },
        { code: 70 },
        { code: 65, asn: 65000 },
        { code: 6 },
      ],
      otherParams: [],
    });
  });

  it('encodes to the exact bytes', () => {
    expect(toHex(encodeOpen(buildOpen(LOCAL)))).toBe(
      toHex(hex`
        ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff  # marker
        00 37         # length 55
        01            # OPEN
        04 fd e8 00 5a 0a 00 00 01  # version 4, AS 65000, hold 90, id 10.0.0.1
        1a            # optional parameters length 26
        02 18         # Capabilities, length 24
        01 04 00 01 00 01  # MP IPv4 unicast
        01 04 00 02 00 01  # MP IPv6 unicast
        02 00              # Route Refresh
        46 00              # Enhanced Route Refresh
        41 04 00 00 fd e8  # 4-octet AS 65000
        06 00              # Extended Message
      `),
    );
  });

  it('puts AS_TRANS in My AS for a 4-byte local AS, and the real AS in the capability', () => {
    const o = buildOpen({ ...LOCAL, localAsn: 4200000000 });
    expect(o.myAs).toBe(23456);
    expect(o.capabilities).toContainEqual({ code: 65, asn: 4200000000 });
    expect(buildOpen({ ...LOCAL, localAsn: 65535 }).myAs).toBe(65535);
  });

  it('honours the optional capabilities', () => {
    const o = buildOpen({
      ...LOCAL,
      families: ['ipv4-unicast', 'ipv4-vpn'],
      routeRefresh: false,
      enhancedRouteRefresh: false,
      extendedMessage: false,
      gracefulRestart: { restartTime: 120, notification: true, forwardingState: true },
      addPath: { 'ipv4-unicast': 'both', 'ipv6-unicast': 'send' },
      fqdn: { hostname: 'vce1', domain: 'example.net' },
    });
    expect(o.capabilities).toEqual([
      { code: 1, afi: 1, safi: 1 },
      { code: 1, afi: 1, safi: 128 },
      { code: 65, asn: 65000 },
      {
        code: 64,
        restartState: false,
        notification: true,
        restartTime: 120,
        families: [
          { afi: 1, safi: 1, forwardingState: true },
          { afi: 1, safi: 128, forwardingState: true },
        ],
      },
      { code: 69, families: [{ afi: 1, safi: 1, sendReceive: 3 }] }, // ipv6-unicast not configured
      { code: 73, hostname: 'vce1', domain: 'example.net' },
    ]);
  });

  it.each([
    ['AS 0', { localAsn: 0 }],
    ['AS 2^32', { localAsn: 2 ** 32 }],
    ['router id 0', { routerId: 0 }],
    ['hold time 2', { holdTime: 2 }],
    ['hold time 65536', { holdTime: 65536 }],
  ])('rejects bad local options: %s', (_name, bad) => {
    expect(() => buildOpen({ ...LOCAL, ...bad })).toThrow(LocalUsageError);
  });
});

describe('negotiate: peer AS (RFC 6793 §4.1, RFC 4271 §6.2)', () => {
  it('takes the AS from the 4-octet AS capability', () => {
    const n = negotiate(LOCAL, peer([], { myAs: 23456, capabilities: [{ code: 65, asn: 4200000001 }] }), {
      peerAsn: 4200000001,
      localBgpId: 1,
    });
    expect(n.peerAsn).toBe(4200000001);
    expect(n.ctx.as4).toBe(true);
  });

  it('falls back to My AS for a 2-octet speaker', () => {
    const n = negotiate(LOCAL, peer([], { capabilities: [] }), EXPECT);
    expect(n.peerAsn).toBe(65001);
    expect(n.ctx.as4).toBe(false);
  });

  it('AS mismatch → (2, 2) Bad Peer AS', () => {
    const e = refused(() => negotiate(LOCAL, peer([]), { ...EXPECT, peerAsn: 65002 }));
    expect([e.errorCode, e.subcode, toHex(e.data)]).toEqual([2, 2, 'fde9']);
  });

  it('AS mismatch in the capability even when My AS matches → (2, 2)', () => {
    const remote = peer([], { capabilities: [{ code: 65, asn: 65002 }] });
    expect(refused(() => negotiate(LOCAL, remote, EXPECT)).subcode).toBe(2);
  });

  it('accepts any of a list, and any AS when none is expected (dynamic neighbours)', () => {
    expect(negotiate(LOCAL, peer([]), { peerAsn: [65005, 65001], localBgpId: 1 }).peerAsn).toBe(65001);
    expect(negotiate(LOCAL, peer([]), { localBgpId: 1 }).peerAsn).toBe(65001);
    expect(refused(() => negotiate(LOCAL, peer([]), { peerAsn: [65005], localBgpId: 1 })).subcode).toBe(2);
  });

  it('AS_TRANS in My AS without the 4-octet AS capability → (2, 2)', () => {
    const remote = peer([], { myAs: 23456, capabilities: [{ code: 1, afi: 1, safi: 1 }] });
    expect(refused(() => negotiate(LOCAL, remote, { localBgpId: 1 })).subcode).toBe(2);
  });

  it('AS 0 → (2, 2) (RFC 7607)', () => {
    expect(
      refused(() => negotiate(LOCAL, peer([], { myAs: 0, capabilities: [] }), { localBgpId: 1 })).subcode,
    ).toBe(2);
    const cap0 = peer([], { capabilities: [{ code: 65, asn: 0 }] });
    expect(refused(() => negotiate(LOCAL, cap0, { localBgpId: 1 })).subcode).toBe(2);
  });
});

describe('negotiate: BGP Identifier (RFC 6286 §2.2)', () => {
  it('same identifier from an internal peer → (2, 3)', () => {
    const remote = peer([], { myAs: 65000, capabilities: [{ code: 65, asn: 65000 }], bgpId: 0x0a000001 });
    const e = refused(() => negotiate(LOCAL, remote, { peerAsn: 65000, localBgpId: 0x0a000001 }));
    expect([e.errorCode, e.subcode]).toEqual([2, 3]);
  });

  it('same identifier from an external peer is allowed', () => {
    const n = negotiate(LOCAL, peer([], { bgpId: 0x0a000001 }), EXPECT);
    expect(n.peerBgpId).toBe(0x0a000001);
    expect(n.ctx.ebgp).toBe(true);
  });
});

describe('negotiate: hold time (RFC 4271 §4.2)', () => {
  it.each([
    [90, 180, 90, 30],
    [90, 30, 30, 10],
    [90, 0, 0, 0],
    [0, 180, 0, 0],
    [90, 3, 3, 1],
    [90, 4, 4, 1],
    [10, 65535, 10, 3],
  ])('local %i, peer %i → hold %i, keepalive %i', (local, remote, hold, keepalive) => {
    const n = negotiate({ ...LOCAL, holdTime: local }, peer([], { holdTime: remote }), EXPECT);
    expect([n.holdTime, n.keepaliveTime]).toEqual([hold, keepalive]);
  });

  it('a peer hold time of 1 or 2 → (2, 6)', () => {
    expect(refused(() => negotiate(LOCAL, peer([], { holdTime: 2 }), EXPECT)).subcode).toBe(6);
  });
});

describe('negotiate: families (RFC 4760 §8)', () => {
  it('is the intersection of both MP capability sets', () => {
    const local = { ...LOCAL, families: ['ipv4-unicast', 'ipv6-unicast', 'ipv4-vpn'] as const };
    const remote = peer([], {
      capabilities: [
        { code: 1, afi: 2, safi: 1 },
        { code: 1, afi: 1, safi: 128 },
        { code: 1, afi: 25, safi: 70 }, // L2VPN EVPN: not ours
        { code: 65, asn: 65001 },
      ],
    });
    expect(
      [...negotiate({ ...local, families: [...local.families] }, remote, EXPECT).families].sort(),
    ).toEqual(['ipv4-vpn', 'ipv6-unicast']);
  });

  it('a peer with no MP capability speaks IPv4 unicast only', () => {
    const n = negotiate(LOCAL, peer([], { capabilities: [{ code: 65, asn: 65001 }] }), EXPECT);
    expect([...n.families]).toEqual(['ipv4-unicast']);
  });

  it('no family in common → (2, 7) Unsupported Capability with our MP capabilities (RFC 5492 §5)', () => {
    const remote = peer([], { capabilities: [{ code: 1, afi: 1, safi: 128 }] });
    const e = refused(() => negotiate(LOCAL, remote, EXPECT));
    expect([e.errorCode, e.subcode]).toEqual([2, 7]);
    expect(toHex(e.data)).toBe('010400010001' + '010400020001');
  });
});

describe('negotiate: ADD-PATH (RFC 7911 §4)', () => {
  const addPathPeer = (ipv4: 1 | 2 | 3, ipv6: 1 | 2 | 3) =>
    peer([
      {
        code: 69,
        families: [
          { afi: 1, safi: 1, sendReceive: ipv4 },
          { afi: 2, safi: 1, sendReceive: ipv6 },
        ],
      },
    ]);

  it.each([
    ['receive', 2, true, false],
    ['receive', 1, false, false],
    ['receive', 3, true, false],
    ['send', 1, false, true],
    ['send', 2, false, false],
    ['send', 3, false, true],
    ['both', 3, true, true],
    ['both', 2, true, false],
    ['both', 1, false, true],
  ] as const)('we %s, peer %i → rx %s, tx %s', (mode, theirs, rx, tx) => {
    const n = negotiate({ ...LOCAL, addPath: { 'ipv4-unicast': mode } }, addPathPeer(theirs, 3), EXPECT);
    expect(n.ctx.addPathRx.has('ipv4-unicast')).toBe(rx);
    expect(n.ctx.addPathTx.has('ipv4-unicast')).toBe(tx);
    expect(n.ctx.addPathRx.has('ipv6-unicast') || n.ctx.addPathTx.has('ipv6-unicast')).toBe(false);
  });

  it('nothing without the peer capability', () => {
    const n = negotiate({ ...LOCAL, addPath: { 'ipv4-unicast': 'both' } }, peer([]), EXPECT);
    expect(n.ctx.addPathRx.size + n.ctx.addPathTx.size).toBe(0);
  });
});

describe('negotiate: other capabilities', () => {
  it('needs both sides for Route Refresh, Enhanced RR and Extended Message', () => {
    const none = negotiate(LOCAL, peer([]), EXPECT);
    expect([none.routeRefresh, none.enhancedRouteRefresh, none.ctx.extendedMessage]).toEqual([
      false,
      false,
      false,
    ]);
    const all = negotiate(LOCAL, peer([{ code: 2 }, { code: 70 }, { code: 6 }]), EXPECT);
    expect([all.routeRefresh, all.enhancedRouteRefresh, all.ctx.extendedMessage]).toEqual([true, true, true]);
    const off = negotiate(
      { ...LOCAL, routeRefresh: false, extendedMessage: false },
      peer([{ code: 2 }, { code: 70 }, { code: 6 }]),
      EXPECT,
    );
    expect([off.routeRefresh, off.enhancedRouteRefresh, off.ctx.extendedMessage]).toEqual([
      false,
      false,
      false,
    ]);
    // RFC 7313 §3.1: Enhanced Route Refresh without Route Refresh is not usable
    expect(negotiate(LOCAL, peer([{ code: 70 }]), EXPECT).enhancedRouteRefresh).toBe(false);
    // the Cisco pre-standard code 128 alone does not count
    expect(negotiate(LOCAL, peer([{ code: 128, value: hex``, unknown: true }]), EXPECT).routeRefresh).toBe(
      false,
    );
  });

  it('reports the peer graceful restart state for negotiated families', () => {
    const n = negotiate(
      LOCAL,
      peer([
        {
          code: 64,
          restartState: true,
          notification: true,
          restartTime: 120,
          families: [
            { afi: 1, safi: 1, forwardingState: true },
            { afi: 1, safi: 128, forwardingState: true }, // not negotiated
          ],
        },
      ]),
      EXPECT,
    );
    expect(n.peerGracefulRestart).toEqual({
      restartTime: 120,
      restartState: true,
      notification: true,
      families: new Map([['ipv4-unicast', { forwardingState: true }]]),
    });
    expect(negotiate(LOCAL, peer([]), EXPECT).peerGracefulRestart).toBeUndefined();
  });

  it('eBGP from the AS numbers unless overridden', () => {
    const ibgp = peer([], { myAs: 65000, capabilities: [{ code: 65, asn: 65000 }] });
    expect(negotiate(LOCAL, ibgp, { localBgpId: 1 }).ctx.ebgp).toBe(false);
    expect(negotiate(LOCAL, peer([]), EXPECT).ctx.ebgp).toBe(true);
    expect(negotiate(LOCAL, peer([]), { ...EXPECT, ebgp: false }).ctx.ebgp).toBe(false);
  });

  it('an unknown optional parameter → (2, 4) Unsupported Optional Parameter (RFC 4271 §6.2)', () => {
    const e = refused(() =>
      negotiate(LOCAL, peer([], { otherParams: [{ type: 1, value: hex`ab` }] }), EXPECT),
    );
    expect([e.errorCode, e.subcode, toHex(e.data)]).toEqual([2, 4, '0101ab']);
  });

  it('keeps the peer capabilities, unknown ones included', () => {
    const remote = peer([{ code: 9, value: hex`01`, unknown: true }]);
    expect(negotiate(LOCAL, remote, EXPECT).peerCapabilities).toBe(remote.capabilities);
  });
});

describe('end to end: buildOpen → encodeOpen → decodeOpen → negotiate', () => {
  it('agrees on both sides', () => {
    const a: LocalSessionOptions = {
      ...LOCAL,
      addPath: { 'ipv4-unicast': 'receive' },
      gracefulRestart: { restartTime: 90 },
    };
    const b: LocalSessionOptions = {
      localAsn: 4200000000,
      routerId: 0x0a000002,
      holdTime: 30,
      families: ['ipv4-unicast', 'ipv4-vpn'],
      addPath: { 'ipv4-unicast': 'send' },
    };
    const openA = decodeOpen(encodeOpen(buildOpen(a)).subarray(19));
    const openB = decodeOpen(encodeOpen(buildOpen(b)).subarray(19));
    const atA = negotiate(a, openB, { peerAsn: 4200000000, localBgpId: a.routerId });
    const atB = negotiate(b, openA, { peerAsn: 65000, localBgpId: b.routerId });
    expect([atA.peerAsn, atB.peerAsn]).toEqual([4200000000, 65000]);
    expect([atA.holdTime, atB.holdTime, atA.keepaliveTime]).toEqual([30, 30, 10]);
    expect([...atA.families]).toEqual(['ipv4-unicast']);
    expect([...atB.families]).toEqual(['ipv4-unicast']);
    expect([...atA.ctx.addPathRx, ...atB.ctx.addPathTx]).toEqual(['ipv4-unicast', 'ipv4-unicast']);
    expect(atA.ctx.addPathTx.size + atB.ctx.addPathRx.size).toBe(0);
    expect(atA.ctx.as4 && atB.ctx.as4 && atA.ctx.extendedMessage && atB.enhancedRouteRefresh).toBe(true);
    expect(atB.peerGracefulRestart?.restartTime).toBe(90);
  });
});
