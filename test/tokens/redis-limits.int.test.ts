import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { isVncgateError } from '../../src/errors.js';
import { hashToken, RedisTokenStore, type ConsoleTarget, type SlotRequest } from '../../src/tokens/index.js';
import { useSharedRedis } from '../support/redis-fixture.js';
import { rejectionCode } from './expect-code.js';

/** Limits shared by replicas through a real redis-server (issue 15 item 7): two stores, one prefix. */
const target: ConsoleTarget = { kind: 'static', host: '10.0.0.5', port: 5900 };
const KEY = 'target:10.0.0.5:5900';

const redis = useSharedRedis();

/** Two "replicas": stores on their own connections sharing one key prefix. */
async function replicas(): Promise<{ a: RedisTokenStore; b: RedisTokenStore; prefix: string }> {
  const prefix = `l${randomBytes(4).toString('hex')}:`;
  const make = (name: string) => {
    const store = new RedisTokenStore({ url: redis.server.url, keyPrefix: prefix, commandTimeoutMs: 500, connectionName: name });
    redis.cleanups.push(() => store.close());
    return store;
  };
  const a = make('vncgate-a');
  const b = make('vncgate-b');
  await Promise.all([a.ready(), b.ready()]);
  return { a, b, prefix };
}

const slots = (owner: string, limit = 2, ttlMs = 15_000, keys = [KEY]): SlotRequest => ({ keys, owner, limit, ttlMs });

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

