import { MemoryGrantStore } from './memory-grants.js';
import { MemoryLimits } from './memory-limits.js';
import { newRecord, type RecordExtras, type TokenRecord } from './record.js';
import type { ConsoleTarget } from './target.js';
import { generateToken, hashToken, isWellFormedToken, tokenLogId } from './token.js';
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

export interface MemoryTokenStoreOptions {
  /** Live tokens held at most; issuing beyond it fails with TOKEN_ERR_STORE_UNAVAILABLE. Default 100 000. */
  maxTokens?: number | undefined;
  /** Interval of the (unref'd) expiry sweep. Default 60 000 ms. */
  sweepIntervalMs?: number | undefined;
  /** Default 86 400 s. */
  maxTtlSeconds?: number | undefined;
  /** Default 1000. */
  maxIssueCount?: number | undefined;
  logger?: TokenStoreLogger | undefined;
  /** Clock in epoch milliseconds; tests inject a fake one. Default `Date.now`. */
  now?: (() => number) | undefined;
}

interface Entry {
  readonly record: TokenRecord;
  readonly expiresAtMs: number;
}

/**
 * Tokens in a Map inside this process: for a single vncgate instance and for tests. Keyed by the
 * token's hash like the Redis store, so a heap dump does not reveal live tokens either. Node runs
 * each method body to its first `await` without interruption, and the consume path has none
 * before its `delete`, so consumption is atomic within the process.
 */
export class MemoryTokenStore implements TokenStore {
  readonly kind = 'memory' as const;
  readonly #entries = new Map<string, Entry>();
  /** Single-use marks and one-session leases (Ironic drop-in tokens), keyed by hash. */
  readonly #leases = new Map<string, { owner: string; expiresAtMs: number }>();
  /** Session slots and the invalid-link counter. */
  readonly #limits: MemoryLimits;
  /** Reconnect grants (memory-grants.ts). */
  readonly grants: MemoryGrantStore;
  readonly #maxTokens: number;
  readonly #maxTtlSeconds: number;
  readonly #maxIssueCount: number;
  readonly #logger: TokenStoreLogger;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: MemoryTokenStoreOptions = {}) {
    const d = TOKEN_STORE_DEFAULTS;
    this.#maxTokens = checkPositiveIntOption('maxTokens', options.maxTokens ?? d.maxTokens);
    this.#maxTtlSeconds = checkPositiveIntOption('maxTtlSeconds', options.maxTtlSeconds ?? d.maxTtlSeconds);
    this.#maxIssueCount = checkPositiveIntOption('maxIssueCount', options.maxIssueCount ?? d.maxIssueCount);
    const sweepIntervalMs = checkPositiveIntOption('sweepIntervalMs', options.sweepIntervalMs ?? d.sweepIntervalMs);
    this.#logger = options.logger ?? silentLogger;
    this.#now = options.now ?? Date.now;
    this.#limits = new MemoryLimits(() => this.#now());
    this.grants = new MemoryGrantStore(() => this.#now());
    this.#timer = setInterval(() => this.sweep(), sweepIntervalMs);
    // The sweep only frees memory; it must never keep the process alive on its own.
    this.#timer.unref();
  }

  /** Live plus not-yet-swept expired tokens. */
  get size(): number {
    return this.#entries.size;
  }

  /** Drops expired entries; returns how many tokens. Runs on the timer and when the store is full. */
  sweep(): number {
    const now = this.#now();
    this.#limits.sweep();
    let removed = 0;
    for (const [hash, entry] of this.#entries) {
      if (entry.expiresAtMs <= now) {
        this.#entries.delete(hash);
        removed++;
      }
    }
    return removed;
  }

  async issue(target: ConsoleTarget, ttlSeconds: number, extras?: RecordExtras): Promise<IssuedToken> {
    const [issued] = await this.issueMany(target, ttlSeconds, 1, extras);
    return issued!;
  }

