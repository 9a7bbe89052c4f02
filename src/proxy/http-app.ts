import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { VncgateError, type ErrorCode } from '../errors.js';
import { logSafePath, pathOnly } from '../log.js';
import { forwardedTrust } from './forwarded.js';

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

/** A request's path as it may be logged (see logSafePath): never a path that could carry a token. */
export function requestLogPath(req: FastifyRequest): string {
  return logSafePath(req.url, req.routeOptions.url);
}

/** vncgate's code for an HTTP status fastify (or a plugin) chose; 5xx is our own fault. */
function codeForStatus(status: number | undefined): ErrorCode {
  if (status === 404) return 'HTTP_ERR_NOT_FOUND';
  if (status === 405) return 'HTTP_ERR_METHOD_NOT_ALLOWED';
  if (status === 413) return 'HTTP_ERR_TOO_LARGE';
  if (status === 415) return 'HTTP_ERR_UNSUPPORTED_MEDIA_TYPE';
  if (status !== undefined && status >= 400 && status < 500) return 'HTTP_ERR_BAD_REQUEST';
  return 'INTERNAL_ERR';
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;
/** Paths that can only name a fixed route (find-my-way reads `:`, `*` and `(` as pattern syntax). */
const PLAIN_PATH = /^\/[A-Za-z0-9._~/-]*$/;

/**
 * Every HTTP error vncgate answers has vncgate's shape and a code: errors fastify raises itself
 * (bad JSON, a body too large, an unsupported media type), anything a route throws, unknown paths
 * (404) and known paths asked with another method (405, with `Allow`).
 */
function registerErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | VncgateError, req, reply) => {
    if (err instanceof VncgateError) return sendError(reply, err);
    const code = codeForStatus(err.statusCode);
    const e = new VncgateError(code, code === 'INTERNAL_ERR' ? 'internal error' : err.message, { cause: err });
    if (code === 'INTERNAL_ERR') req.log.error({ err, path: requestLogPath(req) }, 'request failed');
    else req.log.debug({ code, fastifyCode: err.code, path: requestLogPath(req) }, 'request refused');
    return sendError(reply, e);
  });
  app.setNotFoundHandler((req, reply) => {
    const path = pathOnly(req.url);
    const allowed = PLAIN_PATH.test(path) ? METHODS.filter((method) => app.hasRoute({ method, url: path })) : [];
    if (allowed.length > 0) {
      reply.header('Allow', allowed.join(', '));
      return sendError(reply, new VncgateError('HTTP_ERR_METHOD_NOT_ALLOWED', `${req.method} is not allowed here; use ${allowed.join(' or ')}`));
    }
    return sendError(reply, new VncgateError('HTTP_ERR_NOT_FOUND', 'not found'));
  });
}

const CLIENT_ERRORS: Record<string, ErrorCode> = {
  ERR_HTTP_REQUEST_TIMEOUT: 'HTTP_ERR_TIMEOUT',
  HPE_HEADER_OVERFLOW: 'HTTP_ERR_HEADERS_TOO_LARGE',
};

/**
 * Answers what Node's HTTP parser refused before any route ran: a request deadline, bad syntax,
 * headers too large, or a TLS handshake that failed or timed out (no answer possible there), in
 * vncgate's shape; then the connection is destroyed, as Node does by default.
 */
function clientErrorAnswerer(log: Logger): (err: NodeJS.ErrnoException, socket: Duplex) => void {
  return (err, socket) => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const tlsPending = 'encrypted' in socket && !(socket as { _secureEstablished?: boolean })._secureEstablished;
    const e = new VncgateError(CLIENT_ERRORS[err.code ?? ''] ?? 'HTTP_ERR_BAD_REQUEST', 'malformed or incomplete request');
    log.trace({ err, code: e.code }, 'client error');
    if (socket.writable && !tlsPending) {
      const body = JSON.stringify({ error: { code: e.code, message: e.message } });
      socket.write(
        `HTTP/1.1 ${e.httpStatus} ${STATUS_CODES[e.httpStatus] ?? 'Error'}\r\nContent-Type: application/json; charset=utf-8\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
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
    // Errors Node's HTTP parser raises before any route (a request deadline, bad syntax, headers
    // too large) are answered in vncgate's shape too; the connection is closed after.
    clientErrorHandler: clientErrorAnswerer(log),
    // X-Forwarded-For is read only from trustedProxies (fastify calls this for each hop); `req.ip`
    // is then the client's. A PROXY listener has already made the socket's address the client's.
    trustProxy: forwardedTrust(config) ?? false,
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

  registerErrorHandlers(app);
  app.addHook('onResponse', (req, reply, done) => {
    req.log.debug({ method: req.method, path: requestLogPath(req), status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
    done();
  });
  app.addHook('onSend', (_req, reply, payload, done) => {
    reply.header('X-Content-Type-Options', 'nosniff');
    if (config.tls) reply.header('Strict-Transport-Security', 'max-age=31536000');
    done(null, payload);
  });
  return app;
}
