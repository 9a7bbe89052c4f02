import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import { buildServer, type VncgateServer } from '../../src/proxy/server.js';
import { discardAuthorization } from '../../src/proxy/authorization/index.js';
import type { Authorized } from '../../src/target.js';
import { MemoryTokenStore } from '../../src/tokens/index.js';
import { startTinyVncServer } from '../support/tiny-vnc-server.js';
import { wsRfbConnect } from '../support/ws-rfb-client.js';

/** Deadlines and limits of a session, each ending that one session with its reason or close code. */
const tokens = new MemoryTokenStore();
let backend: Awaited<ReturnType<typeof startTinyVncServer>>;
let silent: Awaited<ReturnType<typeof startTinyVncServer>>;
const servers: VncgateServer[] = [];

async function proxy(session: Record<string, number>): Promise<VncgateServer> {
  const config = loadConfig({ env: {}, overrides: { listen: ['127.0.0.1:0'], tls: { plainHttp: true }, session, backends: { allowedTargets: ['127.0.0.0/8', '::1/128'] }, log: { level: 'silent' } } });
  const srv = await buildServer({ config, tokens, log: createLogger({ level: 'silent' }) });
  servers.push(srv);
  return srv;
}

async function open(srv: VncgateServer, port: number) {
  const t = await tokens.issue({ kind: 'static', host: '127.0.0.1', port }, 60);
  return wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${t.token}`, { timeoutMs: 20_000 });
}

function closed(ws: WebSocket, withinMs: number): Promise<{ code: number; reason: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not closed within ${withinMs} ms`)), withinMs);
    ws.once('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString(), ms: Date.now() - t0 });
    });
  });
}

beforeAll(async () => {
  backend = await startTinyVncServer();
  silent = await startTinyVncServer({ silent: true });
});
afterAll(async () => {
  for (const s of servers) await s.close();
  await backend.close();
  await silent.close();
});

describe('discardAuthorization', () => {
  const started = (result: Promise<Authorized>) => ({ sessionId: 'x', abort: new AbortController(), result });
  const target = { host: '127.0.0.1', port: 1, security: { kind: 'none' }, profile: 'none', label: 't' } as unknown as Authorized['target'];

  it('cancels the authorization and undoes what it won once it has won it', async () => {
    let released = 0;
    let win!: (a: Authorized) => void;
    const a = started(new Promise<Authorized>((res) => (win = res)));
    const errors: unknown[] = [];
    discardAuthorization(a, { error: (o: unknown) => void errors.push(o) });
    expect(a.abort.signal.aborted).toBe(true);
    expect(released).toBe(0);
    win({ target, release: () => void released++ });
    await new Promise((res) => setImmediate(res));
    expect(released).toBe(1);
    expect(errors).toEqual([]);
  });

  it('logs a release that throws, and ignores an authorization that failed', async () => {
    const errors: unknown[] = [];
    const log = { error: (o: unknown) => void errors.push(o) };
    discardAuthorization(started(Promise.resolve({ target, release: () => { throw new Error('lease store down'); } })), log);
    const failed = Promise.reject(new Error('token unknown'));
    failed.catch(() => undefined);
    discardAuthorization(started(failed), log);
    await new Promise((res) => setImmediate(res));
    expect(errors).toHaveLength(1);
  });
});

