import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createTokenStore,
  generateToken,
  hashToken,
  MemoryTokenStore,
  TOKEN_STORE_DEFAULTS,
  type ConsoleTarget,
  type MemoryTokenStoreOptions,
  type TokenStoreLogger,
} from '../../src/tokens/index.js';
import { rejectionCode } from './expect-code.js';

const target: ConsoleTarget = { kind: 'static', host: 'bmc.example', port: 5900, profile: 'idrac' };
const T0 = Date.UTC(2025, 5, 1, 12);

const stores: MemoryTokenStore[] = [];
function makeStore(options: MemoryTokenStoreOptions = {}): { store: MemoryTokenStore; clock: { now: number } } {
  const clock = { now: T0 };
  const store = new MemoryTokenStore({ now: () => clock.now, ...options });
  stores.push(store);
  return { store, clock };
}

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  vi.useRealTimers();
});

describe('MemoryTokenStore', () => {
  it('issues a token whose record names the target and expiry', async () => {
    const { store } = makeStore();
    const issued = await store.issue(target, 600);
    expect(store.kind).toBe('memory');
    expect(issued.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(issued.expiresAt).toBe('2025-06-01T12:10:00.000Z');
    expect(issued.record).toEqual({ version: 1, target, issuedAt: '2025-06-01T12:00:00.000Z', expiresAt: issued.expiresAt });
  });

  it('consumes a token exactly once', async () => {
    const { store } = makeStore();
    const { token, record } = await store.issue(target, 60);
    await expect(store.consume(token)).resolves.toEqual(record);
    expect(await rejectionCode(store.consume(token))).toBe('TOKEN_ERR_INVALID');
  });

  it('lets exactly one of 200 concurrent consumers win', async () => {
    const { store } = makeStore();
    const { token } = await store.issue(target, 60);
    const results = await Promise.all(Array.from({ length: 200 }, () => rejectionCode(store.consume(token))));
    expect(results.filter((r) => r === 'RESOLVED')).toHaveLength(1);
    expect(results.filter((r) => r === 'TOKEN_ERR_INVALID')).toHaveLength(199);
  });

  it('refuses a token once its TTL has passed', async () => {
    const { store, clock } = makeStore();
    const { token } = await store.issue(target, 10);
    clock.now = T0 + 9_999;
    const early = await store.issue(target, 10);
    clock.now = T0 + 10_000;
    expect(await rejectionCode(store.consume(token))).toBe('TOKEN_ERR_INVALID');
    await expect(store.consume(early.token)).resolves.toBeDefined();
  });

  it('revokes: true for a live token, false for unknown, used, expired or malformed ones', async () => {
    const { store, clock } = makeStore();
    const a = await store.issue(target, 60);
    const b = await store.issue(target, 1);
    const c = await store.issue(target, 60);
    expect(await store.revoke(a.token)).toBe(true);
    expect(await store.revoke(a.token)).toBe(false);
    expect(await rejectionCode(store.consume(a.token))).toBe('TOKEN_ERR_INVALID');
    await store.consume(c.token);
    expect(await store.revoke(c.token)).toBe(false);
    clock.now += 1_000;
    expect(await store.revoke(b.token)).toBe(false);
    expect(await store.revoke(generateToken())).toBe(false);
    expect(await store.revoke('not a token')).toBe(false);
    expect(await store.revoke('')).toBe(false);
  });

  it.each([undefined, null, ''])('reports %j as TOKEN_ERR_MISSING', async (token) => {
    const { store } = makeStore();
    expect(await rejectionCode(store.consume(token))).toBe('TOKEN_ERR_MISSING');
  });

  it.each(['x', 'A'.repeat(43), `${generateToken()}=`, generateToken().replace(/^./, '+')])(
    'reports malformed %j as TOKEN_ERR_INVALID',
    async (token) => {
      const { store } = makeStore();
      expect(await rejectionCode(store.consume(token))).toBe('TOKEN_ERR_INVALID');
    },
  );

  it.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY, TOKEN_STORE_DEFAULTS.maxTtlSeconds + 1])(
    'rejects TTL %s',
    async (ttl) => {
      const { store } = makeStore();
      expect(await rejectionCode(store.issue(target, ttl))).toBe('HTTP_ERR_BAD_REQUEST');
    },
  );

  it('honours a configured maximum TTL', async () => {
    const { store } = makeStore({ maxTtlSeconds: 300 });
    await expect(store.issue(target, 300)).resolves.toBeDefined();
    expect(await rejectionCode(store.issue(target, 301))).toBe('HTTP_ERR_BAD_REQUEST');
  });

  it('rejects an invalid target', async () => {
    const { store } = makeStore();
    const bad = { kind: 'static', host: 'h', port: 0 } as unknown as ConsoleTarget;
    expect(await rejectionCode(store.issue(bad, 60))).toBe('HTTP_ERR_BAD_REQUEST');
    expect(store.size).toBe(0);
  });

  it('issueMany issues distinct tokens and checks the count', async () => {
    const { store } = makeStore({ maxIssueCount: 50 });
    const many = await store.issueMany(target, 60, 50);
    expect(new Set(many.map((i) => i.token)).size).toBe(50);
    for (const { token } of many) await store.consume(token);
    for (const n of [0, -1, 1.5, 51]) expect(await rejectionCode(store.issueMany(target, 60, n))).toBe('HTTP_ERR_BAD_REQUEST');
  });

  it('is bounded: when full it fails with TOKEN_ERR_STORE_UNAVAILABLE and logs, after expiry it has room again', async () => {
    const warn = vi.fn();
    const logger: TokenStoreLogger = { debug: () => {}, info: () => {}, warn };
    const { store, clock } = makeStore({ maxTokens: 3, logger });
    await store.issueMany(target, 5, 2);
    expect(await rejectionCode(store.issueMany(target, 60, 2))).toBe('TOKEN_ERR_STORE_UNAVAILABLE');
    await store.issue(target, 60);
    expect(await rejectionCode(store.issue(target, 60))).toBe('TOKEN_ERR_STORE_UNAVAILABLE');
    expect(warn).toHaveBeenCalledTimes(2);
    clock.now += 5_000;
    await expect(store.issueMany(target, 60, 2)).resolves.toHaveLength(2);
    expect(store.size).toBe(3);
  });

  it('sweeps expired tokens on an unref-ed timer', async () => {
    vi.useFakeTimers({ now: T0 });
    const store = new MemoryTokenStore({ sweepIntervalMs: 1_000 });
    stores.push(store);
    await store.issue(target, 1);
    await store.issue(target, 3);
    expect(store.size).toBe(2);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(store.size).toBe(1);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(store.size).toBe(0);
  });

  it('keys its map by the token hash, never the raw token', async () => {
    const { store } = makeStore();
    const set = vi.spyOn(Map.prototype, 'set');
    const { token } = await store.issue(target, 60);
    const calls = set.mock.calls.slice();
    set.mockRestore();
    expect(calls).toHaveLength(1);
    expect(calls[0]?.[0]).toBe(hashToken(token));
    expect(JSON.stringify(calls)).not.toContain(token);
  });

  it('fails with TOKEN_ERR_STORE_UNAVAILABLE after close', async () => {
    const { store } = makeStore();
    const { token } = await store.issue(target, 60);
    await store.close();
    await store.close();
    expect(await rejectionCode(store.consume(token))).toBe('TOKEN_ERR_STORE_UNAVAILABLE');
    expect(await rejectionCode(store.issue(target, 60))).toBe('TOKEN_ERR_STORE_UNAVAILABLE');
    expect(await rejectionCode(store.ready())).toBe('TOKEN_ERR_STORE_UNAVAILABLE');
  });

  it('rejects nonsense options as CONFIG_ERR_INVALID', () => {
    expect(() => new MemoryTokenStore({ maxTokens: 0 })).toThrow(expect.objectContaining({ code: 'CONFIG_ERR_INVALID' }));
    expect(() => new MemoryTokenStore({ sweepIntervalMs: 1.5 })).toThrow(expect.objectContaining({ code: 'CONFIG_ERR_INVALID' }));
  });

  it('behaves like a set of single-use, expiring tokens under any sequence of operations', async () => {
    type Op =
      | { op: 'issue'; ttlMs: number }
      | { op: 'consume' | 'revoke'; pick: number }
      | { op: 'advance'; ms: number }
      | { op: 'garbage'; s: string };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ op: fc.constant('issue' as const), ttlMs: fc.integer({ min: 1, max: 5_000 }) }),
      fc.record({ op: fc.constantFrom('consume' as const, 'revoke' as const), pick: fc.nat() }),
      fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 3_000 }) }),
      fc.record({ op: fc.constant('garbage' as const), s: fc.string({ maxLength: 50 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
        const clock = { now: T0 };
        const store = new MemoryTokenStore({ now: () => clock.now });
        const model: { token: string; expiresAtMs: number; gone: boolean }[] = [];
        try {
          for (const o of ops) {
            switch (o.op) {
              case 'issue': {
                const { token } = await store.issue(target, o.ttlMs / 1000);
                model.push({ token, expiresAtMs: clock.now + o.ttlMs, gone: false });
                break;
              }
              case 'consume':
              case 'revoke': {
                const m = model[o.pick % Math.max(1, model.length)];
                if (m === undefined) break;
                const live = !m.gone && clock.now < m.expiresAtMs;
                m.gone = true;
                if (o.op === 'consume') {
                  expect(await rejectionCode(store.consume(m.token))).toBe(live ? 'RESOLVED' : 'TOKEN_ERR_INVALID');
                } else {
                  expect(await store.revoke(m.token)).toBe(live);
                }
                break;
              }
              case 'advance':
                clock.now += o.ms;
                break;
              case 'garbage':
                expect(['TOKEN_ERR_MISSING', 'TOKEN_ERR_INVALID']).toContain(await rejectionCode(store.consume(o.s)));
                break;
            }
            expect(store.size).toBeLessThanOrEqual(model.filter((m) => !m.gone).length);
          }
        } finally {
          await store.close();
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('createTokenStore', () => {
  it('gives a memory store without a Redis URL', async () => {
    const store = createTokenStore({ redisUrl: '', maxTokens: 10 });
    expect(store.kind).toBe('memory');
    await store.ready();
    await store.close();
    const defaulted = createTokenStore();
    expect(defaulted.kind).toBe('memory');
    await defaulted.close();
  });

  it('rejects a Redis URL of the wrong scheme as CONFIG_ERR_INVALID', () => {
    expect(() => createTokenStore({ redisUrl: 'http://127.0.0.1:6379' })).toThrow(
      expect.objectContaining({ code: 'CONFIG_ERR_INVALID' }),
    );
  });
});
