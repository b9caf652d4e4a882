/**
 * Copies small byte strings into shared 64 KiB chunks and returns views. One standalone
 * ArrayBuffer per copy costs a few hundred bytes of bookkeeping; a view into a shared chunk costs
 * only the view. A chunk is garbage-collected when no view into it is left, so memory follows
 * what is live, at chunk granularity.
 */
const CHUNK = 64 * 1024;

export class ByteArena {
  private chunk = new Uint8Array(CHUNK);
  private off = 0;

  copy(src: Uint8Array): Uint8Array {
    const n = src.length;
    if (n > CHUNK / 4) return new Uint8Array(src); // large: its own buffer
    if (this.off + n > CHUNK) {
      this.chunk = new Uint8Array(CHUNK);
      this.off = 0;
    }
    const view = this.chunk.subarray(this.off, this.off + n);
    view.set(src);
    this.off += n;
    return view;
  }
}
