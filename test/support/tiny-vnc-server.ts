import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { RfbServerHandshake, encodeServerInit, type ServerSecurity } from '../../src/rfb/index.js';

/** What the 'sequence' flood repeats: random bytes, a prime number of them. */
export const SEQUENCE_PATTERN = randomBytes(65_521);

/**
 * An in-process RFB server for unit tests of the proxy: handshake through our own server engine,
 * then ServerInit, then it echoes whatever the client sends after ClientInit (so a test can check
 * bytes pass both ways). Real servers (Xvnc, QEMU) are used in the integration tier.
 */
export async function startTinyVncServer(
  opts: {
    security?: ServerSecurity[];
    password?: string;
    name?: string;
    /** Accept TCP and never speak (handshake-deadline tests). */
    silent?: boolean;
    /**
     * After ServerInit: 'echo' (default), 'flood' (write as fast as the socket takes), 'sequence'
     * (flood with SEQUENCE_PATTERN repeated, so a reader can check every byte), 'stall' (stop reading).
     */
    after?: 'echo' | 'flood' | 'sequence' | 'stall';
  } = {},
): Promise<{
  port: number;
  server: Server;
  sockets: Set<Socket>;
  /** Bytes written in flood mode, over all connections. */
  flooded: () => number;
  close: () => Promise<void>;
}> {
  const sockets = new Set<Socket>();
  let flooded = 0;
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  const flood = (sock: Socket): void => {
    // Writes until the socket refuses, then waits for 'drain': a well-behaved fast producer.
    while (!sock.destroyed && sock.write(chunk)) flooded += chunk.length;
    if (!sock.destroyed) {
      flooded += chunk.length;
      sock.once('drain', () => flood(sock));
    }
  };
  const floodSequence = (sock: Socket, at = 0): void => {
    // Chunks of a size that does not divide the pattern's length: no two consecutive chunks match.
    const next = (): Buffer => {
      const out = Buffer.allocUnsafe(48 * 1024 + 7);
      for (let i = 0; i < out.length; i++) out[i] = SEQUENCE_PATTERN[(at + i) % SEQUENCE_PATTERN.length]!;
      at += out.length;
      flooded += out.length;
      return out;
    };
    while (!sock.destroyed && sock.write(next()));
    if (!sock.destroyed) sock.once('drain', () => floodSequence(sock, at));
  };
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    if (opts.silent) return; // accepts TCP, never speaks: for handshake-deadline tests
    const engine = new RfbServerHandshake({
      security: opts.security ?? ['none'],
      ...(opts.password !== undefined ? { password: Buffer.from(opts.password), randomBytes } : {}),
    });
    let phase: 'handshake' | 'init' | 'echo' = 'handshake';
    const handle = (chunk: Buffer): void => {
      if (phase === 'echo') {
        sock.write(chunk);
        return;
      }
      if (phase === 'init') {
        phase = 'echo';
        sock.write(
          encodeServerInit({
            width: 320,
            height: 200,
            name: opts.name ?? 'tiny',
            pixelFormat: { bitsPerPixel: 32, depth: 24, bigEndian: false, trueColour: true, redMax: 255, greenMax: 255, blueMax: 255, redShift: 16, greenShift: 8, blueShift: 0 },
          }),
        );
        if (opts.after === 'flood') flood(sock);
        else if (opts.after === 'sequence') floodSequence(sock);
        else if (opts.after === 'stall') sock.pause();
        else if (chunk.length > 1) handle(chunk.subarray(1));
        return;
      }
      for (const a of engine.receive(chunk)) {
        if (a.type === 'send') sock.write(a.bytes);
        else if (a.type === 'failed') sock.end();
        else if (a.type === 'established') {
          phase = 'init';
          if (a.trailing.length > 0) handle(a.trailing);
        }
      }
    };
    for (const a of engine.start()) if (a.type === 'send') sock.write(a.bytes);
    engine.accept();
    sock.on('data', handle);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (!addr || typeof addr !== 'object') throw new Error('no address');
  return {
    port: addr.port,
    server,
    sockets,
    flooded: () => flooded,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
