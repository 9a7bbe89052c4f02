import { VncgateError } from '../errors.js';
import { ByteView, ByteWriter } from './byte-queue.js';
import { CLIENT_MESSAGE, CLIENT_MESSAGE_LIMITS, EXTENDED_CLIPBOARD_ACTION, PSEUDO_ENCODING, QEMU_AUDIO_OPERATION, QEMU_CLIENT_SUBTYPE } from './constants.js';
import { resolveClientMessagePolicy, type ClientMessagePolicy, type ClientMessageRules } from './client-message-policy.js';

/** What the filter tells apart, for its counts; Extended Clipboard messages by their action. */
const KIND = {
  setPixelFormat: 0,
  setEncodings: 1,
  framebufferUpdateRequest: 2,
  keyEvent: 3,
  pointerEvent: 4,
  clientCutText: 5,
  clipboardCaps: 6,
  clipboardRequest: 7,
  clipboardPeek: 8,
  clipboardNotify: 9,
  clipboardProvide: 10,
  /** An Extended Clipboard message with no action we know, or too short to carry one. */
  clipboardOther: 11,
  enableContinuousUpdates: 12,
  clientFence: 13,
  xvp: 14,
  setDesktopSize: 15,
  qemuExtendedKeyEvent: 16,
  qemuAudio: 17,
} as const;
export type ClientMessageKind = keyof typeof KIND;
type KindIndex = (typeof KIND)[ClientMessageKind];
export const CLIENT_MESSAGE_KINDS = Object.keys(KIND) as readonly ClientMessageKind[];

export type ClientMessageFilterStats = {
  forwardedBytes: number;
  droppedBytes: number;
  /** Whole messages dropped, by kind (every kind present, most 0). */
  dropped: Record<ClientMessageKind, number>;
  /** Of the clipboard messages dropped, those dropped for their size alone. */
  clipboardOversized: number;
  /** SetEncodings messages forwarded with encodings removed. */
  encodingsRewritten: number;
};

const VERDICT = { pass: 0, drop: 1, rewrite: 2 } as const;
type Verdict = (typeof VERDICT)[keyof typeof VERDICT];

/** Framing results that are not a message length: waiting for `-n` head bytes, or failed. */
const FAILED = 0;

/** The largest head framing may need to see whole: a SetEncodings of the most encodings allowed. */
const MAX_HEAD_BYTES = 4 + 4 * CLIENT_MESSAGE_LIMITS.maxEncodings;

const EXT_CLIPBOARD_ACTIONS = 0xff00_0000;
const TO_REMOTE_ACTIONS = EXTENDED_CLIPBOARD_ACTION.notify | EXTENDED_CLIPBOARD_ACTION.provide;
const TO_BROWSER_ACTIONS = EXTENDED_CLIPBOARD_ACTION.request | EXTENDED_CLIPBOARD_ACTION.peek;

/**
 * Enforces a session's view-only and clipboard policy on the browser-to-console byte stream after
 * ClientInit (§7.5), in the pipe, where the browser cannot switch it off (noVNC's `view_only=1` is
 * a hint in the URL). Sans-I/O: feed chunks in any cut to receive(); it calls `forward` with what
 * the console may see and counts what it dropped.
 *
 * Relay hot path: messages are framed where they lie. A chunk of whole messages that all pass is
 * forwarded as the very same Buffer; a chunk with drops as subarrays of it; only a message head
 * split across chunks (at most MAX_HEAD_BYTES) is copied, and a dropped message of any length is
 * skipped as it streams by, never buffered. Framing allocates nothing.
 *
 * RFB cannot resynchronise: message lengths follow from their types, so a type or QEMU sub-type
 * this filter cannot frame, or too many encodings, fails the session (RFB_ERR_CLIENT_PROTOCOL).
 * Peer input never throws.
 */
export class ClientMessageFilter {
  readonly #rules: ClientMessageRules;
  readonly #view = new ByteView();
  /** A message head split across chunks, copied here until it can be framed. */
  readonly #head = Buffer.allocUnsafe(MAX_HEAD_BYTES);
  #headLength = 0;
  /** Bytes of the current message still to stream by, passed (#passing) or skipped. */
  #remaining = 0;
  #passing = false;
  /** Set by #frame for the message it framed. */
  #kind: KindIndex = KIND.setPixelFormat;
  #verdict: Verdict = VERDICT.pass;
  #oversized = false;
  /** The last forwarded SetEncodings listed ExtendedMouseButtons: PointerEvent may be 7 bytes. */
  #extendedMouse = false;
  #error: VncgateError | null = null;
  #forwardedBytes = 0;
  #droppedBytes = 0;
  /** Messages dropped, by KIND. */
  readonly #dropped = new Float64Array(CLIENT_MESSAGE_KINDS.length);
  #clipboardOversized = 0;
  #encodingsRewritten = 0;

