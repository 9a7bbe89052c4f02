import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { VncgateError } from '../../errors.js';
import { ByteWriter, encodePixelFormat, encodeServerInit, type PixelFormat, type ServerInit } from '../../rfb/index.js';
import { SERVER_MESSAGE, SHARED_ENCODINGS, ServerMessageFramer, type ServerMessageSink } from '../../rfb/server-message-framing.js';
import type { BackendConnection } from '../backend-connector.js';
import { backendClosed, backendSocketError } from '../session-faults.js';
import { ControlState, type ControlAction } from './control-state.js';

/** What a viewer's page is told about control (`{"type":"control",…}`). */
export type ControlView = { hasControl: boolean; canControl: boolean; viewers: number; requests: number; requested: boolean; controlled: boolean };

/** One browser watching (or controlling) a shared console: what the hub needs of it. */
export interface HubViewer {
  /** May ever have control (its token is not view-only). */
  readonly canControl: boolean;
  /** Takes control on joining (its token says `control`). */
  readonly takeControl: boolean;
  /** Bytes queued toward its browser, not yet written. */
  readonly queuedBytes: number;
  /** Bytes to its browser; `drained` once they are written. */
  send(bytes: Buffer, drained?: () => void): void;
  /** The hub dropped it (too slow, pixel format) or ended (backend gone): its session ends. */
  end(error: VncgateError): void;
  controlChanged(view: ControlView): void;
}

export type HubOptions = {
  log: Logger;
  /** Bytes queued toward every viewer above which the backend is paused. */
  highWaterMarkBytes: number;
  /** Bytes queued toward one viewer above which it is ended (SESSION_ERR_SHARED_SLOW). */
  viewerQueueBytes: number;
  /** The hub closed (last member gone, or the backend ended): the registry forgets it. */
  onClosed: (hub: ShareHub) => void;
};

/**
 * One backend connection shared by the viewers of one console (issue 18). vncgate speaks for all
 * of them toward the endpoint: its own SetEncodings (SHARED_ENCODINGS: nothing with state across
 * updates, so anyone can join at a message boundary), one pixel format, one outstanding
 * FramebufferUpdateRequest at a time (merged), input from the viewer with control only. The
 * endpoint's stream is framed (ServerMessageFramer) to know its boundaries, the framebuffer size
 * and the cursor shape, and copied to every viewer; a joiner gets a ServerInit of the current
 * size and the last cursor, then the stream from the next boundary; its own non-incremental
 * request brings the full frame. A viewer that falls behind by viewerQueueBytes is ended rather
 * than slowing the others; the backend is paused only while every viewer is behind.
 */
export class ShareHub {
  readonly connection: BackendConnection;
  readonly #socket: Socket;
  readonly #opts: HubOptions;
  readonly #framer: ServerMessageFramer;
  readonly #serverInit: ServerInit;
  /** The pixel format in effect once fixed (the first viewer's SetPixelFormat, or ServerInit's at the first request). */
  #format: Buffer | null = null;
  #width: number;
  #height: number;
  #cursor: Buffer | null = null;
  readonly #viewers: HubViewer[] = [];
  readonly #pending: HubViewer[] = [];
  /** Viewers attached within the chunk being framed, and where in it their stream starts. */
  readonly #joined: { viewer: HubViewer; at: number; prefix: Buffer }[] = [];
  readonly control = new ControlState<HubViewer>();
  #members = 0;
  #outstanding = false;
  #wanted = false;
  #updateEnded = false;
  #paused = false;
  #closed = false;
  bytesFromBackend = 0;
  bytesToViewers = 0;
  /** Most viewers at once. */
  peakViewers = 0;

  constructor(conn: BackendConnection, init: ServerInit, trailing: Buffer, opts: HubOptions) {
    this.connection = conn;
    this.#socket = conn.socket;
    this.#opts = opts;
    this.#serverInit = init;
    this.#width = init.width;
    this.#height = init.height;
    this.#framer = new ServerMessageFramer(init.pixelFormat.bitsPerPixel / 8);
    const encodings = new ByteWriter().u8(2).u8(0).u16(SHARED_ENCODINGS.length);
    for (const e of SHARED_ENCODINGS) encodings.u32(e >>> 0);
    this.#socket.write(encodings.finish());
    this.#socket.on('data', this.#onData);
    this.#socket.on('error', this.#onError);
    this.#socket.on('close', this.#onClose);
    if (trailing.length > 0) this.#onData(trailing);
    this.#socket.resume();
  }

