import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ErrorCode } from '../errors.js';
import type { UpstreamObserver } from './upstream.js';

/** Who ended a session. */
export type ClosedBy = 'browser' | 'backend' | 'vncgate';

/** Steps of a session's set-up, each timed from the session's start (`total`: to ServerInit relayed). */
export const SETUP_PHASES = ['authorize', 'connect', 'backend_handshake', 'total'] as const;
export type SetupPhase = (typeof SETUP_PHASES)[number];

/** How the check of a console link ended (vncgate, Ironic or Nova token). */
export const TOKEN_RESULTS = ['ok', 'missing', 'invalid', 'rate_limited', 'store_unavailable', 'busy', 'aborted', 'target_error'] as const;
export type TokenResult = (typeof TOKEN_RESULTS)[number];

/** Why the connection guard closed a client connection. */
export const CONNECTION_REFUSALS = ['process_cap', 'client_cap', 'tls_handshake_timeout', 'request_timeout', 'untrusted_proxy', 'proxy_header'] as const;
export type ConnectionRefusal = (typeof CONNECTION_REFUSALS)[number];

/** A live session's byte counters, read at scrape time (plain integer fields on the session). */
export interface SessionCounters {
  readonly bytesToBrowser: number;
  readonly bytesToBackend: number;
}

export interface SessionEnd {
  /** null: nothing went wrong (the browser left). */
  readonly code: ErrorCode | null;
  /** An ordinary end (browser left, endpoint closed, idle or lifetime limit), not a failure. */
  readonly ordinary: boolean;
  readonly closedBy: ClosedBy;
  readonly bytesToBrowser: number;
  readonly bytesToBackend: number;
}

/**
 * What the proxy reports. The proxy depends on this interface only; with metrics off it gets
 * NO_METRICS, whose methods do nothing, so it pays one empty call per event and nothing per chunk.
 */
export interface Metrics {
  readonly enabled: boolean;
  /** A console link was checked (once per session that got that far). */
  tokenChecked(result: TokenResult): void;
  /** A set-up step finished, `seconds` after the session started. */
  setupPhase(phase: SetupPhase, seconds: number): void;
  /** A session ended (its bytes move from the live sum to the ended total here). */
  sessionEnded(end: SessionEnd): void;
  connectionRefused(reason: ConnectionRefusal): void;
  /** An audit event was dropped (the audit stream could not keep up). */
  auditDropped(): void;
  /** Timing of upstream requests (Redis, Ironic, Nova, Keystone). */
  readonly upstream: UpstreamObserver | undefined;
  /** Where the live sessions are, read at scrape time for the active gauge and byte counters. */
  watchSessions(source: () => Iterable<SessionCounters>): void;
  /** The exposition text and its content type. */
  render(): Promise<{ contentType: string; body: string }>;
}

const noop = (): void => undefined;

/** Metrics off: every report is an empty call. */
export const NO_METRICS: Metrics = {
  enabled: false,
  tokenChecked: noop,
  setupPhase: noop,
  sessionEnded: noop,
  connectionRefused: noop,
  auditDropped: noop,
  upstream: undefined,
  watchSessions: noop,
  render: () => Promise.resolve({ contentType: 'text/plain', body: '' }),
};

/** Seconds; set-up is milliseconds on a LAN, seconds through a slow BMC's TLS. */
const SETUP_BUCKETS = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15];
const UPSTREAM_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Error codes of the console endpoint's side (connect, TLS, RFB), counted per code. */
function isBackendCode(code: ErrorCode): boolean {
  return code.startsWith('BACKEND_ERR_') || (code.startsWith('RFB_ERR_') && !code.startsWith('RFB_ERR_CLIENT'));
}

/**
 * Prometheus metrics in a registry of their own (not prom-client's global one), with Node's
 * default process metrics. Labels take values from fixed sets only (error codes, phases,
 * services), never a token, node, address or target.
 *
 * Bytes relayed are not counted per chunk: the session keeps two integer fields, each session's
 * totals are added when it ends, and a scrape adds the live sessions' current counts to that
 * (vncgate_bytes_total = ended + live). The sum only grows, since a session's bytes move from the
 * live part to the ended part in one synchronous step.
 */
