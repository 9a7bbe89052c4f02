import type { Config } from '../config/index.js';
import type { TokenStoreConfig } from '../tokens/index.js';

/** The token store's options from the configuration (`redis.*`); in-memory when no Redis is set. */
export function tokenStoreConfig(config: Config): TokenStoreConfig {
  const r = config.redis;
  const redis: TokenStoreConfig['redis'] =
    r === null
      ? undefined
      : {
          ...(r.mode === 'url' ? { url: r.url } : {}),
          ...(r.mode === 'sentinel'
            ? { sentinels: r.sentinels, sentinelName: r.sentinelName, ...(r.sentinelPassword !== null ? { sentinelPassword: r.sentinelPassword } : {}) }
            : {}),
          ...(r.mode === 'cluster' ? { cluster: r.cluster } : {}),
          ...(r.username !== null ? { username: r.username } : {}),
          ...(r.password !== null ? { password: r.password } : {}),
          waitReplicas: r.waitReplicas,
          waitTimeoutMs: r.waitTimeoutMs,
        };
  return {
    redis,
    keyPrefix: config.raw.redis.keyPrefix,
    connectTimeoutMs: config.raw.redis.connectTimeoutMs,
    commandTimeoutMs: config.raw.redis.commandTimeoutMs,
    maxTtlSeconds: config.raw.tokens.maxTtlSeconds,
  };
}
