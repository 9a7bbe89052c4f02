import type { VncgateError } from '../errors.js';
import { ByteView } from './byte-queue.js';
import { CLIENT_MESSAGE_KINDS, ClientMessageFramer, FAILED, KIND, MAX_HEAD_BYTES, VERDICT, type ClientMessageKind } from './client-message-framing.js';
import { resolveClientMessagePolicy, type ClientMessagePolicy, type ClientMessageRules } from './client-message-policy.js';

export { CLIENT_MESSAGE_KINDS, type ClientMessageKind } from './client-message-framing.js';

export type ClientMessageFilterStats = {
  forwardedBytes: number;
  droppedBytes: number;
  /** Whole messages dropped, by kind (every kind present, most 0). */
  dropped: Record<ClientMessageKind, number>;
  /** Of the clipboard messages dropped, those dropped for their size alone. */
  clipboardOversized: number;
  /** SetEncodings messages forwarded with encodings removed. */
  encodingsRewritten: number;
};

/**
 * Enforces a session's view-only and clipboard policy on the browser-to-console byte stream after
 * ClientInit (§7.5), in the pipe, where the browser cannot switch it off (noVNC's `view_only=1` is
 * a hint in the URL). Sans-I/O: feed chunks in any cut to receive(); it calls `forward` with what
 * the console may see and counts what it dropped.
 *
 * Relay hot path: messages are framed where they lie. A chunk of whole messages that all pass is
 * forwarded as the very same Buffer; a chunk with drops as subarrays of it; only a message head
 * split across chunks (at most MAX_HEAD_BYTES) is copied, and a dropped message of any length is
 * skipped as it streams by, never buffered. Framing allocates nothing.
 *
 * RFB cannot resynchronise: message lengths follow from their types, so a type or QEMU sub-type
 * this filter cannot frame, or too many encodings, fails the session (RFB_ERR_CLIENT_PROTOCOL).
 * Peer input never throws.
 */
export class ClientMessageFilter {
  readonly #rules: ClientMessageRules;
  readonly #view = new ByteView();
  /** A message head split across chunks, copied here until it can be framed. */
  readonly #head = Buffer.allocUnsafe(MAX_HEAD_BYTES);
  #headLength = 0;
  /** Bytes of the current message still to stream by, passed (#passing) or skipped. */
  #remaining = 0;
  #passing = false;
  readonly #framer: ClientMessageFramer;
  #forwardedBytes = 0;
  #droppedBytes = 0;
  /** Messages dropped, by KIND. */
  readonly #dropped = new Float64Array(CLIENT_MESSAGE_KINDS.length);
  #clipboardOversized = 0;
  #encodingsRewritten = 0;

  constructor(policy: ClientMessagePolicy) {
    this.#rules = resolveClientMessagePolicy(policy);
    this.#framer = new ClientMessageFramer(this.#rules);
  }

  get rules(): ClientMessageRules {
    return this.#rules;
  }

  /** Bytes held while waiting for the rest of a message head; at most MAX_HEAD_BYTES. */
  get bufferedBytes(): number {
    return this.#headLength;
  }

  /** Part of a message has been seen (held or streamed) and the rest has not arrived yet. */
  get inMessage(): boolean {
    return this.#headLength > 0 || this.#remaining > 0;
  }

  /** Messages dropped so far, all kinds together. */
  get droppedMessages(): number {
    return this.#dropped.reduce((a, b) => a + b, 0);
  }

  get error(): VncgateError | null {
    return this.#framer.error;
  }

  stats(): ClientMessageFilterStats {
    const dropped = {} as Record<ClientMessageKind, number>;
    for (const k of CLIENT_MESSAGE_KINDS) dropped[k] = this.#dropped[KIND[k]]!;
    return {
      forwardedBytes: this.#forwardedBytes,
      droppedBytes: this.#droppedBytes,
      dropped,
      clipboardOversized: this.#clipboardOversized,
      encodingsRewritten: this.#encodingsRewritten,
    };
  }

