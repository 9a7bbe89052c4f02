import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { WebSocket, RawData } from 'ws';
import { VncgateError, toVncgateError, type ErrorCode } from '../errors.js';
import { LIMITS, RfbServerHandshake, type ServerAction, type ServerInit } from '../rfb/index.js';
import type { ConsoleTarget } from '../tokens/index.js';
import { tokenLogId } from '../tokens/index.js';
import { connectBackend, exchangeInit, type BackendConnection } from './backend-connector.js';
import type { Authorize, Authorized, ResolvedTarget, StartedAuthorization, TokenIssuer } from '../target.js';
import type { TargetPolicy } from '../target-policy.js';
import type { ReadBuffer } from './read-buffer.js';
import type { SessionEvents, SessionFacts } from './session-events.js';

export type SessionStatus = 'authorizing' | 'connecting' | 'handshaking' | 'piping' | 'closing' | 'closed';

export function newSessionId(): string {
  return randomBytes(6).toString('hex');
}

/** Starts `authorize` for a session not built yet (its outcome is handled by whoever adopts it, or by discardAuthorization). */
export function startAuthorization(authorize: Authorize): StartedAuthorization {
  const sessionId = newSessionId();
  const abort = new AbortController();
  const result = authorize(abort.signal, sessionId);
  // Not unhandled while it waits for its session: the session (or discardAuthorization) reads it.
  result.catch(() => undefined);
  return { sessionId, abort, result };
}

/** For a started authorization no session will adopt (the upgrade failed): cancel it and undo what it won. */
export function discardAuthorization(a: StartedAuthorization, log: Pick<Logger, 'error'>): void {
  a.abort.abort();
  a.result.then(
    (r) => {
      try {
        r.release?.();
      } catch (err) {
        log.error({ err }, 'session release failed');
      }
    },
    () => undefined,
  );
}

export type SessionLimits = {
  connectTimeoutMs: number;
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
  maxLifetimeMs: number;
  heartbeatIntervalMs: number;
  highWaterMarkBytes: number;
  /** ClientInit toward the endpoint: vncgate's own (shared/exclusive, sent at once) or the browser's. */
  clientInit: 'shared' | 'exclusive' | 'browser';
};

export type SessionDeps = {
  /** How to authorize the session, or an authorization already under way for it. */
  authorize: Authorize | StartedAuthorization;
  limits: SessionLimits;
  log: Logger;
  /** Called once when the session is closed (registry bookkeeping). */
  onClosed: (s: ConsoleSession) => void;
  /** The browser's connection is TLS (wss): see #onBackendData for what that changes. */
  browserTls?: boolean;
  /** Metrics and audit events: told at authorization, each set-up phase, start and end. */
  events?: SessionEvents;
};

/**
 * One console session: browser WebSocket ⇄ vncgate ⇄ console endpoint.
 *
 * authorizing (consume the token) → connecting (TCP) → handshaking (RFB with the endpoint, TLS)
 * → piping (raw bytes both ways, with backpressure) → closing → closed. The browser side of the
 * RFB handshake runs alongside from the first moment; it is answered with SecurityResult OK only
 * once the endpoint is authenticated, or with a failure whose reason noVNC shows.
 */
export class ConsoleSession {
  readonly id: string;
  readonly startedAt = Date.now();
  readonly #ws: WebSocket;
  #release: (() => void) | null = null;
  readonly #limits: SessionLimits;
  readonly #onClosed: (s: ConsoleSession) => void;
  readonly #browserTls: boolean;
  /** Dropped once used: it holds the request's query (the token) and nothing later needs it. */
  #authorize: Authorize | StartedAuthorization | null;
  readonly #log: Logger;
  /** Cancels authorizing and connecting; not needed (and dropped) once piping. */
  #abort: AbortController | null;
  readonly #rfb = new RfbServerHandshake({ security: ['none'] });
  #status: SessionStatus = 'authorizing';
  #backend: Socket | null = null;
  #backendInfo: BackendConnection | null = null;
  /** The backend's reused receive buffer (plain TCP only). */
  #reads: ReadBuffer | null = null;
  /** The browser's socket under `ws`, for frames built in place; null if an extension was negotiated. */
  readonly #browserSocket: Socket | null;
  #target: ResolvedTarget | null = null;
  #browserTrailing: Buffer | null = null;
  /**
   * Initialisation (RFC 6143 §7.3), between both SecurityResults and piping: the browser's
   * ClientInit (one byte) and the endpoint's ServerInit, both needed before bytes flow raw.
   */
  #browserClientInit: number | null = null;
  #serverInit: { bytes: Buffer; init: ServerInit } | null = null;
  #handshakeTimer: NodeJS.Timeout | null = null;
  #closeError: VncgateError | null = null;
  #closedBy: 'browser' | 'backend' | 'vncgate' | null = null;
  #backendPaused = false;
  readonly #events: SessionEvents | null;
  readonly #remote: string;
  readonly #tokenId: string | null;
  readonly #node: string | null;
  #issuedBy: TokenIssuer | null = null;
  /** Reached piping (the console opened). */
  #piped = false;
  /** Set-up phases are timed from here (monotonic clock). */
  readonly #t0 = performance.now();
  /** Counters and clocks read by the registry's sweep. */
  bytesToBrowser = 0;
  bytesToBackend = 0;
  lastActivity = Date.now();
  lastPingAt = Date.now();
  pongPending = false;

