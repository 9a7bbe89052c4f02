import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { JWTPayload } from 'jose';
import type { Config } from '../config/index.js';
import { ERROR_CODES, VncgateError, toVncgateError, type ErrorCode } from '../errors.js';
import type { ConsoleTarget } from '../tokens/index.js';
import type { ResolvedTarget } from '../target.js';
import { createJwtVerifier } from './api-auth.js';
import type { TargetResolvers } from './authorization/index.js';
import type { Lifecycle } from './drain.js';
import { firstHeader, sendError } from './http-app.js';
import { checkConsole, takeScreenshot, withDeadline, type ConsoleProbeOptions } from './screenshot.js';
import { parseTokenRequest } from './token-request.js';

export type ScreenshotApiDeps = { config: Config; resolvers: TargetResolvers; lifecycle: Lifecycle };

const QUERY_KEYS = ['target', 'node', 'profile'] as const;

/** What the operator does about a failed console check, per code (the README's error table says more). */
const CHECK_HINTS: Partial<Record<ErrorCode, string>> = {
  RFB_ERR_AUTH_FAILED: "the console refused the credentials: check the backend profile's password (and username)",
  RFB_ERR_NO_COMMON_SECURITY: "the console offers no security type the backend profile allows: adjust the profile's security list",
  RFB_ERR_CREDENTIALS_MISSING: 'the security type chosen needs credentials the backend profile lacks',
  RFB_ERR_NOT_RFB: 'the address answers, but not as a VNC server: check the port',
  BACKEND_ERR_REFUSED: 'nothing listens at the console address, or a firewall rejects the connection',
  BACKEND_ERR_UNREACHABLE: 'no route to the console address',
  BACKEND_ERR_TIMEOUT: 'the console did not answer in time (firewall dropping packets, or a stuck BMC)',
  BACKEND_ERR_DNS: 'the console host name does not resolve',
  BACKEND_ERR_TLS_UNTRUSTED: "the console's certificate is not signed by the backend profile's CA",
  BACKEND_ERR_TLS_HOSTNAME: "the console's certificate does not name its address: set the profile's servername, or verifyHostname false",
  IRONIC_ERR_CONSOLE_DISABLED: "enable the node's console (baremetal node console enable), or ironic.autoEnableConsole",
  IRONIC_ERR_CONSOLE_TYPE: 'the node has a serial console: set a graphical console_interface',
  IRONIC_ERR_NO_ENDPOINT: 'Ironic has not published the console address yet: try again shortly',
  IRONIC_ERR_NODE_NOT_FOUND: 'no such node in Ironic',
};

/** Codes that are the request's fault or vncgate's state, not the console's: answered as errors, never as a failed check. */
const REQUEST_CODES = new Set<ErrorCode>(['HTTP_ERR_UNAUTHORIZED', 'HTTP_ERR_BAD_REQUEST', 'TARGET_ERR_FORBIDDEN', 'SESSION_ERR_CAPACITY', 'SESSION_ERR_SHUTDOWN']);

/**
 * The query of GET /v1/screenshots and /v1/console-checks: `target=HOST:PORT[&profile=P]` or
 * `node=NODE`, each at most once, nothing else; checked as strictly as a token request's body.
 */
export function parseConsoleQuery(query: unknown, ctx: { ironic: boolean; hasProfile: (name: string) => boolean }): ConsoleTarget {
  const q = (query ?? {}) as Record<string, unknown>;
  const body: Record<string, string> = {};
  for (const [k, v] of Object.entries(q)) {
    if (!(QUERY_KEYS as readonly string[]).includes(k)) {
      throw new VncgateError('HTTP_ERR_BAD_REQUEST', `unknown query parameter ${JSON.stringify(k.slice(0, 64))} (allowed: ${QUERY_KEYS.join(', ')})`);
    }
    if (typeof v !== 'string') throw new VncgateError('HTTP_ERR_BAD_REQUEST', `query parameter ${k} must be given once`);
    body[k] = v;
  }
  return parseTokenRequest(body, { ...ctx, defaultTtlSeconds: 1 }).target;
}

