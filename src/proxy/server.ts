import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { VncgateError } from '../errors.js';
import type { IronicNodeResolver } from '../ironic/index.js';
import type { NovaTokenLookup } from '../nova/index.js';
import type { TokenStore } from '../tokens/index.js';
import { TargetResolvers } from './authorize.js';
import { ConnectionGuard } from './connection-guard.js';
import { registerHealth } from './health.js';
import { createHttpApp } from './http-app.js';
import { baseUrlFor, listen } from './listeners.js';
import { checkOpenFilesLimit } from './open-files.js';
import { OriginPolicy } from './origin.js';
import { SessionRegistry } from './session-registry.js';
import { registerTokenApi } from './token-api.js';
import { registerConsoleUpgrades } from './upgrade.js';

export type ServerDeps = {
  config: Config;
  tokens: TokenStore;
  log: Logger;
  /** Ironic node resolver (from createIronic); node targets are refused without one. */
  ironic?: IronicNodeResolver | null;
  /** Nova token lookup (from createNova); Nova's console URLs are refused without one. */
  nova?: NovaTokenLookup | null;
  /** Registers extra routes (the console page) on the app before it starts. */
  plugins?: ((app: FastifyInstance) => Promise<void> | void)[];
};

export type VncgateServer = {
  app: FastifyInstance;
  registry: SessionRegistry;
  /** Actual bound addresses, "host:port". */
  addresses: string[];
  /** Base URL for console links (publicUrl, else the first listen address). */
  baseUrl: string;
  close(): Promise<void>;
};

/** The composition root: the HTTP app and its connection guard, console upgrades, token API, health routes, listeners. */
export async function buildServer(deps: ServerDeps): Promise<VncgateServer> {
  const { config, tokens, log } = deps;
  const nova = deps.nova ?? null;
  const resolvers = new TargetResolvers(config, deps.ironic ?? null);
  const registry = new SessionRegistry(config.raw.session);
  const origins = new OriginPolicy(config);

  const app = createHttpApp(config, log);
  const connections = new ConnectionGuard(config.raw.limits, log.child({ component: 'connections' }));
  connections.attach(app.server);
  checkOpenFilesLimit({ maxConnections: config.raw.limits.maxConnections, maxSessions: config.raw.session.maxSessions }, log);
  await registerConsoleUpgrades(app, { config, tokens, log, resolvers, nova, registry, origins, connections });
  registerHealth(app, { tokens, registry, connections });
  registerTokenApi(app, { config, tokens, resolvers, origins });
  for (const plugin of deps.plugins ?? []) await plugin(app);

  const listeners = await listen(app, config.listen);
  return {
    app,
    registry,
    addresses: listeners.addresses,
    baseUrl: baseUrlFor(config.publicUrl, config.tls ? 'https' : 'http', listeners.addresses[0]!),
    async close() {
      // Nothing new is accepted, and no connection without a console session holds the process.
      connections.close();
      registry.closeAll(new VncgateError('SESSION_ERR_SHUTDOWN', 'server shutting down'));
      await nova?.close();
      await listeners.close();
      await app.close();
    },
  };
}
