import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { VncgateError, toVncgateError } from '../errors.js';
import { RfbClientHandshake, ServerInitReader, clientInit, type ClientAction, type ClientHandshakeInfo, type ServerInit } from '../rfb/index.js';
import type { BackendSecurity } from '../target.js';
import { socketErrorCode } from './backend-tcp.js';
import { startBackendTls, type TlsSummary } from './backend-tls.js';

/** What the RFB handshake with a console endpoint needs, once its TCP connection is up. */
export type HandshakeOptions = {
  port: number;
  security: BackendSecurity;
  /** Deadline for the RFB handshake (including TLS), from the TCP connection. */
  handshakeTimeoutMs: number;
  signal?: AbortSignal | undefined;
  log?: Pick<Logger, 'warn' | 'debug'> | undefined;
  /** Nova's `internal_access_path`: an HTTP CONNECT tunnel before RFB (see ConnectOptions). */
  tunnelPath?: string | null | undefined;
};

export type HandshakeOutcome = {
  socket: Socket;
  info: ClientHandshakeInfo;
  tls: TlsSummary | null;
  trailing: Buffer;
  tlsMs: number | null;
};

const MAX_TUNNEL_RESPONSE = 4096;

/**
 * The tunnel's HTTP response so far: 'more' until its blank line, then the RFB bytes after it, or
 * the refusal. Bounded to MAX_TUNNEL_RESPONSE bytes.
 */
function readTunnelResponse(buf: Buffer): { state: 'more' } | { state: 'open'; rest: Buffer } | { state: 'failed'; error: VncgateError } {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1) {
    return buf.length > MAX_TUNNEL_RESPONSE ? { state: 'failed', error: new VncgateError('BACKEND_ERR_TUNNEL', 'tunnel response headers too long') } : { state: 'more' };
  }
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(buf.subarray(0, end).toString('latin1'));
  if (!status || status[1] !== '200') {
    return { state: 'failed', error: new VncgateError('BACKEND_ERR_TUNNEL', `tunnel refused: ${buf.subarray(0, Math.min(end, 80)).toString('latin1').split('\r\n')[0]}`) };
  }
  return { state: 'open', rest: buf.subarray(end + 4) };
}

/**
 * Drives `engine` (the sans-I/O RFB client) over `raw` up to and excluding ClientInit: the tunnel
 * first when there is one, TLS when the engine asks for it, every step within the handshake
 * deadline. Resolves with the socket to go on with (the TLS one after an upgrade), paused.
 */
export function runHandshake(raw: Socket, engine: RfbClientHandshake, host: string, opts: HandshakeOptions): Promise<HandshakeOutcome> {
  return new Promise<HandshakeOutcome>((resolve, reject) => new HandshakeRun(raw, engine, host, opts, resolve, reject).start());
}

