import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/index.js';
import { VncgateError, toVncgateError } from '../errors.js';
import { NO_AUDIT, type AuditLog } from '../observe/index.js';
import type { Recordings } from '../record/index.js';
import { createJwtVerifier } from './api-auth.js';
import { firstHeader, sendError } from './http-app.js';
import type { OriginPolicy } from './origin.js';

export type RecordingApiDeps = { config: Config; recordings: Recordings | null; origins: OriginPolicy; audit?: AuditLog };

/** Where the playback page is served (web/playback.html). */
export const PLAYBACK_PAGE_PATH = '/playback.html';
/** The header that carries a playback ticket: never a URL, so never a log line or a Referer. */
export const PLAYBACK_TICKET_HEADER = 'x-playback-ticket';
/** Outstanding playback links at most (each lives playbackLinkTtlSeconds). */
const MAX_TICKETS = 1_000;

type Ticket = { id: string; expiresAtMs: number; sub: string | null };

/**
 * Single-use playback tickets, in this process's memory, by the SHA-256 of the ticket (a lookup
 * by hash compares no secret). A recording lives on the replica that wrote it, so a link is minted
 * by, and valid on, that replica (README "Recordings").
 */
class PlaybackTickets {
  readonly #byHash = new Map<string, Ticket>();

  mint(t: Ticket): string | null {
    const now = Date.now();
    for (const [h, v] of this.#byHash) if (v.expiresAtMs <= now) this.#byHash.delete(h);
    if (this.#byHash.size >= MAX_TICKETS) return null;
    const ticket = randomBytes(24).toString('base64url');
    this.#byHash.set(hash(ticket), t);
    return ticket;
  }

  /** The ticket's recording, once: a second use, or a use after it expired, finds nothing. */
  take(ticket: string): Ticket | null {
    const h = hash(ticket);
    const t = this.#byHash.get(h);
    this.#byHash.delete(h);
    return t !== undefined && t.expiresAtMs > Date.now() ? t : null;
  }
}

function hash(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

/**
 * Recordings over HTTP. The list and the minting of a playback link need the token API's bearer
 * JWT; the recording itself is fetched by the playback page with the single-use ticket the link
 * carries in its fragment (`/playback.html#ticket=…`), sent back in a header.
 */
export function registerRecordingApi(app: FastifyInstance, deps: RecordingApiDeps): void {
  const { config, recordings, origins } = deps;
  const audit = deps.audit ?? NO_AUDIT;
  const verifyJwt = config.jwt ? createJwtVerifier(config.jwt) : null;
  const tickets = new PlaybackTickets();
  const scheme = config.tls ? 'https' : 'http';
  const ttlMs = config.raw.recordings.playbackLinkTtlSeconds * 1000;

  const authorize = async (authorization: string | undefined): Promise<{ sub: string | null; recordings: Recordings }> => {
    if (!verifyJwt) throw new VncgateError('HTTP_ERR_UNAUTHORIZED', 'the API is not enabled (configure api.jwt)');
    const claims = await verifyJwt(authorization);
    if (recordings === null) throw new VncgateError('RECORDING_ERR_DISABLED', 'recordings are not enabled (configure recordings.dir)');
    return { sub: typeof claims.sub === 'string' ? claims.sub.slice(0, 256) : null, recordings };
  };

  app.get('/v1/recordings', async (req, reply) => {
    try {
      const { recordings: r } = await authorize(firstHeader(req.headers.authorization));
      reply.header('Cache-Control', 'no-store');
      return reply.send({ recordings: await r.list() });
    } catch (err) {
      return sendError(reply, toVncgateError(err));
    }
  });

  app.post<{ Params: { id: string } }>('/v1/recordings/:id/playback', async (req, reply) => {
    try {
      const { sub, recordings: r } = await authorize(firstHeader(req.headers.authorization));
      const file = r.file(req.params.id);
      if (file === null || !(await stat(file).catch(() => null))?.isFile()) throw new VncgateError('RECORDING_ERR_NOT_FOUND', 'no such recording');
      const expiresAtMs = Date.now() + ttlMs;
      const ticket = tickets.mint({ id: req.params.id, expiresAtMs, sub });
      if (ticket === null) throw new VncgateError('RECORDING_ERR_TOO_MANY_LINKS', 'too many playback links outstanding');
      const base = config.publicUrl ?? `${origins.ownOrigin(req) ?? `${scheme}://localhost`}/`;
      reply.header('Cache-Control', 'no-store');
      return reply.code(201).send({ url: `${new URL(PLAYBACK_PAGE_PATH.slice(1), base).href}#ticket=${ticket}`, expiresAt: new Date(expiresAtMs).toISOString() });
    } catch (err) {
      return sendError(reply, toVncgateError(err));
    }
  });

  app.get('/v1/recordings/playback-data', async (req, reply) => {
    try {
      const ticket = firstHeader(req.headers[PLAYBACK_TICKET_HEADER]);
      if (recordings === null) throw new VncgateError('RECORDING_ERR_DISABLED', 'recordings are not enabled');
      const t = typeof ticket === 'string' && ticket.length <= 64 ? tickets.take(ticket) : null;
      if (t === null) throw new VncgateError('RECORDING_ERR_LINK_INVALID', 'playback link expired or already used');
      const file = recordings.file(t.id);
      const s = file !== null ? await stat(file).catch(() => null) : null;
      if (file === null || !s?.isFile()) throw new VncgateError('RECORDING_ERR_NOT_FOUND', 'no such recording');
      audit.write('recording.playback', { recording: t.id, sub: t.sub, client: config.raw.audit.includeClientAddress ? req.ip : null });
      req.log.info({ recording: t.id, sub: t.sub }, 'recording played back');
      // What is on disk now (a recording still being written plays up to here).
      return reply
        .header('Cache-Control', 'no-store')
        .header('Content-Length', s.size)
        .type('application/octet-stream')
        .send(createReadStream(file, { start: 0, end: Math.max(0, s.size - 1) }));
    } catch (err) {
      return sendError(reply, toVncgateError(err));
    }
  });
}
