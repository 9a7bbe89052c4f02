import { newRecord, type TokenRecord } from './record.js';
import type { ConsoleTarget } from './target.js';
import { generateToken, hashToken, isWellFormedToken, tokenLogId } from './token.js';
import {
  checkIssueCount,
  checkIssueTarget,
  checkPositiveIntOption,
  checkPresentedToken,
  invalidToken,
  silentLogger,
  storeUnavailable,
  TOKEN_STORE_DEFAULTS,
  ttlToMs,
  type IssuedToken,
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
    this.#timer = setInterval(() => this.sweep(), sweepIntervalMs);
    // The sweep only frees memory; it must never keep the process alive on its own.
    this.#timer.unref();
  }

  /** Live plus not-yet-swept expired tokens. */
  get size(): number {
    return this.#entries.size;
  }

  /** Drops expired entries; returns how many. Runs on the timer and when the store is full. */
  sweep(): number {
    const now = this.#now();
    let removed = 0;
    for (const [hash, entry] of this.#entries) {
      if (entry.expiresAtMs <= now) {
        this.#entries.delete(hash);
        removed++;
      }
    }
    return removed;
  }

  async issue(target: ConsoleTarget, ttlSeconds: number): Promise<IssuedToken> {
    const [issued] = await this.issueMany(target, ttlSeconds, 1);
    return issued!;
  }

  async issueMany(target: ConsoleTarget, ttlSeconds: number, count: number): Promise<IssuedToken[]> {
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
      const record = newRecord(clean, issuedAtMs, ttlMs);
      this.#entries.set(hashToken(token), { record, expiresAtMs: issuedAtMs + ttlMs });
      out.push({ token, expiresAt: record.expiresAt, record });
    }
    return out;
  }

  async consume(token: string | null | undefined): Promise<TokenRecord> {
    this.#assertOpen('consume');
    const presented = checkPresentedToken(token);
    const hash = hashToken(presented);
    const entry = this.#entries.get(hash);
    if (entry === undefined) throw invalidToken(presented, 'unknown');
    this.#entries.delete(hash);
    if (entry.expiresAtMs <= this.#now()) throw invalidToken(presented, 'unknown');
    this.#logger.debug({ store: this.kind, tokenId: tokenLogId(presented) }, 'console token consumed');
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
  }

  #assertOpen(operation: string): void {
    if (this.#timer === undefined) throw storeUnavailable(this.kind, operation, 'store is closed');
  }
}
