import { VncgateError } from '../errors.js';

/**
 * Server-to-client message types of the normal protocol phase (§7.6 and the rfbproto extensions
 * whose lengths follow from their fields). A shared console asks the endpoint only for what it
 * can frame (SHARED_ENCODINGS); anything else ends the shared connection.
 */
export const SERVER_MESSAGE = {
  framebufferUpdate: 0, // §7.6.1
  setColourMapEntries: 1, // §7.6.2
  bell: 2, // §7.6.3
  serverCutText: 3, // §7.6.4; rfbproto Extended Clipboard: a negative length
  endOfContinuousUpdates: 150, // rfbproto "EndOfContinuousUpdates"
  serverFence: 248, // rfbproto "ServerFence"
  xvp: 250, // rfbproto "xvp Server Message"
} as const;

/** Encodings (S32) the framer knows the length of: §7.7 and the rfbproto pseudo-encodings. */
export const ENCODING = {
  raw: 0,
  copyRect: 1,
  rre: 2,
  hextile: 5,
  cursor: -239, // rfbproto "Cursor Pseudo-encoding"
  desktopSize: -223, // rfbproto "DesktopSize Pseudo-encoding"
  lastRect: -224, // rfbproto "LastRect Pseudo-encoding"
  extendedDesktopSize: -308, // rfbproto "ExtendedDesktopSize Pseudo-encoding"
  qemuExtendedKeyEvent: -258, // rfbproto "QEMU Extended Key Event Pseudo-encoding" (an empty rectangle confirms it)
} as const;

/**
 * What vncgate asks a shared console's endpoint for: encodings with no state across updates (no
 * zlib stream as in Zlib, ZRLE, Tight), so a viewer can join at any message boundary; and the
 * pseudo-encodings noVNC needs for its cursor, resizes and QEMU's keyboard.
 */
export const SHARED_ENCODINGS: readonly number[] = [
  ENCODING.copyRect,
  ENCODING.hextile,
  ENCODING.rre,
  ENCODING.raw,
  ENCODING.cursor,
  ENCODING.desktopSize,
  ENCODING.extendedDesktopSize,
  ENCODING.lastRect,
  ENCODING.qemuExtendedKeyEvent,
];

export const SERVER_MESSAGE_LIMITS = {
  /** ServerCutText payload (either form); larger fails the connection. */
  maxCutTextBytes: 16 * 1024 * 1024,
  /** A cursor shape kept for late joiners (header and payload); larger ones are passed on, not kept. */
  maxCursorBytes: 64 * 1024 + 12,
} as const;

/** What the framer reports as it goes. Offsets are into the chunk being received. */
export interface ServerMessageSink {
  /** A whole message of `type` ends at `end` (exclusive) in the current chunk. */
  messageEnd(type: number, end: number): void;
  /** The framebuffer is now `width` × `height` (DesktopSize, or a successful ExtendedDesktopSize). */
  desktopSize(width: number, height: number): void;
  /** A whole Cursor rectangle (12-byte header and payload), copied; at most maxCursorBytes. */
  cursor(rect: Buffer): void;
}

const S_TYPE = 0;
const S_HEAD = 1; // collecting #want bytes of a message's fixed head into #head
const S_SKIP = 2; // streaming #skip payload bytes
const S_RECT = 3; // collecting a rectangle header (12 bytes)
const S_RRE = 4;
const S_TILE = 5; // a Hextile tile's sub-encoding byte
const S_TILE_HEAD = 6; // a Hextile tile's background, foreground and subrectangle count
const S_EDS = 7; // ExtendedDesktopSize: screen count and padding

/** After a skip: end the message, end a rectangle, or go on with the next Hextile tile. */
const AFTER_MESSAGE = 0;
const AFTER_RECT = 1;
const AFTER_TILE = 2;

/**
 * Finds message boundaries in an endpoint's server-to-client stream after ServerInit (§7.6), for
 * a shared console: whole-message events, framebuffer size changes and cursor shapes, at any
 * chunking. Sans-I/O and allocation-free as it streams (payloads are skipped where they lie; only
 * fixed heads of at most 16 bytes are copied, and a cursor shape once, bounded). RFB cannot
 * resynchronise: a message type or encoding it cannot frame fails the stream (RFB_ERR_PROTOCOL).
 */
export class ServerMessageFramer {
  #bpp: number;
  #state = S_TYPE;
  #type = 0;
  readonly #head = Buffer.alloc(16);
  #have = 0;
  #want = 0;
  #skip = 0;
  #after = AFTER_MESSAGE;
  #rects = 0;
  #w = 0;
  #h = 0;
  #encoding = 0;
  /** Hextile: the tile being read (column, row) and its size. */
  #tx = 0;
  #ty = 0;
  #tw = 0;
  #th = 0;
  #subencoding = 0;
  #cursor: Buffer | null = null;
  #cursorAt = 0;
  #error: VncgateError | null = null;
  /** Whole messages framed so far. */
  messages = 0;

