import { describe, expect, it } from 'vitest';
import { ReadBuffer } from '../../src/proxy/read-buffer.js';

describe('ReadBuffer', () => {
  it('reuses the buffer only after the consumer reclaimed the last chunk', () => {
    const r = new ReadBuffer();
    const a = r.next();
    r.lend(10);
    const b = r.next();
    expect(b).not.toBe(a); // lent and never reclaimed: a fresh buffer, as Node does by default
    r.lend(10);
    r.reclaim();
    expect(r.next()).toBe(b);
    expect(r).toMatchObject({ allocated: 2, reused: 1 });
  });

  it('grows by doubling after full reads, up to 256 KiB', () => {
    const r = new ReadBuffer();
    const sizes: number[] = [];
    for (let i = 0; i < 12; i++) {
      const buf = r.next();
      sizes.push(buf.length);
      r.lend(buf.length);
      r.reclaim();
    }
    expect(sizes).toEqual([256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 262144]);
  });

  it('keeps its size through an occasional short read and shrinks after a run of small ones', () => {
    const r = new ReadBuffer();
    for (let i = 0; i < 11; i++) {
      const buf = r.next();
      r.lend(buf.length);
      r.reclaim();
    }
    expect(r.next().length).toBe(262144);
    r.lend(100); // the tail of an update
    r.reclaim();
    const full = r.next();
    expect(full.length).toBe(262144);
    r.lend(full.length);
    r.reclaim();
    for (let i = 0; i < 4; i++) {
      r.next();
      r.lend(20); // keystrokes, pointer events, a quiet screen
      r.reclaim();
    }
    expect(r.next().length).toBe(ReadBuffer.MIN);
  });

  it('frames the last read in place, with the header in the headroom before it', () => {
    const r = new ReadBuffer();
    for (const n of [5, 125, 126, 65_535, 65_536, ReadBuffer.MAX]) {
      let buf = r.next();
      while (buf.length < n) {
        r.lend(buf.length); // full reads grow the buffer
        r.reclaim();
        buf = r.next();
      }
      buf.fill(0xab, 0, n);
      r.lend(n);
      const chunk = buf.subarray(0, n);
      const frame = r.framed(chunk)!;
      const header = n < 126 ? [0x82, n] : n < 65_536 ? [0x82, 126, n >> 8, n & 0xff] : [0x82, 127, 0, 0, 0, 0, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
      expect([...frame.subarray(0, header.length)], `header for ${n}`).toEqual(header);
      expect(frame.length).toBe(header.length + n);
      expect(frame.buffer).toBe(chunk.buffer); // the same memory: no copy
      expect(frame.byteOffset + header.length).toBe(chunk.byteOffset);
      expect(frame.subarray(header.length).equals(chunk)).toBe(true);
      r.reclaim();
    }
  });

  it('frames only a read that starts at the current buffer', () => {
    const r = new ReadBuffer();
    const buf = r.next();
    r.lend(20);
    expect(r.framed(Buffer.alloc(20))).toBeNull(); // someone else's bytes
    expect(r.framed(buf.subarray(4, 20))).toBeNull(); // not where the headroom is
    const old = buf.subarray(0, 20);
    r.next(); // lent, never reclaimed: a new buffer
    expect(r.framed(old)).toBeNull();
  });
});
