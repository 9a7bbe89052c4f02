import { VncgateError } from '../../src/errors.js';
import { ByteQueue, readPixelFormat, type PixelFormat } from '../../src/rfb/index.js';
import { CLIENT_MESSAGE, CLIENT_MESSAGE_LENGTH, MESSAGE_LIMITS } from './constants.js';
import { rect, type Rect } from './rect.js';

export type ClientMessage =
  | { type: 'setPixelFormat'; pixelFormat: PixelFormat }
  | { type: 'setEncodings'; encodings: number[] }
  | { type: 'framebufferUpdateRequest'; incremental: boolean; rect: Rect }
  | { type: 'keyEvent'; down: boolean; keysym: number }
  | { type: 'pointerEvent'; buttonMask: number; x: number; y: number }
  /** The text itself is skipped as it arrives, never buffered; only its length is reported. */
  | { type: 'clientCutText'; length: number }
  /** The stream cannot be parsed further: close the client (RFB has no resynchronisation). */
  | { type: 'failed'; error: VncgateError };

/**
 * Frames the client-to-server messages of the normal protocol phase (RFC 6143 §7.5). Sans-I/O: feed
 * bytes to receive(), get whole messages back. Peer input never throws. It buffers at most one
 * incomplete message, and the largest one it waits for is a SetEncodings of MESSAGE_LIMITS.maxEncodings.
 */
export class ClientMessageReader {
  readonly #q = new ByteQueue();
  /** ClientCutText bytes still to skip. */
  #discard = 0;
  #failed = false;

  /** Bytes held while waiting for the rest of a message. */
  get bufferedBytes(): number {
    return this.#q.length;
  }

  receive(chunk: Uint8Array): ClientMessage[] {
    if (this.#failed) return [];
    const skipped = Math.min(this.#discard, chunk.length);
    this.#discard -= skipped;
    this.#q.push(chunk.subarray(skipped));
    const out: ClientMessage[] = [];
    // Each step consumes one whole message or returns null to wait for more.
    for (let m = this.#step(); m !== null; m = this.#failed ? null : this.#step()) out.push(m);
    return out;
  }

  #step(): ClientMessage | null {
    const q = this.#q;
    if (this.#discard > 0) {
      const n = Math.min(this.#discard, q.length);
      q.skip(n);
      this.#discard -= n;
      if (this.#discard > 0) return null;
    }
    if (!q.has(1)) return null;
    const type = q.peekU8();
    switch (type) {
      case CLIENT_MESSAGE.setPixelFormat: {
        if (!q.has(CLIENT_MESSAGE_LENGTH.setPixelFormat)) return null;
        q.skip(4);
        return { type: 'setPixelFormat', pixelFormat: readPixelFormat(q) };
      }
      case CLIENT_MESSAGE.setEncodings: {
        if (!q.has(CLIENT_MESSAGE_LENGTH.setEncodingsHeader)) return null;
        const count = (q.peekU8(2) << 8) | q.peekU8(3);
        if (count > MESSAGE_LIMITS.maxEncodings) {
          return this.#fail(`SetEncodings lists ${count} encodings, more than ${MESSAGE_LIMITS.maxEncodings}`, { count });
        }
        if (!q.has(CLIENT_MESSAGE_LENGTH.setEncodingsHeader + 4 * count)) return null;
        q.skip(CLIENT_MESSAGE_LENGTH.setEncodingsHeader);
        const encodings: number[] = [];
        // Encodings are S32 (pseudo-encodings are negative).
        for (let i = 0; i < count; i++) encodings.push(q.u32() | 0);
        return { type: 'setEncodings', encodings };
      }
      case CLIENT_MESSAGE.framebufferUpdateRequest: {
        if (!q.has(CLIENT_MESSAGE_LENGTH.framebufferUpdateRequest)) return null;
        q.skip(1);
        const incremental = q.u8() !== 0;
        const x = q.u16();
        const y = q.u16();
        return { type: 'framebufferUpdateRequest', incremental, rect: rect(x, y, q.u16(), q.u16()) };
      }
      case CLIENT_MESSAGE.keyEvent: {
        if (!q.has(CLIENT_MESSAGE_LENGTH.keyEvent)) return null;
        q.skip(1);
        const down = q.u8() !== 0;
        q.skip(2);
        return { type: 'keyEvent', down, keysym: q.u32() };
      }
      case CLIENT_MESSAGE.pointerEvent: {
        if (!q.has(CLIENT_MESSAGE_LENGTH.pointerEvent)) return null;
        q.skip(1);
        const buttonMask = q.u8();
        const x = q.u16();
        return { type: 'pointerEvent', buttonMask, x, y: q.u16() };
      }
      case CLIENT_MESSAGE.clientCutText: {
        if (!q.has(CLIENT_MESSAGE_LENGTH.clientCutTextHeader)) return null;
        // A length with the top bit set is the Extended Clipboard form (rfbproto), which a client
        // may only use after the server announced it; we never do, so it is simply too long.
        const length = q.peekU32(4);
        if (length > MESSAGE_LIMITS.maxCutTextBytes) {
          return this.#fail(`ClientCutText of ${length} bytes exceeds ${MESSAGE_LIMITS.maxCutTextBytes}`, { length });
        }
        q.skip(CLIENT_MESSAGE_LENGTH.clientCutTextHeader);
        const n = Math.min(length, q.length);
        q.skip(n);
        this.#discard = length - n;
        return { type: 'clientCutText', length };
      }
      default:
        // Message lengths are implicit in their types, so after an unknown one the stream cannot
        // be followed (§7.5: extensions are used only after the server announced them).
        return this.#fail(`unknown client message type ${type}`, { messageType: type });
    }
  }

  #fail(message: string, details: Record<string, unknown>): ClientMessage {
    this.#failed = true;
    this.#q.takeAll();
    return { type: 'failed', error: new VncgateError('RFB_ERR_CLIENT_PROTOCOL', message, { details }) };
  }
}
