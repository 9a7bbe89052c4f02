import { VncgateError } from '../errors.js';
import { ByteQueue } from './byte-queue.js';
import { Framebuffer } from './framebuffer.js';
import { hextileTileLength, paintHextileTile, type HextileColours } from './framebuffer-hextile.js';
import {
  ENCODING,
  SCREENSHOT_PIXEL_FORMAT,
  SERVER_MESSAGE,
  framebufferUpdateRequest,
  setEncodings,
  setPixelFormat,
} from './framebuffer-messages.js';

export type FramebufferLimits = {
  /** Largest framebuffer accepted, at ServerInit and on every DesktopSize. */
  readonly maxWidth: number;
  readonly maxHeight: number;
  /** Longest ServerCutText skipped over (§7.6.4); more fails. */
  readonly maxCutTextBytes: number;
  /** Full-frame requests sent before giving up on a server that never covers the framebuffer. */
  readonly maxRequests: number;
};

export const DEFAULT_FRAMEBUFFER_LIMITS: FramebufferLimits = { maxWidth: 8192, maxHeight: 8192, maxCutTextBytes: 1 << 20, maxRequests: 4 };

export type FramebufferAction =
  | { type: 'send'; bytes: Buffer }
  /** A complete frame; the reader is finished. */
  | { type: 'done'; framebuffer: Framebuffer }
  | { type: 'failed'; error: VncgateError };

export type FramebufferReaderState = 'idle' | 'message' | 'update' | 'rect' | 'raw' | 'hextile' | 'copyRect' | 'colourMap' | 'cutText' | 'skip' | 'done' | 'failed';

/** Bytes that must be queued before each state can go on (after the message type byte). */
const NEED: Partial<Record<FramebufferReaderState, number>> = { message: 1, update: 3, rect: 12, copyRect: 4, colourMap: 5, cutText: 7, raw: 4, skip: 1 };

/**
 * Reads one complete frame from a console endpoint after ServerInit: asks for the pixel format
 * and encodings it decodes (CopyRect, Hextile, Raw, DesktopSize), requests the whole framebuffer
 * (non-incremental), and applies FramebufferUpdates until every pixel of the current size has been
 * painted in answer to the last request (a DesktopSize or a partial answer asks again, at most
 * `maxRequests` requests in all).
 * Other server messages (Bell, SetColourMapEntries, ServerCutText, EndOfContinuousUpdates) are
 * skipped. Sans-I/O: fed bytes, returns actions; peer input never makes it throw.
 *
 * Every length is bounded before it is waited for: the framebuffer size (`maxWidth`×`maxHeight`),
 * each rectangle (inside the framebuffer), cut text (`maxCutTextBytes`). Raw pixels are copied into
 * the framebuffer as they arrive, so nothing but the framebuffer grows with the image.
 */
export class FramebufferReader {
  readonly #limits: FramebufferLimits;
  readonly #q = new ByteQueue();
  #fb: Framebuffer | null = null;
  #state: FramebufferReaderState = 'idle';
  #rects = 0;
  #rect = { x: 0, y: 0, w: 0, h: 0 };
  /** Raw: pixels of the current rectangle already written; Hextile: tiles. */
  #done = 0;
  #skip = 0;
  #colours: HextileColours = { background: null, foreground: null };
  readonly #rectsBy = { raw: 0, copyRect: 0, hextile: 0, desktopSize: 0 };
  /**
   * Pixels painted since the last request or resize. Overlapping rectangles count twice, so a
   * server can make a partial frame look whole; it could as well send a whole wrong one.
   */
  #covered = 0;
  #requests = 0;
  readonly #width: number;
  readonly #height: number;

  constructor(init: { width: number; height: number }, limits: FramebufferLimits = DEFAULT_FRAMEBUFFER_LIMITS) {
    this.#limits = limits;
    this.#width = init.width;
    this.#height = init.height;
  }

  get state(): FramebufferReaderState {
    return this.#state;
  }

