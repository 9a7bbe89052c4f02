import { performance } from 'node:perf_hooks';
import type { Cluster, Redis } from 'ioredis';
import { VncgateError } from '../errors.js';
import { RedisClock } from './redis-clock.js';
import type { RedisMode } from './redis-connection.js';
import { SwitchWatch, type SwitchWatchOptions } from './redis-switch-watch.js';
import { storeUnavailable, type TokenStoreLogger } from './token-store.js';

/**
 * Scripts that call TIME before writing need effects replication (default since Redis 5); 6.2 is
 * the oldest tested. `ready()` refuses older servers with a clear message.
 */
const MIN_REDIS_VERSION = [6, 2, 0] as const;
/** How often the offset to Redis' clock is measured again while connected. */
const CLOCK_RESAMPLE_MS = 30_000;
const KIND = 'redis' as const;

type Client = Redis | Cluster;

interface ReadyWaiter {
  /** The request that is waiting, for the error it gets. */
  readonly operation: string;
  readonly resolve: () => void;
  readonly reject: (error: VncgateError) => void;
  /** Start-up waits for requests give up at the first failed connection attempt. */
  readonly failOnClose: boolean;
}

export type RedisLinkOptions = {
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  logger: TokenStoreLogger;
  /** Sentinel: watch `+switch-master` (redis-switch-watch.ts). */
  switchWatch?: SwitchWatchOptions | undefined;
};

/**
 * The token store's connection to Redis: whether a request may go out now, wait for the first
 * connection, or fail at once; the offset to Redis' clock (redis-clock.ts), measured on every
 * connection and every CLOCK_RESAMPLE_MS; the server version, checked once; and closing.
 *
 * Before the first connection is ready, requests wait up to `connectTimeoutMs` for it (start-up
 * race); after that, "not ready" means an outage and requests fail immediately (see the class
 * comment of RedisTokenStore).
 */
export class RedisLink {
  readonly client: Client;
  readonly clock: RedisClock;
  readonly #mode: RedisMode;
  readonly #connectTimeoutMs: number;
  readonly #commandTimeoutMs: number;
  readonly #logger: TokenStoreLogger;
  readonly #waiters = new Set<ReadyWaiter>();
  readonly #clockTimer: NodeJS.Timeout;
  readonly #switchWatch: SwitchWatch | null;
  #closed = false;
  /** Set by the first `ready`; from then on a missing connection is an outage (fail fast). */
  #wasReady = false;
  /** Set by the first `close` before any `ready`: Redis was down at start-up. */
  #failedBeforeReady = false;
  #down = false;
  #versionChecked = false;
  /** Pending restart of a client that ended by itself (see #onEnd), and how many in a row. */
  #restartTimer: NodeJS.Timeout | undefined;
  #restarts = 0;

