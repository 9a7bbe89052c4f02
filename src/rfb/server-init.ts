import { VncgateError } from '../errors.js';
import { ByteQueue, ByteWriter } from './byte-queue.js';
import { LIMITS } from './constants.js';
import { sanitizeReason } from './client-handshake.js';

/** PIXEL_FORMAT, §7.4. */
export type PixelFormat = {
  bitsPerPixel: number;
  depth: number;
  bigEndian: boolean;
  trueColour: boolean;
  redMax: number;
  greenMax: number;
  blueMax: number;
  redShift: number;
  greenShift: number;
  blueShift: number;
};

export type ServerInit = {
  width: number;
  height: number;
  pixelFormat: PixelFormat;
  name: string;
};

/** Reads a 16-byte PIXEL_FORMAT (§7.4); the caller has checked 16 bytes are queued. */
export function readPixelFormat(q: ByteQueue): PixelFormat {
  const pf: PixelFormat = {
    bitsPerPixel: q.u8(),
    depth: q.u8(),
    bigEndian: q.u8() !== 0,
    trueColour: q.u8() !== 0,
    redMax: q.u16(),
    greenMax: q.u16(),
    blueMax: q.u16(),
    redShift: q.u8(),
    greenShift: q.u8(),
    blueShift: q.u8(),
  };
  q.skip(3); // padding
  return pf;
}

/** ClientInit, §7.3.1: one U8, non-zero to share the desktop with other clients. */
export function clientInit(shared: boolean): Buffer {
  return new ByteWriter().u8(shared ? 1 : 0).finish();
}

export function encodePixelFormat(pf: PixelFormat): Buffer {
  return new ByteWriter()
    .u8(pf.bitsPerPixel)
    .u8(pf.depth)
    .u8(pf.bigEndian ? 1 : 0)
    .u8(pf.trueColour ? 1 : 0)
    .u16(pf.redMax)
    .u16(pf.greenMax)
    .u16(pf.blueMax)
    .u8(pf.redShift)
    .u8(pf.greenShift)
    .u8(pf.blueShift)
    .bytes(Buffer.alloc(3))
    .finish();
}

export function encodeServerInit(init: ServerInit): Buffer {
  return new ByteWriter()
    .u16(init.width)
    .u16(init.height)
    .bytes(encodePixelFormat(init.pixelFormat))
    .string(Buffer.from(init.name, 'utf8'))
    .finish();
}

export type ServerInitResult =
  | { type: 'pending' }
  /** `raw`: the ServerInit exactly as received, for a proxy to pass on unchanged. */
  | { type: 'done'; init: ServerInit; raw: Buffer; trailing: Buffer }
  | { type: 'failed'; error: VncgateError };

/** Incremental ServerInit reader (§7.3.2) with a bounded desktop name. */
export class ServerInitReader {
  readonly #q = new ByteQueue();
  #done = false;

  receive(chunk: Uint8Array): ServerInitResult {
    if (this.#done) throw new Error('ServerInitReader used after completion');
    this.#q.push(chunk);
    const q = this.#q;
    if (!q.has(24)) return { type: 'pending' };
    const nameLength = q.peekU32(20);
    if (nameLength > LIMITS.maxDesktopNameBytes) {
      this.#done = true;
      return {
        type: 'failed',
        error: new VncgateError('RFB_ERR_LIMIT', `desktop name of ${nameLength} bytes exceeds ${LIMITS.maxDesktopNameBytes}`),
      };
    }
    if (!q.has(24 + nameLength)) return { type: 'pending' };
    const raw = q.bytes(24 + nameLength);
    const r = new ByteQueue();
    r.push(raw);
    const width = r.u16();
    const height = r.u16();
    const pixelFormat = readPixelFormat(r);
    r.skip(4); // name length, checked above
    const name = sanitizeReason(r.bytes(nameLength));
    this.#done = true;
    return { type: 'done', init: { width, height, pixelFormat, name }, raw, trailing: q.takeAll() };
  }
}
