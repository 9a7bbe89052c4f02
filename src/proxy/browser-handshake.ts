import type { WebSocket, RawData } from 'ws';
import { VncgateError } from '../errors.js';
import { RfbServerHandshake, type ServerAction, type ServerInit } from '../rfb/index.js';
import { deadlineError } from './session-faults.js';
import { Initialisation, type ClientInitMode, type Initialised } from './session-init.js';

/** What the browser's side of the set-up tells its session. */
export type BrowserHandshakeHooks = {
  /** The handshake failed (RFB_ERR_CLIENT_*: the browser's fault), or its refusal has been sent: end the session. */
  end(error: VncgateError, by: 'browser' | 'vncgate'): void;
  /** The browser broke the protocol outside the RFB engine (a text frame, too much before ServerInit). */
  fault(error: VncgateError): void;
  /** A text frame: a control request (control-channel.ts), or the fault returned. */
  text(data: RawData): VncgateError | null;
  /** The browser's ClientInit, to be written to the endpoint now (`clientInit: browser`). */
  forward(bytes: Buffer): void;
  /** Both the browser's ClientInit and the endpoint's ServerInit are in: piping can start. */
  initialised(): void;
};

/**
 * The browser's side of a session until piping: vncgate as RFB server (security None, RFC 6143
 * §7.1-7.2) from the first moment, answered with SecurityResult OK only once the endpoint is
 * authenticated (accept()), or with a failure whose reason noVNC shows (refuse()); then the
 * initialisation hand-off (session-init.ts). Gets the browser's messages until the relay takes
 * them over.
 */
export class BrowserHandshake {
  readonly #ws: WebSocket;
  /** Both dropped once piping takes over (take()): an open console does not carry its handshake. */
  #rfb: RfbServerHandshake | null = new RfbServerHandshake({ security: ['none'] });
  #init: Initialisation | null;
  readonly #hooks: BrowserHandshakeHooks;
  /** Browser activity before piping (the relay counts its own). */
  lastActivity = Date.now();

  constructor(ws: WebSocket, mode: ClientInitMode, hooks: BrowserHandshakeHooks) {
    this.#ws = ws;
    this.#init = new Initialisation(mode);
    this.#hooks = hooks;
  }

  /** Sends vncgate's ProtocolVersion. */
  start(): void {
    this.#apply(this.#rfb?.start() ?? []);
  }

  /** The endpoint accepted authentication: the browser is told SecurityResult OK. */
  accept(): void {
    this.#apply(this.#rfb?.accept() ?? []);
  }

  /** Whether the browser has been told OK (always, once piping) or a failure already. */
  get hasVerdict(): boolean {
    return this.#rfb?.hasVerdict ?? true;
  }

  /**
   * Tells the browser why it is refused (SecurityResult failure), if its handshake has got that
   * far; false if it has not (the caller decides how long to wait).
   */
  refuse(error: VncgateError): boolean {
    const actions = this.#rfb?.reject(error) ?? [];
    if (actions.length === 0) return false;
    this.#apply(actions);
    return true;
  }

  /** The handshake deadline passed: the error that says whose turn it was. */
  deadlineError(status: string, ms: number): VncgateError {
    return deadlineError(this.#rfb?.state ?? 'established', this.#init?.browserClientInitSeen ?? true, status, ms);
  }

  /** The endpoint's ServerInit (as `exchangeInit` read it) and what came after it. */
  fromEndpoint(raw: Buffer, trailing: Buffer, init: ServerInit): void {
    this.#init?.fromEndpoint(raw, trailing, init);
    if (this.#init?.complete) this.#hooks.initialised();
  }

  /** Both halves of initialisation, for piping (once). */
  take(): Initialised {
    const init = this.#init;
    if (init === null) throw new Error('initialisation taken twice');
    this.#rfb = null;
    this.#init = null;
    return init.take();
  }

  readonly onMessage = (data: RawData, isBinary: boolean): void => {
    if (!isBinary) {
      // noVNC only sends binary frames; base64 text framing (websockify's legacy mode) is not
      // offered. Text is vncgate's control channel, if negotiated.
      const fault = this.#hooks.text(data);
      if (fault !== null) this.#hooks.fault(fault);
      return;
    }
    const chunk = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    this.lastActivity = Date.now();
    const rfb = this.#rfb;
    if (rfb === null) return;
    if (rfb.established) this.#onInit(chunk);
    else this.#apply(rfb.receive(chunk));
  };

  /** Browser bytes after its SecurityResult and before piping: its ClientInit, and anything pipelined after it. */
  #onInit(chunk: Buffer): void {
    const init = this.#init;
    if (chunk.length === 0 || init === null) return;
    const r = init.fromBrowser(chunk);
    if (r.error) {
      this.#hooks.fault(r.error);
      return;
    }
    if (r.forward) this.#hooks.forward(r.forward);
    if (init.complete) this.#hooks.initialised();
  }

  #apply(actions: ServerAction[]): void {
    for (const a of actions) {
      switch (a.type) {
        case 'send':
          if (this.#ws.readyState === this.#ws.OPEN) this.#ws.send(a.bytes);
          break;
        case 'failed':
          this.#hooks.end(a.error, a.error.code.startsWith('RFB_ERR_CLIENT') ? 'browser' : 'vncgate');
          return;
        case 'established':
          this.#onInit(a.trailing);
          return;
      }
    }
  }
}
