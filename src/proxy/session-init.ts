import { VncgateError } from '../errors.js';
import { LIMITS, type ServerInit } from '../rfb/index.js';

/** ClientInit toward the endpoint: vncgate's own (shared/exclusive, sent at once) or the browser's. */
export type ClientInitMode = 'shared' | 'exclusive' | 'browser';

/** What initialisation hands to piping. */
export type Initialised = {
  /** The endpoint's ServerInit and whatever followed it, forwarded as received (not re-encoded). */
  serverInit: Buffer;
  init: ServerInit;
  /** What the browser sent after its ClientInit (pipelined requests), or null. */
  browserTrailing: Buffer | null;
  /** Whether the endpoint was asked to share the desktop. */
  shared: boolean;
};

/**
 * Initialisation (RFC 6143 §7.3), between both SecurityResults and piping: the browser's ClientInit
 * (one byte) and the endpoint's ServerInit, both needed before bytes flow raw. They travel at the
 * same time (vncgate sends its own ClientInit as soon as the endpoint accepted authentication,
 * unless the browser's is forwarded); whichever arrives first is held here. No I/O: the session
 * feeds it and acts on what it returns.
 */
export class Initialisation {
  readonly #mode: ClientInitMode;
  #browserClientInit: number | null = null;
  #browserTrailing: Buffer | null = null;
  #serverInit: { bytes: Buffer; init: ServerInit } | null = null;

  constructor(mode: ClientInitMode) {
    this.#mode = mode;
  }

  /** The browser's ClientInit has arrived (else the browser is late, not the endpoint). */
  get browserClientInitSeen(): boolean {
    return this.#browserClientInit !== null;
  }

  /** Both halves are in: piping can start. */
  get complete(): boolean {
    return this.#browserClientInit !== null && this.#serverInit !== null;
  }

  /**
   * Browser bytes after its SecurityResult and before piping: its ClientInit, and anything
   * pipelined after it. `forward`: the browser's ClientInit, to be written to the endpoint now
   * (mode `browser`). `error`: the browser sent more than a handshake may hold.
   */
  fromBrowser(chunk: Buffer): { forward?: Buffer; error?: VncgateError } {
    if (chunk.length === 0) return {};
    let forward: Buffer | undefined;
    if (this.#browserClientInit === null) {
      this.#browserClientInit = chunk[0]!;
      if (this.#mode === 'browser') forward = chunk.subarray(0, 1);
      chunk = chunk.subarray(1);
    }
    if (chunk.length > 0) {
      const held = this.#browserTrailing;
      const total = (held?.length ?? 0) + chunk.length;
      // Bounded like any handshake input: a browser does not send before ServerInit.
      if (total > LIMITS.maxHandshakeBufferBytes) {
        return { error: new VncgateError('SESSION_ERR_BROWSER_PROTOCOL', `browser sent more than ${LIMITS.maxHandshakeBufferBytes} bytes before ServerInit`) };
      }
      this.#browserTrailing = held ? Buffer.concat([held, chunk]) : chunk;
    }
    return forward !== undefined ? { forward } : {};
  }

  /** The endpoint's ServerInit as `exchangeInit` read it (`raw`), and what came after it. */
  fromEndpoint(raw: Buffer, trailing: Buffer, init: ServerInit): void {
    this.#serverInit = { bytes: trailing.length > 0 ? Buffer.concat([raw, trailing]) : raw, init };
  }

  /** Hands both halves over to piping (once; the exchange holds nothing afterwards). */
  take(): Initialised {
    const s = this.#serverInit;
    const clientInit = this.#browserClientInit;
    if (s === null || clientInit === null) throw new Error('initialisation taken before it was complete');
    const browserTrailing = this.#browserTrailing;
    this.#serverInit = null;
    this.#browserTrailing = null;
    const shared = this.#mode === 'browser' ? clientInit !== 0 : this.#mode === 'shared';
    return { serverInit: s.bytes, init: s.init, browserTrailing, shared };
  }
}
