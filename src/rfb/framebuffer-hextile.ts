import { VncgateError } from '../errors.js';
import type { ByteQueue } from './byte-queue.js';
import type { Framebuffer } from './framebuffer.js';

/** Hextile sub-encoding mask bits, §7.7.4. */
const RAW = 1;
const BACKGROUND = 2;
const FOREGROUND = 4;
const ANY_SUBRECTS = 8;
const SUBRECTS_COLOURED = 16;

/** Bytes per pixel in the format the decoder asks for (32 bits, B G R unused). */
const BPP = 4;

/** Colours carried from tile to tile within one Hextile rectangle (§7.7.4). */
export type HextileColours = { background: [number, number, number] | null; foreground: [number, number, number] | null };

/**
 * How many bytes the next tile of `tw`×`th` pixels takes, from what is queued: the whole tile's
 * length when the queue holds enough to know it, else the bytes needed to find out (at most 1 +
 * 4 + 4 + 1 before the subrectangle count is known). A tile is at most 1 + 16·16·4 bytes raw, or
 * 1 + 4 + 4 + 1 + 255·6 with subrectangles: bounded either way.
 */
export function hextileTileLength(q: ByteQueue, tw: number, th: number): number {
  if (!q.has(1)) return 1;
  const mask = q.peekU8(0);
  if (mask & RAW) return 1 + tw * th * BPP;
  let n = 1 + (mask & BACKGROUND ? BPP : 0) + (mask & FOREGROUND ? BPP : 0);
  if (!(mask & ANY_SUBRECTS)) return n;
  if (!q.has(n + 1)) return n + 1;
  const count = q.peekU8(n);
  n += 1 + count * (mask & SUBRECTS_COLOURED ? BPP + 2 : 2);
  return n;
}

function pixel(q: ByteQueue): [number, number, number] {
  const b = q.u8();
  const g = q.u8();
  const r = q.u8();
  q.skip(1);
  return [r, g, b];
}

/**
 * Paints one tile at (x, y) of `tw`×`th` from the queue, which holds at least
 * `hextileTileLength` bytes. Returns an error for a tile that needs a colour never given, or a
 * subrectangle outside the tile.
 */
export function paintHextileTile(q: ByteQueue, fb: Framebuffer, x: number, y: number, tw: number, th: number, colours: HextileColours): VncgateError | null {
  const mask = q.u8();
  if (mask & RAW) {
    fb.putBgrx(x, y, tw, 0, q.bytes(tw * th * BPP));
    return null;
  }
  if (mask & BACKGROUND) colours.background = pixel(q);
  if (mask & FOREGROUND) colours.foreground = pixel(q);
  if (colours.background === null) return new VncgateError('RFB_ERR_PROTOCOL', 'Hextile tile without a background colour');
  fb.fill(x, y, tw, th, colours.background);
  if (!(mask & ANY_SUBRECTS)) return null;
  const count = q.u8();
  for (let i = 0; i < count; i++) {
    let colour = colours.foreground;
    if (mask & SUBRECTS_COLOURED) colour = colours.foreground = pixel(q);
    const xy = q.u8();
    const wh = q.u8();
    const sx = xy >> 4;
    const sy = xy & 15;
    const sw = (wh >> 4) + 1;
    const sh = (wh & 15) + 1;
    if (colour === null) return new VncgateError('RFB_ERR_PROTOCOL', 'Hextile subrectangle without a foreground colour');
    if (sx + sw > tw || sy + sh > th) return new VncgateError('RFB_ERR_PROTOCOL', `Hextile subrectangle ${sw}x${sh}+${sx}+${sy} lies outside its ${tw}x${th} tile`);
    fb.fill(x + sx, y + sy, sw, sh, colour);
  }
  return null;
}
