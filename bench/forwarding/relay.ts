/**
 * The floor of Node's dgram I/O, for the forwarding benchmark: a VXLAN relay between two VTEPs
 * with no forwarding logic at all. Each datagram from VTEP A gets B's VNI, B's inner destination
 * MAC and the gateway's source MAC written in place and is sent to B (and the other way). The
 * inner IP packet is not touched (no TTL, no lookup). The VMs reach the gateway through static
 * neighbour entries (nothing here answers ARP).
 *
 * The socket usage copies the vCE's userspace driver: one socket bound to the VXLAN port,
 * 4 MiB buffers, `Date.now()` per datagram, `send(buf, off, len, port, address)` on the unconnected
 * socket. `--connected` sends through one connected socket per destination instead (no address
 * lookup per datagram), to measure that change alone.
 *
 *   node --import tsx bench/forwarding/relay.ts --port 4789 --a ADDR --b ADDR --vni-a 101
 *     --vni-b 102 --mac-a MAC --mac-b MAC --gw-mac MAC [--connected]
 */
import dgram from 'node:dgram';
import { parseArgs } from 'node:util';

const { values: v } = parseArgs({
  options: {
    port: { type: 'string', default: '4789' },
    a: { type: 'string' },
    b: { type: 'string' },
    'vni-a': { type: 'string' },
    'vni-b': { type: 'string' },
    'mac-a': { type: 'string' },
    'mac-b': { type: 'string' },
    'gw-mac': { type: 'string' },
    connected: { type: 'boolean', default: false },
  },
});

function need(name: string, s: string | undefined): string {
  if (s === undefined) throw new Error(`--${name} is required`);
  return s;
}
const mac = (s: string): Buffer => Buffer.from(s.split(':').map((h) => parseInt(h, 16)));

const port = Number(v.port);
const sides = [
  { addr: need('a', v.a), vni: Number(need('vni-a', v['vni-a'])), mac: mac(need('mac-a', v['mac-a'])) },
  { addr: need('b', v.b), vni: Number(need('vni-b', v['vni-b'])), mac: mac(need('mac-b', v['mac-b'])) },
] as const;
const gw = mac(need('gw-mac', v['gw-mac']));

const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
const out: dgram.Socket[] = [];
let forwarded = 0;
let last = 0;

sock.on('message', (msg, rinfo) => {
  last = Date.now(); // the vCE driver reads the clock per datagram too
  const to = rinfo.address === sides[0].addr ? 1 : rinfo.address === sides[1].addr ? 0 : -1;
  if (to < 0 || msg.length < 8 + 14 + 20) return;
  const d = sides[to as 0 | 1];
  msg[4] = d.vni >>> 16;
  msg[5] = (d.vni >>> 8) & 0xff;
  msg[6] = d.vni & 0xff;
  msg.set(d.mac, 8);
  msg.set(gw, 14);
  forwarded++;
  if (v.connected) out[to]!.send(msg, 0, msg.length);
  else sock.send(msg, 0, msg.length, port, d.addr);
});

await new Promise<void>((r) => sock.bind(port, '0.0.0.0', () => r()));
if (v.connected)
  for (const s of sides) {
    const o = dgram.createSocket({ type: 'udp4', sendBufferSize: 4 << 20 });
    await new Promise<void>((r) => o.bind(0, '0.0.0.0', () => r()));
    await new Promise<void>((r) => o.connect(port, s.addr, () => r()));
    out.push(o);
  }

const stop = (): void => {
  process.stderr.write(`relay: ${forwarded} datagrams forwarded (last at ${last})\n`);
  sock.close();
  for (const o of out) o.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
