/**
 * Issue 15: a rolling upgrade must not throw every operator out of the console they are typing
 * in, and /readyz must answer within a probe's timeout while Redis is down.
 *
 * The real built `vncgate serve` over TLS, a real redis-server (tokens are minted and checked
 * from this process through the same store), and the synthetic VNC server in `pingpong` mode: each
 * session keeps sending FramebufferUpdateRequests and reading the updates back, so "still working"
 * means data still flows both ways. Figures are printed; timing assertions have wide margins.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors.js';
import { startSyntheticServer, type SyntheticServer } from '../../tools/synthetic/index.js';
import { RedisTokenStore } from '../../src/tokens/index.js';
import { getTestPki, type TestPki } from '../support/pki.js';
import { sleep, stopAll } from '../support/proc.js';
import { startRedisServer, type RedisServer } from '../support/redis.js';
import { startVncgateServe, type VncgateServe } from '../support/vncgate-process.js';
import { pumpUpdates, type PumpedConsole } from '../support/pumped-console.js';
import { wsRfbConnect } from '../support/ws-rfb-client.js';

const SHUTDOWN = ERROR_CODES.SESSION_ERR_SHUTDOWN;
const SESSIONS = 5;

let pki: TestPki;
let redis: RedisServer;
let vnc: SyntheticServer;
let tokens: RedisTokenStore;
let dir: string;
let configFile: string;

beforeAll(async () => {
  pki = await getTestPki();
  dir = await mkdtemp(join(tmpdir(), 'vncgate-drain-'));
  configFile = join(dir, 'vncgate.yaml');
  await writeFile(configFile, ['backends:', '  allowedTargets: ["127.0.0.0/8", "::1/128"]', ''].join('\n'));
  redis = await startRedisServer();
  vnc = await startSyntheticServer({ mode: 'pingpong', width: 64, height: 64 });
  tokens = new RedisTokenStore({ url: redis.url });
  await tokens.ready();
});

afterAll(async () => {
  await stopAll();
  await tokens?.close();
  await vnc?.close();
  await redis?.dispose();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

function serve(drainTimeoutMs: number, name: string, env: Record<string, string> = {}): Promise<VncgateServe> {
  return startVncgateServe({
    name,
    args: ['--config', configFile],
    env: {
      VNCGATE_TLS_CERT_FILE: pki.server.cert.path,
      VNCGATE_TLS_KEY_FILE: pki.server.key.path,
      VNCGATE_REDIS_URL: redis.url,
      VNCGATE_DRAIN_TIMEOUT_MS: String(drainTimeoutMs),
      VNCGATE_LOG_LEVEL: 'info',
      ...env,
    },
  });
}

async function mint(): Promise<string> {
  return (await tokens.issue({ kind: 'static', host: '127.0.0.1', port: vnc.port }, 120)).token;
}

/** GET over TLS on a fresh connection; status and the time it took. */
function get(server: VncgateServe, path: string, timeoutMs = 5_000, agent: Agent | false = false): Promise<{ status: number; body: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(`${server.origin}${path}`, { ca: pki.ca.cert.pem, agent, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - t0 }));
    });
    req.on('timeout', () => req.destroy(new Error(`${path}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

type Pumped = PumpedConsole;

async function openPumped(server: VncgateServe): Promise<Pumped> {
  const r = await wsRfbConnect(`${server.wsBase}/websockify?token=${await mint()}`, { ca: pki.ca.cert.pem, timeoutMs: 10_000 });
  if (!r.ok) throw new Error(`session refused: ${r.code} ${r.serverReason ?? ''}`);
  return pumpUpdates(r.ws, r.init);
}

async function openSessions(server: VncgateServe): Promise<Pumped[]> {
  const sessions: Pumped[] = [];
  for (let i = 0; i < SESSIONS; i++) sessions.push(await openPumped(server));
  await expect.poll(() => Math.min(...sessions.map((s) => s.updates())), { timeout: 10_000 }).toBeGreaterThan(3);
  return sessions;
}

/** Polls /readyz from `t0` until it answers 503; the time that took. */
async function msUntilNotReady(server: VncgateServe, t0: number): Promise<number> {
  while (performance.now() - t0 < 10_000) {
    const r = await get(server, '/readyz');
    if (r.status === 503) {
      expect(JSON.parse(r.body)).toMatchObject({ error: { code: 'SESSION_ERR_SHUTDOWN' } });
      return performance.now() - t0;
    }
    await sleep(10);
  }
  throw new Error('/readyz never answered 503');
}

function drainLine(server: VncgateServe): Record<string, unknown> {
  const line = server.logLines().find((l) => l.includes('"drain finished"'));
  if (line === undefined) throw new Error(`no "drain finished" line:\n${server.logText()}`);
  return JSON.parse(line) as Record<string, unknown>;
}

describe('issue 15: graceful drain of a real vncgate process', () => {
  it('keeps established sessions working, refuses new ones with the reason (token unused), and exits as soon as the last one closes', async () => {
    const windowMs = 15_000;
    const server = await serve(windowMs, 'vncgate (drain, sessions end)');
    expect((await get(server, '/readyz')).status).toBe(200);
    const sessions = await openSessions(server);
    // Connections that are not sessions must not hold the process: one idle after a keep-alive
    // request, one that completed TLS and never sent a request.
    const keepAlive = new Agent({ keepAlive: true, ca: pki.ca.cert.pem });
    expect((await get(server, '/healthz', 5_000, keepAlive)).status).toBe(200);
    const [host, port] = [server.listening[0]!.replace(/:\d+$/, ''), Number(/:(\d+)$/.exec(server.listening[0]!)![1])];
    const silent = tlsConnect({ host, port, ca: pki.ca.cert.pem, servername: 'localhost' });
    const silentClosed = new Promise<void>((resolve) => silent.once('close', () => resolve()));
    silent.on('error', () => undefined);
    await new Promise<void>((resolve) => silent.once('secureConnect', () => resolve()));

    const t0 = performance.now();
    server.process.signal('SIGTERM');
    const notReadyMs = await msUntilNotReady(server, t0);

    // A new console is told why, and its link still works elsewhere.
    const token = await mint();
    const refused = await wsRfbConnect(`${server.wsBase}/websockify?token=${token}`, { ca: pki.ca.cert.pem, timeoutMs: 10_000 });
    expect(refused).toMatchObject({ ok: false, serverReason: SHUTDOWN.reason, closeCode: SHUTDOWN.wsClose });
    await expect(tokens.consume(token)).resolves.toMatchObject({ target: { port: vnc.port } });

    // The established ones keep exchanging updates through the drain.
    const before = sessions.map((s) => s.updates());
    await sleep(1_000);
    sessions.forEach((s, i) => expect(s.updates(), `session ${i}`).toBeGreaterThan(before[i]! + 5));
    const kept = sessions.filter((s) => s.ws.readyState === s.ws.OPEN).length;
    expect(kept).toBe(SESSIONS);

    const closing = performance.now();
    for (const s of sessions) s.ws.close(1000);
    const exit = await server.process.exited;
    const exitMs = performance.now() - t0;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(exitMs).toBeLessThan(windowMs - 5_000);
    await silentClosed;
    keepAlive.destroy();
    expect(drainLine(server)).toMatchObject({ sessions: SESSIONS, ended: SESSIONS, closed: 0, cutShort: false });
    console.log(
      `[issue 15] drain, sessions end by themselves: /readyz 503 ${notReadyMs.toFixed(0)} ms after SIGTERM; ${kept}/${SESSIONS} sessions kept working; ` +
        `exit ${(performance.now() - closing).toFixed(0)} ms after the last close, ${exitMs.toFixed(0)} ms after SIGTERM (window ${windowMs} ms)`,
    );
  });

  it('closes the sessions still open at the deadline with the restarting reason, then exits', async () => {
    const windowMs = 3_000;
    const server = await serve(windowMs, 'vncgate (drain, deadline)');
    const sessions = await openSessions(server);
    const t0 = performance.now();
    server.process.signal('SIGTERM');
    await sleep(1_000);
    const midway = sessions.map((s) => s.updates());
    await sleep(1_000);
    sessions.forEach((s, i) => expect(s.updates(), `session ${i}`).toBeGreaterThan(midway[i]!));

    const closes = await Promise.all(sessions.map((s) => s.closed));
    for (const c of closes) expect(c).toMatchObject({ code: SHUTDOWN.wsClose, reason: SHUTDOWN.reason });
    const exit = await server.process.exited;
    const exitMs = performance.now() - t0;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Math.min(...closes.map((c) => c.atMs - t0))).toBeGreaterThan(windowMs - 500);
    expect(exitMs).toBeLessThan(windowMs + 5_000);
    expect(drainLine(server)).toMatchObject({ sessions: SESSIONS, ended: 0, closed: SESSIONS, cutShort: false });
    console.log(
      `[issue 15] drain, deadline: sessions closed ${Math.min(...closes.map((c) => c.atMs - t0)).toFixed(0)}–${Math.max(...closes.map((c) => c.atMs - t0)).toFixed(0)} ms after SIGTERM; ` +
        `exit ${exitMs.toFixed(0)} ms after SIGTERM (window ${windowMs} ms)`,
    );
  });

  it('a second SIGTERM closes every session at once and exits', async () => {
    const server = await serve(60_000, 'vncgate (drain, second signal)');
    const sessions = await openSessions(server);
    server.process.signal('SIGTERM');
    await msUntilNotReady(server, performance.now());
    expect(sessions.every((s) => s.ws.readyState === s.ws.OPEN)).toBe(true);
    const t0 = performance.now();
    server.process.signal('SIGTERM');
    const closes = await Promise.all(sessions.map((s) => s.closed));
    for (const c of closes) expect(c).toMatchObject({ code: SHUTDOWN.wsClose, reason: SHUTDOWN.reason });
    const exit = await server.process.exited;
    const exitMs = performance.now() - t0;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(exitMs).toBeLessThan(5_000);
    expect(drainLine(server)).toMatchObject({ sessions: SESSIONS, closed: SESSIONS, cutShort: true });
    console.log(`[issue 15] second SIGTERM: exit ${exitMs.toFixed(0)} ms after it`);
  });
});

describe('fleet soak: a readiness grace before the drain', () => {
  it('with shutdown.readinessGraceMs, /readyz answers 503 at once but consoles are still opened until the grace ends; then refused, and the drain runs its course', async () => {
    const graceMs = 3_000;
    const server = await serve(15_000, 'vncgate (readiness grace)', { VNCGATE_READINESS_GRACE_MS: String(graceMs) });
    const before = await openPumped(server);
    const t0 = performance.now();
    server.process.signal('SIGTERM');
    const notReadyMs = await msUntilNotReady(server, t0);
    // A console a load balancer still sends during the grace works, its updates flowing.
    const during = await openPumped(server);
    const openedMs = performance.now() - t0;
    await expect.poll(() => during.updates(), { timeout: 10_000 }).toBeGreaterThan(3);
    // Once the grace is over, new consoles are refused with the reason (the token stays usable).
    let refusedMs = 0;
    await expect
      .poll(
        async () => {
          const token = await mint();
          const r = await wsRfbConnect(`${server.wsBase}/websockify?token=${token}`, { ca: pki.ca.cert.pem, timeoutMs: 10_000 });
          if (r.ok) {
            r.ws.close(1000);
            return 'accepted';
          }
          refusedMs = performance.now() - t0;
          await expect(tokens.consume(token)).resolves.toMatchObject({ target: { port: vnc.port } });
          return r.serverReason;
        },
        { timeout: graceMs + 10_000, interval: 200 },
      )
      .toBe(SHUTDOWN.reason);
    expect(refusedMs).toBeGreaterThanOrEqual(graceMs);
    const counts = [before.updates(), during.updates()];
    await sleep(500);
    [before, during].forEach((s, i) => expect(s.updates(), `session ${i}`).toBeGreaterThan(counts[i]!));
    for (const s of [before, during]) s.ws.close(1000);
    expect(await server.process.exited).toEqual({ code: 0, signal: null });
    expect(server.logLines().some((l) => l.includes('"leaving the load balancer'))).toBe(true);
    // A probe console accepted just before the grace ended may still have been closing when the drain began.
    const summary = drainLine(server);
    expect(summary).toMatchObject({ closed: 0, cutShort: false });
    expect(summary.ended).toBe(summary.sessions);
    expect(summary.sessions).toBeGreaterThanOrEqual(2);
    console.log(
      `[fleet soak] readiness grace ${graceMs} ms: /readyz 503 ${notReadyMs.toFixed(0)} ms after SIGTERM; a console opened ${openedMs.toFixed(0)} ms after it; ` +
        `new consoles refused from ${refusedMs.toFixed(0)} ms`,
    );
  });
});

describe('issue 15: /readyz while Redis hangs', () => {
  it('says so within its deadline: 503 with health.readinessChecksTokenStore, 200 naming the store state without it; ready again once Redis is back', async () => {
    const checking = await serve(0, 'vncgate (readyz outage, checks the store)', { VNCGATE_READINESS_CHECKS_TOKEN_STORE: 'true' });
    const lenient = await serve(0, 'vncgate (readyz outage, default)');
    for (const server of [checking, lenient]) expect(JSON.parse((await get(server, '/readyz')).body)).toEqual({ status: 'ready', tokenStore: 'redis', tokenStoreReady: true });
    redis.pause();
    const figures: number[] = [];
    try {
      for (let i = 0; i < 6; i++) {
        const [r, l] = await Promise.all([get(checking, '/readyz'), get(lenient, '/readyz')]);
        expect(r.status).toBe(503);
        expect(JSON.parse(r.body)).toMatchObject({ error: { code: 'TOKEN_ERR_STORE_UNAVAILABLE' }, tokenStore: 'redis', tokenStoreReady: false });
        // The default: still in the load balancer (new consoles get "try again shortly"), and monitoring still sees the store down.
        expect(l.status).toBe(200);
        expect(JSON.parse(l.body)).toEqual({ status: 'ready', tokenStore: 'redis', tokenStoreReady: false, tokenStoreError: 'TOKEN_ERR_STORE_UNAVAILABLE' });
        figures.push(r.ms, l.ms);
        await sleep(500);
      }
    } finally {
      redis.resume();
    }
    console.log(`[issue 15] /readyz during a Redis hang (checking, default): ${figures.map((ms) => ms.toFixed(0)).join(', ')} ms`);
    // The deadline is 400 ms; the margin is for a loaded machine (a probe's default timeout is 1 s).
    for (const ms of figures) expect(ms).toBeLessThan(900);
    await expect.poll(async () => (await get(checking, '/readyz')).status, { timeout: 15_000, interval: 250 }).toBe(200);
    await expect.poll(async () => JSON.parse((await get(lenient, '/readyz')).body).tokenStoreReady, { timeout: 15_000, interval: 250 }).toBe(true);
    await checking.stop();
    await lenient.stop();
  });
});
