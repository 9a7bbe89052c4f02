import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { isVncgateError, VncgateError, type ErrorCode } from '../errors.js';
import { bindingHash, generateGrant, isWellFormedGrant, type GrantBinding, type GrantRecord, type GrantStore } from '../tokens/index.js';
import type { Authorized, Reconnectable, TokenIssuer } from '../target.js';
import { leaseTtlMs } from './authorization/target-limits.js';

/**
 * Reconnect grants, the proxy's side (the stored part: tokens/grant.ts). A session whose link is
 * accepted, on a page that negotiated the control channel and offered a key, is given a grant on
 * that channel (`{"type":"reconnect","grant":…,"ttlSeconds":…}`); the page presents it as
 * `?grant=` with the same key when its socket drops, and the new session replaces the old one.
 * See authorization/grant-authorize.ts for the way in.
 */

/** The subprotocol that carries the page's key: `vncgate.key.<43 base64url>` (never in the URL, so not in access logs). */
export const KEY_PROTOCOL_PREFIX = 'vncgate.key.';

/** The page's key among the offered subprotocols, if one is well formed. */
export function pageKeyFrom(protocolHeader: string | undefined): string | null {
  if (!protocolHeader) return null;
  for (const p of protocolHeader.split(',')) {
    const t = p.trim();
    if (t.startsWith(KEY_PROTOCOL_PREFIX) && isWellFormedGrant(t.slice(KEY_PROTOCOL_PREFIX.length))) return t.slice(KEY_PROTOCOL_PREFIX.length);
  }
  return null;
}

/**
 * Ends that are not a policy decision: the browser's socket died, this replica went away, the
 * endpoint closed or could not be reached (restarting: a grant lets the page try again).
 */
const DROPS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'SESSION_ERR_HEARTBEAT',
  'SESSION_ERR_SHUTDOWN',
  'SESSION_ERR_BACKEND_CLOSED',
  'SESSION_ERR_HANDSHAKE_TIMEOUT',
  'BACKEND_ERR_CLOSED',
  'BACKEND_ERR_REFUSED',
  'BACKEND_ERR_UNREACHABLE',
  'BACKEND_ERR_TIMEOUT',
]);

/**
 * Whether a session's end leaves its grant usable. Everything else (lifetime, idle time, the
 * browser breaking the protocol or the view-only policy, a deliberate close, 1000 or 1001 from
 * the browser) deletes it: only drops leave one.
 */
export function leavesGrant(error: VncgateError | null, closedBy: 'browser' | 'backend' | 'vncgate', browserCode: number | undefined): boolean {
  if (error !== null) return DROPS.has(error.code);
  if (closedBy === 'browser') return browserCode !== 1000 && browserCode !== 1001;
  return closedBy === 'backend';
}

/** What a session hands over once its link is accepted, for its grant. */
export type GrantRequest = {
  sessionId: string;
  reconnectable: Reconnectable | undefined;
  /** The resolved target's own end (Nova's session timeout), if any. */
  expiresAtMs: number | undefined;
  /** The client address as seen (hashed before storing). */
  remote: string;
  /** The page's key, from the subprotocol offer; null: no grant (stock noVNC). */
  key: string | null;
  /** Whether the page negotiated the control channel (it can receive a grant). */
  negotiated: boolean;
  issuedBy: TokenIssuer | undefined;
  /** Per-token policy to carry over (view-only, clipboard), if any. */
  policy?: Readonly<Record<string, unknown>>;
  send(message: { type: 'reconnect'; grant: string; ttlSeconds: number }): boolean;
  log: Logger;
};

function replacedError(): VncgateError {
  return new VncgateError('SESSION_ERR_RECONNECTED', "the page reconnected with this session's grant");
}

/** The part of the session's control channel (control-channel.ts) a grant uses. */
export type GrantChannel = { readonly negotiated: boolean; send(message: { type: string } & Record<string, unknown>): boolean };

/** The grant a live session holds: told how the session ended. */
export interface HeldGrant {
  end(error: VncgateError | null, closedBy: 'browser' | 'backend' | 'vncgate', browserCode: number | undefined): void;
}

