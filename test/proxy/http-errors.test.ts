import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors.js';
import { checkLifetime } from '../../src/proxy/api-auth.js';
import type { VncgateServer } from '../../src/proxy/server.js';
import { signTestJwt, startInProcess } from '../support/in-process.js';

/** Issue 15: every HTTP error has vncgate's shape and a code; JWT lifetimes are bounded; publicUrl decides the own origin. */
const servers: VncgateServer[] = [];
async function serve(extra: Record<string, unknown> = {}): Promise<VncgateServer> {
  const { srv } = await startInProcess({ overrides: extra });
  servers.push(srv);
  return srv;
}

let srv: VncgateServer;
beforeAll(async () => {
  srv = await serve();
});
afterAll(async () => {
  for (const s of servers) await s.close();
});

const nowS = (): number => Math.floor(Date.now() / 1000);
function jwt(opts: { iat?: number | null; exp?: number | null } = {}): Promise<string> {
  return signTestJwt({}, { iat: opts.iat, exp: opts.exp === undefined ? nowS() + 300 : opts.exp });
}

/** The body is exactly `{"error": {"code", "message"}}`, with the code's status. */
function expectVncgateError(r: { statusCode: number; json: () => unknown; headers: Record<string, unknown> }, code: keyof typeof ERROR_CODES): void {
  const body = r.json() as { error: { code: string; message: string } };
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message']);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  expect(r.statusCode).toBe(ERROR_CODES[code].httpStatus);
  expect(r.headers['content-type']).toMatch(/^application\/json/);
}

