import type { UpstreamObserver } from '../observe/upstream.js';
import { MemoryTokenStore } from './memory-store.js';
import { RedisTokenStore } from './redis-store.js';
import type { TokenStore, TokenStoreLogger } from './token-store.js';

/** Options of both stores; see `TOKEN_STORE_DEFAULTS` for the defaults. */
export interface TokenStoreConfig {
  /** Use Redis when set (required for more than one vncgate process); otherwise an in-process store. */
  redisUrl?: string | undefined;
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

export function createTokenStore(config: TokenStoreConfig = {}): TokenStore {
  const { redisUrl, maxTokens, sweepIntervalMs, ...rest } = config;
  if (redisUrl !== undefined && redisUrl !== '') {
    const { keyPrefix, connectTimeoutMs, commandTimeoutMs, maxReconnectDelayMs, connectionName, ...common } = rest;
    return new RedisTokenStore({ url: redisUrl, keyPrefix, connectTimeoutMs, commandTimeoutMs, maxReconnectDelayMs, connectionName, ...common });
  }
  const { maxTtlSeconds, maxIssueCount, logger, now } = rest;
  return new MemoryTokenStore({ maxTokens, sweepIntervalMs, maxTtlSeconds, maxIssueCount, logger, now });
}
