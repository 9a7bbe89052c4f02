/**
 * The fixed part of a WebSocket frame header (RFC 6455 §5.2), shared by vncgate's relay, which
 * writes unmasked server frames in place, and the load tester, which writes masked client frames.
 */

/** RFC 6455 §5.2. */
export const WS_OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** Header bytes before any masking key: 2, plus 2 or 8 for an extended payload length. */
export function frameHeaderLength(len: number): 2 | 4 | 10 {
  return len < 126 ? 2 : len < 65_536 ? 4 : 10;
}

/**
 * Writes FIN with `opcode`, the mask bit and the payload length `len` at `at` in `out`; returns
 * the bytes written (frameHeaderLength(len)). A masking key, if any, goes right after.
 */
export function writeFrameHeader(out: Buffer, at: number, opcode: number, masked: boolean, len: number): number {
  const mask = masked ? 0x80 : 0;
  const h = frameHeaderLength(len);
  out[at] = 0x80 | opcode;
  if (h === 2) out[at + 1] = mask | len;
  else if (h === 4) {
    out[at + 1] = mask | 126;
    out.writeUInt16BE(len, at + 2);
  } else {
    out[at + 1] = mask | 127;
    out.writeUInt32BE(Math.floor(len / 2 ** 32), at + 2);
    out.writeUInt32BE(len >>> 0, at + 6);
  }
  return h;
}
