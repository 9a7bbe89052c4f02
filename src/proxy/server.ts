import { Socket as NetSocket, createServer as createNetServer, type Server as NetServer } from 'node:net';
import type { IncomingMessage } from 'node:http';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { Config } from '../config/index.js';
import { VncgateError, toVncgateError } from '../errors.js';
import { pathOnly } from '../log.js';
import { parseTarget, tokenLogId, type ConsoleTarget, type TokenStore } from '../tokens/index.js';
import { createJwtVerifier } from './api-auth.js';
import { consoleUrl } from './console-url.js';
import type { IronicNodeResolver } from '../ironic/index.js';
import type { NovaTokenLookup } from '../nova/index.js';
import { TargetResolvers, authorizeRequest } from './authorize.js';
import { ConsoleSession, discardAuthorization, startAuthorization, type Authorize, type SessionLimits, type StartedAuthorization } from './session.js';
import { SessionRegistry } from './session-registry.js';

export type ServerDeps = {
  config: Config;
  tokens: TokenStore;
  log: Logger;
  /** Ironic node resolver (from createIronic); node targets are refused without one. */
  ironic?: IronicNodeResolver | null;
  /** Nova token lookup (from createNova); Nova's console URLs are refused without one. */
  nova?: NovaTokenLookup | null;
  /** Registers extra routes (the console page) on the app before it starts. */
  plugins?: ((app: FastifyInstance) => Promise<void> | void)[];
};

export type VncgateServer = {
  app: FastifyInstance;
  registry: SessionRegistry;
  /** Actual bound addresses, "host:port". */
  addresses: string[];
  /** Base URL for console links (publicUrl, else the first listen address). */
  baseUrl: string;
  close(): Promise<void>;
};

