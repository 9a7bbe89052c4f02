/**
 * Server-to-client messages built field by field (RFC 6143 §7.6, §7.7 and the rfbproto
 * pseudo-encodings), for the shared console's framer tests and its fuzz role: each builder knows
 * its own length by construction, so the expected boundaries do not come from the framer.
 */
import { ENCODING } from '../../src/rfb/server-message-framing.js';

const BPP = 4;

export type Rect =
  | { kind: 'raw'; w: number; h: number }
  | { kind: 'copyRect'; w: number; h: number }
  | { kind: 'rre'; w: number; h: number; subrects: number }
  /** Hextile: one sub-encoding byte per tile (subrect counts from `counts`, cycled). */
  | { kind: 'hextile'; w: number; h: number; subencodings: number[]; counts: number[] }
  | { kind: 'cursor'; w: number; h: number }
  | { kind: 'desktopSize'; w: number; h: number }
  | { kind: 'extendedDesktopSize'; w: number; h: number; status: number; screens: number }
  | { kind: 'qemuKey' };

export type Message =
  | { kind: 'update'; rects: Rect[]; lastRect?: boolean }
  | { kind: 'colourMap'; colours: number }
  | { kind: 'bell' }
  | { kind: 'cutText'; length: number; extended?: boolean }
  | { kind: 'fence'; payload: number }
  | { kind: 'xvp' }
  | { kind: 'endOfContinuousUpdates' };

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}
/** Filler bytes: a recognisable pattern, never zero-only, so a framer cannot rely on zeros. */
function fill(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (seed + i * 37) & 0xff;
  return b;
}

function rectHeader(x: number, y: number, w: number, h: number, encoding: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(x, 0);
  b.writeUInt16BE(y, 2);
  b.writeUInt16BE(w, 4);
  b.writeUInt16BE(h, 6);
  b.writeInt32BE(encoding, 8);
  return b;
}

function hextile(w: number, h: number, subencodings: number[], counts: number[]): Buffer {
  const parts: Buffer[] = [];
  let t = 0;
  for (let ty = 0; ty < h; ty += 16) {
    for (let tx = 0; tx < w; tx += 16) {
      const tw = Math.min(16, w - tx);
      const th = Math.min(16, h - ty);
      const s = subencodings.length > 0 ? subencodings[t % subencodings.length]! & 0x1f : 0;
      parts.push(Buffer.from([s]));
      if (s & 1) parts.push(fill(tw * th * BPP, t));
      else {
        if (s & 2) parts.push(fill(BPP, t + 1));
        if (s & 4) parts.push(fill(BPP, t + 2));
        if (s & 8) {
          const n = counts.length > 0 ? counts[t % counts.length]! & 0xff : 0;
          parts.push(Buffer.from([n]), fill(n * (s & 16 ? BPP + 2 : 2), t + 3));
        }
      }
      t++;
    }
  }
  return Buffer.concat(parts);
}

export function rectBytes(r: Rect): Buffer {
  switch (r.kind) {
    case 'raw':
      return Buffer.concat([rectHeader(1, 2, r.w, r.h, ENCODING.raw), fill(r.w * r.h * BPP, 5)]);
    case 'copyRect':
      return Buffer.concat([rectHeader(3, 4, r.w, r.h, ENCODING.copyRect), u16(7), u16(9)]);
    case 'rre':
      return Buffer.concat([rectHeader(0, 0, r.w, r.h, ENCODING.rre), u32(r.subrects), fill(BPP, 1), fill(r.subrects * (BPP + 8), 2)]);
    case 'hextile':
      return Buffer.concat([rectHeader(0, 0, r.w, r.h, ENCODING.hextile), hextile(r.w, r.h, r.subencodings, r.counts)]);
    case 'cursor':
      return Buffer.concat([rectHeader(2, 3, r.w, r.h, ENCODING.cursor), fill(r.w * r.h * BPP + ((r.w + 7) >> 3) * r.h, 4)]);
    case 'desktopSize':
      return rectHeader(0, 0, r.w, r.h, ENCODING.desktopSize);
    case 'extendedDesktopSize':
      return Buffer.concat([rectHeader(1, r.status, r.w, r.h, ENCODING.extendedDesktopSize), Buffer.from([r.screens, 0, 0, 0]), fill(16 * r.screens, 6)]);
    case 'qemuKey':
      return rectHeader(0, 0, 0, 0, ENCODING.qemuExtendedKeyEvent);
  }
}

export function messageBytes(m: Message): Buffer {
  switch (m.kind) {
    case 'update': {
      const rects = m.rects.map(rectBytes);
      if (m.lastRect) return Buffer.concat([Buffer.from([0, 0]), u16(0xffff), ...rects, rectHeader(0, 0, 0, 0, ENCODING.lastRect)]);
      return Buffer.concat([Buffer.from([0, 0]), u16(m.rects.length), ...rects]);
    }
    case 'colourMap':
      return Buffer.concat([Buffer.from([1, 0]), u16(0), u16(m.colours), fill(6 * m.colours, 8)]);
    case 'bell':
      return Buffer.from([2]);
    case 'cutText':
      return Buffer.concat([Buffer.from([3, 0, 0, 0]), u32(m.extended ? -m.length : m.length), fill(m.length, 9)]);
    case 'fence':
      return Buffer.concat([Buffer.from([248, 0, 0, 0]), u32(0), Buffer.from([m.payload]), fill(m.payload, 10)]);
    case 'xvp':
      return Buffer.from([250, 0, 1, 1]);
    case 'endOfContinuousUpdates':
      return Buffer.from([150]);
  }
}

const TYPE: Record<Message['kind'], number> = { update: 0, colourMap: 1, bell: 2, cutText: 3, fence: 248, xvp: 250, endOfContinuousUpdates: 150 };

/** The stream of `messages` and, for each, its type and where it ends (the oracle). */
export function stream(messages: readonly Message[]): { bytes: Buffer; ends: { type: number; end: number }[] } {
  const parts = messages.map(messageBytes);
  let at = 0;
  const ends = parts.map((p, i) => {
    at += p.length;
    return { type: TYPE[messages[i]!.kind], end: at };
  });
  return { bytes: Buffer.concat(parts), ends };
}

/** A golden session: one of every message and rectangle kind, small enough for every chunking. */
export const GOLDEN: Message[] = [
  { kind: 'update', rects: [{ kind: 'raw', w: 2, h: 2 }, { kind: 'copyRect', w: 4, h: 4 }] },
  { kind: 'bell' },
  { kind: 'update', rects: [{ kind: 'rre', w: 8, h: 8, subrects: 2 }] },
  { kind: 'update', rects: [{ kind: 'hextile', w: 20, h: 17, subencodings: [1, 2 | 4 | 8, 8 | 16, 0], counts: [2, 1] }] },
  { kind: 'update', rects: [{ kind: 'cursor', w: 3, h: 2 }, { kind: 'desktopSize', w: 640, h: 480 }] },
  { kind: 'update', rects: [{ kind: 'extendedDesktopSize', w: 800, h: 600, status: 0, screens: 1 }], lastRect: true },
  { kind: 'colourMap', colours: 2 },
  { kind: 'cutText', length: 5 },
  { kind: 'cutText', length: 6, extended: true },
  { kind: 'fence', payload: 3 },
  { kind: 'xvp' },
  { kind: 'endOfContinuousUpdates' },
  { kind: 'update', rects: [] },
  { kind: 'update', rects: [{ kind: 'qemuKey' }, { kind: 'hextile', w: 0, h: 5, subencodings: [], counts: [] }] },
];
