import { performance } from 'node:perf_hooks';
import type { Cluster, Redis } from 'ioredis';
import { VncgateError } from '../errors.js';
import { timed, type UpstreamObserver } from '../observe/upstream.js';
import { decodeRecord, encodeRecord, newRecord, type TokenIssuer, type TokenRecord } from './record.js';
import { RedisClock, scriptBudgetMs } from './redis-clock.js';
import { createRedisClient, type RedisConnectionOptions, type RedisMode } from './redis-connection.js';
import { RedisKeys } from './redis-keys.js';
import { SCRIPT_REPLY, SCRIPTS, type ScriptName } from './redis-scripts.js';
import type { ConsoleTarget } from './target.js';
import { generateToken, isWellFormedToken, tokenLogId } from './token.js';
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

export interface RedisTokenStoreOptions extends RedisConnectionOptions {
  /**
   * Replicas that must have a consume (and a claim, a revoke, an issue) before it counts
   * (`WAIT`), so a failover cannot bring a used token back. Default 1 with `sentinels` or
   * `cluster`, 0 with `url`. See `consume`.
   */
  waitReplicas?: number | undefined;
  /** How long `WAIT` may take; less than half of `commandTimeoutMs`. Default 200 ms. */
  waitTimeoutMs?: number | undefined;
  /** Prepended to every key: `<keyPrefix>tok:<sha256 hex>` (redis-keys.ts). Default `vncgate:`. */
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
/** How long a revocation mark outlives the revoke: far beyond any restore still in flight. */
const REVOKED_MARK_MS = 60_000;
const DEFAULT_WAIT_TIMEOUT_MS = 200;
/** How often the offset to Redis' clock is measured again while connected. */
const CLOCK_RESAMPLE_MS = 30_000;

type ScriptCall = (...args: (string | number)[]) => Promise<unknown>;
type Client = Redis | Cluster;
type PipelineLike = ReturnType<Client['pipeline']>;

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
 *
 * Failover (issue 17): replication is asynchronous, so a consume acknowledged by the primary can
 * be lost with it, and the promoted replica would accept the token again. A consume therefore
 * counts only once `WAIT` confirms that `waitReplicas` replicas have the delete. If they do not
 * within `waitTimeoutMs`, the caller is refused (TOKEN_ERR_STORE_UNAVAILABLE) and the token is put
 * back (unless revoked meanwhile), so the refusal is truthful whichever copy survives: the link
 * was never used. Claims (Nova/Ironic single-use) are undone the same way; issues and revokes
 * that are not replicated fail. On a Redis Cluster the WAIT goes in one pipeline with the script,
 * so it reaches the primary that ran it. Session slots and leases are not waited for: a lost
 * slot is taken again by the next renewal.
 */
export class RedisTokenStore implements TokenStore {
  readonly kind = 'redis' as const;
  readonly #client: Client;
  readonly #mode: RedisMode;
  readonly #keys: RedisKeys;
  readonly #connectTimeoutMs: number;
  readonly #commandTimeoutMs: number;
  readonly #waitReplicas: number;
  readonly #waitTimeoutMs: number;
  readonly #maxTtlSeconds: number;
  readonly #maxIssueCount: number;
  readonly #logger: TokenStoreLogger;
  readonly #now: () => number;
  readonly #observe: UpstreamObserver | undefined;
  readonly #waiters = new Set<ReadyWaiter>();
  readonly #clock: RedisClock;
  /** What a guarded script may still act in, of the command timeout (redis-clock.ts), less the WAIT. */
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
    const keyPrefix = options.keyPrefix ?? d.keyPrefix;
    if (typeof keyPrefix !== 'string' || !KEY_PREFIX.test(keyPrefix)) {
      throw new VncgateError('CONFIG_ERR_INVALID', 'Redis key prefix must be at most 64 printable ASCII characters without spaces', {
        details: { option: 'keyPrefix' },
      });
    }
    this.#connectTimeoutMs = checkPositiveIntOption('connectTimeoutMs', options.connectTimeoutMs ?? d.connectTimeoutMs);
    this.#commandTimeoutMs = checkPositiveIntOption('commandTimeoutMs', options.commandTimeoutMs ?? d.commandTimeoutMs);
    const maxReconnectDelayMs = checkPositiveIntOption('maxReconnectDelayMs', options.maxReconnectDelayMs ?? d.maxReconnectDelayMs);
    this.#maxTtlSeconds = checkPositiveIntOption('maxTtlSeconds', options.maxTtlSeconds ?? d.maxTtlSeconds);
    this.#maxIssueCount = checkPositiveIntOption('maxIssueCount', options.maxIssueCount ?? d.maxIssueCount);
    this.#waitTimeoutMs = checkPositiveIntOption('waitTimeoutMs', options.waitTimeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS);
    this.#logger = options.logger ?? silentLogger;
    this.#now = options.now ?? Date.now;
    this.#observe = options.observe;

