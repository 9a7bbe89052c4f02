import { VncgateError } from '../errors.js';
import type { GrantStore } from './grant.js';
import type { RecordExtras, TokenRecord } from './record.js';
import { parseTarget, type ConsoleTarget } from './target.js';
import { isWellFormedToken, tokenLogId } from './token.js';

export type TokenStoreKind = 'redis' | 'memory';

export interface IssuedToken {
  /** The secret. Hand it to the user once; never log it. */
  readonly token: string;
  /** ISO 8601 UTC; same as `record.expiresAt`. */
  readonly expiresAt: string;
  readonly record: TokenRecord;
}

/**
 * Session slots: `owner` (a session id) holds one of at most `limit` places on each of `keys`
 * (a console endpoint, a node, an instance) for `ttlMs`, renewed while its session lives, so a
 * process that dies without releasing frees its places one TTL later. All keys or none.
 */
export interface SlotRequest {
  readonly keys: readonly string[];
  readonly owner: string;
  /** At least 1. */
  readonly limit: number;
  readonly ttlMs: number;
}

export interface ConsumeOptions {
  /**
   * The client address: while it is cooling down after too many invalid links (`countInvalid`),
   * refuse with TOKEN_ERR_RATE_LIMITED and use nothing up. Hashed before it reaches the store.
   */
  readonly client?: string | undefined;
  /**
   * Take these slots in the same atomic step as the consume: if any is full the token stays unused
   * and the call fails with SESSION_ERR_TARGET_BUSY.
   */
  readonly slots?: SlotRequest | undefined;
}

/**
 * Single-use console tokens. Every method either does what it says or throws a `VncgateError`:
 * `TOKEN_ERR_MISSING` / `TOKEN_ERR_INVALID` for the token itself, `TOKEN_ERR_STORE_UNAVAILABLE`
 * when the backing store cannot answer within its bounded wait, `HTTP_ERR_BAD_REQUEST` for a bad
 * target, TTL or count passed to `issue*`.
 */