  /** Rectangles received so far, by encoding (for logs, and tests that check what a server chose). */
  get rectangles(): Readonly<Record<'raw' | 'copyRect' | 'hextile' | 'desktopSize', number>> {
    return { ...this.#rectsBy };
  }

  /** Pixel format, encodings and the first full-frame request; or the refusal of ServerInit's size. */
  start(): FramebufferAction[] {
    if (this.#state !== 'idle') throw new Error('FramebufferReader started twice');
    const error = this.#resize(this.#width, this.#height);
    if (error) return this.#fail(error);
    this.#state = 'message';
    const hello = Buffer.concat([setPixelFormat(SCREENSHOT_PIXEL_FORMAT), setEncodings([ENCODING.copyRect, ENCODING.hextile, ENCODING.raw, ENCODING.desktopSize]), this.#request()]);
    return [{ type: 'send', bytes: hello }];
  }

  receive(chunk: Uint8Array): FramebufferAction[] {
    if (this.#state === 'idle') throw new Error('FramebufferReader fed before start()');
    if (this.#state === 'done' || this.#state === 'failed') return [];
    this.#q.push(chunk);
    const out: FramebufferAction[] = [];
    // Each step consumes bytes or changes state; it stops when the next piece is not all here.
    while (this.state !== 'done' && this.#q.has(this.#need())) {
      const error = this.#step(out);
      if (error) return [...out, ...this.#fail(error)];
    }
    return out;
  }

  /** Bytes that must be queued before the current state can make progress. */
  #need(): number {
    if (this.#state !== 'hextile') return NEED[this.#state] ?? 1;
    const { tw, th } = this.#tile();
    return hextileTileLength(this.#q, tw, th);
  }

  /** The current Hextile tile's size: 16×16, smaller at the rectangle's right and bottom edges. */
  #tile(): { tx: number; ty: number; tw: number; th: number } {
    const { x, y, w, h } = this.#rect;
    const across = Math.ceil(w / 16);
    const tx = x + 16 * (this.#done % across);
    const ty = y + 16 * Math.floor(this.#done / across);
    return { tx, ty, tw: Math.min(16, x + w - tx), th: Math.min(16, y + h - ty) };
  }

  #request(): Buffer {
    this.#requests += 1;
    // Each full-frame request must be answered whole: what earlier answers painted does not count.
    this.#covered = 0;
    return framebufferUpdateRequest(false, 0, 0, this.#fb!.width, this.#fb!.height);
  }

  #fail(error: VncgateError): FramebufferAction[] {
    this.#state = 'failed';
    this.#fb = null;
    this.#q.takeAll();
    return [{ type: 'failed', error }];
  }

  #resize(width: number, height: number): VncgateError | null {
    const { maxWidth, maxHeight } = this.#limits;
    if (width < 1 || height < 1) return new VncgateError('RFB_ERR_PROTOCOL', `console endpoint announced an empty framebuffer (${width}x${height})`);
    if (width > maxWidth || height > maxHeight) {
      return new VncgateError('RFB_ERR_LIMIT', `console endpoint framebuffer ${width}x${height} exceeds the ${maxWidth}x${maxHeight} limit`, {
        details: { width, height, maxWidth, maxHeight },
      });
    }
    this.#fb = new Framebuffer(width, height);
    this.#covered = 0;
    return null;
  }

  /** One piece of protocol if its bytes are here; returns an error to fail with. */
  #step(out: FramebufferAction[]): VncgateError | null {
    const q = this.#q;
    switch (this.#state) {
      case 'message':
        if (!q.has(1)) return null;
        return this.#message(q.u8());
      case 'update':
        if (!q.has(3)) return null;
        q.skip(1);
        this.#rects = q.u16();
        return this.#nextRect(out);
      case 'rect':
        if (!q.has(12)) return null;
        return this.#rectHeader(q.u16(), q.u16(), q.u16(), q.u16(), q.u32() | 0, out);
      case 'raw':
        return this.#raw(out);
      case 'hextile': {
        const { tx, ty, tw, th } = this.#tile();
        const error = paintHextileTile(q, this.#fb!, tx, ty, tw, th, this.#colours);
        if (error) return error;
        this.#done += 1;
        const { w, h } = this.#rect;
        if (this.#done < Math.ceil(w / 16) * Math.ceil(h / 16)) return null;
        this.#covered += w * h;
        return this.#nextRect(out);
      }
      case 'copyRect': {
        if (!q.has(4)) return null;
        const sx = q.u16();
        const sy = q.u16();
        const { x, y, w, h } = this.#rect;
        const fb = this.#fb!;
        if (sx + w > fb.width || sy + h > fb.height) return new VncgateError('RFB_ERR_PROTOCOL', `CopyRect source ${w}x${h}+${sx}+${sy} lies outside the ${fb.width}x${fb.height} framebuffer`);
        fb.copy(sx, sy, x, y, w, h);
        this.#covered += w * h;
        return this.#nextRect(out);
      }
      case 'colourMap': {
        q.skip(3); // padding, first-colour
        this.#skipBytes(6 * q.u16());
        return null;
      }
      case 'cutText': {
        q.skip(3); // padding
        const n = q.u32();
        if (n > this.#limits.maxCutTextBytes) return new VncgateError('RFB_ERR_LIMIT', `ServerCutText of ${n} bytes exceeds ${this.#limits.maxCutTextBytes}`);
        this.#skipBytes(n);
        return null;
      }
      case 'skip': {
        const n = Math.min(this.#skip, q.length);
        q.skip(n);
        this.#skip -= n;
        if (this.#skip === 0) this.#state = 'message';
        return null;
      }
      default:
        return null;
    }
  }

  #message(type: number): VncgateError | null {
    switch (type) {
      case SERVER_MESSAGE.framebufferUpdate:
        this.#state = 'update';
        return null;
      case SERVER_MESSAGE.bell:
      case SERVER_MESSAGE.endOfContinuousUpdates:
        return null;
      case SERVER_MESSAGE.setColourMapEntries:
        this.#state = 'colourMap';
        return null;
      case SERVER_MESSAGE.serverCutText:
        this.#state = 'cutText';
        return null;
      default:
        return new VncgateError('RFB_ERR_PROTOCOL', `console endpoint sent unknown message type ${type}`);
    }
  }

  #skipBytes(n: number): void {
    this.#skip = n;
    this.#state = n === 0 ? 'message' : 'skip';
  }

  #rectHeader(x: number, y: number, w: number, h: number, encoding: number, out: FramebufferAction[]): VncgateError | null {
    const fb = this.#fb!;
    if (encoding === ENCODING.desktopSize) {
      this.#rectsBy.desktopSize += 1;
      // Each resize allocates (and zero-fills) a framebuffer of up to the limits, synchronously: a
      // few bytes per DesktopSize must not buy seconds of the event loop.
      if (this.#rectsBy.desktopSize > this.#limits.maxRequests) {
        return new VncgateError('RFB_ERR_PROTOCOL', `console endpoint resized the framebuffer ${this.#rectsBy.desktopSize} times in one screenshot`);
      }
      const error = this.#resize(w, h);
      return error ?? this.#nextRect(out);
    }
    if (encoding !== ENCODING.raw && encoding !== ENCODING.copyRect && encoding !== ENCODING.hextile) {
      return new VncgateError('RFB_ERR_PROTOCOL', `console endpoint used encoding ${encoding}, which was not asked for`);
    }
    if (x + w > fb.width || y + h > fb.height) {
      return new VncgateError('RFB_ERR_PROTOCOL', `rectangle ${w}x${h}+${x}+${y} lies outside the ${fb.width}x${fb.height} framebuffer`);
    }
    this.#rect = { x, y, w, h };
    this.#rectsBy[encoding === ENCODING.raw ? 'raw' : encoding === ENCODING.hextile ? 'hextile' : 'copyRect'] += 1;
    if (encoding === ENCODING.copyRect) {
      this.#state = 'copyRect';
      return null;
    }
    // Raw counts pixels done, Hextile tiles done.
    this.#done = 0;
    this.#state = encoding === ENCODING.raw ? 'raw' : 'hextile';
    this.#colours = { background: null, foreground: null };
    return w * h === 0 ? this.#nextRect(out) : null;
  }

  #raw(out: FramebufferAction[]): VncgateError | null {
    const { x, y, w, h } = this.#rect;
    const left = w * h - this.#done;
    const n = Math.min(left, this.#q.length >>> 2);
    if (n === 0) return null;
    this.#fb!.putBgrx(x, y, w, this.#done, this.#q.bytes(4 * n));
    this.#done += n;
    if (this.#done < w * h) return null;
    this.#covered += w * h;
    return this.#nextRect(out);
  }

  /** After a rectangle (or the update header): the next one, or the end of the update. */
  #nextRect(out: FramebufferAction[]): VncgateError | null {
    if (this.#rects > 0) {
      this.#rects -= 1;
      this.#state = 'rect';
      return null;
    }
    const fb = this.#fb!;
    if (this.#covered >= fb.width * fb.height) {
      this.#state = 'done';
      this.#fb = null;
      this.#q.takeAll();
      out.push({ type: 'done', framebuffer: fb });
      return null;
    }
    if (this.#requests >= this.#limits.maxRequests) {
      return new VncgateError('RFB_ERR_PROTOCOL', `console endpoint did not send the whole framebuffer after ${this.#requests} full-frame requests`);
    }
    out.push({ type: 'send', bytes: this.#request() });
    this.#state = 'message';
    return null;
  }
}
