import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig, type Config } from '../../src/config/index.js';
import { VncgateError } from '../../src/errors.js';
import { createIronic } from '../../src/ironic/index.js';
import type { NovaTokenLookup } from '../../src/nova/index.js';
import { authorizeRequest, TargetResolvers } from '../../src/proxy/authorization/index.js';
import type { Authorized } from '../../src/target.js';
import { keepRenewed } from '../../src/proxy/authorization/index.js';
import { MemoryTokenStore, type TokenStore } from '../../src/tokens/index.js';
import { rejectionCode } from '../tokens/expect-code.js';
import { startFakeIronic, type FakeIronic } from '../ironic/fake-ironic.js';

/** Session limits and the invalid-link cool-down at the authorization step, on every path (issue 15 item 7). */
let ironic: FakeIronic;
beforeAll(async () => {
  ironic = await startFakeIronic();
});
afterAll(async () => {
  await ironic.close();
});

function setup(overrides: Record<string, unknown> = {}, tokens: TokenStore = new MemoryTokenStore()) {
  const config: Config = loadConfig({
    env: {},
    overrides: {
      listen: ['127.0.0.1:0'],
      tls: { plainHttp: true },
      log: { level: 'silent' },
      limits: { sessionsPerTarget: 1, invalidTokensPerMinute: 2 },
      ironic: { url: ironic.url, timeoutMs: 2_000 },
      backends: { profiles: { open: { security: ['none'], sessionsPerTarget: 0 } } },
      ...overrides,
    },
  });
  const resolvers = new TargetResolvers(config, createIronic(config)!.resolver);
  const nova: NovaTokenLookup = {
    lookup: async (token) => {
      if (!token.startsWith('1')) throw new VncgateError('TOKEN_ERR_INVALID', 'unknown Nova token');
      return { instanceUuid: 'inst-1', host: '10.1.1.1', port: 5901 + Number(token.at(-1)), internalAccessPath: null, consoleType: 'novnc', expires: null };
    },
    close: async () => undefined,
  };
  const deps = { config, tokens, resolvers, nova };
  let n = 0;
  const open = (query: string, remote = '192.0.2.1'): Promise<Authorized> =>
    authorizeRequest(new URLSearchParams(query), undefined, deps, remote)(new AbortController().signal, `session-${++n}`);
  return { tokens, open };
}

describe('sessions per target at authorization', () => {
  it('vncgate tokens: over the limit is refused without burning the link, which works once a slot is free', async () => {
    const { tokens, open } = setup();
    const first = await tokens.issue({ kind: 'static', host: '10.0.0.5', port: 5900 }, 60);
    const second = await tokens.issue({ kind: 'static', host: '10.0.0.5', port: 5900 }, 60);
    const a = await open(`token=${first.token}`);
    expect(await rejectionCode(open(`token=${second.token}`))).toBe('SESSION_ERR_TARGET_BUSY');
    // Not burned: the refused link is still there.
    await expect(tokens.peek(second.token)).resolves.toEqual(second.record);
    a.release?.();
    const b = await open(`token=${second.token}`);
    expect(b.target.port).toBe(5900);
    // Single use as ever.
    expect(await rejectionCode(open(`token=${second.token}`))).toBe('TOKEN_ERR_INVALID');
    b.release?.();
  });

  it('vncgate tokens: another endpoint is counted apart, and a profile can lift the limit', async () => {
    const { tokens, open } = setup();
    const t = (port: number, profile?: string) => tokens.issue({ kind: 'static', host: '10.0.0.5', port, ...(profile ? { profile } : {}) }, 60);
    await open(`token=${(await t(5900)).token}`);
    await open(`token=${(await t(5901)).token}`);
    await open(`token=${(await t(5902, 'open')).token}`);
    await expect(open(`token=${(await t(5902, 'open')).token}`)).resolves.toBeDefined();
  });

  it('Ironic console URLs (reusable): a second session on the node is refused until the first ends', async () => {
    const { open } = setup();
    const node = ironic.addNode({ vncPort: 5999 });
    const a = await open(`node=${node.uuid}&token=${node.token}`);
    expect(await rejectionCode(open(`node=${node.uuid}&token=${node.token}`))).toBe('SESSION_ERR_TARGET_BUSY');
    a.release?.();
    const b = await open(`node=${node.uuid}&token=${node.token}`);
    b.release?.();
  });

  it('vncgate {node} tokens count against the node', async () => {
    const { tokens, open } = setup();
    const node = ironic.addNode({ vncPort: 5996 });
    const first = await tokens.issue({ kind: 'node', node: node.uuid }, 60);
    const second = await tokens.issue({ kind: 'node', node: node.uuid }, 60);
    const a = await open(`token=${first.token}`);
    // Also refused through Ironic's own URL for the same node.
    expect(await rejectionCode(open(`node=${node.uuid}&token=${node.token}`))).toBe('SESSION_ERR_TARGET_BUSY');
    expect(await rejectionCode(open(`token=${second.token}`))).toBe('SESSION_ERR_TARGET_BUSY');
    await expect(tokens.peek(second.token)).resolves.toEqual(second.record);
    a.release?.();
    await expect(open(`token=${second.token}`)).resolves.toBeDefined();
  });

  it('Ironic console URLs: busy is refused before the single-use claim', async () => {
    const { open } = setup({ ironic: { url: ironic.url, timeoutMs: 2_000, ironicTokenReuse: 'single-use' } });
    const node = ironic.addNode({ vncPort: 5997 });
    const holder = await open(`node=${node.uuid}&token=${node.token}`);
    node.token = 'K'.repeat(43);
    expect(await rejectionCode(open(`node=${node.uuid}&token=${node.token}`))).toBe('SESSION_ERR_TARGET_BUSY');
    holder.release?.();
    await expect(open(`node=${node.uuid}&token=${node.token}`)).resolves.toBeDefined();
  });

  it('Nova URLs: sessions count per instance, even on another endpoint', async () => {
    const { open } = setup();
    const a = await open('token=11111111-1111-4111-8111-111111111111');
    expect(await rejectionCode(open('token=11111111-1111-4111-8111-111111111112'))).toBe('SESSION_ERR_TARGET_BUSY');
    a.release?.();
    await expect(open('token=11111111-1111-4111-8111-111111111112')).resolves.toBeDefined();
  });

  it('fails closed with the store: a slot that cannot be taken refuses the session', async () => {
    const tokens = new MemoryTokenStore();
    vi.spyOn(tokens, 'acquireSlots').mockRejectedValue(new VncgateError('TOKEN_ERR_STORE_UNAVAILABLE', 'down'));
    const { open } = setup({}, tokens);
    expect(await rejectionCode(open('token=11111111-1111-4111-8111-111111111111'))).toBe('TOKEN_ERR_STORE_UNAVAILABLE');
  });
});

