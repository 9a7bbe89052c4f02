import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/index.js';
import { createLogger } from '../../../src/log.js';
import { MemoryFloor } from '../../../tools/loadtest/meminfo.js';
import { runLoadtest } from '../../../tools/loadtest/runner.js';
import { RedisTokenSource } from '../../../tools/loadtest/token-source.js';
import { wsConnector } from '../../../tools/loadtest/ws-client.js';
import { buildServer, type VncgateServer } from '../../../src/proxy/server.js';
import { startSyntheticServer, type SyntheticServer } from '../../../tools/synthetic/index.js';
import { createTokenStore, type TokenStore } from '../../../src/tokens/index.js';
import { startRedisServer, type RedisServer } from '../../support/redis.js';

/** Tokens written straight into a real redis-server and consumed (GETDEL) by vncgate, once each. */
let redis: RedisServer;
let store: TokenStore;
let srv: VncgateServer;
let backend: SyntheticServer;

beforeAll(async () => {
  redis = await startRedisServer();
  backend = await startSyntheticServer({ mode: 'pingpong' });
  const config = loadConfig({
    env: {},
    overrides: { listen: ['127.0.0.1:0'], tls: { plainHttp: true }, redis: { url: redis.url }, backends: { allowedTargets: ['127.0.0.0/8', '::1/128'] }, log: { level: 'silent' } },
  });
  store = createTokenStore({ redisUrl: redis.url });
  await store.ready();
  srv = await buildServer({ config, tokens: store, log: createLogger({ level: 'silent' }) });
});
afterAll(async () => {
  await srv?.close();
  await store?.close();
  await backend?.close();
  await redis?.dispose();
});

describe('RedisTokenSource', () => {
  it('mints exactly one fresh token per session, before the clock starts', async () => {
    const tokens = new RedisTokenSource({ redisUrl: redis.url, target: { host: '127.0.0.1', port: backend.port }, ttlSeconds: 60 });
    const r = await runLoadtest({
      mode: 'setup',
      label: 'redis',
      connect: (token) => wsConnector({ url: `ws://${srv.addresses[0]}/websockify?token=${token ?? ''}`, timeoutMs: 5_000 }),
      tokens,
      sessions: 30,
      concurrency: 3,
      durationMs: 60_000,
      updatesPerSession: 1,
      pipeline: 1,
      security: ['none'],
      setupTimeoutMs: 5_000,
      updateTimeoutMs: 5_000,
      verify: true,
      memFloor: new MemoryFloor(0),
      sampler: null,
    });
    expect(r.errors).toEqual({});
    expect(r.sessions).toMatchObject({ established: 30, failed: 0 });
    expect(r.tokens).toMatchObject({ source: 'redis', minted: 30 });
  });
});
