/**
 * A small RFB viewer over a real WebSocket, for the shared console tests and bench: noVNC's side
 * of the handshake (wsRfbConnect's), noVNC's pixel format (32 bpp true colour, red at shift 0) and
 * update loop (one non-incremental request, then an incremental one after every update), and a
 * decoder for what a shared console asks the endpoint for (Raw, CopyRect, RRE, Hextile, Cursor,
 * DesktopSize, ExtendedDesktopSize, LastRect), so two viewers' framebuffers can be compared.
 * Message boundaries come from vncgate's own ServerMessageFramer; the decoding is independent.
 */
import WebSocket from 'ws';
import { RfbClientHandshake, ServerInitReader, clientInit, type ServerInit } from '../../src/rfb/index.js';
import { ServerMessageFramer } from '../../src/rfb/server-message-framing.js';

/** noVNC 1.7's SetPixelFormat: 32 bpp, depth 24, little-endian, true colour, 8 bits each, R/G/B at 0/8/16. */
export const NOVNC_PIXEL_FORMAT = Buffer.from([0, 0, 0, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0]);

/** Roughly what noVNC asks for: Tight, ZRLE and friends first, which a shared console never passes on. */
const VIEWER_ENCODINGS = [7, 16, 5, 2, 1, 0, -239, -223, -308, -224, -258, -312, -313, -1063131698, -316];

function setEncodings(list: readonly number[]): Buffer {
  const b = Buffer.alloc(4 + 4 * list.length);
  b[0] = 2;
  b.writeUInt16BE(list.length, 2);
  list.forEach((e, i) => b.writeInt32BE(e, 4 + 4 * i));
  return b;
}

export function updateRequest(incremental: boolean, w: number, h: number): Buffer {
  const b = Buffer.alloc(10);
  b[0] = 3;
  b[1] = incremental ? 1 : 0;
  b.writeUInt16BE(w, 6);
  b.writeUInt16BE(h, 8);
  return b;
}

export function keyEvent(down: boolean, keysym: number): Buffer {
  const b = Buffer.alloc(8);
  b[0] = 4;
  b[1] = down ? 1 : 0;
  b.writeUInt32BE(keysym, 4);
  return b;
}

export type ControlMessage = { type: 'control'; hasControl: boolean; canControl: boolean; viewers: number; requests: number; requested: boolean; controlled: boolean };

export class TestViewer {
  readonly ws: WebSocket;
  init!: ServerInit;
  width = 0;
  height = 0;
  /** RGBX, 4 bytes per pixel, row-major. */
  fb = Buffer.alloc(0);
  updates = 0;
  bytes = 0;
  cursors = 0;
  closeCode: number | null = null;
  control: ControlMessage | null = null;
  /** The policy vncgate sent on the control channel, if any. */
  policy: { type: string } | null = null;
  readonly #framer = new ServerMessageFramer(4);
  #pending: Buffer[] = [];
  #autoRequest: boolean;
  /** Decode into `fb` (else only count updates and answer them: the bench's many viewers). */
  #decodes = true;
  readonly #waiters: { pred: () => boolean; resolve: () => void }[] = [];

  private constructor(ws: WebSocket, autoRequest: boolean) {
    this.ws = ws;
    this.#autoRequest = autoRequest;
  }

