/**
 * One receive buffer per plain-TCP console connection, reused from read to read.
 *
 * By default Node gives every socket read a fresh 64 KiB ArrayBuffer. A console relaying a few
 * hundred MB/s therefore allocates thousands of them per second, and V8 answers that much external
 * memory with marking work over the whole heap: in a CPU profile of vncgate relaying 256 KiB
 * updates, the garbage collector cost more than the writes themselves (BENCHMARKS.md). With
 * `onread`, libuv reads into a buffer we supply; we hand it back for the next read unless the
 * last chunk may still be referenced (a write that did not complete at once keeps it).
 *
 * The rule is conservative: every chunk is assumed kept ("lent") until its consumer says it is
 * not (`reclaim()`), right after the synchronous write that consumed it completed. A consumer
 * that does nothing (the RFB handshake, `exchangeInit`) therefore gets a fresh buffer per read,
 * which is exactly Node's default behaviour.
 */
export class ReadBuffer {
  readonly #size: number;
  #buf: Buffer;
  #lent = false;
  /** Reads served by the current buffer again / by a new one (for tests and benchmarks). */
  reused = 0;
  allocated = 1;

  constructor(size = 64 * 1024) {
    this.#size = size;
    this.#buf = Buffer.allocUnsafe(size);
  }

  /** The buffer the next read goes into. */
  next(): Buffer {
    if (this.#lent) {
      this.#buf = Buffer.allocUnsafe(this.#size);
      this.#lent = false;
      this.allocated++;
    } else {
      this.reused++;
    }
    return this.#buf;
  }

  /** A chunk of the current buffer is being handed to a consumer that may keep it. */
  lend(): void {
    this.#lent = true;
  }

  /** The consumer of the last chunk holds no reference to it any more: the buffer can be reused. */
  reclaim(): void {
    this.#lent = false;
  }
}
