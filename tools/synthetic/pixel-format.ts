import type { PixelFormat } from '../../src/rfb/index.js';
import type { Rect } from './rect.js';

/**
 * What the synthetic server announces in ServerInit, and how its canvas is laid out in memory:
 * 32 bpp true colour, little-endian, red in the low byte (R, G, B, 0 in memory). It is also exactly
 * what noVNC asks for with SetPixelFormat, so the common case is a plain copy.
 */
export const SERVER_PIXEL_FORMAT: Readonly<PixelFormat> = Object.freeze({
  bitsPerPixel: 32,
  depth: 24,
  bigEndian: false,
  trueColour: true,
  redMax: 255,
  greenMax: 255,
  blueMax: 255,
  redShift: 0,
  greenShift: 8,
  blueShift: 16,
});

/** Source pixels: 4 bytes each, R, G, B, unused; `stride` bytes per row. */
export type RgbxImage = { pixels: Uint8Array; stride: number };

/**
 * Why we cannot serve `pf`, or null when we can (§7.4). We serve any true-colour format of 8, 16 or
 * 32 bits per pixel whose channels are 2^n − 1 wide and fit the pixel without overlapping.
 * Colour-map formats would need SetColourMapEntries (§7.6.2), which no client we serve asks for.
 */
export function pixelFormatProblem(pf: PixelFormat): string | null {
  if (pf.bitsPerPixel !== 8 && pf.bitsPerPixel !== 16 && pf.bitsPerPixel !== 32) {
    return `bits-per-pixel ${pf.bitsPerPixel} is not 8, 16 or 32`;
  }
  if (!pf.trueColour) return 'colour-map pixel formats are not supported';
  const channels = [
    ['red', pf.redMax, pf.redShift],
    ['green', pf.greenMax, pf.greenShift],
    ['blue', pf.blueMax, pf.blueShift],
  ] as const;
  const masks: number[] = [];
  for (const [name, max, shift] of channels) {
    if (max < 1 || (max & (max + 1)) !== 0) return `${name}-max ${max} is not 2^n - 1`;
    const bits = Math.log2(max + 1);
    if (shift + bits > pf.bitsPerPixel) return `${name} channel (shift ${shift}, ${bits} bits) does not fit ${pf.bitsPerPixel} bits`;
    masks.push(max * 2 ** shift);
  }
  const [r = 0, g = 0, b = 0] = masks;
  // Masks are below 2^32; >>> 0 keeps the bitwise AND unsigned.
  if (((r & g) >>> 0) !== 0 || ((r & b) >>> 0) !== 0 || ((g & b) >>> 0) !== 0) return 'colour channels overlap';
  return null;
}

export function samePixelFormat(a: PixelFormat, b: PixelFormat): boolean {
  return (
    a.bitsPerPixel === b.bitsPerPixel &&
    a.trueColour === b.trueColour &&
    (a.bitsPerPixel === 8 || a.bigEndian === b.bigEndian) &&
    a.redMax === b.redMax &&
    a.greenMax === b.greenMax &&
    a.blueMax === b.blueMax &&
    a.redShift === b.redShift &&
    a.greenShift === b.greenShift &&
    a.blueShift === b.blueShift
  );
}

/** Converts canvas pixels to one client's pixel format. */
export type PixelEncoder = {
  readonly pixelFormat: PixelFormat;
  readonly bytesPerPixel: number;
  /** Raw pixel data (§7.7.1) for `r` of `image`, in this format; `r` must lie inside the image. */
  encode(image: RgbxImage, r: Rect): Buffer;
  /** One pixel in this format, for a colour 0xRRGGBB. */
  pixel(rgb: number): number;
};

/** Builds the encoder for a format `pixelFormatProblem` accepted. */
export function createPixelEncoder(pf: PixelFormat): PixelEncoder {
  const problem = pixelFormatProblem(pf);
  if (problem !== null) throw new RangeError(`createPixelEncoder: ${problem}`);
  const format: PixelFormat = { ...pf };
  const bytesPerPixel = pf.bitsPerPixel / 8;
  // A lookup table per channel, 8-bit source value to its scaled, shifted contribution.
  const lut = (max: number, shift: number): Float64Array =>
    Float64Array.from({ length: 256 }, (_, v) => Math.round((v * max) / 255) * 2 ** shift);
  const red = lut(pf.redMax, pf.redShift);
  const green = lut(pf.greenMax, pf.greenShift);
  const blue = lut(pf.blueMax, pf.blueShift);
  const value = (r: number, g: number, b: number): number => red[r]! + green[g]! + blue[b]!;
  const canCopy = samePixelFormat(pf, SERVER_PIXEL_FORMAT);

  const encode = (image: RgbxImage, r: Rect): Buffer => {
    const out = Buffer.allocUnsafe(r.width * r.height * bytesPerPixel);
    const src = image.pixels;
    let o = 0;
    for (let y = r.y; y < r.y + r.height; y++) {
      let s = y * image.stride + r.x * 4;
      if (canCopy) {
        out.set(src.subarray(s, s + r.width * 4), o);
        o += r.width * 4;
        continue;
      }
      for (let x = 0; x < r.width; x++, s += 4) {
        const v = value(src[s]!, src[s + 1]!, src[s + 2]!);
        if (bytesPerPixel === 4) o = pf.bigEndian ? out.writeUInt32BE(v, o) : out.writeUInt32LE(v, o);
        else if (bytesPerPixel === 2) o = pf.bigEndian ? out.writeUInt16BE(v, o) : out.writeUInt16LE(v, o);
        else out[o++] = v;
      }
    }
    return out;
  };

  return {
    pixelFormat: format,
    bytesPerPixel,
    encode,
    pixel: (rgb) => value((rgb >> 16) & 0xff, (rgb >> 8) & 0xff, rgb & 0xff),
  };
}

/** Encoders are stateless, so clients with the same format share one (a few KiB of tables each). */
const encoderCache = new Map<string, PixelEncoder>();
const ENCODER_CACHE_MAX = 32;

/** createPixelEncoder, memoised by format (bounded; formats in use are few: noVNC's, RGB565, BGR233). */
export function pixelEncoderFor(pf: PixelFormat): PixelEncoder {
  const key = [
    pf.bitsPerPixel,
    pf.bitsPerPixel === 8 ? false : pf.bigEndian,
    pf.trueColour,
    pf.redMax,
    pf.greenMax,
    pf.blueMax,
    pf.redShift,
    pf.greenShift,
    pf.blueShift,
  ].join(',');
  let enc = encoderCache.get(key);
  if (!enc) {
    enc = createPixelEncoder(pf);
    if (encoderCache.size >= ENCODER_CACHE_MAX) encoderCache.clear();
    encoderCache.set(key, enc);
  }
  return enc;
}
