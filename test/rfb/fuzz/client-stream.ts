import { EXTENDED_CLIPBOARD_ACTION as A, PSEUDO_ENCODING, type ClientMessageKind, type ClientMessageRules } from '../../../src/rfb/index.js';
import type { Rng } from './rng.js';

/** One generated client message: its bytes, what the filter should count it as, its payload size. */
export type GeneratedMessage = { kind: ClientMessageKind; bytes: Buffer; payload: number };

const ENCODINGS = [0, 1, 5, 7, 16, 21, 50, -223, -224, -239, -258, -260, -261, -307, -308, -309, -312, -313, -23, -247, 0x574d5664];
const CLIPBOARD_FLAGS = [A.caps | 0x1f00_0000, A.request, A.peek, A.notify, A.provide, A.request | A.notify, A.peek | A.provide, 1 << 29, 0];

/**
 * A random stream of well-formed §7.5 / rfbproto client messages of every kind the filter frames.
 * `extendedMouse`: frame a PointerEvent with bit 7 set as 7 bytes once a SetEncodings listed
 * ExtendedMouseButtons (true only for an unrestricted filter, which leaves that encoding in).
 */
export function clientStream(rng: Rng, count: number, extendedMouse: boolean): GeneratedMessage[] {
  const out: GeneratedMessage[] = [];
  let mouse7 = false;
  for (let i = 0; i < count; i++) {
    const m = message(rng, mouse7);
    if (m.kind === 'setEncodings') mouse7 = extendedMouse && listsEncoding(m.bytes, PSEUDO_ENCODING.extendedMouseButtons);
    out.push(m);
  }
  return out;
}

function w(kind: ClientMessageKind, bytes: Buffer, payload = 0): GeneratedMessage {
  return { kind, bytes, payload };
}

function message(rng: Rng, mouse7: boolean): GeneratedMessage {
  switch (rng.int(13)) {
    case 0:
      return w('setPixelFormat', Buffer.concat([Buffer.from([0, 0, 0, 0]), rng.bytes(16)]));
    case 1: {
      const list = Array.from({ length: rng.int(12) }, () => rng.pick(ENCODINGS));
      if (rng.chance(0.5)) list.splice(rng.int(list.length + 1), 0, PSEUDO_ENCODING.extendedMouseButtons);
      if (rng.chance(0.5)) list.splice(rng.int(list.length + 1), 0, PSEUDO_ENCODING.extendedClipboard);
      const b = Buffer.alloc(4 + 4 * list.length);
      b[0] = 2;
      b.writeUInt16BE(list.length, 2);
      list.forEach((e, j) => b.writeInt32BE(e, 4 + 4 * j));
      return w('setEncodings', b);
    }
    case 2:
      return w('framebufferUpdateRequest', Buffer.concat([Buffer.from([3]), rng.bytes(9)]));
    case 3:
      return w('keyEvent', Buffer.concat([Buffer.from([4]), rng.bytes(7)]));
    case 4: {
      const b = Buffer.concat([Buffer.from([5]), rng.bytes(5)]);
      return w('pointerEvent', mouse7 && (b[1]! & 0x80) !== 0 ? Buffer.concat([b, Buffer.from([rng.int(4)])]) : b);
    }
    case 5: {
      const n = rng.size(10);
      const b = Buffer.alloc(8 + n);
      b[0] = 6;
      b.writeUInt32BE(n, 4);
      rng.bytes(n).copy(b, 8);
      return w('clientCutText', b, n);
    }
    case 6: {
      const flags = rng.pick(CLIPBOARD_FLAGS);
      const n = rng.chance(0.05) ? rng.range(1, 3) : 4 + rng.size(8); // -0 would be a plain, empty one
      const b = Buffer.alloc(8 + n);
      b[0] = 6;
      b.writeInt32BE(-n, 4);
      if (n >= 4) b.writeUInt32BE((flags | rng.int(0x20)) >>> 0, 8);
      return w(n < 4 ? 'clipboardOther' : clipboardKind(flags), b, Math.max(0, n - 4));
    }
    case 7:
      return w('enableContinuousUpdates', Buffer.concat([Buffer.from([150]), rng.bytes(9)]));
    case 8: {
      const n = rng.int(65);
      return w('clientFence', Buffer.concat([Buffer.from([248, 0, 0, 0]), rng.bytes(4), Buffer.from([n]), rng.bytes(n)]));
    }
    case 9:
      return w('xvp', Buffer.from([250, 0, 1, rng.range(2, 4)]));
    case 10: {
      const screens = rng.int(4);
      return w('setDesktopSize', Buffer.concat([Buffer.from([251]), rng.bytes(5), Buffer.from([screens, 0]), rng.bytes(16 * screens)]));
    }
    case 11:
      return w('qemuExtendedKeyEvent', Buffer.concat([Buffer.from([255, 0]), rng.bytes(10)]));
    default: {
      const op = rng.int(3);
      return w('qemuAudio', Buffer.concat([Buffer.from([255, 1, 0, op]), op === 2 ? rng.bytes(6) : Buffer.alloc(0)]));
    }
  }
}

