import type { FastifyInstance } from 'fastify';
import type { Server as TlsServer } from 'node:tls';
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { VncgateError } from '../errors.js';
import type { IronicNodeResolver } from '../ironic/index.js';
import type { NovaTokenLookup } from '../nova/index.js';
import type { AuditLog, Metrics } from '../observe/index.js';
import type { TokenStore } from '../tokens/index.js';
import { TargetResolvers } from './authorization/index.js';
import { Lifecycle, leaveAndDrain, registerDrainHooks, type DrainSummary } from './drain.js';
import { ConnectionGuard } from './connection-guard.js';
import { registerHealth } from './health.js';
import { createHttpApp } from './http-app.js';
import { baseUrlFor, listen } from './listeners.js';
import { observability } from './observability.js';
import { checkOpenFilesLimit } from './open-files.js';
import { OriginPolicy } from './origin.js';
import { proxyProtocolListen } from './proxy-listener.js';
import { SessionRegistry } from './session-registry.js';
import { TlsReloader, type ReloadResult, type ReloadTrigger } from './tls-reload.js';
import { registerScreenshotApi } from './screenshot-api.js';
import { registerTokenApi } from './token-api.js';
import { registerRecordingApi } from './recording-api.js';
import { Recordings } from '../record/index.js';
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
  /** Prometheus metrics (served on metrics.listen) and the audit stream; both off when absent. */
  metrics?: Metrics;
  audit?: AuditLog;
};

export type VncgateServer = {
  app: FastifyInstance;
  registry: SessionRegistry;
  /** Actual bound addresses, "host:port". */
  addresses: string[];
  /** Actual bound `listenProxyProtocol` addresses, "host:port". */
  proxyProtocolAddresses: string[];
  /** Base URL for console links (publicUrl, else the first listen address). */
  baseUrl: string;
  /** Where GET /metrics listens ("host:port"), or null. */
  metricsAddress: string | null;
  lifecycle: Lifecycle;
  /**
   * Graceful shutdown: /readyz answers 503 at once; new consoles and the token API are still
   * served for `graceMs` (default 0), then refused (the listeners stay open to say so); open
   * sessions keep working until they end or `timeoutMs` (counted from the end of the grace)
   * passes, then the rest are closed with SESSION_ERR_SHUTDOWN. Resolves as soon as no session is
   * left after the grace. Follow with `close()`.
   */
  drain(timeoutMs: number, graceMs?: number): Promise<DrainSummary>;
  /**
   * Reads the TLS certificate and key files again; a valid pair is served to new handshakes, a bad
   * one is refused (logged with CONFIG_ERR_TLS_RELOAD) and the previous one stays. Null when
   * serving plain HTTP.
   */
  reloadTls(trigger: ReloadTrigger): Promise<ReloadResult | null>;
  /** Ends everything now: a drain under way closes what is left, then the listeners close. */
  close(): Promise<void>;
};

/** The composition root: the HTTP app and its connection guard, console upgrades, token API, health routes, listeners. */
export async function buildServer(deps: ServerDeps): Promise<VncgateServer> {
  const { config, tokens, log } = deps;
  const nova = deps.nova ?? null;
  const resolvers = new TargetResolvers(config, deps.ironic ?? null);
  const registry = new SessionRegistry(config.raw.session);
  const origins = new OriginPolicy(config);
  const lifecycle = new Lifecycle();
  const observe = observability(config, log, deps.metrics, deps.audit);
  const recordings = config.raw.recordings.dir !== null ? new Recordings(config.raw.recordings, config.raw.backends.profiles, log.child({ component: 'recordings' }), observe.audit) : null;
  recordings?.start();

  const app = createHttpApp(config, log);
  // Fastify's server is https.Server, a tls.Server, whenever config.tls is set.
  const tls = config.tls ? new TlsReloader(app.server as unknown as TlsServer, config.tls, log.child({ component: 'tls' })) : null;
  registerDrainHooks(app, lifecycle);
  const connections = new ConnectionGuard(config.raw.limits, log.child({ component: 'connections' }), observe.onGuardNote ? { onNote: observe.onGuardNote } : {});
  connections.attach(app.server);
  checkOpenFilesLimit({ maxConnections: config.raw.limits.maxConnections, maxSessions: config.raw.session.maxSessions }, log);
  await registerConsoleUpgrades(app, { config, tokens, log, resolvers, nova, registry, origins, lifecycle, connections, events: observe.events, recordings });
  registerHealth(app, { tokens, registry, lifecycle, connections, checkTokenStore: config.raw.health.readinessChecksTokenStore });
  registerTokenApi(app, { config, tokens, resolvers, origins, lifecycle, audit: observe.audit });
  registerScreenshotApi(app, { config, resolvers, lifecycle });
  registerRecordingApi(app, { config, recordings, origins, audit: observe.audit });
  for (const plugin of deps.plugins ?? []) await plugin(app);

  let listeners: Awaited<ReturnType<typeof listen>>;
  let metricsListener: Awaited<ReturnType<typeof observe.start>> = null;
  try {
    listeners = await listen(app, config.listen, proxyProtocolListen(config, app.server, connections));
    metricsListener = await observe.start(registry).catch(async (err: unknown) => {
      await listeners.close();
      throw err;
    });
  } catch (err) {
    // Nothing may keep the process alive after a failed start (the caller reports and exits).
    registry.closeAll(new VncgateError('SESSION_ERR_SHUTDOWN', 'server failed to start'));
    await recordings?.close();
    await nova?.close();
    await app.close();
    throw err;
  }
  tls?.start();
  let draining: Promise<DrainSummary> | null = null;
  return {
    app,
    registry,
    addresses: listeners.addresses,
    proxyProtocolAddresses: listeners.proxyProtocolAddresses,
    baseUrl: baseUrlFor(config.publicUrl, config.tls ? 'https' : 'http', listeners.addresses[0]!),
    metricsAddress: metricsListener?.address ?? null,
    lifecycle,
    drain(timeoutMs, graceMs = 0) {
      if (lifecycle.beginLeaving()) draining = leaveAndDrain(app, registry, lifecycle, { timeoutMs, graceMs }, log);
      return draining ?? Promise.resolve({ sessions: 0, ended: 0, closed: 0, cutShort: true, durationMs: 0 });
    },
    reloadTls: (trigger) => tls?.reload(trigger) ?? Promise.resolve(null),
    async close() {
      lifecycle.beginClose();
      tls?.close();
      await draining;
      // Nothing new is accepted, and no connection without a console session holds the process.
      connections.close();
      registry.closeAll(new VncgateError('SESSION_ERR_SHUTDOWN', 'server shutting down'));
      // Those sessions' recordings get their end records before the process goes.
      await recordings?.close();
      await nova?.close();
      await listeners.close();
      await app.close();
      await metricsListener?.close();
    },
  };
}