  constructor(ws: WebSocket, token: string | null, remote: string, deps: SessionDeps, logFields: Record<string, string> = {}) {
    this.#ws = ws;
    this.#limits = deps.limits;
    this.#onClosed = deps.onClosed;
    this.#browserTls = deps.browserTls === true;
    this.#browserSocket = ws.extensions === '' ? (rawSocketOf(ws) ?? null) : null;
    this.#authorize = deps.authorize;
    const started = typeof deps.authorize === 'function' ? null : deps.authorize;
    this.id = started?.sessionId ?? newSessionId();
    this.#abort = started?.abort ?? new AbortController();
    this.#events = deps.events ?? null;
    this.#remote = remote;
    this.#tokenId = token ? tokenLogId(token) : null;
    this.#node = logFields.node ?? null;
    // Never the token itself: a short hash correlates log lines with the issuing side.
    this.#log = deps.log.child({ sessionId: this.id, remote, ...(this.#tokenId !== null ? { tokenId: this.#tokenId } : {}), ...logFields });
  }

  /** Who and what this session is, for its events. */
  #facts(): SessionFacts {
    return { sessionId: this.id, remote: this.#remote, tokenId: this.#tokenId, node: this.#node, issuedBy: this.#issuedBy, target: this.#target };
  }

  #phase(phase: 'authorize' | 'connect' | 'backend_handshake' | 'total'): void {
    this.#events?.phase(phase, (performance.now() - this.#t0) / 1000);
  }

  /** The authorization's outcome, reported once (metrics, audit), then handed on as is. */
  async #authorized(p: Promise<Authorized>): Promise<Authorized> {
    try {
      const a = await p;
      this.#issuedBy = a.issuedBy ?? null;
      this.#target = a.target;
      this.#phase('authorize');
      this.#events?.authorized(this.#facts(), null);
      return a;
    } catch (err) {
      this.#events?.authorized(this.#facts(), toVncgateError(err));
      throw err;
    }
  }

  get status(): SessionStatus {
    return this.#status;
  }

  /** When the authorization behind this session runs out, if it does (epoch ms). */
  get expiresAtMs(): number | undefined {
    return this.#target?.expiresAtMs;
  }

  get log(): Logger {
    return this.#log;
  }

  /**
   * Begins the session. With `refuse`, the browser is only told why (capacity, say): the token is
   * not consumed, so the same link works once the reason has passed.
   */
  start(refuse?: VncgateError): void {
    const ws = this.#ws;
    releaseUpgradeRequest(ws);
    ws.on('message', this.#onBrowserMessage);
    ws.on('close', this.#onBrowserClose);
    ws.on('error', this.#onBrowserError);
    ws.on('pong', () => {
      this.pongPending = false;
    });
    ws.on('ping', this.#onBrowserPing);
    this.#handshakeTimer = setTimeout(() => this.fail(this.#deadlineError()), this.#limits.handshakeTimeoutMs);
    this.#applyBrowser(this.#rfb.start());
    if (refuse) {
      const a = this.#authorize;
      this.#authorize = null;
      if (a !== null && typeof a !== 'function') discardAuthorization(a, this.#log);
      this.fail(refuse);
    } else void this.#authorizeAndConnect();
  }

  /**
   * The handshake deadline passed: whose turn was it? The browser owes its ProtocolVersion and
   * security choice from the start, and its ClientInit once told SecurityResult OK; the rest is the
   * endpoint's part (or the token store's, or Ironic's).
   */
  #deadlineError(): VncgateError {
    const s = this.#rfb.state;
    const ms = this.#limits.handshakeTimeoutMs;
    const browserLate = s === 'version' || s === 'choice' || s === 'vncResponse' || (s === 'established' && this.#browserClientInit === null);
    return browserLate
      ? new VncgateError('SESSION_ERR_BROWSER_TIMEOUT', `browser did not complete its VNC handshake within ${ms} ms (waiting for its ${s === 'established' ? 'ClientInit' : s})`)
      : new VncgateError('SESSION_ERR_HANDSHAKE_TIMEOUT', `session not established after ${ms} ms (${this.#status})`);
  }

  #setStatus(to: SessionStatus): void {
    if (this.#status === to) return;
    this.#log.debug({ from: this.#status, to }, 'session status');
    this.#status = to;
  }

  async #authorizeAndConnect(): Promise<void> {
    try {
      const authorize = this.#authorize;
      const abort = this.#abort;
      this.#authorize = null;
      if (!authorize || !abort) throw new Error('session started twice');
      const { target, release } = await this.#authorized(typeof authorize === 'function' ? authorize(abort.signal, this.id) : authorize.result);
      this.#release = release ?? null;
      this.#target = target;
      if (this.#isEnding()) {
        this.#runRelease();
        return;
      }
      this.#setStatus('connecting');
      const conn = await connectBackend({
        host: target.host,
        port: target.port,
        security: target.security,
        connectTimeoutMs: this.#limits.connectTimeoutMs,
        handshakeTimeoutMs: this.#limits.handshakeTimeoutMs,
        signal: abort.signal,
        log: this.#log,
        onConnected: () => {
          this.#phase('connect');
          this.#setStatus('handshaking');
        },
        tunnelPath: target.tunnelPath ?? null,
        policy: target.policy ?? null,
      });
      this.#phase('backend_handshake');
      if (this.#isEnding()) {
        conn.socket.destroy();
        return;
      }
      this.#backend = conn.socket;
      this.#backendInfo = conn;
      this.#reads = conn.reads;
      conn.socket.on('error', this.#onBackendError);
      conn.socket.on('close', this.#onBackendClose);
      void this.#initialise(conn);
      this.#applyBrowser(this.#rfb.accept());
    } catch (err) {
      this.fail(toVncgateError(err));
    }
  }

  readonly #onBrowserMessage = (data: RawData, isBinary: boolean): void => {
    const chunk = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (!isBinary) {
      // noVNC only sends binary frames; base64 text framing (websockify's legacy mode) is not offered.
      this.fail(new VncgateError('SESSION_ERR_BROWSER_PROTOCOL', 'browser sent a text frame'));
      return;
    }
    this.lastActivity = Date.now();
    if (this.#status === 'piping') {
      this.#toBackend(chunk);
      return;
    }
    if (this.#rfb.established) {
      this.#onBrowserInit(chunk);
      return;
    }
    this.#applyBrowser(this.#rfb.receive(chunk));
  };

  /**
   * The endpoint accepted authentication: vncgate sends its own ClientInit right away (unless the
   * browser's is to be forwarded), while the browser is told SecurityResult OK in parallel, so the
   * endpoint's ServerInit and the browser's ClientInit travel at the same time. ServerInit is
   * read (bounded) and held until the browser's ClientInit has arrived; the session's handshake
   * deadline bounds the wait.
   */
  async #initialise(conn: BackendConnection): Promise<void> {
    const mode = this.#limits.clientInit;
    try {
      const r = await exchangeInit(conn, mode === 'browser' ? null : mode === 'shared', this.#limits.handshakeTimeoutMs);
      if (this.#isEnding()) return;
      // Forwarded as received (ServerInit and whatever followed it), not re-encoded.
      this.#serverInit = { bytes: r.trailing.length > 0 ? Buffer.concat([r.raw, r.trailing]) : r.raw, init: r.init };
      this.#maybeStartPiping();
    } catch (err) {
      this.fail(toVncgateError(err));
    }
  }

  /** Browser bytes after its SecurityResult and before piping: its ClientInit, and anything pipelined after it. */
  #onBrowserInit(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.#browserClientInit === null) {
      this.#browserClientInit = chunk[0]!;
      if (this.#limits.clientInit === 'browser') this.#backend?.write(chunk.subarray(0, 1));
      chunk = chunk.subarray(1);
    }
    if (chunk.length > 0) {
      const held = this.#browserTrailing;
      const total = (held?.length ?? 0) + chunk.length;
      // Bounded like any handshake input: a browser does not send before ServerInit.
      if (total > LIMITS.maxHandshakeBufferBytes) {
        this.fail(new VncgateError('SESSION_ERR_BROWSER_PROTOCOL', `browser sent more than ${LIMITS.maxHandshakeBufferBytes} bytes before ServerInit`));
        return;
      }
      this.#browserTrailing = held ? Buffer.concat([held, chunk]) : chunk;
    }
    this.#maybeStartPiping();
  }

  #applyBrowser(actions: ServerAction[]): void {
    for (const a of actions) {
      switch (a.type) {
        case 'send':
          if (this.#ws.readyState === this.#ws.OPEN) this.#ws.send(a.bytes);
          break;
        case 'failed':
          this.#close(a.error, a.error.code.startsWith('RFB_ERR_CLIENT') ? 'browser' : 'vncgate');
          return;
        case 'established':
          this.#onBrowserInit(a.trailing);
          return;
      }
    }
  }

  #maybeStartPiping(): void {
    if (this.#browserClientInit !== null && this.#serverInit !== null && !this.#isEnding()) this.#startPiping();
  }

  #startPiping(): void {
    const backend = this.#backend;
    const info = this.#backendInfo;
    const serverInit = this.#serverInit;
    if (!backend || !info || !serverInit) throw new Error('piping without a backend');
    this.#serverInit = null;
    if (this.#handshakeTimer) clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = null;
    this.#abort = null;
    this.#setStatus('piping');
    this.#piped = true;
    backend.on('data', this.#onBackendData);
    this.#onBackendData(serverInit.bytes);
    if (this.#browserTrailing && this.#browserTrailing.length > 0) this.#toBackend(this.#browserTrailing);
    this.#browserTrailing = null;
    // Logged once ServerInit is on its way: the line's write is not in the time to a first frame.
    const started = {
      target: this.#target?.label,
      profile: this.#target?.profile,
      backendVersion: info.info.serverVersion,
      security: info.info.security,
      tls: info.tls ? { protocol: info.tls.protocol, cipher: info.tls.cipher } : null,
      framebuffer: `${serverInit.init.width}x${serverInit.init.height}`,
      shared: this.#limits.clientInit === 'browser' ? this.#browserClientInit !== 0 : this.#limits.clientInit === 'shared',
      setupMs: Date.now() - this.startedAt,
    };
    this.#log.info(started, 'session started');
    this.#phase('total');
    this.#events?.started(this.#facts(), started);
    // Only the log line above needed the handshake details; an idle session should not carry them.
    this.#backendInfo = null;
    backend.resume();
  }

  /**
   * Backend → browser, pausing the backend while too much is queued toward the browser.
   *
   * The hot path: one call per socket read (up to ReadBuffer.MAX). `ws.bufferedAmount` already counts what
   * is queued in user space, so a chunk carries no callback of its own; only the send that crosses
   * the high-water mark does, and since writes complete in order, its callback means everything
   * before it has reached the kernel as well.
   */
  readonly #onBackendData = (chunk: Buffer): void => {
    this.bytesToBrowser += chunk.length;
    this.lastActivity = Date.now();
    const ws = this.#ws;
    if (ws.readyState !== ws.OPEN) return;
    const queued = ws.bufferedAmount;
    // A read from the reused buffer goes out as one frame built in place (header in the buffer's
    // headroom) straight to the browser's socket, in order with anything `ws` itself writes: with no
    // extension negotiated, `ws` writes every frame to that socket at once, never queueing it.
    const raw = this.#browserSocket;
    const frame = raw !== null ? (this.#reads?.framed(chunk) ?? null) : null;
    if (this.#backendPaused || queued + chunk.length <= this.#limits.highWaterMarkBytes) {
      if (frame !== null) raw!.write(frame);
      else ws.send(chunk);
      // When nothing references the chunk any more, the backend's receive buffer serves the next
      // read too: over plain TCP when the write went through to the kernel at once (nothing left
      // queued); over TLS when nothing was queued before it, because then the frame went straight
      // into Node's TLS layer, which encrypts the cleartext or copies what it cannot encrypt yet
      // before returning (its write completes later, when the record reaches the socket).
      if (ws.bufferedAmount === 0 || (this.#browserTls && queued === 0)) this.#reads?.reclaim();
      return;
    }
    this.#backendPaused = true;
    this.#backend?.pause();
    if (frame !== null) raw!.write(frame, this.#onBrowserDrained);
    else ws.send(chunk, this.#onBrowserDrained);
  };

  readonly #onBrowserDrained = (): void => {
    this.#backendPaused = false;
    if (this.#status === 'piping') this.#backend?.resume();
  };

  /** Browser → backend, pausing the WebSocket while the backend socket is full. */
  #toBackend(chunk: Buffer): void {
    const backend = this.#backend;
    if (!backend || backend.destroyed) return;
    this.bytesToBackend += chunk.length;
    if (!backend.write(chunk)) {
      this.#ws.pause();
      backend.once('drain', () => {
        if (this.#status === 'piping') this.#ws.resume();
      });
    }
  }

  /** How often the backend's receive buffer was reused / replaced (plain TCP backends; else null). */
  get backendReads(): { reused: number; allocated: number } | null {
    return this.#reads ? { reused: this.#reads.reused, allocated: this.#reads.allocated } : null;
  }

  /** Bytes accepted from the backend but not yet written to the browser's socket. */
  get queuedToBrowserBytes(): number {
    return this.#ws.bufferedAmount;
  }

  /** Bytes accepted from the browser but not yet written to the backend's socket. */
  get queuedToBackendBytes(): number {
    return this.#backend?.writableLength ?? 0;
  }

  readonly #onBrowserClose = (code: number): void => {
    this.#close(null, 'browser', code);
  };

  /** `ws` refused a frame (closing with 1002, or 1009 for one past session.maxMessageBytes). */
  readonly #onBrowserError = (err: Error): void => {
    const wsCode = (err as { code?: unknown }).code;
    const code = wsCode === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'SESSION_ERR_BROWSER_TOO_LARGE' : 'SESSION_ERR_BROWSER_PROTOCOL';
    this.#log.warn({ err: { message: err.message, code: wsCode } }, 'browser WebSocket error');
    this.#close(new VncgateError(code, `browser WebSocket error: ${err.message}`, { cause: err }), 'browser');
  };

  /**
   * `ws` answers pings itself, and terminates a connection whose browser sends them faster than it
   * reads the pongs, without an 'error' event: the close that follows would read as an ordinary
   * browser leaving. It emits the ping after terminating, so a ping on a connection no longer open
   * that vncgate is not closing is that flood.
   */
  readonly #onBrowserPing = (): void => {
    if (this.#ws.readyState === this.#ws.OPEN || this.#isEnding()) return;
    this.#close(new VncgateError('SESSION_ERR_BROWSER_FLOOD', 'browser sent pings faster than it read the pongs; ws cut the connection'), 'browser');
  };

  readonly #onBackendError = (err: NodeJS.ErrnoException): void => {
    this.#close(new VncgateError('SESSION_ERR_BACKEND_CLOSED', `console endpoint error: ${err.code ?? err.message}`, { cause: err }), 'backend');
  };

  readonly #onBackendClose = (): void => {
    // The usual case: vncgate closed it itself while ending the session (no error to build).
    if (this.#isEnding()) return;
    // Before piping the endpoint owed us ServerInit: that is a failed handshake, not an ordinary end.
    const error =
      this.#status === 'piping'
        ? new VncgateError('SESSION_ERR_BACKEND_CLOSED', 'console endpoint closed the connection')
        : new VncgateError('BACKEND_ERR_CLOSED', 'console endpoint closed the connection before ServerInit');
    this.#close(error, 'backend');
  };

  #isEnding(): boolean {
    return this.#status === 'closing' || this.#status === 'closed';
  }

  /**
   * Ends the session because of `error`. Before piping, the browser is told why through an RFB
   * SecurityResult failure (once its handshake has got that far; the deadline bounds the wait).
   */
  fail(error: VncgateError): void {
    if (this.#isEnding()) return;
    // Already refused: the browser is being told the first reason; later ones (the aborted
    // connect, say) change nothing. Only the deadline cuts the wait short.
    if (this.#closeError !== null && this.#status !== 'piping' && !isDeadline(error)) return;
    if (this.#status !== 'piping' && this.#closeError === null && !this.#rfb.hasVerdict) {
      this.#closeError = error;
      this.#abort?.abort();
      const actions = this.#rfb.reject(error);
      if (actions.length > 0) {
        this.#applyBrowser(actions);
        return;
      }
      // The browser has not reached the point where a reason can be sent; it gets until the
      // handshake deadline, which is already running.
      if (!isDeadline(error)) return;
    }
    this.#close(this.#closeError ?? error, 'vncgate');
  }

  #close(error: VncgateError | null, by: 'browser' | 'backend' | 'vncgate', browserCode?: number): void {
    if (this.#isEnding()) return;
    this.#setStatus('closing');
    this.#closeError = error ?? this.#closeError;
    this.#closedBy = by;
    if (this.#handshakeTimer) clearTimeout(this.#handshakeTimer);
    this.#abort?.abort();
    this.#backend?.destroy();
    const ws = this.#ws;
    ws.off('message', this.#onBrowserMessage);
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) {
      const e = this.#closeError;
      // Close frames carry at most 123 bytes of reason; ours are short ASCII.
      if (e) ws.close(e.wsClose, e.publicReason.slice(0, 120));
      else ws.close(1000);
      // A browser that does not complete the closing handshake is cut off.
      setTimeout(() => ws.terminate(), 5_000).unref();
    }
    this.#runRelease();
    this.#setStatus('closed');
    const e = this.#closeError;
    const code: ErrorCode | null = e?.code ?? null;
    const line = {
      durationMs: Date.now() - this.startedAt,
      bytesToBrowser: this.bytesToBrowser,
      bytesToBackend: this.bytesToBackend,
      closedBy: this.#closedBy,
      code,
      ...(browserCode !== undefined ? { browserCloseCode: browserCode } : {}),
      ...(e && by !== 'browser' ? { reason: e.message } : {}),
      ...(this.#target ? { target: this.#target.label } : {}),
    };
    // Peer faults warn; ordinary ends (browser left, endpoint closed after piping) are info.
    const ordinary = code === null || code === 'SESSION_ERR_BACKEND_CLOSED' || code === 'SESSION_ERR_IDLE_TIMEOUT' || code === 'SESSION_ERR_MAX_LIFETIME';
    if (ordinary) this.#log.info(line, 'session ended');
    else this.#log.warn(line, 'session ended');
    this.#events?.ended(this.#facts(), { ...line, ordinary, closedBy: by, piped: this.#piped, wsCloseCode: browserCode ?? e?.wsClose ?? 1000 });
    this.#onClosed(this);
  }

  #runRelease(): void {
    const r = this.#release;
    this.#release = null;
    try {
      r?.();
    } catch (err) {
      this.#log.error({ err }, 'session release failed');
    }
  }

  /** Immediate close (idle, lifetime, heartbeat, shutdown) from the registry. */
  terminate(error: VncgateError): void {
    if (this.#isEnding()) return;
    if (error.code === 'SESSION_ERR_HEARTBEAT') this.#ws.terminate();
    if (this.#status !== 'piping' && this.#closeError === null && !this.#rfb.hasVerdict) {
      this.fail(error);
      if (this.#isEnding()) return;
    }
    this.#close(error, 'vncgate');
  }

  ping(): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    this.pongPending = true;
    this.lastPingAt = Date.now();
    this.#ws.ping();
  }
}

/** The handshake deadline's errors: they end a session even while the browser is still owed a reason. */
function isDeadline(e: VncgateError): boolean {
  return e.code === 'SESSION_ERR_HANDSHAKE_TIMEOUT' || e.code === 'SESSION_ERR_BROWSER_TIMEOUT';
}

/**
 * Lets go of what the HTTP upgrade left attached to a WebSocket for its whole life: the socket's
 * `_httpMessage` (the ServerResponse @fastify/websocket made, holding the request with its headers
 * and query string, and fastify's request and reply) and @fastify/websocket's own 'error' listener,
 * whose closure holds the same request and reply: about 4 KiB per idle session, measured with heap
 * snapshots of idle sessions. Our 'error' listener, added right after, handles errors — as
 * a peer fault (warn) rather than the plugin's error-level log line.
 */
function releaseUpgradeRequest(ws: WebSocket): void {
  ws.removeAllListeners('error');
  const raw = rawSocketOf(ws) as (Socket & { _httpMessage?: { detachSocket?: (s: Socket) => void } | null }) | undefined;
  const res = raw?._httpMessage;
  if (raw && res && typeof res.detachSocket === 'function') res.detachSocket(raw);
}

/** The socket `ws` writes to (a TLS socket over wss). */
function rawSocketOf(ws: WebSocket): Socket | undefined {
  return (ws as unknown as { _socket?: Socket })._socket;
}
