import type { Config } from '../config/index.js';
import { VncgateError } from '../errors.js';
import { CLIPBOARD_POLICIES, type ClientMessagePolicy } from '../rfb/index.js';
import { isWellFormedGrant } from '../tokens/index.js';
import type { Authorize, Authorized, ResolvedTarget } from '../target.js';
import type { AuthDeps } from './authorization/authorize.js';
import { leased, policyFor } from './authorization/authorize.js';
import { holdSlots, InvalidLinkLimiter, leaseTtlMs, slotRequest } from './authorization/target-limits.js';
import type { ReconnectGrants } from './reconnect.js';

/**
 * The way in with a reconnect grant (`?grant=`, the page's key in the `vncgate.key.*`
 * subprotocol): the invalid-link cool-down first (a bad grant counts like a bad token), then one
 * atomic consume that checks the page's key and, unless grants are key-only, the client address;
 * the link's target is resolved again (credentials from the configuration or Ironic, never from
 * the grant) and the new session may not outlive the original one (`notAfterMs`). The session it
 * replaces, if it still runs, ends (SESSION_ERR_RECONNECTED): at once here, at its next grant
 * renewal on another replica. A grant refused after
 * it was consumed (the target no longer resolves, its slots are full) is put back for the rest
 * of its grace window, so the page's next try can still use it.
 */
export function authorizeGrant(grant: string, key: string | null, remote: string | undefined, deps: AuthDeps, grants: ReconnectGrants): Authorize {
  const { config, tokens, resolvers } = deps;
  const limiter = InvalidLinkLimiter.for(config, tokens, remote, deps.log);
  const authorize = async (signal: AbortSignal, sessionId: string): Promise<Authorized> => {
    if (limiter && (await tokens.coolingDown(limiter.client).catch(() => false))) {
      throw new VncgateError('TOKEN_ERR_RATE_LIMITED', 'client address is cooling down after too many invalid console links');
    }
    if (!isWellFormedGrant(grant) || key === null) {
      throw new VncgateError('RECONNECT_ERR_INVALID', `reconnect grant refused (${key === null ? 'no page key' : 'malformed'})`, { details: { reason: key === null ? 'no-key' : 'malformed' } });
    }
    const binding = grants.binding(remote ?? '', key);
    const record = await grants.consume(grant, binding);
    const now = Date.now();
    if (record.notAfterMs !== null && now >= record.notAfterMs) {
      throw new VncgateError('RECONNECT_ERR_INVALID', 'reconnect grant refused (the console reached its lifetime)', { details: { reason: 'expired' } });
    }
    grants.replaced(record.sessionId);
    try {
      const resolved = await resolvers.resolve(record.target, signal);
      const ends = [resolved.expiresAtMs, record.notAfterMs ?? undefined].filter((x): x is number => x !== undefined);
      const target = ends.length > 0 ? { ...resolved, expiresAtMs: Math.min(...ends) } : resolved;
      const uuid = (target as { uuid?: unknown }).uuid;
      const slots = slotRequest(config, target, record.target.kind === 'node' && typeof uuid === 'string' ? `node:${uuid}` : null, sessionId);
      if (slots && !(await tokens.acquireSlots(slots))) {
        throw new VncgateError('SESSION_ERR_TARGET_BUSY', `session limit ${slots.limit} reached on ${slots.keys.join(' or ')}`, { details: { keys: slots.keys, limit: slots.limit } });
      }
      const releaseSlots = slots ? holdSlots(tokens, slots, deps.log) : undefined;
      let releaseLease: (() => void) | undefined;
      try {
        if (record.lease !== undefined) releaseLease = await leaseAgain(deps, record.lease, sessionId, target, signal);
      } catch (err) {
        releaseSlots?.();
        throw err;
      }
      const release = releaseSlots && releaseLease ? () => (releaseSlots(), releaseLease!()) : (releaseSlots ?? releaseLease);
      return {
        target,
        ...(release ? { release } : {}),
        issuedBy: record.issuedBy,
        policy: grantPolicy(config, target, record.policy),
        reconnectable: { target: record.target, reconnects: record.reconnects + 1, notAfterMs: record.notAfterMs, reconnectOf: record.sessionId },
      };
    } catch (err) {
      // Consumed but not used: back for the grace window (same secret, same bindings as stored).
      const bound = config.raw.reconnect.bindTo === 'address' ? binding : { client: '', key: binding.key };
      await grants.store.mint(grant, record, bound, grants.graceMs).catch(() => undefined);
      throw err;
    }
  };
  if (!limiter) return authorize;
  return async (signal, sessionId) => {
    try {
      return await authorize(signal, sessionId);
    } catch (err) {
      if (err instanceof VncgateError && err.code === 'RECONNECT_ERR_INVALID') {
        await limiter.count(new VncgateError('TOKEN_ERR_INVALID', err.message));
      }
      throw err;
    }
  };
}

/**
 * The one-session lease the first session held (Ironic `one-session`), taken by the reconnect. The
 * session it replaces may still hold it for a moment (its release is on its way, or, on another
 * replica, it ends at its next grant renewal): tried again for up to a third of the lease TTL and
 * a second, then SESSION_ERR_BUSY (the grant is put back).
 */
async function leaseAgain(deps: AuthDeps, key: string, sessionId: string, target: ResolvedTarget, signal: AbortSignal): Promise<() => void> {
  const until = Date.now() + leaseTtlMs(deps.config) / 3 + 1_000;
  for (;;) {
    try {
      const a = await leased(deps, key, sessionId, target, target.label);
      return a.release ?? (() => undefined);
    } catch (err) {
      if (!(err instanceof VncgateError) || err.code !== 'SESSION_ERR_BUSY' || Date.now() >= until || signal.aborted) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * The reconnected session's view-only and clipboard policy: its profile's as configured now,
 * narrowed by what the first session had, so never wider than either. What cannot be read
 * narrows (view-only, no clipboard): a grant never widens a console.
 */
export function grantPolicy(config: Config, target: ResolvedTarget, stored: Readonly<Record<string, unknown>> | undefined): ClientMessagePolicy {
  if (stored === undefined) return policyFor(config, target);
  const clipboard = CLIPBOARD_POLICIES.find((c) => c === stored['clipboard']) ?? 'none';
  const max = stored['maxClipboardBytes'];
  const limit = typeof max === 'number' && max >= 0 ? max : 0;
  return policyFor(config, target, {
    ...(stored['viewOnly'] !== false ? { viewOnly: true as const } : {}),
    clipboard,
    ...(limit !== Infinity ? { maxClipboardBytes: limit } : {}),
  });
}