  constructor(client: Client, mode: RedisMode, options: RedisLinkOptions) {
    this.client = client;
    this.#mode = mode;
    this.#connectTimeoutMs = options.connectTimeoutMs;
    this.#commandTimeoutMs = options.commandTimeoutMs;
    this.#logger = options.logger;
    this.clock = new RedisClock(() => this.#readTime());
    this.#clockTimer = setInterval(() => {
      if (this.client.status === 'ready') this.clock.sample().catch(() => undefined);
    }, CLOCK_RESAMPLE_MS);
    this.#clockTimer.unref();
    this.#switchWatch = options.switchWatch && mode === 'sentinel' ? new SwitchWatch(client as Redis, options.switchWatch, options.logger) : null;
    client.on('ready', () => this.#onReady());
    client.on('close', () => this.#onClose());
    if (mode !== 'cluster') client.on('end', () => this.#onEnd());
    // A cluster shard changed primary: its clock has not been measured yet.
    if (mode === 'cluster') client.on('+node', () => this.clock.reset());
    // Without a listener ioredis prints every connection error to stderr. Errors repeat on each
    // reconnect attempt, so they go to debug; the outage itself is logged once in #onClose.
    client.on('error', (error: Error) => {
      this.#logger.debug({ store: KIND, err: error.message }, 'Redis token store connection error');
    });
    if (mode === 'cluster') {
      (client as Cluster).on('node error', (error: Error, node: string) => {
        this.#logger.debug({ store: KIND, node, err: error.message }, 'Redis Cluster node error');
      });
    }
  }

  /**
   * Redis' time for the clock offset. On a cluster, the earliest of every primary's: a deadline
   * built from it is early, never late, on every shard (redis-clock.ts; a refusal too many at
   * worst). Primaries that do not answer are skipped; one answer is needed.
   */
  async #readTime(): Promise<[string, string]> {
    if (this.#mode !== 'cluster') return this.client.time().then(([s, us]) => [String(s), String(us)]);
    const answers = await Promise.allSettled((this.client as Cluster).nodes('master').map((node) => node.time()));
    let best: [string, string] | null = null;
    for (const a of answers) {
      if (a.status !== 'fulfilled') continue;
      const [s, us] = a.value;
      if (best === null || Number(s) * 1e6 + Number(us) < Number(best[0]) * 1e6 + Number(best[1])) best = [String(s), String(us)];
    }
    if (best === null) throw new Error('no Redis Cluster primary answered TIME');
    return best;
  }

  /** Resolves when a request may be sent now; waits for the first connection at start-up only. */
  async available(operation: string): Promise<void> {
    this.#assertOpen(operation);
    const status = this.client.status;
    if (status === 'ready') return;
    if (this.#wasReady || this.#failedBeforeReady) {
      throw storeUnavailable(KIND, operation, `not connected to Redis (connection status "${status}")`);
    }
    await this.#waitForReady(operation, true);
  }

  /** `ready()` of the store: connected, the version checked once, and the server answering now. */
  async ready(ping: () => Promise<unknown>): Promise<void> {
    this.#assertOpen('ready');
    if (this.client.status !== 'ready') await this.#waitForReady('ready', false);
    if (!this.#versionChecked) await this.#checkVersionAtStart();
    // A connection can look ready while the server hangs (nothing in flight, so no timeout has
    // fired): one round trip, bounded by commandTimeoutMs, proves it answers.
    else await ping();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#clockTimer);
    clearTimeout(this.#restartTimer);
    this.#switchWatch?.close();
    for (const waiter of this.#waiters) waiter.reject(storeUnavailable(KIND, waiter.operation, 'store is closed'));
    this.#waiters.clear();
    try {
      if (this.client.status === 'ready') await withDeadline(this.client.quit(), this.#commandTimeoutMs);
    } catch {
      // QUIT is a courtesy; disconnect() below is what frees the socket and stops reconnecting.
    } finally {
      this.client.disconnect();
    }
  }

  #assertOpen(operation: string): void {
    if (this.#closed) throw storeUnavailable(KIND, operation, 'store is closed');
  }

  #waitForReady(operation: string, failOnClose: boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(storeUnavailable(KIND, operation, `Redis not ready within ${this.#connectTimeoutMs} ms`));
      }, this.#connectTimeoutMs);
      const waiter: ReadyWaiter = {
        operation,
        failOnClose,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.#waiters.add(waiter);
    });
  }

  #onReady(): void {
    this.#wasReady = true;
    this.#restarts = 0;
    // Measured up front so the first guarded request does not wait for it; failures are retried
    // by the next request that needs the offset.
    this.clock.sample().catch(() => undefined);
    if (this.#down) this.#logger.info({ store: KIND }, 'Redis token store reconnected');
    this.#down = false;
    for (const waiter of this.#waiters) waiter.resolve();
    this.#waiters.clear();
  }

  #onClose(): void {
    this.clock.reset();
    if (this.#closed) return;
    if (!this.#wasReady) this.#failedBeforeReady = true;
    if (!this.#down) {
      this.#down = true;
      this.#logger.warn({ store: KIND }, 'Redis token store connection lost; failing requests until it is back');
    }
    for (const waiter of this.#waiters) {
      if (!waiter.failOnClose) continue;
      this.#waiters.delete(waiter);
      waiter.reject(storeUnavailable(KIND, waiter.operation, 'connecting to Redis failed'));
    }
  }

  /**
   * ioredis ends a client for good (status "end", no more reconnecting) when its connector is told
   * to disconnect while a connection attempt is still asking a Sentinel for the primary: the
   * attempt then fails with "Connection is closed." and `connect()` gives up instead of handing
   * over to `retryStrategy`. Its own failover detector did exactly that when `+switch-master`
   * arrived during a reconnect after the primary died — the moment a failover happens — and the
   * store then refused every request until restarted (issue 17). That detector is no longer used
   * (redis-switch-watch.ts), but any such end is still caught here: only `close()` may end the
   * link; any other end starts the client again, paced like its reconnects.
   */
  #onEnd(): void {
    if (this.#closed || this.#restartTimer !== undefined) return;
    this.#restarts++;
    const retry = (this.client as Redis).options.retryStrategy;
    const delay = Math.max(0, Number(retry?.(this.#restarts) ?? this.#connectTimeoutMs) || 0);
    this.#logger.warn({ store: KIND, restart: this.#restarts, delayMs: delay }, 'Redis client stopped reconnecting; starting it again');
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#closed || this.client.status !== 'end') return;
      // A failed attempt either reconnects by itself (a closed socket) or ends again (#onEnd).
      (this.client as Redis).connect().catch(() => undefined);
    }, delay);
    this.#restartTimer.unref();
  }

  /**
   * On a cluster, "ready" means the slot map is known; the node a keyless command picks may still
   * be connecting, and without an offline queue that fails at once. Retried within the connect
   * timeout, so start-up does not depend on which node answers first.
   */
  async #checkVersionAtStart(): Promise<void> {
    const deadline = performance.now() + this.#connectTimeoutMs;
    for (;;) {
      try {
        return await this.#checkServerVersion();
      } catch (error) {
        if (this.#mode !== 'cluster' || (error as VncgateError).code !== 'TOKEN_ERR_STORE_UNAVAILABLE' || performance.now() >= deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  /**
   * Refuses a too-old server once, up front, rather than failing every consume later. An
   * ACL that forbids INFO only skips the check; a connection failure is an outage as usual.
   */
  async #checkServerVersion(): Promise<void> {
    let info: string;
    try {
      info = await this.client.info('server');
    } catch (error) {
      if (error instanceof Error && error.name === 'ReplyError') {
        this.#versionChecked = true;
        this.#logger.debug({ store: KIND, err: error.message }, 'cannot read Redis version; skipping check');
        return;
      }
      throw storeUnavailable(KIND, 'ready', error instanceof Error ? error.message : String(error), error);
    }
    const match = /^redis_version:(\d+)\.(\d+)\.(\d+)/m.exec(info);
    if (match !== null) {
      const version = [Number(match[1]), Number(match[2]), Number(match[3])];
      if (compareVersions(version, MIN_REDIS_VERSION) < 0) {
        throw new VncgateError('CONFIG_ERR_INVALID', `Redis ${version.join('.')} is too old for the token store (needs ≥ ${MIN_REDIS_VERSION.join('.')})`, {
          details: { redisVersion: version.join('.'), minimum: MIN_REDIS_VERSION.join('.') },
        });
      }
    }
    this.#versionChecked = true;
  }
}

function compareVersions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

async function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no reply within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
