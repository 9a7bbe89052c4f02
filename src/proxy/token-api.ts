import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/index.js';
import { VncgateError, toVncgateError } from '../errors.js';
import { parseTarget, type ConsoleTarget, type TokenStore } from '../tokens/index.js';
import { createJwtVerifier } from './api-auth.js';
import type { TargetResolvers } from './authorize.js';
import { consoleUrl } from './console-url.js';
import type { Lifecycle } from './drain.js';
import { firstHeader, sendError } from './http-app.js';
import type { OriginPolicy } from './origin.js';
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
  app.post('/v1/console-tokens', async (req, reply) => {
    if (!verifyJwt) return sendError(reply, new VncgateError('HTTP_ERR_UNAUTHORIZED', 'the token API is not enabled (configure api.jwt)'));
    if (!lifecycle.accepting) return sendError(reply, lifecycle.refusal('token request'));
    try {
      const claims = await verifyJwt(firstHeader(req.headers.authorization));
      const { target, ttlSeconds, count } = parseTokenRequest(req.body, config.raw.tokens.defaultTtlSeconds, resolvers);
      const base = config.publicUrl ?? `${origins.ownOrigin(req) ?? `${scheme}://localhost`}/`;
      const issuer = tokenIssuer('api', claims);
      const issued = count === undefined ? [await tokens.issue(target, ttlSeconds, issuer)] : await tokens.issueMany(target, ttlSeconds, count, issuer);
      audit.write('token.issued', tokenIssuedEvent(issuer, config.raw.audit.includeClientAddress ? req.ip : null, target, ttlSeconds, issued));
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

/** Body of POST /v1/console-tokens: {target: "host:port" | {host, port}, profile?, ttlSeconds?, count?}. */
function parseTokenRequest(
  body: unknown,
  defaultTtl: number,
  resolvers: TargetResolvers,
): { target: ConsoleTarget; ttlSeconds: number; count: number | undefined } {
  const bad = (m: string): VncgateError => new VncgateError('HTTP_ERR_BAD_REQUEST', m);
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw bad('expected a JSON object');
  const b = body as Record<string, unknown>;
  let candidate: unknown;
  if (b.node !== undefined) {
    if (!resolvers.ironic) throw bad('node targets need Ironic to be configured (ironic.url)');
    if (b.target !== undefined) throw bad('give either target or node, not both');
    candidate = { kind: 'node', node: b.node };
  } else if (typeof b.target === 'string') {
    const m = /^\[([^\]]+)\]:(\d+)$/.exec(b.target) ?? /^([^:]+):(\d+)$/.exec(b.target);
    if (!m) throw bad('target must be "host:port" or "[ipv6]:port"');
    candidate = { kind: 'static', host: m[1], port: Number(m[2]), ...(b.profile !== undefined ? { profile: b.profile } : {}) };
  } else if (b.target && typeof b.target === 'object') {
    candidate = { kind: 'static', ...(b.target as object), ...(b.profile !== undefined ? { profile: b.profile } : {}) };
  } else {
    throw bad('target (host:port) or node is required');
  }
  const parsed = parseTarget(candidate);
  if (!parsed.ok) throw bad(`invalid target: ${parsed.problems.join('; ')}`);
  if (parsed.target.kind === 'static' && parsed.target.profile !== undefined && !resolvers.static.hasProfile(parsed.target.profile)) {
    throw bad(`unknown backend profile ${JSON.stringify(parsed.target.profile)}`);
  }
  const ttlSeconds = b.ttlSeconds === undefined ? defaultTtl : b.ttlSeconds;
  if (typeof ttlSeconds !== 'number') throw bad('ttlSeconds must be a number');
  if (b.count !== undefined && typeof b.count !== 'number') throw bad('count must be a number');
  return { target: parsed.target, ttlSeconds, count: b.count as number | undefined };
}
