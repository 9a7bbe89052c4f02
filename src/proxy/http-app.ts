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

/** The fastify instance with vncgate's server options, TLS, and the hooks every response passes. */
export function createHttpApp(config: Config, log: Logger): FastifyInstance {
  const raw = config.raw;
  const app = Fastify({
    loggerInstance: log,
    // We log requests ourselves, by path only: query strings carry tokens.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 16 * 1024,
    // Every wait has a deadline, including a client that connects and never sends a request; on
    // shutdown, connections that never sent a request must not hold the process open.
    connectionTimeout: 60_000,
    requestTimeout: 30_000,
    forceCloseConnections: true,
    trustProxy: raw.origins.trustForwardedHeaders,
    ...(config.tls
      ? {
          https: {
            cert: config.tls.cert,
            key: config.tls.key,
            minVersion: config.tls.minVersion,
            ...(config.tls.ciphers !== null ? { ciphers: config.tls.ciphers } : {}),
          },
        }
      : {}),
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