function clipboardKind(flags: number): ClientMessageKind {
  if (flags & A.caps) return 'clipboardCaps';
  if (flags & A.provide) return 'clipboardProvide';
  if (flags & A.notify) return 'clipboardNotify';
  if (flags & A.request) return 'clipboardRequest';
  if (flags & A.peek) return 'clipboardPeek';
  return 'clipboardOther';
}

function listsEncoding(setEncodings: Buffer, encoding: number): boolean {
  for (let at = 4; at < setEncodings.length; at += 4) if (setEncodings.readInt32BE(at) === encoding) return true;
  return false;
}

/**
 * The oracle: what a filter with these rules must forward for a generated stream, written from the
 * policy table (README "View-only and clipboard") rather than from the filter's code.
 */
export function expectedForward(messages: readonly GeneratedMessage[], rules: ClientMessageRules): { out: Buffer; dropped: Partial<Record<ClientMessageKind, number>> } {
  const parts: Buffer[] = [];
  const dropped: Partial<Record<ClientMessageKind, number>> = {};
  for (const m of messages) {
    if (m.kind === 'setEncodings') {
      parts.push(withoutEncodings(m.bytes, rules.removedEncodings));
    } else if (allowed(m, rules)) parts.push(m.bytes);
    else dropped[m.kind] = (dropped[m.kind] ?? 0) + 1;
  }
  return { out: Buffer.concat(parts), dropped };
}

function allowed(m: GeneratedMessage, r: ClientMessageRules): boolean {
  const fits = m.payload <= r.maxClipboardBytes;
  const flags = m.kind.startsWith('clipboard') && m.bytes.length >= 12 ? m.bytes.readUInt32BE(8) : 0;
  const toRemote = (flags & (A.notify | A.provide)) !== 0;
  const toBrowser = (flags & (A.request | A.peek)) !== 0;
  switch (m.kind) {
    case 'keyEvent':
    case 'pointerEvent':
    case 'qemuExtendedKeyEvent':
      return r.input;
    case 'clientCutText':
      return r.clipboardToRemote && fits;
    case 'clipboardCaps':
      return (r.clipboardToRemote || r.clipboardToBrowser) && fits;
    case 'clipboardRequest':
    case 'clipboardPeek':
    case 'clipboardNotify':
    case 'clipboardProvide':
      return fits && (!toRemote || r.clipboardToRemote) && (!toBrowser || r.clipboardToBrowser);
    case 'clipboardOther':
      return fits && r.clipboardToRemote && r.clipboardToBrowser;
    case 'xvp':
      return r.power;
    case 'setDesktopSize':
      return r.resize;
    default:
      return true;
  }
}

function withoutEncodings(setEncodings: Buffer, removed: readonly number[]): Buffer {
  const kept: Buffer[] = [];
  for (let at = 4; at < setEncodings.length; at += 4) {
    if (!removed.includes(setEncodings.readInt32BE(at))) kept.push(setEncodings.subarray(at, at + 4));
  }
  const head = Buffer.from([2, 0, 0, 0]);
  head.writeUInt16BE(kept.length, 2);
  return Buffer.concat([head, ...kept]);
}
