import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { ERROR_CODES, VncgateError } from '../../src/errors.js';
import { TokenStoreReadiness } from '../../src/proxy/health.js';
import type { VncgateServer } from '../../src/proxy/server.js';
import { MemoryTokenStore, type TokenStore } from '../../src/tokens/index.js';
import { signTestJwt, startInProcess } from '../support/in-process.js';
import { startTinyVncServer } from '../support/tiny-vnc-server.js';
import { wsRfbConnect, type WsRfbResult } from '../support/ws-rfb-client.js';

/** Issue 15: graceful drain on SIGTERM, and /readyz answering within a deadline, in-process. */
const SHUTDOWN = ERROR_CODES.SESSION_ERR_SHUTDOWN;
let backend: Awaited<ReturnType<typeof startTinyVncServer>>;
let tokens: MemoryTokenStore;
let srv: VncgateServer;
let base: string;

beforeAll(async () => {
  backend = await startTinyVncServer({ name: 'drain-desk' });
});
afterAll(async () => {
  await backend.close();
});

async function start(): Promise<void> {
  tokens = new MemoryTokenStore();
  ({ srv } = await startInProcess({ tokens }));
  base = `ws://${srv.addresses[0]}`;
}
afterEach(async () => {
  await srv.close();
  await tokens.close();
});

async function open(): Promise<WebSocket> {
  const t = await tokens.issue({ kind: 'static', host: '127.0.0.1', port: backend.port }, 60);
  const r = await wsRfbConnect(`${base}/websockify?token=${t.token}`);
  if (!r.ok) throw new Error(`session refused: ${r.code}`);
  return r.ws;
}

/** Sends bytes through the session; the tiny server echoes them back. */
function echo(ws: WebSocket, timeoutMs = 5_000): Promise<boolean> {
  const probe = Buffer.from([9, 8, 7, 6]);
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(false), timeoutMs);
    const onMessage = (d: Buffer): void => done(Buffer.from(d).equals(probe));
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      ws.off('message', onMessage);
      resolve(ok);
    };
    ws.on('message', onMessage);
    ws.send(probe);
  });
}

function closedWith(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

describe('issue 15: drain', () => {
  it('refuses readiness, new consoles (token unused) and the token API at once; open sessions carry on and the drain ends with the last one', async () => {
    await start();
    const sessions = [await open(), await open()];
    const drained = srv.drain(30_000);

    const ready = await srv.app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ error: { code: 'SESSION_ERR_SHUTDOWN' } });
    expect(ready.headers.connection).toBe('close');
    expect((await srv.app.inject({ url: '/healthz' })).statusCode).toBe(200);

    const jwt = await signTestJwt({}, { sub: 'op', iat: null });
    const api = await srv.app.inject({ method: 'POST', url: '/v1/console-tokens', payload: { target: `127.0.0.1:${backend.port}` }, headers: { authorization: `Bearer ${jwt}` } });
    expect(api.statusCode).toBe(503);
    expect(api.json()).toMatchObject({ error: { code: 'SESSION_ERR_SHUTDOWN' } });

    const t = await tokens.issue({ kind: 'static', host: '127.0.0.1', port: backend.port }, 60);
    const refused: WsRfbResult = await wsRfbConnect(`${base}/websockify?token=${t.token}`);
    expect(refused).toMatchObject({ ok: false, serverReason: SHUTDOWN.reason, closeCode: SHUTDOWN.wsClose });
    // The link was not used up: it still works on another replica.
    await expect(tokens.consume(t.token)).resolves.toMatchObject({ target: { port: backend.port } });

    for (const ws of sessions) expect(await echo(ws)).toBe(true);
    for (const ws of sessions) ws.close(1000);
    const summary = await drained;
    expect(summary).toMatchObject({ sessions: 2, ended: 2, closed: 0, cutShort: false });
    expect(summary.durationMs).toBeLessThan(10_000);
  });

  it('closes the sessions left at the deadline with SESSION_ERR_SHUTDOWN', async () => {
    await start();
    const ws = await open();
    const closed = closedWith(ws);
    const summary = await srv.drain(300);
    expect(summary).toMatchObject({ sessions: 1, ended: 0, closed: 1, cutShort: false });
    expect(await closed).toEqual({ code: SHUTDOWN.wsClose, reason: SHUTDOWN.reason });
  });

  it('close() during a drain (the second signal) closes every session at once', async () => {
    await start();
    const ws = await open();
    const closed = closedWith(ws);
    const drained = srv.drain(60_000);
    const t0 = performance.now();
    await srv.close();
    expect(await drained).toMatchObject({ sessions: 1, ended: 0, closed: 1, cutShort: true });
    expect(await closed).toEqual({ code: SHUTDOWN.wsClose, reason: SHUTDOWN.reason });
    console.log(`[issue 15] close() during a drain took ${Math.round(performance.now() - t0)} ms`);
  });

  it('a drain with no session open ends at once', async () => {
    await start();
    expect(await srv.drain(60_000)).toMatchObject({ sessions: 0, ended: 0, closed: 0 });
  });
});

