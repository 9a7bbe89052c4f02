import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tokenStoreConfig } from '../../src/cli/token-store-config.js';
import { loadConfig } from '../../src/config/index.js';
import { VncgateError } from '../../src/errors.js';

/** issue 17: Redis Sentinel and Cluster configuration. */
const dir = mkdtempSync(join(tmpdir(), 'vncgate-redis-ha-'));
const secret = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const plain = { tls: { plainHttp: true } };

function problemsOf(f: () => unknown): string[] {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(VncgateError);
    expect((err as VncgateError).code).toBe('CONFIG_ERR_INVALID');
    return (err as VncgateError).details?.problems as string[];
  }
  throw new Error('expected a configuration error');
}

describe('issue 17: redis.sentinels / redis.cluster configuration', () => {
  it('has no Redis by default (in-memory tokens)', () => {
    const c = loadConfig({ env: {}, overrides: plain });
    expect(c.redis).toBeNull();
    expect(tokenStoreConfig(c).redis).toBeUndefined();
  });

  it('takes Sentinels from the environment, with passwords from files, and waits for 1 replica by default', () => {
    const c = loadConfig({
      env: {
        VNCGATE_REDIS_SENTINELS: '10.0.0.1:26379, 10.0.0.2:26379,[fd00::3]:26379',
        VNCGATE_REDIS_SENTINEL_NAME: 'tokens',
        VNCGATE_REDIS_SENTINEL_PASSWORD_FILE: secret('s', 'sentinel-pw\nignored\n'),
        VNCGATE_REDIS_PASSWORD_FILE: secret('d', 'data-pw\n'),
      },
      overrides: plain,
    });
    expect(c.redis).toMatchObject({
      mode: 'sentinel',
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26379 },
        { host: 'fd00::3', port: 26379 },
      ],
      sentinelName: 'tokens',
      sentinelPassword: 'sentinel-pw',
      password: 'data-pw',
      waitReplicas: 1,
      waitTimeoutMs: 200,
    });
    expect(tokenStoreConfig(c).redis).toMatchObject({ sentinelName: 'tokens', sentinelPassword: 'sentinel-pw', password: 'data-pw', waitReplicas: 1 });
  });

  it('takes cluster seeds from the environment; a url alone waits for no replica', () => {
    const cluster = loadConfig({ env: { VNCGATE_REDIS_CLUSTER: '10.0.0.1:7000,10.0.0.2:7000' }, overrides: plain });
    expect(cluster.redis).toMatchObject({ mode: 'cluster', cluster: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7000 }], waitReplicas: 1 });
    const url = loadConfig({ env: { VNCGATE_REDIS_URL: 'redis://127.0.0.1:6379/0' }, overrides: plain });
    expect(url.redis).toMatchObject({ mode: 'url', waitReplicas: 0 });
    const waited = loadConfig({ env: {}, overrides: { ...plain, redis: { url: 'redis://127.0.0.1:6379/0', waitReplicas: 2 } } });
    expect(waited.redis).toMatchObject({ mode: 'url', waitReplicas: 2 });
  });

  it('reports conflicts and bad values all at once', () => {
    const problems = problemsOf(() =>
      loadConfig({
        env: {},
        overrides: {
          ...plain,
          redis: { url: 'redis://127.0.0.1:6379', sentinels: ['127.0.0.1:26379'], cluster: ['nonsense'], waitTimeoutMs: 600, passwordFile: join(dir, 'missing') },
        },
      }),
    );
    const text = problems.join('\n');
    expect(text).toContain('redis: url and sentinels and cluster are set');
    expect(text).toContain('redis.cluster: "nonsense"');
    expect(text).toContain('redis.passwordFile');
  });

  it('refuses a WAIT that leaves no time for the reply, and braces in a cluster key prefix', () => {
    const text = problemsOf(() =>
      loadConfig({ env: {}, overrides: { ...plain, redis: { cluster: ['127.0.0.1:7000'], waitTimeoutMs: 500, keyPrefix: 'a{b}:' } } }),
    ).join('\n');
    expect(text).toContain('redis.waitTimeoutMs');
    expect(text).toContain('redis.keyPrefix');
  });
});
