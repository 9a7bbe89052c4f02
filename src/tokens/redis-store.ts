import { VncgateError } from '../errors.js';
import type { UpstreamObserver } from '../observe/upstream.js';
import { decodeRecord, newRecord, type RecordExtras, type TokenRecord } from './record.js';
import { scriptBudgetMs } from './redis-clock.js';
import { RedisCommands, type ScriptPipeline } from './redis-commands.js';
import { storeNewTokens } from './redis-issue.js';
import { createRedisClient, type RedisConnectionOptions, type RedisMode } from './redis-connection.js';
import { RedisKeys } from './redis-keys.js';
import { RedisGrantStore } from './redis-grants.js';
import { RedisLimits } from './redis-limits.js';
import { RedisLink } from './redis-link.js';
import { SCRIPT_REPLY, SCRIPTS } from './redis-scripts.js';
import type { ConsoleTarget } from './target.js';
import { generateToken, isWellFormedToken, tokenLogId } from './token.js';
import {
  checkIssueCount,
  checkIssueTarget,
  checkPositiveIntOption,
  checkPresentedToken,
  checkSlotRequest,
  invalidToken,
  debugEnabled,
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

const KEY_PREFIX = /^[\x21-\x7e]{0,64}$/;
/** How long a revocation mark outlives the revoke: far beyond any restore still in flight. */
const REVOKED_MARK_MS = 60_000;
const DEFAULT_WAIT_TIMEOUT_MS = 200;

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
  readonly #mode: RedisMode;
  readonly #keys: RedisKeys;
  readonly #maxTtlSeconds: number;
  readonly #maxIssueCount: number;
  readonly #logger: TokenStoreLogger;
  readonly #now: () => number;
  /** The connection: readiness, clock, version, close (redis-link.ts). */
  readonly #link: RedisLink;
  /** How requests are sent: fail fast, timed, guarded scripts, WAIT (redis-commands.ts). */
  readonly #cmd: RedisCommands;
  /** Claims, leases, session slots, invalid-link counting (redis-limits.ts). */
  readonly #limits: RedisLimits;
  readonly grants: RedisGrantStore;

  constructor(options: RedisTokenStoreOptions) {
    const d = TOKEN_STORE_DEFAULTS;
    const keyPrefix = options.keyPrefix ?? d.keyPrefix;
    if (typeof keyPrefix !== 'string' || !KEY_PREFIX.test(keyPrefix)) {
      throw new VncgateError('CONFIG_ERR_INVALID', 'Redis key prefix must be at most 64 printable ASCII characters without spaces', {
        details: { option: 'keyPrefix' },
      });
    }
    const connectTimeoutMs = checkPositiveIntOption('connectTimeoutMs', options.connectTimeoutMs ?? d.connectTimeoutMs);
    const commandTimeoutMs = checkPositiveIntOption('commandTimeoutMs', options.commandTimeoutMs ?? d.commandTimeoutMs);
    const maxReconnectDelayMs = checkPositiveIntOption('maxReconnectDelayMs', options.maxReconnectDelayMs ?? d.maxReconnectDelayMs);
    this.#maxTtlSeconds = checkPositiveIntOption('maxTtlSeconds', options.maxTtlSeconds ?? d.maxTtlSeconds);
    this.#maxIssueCount = checkPositiveIntOption('maxIssueCount', options.maxIssueCount ?? d.maxIssueCount);
    const waitTimeoutMs = checkPositiveIntOption('waitTimeoutMs', options.waitTimeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS);
    this.#logger = options.logger ?? silentLogger;
    this.#now = options.now ?? Date.now;

    const { client, mode, switchWatch } = createRedisClient(options, {
      connectTimeoutMs,
      commandTimeoutMs,
      maxReconnectDelayMs,
      connectionName: options.connectionName ?? 'vncgate',
    });
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
    if (waitReplicas > 0 && 2 * waitTimeoutMs >= commandTimeoutMs) {
      client.disconnect();
      throw new VncgateError('CONFIG_ERR_INVALID', 'token store option waitTimeoutMs must be less than half of commandTimeoutMs', {
        details: { option: 'waitTimeoutMs' },
      });
    }
    for (const [name, script] of Object.entries(SCRIPTS)) client.defineCommand(name, script);
    this.#link = new RedisLink(client, mode, { connectTimeoutMs, commandTimeoutMs, logger: this.#logger, switchWatch });
    // The script acts before its deadline; the WAIT after it needs its own time before the reply.
    const budget = scriptBudgetMs(commandTimeoutMs - (waitReplicas > 0 ? waitTimeoutMs : 0));
    this.#cmd = new RedisCommands(this.#link, { waitReplicas, waitTimeoutMs, scriptBudgetMs: budget, observe: options.observe });
    this.#limits = new RedisLimits(this.#cmd, this.#keys);
    this.grants = new RedisGrantStore(this.#cmd, this.#keys);
  }

  async issue(target: ConsoleTarget, ttlSeconds: number, extras?: RecordExtras): Promise<IssuedToken> {
    const [issued] = await this.issueMany(target, ttlSeconds, 1, extras);
    return issued!;
  }

  async issueMany(target: ConsoleTarget, ttlSeconds: number, count: number, extras?: RecordExtras): Promise<IssuedToken[]> {
    const clean = checkIssueTarget(target);
    const ttlMs = ttlToMs(ttlSeconds, this.#maxTtlSeconds);
    checkIssueCount(count, this.#maxIssueCount);
    const issuedAtMs = this.#now();
    const batch = Array.from({ length: count }, () => {
      const token = generateToken();
      return { token, record: newRecord(clean, issuedAtMs, ttlMs, extras) };
    });
    await storeNewTokens(this.#cmd, this.#keys, this.#mode === 'cluster', batch, ttlMs);
    return batch.map(({ token, record }) => ({ token, expiresAt: record.expiresAt, record }));
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
    const { reply, acked } = await this.#cmd.run('consume', () => this.#cmd.guardedWithWait('vncgateConsume', [keys.length, ...keys], args));
    if (reply === SCRIPT_REPLY.COOLING_DOWN) throw rateLimited(this.kind);
    if (reply === SCRIPT_REPLY.BUSY && slots) throw targetBusy(slots.keys, slots.limit);
    if (reply === null) throw invalidToken(presented, 'unknown');
    if (!Array.isArray(reply) || typeof reply[0] !== 'string' || typeof reply[1] !== 'number') throw unexpectedReply(this.kind, 'consume', reply);
    const [value, ttlMs] = reply as [string, number];
    const { waitReplicas, waitTimeoutMs } = this.#cmd;
    if (acked !== null && acked < waitReplicas) {
      await this.#restore(presented, value, ttlMs, acked);
      if (slots) this.releaseSlots(slots.keys, slots.owner).catch(() => undefined);
      throw storeUnavailable(this.kind, 'consume', `the consume reached ${acked} of ${waitReplicas} Redis replicas within ${waitTimeoutMs} ms; not used`);
    }
    return this.#record(presented, value, 'consume');
  }

  /** Puts a consumed token back after its delete was not replicated (see the class comment). */
  async #restore(presented: string, value: string, ttlMs: number, acked: number): Promise<void> {
    const log = { store: this.kind, tokenId: tokenLogId(presented), acked, waitReplicas: this.#cmd.waitReplicas };
    try {
      const restored = await this.#cmd.guarded('vncgateRestore', [this.#keys.token(presented), this.#keys.revoked(presented)], [value, ttlMs]);
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
      reply = await this.#cmd.run('peek', (c) => c.get(this.#keys.token(presented)));
    } else {
      const cool = options.client === undefined ? '' : this.#keys.cool(options.client);
      reply = await this.#cmd.run('peek', () => this.#cmd.script('vncgatePeek', this.#keys.token(presented), cool));
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
    if (operation === 'consume' && debugEnabled(this.#logger)) this.#logger.debug({ store: this.kind, tokenId: tokenLogId(presented) }, 'console token consumed');
    return decoded.record;
  }

  /**
   * Deletes the token. With replicas to wait for, it also leaves a revocation mark (a restore must
   * not bring the token back) and fails if the revoke is not replicated in time.
   */
  async revoke(token: string): Promise<boolean> {
    if (!isWellFormedToken(token)) return false;
    if (this.#cmd.waitReplicas === 0) return (await this.#cmd.run('revoke', (client) => client.del(this.#keys.token(token)))) === 1;
    const { reply, acked } = await this.#cmd.run('revoke', async (client) => {
      const p = client.pipeline() as ScriptPipeline;
      p.vncgateRevoke(this.#keys.token(token), this.#keys.revoked(token), REVOKED_MARK_MS);
      const [[error, deleted], waited] = await this.#cmd.execWithWait(p);
      if (error !== null) throw error;
      return { reply: deleted, acked: waited };
    });
    if (acked !== null) this.#cmd.checkReplicated(acked, 'revoke');
    return reply === 1;
  }

  claimOnce(key: string, ttlMs: number): Promise<boolean> {
    return this.#limits.claimOnce(key, ttlMs);
  }

  acquireLease(key: string, owner: string, ttlMs: number): Promise<boolean> {
    return this.#limits.acquireLease(key, owner, ttlMs);
  }

  renewLease(key: string, owner: string, ttlMs: number): Promise<boolean> {
    return this.#limits.renewLease(key, owner, ttlMs);
  }

  releaseLease(key: string, owner: string): Promise<void> {
    return this.#limits.releaseLease(key, owner);
  }

  acquireSlots(request: SlotRequest): Promise<boolean> {
    return this.#limits.acquireSlots(request);
  }

  renewSlots(keys: readonly string[], owner: string, ttlMs: number): Promise<void> {
    return this.#limits.renewSlots(keys, owner, ttlMs);
  }

  releaseSlots(keys: readonly string[], owner: string): Promise<void> {
    return this.#limits.releaseSlots(keys, owner);
  }

  coolingDown(client: string): Promise<boolean> {
    return this.#limits.coolingDown(client);
  }

  countInvalid(client: string, allowedPerMinute: number, cooldownMs: number): Promise<boolean> {
    return this.#limits.countInvalid(client, allowedPerMinute, cooldownMs);
  }

  ready(): Promise<void> {
    return this.#link.ready(() => this.#cmd.run('ready', (client) => client.ping()));
  }

  close(): Promise<void> {
    return this.#link.close();
  }
}

const unexpectedReply = (kind: 'redis', operation: string, reply: unknown): VncgateError => storeUnavailable(kind, operation, `unexpected reply from Redis (${typeof reply})`);
