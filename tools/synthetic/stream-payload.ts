import { rect, type Rect } from './rect.js';

/**
 * Stream-mode pixel payloads: a deterministic function of a sequence number, so a load tester can
 * check that a relay delivered every byte unchanged and in order.
 *
 * Layout of payload `seq` (any length):
 * - bytes 0–3: seq as U32 little-endian; bytes 4–7: its bitwise complement, also little-endian.
 *   Payloads under 8 bytes keep only the start, so a 1×1 pingpong pixel of 1, 2 or 4 bytes carries
 *   seq modulo 2^8, 2^16 or 2^32 (little-endian: the low-order bytes come first);
 * - every byte i ≥ 8: PATTERN[(i + seq·STRIDE) mod PATTERN_LENGTH], a fixed pseudo-random pattern.
 * A dropped, inserted or altered byte anywhere, or a payload from another seq, fails verification.
 * Generating and checking are a few memcpy/memcmp calls per payload, cheap next to the relay.
 */
export const STREAM_PAYLOAD = {
  headerBytes: 8,
  /** Prime, so the start offsets of successive seqs are spread over the whole pattern. */
  patternLength: 65_521,
  stride: 7_919,
  seed: 0x9e3779b9,
} as const;

/** The fixed pattern (xorshift32 from a constant seed). */
const PATTERN: Buffer = (() => {
  const out = Buffer.allocUnsafe(STREAM_PAYLOAD.patternLength);
  let x: number = STREAM_PAYLOAD.seed;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x >>> 24) & 0xff;
  }
  return out;
})();

function header(seq: number): Buffer {
  const out = Buffer.allocUnsafe(STREAM_PAYLOAD.headerBytes);
  out.writeUInt32LE(seq >>> 0, 0);
  out.writeUInt32LE(~seq >>> 0, 4);
  return out;
}

/** Calls `visit(patternStart, at, length)` for each run of `bytes` taken contiguously from PATTERN. */
function forEachRun(seq: number, length: number, visit: (patternStart: number, at: number, n: number) => boolean): void {
  const { patternLength, stride } = STREAM_PAYLOAD;
  let p = ((seq >>> 0) * stride) % patternLength;
  for (let at = 0; at < length; ) {
    const n = Math.min(patternLength - p, length - at);
    if (!visit(p, at, n)) return;
    at += n;
    p = 0;
  }
}

/** Fills `target` with payload `seq` (its length decides the payload length). */
export function fillStreamPayload(seq: number, target: Uint8Array): void {
  forEachRun(seq, target.length, (p, at, n) => {
    target.set(PATTERN.subarray(p, p + n), at);
    return true;
  });
  target.set(header(seq).subarray(0, Math.min(STREAM_PAYLOAD.headerBytes, target.length)), 0);
}

export function streamPayload(seq: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  fillStreamPayload(seq, out);
  return out;
}

export type StreamPayloadCheck = { ok: true } | { ok: false; offset: number; expected: number; actual: number };

/** Checks that `bytes` is exactly payload `seq` of that length; reports the first differing byte. */
export function verifyStreamPayload(seq: number, bytes: Uint8Array): StreamPayloadCheck {
  const got = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let bad: StreamPayloadCheck = { ok: true };
  const firstDiff = (expected: Uint8Array, at: number): void => {
    for (let i = 0; i < expected.length; i++) {
      if (expected[i] !== got[at + i]) {
        bad = { ok: false, offset: at + i, expected: expected[i]!, actual: got[at + i]! };
        return;
      }
    }
  };
  const head = header(seq).subarray(0, Math.min(STREAM_PAYLOAD.headerBytes, got.length));
  if (!head.equals(got.subarray(0, head.length))) {
    firstDiff(head, 0);
    return bad;
  }
  const skip = head.length;
  forEachRun(seq, got.length, (p, at, n) => {
    // The header replaced the first bytes of the pattern: compare only what follows it.
    const from = Math.max(at, skip);
    if (from >= at + n) return true;
    const expected = PATTERN.subarray(p + (from - at), p + n);
    if (expected.equals(got.subarray(from, at + n))) return true;
    firstDiff(expected, from);
    return false;
  });
  return bad;
}

/** The seq a payload claims in its header, or null if it is too short or the header is damaged. */
export function streamPayloadSeq(bytes: Uint8Array): number | null {
  if (bytes.length < STREAM_PAYLOAD.headerBytes) return null;
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, STREAM_PAYLOAD.headerBytes);
  const seq = b.readUInt32LE(0);
  return b.readUInt32LE(4) === ~seq >>> 0 ? seq : null;
}

/**
 * Where stream update `seq` goes: full-width bands of about `updateBytes` (at `bytesPerPixel`),
 * stepping down the framebuffer so a viewer sees them tile it; one partial row when a single row
 * is already larger than `updateBytes`. Never empty, never outside the framebuffer.
 */
export function streamRect(width: number, height: number, bytesPerPixel: number, updateBytes: number, seq: number): Rect {
  const rowBytes = width * bytesPerPixel;
  if (updateBytes < rowBytes) {
    const w = Math.max(1, Math.floor(updateBytes / bytesPerPixel));
    return rect(0, (seq >>> 0) % height, w, 1);
  }
  const rows = Math.min(height, Math.floor(updateBytes / rowBytes));
  const bands = Math.floor(height / rows);
  return rect(0, ((seq >>> 0) % bands) * rows, width, rows);
}
