import { Socket as NetSocket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import fastifyWebsocket from '@fastify/websocket';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { Config } from '../config/index.js';
import { logSafeAddress, logSafeNode } from '../log.js';
import { firstHeader } from './http-app.js';
import type { NovaTokenLookup } from '../nova/index.js';
import type { TokenStore } from '../tokens/index.js';
import { ConsoleAuthorizations, type TargetResolvers } from './authorization/index.js';
import type { Lifecycle } from './drain.js';
import type { ConnectionGuard } from './connection-guard.js';
import type { OriginPolicy } from './origin.js';
import { chooseSubprotocol } from './control-channel.js';
import { ReconnectGrants, SessionGrant, pageKeyFrom } from './reconnect.js';
import { ConsoleSession } from './session.js';
import { ShareRegistry } from './share/registry.js';
import type { SessionEvents } from './session-events.js';
import type { SessionRegistry } from './session-registry.js';
import type { Recordings } from '../record/index.js';

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
  /** Session recordings (recordings.dir), or null. */
  recordings?: Recordings | null;
};

/**
 * Console sessions: the WebSocket upgrade on any path (noVNC's `path` decides where it goes:
 * websockify, /?token=…, any path carrying a token), checked in order — origin, capacity, the
 * upgrade headers — before the token is touched (authorization/console-authorizations.ts decides
 * when it is).
 */
export async function registerConsoleUpgrades(app: FastifyInstance, deps: UpgradeDeps): Promise<void> {
  const { config, tokens, log, registry, origins, lifecycle } = deps;
  const raw = config.raw;
  const limits = raw.session;
  // Shared consoles only when a profile asks for them: otherwise sessions carry no registry at all.
  const profiles = raw.backends.profiles;
  const share = Object.values(profiles).some((p) => p.sharing)
    ? new ShareRegistry({ sharing: (name) => profiles[name]?.sharing === true, limits, log: log.child({ component: 'share' }) })
    : undefined;

  await app.register(fastifyWebsocket, {
    options: {
      perMessageDeflate: false, // raw framebuffer data: deflate costs ~40× CPU for nothing
      maxPayload: raw.session.maxMessageBytes,
      // vncgate's control channel when offered (control-channel.ts), else "binary" when offered;
      // no subprotocol is also accepted (noVNC ≥ 1.0 and most clients).
      handleProtocols: chooseSubprotocol,
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

  const reconnect = ReconnectGrants.for(config, tokens.grants);
  const authorizations = new ConsoleAuthorizations({
    config,
    tokens,
    resolvers: deps.resolvers,
    nova: deps.nova,
    log,
    lifecycle,
    openSessions: () => registry.size,
    reconnect,
  });

  const onConsoleSocket = (socket: WebSocket, req: FastifyRequest): void => {
    // Upgraded: shutdown leaves this connection to its session (and its drain).
    if (req.raw.socket instanceof NetSocket) deps.connections.upgraded(req.raw.socket);
    const grant = authorizations.forSession(req);
    const token = grant.query.get('token');
    const node = grant.query.get('node');
    const sessionGrant = reconnect ? pageGrant(reconnect, req) : null;
    let session: ConsoleSession;
    try {
      session = new ConsoleSession(
        socket,
        token,
        logSafeAddress(req.ip) ?? '',
        {
          authorize: grant.authorization,
          limits,
          log,
          onClosed: (s) => registry.delete(s),
          browserTls: Boolean(config.tls),
          ...(deps.events ? { events: deps.events } : {}),
          grant: sessionGrant,
          recordings: deps.recordings ?? null,
          ...(share ? { share } : {}),
        },
        node !== null ? { node: logSafeNode(node) } : {},
      );
    } catch (err) {
      authorizations.abandon(grant);
      throw err;
    }
    sessionGrant?.attach(session.id, (e) => session.terminate(e), session.control);
    registry.add(session);
    session.start(grant.refuse);
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
      if (!reply.sent) authorizations.beginEarly(req);
    },
    handler: notFound,
    wsHandler: onConsoleSocket,
  });
}

/** A session's grant side: the page's key from its subprotocol offer, and its address. */
function pageGrant(reconnect: ReconnectGrants, req: FastifyRequest): SessionGrant {
  return new SessionGrant(reconnect, { key: pageKeyFrom(firstHeader(req.headers['sec-websocket-protocol'])), remote: req.ip });
}
