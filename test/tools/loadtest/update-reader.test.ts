import { describe, expect, it } from 'vitest';
import { streamPayload } from '../../../tools/synthetic/index.js';
import { UpdateReader } from '../../../tools/loadtest/update-reader.js';
import { chunkings } from '../../rfb/chunkings.js';

/** A FramebufferUpdate (RFC 6143 §7.6.1) of Raw rectangles whose pixels are stream payloads from `seq`. */
function update(rects: { x: number; y: number; w: number; h: number }[], seq: number, bpp = 4): Buffer {
  const parts: Buffer[] = [Buffer.from([0, 0, rects.length >> 8, rects.length & 255])];
  for (const [i, r] of rects.entries()) {
    const head = Buffer.alloc(12);
    head.writeUInt16BE(r.x, 0);
    head.writeUInt16BE(r.y, 2);
    head.writeUInt16BE(r.w, 4);
    head.writeUInt16BE(r.h, 6);
    parts.push(head, streamPayload(seq + i, r.w * r.h * bpp));
  }
  return Buffer.concat(parts);
}

const reader = (verify = true) => new UpdateReader({ width: 64, height: 32, bitsPerPixel: 32, verify });
const feed = (r: UpdateReader, chunks: Buffer[]): number => {
  let n = 0;
  for (const c of chunks) {
    const k = r.receive(c);
    if (k < 0) return -1;
    n += k;
  }
  return n;
};

describe('UpdateReader', () => {
  const stream = Buffer.concat([
    update([{ x: 0, y: 0, w: 3, h: 2 }], 0),
    Buffer.from([2]), // Bell
    update([{ x: 1, y: 1, w: 1, h: 1 }, { x: 0, y: 5, w: 4, h: 1 }], 1),
    Buffer.concat([Buffer.from([3, 0, 0, 0, 0, 0, 0, 5]), Buffer.from('clip!')]), // ServerCutText
    update([], 3), // an update with no rectangles
    update([{ x: 10, y: 10, w: 2, h: 3 }], 3),
  ]);

  it('counts updates and checks every pixel byte, in any chunking', () => {
    for (const { name, chunks } of chunkings(stream)) {
      const r = reader();
      expect(feed(r, chunks), name).toBe(4);
      expect(r.failure, name).toBeNull();
      expect(r.pixelBytes).toBe((6 + 1 + 4 + 6) * 4);
      expect(r.midUpdate).toBe(false);
    }
  });

  it('reports an altered pixel byte as a payload mismatch, with where', () => {
    const bad = Buffer.from(stream);
    const at = 4 + 12 + 5; // the sixth pixel byte of the first rectangle
    bad[at]! ^= 0x01;
    const r = reader();
    expect(feed(r, [bad])).toBe(-1);
    expect(r.failure?.reason).toBe('payload-mismatch');
    expect(r.failure?.message).toMatch(/seq 0: pixel byte 5 /);
  });

  it('never accepts a stream with a byte dropped anywhere: it fails or is left waiting for the missing byte', () => {
    // Updates only: a dropped one-byte Bell would leave a valid stream, which nothing could notice.
    const updates = Buffer.concat([update([{ x: 0, y: 0, w: 3, h: 2 }], 0), update([{ x: 1, y: 1, w: 1, h: 1 }, { x: 0, y: 5, w: 4, h: 1 }], 1), update([{ x: 10, y: 10, w: 2, h: 3 }], 3)]);
    for (let at = 0; at < updates.length; at++) {
      const dropped = Buffer.concat([updates.subarray(0, at), updates.subarray(at + 1)]);
      const r = reader();
      const n = feed(r, [dropped]);
      expect(n === -1 || (n < 3 && r.midUpdate), `dropped byte ${at}`).toBe(true);
    }
  });

  it('fails on messages a synthetic server does not send', () => {
    const unknownType = reader();
    expect(unknownType.receive(Buffer.from([0x7f]))).toBe(-1);
    expect(unknownType.failure?.reason).toBe('rfb-protocol');

    const notRaw = update([{ x: 0, y: 0, w: 1, h: 1 }], 0);
    notRaw.writeInt32BE(7, 4 + 8); // Tight
    const r2 = reader();
    expect(r2.receive(notRaw)).toBe(-1);
    expect(r2.failure?.message).toMatch(/encoding 7/);

    const r3 = reader();
    expect(r3.receive(update([{ x: 60, y: 0, w: 8, h: 1 }], 0))).toBe(-1);
    expect(r3.failure?.message).toMatch(/outside/);
  });

  it('with verification off, counts without checking', () => {
    const bad = Buffer.from(stream);
    bad[4 + 12]! ^= 0xff;
    const r = reader(false);
    expect(feed(r, [bad])).toBe(4);
  });
});
