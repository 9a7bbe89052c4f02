import { RfbClientHandshake, ServerInitReader, clientInit, encodePixelFormat, type SecurityChoice, type ServerInit } from '../../src/rfb/index.js';
import { LoadError } from './load-error.js';
import type { Conn, ConnEnd, Connect } from './transport.js';
import { UpdateReader } from './update-reader.js';

export type LoadSessionOptions = {
  connect: Connect;
  /** What we accept from whoever speaks RFB to us: vncgate always offers None; a direct VNC server may want a password. */
  security: readonly SecurityChoice[];
  password?: Buffer | undefined;
  /** From the first TCP SYN to ServerInit. */
  setupTimeoutMs: number;
  /** Longest wait for an update once one is requested. */
  updateTimeoutMs: number;
  /** Check every pixel byte against the synthetic server's payload (default true). */
  verify: boolean;
};

type Phase = 'new' | 'handshake' | 'serverInit' | 'running' | 'ended';

/** §7.5.3 FramebufferUpdateRequest, incremental, for the whole framebuffer: what noVNC asks after each update. */
function updateRequest(width: number, height: number): Buffer {
  const b = Buffer.alloc(10);
  b[0] = 3;
  b[1] = 1;
  b.writeUInt16BE(width, 6);
  b.writeUInt16BE(height, 8);
  return b;
}

/** §7.5.1 SetPixelFormat echoing the server's own format, and §7.5.2 SetEncodings [Raw]: noVNC's opening moves. */
function openingMessages(init: ServerInit): Buffer {
  const setPixelFormat = Buffer.concat([Buffer.from([0, 0, 0, 0]), encodePixelFormat(init.pixelFormat)]);
  const setEncodings = Buffer.from([2, 0, 0, 1, 0, 0, 0, 0]);
  return Buffer.concat([setPixelFormat, setEncodings]);
}

/**
 * One noVNC-like console session: connect (WebSocket through the proxy, or TCP to the server),
 * RFB handshake, ClientInit (shared) and ServerInit, then the opening SetPixelFormat and
 * SetEncodings; after that, updates on request, every pixel checked.
 *
 * `open()` resolves with the setup time; `stream()` and `pingpong()` drive it until a deadline;
 * `close()` ends it politely. Any failure — including the peer closing while we still wait for
 * something — rejects the pending call with a LoadError and ends the session.
 */
export class LoadSession {
  readonly #opts: LoadSessionOptions;
  #conn: Conn | null = null;
  #phase: Phase = 'new';
  #handshake: RfbClientHandshake;
  #initReader: ServerInitReader | null = null;
  #reader: UpdateReader | null = null;
  #init: ServerInit | null = null;
  #request: Buffer | null = null;
  #pending: { resolve: (v: number) => void; reject: (e: LoadError) => void } | null = null;
  /** Called with the number of updates each chunk completed. */
  #onUpdates: ((n: number) => void) | null = null;
  #timer: NodeJS.Timeout | null = null;
  #lastProgress = 0;
  #timeoutMs = 0;
  #endError: LoadError | null = null;
  #closeWaiters: (() => void)[] = [];
  #endedBy: ConnEnd | null = null;
  /** Bytes that arrived before connect() handed us the connection (the server speaks first). */
  #early: Buffer[] | null = [];
  /** Set when the peer ended the session while nothing was pending (an idle session dropped). */
  onUnexpectedEnd: ((error: LoadError) => void) | null = null;

  constructor(opts: LoadSessionOptions) {
    this.#opts = opts;
    this.#handshake = new RfbClientHandshake({ security: opts.security, ...(opts.password ? { password: opts.password } : {}) });
  }

  get serverInit(): ServerInit | null {
    return this.#init;
  }

  get ended(): boolean {
    return this.#phase === 'ended';
  }

  /** Pixel bytes received and checked so far. */
  get pixelBytes(): number {
    return this.#reader?.pixelBytes ?? 0;
  }

  get updates(): number {
    return this.#reader?.updates ?? 0;
  }

