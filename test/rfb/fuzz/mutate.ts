import type { Rng } from './rng.js';

const INTERESTING_U8 = [0, 1, 2, 3, 0x13, 0x7f, 0x80, 0xfe, 0xff];
const INTERESTING_U32 = [0, 1, 2, 16, 19, 256, 257, 258, 262, 4096, 4097, 0xffff, 0x1_0000, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff];

/** 1 to 4 random edits: bit flips, interesting bytes and words, insertions, deletions, duplications. */
export function mutate(rng: Rng, input: Buffer): Buffer {
  let b = Buffer.from(input);
  const edits = rng.range(1, 4);
  for (let e = 0; e < edits; e++) {
    const at = rng.int(b.length + 1);
    switch (rng.int(8)) {
      case 0:
        if (at < b.length) b[at] = b[at]! ^ (1 << rng.int(8));
        break;
      case 1:
        if (at < b.length) b[at] = rng.pick(INTERESTING_U8);
        break;
      case 2:
        if (at + 4 <= b.length) b.writeUInt32BE(rng.pick(INTERESTING_U32), at);
        break;
      case 3:
        b = Buffer.concat([b.subarray(0, at), rng.bytes(rng.range(1, 16)), b.subarray(at)]);
        break;
      case 4:
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + rng.range(1, 16))]);
        break;
      case 5: {
        const n = rng.range(1, 32);
        b = Buffer.concat([b.subarray(0, at + n), b.subarray(at, at + n), b.subarray(at + n)]);
        break;
      }
      case 6:
        b = b.subarray(0, at);
        break;
      default:
        b = Buffer.concat([b, rng.bytes(rng.size(9))]);
    }
  }
  return b;
}

/**
 * Feeds `bytes` in a random chunking: whole, a byte at a time, split in two, or in random pieces
 * small or large. Chunks are views, not copies. Long inputs are cut into at most ~512 pieces, to
 * keep a million inputs fast; test/rfb/byte-queue.test.ts covers trickling at length.
 */
export function forEachChunk(rng: Rng, bytes: Buffer, feed: (chunk: Buffer) => void): void {
  const n = bytes.length;
  if (n === 0) return;
  const mode = rng.int(10);
  if (mode < 3) return feed(bytes);
  if (mode === 3 && n <= 512) {
    for (let i = 0; i < n; i++) feed(bytes.subarray(i, i + 1));
    return;
  }
  if (mode < 6) {
    const cut = rng.range(1, n);
    feed(bytes.subarray(0, cut));
    if (cut < n) feed(bytes.subarray(cut));
    return;
  }
  const maxPiece = mode < 8 ? 8 : 512;
  const minPiece = Math.max(1, Math.floor(n / 512));
  for (let at = 0; at < n; ) {
    const piece = rng.range(minPiece, Math.max(minPiece, maxPiece));
    feed(bytes.subarray(at, at + piece));
    at += piece;
  }
}
