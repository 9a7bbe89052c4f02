import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { listenMetrics, NO_AUDIT, NO_METRICS, type AuditLog, type ConnectionRefusal, type Metrics, type MetricsListener } from '../observe/index.js';
import type { GuardCounters } from './connection-guard.js';
import { createSessionEvents, type SessionEvents } from './session-events.js';
import type { SessionRegistry } from './session-registry.js';

const REFUSAL: Record<keyof GuardCounters, ConnectionRefusal> = {
  refusedProcessCap: 'process_cap',
  refusedClientCap: 'client_cap',
  tlsHandshakeTimeouts: 'tls_handshake_timeout',
  requestTimeouts: 'request_timeout',
  refusedUntrustedProxy: 'untrusted_proxy',
  proxyHeaderErrors: 'proxy_header',
};

export type Observability = {
  metrics: Metrics;
  audit: AuditLog;
  /** For each session; undefined when metrics and audit are both off. */
  events: SessionEvents | undefined;
  /** For the connection guard. */
  onGuardNote: ((what: keyof GuardCounters) => void) | undefined;
  /** Reads the live sessions at scrape time and opens `metrics.listen`; returns its listener. */
  start(registry: SessionRegistry): Promise<MetricsListener | null>;
};

/** Metrics and audit as the server uses them (both optional: off costs nothing). */
export function observability(config: Config, log: Logger, metrics: Metrics = NO_METRICS, audit: AuditLog = NO_AUDIT): Observability {
  return {
    metrics,
    audit,
    events: createSessionEvents(metrics, audit, { includeClientAddress: config.raw.audit.includeClientAddress }),
    onGuardNote: metrics.enabled ? (what) => metrics.connectionRefused(REFUSAL[what]) : undefined,
    async start(registry) {
      if (!metrics.enabled || !config.metricsListen) return null;
      metrics.watchSessions(() => registry.list());
      const l = config.metricsListen;
      const listener = await listenMetrics(metrics, l.host, l.port, (err: NodeJS.ErrnoException) =>
        log.warn({ code: err.code, syscall: err.syscall, err: err.message }, 'the metrics listener could not accept a connection'),
      );
      log.info({ address: listener.address }, 'metrics listening (GET /metrics)');
      return listener;
    },
  };
}
