import { WS_OPCODE, frameHeaderLength, writeFrameHeader } from '../ws-frame.js';

/**
 * One receive buffer per plain-TCP console connection, reused from read to read.
 *
 * By default Node gives every socket read a fresh 64 KiB ArrayBuffer. A console relaying a few
 * hundred MB/s therefore allocates thousands of them per second, and V8 answers that much external
 * memory with marking work over the whole heap: in a CPU profile of vncgate relaying 256 KiB
 * updates, the garbage collector cost more than the writes themselves (docs/performance-notes.md). With
 * `onread`, libuv reads into a buffer we supply; we hand it back for the next read unless the
 * last chunk may still be referenced (a write that did not complete at once keeps it).
 *
 * The rule is conservative: every chunk is assumed kept ("lent") until its consumer says it is
 * not (`reclaim()`), right after the synchronous write that consumed it completed. A consumer
 * that does nothing (the RFB handshake, `exchangeInit`) therefore gets a fresh buffer per read,
 * which is exactly Node's default behaviour.
 *
 * The size adapts, because Node holds the next read's buffer for as long as the connection is
 * quiet: it starts at 256 bytes, doubles after every read that
 * filled it, up to 256 KiB, and drops back after a run of small reads. Handshakes, keystrokes and
 * idle consoles stay small; a console streaming updates reads up to 256 KiB at a time into one
 * buffer. Four times Node's 64 KiB: each read becomes one WebSocket frame (over wss, one TLS
 * write), and a quarter as many reads, frames and writes per megabyte relayed measured 1.2-1.3x
 * the throughput over wss and ws (docs/performance-notes.md); 512 KiB measured no better.
 *
 * Each buffer keeps HEADROOM spare bytes in front of what Node reads into, so that the relay can
 * write a WebSocket frame header there (`framed()`) and send header and payload as one buffer. Two
 * buffers written together (what `ws` does) cost a copy of the whole payload over TLS, where Node
 * joins them before encrypting.
 */
export class ReadBuffer {
  /** What an idle console holds for its next read. */
  static readonly MIN = 256;
  /** The largest read: four times Node's own 64 KiB. */
  static readonly MAX = 256 * 1024;
  /** Room for the longest header of an unmasked server frame (RFC 6455 §5.2): 2 bytes and a 64-bit length. */
  static readonly HEADROOM = 10;
  /** The size of the next buffer: doubled after a read that filled one, back to MIN after a run of small reads. */
  #size = ReadBuffer.MIN;
  #buf: Buffer | null = null;
  #lent = false;
  #smallReads = 0;
  /** Reads served by the current buffer again / by a new one (for tests and benchmarks). */
  reused = 0;
  allocated = 0;

  /**
   * The buffer the next read goes into. Node asks for it right after each read (and holds it
   * until the next one), so an idle console holds only a small one.
   */
  next(): Buffer {
    const buf = this.#buf;
    if (buf !== null && !this.#lent && buf.length === this.#size) {
      this.reused++;
      return buf;
    }
    this.#lent = false;
    this.allocated++;
    // Never a slice of the shared pool: a held slice would pin the whole 8 KiB slab around it.
    return (this.#buf = Buffer.allocUnsafeSlow(ReadBuffer.HEADROOM + this.#size).subarray(ReadBuffer.HEADROOM));
  }

  /**
   * `chunk`, the last read (its first bytes, as Node reports them), as one unmasked binary
   * WebSocket frame with FIN set: the header is written into the headroom right before it, so the
   * frame is the same memory, not a copy. null for any other buffer (a handshake leftover, say).
   */
  framed(chunk: Buffer): Buffer | null {
    const buf = this.#buf;
    if (buf === null || chunk.buffer !== buf.buffer || chunk.byteOffset !== buf.byteOffset) return null;
    const n = chunk.length;
    const h = frameHeaderLength(n);
    const frame = Buffer.from(buf.buffer, buf.byteOffset - h, h + n);
    writeFrameHeader(frame, 0, WS_OPCODE.binary, false, n);
    return frame;
  }

  /** A read of `n` bytes into the current buffer is being handed to a consumer that may keep it. */
  lend(n: number): void {
    this.#lent = true;
    const size = this.#buf?.length ?? this.#size;
    if (n === size) {
      this.#smallReads = 0;
      this.#size = Math.min(ReadBuffer.MAX, size * 2);
    } else if (n < size / 4 && size > ReadBuffer.MIN && ++this.#smallReads >= 4) {
      this.#smallReads = 0;
      this.#size = ReadBuffer.MIN;
    }
  }

  /** The consumer of the last chunk holds no reference to it any more: the buffer can be reused. */
  reclaim(): void {
    this.#lent = false;
  }
}
