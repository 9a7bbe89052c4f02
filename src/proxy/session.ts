import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { RawData, WebSocket } from 'ws';
import { toVncgateError, type VncgateError } from '../errors.js';
import type { ResolvedTarget } from '../target.js';
import { runRelease, SessionAuthorization } from './authorization/index.js';
import { ControlChannel } from './control-channel.js';
import { connectTarget, exchangeInit, type BackendConnection } from './backend-connector.js';
import type { ReadBuffer } from './read-buffer.js';
import { Relay } from './relay.js';
import { BrowserHandshake } from './browser-handshake.js';
import { backendClosed, backendSocketError, browserPingFlood, browserWebSocketError, isDeadline } from './session-faults.js';
import { SessionPolicy } from './session-policy.js';
import { SessionReport } from './session-report.js';
import type { ShareMember, ShareRegistry } from './share/registry.js';
import { OPEN_POLICY, type SharedViewer } from './share/viewer.js';
import type { SessionDeps, SessionLimits, SessionStatus } from './session-types.js';
import { closeBrowser, releaseUpgradeRequest } from './ws-socket.js';

export type { SessionDeps };

/**
 * One console session: browser WebSocket ⇄ vncgate ⇄ console endpoint, its states and their
 * changes. authorizing (consume the token: authorization/) → connecting (TCP) → handshaking (RFB
 * with the endpoint, TLS: backend-connector.ts) → piping (relay.ts) → closing → closed. The
 * browser's side (browser-handshake.ts) runs alongside from the first moment.
 */
export class ConsoleSession {
  readonly id: string;
  readonly #ws: WebSocket;
  #release: (() => void) | null = null;
  readonly #limits: SessionLimits;
  readonly #onClosed: (s: ConsoleSession) => void;
  readonly #browserTls: boolean;
  /** Dropped once used: it holds the request's query (the token) and nothing later needs it. */
  #authorization: SessionAuthorization | null;
  /** Its log lines and events. */
  readonly #report: SessionReport;
  /** Cancels authorizing and connecting; not needed (and dropped) once piping. */
  #abort: AbortController | null;
  #status: SessionStatus = 'authorizing';
  #backend: Socket | null = null;
  #backendInfo: BackendConnection | null = null;
  /** The backend's reused receive buffer (plain TCP only). */
  #reads: ReadBuffer | null = null;
  /** The browser's side until piping: its RFB handshake and ClientInit. */
  readonly #browser: BrowserHandshake;
  /** Owns both sockets' data paths once piping. */
  #relay: Relay | SharedViewer | null = null;
  /** Shared consoles, and this session's hold on one (if its profile shares). */
  readonly #share: ShareRegistry | null;
  #member: ShareMember | null = null;
  #handshakeTimer: NodeJS.Timeout | null = null;
  #closeError: VncgateError | null = null;
  /** vncgate's text frames to its own console page (a no-op toward stock noVNC). */
  readonly control: ControlChannel;
  readonly #policy = new SessionPolicy(); // view-only and clipboard: told to the page, enforced in the relay
  /** Clocks read and set by the registry's heartbeat. */
  lastPingAt = Date.now();
  pongPending = false;

  constructor(ws: WebSocket, token: string | null, remote: string, deps: SessionDeps, logFields: Record<string, string> = {}) {
    this.#ws = ws;
    this.#limits = deps.limits;
    this.#onClosed = deps.onClosed;
    this.#browserTls = deps.browserTls === true;
    this.#share = deps.share ?? null;
    this.#authorization = new SessionAuthorization(deps.authorize);
    this.id = this.#authorization.sessionId;
    this.#abort = this.#authorization.abort;
    this.control = new ControlChannel(ws, () => this.#report.log);
    this.#browser = new BrowserHandshake(ws, deps.limits.clientInit, {
      end: (error, by) => this.#close(error, by),
      fault: (error) => this.fail(error),
      text: (data) => this.control.receive(data),
      forward: (bytes) => this.#backend?.write(bytes),
      initialised: () => {
        if (!this.#isEnding()) this.#startPiping();
      },
    });
    this.#report = new SessionReport(this.id, token, remote, deps.log, deps.events ?? null, logFields, deps.recordings ?? null);
    this.#report.grant = deps.grant ?? null;
  }

