import { CLIENT_MESSAGE } from './constants.js';
import { ByteWriter } from './byte-queue.js';
import { encodePixelFormat, type PixelFormat } from './server-init.js';

/** Rectangle encodings the screenshot decoder understands (§7.7, §7.8). */
export const ENCODING = {
  raw: 0, // §7.7.1
  copyRect: 1, // §7.7.2
  hextile: 5, // §7.7.4
  desktopSize: -223, // §7.8.2 pseudo-encoding: the framebuffer changed size
} as const;

/** Server-to-client message types (§7.6, rfbproto extensions). */
export const SERVER_MESSAGE = {
  framebufferUpdate: 0, // §7.6.1
  setColourMapEntries: 1, // §7.6.2
  bell: 2, // §7.6.3
  serverCutText: 3, // §7.6.4
  endOfContinuousUpdates: 150, // rfbproto "EndOfContinuousUpdates"
} as const;

/**
 * The pixel format the decoder asks for: 32 bits per pixel, depth 24, little-endian, true colour,
 * 8 bits per channel with red at bit 16, green at 8, blue at 0. Every server must honour
 * SetPixelFormat (§7.5.1), so pixels arrive as bytes B, G, R, unused.
 */
export const SCREENSHOT_PIXEL_FORMAT: PixelFormat = {
  bitsPerPixel: 32,
  depth: 24,
  bigEndian: false,
  trueColour: true,
  redMax: 255,
  greenMax: 255,
  blueMax: 255,
  redShift: 16,
  greenShift: 8,
  blueShift: 0,
};

/** SetPixelFormat, §7.5.1. */
export function setPixelFormat(pf: PixelFormat): Buffer {
  return new ByteWriter().u8(CLIENT_MESSAGE.setPixelFormat).bytes(Buffer.alloc(3)).bytes(encodePixelFormat(pf)).finish();
}

/** SetEncodings, §7.5.2 (signed 32-bit encoding numbers). */
export function setEncodings(encodings: readonly number[]): Buffer {
  const w = new ByteWriter().u8(CLIENT_MESSAGE.setEncodings).u8(0).u16(encodings.length);
  for (const e of encodings) w.u32(e >>> 0);
  return w.finish();
}

/** FramebufferUpdateRequest, §7.5.3. */
export function framebufferUpdateRequest(incremental: boolean, x: number, y: number, width: number, height: number): Buffer {
  return new ByteWriter().u8(CLIENT_MESSAGE.framebufferUpdateRequest).u8(incremental ? 1 : 0).u16(x).u16(y).u16(width).u16(height).finish();
}
