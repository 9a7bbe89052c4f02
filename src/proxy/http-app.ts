import Fastify, { LogController, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { VncgateError } from '../errors.js';
import { pathOnly } from '../log.js';

/** The first value of a header that may repeat. */
export function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Answers with vncgate's error shape: `{"error": {"code", "message"}}`; 5xx carry only the public reason. */
export function sendError(reply: FastifyReply, err: VncgateError): FastifyReply {
  if (err.code === 'HTTP_ERR_UNAUTHORIZED') reply.header('WWW-Authenticate', 'Bearer');
  return reply.code(err.httpStatus).send({ error: { code: err.code, message: err.httpStatus < 500 ? err.message : err.publicReason } });
}

/**
 * The HTTP deadlines, as Node's http/https server options (Node 20 semantics):
 * - `requestTimeout`/`headersTimeout`: from the end of the TLS handshake (plain HTTP: from accept),
 *   or the end of the previous response, to a complete request. A socket that sends nothing at
 *   all counts too (Node tracks it from the start), and so does an upgrade request sent one byte at
 *   a time. Once a WebSocket upgrade completes, Node no longer tracks the socket: the session's own
 *   deadlines (session.*) take over and these never close it.
 * - `connectionsCheckingInterval`: how often Node looks for expired requests (default 30 s, which
 *   would stretch a 30 s deadline to a minute).
 * - `keepAliveTimeout`: idle time between requests on a kept-alive connection.
 */
export function httpDeadlines(limits: Config['raw']['limits']): {
  requestTimeout: number;
  headersTimeout: number;
  keepAliveTimeout: number;
  connectionsCheckingInterval: number;
} {
  return {
    requestTimeout: limits.requestTimeoutMs,
    headersTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(limits.requestTimeoutMs / 4))),
  };
}

/** The fastify instance with vncgate's server options, TLS, and the hooks every response passes. */
export function createHttpApp(config: Config, log: Logger): FastifyInstance {
  const raw = config.raw;
  const deadlines = httpDeadlines(raw.limits);
  const app = Fastify({
    loggerInstance: log,
    // We log requests ourselves, by path only: query strings carry tokens.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 16 * 1024,
    // Every wait has a deadline (httpDeadlines), and an idle socket one more: a response the
    // client does not read. On shutdown, HTTP connections are closed, not waited for (sockets
    // still in the TLS handshake are the connection guard's).
    connectionTimeout: 60_000,
    requestTimeout: deadlines.requestTimeout,
    keepAliveTimeout: deadlines.keepAliveTimeout,
    forceCloseConnections: true,
    trustProxy: raw.origins.trustForwardedHeaders,
    ...(config.tls
      ? {
          https: {
            cert: config.tls.cert,
            key: config.tls.key,
            minVersion: config.tls.minVersion,
            ...(config.tls.ciphers !== null ? { ciphers: config.tls.ciphers } : {}),
            // From TCP accept to a completed handshake (Node's default is 120 s).
            handshakeTimeout: raw.limits.tlsHandshakeTimeoutMs,
            ...deadlines,
          },
        }
      : { http: deadlines }),
  }) as unknown as FastifyInstance;

  app.addHook('onResponse', (req, reply, done) => {
    req.log.debug({ method: req.method, path: pathOnly(req.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
    done();
  });
  app.addHook('onSend', (_req, reply, payload, done) => {
    reply.header('X-Content-Type-Options', 'nosniff');
    if (config.tls) reply.header('Strict-Transport-Security', 'max-age=31536000');
    done(null, payload);
  });
  return app;
}
