import { VncgateError } from '../errors.js';
import type { ConsoleSession } from './session.js';
import type { SessionLimits } from './session-types.js';

/**
 * Live sessions of this process. One sweep timer (not one timer per session) enforces idle time,
 * maximum lifetime and the WebSocket heartbeat, so ten thousand idle sessions cost ten thousand
 * map entries and nothing more.
 */
export class SessionRegistry {
  readonly #sessions = new Set<ConsoleSession>();
  readonly #limits: SessionLimits;
  readonly #timer: NodeJS.Timeout;
  /** Called once the last session has gone (waitUntilEmpty). */
  readonly #emptyWaiters = new Set<() => void>();

  constructor(limits: SessionLimits, sweepIntervalMs = 1_000) {
    this.#limits = limits;
    this.#timer = setInterval(() => this.sweep(Date.now()), sweepIntervalMs);
    this.#timer.unref();
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** A snapshot of the live sessions (metrics, tests). */
  list(): ConsoleSession[] {
    return [...this.#sessions];
  }

  add(s: ConsoleSession): void {
    this.#sessions.add(s);
  }

  delete(s: ConsoleSession): void {
    this.#sessions.delete(s);
    if (this.#sessions.size === 0) for (const w of [...this.#emptyWaiters]) w();
  }

  /**
   * Resolves `true` once no session is left (at once if none is), `false` when `timeoutMs` passes
   * or `signal` aborts first.
   */
  waitUntilEmpty(timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.#sessions.size === 0) return Promise.resolve(true);
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (empty: boolean): void => {
        clearTimeout(timer);
        this.#emptyWaiters.delete(onEmpty);
        signal?.removeEventListener('abort', onAbort);
        resolve(empty);
      };
      const onEmpty = (): void => done(true);
      const onAbort = (): void => done(false);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.#emptyWaiters.add(onEmpty);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  sweep(now: number): void {
    const { idleTimeoutMs, maxLifetimeMs, heartbeatIntervalMs } = this.#limits;
    for (const s of this.#sessions) {
      if (s.status !== 'piping') continue; // before piping the handshake deadline rules
      const expires = s.expiresAtMs;
      if (expires !== undefined && now >= expires) {
        s.terminate(new VncgateError('SESSION_ERR_MAX_LIFETIME', 'the console token expired (session timeout enforced)'));
      } else if (maxLifetimeMs > 0 && now - s.startedAt >= maxLifetimeMs) {
        s.terminate(new VncgateError('SESSION_ERR_MAX_LIFETIME', `session reached its maximum lifetime of ${maxLifetimeMs} ms`));
      } else if (idleTimeoutMs > 0 && now - s.lastActivity >= idleTimeoutMs) {
        s.terminate(new VncgateError('SESSION_ERR_IDLE_TIMEOUT', `no traffic for ${idleTimeoutMs} ms`));
      } else if (heartbeatIntervalMs > 0 && now - s.lastPingAt >= heartbeatIntervalMs) {
        if (s.pongPending) s.terminate(new VncgateError('SESSION_ERR_HEARTBEAT', 'browser missed a WebSocket pong'));
        else s.ping();
      }
    }
  }

  /** Ends every session (server shutdown) and stops the sweep; returns how many there were. */
  closeAll(error: VncgateError): number {
    clearInterval(this.#timer);
    const open = [...this.#sessions];
    for (const s of open) s.terminate(error);
    return open.length;
  }
}
