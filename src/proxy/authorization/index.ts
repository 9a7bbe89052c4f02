/**
 * Console authorization: when and how a link (vncgate token, Nova or Ironic console URL) is used
 * up, from the upgrade request (console-authorizations.ts) through what each kind of link takes
 * (authorize.ts: consume, claim, lease; target-limits.ts: session slots, invalid-link cool-down)
 * to the session that adopts or discards it (started.ts).
 */
export { authorizeRequest, cookieToken, TargetResolvers, type AuthDeps } from './authorize.js';
export { ConsoleAuthorizations, type ConsoleAuthorizationDeps, type SessionGrant } from './console-authorizations.js';
export { discardAuthorization, newSessionId, runRelease, SessionAuthorization, startAuthorization } from './started.js';
export { anySessionLimit, holdSlots, InvalidLinkLimiter, keepRenewed, leaseTtlMs, sessionLimitFor, slotKeys, slotRequest, type LimitLog } from './target-limits.js';
