import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Authorize, Authorized, StartedAuthorization } from '../../target.js';

export function newSessionId(): string {
  return randomBytes(6).toString('hex');
}

/** Starts `authorize` for a session not built yet (its outcome is handled by whoever adopts it, or by discardAuthorization). */
export function startAuthorization(authorize: Authorize): StartedAuthorization {
  const sessionId = newSessionId();
  const abort = new AbortController();
  const result = authorize(abort.signal, sessionId);
  // Not unhandled while it waits for its session: the session (or discardAuthorization) reads it.
  result.catch(() => undefined);
  return { sessionId, abort, result };
}

/** For a started authorization no session will adopt (the upgrade failed): cancel it and undo what it won. */
export function discardAuthorization(a: StartedAuthorization, log: Pick<Logger, 'error'>): void {
  a.abort.abort();
  a.result.then(
    (r) => runRelease(r.release, log),
    () => undefined,
  );
}

/** Undoes what an authorization won (slots, a lease), once; a failure is our bug, logged. */
export function runRelease(release: (() => void) | null | undefined, log: Pick<Logger, 'error'>): void {
  try {
    release?.();
  } catch (err) {
    log.error({ err }, 'session release failed');
  }
}

/**
 * A session's authorization, whichever way it came: started early, while the upgrade was answered
 * (its id and abort controller become the session's), or to be started when the session begins.
 * Run at most once; dropped once used, since it holds the request's query (the token).
 */
export class SessionAuthorization {
  readonly sessionId: string;
  /** Cancels the authorization (and whatever the session does with its outcome, up to piping). */
  readonly abort: AbortController;
  #pending: Authorize | StartedAuthorization | null;

  constructor(a: Authorize | StartedAuthorization) {
    const started = typeof a === 'function' ? null : a;
    this.sessionId = started?.sessionId ?? newSessionId();
    this.abort = started?.abort ?? new AbortController();
    this.#pending = a;
  }

  /** The outcome: the token consumed (or the Ironic/Nova link checked) and its target resolved. */
  result(): Promise<Authorized> {
    const a = this.#pending;
    this.#pending = null;
    if (a === null) throw new Error('session authorization used twice');
    return typeof a === 'function' ? a(this.abort.signal, this.sessionId) : a.result;
  }

  /**
   * The session is refused before its authorization is used (capacity, draining): one not started
   * yet never runs, so the token is not consumed; one already started is cancelled and undone.
   */
  discard(log: Pick<Logger, 'error'>): void {
    const a = this.#pending;
    this.#pending = null;
    if (a !== null && typeof a !== 'function') discardAuthorization(a, log);
  }
}