  /** `bytesPerPixel`: of the pixel format in effect (vncgate sets it: 4 for noVNC's 32 bpp). */
  constructor(bytesPerPixel: number) {
    if (![1, 2, 4].includes(bytesPerPixel)) throw new RangeError(`bytes per pixel ${bytesPerPixel}`);
    this.#bpp = bytesPerPixel;
  }

  /** The pixel format changed (SetPixelFormat, before any update was asked for). */
  setBytesPerPixel(bytesPerPixel: number): void {
    if (![1, 2, 4].includes(bytesPerPixel)) throw new RangeError(`bytes per pixel ${bytesPerPixel}`);
    this.#bpp = bytesPerPixel;
  }

  get error(): VncgateError | null {
    return this.#error;
  }

  /** Between messages: nothing of the next one has been seen. */
  get atBoundary(): boolean {
    return this.#state === S_TYPE && this.#error === null;
  }

  /** Frames `chunk`, calling `sink` as messages end. Returns the error that ended the stream, or null. */
  receive(chunk: Buffer, sink: ServerMessageSink): VncgateError | null {
    if (this.#error) return this.#error;
    const end = chunk.length;
    let pos = 0;
    while (pos < end) {
      const state = this.#state;
      if (state === S_SKIP) {
        const n = Math.min(this.#skip, end - pos);
        if (this.#cursor !== null) {
          chunk.copy(this.#cursor, this.#cursorAt, pos, pos + n);
          this.#cursorAt += n;
        }
        this.#skip -= n;
        pos += n;
        if (this.#skip === 0) this.#afterSkip(pos, sink);
        continue;
      }
      if (state === S_TYPE) {
        this.#type = chunk[pos++]!;
        this.#begin(pos, sink);
      } else {
        const n = Math.min(this.#want - this.#have, end - pos);
        chunk.copy(this.#head, this.#have, pos, pos + n);
        this.#have += n;
        pos += n;
        if (this.#have < this.#want) continue;
        this.#have = 0;
        this.#headDone(pos, sink);
      }
      if (this.#error) return this.#error;
    }
    return null;
  }

  #collect(state: number, want: number): void {
    this.#state = state;
    this.#want = want;
    this.#have = 0;
  }

  #skipThen(n: number, after: number, pos: number, sink: ServerMessageSink): void {
    this.#after = after;
    if (n > 0) {
      this.#state = S_SKIP;
      this.#skip = n;
    } else this.#afterSkip(pos, sink);
  }

  /** A message type byte has just been read (at pos - 1). */
  #begin(pos: number, sink: ServerMessageSink): void {
    switch (this.#type) {
      case SERVER_MESSAGE.framebufferUpdate:
        return this.#collect(S_HEAD, 3); // padding, U16 number of rectangles
      case SERVER_MESSAGE.setColourMapEntries:
        return this.#collect(S_HEAD, 5); // padding, U16 first colour, U16 number of colours
      case SERVER_MESSAGE.serverCutText:
        return this.#collect(S_HEAD, 7); // 3 padding, S32 length
      case SERVER_MESSAGE.serverFence:
        return this.#collect(S_HEAD, 8); // 3 padding, U32 flags, U8 length
      case SERVER_MESSAGE.xvp:
        return this.#collect(S_HEAD, 3); // padding, version, code
      case SERVER_MESSAGE.bell:
      case SERVER_MESSAGE.endOfContinuousUpdates:
        return this.#end(pos, sink);
      default:
        this.#fail(`server message type ${this.#type} cannot be framed`);
    }
  }

  #headDone(pos: number, sink: ServerMessageSink): void {
    const h = this.#head;
    switch (this.#state) {
      case S_HEAD:
        return this.#messageHead(pos, sink);
      case S_RECT:
        return this.#rectHead(pos, sink);
      case S_RRE: {
        const n = h.readUInt32BE(0);
        if (n > this.#w * this.#h) return this.#fail(`RRE rectangle of ${this.#w}x${this.#h} with ${n} subrectangles`);
        return this.#skipThen(n * (this.#bpp + 8), AFTER_RECT, pos, sink);
      }
      case S_EDS:
        return this.#skipThen(16 * h[0]!, AFTER_RECT, pos, sink);
      case S_TILE: {
        const s = h[0]!;
        this.#subencoding = s;
        if (s & 1) return this.#skipThen(this.#tw * this.#th * this.#bpp, AFTER_TILE, pos, sink);
        const want = (s & 2 ? this.#bpp : 0) + (s & 4 ? this.#bpp : 0) + (s & 8 ? 1 : 0);
        if (want === 0) return this.#nextTile(pos, sink);
        return this.#collect(S_TILE_HEAD, want);
      }
      case S_TILE_HEAD: {
        const s = this.#subencoding;
        if ((s & 8) === 0) return this.#nextTile(pos, sink);
        const count = h[this.#want - 1]!;
        return this.#skipThen(count * (s & 16 ? this.#bpp + 2 : 2), AFTER_TILE, pos, sink);
      }
    }
  }

  #messageHead(pos: number, sink: ServerMessageSink): void {
    const h = this.#head;
    switch (this.#type) {
      case SERVER_MESSAGE.framebufferUpdate:
        this.#rects = h.readUInt16BE(1);
        return this.#nextRect(pos, sink);
      case SERVER_MESSAGE.setColourMapEntries:
        return this.#skipThen(6 * h.readUInt16BE(3), AFTER_MESSAGE, pos, sink);
      case SERVER_MESSAGE.serverCutText: {
        const length = h.readInt32BE(3);
        const n = Math.abs(length);
        if (n > SERVER_MESSAGE_LIMITS.maxCutTextBytes) return this.#fail(`ServerCutText of ${n} bytes (at most ${SERVER_MESSAGE_LIMITS.maxCutTextBytes})`, 'RFB_ERR_LIMIT');
        return this.#skipThen(n, AFTER_MESSAGE, pos, sink);
      }
      case SERVER_MESSAGE.serverFence:
        return this.#skipThen(h[7]!, AFTER_MESSAGE, pos, sink);
      default: // xvp
        return this.#end(pos, sink);
    }
  }

  #nextRect(pos: number, sink: ServerMessageSink): void {
    if (this.#rects === 0) return this.#end(pos, sink);
    this.#rects--;
    this.#collect(S_RECT, 12);
  }

  #rectHead(pos: number, sink: ServerMessageSink): void {
    const h = this.#head;
    const w = h.readUInt16BE(4);
    const ht = h.readUInt16BE(6);
    const e = h.readInt32BE(8);
    this.#w = w;
    this.#h = ht;
    this.#encoding = e;
    const bpp = this.#bpp;
    switch (e) {
      case ENCODING.raw:
        return this.#skipThen(w * ht * bpp, AFTER_RECT, pos, sink);
      case ENCODING.copyRect:
        return this.#skipThen(4, AFTER_RECT, pos, sink);
      case ENCODING.rre:
        return this.#collect(S_RRE, 4 + bpp);
      case ENCODING.hextile:
        this.#tx = 0;
        this.#ty = 0;
        if (w === 0 || ht === 0) return this.#afterRect(pos, sink);
        return this.#startTile();
      case ENCODING.cursor: {
        const n = w * ht * bpp + ((w + 7) >> 3) * ht;
        if (12 + n <= SERVER_MESSAGE_LIMITS.maxCursorBytes) {
          this.#cursor = Buffer.allocUnsafe(12 + n);
          h.copy(this.#cursor, 0, 0, 12);
          this.#cursorAt = 12;
        }
        return this.#skipThen(n, AFTER_RECT, pos, sink);
      }
      case ENCODING.desktopSize:
        sink.desktopSize(w, ht);
        return this.#afterRect(pos, sink);
      case ENCODING.extendedDesktopSize:
        // x is the reason, y the status: a non-zero status leaves the size as it was.
        if (h.readUInt16BE(2) === 0) sink.desktopSize(w, ht);
        return this.#collect(S_EDS, 4);
      case ENCODING.lastRect:
        this.#rects = 0;
        return this.#end(pos, sink);
      case ENCODING.qemuExtendedKeyEvent:
        return this.#afterRect(pos, sink);
      default:
        this.#fail(`encoding ${e} cannot be framed (not asked for)`);
    }
  }

  #startTile(): void {
    this.#tw = Math.min(16, this.#w - this.#tx);
    this.#th = Math.min(16, this.#h - this.#ty);
    this.#collect(S_TILE, 1);
  }

  #nextTile(pos: number, sink: ServerMessageSink): void {
    this.#tx += 16;
    if (this.#tx >= this.#w) {
      this.#tx = 0;
      this.#ty += 16;
      if (this.#ty >= this.#h) return this.#afterRect(pos, sink);
    }
    this.#startTile();
  }

  #afterSkip(pos: number, sink: ServerMessageSink): void {
    if (this.#after === AFTER_TILE) return this.#nextTile(pos, sink);
    if (this.#after === AFTER_RECT) return this.#afterRect(pos, sink);
    this.#end(pos, sink);
  }

  #afterRect(pos: number, sink: ServerMessageSink): void {
    const c = this.#cursor;
    if (c !== null && this.#encoding === ENCODING.cursor) {
      this.#cursor = null;
      sink.cursor(c);
    }
    this.#nextRect(pos, sink);
  }

  #end(pos: number, sink: ServerMessageSink): void {
    this.#state = S_TYPE;
    this.messages++;
    sink.messageEnd(this.#type, pos);
  }

  #fail(message: string, code: 'RFB_ERR_PROTOCOL' | 'RFB_ERR_LIMIT' = 'RFB_ERR_PROTOCOL'): void {
    this.#error = new VncgateError(code, message, { details: { messageType: this.#type, encoding: this.#encoding } });
  }
}