describe('session limits', () => {
  it('handshake deadline: an endpoint that never speaks gives the browser a reason', async () => {
    const srv = await proxy({ handshakeTimeoutMs: 400 });
    const t0 = Date.now();
    const r = await open(srv, silent.port);
    expect(r).toMatchObject({ ok: false, serverReason: 'The console endpoint did not complete the VNC handshake in time' });
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it('idle timeout closes a session with no traffic, with close code 4000', async () => {
    const srv = await proxy({ idleTimeoutMs: 300, heartbeatIntervalMs: 0 });
    const r = await open(srv, backend.port);
    if (!r.ok) throw new Error(r.code);
    const c = await closed(r.ws, 5_000);
    expect(c.code).toBe(4000);
    expect(c.reason).toBe('The console was idle for too long');
    expect(srv.registry.size).toBe(0);
  });

  it('traffic keeps a session alive past the idle timeout', async () => {
    const srv = await proxy({ idleTimeoutMs: 600, heartbeatIntervalMs: 0 });
    const r = await open(srv, backend.port);
    if (!r.ok) throw new Error(r.code);
    for (let i = 0; i < 8; i++) {
      r.ws.send(Buffer.from('x')); // echoed by the tiny server: traffic both ways
      await new Promise((res) => setTimeout(res, 200));
    }
    expect(r.ws.readyState).toBe(WebSocket.OPEN);
    r.ws.close();
  });

  it('maximum lifetime closes even a busy session, with close code 4001', async () => {
    const srv = await proxy({ maxLifetimeMs: 500, heartbeatIntervalMs: 0 });
    const r = await open(srv, backend.port);
    if (!r.ok) throw new Error(r.code);
    const tick = setInterval(() => r.ws.readyState === WebSocket.OPEN && r.ws.send(Buffer.from('x')), 50);
    const c = await closed(r.ws, 5_000);
    clearInterval(tick);
    expect(c.code).toBe(4001);
  });

  it('heartbeat: a browser that stops answering pings is cut off; one that answers is not', async () => {
    const srv = await proxy({ heartbeatIntervalMs: 200, idleTimeoutMs: 0 });
    const alive = await open(srv, backend.port);
    const dead = await open(srv, backend.port);
    if (!alive.ok || !dead.ok) throw new Error('open failed');
    // ws answers pings automatically; a paused socket cannot read them, so it never answers.
    dead.ws.pause();
    await new Promise((res) => setTimeout(res, 2_500));
    expect(alive.ws.readyState).toBe(WebSocket.OPEN);
    expect(srv.registry.size).toBe(1);
    alive.ws.close();
    dead.ws.terminate();
  });

  it('capacity: past maxSessions the browser is told the service is at capacity', async () => {
    const srv = await proxy({ maxSessions: 1 });
    const first = await open(srv, backend.port);
    expect(first.ok).toBe(true);
    const t = await tokens.issue({ kind: 'static', host: '127.0.0.1', port: backend.port }, 60);
    const url = `ws://${srv.addresses[0]}/websockify?token=${t.token}`;
    const second = await wsRfbConnect(url);
    expect(second).toMatchObject({ ok: false, serverReason: 'The console service is at capacity - try again shortly' });
    // The refused link was not used up: once there is room, it works.
    if (first.ok) first.ws.close();
    for (let i = 0; i < 50 && srv.registry.size > 0; i++) await new Promise((res) => setTimeout(res, 20));
    const third = await wsRfbConnect(url);
    expect(third.ok).toBe(true);
    if (third.ok) third.ws.close();
  });

  it('upgrades ws will refuse, and foreign origins, leave the token unused and the slot free', async () => {
    const srv = await proxy({ maxSessions: 1 });
    const t = await tokens.issue({ kind: 'static', host: '127.0.0.1', port: backend.port }, 60);
    const [host, port] = srv.addresses[0]!.split(':') as [string, string];
    /** One raw HTTP request; resolves with the status line of the answer. */
    const ask = (method: string, headers: string): Promise<string> =>
      new Promise<string>((resolve, reject) => {
        const sock = connect(Number(port), host, () =>
          sock.write(`${method} /websockify?token=${t.token} HTTP/1.1\r\nHost: ${srv.addresses[0]}\r\nConnection: Upgrade\r\n${headers}\r\n`),
        );
        let head = '';
        sock.on('data', (d) => {
          head += d.toString('latin1');
          if (head.includes('\r\n')) sock.destroy();
        });
        sock.on('close', () => resolve(head.split('\r\n')[0] ?? ''));
        sock.on('error', reject);
        setTimeout(() => reject(new Error('no answer')), 5_000).unref();
      });
    const upgrade = 'Upgrade: websocket\r\n';
    const key = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
    expect(await ask('GET', `${upgrade}${key}Sec-WebSocket-Version: 99\r\n`)).toBe('HTTP/1.1 400 Bad Request');
    expect(await ask('GET', `${upgrade}Sec-WebSocket-Version: 13\r\n`)).toBe('HTTP/1.1 400 Bad Request');
    expect(await ask('GET', `${upgrade}${key}Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary, binary\r\n`)).toBe('HTTP/1.1 400 Bad Request');
    expect(await ask('HEAD', `${upgrade}${key}Sec-WebSocket-Version: 13\r\n`)).toMatch(/^HTTP\/1\.1 404 /);
    const foreign = await wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${t.token}`, { origin: 'https://evil.test' });
    expect(foreign).toMatchObject({ ok: false, code: 'HTTP_403' });
    // The link still works, and the only slot is free for it.
    const r = await wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${t.token}`, { timeoutMs: 20_000 });
    expect(r.ok).toBe(true);
    if (r.ok) r.ws.close();
  });

  it('the token is consumed while the upgrade is answered, not after it', async () => {
    const order: string[] = [];
    const store = new (class extends MemoryTokenStore {
      override consume(token: string | null | undefined) {
        order.push('consume');
        return super.consume(token);
      }
    })();
    const config = loadConfig({ env: {}, overrides: { listen: ['127.0.0.1:0'], tls: { plainHttp: true }, backends: { allowedTargets: ['127.0.0.0/8', '::1/128'] }, log: { level: 'silent' } } });
    const srv = await buildServer({ config, tokens: store, log: createLogger({ level: 'silent' }) });
    servers.push(srv);
    srv.app.websocketServer.on('headers', () => order.push('101'));
    const t = await store.issue({ kind: 'static', host: '127.0.0.1', port: backend.port }, 60);
    const r = await wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${t.token}`, { timeoutMs: 20_000 });
    expect(r.ok).toBe(true);
    if (r.ok) r.ws.close();
    expect(order).toEqual(['consume', '101']);
  });

  it('a text frame from the browser ends only that session', async () => {
    const srv = await proxy({});
    const good = await open(srv, backend.port);
    const bad = await open(srv, backend.port);
    if (!good.ok || !bad.ok) throw new Error('open failed');
    bad.ws.send('not binary');
    const c = await closed(bad.ws, 5_000);
    expect(c.code).toBe(1003);
    const echoed = new Promise<Buffer>((res) => good.ws.once('message', (d: Buffer) => res(d)));
    good.ws.send(Buffer.from('still here'));
    expect((await echoed).toString()).toBe('still here');
    good.ws.close();
  });

  it('the endpoint closing a running session closes the WebSocket normally', async () => {
    const srv = await proxy({});
    const own = await startTinyVncServer();
    const r = await open(srv, own.port);
    if (!r.ok) throw new Error(r.code);
    const c = closed(r.ws, 5_000);
    for (const s of own.sockets) s.destroy();
    expect((await c).code).toBe(1000);
    await own.close();
  });
});
