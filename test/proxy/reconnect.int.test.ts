/**
 * Issue 18 item 3, end to end: two real `vncgate serve` replicas sharing a real redis-server, a
 * real Xvnc behind them, and a WebSocket client playing vncgate's console page (the vncgate.v1
 * channel and a `vncgate.key.*` subprotocol). A session's grant arrives on the channel; once the
 * client's socket is cut, the grant opens the console again on the other replica, once, only
 * from the same address with the same key; a second use and a use after the grace window are
 * refused; a replica stopping leaves a grant the user can take to the other one; grants and keys
 * never reach a log or the audit file, and the audit says which session a reconnect continues.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors.js';
import { createTokenStore, generateGrant, type TokenStore } from '../../src/tokens/index.js';
import { stopAll } from '../support/proc.js';
import { startRedisServer, type RedisServer } from '../support/redis.js';
import { startVncgateServe, type VncgateServe } from '../support/vncgate-process.js';
import { wsRfbConnect, type WsRfbResult } from '../support/ws-rfb-client.js';
import { startXvnc, type XvncServer } from '../support/xvnc.js';

const GRACE_SECONDS = 5;

describe('issue 18: reconnect grants through real vncgate replicas and Redis', () => {
  let redis: RedisServer;
  let xvnc: XvncServer;
  let a: VncgateServe;
  let b: VncgateServe;
  let store: TokenStore;
  let dir: string;
  let auditFile: string;
  const secrets: string[] = [];

  beforeAll(async () => {
    redis = await startRedisServer();
    xvnc = await startXvnc({ securityTypes: ['None'], desktopName: 'reconnect-desktop', geometry: '320x240' });
    dir = await mkdtemp(join(tmpdir(), 'vncgate-reconnect-'));
    auditFile = join(dir, 'audit.jsonl');
    const config = join(dir, 'vncgate.yaml');
    await writeFile(config, ['reconnect:', `  graceSeconds: ${GRACE_SECONDS}`, 'audit:', `  file: ${JSON.stringify(auditFile)}`, ''].join('\n'));
    const env = { VNCGATE_PLAIN_HTTP: 'true', VNCGATE_REDIS_URL: redis.url, VNCGATE_ALLOWED_TARGETS: '127.0.0.1/32' };
    [a, b] = await Promise.all([
      startVncgateServe({ env, args: ['--config', config], name: 'replica a' }),
      startVncgateServe({ env, args: ['--config', config], name: 'replica b' }),
    ]);
    store = createTokenStore({ redisUrl: redis.url });
    await store.ready();
  }, 60_000);

  afterAll(async () => {
    await store?.close();
    await stopAll();
    await xvnc?.stop();
    await redis?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Opens a console as the page would; resolves with the result and the grant it was sent (if any). */
  async function open(replica: VncgateServe, query: string, key: string, localAddress = '127.0.0.1'): Promise<{ r: WsRfbResult; grant: Promise<string>; messages: { type: string }[] }> {
    const messages: { type: string }[] = [];
    let got: (g: string) => void = () => undefined;
    const grant = new Promise<string>((resolve) => (got = resolve));
    const r = await wsRfbConnect(`${replica.wsBase}/websockify?${query}`, {
      origin: replica.origin,
      protocols: ['vncgate.v1', 'binary', `vncgate.key.${key}`],
      localAddress,
      timeoutMs: 15_000,
      onText: (text) => {
        const m = JSON.parse(text) as { type: string; grant?: string; ttlSeconds?: number };
        messages.push(m);
        if (m.type === 'reconnect' && typeof m.grant === 'string') {
          expect(m.ttlSeconds).toBe(GRACE_SECONDS);
          secrets.push(m.grant);
          got(m.grant);
        }
      },
    });
    return { r, grant, messages };
  }

  /** The network path dies: the client's TCP connection is destroyed without a close frame. */
  function cut(r: WsRfbResult): void {
    if (!r.ok) throw new Error('not connected');
    (r.ws as WebSocket & { _socket: { destroy(): void } })._socket.destroy();
  }

  const refused = ERROR_CODES.RECONNECT_ERR_INVALID;

  it('a dropped console reopens once with its grant, on another replica, from the same address and key only', async () => {
    const key = generateGrant();
    secrets.push(key);
    const t = await store.issue({ kind: 'static', host: '127.0.0.1', port: xvnc.port }, 60);
    secrets.push(t.token);
    const first = await open(a, `token=${t.token}`, key);
    expect(first.r).toMatchObject({ ok: true, protocol: 'vncgate.v1' });
    const grant = await first.grant;
    cut(first.r);
    await expect.poll(() => a.logLines().some((l) => l.includes('"session ended"') && l.includes('"browserCloseCode":1006')), { timeout: 10_000 }).toBe(true);

    // Another client address, or the right address without the page's key: refused, and not used up.
    const elsewhere = await open(b, `grant=${grant}`, key, '127.0.0.2');
    expect(elsewhere.r).toMatchObject({ ok: false, serverReason: refused.reason });
    const otherKey = await open(b, `grant=${grant}`, generateGrant());
    expect(otherKey.r).toMatchObject({ ok: false, serverReason: refused.reason });

    const again = await open(b, `grant=${grant}`, key);
    expect(again.r).toMatchObject({ ok: true, init: { name: 'reconnect-desktop' } });
    const next = await again.grant;
    expect(next).not.toBe(grant);

    const twice = await open(b, `grant=${grant}`, key);
    expect(twice.r).toMatchObject({ ok: false, serverReason: refused.reason });

    // The audit file says the second session continues the first.
    const firstId = JSON.parse(a.logLines().find((l) => l.includes('"session started"'))!).sessionId as string;
    await expect
      .poll(async () => (await readFile(auditFile, 'utf8').catch(() => '')).split('\n').filter((l) => l.includes('"session.started"') && l.includes(`"reconnectOf":"${firstId}"`)).length, { timeout: 10_000 })
      .toBe(1);

    // The grant of the reconnected session expires GRACE_SECONDS after its drop.
    cut(again.r);
    await expect.poll(() => b.logLines().some((l) => l.includes('"session ended"') && l.includes('"browserCloseCode":1006')), { timeout: 10_000 }).toBe(true);
    await sleep(GRACE_SECONDS * 1000 + 1_500);
    const late = await open(a, `grant=${next}`, key);
    expect(late.r).toMatchObject({ ok: false, serverReason: refused.reason });
  }, 60_000);

  it('a view-only link stays view-only through a reconnect', async () => {
    const key = generateGrant();
    const t = await store.issue({ kind: 'static', host: '127.0.0.1', port: xvnc.port }, 60, { policy: { viewOnly: true, clipboard: 'none' } });
    secrets.push(key, t.token);
    const first = await open(a, `token=${t.token}`, key);
    expect(first.messages.find((m) => m.type === 'policy')).toMatchObject({ viewOnly: true, clipboard: 'none' });
    const grant = await first.grant;
    // Used at once: whether or not replica a has seen the drop yet, the grant is good (a takeover).
    cut(first.r);
    const again = await open(b, `grant=${grant}`, key);
    expect(again.r.ok).toBe(true);
    expect(again.messages.find((m) => m.type === 'policy')).toMatchObject({ viewOnly: true, clipboard: 'none' });
    cut(again.r);
  }, 30_000);

  it('a policy end leaves no grant: the page closing the console on purpose (1000)', async () => {
    const key = generateGrant();
    const t = await store.issue({ kind: 'static', host: '127.0.0.1', port: xvnc.port }, 60);
    secrets.push(key, t.token);
    const s = await open(a, `token=${t.token}`, key);
    const grant = await s.grant;
    if (!s.r.ok) throw new Error('not connected');
    s.r.ws.close(1000);
    await expect.poll(() => a.logLines().some((l) => l.includes('"browserCloseCode":1000')), { timeout: 10_000 }).toBe(true);
    const again = await open(b, `grant=${grant}`, key);
    expect(again.r).toMatchObject({ ok: false, serverReason: refused.reason });
  }, 30_000);

  it('a replica that stops leaves a grant the page takes to the other replica', async () => {
    const key = generateGrant();
    const t = await store.issue({ kind: 'static', host: '127.0.0.1', port: xvnc.port }, 60);
    secrets.push(key, t.token);
    const s = await open(a, `token=${t.token}`, key);
    expect(s.r.ok).toBe(true);
    const grant = await s.grant;
    const text = a.logText;
    await a.stop();
    expect(text.call(a)).toContain('SESSION_ERR_SHUTDOWN');
    const again = await open(b, `grant=${grant}`, key);
    expect(again.r).toMatchObject({ ok: true, init: { name: 'reconnect-desktop' } });
    await again.grant;
  }, 30_000);

  it('no grant, page key or token in any log line or the audit file', async () => {
    const audit = await readFile(auditFile, 'utf8');
    for (const s of secrets) {
      for (const l of [...a.logLines(), ...b.logLines()]) expect(l).not.toContain(s);
      expect(audit).not.toContain(s);
    }
    expect(secrets.length).toBeGreaterThan(6);
  });
});
