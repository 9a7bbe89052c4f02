import { profilePolicy, type Config } from '../../config/index.js';
import { VncgateError } from '../../errors.js';
import type { IronicNodeResolver } from '../../ironic/index.js';
import { isNovaToken, novaTokenHash, type NovaTokenLookup } from '../../nova/index.js';
import { narrowPolicy, type ClientMessagePolicy, type PolicyNarrowing } from '../../rfb/index.js';
import type { ConsoleTarget, TokenStore } from '../../tokens/index.js';
import { normalizeHost, type Authorize, type Authorized, type Reconnectable, type ResolvedTarget, type TargetResolver } from '../../target.js';
import { anySessionLimit, holdSlots, InvalidLinkLimiter, keepRenewed, leaseTtlMs, slotRequest, type LimitLog } from './target-limits.js';
import { StaticTargetResolver } from '../target-resolver.js';
import type { ReconnectGrants } from '../reconnect.js';

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

export type AuthDeps = {
  config: Config;
  tokens: TokenStore;
  resolvers: TargetResolvers;
  nova: NovaTokenLookup | null;
  /** For lease renewal trouble and cool-downs; the session logs everything else. */
  log?: LimitLog | undefined;
  /** Reconnect grants (reconnect.ts), or null/absent when off. */
  reconnect?: ReconnectGrants | null | undefined;
};

function authorizeNova(token: string, nova: NovaTokenLookup, deps: AuthDeps, limiter: InvalidLinkLimiter | null): Authorize {
  const { config, tokens } = deps;
  const n = config.raw.nova;
  return async (signal, sessionId): Promise<Authorized> => {
    await refuseWhileCoolingDown(tokens, limiter);
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
      instance: c.instanceUuid,
      tunnelPath: c.internalAccessPath,
      ...(n.enforceSessionTimeout && c.expires !== null ? { expiresAtMs: c.expires * 1000 } : {}),
    };
    return withSlots(deps, target, `instance:${c.instanceUuid}`, sessionId, async () => {
      const key = `nova:${novaTokenHash(token)}`;
      if (n.tokenReuse === 'single-use') {
        const ttlMs = c.expires !== null ? Math.max(1_000, c.expires * 1000 - Date.now()) : 86_400_000;
        if (!(await tokens.claimOnce(key, ttlMs))) throw new VncgateError('TOKEN_ERR_INVALID', `Nova token of instance ${c.instanceUuid} was already used (single-use mode)`);
        return { target };
      }
      if (n.tokenReuse === 'one-session') return leased(deps, `nova-instance:${c.instanceUuid}`, sessionId, target, `instance ${c.instanceUuid}`);
      return { target };
    });
  };
}

export async function leased(deps: AuthDeps, key: string, sessionId: string, target: ResolvedTarget, what: string): Promise<Authorized> {
  const { tokens } = deps;
  const ttlMs = leaseTtlMs(deps.config);
  if (!(await tokens.acquireLease(key, sessionId, ttlMs))) {
    throw new VncgateError('SESSION_ERR_BUSY', `${what} already has a live console session (one-session mode)`);
  }
  // Renewed while the session lives; a crashed process's lease lapses within limits.leaseTtlSeconds.
  const release = keepRenewed(
    () => tokens.renewLease(key, sessionId, ttlMs),
    () => tokens.releaseLease(key, sessionId),
    ttlMs,
    deps.log,
    { sessionId, lease: what },
  );
  return { target, release };
}

/**
 * Takes the session's slots on `target` (and its node or instance) if its profile has a limit,
 * then runs `then` (a single-use claim or one-session lease, which would otherwise burn or hold
 * something for a session the limit refuses); undoes the slots if `then` fails.
 */
async function withSlots(deps: AuthDeps, target: ResolvedTarget, machine: string, sessionId: string, then: () => Promise<Authorized>): Promise<Authorized> {
  const request = slotRequest(deps.config, target, machine, sessionId);
  if (!request) return then();
  if (!(await deps.tokens.acquireSlots(request))) {
    throw new VncgateError('SESSION_ERR_TARGET_BUSY', `session limit ${request.limit} reached on ${request.keys.join(' or ')}`, { details: { keys: request.keys, limit: request.limit } });
  }
  const releaseSlots = holdSlots(deps.tokens, request, deps.log);
  try {
    const a = await then();
    return {
      ...a,
      release: () => {
        a.release?.();
        releaseSlots();
      },
    };
  } catch (err) {
    releaseSlots();
    throw err;
  }
}

/**
 * The cool-down check for Ironic and Nova console URLs, before their token is looked at. These
 * paths do not otherwise need the token store (in their default, reusable mode), so a store that
 * cannot answer lets the request through (fail open): a Redis outage must not take consoles down
 * that do not depend on it, and the link is still checked by Ironic or Nova. (For vncgate tokens
 * the check is part of the consume itself, which fails closed with the store.)
 */
async function refuseWhileCoolingDown(tokens: TokenStore, limiter: InvalidLinkLimiter | null): Promise<void> {
  if (!limiter) return;
  let cooling = false;
  try {
    cooling = await tokens.coolingDown(limiter.client);
  } catch {
    // Fail open, as above.
  }
  if (cooling) throw new VncgateError('TOKEN_ERR_RATE_LIMITED', 'client address is cooling down after too many invalid console links');
}