  /** Connects, completes the RFB handshake and starts noVNC's update loop (unless `autoRequest` is false). */
  static connect(url: string, opts: { protocols?: string[]; autoRequest?: boolean; timeoutMs?: number; pixelFormat?: Buffer; decode?: boolean } = {}): Promise<TestViewer> {
    const ws = new WebSocket(url, opts.protocols ?? ['binary'], { perMessageDeflate: false });
    const v = new TestViewer(ws, opts.autoRequest ?? true);
    v.#decodes = opts.decode ?? true;
    return new Promise((resolve, reject) => {
      const engine = new RfbClientHandshake({ security: ['none'] });
      let reader: ServerInitReader | null = null;
      const timer = setTimeout(() => reject(new Error(`no ServerInit from ${url}`)), opts.timeoutMs ?? 15_000);
      ws.on('error', reject);
      ws.on('close', (code) => {
        v.closeCode = code;
        reject(new Error(`closed ${code} during the handshake`));
        v.#wake();
      });
      const onInit = (chunk: Buffer): void => {
        const r = reader!.receive(chunk);
        if (r.type === 'failed') reject(r.error);
        if (r.type !== 'done') return;
        clearTimeout(timer);
        ws.off('message', onMessage);
        v.init = r.init;
        v.#resize(r.init.width, r.init.height);
        ws.on('message', (d: Buffer, isBinary: boolean) => v.#onMessage(d, isBinary));
        ws.send(opts.pixelFormat ?? NOVNC_PIXEL_FORMAT);
        ws.send(setEncodings(VIEWER_ENCODINGS));
        if (v.#autoRequest) ws.send(updateRequest(false, v.width, v.height));
        if (r.trailing.length > 0) v.#onBinary(r.trailing);
        resolve(v);
      };
      const onMessage = (data: Buffer, isBinary: boolean): void => {
        // vncgate's control channel may speak (the policy) before ServerInit.
        if (!isBinary) return v.#onMessage(data, false);
        if (reader) return onInit(data);
        for (const a of engine.receive(data)) {
          if (a.type === 'send') ws.send(a.bytes);
          else if (a.type === 'failed') reject(a.error);
          else if (a.type === 'established') {
            reader = new ServerInitReader();
            ws.send(clientInit(true));
            if (a.trailing.length > 0) onInit(a.trailing);
            return;
          }
        }
      };
      ws.on('message', onMessage);
    });
  }

  /** Resolves once `pred` holds (checked after every message), or rejects after `timeoutMs`. */
  waitFor(what: string, pred: () => boolean, timeoutMs = 15_000): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        reject(new Error(`viewer: ${what} not within ${timeoutMs} ms (updates ${this.updates}, close ${this.closeCode})`));
      }, timeoutMs);
      const w = {
        pred,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.#waiters.push(w);
    });
  }

  sendControl(action: 'request' | 'release' | 'grant'): void {
    this.ws.send(JSON.stringify({ type: 'control', action }));
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }

  #wake(): void {
    for (const w of [...this.#waiters]) {
      if (w.pred()) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (!isBinary) {
      const m = JSON.parse(data.toString('utf8')) as { type: string };
      if (m.type === 'control') this.control = m as ControlMessage;
      if (m.type === 'policy') this.policy = m;
      this.#wake();
      return;
    }
    this.#onBinary(data);
  }

  #onBinary(data: Buffer): void {
    this.bytes += data.length;
    if (!this.#decodes) {
      const err = this.#framer.receive(data, { messageEnd: (type) => type === 0 && this.#updated(), desktopSize: () => {}, cursor: () => {} });
      if (err) throw err;
      this.#wake();
      return;
    }
    this.#pending.push(data);
    let consumed = 0;
    const ends: number[] = [];
    const err = this.#framer.receive(data, {
      messageEnd: (_type, end) => ends.push(end),
      desktopSize: () => {},
      cursor: () => {},
    });
    if (err) throw err;
    if (ends.length > 0) {
      const all = Buffer.concat(this.#pending);
      const base = all.length - data.length;
      for (const end of ends) {
        this.#decode(all.subarray(consumed, base + end));
        consumed = base + end;
      }
      this.#pending = consumed < all.length ? [all.subarray(consumed)] : [];
    }
    this.#wake();
  }

  #resize(w: number, h: number): void {
    const fb = Buffer.alloc(w * h * 4);
    for (let y = 0; y < Math.min(h, this.height); y++) this.fb.copy(fb, y * w * 4, y * this.width * 4, y * this.width * 4 + Math.min(w, this.width) * 4);
    this.fb = fb;
    this.width = w;
    this.height = h;
  }

  #fill(x: number, y: number, w: number, h: number, pixel: Buffer): void {
    for (let j = y; j < y + h; j++) for (let i = x; i < x + w; i++) pixel.copy(this.fb, (j * this.width + i) * 4, 0, 4);
  }

  /** One whole server message. */
  #decode(m: Buffer): void {
    if (m[0] !== 0) return;
    let n = m.readUInt16BE(2);
    let p = 4;
    for (; n > 0; n--) {
      const x = m.readUInt16BE(p);
      const y = m.readUInt16BE(p + 2);
      const w = m.readUInt16BE(p + 4);
      const h = m.readUInt16BE(p + 6);
      const e = m.readInt32BE(p + 8);
      p += 12;
      if (e === 0) {
        for (let j = 0; j < h; j++) m.copy(this.fb, ((y + j) * this.width + x) * 4, p + j * w * 4, p + (j + 1) * w * 4);
        p += w * h * 4;
      } else if (e === 1) {
        const sx = m.readUInt16BE(p);
        const sy = m.readUInt16BE(p + 2);
        p += 4;
        const copy = Buffer.alloc(w * h * 4);
        for (let j = 0; j < h; j++) this.fb.copy(copy, j * w * 4, ((sy + j) * this.width + sx) * 4, ((sy + j) * this.width + sx + w) * 4);
        for (let j = 0; j < h; j++) copy.copy(this.fb, ((y + j) * this.width + x) * 4, j * w * 4, (j + 1) * w * 4);
      } else if (e === 2) {
        const count = m.readUInt32BE(p);
        this.#fill(x, y, w, h, m.subarray(p + 4, p + 8));
        p += 8;
        for (let i = 0; i < count; i++, p += 12) this.#fill(x + m.readUInt16BE(p + 4), y + m.readUInt16BE(p + 6), m.readUInt16BE(p + 8), m.readUInt16BE(p + 10), m.subarray(p, p + 4));
      } else if (e === 5) p = this.#hextile(m, p, x, y, w, h);
      else if (e === -239) {
        this.cursors++;
        p += w * h * 4 + ((w + 7) >> 3) * h;
      } else if (e === -223) this.#resize(w, h);
      else if (e === -308) {
        if (m.readUInt16BE(p - 10) === 0) this.#resize(w, h);
        p += 4 + 16 * m[p]!;
      } else if (e === -224) break;
      else if (e !== -258) throw new Error(`viewer: encoding ${e} not decoded`);
    }
    this.#updated();
  }

  #updated(): void {
    this.updates++;
    if (this.#autoRequest && this.ws.readyState === WebSocket.OPEN) this.ws.send(updateRequest(true, this.width, this.height));
  }

  #hextile(m: Buffer, p: number, x: number, y: number, w: number, h: number): number {
    let bg = Buffer.alloc(4);
    let fg = Buffer.alloc(4);
    for (let ty = y; ty < y + h; ty += 16) {
      for (let tx = x; tx < x + w; tx += 16) {
        const tw = Math.min(16, x + w - tx);
        const th = Math.min(16, y + h - ty);
        const s = m[p++]!;
        if (s & 1) {
          for (let j = 0; j < th; j++) m.copy(this.fb, ((ty + j) * this.width + tx) * 4, p + j * tw * 4, p + (j + 1) * tw * 4);
          p += tw * th * 4;
          continue;
        }
        if (s & 2) {
          bg = Buffer.from(m.subarray(p, p + 4));
          p += 4;
        }
        this.#fill(tx, ty, tw, th, bg);
        if (s & 4) {
          fg = Buffer.from(m.subarray(p, p + 4));
          p += 4;
        }
        if (s & 8) {
          const count = m[p++]!;
          for (let i = 0; i < count; i++) {
            let colour: Buffer = fg;
            if (s & 16) {
              colour = m.subarray(p, p + 4);
              p += 4;
            }
            const xy = m[p++]!;
            const wh = m[p++]!;
            this.#fill(tx + (xy >> 4), ty + (xy & 15), (wh >> 4) + 1, (wh & 15) + 1, colour);
          }
        }
      }
    }
    return p;
  }
}