  get closed(): boolean {
    return this.#closed;
  }

  get viewers(): number {
    return this.#viewers.length + this.#pending.length;
  }

  /** The ServerInit a joiner gets now: the current size and the pixel format in effect. */
  get init(): ServerInit {
    return { ...this.#serverInit, width: this.#width, height: this.#height, pixelFormat: this.#pixelFormat() };
  }

  #pixelFormat(): PixelFormat {
    const f = this.#format;
    if (f === null) return this.#serverInit.pixelFormat;
    return {
      bitsPerPixel: f[0]!,
      depth: f[1]!,
      bigEndian: f[2] !== 0,
      trueColour: f[3] !== 0,
      redMax: f.readUInt16BE(4),
      greenMax: f.readUInt16BE(6),
      blueMax: f.readUInt16BE(8),
      redShift: f[10]!,
      greenShift: f[11]!,
      blueShift: f[12]!,
    };
  }

  /** A session holds the hub from joining until it ends (whether or not it got to watch). */
  addMember(): boolean {
    if (this.#closed) return false;
    this.#members++;
    return true;
  }

  /** A session let go; the backend connection closes when the last one does. */
  removeMember(viewer: HubViewer | null): void {
    if (viewer !== null) this.detach(viewer);
    this.#members--;
    if (this.#members <= 0) this.#close(null);
  }

  /** A viewer starts watching: at once if the stream is between messages, else at the next boundary. */
  attach(v: HubViewer): void {
    if (this.#closed) {
      v.end(backendClosed(true));
      return;
    }
    this.control.add(v, v.canControl, v.takeControl);
    if (this.#framer.atBoundary) {
      this.#viewers.push(v);
      this.#send(v, this.#joinPrefix(), true);
    } else this.#pending.push(v);
    this.peakViewers = Math.max(this.peakViewers, this.viewers);
    this.#tellControl();
  }

  detach(v: HubViewer): void {
    const i = this.#viewers.indexOf(v);
    if (i >= 0) this.#viewers.splice(i, 1);
    const j = this.#pending.indexOf(v);
    if (j >= 0) this.#pending.splice(j, 1);
    if (i < 0 && j < 0) return;
    this.control.remove(v);
    this.#tellControl();
    this.#maybeResume();
  }

  hasControl(v: HubViewer): boolean {
    return this.control.controller === v;
  }

  controlAction(v: HubViewer, action: ControlAction): void {
    if (this.control.apply(v, action)) this.#tellControl();
  }

  /** Input from a viewer (KeyEvent, PointerEvent, ClientCutText…): the endpoint sees it only from the controller. */
  input(v: HubViewer, bytes: Buffer): boolean {
    if (this.control.controller !== v || this.#closed) return false;
    this.#socket.write(bytes);
    return true;
  }

  /**
   * A viewer's SetPixelFormat (the 16-byte PIXEL_FORMAT): the first one before any update request
   * becomes the connection's; later ones must be the same (noVNC's always is). False: refused.
   */
  pixelFormat(format: Buffer): boolean {
    if (this.#format !== null) return this.#format.equals(format);
    const bpp = format[0]!;
    if (bpp !== 8 && bpp !== 16 && bpp !== 32) return false;
    this.#format = Buffer.from(format);
    this.#framer.setBytesPerPixel(bpp / 8);
    this.#socket.write(Buffer.concat([Buffer.from([0, 0, 0, 0]), this.#format]));
    return true;
  }

  /** A viewer's FramebufferUpdateRequest: non-incremental at once; incremental merged into one outstanding. */
  updateRequest(incremental: boolean): void {
    if (this.#closed) return;
    if (this.#format === null) this.#format = encodePixelFormat(this.#serverInit.pixelFormat);
    if (incremental && this.#outstanding) {
      this.#wanted = true;
      return;
    }
    this.#request(incremental);
  }

  #request(incremental: boolean): void {
    this.#outstanding = true;
    this.#wanted = false;
    const b = Buffer.allocUnsafe(10);
    b[0] = 3;
    b[1] = incremental ? 1 : 0;
    b.writeUInt32BE(0, 2);
    b.writeUInt16BE(this.#width, 6);
    b.writeUInt16BE(this.#height, 8);
    this.#socket.write(b);
  }

  /** What a joiner gets before the stream: ServerInit as of now, and the cursor shape if one was sent. */
  #joinPrefix(): Buffer {
    const init = encodeServerInit(this.init);
    const c = this.#cursor;
    return c === null ? init : Buffer.concat([init, Buffer.from([SERVER_MESSAGE.framebufferUpdate, 0, 0, 1]), c]);
  }

  readonly #sink: ServerMessageSink = {
    messageEnd: (type, end) => {
      if (type === SERVER_MESSAGE.framebufferUpdate) this.#updateEnded = true;
      if (this.#pending.length === 0) return;
      const prefix = this.#joinPrefix();
      for (const viewer of this.#pending) {
        this.#joined.push({ viewer, at: end, prefix });
        this.#viewers.push(viewer);
      }
      this.#pending.length = 0;
    },
    desktopSize: (w, h) => {
      this.#width = w;
      this.#height = h;
    },
    cursor: (rect) => {
      this.#cursor = rect;
    },
  };

  readonly #onData = (chunk: Buffer): void => {
    this.bytesFromBackend += chunk.length;
    const before = this.#viewers.length;
    const error = this.#framer.receive(chunk, this.#sink);
    // Those that watched before this chunk get all of it; joiners from their boundary on.
    for (let i = before - 1; i >= 0; i--) this.#send(this.#viewers[i]!, chunk, false);
    for (const j of this.#joined) {
      this.#send(j.viewer, j.prefix, true);
      if (j.at < chunk.length) this.#send(j.viewer, chunk.subarray(j.at), false);
    }
    this.#joined.length = 0;
    if (error) {
      this.#close(error);
      return;
    }
    if (this.#updateEnded) {
      this.#updateEnded = false;
      this.#outstanding = false;
      if (this.#wanted) this.#request(true);
    }
    if (!this.#paused && this.#viewers.length > 0 && this.#allBehind()) {
      this.#paused = true;
      this.#socket.pause();
    }
  };

  #send(v: HubViewer, bytes: Buffer, force: boolean): void {
    const queued = v.queuedBytes;
    if (!force && queued + bytes.length > this.#opts.viewerQueueBytes) {
      this.detach(v);
      v.end(new VncgateError('SESSION_ERR_SHARED_SLOW', `viewer fell ${queued} bytes behind the shared console`, { details: { queuedBytes: queued } }));
      return;
    }
    this.bytesToViewers += bytes.length;
    v.send(bytes, queued + bytes.length > this.#opts.highWaterMarkBytes ? this.#onDrained : undefined);
  }

  #allBehind(): boolean {
    for (const v of this.#viewers) if (v.queuedBytes <= this.#opts.highWaterMarkBytes) return false;
    return true;
  }

  readonly #onDrained = (): void => this.#maybeResume();

  #maybeResume(): void {
    if (!this.#paused || this.#closed || (this.#viewers.length > 0 && this.#allBehind())) return;
    this.#paused = false;
    this.#socket.resume();
  }

  #tellControl(): void {
    const c = this.control;
    const viewers = this.viewers;
    const requests = c.requests.length;
    const controlled = c.controller !== null;
    for (const v of [...this.#viewers, ...this.#pending]) {
      v.controlChanged({ hasControl: c.controller === v, canControl: v.canControl, viewers, requests, requested: c.requests.includes(v), controlled });
    }
  }

  readonly #onError = (err: NodeJS.ErrnoException): void => this.#close(backendSocketError(err));
  readonly #onClose = (): void => this.#close(backendClosed(true));

  #close(error: VncgateError | null): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.off('data', this.#onData);
    this.#socket.destroy();
    this.#opts.onClosed(this);
    const all = [...this.#viewers, ...this.#pending];
    this.#viewers.length = 0;
    this.#pending.length = 0;
    if (error) {
      this.#opts.log.info({ code: error.code, reason: error.message, viewers: all.length }, 'shared console connection ended');
      for (const v of all) v.end(error);
    }
  }
}
