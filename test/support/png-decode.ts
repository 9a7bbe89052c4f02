import { inflateSync } from 'node:zlib';

/**
 * A PNG reader for tests, independent of src/rfb/png.ts (its own CRC, zlib's inflate): checks
 * the signature and every chunk's CRC, and undoes all five scanline filters, for 8-bit RGB and
 * RGBA without interlace. Returns RGB pixels, 3 bytes each, rows packed.
 */
export type DecodedPng = { width: number; height: number; rgb: Buffer; chunks: string[] };

const TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

export function decodePng(png: Buffer): DecodedPng {
  if (!png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) throw new Error('not a PNG signature');
  let off = 8;
  let width = 0;
  let height = 0;
  let colourType = -1;
  const idat: Buffer[] = [];
  const chunks: string[] = [];
  while (off < png.length) {
    const len = png.readUInt32BE(off);
    const type = png.toString('latin1', off + 4, off + 8);
    const data = png.subarray(off + 8, off + 8 + len);
    if (crc(png.subarray(off + 4, off + 8 + len)) !== png.readUInt32BE(off + 8 + len)) throw new Error(`bad CRC on ${type}`);
    chunks.push(type);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[12] !== 0) throw new Error('only 8-bit non-interlaced');
      colourType = data[9]!;
    } else if (type === 'IDAT') idat.push(Buffer.from(data));
    off += 12 + len;
    if (type === 'IEND') break;
  }
  if (off !== png.length) throw new Error('bytes after IEND');
  const bpp = colourType === 2 ? 3 : colourType === 6 ? 4 : 0;
  if (bpp === 0) throw new Error(`colour type ${colourType} not supported`);
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  if (raw.length !== height * (stride + 1)) throw new Error(`IDAT holds ${raw.length} bytes, expected ${height * (stride + 1)}`);
  const img = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? img[y * stride + i - bpp]! : 0;
      const b = y > 0 ? img[(y - 1) * stride + i]! : 0;
      const c = i >= bpp && y > 0 ? img[(y - 1) * stride + i - bpp]! : 0;
      const x = line[i]!;
      const v = filter === 0 ? x : filter === 1 ? x + a : filter === 2 ? x + b : filter === 3 ? x + ((a + b) >> 1) : filter === 4 ? x + paeth(a, b, c) : NaN;
      if (Number.isNaN(v)) throw new Error(`bad filter ${filter}`);
      img[y * stride + i] = v & 0xff;
    }
  }
  if (bpp === 3) return { width, height, rgb: img, chunks };
  const rgb = Buffer.alloc(width * height * 3);
  for (let p = 0; p < width * height; p++) img.copy(rgb, p * 3, p * 4, p * 4 + 3);
  return { width, height, rgb, chunks };
}

/** The pixel at (x, y) of a decoded PNG. */
export function pngPixel(d: DecodedPng, x: number, y: number): [number, number, number] {
  const o = (y * d.width + x) * 3;
  return [d.rgb[o]!, d.rgb[o + 1]!, d.rgb[o + 2]!];
}

/** How many distinct colours the image holds (a blank screen has one). */
export function distinctColours(d: DecodedPng, cap = 1_000): number {
  const seen = new Set<number>();
  for (let o = 0; o < d.rgb.length && seen.size < cap; o += 3) seen.add((d.rgb[o]! << 16) | (d.rgb[o + 1]! << 8) | d.rgb[o + 2]!);
  return seen.size;
}
