import { join, sep } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ASSETS_DIR, loadWebAssets } from './assets.js';
import type { WebAsset } from './assets.js';
import { buildConsoleCsp } from './csp.js';
import { PACKAGE_ROOT } from '../package-root.js';

/**
 * The page's names: noVNC's own, and `vnc_auto.html`, which noVNC renamed in 1.0 but Nova's and
 * Ironic's defaults still point at (nova/conf/vnc.py:62, ironic/conf/vnc.py:45).
 */
export const CONSOLE_PAGE_PATHS = ['/vnc.html', '/vnc_lite.html', '/vnc_auto.html'] as const;

/** Where the landing page is served (web/index.html). */
export const LANDING_PATH = '/';

/** Where the recording playback page is served (web/playback.html). */
export const PLAYBACK_PATH = '/playback.html';

/** `<package>/dist/public`, both from src/web (tsx, vitest) and from the compiled dist/src/web. */
export const DEFAULT_WEB_ROOT = join(PACKAGE_ROOT, 'dist', 'public') + sep;

export interface ConsolePageOptions {
  /**
   * CSP `frame-ancestors` sources: the origins allowed to embed the console in a frame, e.g.
   * Horizon's `https://horizon.example.org`. Default `["'self'"]`; `["'none'"]` forbids framing.
   */
  readonly frameAncestors?: readonly string[];
  /**
   * Extra CSP `connect-src` sources, for links whose `host`/`port` parameters send the WebSocket
   * to another origin than the page's (e.g. `wss://console.example.org:6443`). Default none.
   */
  readonly connectSources?: readonly string[];
  /** The built page (`npm run build:web`). Default {@link DEFAULT_WEB_ROOT}. */
  readonly webRoot?: string;
}

/** Hashed names never change content: cache for a year, never revalidate (RFC 8246). */
const IMMUTABLE = 'public, max-age=31536000, immutable';

/**
 * Router constraint that tells WebSocket upgrades from plain requests. The page routes only take
 * plain requests, so an upgrade on a page path falls through to the app's catch-all WebSocket
 * route: noVNC resolves `path` against the page, and Nova's `/vnc_lite.html?path=%3Ftoken%3D…`
 * therefore opens `ws://…/vnc_lite.html?token=…` (websockify accepts upgrades on any path).
 * Without it, @fastify/websocket would close such sockets for want of a handler on the page route.
 */
const UPGRADE_CONSTRAINT = 'vncgateUpgrade';
type RequestKind = 'websocket' | 'http';
type ConstraintStrategy = Parameters<FastifyInstance['addConstraintStrategy']>[0];
type RouteHandler = Parameters<ReturnType<ConstraintStrategy['storage']>['set']>[1];

function addUpgradeConstraint(app: FastifyInstance): void {
  if (app.hasConstraintStrategy(UPGRADE_CONSTRAINT)) return;
  app.addConstraintStrategy({
    name: UPGRADE_CONSTRAINT,
    // Routes that do not use the constraint (the proxy's catch-all) keep matching everything.
    mustMatchWhenDerived: false,
    storage() {
      const handlers = new Map<unknown, RouteHandler>();
      return {
        get: (kind) => handlers.get(kind) ?? null,
        set: (kind, handler) => void handlers.set(kind, handler),
      };
    },
    deriveConstraint: (req): RequestKind =>
      String(req.headers.upgrade ?? '').toLowerCase() === 'websocket' ? 'websocket' : 'http',
  });
}

/**
 * Serves the console page at {@link CONSOLE_PAGE_PATHS}, the landing page at {@link LANDING_PATH}
 * and their assets at `/assets/<name>`, all from memory. Throws a `CONFIG_ERR_FILE` VncgateError when the page is not built and
 * `CONFIG_ERR_INVALID` for a bad CSP source, so both surface at start-up.
 */
export function registerConsolePage(app: FastifyInstance, options: ConsolePageOptions = {}): void {
  const csp = buildConsoleCsp({
    frameAncestors: options.frameAncestors ?? ["'self'"],
    connectSources: options.connectSources ?? [],
  });
  const { page, landing, playback, assets } = loadWebAssets(options.webRoot ?? DEFAULT_WEB_ROOT);
  addUpgradeConstraint(app);

  const sendPage = (request: FastifyRequest, reply: FastifyReply): FastifyReply =>
    send(request, reply, page, {
      'content-security-policy': csp,
      // The page URL carries the console token until the script scrubs it: never let it out
      // in a Referer, nor keep the page in any cache.
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-store',
    });

  for (const url of CONSOLE_PAGE_PATHS) {
    app.route({ method: 'GET', url, constraints: { [UPGRADE_CONSTRAINT]: 'http' satisfies RequestKind }, handler: sendPage });
  }

  // A person who types the server's address gets a page saying what it is and where console
  // links come from, rather than a JSON 404. Static, scriptless, no version (the address is
  // public); the same CSP. Upgrades on `/` still reach the catch-all route.
  app.route({
    method: 'GET',
    url: LANDING_PATH,
    constraints: { [UPGRADE_CONSTRAINT]: 'http' satisfies RequestKind },
    handler: (request, reply) =>
      send(request, reply, landing, { 'content-security-policy': csp, 'referrer-policy': 'no-referrer', 'cache-control': 'no-cache' }),
  });

  // The recording playback page (its data needs a ticket: src/proxy/recording-api.ts).
  if (playback !== undefined) {
    app.route({
      method: 'GET',
      url: PLAYBACK_PATH,
      constraints: { [UPGRADE_CONSTRAINT]: 'http' satisfies RequestKind },
      handler: (request, reply) => send(request, reply, playback, { 'content-security-policy': csp, 'referrer-policy': 'no-referrer', 'cache-control': 'no-store' }),
    });
  }

  app.get<{ Params: { name: string } }>(`/${ASSETS_DIR}/:name`, (request, reply) => {
    const asset = assets.get(request.params.name);
    // The app's not-found handler answers, in the app's error shape (vncgate's JSON, with a code).
    if (asset === undefined) return reply.header('cache-control', 'no-store').header('x-content-type-options', 'nosniff').callNotFound();
    return send(request, reply, asset, { 'referrer-policy': 'no-referrer', 'cache-control': IMMUTABLE });
  });
}

function send(request: FastifyRequest, reply: FastifyReply, asset: WebAsset, headers: Record<string, string>): FastifyReply {
  reply.headers(headers).header('x-content-type-options', 'nosniff').type(asset.contentType);
  if (asset.gzip === undefined) return reply.send(asset.body);
  reply.header('vary', 'accept-encoding');
  if (!acceptsGzip(request.headers['accept-encoding'])) return reply.send(asset.body);
  return reply.header('content-encoding', 'gzip').send(asset.gzip);
}

/** RFC 9110 §12.5.3: `gzip` with a non-zero weight, or else `*` with one. */
export function acceptsGzip(header: string | undefined): boolean {
  let wildcard = false;
  for (const item of (header ?? '').split(',')) {
    const [coding = '', ...params] = item.split(';').map((part) => part.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    const accepted = q === undefined || Number(q.slice(2)) > 0;
    if (coding === 'gzip' || coding === 'x-gzip') return accepted;
    if (coding === '*') wildcard = accepted;
  }
  return wildcard;
}
