import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Framebuffer, FramebufferReader, type FramebufferAction, type FramebufferLimits } from '../../src/rfb/index.js';
import { chunkings, hex } from './chunkings.js';

const LIMITS: FramebufferLimits = { maxWidth: 64, maxHeight: 64, maxCutTextBytes: 32, maxRequests: 3 };

function feed(r: FramebufferReader, chunks: Buffer[]): FramebufferAction[] {
  return chunks.flatMap((c) => r.receive(c));
}

function started(width: number, height: number, limits = LIMITS): FramebufferReader {
  const r = new FramebufferReader({ width, height }, limits);
  const a = r.start();
  expect(a.map((x) => x.type)).toEqual(['send']);
  return r;
}

/** Raw rectangle header and pixels (B, G, R, X each), §7.7.1. */
function rawRect(x: number, y: number, w: number, h: number, colour: (px: number, py: number) => [number, number, number]): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(x, 0);
  head.writeUInt16BE(y, 2);
  head.writeUInt16BE(w, 4);
  head.writeUInt16BE(h, 6);
  head.writeInt32BE(0, 8);
  const px = Buffer.alloc(4 * w * h);
  for (let j = 0; j < h; j++) {
    for (let i = 0; i < w; i++) {
      const [r, g, b] = colour(x + i, y + j);
      px.set([b, g, r, 0], 4 * (j * w + i));
    }
  }
  return Buffer.concat([head, px]);
}

function rect(x: number, y: number, w: number, h: number, encoding: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(x, 0);
  head.writeUInt16BE(y, 2);
  head.writeUInt16BE(w, 4);
  head.writeUInt16BE(h, 6);
  head.writeInt32BE(encoding, 8);
  return Buffer.concat([head, body]);
}

function update(...rects: Buffer[]): Buffer {
  const head = Buffer.from([0, 0, 0, 0]);
  head.writeUInt16BE(rects.length, 2);
  return Buffer.concat([head, ...rects]);
}

const gradient = (x: number, y: number): [number, number, number] => [x * 10, y * 20, 255 - x];

function image(a: FramebufferAction[]): Framebuffer {
  const done = a.find((x) => x.type === 'done');
  if (done?.type !== 'done') throw new Error(`no frame: ${JSON.stringify(a.map((x) => x.type))}`);
  return done.framebuffer;
}

function failure(a: FramebufferAction[]): string {
  const f = a.find((x) => x.type === 'failed');
  if (f?.type !== 'failed') throw new Error(`did not fail: ${JSON.stringify(a.map((x) => x.type))}`);
  return f.error.code;
}

describe('FramebufferReader: what it asks for', () => {
  it('sends SetPixelFormat (32 bpp BGRX), SetEncodings (CopyRect, Hextile, Raw, DesktopSize) and a full-frame request', () => {
    const r = new FramebufferReader({ width: 640, height: 480 }, { ...LIMITS, maxWidth: 8192, maxHeight: 8192 });
    const [a] = r.start();
    expect(a).toEqual({
      type: 'send',
      bytes: hex`
        00 000000                   # SetPixelFormat, padding
        20 18 00 01                 # 32 bpp, depth 24, little-endian, true colour
        00ff 00ff 00ff 10 08 00     # max 255 each; shifts R16 G8 B0
        000000                      # padding
        02 00 0004                  # SetEncodings, 4 of them
        00000001 00000005 00000000 ffffff21  # CopyRect, Hextile, Raw, DesktopSize (-223)
        03 00 0000 0000 0280 01e0   # FramebufferUpdateRequest, non-incremental, 0,0 640x480
      `,
    });
    expect(r.state).toBe('message');
  });
});

