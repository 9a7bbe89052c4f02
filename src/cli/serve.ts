import { parseArgs } from 'node:util';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { loadConfig, type Config } from '../config/index.js';
import { createLogger } from '../log.js';
import { buildServer, type VncgateServer } from '../proxy/server.js';
import { createIronic } from '../ironic/index.js';
import { createNova } from '../nova/index.js';
import { createMetrics, NO_AUDIT, NO_METRICS, openAuditLog, type AuditLog, type Metrics } from '../observe/index.js';
import { createTokenStore, type TokenStore } from '../tokens/index.js';
import { tokenStoreConfig } from './token-store-config.js';
import { registerConsolePage } from '../web/index.js';
import type { CliIo } from './io.js';

export const SERVE_USAGE = `Usage: vncgate serve [--config FILE] [--listen HOST:PORT]...

Runs the console proxy: HTTPS/WSS front end, console page, token API.
Configuration comes from FILE (or $VNCGATE_CONFIG) and VNCGATE_* environment variables; see the
README's Configuration section. Prints one JSON line with the bound addresses once listening; logs
go to stderr. SIGTERM or SIGINT drains: /readyz answers 503 at once, new consoles are still
accepted for shutdown.readinessGraceMs (default 0) and refused after it, open ones keep working for
up to shutdown.drainTimeoutMs more, and the process exits as soon as none is left. A second signal closes
every session at once. SIGHUP reads the TLS certificate and key again (so do changes to the files,
unless tls.watchFiles is false): new connections get the new pair, open sessions are untouched, and
a bad pair is refused with CONFIG_ERR_TLS_RELOAD in the log while the previous one is kept.
`;

export function serveArgs(argv: string[]): { config?: string; listen?: string[] } {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: { config: { type: 'string' }, listen: { type: 'string', multiple: true } },
  });
  return {
    ...(values.config !== undefined ? { config: values.config } : {}),
    ...(values.listen !== undefined ? { listen: values.listen } : {}),
  };
}

/** Starts vncgate from a loaded config; used by `serve` and `demo`. */
export async function startVncgate(
  config: Config,
  io: Pick<CliIo, 'err'>,
  opts: {
    extraPlugins?: ((app: FastifyInstance) => void | Promise<void>)[];
    /** In-memory tokens are intended (the demo): no warning about them. */
    memoryTokensIntended?: boolean;
  } = {},
): Promise<{ server: VncgateServer; tokens: TokenStore; log: Logger; audit: AuditLog }> {
  const log = createLogger({ level: config.raw.log.level });
  const metrics: Metrics = config.metricsListen ? createMetrics() : NO_METRICS;
  const audit = await openAudit(config, log, metrics);
  const tokens = createTokenStore({ ...tokenStoreConfig(config), logger: log.child({ component: 'tokens' }), observe: metrics.upstream });
  if (tokens.kind === 'memory' && opts.memoryTokensIntended !== true) {
    log.warn('no Redis configured (redis.url, redis.sentinels, redis.cluster): console tokens are held in this process only (single-process deployments and the demo)');
  }
  for (const name of config.hostnameCheckDisabled) {
    log.warn({ profile: name }, 'backend profile disables TLS hostname verification (certificate chain is still verified)');
  }
  if (!config.tls) log.warn('serving plain HTTP/WS: only behind a TLS-terminating proxy');
  try {
    await tokens.ready();
  } catch (err) {
    io.err(`vncgate: token store not ready: ${(err as Error).message} (continuing; sessions fail until it is)`);
  }
  const ironic = createIronic(config, metrics.upstream);
  if (ironic) log.info({ ironic: config.ironic?.url ?? '(from the Keystone catalog)', auth: config.raw.ironic.auth }, 'Ironic node consoles enabled');
  let server: VncgateServer;
  try {
    server = await buildServer({
      config,
      tokens,
      log,
      ironic: ironic?.resolver ?? null,
      nova: createNova(config, metrics.upstream),
      metrics,
      audit,
      plugins: [(app) => registerConsolePage(app, { frameAncestors: [...config.raw.console.frameAncestors] }), ...(opts.extraPlugins ?? [])],
    });
  } catch (err) {
    await tokens.close();
    await audit.close();
    throw err;
  }
  log.info({ addresses: server.addresses, ...(server.proxyProtocolAddresses.length > 0 ? { proxyProtocolAddresses: server.proxyProtocolAddresses } : {}), tls: config.tls !== null, tokenStore: tokens.kind }, 'vncgate listening');
  return { server, tokens, log, audit };
}