    const { client, mode } = createRedisClient(options, {
      connectTimeoutMs: this.#connectTimeoutMs,
      commandTimeoutMs: this.#commandTimeoutMs,
      maxReconnectDelayMs,
      connectionName: options.connectionName ?? 'vncgate',
    });
    this.#client = client;
    this.#mode = mode;
    if (mode === 'cluster' && /[{}]/.test(keyPrefix)) {
      client.disconnect();
      throw new VncgateError('CONFIG_ERR_INVALID', 'Redis key prefix must not contain { or } with a Redis Cluster (hash tags)', {
        details: { option: 'keyPrefix' },
      });
    }
    this.#keys = new RedisKeys(keyPrefix, mode === 'cluster');
    const waitReplicas = options.waitReplicas ?? (mode === 'url' ? 0 : 1);
    if (!Number.isSafeInteger(waitReplicas) || waitReplicas < 0) {
      client.disconnect();
      throw new VncgateError('CONFIG_ERR_INVALID', 'token store option waitReplicas must be a whole number', { details: { option: 'waitReplicas' } });
    }
    this.#waitReplicas = waitReplicas;
    if (waitReplicas > 0 && 2 * this.#waitTimeoutMs >= this.#commandTimeoutMs) {
      client.disconnect();
      throw new VncgateError('CONFIG_ERR_INVALID', 'token store option waitTimeoutMs must be less than half of commandTimeoutMs', {
        details: { option: 'waitTimeoutMs' },
      });
    }
    for (const [name, script] of Object.entries(SCRIPTS)) client.defineCommand(name, script);
    // The script acts before its deadline; the WAIT after it needs its own time before the reply.
    this.#scriptBudgetMs = scriptBudgetMs(this.#commandTimeoutMs - (waitReplicas > 0 ? this.#waitTimeoutMs : 0));
    this.#clock = new RedisClock(() => this.#readTime());
    this.#clockTimer = setInterval(() => {
      if (this.#client.status === 'ready') this.#clock.sample().catch(() => undefined);
    }, CLOCK_RESAMPLE_MS);
    this.#clockTimer.unref();
    client.on('ready', () => this.#onReady());
    client.on('close', () => this.#onClose());
    // A cluster shard changed primary: its clock has not been measured yet.
    if (mode === 'cluster') client.on('+node', () => this.#clock.reset());
    // Without a listener ioredis prints every connection error to stderr. Errors repeat on each
    // reconnect attempt, so they go to debug; the outage itself is logged once in #onClose.
    client.on('error', (error: Error) => {
      this.#logger.debug({ store: this.kind, err: error.message }, 'Redis token store connection error');
    });
    if (mode === 'cluster') {
      (client as Cluster).on('node error', (error: Error, node: string) => {
        this.#logger.debug({ store: this.kind, node, err: error.message }, 'Redis Cluster node error');
      });
    }
  }

  /**
   * Redis' time for the clock offset. On a cluster, the earliest of every primary's: a deadline
   * built from it is early, never late, on every shard (redis-clock.ts; a refusal too many at
   * worst). Primaries that do not answer are skipped; one answer is needed.
   */
  async #readTime(): Promise<[string, string]> {
    if (this.#mode !== 'cluster') return this.#client.time().then(([s, us]) => [String(s), String(us)]);
    const answers = await Promise.allSettled((this.#client as Cluster).nodes('master').map((node) => node.time()));
    let best: [string, string] | null = null;
    for (const a of answers) {
      if (a.status !== 'fulfilled') continue;
      const [s, us] = a.value;
      if (best === null || Number(s) * 1e6 + Number(us) < Number(best[0]) * 1e6 + Number(best[1])) best = [String(s), String(us)];
    }
    if (best === null) throw new Error('no Redis Cluster primary answered TIME');
    return best;
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
    // NX because overwriting a live token would silently retarget it; with 256 random bits a
    // collision means a broken RNG, which deserves a loud failure.
    const replies = this.#mode === 'cluster' ? await this.#issueOnCluster(batch, ttlMs) : await this.#issueInTransaction(batch, ttlMs);
    for (const [error, reply] of replies) {
      if (error !== null) throw storeUnavailable(this.kind, 'issue', error.message, error);
      if (reply !== 'OK') throw new VncgateError('INTERNAL_ERR', 'a freshly generated token already existed in Redis');
    }
    return batch.map(({ token, record }) => ({ token, expiresAt: record.expiresAt, record }));
  }

  /** MULTI/EXEC: one round trip, and either every SET runs or (connection lost before EXEC) none. */
  async #issueInTransaction(batch: { token: string; record: TokenRecord }[], ttlMs: number): Promise<[Error | null, unknown][]> {
    const replies = await this.#run('issue', async (client) => {
      const tx = client.multi();
      for (const { token, record } of batch) tx.set(this.#keys.token(token), encodeRecord(record), 'PX', ttlMs, 'NX');
      const result = await tx.exec();
      if (this.#waitReplicas > 0) this.#checkReplicated(await (client as Redis).wait(this.#waitReplicas, this.#waitTimeoutMs), 'issue');
      return result;
    });
    if (replies === null || replies.length !== batch.length) throw storeUnavailable(this.kind, 'issue', 'transaction was not executed');
    return replies;
  }

  /**
   * One pipeline per token (tokens hash to different slots, so there is no transaction across
   * them): some may be stored when the call fails; nobody knows them, and they expire.
   */
  async #issueOnCluster(batch: { token: string; record: TokenRecord }[], ttlMs: number): Promise<[Error | null, unknown][]> {
    return this.#run('issue', (client) =>
      Promise.all(
        batch.map(async ({ token, record }) => {
          const p = client.pipeline().set(this.#keys.token(token), encodeRecord(record), 'PX', ttlMs, 'NX');
          const [set, acked] = await this.#execWithWait(p);
          if (acked !== null) this.#checkReplicated(acked, 'issue');
          return set;
        }),
      ),
    );
  }

  /**
   * One script (redis-scripts.ts `vncgateConsume`): GET and DEL, unless Redis runs it after the
   * deadline this request was given, in which case nothing is deleted and the caller gets
   * TOKEN_ERR_STORE_UNAVAILABLE, truthfully: the link still works (issue 15). The deadline is the
   * script budget (command timeout minus a reply margin and the WAIT), so by the time ioredis
   * gives up on the reply, the script either acted early enough for its reply to be back, or never
   * will act. The first request on a new connection may first wait for the clock sample (one more
   * round trip, with its own timeout).
   *
   * On a Redis Cluster the cool-down check, the slots and the token are in different slots, so
   * they are three steps: the cool-down mark is read first, the slots taken next (a busy target
   * still leaves the link unused) and given back if the token is then refused. Single use rests
   * on the token's own script alone, so it is as strict as on one server; what the split costs is
   * a slot held for a few milliseconds by a request that turns out invalid.
   */
  async consume(token: string | null | undefined, options: ConsumeOptions = {}): Promise<TokenRecord> {
    const presented = checkPresentedToken(token);
    const { client, slots } = options;
    if (slots) checkSlotRequest(slots);
    if (this.#mode === 'cluster') {
      if (client !== undefined && (await this.coolingDown(client))) throw rateLimited(this.kind);
      if (slots && !(await this.acquireSlots(slots))) throw targetBusy(slots.keys, slots.limit);
      try {
        return await this.#consumeToken(presented, [this.#keys.token(presented)], [], undefined);
      } catch (error) {
        if (slots) this.releaseSlots(slots.keys, slots.owner).catch(() => undefined);
        throw error;
      }
    }
    const keys = [this.#keys.token(presented), client === undefined ? '' : this.#keys.cool(client), ...(slots?.keys.map((k) => this.#keys.slot(k)) ?? [])];
    const args = slots ? [slots.owner, slots.limit, Math.max(1, Math.round(slots.ttlMs))] : [];
    return this.#consumeToken(presented, keys, args, slots);
  }

  async #consumeToken(presented: string, keys: string[], args: (string | number)[], slots: ConsumeOptions['slots']): Promise<TokenRecord> {
    const { reply, acked } = await this.#run('consume', () => this.#guardedWithWait('vncgateConsume', [keys.length, ...keys], args));
    if (reply === SCRIPT_REPLY.COOLING_DOWN) throw rateLimited(this.kind);
    if (reply === SCRIPT_REPLY.BUSY && slots) throw targetBusy(slots.keys, slots.limit);
    if (reply === null) throw invalidToken(presented, 'unknown');
    if (!Array.isArray(reply) || typeof reply[0] !== 'string' || typeof reply[1] !== 'number') throw unexpectedReply(this.kind, 'consume', reply);
    const [value, ttlMs] = reply as [string, number];
    if (acked !== null && acked < this.#waitReplicas) {
      await this.#restore(presented, value, ttlMs, acked);
      if (slots) this.releaseSlots(slots.keys, slots.owner).catch(() => undefined);
      throw storeUnavailable(this.kind, 'consume', `the consume reached ${acked} of ${this.#waitReplicas} Redis replicas within ${this.#waitTimeoutMs} ms; not used`);
    }
    return this.#record(presented, value, 'consume');
  }

  /** Puts a consumed token back after its delete was not replicated (see the class comment). */
  async #restore(presented: string, value: string, ttlMs: number, acked: number): Promise<void> {
    const log = { store: this.kind, tokenId: tokenLogId(presented), acked, waitReplicas: this.#waitReplicas };
    try {
      const restored = await this.#guarded('vncgateRestore', [this.#keys.token(presented), this.#keys.revoked(presented)], [value, ttlMs]);
      this.#logger.warn({ ...log, restored: restored === 1 }, 'console token consume not replicated in time; refused and put back');
    } catch (error) {
      // The primary is likely going away: whichever copy survives, the caller was refused, so at
      // worst the link works once more (never twice).
      this.#logger.warn({ ...log, err: error instanceof Error ? error.message : String(error) }, 'console token consume not replicated in time; refused, not put back');
    }
  }

  async peek(token: string | null | undefined, options: Pick<ConsumeOptions, 'client'> = {}): Promise<TokenRecord> {
    const presented = checkPresentedToken(token);
    let reply: unknown;
    if (this.#mode === 'cluster') {
      if (options.client !== undefined && (await this.coolingDown(options.client))) throw rateLimited(this.kind);
      reply = await this.#run('peek', (c) => c.get(this.#keys.token(presented)));
    } else {
      const cool = options.client === undefined ? '' : this.#keys.cool(options.client);
      reply = await this.#run('peek', () => this.#script('vncgatePeek', this.#keys.token(presented), cool));
    }
    if (reply === SCRIPT_REPLY.COOLING_DOWN) throw rateLimited(this.kind);
    if (reply === null) throw invalidToken(presented, 'unknown');
    if (typeof reply !== 'string') throw unexpectedReply(this.kind, 'peek', reply);
    return this.#record(presented, reply, 'peek');
  }

  #record(presented: string, reply: string, operation: 'consume' | 'peek'): TokenRecord {
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

  /**
   * Deletes the token. With replicas to wait for, it also leaves a revocation mark (a restore must
   * not bring the token back) and fails if the revoke is not replicated in time.
   */
  async revoke(token: string): Promise<boolean> {
    if (!isWellFormedToken(token)) return false;
    if (this.#waitReplicas === 0) return (await this.#run('revoke', (client) => client.del(this.#keys.token(token)))) === 1;
    const { reply, acked } = await this.#run('revoke', async (client) => {
      const p = client.pipeline() as PipelineLike & Record<ScriptName, (...args: (string | number)[]) => PipelineLike>;
      p.vncgateRevoke(this.#keys.token(token), this.#keys.revoked(token), REVOKED_MARK_MS);
      const [[error, deleted], waited] = await this.#execWithWait(p);
      if (error !== null) throw error;
      return { reply: deleted, acked: waited };
    });
    if (acked !== null) this.#checkReplicated(acked, 'revoke');
    return reply === 1;
  }

  async claimOnce(key: string, ttlMs: number): Promise<boolean> {
    const claimKey = this.#keys.lease('used', key);
    const { reply, acked } = await this.#run('claim', () => this.#guardedWithWait('vncgateClaim', [claimKey], [Math.max(1, Math.round(ttlMs))]));
    if (reply === 1 && acked !== null && acked < this.#waitReplicas) {
      // As a consume: the caller is refused, so the claim is taken back (nobody else can hold it).
      await this.#run('claim', (c) => c.del(claimKey)).catch(() => undefined);
      throw storeUnavailable(this.kind, 'claim', `the claim reached ${acked} of ${this.#waitReplicas} Redis replicas within ${this.#waitTimeoutMs} ms; not used`);
    }
    return reply === 1;
  }

  async acquireLease(key: string, owner: string, ttlMs: number): Promise<boolean> {
    const reply = await this.#run('lease', () => this.#guarded('vncgateLease', [this.#keys.lease('lease', key)], [owner, Math.max(1, Math.round(ttlMs))]));
    return reply === 1;
  }

  async renewLease(key: string, owner: string, ttlMs: number): Promise<boolean> {
    // Compare-and-extend in one step, so a lease that expired and went to someone else stays theirs.
    const reply = await this.#run('lease', (client) =>
      client.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end", 1, this.#keys.lease('lease', key), owner, String(Math.max(1, Math.round(ttlMs)))),
    );
    return reply === 1;
  }

  async releaseLease(key: string, owner: string): Promise<void> {
    await this.#run('lease', (client) =>
      client.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end", 1, this.#keys.lease('lease', key), owner),
    );
  }

