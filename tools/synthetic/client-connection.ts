import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { encodeServerInit, RfbServerHandshake, type ServerAction } from '../../src/rfb/index.js';
import { ClientMessageReader, type ClientMessage } from './client-messages.js';
import type { DemoScreen } from './demo-screen.js';
import { DirtyRegion } from './dirty-region.js';
import { rawFramebufferUpdate, type RawRectangle } from './framebuffer-update.js';
import type { ResolvedOptions, SyntheticLogger } from './options.js';
import { pixelEncoderFor, pixelFormatProblem, SERVER_PIXEL_FORMAT, type PixelEncoder } from './pixel-format.js';
import { intersect, rect, union, type Rect } from './rect.js';
import { streamPayload, streamRect } from './stream-payload.js';

/** What a connection needs from its server. */
export type ConnectionContext = {
  readonly options: ResolvedOptions;
  /** The shared demo desktop (demo mode only). */
  readonly screen: DemoScreen | null;
  readonly counters: { updatesSent: number; bytesSent: number; bytesReceived: number };
  /** The client finished ClientInit and takes part in the normal protocol. */
  started(client: ClientConnection): void;
  /** The socket closed (after started() or not). */
  closed(client: ClientConnection): void;
  /** This client's input changed the shared screen. */
  screenChanged(rects: readonly Rect[]): void;
};

type Phase = 'handshake' | 'clientInit' | 'running' | 'closing' | 'closed';

/** Stream/pingpong updates sent per event-loop turn before yielding, so one client cannot starve others. */
const UPDATES_PER_TURN = { stream: 16, pingpong: 256 } as const;
/** After we end() a socket, the peer gets this long to close before we destroy it. */
const CLOSE_GRACE_MS = 2_000;

/**
 * One client of the synthetic server: the imperative shell around the pure pieces (handshake engine,
 * message reader, demo screen, dirty region, pixel encoder). It owns the socket, the deadline and
 * flow control: an update is sent only while a FramebufferUpdateRequest is outstanding and the
 * socket is not backed up (write() returned false: wait for 'drain').
 */
export class ClientConnection {
  readonly id: number;
  readonly #socket: Socket;
  readonly #ctx: ConnectionContext;
  readonly #opts: ResolvedOptions;
  readonly #logBindings: Record<string, unknown>;
  readonly #handshake: RfbServerHandshake;
  readonly #reader = new ClientMessageReader();
  readonly #startedAt = Date.now();
  #phase: Phase = 'handshake';
  #encoder: PixelEncoder = pixelEncoderFor(SERVER_PIXEL_FORMAT);
  /** Demo: what this client has not seen yet, and the outstanding request (coalesced). */
  readonly #dirty: DirtyRegion | null;
  #request: { rect: Rect; force: boolean } | null = null;
  /** Stream/pingpong: requests not yet answered, and the next payload's sequence number. */
  #pendingRequests = 0;
  #seq = 0;
  #blocked = false;
  #flush: NodeJS.Immediate | null = null;
  #deadline: NodeJS.Timeout | null = null;
  #graceTimer: NodeJS.Timeout | null = null;
  #bytesIn = 0;
  #bytesOut = 0;
  #updates = 0;
  #endReason = 'client closed the connection';

  constructor(socket: Socket, ctx: ConnectionContext, id: number) {
    this.id = id;
    this.#socket = socket;
    this.#ctx = ctx;
    this.#opts = ctx.options;
    this.#logBindings = { client: id, remote: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`, mode: this.#opts.mode };
    this.#handshake = new RfbServerHandshake({
      security: this.#opts.security,
      ...(this.#opts.password ? { password: this.#opts.password, randomBytes } : {}),
    });
    this.#dirty = this.#opts.mode === 'demo' ? new DirtyRegion(rect(0, 0, this.#opts.width, this.#opts.height)) : null;

    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#guard(() => this.#onData(chunk)));
    socket.on('drain', () => {
      this.#blocked = false;
      this.#scheduleFlush();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.#endReason = `socket error ${err.code ?? err.message}`;
      this.#log('debug', { err: err.message, errCode: err.code }, 'socket error');
    });
    socket.on('close', () => this.#onClose());
  }

  get phase(): Phase {
    return this.#phase;
  }

