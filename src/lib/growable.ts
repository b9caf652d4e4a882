/** Growable typed arrays for the RIB hot path (no per-element objects). */

export function growInt32(a: Int32Array<ArrayBuffer>, min: number, fill = 0): Int32Array<ArrayBuffer> {
  if (a.length >= min) return a;
  let n = Math.max(16, a.length);
  while (n < min) n *= 2;
  const b = new Int32Array(n);
  b.set(a);
  if (fill !== 0) b.fill(fill, a.length);
  return b;
}

export function growUint32(a: Uint32Array<ArrayBuffer>, min: number): Uint32Array<ArrayBuffer> {
  if (a.length >= min) return a;
  let n = Math.max(16, a.length);
  while (n < min) n *= 2;
  const b = new Uint32Array(n);
  b.set(a);
  return b;
}

export function growUint8(a: Uint8Array<ArrayBuffer>, min: number): Uint8Array<ArrayBuffer> {
  if (a.length >= min) return a;
  let n = Math.max(16, a.length);
  while (n < min) n *= 2;
  const b = new Uint8Array(n);
  b.set(a);
  return b;
}

/** An append-only list of int32 values. */
export class IntList {
  data = new Int32Array(16);
  length = 0;
  /** Read cursor for consumers that process the list in several turns. */
  pos = 0;
  push(v: number): void {
    if (this.length === this.data.length) this.data = growInt32(this.data, this.length + 1);
    this.data[this.length++] = v;
  }
  clear(): void {
    this.length = 0;
    this.pos = 0;
  }
}