/**
 * The audit stream of `audit.file`, or none. Write errors are logged at most once a minute (the
 * dropped events are counted in the metric either way).
 */
export async function openAudit(config: Config, log: Pick<Logger, 'warn'>, metrics: Metrics = NO_METRICS, file: string | null = config.raw.audit.file): Promise<AuditLog> {
  if (file === null) return NO_AUDIT;
  let lastWarnAt = -Infinity;
  return openAuditLog(file, {
    onDrop: () => metrics.auditDropped(),
    onError: (err) => {
      if (Date.now() - lastWarnAt < 60_000) return;
      lastWarnAt = Date.now();
      log.warn({ err: { message: err.message } }, 'audit stream write failed; audit events are being dropped');
    },
  });
}

export async function serveCommand(argv: string[], io: CliIo): Promise<number> {
  const args = serveArgs(argv);
  // Before anything is read: Node's default for SIGHUP ends the process, and `systemctl reload` sends one.
  const hup = watchHangup();
  const signals = watchSignals();
  try {
    const config = loadConfig({ ...(args.config !== undefined ? { file: args.config } : {}), ...(args.listen ? { overrides: { listen: args.listen } } : {}) });
    const { server, tokens, log, audit } = await startVncgate(config, io);
    hup.onHangup(() => {
      server.reloadTls('SIGHUP').then(
        (r) => {
          if (r === null) log.info('SIGHUP: serving plain HTTP, no certificate to reload');
        },
        (err: unknown) => log.error({ err }, 'SIGHUP: certificate reload failed unexpectedly'),
      );
      // logrotate moved the audit file: write to a new one at the same path.
      audit.reopen();
    });
    io.out({ listening: server.addresses, ...(server.proxyProtocolAddresses.length > 0 ? { listeningProxyProtocol: server.proxyProtocolAddresses } : {}), baseUrl: server.baseUrl, ...(server.metricsAddress !== null ? { metrics: server.metricsAddress } : {}) });
    await signals.first;
    const now = signals.second.then((signal) => log.info({ signal }, 'second signal: closing every session now'));
    await Promise.race([server.drain(config.raw.shutdown.drainTimeoutMs, config.raw.shutdown.readinessGraceMs), now]);
    await server.close();
    await tokens.close();
    await audit.close();
    return 0;
  } finally {
    signals.dispose();
    hup.dispose();
  }
}

/**
 * SIGHUP while serving. One that arrives before `onHangup` is given a handler (during start-up,
 * after the files were read) is kept and handled then, not lost.
 */
export function watchHangup(): { onHangup(handler: () => void): void; dispose(): void } {
  let handler: (() => void) | null = null;
  let pending = false;
  const on = (): void => {
    if (handler) handler();
    else pending = true;
  };
  process.on('SIGHUP', on);
  return {
    onHangup(h) {
      handler = h;
      if (pending) h();
      pending = false;
    },
    dispose: () => process.off('SIGHUP', on),
  };
}

/**
 * SIGINT and SIGTERM while serving: the first starts the drain, the second cuts it short. After
 * the second (or `dispose`) our handlers are gone, so a third signal has its default effect and
 * ends the process whatever it is doing.
 */
export function watchSignals(): { first: Promise<NodeJS.Signals>; second: Promise<NodeJS.Signals>; dispose(): void } {
  const resolvers: ((sig: NodeJS.Signals) => void)[] = [];
  const first = new Promise<NodeJS.Signals>((resolve) => resolvers.push(resolve));
  const second = new Promise<NodeJS.Signals>((resolve) => resolvers.push(resolve));
  const dispose = (): void => {
    process.off('SIGINT', on);
    process.off('SIGTERM', on);
  };
  const on = (sig: NodeJS.Signals): void => {
    resolvers.shift()?.(sig);
    if (resolvers.length === 0) dispose();
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  return { first, second, dispose };
}

/** Resolves on the first SIGINT or SIGTERM (the demo: Ctrl-C stops it at once, no drain). */
export function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