  async acquireSlots(request: SlotRequest): Promise<boolean> {
    checkSlotRequest(request);
    const keys = request.keys.map((k) => this.#keys.slot(k));
    const reply = await this.#run('slots', () =>
      this.#guarded('vncgateSlots', [keys.length, ...keys], [request.owner, request.limit, Math.max(1, Math.round(request.ttlMs))]),
    );
    return reply === 1;
  }

  async renewSlots(keys: readonly string[], owner: string, ttlMs: number): Promise<void> {
    const slotKeys = keys.map((k) => this.#keys.slot(k));
    await this.#run('slots', () => this.#guarded('vncgateRenewSlots', [slotKeys.length, ...slotKeys], [owner, Math.max(1, Math.round(ttlMs))]));
  }

  async releaseSlots(keys: readonly string[], owner: string): Promise<void> {
    const slotKeys = keys.map((k) => this.#keys.slot(k));
    await this.#run('slots', () => this.#script('vncgateReleaseSlots', slotKeys.length, ...slotKeys, owner));
  }

  async coolingDown(client: string): Promise<boolean> {
    return (await this.#run('rate', (c) => c.exists(this.#keys.cool(client)))) === 1;
  }

  async countInvalid(client: string, allowedPerMinute: number, cooldownMs: number): Promise<boolean> {
    const reply = await this.#run('rate', () =>
      this.#script('vncgateCountInvalid', this.#keys.bad(client), this.#keys.cool(client), INVALID_WINDOW_MS, allowedPerMinute, Math.max(1, Math.round(cooldownMs))),
    );
    return reply === 1;
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
    return this.#notTooLate(name, await this.#script(name, ...keys, deadline, ...args));
  }

  #notTooLate(name: ScriptName, reply: unknown): unknown {
    if (reply === SCRIPT_REPLY.TOO_LATE) {
      throw new Error(`Redis ran the ${name} script after its ${this.#scriptBudgetMs} ms deadline; it changed nothing`);
    }
    return reply;
  }

  /**
   * `#guarded`, followed in the same pipeline (same connection, same cluster node) by WAIT.
   * `acked`: replicas that have the script's writes, or null when waiting is off.
   */
  async #guardedWithWait(name: ScriptName, keys: (string | number)[], args: (string | number)[]): Promise<{ reply: unknown; acked: number | null }> {
    if (this.#waitReplicas === 0) return { reply: await this.#guarded(name, keys, args), acked: null };
    const deadline = await this.#clock.deadline(this.#scriptBudgetMs);
    const p = this.#client.pipeline() as PipelineLike & Record<ScriptName, (...args: (string | number)[]) => PipelineLike>;
    p[name](...keys, deadline, ...args);
    const [[error, reply], acked] = await this.#execWithWait(p);
    if (error !== null) throw error;
    return { reply: this.#notTooLate(name, reply), acked };
  }

  /**
   * Appends WAIT (when waiting is on) and runs the pipeline: the first command's [error, reply]
   * and the replicas that acknowledged (0 when WAIT failed), or null when waiting is off. WAIT
   * answers for every write this connection made before it, so it covers the command before it.
   */
  async #execWithWait(p: PipelineLike): Promise<[[Error | null, unknown], number | null]> {
    if (this.#waitReplicas > 0) p.wait(this.#waitReplicas, this.#waitTimeoutMs);
    const results = await p.exec();
    if (results === null || results.length === 0) throw new Error('pipeline was not executed');
    const first = results[0]!;
    if (this.#waitReplicas === 0) return [first, null];
    const [waitError, acked] = results[results.length - 1]!;
    return [first, waitError === null && typeof acked === 'number' ? acked : 0];
  }

  #checkReplicated(acked: number, operation: string): void {
    if (acked < this.#waitReplicas) {
      throw new Error(`the ${operation} reached ${acked} of ${this.#waitReplicas} Redis replicas within ${this.#waitTimeoutMs} ms`);
    }
  }

  async ready(): Promise<void> {
    this.#assertOpen('ready');
    if (this.#client.status !== 'ready') await this.#waitForReady('ready', false);
    if (!this.#versionChecked) await this.#checkVersionAtStart();
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

  async #run<T>(operation: string, command: (client: Client) => Promise<T>): Promise<T> {
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
