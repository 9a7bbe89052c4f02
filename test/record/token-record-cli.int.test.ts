/**
 * `vncgate token create --record` (issue 18): the real CLI writes the grant into the token's
 * record in a real redis-server, where any serving replica reads it; without it, no grant; and
 * asking for a recording with no recordings.dir configured is a usage error (exit 2).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisTokenStore } from '../../src/tokens/index.js';
import { runVncgate } from '../support/cli.js';
import { startRedisServer, type RedisServer } from '../support/redis.js';

let dir: string;
let redis: RedisServer;
let store: RedisTokenStore;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vncgate-tokrec-'));
  redis = await startRedisServer();
  store = new RedisTokenStore({ url: redis.url });
  await store.ready();
});
afterAll(async () => {
  await store?.close();
  await redis?.dispose();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

async function create(extra: string[], recordingsDir: string | null): Promise<{ code: number | null; token?: string; stderr: string }> {
  const config = join(dir, `c-${recordingsDir === null ? 'off' : 'on'}.yaml`);
  await writeFile(config, ['backends: {allowedTargets: ["10.0.0.0/8"]}', ...(recordingsDir !== null ? [`recordings: {dir: ${JSON.stringify(recordingsDir)}}`] : []), ''].join('\n'));
  const r = await runVncgate(['token', 'create', '--target', '10.0.0.5:5900', '--config', config, ...extra], { env: { VNCGATE_REDIS_URL: redis.url, VNCGATE_LOG_LEVEL: 'warn' }, timeoutMs: 20_000 });
  return { code: r.code, stderr: r.stderr, ...(r.code === 0 ? { token: (r.json[0] as { token: string }).token } : {}) };
}

describe('vncgate token create --record', () => {
  it('stores the grant with the token; without the flag, none', async () => {
    const withFlag = await create(['--record'], join(dir, 'rec'));
    expect(withFlag.code, withFlag.stderr).toBe(0);
    expect((await store.peek(withFlag.token)).record).toBe(true);
    const without = await create([], join(dir, 'rec'));
    expect(without.code, without.stderr).toBe(0);
    expect((await store.peek(without.token)).record).toBeUndefined();
  });

  it('refuses --record where nothing could record', async () => {
    const r = await create(['--record'], null);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--record needs recordings.dir');
  });
});
