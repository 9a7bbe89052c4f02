import { CELL_HEIGHT, CELL_WIDTH, GLYPH_HEIGHT, GLYPH_WIDTH, glyph } from './font.js';
import { intersect, isEmpty, rect, type Rect } from './rect.js';
import type { RgbxImage } from './pixel-format.js';

const LITTLE_ENDIAN_HOST = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/** The 32-bit word whose bytes in memory are R, G, B, 0 for a colour 0xRRGGBB. */
function word(rgb: number): number {
  const r = (rgb >> 16) & 0xff;
  const g = (rgb >> 8) & 0xff;
  const b = rgb & 0xff;
  return LITTLE_ENDIAN_HOST ? (r | (g << 8) | (b << 16)) >>> 0 : ((r << 24) | (g << 16) | (b << 8)) >>> 0;
}

/**
 * An RGB drawing surface (R, G, B, 0 per pixel, the layout of SERVER_PIXEL_FORMAT) with a clip
 * rectangle: every primitive draws only inside the clip, which is how the demo repaints just the
 * rectangles that changed.
 */
export class RgbCanvas implements RgbxImage {
  readonly width: number;
  readonly height: number;
  readonly stride: number;
  readonly pixels: Uint8Array;
  readonly #words: Uint32Array;
  #clip: Rect;

  constructor(width: number, height: number) {
    this.width = width;
    this.height = height;
    this.stride = width * 4;
    // Allocated as words so the byte view is 4-aligned (pooled Buffers need not be).
    this.#words = new Uint32Array(width * height);
    this.pixels = new Uint8Array(this.#words.buffer);
    this.#clip = this.bounds;
  }

  get bounds(): Rect {
    return rect(0, 0, this.width, this.height);
  }

  get clip(): Rect {
    return this.#clip;
  }

  /** Restricts drawing to `r` (within the canvas) until the next call. */
  setClip(r: Rect): void {
    this.#clip = intersect(r, this.bounds);
  }

  /** The colour at (x, y) as 0xRRGGBB (tests and diagnostics). */
  rgbAt(x: number, y: number): number {
    const i = (y * this.width + x) * 4;
    return (this.pixels[i]! << 16) | (this.pixels[i + 1]! << 8) | this.pixels[i + 2]!;
  }

  fillRect(x: number, y: number, width: number, height: number, rgb: number): void {
    this.#fill(intersect(rect(x, y, width, height), this.#clip), word(rgb));
  }

  /** A rectangle outline `thickness` pixels wide, drawn inside (x, y, width, height). */
  strokeRect(x: number, y: number, width: number, height: number, thickness: number, rgb: number): void {
    this.fillRect(x, y, width, thickness, rgb);
    this.fillRect(x, y + height - thickness, width, thickness, rgb);
    this.fillRect(x, y, thickness, height, rgb);
    this.fillRect(x + width - thickness, y, thickness, height, rgb);
  }

  /** Draws `text` with its top-left cell corner at (x, y), each font pixel `scale`×`scale`. */
  drawText(x: number, y: number, text: string, rgb: number, scale: number): void {
    const w = word(rgb);
    const cellW = CELL_WIDTH * scale;
    const cellH = CELL_HEIGHT * scale;
    if (isEmpty(intersect(rect(x, y, Number.MAX_SAFE_INTEGER, cellH), this.#clip))) return;
    let cx = x;
    for (const ch of text) {
      if (!isEmpty(intersect(rect(cx, y, cellW, cellH), this.#clip))) {
        const rows = glyph(ch);
        for (let row = 0; row < GLYPH_HEIGHT; row++) {
          const bits = rows[row] ?? 0;
          for (let col = 0; col < GLYPH_WIDTH; col++) {
            if (bits & (0x10 >> col)) this.#fill(intersect(rect(cx + col * scale, y + row * scale, scale, scale), this.#clip), w);
          }
        }
      }
      cx += cellW;
    }
  }

  #fill(r: Rect, w: number): void {
    if (isEmpty(r)) return;
    for (let row = r.y; row < r.y + r.height; row++) {
      const start = row * this.width + r.x;
      this.#words.fill(w, start, start + r.width);
    }
  }
}

/** Width and height in pixels of `length` characters drawn at `scale`. */
export function textSize(length: number, scale: number): { width: number; height: number } {
  return { width: length * CELL_WIDTH * scale, height: CELL_HEIGHT * scale };
}
