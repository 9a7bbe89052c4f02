import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe } from 'vitest';
import { RedisTokenStore, type GrantStore } from '../../src/tokens/index.js';
import { startRedisServer, type RedisServer } from '../support/redis.js';
import { grantStoreContract } from './grant-contract.js';

/** The grant store contract against a real redis-server (Lua scripts, Redis' own expiry). */
let server: RedisServer;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  server = await startRedisServer();
});
afterEach(async () => {
  await Promise.allSettled(cleanups.splice(0).map((fn) => fn()));
});
afterAll(async () => {
  await server?.dispose();
});

describe('redis grant store', () => {
  grantStoreContract(
    async (): Promise<GrantStore> => {
      const store = new RedisTokenStore({ url: server.url, keyPrefix: `g${randomBytes(4).toString('hex')}:`, commandTimeoutMs: 1000 });
      cleanups.push(() => store.close());
      await store.ready();
      return store.grants;
    },
    (ms) => sleep(ms),
    // Real time, in units of 100 ms.
    100,
  );
});
