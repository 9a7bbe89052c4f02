import { Socket as NetSocket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import fastifyWebsocket from '@fastify/websocket';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { Config } from '../config/index.js';
import { VncgateError } from '../errors.js';
import { logSafeAddress, logSafeNode } from '../log.js';
import type { NovaTokenLookup } from '../nova/index.js';
import { tokenLogId, type TokenStore } from '../tokens/index.js';
import { authorizeRequest, type TargetResolvers } from './authorize.js';
import type { Lifecycle } from './drain.js';
import type { ConnectionGuard } from './connection-guard.js';
import { firstHeader, requestLogPath } from './http-app.js';
import type { OriginPolicy } from './origin.js';
import type { Authorize, StartedAuthorization } from '../target.js';
import { ConsoleSession, discardAuthorization, startAuthorization } from './session.js';
import type { SessionEvents } from './session-events.js';
import type { SessionRegistry } from './session-registry.js';

export type UpgradeDeps = {
  config: Config;
  tokens: TokenStore;
  log: Logger;
  resolvers: TargetResolvers;
  nova: NovaTokenLookup | null;
  registry: SessionRegistry;
  origins: OriginPolicy;
  lifecycle: Lifecycle;
  connections: ConnectionGuard;
  /** Metrics and audit events of each session; undefined when both are off. */
  events?: SessionEvents | undefined;
};

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

/**
 * Console sessions: the WebSocket upgrade on any path (noVNC's `path` decides where it goes:
 * websockify, /?token=…, any path carrying a token), checked in order — origin, capacity, the
 * upgrade headers — before the token is touched.
 */
export async function registerConsoleUpgrades(app: FastifyInstance, deps: UpgradeDeps): Promise<void> {
  const { config, tokens, log, registry, origins, lifecycle } = deps;
  const raw = config.raw;
  const limits = raw.session;

  await app.register(fastifyWebsocket, {
    options: {
      perMessageDeflate: false, // raw framebuffer data: deflate costs ~40× CPU for nothing
      maxPayload: raw.session.maxMessageBytes,
      // Echo "binary" when offered; no subprotocol is also accepted (noVNC ≥ 1.0 and most clients).
      handleProtocols: (protocols: Set<string>) => (protocols.has('binary') ? 'binary' : false),
    },
  });

  // The 101 response and the RFB ProtocolVersion the session sends right after it leave in one
  // write (over wss: one TLS record): ws writes the 101 and then runs our handler synchronously,
  // so the socket is corked just before and uncorked once the handler has run.
  // (Injected requests in tests carry a stand-in socket, left alone.)
  app.websocketServer.on('headers', (_headers: string[], req: IncomingMessage) => {
    const socket: unknown = req.socket;
    if (!(socket instanceof NetSocket)) return;
    socket.cork();
    process.nextTick(() => socket.uncork());
  });

  /**
   * Authorizations started for upgrades still being answered, by request; each holds a session
   * slot until its session adopts it, or its connection closes first (the upgrade failed).
   */
  type Early = { started: StartedAuthorization; query: URLSearchParams; onClose: () => void };
  const early = new WeakMap<IncomingMessage, Early>();
  const authDeps = { config, tokens, resolvers: deps.resolvers, nova: deps.nova, log };
  /** How this request's session is authorized: from its query string (the token) and cookies. */
  const authorizationFor = (req: FastifyRequest, query: URLSearchParams): Authorize => authorizeRequest(query, firstHeader(req.headers.cookie), authDeps, req.ip);
  let reserved = 0;
  const atCapacity = (): boolean => registry.size + reserved >= raw.session.maxSessions;

  /**
   * Once the origin is accepted, the token is consumed (and its target resolved) while the upgrade
   * is answered and the session built, rather than after: the token store's round trip no longer
   * adds to the time a console takes to open. While draining, at capacity, or for a request `ws`
   * will refuse, nothing starts: the token stays unused. The upgrade then completes without I/O in between, so
   * the close path below is a safety net for whatever `ws` refuses that wsWillAccept did not
   * foresee.
   */
  const authorizeEarly = (req: FastifyRequest): void => {
    // (Requests injected in tests have no socket: they authorize once upgraded.)
    const socket = req.raw.socket as NetSocket | undefined;
    if (!socket || !lifecycle.accepting || atCapacity() || !wsWillAccept(req)) return;
    const query = queryOf(req.url);
    const started = startAuthorization(authorizationFor(req, query));
    const onClose = (): void => {
      if (!early.delete(req.raw)) return;
      reserved--;
      discardAuthorization(started, log);
      // The link is used up with no session to show for it: the user will ask why.
      const token = query.get('token');
      log.warn(
        { remote: logSafeAddress(req.ip), path: requestLogPath(req), ...(token ? { tokenId: tokenLogId(token) } : {}) },
        'connection closed before the WebSocket upgrade completed; its token was already being consumed',
      );
    };
    early.set(req.raw, { started, query, onClose });
    reserved++;
    socket.once('close', onClose);
  };

  /** The authorization started for this upgrade (with the query it was parsed from), taken over by its session; null: none was started. */
  const adoptAuthorization = (req: FastifyRequest): Early | null => {
    const e = early.get(req.raw);
    if (!e) return null;
    early.delete(req.raw);
    reserved--;
    req.raw.socket.off('close', e.onClose);
    return e;
  };

  const onConsoleSocket = (socket: WebSocket, req: FastifyRequest): void => {
    // Upgraded: shutdown leaves this connection to its session (and its drain).
    if (req.raw.socket instanceof NetSocket) deps.connections.upgraded(req.raw.socket);
    const adopted = adoptAuthorization(req);
    const started = adopted?.started ?? null;
    const query = adopted?.query ?? queryOf(req.url);
    const token = query.get('token');
    const node = query.get('node');
    let session: ConsoleSession;
    try {
      session = new ConsoleSession(
        socket,
        token,
        logSafeAddress(req.ip) ?? '',
        {
          authorize: started ?? authorizationFor(req, query),
          limits,
          log,
          onClosed: (s) => registry.delete(s),
          browserTls: Boolean(config.tls),
          ...(deps.events ? { events: deps.events } : {}),
        },
        node !== null ? { node: logSafeNode(node) } : {},
      );
    } catch (err) {
      // Nothing will adopt what was started for this request: give back what it won.
      if (started) discardAuthorization(started, log);
      throw err;
    }
    // Without a started authorization the server was already draining or full at the upgrade (or
    // the request came another way): refused with a reason noVNC shows, token unused, so the same
    // link works on another replica or in a moment. One whose token is already being consumed
    // (the drain began meanwhile) goes ahead: refusing it would burn the link.
    let refuse: VncgateError | undefined;
    if (started === null && !lifecycle.accepting) refuse = lifecycle.refusal('console session');
    else if (started === null && atCapacity()) refuse = new VncgateError('SESSION_ERR_CAPACITY', `${raw.session.maxSessions} sessions already open`);
    registry.add(session);
    session.start(refuse);
  };

  // Answered by the app's not-found handler: vncgate's shape, HTTP_ERR_NOT_FOUND.
  const notFound = (_req: FastifyRequest, reply: FastifyReply): void => reply.callNotFound();

  // The upgrade is accepted everywhere; plain GETs on unknown paths are 404.
  app.route({
    method: 'GET',
    url: '/*',
    preValidation: async (req, reply) => {
      if (!(req as FastifyRequest & { ws?: boolean }).ws) return;
      await origins.check(req, reply);
      if (!reply.sent) authorizeEarly(req);
    },
    handler: notFound,
    wsHandler: onConsoleSocket,
  });
}
