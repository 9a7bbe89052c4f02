import type { Config } from '../config/index.js';
import { VncgateError } from '../errors.js';
import type { IronicNodeResolver } from '../ironic/index.js';
import { isNovaToken, novaTokenHash, type NovaTokenLookup } from '../nova/index.js';
import type { ConsoleTarget, TokenStore } from '../tokens/index.js';
import { normalizeHost } from './backend-connector.js';
import type { Authorize, Authorized, ResolvedTarget, TargetResolver } from './session.js';
import { StaticTargetResolver } from './target-resolver.js';

/** Resolves any token target: static host:port from the profiles, Ironic nodes through the API. */
export class TargetResolvers implements TargetResolver {
  readonly static: StaticTargetResolver;
  readonly ironic: IronicNodeResolver | null;

  constructor(config: Config, ironic: IronicNodeResolver | null) {
    this.static = new StaticTargetResolver(config.profiles, config.raw.backends.defaultProfile, config.targetPolicy);
    this.ironic = ironic;
  }

  async resolve(target: ConsoleTarget, signal: AbortSignal): Promise<ResolvedTarget> {
    if (target.kind === 'static') return this.static.resolve(target);
    if (!this.ironic) throw new VncgateError('IRONIC_ERR_NOT_CONFIGURED', `token names node ${target.node} but Ironic is not configured`);
    return this.ironic.resolve(target.node, signal);
  }
}

/** The last `token` cookie's value, if any (Nova's websocketproxy does the same). */
export function cookieToken(header: string | undefined): string | null {
  if (!header) return null;
  let found: string | null = null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1 || part.slice(0, eq).trim() !== 'token') continue;
    try {
      found = decodeURIComponent(part.slice(eq + 1).trim().replace(/^"|"$/g, ''));
    } catch {
      // A malformed percent-escape: ignore that cookie, as Nova's proxy does.
    }
  }
  return found;
}

function authorizeNova(token: string, nova: NovaTokenLookup, deps: { config: Config; tokens: TokenStore }): Authorize {
  const { config, tokens } = deps;
  const n = config.raw.nova;
  return async (signal, sessionId): Promise<Authorized> => {
    const c = await nova.lookup(token, signal);
    // nova-novncproxy never checks this; a SPICE or serial token must not open a VNC relay.
    if (c.consoleType !== null && c.consoleType !== 'novnc') {
      throw new VncgateError('NOVA_ERR_CONSOLE_TYPE', `Nova token of instance ${c.instanceUuid} is for console type ${c.consoleType}, not novnc`);
    }
    const security = config.profiles.get(n.profile);
    if (!security) throw new VncgateError('CONFIG_ERR_INVALID', `nova.profile ${n.profile} is not configured`);
    const host = normalizeHost(c.host);
    const target: ResolvedTarget = {
      host,
      port: c.port,
      security,
      profile: n.profile,
      label: `instance ${c.instanceUuid} (${host.includes(':') ? `[${host}]` : host}:${c.port})`,
      tunnelPath: c.internalAccessPath,
      ...(n.enforceSessionTimeout && c.expires !== null ? { expiresAtMs: c.expires * 1000 } : {}),
    };
    const key = `nova:${novaTokenHash(token)}`;
    if (n.tokenReuse === 'single-use') {
      const ttlMs = c.expires !== null ? Math.max(1_000, c.expires * 1000 - Date.now()) : 86_400_000;
      if (!(await tokens.claimOnce(key, ttlMs))) throw new VncgateError('TOKEN_ERR_INVALID', `Nova token of instance ${c.instanceUuid} was already used (single-use mode)`);
      return { target };
    }
    if (n.tokenReuse === 'one-session') return leased(tokens, `nova-instance:${c.instanceUuid}`, sessionId, target, `instance ${c.instanceUuid}`);
    return { target };
  };
}

async function leased(tokens: TokenStore, key: string, sessionId: string, target: ResolvedTarget, what: string): Promise<Authorized> {
  if (!(await tokens.acquireLease(key, sessionId, LEASE_MS))) {
    throw new VncgateError('SESSION_ERR_BUSY', `${what} already has a live console session (one-session mode)`);
  }
  // Renewed while the session lives; a crashed process's lease lapses within LEASE_MS.
  const timer = setInterval(() => void tokens.renewLease(key, sessionId, LEASE_MS).catch(() => undefined), LEASE_RENEW_MS);
  timer.unref();
  return {
    target,
    release: () => {
      clearInterval(timer);
      void tokens.releaseLease(key, sessionId).catch(() => undefined);
    },
  };
}

const LEASE_MS = 30_000;
const LEASE_RENEW_MS = 10_000;

/**
 * Builds the authorization step for one WebSocket request, from its query string:
 * - `?token=` — a vncgate token: consumed exactly once, then its target resolved;
 * - `?node=&token=` — Ironic's own console URL (drop-in for ironic-novncproxy): the token must be
 *   the node's current one; optionally single use or one live session per node.
 */
export function authorizeRequest(
  query: URLSearchParams,
  cookieHeader: string | undefined,
  deps: { config: Config; tokens: TokenStore; resolvers: TargetResolvers; nova: NovaTokenLookup | null },
): Authorize {
  const { config, tokens, resolvers, nova } = deps;
  let token = query.get('token');
  const node = query.get('node');
  const ironic = config.raw.ironic;
  // Nova also accepts the token as a cookie (noVNC 0.x pages set one).
  if (token === null && nova && config.raw.nova.acceptCookie) token = cookieToken(cookieHeader);
  if (token !== null && nova && isNovaToken(token)) return authorizeNova(token, nova, deps);
  if (node !== null && resolvers.ironic && ironic.acceptIronicUrls) {
    const resolver = resolvers.ironic;
    return async (signal, sessionId): Promise<Authorized> => {
      if (!token) throw new VncgateError('TOKEN_ERR_MISSING', 'Ironic console URL without token');
      const target = await resolver.resolveWithIronicToken(node, token, signal);
      if (ironic.ironicTokenReuse === 'single-use') {
        const first = await tokens.claimOnce(`ironic:${target.uuid}:${token}`, ironic.ironicTokenTtlSeconds * 1000);
        if (!first) throw new VncgateError('TOKEN_ERR_INVALID', `Ironic console token for node ${target.uuid} was already used (single-use mode)`);
        return { target };
      }
      if (ironic.ironicTokenReuse === 'one-session') return leased(tokens, `ironic-node:${target.uuid}`, sessionId, target, `node ${target.uuid}`);
      return { target };
    };
  }
  return async (signal) => {
    const record = await tokens.consume(token);
    return { target: await resolvers.resolve(record.target, signal) };
  };
}
