import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { STREAM_PAYLOAD, streamPayload, streamPayloadSeq, streamRect, verifyStreamPayload } from '../../../tools/synthetic/stream-payload.js';

describe('stream payload', () => {
  it('is a deterministic function of seq with the seq in its header', () => {
    const a = streamPayload(42, 300_000);
    expect(streamPayload(42, 300_000).equals(a)).toBe(true);
    expect(streamPayload(43, 300_000).equals(a)).toBe(false);
    expect(streamPayloadSeq(a)).toBe(42);
    expect(a.readUInt32LE(0)).toBe(42);
    expect(a.readUInt32LE(4)).toBe(~42 >>> 0);
    expect(streamPayloadSeq(streamPayload(0xffffffff, 8))).toBe(0xffffffff);
  });

  it('shorter payloads are prefixes, so 1×1 pingpong pixels carry the low seq bytes', () => {
    expect(streamPayload(7, 1000).equals(streamPayload(7, 5000).subarray(0, 1000))).toBe(true);
    expect([...streamPayload(0x1234, 2)]).toEqual([0x34, 0x12]);
    expect(verifyStreamPayload(0x1234, Buffer.from([0x34, 0x12]))).toEqual({ ok: true });
    expect(verifyStreamPayload(0x1235, Buffer.from([0x34, 0x12]))).toMatchObject({ ok: false, offset: 0 });
  });

  it('detects a flipped byte anywhere, reporting where', () => {
    const p = streamPayload(9, 3 * STREAM_PAYLOAD.patternLength + 17);
    expect(verifyStreamPayload(9, p)).toEqual({ ok: true });
    for (const at of [0, 5, 8, 1000, STREAM_PAYLOAD.patternLength, p.length - 1]) {
      const bad = Buffer.from(p);
      bad.writeUInt8(bad.readUInt8(at) ^ 0x80, at);
      expect(verifyStreamPayload(9, bad)).toEqual({ ok: false, offset: at, expected: p[at], actual: p[at]! ^ 0x80 });
    }
  });

  it('property: a dropped byte is detected', () => {
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 16, max: 200_000 }), fc.double({ min: 0, max: 1, noNaN: true }), (seq, length, where) => {
        const p = streamPayload(seq, length);
        const at = Math.min(length - 1, Math.floor(where * length));
        // What arrives has the byte at `at` missing and one more (from the next message) at the end.
        const dropped = Buffer.concat([p.subarray(0, at), p.subarray(at + 1), Buffer.from([0])]);
        if (dropped.equals(p)) return; // only when the pattern repeats a byte at `at`, then the drop is invisible there
        expect(verifyStreamPayload(seq, dropped).ok).toBe(false);
      }),
      { numRuns: 100 },
    );
  });

  it('places updates in full-width bands inside the framebuffer', () => {
    expect(streamRect(1024, 768, 4, 256 * 1024, 0)).toEqual({ x: 0, y: 0, width: 1024, height: 64 });
    expect(streamRect(1024, 768, 4, 256 * 1024, 1)).toEqual({ x: 0, y: 64, width: 1024, height: 64 });
    expect(streamRect(1024, 768, 4, 256 * 1024, 12)).toEqual({ x: 0, y: 0, width: 1024, height: 64 });
    expect(streamRect(1024, 768, 4, 64 * 1024 * 1024, 5)).toEqual({ x: 0, y: 0, width: 1024, height: 768 });
    expect(streamRect(1024, 768, 4, 1000, 3)).toEqual({ x: 0, y: 3, width: 250, height: 1 });
    expect(streamRect(1024, 768, 4, 1, 0)).toEqual({ x: 0, y: 0, width: 1, height: 1 });
  });
});
