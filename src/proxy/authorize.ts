import type { Config } from '../config/index.js';
import { VncgateError } from '../errors.js';
import type { IronicNodeResolver } from '../ironic/index.js';
import type { ConsoleTarget, TokenStore } from '../tokens/index.js';
import type { Authorize, Authorized, ResolvedTarget, TargetResolver } from './session.js';
import { StaticTargetResolver } from './target-resolver.js';

/** Resolves any token target: static host:port from the profiles, Ironic nodes through the API. */
export class TargetResolvers implements TargetResolver {
  readonly static: StaticTargetResolver;
  readonly ironic: IronicNodeResolver | null;

  constructor(config: Config, ironic: IronicNodeResolver | null) {
    this.static = new StaticTargetResolver(config.profiles, config.raw.backends.defaultProfile);
    this.ironic = ironic;
  }

  async resolve(target: ConsoleTarget, signal: AbortSignal): Promise<ResolvedTarget> {
    if (target.kind === 'static') return this.static.resolve(target);
    if (!this.ironic) throw new VncgateError('IRONIC_ERR_NOT_CONFIGURED', `token names node ${target.node} but Ironic is not configured`);
    return this.ironic.resolve(target.node, signal);
  }
}

const LEASE_MS = 30_000;
const LEASE_RENEW_MS = 10_000;

/**
 * Builds the authorization step for one WebSocket request, from its query string:
 * - `?token=` — a vncgate token: consumed exactly once, then its target resolved;
 * - `?node=&token=` — Ironic's own console URL (drop-in for ironic-novncproxy): the token must be
 *   the node's current one; optionally single use or one live session per node.
 */
export function authorizeRequest(query: URLSearchParams, deps: { config: Config; tokens: TokenStore; resolvers: TargetResolvers }): Authorize {
  const { config, tokens, resolvers } = deps;
  const token = query.get('token');
  const node = query.get('node');
  const ironic = config.raw.ironic;
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
      if (ironic.ironicTokenReuse === 'one-session') {
        const key = `ironic-node:${target.uuid}`;
        if (!(await tokens.acquireLease(key, sessionId, LEASE_MS))) {
          throw new VncgateError('IRONIC_ERR_SESSION_BUSY', `node ${target.uuid} already has a live console session (one-session mode)`);
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
      return { target };
    };
  }
  return async (signal) => {
    const record = await tokens.consume(token);
    return { target: await resolvers.resolve(record.target, signal) };
  };
}