/** One handshake in progress: the socket it reads (the raw one, then the TLS one), its deadline, and how it ends (once). */
class HandshakeRun {
  readonly #raw: Socket;
  readonly #engine: RfbClientHandshake;
  readonly #host: string;
  readonly #opts: HandshakeOptions;
  readonly #resolve: (outcome: HandshakeOutcome) => void;
  readonly #reject: (error: VncgateError) => void;
  #current: Socket;
  #tlsSummary: TlsSummary | null = null;
  #tlsMs: number | null = null;
  #settled = false;
  /** The tunnel's HTTP response so far, while waiting for it; null once RFB flows (or without a tunnel). */
  #tunnel: Buffer | null;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    raw: Socket,
    engine: RfbClientHandshake,
    host: string,
    opts: HandshakeOptions,
    resolve: (outcome: HandshakeOutcome) => void,
    reject: (error: VncgateError) => void,
  ) {
    this.#raw = raw;
    this.#current = raw;
    this.#engine = engine;
    this.#host = host;
    this.#opts = opts;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#tunnel = opts.tunnelPath ? Buffer.alloc(0) : null;
  }

  start(): void {
    const opts = this.#opts;
    this.#timer = setTimeout(
      () => this.#fail(new VncgateError('BACKEND_ERR_TIMEOUT', `RFB handshake not finished after ${opts.handshakeTimeoutMs} ms (state ${this.#engine.state})`)),
      opts.handshakeTimeoutMs,
    );
    // An AbortSignal that has already fired fires no 'abort' event for a listener added now.
    if (opts.signal?.aborted) {
      this.#onAbort();
      return;
    }
    opts.signal?.addEventListener('abort', this.#onAbort, { once: true });
    this.#attach(this.#raw);
    if (opts.tunnelPath) {
      if (/[\r\n ]/.test(opts.tunnelPath)) {
        this.#fail(new VncgateError('BACKEND_ERR_TUNNEL', 'tunnel path contains whitespace or line breaks'));
        return;
      }
      this.#raw.write(`CONNECT ${opts.tunnelPath} HTTP/1.1\r\n\r\n`);
    }
  }

  readonly #onData = (chunk: Buffer): void => {
    if (this.#tunnel === null) {
      this.#apply(this.#engine.receive(chunk));
      return;
    }
    // Waiting for the tunnel's HTTP response; everything after its blank line is RFB.
    this.#tunnel = Buffer.concat([this.#tunnel, chunk]);
    const r = readTunnelResponse(this.#tunnel);
    if (r.state === 'more') return;
    if (r.state === 'failed') {
      this.#fail(r.error);
      return;
    }
    this.#tunnel = null;
    if (r.rest.length > 0) this.#apply(this.#engine.receive(r.rest));
  };

  readonly #onError = (err: NodeJS.ErrnoException): void =>
    this.#fail(new VncgateError(socketErrorCode(err), `console endpoint connection error: ${err.code ?? err.message}`, { cause: err }));

  readonly #onClose = (): void =>
    this.#fail(new VncgateError('BACKEND_ERR_CLOSED', `console endpoint closed the connection during the handshake (state ${this.#engine.state})`));

  readonly #onAbort = (): void => this.#fail(new VncgateError('SESSION_ERR_SHUTDOWN', 'handshake aborted'));

  #attach(s: Socket): void {
    s.on('data', this.#onData);
    s.on('error', this.#onError);
    s.on('close', this.#onClose);
  }

  #detach(s: Socket): void {
    s.off('data', this.#onData);
    s.off('error', this.#onError);
    s.off('close', this.#onClose);
  }

  #apply(actions: ClientAction[]): void {
    for (const a of actions) {
      if (this.#settled) return;
      switch (a.type) {
        case 'send':
          this.#current.write(a.bytes);
          break;
        case 'failed':
          this.#fail(a.error);
          return;
        case 'startTls':
          this.#upgrade(a.transport);
          return;
        case 'established':
          this.#settled = true;
          this.#cleanup();
          this.#current.pause();
          this.#resolve({ socket: this.#current, info: a.info, tls: this.#tlsSummary, trailing: a.trailing, tlsMs: this.#tlsMs });
          return;
      }
    }
  }

  #upgrade(transport: 'tls-anon' | 'tls-x509'): void {
    const raw = this.#raw;
    this.#detach(raw);
    const tlsSocket = startBackendTls(raw, transport, this.#host, this.#opts.port, this.#opts.security.tls ?? {}, this.#opts.log, {
      fail: (error) => this.#fail(error),
      secure: (summary, ms) => {
        this.#tlsSummary = summary;
        this.#tlsMs = ms;
        this.#attach(this.#current);
        try {
          this.#apply(this.#engine.tlsEstablished());
        } catch (err) {
          this.#fail(toVncgateError(err));
        }
      },
    });
    if (tlsSocket !== null) this.#current = tlsSocket;
  }

  #fail(err: VncgateError): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#cleanup();
    this.#current.destroy();
    if (this.#current !== this.#raw) this.#raw.destroy();
    this.#reject(err);
  }

  #cleanup(): void {
    clearTimeout(this.#timer);
    this.#opts.signal?.removeEventListener('abort', this.#onAbort);
    this.#detach(this.#current);
  }
}

/**
 * Sends ClientInit (unless `shared` is null: the caller forwards the browser's) and reads
 * ServerInit on an established connection, within a deadline; leaves the socket paused. Used by
 * `vncgate probe` and by every session.
 */
export function exchangeInit(
  conn: { socket: Socket; trailing: Buffer },
  shared: boolean | null,
  timeoutMs: number,
): Promise<{ init: ServerInit; raw: Buffer; trailing: Buffer; ms: number }> {
  const { socket } = conn;
  const reader = new ServerInitReader();
  const t = performance.now();
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (err: VncgateError | null, result?: { init: ServerInit; raw: Buffer; trailing: Buffer }): void => {
      done = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onError);
      socket.pause();
      if (err) reject(err);
      else resolve({ ...result!, ms: performance.now() - t });
    };
    const handle = (chunk: Buffer): void => {
      const r = reader.receive(chunk);
      if (r.type === 'done') finish(null, { init: r.init, raw: r.raw, trailing: r.trailing });
      else if (r.type === 'failed') finish(r.error);
    };
    const onData = (chunk: Buffer): void => handle(chunk);
    const onClose = (): void => finish(new VncgateError('BACKEND_ERR_CLOSED', 'console endpoint closed the connection before ServerInit'));
    const onError = (err: NodeJS.ErrnoException): void =>
      finish(new VncgateError(socketErrorCode(err), `console endpoint connection error: ${err.code ?? err.message}`, { cause: err }));
    const timer = setTimeout(() => finish(new VncgateError('BACKEND_ERR_TIMEOUT', `no ServerInit within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', onError);
    if (shared !== null) socket.write(clientInit(shared));
    if (conn.trailing.length > 0) handle(conn.trailing);
    if (!done) socket.resume();
  });
}
