import { parsePolicyNarrowing, type PolicyNarrowing } from '../rfb/index.js';
import type { TokenIssuer } from '../target.js';
import { parseTarget, type ConsoleTarget } from './target.js';

export const TOKEN_RECORD_VERSION = 1;

/** What a token stands for; stored as JSON under the token's hash. Contains no secret. */
export interface TokenRecord {
  /** Schema version of the stored JSON, so a later vncgate can read (or refuse) older records. */
  readonly version: typeof TOKEN_RECORD_VERSION;
  readonly target: ConsoleTarget;
  /** ISO 8601 UTC, e.g. `2025-01-01T12:00:00.000Z`. */
  readonly issuedAt: string;
  /** ISO 8601 UTC. Informational for the Redis store (Redis' own TTL is authoritative there). */
  readonly expiresAt: string;
  /**
   * Who minted it, for the audit events of the sessions it opens. Optional within version 1:
   * records written before it existed decode without it, and a vncgate that predates it ignores it.
   */
  readonly issuedBy?: TokenIssuer;
  /**
   * What this token narrows in its profile's view-only and clipboard policy (issue 18). Optional
   * within version 1, and decoded strictly: a record whose policy cannot be read is refused, never
   * read as "no narrowing". (A vncgate that predates it would ignore it: upgrade every process
   * before issuing narrowed tokens.)
   */
  readonly policy?: PolicyNarrowing;
  /** The issuer asked for the session to be recorded (issue 18; only ever adds to the profile's `record`). */
  readonly record?: true;
  /** On a shared console (issue 18), its viewer takes control on joining. Optional within version 1; anything but `true` refuses the record. */
  readonly control?: true;
}

/**
 * What a token may carry besides its target and lifetime, each optional: who issued it, what it
 * narrows in its profile's policy, whether the issuer asked for a recording, and whether its viewer
 * takes control of a shared console.
 */
export type RecordExtras = {
  readonly issuedBy?: TokenIssuer | undefined;
  readonly policy?: PolicyNarrowing | undefined;
  readonly record?: boolean | undefined;
  readonly control?: boolean | undefined;
};


/** Longest `sub`/`iss` kept; longer ones are cut (they are informational, and records are bounded). */
export const MAX_ISSUER_CHARS = 256;

/** A clean issuer from untrusted parts (JWT claims): strings only, bounded. */
export type { TokenIssuer };

export function tokenIssuer(via: 'api' | 'cli', claims: { sub?: unknown; iss?: unknown } = {}): TokenIssuer {
  return {
    via,
    ...(typeof claims.sub === 'string' ? { sub: claims.sub.slice(0, MAX_ISSUER_CHARS) } : {}),
    ...(typeof claims.iss === 'string' ? { iss: claims.iss.slice(0, MAX_ISSUER_CHARS) } : {}),
  };
}

/** The stored `issuedBy`, if it is one; anything else is dropped (it never decides access). */
function decodeIssuer(value: unknown): TokenIssuer | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const v = value as Record<string, unknown>;
  if (v['via'] !== 'api' && v['via'] !== 'cli') return undefined;
  const ok = (x: unknown): boolean => x === undefined || (typeof x === 'string' && x.length <= MAX_ISSUER_CHARS);
  if (!ok(v['sub']) || !ok(v['iss'])) return undefined;
  return tokenIssuer(v['via'], { sub: v['sub'], iss: v['iss'] });
}

/** Bound on the stored JSON we are willing to parse; a real record is a few hundred bytes. */
export const MAX_RECORD_CHARS = 4096;

export function newRecord(target: ConsoleTarget, issuedAtMs: number, ttlMs: number, extras: RecordExtras = {}): TokenRecord {
  const { issuedBy, policy, record, control } = extras;
  return {
    version: TOKEN_RECORD_VERSION,
    target,
    issuedAt: new Date(issuedAtMs).toISOString(),
    expiresAt: new Date(issuedAtMs + ttlMs).toISOString(),
    ...(issuedBy ? { issuedBy: tokenIssuer(issuedBy.via, issuedBy) } : {}),
    ...(policy ? { policy: { ...policy } } : {}),
    ...(record === true ? { record: true as const } : {}),
    ...(control === true ? { control: true as const } : {}),
  };
}

/** The stored `policy`: absent, or a valid narrowing; anything else refuses the record. */
function decodePolicy(value: unknown): { ok: true; policy: PolicyNarrowing | undefined } | { ok: false } {
  if (value === undefined) return { ok: true, policy: undefined };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false };
  const r = parsePolicyNarrowing(value as Record<string, unknown>);
  return r.ok ? { ok: true, policy: r.narrowing } : { ok: false };
}

export function encodeRecord(record: TokenRecord): string {
  return JSON.stringify(record);
}

export type RecordDecodeResult =
  | { readonly ok: true; readonly record: TokenRecord }
  | { readonly ok: false; readonly problem: string };

function isIsoTimestamp(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  const ms = Date.parse(value);
  return Number.isFinite(ms) && new Date(ms).toISOString() === value;
}

/**
 * Parses what the store gave back. Anything unexpected (truncated JSON, an older or newer schema,
 * someone else's key) becomes a problem string for the log, never an exception.
 */
export function decodeRecord(json: string): RecordDecodeResult {
  if (json.length > MAX_RECORD_CHARS) return { ok: false, problem: `record longer than ${MAX_RECORD_CHARS} characters` };
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return { ok: false, problem: 'record is not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, problem: 'record is not an object' };
  const r = value as Record<string, unknown>;
  if (r['version'] !== TOKEN_RECORD_VERSION) return { ok: false, problem: 'record has an unknown version' };
  if (!isIsoTimestamp(r['issuedAt']) || !isIsoTimestamp(r['expiresAt'])) return { ok: false, problem: 'record has invalid timestamps' };
  const target = parseTarget(r['target']);
  if (!target.ok) return { ok: false, problem: `record has an invalid target: ${target.problems.join('; ')}` };
  const issuedBy = decodeIssuer(r['issuedBy']);
  const policy = decodePolicy(r['policy']);
  if (!policy.ok) return { ok: false, problem: 'record has an invalid policy' };
  if (r['control'] !== undefined && r['control'] !== true) return { ok: false, problem: 'record has an invalid control' };
  return {
    ok: true,
    record: {
      version: TOKEN_RECORD_VERSION,
      target: target.target,
      issuedAt: r['issuedAt'],
      expiresAt: r['expiresAt'],
      ...(issuedBy ? { issuedBy } : {}),
      ...(policy.policy ? { policy: policy.policy } : {}),
      ...(r['record'] === true ? { record: true as const } : {}),
      ...(r['control'] === true ? { control: true as const } : {}),
    },
  };
}
