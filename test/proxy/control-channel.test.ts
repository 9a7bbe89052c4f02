import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import {
  CONTROL_PROTOCOL,
  CONTROL_REQUEST_BURST,
  ControlChannel,
  MAX_CONTROL_REQUEST_BYTES,
  chooseSubprotocol,
  type ControlMessage,
} from '../../src/proxy/control-channel.js';
import { buildServer, type VncgateServer } from '../../src/proxy/server.js';
import { MemoryTokenStore } from '../../src/tokens/index.js';
import { startTinyVncServer } from '../support/tiny-vnc-server.js';
import { wsRfbConnect } from '../support/ws-rfb-client.js';

/** The members of a `ws` WebSocket the channel uses. */
function fakeSocket(protocol: string, open = true): { ws: WebSocket; sent: unknown[] } {
  const sent: unknown[] = [];
  const ws = { protocol, readyState: open ? 1 : 3, OPEN: 1, send: (d: unknown) => sent.push(d) } as unknown as WebSocket;
  return { ws, sent };
}

const silentLog = () => pino({ level: 'silent' });

describe('control channel: negotiation and sending', () => {
  it('selects vncgate.v1 when offered, else binary, else nothing', () => {
    expect(chooseSubprotocol(new Set([CONTROL_PROTOCOL, 'binary']))).toBe(CONTROL_PROTOCOL);
    expect(chooseSubprotocol(new Set(['binary', CONTROL_PROTOCOL]))).toBe(CONTROL_PROTOCOL);
    expect(chooseSubprotocol(new Set(['binary']))).toBe('binary');
    expect(chooseSubprotocol(new Set(['base64']))).toBe(false);
    expect(chooseSubprotocol(new Set())).toBe(false);
  });

  it('sends one JSON text frame per message when negotiated; nothing otherwise', () => {
    const on = fakeSocket(CONTROL_PROTOCOL);
    const channel = new ControlChannel(on.ws, silentLog);
    expect(channel.negotiated).toBe(true);
    expect(channel.send({ type: 'policy', viewOnly: true })).toBe(true);
    expect(on.sent).toEqual(['{"type":"policy","viewOnly":true}']);

    const off = fakeSocket('binary');
    const stock = new ControlChannel(off.ws, silentLog);
    expect(stock.negotiated).toBe(false);
    expect(stock.send({ type: 'policy' })).toBe(false);
    expect(off.sent).toEqual([]);

    const closed = fakeSocket(CONTROL_PROTOCOL, false);
    expect(new ControlChannel(closed.ws, silentLog).send({ type: 'policy' })).toBe(false);
    expect(closed.sent).toEqual([]);
  });

  it('a text frame without the subprotocol is the protocol fault it always was', () => {
    const channel = new ControlChannel(fakeSocket('binary').ws, silentLog);
    expect(channel.receive(Buffer.from('{"type":"x"}'))?.code).toBe('SESSION_ERR_BROWSER_PROTOCOL');
  });

  it('dispatches requests by type, ignores unknown types, refuses oversized, malformed and too frequent ones', () => {
    const channel = new ControlChannel(fakeSocket(CONTROL_PROTOCOL).ws, silentLog);
    const got: ControlMessage[] = [];
    channel.on('handover', (m) => got.push(m));
    let t = 1_000_000;
    expect(channel.receive(Buffer.from('{"type":"handover","to":2}'), t)).toBeNull();
    expect(channel.receive(Buffer.from('{"type":"unknown-thing"}'), t)).toBeNull();
    expect(got).toEqual([{ type: 'handover', to: 2 }]);
    for (const bad of ['not json', '[1]', '{"type":3}', 'null']) {
      t += 1_000;
      expect(channel.receive(Buffer.from(bad), t)?.code, bad).toBe('SESSION_ERR_BROWSER_PROTOCOL');
    }
    const big = JSON.stringify({ type: 'handover', pad: 'x'.repeat(MAX_CONTROL_REQUEST_BYTES) });
    expect(channel.receive(Buffer.from(big), t)?.code).toBe('SESSION_ERR_BROWSER_PROTOCOL');

    // A burst is allowed, then requests faster than the refill rate end the session.
    const burst = new ControlChannel(fakeSocket(CONTROL_PROTOCOL).ws, silentLog);
    const at = 5_000_000;
    for (let i = 0; i < CONTROL_REQUEST_BURST; i++) expect(burst.receive(Buffer.from('{"type":"a"}'), at)).toBeNull();
    expect(burst.receive(Buffer.from('{"type":"a"}'), at)?.code).toBe('SESSION_ERR_BROWSER_PROTOCOL');
    expect(burst.receive(Buffer.from('{"type":"a"}'), at + 1_000)).toBeNull();
  });
});

describe('control channel through the real upgrade path and relay', () => {
  const lines: string[] = [];
  let srv: VncgateServer;
  let tokens: MemoryTokenStore;
  let backend: Awaited<ReturnType<typeof startTinyVncServer>>;

  beforeAll(async () => {
    backend = await startTinyVncServer({ name: 'control' });
    const config = loadConfig({
      env: {},
      overrides: {
        listen: ['127.0.0.1:0'],
        tls: { plainHttp: true },
        backends: { allowedTargets: ['127.0.0.0/8', '::1/128'] },
        log: { level: 'debug' },
      },
    });
    tokens = new MemoryTokenStore();
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        cb();
      },
    });
    srv = await buildServer({ config, tokens, log: createLogger({ level: 'debug', destination: sink }) });
  });

  afterAll(async () => {
    await srv.close();
    await backend.close();
  });

  async function session(protocols: string[]): Promise<WebSocket> {
    const t = await tokens.issue({ kind: 'static', host: '127.0.0.1', port: backend.port }, 60);
    const r = await wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${t.token}`, { protocols });
    if (!r.ok) throw new Error(`session not established: ${r.code}`);
    return r.ws;
  }

  /** Sends `bytes` and waits for the tiny server's echo (binary frames only). */
  function echo(ws: WebSocket, bytes: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no echo')), 10_000);
      const got: Buffer[] = [];
      const onMessage = (d: Buffer, isBinary: boolean): void => {
        if (!isBinary) return;
        got.push(d);
        const all = Buffer.concat(got);
        if (all.length >= bytes.length) {
          clearTimeout(timer);
          ws.off('message', onMessage);
          resolve(all);
        }
      };
      ws.on('message', onMessage);
      ws.send(bytes);
    });
  }

  it('a page offering vncgate.v1 gets it, and its control requests leave the RFB stream alone', async () => {
    const ws = await session([CONTROL_PROTOCOL, 'binary']);
    expect(ws.protocol).toBe(CONTROL_PROTOCOL);
    ws.send('{"type":"no-such-request"}');
    // FramebufferUpdateRequest (§7.5.3): a message the echoing server returns byte for byte.
    const fbur = Buffer.from([3, 1, 0, 0, 0, 0, 0, 16, 0, 16]);
    expect(await echo(ws, fbur)).toEqual(fbur);
    expect(ws.readyState).toBe(WebSocket.OPEN);
    expect(lines.some((l) => l.includes('control request of unknown type ignored'))).toBe(true);
    ws.close();
  });

  it('stock noVNC (binary only) is unchanged: a text frame ends the session with 1003', async () => {
    const ws = await session(['binary']);
    expect(ws.protocol).toBe('binary');
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.send('{"type":"no-such-request"}');
    expect(await closed).toBe(1003);
  });
});