/**
 * Mints, renews and ends the grants of this process' sessions. Store failures never touch a
 * session: without a grant the page simply cannot reconnect by itself.
 */
export class ReconnectGrants {
  readonly #store: GrantStore;
  readonly #graceMs: number;
  readonly #leaseMs: number;
  readonly #maxReconnects: number;
  readonly #bindAddress: boolean;
  readonly #maxLifetimeMs: number;
  /** Live sessions holding a grant here, by session id: a reconnect ends the one it replaces at once. */
  readonly #live = new Map<string, (error: VncgateError) => void>();

  static for(config: Config, store: GrantStore | undefined): ReconnectGrants | null {
    const r = config.raw.reconnect;
    return r.enabled && store ? new ReconnectGrants(config, store) : null;
  }

  private constructor(config: Config, store: GrantStore) {
    const r = config.raw.reconnect;
    this.#store = store;
    this.#graceMs = r.graceSeconds * 1000;
    this.#leaseMs = leaseTtlMs(config);
    this.#maxReconnects = r.maxReconnects;
    this.#bindAddress = r.bindTo === 'address';
    this.#maxLifetimeMs = config.raw.session.maxLifetimeMs;
  }

  get store(): GrantStore {
    return this.#store;
  }

  get graceMs(): number {
    return this.#graceMs;
  }

  /** The binding a presented grant is checked against (the client address always given; unbound grants ignore it). */
  binding(remote: string, key: string): GrantBinding {
    return { client: bindingHash(remote), key: bindingHash(key) };
  }

