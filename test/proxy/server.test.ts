import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleUrl } from '../../src/proxy/console-url.js';
import type { VncgateServer } from '../../src/proxy/server.js';
import { MemoryTokenStore } from '../../src/tokens/index.js';
import { captureLog, signTestJwt, startInProcess, type TestJwtOptions } from '../support/in-process.js';
import { startTinyVncServer } from '../support/tiny-vnc-server.js';
import { wsRfbConnect } from '../support/ws-rfb-client.js';

const { lines: logLines, sink } = captureLog();

let srv: VncgateServer;
let tokens: MemoryTokenStore;
let backend: Awaited<ReturnType<typeof startTinyVncServer>>;
let base: string;

const jwt = (claims: Record<string, unknown> = {}, opts: TestJwtOptions = {}): Promise<string> => signTestJwt(claims, opts);

beforeAll(async () => {
  backend = await startTinyVncServer({ name: 'tiny-desk' });
  tokens = new MemoryTokenStore();
  ({ srv } = await startInProcess({
    overrides: { origins: { allowed: ['https://horizon.test'] } },
    tokens,
    logLevel: 'debug',
    logSink: sink,
  }));
  base = `http://${srv.addresses[0]}`;
});

afterAll(async () => {
  await srv.close();
  await backend.close();
});

describe('HTTP routes', () => {
  it('answers health and readiness', async () => {
    expect((await srv.app.inject({ url: '/healthz' })).json()).toMatchObject({ status: 'ok' });
    expect((await srv.app.inject({ url: '/readyz' })).json()).toEqual({ status: 'ready', tokenStore: 'memory', tokenStoreReady: true });
  });

  it('404s unknown paths with a JSON body', async () => {
    const r = await srv.app.inject({ url: '/nope?token=abc' });
    expect(r.statusCode).toBe(404);
    expect(r.headers['x-content-type-options']).toBe('nosniff');
  });
});

describe('POST /v1/console-tokens', () => {
  const post = async (body: unknown, auth?: string) =>
    srv.app.inject({ method: 'POST', url: '/v1/console-tokens', payload: body as object, headers: auth ? { authorization: `Bearer ${auth}` } : {} });

  it('issues a single-use token for a valid JWT', async () => {
    const r = await post({ target: `127.0.0.1:${backend.port}`, ttlSeconds: 60 }, await jwt());
    expect(r.statusCode).toBe(201);
    expect(r.headers['cache-control']).toBe('no-store');
    const body = r.json() as { token: string; url: string; expiresAt: string };
    expect(body.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // No publicUrl configured: the base is the request's own origin (inject sends Host: localhost:80).
    expect(body.url).toBe(consoleUrl('http://localhost:80/', body.token));
    expect(Date.parse(body.expiresAt) - Date.now()).toBeGreaterThan(50_000);
    const record = await tokens.consume(body.token);
    expect(record.target).toEqual({ kind: 'static', host: '127.0.0.1', port: backend.port });
  });

  it('without publicUrl, a link names the host the caller addressed (Host), never an X-Forwarded-Host from an untrusted peer; no-store', async () => {
    // Kept on purpose (see README, publicUrl): the caller is authenticated and the link is in its
    // own, uncached answer, so a Host it sends misleads only itself; the listen address would
    // hand API callers unusable links (a wildcard shows as localhost).
    const r = await srv.app.inject({
      method: 'POST',
      url: '/v1/console-tokens',
      payload: { target: `127.0.0.1:${backend.port}` },
      headers: { authorization: `Bearer ${await jwt()}`, host: 'vncgate.example.test:6080', 'x-forwarded-host': 'evil.test' },
    });
    expect(r.statusCode).toBe(201);
    expect(r.headers['cache-control']).toBe('no-store');
    const body = r.json() as { token: string; url: string };
    expect(body.url).toBe(consoleUrl('http://vncgate.example.test:6080/', body.token));
  });

  it('with publicUrl, links name publicUrl whatever Host the caller sends', async () => {
    const { srv: pub } = await startInProcess({ overrides: { publicUrl: 'https://console.example.test/prefix/' } });
    try {
      const r = await pub.app.inject({
        method: 'POST',
        url: '/v1/console-tokens',
        payload: { target: `127.0.0.1:${backend.port}` },
        headers: { authorization: `Bearer ${await jwt()}`, host: 'evil.test' },
      });
      expect(r.statusCode).toBe(201);
      const body = r.json() as { token: string; url: string };
      expect(body.url).toBe(consoleUrl('https://console.example.test/prefix/', body.token));
      expect(body.url).not.toContain('evil.test');
    } finally {
      await pub.close();
    }
  });

  it('issues N tokens with count', async () => {
    const r = await post({ target: { host: '::1', port: 5901 }, count: 3 }, await jwt());
    expect(r.statusCode).toBe(201);
    const body = r.json() as { token: string }[];
    expect(body).toHaveLength(3);
    expect(new Set(body.map((t) => t.token)).size).toBe(3);
  });

  it.each([
    ['no bearer', undefined],
    ['garbage', 'not.a.jwt'],
  ])('refuses %s with 401', async (_name, auth) => {
    const r = await post({ target: '127.0.0.1:5901' }, auth);
    expect(r.statusCode).toBe(401);
    expect(r.headers['www-authenticate']).toBe('Bearer');
    expect(r.json().error.code).toBe('HTTP_ERR_UNAUTHORIZED');
  });

  it('checks signature, issuer, audience and expiry', async () => {
    for (const bad of [
      await jwt({}, { secret: 'another-secret-that-is-long-enough-0123456789' }),
      await jwt({}, { iss: 'https://evil.test' }),
      await jwt({}, { aud: 'other' }),
      await jwt({}, { exp: Math.floor(Date.now() / 1000) - 3600 }),
    ]) {
      const r = await post({ target: '127.0.0.1:5901' }, bad);
      expect(r.statusCode).toBe(401);
    }
  });

  it('refuses unsigned (alg none) tokens', async () => {
    const h = Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url');
    const p = Buffer.from(JSON.stringify({ iss: 'https://keystone.test', aud: 'vncgate', exp: Math.floor(Date.now() / 1000) + 60 })).toString('base64url');
    expect((await post({ target: '127.0.0.1:5901' }, `${h}.${p}.`)).statusCode).toBe(401);
  });

  it('rejects bad requests with 400 and says why', async () => {
    const auth = await jwt();
    for (const body of [{}, { node: 'no-ironic-configured' }, { target: 'nonsense' }, { target: '127.0.0.1:0' }, { target: '127.0.0.1:5901', profile: 'nope' }, { target: '127.0.0.1:5901', ttlSeconds: 0 }, { target: '127.0.0.1:5901', count: 100000 }]) {
      const r = await post(body, auth);
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.json().error.code).toBe('HTTP_ERR_BAD_REQUEST');
    }
  });
});

