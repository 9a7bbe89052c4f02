import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/index.js';
import { VncgateError } from '../errors.js';
import { logSafeOrigin } from '../log.js';
import { forwardedTrust, lastForwardedValue, type ForwardedTrust } from './forwarded.js';
import { firstHeader, requestLogPath, sendError } from './http-app.js';

/** `scheme://host[:port]` of a URL or Origin header; null for opaque (`null`) or malformed origins. */
export function normalizeOrigin(o: string): string | null {
  try {
    const u = new URL(o);
    return u.origin === 'null' ? null : u.origin;
  } catch {
    return null;
  }
}

/**
 * The WebSocket Origin policy: vncgate's own origin plus `origins.allowed`. The own origin is
 * `publicUrl`'s when one is configured — the address users are given, not whatever `Host` a client
 * sent — and otherwise the origin the request was addressed to.
 */
export class OriginPolicy {
  readonly #raw: Config['raw']['origins'];
  readonly #scheme: 'http' | 'https';
  readonly #allowed: ReadonlySet<string>;
  readonly #public: string | null;
  readonly #trust: ForwardedTrust | null;

  constructor(config: Config) {
    this.#trust = forwardedTrust(config);
    this.#raw = config.raw.origins;
    this.#scheme = config.tls ? 'https' : 'http';
    this.#allowed = new Set(this.#raw.allowed.map(normalizeOrigin).filter((o): o is string => o !== null));
    this.#public = config.publicUrl !== null ? normalizeOrigin(config.publicUrl) : null;
  }

  /** vncgate's own origin for this request (what a same-site page sends as Origin): publicUrl's, else the one it was addressed to. */
  ownOrigin(req: FastifyRequest): string | null {
    return this.#public ?? this.#addressedOrigin(req);
  }

  /**
   * `scheme://host[:port]` the request was addressed to, from `Host`, or from `X-Forwarded-Proto`
   * and `-Host` when the connection comes from a trusted proxy (their last entries: the ones that
   * proxy wrote).
   */
  #addressedOrigin(req: FastifyRequest): string | null {
    const trusted = this.#trust !== null && this.#trust(req.raw.socket?.remoteAddress);
    const proto = (trusted ? lastForwardedValue(req.headers['x-forwarded-proto']) : undefined) ?? this.#scheme;
    const host = (trusted ? lastForwardedValue(req.headers['x-forwarded-host']) : undefined) ?? req.headers.host;
    return host ? normalizeOrigin(`${proto}://${host}`) : null;
  }

  /** Origin check before the upgrade: a cross-site page gets a plain 403 and consumes no token. */
  async check(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (!this.#raw.check) return;
    const origin = firstHeader(req.headers.origin);
    if (origin === undefined) {
      if (this.#raw.requireOrigin) {
        req.log.warn({ path: requestLogPath(req) }, 'WebSocket request without Origin refused');
        await sendError(reply, new VncgateError('HTTP_ERR_ORIGIN', 'missing Origin header'));
      }
      return;
    }
    const o = normalizeOrigin(origin);
    if (o !== null && (o === this.ownOrigin(req) || this.#allowed.has(o))) return;
    // The header is the client's to fill (it may carry a token-like string): its safe form only.
    const safe = logSafeOrigin(origin);
    req.log.warn({ origin: safe, path: requestLogPath(req) }, 'WebSocket request from a foreign origin refused');
    await sendError(reply, new VncgateError('HTTP_ERR_ORIGIN', `origin ${safe} is not allowed`));
  }
}