  /** Connects and runs the handshake; resolves with the setup time in ms (start to ServerInit). */
  async open(): Promise<number> {
    if (this.#phase !== 'new') throw new Error('LoadSession.open() called twice');
    const t0 = performance.now();
    this.#phase = 'handshake';
    const done = this.#wait(this.#opts.setupTimeoutMs, 'timeout-setup');
    try {
      this.#conn = await this.#opts.connect({
        data: (c) => (this.#early ? this.#early.push(c) : this.#onData(c)),
        end: (how) => this.#onEnd(how),
      });
    } catch (err) {
      this.#finish(err instanceof LoadError ? err : new LoadError('connect', String(err)));
    }
    const early = this.#early ?? [];
    this.#early = null;
    if ((this.#phase as Phase) === 'ended') this.#conn?.destroy();
    else for (const c of early) this.#onData(c);
    await done;
    return performance.now() - t0;
  }

  /**
   * Keeps `pipeline` update requests outstanding until `untilMs` (performance.now() time), as a
   * viewer that asks for the next update as soon as one is complete (pipeline 1: noVNC).
   * Resolves with the updates received.
   */
  async stream(untilMs: number, pipeline = 1): Promise<number> {
    const req = this.#running();
    let outstanding = 0;
    let received = 0;
    const done = this.#wait(this.#opts.updateTimeoutMs, 'timeout-update');
    this.#onUpdates = (n) => {
      received += n;
      outstanding -= n;
      if (performance.now() >= untilMs) {
        if (outstanding <= 0) this.#settle(received);
        return;
      }
      while (outstanding < pipeline) {
        outstanding++;
        this.#conn!.write(req);
      }
    };
    outstanding = pipeline;
    for (let i = 0; i < pipeline; i++) this.#conn!.write(req);
    return done;
  }

  /** One update at a time until `untilMs` or `maxUpdates`; pushes each round trip, in µs, to `rttUs`. */
  async pingpong(untilMs: number, rttUs: number[], maxUpdates = Number.POSITIVE_INFINITY): Promise<number> {
    const req = this.#running();
    let count = 0;
    let sentAt = performance.now();
    const done = this.#wait(this.#opts.updateTimeoutMs, 'timeout-update');
    this.#onUpdates = (n) => {
      const now = performance.now();
      rttUs.push((now - sentAt) * 1000);
      count += n;
      if (now >= untilMs || count >= maxUpdates) return this.#settle(count);
      sentAt = performance.now();
      this.#conn!.write(req);
    };
    this.#conn!.write(req);
    return done;
  }

  /** Orderly close; resolves once the connection has ended (or after `graceMs`, destroying it). */
  close(graceMs = 2_000): Promise<void> {
    if (this.#phase === 'ended' && this.#closeWaiters.length === 0 && this.#endedBy) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.#closeWaiters.push(resolve);
      if (this.#phase !== 'ended') {
        this.#phase = 'ended';
        this.#clearTimer();
        this.#conn?.close();
      }
      const t = setTimeout(() => {
        this.#conn?.destroy();
        this.#flushCloseWaiters();
      }, graceMs);
      t.unref();
      if (this.#endedBy) this.#flushCloseWaiters();
    });
  }

  destroy(): void {
    this.#phase = 'ended';
    this.#clearTimer();
    this.#conn?.destroy();
  }

  #running(): Buffer {
    if (this.#phase !== 'running' || !this.#request) throw this.#endError ?? new Error('LoadSession is not running');
    if (this.#pending) throw new Error('LoadSession: one call at a time');
    return this.#request;
  }

  #wait(timeoutMs: number, reason: string): Promise<number> {
    this.#timeoutMs = timeoutMs;
    this.#lastProgress = performance.now();
    const p = new Promise<number>((resolve, reject) => {
      this.#pending = { resolve, reject };
    });
    this.#armTimer(timeoutMs, reason);
    return p;
  }

