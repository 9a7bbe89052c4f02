import { createSecretKey } from 'node:crypto';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload, type JSONWebKeySet } from 'jose';
import { VncgateError } from '../errors.js';
import type { Config } from '../config/index.js';

const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

/**
 * Verifies `Authorization: Bearer <JWT>` for the token API: signature (HS256 shared secret, or a
 * JWK set from a file or URL for asymmetric algorithms), issuer, audience and expiry (exp is
 * required). The algorithm allowed depends on the key source, so an HS256 token can never be
 * checked against a public key.
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
  };
}
