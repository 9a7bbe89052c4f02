import { createServer, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config/index.js';
import { ERROR_CODES, type ErrorCode } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { buildServer, type VncgateServer } from '../../src/proxy/server.js';
import { RfbClientHandshake, RfbServerHandshake, ServerInitReader, encodeServerInit, type ServerInit } from '../../src/rfb/index.js';
import { MemoryTokenStore } from '../../src/tokens/index.js';

/**
 * Initialisation (RFC 6143 §7.3) through vncgate: which ClientInit the console endpoint gets and
 * when, what the browser gets when ServerInit goes wrong, and that nothing is lost or reordered
 * around it.
 */

const publicReason = (code: ErrorCode): string => ERROR_CODES[code].reason;

const PIXEL_FORMAT = { bitsPerPixel: 32, depth: 24, bigEndian: false, trueColour: true, redMax: 255, greenMax: 255, blueMax: 255, redShift: 16, greenShift: 8, blueShift: 0 };

type Endpoint = {
  port: number;
  /** Resolves with the first byte after the handshake (the ClientInit) and when it came. */
  clientInit: Promise<{ value: number; at: number }>;
  /** Everything received after ClientInit. */
  after: Buffer[];
  close: () => Promise<void>;
};

/**
 * A console endpoint (security None) that records its ClientInit. `serverInit` decides what
 * follows it: a proper ServerInit (plus `extra` bytes), raw bytes, or closing the connection.
 */
async function startEndpoint(serverInit: { kind: 'ok'; extra?: Buffer } | { kind: 'raw'; bytes: Buffer } | { kind: 'close' }): Promise<Endpoint> {
  let gotInit: (v: { value: number; at: number }) => void = () => undefined;
  const clientInit = new Promise<{ value: number; at: number }>((r) => (gotInit = r));
  const after: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => sock.destroy());
    const engine = new RfbServerHandshake({ security: ['none'] });
    let phase: 'handshake' | 'init' | 'after' = 'handshake';
    const onInit = (chunk: Buffer): void => {
      if (phase === 'after') {
        after.push(Buffer.from(chunk));
        return;
      }
      if (chunk.length === 0) return;
      phase = 'after';
      gotInit({ value: chunk[0]!, at: performance.now() });
      if (serverInit.kind === 'close') sock.destroy();
      else if (serverInit.kind === 'raw') sock.write(serverInit.bytes);
      else {
        sock.write(encodeServerInit({ width: 640, height: 480, name: 'init-test', pixelFormat: PIXEL_FORMAT }));
        if (serverInit.extra) sock.write(serverInit.extra);
      }
      if (chunk.length > 1) after.push(Buffer.from(chunk.subarray(1)));
    };
    sock.on('data', (chunk: Buffer) => {
      if (phase !== 'handshake') return onInit(chunk);
      for (const a of engine.receive(chunk)) {
        if (a.type === 'send') sock.write(a.bytes);
        else if (a.type === 'established') {
          phase = 'init';
          onInit(a.trailing);
        }
      }
    });
    for (const a of engine.start()) if (a.type === 'send') sock.write(a.bytes);
    engine.accept();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    clientInit,
    after,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

type Browser = {
  ws: WebSocket;
  /** Resolves when the browser's handshake with vncgate is through (SecurityResult OK), with when. */
  securityOk: Promise<number>;
  /** What came after SecurityResult OK. */
  received: Buffer[];
  closed: Promise<{ code: number; reason: string }>;
};

/** A browser that stops after SecurityResult OK: the test decides when it sends ClientInit. */
function openBrowser(url: string): Browser {
  const ws = new WebSocket(url, ['binary'], { perMessageDeflate: false });
  const engine = new RfbClientHandshake({ security: ['none'] });
  const received: Buffer[] = [];
  let ok: (at: number) => void = () => undefined;
  const securityOk = new Promise<number>((r) => (ok = r));
  let done = false;
  ws.on('message', (data: Buffer) => {
    if (done) {
      received.push(data);
      return;
    }
    for (const a of engine.receive(data)) {
      if (a.type === 'send') ws.send(a.bytes);
      else if (a.type === 'established') {
        done = true;
        ok(performance.now());
        if (a.trailing.length > 0) received.push(a.trailing);
      }
    }
  });
  const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
  ws.on('error', () => undefined);
  return { ws, securityOk, received, closed };
}

function readServerInit(chunks: Buffer[]): { init: ServerInit; trailing: Buffer } | null {
  const r = new ServerInitReader().receive(Buffer.concat(chunks));
  return r.type === 'done' ? { init: r.init, trailing: r.trailing } : null;
}

/** Resolves with what `what` returns once it is truthy (vitest's waitFor, polling every 5 ms). */
const until = <T>(what: () => T | null | undefined | false, ms = 5_000): Promise<T> =>
  vi.waitFor(
    () => {
      const v = what();
      if (!v) throw new Error('condition not met yet');
      return v;
    },
    { timeout: ms, interval: 5 },
  );

const servers: VncgateServer[] = [];
const endpoints: Endpoint[] = [];
const logLines: string[] = [];

async function startVncgate(clientInit?: 'shared' | 'exclusive' | 'browser'): Promise<{ srv: VncgateServer; tokens: MemoryTokenStore }> {
  const config = loadConfig({
    env: {},
    overrides: {
      listen: ['127.0.0.1:0'],
      tls: { plainHttp: true },
      log: { level: 'info' },
      backends: { allowedTargets: ['127.0.0.0/8', '::1/128'] },
      session: { handshakeTimeoutMs: 4_000, ...(clientInit ? { clientInit } : {}) },
    },
  });
  const tokens = new MemoryTokenStore();
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logLines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  const srv = await buildServer({ config, tokens, log: createLogger({ level: 'info', destination: sink }) });
  servers.push(srv);
  return { srv, tokens };
}

async function session(clientInit: 'shared' | 'exclusive' | 'browser' | undefined, serverInit: Parameters<typeof startEndpoint>[0]) {
  const ep = await startEndpoint(serverInit);
  endpoints.push(ep);
  const { srv, tokens } = await startVncgate(clientInit);
  const t = await tokens.issue({ kind: 'static', host: '127.0.0.1', port: ep.port }, 60);
  const browser = openBrowser(`ws://${srv.addresses[0]}/websockify?token=${t.token}`);
  return { ep, browser };
}

afterEach(async () => {
  for (const b of servers.splice(0)) await b.close();
  for (const e of endpoints.splice(0)) await e.close();
});

afterAll(() => {
  logLines.length = 0;
});

describe('ClientInit toward the console endpoint', () => {
  it('by default vncgate sends a shared ClientInit as soon as the endpoint accepts, before the browser sends its own', async () => {
    const { ep, browser } = await session(undefined, { kind: 'ok' });
    await browser.securityOk;
    // The browser has not sent ClientInit, yet the endpoint has one, and it asks to share.
    const init = await ep.clientInit;
    expect(init.value).toBe(1);
    // ServerInit is held until the browser's ClientInit arrives...
    await new Promise((r) => setTimeout(r, 100));
    expect(browser.received).toEqual([]);
    // ...which vncgate swallows (exclusive here: ignored), forwarding what the browser pipelined after it.
    const setEncodings = Buffer.from([2, 0, 0, 1, 0, 0, 0, 0]);
    browser.ws.send(Buffer.concat([Buffer.from([0]), setEncodings]));
    const got = await until(() => readServerInit(browser.received));
    expect(got.init).toMatchObject({ width: 640, height: 480, name: 'init-test' });
    await until(() => Buffer.concat(ep.after).length >= setEncodings.length);
    expect(Buffer.concat(ep.after)).toEqual(setEncodings);
    // The session then pipes raw bytes both ways.
    browser.ws.send(Buffer.from([3, 1, 0, 0, 0, 0, 0, 10, 0, 10]));
    await until(() => Buffer.concat(ep.after).length >= setEncodings.length + 10);
    expect(Buffer.concat(ep.after).subarray(setEncodings.length)).toEqual(Buffer.from([3, 1, 0, 0, 0, 0, 0, 10, 0, 10]));
    browser.ws.close();
  });

  it("session.clientInit 'exclusive' sends an exclusive ClientInit", async () => {
    const { ep, browser } = await session('exclusive', { kind: 'ok' });
    await browser.securityOk;
    expect((await ep.clientInit).value).toBe(0);
    browser.ws.send(Buffer.from([1]));
    await until(() => readServerInit(browser.received));
    browser.ws.close();
  });

  it("session.clientInit 'browser' forwards the browser's own ClientInit, and only once it is sent", async () => {
    const { ep, browser } = await session('browser', { kind: 'ok' });
    const okAt = await browser.securityOk;
    let early = false;
    void ep.clientInit.then(() => (early = true));
    await new Promise((r) => setTimeout(r, 150));
    expect(early).toBe(false);
    const sentAt = performance.now();
    browser.ws.send(Buffer.from([0]));
    const init = await ep.clientInit;
    expect(init.value).toBe(0);
    expect(init.at).toBeGreaterThanOrEqual(sentAt);
    expect(init.at).toBeGreaterThan(okAt);
    expect(readServerInit(await until(() => (browser.received.length > 0 ? browser.received : null)))?.init.name).toBe('init-test');
    browser.ws.close();
  });

  it('forwards ServerInit byte for byte, with whatever the endpoint sent right after it', async () => {
    const extra = Buffer.from([0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0xab, 0xcd, 0xef, 0x01]);
    const { browser } = await session(undefined, { kind: 'ok', extra });
    await browser.securityOk;
    browser.ws.send(Buffer.from([1]));
    const expected = Buffer.concat([encodeServerInit({ width: 640, height: 480, name: 'init-test', pixelFormat: PIXEL_FORMAT }), extra]);
    await until(() => Buffer.concat(browser.received).length >= expected.length);
    expect(Buffer.concat(browser.received)).toEqual(expected);
    browser.ws.close();
  });
});

describe('ServerInit going wrong after the browser was told SecurityResult OK', () => {
  it('an endpoint that closes instead of sending ServerInit ends the session with a reason', async () => {
    const { browser } = await session(undefined, { kind: 'close' });
    await browser.securityOk;
    const closed = await browser.closed;
    expect(closed.code).toBe(ERROR_CODES.BACKEND_ERR_CLOSED.wsClose);
    expect(closed.code).not.toBe(1000);
    expect(closed.reason).toBe(publicReason('BACKEND_ERR_CLOSED'));
    expect(logLines.some((l) => l.includes('"BACKEND_ERR_CLOSED"') && l.includes('session ended'))).toBe(true);
  });

  it('an oversized desktop name is refused (bounded) and the browser is told why', async () => {
    const bogus = Buffer.alloc(24);
    bogus.writeUInt16BE(640, 0);
    bogus.writeUInt16BE(480, 2);
    bogus.writeUInt32BE(0x7fff_ffff, 20);
    const { browser } = await session(undefined, { kind: 'raw', bytes: bogus });
    await browser.securityOk;
    const closed = await browser.closed;
    expect(closed.reason).toBe(publicReason('RFB_ERR_LIMIT'));
    expect(browser.received).toEqual([]);
    expect(logLines.some((l) => l.includes('"RFB_ERR_LIMIT"') && l.includes('session ended'))).toBe(true);
  });

  it('an endpoint that never sends ServerInit is cut at the handshake deadline', async () => {
    const { browser } = await session(undefined, { kind: 'raw', bytes: Buffer.alloc(10) });
    await browser.securityOk;
    browser.ws.send(Buffer.from([1]));
    const t = performance.now();
    const closed = await browser.closed;
    expect(closed.reason).toBe(publicReason('SESSION_ERR_HANDSHAKE_TIMEOUT'));
    expect(performance.now() - t).toBeLessThan(6_000);
  }, 10_000);
});
