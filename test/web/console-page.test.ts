import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVncgateError } from '../../src/errors.js';
import { acceptsGzip } from '../../src/web/console-page.js';
import { CONSOLE_PAGE_PATHS, DEFAULT_WEB_ROOT, registerConsolePage } from '../../src/web/index.js';
import type { ConsolePageOptions } from '../../src/web/index.js';

const DEFAULT_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "frame-ancestors 'self'; base-uri 'none'; form-action 'none'";

const JS_NAME = 'console-0123456789ab.js';
const CSS_NAME = 'console-ba9876543210.css';
const PAGE = `<!doctype html><title>Console</title><link rel="stylesheet" href="assets/${CSS_NAME}"><script type="module" src="assets/${JS_NAME}"></script>`;
const LANDING = `<!doctype html><title>Console proxy</title><link rel="stylesheet" href="assets/${CSS_NAME}"><p>Open a console link from your cloud dashboard.</p>`;
const JS = `export const filler = ${JSON.stringify('x'.repeat(4096))};\n`;
const CSS = 'body{margin:0}\n';

/** A stand-in build (scripts/build-web.mjs output shape), so these tests need no bundling. */
async function fakeBuild(dir: string, files: Record<string, string>): Promise<string> {
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), content);
  }
  return dir;
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return isVncgateError(error) ? error.code : `not a VncgateError: ${String(error)}`;
  }
  return undefined;
}