  /** Counters and clocks read by the registry's sweep and the metrics. */
  get bytesToBrowser(): number {
    return this.#relay?.bytesToBrowser ?? 0;
  }
  get bytesToBackend(): number {
    return this.#relay?.bytesToBackend ?? 0;
  }

  get lastActivity(): number {
    return this.#relay?.lastActivity ?? this.#browser.lastActivity;
  }
  get status(): SessionStatus {
    return this.#status;
  }

  /** When the authorization behind this session runs out, if it does (epoch ms). */
  get expiresAtMs(): number | undefined {
    return this.#report.target?.expiresAtMs;
  }

  get log(): Logger {
    return this.#report.log;
  }
  get startedAt(): number {
    return this.#report.startedAt;
  }

  /**
   * Begins the session. With `refuse`, the browser is only told why (capacity, say): the token is
   * not consumed, so the same link works once the reason has passed.
   */
  start(refuse?: VncgateError): void {
    const ws = this.#ws;
    releaseUpgradeRequest(ws);
    ws.on('message', this.#browser.onMessage);
    ws.on('close', this.#onBrowserClose);
    ws.on('error', this.#onBrowserError);
    ws.on('pong', () => void (this.pongPending = false));
    ws.on('ping', this.#onBrowserPing);
    const ms = this.#limits.handshakeTimeoutMs;
    this.#handshakeTimer = setTimeout(() => this.fail(this.#browser.deadlineError(this.#status, ms)), ms);
    this.#browser.start();
    if (refuse) {
      this.#authorization?.discard(this.#report.log);
      this.#authorization = null;
      this.fail(refuse);
    } else void this.#authorizeAndConnect();
  }

  #setStatus(to: SessionStatus): void {
    if (this.#status === to) return;
    this.#report.log.debug({ from: this.#status, to }, 'session status');
    this.#status = to;
  }

  async #authorizeAndConnect(): Promise<void> {
    try {
      const authorization = this.#authorization;
      const abort = this.#abort;
      this.#authorization = null;
      if (!authorization || !abort) throw new Error('session started twice');
      const { target, release, policy, takeControl } = await this.#report.authorized(authorization.result());
      this.#release = release ?? null;
      this.#policy.apply(policy, this.control);
      if (this.#isEnding()) return this.#runRelease();
      this.#setStatus('connecting');
      const onConnected = (): void => {
        this.#report.phase('connect');
        this.#setStatus('handshaking');
      };
      if (this.#share?.sharing(target)) return await this.#joinShared(target, onConnected, takeControl === true);
      const conn = await connectTarget(target, this.#limits, { signal: abort.signal, log: this.#report.log, onConnected });
      this.#report.phase('backend_handshake');
      if (this.#isEnding()) return void conn.socket.destroy();
      this.#backend = conn.socket;
      this.#backendInfo = conn;
      this.#reads = conn.reads;
      conn.socket.on('error', this.#onBackendError);
      conn.socket.on('close', this.#onBackendClose);
      void this.#initialise(conn);
      this.#browser.accept();
    } catch (err) {
      this.fail(toVncgateError(err));
    }
  }

  /** A shared console: the connection is the hub's (opened by the first session); ServerInit comes from it. */
  async #joinShared(target: ResolvedTarget, onConnected: () => void, takeControl: boolean): Promise<void> {
    const member = (this.#member = await this.#share!.join(target, onConnected, takeControl));
    if (this.#isEnding()) return member.leave();
    this.#report.phase('backend_handshake');
    this.#backendInfo = member.hub.connection;
    this.#browser.accept();
    this.#browser.fromEndpoint(Buffer.alloc(0), Buffer.alloc(0), member.hub.init);
  }

  /**
   * The endpoint accepted authentication: vncgate sends its own ClientInit right away (unless the
   * browser's is to be forwarded), while the browser is told SecurityResult OK in parallel.
   * ServerInit is read (bounded) and held until the browser's ClientInit has arrived; the
   * session's handshake deadline bounds the wait.
   */
  async #initialise(conn: BackendConnection): Promise<void> {
    const mode = this.#limits.clientInit;
    try {
      const r = await exchangeInit(conn, mode === 'browser' ? null : mode === 'shared', this.#limits.handshakeTimeoutMs);
      if (this.#isEnding()) return;
      this.#browser.fromEndpoint(r.raw, r.trailing, r.init);
    } catch (err) {
      this.fail(toVncgateError(err));
    }
  }

  #startPiping(): void {
    const backend = this.#backend;
    const info = this.#backendInfo;
    if ((!backend && !this.#member) || !info) throw new Error('piping without a backend');
    const init = this.#browser.take();
    if (this.#handshakeTimer) clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = null;
    this.#abort = null;
    this.#setStatus('piping');
    this.#ws.off('message', this.#browser.onMessage);
    const onBrowserFault = (e: VncgateError): void => this.fail(e);
    const onBrowserText = (data: RawData): VncgateError | null => this.control.receive(data);
    // A shared console's viewer is not recorded (the hub's stream is not this browser's alone).
    const relay = this.#member
      ? this.#member.pipe(this.#ws, { policy: this.#policy.policy ?? OPEN_POLICY, onFault: onBrowserFault, onEnd: (e) => this.#close(e, 'backend'), onBrowserText, control: this.control })
      : new Relay(this.#ws, backend!, this.#reads, {
          highWaterMarkBytes: this.#limits.highWaterMarkBytes,
          browserTls: this.#browserTls,
          onBrowserFault,
          onBrowserText,
          filter: this.#policy.filter,
          tap: this.#report.recorder(init.init),
        });
    this.#relay = relay;
    relay.start(init.serverInit, init.browserTrailing);
    this.#report.started(info, init);
    // Only the log line above needed the handshake details; an idle session should not carry them.
    this.#backendInfo = null;
    relay.resume();
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

  readonly #onBrowserClose = (code: number): void => this.#close(null, 'browser', code);

  readonly #onBrowserError = (err: Error): void => {
    this.#report.log.warn({ err: { message: err.message, code: (err as { code?: unknown }).code } }, 'browser WebSocket error');
    this.#close(browserWebSocketError(err), 'browser');
  };

  /** A ping on a connection no longer open that vncgate is not closing: see browserPingFlood. */
  readonly #onBrowserPing = (): void => {
    if (this.#ws.readyState === this.#ws.OPEN || this.#isEnding()) return;
    this.#close(browserPingFlood(), 'browser');
  };

  readonly #onBackendError = (err: NodeJS.ErrnoException): void => {
    this.#close(backendSocketError(err), 'backend');
  };

  readonly #onBackendClose = (): void => {
    // The usual case: vncgate closed it itself while ending the session (no error to build).
    if (this.#isEnding()) return;
    this.#close(backendClosed(this.#status === 'piping'), 'backend');
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
    if (this.#status !== 'piping' && this.#closeError === null && !this.#browser.hasVerdict) {
      this.#closeError = error;
      this.#abort?.abort();
      if (this.#browser.refuse(error)) return;
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
    if (this.#handshakeTimer) clearTimeout(this.#handshakeTimer);
    this.#abort?.abort();
    this.#relay?.stop();
    this.#backend?.destroy();
    this.#member?.leave();
    const ws = this.#ws;
    ws.off('message', this.#browser.onMessage);
    closeBrowser(ws, this.#closeError);
    this.#runRelease();
    this.#setStatus('closed');
    this.#report.ended({
      error: this.#closeError,
      closedBy: by,
      browserCode,
      bytesToBrowser: this.bytesToBrowser,
      bytesToBackend: this.bytesToBackend,
      piped: this.#relay !== null,
      ...(this.#member ? { shared: this.#member.summary() } : {}),
    }, this.#policy.dropped());
    this.#onClosed(this);
  }

  #runRelease(): void {
    const r = this.#release;
    this.#release = null;
    runRelease(r, this.#report.log);
  }

  /** Immediate close (idle, lifetime, heartbeat, shutdown) from the registry. */
  terminate(error: VncgateError): void {
    if (this.#isEnding()) return;
    if (error.code === 'SESSION_ERR_HEARTBEAT') this.#ws.terminate();
    if (this.#status !== 'piping' && this.#closeError === null && !this.#browser.hasVerdict) {
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
