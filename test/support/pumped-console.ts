/**
 * A console session kept busy from the client side: a non-incremental FramebufferUpdateRequest
 * (RFC 6143 §7.5.3), the whole update read back (§7.6.1, Raw rectangles only), again, paced so
 * that several sessions do not take a core of a shared machine. For tests that must see a session
 * keep working (or see how it ends) while something else happens to vncgate.
 */
import type WebSocket from 'ws';
import type { ServerInit } from '../../src/rfb/index.js';

export type PumpedConsole = {
  readonly ws: WebSocket;
  /** Complete FramebufferUpdates received so far. */
  readonly updates: () => number;
  /** Settles when the WebSocket closes: its code, reason and `performance.now()` then. */
  readonly closed: Promise<{ code: number; reason: string; atMs: number }>;
};

export function pumpUpdates(ws: WebSocket, init: Pick<ServerInit, 'width' | 'height' | 'pixelFormat'>, paceMs = 20): PumpedConsole {
  const bpp = init.pixelFormat.bitsPerPixel / 8;
  let updates = 0;
  let buf = Buffer.alloc(0);
  const request = (): void => {
    const req = Buffer.alloc(10);
    req.writeUInt8(3, 0);
    req.writeUInt16BE(init.width, 6);
    req.writeUInt16BE(init.height, 8);
    if (ws.readyState === ws.OPEN) ws.send(req);
  };
  /** Length of the complete FramebufferUpdate at the head of `buf`, or 0 for not yet. */
  const complete = (): number => {
    if (buf.length < 4) return 0;
    if (buf[0] !== 0) throw new Error(`expected a FramebufferUpdate, got message type ${buf[0]}`);
    let at = 4;
    for (let i = 0; i < buf.readUInt16BE(2); i++) {
      if (buf.length < at + 12) return 0;
      at += 12 + buf.readUInt16BE(at + 4) * buf.readUInt16BE(at + 6) * bpp;
    }
    return buf.length >= at ? at : 0;
  };
  ws.on('message', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    for (let n = complete(); n > 0; n = complete()) {
      buf = buf.subarray(n);
      updates++;
      setTimeout(request, paceMs);
    }
  });
  const closed = new Promise<{ code: number; reason: string; atMs: number }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString(), atMs: performance.now() })),
  );
  request();
  return { ws, updates: () => updates, closed };
}