  /** Speaks first (§7.1.1) and starts the handshake deadline. */
  start(): void {
    this.#deadline = setTimeout(() => {
      this.#log('warn', { code: 'SESSION_ERR_BROWSER_TIMEOUT', phase: this.#phase }, 'client did not finish the handshake in time');
      this.#endReason = 'handshake timeout';
      this.#socket.destroy();
    }, this.#opts.handshakeTimeoutMs);
    // Our verdict is known up front: there is no backend to wait for.
    this.#guard(() => this.#onHandshake([...this.#handshake.start(), ...this.#handshake.accept()]));
  }

  /** The shared demo screen changed in `rects`. */
  screenChanged(rects: readonly Rect[]): void {
    if (this.#phase !== 'running' || !this.#dirty) return;
    for (const r of rects) this.#dirty.add(r);
    this.#scheduleFlush();
  }

  destroy(reason: string): void {
    if (this.#phase === 'closed') return;
    this.#endReason = reason;
    this.#socket.destroy();
  }

  /** Runs a handler so that a bug of ours closes this client only, never the process. */
  #guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#log('error', { err: err instanceof Error ? err.stack : String(err) }, 'synthetic server bug; closing this client');
      this.#endReason = 'internal error';
      this.#socket.destroy();
    }
  }

  #onData(chunk: Buffer): void {
    this.#bytesIn += chunk.length;
    this.#ctx.counters.bytesReceived += chunk.length;
    switch (this.#phase) {
      case 'handshake':
        this.#onHandshake(this.#handshake.receive(chunk));
        return;
      case 'clientInit':
        this.#onClientInit(chunk);
        return;
      case 'running':
        this.#onMessages(chunk);
        return;
      case 'closing':
      case 'closed':
        return;
    }
  }

  #onHandshake(actions: readonly ServerAction[]): void {
    for (const a of actions) {
      if (this.#phase !== 'handshake') return;
      switch (a.type) {
        case 'send':
          this.#write(a.bytes);
          break;
        case 'failed':
          this.#log('warn', { code: a.error.code, err: a.error.message }, 'client handshake failed');
          this.#end(`handshake failed (${a.error.code})`);
          break;
        case 'established':
          this.#log('debug', { version: a.info.version, security: a.info.security }, 'client authenticated');
          this.#phase = 'clientInit';
          this.#onClientInit(a.trailing);
          break;
      }
    }
  }

  /** ClientInit (§7.3.1) is one byte; its shared flag is ignored, as every client shares the one desktop. */
  #onClientInit(bytes: Buffer): void {
    if (bytes.length === 0) return;
    const o = this.#opts;
    this.#write(encodeServerInit({ width: o.width, height: o.height, pixelFormat: SERVER_PIXEL_FORMAT, name: o.desktopName }));
    this.#phase = 'running';
    if (this.#deadline) clearTimeout(this.#deadline);
    this.#deadline = null;
    this.#log('info', { width: o.width, height: o.height }, 'client session started');
    this.#ctx.started(this);
    if (bytes.length > 1) this.#onMessages(bytes.subarray(1));
  }

  #onMessages(bytes: Buffer): void {
    for (const m of this.#reader.receive(bytes)) {
      if (this.#phase !== 'running') return;
      this.#onMessage(m);
    }
    this.#scheduleFlush();
  }

  #onMessage(m: ClientMessage): void {
    switch (m.type) {
      case 'setPixelFormat': {
        const problem = pixelFormatProblem(m.pixelFormat);
        if (problem !== null) {
          this.#log('warn', { code: 'RFB_ERR_CLIENT_PROTOCOL', pixelFormat: m.pixelFormat, problem }, 'client asked for a pixel format we do not serve; closing');
          this.#end(`unsupported pixel format: ${problem}`);
          return;
        }
        this.#encoder = pixelEncoderFor(m.pixelFormat);
        this.#log('debug', { pixelFormat: m.pixelFormat }, 'client set its pixel format');
        return;
      }
      case 'setEncodings':
        // Raw is always allowed (§7.7.1) and is all we send, so the list changes nothing.
        this.#log('debug', { encodings: m.encodings }, 'client set its encodings');
        return;
      case 'framebufferUpdateRequest':
        this.#onUpdateRequest(m.incremental, m.rect);
        return;
      case 'keyEvent':
        if (this.#ctx.screen) this.#ctx.screenChanged(this.#ctx.screen.key(m.down, m.keysym));
        return;
      case 'pointerEvent':
        if (this.#ctx.screen) this.#ctx.screenChanged(this.#ctx.screen.pointer(m.x, m.y, m.buttonMask));
        return;
      case 'clientCutText':
        this.#log('debug', { length: m.length }, 'client sent cut text (ignored)');
        return;
      case 'failed':
        this.#log('warn', { code: m.error.code, err: m.error.message, ...m.error.details }, 'client sent a message we cannot follow; closing');
        this.#end(`protocol error: ${m.error.message}`);
        return;
    }
  }

  #onUpdateRequest(incremental: boolean, requested: Rect): void {
    if (!this.#dirty) {
      // Stream and pingpong answer every request, incremental or not, with one update each.
      this.#pendingRequests++;
      return;
    }
    const r = intersect(requested, rect(0, 0, this.#opts.width, this.#opts.height));
    // §7.5.3: a non-incremental request wants the area whether or not it changed.
    if (!incremental) this.#dirty.add(r);
    const prev = this.#request;
    this.#request = prev ? { rect: union(prev.rect, r), force: prev.force || !incremental } : { rect: r, force: !incremental };
  }

  #scheduleFlush(): void {
    if (this.#flush || this.#phase !== 'running' || this.#blocked) return;
    // Deferred, so that everything read in one chunk (and every screen change of one tick) goes out
    // as one update.
    this.#flush = setImmediate(() => {
      this.#flush = null;
      this.#guard(() => this.#flushUpdates());
    });
  }

  #flushUpdates(): void {
    if (this.#phase !== 'running' || this.#blocked) return;
    const screen = this.#ctx.screen;
    if (this.#dirty && screen) {
      const req = this.#request;
      if (!req) return;
      const rects = this.#dirty.take(req.rect);
      if (rects.length === 0 && !req.force) return;
      this.#request = null;
      this.#sendUpdate(rects.map((r) => ({ rect: r, pixels: this.#encoder.encode(screen.canvas, r) })));
      return;
    }
    const mode = this.#opts.mode === 'pingpong' ? 'pingpong' : 'stream';
    for (let budget = UPDATES_PER_TURN[mode]; budget > 0 && this.#pendingRequests > 0 && !this.#blocked; budget--) {
      this.#pendingRequests--;
      this.#sendUpdate([this.#syntheticRectangle(mode)]);
    }
    if (this.#pendingRequests > 0) this.#scheduleFlush();
  }

  /** The next stream or pingpong rectangle: its pixels are payload `seq` (see stream-payload.ts). */
  #syntheticRectangle(mode: 'stream' | 'pingpong'): RawRectangle {
    const o = this.#opts;
    const bpp = this.#encoder.bytesPerPixel;
    const seq = this.#seq;
    this.#seq = (seq + 1) >>> 0;
    const r = mode === 'pingpong' ? rect(0, 0, 1, 1) : streamRect(o.width, o.height, bpp, o.streamUpdateBytes, seq);
    return { rect: r, pixels: streamPayload(seq, r.width * r.height * bpp) };
  }

  #sendUpdate(rects: readonly RawRectangle[]): void {
    const parts = rawFramebufferUpdate(rects);
    let ok = true;
    this.#socket.cork();
    for (const p of parts) ok = this.#write(p);
    this.#socket.uncork();
    this.#updates++;
    this.#ctx.counters.updatesSent++;
    if (!ok) this.#blocked = true;
  }

  /** Writes and counts; false when the socket is backed up (or gone) and we should wait. */
  #write(bytes: Buffer): boolean {
    if (this.#socket.destroyed || !this.#socket.writable) return false;
    this.#bytesOut += bytes.length;
    this.#ctx.counters.bytesSent += bytes.length;
    return this.#socket.write(bytes);
  }

  /** Closes cleanly: flush what is queued, send FIN, and destroy if the peer lingers. */
  #end(reason: string): void {
    if (this.#phase === 'closing' || this.#phase === 'closed') return;
    this.#phase = 'closing';
    this.#endReason = reason;
    this.#clearTimers();
    this.#socket.end();
    this.#graceTimer = setTimeout(() => this.#socket.destroy(), CLOSE_GRACE_MS);
    this.#graceTimer.unref();
  }

  #onClose(): void {
    if (this.#phase === 'closed') return;
    this.#phase = 'closed';
    this.#clearTimers();
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
    this.#graceTimer = null;
    this.#ctx.closed(this);
    this.#log(
      'info',
      {
        reason: this.#endReason,
        durationMs: Date.now() - this.#startedAt,
        bytesIn: this.#bytesIn,
        bytesOut: this.#bytesOut,
        updates: this.#updates,
      },
      'client session ended',
    );
  }

  #clearTimers(): void {
    if (this.#deadline) clearTimeout(this.#deadline);
    this.#deadline = null;
    if (this.#flush) clearImmediate(this.#flush);
    this.#flush = null;
  }

  #log(level: keyof SyntheticLogger, obj: Record<string, unknown>, msg: string): void {
    this.#opts.logger[level]({ ...this.#logBindings, ...obj }, msg);
  }
}
