export { NO_AUDIT, AUDIT_EVENTS, openAuditLog, type AuditEventType, type AuditFields, type AuditLog, type AuditOptions } from './audit.js';
export {
  CONNECTION_REFUSALS,
  createMetrics,
  NO_METRICS,
  SETUP_PHASES,
  TOKEN_RESULTS,
  type ClosedBy,
  type ConnectionRefusal,
  type Metrics,
  type SessionCounters,
  type SessionEnd,
  type SetupPhase,
  type TokenResult,
} from './metrics.js';
export { listenMetrics, type MetricsListener } from './metrics-server.js';
export { timed, UPSTREAM_SERVICES, type UpstreamObserver, type UpstreamService } from './upstream.js';