  async issueMany(target: ConsoleTarget, ttlSeconds: number, count: number, extras?: RecordExtras): Promise<IssuedToken[]> {
    this.#assertOpen('issue');
    const clean = checkIssueTarget(target);
    const ttlMs = ttlToMs(ttlSeconds, this.#maxTtlSeconds);
    checkIssueCount(count, this.#maxIssueCount);
    // Sweep only when needed: a full store is the one case where expired entries cost anything.
    if (this.#entries.size + count > this.#maxTokens) this.sweep();
    if (this.#entries.size + count > this.#maxTokens) {
      this.#logger.warn({ store: this.kind, maxTokens: this.#maxTokens, requested: count }, 'memory token store is full');
      throw storeUnavailable(this.kind, 'issue', `store is full (maxTokens ${this.#maxTokens})`);
    }
    const issuedAtMs = this.#now();
    const out: IssuedToken[] = [];
    for (let i = 0; i < count; i++) {
      const token = generateToken();
      const record = newRecord(clean, issuedAtMs, ttlMs, extras);
      this.#entries.set(hashToken(token), { record, expiresAtMs: issuedAtMs + ttlMs });
      out.push({ token, expiresAt: record.expiresAt, record });
    }
    return out;
  }

  async consume(token: string | null | undefined, options: ConsumeOptions = {}): Promise<TokenRecord> {
    this.#assertOpen('consume');
    const presented = checkPresentedToken(token);
    if (options.slots) checkSlotRequest(options.slots);
    // Same order as the Redis script: cool-down, token, slots, and only then the delete.
    if (options.client !== undefined && this.#limits.coolingDown(options.client)) throw rateLimited(this.kind);
    const hash = hashToken(presented);
    const entry = this.#entries.get(hash);
    if (entry === undefined) throw invalidToken(presented, 'unknown');
    if (entry.expiresAtMs <= this.#now()) {
      this.#entries.delete(hash);
      throw invalidToken(presented, 'unknown');
    }
    if (options.slots) {
      if (!this.#limits.fits(options.slots)) throw targetBusy(options.slots.keys, options.slots.limit);
      this.#limits.take(options.slots);
    }
    this.#entries.delete(hash);
    if (debugEnabled(this.#logger)) this.#logger.debug({ store: this.kind, tokenId: tokenLogId(presented) }, 'console token consumed');
    return entry.record;
  }

  async peek(token: string | null | undefined, options: Pick<ConsumeOptions, 'client'> = {}): Promise<TokenRecord> {
    this.#assertOpen('peek');
    const presented = checkPresentedToken(token);
    if (options.client !== undefined && this.#limits.coolingDown(options.client)) throw rateLimited(this.kind);
    const entry = this.#entries.get(hashToken(presented));
    if (entry === undefined || entry.expiresAtMs <= this.#now()) throw invalidToken(presented, 'unknown');
    return entry.record;
  }

  async revoke(token: string): Promise<boolean> {
    this.#assertOpen('revoke');
    if (!isWellFormedToken(token)) return false;
    const hash = hashToken(token);
    const entry = this.#entries.get(hash);
    if (entry === undefined) return false;
    this.#entries.delete(hash);
    return entry.expiresAtMs > this.#now();
  }

  async claimOnce(key: string, ttlMs: number): Promise<boolean> {
    return this.acquireLease(`used:${key}`, '1', ttlMs);
  }

  async acquireLease(key: string, owner: string, ttlMs: number): Promise<boolean> {
    this.#assertOpen('lease');
    const h = hashToken(key);
    const now = this.#now();
    const cur = this.#leases.get(h);
    if (cur && cur.expiresAtMs > now) return false;
    if (this.#leases.size >= this.#maxTokens) this.#sweepLeases(now);
    this.#leases.set(h, { owner, expiresAtMs: now + ttlMs });
    return true;
  }

  async renewLease(key: string, owner: string, ttlMs: number): Promise<boolean> {
    this.#assertOpen('lease');
    const cur = this.#leases.get(hashToken(key));
    const now = this.#now();
    if (!cur || cur.owner !== owner || cur.expiresAtMs <= now) return false;
    cur.expiresAtMs = now + ttlMs;
    return true;
  }

  async releaseLease(key: string, owner: string): Promise<void> {
    const h = hashToken(key);
    if (this.#leases.get(h)?.owner === owner) this.#leases.delete(h);
  }

  async acquireSlots(request: SlotRequest): Promise<boolean> {
    this.#assertOpen('slots');
    checkSlotRequest(request);
    return this.#limits.tryAcquire(request);
  }

  async renewSlots(keys: readonly string[], owner: string, ttlMs: number): Promise<void> {
    this.#assertOpen('slots');
    this.#limits.renew(keys, owner, ttlMs);
  }

  async releaseSlots(keys: readonly string[], owner: string): Promise<void> {
    this.#limits.release(keys, owner);
  }

  async coolingDown(client: string): Promise<boolean> {
    this.#assertOpen('rate');
    return this.#limits.coolingDown(client);
  }

  async countInvalid(client: string, allowedPerMinute: number, cooldownMs: number): Promise<boolean> {
    this.#assertOpen('rate');
    return this.#limits.countInvalid(client, allowedPerMinute, cooldownMs);
  }

  #sweepLeases(now: number): void {
    for (const [k, v] of this.#leases) if (v.expiresAtMs <= now) this.#leases.delete(k);
  }

  async ready(): Promise<void> {
    this.#assertOpen('ready');
  }

  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#entries.clear();
    this.#leases.clear();
    this.#limits.clear();
  }

  #assertOpen(operation: string): void {
    if (this.#timer === undefined) throw storeUnavailable(this.kind, operation, 'store is closed');
  }
}