describe('issue 15: every HTTP error in vncgate\'s shape', () => {
  it('404 HTTP_ERR_NOT_FOUND for unknown paths, GET / included, whatever the method', async () => {
    for (const [method, url] of [
      ['GET', '/'],
      ['GET', '/nope?token=abc'],
      ['POST', '/nope'],
      ['PUT', '/a/b/c'],
    ] as const) {
      const r = await srv.app.inject({ method, url });
      expectVncgateError(r, 'HTTP_ERR_NOT_FOUND');
      expect(r.headers['x-content-type-options']).toBe('nosniff');
    }
  });

  it('405 HTTP_ERR_METHOD_NOT_ALLOWED with Allow for known paths asked with another method', async () => {
    const get = await srv.app.inject({ method: 'GET', url: '/v1/console-tokens' });
    expectVncgateError(get, 'HTTP_ERR_METHOD_NOT_ALLOWED');
    expect(get.headers.allow).toBe('POST');
    const post = await srv.app.inject({ method: 'POST', url: '/healthz' });
    expectVncgateError(post, 'HTTP_ERR_METHOD_NOT_ALLOWED');
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  it('400 HTTP_ERR_BAD_REQUEST for invalid or empty JSON', async () => {
    const auth = { authorization: `Bearer ${await jwt()}`, 'content-type': 'application/json' };
    expectVncgateError(await srv.app.inject({ method: 'POST', url: '/v1/console-tokens', headers: auth, payload: '{"target": ' }), 'HTTP_ERR_BAD_REQUEST');
    expectVncgateError(await srv.app.inject({ method: 'POST', url: '/v1/console-tokens', headers: auth, payload: '' }), 'HTTP_ERR_BAD_REQUEST');
  });

  it('413 HTTP_ERR_TOO_LARGE for a body over the limit', async () => {
    const r = await srv.app.inject({
      method: 'POST',
      url: '/v1/console-tokens',
      headers: { authorization: `Bearer ${await jwt()}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ target: '127.0.0.1:5901', pad: 'x'.repeat(20_000) }),
    });
    expectVncgateError(r, 'HTTP_ERR_TOO_LARGE');
  });

  it('415 HTTP_ERR_UNSUPPORTED_MEDIA_TYPE for a body that is not JSON', async () => {
    const r = await srv.app.inject({
      method: 'POST',
      url: '/v1/console-tokens',
      headers: { authorization: `Bearer ${await jwt()}`, 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'target=127.0.0.1:5901',
    });
    expectVncgateError(r, 'HTTP_ERR_UNSUPPORTED_MEDIA_TYPE');
  });
});

describe('issue 15: api.jwt.maxLifetimeSeconds', () => {
  const post = async (token: string) =>
    srv.app.inject({ method: 'POST', url: '/v1/console-tokens', payload: { target: '127.0.0.1:5901' }, headers: { authorization: `Bearer ${token}` } });

  it('accepts a JWT within the limit (exp - iat, or exp - now without iat)', async () => {
    expect((await post(await jwt({ exp: nowS() + 3_600 }))).statusCode).toBe(201);
    expect((await post(await jwt({ iat: null, exp: nowS() + 3_000 }))).statusCode).toBe(201);
  });

  it('refuses one with exp far ahead, without exp, or with a future iat hiding a far exp', async () => {
    for (const token of [
      await jwt({ exp: nowS() + 10 * 86_400 }),
      await jwt({ iat: null, exp: nowS() + 7_200 }),
      await jwt({ exp: null }),
      await jwt({ iat: nowS() + 10 * 86_400, exp: nowS() + 10 * 86_400 + 60 }),
    ]) {
      const r = await post(token);
      expectVncgateError(r, 'HTTP_ERR_UNAUTHORIZED');
      expect(r.headers['www-authenticate']).toBe('Bearer');
    }
  });

  it('checkLifetime: exp - iat, exp - now, tolerance', () => {
    const now = 1_800_000_000;
    expect(() => checkLifetime({ iat: now - 100, exp: now - 100 + 3_600 }, 3_600, 0, now)).not.toThrow();
    expect(() => checkLifetime({ iat: now - 100, exp: now - 100 + 3_601 }, 3_600, 0, now)).toThrow(expect.objectContaining({ code: 'HTTP_ERR_UNAUTHORIZED' }));
    expect(() => checkLifetime({ iat: now - 100, exp: now - 100 + 3_601 }, 3_600, 30, now)).not.toThrow();
    expect(() => checkLifetime({ exp: now + 3_601 }, 3_600, 0, now)).toThrow(expect.objectContaining({ code: 'HTTP_ERR_UNAUTHORIZED' }));
    expect(() => checkLifetime({ iat: now }, 3_600, 0, now)).toThrow(expect.objectContaining({ code: 'HTTP_ERR_UNAUTHORIZED' }));
  });
});

describe('issue 15: publicUrl decides vncgate\'s own origin, not Host', () => {
  it('without publicUrl the Host-derived origin is accepted', async () => {
    const ws = await srv.app.injectWS('/websockify', { headers: { host: 'vncgate.test:6080', origin: 'http://vncgate.test:6080' } });
    ws.terminate();
  });

  it('with publicUrl only its origin (and origins.allowed) is accepted; a forged Host is not', async () => {
    const pub = await serve({ publicUrl: 'https://console.example.test:6080/prefix/', origins: { allowed: ['https://horizon.test'] } });
    await expect(pub.app.injectWS('/websockify', { headers: { host: 'vncgate.test:6080', origin: 'http://vncgate.test:6080' } })).rejects.toThrow(/403/);
    await expect(pub.app.injectWS('/websockify', { headers: { host: 'evil.test', origin: 'http://evil.test' } })).rejects.toThrow(/403/);
    for (const origin of ['https://console.example.test:6080', 'https://horizon.test']) {
      const ws = await pub.app.injectWS('/websockify', { headers: { origin } });
      ws.terminate();
    }
  });
});

describe("errors Node's HTTP parser raises before any route (issue 15)", () => {
  /** Sends raw bytes, returns everything the server answers before it closes. */
  const raw = (bytes: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const [host, port] = srv.addresses[0]!.split(':');
      const sock = connect({ host: host!, port: Number(port) });
      let got = '';
      sock.on('data', (d) => (got += d.toString('latin1')));
      sock.on('close', () => resolve(got));
      sock.on('error', reject);
      sock.setTimeout(5_000, () => sock.destroy(new Error('no close within 5 s')));
      sock.write(bytes);
    });
  const bodyOf = (answer: string): unknown => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));

  it('a malformed request line gets 400 in vncgate shape and a closed connection', async () => {
    const answer = await raw('GARBAGE\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(bodyOf(answer)).toEqual({ error: { code: 'HTTP_ERR_BAD_REQUEST', message: expect.any(String) } });
  });

  it('headers over the limit get 431 HTTP_ERR_HEADERS_TOO_LARGE', async () => {
    const answer = await raw(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    expect((bodyOf(answer) as { error: { code: string } }).error.code).toBe('HTTP_ERR_HEADERS_TOO_LARGE');
  });

  it('a request not completed in time gets 408 HTTP_ERR_TIMEOUT', async () => {
    const quick = await serve({ limits: { requestTimeoutMs: 300 } });
    const [host, port] = quick.addresses[0]!.split(':');
    const answer = await new Promise<string>((resolve, reject) => {
      const sock = connect({ host: host!, port: Number(port) });
      let got = '';
      sock.on('data', (d) => (got += d.toString('latin1')));
      sock.on('close', () => resolve(got));
      sock.on('error', reject);
      sock.setTimeout(8_000, () => sock.destroy(new Error('no close within 8 s')));
      sock.write('GET / HTTP/1.1\r\nHost: x\r\n'); // never finished
    });
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect((bodyOf(answer) as { error: { code: string } }).error.code).toBe('HTTP_ERR_TIMEOUT');
  });
});
