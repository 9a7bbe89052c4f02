import { createHash, randomBytes } from 'node:crypto';

/** 32 random bytes = 256 bits, the whole of the token's secrecy. */
export const TOKEN_BYTES = 32;
/** base64url of 32 bytes without padding: ⌈256 / 6⌉ = 43 characters. */
export const TOKEN_LENGTH = 43;

/**
 * 42 free base64url characters, then one that carries the last 4 bits of the 32nd byte followed by
 * two zero bits (256 = 42·6 + 4): only the 16 characters whose low two bits are zero can end a
 * canonical encoding. Rejecting the rest keeps exactly one accepted spelling per token, so the
 * format check is also a complete "could we have issued this?" check.
 */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

/** A fresh single-use console token: 32 bytes from the CSPRNG, base64url (RFC 4648 §5), 43 chars. */
export function generateToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

/**
 * Cheap shape check done before any store lookup, so garbage from the query string never costs a
 * Redis round trip. The timing of this check depends only on the attacker's own input.
 */
export function isWellFormedToken(value: unknown): value is string {
  return typeof value === 'string' && value.length === TOKEN_LENGTH && TOKEN_PATTERN.test(value);
}

/**
 * SHA-256 of the token (64 lowercase hex), the only form in which a token is stored. Lookups go by
 * this hash, so no stored secret is ever compared with attacker input (as Nova does for its
 * `console_auth_tokens.token_hash`). A plain hash is enough because the input already has 256 bits
 * of entropy: there is nothing to brute-force and therefore nothing a salt or HMAC key would add.
 */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * A short, log-safe correlation id for a token (the first 12 hex of its hash). Logs must never
 * carry the token itself (STYLE.md "Logging").
 */
export function tokenLogId(token: string): string {
  return hashToken(token).slice(0, 12);
}