describe('issue 15: /readyz within a deadline', () => {
  const stuck = (): TokenStore & { calls: number } => {
    const store = new MemoryTokenStore() as MemoryTokenStore & { calls: number };
    store.calls = 0;
    store.ready = () => {
      store.calls++;
      return new Promise<void>(() => undefined); // a hung store: never answers
    };
    return store;
  };

  it('a store that does not answer is reported not ready at the deadline, with one check in flight whatever the probe rate', async () => {
    const store = stuck();
    const readiness = new TokenStoreReadiness(store, 50);
    const t0 = performance.now();
    const results = await Promise.all([readiness.check(), readiness.check(), readiness.check()]);
    const ms = performance.now() - t0;
    for (const r of results) expect(r?.code).toBe('TOKEN_ERR_STORE_UNAVAILABLE');
    expect(await readiness.check()).toMatchObject({ code: 'TOKEN_ERR_STORE_UNAVAILABLE' });
    expect(store.calls).toBe(1);
    expect(ms).toBeLessThan(2_000);
  });

  it("reports the store's own failure, and ready once it answers", async () => {
    const store = new MemoryTokenStore();
    const readiness = new TokenStoreReadiness(store, 50);
    expect(await readiness.check()).toBeNull();
    await store.close();
    expect(await readiness.check()).toMatchObject({ code: 'TOKEN_ERR_STORE_UNAVAILABLE' });
  });
});

describe('fleet soak: /readyz and a token store shared by every replica', () => {
  const down = (): MemoryTokenStore => {
    const store = new MemoryTokenStore();
    store.ready = () => Promise.reject(new VncgateError('TOKEN_ERR_STORE_UNAVAILABLE', 'redis down'));
    return store;
  };
  async function readyz(checkTokenStore: boolean | undefined, store: MemoryTokenStore): Promise<{ status: number; body: unknown }> {
    tokens = store;
    ({ srv } = await startInProcess({ tokens, ...(checkTokenStore === undefined ? {} : { overrides: { health: { readinessChecksTokenStore: checkTokenStore } } }) }));
    const r = await srv.app.inject({ url: '/readyz' });
    return { status: r.statusCode, body: r.json() };
  }

  it('by default a store outage leaves the replica ready (new consoles get "try again shortly"), and the body names the outage', async () => {
    expect(await readyz(undefined, down())).toEqual({ status: 200, body: { status: 'ready', tokenStore: 'memory', tokenStoreReady: false, tokenStoreError: 'TOKEN_ERR_STORE_UNAVAILABLE' } });
  });

  it('with health.readinessChecksTokenStore a store outage answers 503 TOKEN_ERR_STORE_UNAVAILABLE, naming the store', async () => {
    const r = await readyz(true, down());
    expect(r.status).toBe(503);
    expect(r.body).toMatchObject({ error: { code: 'TOKEN_ERR_STORE_UNAVAILABLE' }, tokenStore: 'memory', tokenStoreReady: false });
  });

  it('with either setting a store that answers is ready, and a drain answers 503 SESSION_ERR_SHUTDOWN', async () => {
    for (const check of [false, true]) {
      expect(await readyz(check, new MemoryTokenStore())).toEqual({ status: 200, body: { status: 'ready', tokenStore: 'memory', tokenStoreReady: true } });
      void srv.drain(1_000);
      expect((await srv.app.inject({ url: '/readyz' })).json()).toMatchObject({ error: { code: 'SESSION_ERR_SHUTDOWN' } });
      if (!check) {
        await srv.close();
        await tokens.close();
      }
    }
  });
});

describe('fleet soak: a readiness grace at the start of a drain', () => {
  it('during the grace /readyz answers 503 but new consoles and the token API are served; a second signal ends it at once', async () => {
    await start();
    const before = await open();
    const drained = srv.drain(60_000, 60_000);
    expect(srv.lifecycle.phase).toBe('leaving');
    const ready = await srv.app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ error: { code: 'SESSION_ERR_SHUTDOWN' } });
    expect(ready.headers.connection).toBe('close');
    expect((await srv.app.inject({ url: '/healthz' })).json()).toMatchObject({ status: 'draining' });

    // What a load balancer that has not noticed yet still sends works.
    const during = await open();
    for (const ws of [before, during]) expect(await echo(ws)).toBe(true);
    const jwt = await signTestJwt({}, { sub: 'op', iat: null });
    const api = await srv.app.inject({ method: 'POST', url: '/v1/console-tokens', payload: { target: `127.0.0.1:${backend.port}` }, headers: { authorization: `Bearer ${jwt}` } });
    expect(api.statusCode).toBe(201);

    const closes = [closedWith(before), closedWith(during)];
    await srv.close();
    expect(await drained).toMatchObject({ sessions: 2, closed: 2, cutShort: true });
    for (const c of await Promise.all(closes)) expect(c).toEqual({ code: SHUTDOWN.wsClose, reason: SHUTDOWN.reason });
  });

  it('after the grace the drain proper begins, and its deadline counts from the end of the grace', async () => {
    await start();
    const graceMs = 400;
    const timeoutMs = 300;
    const ws = await open();
    const t0 = performance.now();
    const closed = closedWith(ws).then((c) => ({ ...c, atMs: performance.now() - t0 }));
    const drained = srv.drain(timeoutMs, graceMs);
    await expect.poll(() => srv.lifecycle.phase, { timeout: 10_000, interval: 20 }).toBe('draining');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(graceMs - 5);
    const t = await tokens.issue({ kind: 'static', host: '127.0.0.1', port: backend.port }, 60);
    expect(await wsRfbConnect(`${base}/websockify?token=${t.token}`)).toMatchObject({ ok: false, serverReason: SHUTDOWN.reason });
    expect(await drained).toMatchObject({ sessions: 1, ended: 0, closed: 1, cutShort: false });
    const c = await closed;
    expect(c).toMatchObject({ code: SHUTDOWN.wsClose, reason: SHUTDOWN.reason });
    // Timers never fire early (give or take Node's millisecond rounding): closed no sooner than grace + drain.
    expect(c.atMs).toBeGreaterThanOrEqual(graceMs + timeoutMs - 10);
  });

  it('with no grace (the default) new consoles are refused at once', async () => {
    await start();
    void srv.drain(60_000);
    expect(srv.lifecycle.phase).toBe('draining');
  });
});
