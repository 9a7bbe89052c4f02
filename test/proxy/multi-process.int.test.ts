/**
 * Two `vncgate serve` processes sharing one real redis-server, in front of one real Xvnc
 * (VncAuth, password from the backend profile). What an operator running several replicas relies
 * on: a console token is single-use across processes (Redis GETDEL), revocation and expiry are
 * seen by every process, and a Redis outage fails new sessions fast with a reason while sessions
 * already running carry on; service resumes by itself when Redis is back. Tokens are minted and
 * revoked with the real `vncgate token` CLI; the browser side is played by wsRfbConnect.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerInit } from '../../src/rfb/index.js';
import { runVncgate } from '../support/cli.js';
import { stopAll } from '../support/proc.js';
import { startRedisServer, type RedisServer } from '../support/redis.js';
import { startVncgateServe, type VncgateServe } from '../support/vncgate-process.js';
import { wsRfbConnect, type WsRfbResult } from '../support/ws-rfb-client.js';
import { startXvnc, type XvncServer } from '../support/xvnc.js';

const DESKTOP_NAME = 'vncgate-multi-desktop';
/** src/errors.ts reasons, as the browser receives them in the RFB SecurityResult. */
const USED_LINK_REASON = 'This console link has expired or was already used - request a new one';
const UNAVAILABLE_REASON = 'The console service is temporarily unavailable - try again shortly';
/** src/errors.ts close codes: TOKEN_ERR_INVALID, TOKEN_ERR_STORE_UNAVAILABLE. */
const CLOSE_TOKEN_INVALID = 4403;
const CLOSE_TRY_AGAIN = 1013;
const ROUNDS = 20;

type Minted = { token: string; url: string; expiresAt: string };
type Connected = Extract<WsRfbResult, { ok: true }>;

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** README "Logs": the first 12 hex digits of the token's SHA-256. */
const tokenLogId = (token: string): string => sha256(token).slice(0, 12);

function closeWs(ws: WebSocket, timeoutMs = 3_000): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      ws.terminate();
      resolve();
    }, timeoutMs);
    ws.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    ws.close(1000);
  });
}

/**
 * Sends a non-incremental FramebufferUpdateRequest (RFC 6143 §7.5.3) for a `size`×`size` square
 * at the origin through a running session and resolves once the whole FramebufferUpdate (§7.6.1)
 * has come back. No SetEncodings was sent, so every rectangle must be Raw (§7.7.1).
 */
function roundTripFramebuffer(ws: WebSocket, init: ServerInit, size = 64, timeoutMs = 5_000): Promise<{ rects: number; area: number }> {
  const bytesPerPixel = init.pixelFormat.bitsPerPixel / 8;
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (f: () => void): void => {
      clearTimeout(timer);
      ws.off('message', onMessage);
      ws.off('close', onClose);
      f();
    };
    const timer = setTimeout(() => done(() => reject(new Error(`no FramebufferUpdate within ${timeoutMs} ms (${buf.length} bytes so far)`))), timeoutMs);
    const onClose = (code: number): void => done(() => reject(new Error(`session closed (${code}) while waiting for a FramebufferUpdate`)));
    const onMessage = (data: Buffer): void => {
      buf = Buffer.concat([buf, data]);
      if (buf.length < 4) return;
      if (buf[0] !== 0) return done(() => reject(new Error(`expected FramebufferUpdate (type 0), got message type ${String(buf[0])}`)));
      const rects = buf.readUInt16BE(2);
      let at = 4;
      let area = 0;
      for (let i = 0; i < rects; i++) {
        if (buf.length < at + 12) return;
        const w = buf.readUInt16BE(at + 4);
        const h = buf.readUInt16BE(at + 6);
        const encoding = buf.readInt32BE(at + 8);
        if (encoding !== 0) return done(() => reject(new Error(`rectangle ${i} has encoding ${encoding}, but only Raw was allowed`)));
        at += 12 + w * h * bytesPerPixel;
        area += w * h;
      }
      if (buf.length < at) return;
      done(() => resolve({ rects, area }));
    };
    ws.on('message', onMessage);
    ws.on('close', onClose);
    const req = Buffer.alloc(10);
    req.writeUInt8(3, 0); // FramebufferUpdateRequest
    req.writeUInt8(0, 1); // non-incremental: the server must send the area now
    req.writeUInt16BE(0, 2);
    req.writeUInt16BE(0, 4);
    req.writeUInt16BE(size, 6);
    req.writeUInt16BE(size, 8);
    ws.send(req);
  });
}