export interface TokenStore {
  readonly kind: TokenStoreKind;
  /**
   * Stores a new token for `target`, valid for `ttlSeconds` (0 < ttl ≤ maxTtlSeconds); `extras`
   * go into its record: `issuedBy` for the audit events of the session it opens, `policy` to
   * narrow its profile's view-only and clipboard policy.
   */
  issue(target: ConsoleTarget, ttlSeconds: number, extras?: RecordExtras): Promise<IssuedToken>;
  /** `count` independent tokens for the same target, stored all-or-nothing in one round trip. */
  issueMany(target: ConsoleTarget, ttlSeconds: number, count: number, extras?: RecordExtras): Promise<IssuedToken[]>;
  /**
   * Atomically removes the token and returns its record: of any number of concurrent calls (from
   * any number of processes sharing the store) exactly one succeeds. Unknown, expired, used,
   * revoked and malformed tokens all give `TOKEN_ERR_INVALID`; empty or absent `TOKEN_ERR_MISSING`.
   */
  consume(token: string | null | undefined, options?: ConsumeOptions): Promise<TokenRecord>;
  /**
   * The token's record without using it up (to resolve its target before `consume` takes its
   * slots); same errors as `consume`. Only `client` of the options applies.
   */
  peek(token: string | null | undefined, options?: Pick<ConsumeOptions, 'client'>): Promise<TokenRecord>;
  /** Deletes the token; `true` if it was live. Malformed or unknown tokens give `false`. */
  revoke(token: string): Promise<boolean>;
  /**
   * Marks `key` used for `ttlMs`; `true` only for the first caller (Ironic tokens in single-use
   * mode). Keys are hashed before they reach the store.
   */
  claimOnce(key: string, ttlMs: number): Promise<boolean>;
  /** Takes a lease on `key` for `owner` unless someone else holds it (one live session per node). */
  acquireLease(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Extends `owner`'s lease; `false` if it is no longer theirs. */
  renewLease(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Drops `owner`'s lease (nothing if someone else holds it now). */
  releaseLease(key: string, owner: string): Promise<void>;
  /** Takes a slot on every key of `request` for its owner, or none: `false` if any key is full. */
  acquireSlots(request: SlotRequest): Promise<boolean>;
  /** Extends `owner`'s slots by `ttlMs`, re-taking any that lapsed (the session is live, so it counts). */
  renewSlots(keys: readonly string[], owner: string, ttlMs: number): Promise<void>;
  /** Gives `owner`'s slots back. */
  releaseSlots(keys: readonly string[], owner: string): Promise<void>;
  /** Whether `client` (an address; hashed) is in its invalid-link cool-down. */
  coolingDown(client: string): Promise<boolean>;
  /**
   * Counts one invalid link from `client` in a one-minute window; the one past `allowedPerMinute`
   * starts a cool-down of `cooldownMs` (and resets the count). `true` when this call started it.
   */
  countInvalid(client: string, allowedPerMinute: number, cooldownMs: number): Promise<boolean>;
  /** Reconnect grants kept alongside the tokens (grant.ts); absent in stand-ins, which then mint none. */
  readonly grants?: GrantStore;
  /** Resolves once the store can serve requests (bounded wait); for start-up and readiness checks. */
  ready(): Promise<void>;
  /** Releases connections and timers; later calls fail with `TOKEN_ERR_STORE_UNAVAILABLE`. */
  close(): Promise<void>;
}

/** The subset of a pino logger the stores use. Never give it a token; use `tokenLogId`. */
export interface TokenStoreLogger {
  debug(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  /** pino's: lets a line whose fields cost something (a hash) be skipped when its level is off. */
  isLevelEnabled?(level: string): boolean;
}

/** Whether `logger` writes debug lines (a logger that cannot tell is assumed to). */
export function debugEnabled(logger: TokenStoreLogger): boolean {
  return logger.isLevelEnabled?.('debug') ?? true;
}

export const silentLogger: TokenStoreLogger = { debug() {}, info() {}, warn() {} };

/** Every default of both stores, in one place. */
export const TOKEN_STORE_DEFAULTS = {
  /** Prepended to every Redis key: `<keyPrefix>tok:<sha256 hex>`. */
  keyPrefix: 'vncgate:',
  /** Longest wait for a TCP connection to Redis (and, at start-up, for the first one to be ready). */
  connectTimeoutMs: 2_000,
  /** Longest wait for one Redis reply before the request fails with TOKEN_ERR_STORE_UNAVAILABLE. */
  commandTimeoutMs: 1_000,
  /** Reconnect back-off cap while Redis is down (the client keeps retrying for ever). */
  maxReconnectDelayMs: 2_000,
  /** Upper bound on a token's lifetime: 24 h. */
  maxTtlSeconds: 86_400,
  /** Upper bound on `issueMany`'s count. */
  maxIssueCount: 1_000,
  /** Memory store: live tokens held at most. */
  maxTokens: 100_000,
  /** Memory store: how often expired tokens are swept. */
  sweepIntervalMs: 60_000,
} as const;

function badRequest(message: string, details: Record<string, unknown>): VncgateError {
  return new VncgateError('HTTP_ERR_BAD_REQUEST', message, { details });
}

/** Validates a TTL in seconds and returns it in whole milliseconds (at least 1). */
export function ttlToMs(ttlSeconds: number, maxTtlSeconds: number): number {
  if (typeof ttlSeconds !== 'number' || !Number.isFinite(ttlSeconds) || ttlSeconds <= 0 || ttlSeconds > maxTtlSeconds) {
    throw badRequest(`token TTL must be more than 0 and at most ${maxTtlSeconds} seconds`, {
      field: 'ttlSeconds',
      maxTtlSeconds,
    });
  }
  return Math.max(1, Math.round(ttlSeconds * 1000));
}

export function checkIssueCount(count: number, maxIssueCount: number): void {
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > maxIssueCount) {
    throw badRequest(`token count must be an integer from 1 to ${maxIssueCount}`, { field: 'count', maxIssueCount });
  }
}

/** Re-validates the target (callers may hand us parsed JSON) and returns a clean copy. */
export function checkIssueTarget(target: unknown): ConsoleTarget {
  const parsed = parseTarget(target);
  if (!parsed.ok) {
    throw badRequest(`invalid console target: ${parsed.problems.join('; ')}`, { field: 'target', problems: parsed.problems });
  }
  return parsed.target;
}

/** The format gate in front of every lookup: absent → MISSING, malformed → INVALID. */
export function checkPresentedToken(token: unknown): string {
  if (token === undefined || token === null || token === '') {
    throw new VncgateError('TOKEN_ERR_MISSING', 'no console token presented');
  }
  if (!isWellFormedToken(token)) {
    throw new VncgateError('TOKEN_ERR_INVALID', 'console token is malformed', { details: { reason: 'malformed' } });
  }
  return token;
}

export function invalidToken(token: string, reason: 'unknown' | 'corrupt'): VncgateError {
  // "unknown" covers never issued, expired, consumed and revoked: the store cannot tell them apart
  // once the key is gone, and the browser must not learn which it was anyway.
  return new VncgateError('TOKEN_ERR_INVALID', 'console token is unknown, expired, used or revoked', {
    details: { reason, tokenId: tokenLogId(token) },
  });
}

/** The window `countInvalid` counts in. */
export const INVALID_WINDOW_MS = 60_000;

export function rateLimited(kind: TokenStoreKind): VncgateError {
  return new VncgateError('TOKEN_ERR_RATE_LIMITED', 'client address is cooling down after too many invalid console links', { details: { store: kind } });
}

export function targetBusy(keys: readonly string[], limit: number): VncgateError {
  return new VncgateError('SESSION_ERR_TARGET_BUSY', `session limit ${limit} reached on ${keys.join(' or ')}`, { details: { keys: [...keys], limit } });
}

export function checkSlotRequest(request: SlotRequest): void {
  if (request.keys.length === 0 || !Number.isSafeInteger(request.limit) || request.limit < 1 || !(request.ttlMs > 0)) {
    throw new VncgateError('INTERNAL_ERR', 'bad session slot request', { details: { keys: request.keys.length, limit: request.limit } });
  }
}

export function storeUnavailable(
  kind: TokenStoreKind,
  operation: string,
  reason: string,
  cause?: unknown,
): VncgateError {
  return new VncgateError('TOKEN_ERR_STORE_UNAVAILABLE', `${kind} token store: ${operation} failed: ${reason}`, {
    ...(cause === undefined ? {} : { cause }),
    details: { store: kind, operation, reason },
  });
}

/** Checks a numeric store option; a bad one is a configuration error, reported at construction. */
export function checkPositiveIntOption(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new VncgateError('CONFIG_ERR_INVALID', `token store option ${name} must be a positive integer`, {
      details: { option: name },
    });
  }
  return value;
}
