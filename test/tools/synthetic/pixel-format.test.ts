import { describe, expect, it } from 'vitest';
import type { PixelFormat } from '../../../src/rfb/index.js';
import { RgbCanvas } from '../../../tools/synthetic/canvas.js';
import { SERVER_PIXEL_FORMAT, createPixelEncoder, pixelFormatProblem } from '../../../tools/synthetic/pixel-format.js';
import { rect } from '../../../tools/synthetic/rect.js';

const base: PixelFormat = { ...SERVER_PIXEL_FORMAT };
const rgb565: PixelFormat = { ...base, bitsPerPixel: 16, depth: 16, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 };
const bgr233: PixelFormat = { ...base, bitsPerPixel: 8, depth: 8, redMax: 7, greenMax: 7, blueMax: 3, redShift: 0, greenShift: 3, blueShift: 6 };
const xrgbBigEndian: PixelFormat = { ...base, bigEndian: true, redShift: 16, greenShift: 8, blueShift: 0 };

function canvasOf(colours: number[]): RgbCanvas {
  const c = new RgbCanvas(colours.length, 1);
  colours.forEach((rgb, x) => c.fillRect(x, 0, 1, 1, rgb));
  return c;
}

describe('pixel formats', () => {
  it('accepts the true-colour formats clients use', () => {
    for (const pf of [base, rgb565, bgr233, xrgbBigEndian]) expect(pixelFormatProblem(pf)).toBeNull();
  });

  it.each([
    ['colour map', { ...base, trueColour: false }, /colour-map/],
    ['24 bpp', { ...base, bitsPerPixel: 24 }, /bits-per-pixel/],
    ['max not 2^n-1', { ...base, redMax: 200 }, /red-max/],
    ['max zero', { ...base, greenMax: 0 }, /green-max/],
    ['channel past the pixel', { ...rgb565, redShift: 12 }, /does not fit/],
    ['overlapping channels', { ...base, greenShift: 4 }, /overlap/],
  ])('refuses %s', (_name, pf, why) => {
    expect(pixelFormatProblem(pf)).toMatch(why);
    expect(() => createPixelEncoder(pf)).toThrow(RangeError);
  });

  const colours = [0xffffff, 0x000000, 0xff0000, 0x00ff00, 0x0000ff, 0x808080, 0x123456];

  it('copies the server format unchanged (R, G, B, 0 in memory)', () => {
    const c = canvasOf(colours);
    const out = createPixelEncoder(base).encode(c, rect(0, 0, colours.length, 1));
    expect([...out.subarray(0, 8)]).toEqual([0xff, 0xff, 0xff, 0, 0, 0, 0, 0]);
    expect([...out.subarray(24, 28)]).toEqual([0x12, 0x34, 0x56, 0]);
  });

  it('converts to RGB565 little-endian', () => {
    const enc = createPixelEncoder(rgb565);
    const out = enc.encode(canvasOf(colours), rect(0, 0, colours.length, 1));
    expect(out.length).toBe(colours.length * 2);
    expect([0, 1, 2, 3, 4].map((i) => out.readUInt16LE(i * 2))).toEqual([0xffff, 0x0000, 0xf800, 0x07e0, 0x001f]);
    expect(enc.pixel(0x808080)).toBe((16 << 11) | (32 << 5) | 16);
  });

  it('converts to 8 bpp BGR233', () => {
    const out = createPixelEncoder(bgr233).encode(canvasOf(colours), rect(0, 0, 5, 1));
    expect([...out]).toEqual([0xff, 0x00, 0x07, 0x38, 0xc0]);
  });

  it('converts to 32 bpp big-endian xRGB', () => {
    const out = createPixelEncoder(xrgbBigEndian).encode(canvasOf(colours), rect(0, 0, colours.length, 1));
    expect(out.readUInt32BE(24)).toBe(0x123456);
    expect([...out.subarray(8, 12)]).toEqual([0, 0xff, 0, 0]);
  });

  it('encodes a sub-rectangle row by row', () => {
    const c = new RgbCanvas(4, 3);
    c.fillRect(1, 1, 2, 2, 0x0000ff);
    const out = createPixelEncoder(rgb565).encode(c, rect(1, 1, 3, 2));
    expect([0, 1, 2, 3, 4, 5].map((i) => out.readUInt16LE(i * 2))).toEqual([0x1f, 0x1f, 0, 0x1f, 0x1f, 0]);
  });
});
