import type { UpstreamObserver } from '../observe/upstream.js';
import { MemoryTokenStore } from './memory-store.js';
import type { RedisConnectionOptions } from './redis-connection.js';
import { RedisTokenStore } from './redis-store.js';
import type { TokenStore, TokenStoreLogger } from './token-store.js';

/** Options of both stores; see `TOKEN_STORE_DEFAULTS` for the defaults. */
export interface TokenStoreConfig {
  /** Use Redis at this URL (required for more than one vncgate process); otherwise see `redis`. */
  redisUrl?: string | undefined;
  /** Use Redis via a URL, Sentinels or a Cluster (exactly one), with WAIT settings. */
  redis?: (RedisConnectionOptions & { waitReplicas?: number | undefined; waitTimeoutMs?: number | undefined }) | undefined;
  keyPrefix?: string | undefined;
  connectTimeoutMs?: number | undefined;
  commandTimeoutMs?: number | undefined;
  maxReconnectDelayMs?: number | undefined;
  connectionName?: string | undefined;
  maxTokens?: number | undefined;
  sweepIntervalMs?: number | undefined;
  maxTtlSeconds?: number | undefined;
  maxIssueCount?: number | undefined;
  logger?: TokenStoreLogger | undefined;
  now?: (() => number) | undefined;
  /** Redis only: told the duration of every request (the upstream metric). */
  observe?: UpstreamObserver | undefined;
}

/** A Redis store when `redisUrl` or `redis` is given, otherwise an in-process one. */
export function createTokenStore(config: TokenStoreConfig = {}): TokenStore {
  const { redisUrl, redis, maxTokens, sweepIntervalMs, ...rest } = config;
  if ((redisUrl !== undefined && redisUrl !== '') || redis !== undefined) {
    const { keyPrefix, connectTimeoutMs, commandTimeoutMs, maxReconnectDelayMs, connectionName, ...common } = rest;
    return new RedisTokenStore({
      ...(redis ?? { url: redisUrl }),
      keyPrefix,
      connectTimeoutMs,
      commandTimeoutMs,
      maxReconnectDelayMs,
      connectionName,
      ...common,
    });
  }
  const { maxTtlSeconds, maxIssueCount, logger, now } = rest;
  return new MemoryTokenStore({ maxTokens, sweepIntervalMs, maxTtlSeconds, maxIssueCount, logger, now });
}
