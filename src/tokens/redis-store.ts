import { Redis } from 'ioredis';
import { VncgateError } from '../errors.js';
import { timed, type UpstreamObserver } from '../observe/upstream.js';
import { decodeRecord, encodeRecord, newRecord, type TokenIssuer, type TokenRecord } from './record.js';
import { RedisClock, scriptBudgetMs } from './redis-clock.js';
import { SCRIPT_REPLY, SCRIPTS, type ScriptName } from './redis-scripts.js';
import type { ConsoleTarget } from './target.js';
import { generateToken, hashToken, isWellFormedToken, tokenLogId } from './token.js';
import {
  checkIssueCount,
  checkIssueTarget,
  checkPositiveIntOption,
  checkPresentedToken,
  checkSlotRequest,
  INVALID_WINDOW_MS,
  invalidToken,
  rateLimited,
  silentLogger,
  storeUnavailable,
  targetBusy,
  TOKEN_STORE_DEFAULTS,
  ttlToMs,
  type ConsumeOptions,
  type IssuedToken,
  type SlotRequest,
  type TokenStore,
  type TokenStoreLogger,
} from './token-store.js';

export interface RedisTokenStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` for TLS. Never logged (it may hold a password). */
  url: string;
  /** Prepended to every key: `<keyPrefix>tok:<sha256 hex>`. Default `vncgate:`. */
  keyPrefix?: string | undefined;
  /** Longest wait for a TCP connection, and at start-up for the first ready connection. Default 2000 ms. */
  connectTimeoutMs?: number | undefined;
  /** Longest wait for one reply. Default 1000 ms. */
  commandTimeoutMs?: number | undefined;
  /** Reconnect back-off cap; reconnection never gives up. Default 2000 ms. */
  maxReconnectDelayMs?: number | undefined;
  /** Default 86 400 s. */
  maxTtlSeconds?: number | undefined;
  /** Default 1000. */
  maxIssueCount?: number | undefined;
  /** Shown in `CLIENT LIST`. Default `vncgate`. */
  connectionName?: string | undefined;
  logger?: TokenStoreLogger | undefined;
  /** Clock for `issuedAt`/`expiresAt` (Redis' TTL decides actual expiry). Default `Date.now`. */
  now?: (() => number) | undefined;
  /** Told the duration of every request (the upstream metric). */
  observe?: UpstreamObserver | undefined;
}

/**
 * Scripts that call TIME before writing need effects replication (default since Redis 5); 6.2 is
 * the oldest tested. `ready()` refuses older servers with a clear message.
 */
const MIN_REDIS_VERSION = [6, 2, 0] as const;
const KEY_PREFIX = /^[\x21-\x7e]{0,64}$/;
/** How often the offset to Redis' clock is measured again while connected. */
const CLOCK_RESAMPLE_MS = 30_000;

type ScriptCall = (...args: (string | number)[]) => Promise<unknown>;

interface ReadyWaiter {
  /** The request that is waiting, for the error it gets. */
  readonly operation: string;
  readonly resolve: () => void;
  readonly reject: (error: VncgateError) => void;
  /** Start-up waits for requests give up at the first failed connection attempt. */
  readonly failOnClose: boolean;
}

/**
 * Tokens in Redis, shared by any number of vncgate processes.
 *
 * Exactly-once consumption is Redis' job: one script reads and deletes atomically, so of concurrent
 * consumers on any number of connections exactly one gets the value.
 *
 * Outage behaviour is fail-fast rather than queue-and-hope, so a browser gets a prompt 503 ("try
 * again shortly") instead of hanging:
 * - `enableOfflineQueue: false` — a command issued while disconnected is rejected at once. With a
 *   queue, a consume that already reported failure could still run after reconnecting and burn
 *   the token behind the caller's back.
 * - `maxRetriesPerRequest: 0`, `autoResendUnfulfilledCommands: false` — commands in flight when the
 *   connection drops are rejected, never replayed.
 * - `commandTimeout` bounds each reply; `socketTimeout` (2× that) tears down a connection whose
 *   server went silent, so later requests fail fast too instead of each waiting out the timeout.
 * - `retryStrategy` reconnects for ever with capped back-off, so service resumes by itself.
 * Before the first connection is ready, requests wait up to `connectTimeoutMs` for it (start-up
 * race); after that, "not ready" means an outage and requests fail immediately.
 *
 * A request the store gave up on must not act later: a frozen Redis that thaws runs whatever it
 * had read from the socket. Every script that uses a token up or takes a slot is therefore given a
 * deadline in Redis' clock and changes nothing once it has passed (redis-clock.ts,
 * redis-scripts.ts), so "try again shortly" means the link still works (issue 15). What remains is
 * a reply delayed by more than the reply margin after a script that did act in time (Redis frozen
 * between running it and writing the answer): that errs towards at-most-once, never a second use.
 */
export class RedisTokenStore implements TokenStore {
  readonly kind = 'redis' as const;
  readonly #client: Redis;
  readonly #keyPrefix: string;
  readonly #connectTimeoutMs: number;
  readonly #commandTimeoutMs: number;
  readonly #maxTtlSeconds: number;
  readonly #maxIssueCount: number;
  readonly #logger: TokenStoreLogger;
  readonly #now: () => number;
  readonly #observe: UpstreamObserver | undefined;
  readonly #waiters = new Set<ReadyWaiter>();
  readonly #clock: RedisClock;
  /** What a guarded script may still act in, of the command timeout (redis-clock.ts). */
  readonly #scriptBudgetMs: number;
  readonly #clockTimer: NodeJS.Timeout;
  #closed = false;
  /** Set by the first `ready`; from then on a missing connection is an outage (fail fast). */
  #wasReady = false;
  /** Set by the first `close` before any `ready`: Redis was down at start-up. */
  #failedBeforeReady = false;
  #down = false;
  #versionChecked = false;

  constructor(options: RedisTokenStoreOptions) {
    const d = TOKEN_STORE_DEFAULTS;
    if (typeof options.url !== 'string' || !/^rediss?:\/\//.test(options.url)) {
      throw new VncgateError('CONFIG_ERR_INVALID', 'Redis URL must start with redis:// or rediss://', {
        details: { option: 'url' },
      });
    }
    const keyPrefix = options.keyPrefix ?? d.keyPrefix;
    if (typeof keyPrefix !== 'string' || !KEY_PREFIX.test(keyPrefix)) {
      throw new VncgateError('CONFIG_ERR_INVALID', 'Redis key prefix must be at most 64 printable ASCII characters without spaces', {
        details: { option: 'keyPrefix' },
      });
    }
    this.#keyPrefix = keyPrefix;
    this.#connectTimeoutMs = checkPositiveIntOption('connectTimeoutMs', options.connectTimeoutMs ?? d.connectTimeoutMs);
    this.#commandTimeoutMs = checkPositiveIntOption('commandTimeoutMs', options.commandTimeoutMs ?? d.commandTimeoutMs);
    const maxReconnectDelayMs = checkPositiveIntOption('maxReconnectDelayMs', options.maxReconnectDelayMs ?? d.maxReconnectDelayMs);
    this.#maxTtlSeconds = checkPositiveIntOption('maxTtlSeconds', options.maxTtlSeconds ?? d.maxTtlSeconds);
    this.#maxIssueCount = checkPositiveIntOption('maxIssueCount', options.maxIssueCount ?? d.maxIssueCount);
    this.#logger = options.logger ?? silentLogger;
    this.#now = options.now ?? Date.now;
    this.#observe = options.observe;

    this.#client = new Redis(options.url, {
      connectionName: options.connectionName ?? 'vncgate',
      connectTimeout: this.#connectTimeoutMs,
      commandTimeout: this.#commandTimeoutMs,
      socketTimeout: 2 * this.#commandTimeoutMs,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (attempt) => Math.min(maxReconnectDelayMs, 50 * 2 ** Math.min(attempt - 1, 16)),
    });
    for (const [name, script] of Object.entries(SCRIPTS)) this.#client.defineCommand(name, script);
    this.#scriptBudgetMs = scriptBudgetMs(this.#commandTimeoutMs);
    this.#clock = new RedisClock(() => this.#client.time().then(([s, us]) => [String(s), String(us)] as [string, string]));
    this.#clockTimer = setInterval(() => {
      if (this.#client.status === 'ready') this.#clock.sample().catch(() => undefined);
    }, CLOCK_RESAMPLE_MS);
    this.#clockTimer.unref();
    this.#client.on('ready', () => this.#onReady());
    this.#client.on('close', () => this.#onClose());
    // Without a listener ioredis prints every connection error to stderr. Errors repeat on each
    // reconnect attempt, so they go to debug; the outage itself is logged once in #onClose.
    this.#client.on('error', (error: Error) => {
      this.#logger.debug({ store: this.kind, err: error.message }, 'Redis token store connection error');
    });
  }

  async issue(target: ConsoleTarget, ttlSeconds: number, issuedBy?: TokenIssuer): Promise<IssuedToken> {
    const [issued] = await this.issueMany(target, ttlSeconds, 1, issuedBy);
    return issued!;
  }

  async issueMany(target: ConsoleTarget, ttlSeconds: number, count: number, issuedBy?: TokenIssuer): Promise<IssuedToken[]> {
    const clean = checkIssueTarget(target);
    const ttlMs = ttlToMs(ttlSeconds, this.#maxTtlSeconds);
    checkIssueCount(count, this.#maxIssueCount);
    const issuedAtMs = this.#now();
    const batch = Array.from({ length: count }, () => {
      const token = generateToken();
      return { token, record: newRecord(clean, issuedAtMs, ttlMs, issuedBy) };
    });
    // MULTI/EXEC: one round trip, and either every SET runs or (connection lost before EXEC) none.
    // NX because overwriting a live token would silently retarget it; with 256 random bits a
    // collision means a broken RNG, which deserves a loud failure.
    const replies = await this.#run('issue', async (client) => {
      const tx = client.multi();
      for (const { token, record } of batch) tx.set(this.#key(token), encodeRecord(record), 'PX', ttlMs, 'NX');
      return tx.exec();
    });
    if (replies === null || replies.length !== count) {
      throw storeUnavailable(this.kind, 'issue', 'transaction was not executed');
    }
    for (const [error, reply] of replies) {
      if (error !== null) throw storeUnavailable(this.kind, 'issue', error.message, error);
      if (reply !== 'OK') throw new VncgateError('INTERNAL_ERR', 'a freshly generated token already existed in Redis');
    }
    return batch.map(({ token, record }) => ({ token, expiresAt: record.expiresAt, record }));
  }

  /**
   * One script (redis-scripts.ts `vncgateConsume`): GET and DEL, unless Redis runs it after the
   * deadline this request was given, in which case nothing is deleted and the caller gets
   * TOKEN_ERR_STORE_UNAVAILABLE, truthfully: the link still works (issue 15). The deadline is the
   * script budget (command timeout minus a reply margin), so by the time ioredis gives up on the
   * reply, the script either acted early enough for its reply to be back, or never will act. The
   * first request on a new connection may first wait for the clock sample (one more round trip,
   * with its own timeout).
   */
  async consume(token: string | null | undefined, options: ConsumeOptions = {}): Promise<TokenRecord> {
    const presented = checkPresentedToken(token);
    const { client, slots } = options;
    if (slots) checkSlotRequest(slots);
    const keys = [this.#key(presented), client === undefined ? '' : this.#coolKey(client), ...(slots?.keys.map((k) => this.#slotKey(k)) ?? [])];
    const args = slots ? [slots.owner, slots.limit, Math.max(1, Math.round(slots.ttlMs))] : [];
    const reply = await this.#run('consume', () => this.#guarded('vncgateConsume', [keys.length, ...keys], args));
    if (reply === SCRIPT_REPLY.COOLING_DOWN) throw rateLimited(this.kind);
    if (reply === SCRIPT_REPLY.BUSY && slots) throw targetBusy(slots.keys, slots.limit);
    return this.#record(presented, reply, 'consume');
  }

  async peek(token: string | null | undefined, options: Pick<ConsumeOptions, 'client'> = {}): Promise<TokenRecord> {
    const presented = checkPresentedToken(token);
    const cool = options.client === undefined ? '' : this.#coolKey(options.client);
    const reply = await this.#run('peek', () => this.#script('vncgatePeek', this.#key(presented), cool));
    if (reply === SCRIPT_REPLY.COOLING_DOWN) throw rateLimited(this.kind);
    return this.#record(presented, reply, 'peek');
  }

  #record(presented: string, reply: unknown, operation: 'consume' | 'peek'): TokenRecord {
    if (reply === null) throw invalidToken(presented, 'unknown');
    if (typeof reply !== 'string') throw unexpectedReply(this.kind, operation, reply);
    const decoded = decodeRecord(reply);
    if (!decoded.ok) {
      // Consumed: already deleted by the script, so a bad record cannot be retried into anything
      // worse. Peeked: it stays until its TTL, refused the same way each time.
      this.#logger.warn(
        { store: this.kind, tokenId: tokenLogId(presented), problem: decoded.problem },
        'corrupt console token record in Redis',
      );
      throw invalidToken(presented, 'corrupt');
    }
    if (operation === 'consume') this.#logger.debug({ store: this.kind, tokenId: tokenLogId(presented) }, 'console token consumed');
    return decoded.record;
  }

  async revoke(token: string): Promise<boolean> {
    if (!isWellFormedToken(token)) return false;
    const deleted = await this.#run('revoke', (client) => client.del(this.#key(token)));
    return deleted === 1;
  }

  async claimOnce(key: string, ttlMs: number): Promise<boolean> {
    const reply = await this.#run('claim', () => this.#guarded('vncgateClaim', [this.#leaseKey('used', key)], [Math.max(1, Math.round(ttlMs))]));
    return reply === 1;
  }

  async acquireLease(key: string, owner: string, ttlMs: number): Promise<boolean> {
    const reply = await this.#run('lease', () => this.#guarded('vncgateLease', [this.#leaseKey('lease', key)], [owner, Math.max(1, Math.round(ttlMs))]));
    return reply === 1;
  }

  async renewLease(key: string, owner: string, ttlMs: number): Promise<boolean> {
    // Compare-and-extend in one step, so a lease that expired and went to someone else stays theirs.
    const reply = await this.#run('lease', (client) =>
      client.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end", 1, this.#leaseKey('lease', key), owner, String(Math.max(1, Math.round(ttlMs)))),
    );
    return reply === 1;
  }

  async releaseLease(key: string, owner: string): Promise<void> {
    await this.#run('lease', (client) =>
      client.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end", 1, this.#leaseKey('lease', key), owner),
    );
  }

  async acquireSlots(request: SlotRequest): Promise<boolean> {
    checkSlotRequest(request);
    const keys = request.keys.map((k) => this.#slotKey(k));
    const reply = await this.#run('slots', () =>
      this.#guarded('vncgateSlots', [keys.length, ...keys], [request.owner, request.limit, Math.max(1, Math.round(request.ttlMs))]),
    );
    return reply === 1;
  }

  async renewSlots(keys: readonly string[], owner: string, ttlMs: number): Promise<void> {
    const slotKeys = keys.map((k) => this.#slotKey(k));
    await this.#run('slots', () => this.#guarded('vncgateRenewSlots', [slotKeys.length, ...slotKeys], [owner, Math.max(1, Math.round(ttlMs))]));
  }

  async releaseSlots(keys: readonly string[], owner: string): Promise<void> {
    const slotKeys = keys.map((k) => this.#slotKey(k));
    await this.#run('slots', () => this.#script('vncgateReleaseSlots', slotKeys.length, ...slotKeys, owner));
  }

  async coolingDown(client: string): Promise<boolean> {
    return (await this.#run('rate', (c) => c.exists(this.#coolKey(client)))) === 1;
  }

  async countInvalid(client: string, allowedPerMinute: number, cooldownMs: number): Promise<boolean> {
    const h = hashToken(client);
    const reply = await this.#run('rate', () =>
      this.#script('vncgateCountInvalid', `${this.#keyPrefix}bad:${h}`, `${this.#keyPrefix}cool:${h}`, INVALID_WINDOW_MS, allowedPerMinute, Math.max(1, Math.round(cooldownMs))),
    );
    return reply === 1;
  }

  /** A session-slot set: `<prefix>lim:<key>` (keys name endpoints, nodes, instances; never a token). */
  #slotKey(key: string): string {
    return `${this.#keyPrefix}lim:${key}`;
  }

  /** An address's cool-down mark, by the address' hash. */
  #coolKey(client: string): string {
    return `${this.#keyPrefix}cool:${hashToken(client)}`;
  }

  #script(name: ScriptName, ...args: (string | number)[]): Promise<unknown> {
    return (this.#client as unknown as Record<ScriptName, ScriptCall>)[name](...args);
  }

  /**
   * Runs a deadline-guarded script: `keys` (with the key count first for variable-key scripts),
   * then the Redis-clock deadline, then `args`. TOO_LATE becomes TOKEN_ERR_STORE_UNAVAILABLE:
   * the script changed nothing.
   */
  async #guarded(name: ScriptName, keys: (string | number)[], args: (string | number)[]): Promise<unknown> {
    const deadline = await this.#clock.deadline(this.#scriptBudgetMs);
    const reply = await this.#script(name, ...keys, deadline, ...args);
    if (reply === SCRIPT_REPLY.TOO_LATE) {
      throw new Error(`Redis ran the ${name} script after its ${this.#scriptBudgetMs} ms deadline; it changed nothing`);
    }
    return reply;
  }

  #leaseKey(kind: 'used' | 'lease', key: string): string {
    return `${this.#keyPrefix}${kind}:${hashToken(key)}`;
  }

  async ready(): Promise<void> {
    this.#assertOpen('ready');
    if (this.#client.status !== 'ready') await this.#waitForReady('ready', false);
    if (!this.#versionChecked) await this.#checkServerVersion();
    // A connection can look ready while the server hangs (nothing in flight, so no timeout has
    // fired): one round trip, bounded by commandTimeoutMs, proves it answers.
    else await this.#run('ready', (client) => client.ping());
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#clockTimer);
    for (const waiter of this.#waiters) waiter.reject(storeUnavailable(this.kind, waiter.operation, 'store is closed'));
    this.#waiters.clear();
    try {
      if (this.#client.status === 'ready') await withDeadline(this.#client.quit(), this.#commandTimeoutMs);
    } catch {
      // QUIT is a courtesy; disconnect() below is what frees the socket and stops reconnecting.
    } finally {
      this.#client.disconnect();
    }
  }

  #key(token: string): string {
    return `${this.#keyPrefix}tok:${hashToken(token)}`;
  }

  async #run<T>(operation: string, command: (client: Redis) => Promise<T>): Promise<T> {
    await this.#available(operation);
    try {
      return await timed(this.#observe, 'redis', () => command(this.#client));
    } catch (error) {
      throw storeUnavailable(this.kind, operation, error instanceof Error ? error.message : String(error), error);
    }
  }

  async #available(operation: string): Promise<void> {
    this.#assertOpen(operation);
    const status = this.#client.status;
    if (status === 'ready') return;
    if (this.#wasReady || this.#failedBeforeReady) {
      throw storeUnavailable(this.kind, operation, `not connected to Redis (connection status "${status}")`);
    }
    await this.#waitForReady(operation, true);
  }

  #assertOpen(operation: string): void {
    if (this.#closed) throw storeUnavailable(this.kind, operation, 'store is closed');
  }

  #waitForReady(operation: string, failOnClose: boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(storeUnavailable(this.kind, operation, `Redis not ready within ${this.#connectTimeoutMs} ms`));
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
    // Measured up front so the first guarded request does not wait for it; failures are retried
    // by the next request that needs the offset.
    this.#clock.sample().catch(() => undefined);
    if (this.#down) this.#logger.info({ store: this.kind }, 'Redis token store reconnected');
    this.#down = false;
    for (const waiter of this.#waiters) waiter.resolve();
    this.#waiters.clear();
  }

  #onClose(): void {
    this.#clock.reset();
    if (this.#closed) return;
    if (!this.#wasReady) this.#failedBeforeReady = true;
    if (!this.#down) {
      this.#down = true;
      this.#logger.warn({ store: this.kind }, 'Redis token store connection lost; failing requests until it is back');
    }
    for (const waiter of this.#waiters) {
      if (!waiter.failOnClose) continue;
      this.#waiters.delete(waiter);
      waiter.reject(storeUnavailable(this.kind, waiter.operation, 'connecting to Redis failed'));
    }
  }

  /**
   * Refuses a too-old server once, up front, rather than failing every consume later. An
   * ACL that forbids INFO only skips the check; a connection failure is an outage as usual.
   */
  async #checkServerVersion(): Promise<void> {
    let info: string;
    try {
      info = await this.#client.info('server');
    } catch (error) {
      if (error instanceof Error && error.name === 'ReplyError') {
        this.#versionChecked = true;
        this.#logger.debug({ store: this.kind, err: error.message }, 'cannot read Redis version; skipping check');
        return;
      }
      throw storeUnavailable(this.kind, 'ready', error instanceof Error ? error.message : String(error), error);
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

function unexpectedReply(kind: 'redis', operation: string, reply: unknown): VncgateError {
  return storeUnavailable(kind, operation, `unexpected reply from Redis (${typeof reply})`);
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