describe('registerConsolePage', () => {
  let tmp: string;
  let webRoot: string;
  let app: FastifyInstance;

  async function appWith(options: ConsolePageOptions): Promise<FastifyInstance> {
    const instance = Fastify();
    registerConsolePage(instance, { webRoot, ...options });
    await instance.ready();
    return instance;
  }

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'vncgate-page-'));
    webRoot = await fakeBuild(path.join(tmp, 'public'), {
      'vnc.html': PAGE,
      'index.html': LANDING,
      [`assets/${JS_NAME}`]: JS,
      [`assets/${CSS_NAME}`]: CSS,
    });
    app = await appWith({});
  });

  afterAll(async () => {
    await app?.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it.each(CONSOLE_PAGE_PATHS)('serves the page at %s with the security headers', async (url) => {
    const res = await app.inject({ method: 'GET', url });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe(PAGE);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['content-security-policy']).toBe(DEFAULT_CSP);
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('serves the page whatever the query string carries (the links put the token there)', async () => {
    const ironic = await app.inject({ method: 'GET', url: '/vnc_lite.html?path=websockify%3Fnode%3Dn%26token%3Dt' });
    const nova = await app.inject({ method: 'GET', url: '/vnc_auto.html?path=%3Ftoken%3Dt' });
    expect([ironic.statusCode, nova.statusCode]).toEqual([200, 200]);
    expect(nova.body).toBe(PAGE);
  });

  it('answers HEAD with the same headers and no body', async () => {
    const res = await app.inject({ method: 'HEAD', url: '/vnc.html' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('');
    expect(res.headers['content-security-policy']).toBe(DEFAULT_CSP);
  });

  it('serves hashed assets with a year of immutable caching', async () => {
    const res = await app.inject({ method: 'GET', url: `/assets/${CSS_NAME}` });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe(CSS);
    expect(res.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-encoding']).toBeUndefined();
  });

  it('sends gzip to clients that accept it, identity to the others', async () => {
    const gz = await app.inject({ method: 'GET', url: `/assets/${JS_NAME}`, headers: { 'accept-encoding': 'gzip, br' } });
    expect(gz.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.headers['vary']).toBe('accept-encoding');
    expect(gunzipSync(gz.rawPayload).toString('utf8')).toBe(JS);

    const plain = await app.inject({ method: 'GET', url: `/assets/${JS_NAME}`, headers: { 'accept-encoding': 'gzip;q=0' } });
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.headers['vary']).toBe('accept-encoding');
    expect(plain.body).toBe(JS);
  });

  it.each([
    ['GET', '/assets/console-ffffffffffff.js'],
    ['GET', '/assets/..%2Fvnc.html'],
    ['GET', '/assets/'],
    ['GET', '/vnc.htm'],
    ['GET', '/public/vnc.html'],
    ['GET', '/index.html'],
    ['POST', '/vnc.html'],
  ] as const)('answers %s %s with 404', async (method, url) => {
    const res = await app.inject({ method, url });
    expect(res.statusCode).toBe(404);
  });

  it('issue 16: GET / is a landing page for a person who typed the address, under the same CSP', async () => {
    for (const method of ['GET', 'HEAD'] as const) {
      const res = await app.inject({ method, url: '/' });
      expect(res.statusCode).toBe(200);
      expect(res.body).toBe(method === 'GET' ? LANDING : '');
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.headers['content-security-policy']).toBe(DEFAULT_CSP);
      expect(res.headers['referrer-policy']).toBe('no-referrer');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['cache-control']).toBe('no-cache');
    }
    expect((await app.inject({ method: 'GET', url: '/?token=t' })).body).toBe(LANDING);
  });

  it('leaves WebSocket upgrades on the page paths to the app\'s catch-all route (Nova `path=?token=…`)', async () => {
    const proxy = Fastify();
    proxy.get('/*', async () => 'catch-all');
    registerConsolePage(proxy, { webRoot });
    const upgrade = { connection: 'Upgrade', upgrade: 'websocket' };
    for (const url of CONSOLE_PAGE_PATHS) {
      expect((await proxy.inject({ method: 'GET', url: `${url}?token=t`, headers: upgrade })).body).toBe('catch-all');
      expect((await proxy.inject({ method: 'GET', url })).body).toBe(PAGE);
    }
    expect((await proxy.inject({ method: 'GET', url: '/websockify?token=t', headers: upgrade })).body).toBe('catch-all');
    expect((await proxy.inject({ method: 'GET', url: '/?token=t', headers: upgrade })).body).toBe('catch-all');
    expect((await proxy.inject({ method: 'GET', url: '/' })).body).toBe(LANDING);
    await proxy.close();
  });

  it('can be registered more than once, e.g. under a prefix as well', async () => {
    const twice = Fastify();
    registerConsolePage(twice, { webRoot });
    await twice.register(async (scope) => registerConsolePage(scope, { webRoot }), { prefix: '/novnc' });
    expect((await twice.inject({ method: 'GET', url: '/novnc/vnc_lite.html' })).body).toBe(PAGE);
    expect((await twice.inject({ method: 'GET', url: `/novnc/assets/${CSS_NAME}` })).body).toBe(CSS);
    expect((await twice.inject({ method: 'GET', url: '/novnc/' })).body).toBe(LANDING);
    await twice.close();
  });

  it('does not cache or sniff a missing asset', async () => {
    const res = await app.inject({ method: 'GET', url: '/assets/gone.js' });
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });

  it('puts the configured frame ancestors and extra connect sources into the CSP', async () => {
    const custom = await appWith({
      frameAncestors: ["'self'", 'https://horizon.example.org', 'https://*.example.net:8443'],
      connectSources: ['wss://console.example.org:6443'],
    });
    const res = await custom.inject({ method: 'GET', url: '/vnc.html' });
    expect(res.headers['content-security-policy']).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
        "connect-src 'self' wss://console.example.org:6443; " +
        "frame-ancestors 'self' https://horizon.example.org https://*.example.net:8443; base-uri 'none'; form-action 'none'",
    );
    await custom.close();
  });

  it('forbids framing with frameAncestors ["\'none\'"]', async () => {
    const custom = await appWith({ frameAncestors: ["'none'"] });
    const res = await custom.inject({ method: 'GET', url: '/vnc.html' });
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none';");
    await custom.close();
  });

  it.each([
    [{ frameAncestors: [] }],
    [{ frameAncestors: ["'none'", "'self'"] }],
    [{ frameAncestors: ["'self'; script-src *"] }],
    [{ frameAncestors: ['https://a.example https://b.example'] }],
    [{ frameAncestors: ["'unsafe-inline'"] }],
    [{ frameAncestors: ['https://a.example,https://b.example'] }],
    [{ connectSources: ["'self'"] }],
    [{ connectSources: ['wss://x.example\r\nSet-Cookie: a=b'] }],
  ])('refuses CSP sources that are not valid or would inject a directive: %j', (options) => {
    expect(codeOf(() => registerConsolePage(Fastify(), { webRoot, ...options }))).toBe('CONFIG_ERR_INVALID');
  });

  it('fails at start-up, telling the operator to build, when the page is not built', async () => {
    const empty = path.join(tmp, 'nothing-here');
    expect(codeOf(() => registerConsolePage(Fastify(), { webRoot: empty }))).toBe('CONFIG_ERR_FILE');
    expect(() => registerConsolePage(Fastify(), { webRoot: empty })).toThrow(/npm run build:web/);
  });

  it('fails at start-up when the page links an asset the build lacks', async () => {
    const partial = await fakeBuild(path.join(tmp, 'partial'), { 'vnc.html': PAGE, 'index.html': LANDING, [`assets/${CSS_NAME}`]: CSS });
    expect(codeOf(() => registerConsolePage(Fastify(), { webRoot: partial }))).toBe('CONFIG_ERR_FILE');
  });

  it('fails at start-up when the build lacks the landing page (a build from before issue 16)', async () => {
    const old = await fakeBuild(path.join(tmp, 'old'), { 'vnc.html': PAGE, [`assets/${JS_NAME}`]: JS, [`assets/${CSS_NAME}`]: CSS });
    expect(codeOf(() => registerConsolePage(Fastify(), { webRoot: old }))).toBe('CONFIG_ERR_FILE');
    expect(() => registerConsolePage(Fastify(), { webRoot: old })).toThrow(/index\.html is missing/);
  });

  it('defaults to <package>/dist/public', () => {
    expect(DEFAULT_WEB_ROOT).toBe(path.resolve(import.meta.dirname, '../../dist/public') + path.sep);
  });
});

describe('acceptsGzip', () => {
  it.each([
    [undefined, false],
    ['', false],
    ['gzip', true],
    ['deflate, gzip;q=0.5', true],
    ['GZIP', true],
    ['br', false],
    ['gzip;q=0', false],
    ['gzip;q=0.000', false],
    ['*', true],
    ['*;q=0', false],
    ['gzip;q=0, *', false],
    ['identity, *;q=0.1', true],
  ] as const)('%j → %s', (header, expected) => {
    expect(acceptsGzip(header)).toBe(expected);
  });
});
