/**
 * One throw-away `redis-server` per test file, shared by its tests: each test makes its stores on
 * their own key prefix and registers them for closing after it. Registers the vitest hooks itself.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { startRedisServer, type RedisServer } from './redis.js';

export interface SharedRedis {
  /** The server (started in beforeAll). */
  readonly server: RedisServer;
  /** A plain client for looking at keys behind the store's back. */
  readonly admin: Redis;
  /** Run after each test (closing stores and clients it made). */
  readonly cleanups: (() => Promise<unknown>)[];
}

export function useSharedRedis(): SharedRedis {
  let server: RedisServer | undefined;
  let admin: Redis | undefined;
  const cleanups: (() => Promise<unknown>)[] = [];
  beforeAll(async () => {
    server = await startRedisServer();
    admin = new Redis(server.url, { maxRetriesPerRequest: 1, connectTimeout: 2_000, commandTimeout: 2_000 });
  });
  afterEach(async () => {
    await Promise.allSettled(cleanups.splice(0).map((fn) => fn()));
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.dispose();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('useSharedRedis: used before beforeAll ran');
    return value;
  };
  return {
    get server() {
      return started(server);
    },
    get admin() {
      return started(admin);
    },
    cleanups,
  };
}