/** The query string of a request URL, parsed (upgrade requests carry the token there). */
function queryOf(url: string): URLSearchParams {
  const q = url.indexOf('?');
  return new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function normalizeOrigin(o: string): string | null {
  try {
    const u = new URL(o);
    return u.origin === 'null' ? null : u.origin;
  } catch {
    return null;
  }
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

/** Builds the fastify app: WebSocket console sessions, the token API, health endpoints. */
export async function buildServer(deps: ServerDeps): Promise<VncgateServer> {
  const { config, tokens, log } = deps;
  const raw = config.raw;
  const limits: SessionLimits = raw.session;
  const resolvers = new TargetResolvers(config, deps.ironic ?? null);
  const registry = new SessionRegistry(limits);
  const scheme = config.tls ? 'https' : 'http';

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

  const sendError = (reply: FastifyReply, err: VncgateError): FastifyReply => {
    if (err.code === 'HTTP_ERR_UNAUTHORIZED') reply.header('WWW-Authenticate', 'Bearer');
    return reply.code(err.httpStatus).send({ error: { code: err.code, message: err.httpStatus < 500 ? err.message : err.publicReason } });
  };

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

  const ownOrigin = (req: FastifyRequest): string | null => {
    const proto = raw.origins.trustForwardedHeaders ? (firstHeader(req.headers['x-forwarded-proto'])?.split(',')[0]?.trim() ?? scheme) : scheme;
    const host = raw.origins.trustForwardedHeaders ? (firstHeader(req.headers['x-forwarded-host']) ?? req.headers.host) : req.headers.host;
    return host ? normalizeOrigin(`${proto}://${host}`) : null;
  };
  const allowedOrigins = new Set(raw.origins.allowed.map(normalizeOrigin).filter((o): o is string => o !== null));

  /** Origin check before the upgrade: a cross-site page gets a plain 403 and consumes no token. */
  const checkOrigin = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!raw.origins.check) return;
    const origin = firstHeader(req.headers.origin);
    if (origin === undefined) {
      if (raw.origins.requireOrigin) {
        req.log.warn({ path: pathOnly(req.url) }, 'WebSocket request without Origin refused');
        await sendError(reply, new VncgateError('HTTP_ERR_ORIGIN', 'missing Origin header'));
      }
      return;
    }
    const o = normalizeOrigin(origin);
    if (o !== null && (o === ownOrigin(req) || allowedOrigins.has(o))) return;
    req.log.warn({ origin, path: pathOnly(req.url) }, 'WebSocket request from a foreign origin refused');
    await sendError(reply, new VncgateError('HTTP_ERR_ORIGIN', `origin ${origin} is not allowed`));
  };

  /**
   * Authorizations started for upgrades still being answered, by request; each holds a session
   * slot until its session adopts it, or its connection closes first (the upgrade failed).
   */
  type Early = { started: StartedAuthorization; query: URLSearchParams; onClose: () => void };
  const early = new WeakMap<IncomingMessage, Early>();
  const authDeps = { config, tokens, resolvers, nova: deps.nova ?? null };
  /** How this request's session is authorized: from its query string (the token) and cookies. */
  const authorizationFor = (req: FastifyRequest, query: URLSearchParams): Authorize => authorizeRequest(query, firstHeader(req.headers.cookie), { ...authDeps, log }, req.ip);
  let reserved = 0;
  const atCapacity = (): boolean => registry.size + reserved >= raw.session.maxSessions;

  /**
   * Once the origin is accepted, the token is consumed (and its target resolved) while the upgrade
   * is answered and the session built, rather than after: the token store's round trip no longer
   * adds to the time a console takes to open. At capacity, or for a request `ws` will refuse,
   * nothing starts: the token stays unused. The upgrade then completes without I/O in between, so
   * the close path below is a safety net for whatever `ws` refuses that wsWillAccept did not
   * foresee.
   */
  const authorizeEarly = (req: FastifyRequest): void => {
    // (Requests injected in tests have no socket: they authorize once upgraded.)
    const socket = req.raw.socket as NetSocket | undefined;
    if (!socket || atCapacity() || !wsWillAccept(req)) return;
    const query = queryOf(req.url);
    const started = startAuthorization(authorizationFor(req, query));
    const onClose = (): void => {
      if (!early.delete(req.raw)) return;
      reserved--;
      discardAuthorization(started, log);
      // The link is used up with no session to show for it: the user will ask why.
      const token = query.get('token');
      log.warn(
        { remote: req.ip, path: pathOnly(req.url), ...(token ? { tokenId: tokenLogId(token) } : {}) },
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
    const adopted = adoptAuthorization(req);
    const started = adopted?.started ?? null;
    const query = adopted?.query ?? queryOf(req.url);
    const token = query.get('token');
    const node = query.get('node');
    const remote = req.ip;
    let session: ConsoleSession;
    try {
      session = new ConsoleSession(
        socket,
        token,
        remote,
        {
          authorize: started ?? authorizationFor(req, query),
          limits,
          log,
          onClosed: (s) => registry.delete(s),
          browserTls: Boolean(config.tls),
        },
        node !== null ? { node: node.slice(0, 255) } : {},
      );
    } catch (err) {
      // Nothing will adopt what was started for this request: give back what it won.
      if (started) discardAuthorization(started, log);
      throw err;
    }
    // Without a started authorization the limit was already reached at the upgrade (or the
    // request came another way): refused, token unused.
    const full = started === null && atCapacity();
    registry.add(session);
    session.start(full ? new VncgateError('SESSION_ERR_CAPACITY', `${raw.session.maxSessions} sessions already open`) : undefined);
  };

  const notFound = async (_req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    await reply.code(404).send({ error: { code: 'HTTP_ERR_BAD_REQUEST', message: 'not found' } });
  };

  // noVNC's `path` decides where the WebSocket goes (websockify, /?token=…, any path carrying a
  // token), so the upgrade is accepted everywhere; plain GETs on unknown paths are 404.
  app.route({
    method: 'GET',
    url: '/*',
    preValidation: async (req, reply) => {
      if (!(req as FastifyRequest & { ws?: boolean }).ws) return;
      await checkOrigin(req, reply);
      if (!reply.sent) authorizeEarly(req);
    },
    handler: notFound,
    wsHandler: onConsoleSocket,
  });

  app.get('/healthz', async () => ({ status: 'ok', sessions: registry.size }));
  app.get('/readyz', async (_req, reply) => {
    try {
      await tokens.ready();
      return { status: 'ready', tokenStore: tokens.kind };
    } catch (err) {
      return sendError(reply, toVncgateError(err));
    }
  });

  const verifyJwt = config.jwt ? createJwtVerifier(config.jwt) : null;
  app.post('/v1/console-tokens', async (req, reply) => {
    if (!verifyJwt) return sendError(reply, new VncgateError('HTTP_ERR_UNAUTHORIZED', 'the token API is not enabled (configure api.jwt)'));
    try {
      const claims = await verifyJwt(firstHeader(req.headers.authorization));
      const { target, ttlSeconds, count } = parseTokenRequest(req.body, raw.tokens.defaultTtlSeconds, resolvers);
      const base = config.publicUrl ?? `${ownOrigin(req) ?? `${scheme}://localhost`}/`;
      const issued = count === undefined ? [await tokens.issue(target, ttlSeconds)] : await tokens.issueMany(target, ttlSeconds, count);
      req.log.info({ sub: claims.sub, target: describeTarget(target), count: issued.length, ttlSeconds }, 'console tokens issued');
      const out = issued.map((t) => ({ token: t.token, url: consoleUrl(base, t.token), expiresAt: t.expiresAt }));
      reply.header('Cache-Control', 'no-store');
      return reply.code(201).send(count === undefined ? out[0] : out);
    } catch (err) {
      return sendError(reply, toVncgateError(err));
    }
  });

  for (const plugin of deps.plugins ?? []) await plugin(app);

  const [first, ...rest] = config.listen;
  if (!first) throw new VncgateError('CONFIG_ERR_INVALID', 'no listen address');
  await app.listen({ host: first.host, port: first.port });
  const addresses: string[] = [];
  const fmt = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
  const a = app.server.address();
  if (a && typeof a === 'object') addresses.push(fmt(a.address, a.port));
  // Further addresses (IPv6 beside IPv4, say) hand their connections to the same server.
  const extra: NetServer[] = [];
  for (const l of rest) {
    const srv = createNetServer((sock) => app.server.emit('connection', sock));
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(l.port, l.host, () => resolve());
    });
    const ea = srv.address();
    if (ea && typeof ea === 'object') addresses.push(fmt(ea.address, ea.port));
    extra.push(srv);
  }
  const firstAddr = addresses[0] ?? fmt(first.host, first.port);
  const baseHost = /^(0\.0\.0\.0|\[::\]):/.test(firstAddr) ? firstAddr.replace(/^(0\.0\.0\.0|\[::\])/, 'localhost') : firstAddr;
  const baseUrl = config.publicUrl ?? `${scheme}://${baseHost}/`;

  return {
    app,
    registry,
    addresses,
    baseUrl,
    async close() {
      registry.closeAll(new VncgateError('SESSION_ERR_SHUTDOWN', 'server shutting down'));
      await deps.nova?.close();
      await Promise.all(extra.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
      await app.close();
    },
  };
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
