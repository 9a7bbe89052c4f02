import { ByteWriter } from '../../src/rfb/index.js';
import { ENCODING, SERVER_MESSAGE } from './constants.js';
import type { Rect } from './rect.js';

export type RawRectangle = { rect: Rect; pixels: Buffer };

/**
 * A FramebufferUpdate (§7.6.1) of Raw rectangles (§7.7.1), as the list of buffers to write in order
 * (headers are built here; pixel buffers are passed through uncopied, for a vectored write).
 */
export function rawFramebufferUpdate(rects: readonly RawRectangle[]): Buffer[] {
  if (rects.length > 0xffff) throw new RangeError('a FramebufferUpdate holds at most 65535 rectangles');
  const parts: Buffer[] = [new ByteWriter().u8(SERVER_MESSAGE.framebufferUpdate).u8(0).u16(rects.length).finish()];
  for (const { rect: r, pixels } of rects) {
    parts.push(new ByteWriter().u16(r.x).u16(r.y).u16(r.width).u16(r.height).u32(ENCODING.raw).finish());
    parts.push(pixels);
  }
  return parts;
}
