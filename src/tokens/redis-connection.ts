import { Cluster, Redis } from 'ioredis';
import { VncgateError } from '../errors.js';
import type { SwitchWatchOptions } from './redis-switch-watch.js';

/** `host:port` of a Sentinel or a cluster seed node. */
export interface RedisEndpoint {
  readonly host: string;
  readonly port: number;
}

/** How to reach Redis: exactly one of `url`, `sentinels`, `cluster`. */
export interface RedisConnectionOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` for TLS. Never logged (it may hold a password). */
  url?: string | undefined;
  /** Redis Sentinels to ask for the current primary of `sentinelName`. */
  sentinels?: readonly RedisEndpoint[] | undefined;
  /** The monitored primary's name in the Sentinel configuration. Default `mymaster`. */
  sentinelName?: string | undefined;
  /** Password of the Sentinels themselves (`requirepass` in sentinel.conf). */
  sentinelPassword?: string | undefined;
  /** Seed nodes of a Redis Cluster (any few; the rest are discovered). */
  cluster?: readonly RedisEndpoint[] | undefined;
  /** ACL user and password of the data nodes with `sentinels` or `cluster` (a URL carries its own). */
  username?: string | undefined;
  password?: string | undefined;
}

export type RedisMode = 'url' | 'sentinel' | 'cluster';

export interface RedisClientTimings {
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  maxReconnectDelayMs: number;
  connectionName: string;
}

/** Reconnects for ever, 50 ms doubling up to the cap. */
function backoff(maxDelayMs: number): (attempt: number) => number {
  return (attempt) => Math.min(maxDelayMs, 50 * 2 ** Math.min(Math.max(attempt, 1) - 1, 16));
}

/**
 * A primary that was demoted while we were connected (a partition heals, or a manual failover)
 * answers writes with READONLY: reconnect, which asks the Sentinels for the new primary. `1` means
 * reconnect without resending the command (it already failed to its caller; no replays).
 */
function reconnectOnReadonly(error: Error): 1 | false {
  return error.message.startsWith('READONLY') ? 1 : false;
}

export function redisMode(options: RedisConnectionOptions): RedisMode {
  const chosen: RedisMode[] = [];
  if (options.url !== undefined && options.url !== '') chosen.push('url');
  if (options.sentinels !== undefined && options.sentinels.length > 0) chosen.push('sentinel');
  if (options.cluster !== undefined && options.cluster.length > 0) chosen.push('cluster');
  if (chosen.length !== 1) {
    throw new VncgateError('CONFIG_ERR_INVALID', 'the Redis token store needs exactly one of url, sentinels, cluster', {
      details: { option: 'url', given: chosen },
    });
  }
  const mode = chosen[0]!;
  if (mode === 'url' && !/^rediss?:\/\//.test(options.url!)) {
    throw new VncgateError('CONFIG_ERR_INVALID', 'Redis URL must start with redis:// or rediss://', { details: { option: 'url' } });
  }
  return mode;
}

/**
 * The ioredis client for `mode`, with the fail-fast settings of redis-store.ts: no offline queue,
 * no retries or replays of commands in flight, a timeout on every reply, reconnection for ever.
 *
 * Sentinel: on a lost connection ioredis asks the Sentinels again for the primary's address and
 * reconnects there (`retryStrategy` paces it); `role: 'master'` refuses to settle on a replica.
 * `+switch-master` is watched by redis-switch-watch.ts (`switchWatch`, for RedisLink), not by
 * ioredis' `failoverDetector` (why: that file; issue 17).
 *
 * Cluster: `scaleReads: 'master'` (reads of a token must see its consume), no resending after a
 * closed connection (`retryDelayOnFailover: 0`; the command may have run) and none after
 * CLUSTERDOWN (fail fast while a shard has no primary); MOVED/ASK redirections, which mean the
 * command did not run, are followed up to `maxRedirections` within the command timeout. Slots are
 * re-read every second so a promoted replica is found without waiting for a redirection.
 */
export function createRedisClient(
  options: RedisConnectionOptions,
  t: RedisClientTimings,
): { client: Redis | Cluster; mode: RedisMode; switchWatch?: SwitchWatchOptions } {
  const mode = redisMode(options);
  const common = {
    connectionName: t.connectionName,
    connectTimeout: t.connectTimeoutMs,
    commandTimeout: t.commandTimeoutMs,
    socketTimeout: 2 * t.commandTimeoutMs,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    ...(mode !== 'url' && options.username !== undefined ? { username: options.username } : {}),
    ...(mode !== 'url' && options.password !== undefined ? { password: options.password } : {}),
  };
  const retryStrategy = backoff(t.maxReconnectDelayMs);
  if (mode === 'url') {
    return { mode, client: new Redis(options.url!, { ...common, enableOfflineQueue: false, retryStrategy }) };
  }
  if (mode === 'sentinel') {
    const sentinels = options.sentinels!.map(({ host, port }) => ({ host, port }));
    const name = options.sentinelName ?? 'mymaster';
    return {
      mode,
      switchWatch: { sentinels, name, sentinelPassword: options.sentinelPassword, connectTimeoutMs: t.connectTimeoutMs, retryStrategy },
      client: new Redis({
        ...common,
        enableOfflineQueue: false,
        retryStrategy,
        reconnectOnError: reconnectOnReadonly,
        sentinels,
        name,
        role: 'master',
        ...(options.sentinelPassword !== undefined ? { sentinelPassword: options.sentinelPassword } : {}),
        sentinelCommandTimeout: t.commandTimeoutMs,
        sentinelRetryStrategy: retryStrategy,
        failoverDetector: false,
      }),
    };
  }
  const clusterOptions = {
    scaleReads: 'master' as const,
    enableOfflineQueue: false,
    enableReadyCheck: true,
    maxRedirections: 16,
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 0,
    retryDelayOnTryAgain: 50,
    slotsRefreshTimeout: t.commandTimeoutMs,
    slotsRefreshInterval: 1_000,
    clusterRetryStrategy: retryStrategy,
    redisOptions: { ...common, reconnectOnError: reconnectOnReadonly },
  };
  return { mode, client: new Cluster(options.cluster!.map(({ host, port }) => ({ host, port })), clusterOptions) };
}
