import { connect, type Socket } from 'node:net';
import { VncgateError } from '../../../src/errors.js';
import {
  ByteWriter,
  RfbClientHandshake,
  ServerInitReader,
  clientInit,
  encodePixelFormat,
  type ClientAction,
  type PixelFormat,
  type SecurityChoice,
  type ServerInit,
} from '../../../src/rfb/index.js';

export type UpdateRect = { x: number; y: number; width: number; height: number; encoding: number; pixels: Buffer };

/**
 * A small RFB client for tests over real TCP: the project's client engine for the handshake, then
 * hand-rolled Raw FramebufferUpdate parsing. Every wait has a deadline.
 */
export class TestRfbClient {
  readonly socket: Socket;
  readonly init: ServerInit;
  bytesPerPixel: number;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #wake: (() => void) | null = null;
  #closed = false;
  readonly closedPromise: Promise<void>;

  private constructor(socket: Socket, init: ServerInit, trailing: Buffer) {
    this.socket = socket;
    this.init = init;
    this.bytesPerPixel = init.pixelFormat.bitsPerPixel / 8;
    this.closedPromise = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => this.#push(chunk));
    socket.on('close', () => {
      this.#closed = true;
      this.#wake?.();
    });
    this.#push(trailing);
  }

  /** Connects and completes the handshake, or rejects with the handshake's VncgateError. */
  static connect(port: number, opts: { security?: SecurityChoice[]; password?: string; timeoutMs?: number } = {}): Promise<TestRfbClient> {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setNoDelay(true);
    const hs = new RfbClientHandshake({
      security: opts.security ?? ['none'],
      ...(opts.password !== undefined ? { password: Buffer.from(opts.password) } : {}),
    });
    let reader: ServerInitReader | null = null;
    return new Promise<TestRfbClient>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error('handshake timed out')), opts.timeoutMs ?? 5_000);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        socket.removeAllListeners('data');
        socket.destroy();
        reject(err);
      };
      const onServerInit = (bytes: Buffer): void => {
        const r = reader!.receive(bytes);
        if (r.type === 'failed') return fail(r.error);
        if (r.type === 'pending') return;
        clearTimeout(timer);
        socket.removeAllListeners('data');
        socket.removeAllListeners('error');
        socket.removeAllListeners('close');
        socket.on('error', () => {});
        resolve(new TestRfbClient(socket, r.init, r.trailing));
      };
      const onActions = (actions: ClientAction[]): void => {
        for (const a of actions) {
          if (a.type === 'send') socket.write(a.bytes);
          else if (a.type === 'failed') return fail(a.error);
          else if (a.type === 'startTls') return fail(new Error('unexpected TLS'));
          else {
            socket.write(clientInit(true));
            reader = new ServerInitReader();
            onServerInit(a.trailing);
          }
        }
      };
      socket.on('data', (chunk: Buffer) => (reader ? onServerInit(chunk) : onActions(hs.receive(chunk))));
      socket.on('error', (err) => fail(err));
      socket.on('close', () => fail(new VncgateError('BACKEND_ERR_CLOSED', 'server closed during the handshake')));
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  request(incremental: boolean, r = { x: 0, y: 0, width: this.init.width, height: this.init.height }): void {
    this.send(new ByteWriter().u8(3).u8(incremental ? 1 : 0).u16(r.x).u16(r.y).u16(r.width).u16(r.height).finish());
  }

  key(down: boolean, keysym: number): void {
    this.send(new ByteWriter().u8(4).u8(down ? 1 : 0).u16(0).u32(keysym).finish());
  }

  /** Key down then up for each character. */
  type(text: string): void {
    for (const ch of text) {
      this.key(true, ch.codePointAt(0)!);
      this.key(false, ch.codePointAt(0)!);
    }
  }

  pointer(x: number, y: number, buttons = 0): void {
    this.send(new ByteWriter().u8(5).u8(buttons).u16(x).u16(y).finish());
  }

  setPixelFormat(pf: PixelFormat): void {
    this.send(Buffer.concat([Buffer.from([0, 0, 0, 0]), encodePixelFormat(pf)]));
    this.bytesPerPixel = pf.bitsPerPixel / 8;
  }

  setEncodings(encodings: number[]): void {
    const w = new ByteWriter().u8(2).u8(0).u16(encodings.length);
    for (const e of encodings) w.u32(e >>> 0);
    this.send(w.finish());
  }

  /** Reads one FramebufferUpdate (Raw rectangles only). */
  async nextUpdate(timeoutMs = 3_000): Promise<UpdateRect[]> {
    const deadline = Date.now() + timeoutMs;
    const head = await this.#read(4, deadline);
    if (head[0] !== 0) throw new Error(`expected FramebufferUpdate, got message type ${head[0]}`);
    const count = head.readUInt16BE(2);
    const rects: UpdateRect[] = [];
    for (let i = 0; i < count; i++) {
      const h = await this.#read(12, deadline);
      const r = { x: h.readUInt16BE(0), y: h.readUInt16BE(2), width: h.readUInt16BE(4), height: h.readUInt16BE(6), encoding: h.readInt32BE(8) };
      if (r.encoding !== 0) throw new Error(`unexpected encoding ${r.encoding}`);
      rects.push({ ...r, pixels: await this.#read(r.width * r.height * this.bytesPerPixel, deadline) });
    }
    return rects;
  }

  /** Resolves true once the server closed the connection, false if it is still open at the deadline. */
  async waitClosed(timeoutMs = 3_000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const result = await Promise.race([this.closedPromise.then(() => true as const), timeout]);
    clearTimeout(timer);
    return result;
  }

  /** Bytes received and not yet consumed. */
  get buffered(): number {
    return this.#buffered;
  }

  close(): void {
    this.socket.destroy();
  }

  #push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    this.#wake?.();
  }

  async #read(n: number, deadline: number): Promise<Buffer> {
    while (this.#buffered < n) {
      if (this.#closed) throw new Error(`connection closed with ${this.#buffered} of ${n} bytes`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${n} bytes (have ${this.#buffered})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wake = null;
    }
    const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#buffered = rest.length;
    return out;
  }
}

