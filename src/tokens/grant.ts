import { VncgateError } from '../errors.js';
import { tokenIssuer, type TokenIssuer } from './record.js';
import { parseTarget, type ConsoleTarget } from './target.js';
import { generateToken, hashToken, isWellFormedToken } from './token.js';

/**
 * Reconnect grants (issue 18): a short-lived, single-use secret that lets vncgate's console page
 * open the same console again after a drop that was not a policy decision (network, backend
 * restart, a replica draining), without a new link. Stored, like tokens, only under its hash;
 * what it holds is what the next session needs, never a credential: the token's target (resolved
 * again, so credentials come from the configuration or Ironic as for the token), who issued it,
 * the bindings (hashes of the client address and of the page's key), how long the console may
 * still run and how many reconnects the original link has had.
 *
 * Life of a grant: minted when a session's link is accepted (active: its TTL is the lease TTL plus the
 * grace window, renewed while the session lives, so a replica that dies leaves a grant that stays
 * usable for the grace window after its last renewal); on a non-policy end its TTL becomes the
 * grace window; on a policy end it is deleted. Consuming it is one atomic step that checks both
 * bindings and deletes it. A grant consumed while its session still lives (the browser's socket
 * died but vncgate has not noticed yet) takes that session over: the consume leaves a short-lived
 * used mark, and the old session's next renewal finds it and ends the session.
 */

export const GRANT_RECORD_VERSION = 1;

/** What a grant stands for. Contains no secret (hashes of the bindings only). */
export interface GrantRecord {
  readonly version: typeof GRANT_RECORD_VERSION;
  /** The session that minted it: the next session is a reconnect *of* this one (audit). */
  readonly sessionId: string;
  readonly target: ConsoleTarget;
  readonly issuedBy?: TokenIssuer;
  /** The console may not run past this (epoch ms): the token's or Nova's lifetime, session.maxLifetimeMs. */
  readonly notAfterMs: number | null;
  /** Reconnects the original link has had before this grant. */
  readonly reconnects: number;
  /** The one-session lease key the console holds (Ironic `one-session`), taken again by the reconnect. */
  readonly lease?: string;
  /** The per-token policy in force (view-only, clipboard), carried as is to the next session. */
  readonly policy?: Readonly<Record<string, unknown>>;
}

/** What a grant is checked against when used: SHA-256 hex of the client address ('' = not bound) and of the page's key. */
export interface GrantBinding {
  readonly client: string;
  readonly key: string;
}

/**
 * Grant storage (memory-grants.ts, redis-grants.ts). Every method throws `TOKEN_ERR_STORE_UNAVAILABLE`
 * when the store cannot answer; `consume` throws RECONNECT_ERR_INVALID for anything else.
 */
export interface GrantStore {
  /** Stores a new grant under `secret`'s hash for `ttlMs`. */
  mint(secret: string, record: GrantRecord, binding: GrantBinding, ttlMs: number): Promise<void>;
  /**
   * Extends the grant's TTL: `held`; `used` when a reconnect consumed it (its session has been
   * replaced); `lost` when it is simply gone (expired, or the store lost it: the session goes on
   * without a grant).
   */
  renew(secret: string, ttlMs: number): Promise<GrantRenewal>;
  /** Session ended: the grant stays usable for `graceMs`, or (null) is deleted. */
  end(secret: string, graceMs: number | null): Promise<void>;
  /**
   * Atomically checks the bindings and deletes the grant, returning its record; leaves a mark for
   * `usedMarkMs` by which `renew` tells the session it belonged to that it was replaced.
   */
  consume(secret: string, binding: GrantBinding, usedMarkMs: number): Promise<GrantRecord>;
}

export type GrantRenewal = 'held' | 'used' | 'lost';

/** A fresh grant secret: 256 bits, the token format (so every token defence applies: log scrubber, format gate). */
export function generateGrant(): string {
  return generateToken();
}

export function isWellFormedGrant(value: unknown): value is string {
  return isWellFormedToken(value);
}

/** The stored form of a binding value (client address, page key). */
export function bindingHash(value: string): string {
  return hashToken(value);
}

export function grantHash(secret: string): string {
  return hashToken(secret);
}

export type GrantRefusal = 'malformed' | 'unknown' | 'wrong-client' | 'wrong-key' | 'corrupt' | 'expired';

/** One code for every refusal: the browser must not learn which check failed; the log does. */
export function invalidGrant(reason: GrantRefusal): VncgateError {
  return new VncgateError('RECONNECT_ERR_INVALID', `reconnect grant refused (${reason})`, { details: { reason } });
}

/** Bound on the stored JSON we parse. */
export const MAX_GRANT_RECORD_CHARS = 4096;

/** Numbers JSON cannot carry (a policy's unlimited `maxClipboardBytes`) travel as strings. */
const INFINITE = 'Infinity';

export function encodeGrant(record: GrantRecord): string {
  return JSON.stringify(record, (_k, v: unknown) => (v === Infinity ? INFINITE : v));
}

/** The stored policy, with its unlimited numbers back. */
function decodePolicy(policy: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(policy).map(([k, v]) => [k, v === INFINITE ? Infinity : v]));
}

/** Parses a stored record; null for anything unexpected (refused as corrupt, never thrown). */
export function decodeGrant(json: string): GrantRecord | null {
  if (json.length > MAX_GRANT_RECORD_CHARS) return null;
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const r = v as Record<string, unknown>;
  if (r['version'] !== GRANT_RECORD_VERSION || typeof r['sessionId'] !== 'string' || r['sessionId'].length > 64) return null;
  if (!Number.isSafeInteger(r['reconnects']) || (r['reconnects'] as number) < 0) return null;
  const notAfter = r['notAfterMs'];
  if (notAfter !== null && !Number.isSafeInteger(notAfter)) return null;
  const target = parseTarget(r['target']);
  if (!target.ok) return null;
  const lease = r['lease'];
  if (lease !== undefined && (typeof lease !== 'string' || lease.length > 300)) return null;
  const policy = r['policy'];
  if (policy !== undefined && (typeof policy !== 'object' || policy === null || Array.isArray(policy))) return null;
  const issued = r['issuedBy'] as { via?: unknown; sub?: unknown; iss?: unknown } | undefined;
  const issuedBy = issued && (issued.via === 'api' || issued.via === 'cli') ? tokenIssuer(issued.via, issued) : undefined;
  return {
    version: GRANT_RECORD_VERSION,
    sessionId: r['sessionId'],
    target: target.target,
    notAfterMs: notAfter as number | null,
    reconnects: r['reconnects'] as number,
    ...(issuedBy ? { issuedBy } : {}),
    ...(lease !== undefined ? { lease } : {}),
    ...(policy !== undefined ? { policy: decodePolicy(policy as Record<string, unknown>) } : {}),
  };
}
