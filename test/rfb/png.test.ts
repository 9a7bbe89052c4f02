import * as zlib from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Framebuffer, crc32, encodePng, pngFile } from '../../src/rfb/index.js';
import { decodePng, pngPixel } from '../support/png-decode.js';
import { hex } from './chunkings.js';

describe('crc32', () => {
  it('matches the published check values', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(Buffer.from('IEND'))).toBe(0xae426082);
    expect(crc32(Buffer.alloc(0))).toBe(0);
  });

  it('agrees with zlib.crc32 (Node >= 20.15) on random data, also when continued', () => {
    const zcrc = (zlib as unknown as { crc32?: (d: Uint8Array, v?: number) => number }).crc32;
    expect(typeof zcrc).toBe('function');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.uint8Array({ maxLength: 64 }), (a, b) => {
        expect(crc32(a)).toBe(zcrc!(a));
        expect(crc32(b, crc32(a))).toBe(zcrc!(Buffer.concat([a, b])));
      }),
    );
  });
});

describe('PNG encoder', () => {
  it('writes the golden IHDR and IEND of a 1x1 RGB image', () => {
    const fb = new Framebuffer(1, 1);
    fb.fill(0, 0, 1, 1, [255, 0, 0]);
    const png = encodePng(fb);
    expect(png.subarray(0, 33)).toEqual(hex`
      89504e470d0a1a0a                    # signature
      0000000d "IHDR" 00000001 00000001   # 1x1
      08 02 00 00 00                      # 8-bit, truecolour, deflate, filter 0, no interlace
      907753de                            # CRC (the well-known one of a 1x1 RGB IHDR)
    `);
    expect(png.subarray(png.length - 12)).toEqual(hex`00000000 "IEND" ae426082`);
    // The IDAT is zlib of one row: filter byte 0, then ff 00 00.
    const idatLength = png.readUInt32BE(33);
    expect(zlib.inflateSync(png.subarray(41, 41 + idatLength))).toEqual(hex`00 ff0000`);
  });

  it('decodes (with an independent reader) to exactly the pixels written, for any size', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), fc.integer(), (w, h, seed) => {
        const fb = new Framebuffer(w, h);
        let s = seed >>> 0;
        const px = Buffer.alloc(4 * w * h);
        for (let i = 0; i < px.length; i++) px[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
        fb.putBgrx(0, 0, w, 0, px);
        const d = decodePng(encodePng(fb));
        expect([d.width, d.height, d.chunks]).toEqual([w, h, ['IHDR', 'IDAT', 'IEND']]);
        for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) expect(pngPixel(d, x, y)).toEqual(fb.pixel(x, y));
      }),
      { numRuns: 60 },
    );
  });

  it('round-trips: decode, re-encode, decode gives the same image and the same file', () => {
    const fb = new Framebuffer(7, 5);
    fb.fill(0, 0, 7, 5, [10, 20, 30]);
    fb.fill(2, 1, 3, 2, [200, 100, 0]);
    const first = encodePng(fb);
    const d = decodePng(first);
    const again = new Framebuffer(d.width, d.height);
    for (let y = 0; y < d.height; y++) for (let x = 0; x < d.width; x++) again.fill(x, y, 1, 1, pngPixel(d, x, y));
    expect(encodePng(again)).toEqual(first);
  });

  it('pngFile wraps an already-compressed stream (the shell deflates off the event loop)', () => {
    const fb = new Framebuffer(3, 2);
    fb.fill(1, 1, 2, 1, [1, 2, 3]);
    expect(pngFile(3, 2, zlib.deflateSync(fb.scanlines, { level: 6 }))).toEqual(encodePng(fb, 6));
  });
});
