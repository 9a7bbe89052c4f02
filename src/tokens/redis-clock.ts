import { performance } from 'node:perf_hooks';

/**
 * Converts "this long from now" into an absolute deadline in Redis' clock, for scripts that refuse
 * to act once it has passed (redis-scripts.ts).
 *
 * Why not send our own wall-clock time: the two hosts' clocks may disagree by more than the whole
 * budget (NTP down, a VM resumed), and a script cannot learn when a command was sent. Instead the
 * offset between Redis' `TIME` and this process' monotonic clock is measured: a TIME asked at local
 * t0 and answered at t1 was read by Redis somewhere in [t0, t1], so `redisMs - t1` is a lower bound
 * of the true offset. Deadlines are built from that lower bound, which can only move them earlier
 * (by at most the sample's round trip): a refusal too many, never an action too late. The local
 * side is `performance.now()`, so steps of this host's wall clock do not matter; steps of the Redis
 * host's clock are caught by re-measuring (on every new connection and periodically).
 */
export class RedisClock {
  /** Redis ms − local monotonic ms, a lower bound; null until measured on the current connection. */
  #offsetMs: number | null = null;
  #sampling: Promise<number> | null = null;
  readonly #readTime: () => Promise<[string, string]>;
  readonly #localNow: () => number;

  constructor(readTime: () => Promise<[string, string]>, localNow: () => number = () => performance.now()) {
    this.#readTime = readTime;
    this.#localNow = localNow;
  }

  /** Forgets the offset (the connection closed; the next one may reach another server). */
  reset(): void {
    this.#offsetMs = null;
  }

  /** Measures the offset now (one TIME round trip); concurrent callers share the measurement. */
  sample(): Promise<number> {
    if (this.#sampling) return this.#sampling;
    // Forgotten once settled, in a later microtask: even a reader that throws at once cannot
    // leave a rejected measurement cached for every later request.
    const sampling: Promise<number> = this.#measure().finally(() => {
      if (this.#sampling === sampling) this.#sampling = null;
    });
    this.#sampling = sampling;
    return sampling;
  }

  async #measure(): Promise<number> {
    const t0 = this.#localNow();
    const [sec, usec] = await this.#readTime();
    const t1 = this.#localNow();
    const redisMs = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    if (!Number.isFinite(redisMs) || t1 < t0) throw new Error('Redis TIME gave an unusable answer');
    this.#offsetMs = redisMs - t1;
    return this.#offsetMs;
  }

  /**
   * The Redis-clock time `budgetMs` from now (measuring first if needed). Call it right before
   * sending the command, so that the client's own timeout, started later, ends later.
   */
  async deadline(budgetMs: number): Promise<number> {
    const offset = this.#offsetMs ?? (await this.sample());
    return Math.floor(this.#localNow() + offset + budgetMs);
  }
}

/**
 * How much of the command timeout a guarded script may still act in. The rest is left for its
 * reply to travel back before the client gives up: a script that acts just before its deadline
 * must be heard from, or the caller would be told "try again" for a token already used. A quarter
 * of the timeout, at most 250 ms: ample on a LAN, and the remaining budget stays most of the
 * timeout.
 */
export function scriptBudgetMs(commandTimeoutMs: number): number {
  const margin = Math.min(250, Math.floor(commandTimeoutMs / 4));
  return Math.max(1, commandTimeoutMs - margin);
}
