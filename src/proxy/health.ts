import type { FastifyInstance } from 'fastify';
import { VncgateError, toVncgateError } from '../errors.js';
import type { TokenStore } from '../tokens/index.js';
import type { ConnectionGuard } from './connection-guard.js';
import type { Lifecycle } from './drain.js';
import { sendError } from './http-app.js';
import type { SessionRegistry } from './session-registry.js';

/**
 * Longest /readyz waits for the token store. Kubernetes' default probe timeout is 1 s, and a
 * probe that times out tells the operator less than a 503 naming the reason.
 */
export const READY_DEADLINE_MS = 400;

/**
 * The token store's readiness, answered within a deadline: at most one `ready()` is in flight
 * whatever the probe rate, and a store that has not answered by the deadline counts as not
 * ready (a store that slow would make consoles slow to open too). The check keeps running after
 * the deadline, so the next probe sees its outcome if it has one.
 */
export class TokenStoreReadiness {
  readonly #tokens: TokenStore;
  readonly #deadlineMs: number;
  #inFlight: Promise<VncgateError | null> | null = null;

  constructor(tokens: TokenStore, deadlineMs = READY_DEADLINE_MS) {
    this.#tokens = tokens;
    this.#deadlineMs = deadlineMs;
  }

  /** null: ready; otherwise why not. Never waits longer than the deadline. */
  async check(): Promise<VncgateError | null> {
    const inFlight = (this.#inFlight ??= this.#tokens.ready().then(
      () => this.#settled(null),
      (err: unknown) => this.#settled(toVncgateError(err, 'TOKEN_ERR_STORE_UNAVAILABLE')),
    ));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<VncgateError>((resolve) => {
      timer = setTimeout(
        () => resolve(new VncgateError('TOKEN_ERR_STORE_UNAVAILABLE', `${this.#tokens.kind} token store did not answer within ${this.#deadlineMs} ms`)),
        this.#deadlineMs,
      );
    });
    try {
      return await Promise.race([inFlight, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  #settled(result: VncgateError | null): VncgateError | null {
    this.#inFlight = null;
    return result;
  }
}

/**
 * `GET /healthz` (the process answers: liveness, also while draining) and `GET /readyz` (it takes
 * new sessions: 503 at once on SIGTERM, the readiness grace included). The token store's state
 * is in /readyz's body either way (`tokenStore`, `tokenStoreReady`); it fails readiness only with
 * `checkTokenStore` (health.readinessChecksTokenStore): a store shared by every replica would
 * otherwise take them all out of the load balancer at once, and users would get refused
 * connections instead of vncgate's "try again shortly" (TOKEN_ERR_STORE_UNAVAILABLE).
 */
export function registerHealth(
  app: FastifyInstance,
  deps: { tokens: TokenStore; registry: SessionRegistry; lifecycle: Lifecycle; connections: ConnectionGuard; checkTokenStore: boolean },
): void {
  const { tokens, registry, lifecycle, connections, checkTokenStore } = deps;
  const readiness = new TokenStoreReadiness(tokens);
  app.get('/healthz', async () => ({ status: lifecycle.ready ? 'ok' : 'draining', sessions: registry.size, connections: connections.size }));
  app.get('/readyz', async (_req, reply) => {
    if (!lifecycle.ready) return sendError(reply, lifecycle.refusal('readiness'));
    const problem = await readiness.check();
    const store = { tokenStore: tokens.kind, tokenStoreReady: problem === null, ...(problem ? { tokenStoreError: problem.code } : {}) };
    if (problem && checkTokenStore) return reply.code(problem.httpStatus).send({ error: { code: problem.code, message: problem.publicReason }, ...store });
    return { status: 'ready', ...store };
  });
}