describe('session slots across replicas', () => {
  it('a limit of 2 shared by two replicas refuses the third session on either', async () => {
    const { a, b } = await replicas();
    expect(await a.acquireSlots(slots('s1'))).toBe(true);
    expect(await b.acquireSlots(slots('s2'))).toBe(true);
    expect(await a.acquireSlots(slots('s3'))).toBe(false);
    expect(await b.acquireSlots(slots('s3'))).toBe(false);
    await a.releaseSlots([KEY], 's1');
    expect(await b.acquireSlots(slots('s3'))).toBe(true);
  });

  it('of 50 concurrent sessions on two replicas exactly the limit get in', async () => {
    const { a, b } = await replicas();
    const got = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).acquireSlots(slots(`s${i}`, 3))));
    expect(got.filter(Boolean)).toHaveLength(3);
  });

  it("a crashed replica's slot (never renewed) is free again after the lease TTL; a renewed one is kept", async () => {
    const { a, b, prefix } = await replicas();
    expect(await a.acquireSlots(slots('crashed', 2, 1_000))).toBe(true);
    expect(await b.acquireSlots(slots('alive', 2, 1_000))).toBe(true);
    expect(await b.acquireSlots(slots('new', 2, 1_000))).toBe(false);
    for (let i = 0; i < 5; i++) {
      await sleep(300);
      await b.renewSlots([KEY], 'alive', 1_000);
    }
    expect(await a.acquireSlots(slots('new', 2, 1_000))).toBe(true);
    expect(await a.acquireSlots(slots('another', 2, 1_000))).toBe(false);
    // The set expires with its newest lease; nothing is left behind.
    const ttl = await redis.admin.pttl(`${prefix}lim:${KEY}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1_000);
  });

  it('a consume that cannot take its slots leaves the token unused; of concurrent consumers one wins and holds one slot', async () => {
    const { a, b } = await replicas();
    const { token, record } = await a.issue(target, 60);
    expect(await a.acquireSlots(slots('holder', 1))).toBe(true);
    expect(await rejectionCode(b.consume(token, { slots: slots('s1', 1) }))).toBe('SESSION_ERR_TARGET_BUSY');
    await expect(b.peek(token)).resolves.toEqual(record);
    await a.releaseSlots([KEY], 'holder');

    const outcomes = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).consume(token, { slots: slots(`c${i}`, 5) })));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    expect(outcomes.every((o) => o.status === 'fulfilled' || (isVncgateError(o.reason) && o.reason.code === 'TOKEN_ERR_INVALID'))).toBe(true);
    // Only the winner took a slot: 4 of 5 remain.
    for (let i = 0; i < 4; i++) expect(await a.acquireSlots(slots(`later${i}`, 5))).toBe(true);
    expect(await a.acquireSlots(slots('one-too-many', 5))).toBe(false);
  });

  it('is refused while Redis is frozen, and works again by itself when it is back', async () => {
    const { a } = await replicas();
    redis.server.pause();
    try {
      expect(await rejectionCode(a.acquireSlots(slots('s1')))).toBe('TOKEN_ERR_STORE_UNAVAILABLE');
    } finally {
      redis.server.resume();
    }
    // The acquire given up on did not take a slot when Redis thawed (deadline), so both fit.
    await eventually(async () => expect(await a.acquireSlots(slots('s2'))).toBe(true), 15_000);
    expect(await a.acquireSlots(slots('s3'))).toBe(true);
    expect(await a.acquireSlots(slots('s4'))).toBe(false);
  });
});

/** Calls of `command` (eval, evalsha) the server has counted so far (INFO commandstats). */
async function commandCalls(command: string): Promise<number> {
  const info = await redis.admin.info('commandstats');
  const m = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info);
  return m ? Number(m[1]) : 0;
}

describe('one-session leases across replicas', () => {
  it('renew and release act only for the owner, and run as EVALSHA (script text sent at most once)', async () => {
    const { a, b, prefix } = await replicas();
    const evalBefore = await commandCalls('eval');
    const shaBefore = await commandCalls('evalsha');
    for (let i = 0; i < 10; i++) {
      const key = `lease-${i}`;
      expect(await a.acquireLease(key, 'owner', 15_000)).toBe(true);
      expect(await b.renewLease(key, 'intruder', 60_000)).toBe(false);
      expect(await b.renewLease(key, 'owner', 60_000)).toBe(true);
      expect(await redis.admin.pttl(`${prefix}lease:${hashToken(key)}`)).toBeGreaterThan(15_000);
      await b.releaseLease(key, 'intruder');
      expect(await a.acquireLease(key, 'other', 15_000)).toBe(false);
      await b.releaseLease(key, 'owner');
      expect(await a.acquireLease(key, 'other', 15_000)).toBe(true);
    }
    // 10 rounds × (2 renews + 2 releases) by script: without registration all 40 would be EVALs.
    // With it, at most the first of each (NOSCRIPT fallback) on each of the two connections.
    expect((await commandCalls('eval')) - evalBefore).toBeLessThanOrEqual(4);
    expect((await commandCalls('evalsha')) - shaBefore).toBeGreaterThanOrEqual(40);
  });
});

describe('invalid links per client address across replicas', () => {
  it('counts on both replicas, cools the address down on both, and refuses before using anything up', async () => {
    const { a, b, prefix } = await replicas();
    const { token } = await a.issue(target, 60);
    for (let i = 0; i < 4; i++) expect(await (i % 2 ? a : b).countInvalid('198.51.100.4', 4, 1_000)).toBe(false);
    expect(await b.coolingDown('198.51.100.4')).toBe(false);
    expect(await a.countInvalid('198.51.100.4', 4, 1_000)).toBe(true);
    expect(await b.coolingDown('198.51.100.4')).toBe(true);
    expect(await a.coolingDown('198.51.100.5')).toBe(false);
    expect(await rejectionCode(b.consume(token, { client: '198.51.100.4' }))).toBe('TOKEN_ERR_RATE_LIMITED');
    expect(await rejectionCode(a.peek(token, { client: '198.51.100.4' }))).toBe('TOKEN_ERR_RATE_LIMITED');
    // No key names the address.
    const keys = await redis.admin.keys(`${prefix}*`);
    expect(keys.join(' ')).not.toContain('198.51.100.4');
    // The cool-down ends by itself, and the link still works.
    await eventually(async () => expect(await a.coolingDown('198.51.100.4')).toBe(false), 5_000);
    await expect(b.consume(token, { client: '198.51.100.4' })).resolves.toBeDefined();
  });

  it('counts IPv6 clients by their /64 and IPv4-mapped IPv6 as IPv4, on both replicas', async () => {
    const { a, b } = await replicas();
    const { token } = await a.issue(target, 60);
    for (let i = 1; i <= 2; i++) expect(await (i % 2 ? a : b).countInvalid(`2001:db8:9:9::${i}`, 2, 5_000)).toBe(false);
    expect(await a.countInvalid('2001:db8:9:9:abcd::1', 2, 5_000)).toBe(true);
    expect(await b.coolingDown('2001:db8:9:9:1:2:3:4')).toBe(true);
    expect(await rejectionCode(b.consume(token, { client: '2001:db8:9:9::42' }))).toBe('TOKEN_ERR_RATE_LIMITED');
    expect(await rejectionCode(a.peek(token, { client: '2001:db8:9:9::43' }))).toBe('TOKEN_ERR_RATE_LIMITED');
    expect(await a.coolingDown('2001:db8:9:a::1')).toBe(false);
    for (let i = 0; i < 2; i++) expect(await b.countInvalid('::ffff:198.51.100.9', 2, 5_000)).toBe(false);
    expect(await a.countInvalid('198.51.100.9', 2, 5_000)).toBe(true);
    expect(await b.coolingDown('::ffff:198.51.100.9')).toBe(true);
  });
});
