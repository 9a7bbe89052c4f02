import { timingSafeEqual } from 'node:crypto';
import { grantHash, invalidGrant, type GrantBinding, type GrantRecord, type GrantRenewal, type GrantStore } from './grant.js';

type Entry = { record: GrantRecord; binding: GrantBinding; expiresAtMs: number };

/** Hex digests of equal length compared without a data-dependent early exit. */
function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Reconnect grants inside this process (single-process vncgate, tests), with the Redis store's
 * semantics (redis-grants.ts). Synchronous bodies, so each operation is atomic. Bounded: past
 * `maxGrants` live grants a mint fails (the session simply gets no grant).
 */
export class MemoryGrantStore implements GrantStore {
  readonly #entries = new Map<string, Entry>();
  /** Grants consumed lately (hash → end of the mark), for `renew` to tell `used` from `lost`. */
  readonly #used = new Map<string, number>();
  readonly #now: () => number;
  readonly #maxGrants: number;

  constructor(now: () => number = Date.now, maxGrants = 100_000) {
    this.#now = now;
    this.#maxGrants = maxGrants;
  }

  get size(): number {
    return this.#entries.size;
  }

  #live(secret: string): Entry | undefined {
    const hash = grantHash(secret);
    const e = this.#entries.get(hash);
    if (e !== undefined && e.expiresAtMs <= this.#now()) {
      this.#entries.delete(hash);
      return undefined;
    }
    return e;
  }

  #sweep(): void {
    const now = this.#now();
    for (const [h, e] of this.#entries) if (e.expiresAtMs <= now) this.#entries.delete(h);
    for (const [h, until] of this.#used) if (until <= now) this.#used.delete(h);
  }

  async mint(secret: string, record: GrantRecord, binding: GrantBinding, ttlMs: number): Promise<void> {
    if (this.#entries.size >= this.#maxGrants) this.#sweep();
    if (this.#entries.size >= this.#maxGrants) throw new Error(`memory grant store is full (${this.#maxGrants})`);
    this.#used.delete(grantHash(secret));
    this.#entries.set(grantHash(secret), { record, binding, expiresAtMs: this.#now() + ttlMs });
  }

  async renew(secret: string, ttlMs: number): Promise<GrantRenewal> {
    const e = this.#live(secret);
    if (e === undefined) return (this.#used.get(grantHash(secret)) ?? 0) > this.#now() ? 'used' : 'lost';
    e.expiresAtMs = this.#now() + ttlMs;
    return 'held';
  }

  async end(secret: string, graceMs: number | null): Promise<void> {
    const e = this.#live(secret);
    if (e === undefined) return;
    if (graceMs === null) this.#entries.delete(grantHash(secret));
    else e.expiresAtMs = this.#now() + graceMs;
  }

  async consume(secret: string, binding: GrantBinding, usedMarkMs: number): Promise<GrantRecord> {
    const e = this.#live(secret);
    if (e === undefined) throw invalidGrant('unknown');
    // Both checked before either decides, so the time taken does not say which failed.
    const keyOk = sameHash(e.binding.key, binding.key);
    const clientOk = e.binding.client === '' || sameHash(e.binding.client, binding.client);
    if (!keyOk) throw invalidGrant('wrong-key');
    if (!clientOk) throw invalidGrant('wrong-client');
    this.#entries.delete(grantHash(secret));
    if (this.#used.size >= this.#maxGrants) this.#sweep();
    this.#used.set(grantHash(secret), this.#now() + usedMarkMs);
    return e.record;
  }
}
