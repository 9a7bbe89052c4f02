import type { Socket } from 'node:net';
import type { WebSocket, RawData } from 'ws';
import type { VncgateError } from '../errors.js';
import type { ClientMessageFilter } from '../rfb/index.js';
import type { ReadBuffer } from './read-buffer.js';
import { rawSocketOf } from './ws-socket.js';

export type RelayOptions = {
  /** Bytes queued toward the browser above which the backend is paused. */
  highWaterMarkBytes: number;
  /** The browser's connection is TLS (wss): see #onBackendData for what that changes. */
  browserTls: boolean;
  /** The browser broke the protocol while piping (a text frame): the session ends. */
  onBrowserFault: (error: VncgateError) => void;
  /** A text frame: a control request (control-channel.ts), or the fault returned. */
  onBrowserText: (data: RawData) => VncgateError | null;
  /** The session's view-only/clipboard filter (session-policy.ts); null: browser bytes pass untouched. */
  filter?: ClientMessageFilter | null;
};

/**
 * The piping phase of a console session: raw bytes both ways between the browser's WebSocket and
 * the console endpoint's socket, with backpressure each way. Built by the session once the
 * handshakes on both sides and the initialisation (ServerInit, ClientInit) are done; from then on
 * it owns both sockets' data paths. Counts bytes and activity in plain fields the session reads.
 */
export class Relay {
  bytesToBrowser = 0;
  bytesToBackend = 0;
  lastActivity = Date.now();
  readonly #ws: WebSocket;
  readonly #backend: Socket;
  /** The backend's reused receive buffer (plain TCP only). */
  readonly #reads: ReadBuffer | null;
  /** The browser's socket under `ws`, for frames built in place; null if an extension was negotiated. */
  readonly #browserSocket: Socket | null;
  readonly #highWaterMarkBytes: number;
  readonly #browserTls: boolean;
  readonly #onBrowserFault: (error: VncgateError) => void;
  readonly #onBrowserText: (data: RawData) => VncgateError | null;
  readonly #filter: ClientMessageFilter | null;
  #backendPaused = false;
  /** Cleared by stop(): a drain after that resumes nothing. */
  #open = true;

  constructor(ws: WebSocket, backend: Socket, reads: ReadBuffer | null, opts: RelayOptions) {
    this.#ws = ws;
    this.#backend = backend;
    this.#reads = reads;
    this.#browserSocket = ws.extensions === '' ? (rawSocketOf(ws) ?? null) : null;
    this.#highWaterMarkBytes = opts.highWaterMarkBytes;
    this.#browserTls = opts.browserTls;
    this.#onBrowserFault = opts.onBrowserFault;
    this.#onBrowserText = opts.onBrowserText;
    this.#filter = opts.filter ?? null;
  }

  /**
   * Starts piping: `serverInit` (and whatever the endpoint sent after it) goes to the browser,
   * `browserTrailing` (what the browser pipelined after its ClientInit) to the endpoint. The
   * backend stays paused until resume().
   */
  start(serverInit: Buffer, browserTrailing: Buffer | null): void {
    // Chosen once: without a filter the browser's path is the unfiltered handler, no check per message.
    this.#ws.on('message', this.#filter === null ? this.#onBrowserMessage : this.#onFilteredMessage);
    this.#backend.on('data', this.#onBackendData);
    this.#onBackendData(serverInit);
    if (browserTrailing !== null && browserTrailing.length > 0) this.#fromBrowser(browserTrailing);
  }

  resume(): void {
    this.#backend.resume();
  }

  /** The session is closing: no more browser messages are relayed, and no drain resumes a side. */
  stop(): void {
    this.#open = false;
    this.#ws.off('message', this.#onBrowserMessage);
    this.#ws.off('message', this.#onFilteredMessage);
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
    if (this.#backendPaused || queued + chunk.length <= this.#highWaterMarkBytes) {
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
    this.#backend.pause();
    if (frame !== null) raw!.write(frame, this.#onBrowserDrained);
    else ws.send(chunk, this.#onBrowserDrained);
  };

  readonly #onBrowserDrained = (): void => {
    this.#backendPaused = false;
    if (this.#open) this.#backend.resume();
  };

  /**
   * Browser → backend. noVNC only sends binary frames; base64 text framing (websockify's legacy
   * mode) is not offered. Text is vncgate's control channel, if negotiated.
   */
  readonly #onBrowserMessage = (data: RawData, isBinary: boolean): void => {
    if (!isBinary) {
      const fault = this.#onBrowserText(data);
      if (fault !== null) this.#onBrowserFault(fault);
      return;
    }
    this.lastActivity = Date.now();
    this.#toBackend(Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data));
  };

  /** Browser → backend through the session's filter: what the policy drops never reaches the backend. */
  readonly #onFilteredMessage = (data: RawData, isBinary: boolean): void => {
    if (!isBinary) {
      const fault = this.#onBrowserText(data);
      if (fault !== null) this.#onBrowserFault(fault);
      return;
    }
    this.lastActivity = Date.now();
    this.#fromBrowser(Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data));
  };

  /** Browser bytes, filtered if the session has a filter; a message it cannot frame ends the session. */
  #fromBrowser(chunk: Buffer): void {
    if (this.#filter === null) return this.#toBackend(chunk);
    const fault = this.#filter.receive(chunk, this.#forward);
    if (fault !== null) this.#onBrowserFault(fault);
  }

  readonly #forward = (bytes: Buffer): void => this.#toBackend(bytes);

  /** Browser → backend, pausing the WebSocket while the backend socket is full. */
  #toBackend(chunk: Buffer): void {
    const backend = this.#backend;
    if (backend.destroyed) return;
    this.bytesToBackend += chunk.length;
    if (!backend.write(chunk)) {
      this.#ws.pause();
      backend.once('drain', this.#onBackendDrained);
    }
  }

  readonly #onBackendDrained = (): void => {
    if (this.#open) this.#ws.resume();
  };
}
