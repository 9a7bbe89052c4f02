import type { Logger } from 'pino';
import type { RawData, WebSocket } from 'ws';
import { VncgateError } from '../errors.js';

/**
 * The WebSocket subprotocol of vncgate's control channel. A page that offers it (vncgate's own
 * console page, web/src/control-channel.ts) gets JSON text frames from vncgate between the RFB
 * binary frames; stock noVNC offers `binary` (or nothing) and never sees one.
 */
export const CONTROL_PROTOCOL = 'vncgate.v1';

/** What the upgrade answers to the subprotocols a browser offers: ours first, then websockify's `binary`. */
export function chooseSubprotocol(offered: ReadonlySet<string>): string | false {
  if (offered.has(CONTROL_PROTOCOL)) return CONTROL_PROTOCOL;
  return offered.has('binary') ? 'binary' : false;
}

/** One control message: a JSON object with a `type` (each feature adds its own). */
export type ControlMessage = { readonly type: string } & Readonly<Record<string, unknown>>;

/** A control request from the page, already parsed; handlers validate their own fields. */
export type ControlHandler = (message: ControlMessage) => void;

/** Largest text frame a page may send (UTF-8 bytes). */
export const MAX_CONTROL_REQUEST_BYTES = 4096;
/** Requests a page may send in a burst, and how many more it earns per second. */
export const CONTROL_REQUEST_BURST = 16;
export const CONTROL_REQUESTS_PER_SECOND = 4;

/**
 * One session's control channel (server side). `send` is a no-op unless the browser negotiated
 * CONTROL_PROTOCOL, so features call it unconditionally. Text frames from the browser go to
 * `receive`: without the subprotocol they are the protocol fault they have always been; with it
 * they are bounded (size, rate), parsed as JSON objects with a string `type` and handed to the
 * handler registered for that type; unknown types are logged at debug and ignored.
 */
export class ControlChannel {
  readonly negotiated: boolean;
  readonly #ws: WebSocket;
  readonly #log: () => Logger;
  readonly #handlers = new Map<string, ControlHandler>();
  #credit = CONTROL_REQUEST_BURST;
  #creditAt = 0;

  /** `log` is read lazily: the session's child logger may be built after the channel. */
  constructor(ws: WebSocket, log: () => Logger) {
    this.#ws = ws;
    this.#log = log;
    this.negotiated = ws.protocol === CONTROL_PROTOCOL;
  }

  /** Sends `message` as one text frame, if the page negotiated the channel and the socket is open. */
  send(message: ControlMessage): boolean {
    const ws = this.#ws;
    if (!this.negotiated || ws.readyState !== ws.OPEN) return false;
    ws.send(JSON.stringify(message));
    return true;
  }

  /** Registers the handler of one request type (one per type; a second replaces the first). */
  on(type: string, handler: ControlHandler): void {
    this.#handlers.set(type, handler);
  }

  /** A text frame from the browser. Returns the fault that ends the session, or null. */
  receive(data: RawData, now = Date.now()): VncgateError | null {
    if (!this.negotiated) return new VncgateError('SESSION_ERR_BROWSER_PROTOCOL', 'browser sent a text frame');
    const bytes = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
    if (bytes > MAX_CONTROL_REQUEST_BYTES) {
      return new VncgateError('SESSION_ERR_BROWSER_PROTOCOL', `control request of ${bytes} bytes (at most ${MAX_CONTROL_REQUEST_BYTES})`);
    }
    this.#credit = Math.min(CONTROL_REQUEST_BURST, this.#credit + ((now - this.#creditAt) / 1000) * CONTROL_REQUESTS_PER_SECOND);
    this.#creditAt = now;
    if (this.#credit < 1) return new VncgateError('SESSION_ERR_BROWSER_PROTOCOL', 'control requests faster than allowed');
    this.#credit -= 1;
    const text = (Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data)).toString('utf8');
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return new VncgateError('SESSION_ERR_BROWSER_PROTOCOL', 'control request is not JSON');
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message) || typeof (message as { type?: unknown }).type !== 'string') {
      return new VncgateError('SESSION_ERR_BROWSER_PROTOCOL', 'control request is not an object with a type');
    }
    const m = message as ControlMessage;
    const handler = this.#handlers.get(m.type);
    if (handler === undefined) {
      this.#log().debug({ controlType: m.type.slice(0, 40) }, 'control request of unknown type ignored');
      return null;
    }
    handler(m);
    return null;
  }
}
