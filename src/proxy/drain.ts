import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { VncgateError } from '../errors.js';
import type { SessionRegistry } from './session-registry.js';

/**
 * serving → leaving (SIGTERM with shutdown.readinessGraceMs: /readyz says 503 so load balancers
 * stop sending work, but what still arrives is served) → draining (no new work, open sessions
 * carry on) → closing (everything ends now).
 */
export type LifecyclePhase = 'serving' | 'leaving' | 'draining' | 'closing';

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

  /** Whether /readyz says ready: serving, and no shutdown begun. */
  get ready(): boolean {
    return this.#phase === 'serving';
  }

  /** Whether new sessions and tokens are on offer (also during the readiness grace). */
  get accepting(): boolean {
    return this.#phase === 'serving' || this.#phase === 'leaving';
  }

  /** Aborted when the server is told to close now (a second signal cuts a drain short). */
  get closingSignal(): AbortSignal {
    return this.#closing.signal;
  }

  /** serving → leaving; false if the shutdown had already begun. */
  beginLeaving(): boolean {
    if (this.#phase !== 'serving') return false;
    this.#phase = 'leaving';
    return true;
  }

  /** serving or leaving → draining; false if the drain (or the close) had already begun. */
  beginDrain(): boolean {
    if (!this.accepting) return false;
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
 * Once the shutdown has begun (the readiness grace included), every HTTP response asks the client
 * to close its connection, so keep-alive connections (load-balancer probes, token API clients) go
 * away as they are used and reconnect elsewhere; those idle at the time the drain begins are
 * closed by `drainSessions`.
 */
export function registerDrainHooks(app: FastifyInstance, lifecycle: Lifecycle): void {
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (!lifecycle.ready) reply.header('Connection', 'close');
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
 * The whole graceful shutdown: first the readiness grace (`graceMs`; /readyz already answers 503,
 * new consoles and tokens are still served, so those sent by a load balancer that has not yet
 * noticed still work), then `drainSessions`, whose `timeoutMs` counts from the end of the grace.
 * `close()` during the grace (a second signal) skips the rest of it.
 */
export async function leaveAndDrain(
  app: FastifyInstance,
  registry: SessionRegistry,
  lifecycle: Lifecycle,
  opts: { timeoutMs: number; graceMs: number },
  log: Logger,
): Promise<DrainSummary> {
  if (opts.graceMs > 0 && !lifecycle.closingSignal.aborted) {
    log.info(
      { sessions: registry.size, readinessGraceMs: opts.graceMs, drainBegins: new Date(Date.now() + opts.graceMs).toISOString() },
      'leaving the load balancer: /readyz answers 503, new consoles and tokens are still accepted until the drain begins',
    );
    await sleep(opts.graceMs, undefined, { signal: lifecycle.closingSignal }).catch(() => undefined);
  }
  lifecycle.beginDrain();
  return drainSessions(app, registry, lifecycle, opts.timeoutMs, log);
}

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