  constructor(policy: ClientMessagePolicy) {
    this.#rules = resolveClientMessagePolicy(policy);
  }

  get rules(): ClientMessageRules {
    return this.#rules;
  }

  /** Bytes held while waiting for the rest of a message head; at most MAX_HEAD_BYTES. */
  get bufferedBytes(): number {
    return this.#headLength;
  }

  /** Part of a message has been seen (held or streamed) and the rest has not arrived yet. */
  get inMessage(): boolean {
    return this.#headLength > 0 || this.#remaining > 0;
  }

  /** Messages dropped so far, all kinds together. */
  get droppedMessages(): number {
    return this.#dropped.reduce((a, b) => a + b, 0);
  }

  get error(): VncgateError | null {
    return this.#error;
  }

  stats(): ClientMessageFilterStats {
    const dropped = {} as Record<ClientMessageKind, number>;
    for (const k of CLIENT_MESSAGE_KINDS) dropped[k] = this.#dropped[KIND[k]]!;
    return {
      forwardedBytes: this.#forwardedBytes,
      droppedBytes: this.#droppedBytes,
      dropped,
      clipboardOversized: this.#clipboardOversized,
      encodingsRewritten: this.#encodingsRewritten,
    };
  }

  /**
   * Feeds the next chunk; calls `forward` zero or more times, in order, with bytes for the console
   * (the chunk itself, subarrays of it, or — for a head split across chunks and a rewritten
   * SetEncodings — a fresh Buffer). Returns null, or the error that ended the stream: then what
   * came before the bad message has been forwarded, and later input is ignored.
   */
  receive(chunk: Buffer, forward: (bytes: Buffer) => void): VncgateError | null {
    if (this.#error) return this.#error;
    const end = chunk.length;
    let pos = 0;
    /** Start of the passing bytes in [runStart, pos) not yet forwarded. */
    let runStart = 0;
    while (pos < end) {
      if (this.#remaining > 0) {
        const n = Math.min(this.#remaining, end - pos);
        this.#remaining -= n;
        if (!this.#passing) {
          this.#flush(chunk, runStart, pos, forward);
          this.#droppedBytes += n;
          runStart = pos + n;
        }
        pos += n;
        continue;
      }
      // At a message boundary. `held`: how many of its first bytes are in #head, not the chunk.
      let length: number;
      let held = 0;
      if (this.#headLength === 0) {
        length = this.#frame(this.#view.reset(chunk, pos, end - pos));
        if (length < 0) {
          // Its head runs past this chunk: keep that (it is short) and wait.
          this.#flush(chunk, runStart, pos, forward);
          chunk.copy(this.#head, 0, pos, end);
          this.#headLength = end - pos;
          pos = runStart = end;
          break;
        }
      } else {
        // Only a chunk's first message can have its head held, so nothing is passing yet.
        const before = this.#headLength;
        length = this.#frameHeld(chunk, pos, end);
        pos = runStart = pos + this.#headLength - before;
        if (length < 0) break;
        held = this.#headLength;
      }
      if (length === FAILED) {
        this.#flush(chunk, runStart, pos, forward);
        this.#headLength = 0;
        return this.#error;
      }
      if (this.#verdict === VERDICT.pass) {
        if (held > 0) this.#forwardHeld(forward);
        this.#passing = true;
        this.#remaining = length - held;
      } else if (this.#verdict === VERDICT.drop) {
        this.#flush(chunk, runStart, pos, forward);
        runStart = pos;
        this.#countDrop(held);
        this.#passing = false;
        this.#remaining = length - held;
      } else {
        // A rewrite framed the whole message: it is all in #view, and in #head or at pos.
        this.#flush(chunk, runStart, pos, forward);
        this.#forwardRewrite(forward);
        pos = runStart = pos + length - held;
      }
      this.#headLength = 0;
    }
    this.#flush(chunk, runStart, pos, forward);
    return null;
  }

  /** Forwards the passing run [from, to) of the chunk: the chunk itself when that is all of it. */
  #flush(chunk: Buffer, from: number, to: number, forward: (bytes: Buffer) => void): void {
    if (to === from) return;
    this.#forwardedBytes += to - from;
    forward(from === 0 && to === chunk.length ? chunk : chunk.subarray(from, to));
  }

  /** Tops the held head up from the chunk until it frames, fails, or the chunk runs out. */
  #frameHeld(chunk: Buffer, pos: number, end: number): number {
    for (;;) {
      const length = this.#frame(this.#view.reset(this.#head, 0, this.#headLength));
      if (length >= 0) return length;
      const take = Math.min(-length - this.#headLength, end - pos);
      chunk.copy(this.#head, this.#headLength, pos, pos + take);
      this.#headLength += take;
      pos += take;
      if (this.#headLength < -length) return length;
    }
  }

  #forwardHeld(forward: (bytes: Buffer) => void): void {
    this.#forwardedBytes += this.#headLength;
    forward(Buffer.from(this.#head.subarray(0, this.#headLength)));
  }

  #countDrop(heldBytes: number): void {
    this.#dropped[this.#kind]! += 1;
    this.#droppedBytes += heldBytes;
    if (this.#oversized) this.#clipboardOversized++;
  }

  /** The SetEncodings in #view (whole), without the encodings the rules remove. */
  #forwardRewrite(forward: (bytes: Buffer) => void): void {
    const v = this.#view;
    const count = v.u16(2);
    const kept: number[] = [];
    for (let i = 0; i < count; i++) {
      const e = v.s32(4 + 4 * i);
      if (!this.#rules.removedEncodings.includes(e)) kept.push(e);
    }
    const w = new ByteWriter().u8(CLIENT_MESSAGE.setEncodings).u8(0).u16(kept.length);
    for (const e of kept) w.u32(e >>> 0);
    const out = w.finish();
    this.#encodingsRewritten++;
    this.#droppedBytes += 4 * count + 4 - out.length;
    this.#forwardedBytes += out.length;
    forward(out);
  }

  /**
   * Frames the message at the start of `v` and decides its fate (#kind, #verdict): returns its
   * total length, -n when it needs n head bytes to tell (n ≤ MAX_HEAD_BYTES), or FAILED.
   */
  #frame(v: ByteView): number {
    if (!v.has(1)) return -1;
    const r = this.#rules;
    this.#oversized = false;
    const type = v.u8(0);
    switch (type) {
      case CLIENT_MESSAGE.setPixelFormat:
        return this.#decide(KIND.setPixelFormat, true, 20); // §7.5.1: type, 3 padding, PIXEL_FORMAT
      case CLIENT_MESSAGE.setEncodings:
        return this.#frameSetEncodings(v);
      case CLIENT_MESSAGE.framebufferUpdateRequest:
        return this.#decide(KIND.framebufferUpdateRequest, true, 10); // §7.5.3
      case CLIENT_MESSAGE.keyEvent:
        return this.#decide(KIND.keyEvent, r.input, 8); // §7.5.4
      case CLIENT_MESSAGE.pointerEvent: {
        if (!v.has(2)) return -2;
        // §7.5.5 is 6 bytes; rfbproto ExtendedMouseButtons adds a byte when the marker bit is set.
        const extended = this.#extendedMouse && (v.u8(1) & 0x80) !== 0;
        return this.#decide(KIND.pointerEvent, r.input, extended ? 7 : 6);
      }
      case CLIENT_MESSAGE.clientCutText:
        return this.#frameCutText(v);
      case CLIENT_MESSAGE.enableContinuousUpdates:
        return this.#decide(KIND.enableContinuousUpdates, true, 10); // rfbproto: type, flag, x, y, w, h
      case CLIENT_MESSAGE.clientFence:
        // rfbproto: type, 3 padding, U32 flags, U8 length, payload (≤ 64 by the spec; U8-bounded).
        if (!v.has(9)) return -9;
        return this.#decide(KIND.clientFence, true, 9 + v.u8(8));
      case CLIENT_MESSAGE.xvp:
        return this.#decide(KIND.xvp, r.power, 4); // rfbproto: type, padding, version, operation
      case CLIENT_MESSAGE.setDesktopSize:
        // rfbproto: type, padding, width, height, U8 screens, padding, 16 bytes per screen.
        if (!v.has(7)) return -7;
        return this.#decide(KIND.setDesktopSize, r.resize, 8 + 16 * v.u8(6));
      case CLIENT_MESSAGE.qemu:
        return this.#frameQemu(v);
      default:
        // §7.5: extensions are used only after the server announced them; their lengths are
        // implicit in their types, so past an unknown one nothing can be framed.
        return this.#fail(`client message type ${type} cannot be framed`, { messageType: type });
    }
  }

  #frameSetEncodings(v: ByteView): number {
    if (!v.has(4)) return -4;
    const count = v.u16(2);
    if (count > CLIENT_MESSAGE_LIMITS.maxEncodings) {
      return this.#fail(`SetEncodings lists ${count} encodings, more than ${CLIENT_MESSAGE_LIMITS.maxEncodings}`, { count });
    }
    const length = 4 + 4 * count;
    // Seen whole: its list decides how later PointerEvents are framed, and it may be rewritten.
    if (!v.has(length)) return -length;
    let remove = false;
    let extendedMouse = false;
    for (let i = 0; i < count; i++) {
      const e = v.s32(4 + 4 * i);
      if (this.#rules.removedEncodings.includes(e)) remove = true;
      else if (e === PSEUDO_ENCODING.extendedMouseButtons) extendedMouse = true;
    }
    this.#extendedMouse = extendedMouse;
    this.#kind = KIND.setEncodings;
    this.#verdict = remove ? VERDICT.rewrite : VERDICT.pass;
    return length;
  }

  /**
   * §7.5.6, and rfbproto's Extended Clipboard: a negative length -n carries n bytes, a U32 of
   * action and format flags first. Direction decides: request and peek ask the console for its
   * clipboard (to-browser), notify and provide offer the browser's (to-remote), caps announce what
   * the browser supports (harmless, passed if any direction is open). Payload sizes are checked
   * without inflating: for provide, the compressed size.
   */
  #frameCutText(v: ByteView): number {
    if (!v.has(8)) return -8;
    const r = this.#rules;
    const length = v.s32(4);
    if (length >= 0) {
      this.#oversized = length > r.maxClipboardBytes;
      return this.#decide(KIND.clientCutText, r.clipboardToRemote && !this.#oversized, 8 + length);
    }
    const n = -length;
    if (n < 4) return this.#decide(KIND.clipboardOther, r.clipboardToRemote && r.clipboardToBrowser, 8 + n);
    if (!v.has(12)) return -12;
    const actions = v.u32(8) & EXT_CLIPBOARD_ACTIONS;
    this.#oversized = n - 4 > r.maxClipboardBytes;
    const fits = !this.#oversized;
    if ((actions & EXTENDED_CLIPBOARD_ACTION.caps) !== 0) {
      return this.#decide(KIND.clipboardCaps, (r.clipboardToRemote || r.clipboardToBrowser) && fits, 8 + n);
    }
    const toRemote = (actions & TO_REMOTE_ACTIONS) !== 0;
    const toBrowser = (actions & TO_BROWSER_ACTIONS) !== 0;
    const allowed = fits && (toRemote || toBrowser) && (!toRemote || r.clipboardToRemote) && (!toBrowser || r.clipboardToBrowser);
    const kind: KindIndex =
      (actions & EXTENDED_CLIPBOARD_ACTION.provide) !== 0
        ? KIND.clipboardProvide
        : (actions & EXTENDED_CLIPBOARD_ACTION.notify) !== 0
          ? KIND.clipboardNotify
          : (actions & EXTENDED_CLIPBOARD_ACTION.request) !== 0
            ? KIND.clipboardRequest
            : (actions & EXTENDED_CLIPBOARD_ACTION.peek) !== 0
              ? KIND.clipboardPeek
              : KIND.clipboardOther;
    // No known action: passed only where every clipboard message would be.
    if (kind === KIND.clipboardOther) return this.#decide(kind, fits && r.clipboardToRemote && r.clipboardToBrowser, 8 + n);
    return this.#decide(kind, allowed, 8 + n);
  }

  #frameQemu(v: ByteView): number {
    if (!v.has(2)) return -2;
    const subtype = v.u8(1);
    if (subtype === QEMU_CLIENT_SUBTYPE.extendedKeyEvent) {
      return this.#decide(KIND.qemuExtendedKeyEvent, this.#rules.input, 12); // type, sub, U16 down, keysym, keycode
    }
    if (subtype === QEMU_CLIENT_SUBTYPE.audio) {
      // Audio from the console to the browser: a viewer's business, passed in view-only too.
      if (!v.has(4)) return -4;
      const op = v.u16(2);
      if (op === QEMU_AUDIO_OPERATION.enable || op === QEMU_AUDIO_OPERATION.disable) return this.#decide(KIND.qemuAudio, true, 4);
      if (op === QEMU_AUDIO_OPERATION.setFormat) return this.#decide(KIND.qemuAudio, true, 10); // + U8 format, U8 channels, U32 Hz
      return this.#fail(`QEMU audio operation ${op} cannot be framed`, { messageType: CLIENT_MESSAGE.qemu, subtype, operation: op });
    }
    return this.#fail(`QEMU client message sub-type ${subtype} cannot be framed`, { messageType: CLIENT_MESSAGE.qemu, subtype });
  }

  #decide(kind: KindIndex, allowed: boolean, length: number): number {
    this.#kind = kind;
    this.#verdict = allowed ? VERDICT.pass : VERDICT.drop;
    return length;
  }

  #fail(message: string, details: Record<string, unknown>): number {
    this.#error = new VncgateError('RFB_ERR_CLIENT_PROTOCOL', message, { details });
    return FAILED;
  }
}
