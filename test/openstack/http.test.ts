import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VncgateError } from '../../src/errors.js';
import { httpJson, isTransportFailure, parseJsonBody, type OpenStackService } from '../../src/openstack/index.js';

/** The client knows no service: these codes are whatever its caller passes. */
const NOVA: OpenStackService = { service: 'nova', unreachable: 'NOVA_ERR_UNREACHABLE', timeout: 'NOVA_ERR_TIMEOUT', badResponse: 'NOVA_ERR_BAD_RESPONSE' };
const IRONIC: OpenStackService = { service: 'ironic', unreachable: 'IRONIC_ERR_UNREACHABLE', timeout: 'IRONIC_ERR_TIMEOUT', badResponse: 'IRONIC_ERR_BAD_RESPONSE' };

let server: Server;
let base: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/hang') return;
    if (req.url === '/big') return void res.end('x'.repeat(4096));
    if (req.url === '/text') return void res.writeHead(502).end('<html>Bad Gateway</html>');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ method: req.method, accept: req.headers.accept }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

async function failure(p: Promise<unknown>): Promise<VncgateError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VncgateError);
  return err as VncgateError;
}

describe('httpJson', () => {
  it('answers JSON and tells the observer the caller-named service', async () => {
    const seen: [string, boolean][] = [];
    const res = await httpJson({ method: 'GET', url: `${base}/ok`, timeoutMs: 2_000, to: NOVA, observe: (s, _t, ok) => seen.push([s, ok]) });
    expect(parseJsonBody(res, 'test', NOVA)).toEqual({ method: 'GET', accept: 'application/json' });
    await httpJson({ method: 'GET', url: `${base}/text`, timeoutMs: 2_000, to: IRONIC, observe: (s, _t, ok) => seen.push([s, ok]) });
    expect(seen).toEqual([
      ['nova', true],
      ['ironic', false],
    ]);
  });

  it('issue 16: every failure carries the codes of the service called', async () => {
    for (const to of [NOVA, IRONIC]) {
      const t = await failure(httpJson({ method: 'GET', url: `${base}/hang`, timeoutMs: 200, to }));
      expect(t.code).toBe(to.timeout);
      expect(isTransportFailure(t, to)).toBe(true);
      expect((await failure(httpJson({ method: 'GET', url: `${base}/big`, timeoutMs: 2_000, maxBodyBytes: 1024, to }))).code).toBe(to.badResponse);
      const text = await httpJson({ method: 'GET', url: `${base}/text`, timeoutMs: 2_000, to });
      expect(() => parseJsonBody(text, 'test', to)).toThrow(expect.objectContaining({ code: to.badResponse }));
    }
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const u = await failure(httpJson({ method: 'GET', url: `http://127.0.0.1:${port}/`, timeoutMs: 2_000, to: NOVA }));
    expect(u.code).toBe('NOVA_ERR_UNREACHABLE');
    expect(isTransportFailure(u, NOVA)).toBe(true);
    expect(isTransportFailure(u, IRONIC)).toBe(false);
  });

  it('an abort ends the request as a shutdown', async () => {
    const ac = new AbortController();
    const p = httpJson({ method: 'GET', url: `${base}/hang`, timeoutMs: 10_000, signal: ac.signal, to: NOVA });
    ac.abort();
    expect((await failure(p)).code).toBe('SESSION_ERR_SHUTDOWN');
  });
});
