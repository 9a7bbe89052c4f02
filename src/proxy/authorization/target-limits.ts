import type { Config } from '../../config/index.js';
import { isVncgateError } from '../../errors.js';
import type { SlotRequest, TokenStore } from '../../tokens/index.js';
import type { ResolvedTarget } from '../../target.js';

/**
 * The limits of issue 15 shared across replicas through the token store: concurrent sessions per
 * console endpoint and per node/instance (`limits.sessionsPerTarget`, per-profile override), and
 * invalid links per client address (`limits.invalidTokensPerMinute`).
 */

/** What renewal problems are reported to (the server's logger). */
export type LimitLog = { warn(obj: Record<string, unknown>, msg: string): void; info(obj: Record<string, unknown>, msg: string): void };

/** Sessions allowed at once on a target of `profile`: its own `sessionsPerTarget`, else the global one; 0 = unlimited. */
export function sessionLimitFor(config: Config, profile: string): number {
  return config.raw.backends.profiles[profile]?.sessionsPerTarget ?? config.raw.limits.sessionsPerTarget;
}

/** Whether any target can have a session limit (if not, the token path skips the peek). */
export function anySessionLimit(config: Config): boolean {
  return config.raw.limits.sessionsPerTarget > 0 || Object.values(config.raw.backends.profiles).some((p) => (p.sessionsPerTarget ?? 0) > 0);
}

export function leaseTtlMs(config: Config): number {
  return config.raw.limits.leaseTtlSeconds * 1000;
}

/**
 * The slot keys a session on `target` counts against: its endpoint (`target:host:port`, as
 * resolved) and, when it has one, its node or instance (`node:<uuid>`, `instance:<uuid>`), so
 * two endpoints of one machine, or one endpoint behind two names, are still limited together.
 */
export function slotKeys(target: ResolvedTarget, machine: string | null): string[] {
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  return machine === null ? [`target:${host}:${target.port}`] : [`target:${host}:${target.port}`, machine];
}

/** The slot request for a session on `target`, or null if its profile has no limit. */
export function slotRequest(config: Config, target: ResolvedTarget, machine: string | null, sessionId: string): SlotRequest | null {
  const limit = sessionLimitFor(config, target.profile);
  if (limit === 0) return null;
  return { keys: slotKeys(target, machine), owner: sessionId, limit, ttlMs: leaseTtlMs(config) };
}

/**
 * Keeps a lease alive while its session lives (every third of its TTL) and returns the session's
 * release hook. A failed renewal never ends the session: the console keeps working through a Redis
 * outage, warned about once; the next tick tries again and re-takes the slot once Redis is back.
 * One renewal at a time, and the release goes out only after the one in flight: a renewal (it may
 * first wait for a clock sample) that reached Redis after the release would take the slot back
 * for a session that is gone, until its lease lapsed.
 */
export function keepRenewed(
  renew: () => Promise<unknown>,
  release: () => Promise<unknown>,
  ttlMs: number,
  log: LimitLog | undefined,
  fields: Record<string, unknown>,
): () => void {
  let failing = false;
  let inFlight: Promise<void> | null = null;
  const timer = setInterval(() => {
    if (inFlight) return;
    inFlight = renew().then(
      () => {
        if (failing) log?.info(fields, 'session lease renewed again');
        failing = false;
      },
      (err: unknown) => {
        if (!failing) log?.warn({ ...fields, err: isVncgateError(err) ? err.code : String(err) }, 'session lease renewal failed; the session goes on, retrying');
        failing = true;
      },
    );
    void inFlight.then(() => {
      inFlight = null;
    });
  }, Math.max(1, Math.floor(ttlMs / 3)));
  timer.unref();
  let released = false;
  return () => {
    if (released) return;
    released = true;
    clearInterval(timer);
    // A failed release only leaves the slot taken until its lease lapses.
    const go = (): void => void release().catch(() => undefined);
    if (inFlight) void inFlight.then(go);
    else go();
  };
}

/** Holds slots taken by `request` for the session's life; returns its release hook. */
export function holdSlots(tokens: TokenStore, request: SlotRequest, log: LimitLog | undefined): () => void {
  return keepRenewed(
    () => tokens.renewSlots(request.keys, request.owner, request.ttlMs),
    () => tokens.releaseSlots(request.keys, request.owner),
    request.ttlMs,
    log,
    { sessionId: request.owner, slots: request.keys },
  );
}

/**
 * Counting of invalid links per client address, or null when it is off
 * (`limits.invalidTokensPerMinute` 0) or the address is unknown.
 */
export class InvalidLinkLimiter {
  readonly #tokens: TokenStore;
  readonly #perMinute: number;
  readonly #cooldownMs: number;
  readonly #log: LimitLog | undefined;
  /** The address, for the store (which hashes it before use). */
  readonly client: string;

  static for(config: Config, tokens: TokenStore, remote: string | undefined, log: LimitLog | undefined): InvalidLinkLimiter | null {
    const { invalidTokensPerMinute, invalidTokenCooldownSeconds } = config.raw.limits;
    if (invalidTokensPerMinute === 0 || !remote) return null;
    return new InvalidLinkLimiter(tokens, remote, invalidTokensPerMinute, invalidTokenCooldownSeconds * 1000, log);
  }

  private constructor(tokens: TokenStore, client: string, perMinute: number, cooldownMs: number, log: LimitLog | undefined) {
    this.#tokens = tokens;
    this.client = client;
    this.#perMinute = perMinute;
    this.#cooldownMs = cooldownMs;
    this.#log = log;
  }

  /**
   * Counts `error` if it is about the link itself (TOKEN_ERR_INVALID / TOKEN_ERR_MISSING), never
   * store outages or busy targets. Counting that fails is let go (fail open): the request is being
   * refused anyway, and a Redis outage refuses new vncgate-token sessions by itself.
   */
  async count(error: unknown): Promise<void> {
    if (!isVncgateError(error) || (error.code !== 'TOKEN_ERR_INVALID' && error.code !== 'TOKEN_ERR_MISSING')) return;
    try {
      if (await this.#tokens.countInvalid(this.client, this.#perMinute, this.#cooldownMs)) {
        this.#log?.warn({ remote: this.client, perMinute: this.#perMinute, cooldownMs: this.#cooldownMs }, 'client address sent too many invalid console links; cooling down');
      }
    } catch {
      // See above: fail open.
    }
  }
}