describe('FramebufferReader: decoding', () => {
  const frame = update(rawRect(0, 0, 4, 3, gradient));

  it('decodes a Raw frame fed whole, byte at a time and split at every offset', () => {
    for (const { name, chunks } of chunkings(frame)) {
      const fb = image(feed(started(4, 3), chunks));
      for (let y = 0; y < 3; y++) for (let x = 0; x < 4; x++) expect(fb.pixel(x, y), name).toEqual(gradient(x, y));
    }
  });

  it('applies CopyRect from earlier rectangles of the same update, overlapping included', () => {
    const msg = update(
      rawRect(0, 0, 4, 4, gradient),
      rect(1, 1, 3, 3, 1, hex`0000 0000`), // copy (0,0)-(2,2) one pixel down-right: overlapping
    );
    const want = new Framebuffer(4, 4);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) want.fill(x, y, 1, 1, gradient(x, y));
    for (let y = 0; y < 3; y++) for (let x = 0; x < 3; x++) want.fill(x + 1, y + 1, 1, 1, gradient(x, y));
    for (const { name, chunks } of chunkings(msg)) expect(image(feed(started(4, 4), chunks)).scanlines, name).toEqual(want.scanlines);
  });

  it('skips Bell, SetColourMapEntries, ServerCutText and EndOfContinuousUpdates around the frame', () => {
    const noise = Buffer.concat([hex`02`, hex`01 00 0000 0002 ${'0'.repeat(24)}`, hex`03 000000 00000005 "hello"`, hex`96`]);
    for (const { name, chunks } of chunkings(Buffer.concat([noise, frame]))) expect(image(feed(started(4, 3), chunks)).pixel(3, 2), name).toEqual(gradient(3, 2));
  });

  it('follows a DesktopSize: asks again for the new size and returns the frame at that size', () => {
    const r = started(4, 3);
    const a = feed(r, [update(rect(0, 0, 6, 2, -223))]);
    expect(a).toEqual([{ type: 'send', bytes: hex`03 00 0000 0000 0006 0002` }]);
    const fb = image(feed(r, [update(rawRect(0, 0, 6, 2, gradient))]));
    expect([fb.width, fb.height, fb.pixel(5, 1)]).toEqual([6, 2, gradient(5, 1)]);
  });

  it('asks again while the frame is not covered, and gives up after maxRequests', () => {
    const r = started(4, 3);
    expect(feed(r, [update(rawRect(0, 0, 4, 1, gradient))]).map((x) => x.type)).toEqual(['send']);
    expect(feed(r, [update(rawRect(0, 0, 4, 1, gradient))]).map((x) => x.type)).toEqual(['send']);
    expect(failure(feed(r, [update(rawRect(0, 0, 4, 1, gradient))]))).toBe('RFB_ERR_PROTOCOL');
  });

  it('ignores bytes after the frame', () => {
    const r = started(4, 3);
    image(feed(r, [Buffer.concat([frame, hex`ff ff ff`])]));
    expect(r.state).toBe('done');
    expect(r.receive(hex`00`)).toEqual([]);
  });
});

describe('FramebufferReader: Hextile (§7.7.4)', () => {
  const R: [number, number, number] = [255, 0, 0];
  const G: [number, number, number] = [0, 255, 0];
  const B: [number, number, number] = [0, 0, 255];
  const px = (c: [number, number, number]): Buffer => Buffer.from([c[2], c[1], c[0], 0]);

  it('decodes raw, background, foreground, plain and coloured subrectangle tiles, with edge tiles and colours carried over', () => {
    // A 20x18 rectangle: tiles 16x16, 4x16 (right edge), 16x2, 4x2 (bottom edge), row by row.
    const tiles = Buffer.concat([
      // Tile 1 (0,0 16x16): background R, foreground G, 1 subrect at (2,3) 4x5 in the foreground.
      Buffer.from([2 | 4 | 8]), px(R), px(G), Buffer.from([1, (2 << 4) | 3, (3 << 4) | 4]),
      // Tile 2 (16,0 4x16): colours carried over; one coloured subrect B at (1,1) 2x2.
      Buffer.from([8 | 16, 1]), px(B), Buffer.from([(1 << 4) | 1, (1 << 4) | 1]),
      // Tile 3 (0,16 16x2): new background G only.
      Buffer.from([2]), px(G),
      // Tile 4 (16,16 4x2): raw, gradient.
      Buffer.from([1]), Buffer.concat(Array.from({ length: 8 }, (_, i) => px(gradient(16 + (i % 4), 16 + Math.floor(i / 4))))),
    ]);
    const msg = update(rect(0, 0, 20, 18, 5, tiles));
    const want = new Framebuffer(20, 18);
    want.fill(0, 0, 16, 16, R);
    want.fill(2, 3, 4, 5, G);
    want.fill(16, 0, 4, 16, R);
    want.fill(17, 1, 2, 2, B);
    want.fill(0, 16, 16, 2, G);
    for (let i = 0; i < 8; i++) want.fill(16 + (i % 4), 16 + Math.floor(i / 4), 1, 1, gradient(16 + (i % 4), 16 + Math.floor(i / 4)));
    for (const { name, chunks } of chunkings(msg)) expect(image(feed(started(20, 18), chunks)).scanlines, name).toEqual(want.scanlines);
  });

  it('refuses a tile with no background, a subrectangle with no foreground, and one outside its tile', () => {
    expect(failure(feed(started(4, 3), [update(rect(0, 0, 4, 3, 5, hex`00`))]))).toBe('RFB_ERR_PROTOCOL');
    expect(failure(feed(started(4, 3), [update(rect(0, 0, 4, 3, 5, Buffer.concat([hex`0a`, px(R), hex`01 00 00`])))]))).toBe('RFB_ERR_PROTOCOL');
    expect(failure(feed(started(4, 3), [update(rect(0, 0, 4, 3, 5, Buffer.concat([hex`0e`, px(R), px(G), hex`01 40 00`])))]))).toBe('RFB_ERR_PROTOCOL');
  });
});

