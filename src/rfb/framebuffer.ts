/**
 * A framebuffer held as PNG scanlines: each row is one filter byte (0, "None") followed by the
 * row's pixels as 8-bit R, G, B. So the decoder writes pixels where the PNG encoder reads them,
 * and a screenshot needs no second copy of the image before compression (png.ts).
 */
export class Framebuffer {
  readonly width: number;
  readonly height: number;
  /** Bytes per row: the filter byte and 3 per pixel. */
  readonly stride: number;
  /** `height` rows of `stride` bytes; every filter byte is 0. */
  readonly scanlines: Buffer;

  constructor(width: number, height: number) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > 65_535 || height > 65_535) {
      throw new RangeError(`Framebuffer: bad size ${width}x${height}`);
    }
    this.width = width;
    this.height = height;
    this.stride = 1 + 3 * width;
    this.scanlines = Buffer.alloc(this.stride * height);
  }

  /** The pixel at (x, y) as [r, g, b] (tests and checks; not for bulk use). */
  pixel(x: number, y: number): [number, number, number] {
    const o = y * this.stride + 1 + 3 * x;
    return [this.scanlines[o]!, this.scanlines[o + 1]!, this.scanlines[o + 2]!];
  }

  /**
   * Writes 32-bit little-endian pixels (bytes B, G, R, unused: the pixel format framebuffer-messages.ts
   * asks for) into the rectangle at (x, y) of width `w`, starting at pixel `index` of that
   * rectangle (in row order). `src` holds a whole number of pixels. The caller has checked that
   * the rectangle lies inside the framebuffer.
   */
  putBgrx(x: number, y: number, w: number, index: number, src: Uint8Array): void {
    const fb = this.scanlines;
    const n = src.length >>> 2;
    let row = y + Math.floor(index / w);
    let col = index % w;
    // Row by row: each run is the rest of a rectangle row, or what is left of the input.
    for (let s = 0, left = n; left > 0; ) {
      const run = Math.min(w - col, left);
      let o = row * this.stride + 1 + 3 * (x + col);
      for (const end = s + 4 * run; s < end; s += 4, o += 3) {
        fb[o] = src[s + 2]!;
        fb[o + 1] = src[s + 1]!;
        fb[o + 2] = src[s]!;
      }
      left -= run;
      col = 0;
      row++;
    }
  }

  /** Fills a rectangle with one colour (tests; solid sub-encodings if ever added). */
  fill(x: number, y: number, w: number, h: number, rgb: readonly [number, number, number]): void {
    for (let r = y; r < y + h; r++) {
      let o = r * this.stride + 1 + 3 * x;
      for (let c = 0; c < w; c++, o += 3) {
        this.scanlines[o] = rgb[0];
        this.scanlines[o + 1] = rgb[1];
        this.scanlines[o + 2] = rgb[2];
      }
    }
  }

  /**
   * CopyRect (§7.7.2): the w×h rectangle at (srcX, srcY) is copied to (dstX, dstY), as it was
   * before the copy (source and destination may overlap). Both lie inside (checked by the caller).
   */
  copy(srcX: number, srcY: number, dstX: number, dstY: number, w: number, h: number): void {
    if (w === 0 || h === 0) return;
    const fb = this.scanlines;
    const len = 3 * w;
    // Rows in the order that never overwrites a source row before it is read; within a row,
    // Buffer.copy handles overlap itself (memmove).
    const down = dstY > srcY;
    for (let i = 0; i < h; i++) {
      const r = down ? h - 1 - i : i;
      const from = (srcY + r) * this.stride + 1 + 3 * srcX;
      fb.copy(fb, (dstY + r) * this.stride + 1 + 3 * dstX, from, from + len);
    }
  }
}