/** A local copy of the remote framebuffer (32 bpp updates only), to compare regions over time. */
export class Framebuffer {
  readonly width: number;
  readonly height: number;
  readonly pixels: Buffer;

  constructor(width: number, height: number) {
    this.width = width;
    this.height = height;
    this.pixels = Buffer.alloc(width * height * 4);
  }

  apply(rects: readonly UpdateRect[]): void {
    for (const r of rects) {
      for (let row = 0; row < r.height; row++) {
        r.pixels.copy(this.pixels, ((r.y + row) * this.width + r.x) * 4, row * r.width * 4, (row + 1) * r.width * 4);
      }
    }
  }

  /** The pixels of a region, row after row (for equality checks). */
  region(r: { x: number; y: number; width: number; height: number }): Buffer {
    const out: Buffer[] = [];
    for (let row = r.y; row < r.y + r.height; row++) {
      const start = (row * this.width + r.x) * 4;
      out.push(this.pixels.subarray(start, start + r.width * 4));
    }
    return Buffer.concat(out);
  }

  rgbAt(x: number, y: number): number {
    const i = (y * this.width + x) * 4;
    return (this.pixels[i]! << 16) | (this.pixels[i + 1]! << 8) | this.pixels[i + 2]!;
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A logger that keeps what it is given, for asserting warn lines. */
export function captureLogger(): { lines: { level: string; obj: Record<string, unknown>; msg: string }[]; logger: { debug: Fn; info: Fn; warn: Fn; error: Fn } } {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  const at = (level: string): Fn => (obj, msg) => void lines.push({ level, obj, msg });
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}
type Fn = (obj: Record<string, unknown>, msg: string) => void;

/** Polls `cond` every 10 ms until it holds (true) or `timeoutMs` passes (false). */
export async function until(cond: () => boolean, timeoutMs = 2_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}
