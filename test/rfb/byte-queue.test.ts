import { describe, expect, it } from 'vitest';
import { ByteQueue, LIMITS, RfbServerHandshake } from '../../src/rfb/index.js';

describe('ByteQueue', () => {
  it('keeps bytes in order across pushes, reads, compaction and growth', () => {
    const q = new ByteQueue();
    const expected: number[] = [];
    let next = 0;
    for (let round = 0; round < 500; round++) {
      const n = (round * 7) % 97;
      const chunk = Buffer.alloc(n);
      for (let i = 0; i < n; i++) chunk[i] = next++ & 0xff;
      q.push(chunk);
      expected.push(...chunk);
      const take = Math.min(q.length, (round * 13) % 89);
      expect([...q.bytes(take)]).toEqual(expected.splice(0, take));
      expect(q.length).toBe(expected.length);
    }
    expect([...q.takeAll()]).toEqual(expected);
    expect(q.length).toBe(0);
  });

  it('reads U8/U16/U32 across chunk boundaries and refuses reads past its end', () => {
    const q = new ByteQueue();
    for (const b of [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07]) q.push(Buffer.from([b]));
    expect(q.peekU32(1)).toBe(0x02030405);
    expect(q.u8()).toBe(0x01);
    expect(q.u16()).toBe(0x0203);
    expect(q.u32()).toBe(0x04050607);
    expect(() => q.u8()).toThrow(RangeError);
  });

  // Issue 15 (found by the fuzzer): every push copied all unread bytes, so a browser trickling
  // its pipelined bytes one WebSocket frame at a time, while the handshake waits for the verdict,
  // cost quadratic copying (64 KiB took ~330 ms). The bound here is ~10x the linear cost and far
  // below the quadratic one (256 KiB byte by byte took seconds).
  it('issue 15: a byte-at-a-time peer costs linear work', () => {
    const q = new ByteQueue();
    const one = Buffer.from([0x5a]);
    const t0 = performance.now();
    for (let i = 0; i < 256 * 1024; i++) q.push(one);
    expect(q.length).toBe(256 * 1024);
    expect(performance.now() - t0).toBeLessThan(1000);

    const engine = new RfbServerHandshake();
    engine.start();
    engine.receive(Buffer.from('RFB 003.008\n\x01', 'latin1'));
    expect(engine.state).toBe('verdict');
    const t1 = performance.now();
    let fed = 0;
    while (engine.state === 'verdict') {
      engine.receive(one);
      fed++;
    }
    expect(fed).toBe(LIMITS.maxHandshakeBufferBytes + 1);
    expect(engine.state).toBe('failed');
    expect(performance.now() - t1).toBeLessThan(1000);
  });
});
