import { ClientMessageFilter, type ClientMessageKind, type ClientMessagePolicy } from '../../src/rfb/index.js';
import { hex } from './chunkings.js';

/**
 * Every client message noVNC 1.7 sends (core/rfb.js `RFB.messages`), plus QEMU audio, as annotated
 * hex (§7.5 and rfbproto), each with the kind the filter counts it as.
 */
export const MESSAGES = {
  setPixelFormat: hex`00 000000  20 18 00 01 00ff 00ff 00ff 10 08 00 000000   # §7.5.1 32 bpp depth 24`,
  // §7.5.2: Tight, DesktopSize (-223), ExtendedMouseButtons (-316), Extended Clipboard (0xc0a1e5ce)
  setEncodings: hex`02 00 0004  00000007 ffffff21 fffffec4 c0a1e5ce`,
  framebufferUpdateRequest: hex`03 00 0000 0000 0400 0300   # §7.5.3 full 1024x768`,
  enableContinuousUpdates: hex`96 01 0000 0000 0400 0300   # rfbproto 150`,
  clientFence: hex`f8 000000 80000000 04 "abcd"             # rfbproto 248, flags, 4-byte payload`,
  keyEvent: hex`04 01 0000 00000061                         # §7.5.4 'a' down`,
  pointerEvent: hex`05 01 0010 0020                         # §7.5.5 button 1 at 16,32`,
  clientCutText: hex`06 000000 00000005 "hello"             # §7.5.6`,
  // rfbproto Extended Clipboard: length -n, then flags (actions << 24 | formats).
  clipboardCaps: hex`06 000000 fffffff8 1f000001 00001000   # caps+all actions, text up to 4096`,
  clipboardRequest: hex`06 000000 fffffffc 02000001         # request text`,
  clipboardPeek: hex`06 000000 fffffffc 04000000            # peek`,
  clipboardNotify: hex`06 000000 fffffffc 08000001          # notify: the browser has text`,
  clipboardProvide: hex`06 000000 fffffff6 10000001 789c 4b4c 0200   # provide, 6 zlib bytes`,
  xvp: hex`fa 00 01 03                                       # rfbproto 250: xvp v1 reboot`,
  setDesktopSize: hex`fb 00 0400 0300 01 00  00000000 0000 0000 0400 0300 00000000   # rfbproto 251`,
  qemuExtendedKeyEvent: hex`ff 00 0001 00000061 0000001e # rfbproto 255/0: 'a' down, XT scancode`,
  qemuAudio: hex`ff 01 0000  ff 01 0002 03 02 0000ac44   # rfbproto 255/1: enable; S16 stereo 44.1 kHz`,
} as const satisfies Partial<Record<ClientMessageKind, Buffer>>;

export type VectorName = keyof typeof MESSAGES;
export const VECTOR_NAMES = Object.keys(MESSAGES) as VectorName[];

/** All of them in one stream, a trailing incremental request last. */
export const SESSION = Buffer.concat([...VECTOR_NAMES.map((n) => MESSAGES[n]), hex`03 01 0000 0000 0400 0300`]);

/** MESSAGES.setEncodings with the given encodings left out. */
export function setEncodingsWithout(...removed: number[]): Buffer {
  const list = [7, -223, -316, -1063131698].filter((e) => !removed.includes(e));
  const b = Buffer.alloc(4 + 4 * list.length);
  b.writeUInt8(2, 0);
  b.writeUInt16BE(list.length, 2);
  list.forEach((e, i) => b.writeInt32BE(e, 4 + 4 * i));
  return b;
}

export type Run = { parts: Buffer[]; out: Buffer; error: string | null; filter: ClientMessageFilter; maxBuffered: number };

/** Feeds chunks until one fails; collects what was forwarded. */
export function run(policy: ClientMessagePolicy | ClientMessageFilter, chunks: Iterable<Buffer>): Run {
  const filter = policy instanceof ClientMessageFilter ? policy : new ClientMessageFilter(policy);
  const parts: Buffer[] = [];
  let error: string | null = null;
  let maxBuffered = 0;
  for (const chunk of chunks) {
    const e = filter.receive(chunk, (b) => parts.push(b));
    maxBuffered = Math.max(maxBuffered, filter.bufferedBytes);
    if (e) {
      error = e.code;
      break;
    }
  }
  return { parts, out: Buffer.concat(parts), error, filter, maxBuffered };
}

export const OPEN: ClientMessagePolicy = { viewOnly: false, clipboard: 'both', maxClipboardBytes: Infinity };
