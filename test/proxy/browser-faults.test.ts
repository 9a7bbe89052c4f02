import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { VncgateServer } from '../../src/proxy/server.js';
import { MemoryTokenStore } from '../../src/tokens/index.js';
import { captureLog, startInProcess } from '../support/in-process.js';
import { startTinyVncServer } from '../support/tiny-vnc-server.js';
import { wsRfbConnect } from '../support/ws-rfb-client.js';

/**
 * Issue 15: a browser at fault is logged as one (warn, with a code saying what it did), over real
 * sockets: stalling its half of the VNC handshake, flooding pings, sending an oversized message.
 */
const HANDSHAKE_MS = 1_500;
const MAX_MESSAGE = 64 * 1024;
const { lines: logLines, sink } = captureLog();

let srv: VncgateServer;
let tokens: MemoryTokenStore;
let backend: Awaited<ReturnType<typeof startTinyVncServer>>;
let silent: Server;
const silentSockets: Socket[] = [];

beforeAll(async () => {
  backend = await startTinyVncServer({ name: 'faults' });
  // An endpoint that accepts TCP and never says a word.
  silent = createServer((s) => silentSockets.push(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  tokens = new MemoryTokenStore();
  ({ srv } = await startInProcess({
    tokenApi: false,
    overrides: { session: { handshakeTimeoutMs: HANDSHAKE_MS, maxMessageBytes: MAX_MESSAGE } },
    tokens,
    logLevel: 'debug',
    logSink: sink,
  }));
});

afterAll(async () => {
  await srv.close();
  await backend.close();
  for (const s of silentSockets) s.destroy();
  await new Promise((r) => silent.close(r));
});

type Ended = { level: number; code: string | null; closedBy: string; sessionId: string };

/** The first `session ended` line logged after line `since` (each test ends one session at a time). */
async function endedAfter(since: number): Promise<Ended> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const line = logLines.slice(since).find((l) => l.includes('"msg":"session ended"'));
    if (line) return JSON.parse(line) as Ended;
    if (Date.now() > deadline) throw new Error(`no session ended line; log:\n${logLines.slice(since).join('\n')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A browser that speaks raw bytes: everything it receives, and the close code. */
async function rawBrowser(token: string): Promise<{ ws: WebSocket; received: Buffer[]; closed: Promise<number> }> {
  const ws = new WebSocket(`ws://${srv.addresses[0]}/websockify?token=${token}`, ['binary'], { perMessageDeflate: false });
  const received: Buffer[] = [];
  ws.on('message', (d: Buffer) => received.push(d));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { ws, received, closed };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('issue 15: browser faults are told apart from the endpoint\'s', () => {
  it('a browser stalling mid-ProtocolVersion: SESSION_ERR_BROWSER_TIMEOUT (4408), warn', async () => {
    const since = logLines.length;
    const t = await tokens.issue({ kind: 'static', host: '127.0.0.1', port: backend.port }, 60);
    const b = await rawBrowser(t.token);
    await until(() => b.received.length > 0, 'our ProtocolVersion');
    b.ws.send(Buffer.from('RFB 003.0')); // 9 of 12 bytes, then nothing
    expect(await b.closed).toBe(4408);
    const ended = await endedAfter(since);
    expect(ended).toMatchObject({ code: 'SESSION_ERR_BROWSER_TIMEOUT', level: 40 });
  });

  it('a browser that never sends ClientInit after SecurityResult OK: SESSION_ERR_BROWSER_TIMEOUT', async () => {
    const since = logLines.length;
    const t = await tokens.issue({ kind: 'static', host: '127.0.0.1', port: backend.port }, 60);
    const b = await rawBrowser(t.token);
    await until(() => b.received.length > 0, 'our ProtocolVersion');
    b.ws.send(Buffer.from('RFB 003.008\n'));
    await until(() => b.received.length > 1, 'the security types');
    b.ws.send(Buffer.from([1])); // None
    await until(() => Buffer.concat(b.received).length >= 12 + 2 + 4, 'SecurityResult');
    expect(Buffer.concat(b.received).subarray(14, 18).readUInt32BE(0)).toBe(0);
    expect(await b.closed).toBe(4408);
    expect(await endedAfter(since)).toMatchObject({ code: 'SESSION_ERR_BROWSER_TIMEOUT', level: 40 });
  });

  it('a browser that did its part while the endpoint is silent: the endpoint is named, not the browser', async () => {
    const since = logLines.length;
    const port = (silent.address() as { port: number }).port;
    const t = await tokens.issue({ kind: 'static', host: '127.0.0.1', port }, 60);
    const r = await wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${t.token}`, { timeoutMs: 15_000 });
    expect(r.ok).toBe(false);
    const ended = await endedAfter(since);
    expect(['SESSION_ERR_HANDSHAKE_TIMEOUT', 'BACKEND_ERR_TIMEOUT']).toContain(ended.code);
  });

  it('a ping flood (pongs never read) is a peer fault: SESSION_ERR_BROWSER_FLOOD, warn, not an ordinary close', async () => {
    const t = await tokens.issue({ kind: 'static', host: '127.0.0.1', port: backend.port }, 60);
    const r = await wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${t.token}`);
    if (!r.ok) throw new Error(`session not established: ${r.code}`);
    const since = logLines.length;
    r.ws.on('error', () => undefined);
    const socket = (r.ws as unknown as { _socket: Socket })._socket;
    socket.pause(); // never read the pongs
    // Masked (key 0) empty pings, as a client must send them: 1000 of them, far past ws's limit.
    const ping = Buffer.from([0x89, 0x80, 0, 0, 0, 0]);
    socket.write(Buffer.concat(Array.from({ length: 1_000 }, () => ping)));
    const ended = await endedAfter(since);
    expect(ended).toMatchObject({ code: 'SESSION_ERR_BROWSER_FLOOD', level: 40, closedBy: 'browser' });
    r.ws.terminate();
  });

  it('a message over session.maxMessageBytes: SESSION_ERR_BROWSER_TOO_LARGE, closed 1009', async () => {
    const t = await tokens.issue({ kind: 'static', host: '127.0.0.1', port: backend.port }, 60);
    const r = await wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${t.token}`);
    if (!r.ok) throw new Error(`session not established: ${r.code}`);
    const since = logLines.length;
    const closed = new Promise<number>((resolve) => r.ws.once('close', (code) => resolve(code)));
    r.ws.send(Buffer.alloc(MAX_MESSAGE + 1));
    expect(await closed).toBe(1009);
    expect(await endedAfter(since)).toMatchObject({ code: 'SESSION_ERR_BROWSER_TOO_LARGE', level: 40, closedBy: 'browser' });
  });
});