/** /readyz's status and what it says of the token store. */
async function readiness(server: VncgateServe): Promise<[number, boolean]> {
  const res = await fetch(`${server.origin}/readyz`, { signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as { tokenStoreReady?: boolean };
  return [res.status, body.tokenStoreReady === true];
}

describe('two vncgate processes sharing one Redis', () => {
  let redis: RedisServer;
  let xvnc: XvncServer;
  let a: VncgateServe;
  let b: VncgateServe;
  let dir: string;
  let env: Record<string, string>;
  /** Every token minted in this file, and those a vncgate process was shown. */
  const minted: string[] = [];
  const presented = new Set<string>();
  const openSockets = new Set<WebSocket>();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vncgate-multi-'));
    redis = await startRedisServer();
    xvnc = await startXvnc({ securityTypes: ['VncAuth'], desktopName: DESKTOP_NAME, geometry: '800x600' });
    if (xvnc.password === undefined) throw new Error('Xvnc VncAuth without a password');
    const passwordFile = join(dir, 'xvnc.pw');
    await writeFile(passwordFile, `${xvnc.password}\n`, { mode: 0o600 });
    const configFile = join(dir, 'vncgate.yaml');
    await writeFile(
      configFile,
      ['backends:', '  allowedTargets: ["127.0.0.0/8", "::1/128"]', '  profiles:', '    xvnc:', '      security: [vncauth]', `      passwordFile: ${JSON.stringify(passwordFile)}`, ''].join('\n'),
    );
    env = { VNCGATE_CONFIG: configFile, VNCGATE_PLAIN_HTTP: 'true', VNCGATE_REDIS_URL: redis.url };
    [a, b] = await Promise.all([startVncgateServe({ env, name: 'vncgate A' }), startVncgateServe({ env, name: 'vncgate B' })]);
    expect(a.origin).not.toBe(b.origin);
  });

  afterAll(async () => {
    for (const ws of openSockets) ws.terminate();
    await stopAll();
    await redis?.dispose();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  async function mint(...args: string[]): Promise<Minted[]> {
    const r = await runVncgate(['token', 'create', '--target', `127.0.0.1:${xvnc.port}`, '--profile', 'xvnc', ...args], {
      env: { ...env, VNCGATE_PUBLIC_URL: a.baseUrl, VNCGATE_LOG_LEVEL: 'warn' },
      timeoutMs: 20_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const out = r.json as Minted[];
    for (const m of out) minted.push(m.token);
    return out;
  }

  async function connect(server: VncgateServe, token: string): Promise<WsRfbResult> {
    presented.add(token);
    const r = await wsRfbConnect(`${server.wsBase}/websockify?token=${encodeURIComponent(token)}`, { origin: server.origin, timeoutMs: 10_000 });
    if (r.ok) openSockets.add(r.ws);
    return r;
  }

  async function expectConnected(r: WsRfbResult): Promise<Connected> {
    expect(r).toMatchObject({ ok: true, init: { name: DESKTOP_NAME, width: 800, height: 600 } });
    if (!r.ok) throw new Error('not connected');
    return r;
  }

  function expectRefused(r: WsRfbResult, reason: string, closeCode: number): void {
    expect(r).toMatchObject({ ok: false, serverReason: reason, closeCode });
  }

  it(`each token opens exactly one session when both processes get it at once (${ROUNDS} tokens)`, async () => {
    const tokens = await mint('--count', String(ROUNDS));
    expect(tokens).toHaveLength(ROUNDS);
    const wins = { A: 0, B: 0 };
    for (const { token } of tokens) {
      const [ra, rb] = await Promise.all([connect(a, token), connect(b, token)]);
      const winners = [ra, rb].filter((r) => r.ok);
      expect(winners, `token …${tokenLogId(token)}: A ${JSON.stringify({ ...ra, ws: undefined })}, B ${JSON.stringify({ ...rb, ws: undefined })}`).toHaveLength(1);
      const [won, lost] = ra.ok ? [ra, rb] : [rb, ra];
      wins[ra.ok ? 'A' : 'B'] += 1;
      const session = await expectConnected(won);
      expectRefused(lost, USED_LINK_REASON, CLOSE_TOKEN_INVALID);
      await closeWs(session.ws);
    }
    expect(wins.A + wins.B).toBe(ROUNDS);
    console.log(`single-use race over ${ROUNDS} tokens: A won ${wins.A}, B won ${wins.B}`);

    // The logs agree: one "session started" per token, over both processes together.
    const started = (token: string): number =>
      [a, b].flatMap((s) => s.logLines()).filter((l) => l.includes('"session started"') && l.includes(`"tokenId":"${tokenLogId(token)}"`)).length;
    for (const { token } of tokens) await expect.poll(() => started(token), { timeout: 5_000 }).toBe(1);
  });

  it('a token revoked with the CLI is refused by both processes', async () => {
    const [revoked, kept] = await mint('--count', '2');
    if (revoked === undefined || kept === undefined) throw new Error('mint returned fewer tokens');
    const r = await runVncgate(['token', 'revoke', revoked.token], { env: { ...env, VNCGATE_LOG_LEVEL: 'warn' }, timeoutMs: 20_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toEqual([{ revoked: true }]);
    expectRefused(await connect(a, revoked.token), USED_LINK_REASON, CLOSE_TOKEN_INVALID);
    expectRefused(await connect(b, revoked.token), USED_LINK_REASON, CLOSE_TOKEN_INVALID);
    const again = await runVncgate(['token', 'revoke', revoked.token], { env: { ...env, VNCGATE_LOG_LEVEL: 'warn' }, timeoutMs: 20_000 });
    expect(again.json).toEqual([{ revoked: false }]);
    // Only that token: its sibling still opens the console.
    const session = await expectConnected(await connect(b, kept.token));
    await closeWs(session.ws);
  });

  it('an expired token is refused by both processes', async () => {
    const [short] = await mint('--ttl', '1');
    if (short === undefined) throw new Error('mint returned no token');
    // README: keys are <prefix>tok:<sha256 of token>, with Redis' own expiry.
    const key = `vncgate:tok:${sha256(short.token)}`;
    const direct = new Redis(redis.url, { maxRetriesPerRequest: 1, connectTimeout: 2_000, commandTimeout: 2_000 });
    try {
      const pttl = await direct.pttl(key);
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(1_000);
      await expect.poll(() => direct.exists(key), { timeout: 5_000, interval: 50 }).toBe(0);
    } finally {
      direct.disconnect();
    }
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(short.expiresAt));
    expectRefused(await connect(a, short.token), USED_LINK_REASON, CLOSE_TOKEN_INVALID);
    expectRefused(await connect(b, short.token), USED_LINK_REASON, CLOSE_TOKEN_INVALID);
  });

  it('a Redis outage fails new sessions fast with a reason, running sessions carry on, and service resumes', async () => {
    const [forRunning, forOutage] = await mint('--count', '2');
    if (forRunning === undefined || forOutage === undefined) throw new Error('mint returned fewer tokens');
    const running = await expectConnected(await connect(a, forRunning.token));
    expect(await roundTripFramebuffer(running.ws, running.init)).toMatchObject({ area: 64 * 64 });

    await redis.stop();

    for (const server of [a, b]) {
      const t0 = performance.now();
      expectRefused(await connect(server, forOutage.token), UNAVAILABLE_REASON, CLOSE_TRY_AGAIN);
      expect(performance.now() - t0, `${server.name} took too long to refuse`).toBeLessThan(5_000);
    }
    // Both replicas stay in the load balancer (health.readinessChecksTokenStore is off by default),
    // so new users get the reason above rather than refused connections; /readyz still names the outage.
    expect(await Promise.all([readiness(a), readiness(b)])).toEqual([
      [200, false],
      [200, false],
    ]);
    // The session opened before the outage still relays both ways.
    expect(await roundTripFramebuffer(running.ws, running.init)).toMatchObject({ area: 64 * 64 });
    expect(running.ws.readyState).toBe(WebSocket.OPEN);

    await redis.start(); // same port; empty (no persistence)
    for (const server of [a, b]) await expect.poll(() => readiness(server), { timeout: 20_000, interval: 200 }).toEqual([200, true]);

    const [forA, forB] = await mint('--count', '2');
    if (forA === undefined || forB === undefined) throw new Error('mint returned fewer tokens');
    const [ra, rb] = await Promise.all([connect(a, forA.token), connect(b, forB.token)]);
    const sessions = [await expectConnected(ra), await expectConnected(rb)];
    expect(await roundTripFramebuffer(running.ws, running.init)).toMatchObject({ area: 64 * 64 });
    for (const s of [running, ...sessions]) await closeWs(s.ws);
  });

  it('neither process ever logs a token', async () => {
    await Promise.all([a.stop(), b.stop()]);
    for (const server of [a, b]) expect(server.process.exitInfo, `${server.name} exit`).toEqual({ code: 0, signal: null });
    const lines = [a, b].flatMap((s) => s.logLines().map((line) => ({ server: s.name, line })));
    // The search means something only if the sessions were logged: every presented token's id is there.
    const logged = lines.map((l) => l.line).join('\n');
    const unlogged = [...presented].filter((t) => !logged.includes(`"tokenId":"${tokenLogId(t)}"`));
    expect(unlogged.map(tokenLogId)).toEqual([]);
    expect(minted.length).toBeGreaterThanOrEqual(ROUNDS + 7);

    const leaks = lines.filter(
      ({ line }) =>
        minted.some((t) => line.includes(t) || line.includes(encodeURIComponent(t))) || line.includes('token=') || /token%3d/i.test(line),
    );
    expect(leaks).toEqual([]);
  });
});
