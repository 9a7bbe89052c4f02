import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';
import { isVncgateError, type VncgateError } from '../../src/errors.js';
import {
  createTokenStore,
  generateToken,
  hashToken,
  RedisTokenStore,
  tokenLogId,
  type ConsoleTarget,
  type RedisTokenStoreOptions,
  type TokenStore,
  type TokenStoreLogger,
} from '../../src/tokens/index.js';
import { freeLoopbackPort } from '../support/redis.js';
import { useSharedRedis } from '../support/redis-fixture.js';
import { rejectionCode } from './expect-code.js';

const target: ConsoleTarget = { kind: 'static', host: 'bmc-7.example', port: 5900, profile: 'supermicro' };

const redis = useSharedRedis();

/** A store on the shared server with its own key prefix, closed after the test. */
function makeStore(options: Partial<RedisTokenStoreOptions> & { prefix?: string } = {}): RedisTokenStore {
  const { prefix, ...rest } = options;
  const store = new RedisTokenStore({ url: redis.server.url, keyPrefix: prefix ?? uniquePrefix(), ...rest });
  redis.cleanups.push(() => store.close());
  return store;
}

function uniquePrefix(): string {
  return `t${randomBytes(4).toString('hex')}:`;
}

async function scanKeys(pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  const deadline = Date.now() + 10_000;
  do {
    if (Date.now() > deadline) throw new Error('SCAN did not finish in time');
    const [next, batch] = await redis.admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

/** Retries `fn` until it resolves or `timeoutMs` passes; returns its value or throws its last error. */
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

async function rejection(promise: Promise<unknown>): Promise<VncgateError> {
  try {
    await promise;
  } catch (error) {
    if (isVncgateError(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

describe('RedisTokenStore against a real redis-server', () => {
  it('runs on a Redis with GETDEL (≥ 6.2)', async () => {
    const info = await redis.admin.info('server');
    const version = /redis_version:(\d+)\.(\d+)/.exec(info);
    expect(version).not.toBeNull();
    expect(Number(version![1]) * 100 + Number(version![2])).toBeGreaterThanOrEqual(602);
    // The helper's server: loopback only, nothing written to disk.
    expect(await redis.admin.config('GET', 'bind')).toEqual(['bind', '127.0.0.1']);
    expect(await redis.admin.config('GET', 'save')).toEqual(['save', '']);
    expect(await redis.admin.config('GET', 'appendonly')).toEqual(['appendonly', 'no']);
    const store = makeStore();
    await expect(store.ready()).resolves.toBeUndefined();
    expect(store.kind).toBe('redis');
  });

  it('issues, consumes once, and shares tokens between stores', async () => {
    const prefix = uniquePrefix();
    const a = makeStore({ prefix });
    const b = makeStore({ prefix });
    const issued = await a.issue(target, 60);
    expect(issued.record.target).toEqual(target);
    await expect(b.consume(issued.token)).resolves.toEqual(issued.record);
    expect(await rejectionCode(a.consume(issued.token))).toBe('TOKEN_ERR_INVALID');
    expect(await rejectionCode(b.consume(issued.token))).toBe('TOKEN_ERR_INVALID');
  });

  it('accepts a request made before the connection is ready (start-up wait)', async () => {
    const store = makeStore();
    const { token } = await store.issue(target, 60);
    await expect(store.consume(token)).resolves.toBeDefined();
  });

  it('lets exactly one of 200 concurrent consumers on two connections win, every time', async () => {
    const prefix = uniquePrefix();
    const a = makeStore({ prefix, connectionName: 'vncgate-test-a' });
    const b = makeStore({ prefix, connectionName: 'vncgate-test-b' });
    await Promise.all([a.ready(), b.ready()]);
    const clients = await redis.admin.client('LIST');
    expect(String(clients)).toContain('name=vncgate-test-a');
    expect(String(clients)).toContain('name=vncgate-test-b');

    const tokens = await a.issueMany(target, 60, 10);
    for (const { token, record } of tokens) {
      const outcomes = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a : b).consume(token)));
      const winners = outcomes.filter((o) => o.status === 'fulfilled');
      const losers = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
      expect(winners).toHaveLength(1);
      expect(winners[0]).toEqual({ status: 'fulfilled', value: record });
      expect(losers).toHaveLength(199);
      expect(losers.every((o) => isVncgateError(o.reason) && o.reason.code === 'TOKEN_ERR_INVALID')).toBe(true);
    }
  });

  it('stores under <prefix>tok:<sha256> with a PX TTL and expires tokens', async () => {
    const prefix = uniquePrefix();
    const store = makeStore({ prefix });
    const { token, record } = await store.issue(target, 0.4);
    const key = `${prefix}tok:${hashToken(token)}`;
    const pttl = await redis.admin.pttl(key);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(400);
    expect(JSON.parse((await redis.admin.get(key))!)).toEqual(record);
    await sleep(600);
    expect(await redis.admin.exists(key)).toBe(0);
    expect(await rejectionCode(store.consume(token))).toBe('TOKEN_ERR_INVALID');
  });

  it('revokes', async () => {
    const prefix = uniquePrefix();
    const a = makeStore({ prefix });
    const b = makeStore({ prefix });
    const { token } = await a.issue(target, 60);
    expect(await b.revoke(token)).toBe(true);
    expect(await a.revoke(token)).toBe(false);
    expect(await rejectionCode(a.consume(token))).toBe('TOKEN_ERR_INVALID');
    expect(await a.revoke(generateToken())).toBe(false);
    expect(await a.revoke('garbage')).toBe(false);
  });

  it('never sends or stores the raw token (SCAN of keys and values, MONITOR of all commands)', async () => {
    const prefix = uniquePrefix();
    const store = makeStore({ prefix });
    await store.ready();
    const monitor = await new Redis(redis.server.url).monitor();
    redis.cleanups.push(async () => monitor.disconnect());
    const seen: string[][] = [];
    monitor.on('monitor', (_time: string, args: string[]) => seen.push(args));

    const issued = await store.issueMany(target, 60, 5);
    const tokens = issued.map((i) => i.token);
    await store.consume(tokens[0]);
    expect(await store.revoke(tokens[1]!)).toBe(true);
    expect(await rejectionCode(store.consume(tokens[0]))).toBe('TOKEN_ERR_INVALID');

    const keys = await scanKeys(`${prefix}*`);
    expect(keys.sort()).toEqual(tokens.slice(2).map((t) => `${prefix}tok:${hashToken(t)}`).sort());
    for (const key of keys) {
      expect(key).toMatch(/^t[0-9a-f]{8}:tok:[0-9a-f]{64}$/);
      const value = (await redis.admin.get(key))!;
      expect(JSON.parse(value)).toEqual(issued[0]!.record);
      for (const t of tokens) expect(value).not.toContain(t);
    }

    // MONITOR output trails the commands; wait (bounded) until the last one has been seen.
    await eventually(async () => {
      if (seen.filter((args) => ['evalsha', 'eval'].includes(args[0]?.toLowerCase() ?? '')).length < 2) throw new Error('monitor lagging');
    }, 5_000);
    const wire = JSON.stringify(seen);
    expect(wire).toContain(hashToken(tokens[0]!));
    for (const t of tokens) expect(wire).not.toContain(t);
  });

  it('treats a corrupt record as invalid, deletes it and logs without the token', async () => {
    const prefix = uniquePrefix();
    const warn = vi.fn();
    const logger: TokenStoreLogger = { debug: () => {}, info: () => {}, warn };
    const store = makeStore({ prefix, logger });
    const corrupt = [
      'not json',
      '{"version":1}',
      JSON.stringify({ version: 1, target: { kind: 'static', host: 'h', port: 99999 }, issuedAt: new Date().toISOString(), expiresAt: new Date().toISOString() }),
      JSON.stringify({ version: 7, target, issuedAt: 'x', expiresAt: 'y' }),
    ];
    for (const value of corrupt) {
      const token = generateToken();
      const key = `${prefix}tok:${hashToken(token)}`;
      await redis.admin.set(key, value, 'PX', 60_000);
      const error = await rejection(store.consume(token));
      expect(error.code).toBe('TOKEN_ERR_INVALID');
      expect(error.details).toMatchObject({ reason: 'corrupt', tokenId: tokenLogId(token) });
      expect(await redis.admin.exists(key)).toBe(0);
      expect(JSON.stringify(warn.mock.lastCall)).not.toContain(token);
      expect(warn.mock.lastCall?.[0]).toMatchObject({ tokenId: tokenLogId(token) });
    }
    expect(warn).toHaveBeenCalledTimes(corrupt.length);
  });

  it('refuses bad input before touching Redis', async () => {
    // Nothing listens on this port: any Redis round trip would fail with TOKEN_ERR_STORE_UNAVAILABLE.
    const store = new RedisTokenStore({ url: `redis://127.0.0.1:${await freeLoopbackPort()}`, connectTimeoutMs: 500 });
    redis.cleanups.push(() => store.close());
    expect(await rejectionCode(store.consume('not-a-token'))).toBe('TOKEN_ERR_INVALID');
    expect(await rejectionCode(store.consume(`${generateToken()}x`))).toBe('TOKEN_ERR_INVALID');
    expect(await rejectionCode(store.consume(''))).toBe('TOKEN_ERR_MISSING');
    expect(await rejectionCode(store.consume(undefined))).toBe('TOKEN_ERR_MISSING');
    expect(await store.revoke('not-a-token')).toBe(false);
    expect(await rejectionCode(store.issue(target, 0))).toBe('HTTP_ERR_BAD_REQUEST');
    expect(await rejectionCode(store.issue(target, 86_401))).toBe('HTTP_ERR_BAD_REQUEST');
    expect(await rejectionCode(store.issue({ kind: 'node', node: '' }, 60))).toBe('HTTP_ERR_BAD_REQUEST');
    expect(await rejectionCode(store.issueMany(target, 60, 1001))).toBe('HTTP_ERR_BAD_REQUEST');
  });

  it('issueMany stores every token in one transaction', async () => {
    const prefix = uniquePrefix();
    const store = makeStore({ prefix });
    const issued = await store.issueMany({ kind: 'node', node: '1be26c0b-03f2-4d2e-ae87-c02d7f33c123' }, 120, 250);
    expect(new Set(issued.map((i) => i.token)).size).toBe(250);
    expect(await scanKeys(`${prefix}*`)).toHaveLength(250);
    const records = await Promise.all(issued.map((i) => store.consume(i.token)));
    expect(records.every((r) => r.target.kind === 'node')).toBe(true);
    expect(await scanKeys(`${prefix}*`)).toHaveLength(0);
  });

  it('createTokenStore gives a Redis store for a Redis URL', async () => {
    const store: TokenStore = createTokenStore({ redisUrl: redis.server.url, keyPrefix: uniquePrefix() });
    redis.cleanups.push(() => store.close());
    expect(store.kind).toBe('redis');
    const { token } = await store.issue(target, 60);
    await expect(store.consume(token)).resolves.toBeDefined();
  });

  it('fails with TOKEN_ERR_STORE_UNAVAILABLE after close', async () => {
    const store = makeStore();
    const { token } = await store.issue(target, 60);
    await store.close();
    await store.close();
    expect(await rejectionCode(store.consume(token))).toBe('TOKEN_ERR_STORE_UNAVAILABLE');
    expect(await rejectionCode(store.issue(target, 60))).toBe('TOKEN_ERR_STORE_UNAVAILABLE');
    expect(await rejectionCode(store.ready())).toBe('TOKEN_ERR_STORE_UNAVAILABLE');
  });

  it('fails fast when Redis is down at start-up', async () => {
    const store = new RedisTokenStore({ url: `redis://127.0.0.1:${await freeLoopbackPort()}`, connectTimeoutMs: 1_000 });
    redis.cleanups.push(() => store.close());
    const started = Date.now();
    expect(await rejectionCode(store.issue(target, 60))).toBe('TOKEN_ERR_STORE_UNAVAILABLE');
    expect(await rejectionCode(store.consume(generateToken()))).toBe('TOKEN_ERR_STORE_UNAVAILABLE');
    expect(await rejectionCode(store.ready())).toBe('TOKEN_ERR_STORE_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  // These two stop or freeze the shared server, so they run last.
  describe('outages', () => {
    it('rejects promptly while redis-server is stopped and recovers when it is back on the same port', async () => {
      const info = vi.fn();
      const warn = vi.fn();
      const store = makeStore({ commandTimeoutMs: 500, logger: { debug: () => {}, info, warn } });
      const before = await store.issue(target, 60);

      await redis.server.stop();
      try {
        for (const attempt of [() => store.consume(before.token), () => store.issue(target, 60), () => store.revoke(before.token)]) {
          const started = Date.now();
          expect(await rejectionCode(attempt())).toBe('TOKEN_ERR_STORE_UNAVAILABLE');
          expect(Date.now() - started).toBeLessThan(5_000);
        }
        // The first failures may come from writing to the dead socket before ioredis has seen
        // the close; the one warning follows the close.
        await eventually(async () => expect(warn).toHaveBeenCalledTimes(1), 5_000);
      } finally {
        await redis.server.start();
      }
      const after = await eventually(() => store.issue(target, 60), 15_000);
      await expect(store.consume(after.token)).resolves.toEqual(after.record);
      // No persistence on the test server: what was issued before the outage is gone.
      expect(await rejectionCode(store.consume(before.token))).toBe('TOKEN_ERR_INVALID');
      expect(info).toHaveBeenCalledWith(expect.objectContaining({ store: 'redis' }), 'Redis token store reconnected');
    });

    it('rejects promptly while redis-server is frozen, and a token is never consumed twice', async () => {
      const store = makeStore({ commandTimeoutMs: 500 });
      const { token } = await store.issue(target, 60);
      redis.server.pause();
      try {
        const started = Date.now();
        expect(await rejectionCode(store.consume(token))).toBe('TOKEN_ERR_STORE_UNAVAILABLE');
        expect(Date.now() - started).toBeLessThan(5_000);
      } finally {
        redis.server.resume();
      }
      await eventually(() => store.ready(), 15_000);
      // The consume given up on refuses to act once Redis thaws (issue 15, redis-deadline.int.test.ts);
      // whatever happens, the link is never used twice.
      expect(['RESOLVED', 'TOKEN_ERR_INVALID']).toContain(await rejectionCode(store.consume(token)));
      expect(await rejectionCode(store.consume(token))).toBe('TOKEN_ERR_INVALID');
      const fresh = await eventually(() => store.issue(target, 60), 15_000);
      await expect(store.consume(fresh.token)).resolves.toBeDefined();
    });
  });
});