  /**
   * Feeds the next chunk; calls `forward` zero or more times, in order, with bytes for the console
   * (the chunk itself, subarrays of it, or — for a head split across chunks and a rewritten
   * SetEncodings — a fresh Buffer). Returns null, or the error that ended the stream: then what
   * came before the bad message has been forwarded, and later input is ignored.
   */
  receive(chunk: Buffer, forward: (bytes: Buffer) => void): VncgateError | null {
    if (this.#framer.error) return this.#framer.error;
    const end = chunk.length;
    let pos = 0;
    /** Start of the passing bytes in [runStart, pos) not yet forwarded. */
    let runStart = 0;
    while (pos < end) {
      if (this.#remaining > 0) {
        const n = Math.min(this.#remaining, end - pos);
        this.#remaining -= n;
        if (!this.#passing) {
          this.#flush(chunk, runStart, pos, forward);
          this.#droppedBytes += n;
          runStart = pos + n;
        }
        pos += n;
        continue;
      }
      // At a message boundary. `held`: how many of its first bytes are in #head, not the chunk.
      let length: number;
      let held = 0;
      if (this.#headLength === 0) {
        length = this.#framer.frame(this.#view.reset(chunk, pos, end - pos));
        if (length < 0) {
          // Its head runs past this chunk: keep that (it is short) and wait.
          this.#flush(chunk, runStart, pos, forward);
          chunk.copy(this.#head, 0, pos, end);
          this.#headLength = end - pos;
          pos = runStart = end;
          break;
        }
      } else {
        // Only a chunk's first message can have its head held, so nothing is passing yet.
        const before = this.#headLength;
        length = this.#frameHeld(chunk, pos, end);
        pos = runStart = pos + this.#headLength - before;
        if (length < 0) break;
        held = this.#headLength;
      }
      if (length === FAILED) {
        this.#flush(chunk, runStart, pos, forward);
        this.#headLength = 0;
        return this.#framer.error;
      }
      if (this.#framer.verdict === VERDICT.pass) {
        if (held > 0) this.#forwardHeld(forward);
        this.#passing = true;
        this.#remaining = length - held;
      } else if (this.#framer.verdict === VERDICT.drop) {
        this.#flush(chunk, runStart, pos, forward);
        runStart = pos;
        this.#countDrop(held);
        this.#passing = false;
        this.#remaining = length - held;
      } else {
        // A rewrite framed the whole message: it is all in #view, and in #head or at pos.
        this.#flush(chunk, runStart, pos, forward);
        this.#forwardRewrite(length, forward);
        pos = runStart = pos + length - held;
      }
      this.#headLength = 0;
    }
    this.#flush(chunk, runStart, pos, forward);
    return null;
  }

  /** Forwards the passing run [from, to) of the chunk: the chunk itself when that is all of it. */
  #flush(chunk: Buffer, from: number, to: number, forward: (bytes: Buffer) => void): void {
    if (to === from) return;
    this.#forwardedBytes += to - from;
    forward(from === 0 && to === chunk.length ? chunk : chunk.subarray(from, to));
  }

  /** Tops the held head up from the chunk until it frames, fails, or the chunk runs out. */
  #frameHeld(chunk: Buffer, pos: number, end: number): number {
    for (;;) {
      const length = this.#framer.frame(this.#view.reset(this.#head, 0, this.#headLength));
      if (length >= 0) return length;
      const take = Math.min(-length - this.#headLength, end - pos);
      chunk.copy(this.#head, this.#headLength, pos, pos + take);
      this.#headLength += take;
      pos += take;
      if (this.#headLength < -length) return length;
    }
  }

  #forwardHeld(forward: (bytes: Buffer) => void): void {
    this.#forwardedBytes += this.#headLength;
    forward(Buffer.from(this.#head.subarray(0, this.#headLength)));
  }

  #countDrop(heldBytes: number): void {
    this.#dropped[this.#framer.kind]! += 1;
    this.#droppedBytes += heldBytes;
    if (this.#framer.oversized) this.#clipboardOversized++;
  }

  /** The SetEncodings of `length` bytes at the start of #view, without the encodings the rules remove. */
  #forwardRewrite(length: number, forward: (bytes: Buffer) => void): void {
    const out = this.#framer.rewriteSetEncodings(this.#view);
    this.#encodingsRewritten++;
    this.#droppedBytes += length - out.length;
    this.#forwardedBytes += out.length;
    forward(out);
  }
}
