import { clientKey } from '../client-key.js';
import { hashToken } from './token.js';
import { INVALID_WINDOW_MS, type SlotRequest } from './token-store.js';

/**
 * The session slots and the invalid-link counter of the memory store, with the Redis store's
 * semantics (redis-scripts.ts) inside one process. Synchronous, so each operation is atomic.
 * Addresses are counted by `clientKey` (IPv6 by its /64) and kept by hash, like tokens.
 */
export class MemoryLimits {
  /** Slot key → owner → expiry (epoch ms). */
  readonly #slots = new Map<string, Map<string, number>>();
  /** Address hash → invalid links in the current window. */
  readonly #invalid = new Map<string, { count: number; windowEndsMs: number }>();
  /** Address hash → end of its cool-down. */
  readonly #cooling = new Map<string, number>();
  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  /** Whether every key has room for `owner` (who may hold a place already); drops expired owners. */
  #fits(request: SlotRequest, now: number): boolean {
    for (const key of request.keys) {
      const owners = this.#slots.get(key);
      if (!owners) continue;
      for (const [owner, expiresAtMs] of owners) if (expiresAtMs <= now) owners.delete(owner);
      if (!owners.has(request.owner) && owners.size >= request.limit) return false;
    }
    return true;
  }

  /** Checks and takes in one step: `false` (nothing taken) if any key is full. */
  tryAcquire(request: SlotRequest): boolean {
    const now = this.#now();
    if (!this.#fits(request, now)) return false;
    this.#take(request.keys, request.owner, request.ttlMs, now);
    return true;
  }

  /** `tryAcquire` split in two, for a consume that must check before it deletes the token. */
  fits(request: SlotRequest): boolean {
    return this.#fits(request, this.#now());
  }

  take(request: SlotRequest): void {
    this.#take(request.keys, request.owner, request.ttlMs, this.#now());
  }

  renew(keys: readonly string[], owner: string, ttlMs: number): void {
    this.#take(keys, owner, ttlMs, this.#now());
  }

  release(keys: readonly string[], owner: string): void {
    for (const key of keys) {
      const owners = this.#slots.get(key);
      owners?.delete(owner);
      if (owners?.size === 0) this.#slots.delete(key);
    }
  }

  #take(keys: readonly string[], owner: string, ttlMs: number, now: number): void {
    for (const key of keys) {
      let owners = this.#slots.get(key);
      if (!owners) this.#slots.set(key, (owners = new Map()));
      owners.set(owner, now + ttlMs);
    }
  }

  coolingDown(client: string): boolean {
    const h = hashToken(clientKey(client));
    const until = this.#cooling.get(h);
    if (until === undefined) return false;
    if (until > this.#now()) return true;
    this.#cooling.delete(h);
    return false;
  }

  countInvalid(client: string, allowedPerMinute: number, cooldownMs: number): boolean {
    const h = hashToken(clientKey(client));
    const now = this.#now();
    let entry = this.#invalid.get(h);
    if (!entry || entry.windowEndsMs <= now) this.#invalid.set(h, (entry = { count: 0, windowEndsMs: now + INVALID_WINDOW_MS }));
    entry.count++;
    if (entry.count <= allowedPerMinute) return false;
    this.#cooling.set(h, now + cooldownMs);
    this.#invalid.delete(h);
    return true;
  }

  /** Drops everything expired (the store's sweep). */
  sweep(): void {
    const now = this.#now();
    for (const [key, owners] of this.#slots) {
      for (const [owner, expiresAtMs] of owners) if (expiresAtMs <= now) owners.delete(owner);
      if (owners.size === 0) this.#slots.delete(key);
    }
    for (const [h, e] of this.#invalid) if (e.windowEndsMs <= now) this.#invalid.delete(h);
    for (const [h, until] of this.#cooling) if (until <= now) this.#cooling.delete(h);
  }

  clear(): void {
    this.#slots.clear();
    this.#invalid.clear();
    this.#cooling.clear();
  }
}
