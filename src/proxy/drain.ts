import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { VncgateError } from '../errors.js';
import type { SessionRegistry } from './session-registry.js';

/** serving → draining (SIGTERM: no new work, open sessions carry on) → closing (everything ends now). */
export type LifecyclePhase = 'serving' | 'draining' | 'closing';

/**
 * Where this process is in its life, in one place: the upgrade path, the token API and /readyz
 * read it; the server's `drain()` and `close()` move it forward (never back).
 */
export class Lifecycle {
  #phase: LifecyclePhase = 'serving';
  readonly #closing = new AbortController();

  get phase(): LifecyclePhase {
    return this.#phase;
  }

  /** Whether new sessions, tokens and readiness are on offer. */
  get accepting(): boolean {
    return this.#phase === 'serving';
  }

  /** Aborted when the server is told to close now (a second signal cuts a drain short). */
  get closingSignal(): AbortSignal {
    return this.#closing.signal;
  }

  /** serving → draining; false if the drain (or the close) had already begun. */
  beginDrain(): boolean {
    if (this.#phase !== 'serving') return false;
    this.#phase = 'draining';
    return true;
  }

  beginClose(): void {
    this.#phase = 'closing';
    this.#closing.abort();
  }

  /** What new work is refused with once the drain has begun: the browser is told the service is restarting. */
  refusal(what: string): VncgateError {
    return new VncgateError('SESSION_ERR_SHUTDOWN', `${what} refused: the server is shutting down`);
  }
}

/**
 * Once draining, every HTTP response asks the client to close its connection, so keep-alive
 * connections (load-balancer probes, token API clients) go away as they are used; those idle
 * at the time the drain begins are closed by `drainSessions`.
 */
export function registerDrainHooks(app: FastifyInstance, lifecycle: Lifecycle): void {
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (!lifecycle.accepting) reply.header('Connection', 'close');
    done(null, payload);
  });
}

export type DrainSummary = {
  /** Sessions open when the drain began. */
  sessions: number;
  /** Of those, how many ended by themselves (the user closed the console, the endpoint went away, idle timeout). */
  ended: number;
  /** Sessions closed by vncgate at the deadline, or at once on `close()` (a second signal). */
  closed: number;
  /** Whether `close()` cut the drain short. */
  cutShort: boolean;
  durationMs: number;
};

/**
 * The graceful part of a shutdown: established sessions keep working for up to `timeoutMs` while
 * new ones are refused (the lifecycle says so); as soon as none is left it returns, and at the
 * deadline, or when the lifecycle is told to close now, the rest are closed with
 * SESSION_ERR_SHUTDOWN, whose reason noVNC shows ("The console service is restarting").
 */
export async function drainSessions(
  app: FastifyInstance,
  registry: SessionRegistry,
  lifecycle: Lifecycle,
  timeoutMs: number,
  log: Logger,
): Promise<DrainSummary> {
  const startedAt = Date.now();
  const open = registry.list();
  log.info(
    { sessions: open.length, drainTimeoutMs: timeoutMs, deadline: new Date(startedAt + timeoutMs).toISOString() },
    'draining: new sessions are refused, open sessions end by themselves until the deadline',
  );
  // Idle keep-alive connections would otherwise linger until their timeout; busy ones close
  // after their response (registerDrainHooks).
  app.server.closeIdleConnections();
  await registry.waitUntilEmpty(timeoutMs, lifecycle.closingSignal);
  const stillOpen = new Set(registry.list());
  const closed = registry.closeAll(new VncgateError('SESSION_ERR_SHUTDOWN', 'the drain deadline passed, or the server was told to close now'));
  const summary: DrainSummary = {
    sessions: open.length,
    ended: open.filter((s) => !stillOpen.has(s)).length,
    closed,
    cutShort: lifecycle.closingSignal.aborted,
    durationMs: Date.now() - startedAt,
  };
  log.info(summary, 'drain finished');
  return summary;
}
