// Naive longest-prefix match for the differential tests of src/dataplane/fib: the prefixes in a
// Map (keyed by "address/length" text, for set/delete/get) and a lookup that scans every one of
// them linearly. Obviously correct, deliberately slow.

export interface NaiveEntry<A> {
  addr: A;
  len: number;
  value: number;
}

/** IPv4, addresses as unsigned 32-bit numbers. */
export class NaiveLpm4 {
  private readonly map = new Map<string, NaiveEntry<number>>();

  get list(): NaiveEntry<number>[] {
    return [...this.map.values()];
  }

  static mask(addr: number, len: number): number {
    return len === 0 ? 0 : (addr & (-1 << (32 - len))) >>> 0;
  }

  set(addr: number, len: number, value: number): void {
    const a = NaiveLpm4.mask(addr, len);
    this.map.set(`${a}/${len}`, { addr: a, len, value });
  }

  delete(addr: number, len: number): boolean {
    return this.map.delete(`${NaiveLpm4.mask(addr, len)}/${len}`);
  }

  get(addr: number, len: number): number {
    return this.map.get(`${NaiveLpm4.mask(addr, len)}/${len}`)?.value ?? 0;
  }

  lookup(addr: number): number {
    let best = -1;
    let value = 0;
    for (const e of this.map.values()) {
      if (e.len > best && NaiveLpm4.mask(addr, e.len) === e.addr) {
        best = e.len;
        value = e.value;
      }
    }
    return value;
  }
}

/** IPv6, addresses as 16-byte arrays. */
export class NaiveLpm6 {
  private readonly map = new Map<string, NaiveEntry<Uint8Array>>();

  get list(): NaiveEntry<Uint8Array>[] {
    return [...this.map.values()];
  }

  private static key(addr: Uint8Array, len: number): string {
    return `${Buffer.from(NaiveLpm6.mask(addr, len)).toString('hex')}/${len}`;
  }

  static mask(addr: Uint8Array, len: number): Uint8Array {
    const out = new Uint8Array(16);
    for (let i = 0; i < 16; i++) {
      const bits = Math.max(0, Math.min(8, len - i * 8));
      out[i] = addr[i]! & ((0xff00 >> bits) & 0xff);
    }
    return out;
  }

  /** Does `addr` (16 bytes at `off`) lie in prefix/len? */
  static contains(prefix: Uint8Array, len: number, addr: Uint8Array, off = 0): boolean {
    for (let i = 0; i < 16; i++) {
      const bits = Math.max(0, Math.min(8, len - i * 8));
      if (bits === 0) return true;
      const m = (0xff00 >> bits) & 0xff;
      if ((addr[off + i]! & m) !== prefix[i]) return false;
    }
    return true;
  }

  set(addr: Uint8Array, len: number, value: number): void {
    this.map.set(NaiveLpm6.key(addr, len), { addr: NaiveLpm6.mask(addr, len), len, value });
  }

  delete(addr: Uint8Array, len: number): boolean {
    return this.map.delete(NaiveLpm6.key(addr, len));
  }

  get(addr: Uint8Array, len: number): number {
    return this.map.get(NaiveLpm6.key(addr, len))?.value ?? 0;
  }

  lookup(buf: Uint8Array, off = 0): number {
    let best = -1;
    let value = 0;
    for (const e of this.map.values()) {
      if (e.len > best && NaiveLpm6.contains(e.addr, e.len, buf, off)) {
        best = e.len;
        value = e.value;
      }
    }
    return value;
  }
}
