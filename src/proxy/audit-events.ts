import type { AuditFields } from '../observe/index.js';
import { tokenLogId, type ConsoleTarget, type IssuedToken, type TokenIssuer } from '../tokens/index.js';

/**
 * A `token.issued` audit event: who asked (the JWT's `sub`/`iss`, or the CLI), from where, for
 * what, and the short hashes of the tokens (never the tokens).
 */
export function tokenIssuedEvent(issuer: TokenIssuer, client: string | null, target: ConsoleTarget, ttlSeconds: number, issued: readonly IssuedToken[]): AuditFields {
  return {
    via: issuer.via,
    sub: issuer.sub ?? null,
    iss: issuer.iss ?? null,
    client,
    target: target.kind === 'static' ? (target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`) : null,
    node: target.kind === 'node' ? target.node : null,
    profile: target.kind === 'static' ? (target.profile ?? null) : null,
    count: issued.length,
    ttlSeconds,
    expiresAt: issued[0]?.expiresAt ?? null,
    tokenIds: issued.map((t) => tokenLogId(t.token)),
    // What the tokens narrow in their profile's view-only and clipboard policy (issue 18).
    ...(issued[0]?.record.policy ? { policy: { ...issued[0].record.policy } } : {}),
  };
}
