/**
 * Issue 15: the token API as a hostile (or buggy) issuer would use it, against the default target
 * policy (backends.allowedTargets unset): loopback, link-local and the cloud metadata address are
 * refused when a token is issued, and again when a session connects, whatever the token says.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors.js';
import type { VncgateServer } from '../../src/proxy/server.js';
import { MemoryTokenStore } from '../../src/tokens/index.js';
import { captureLog, signTestJwt, startInProcess } from '../support/in-process.js';
import { startTinyVncServer } from '../support/tiny-vnc-server.js';
import { wsRfbConnect } from '../support/ws-rfb-client.js';

const { lines: logLines, sink } = captureLog();

let srv: VncgateServer;
let tokens: MemoryTokenStore;
let backend: Awaited<ReturnType<typeof startTinyVncServer>>;
let accepted = 0;
let bearer: string;

beforeAll(async () => {
  backend = await startTinyVncServer({ name: 'loopback-desk' });
  backend.server.on('connection', () => (accepted += 1));
  tokens = new MemoryTokenStore();
  const started = await startInProcess({ allowLoopback: false, tokens, logLevel: 'debug', logSink: sink });
  srv = started.srv;
  expect(started.config.raw.backends.allowedTargets).toEqual(['0.0.0.0/0', '::/0']);
  bearer = await signTestJwt({}, { sub: 'issuer-under-test' });
});

afterAll(async () => {
  await srv.close();
  await backend.close();
});

const post = (body: unknown) =>
  srv.app.inject({ method: 'POST', url: '/v1/console-tokens', payload: body as object, headers: { authorization: `Bearer ${bearer}` } });

describe('issue 15: POST /v1/console-tokens under the default target policy', () => {
  it('an object target cannot smuggle in kind "node" (Ironic is off)', async () => {
    const r = await post({ target: { host: '10.0.0.7', port: 5900, kind: 'node', node: 'x' } });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.code).toBe('HTTP_ERR_BAD_REQUEST');
    expect(r.json().error.message).toContain('"kind"');
  });

  it('refuses unknown properties with 400, naming them', async () => {
    for (const [body, key] of [
      [{ target: '10.0.0.7:5900', kind: 'static' }, 'kind'],
      [{ target: '10.0.0.7:5900', security: ['none'] }, 'security'],
      [{ target: { host: '10.0.0.7', port: 5900, password: 'x' } }, 'password'],
    ] as const) {
      const r = await post(body);
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.json().error.code).toBe('HTTP_ERR_BAD_REQUEST');
      expect(r.json().error.message).toContain(`"${key}"`);
    }
  });

  it.each<[string, unknown]>([
    ['the cloud metadata address', { target: '169.254.169.254:80' }],
    ['the metadata address as an object', { target: { host: '169.254.169.254', port: 80 } }],
    ['the metadata address IPv4-mapped', { target: '[::ffff:169.254.169.254]:80' }],
    ['loopback', { target: '127.0.0.1:6379' }],
    ['IPv6 loopback', { target: '[::1]:6379' }],
    ['the unspecified address', { target: '0.0.0.0:5900' }],
    ['a name for loopback', { target: 'localhost:5900' }],
    ['a numeric name for loopback', { target: '127.1:5900' }],
    ['link-local IPv6', { target: '[fe80::1]:5900' }],
  ])('refuses %s with 403 TARGET_ERR_FORBIDDEN and issues nothing', async (_name, body) => {
    const before = logLines.filter((l) => l.includes('console tokens issued')).length;
    const r = await post(body);
    expect(r.statusCode).toBe(403);
    expect(r.json().error.code).toBe('TARGET_ERR_FORBIDDEN');
    expect(logLines.filter((l) => l.includes('console tokens issued')).length).toBe(before);
  });

  it('tells the issuer that, not what a name resolved to; the log has the detail', async () => {
    const r = await post({ target: 'localhost:5900' });
    expect(r.json().error.message).not.toContain('127.0.0.1');
    const line = logLines.filter((l) => l.includes('refused by the target policy')).at(-1);
    expect(line).toContain('127.0.0.1');
    expect(line).toContain('issuer-under-test');
  });

  it('issues for an allowed address (201)', async () => {
    for (const body of [{ target: '10.0.0.7:5900' }, { target: { host: 'fd00::7', port: 5901 } }, { target: '192.0.2.10:443', count: 2 }]) {
      const r = await post(body);
      expect(r.statusCode, JSON.stringify(body)).toBe(201);
    }
  });
});

describe('issue 15: the target policy at connect time', () => {
  it('a token for a name that now resolves to loopback is refused, and the browser is told why', async () => {
    // Issued while the name pointed elsewhere, or by a replica with another policy: the token
    // store holds it either way. Here "localhost" resolves to 127.0.0.1, which the policy refuses.
    for (const host of ['localhost', '127.0.0.1', '::ffff:127.0.0.1']) {
      const before = accepted;
      const t = await tokens.issue({ kind: 'static', host, port: backend.port }, 60);
      const r = await wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${t.token}`, { timeoutMs: 10_000 });
      expect(r, host).toMatchObject({
        ok: false,
        serverReason: ERROR_CODES.TARGET_ERR_FORBIDDEN.reason,
        closeCode: ERROR_CODES.TARGET_ERR_FORBIDDEN.wsClose,
      });
      expect(accepted, host).toBe(before);
    }
    await expect.poll(() => logLines.filter((l) => l.includes('"session ended"') && l.includes('TARGET_ERR_FORBIDDEN')).length).toBeGreaterThanOrEqual(3);
  });
});
