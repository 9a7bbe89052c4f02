import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/index.js';
import { VncgateError } from '../errors.js';
import { pathOnly } from '../log.js';
import { firstHeader, sendError } from './http-app.js';

/** `scheme://host[:port]` of a URL or Origin header; null for opaque (`null`) or malformed origins. */
export function normalizeOrigin(o: string): string | null {
  try {
    const u = new URL(o);
    return u.origin === 'null' ? null : u.origin;
  } catch {
    return null;
  }
}

/** The WebSocket Origin policy: the request's own origin plus `origins.allowed`. */
export class OriginPolicy {
  readonly #raw: Config['raw']['origins'];
  readonly #scheme: 'http' | 'https';
  readonly #allowed: ReadonlySet<string>;

  constructor(config: Config) {
    this.#raw = config.raw.origins;
    this.#scheme = config.tls ? 'https' : 'http';
    this.#allowed = new Set(this.#raw.allowed.map(normalizeOrigin).filter((o): o is string => o !== null));
  }

  /** The origin this request was addressed to (what a same-site page sends as Origin). */
  ownOrigin(req: FastifyRequest): string | null {
    const trust = this.#raw.trustForwardedHeaders;
    const proto = trust ? (firstHeader(req.headers['x-forwarded-proto'])?.split(',')[0]?.trim() ?? this.#scheme) : this.#scheme;
    const host = trust ? (firstHeader(req.headers['x-forwarded-host']) ?? req.headers.host) : req.headers.host;
    return host ? normalizeOrigin(`${proto}://${host}`) : null;
  }

  /** Origin check before the upgrade: a cross-site page gets a plain 403 and consumes no token. */
  async check(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (!this.#raw.check) return;
    const origin = firstHeader(req.headers.origin);
    if (origin === undefined) {
      if (this.#raw.requireOrigin) {
        req.log.warn({ path: pathOnly(req.url) }, 'WebSocket request without Origin refused');
        await sendError(reply, new VncgateError('HTTP_ERR_ORIGIN', 'missing Origin header'));
      }
      return;
    }
    const o = normalizeOrigin(origin);
    if (o !== null && (o === this.ownOrigin(req) || this.#allowed.has(o))) return;
    req.log.warn({ origin, path: pathOnly(req.url) }, 'WebSocket request from a foreign origin refused');
    await sendError(reply, new VncgateError('HTTP_ERR_ORIGIN', `origin ${origin} is not allowed`));
  }
}