describe('FramebufferReader: a hostile or broken server', () => {
  it('refuses a 65535x65535 framebuffer at ServerInit before allocating it', () => {
    const r = new FramebufferReader({ width: 65_535, height: 65_535 }, { ...LIMITS, maxWidth: 8192, maxHeight: 8192 });
    const a = r.start();
    expect(failure(a)).toBe('RFB_ERR_LIMIT');
    expect(a[0]?.type === 'failed' && a[0].error.details).toEqual({ width: 65_535, height: 65_535, maxWidth: 8192, maxHeight: 8192 });
  });

  it('refuses a DesktopSize to 65535x65535, and an empty framebuffer', () => {
    expect(failure(feed(started(4, 3), [update(rect(0, 0, 65_535, 65_535, -223))]))).toBe('RFB_ERR_LIMIT');
    expect(failure(feed(started(4, 3), [update(rect(0, 0, 0, 10, -223))]))).toBe('RFB_ERR_PROTOCOL');
    expect(failure(new FramebufferReader({ width: 0, height: 0 }, LIMITS).start())).toBe('RFB_ERR_PROTOCOL');
  });

  it('refuses a stream of DesktopSize rectangles (each one allocates a framebuffer) after maxRequests of them', () => {
    const flood = update(...Array.from({ length: 1000 }, (_, i) => rect(0, 0, 60 - (i % 2), 60, -223)));
    const a = feed(started(4, 3), [flood]);
    expect(failure(a)).toBe('RFB_ERR_PROTOCOL');
    const f = a.find((x) => x.type === 'failed');
    expect(f?.type === 'failed' && f.error.message).toMatch(/resized the framebuffer 4 times/);
  });

  it('refuses rectangles outside the framebuffer (Raw and CopyRect source)', () => {
    expect(failure(feed(started(4, 3), [update(rect(3, 0, 2, 1, 0))]))).toBe('RFB_ERR_PROTOCOL');
    expect(failure(feed(started(4, 3), [update(rect(65_535, 65_535, 65_535, 65_535, 0))]))).toBe('RFB_ERR_PROTOCOL');
    expect(failure(feed(started(4, 3), [update(rect(0, 0, 2, 2, 1, hex`0003 0000`))]))).toBe('RFB_ERR_PROTOCOL');
  });

  it('refuses an encoding it did not ask for, and an unknown message type', () => {
    expect(failure(feed(started(4, 3), [update(rect(0, 0, 4, 3, 16, hex`00000010`))]))).toBe('RFB_ERR_PROTOCOL');
    expect(failure(feed(started(4, 3), [hex`fe`]))).toBe('RFB_ERR_PROTOCOL');
  });

  it('refuses ServerCutText longer than maxCutTextBytes without waiting for it', () => {
    expect(failure(feed(started(4, 3), [hex`03 000000 ffffffff`]))).toBe('RFB_ERR_LIMIT');
  });

  it('waits on a truncated rectangle without a frame, holding no more than what arrived', () => {
    const full = update(rawRect(0, 0, 4, 3, gradient));
    for (let cut = 0; cut < full.length; cut++) {
      const r = started(4, 3);
      expect(feed(r, [full.subarray(0, cut)])).toEqual([]);
      expect(['message', 'update', 'rect', 'raw']).toContain(r.state);
    }
  });

  it('never throws and never answers with more than sends, a frame or a failure, on random bytes in any chunking', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }), (chunks) => {
        const r = started(8, 8);
        for (const c of chunks) {
          for (const a of r.receive(c)) expect(['send', 'done', 'failed']).toContain(a.type);
        }
      }),
      { numRuns: 500 },
    );
  });
});
