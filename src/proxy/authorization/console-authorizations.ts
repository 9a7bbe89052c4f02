import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { VncgateError } from '../../errors.js';
import { logSafeAddress } from '../../log.js';
import { tokenLogId } from '../../tokens/index.js';
import type { Authorize, StartedAuthorization } from '../../target.js';
import type { Lifecycle } from '../drain.js';
import { firstHeader, requestLogPath } from '../http-app.js';
import { authorizeRequest, type AuthDeps } from './authorize.js';
import { authorizeGrant } from '../reconnect-authorize.js';
import { pageKeyFrom } from '../reconnect.js';
import { discardAuthorization, startAuthorization } from './started.js';

export type ConsoleAuthorizationDeps = AuthDeps & {
  log: Logger;
  lifecycle: Lifecycle;
  /** Sessions open now (the registry's size). */
  openSessions: () => number;
};

/** What an upgraded console socket's session is given. */
export type SessionGrant = {
  /** Started at the upgrade, or to be started by the session (never, when refused). */
  authorization: Authorize | StartedAuthorization;
  /** The request's query string, parsed (token, node). */
  query: URLSearchParams;
  /** Set when the session must only be told why it cannot open: its token is left unused. */
  refuse?: VncgateError;
};

type Early = { started: StartedAuthorization; query: URLSearchParams; onClose: () => void };

/**
 * When and how a console link is used up, from the upgrade request to the session.
 *
 * Once the origin is accepted, the token is consumed (and its target resolved) while the upgrade
 * is answered and the session built, rather than after: the token store's round trip no longer
 * adds to the time a console takes to open. While draining, at capacity, or for a request `ws`
 * will refuse, nothing starts: the token stays unused, and the session, if one is built after all,
 * is refused with a reason noVNC shows, so the same link works on another replica or in a moment.
 * An authorization started early holds a session slot until its session adopts it, or its
 * connection closes first (the upgrade failed), which gives back what it won. What the
 * authorization itself does (vncgate token, Nova, Ironic; slots, leases) is authorize.ts.
 */
export class ConsoleAuthorizations {
  readonly #deps: ConsoleAuthorizationDeps;
  readonly #early = new WeakMap<IncomingMessage, Early>();
  #reserved = 0;

  constructor(deps: ConsoleAuthorizationDeps) {
    this.#deps = deps;
  }

  #atCapacity(): boolean {
    return this.#deps.openSessions() + this.#reserved >= this.#deps.config.raw.session.maxSessions;
  }

  /** How this request's session is authorized: from its query string (the token) and cookies. */
  #authorizationFor(req: FastifyRequest, query: URLSearchParams): Authorize {
    const grant = query.get('grant');
    const grants = this.#deps.reconnect;
    if (grant !== null && grants) return authorizeGrant(grant, pageKeyFrom(firstHeader(req.headers['sec-websocket-protocol'])), req.ip, this.#deps, grants);
    return authorizeRequest(query, firstHeader(req.headers.cookie), this.#deps, req.ip);
  }

  /**
   * Starts consuming the request's token, if it may be used now (origin already accepted). The
   * upgrade then completes without I/O in between, so the close path below is a safety net for
   * whatever `ws` refuses that wsWillAccept did not foresee.
   */
  beginEarly(req: FastifyRequest): void {
    // (Requests injected in tests have no socket: they authorize once upgraded.)
    const socket = req.raw.socket as Socket | undefined;
    if (!socket || !this.#deps.lifecycle.accepting || this.#atCapacity() || !wsWillAccept(req)) return;
    const query = queryOf(req.url);
    const started = startAuthorization(this.#authorizationFor(req, query));
    const { log } = this.#deps;
    const onClose = (): void => {
      if (!this.#early.delete(req.raw)) return;
      this.#reserved--;
      discardAuthorization(started, log);
      // The link is used up with no session to show for it: the user will ask why.
      const token = query.get('token');
      log.warn(
        { remote: logSafeAddress(req.ip), path: requestLogPath(req), ...(token ? { tokenId: tokenLogId(token) } : {}) },
        'connection closed before the WebSocket upgrade completed; its token was already being consumed',
      );
    };
    this.#early.set(req.raw, { started, query, onClose });
    this.#reserved++;
    socket.once('close', onClose);
  }

  /**
   * The upgraded request's session: the authorization started for it, taken over, or a new one.
   * Without a started one the server was already draining or full at the upgrade (or the request
   * came another way): refused, token unused. One whose token is already being consumed goes
   * ahead even if the drain began meanwhile: refusing it would burn the link.
   */
  forSession(req: FastifyRequest): SessionGrant {
    const e = this.#early.get(req.raw);
    if (e) {
      this.#early.delete(req.raw);
      this.#reserved--;
      req.raw.socket.off('close', e.onClose);
      return { authorization: e.started, query: e.query };
    }
    const query = queryOf(req.url);
    const grant: SessionGrant = { authorization: this.#authorizationFor(req, query), query };
    const { lifecycle, config } = this.#deps;
    if (!lifecycle.accepting) grant.refuse = lifecycle.refusal('console session');
    else if (this.#atCapacity()) grant.refuse = new VncgateError('SESSION_ERR_CAPACITY', `${config.raw.session.maxSessions} sessions already open`);
    return grant;
  }

  /** No session will adopt this grant (building it failed): give back what it won. */
  abandon(grant: SessionGrant): void {
    if (typeof grant.authorization !== 'function') discardAuthorization(grant.authorization, this.#deps.log);
  }
}

/** The query string of a request URL, parsed (upgrade requests carry the token there). */
function queryOf(url: string): URLSearchParams {
  const q = url.indexOf('?');
  return new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
}

const WS_KEY = /^[+/0-9A-Za-z]{22}==$/;
const WS_TOKEN_LIST = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:[ \t]*,[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+)*$/;

/**
 * Whether `ws` will accept this upgrade: the checks it makes (GET, `Upgrade: websocket`, a
 * 16-byte key, version 13 or 8, a well-formed subprotocol list without repeats), no looser. Only
 * such a request has its token consumed before the upgrade completes; for anything else `ws`
 * answers 4xx and the token stays unused (a request it accepts after all authorizes once upgraded).
 */
function wsWillAccept(req: FastifyRequest): boolean {
  const h = req.headers;
  if (req.method !== 'GET' || firstHeader(h.upgrade)?.toLowerCase() !== 'websocket') return false;
  const key = firstHeader(h['sec-websocket-key']);
  const version = firstHeader(h['sec-websocket-version']);
  if (key === undefined || !WS_KEY.test(key) || (version !== '13' && version !== '8')) return false;
  const protocols = firstHeader(h['sec-websocket-protocol']);
  if (protocols === undefined) return true;
  if (!WS_TOKEN_LIST.test(protocols)) return false;
  const list = protocols.split(',').map((p) => p.trim());
  return new Set(list).size === list.length;
}
