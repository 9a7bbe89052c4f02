/** An empty queue holding a buffer larger than this gives it back on its next small push. */
const SHRINK_ABOVE_BYTES = 64 * 1024;

/**
 * Tiny read/write helpers for handshake wire code, so the state machines never compute offsets by
 * hand. The queue keeps one contiguous buffer with spare room at its end: a push copies only the
 * new chunk, and the unread bytes move (or the buffer grows, doubling) only when that room runs
 * out, so a peer trickling bytes one at a time costs linear work, not quadratic (issue 15's fuzzer:
 * 64 KiB sent byte by byte to a handshake awaiting its verdict took 330 ms of copying).
 */
export class ByteQueue {
  #buf: Buffer = Buffer.alloc(0);
  #pos = 0;
  #end = 0;

  get length(): number {
    return this.#end - this.#pos;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    const length = this.length;
    if (length === 0) {
      // Empty: start over at the front, and give back a buffer one large message grew (a
      // long-lived queue, such as the synthetic server's, should not keep it).
      this.#pos = this.#end = 0;
      if (this.#buf.length > SHRINK_ABOVE_BYTES && chunk.length <= SHRINK_ABOVE_BYTES) this.#buf = Buffer.alloc(0);
    }
    if (this.#end + chunk.length > this.#buf.length) {
      const needed = length + chunk.length;
      // Compact in place when at least half the buffer is free; otherwise grow by doubling.
      const target = needed <= this.#buf.length / 2 ? this.#buf : Buffer.allocUnsafe(Math.max(needed, 2 * this.#buf.length, 64));
      this.#buf.copy(target, 0, this.#pos, this.#end);
      this.#buf = target;
      this.#pos = 0;
      this.#end = length;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  has(n: number): boolean {
    return this.length >= n;
  }

  peekU8(offset = 0): number {
    this.#need(offset + 1);
    return this.#buf.readUInt8(this.#pos + offset);
  }

  peekU32(offset = 0): number {
    this.#need(offset + 4);
    return this.#buf.readUInt32BE(this.#pos + offset);
  }

  u8(): number {
    const v = this.peekU8();
    this.#pos += 1;
    return v;
  }

  u16(): number {
    this.#need(2);
    const v = this.#buf.readUInt16BE(this.#pos);
    this.#pos += 2;
    return v;
  }

  u32(): number {
    const v = this.peekU32();
    this.#pos += 4;
    return v;
  }

  /** Copies n bytes out (the result does not alias the queue). */
  bytes(n: number): Buffer {
    this.#need(n);
    const out = Buffer.from(this.#buf.subarray(this.#pos, this.#pos + n));
    this.#pos += n;
    return out;
  }

  skip(n: number): void {
    this.#need(n);
    this.#pos += n;
  }

  /** Removes and returns everything buffered. */
  takeAll(): Buffer {
    const out = Buffer.from(this.#buf.subarray(this.#pos, this.#end));
    this.#buf = Buffer.alloc(0);
    this.#pos = 0;
    this.#end = 0;
    return out;
  }

  #need(n: number): void {
    // Callers check has() first; reaching this is a bug in our own state code.
    if (this.length < n) throw new RangeError(`ByteQueue: need ${n} bytes, have ${this.length}`);
  }
}

export class ByteWriter {
  readonly #parts: Buffer[] = [];

  u8(v: number): this {
    const b = Buffer.allocUnsafe(1);
    b.writeUInt8(v);
    this.#parts.push(b);
    return this;
  }

  u16(v: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeUInt16BE(v);
    this.#parts.push(b);
    return this;
  }

  u32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(v);
    this.#parts.push(b);
    return this;
  }

  bytes(b: Uint8Array): this {
    this.#parts.push(Buffer.from(b));
    return this;
  }

  /** A U32 length followed by the bytes (RFB "string"). */
  string(b: Uint8Array): this {
    return this.u32(b.length).bytes(b);
  }

  finish(): Buffer {
    return Buffer.concat(this.#parts);
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * A read-only window on bytes held elsewhere (an input chunk, or a small buffer of held bytes), for
 * framing messages where they lie instead of copying them into a queue. Re-pointed with reset() for
 * each message, so reading through it allocates nothing.
 */
export class ByteView {
  #buf: Buffer = EMPTY;
  #base = 0;
  #length = 0;

  reset(buf: Buffer, base: number, length: number): this {
    if (base < 0 || length < 0 || base + length > buf.length) throw new RangeError(`ByteView: window ${base}+${length} outside ${buf.length} bytes`);
    this.#buf = buf;
    this.#base = base;
    this.#length = length;
    return this;
  }

  get length(): number {
    return this.#length;
  }

  has(n: number): boolean {
    return this.#length >= n;
  }

  u8(offset: number): number {
    this.#need(offset + 1);
    return this.#buf.readUInt8(this.#base + offset);
  }

  u16(offset: number): number {
    this.#need(offset + 2);
    return this.#buf.readUInt16BE(this.#base + offset);
  }

  u32(offset: number): number {
    this.#need(offset + 4);
    return this.#buf.readUInt32BE(this.#base + offset);
  }

  s32(offset: number): number {
    this.#need(offset + 4);
    return this.#buf.readInt32BE(this.#base + offset);
  }

  #need(n: number): void {
    // Callers check has() first; reaching this is a bug in our own framing code.
    if (this.#length < n) throw new RangeError(`ByteView: need ${n} bytes, have ${this.#length}`);
  }
}