describe('WebSocket console route', () => {
  it('relays a session on /websockify and echoes the binary subprotocol (injectWS)', async () => {
    const t = await tokens.issue({ kind: 'static', host: '127.0.0.1', port: backend.port }, 60);
    let resolveFirst: (b: Buffer) => void = () => undefined;
    const first = new Promise<Buffer>((resolve) => (resolveFirst = resolve));
    const ws = await srv.app.injectWS(
      `/websockify?token=${t.token}`,
      { headers: { 'sec-websocket-protocol': 'binary' } },
      { onInit: (c) => c.once('message', (d: Buffer) => resolveFirst(d)) },
    );
    expect((await first).toString('latin1')).toBe('RFB 003.008\n');
    ws.terminate();
  });

  it('refuses a foreign Origin before upgrading, without consuming the token', async () => {
    const t = await tokens.issue({ kind: 'static', host: '127.0.0.1', port: backend.port }, 60);
    await expect(srv.app.injectWS(`/websockify?token=${t.token}`, { headers: { origin: 'https://evil.test' } })).rejects.toThrow(/403/);
    const r = await wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${t.token}`, { origin: base });
    expect(r.ok).toBe(true);
    if (r.ok) r.ws.close();
  });

  it('the 403 for a foreign Origin does not echo a token-like Origin back (only its log-safe form)', async () => {
    const secret = 'A'.repeat(43);
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpRequest(`${base}/websockify`, {
        headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64'), origin: `https://${secret}.evil.test` },
      });
      req.on('response', resolve).on('upgrade', () => reject(new Error('upgraded'))).on('error', reject).end();
    });
    let body = '';
    for await (const c of res) body += String(c);
    expect(res.statusCode).toBe(403);
    expect(JSON.parse(body)).toMatchObject({ error: { code: 'HTTP_ERR_ORIGIN' } });
    expect(body).not.toContain(secret);
    expect(body).toContain('[redacted]');
  });

  it('accepts configured origins and the own origin; any path carrying a token', async () => {
    for (const [path, origin] of [
      ['/websockify', 'https://horizon.test'],
      ['/', base],
      ['/some/prefix/websockify', undefined],
    ] as const) {
      const t = await tokens.issue({ kind: 'static', host: '127.0.0.1', port: backend.port }, 60);
      const r = await wsRfbConnect(`ws://${srv.addresses[0]}${path}?token=${t.token}`, { ...(origin ? { origin } : {}), protocols: [] });
      expect(r.ok, path).toBe(true);
      if (r.ok) {
        expect(r.init.name).toBe('tiny-desk');
        expect(r.protocol).toBe('');
        // After ServerInit the pipe is raw: the tiny server echoes what we send.
        const echoed = new Promise<Buffer>((resolve) => r.ws.once('message', (d: Buffer) => resolve(d)));
        r.ws.send(Buffer.from('ping!'));
        expect((await echoed).toString()).toBe('ping!');
        r.ws.close();
      }
    }
  });

  it('tells the browser why: used token, missing token, unreachable endpoint', async () => {
    const t = await tokens.issue({ kind: 'static', host: '127.0.0.1', port: backend.port }, 60);
    const first = await wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${t.token}`);
    expect(first.ok).toBe(true);
    if (first.ok) first.ws.close();
    const again = await wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${t.token}`);
    expect(again).toMatchObject({ ok: false, serverReason: 'This console link has expired or was already used - request a new one', closeCode: 4403 });

    const none = await wsRfbConnect(`ws://${srv.addresses[0]}/websockify`);
    expect(none).toMatchObject({ ok: false, serverReason: 'This console link has no token - request a new one' });

    const dead = await tokens.issue({ kind: 'static', host: '127.0.0.1', port: 1 }, 60);
    const r = await wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${dead.token}`);
    expect(r).toMatchObject({ ok: false, serverReason: 'The console endpoint is unreachable' });
  });

  it('never logs a token', async () => {
    const issued = await tokens.issueMany({ kind: 'static', host: '127.0.0.1', port: backend.port }, 60, 2);
    for (const t of issued) {
      const r = await wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${t.token}`);
      if (r.ok) r.ws.close();
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(logLines.length).toBeGreaterThan(5);
    expect(logLines.some((l) => l.includes('session ended'))).toBe(true);
    for (const t of issued) for (const line of logLines) expect(line).not.toContain(t.token);
    for (const line of logLines) expect(line).not.toMatch(/token=/);
  });
});
