/**
 * The page's side of vncgate's control channel (src/proxy/control-channel.ts). The page opens the
 * WebSocket itself, offering `vncgate.v1` before `binary`, and hands noVNC this wrapper instead of
 * the socket: it satisfies noVNC 1.7's "raw channel" interface (core/websock.js `rawChannelProps`:
 * send, close, binaryType, onerror, onmessage, onopen, protocol, readyState; onclose too) and
 * passes noVNC only the binary frames. Text frames are vncgate's: one JSON object each, with a
 * `type`, dispatched to the listeners of that type. A server that did not select `vncgate.v1`
 * (websockify, an older vncgate) never sends one, and `send` does nothing.
 *
 * Pure (no DOM types), so test/web runs it under Node with a stand-in socket.
 */

export const CONTROL_PROTOCOL = 'vncgate.v1';
/** What the page offers, in order of preference. */
export const PAGE_PROTOCOLS: readonly string[] = [CONTROL_PROTOCOL, 'binary'];

/** A control message as received: features validate their own fields (see policy.ts). */
export type ControlMessage = { readonly type: string } & Readonly<Record<string, unknown>>;
export type ControlListener = (message: ControlMessage) => void;

/** The WebSocket members used (a browser WebSocket, or a stand-in in tests). */
export interface SocketLike {
  binaryType: string;
  readonly protocol: string;
  readonly readyState: number;
  send(data: unknown): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (ev: { readonly data?: unknown }) => void): void;
}

type Handler = ((ev: unknown) => void) | null;

/** WebSocket.OPEN; a stand-in socket in tests has no constants. */
const OPEN = 1;

export class ControlChannel {
  readonly #ws: SocketLike;
  readonly #listeners = new Map<string, ControlListener[]>();
  #binaryType = 'arraybuffer';
  // The raw-channel handlers noVNC assigns (it checks that these names exist, so they are own properties).
  onopen: Handler = null;
  onmessage: Handler = null;
  onclose: Handler = null;
  onerror: Handler = null;

  constructor(ws: SocketLike) {
    this.#ws = ws;
    ws.binaryType = 'arraybuffer';
    ws.addEventListener('open', (ev) => this.onopen?.(ev));
    ws.addEventListener('close', (ev) => this.onclose?.(ev));
    ws.addEventListener('error', (ev) => this.onerror?.(ev));
    ws.addEventListener('message', (ev) => {
      if (typeof ev.data === 'string') this.#dispatch(ev.data);
      else this.onmessage?.(ev);
    });
  }

  /** Whether the server selected the control channel (known once the socket is open). */
  get negotiated(): boolean {
    return this.#ws.protocol === CONTROL_PROTOCOL;
  }

  // noVNC sets binaryType to "arraybuffer"; the socket keeps it whatever is asked.
  get binaryType(): string {
    return this.#binaryType;
  }

  set binaryType(value: string) {
    this.#binaryType = value;
  }

  get protocol(): string {
    return this.#ws.protocol;
  }

  get readyState(): number {
    return this.#ws.readyState;
  }

  send(data: unknown): void {
    this.#ws.send(data);
  }

  close(code?: number, reason?: string): void {
    if (code === undefined) this.#ws.close();
    else this.#ws.close(code, reason);
  }

  /** Calls `listener` with every control message of `type` from now on. */
  on(type: string, listener: ControlListener): void {
    const list = this.#listeners.get(type);
    if (list) list.push(listener);
    else this.#listeners.set(type, [listener]);
  }

  /** Sends a control request (one text frame), if the channel was negotiated and is open. */
  request(message: ControlMessage): boolean {
    if (!this.negotiated || this.#ws.readyState !== OPEN) return false;
    this.#ws.send(JSON.stringify(message));
    return true;
  }

  #dispatch(text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message)) return;
    const type = (message as { type?: unknown }).type;
    if (typeof type !== 'string') return;
    for (const listener of this.#listeners.get(type) ?? []) listener(message as ControlMessage);
  }
}
