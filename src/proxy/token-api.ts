import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Config } from '../config/index.js';
import { VncgateError, toVncgateError } from '../errors.js';
import type { ConsoleTarget, StaticTarget, TokenStore } from '../tokens/index.js';
import { createJwtVerifier } from './api-auth.js';
import type { TargetResolvers } from './authorization/index.js';
import { consoleUrl } from './console-url.js';
import type { Lifecycle } from './drain.js';
import { firstHeader, sendError } from './http-app.js';
import type { OriginPolicy } from './origin.js';
import { allowedAddresses } from './target-check.js';
import { parseTokenRequest } from './token-request.js';
import { tokenIssuedEvent } from './audit-events.js';
import { NO_AUDIT, type AuditLog } from '../observe/index.js';
import { tokenIssuer } from '../tokens/index.js';

export type TokenApiDeps = { config: Config; tokens: TokenStore; resolvers: TargetResolvers; origins: OriginPolicy; lifecycle: Lifecycle; audit?: AuditLog };

/**
 * `POST /v1/console-tokens`: mints console tokens for a JWT bearer. While draining it answers 503
 * SESSION_ERR_SHUTDOWN, so an issuer retries on a replica that will still be there to serve the
 * link (any replica sharing the Redis store could, but the issuer's retry costs nothing).
 */
export function registerTokenApi(app: FastifyInstance, deps: TokenApiDeps): void {
  const { config, tokens, resolvers, origins, lifecycle } = deps;
  const audit = deps.audit ?? NO_AUDIT;
  const scheme = config.tls ? 'https' : 'http';
  const verifyJwt = config.jwt ? createJwtVerifier(config.jwt) : null;
  /**
   * Refuses a static target the policy forbids before any token exists. A name is resolved now and
   * every address checked; one that does not resolve is refused (BACKEND_ERR_DNS), as it could not
   * be checked. The connector checks again at connect time. The issuer learns only that its target
   * is refused; which addresses a name resolved to, and why, go to the log.
   */
  const checkPolicy = async (target: StaticTarget, sub: unknown, log: FastifyBaseLogger): Promise<void> => {
    try {
      await allowedAddresses(target.host, target.port, { policy: config.targetPolicy, timeoutMs: config.raw.session.connectTimeoutMs });
    } catch (err) {
      const e = toVncgateError(err);
      if (e.code !== 'TARGET_ERR_FORBIDDEN') throw e;
      log.warn({ sub, target: describeTarget(target), code: e.code, reason: e.message }, 'console token refused by the target policy');
      throw new VncgateError('TARGET_ERR_FORBIDDEN', `${describeTarget(target)} is not allowed by backends.allowedTargets`);
    }
  };
  app.post('/v1/console-tokens', async (req, reply) => {
    if (!verifyJwt) return sendError(reply, new VncgateError('HTTP_ERR_UNAUTHORIZED', 'the token API is not enabled (configure api.jwt)'));
    if (!lifecycle.accepting) return sendError(reply, lifecycle.refusal('token request'));
    try {
      const claims = await verifyJwt(firstHeader(req.headers.authorization));
      const { target, ttlSeconds, count, policy, record = false, control } = parseTokenRequest(req.body, {
        defaultTtlSeconds: config.raw.tokens.defaultTtlSeconds,
        ironic: resolvers.ironic !== null,
        hasProfile: (name) => resolvers.static.hasProfile(name),
      });
      // Recording is an audit decision: a token that asks for one on a service that cannot record is refused, not quietly unrecorded.
      if (record && config.raw.recordings.dir === null) throw new VncgateError('RECORDING_ERR_DISABLED', 'record: true needs recordings.dir');
      if (target.kind === 'static') await checkPolicy(target, claims.sub, req.log);
      // Without publicUrl, the origin the (authenticated) caller addressed: a Host it forges only
      // misleads its own, uncached answer, and the listen address would give it unusable links.
      const base = config.publicUrl ?? `${origins.ownOrigin(req) ?? `${scheme}://localhost`}/`;
      const issuer = tokenIssuer('api', claims);
      const extras = { issuedBy: issuer, policy, record, control };
      const issued = count === undefined ? [await tokens.issue(target, ttlSeconds, extras)] : await tokens.issueMany(target, ttlSeconds, count, extras);
      audit.write('token.issued', { ...tokenIssuedEvent(issuer, config.raw.audit.includeClientAddress ? req.ip : null, target, ttlSeconds, issued), record });
      req.log.info({ sub: claims.sub, target: describeTarget(target), count: issued.length, ttlSeconds }, 'console tokens issued');
      const out = issued.map((t) => ({ token: t.token, url: consoleUrl(base, t.token), expiresAt: t.expiresAt }));
      reply.header('Cache-Control', 'no-store');
      return reply.code(201).send(count === undefined ? out[0] : out);
    } catch (err) {
      return sendError(reply, toVncgateError(err));
    }
  });
}

function describeTarget(t: ConsoleTarget): string {
  return t.kind === 'static' ? `${t.host}:${t.port}${t.profile ? ` (${t.profile})` : ''}` : `node ${t.node}`;
}
