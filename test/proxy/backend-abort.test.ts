import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RfbClientHandshake } from '../../src/rfb/index.js';
import { runHandshake } from '../../src/proxy/backend-handshake.js';
import { tcpConnect } from '../../src/proxy/backend-tcp.js';
import { ReadBuffer } from '../../src/proxy/read-buffer.js';

/** A console endpoint that accepts and never says a word (a handshake can only end by its deadline). */
let server: Server;
let port: number;
const accepted: Socket[] = [];
beforeAll(async () => {
  server = createServer((s) => accepted.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});
afterAll(async () => {
  for (const s of accepted) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

function aborted(): AbortSignal {
  const a = new AbortController();
  a.abort();
  return a.signal;
}

describe('a session already cancelled when its backend step starts', () => {
  it('tcpConnect refuses at once instead of connecting', async () => {
    await expect(tcpConnect('127.0.0.1', port, 5_000, aborted(), new ReadBuffer(), null)).rejects.toMatchObject({ code: 'SESSION_ERR_SHUTDOWN' });
  });

  it('runHandshake gives up at once instead of waiting out its deadline (and then failing with the wrong code)', async () => {
    const socket = await tcpConnect('127.0.0.1', port, 5_000, undefined, new ReadBuffer(), null);
    const engine = new RfbClientHandshake({ security: ['none'] });
    // Without the abort this would end by its deadline, as BACKEND_ERR_TIMEOUT.
    await expect(runHandshake(socket, engine, '127.0.0.1', { port, security: { security: ['none'] }, handshakeTimeoutMs: 300, signal: aborted() })).rejects.toMatchObject({
      code: 'SESSION_ERR_SHUTDOWN',
    });
    expect(socket.destroyed).toBe(true);
  });
});
