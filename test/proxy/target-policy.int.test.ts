/**
 * Issue 15, end to end: a real `vncgate serve` whose target policy names only the BMC network
 * (10.0.0.0/8, so loopback is refused), with a real redis-server. The real `vncgate token create`
 * refuses loopback targets at issue time; a token that reached Redis anyway (issued by a replica
 * with another policy, or while its name pointed elsewhere) is refused at connect time, after
 * vncgate resolved the name itself, and the browser is told why in the RFB handshake.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors.js';
import { createTokenStore, type TokenStore } from '../../src/tokens/index.js';
import { runVncgate } from '../support/cli.js';
import { stopAll } from '../support/proc.js';
import { startRedisServer, type RedisServer } from '../support/redis.js';
import { startTinyVncServer } from '../support/tiny-vnc-server.js';
import { startVncgateServe, type VncgateServe } from '../support/vncgate-process.js';
import { wsRfbConnect } from '../support/ws-rfb-client.js';

describe('issue 15: the target policy in a running vncgate', () => {
  let redis: RedisServer;
  let backend: Awaited<ReturnType<typeof startTinyVncServer>>;
  let vncgate: VncgateServe;
  let store: TokenStore;
  let env: Record<string, string>;
  let accepted = 0;

  beforeAll(async () => {
    redis = await startRedisServer();
    backend = await startTinyVncServer({ name: 'not-a-bmc' });
    backend.server.on('connection', () => (accepted += 1));
    env = { VNCGATE_PLAIN_HTTP: 'true', VNCGATE_REDIS_URL: redis.url, VNCGATE_ALLOWED_TARGETS: '10.0.0.0/8' };
    vncgate = await startVncgateServe({ env });
    store = createTokenStore({ redisUrl: redis.url });
    await store.ready();
  });

  afterAll(async () => {
    await store?.close();
    await stopAll();
    await backend?.close();
    await redis?.dispose();
  });

  it('vncgate token create refuses loopback and the metadata address, and issues inside the policy', async () => {
    for (const target of [`localhost:${backend.port}`, `127.0.0.1:${redis.port}`, '169.254.169.254:80', '[::ffff:127.0.0.1]:5900']) {
      const r = await runVncgate(['token', 'create', '--target', target], { env: { ...env, VNCGATE_LOG_LEVEL: 'warn' }, timeoutMs: 20_000 });
      expect(r.code, `${target}: ${r.stderr}`).toBe(1);
      expect(r.stderr).toContain('TARGET_ERR_FORBIDDEN');
      expect(r.stdout).toBe('');
    }
    const ok = await runVncgate(['token', 'create', '--target', '10.1.2.3:5900'], { env: { ...env, VNCGATE_LOG_LEVEL: 'warn' }, timeoutMs: 20_000 });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.json).toHaveLength(1);
  });

  it('a token for "localhost" that reached Redis anyway is refused at connect time; the browser sees why', async () => {
    const t = await store.issue({ kind: 'static', host: 'localhost', port: backend.port }, 60);
    const before = accepted;
    const r = await wsRfbConnect(`${vncgate.wsBase}/websockify?token=${encodeURIComponent(t.token)}`, { origin: vncgate.origin, timeoutMs: 10_000 });
    expect(r).toMatchObject({ ok: false, serverReason: ERROR_CODES.TARGET_ERR_FORBIDDEN.reason, closeCode: ERROR_CODES.TARGET_ERR_FORBIDDEN.wsClose });
    expect(accepted).toBe(before);
    await expect
      .poll(() => vncgate.logLines().filter((l) => l.includes('"session ended"') && l.includes('"code":"TARGET_ERR_FORBIDDEN"')).length, { timeout: 5_000 })
      .toBe(1);
    // The log names what "localhost" resolved to, and never the token.
    const line = vncgate.logLines().find((l) => l.includes('"code":"TARGET_ERR_FORBIDDEN"'))!;
    expect(line).toContain('127.0.0.1');
    for (const l of vncgate.logLines()) expect(l).not.toContain(t.token);
  });
});
