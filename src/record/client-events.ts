import { ByteView, resolveClientMessagePolicy } from '../rfb/index.js';
import { CLIENT_MESSAGE_KINDS, ClientMessageFramer, FAILED, KIND, MAX_HEAD_BYTES } from '../rfb/client-message-framing.js';
import type { ClientEvent } from './format.js';

/** Framing only: every message passes, nothing is rewritten (the recorder decides what it keeps). */
const FRAME_ALL = resolveClientMessagePolicy({ viewOnly: false, clipboard: 'both', maxClipboardBytes: Infinity });

/** Head bytes a message needs whole before its event can be read (the rest streams by). */
const EVENT_HEAD: Partial<Record<number, number>> = {
  [KIND.pointerEvent]: 6,
  [KIND.keyEvent]: 8,
  [KIND.qemuExtendedKeyEvent]: 12,
  [KIND.clientCutText]: 8,
  [KIND.setDesktopSize]: 6,
};

/** Kinds too frequent and too meaningless to keep: one per framebuffer update. */
const SKIPPED: ReadonlySet<number> = new Set([KIND.framebufferUpdateRequest, KIND.clientFence]);

/**
 * Reads the browser's messages (§7.5) out of the byte stream toward the console, for a
 * recording's metadata: kind and time of each, pointer position and buttons, and keys only when
 * `recordKeys` (otherwise they are counted, not kept: even their timing reveals what was typed).
 * Clipboard contents are never kept, only their length. Sans-I/O, any chunking; a head split
 * across chunks is held (at most MAX_HEAD_BYTES), the rest of a message is skipped as it streams
 * by. A message it cannot frame stops the events (the session is not its business).
 */
export class ClientEventReader {
  readonly #framer = new ClientMessageFramer(FRAME_ALL);
  readonly #view = new ByteView();
  readonly #recordKeys: boolean;
  #held: Buffer | null = null;
  #skip = 0;
  #stopped = false;
  keyEventsOmitted = 0;

  constructor(recordKeys: boolean) {
    this.#recordKeys = recordKeys;
  }

  /** Bytes of a message head held until the next chunk (at most MAX_HEAD_BYTES). */
  get heldBytes(): number {
    return this.#held?.length ?? 0;
  }

  /** Whether framing failed (later bytes are ignored). */
  get stopped(): boolean {
    return this.#stopped;
  }

  receive(chunk: Buffer, emit: (e: ClientEvent) => void): void {
    let pos = 0;
    while (pos < chunk.length && !this.#stopped) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - pos);
        this.#skip -= n;
        pos += n;
        continue;
      }
      const held = this.#held;
      const heldLength = held?.length ?? 0;
      const data = held ? Buffer.concat([held, chunk.subarray(pos, pos + MAX_HEAD_BYTES)]) : chunk.subarray(pos);
      let length = this.#framer.frame(this.#view.reset(data, 0, data.length));
      if (length === FAILED) {
        this.#stopped = true;
        return;
      }
      const need = length > 0 ? Math.min(length, EVENT_HEAD[this.#framer.kind] ?? 1) : -length;
      if (length < 0 || data.length < need) {
        // Its head runs past this chunk (need ≤ MAX_HEAD_BYTES, so what is held is bounded).
        this.#held = Buffer.from(data);
        return;
      }
      this.#event(data, emit);
      this.#held = null;
      length -= heldLength;
      const rest = chunk.length - pos;
      if (length <= rest) pos += length;
      else {
        this.#skip = length - rest;
        pos = chunk.length;
      }
    }
  }

  #event(v: Buffer, emit: (e: ClientEvent) => void): void {
    const kind = this.#framer.kind;
    switch (kind) {
      case KIND.pointerEvent:
        emit({ k: 'pointerEvent', buttons: v[1]!, x: v.readUInt16BE(2), y: v.readUInt16BE(4) });
        return;
      case KIND.keyEvent:
        if (this.#recordKeys) emit({ k: 'keyEvent', down: v[1] !== 0, keysym: v.readUInt32BE(4) });
        else this.keyEventsOmitted++;
        return;
      case KIND.qemuExtendedKeyEvent:
        if (this.#recordKeys) emit({ k: 'qemuExtendedKeyEvent', down: v.readUInt16BE(2) !== 0, keysym: v.readUInt32BE(4), keycode: v.readUInt32BE(8) });
        else this.keyEventsOmitted++;
        return;
      case KIND.clientCutText:
        emit({ k: 'clientCutText', bytes: Math.abs(v.readInt32BE(4)) });
        return;
      case KIND.setDesktopSize:
        emit({ k: 'setDesktopSize', width: v.readUInt16BE(2), height: v.readUInt16BE(4) });
        return;
      default:
        if (!SKIPPED.has(kind)) emit({ k: CLIENT_MESSAGE_KINDS[kind] ?? 'unknown' });
    }
  }
}
