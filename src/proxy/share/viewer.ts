import type { RawData, WebSocket } from 'ws';
import { VncgateError } from '../../errors.js';
import { ByteView, resolveClientMessagePolicy, type ClientMessagePolicy } from '../../rfb/index.js';
import { ClientMessageFramer, FAILED, KIND, VERDICT, type KindIndex } from '../../rfb/client-message-framing.js';
import { PSEUDO_ENCODING } from '../../rfb/constants.js';
import { isControlAction } from './control-state.js';
import type { ControlView, HubViewer, ShareHub } from './hub.js';

/** The page's side of the control channel, as far as a viewer uses it (control-channel.ts). */
export interface ControlPort {
  send(message: { readonly type: string } & Readonly<Record<string, unknown>>): boolean;
  on(type: string, handler: (message: { readonly type: string } & Readonly<Record<string, unknown>>) => void): void;
}

export type ViewerOptions = {
  policy: ClientMessagePolicy;
  /** Its token says `control`: it takes control on joining. */
  takeControl: boolean;
  /** The browser broke the protocol: the session ends. */
  onFault: (error: VncgateError) => void;
  /** The hub ended this viewer (too slow, refused pixel format, backend gone): the session ends. */
  onEnd: (error: VncgateError) => void;
  /** A text frame: a control request, or the fault returned (none: every text frame is a fault). */
  onBrowserText?: (data: RawData) => VncgateError | null;
  control?: ControlPort | null;
};

/** An input message longer than this (a huge ClientCutText) is dropped: input is forwarded whole, so it is held until complete. */
export const MAX_SHARED_INPUT_BYTES = 1024 * 1024;

/** Messages that act on the console, forwarded from the viewer with control only. */
const INPUT_KINDS: ReadonlySet<KindIndex> = new Set<KindIndex>([
  KIND.keyEvent,
  KIND.pointerEvent,
  KIND.clientCutText,
  KIND.clipboardCaps,
  KIND.clipboardRequest,
  KIND.clipboardPeek,
  KIND.clipboardNotify,
  KIND.clipboardProvide,
  KIND.clipboardOther,
  KIND.qemuExtendedKeyEvent,
  KIND.xvp,
  KIND.setDesktopSize,
]);

const EMPTY = Buffer.alloc(0);

/** Until tokens carry a policy (issue 18, item 1): every viewer of a shared console may take control. */
export const OPEN_POLICY: ClientMessagePolicy = { viewOnly: false, clipboard: 'both', maxClipboardBytes: Infinity };

/**
 * One browser on a shared console, in place of the Relay once piping: sends what the hub gives
 * it, and frames what the browser sends (ClientMessageFramer, the view-only filter's table) to act
 * on each message: SetPixelFormat checked against the connection's, SetEncodings dropped (the hub
 * sent its own), FramebufferUpdateRequest merged by the hub, input forwarded whole if this viewer
 * has control (and its token allows it), the rest dropped. Control requests arrive as text frames
 * (the control channel) and each change of control is told to the page.
 */
export class SharedViewer implements HubViewer {
  bytesToBrowser = 0;
  bytesToBackend = 0;
  lastActivity = Date.now();
  readonly canControl: boolean;
  readonly takeControl: boolean;
  /** It had control at some point (audit). */
  hadControl = false;
  #controlSince = 0;
  /** Milliseconds it had control (audit). */
  controlMs = 0;
  readonly #ws: WebSocket;
  readonly #hub: ShareHub;
  readonly #opts: ViewerOptions;
  readonly #framer: ClientMessageFramer;
  readonly #view = new ByteView();
  /** The start of a message that has not all arrived. */
  #held: Buffer = EMPTY;
  /** Bytes of a dropped message still to skip. */
  #skip = 0;
  #open = true;

