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
});
