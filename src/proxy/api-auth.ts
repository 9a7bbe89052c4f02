import { createSecretKey } from 'node:crypto';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload, type JSONWebKeySet } from 'jose';
import { VncgateError } from '../errors.js';
import type { Config } from '../config/index.js';

const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

/**
 * A bearer JWT may live at most `maxSeconds`: `exp - iat`, or `exp - now` without `iat` (or with
 * an `iat` in the future, which would otherwise let `exp` lie anywhere). A stolen JWT with an
 * `exp` years ahead would mint console tokens for years. `toleranceSeconds` absorbs an issuer's
 * clock being ahead, and the second that may tick between an issuer setting `iat` and `exp`.
 */
export function checkLifetime(payload: JWTPayload, maxSeconds: number, toleranceSeconds: number, nowSeconds: number): void {
  const { exp, iat } = payload;
  if (typeof exp !== 'number') throw new VncgateError('HTTP_ERR_UNAUTHORIZED', 'bearer token has no exp claim');
  const from = typeof iat === 'number' ? Math.min(iat, nowSeconds) : nowSeconds;
  const lifetime = exp - from;
  if (lifetime > maxSeconds + toleranceSeconds) {
    throw new VncgateError(
      'HTTP_ERR_UNAUTHORIZED',
      `bearer token lifetime ${Math.round(lifetime)} s (exp - ${typeof iat === 'number' && iat <= nowSeconds ? 'iat' : 'now'}) exceeds api.jwt.maxLifetimeSeconds (${maxSeconds} s)`,
    );
  }
}

/**
 * Verifies `Authorization: Bearer <JWT>` for the token API: signature (HS256 shared secret, or a
 * JWK set from a file or URL for asymmetric algorithms), issuer, audience and expiry (exp is
 * required, at most `maxLifetimeSeconds` ahead). The algorithm allowed depends on the key source,
 * so an HS256 token can never be checked against a public key.
 */
export function createJwtVerifier(cfg: NonNullable<Config['jwt']>): (authorization: string | undefined) => Promise<JWTPayload> {
  const secret = cfg.hs256Secret ? createSecretKey(cfg.hs256Secret) : null;
  const local = cfg.jwks ? createLocalJWKSet(cfg.jwks as JSONWebKeySet) : null;
  const remote = cfg.jwksUrl ? createRemoteJWKSet(new URL(cfg.jwksUrl), { timeoutDuration: 5_000, cooldownDuration: 30_000 }) : null;
  const common = {
    ...(cfg.issuer !== null ? { issuer: cfg.issuer } : {}),
    ...(cfg.audience !== null ? { audience: cfg.audience } : {}),
    clockTolerance: cfg.clockToleranceSeconds,
    requiredClaims: ['exp'],
  };

  return async (authorization) => {
    const payload = await verify(authorization);
    checkLifetime(payload, cfg.maxLifetimeSeconds, cfg.clockToleranceSeconds, Date.now() / 1000);
    return payload;
  };

  async function verify(authorization: string | undefined): Promise<JWTPayload> {
    const m = /^Bearer ([A-Za-z0-9_\-.]+)$/.exec(authorization ?? '');
    if (!m || m[1] === undefined) throw new VncgateError('HTTP_ERR_UNAUTHORIZED', 'missing or malformed bearer token');
    const jwt = m[1];
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(jwt).alg;
    } catch (err) {
      throw new VncgateError('HTTP_ERR_UNAUTHORIZED', 'bearer token is not a JWT', { cause: err });
    }
    try {
      if (alg === 'HS256' && secret) {
        return (await jwtVerify(jwt, secret, { ...common, algorithms: ['HS256'] })).payload;
      }
      if (alg !== undefined && ASYMMETRIC.includes(alg)) {
        if (local) {
          try {
            return (await jwtVerify(jwt, local, { ...common, algorithms: ASYMMETRIC })).payload;
          } catch (err) {
            if (!remote) throw err;
          }
        }
        if (remote) return (await jwtVerify(jwt, remote, { ...common, algorithms: ASYMMETRIC })).payload;
      }
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'ERR_JWT';
      throw new VncgateError('HTTP_ERR_UNAUTHORIZED', `bearer token rejected (${code}): ${(err as Error).message}`, { cause: err });
    }
    throw new VncgateError('HTTP_ERR_UNAUTHORIZED', `bearer token algorithm ${String(alg)} is not accepted by the configured keys`);
  }
}