  constructor(ws: WebSocket, hub: ShareHub, opts: ViewerOptions) {
    this.#ws = ws;
    this.#hub = hub;
    this.#opts = opts;
    const rules = resolveClientMessagePolicy(opts.policy);
    // The endpoint is never asked for ExtendedMouseButtons, so every PointerEvent is 6 bytes.
    this.#framer = new ClientMessageFramer({ ...rules, removedEncodings: [...rules.removedEncodings, PSEUDO_ENCODING.extendedMouseButtons] });
    this.canControl = rules.input;
    this.takeControl = opts.takeControl && rules.input;
    opts.control?.on('control', (m) => {
      if (this.#open && isControlAction(m['action'])) this.#hub.controlAction(this, m['action']);
    });
  }

  get queuedBytes(): number {
    return this.#ws.bufferedAmount;
  }

  /** Joins the hub; `browserTrailing` is what the browser pipelined after its ClientInit. The ServerInit comes from the hub. */
  start(_serverInit: Buffer, browserTrailing: Buffer | null): void {
    this.#ws.on('message', this.#onMessage);
    this.#hub.attach(this);
    if (browserTrailing !== null && browserTrailing.length > 0) this.#receive(browserTrailing);
  }

  resume(): void {}

  stop(): void {
    this.#open = false;
    this.#ws.off('message', this.#onMessage);
    this.#controlChanged(false);
  }

  send(bytes: Buffer, drained?: () => void): void {
    const ws = this.#ws;
    this.bytesToBrowser += bytes.length;
    this.lastActivity = Date.now();
    if (ws.readyState !== ws.OPEN) return;
    ws.send(bytes, drained);
  }

  end(error: VncgateError): void {
    this.#opts.onEnd(error);
  }

  controlChanged(view: ControlView): void {
    this.#controlChanged(view.hasControl);
    this.#opts.control?.send({ type: 'control', shared: true, ...view });
  }

  #controlChanged(has: boolean): void {
    const had = this.#controlSince > 0;
    if (has && !had) {
      this.hadControl = true;
      this.#controlSince = Date.now();
    } else if (!has && had) {
      this.controlMs += Date.now() - this.#controlSince;
      this.#controlSince = 0;
    }
  }

  readonly #onMessage = (data: RawData, isBinary: boolean): void => {
    if (!isBinary) {
      const fault = this.#opts.onBrowserText ? this.#opts.onBrowserText(data) : new VncgateError('SESSION_ERR_BROWSER_PROTOCOL', 'browser sent a text frame');
      if (fault !== null) this.#opts.onFault(fault);
      return;
    }
    this.lastActivity = Date.now();
    this.#receive(Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data));
  };

  #receive(chunk: Buffer): void {
    const buf = this.#held.length > 0 ? Buffer.concat([this.#held, chunk]) : chunk;
    this.#held = EMPTY;
    const end = buf.length;
    let pos = 0;
    while (pos < end && this.#open) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, end - pos);
        this.#skip -= n;
        pos += n;
        continue;
      }
      const f = this.#framer;
      const length = f.frame(this.#view.reset(buf, pos, end - pos));
      if (length === FAILED) {
        this.#opts.onFault(f.error!);
        return;
      }
      const kind = f.kind;
      const input = length > 0 && INPUT_KINDS.has(kind);
      const keep = length > 0 && (kind === KIND.setPixelFormat || kind === KIND.framebufferUpdateRequest || kind === KIND.setEncodings || (input && f.verdict === VERDICT.pass && length <= MAX_SHARED_INPUT_BYTES));
      if (length > 0 && !keep) {
        this.#skip = length;
        continue;
      }
      // A head to frame, or a message to act on, that has not all arrived: held until it has.
      if (length < 0 || pos + length > end) {
        this.#held = Buffer.from(buf.subarray(pos));
        return;
      }
      const message = buf.subarray(pos, pos + length);
      pos += length;
      if (kind === KIND.setPixelFormat) {
        if (!this.#hub.pixelFormat(message.subarray(4, 20))) {
          this.#hub.detach(this);
          this.#opts.onEnd(new VncgateError('SESSION_ERR_SHARED_PIXEL_FORMAT', 'viewer asked for a pixel format other than the shared connection uses'));
          return;
        }
      } else if (kind === KIND.framebufferUpdateRequest) this.#hub.updateRequest(message[1] !== 0);
      else if (input && this.#hub.input(this, message)) this.bytesToBackend += length;
    }
  }
}