export function createMetrics(): Metrics & { readonly registry: Registry } {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let sessions: () => Iterable<SessionCounters> = () => [];
  const ended = { toBrowser: 0, toBackend: 0 };

  new Gauge({
    name: 'vncgate_sessions_active',
    help: 'Console sessions open in this process (setting up or relaying)',
    registers: [registry],
    collect() {
      let n = 0;
      for (const _ of sessions()) n++;
      this.set(n);
    },
  });
  const sessionsTotal = new Counter({
    name: 'vncgate_sessions_total',
    help: 'Console sessions ended, by outcome (ok: an ordinary end), error code ("none" if there was none) and who closed',
    labelNames: ['outcome', 'code', 'closed_by'] as const,
    registers: [registry],
  });
  const setup = new Histogram({
    name: 'vncgate_session_setup_seconds',
    help: 'Time from the WebSocket upgrade to the end of each set-up phase (authorize, connect, backend_handshake; total: ServerInit relayed)',
    labelNames: ['phase'] as const,
    buckets: SETUP_BUCKETS,
    registers: [registry],
  });
  new Counter({
    name: 'vncgate_bytes_total',
    help: 'Bytes relayed, by direction (to_browser, to_backend); ended sessions plus the live ones at scrape time',
    labelNames: ['direction'] as const,
    registers: [registry],
    collect() {
      let toBrowser = ended.toBrowser;
      let toBackend = ended.toBackend;
      for (const s of sessions()) {
        toBrowser += s.bytesToBrowser;
        toBackend += s.bytesToBackend;
      }
      this.reset();
      this.inc({ direction: 'to_browser' }, toBrowser);
      this.inc({ direction: 'to_backend' }, toBackend);
    },
  });
  const tokens = new Counter({
    name: 'vncgate_token_consume_total',
    help: 'Console links checked, by result',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  for (const result of TOKEN_RESULTS) tokens.inc({ result }, 0);
  const backendErrors = new Counter({
    name: 'vncgate_backend_errors_total',
    help: 'Sessions failed on the console endpoint side, by error code (BACKEND_ERR_*, RFB_ERR_*)',
    labelNames: ['code'] as const,
    registers: [registry],
  });
  const upstreamSeconds = new Histogram({
    name: 'vncgate_upstream_request_seconds',
    help: 'Requests to the services vncgate depends on, by service and outcome (ok, error)',
    labelNames: ['service', 'outcome'] as const,
    buckets: UPSTREAM_BUCKETS,
    registers: [registry],
  });
  const refused = new Counter({
    name: 'vncgate_connections_refused_total',
    help: 'Client connections closed by the connection guard, by reason',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  for (const reason of CONNECTION_REFUSALS) refused.inc({ reason }, 0);
  const auditDropped = new Counter({
    name: 'vncgate_audit_events_dropped_total',
    help: 'Audit events dropped because the audit stream could not keep up (or failed)',
    registers: [registry],
  });
  auditDropped.inc(0);

  return {
    enabled: true,
    registry,
    tokenChecked: (result) => tokens.inc({ result }),
    setupPhase: (phase, seconds) => setup.observe({ phase }, seconds),
    sessionEnded(e) {
      ended.toBrowser += e.bytesToBrowser;
      ended.toBackend += e.bytesToBackend;
      sessionsTotal.inc({ outcome: e.ordinary ? 'ok' : 'error', code: e.code ?? 'none', closed_by: e.closedBy });
      if (e.code !== null && isBackendCode(e.code)) backendErrors.inc({ code: e.code });
    },
    connectionRefused: (reason) => refused.inc({ reason }),
    auditDropped: () => auditDropped.inc(),
    upstream: (service, seconds, ok) => upstreamSeconds.observe({ service, outcome: ok ? 'ok' : 'error' }, seconds),
    watchSessions(source) {
      sessions = source;
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}