  /**
   * One timer per wait, re-armed lazily: progress only stamps #lastProgress, so a busy session
   * does not create a timer per update.
   */
  #armTimer(ms: number, reason: string): void {
    this.#clearTimer();
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (!this.#pending) return;
      const idle = performance.now() - this.#lastProgress;
      if (idle < this.#timeoutMs) return this.#armTimer(this.#timeoutMs - idle + 1, reason);
      const what = this.#phase === 'running' ? `no complete update within ${this.#timeoutMs} ms` : `no ServerInit within ${this.#timeoutMs} ms (${this.#phase})`;
      this.#finish(new LoadError(reason, what));
    }, ms);
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #settle(value: number): void {
    const p = this.#pending;
    this.#pending = null;
    this.#onUpdates = null;
    this.#clearTimer();
    p?.resolve(value);
  }

  /** Ends the session with an error: the pending call rejects; with nothing pending, the owner hears of it. */
  #finish(error: LoadError): void {
    if (this.#endError) return;
    this.#endError = error;
    const wasEnded = this.#phase === 'ended';
    this.#phase = 'ended';
    this.#clearTimer();
    this.#conn?.destroy();
    const p = this.#pending;
    this.#pending = null;
    this.#onUpdates = null;
    if (p) p.reject(error);
    else if (!wasEnded) this.onUnexpectedEnd?.(error);
  }

  #onData(chunk: Buffer): void {
    this.#lastProgress = performance.now();
    switch (this.#phase) {
      case 'running': {
        const n = this.#reader!.receive(chunk);
        if (n > 0) this.#onUpdates?.(n);
        else if (n < 0) this.#finish(this.#reader!.failure!);
        return;
      }
      case 'handshake':
        return this.#onHandshake(chunk);
      case 'serverInit':
        return this.#onServerInit(chunk);
      default:
        return;
    }
  }

  #onHandshake(chunk: Buffer): void {
    for (const a of this.#handshake.receive(chunk)) {
      switch (a.type) {
        case 'send':
          this.#conn!.write(a.bytes);
          break;
        case 'failed': {
          const reason = a.error.details?.serverReason;
          return this.#finish(
            new LoadError(typeof reason === 'string' && reason !== '' ? `rfb-refused: ${reason.slice(0, 120)}` : `rfb-${a.error.code}`, a.error.message),
          );
        }
        case 'startTls':
          return this.#finish(new LoadError('rfb-unsupported', 'VeNCrypt TLS toward the load tester is not supported; give it security none or vncauth'));
        case 'established':
          this.#phase = 'serverInit';
          this.#initReader = new ServerInitReader();
          this.#conn!.write(clientInit(true));
          if (a.trailing.length > 0) this.#onServerInit(a.trailing);
          return;
      }
    }
  }

  #onServerInit(chunk: Buffer): void {
    const r = this.#initReader!.receive(chunk);
    if (r.type === 'pending') return;
    if (r.type === 'failed') return this.#finish(new LoadError(`rfb-${r.error.code}`, r.error.message));
    const init = r.init;
    this.#init = init;
    this.#initReader = null;
    if (![8, 16, 32].includes(init.pixelFormat.bitsPerPixel)) {
      return this.#finish(new LoadError('rfb-protocol', `ServerInit with ${init.pixelFormat.bitsPerPixel} bits per pixel`));
    }
    this.#reader = new UpdateReader({ width: init.width, height: init.height, bitsPerPixel: init.pixelFormat.bitsPerPixel, verify: this.#opts.verify });
    this.#request = updateRequest(init.width, init.height);
    this.#phase = 'running';
    this.#conn!.write(openingMessages(init));
    this.#settle(0);
    if (r.trailing.length > 0) this.#onData(r.trailing);
  }

  #onEnd(how: ConnEnd): void {
    this.#endedBy = how;
    if (this.#phase === 'ended') {
      this.#flushCloseWaiters();
      return;
    }
    const error =
      how.kind === 'error'
        ? how.error
        : new LoadError(
            how.code === null ? 'closed-by-peer' : `closed-by-peer-${how.code}`,
            `${this.#phase === 'running' ? 'running session' : `session in ${this.#phase}`} closed by the peer${how.reason ? `: ${how.reason}` : ''}`,
          );
    this.#finish(error);
    this.#flushCloseWaiters();
  }

  #flushCloseWaiters(): void {
    const ws = this.#closeWaiters;
    this.#closeWaiters = [];
    for (const w of ws) w();
  }
}
