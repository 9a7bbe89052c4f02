import { VncgateError } from '../errors.js';
import { ByteWriter, type ByteView } from './byte-queue.js';
import { CLIENT_MESSAGE, CLIENT_MESSAGE_LIMITS, EXTENDED_CLIPBOARD_ACTION, PSEUDO_ENCODING, QEMU_AUDIO_OPERATION, QEMU_CLIENT_SUBTYPE } from './constants.js';
import type { ClientMessageRules } from './client-message-policy.js';

/** What the filter tells apart, for its counts; Extended Clipboard messages by their action. */
export const KIND = {
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
export type KindIndex = (typeof KIND)[ClientMessageKind];
export const CLIENT_MESSAGE_KINDS = Object.keys(KIND) as readonly ClientMessageKind[];

export const VERDICT = { pass: 0, drop: 1, rewrite: 2 } as const;
export type Verdict = (typeof VERDICT)[keyof typeof VERDICT];

/** Framing results that are not a message length: waiting for `-n` head bytes, or failed. */
export const FAILED = 0;

/** The largest head framing may need to see whole: a SetEncodings of the most encodings allowed. */
export const MAX_HEAD_BYTES = 4 + 4 * CLIENT_MESSAGE_LIMITS.maxEncodings;

const EXT_CLIPBOARD_ACTIONS = 0xff00_0000;
const TO_REMOTE_ACTIONS = EXTENDED_CLIPBOARD_ACTION.notify | EXTENDED_CLIPBOARD_ACTION.provide;
const TO_BROWSER_ACTIONS = EXTENDED_CLIPBOARD_ACTION.request | EXTENDED_CLIPBOARD_ACTION.peek;

/**
 * Frames one client message at a time (§7.5 and the rfbproto extensions noVNC 1.7 sends) and
 * decides its fate under the rules: the table of what each message is, how long it is and who may
 * send it. ClientMessageFilter does the streaming around it. Fields, not getters: the filter reads
 * them once per message on the relay path.
 */
export class ClientMessageFramer {
  /** Set by frame() for the message it framed. */
  kind: KindIndex = KIND.setPixelFormat;
  verdict: Verdict = VERDICT.pass;
  /** The message is a clipboard payload over maxClipboardBytes. */
  oversized = false;
  /** Set when frame() returned FAILED. */
  error: VncgateError | null = null;
  /** The last SetEncodings forwarded listed ExtendedMouseButtons: PointerEvent may be 7 bytes. */
  #extendedMouse = false;

  constructor(readonly rules: ClientMessageRules) {}

  /**
   * Frames the message at the start of `v` and decides its fate (kind, verdict): returns its
   * total length, -n when it needs n head bytes to tell (n ≤ MAX_HEAD_BYTES), or FAILED.
   */
  frame(v: ByteView): number {
    if (!v.has(1)) return -1;
    const r = this.rules;
    this.oversized = false;
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
      if (this.rules.removedEncodings.includes(e)) remove = true;
      else if (e === PSEUDO_ENCODING.extendedMouseButtons) extendedMouse = true;
    }
    this.#extendedMouse = extendedMouse;
    this.kind = KIND.setEncodings;
    this.verdict = remove ? VERDICT.rewrite : VERDICT.pass;
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
    const r = this.rules;
    const length = v.s32(4);
    if (length >= 0) {
      this.oversized = length > r.maxClipboardBytes;
      return this.#decide(KIND.clientCutText, r.clipboardToRemote && !this.oversized, 8 + length);
    }
    const n = -length;
    if (n < 4) return this.#decide(KIND.clipboardOther, r.clipboardToRemote && r.clipboardToBrowser, 8 + n);
    if (!v.has(12)) return -12;
    const actions = v.u32(8) & EXT_CLIPBOARD_ACTIONS;
    this.oversized = n - 4 > r.maxClipboardBytes;
    const fits = !this.oversized;
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
      return this.#decide(KIND.qemuExtendedKeyEvent, this.rules.input, 12); // type, sub, U16 down, keysym, keycode
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
    this.kind = kind;
    this.verdict = allowed ? VERDICT.pass : VERDICT.drop;
    return length;
  }

  #fail(message: string, details: Record<string, unknown>): number {
    this.error = new VncgateError('RFB_ERR_CLIENT_PROTOCOL', message, { details });
    return FAILED;
  }

  /** The whole SetEncodings in `v`, without the encodings the rules remove. */
  rewriteSetEncodings(v: ByteView): Buffer {
    const count = v.u16(2);
    const kept: number[] = [];
    for (let i = 0; i < count; i++) {
      const e = v.s32(4 + 4 * i);
      if (!this.rules.removedEncodings.includes(e)) kept.push(e);
    }
    const w = new ByteWriter().u8(CLIENT_MESSAGE.setEncodings).u8(0).u16(kept.length);
    for (const e of kept) w.u32(e >>> 0);
    return w.finish();
  }
}