/** Screenshots and checks under way; more than `max` are refused at once rather than queued. */
class Slots {
  #used = 0;
  constructor(readonly max: number) {}
  take(): (() => void) | null {
    if (this.#used >= this.max) return null;
    this.#used += 1;
    let released = false;
    return () => {
      if (!released) this.#used -= 1;
      released = true;
    };
  }
}

function describe(t: ConsoleTarget): string {
  return t.kind === 'static' ? `${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}${t.profile ? ` (${t.profile})` : ''}` : `node ${t.node}`;
}

/**
 * `GET /v1/screenshots` (image/png of the console, taken over a shared connection) and
 * `GET /v1/console-checks` (does the console answer RFB through ServerInit?), for the JWT bearers
 * the token API serves. A static target is held to backends.allowedTargets when dialled, exactly
 * as a session's is; a node is resolved through Ironic as for a session. One deadline
 * (api.screenshots.timeoutMs) covers everything; api.screenshots.maxConcurrent caps both routes.
 */
export function registerScreenshotApi(app: FastifyInstance, deps: ScreenshotApiDeps): void {
  const { config, resolvers, lifecycle } = deps;
  const s = config.raw.api.screenshots;
  const verifyJwt = config.jwt ? createJwtVerifier(config.jwt) : null;
  const slots = new Slots(s.maxConcurrent);
  const limits = { maxWidth: s.maxWidth, maxHeight: s.maxHeight, maxCutTextBytes: 1 << 20, maxRequests: 4 };

  /** Authenticates, parses, takes a slot and resolves the target, all within the deadline; then `run`. */
  const handle = async <T>(
    req: FastifyRequest,
    what: string,
    run: (target: ResolvedTarget, opts: ConsoleProbeOptions) => Promise<T>,
  ): Promise<{ claims: JWTPayload; target: ConsoleTarget; result: T }> => {
    if (!verifyJwt) throw new VncgateError('HTTP_ERR_UNAUTHORIZED', `the ${what} API is not enabled (configure api.jwt)`);
    if (!lifecycle.accepting) throw lifecycle.refusal(what);
    const claims = await verifyJwt(firstHeader(req.headers.authorization));
    const target = parseConsoleQuery(req.query, { ironic: resolvers.ironic !== null, hasProfile: (n) => resolvers.static.hasProfile(n) });
    const release = slots.take();
    if (!release) throw new VncgateError('SESSION_ERR_CAPACITY', `${slots.max} screenshots and console checks already under way (api.screenshots.maxConcurrent)`);
    const gone = new AbortController();
    const onClose = (): void => gone.abort();
    req.raw.socket.once('close', onClose);
    // The slot is held until the work itself has settled, not just until the deadline answered the
    // client: what runs on after an abort (a ServerInit read, a deflate) still holds a socket and memory.
    let settled: Promise<unknown> = Promise.resolve();
    try {
      const result = await withDeadline(s.timeoutMs, gone.signal, (signal, remainingMs) => {
        const work = (async () => {
          const resolved = await resolvers.resolve(target, signal);
          return run(resolved, { connectTimeoutMs: config.raw.session.connectTimeoutMs, signal, remainingMs, log: req.log });
        })();
        settled = work.catch(() => undefined);
        return work;
      });
      return { claims, target, result };
    } catch (err) {
      throw refusedTarget(toVncgateError(err), claims.sub, target, req.log);
    } finally {
      req.raw.socket.off('close', onClose);
      void settled.then(release);
    }
  };

  app.get('/v1/screenshots', async (req, reply) => {
    try {
      const { claims, target, result } = await handle(req, 'screenshot', (t, opts) => takeScreenshot(t, { ...opts, limits }));
      req.log.info({ sub: claims.sub, target: describe(target), width: result.frame.width, height: result.frame.height, bytes: result.png.length, rectangles: result.rectangles, frameMs: result.frameMs, pngMs: result.pngMs }, 'console screenshot taken');
      reply.header('Cache-Control', 'no-store');
      reply.header('X-Vncgate-Desktop-Name', encodeURIComponent(result.desktopName));
      return reply.code(200).type('image/png').send(result.png);
    } catch (err) {
      return sendError(reply, toVncgateError(err));
    }
  });

  app.get('/v1/console-checks', async (req, reply) => {
    const started = performance.now();
    try {
      const { claims, target, result } = await handle(req, 'console check', checkConsole);
      const elapsedMs = Math.round(performance.now() - started);
      req.log.info({ sub: claims.sub, target: describe(target), ok: true, elapsedMs }, 'console check');
      return noStore(reply).code(200).send({ ok: true, target: describe(target), security: result.security, desktopName: result.desktopName, width: result.width, height: result.height, elapsedMs, timings: result.timings });
    } catch (err) {
      const e = toVncgateError(err);
      if (REQUEST_CODES.has(e.code) || e.code.startsWith('HTTP_ERR_') || e.code === 'INTERNAL_ERR') return sendError(reply, e);
      const elapsedMs = Math.round(performance.now() - started);
      req.log.warn({ code: e.code, reason: e.message, elapsedMs }, 'console check failed');
      const hint = CHECK_HINTS[e.code];
      return noStore(reply).code(200).send({ ok: false, elapsedMs, error: { code: e.code, reason: e.publicReason, status: ERROR_CODES[e.code].httpStatus, ...(hint ? { hint } : {}) } });
    }
  });
}

function noStore(reply: FastifyReply): FastifyReply {
  return reply.header('Cache-Control', 'no-store');
}

/** A policy refusal names no address to the caller (as the token API): which ones, and why, go to the log. */
function refusedTarget(e: VncgateError, sub: unknown, target: ConsoleTarget, log: FastifyBaseLogger): VncgateError {
  if (e.code !== 'TARGET_ERR_FORBIDDEN') return e;
  log.warn({ sub, target: describe(target), code: e.code, reason: e.message }, 'screenshot or console check refused by the target policy');
  return new VncgateError('TARGET_ERR_FORBIDDEN', `${describe(target)} is not allowed by backends.allowedTargets`);
}
