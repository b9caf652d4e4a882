/**
 * Byte Reader/Writer over Uint8Array views (no copies on read; one allocation on write).
 * Reader methods throw `ShortReadError` (a typed error) when the input ends early, so codecs
 * can translate it into the protocol's own error for the field they were reading.
 */

export class ShortReadError extends Error {
  override readonly name = 'ShortReadError';
  readonly code = 'SHORT_READ';
  constructor(
    readonly offset: number,
    readonly wanted: number,
    readonly available: number,
  ) {
    super(`need ${wanted} byte(s) at offset ${offset}, only ${available} available`);
  }
}

export class Reader {
  private readonly view: DataView;
  pos = 0;
  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  get remaining(): number {
    return this.buf.length - this.pos;
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new ShortReadError(this.pos, n, this.buf.length - this.pos);
  }
  u8(): number {
    this.need(1);
    return this.view.getUint8(this.pos++);
  }
  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }
  /** A view (not a copy) of the next n bytes. */
  bytes(n: number): Uint8Array {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  rest(): Uint8Array {
    return this.bytes(this.remaining);
  }
}

export class Writer {
  readonly buf: Uint8Array;
  private readonly view: DataView;
  pos = 0;
  constructor(size: number) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }
  u8(v: number): this {
    this.view.setUint8(this.pos++, v);
    return this;
  }
  u16(v: number): this {
    this.view.setUint16(this.pos, v);
    this.pos += 2;
    return this;
  }
  u32(v: number): this {
    this.view.setUint32(this.pos, v >>> 0);
    this.pos += 4;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }
  /** The written bytes; asserts the precomputed size was exact. */
  finish(): Uint8Array {
    if (this.pos !== this.buf.length) {
      throw new Error(`encoder wrote ${this.pos} bytes into a buffer of ${this.buf.length}`);
    }
    return this.buf;
  }
}

/** Annotated hex for test vectors: whitespace ignored, `# comment` to end of line. */
export function hex(strings: TemplateStringsArray | string, ...values: unknown[]): Uint8Array {
  const text =
    typeof strings === 'string'
      ? strings
      : strings.reduce((a, s, i) => a + s + (i < values.length ? String(values[i]) : ''), '');
  const clean = text
    .split('\n')
    .map((l) => l.replace(/#.*$/, ''))
    .join('')
    .replace(/\s+/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) throw new Error(`bad hex: ${clean}`);
  return Uint8Array.from(Buffer.from(clean, 'hex'));
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A copy of `buf[start, end)`. `Buffer#slice` returns a view (unlike `Uint8Array#slice`): this
 * is the one to use on buffers that may be Node Buffers when the bytes must outlive them.
 */
export function copyOut(buf: Uint8Array, start: number, end: number): Uint8Array {
  return new Uint8Array(buf.subarray(start, end));
}