/**
 * A vncgate token. Without session limits: consume, then resolve (one store round trip).
 *
 * With a limit, the limit can only be checked once the target is resolved, but the token must not
 * be burned by a refusal. So: peek (GET, nothing used up) → resolve → one atomic script that takes
 * the slots and deletes the token together, or neither. Single use stays airtight — the delete is
 * still one atomic step of which exactly one concurrent caller wins, and a loser takes no slot —
 * and a link refused for a busy console still works later. (The alternative, consume then put the
 * token back on refusal, leaves a window in which the link looks used, and loses it for good if
 * the put-back fails.) A target's resolution (Ironic) now runs before the link is used up, so a
 * failed resolution no longer burns it either.
 */
function authorizeVncgate(token: string | null, deps: AuthDeps, limiter: InvalidLinkLimiter | null): Authorize {
  const { config, tokens, resolvers } = deps;
  const client = limiter?.client;
  return async (signal, sessionId) => {
    if (!anySessionLimit(config)) {
      const record = await tokens.consume(token, { client });
      const resolved = await resolvers.resolve(record.target, signal);
      return {
        target: resolved,
        issuedBy: record.issuedBy,
        policy: policyFor(config, resolved, record.policy),
        reconnectable: firstSession(record.target),
        record: record.record === true,
        takeControl: record.control === true,
      };
    }
    const record = await tokens.peek(token, { client });
    const target = await resolvers.resolve(record.target, signal);
    const uuid = (target as { uuid?: unknown }).uuid;
    const slots = slotRequest(config, target, record.target.kind === 'node' && typeof uuid === 'string' ? `node:${uuid}` : null, sessionId);
    await tokens.consume(token, { client, slots: slots ?? undefined });
    const policy = policyFor(config, target, record.policy);
    const reconnectable = firstSession(record.target);
    const grants = { issuedBy: record.issuedBy, policy, reconnectable, record: record.record === true, takeControl: record.control === true };
    return slots ? { target, release: holdSlots(tokens, slots, deps.log), ...grants } : { target, ...grants };
  };
}

/** The session's view-only and clipboard policy: its target's profile's, narrowed by its token. */
export function policyFor(config: Config, target: ResolvedTarget, narrowing?: PolicyNarrowing): ClientMessagePolicy {
  return narrowPolicy(profilePolicy(config.raw.backends.profiles, target.profile), narrowing);
}

/** Ironic and Nova console links carry no narrowing: their profile's policy. */
function withProfilePolicy(authorize: Authorize, config: Config): Authorize {
  return async (signal, sessionId) => {
    const a = await authorize(signal, sessionId);
    return a.policy !== undefined ? a : { ...a, policy: policyFor(config, a.target) };
  };
}

/** A first session's grant source: the link's target, no reconnect yet (its lifetime is set when it starts). */
function firstSession(target: ConsoleTarget): Reconnectable {
  return { target, reconnects: 0, notAfterMs: null };
}

/** Counts the links `authorize` finds invalid against the client address. */
function counting(authorize: Authorize, limiter: InvalidLinkLimiter | null): Authorize {
  if (!limiter) return authorize;
  return async (signal, sessionId) => {
    try {
      return await authorize(signal, sessionId);
    } catch (err) {
      await limiter.count(err);
      throw err;
    }
  };
}

/**
 * Builds the authorization step for one WebSocket request, from its query string:
 * - `?token=` — a vncgate token: consumed exactly once, then its target resolved;
 * - `?node=&token=` — Ironic's own console URL (drop-in for ironic-novncproxy): the token must be
 *   the node's current one; optionally single use or one live session per node.
 * Every path takes the session's slots once the target is known (limits.sessionsPerTarget), and
 * counts invalid links against `remote`, the client address (limits.invalidTokensPerMinute).
 */
export function authorizeRequest(query: URLSearchParams, cookieHeader: string | undefined, deps: AuthDeps, remote: string | undefined): Authorize {
  const { config, tokens, resolvers, nova } = deps;
  let token = query.get('token');
  const node = query.get('node');
  const ironic = config.raw.ironic;
  const limiter = InvalidLinkLimiter.for(config, tokens, remote, deps.log);
  // Nova also accepts the token as a cookie (noVNC 0.x pages set one).
  if (token === null && nova && config.raw.nova.acceptCookie) token = cookieToken(cookieHeader);
  if (token !== null && nova && isNovaToken(token)) return counting(withProfilePolicy(authorizeNova(token, nova, deps, limiter), config), limiter);
  if (node !== null && resolvers.ironic && ironic.acceptIronicUrls) {
    const resolver = resolvers.ironic;
    const ironicAuthorize: Authorize = async (signal, sessionId): Promise<Authorized> => {
      await refuseWhileCoolingDown(tokens, limiter);
      if (!token) throw new VncgateError('TOKEN_ERR_MISSING', 'Ironic console URL without token');
      const target = await resolver.resolveWithIronicToken(node, token, signal);
      return withSlots(deps, target, `node:${target.uuid}`, sessionId, async () => {
        const reconnectable = firstSession({ kind: 'node', node: target.uuid });
        if (ironic.ironicTokenReuse === 'single-use') {
          const first = await tokens.claimOnce(`ironic:${target.uuid}:${token}`, ironic.ironicTokenTtlSeconds * 1000);
          if (!first) throw new VncgateError('TOKEN_ERR_INVALID', `Ironic console token for node ${target.uuid} was already used (single-use mode)`);
          return { target, reconnectable };
        }
        if (ironic.ironicTokenReuse === 'one-session') {
          const lease = `ironic-node:${target.uuid}`;
          return { ...(await leased(deps, lease, sessionId, target, `node ${target.uuid}`)), reconnectable: { ...reconnectable, lease } };
        }
        return { target, reconnectable };
      });
    };
    return counting(withProfilePolicy(ironicAuthorize, config), limiter);
  }
  return counting(authorizeVncgate(token, deps, limiter), limiter);
}