  /** The console's end of life for a first session: the target's own, or now + session.maxLifetimeMs. */
  notAfter(r: GrantRequest, now: number): number | null {
    if (r.reconnectable?.reconnectOf !== undefined) return r.reconnectable.notAfterMs;
    const ends = [r.expiresAtMs, this.#maxLifetimeMs > 0 ? now + this.#maxLifetimeMs : undefined].filter((x): x is number => x !== undefined);
    return ends.length === 0 ? null : Math.min(...ends);
  }

  /** A reconnect consumed the grant of session `id`: if it still runs here, it ends now. */
  replaced(id: string): void {
    this.#live.get(id)?.(replacedError());
  }

  /** Uses a presented grant (one atomic step in the store), leaving the mark its old session's renewal reads. */
  consume(grant: string, binding: GrantBinding): Promise<GrantRecord> {
    return this.#store.consume(grant, binding, this.#leaseMs);
  }

  /** Starts a session's grant, or null when it gets none. `terminate` ends the session (replaced by a reconnect). */
  begin(r: GrantRequest, terminate: (error: VncgateError) => void): HeldGrant | null {
    const src = r.reconnectable;
    if (!src || !r.negotiated || r.key === null) return null;
    if (src.reconnects >= this.#maxReconnects) {
      r.log.info({ reconnects: src.reconnects }, 'no reconnect grant: the link has had its reconnects');
      return null;
    }
    const now = Date.now();
    const notAfterMs = this.notAfter(r, now);
    if (notAfterMs !== null && notAfterMs <= now) return null;
    const secret = generateGrant();
    const record = {
      version: 1 as const,
      sessionId: r.sessionId,
      target: src.target,
      notAfterMs,
      reconnects: src.reconnects,
      ...(src.lease !== undefined ? { lease: src.lease } : {}),
      ...(r.issuedBy ? { issuedBy: r.issuedBy } : {}),
      ...(r.policy ? { policy: r.policy } : {}),
    };
    const binding = this.binding(r.remote, r.key);
    const bound = this.#bindAddress ? binding : { client: '', key: binding.key };
    const store = this.#store;
    const activeMs = this.#leaseMs + this.#graceMs;
    let state: 'minting' | 'live' | 'gone' = 'minting';
    let ended: (() => void) | null = null;
    this.#live.set(r.sessionId, terminate);
    const timer = setInterval(() => {
      if (state !== 'live') return;
      store.renew(secret, activeMs).then(
        (renewal) => {
          if (renewal === 'held' || state !== 'live') return;
          // Never minted again: one use only. Used by a reconnect (on another replica, else
          // `replaced` got here first): the page has a new session, so this one ends. Lost with
          // the store's data: the session goes on, without a grant.
          state = 'gone';
          r.log.info({ renewal }, 'reconnect grant no longer held');
          if (renewal === 'used') terminate(replacedError());
        },
        () => undefined,
      );
    }, Math.max(1, Math.floor(this.#leaseMs / 3)));
    timer.unref();
    // Sent at once, stored meanwhile: a session that fails right after (the endpoint refuses) has
    // told its page already. A page cannot come back before the store has answered: it waits
    // reconnect_delay first, and a grant it presents too early is refused like an unknown one.
    r.send({ type: 'reconnect', grant: secret, ttlSeconds: this.#graceMs / 1000 });
    store.mint(secret, record, bound, activeMs).then(
      () => {
        if (state !== 'minting') return;
        state = 'live';
        if (ended) return ended();
        r.log.debug({ reconnects: src.reconnects }, 'reconnect grant stored');
      },
      (err: unknown) => {
        state = 'gone';
        r.log.warn({ err: isVncgateError(err) ? err.code : String(err) }, 'reconnect grant not stored; this console cannot reconnect by itself');
      },
    );
    return {
      end: (error, closedBy, browserCode) => {
        clearInterval(timer);
        if (this.#live.get(r.sessionId) === terminate) this.#live.delete(r.sessionId);
        const usable = leavesGrant(error, closedBy, browserCode);
        const finish = (): void => {
          if (state !== 'live') return;
          state = 'gone';
          // A failed write leaves the grant to its TTL (lease + grace): usable a little longer, never twice.
          store.end(secret, usable ? this.#graceMs : null).catch(() => undefined);
        };
        if (state === 'minting') ended = finish;
        else finish();
        r.log.debug({ usable }, 'reconnect grant ended with its session');
      },
    };
  }
}

/**
 * One session's side of its grant, told by the session's report (session-report.ts) what it
 * needs: the authorization (what a grant may carry over; mint), the end (usable or deleted). Built at the upgrade, where the page's key and the channel are known.
 */
export class SessionGrant {
  readonly #grants: ReconnectGrants;
  readonly #page: { key: string | null; remote: string };
  #authorized: Authorized | null = null;
  #held: HeldGrant | null = null;
  #session: { id: string; terminate: (error: VncgateError) => void; control: GrantChannel } | null = null;

  constructor(grants: ReconnectGrants, page: { key: string | null; remote: string }) {
    this.#grants = grants;
    this.#page = page;
  }

  /** The session this grant belongs to: its id, how a reconnect that replaces it ends it, its control channel. */
  attach(id: string, terminate: (error: VncgateError) => void, control: GrantChannel): void {
    this.#session = { id, terminate, control };
  }

  /** The reconnect this session is, if it is one (audit). */
  get reconnectOf(): string | undefined {
    return this.#authorized?.reconnectable?.reconnectOf;
  }

  /**
   * The link is accepted: the grant is minted and sent now, before the endpoint is dialled, so a
   * session whose endpoint is restarting leaves its page a grant to try again with.
   */
  authorized(a: Authorized, log: Logger): void {
    this.#authorized = a;
    const s = this.#session;
    if (!s) return;
    this.#held = this.#grants.begin(
      {
        sessionId: s.id,
        reconnectable: a.reconnectable,
        expiresAtMs: a.target.expiresAtMs,
        remote: this.#page.remote,
        key: this.#page.key,
        negotiated: s.control.negotiated,
        issuedBy: a.issuedBy,
        // The session's effective view-only and clipboard policy, when the authorization says one.
        ...policyOf(a),
        send: (m) => s.control.send(m),
        log,
      },
      s.terminate,
    );
  }

  ended(error: VncgateError | null, closedBy: 'browser' | 'backend' | 'vncgate', browserCode: number | undefined): void {
    this.#held?.end(error, closedBy, browserCode);
    this.#held = null;
    this.#authorized = null;
  }
}

/** The effective client-message policy an authorization carries (view-only, clipboard), if any. */
export function policyOf(a: object): { policy?: Readonly<Record<string, unknown>> } {
  const p = (a as { policy?: unknown }).policy;
  return typeof p === 'object' && p !== null && !Array.isArray(p) ? { policy: p as Record<string, unknown> } : {};
}
