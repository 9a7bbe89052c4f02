import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { hashToken, RedisTokenStore, type ConsoleTarget, type RedisTokenStoreOptions } from '../../src/tokens/index.js';
import { useSharedRedis } from '../support/redis-fixture.js';
import { rejectionCode } from './expect-code.js';

/** Requests the store gave up on while Redis was frozen must not act when it thaws (issue 15). */
const target: ConsoleTarget = { kind: 'static', host: 'bmc-7.example', port: 5900 };

const redis = useSharedRedis();

function makeStore(options: Partial<RedisTokenStoreOptions> = {}): { store: RedisTokenStore; prefix: string } {
  const prefix = `d${randomBytes(4).toString('hex')}:`;
  const store = new RedisTokenStore({ url: redis.server.url, keyPrefix: prefix, commandTimeoutMs: 500, ...options });
  redis.cleanups.push(() => store.close());
  return { store, prefix };
}

async function eventually<T>(fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(100);
    }
  }
}

/** How many times Redis has run EVALSHA so far (INFO commandstats), to know a late script did run. */
async function evalshaCalls(): Promise<number> {
  const info = await redis.admin.info('commandstats');
  return Number(/^cmdstat_evalsha:calls=(\d+)/m.exec(info)?.[1] ?? 0);
}

/**
 * Freezes Redis, runs `attempts` (each must fail as unavailable), thaws it, and waits until Redis
 * has surely run the `late` scripts they left in its socket buffer.
 */
async function whileFrozen(store: RedisTokenStore, attempts: (() => Promise<unknown>)[]): Promise<void> {
  await store.ready();
  const before = await evalshaCalls();
  redis.server.pause();
  try {
    for (const attempt of attempts) expect(await rejectionCode(attempt())).toBe('TOKEN_ERR_STORE_UNAVAILABLE');
  } finally {
    redis.server.resume();
  }
  await eventually(async () => expect(await evalshaCalls()).toBeGreaterThanOrEqual(before + attempts.length), 10_000);
  await eventually(() => store.ready(), 15_000);
}

describe('issue 15: deadlines in Redis scripts', () => {
  it('issue 15: a consume vncgate gave up on while Redis was frozen does not use the link up when Redis thaws', async () => {
    const { store, prefix } = makeStore();
    // Loads the script, so the frozen request is a single EVALSHA.
    await store.consume((await store.issue(target, 60)).token);
    const { token, record } = await store.issue(target, 60);

    await whileFrozen(store, [() => store.consume(token)]);

    // The late script ran and refused: the token is still there, and the link still works.
    expect(await redis.admin.exists(`${prefix}tok:${hashToken(token)}`)).toBe(1);
    await expect(store.consume(token)).resolves.toEqual(record);
    expect(await rejectionCode(store.consume(token))).toBe('TOKEN_ERR_INVALID');
  });

  it('a single-use claim or a one-session lease given up on is not taken later either', async () => {
    const { store } = makeStore();
    await store.claimOnce('warm-up', 60_000);
    await store.acquireLease('warm-up', 'x', 60_000);

    await whileFrozen(store, [() => store.claimOnce('ironic:node-1:tok', 60_000), () => store.acquireLease('ironic-node:node-1', 'session-a', 60_000)]);

    await expect(store.claimOnce('ironic:node-1:tok', 60_000)).resolves.toBe(true);
    await expect(store.acquireLease('ironic-node:node-1', 'session-b', 60_000)).resolves.toBe(true);
  });
});