describe('invalid links per client address at authorization', () => {
  it('cools an address down after too many invalid links, refusing even a valid link without using it up', async () => {
    const { tokens, open } = setup();
    const good = await tokens.issue({ kind: 'static', host: '10.0.0.9', port: 5900 }, 60);
    expect(await rejectionCode(open(`token=${'A'.repeat(43)}`))).toBe('TOKEN_ERR_INVALID');
    expect(await rejectionCode(open(''))).toBe('TOKEN_ERR_MISSING');
    expect(await rejectionCode(open('token=22222222-2222-4222-8222-222222222222'))).toBe('TOKEN_ERR_INVALID');
    expect(await rejectionCode(open(`token=${good.token}`))).toBe('TOKEN_ERR_RATE_LIMITED');
    expect(await rejectionCode(open('token=11111111-1111-4111-8111-111111111111'))).toBe('TOKEN_ERR_RATE_LIMITED');
    await expect(tokens.peek(good.token)).resolves.toEqual(good.record);
    // Another address is not affected.
    await expect(open(`token=${good.token}`, '192.0.2.2')).resolves.toBeDefined();
  });

  it('does not count store outages or busy targets', async () => {
    const { tokens, open } = setup();
    const spy = vi.spyOn(tokens, 'countInvalid');
    await open(`token=${(await tokens.issue({ kind: 'static', host: '10.0.0.5', port: 5900 }, 60)).token}`);
    for (let i = 0; i < 3; i++) {
      expect(await rejectionCode(open(`token=${(await tokens.issue({ kind: 'static', host: '10.0.0.5', port: 5900 }, 60)).token}`))).toBe('SESSION_ERR_TARGET_BUSY');
    }
    expect(spy).not.toHaveBeenCalled();
  });

  it('is off with invalidTokensPerMinute 0', async () => {
    const { tokens, open } = setup({ limits: { invalidTokensPerMinute: 0 } });
    for (let i = 0; i < 5; i++) expect(await rejectionCode(open(`token=${'A'.repeat(43)}`))).toBe('TOKEN_ERR_INVALID');
    const good = await tokens.issue({ kind: 'static', host: '10.0.0.9', port: 5900 }, 60);
    await expect(open(`token=${good.token}`)).resolves.toBeDefined();
  });
});

describe('lease renewal', () => {
  it('a failing renewal warns once and keeps going, and recovers by itself', async () => {
    vi.useFakeTimers();
    try {
      let fail = true;
      const renew = vi.fn(async () => {
        if (fail) throw new VncgateError('TOKEN_ERR_STORE_UNAVAILABLE', 'down');
      });
      const release = vi.fn(async () => undefined);
      const log = { warn: vi.fn(), info: vi.fn() };
      const stop = keepRenewed(renew, release, 15_000, log, { sessionId: 's' });
      await vi.advanceTimersByTimeAsync(15_000);
      expect(renew).toHaveBeenCalledTimes(3);
      expect(log.warn).toHaveBeenCalledTimes(1);
      fail = false;
      await vi.advanceTimersByTimeAsync(5_000);
      expect(log.info).toHaveBeenCalledTimes(1);
      stop();
      stop();
      expect(release).toHaveBeenCalledTimes(1);
      await vi.advanceTimersByTimeAsync(15_000);
      expect(renew).toHaveBeenCalledTimes(4);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a release waits for a renewal still in flight, which would otherwise take the slot back after it', async () => {
    vi.useFakeTimers();
    try {
      let finishRenew: () => void = () => undefined;
      const order: string[] = [];
      const renew = vi.fn(
        () =>
          new Promise<void>((resolve) => {
            finishRenew = () => {
              order.push('renewed');
              resolve();
            };
          }),
      );
      const release = vi.fn(async () => {
        order.push('released');
      });
      const stop = keepRenewed(renew, release, 15_000, undefined, { sessionId: 's' });
      await vi.advanceTimersByTimeAsync(5_000);
      expect(renew).toHaveBeenCalledTimes(1);
      // Redis is slow (or the renewal waits for a clock sample): no second renewal piles up.
      await vi.advanceTimersByTimeAsync(10_000);
      expect(renew).toHaveBeenCalledTimes(1);
      stop();
      await vi.advanceTimersByTimeAsync(0);
      expect(release).not.toHaveBeenCalled();
      finishRenew();
      await vi.advanceTimersByTimeAsync(0);
      expect(order).toEqual(['renewed', 'released']);
      await vi.advanceTimersByTimeAsync(15_000);
      expect(renew).toHaveBeenCalledTimes(1);
    } finally {
      vi.useRealTimers();
    }
  });
});
