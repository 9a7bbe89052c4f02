import type { FastifyInstance } from 'fastify';
import { toVncgateError } from '../errors.js';
import type { TokenStore } from '../tokens/index.js';
import type { ConnectionGuard } from './connection-guard.js';
import { sendError } from './http-app.js';
import type { SessionRegistry } from './session-registry.js';

/** `GET /healthz` (the process answers) and `GET /readyz` (it can take new sessions). */
export function registerHealth(app: FastifyInstance, deps: { tokens: TokenStore; registry: SessionRegistry; connections: ConnectionGuard }): void {
  const { tokens, registry, connections } = deps;
  app.get('/healthz', async () => ({ status: 'ok', sessions: registry.size, connections: connections.size }));
  app.get('/readyz', async (_req, reply) => {
    try {
      await tokens.ready();
      return { status: 'ready', tokenStore: tokens.kind };
    } catch (err) {
      return sendError(reply, toVncgateError(err));
    }
  });
}
