import type { ErrorCode, VncgateError } from '../errors.js';
import type { AuditFields, AuditLog, ClosedBy, Metrics, SetupPhase, TokenResult } from '../observe/index.js';
import type { TokenIssuer } from '../target.js';
import type { ResolvedTarget } from '../target.js';
import type { DroppedMessages, ReportedPolicy } from './session-policy.js';

/** Who and what a session is, as its events report it (never the token: its short hash). */
export type SessionFacts = {
  sessionId: string;
  remote: string;
  tokenId: string | null;
  /** The `node` of an Ironic console URL, as presented. */
  node: string | null;
  issuedBy: TokenIssuer | null;
  target: ResolvedTarget | null;
};

/** What the session's "session started" log line says. */
export type SessionStartedInfo = {
  profile: string | undefined;
  backendVersion: string;
  security: string;
  tls: { protocol: string | null; cipher: string } | null;
  framebuffer: string;
  shared: boolean;
  setupMs: number;
  /** The session this one reconnects (a reconnect grant), if it is a reconnect. */
  reconnectOf?: string;
  /** The view-only/clipboard policy, present only when it restricts anything. */
  policy?: ReportedPolicy;
};

/** What the session's "session ended" log line says, and a little more. */
export type SessionEndedInfo = {
  durationMs: number;
  bytesToBrowser: number;
  bytesToBackend: number;
  closedBy: ClosedBy;
  code: ErrorCode | null;
  ordinary: boolean;
  /** It reached relaying (the console opened). */
  piped: boolean;
  /** The WebSocket close code: the browser's when it closed, else the one vncgate sent. */
  wsCloseCode: number;
  /** A viewer of a shared console (share/registry.ts ShareSummary). */
  shared?: { viewersAtJoin: number; hadControl: boolean; controlMs: number; peakViewers: number };
  /** Messages the view-only/clipboard policy dropped (counts only); absent when nothing was filtered. */
  dropped?: DroppedMessages;
};

/** What a session reports, besides its log lines; at most a handful of calls per session, none per chunk. */
export interface SessionEvents {
  /** The console link was checked: null when accepted, else why not. */
  authorized(facts: SessionFacts, error: VncgateError | null): void;
  phase(phase: SetupPhase, seconds: number): void;
  started(facts: SessionFacts, info: SessionStartedInfo): void;
  ended(facts: SessionFacts, info: SessionEndedInfo): void;
}

const TOKEN_RESULT: Partial<Record<ErrorCode, TokenResult>> = {
  TOKEN_ERR_MISSING: 'missing',
  TOKEN_ERR_INVALID: 'invalid',
  RECONNECT_ERR_INVALID: 'invalid',
  TOKEN_ERR_RATE_LIMITED: 'rate_limited',
  TOKEN_ERR_STORE_UNAVAILABLE: 'store_unavailable',
  SESSION_ERR_TARGET_BUSY: 'busy',
  SESSION_ERR_BUSY: 'busy',
  // The session ended (or the process began to stop) while the link was being checked.
  SESSION_ERR_SHUTDOWN: 'aborted',
};

/** The metric's result for an authorization outcome; anything else failed resolving the target. */
export function tokenResult(error: VncgateError | null): TokenResult {
  return error === null ? 'ok' : (TOKEN_RESULT[error.code] ?? 'target_error');
}

/** The machine behind a resolved target: an Ironic node (its UUID) or a Nova instance. */
function machineOf(target: ResolvedTarget | null): { node: string | null; instance: string | null } {
  const t = target as (ResolvedTarget & { uuid?: unknown }) | null;
  return { node: typeof t?.uuid === 'string' ? t.uuid : null, instance: t?.instance ?? null };
}

/**
 * The session events for the configured metrics and audit stream, or undefined when both are
 * off (then a session makes no calls at all).
 */
export function createSessionEvents(metrics: Metrics, audit: AuditLog, opts: { includeClientAddress: boolean }): SessionEvents | undefined {
  if (!metrics.enabled && !audit.enabled) return undefined;
  const client = (f: SessionFacts): AuditFields => (opts.includeClientAddress ? { client: f.remote } : {});
  const common = (f: SessionFacts): AuditFields => {
    const m = machineOf(f.target);
    return {
      sessionId: f.sessionId,
      ...client(f),
      tokenId: f.tokenId,
      issuedBy: f.issuedBy ? { ...f.issuedBy } : null,
      target: f.target?.label ?? null,
      host: f.target?.host ?? null,
      port: f.target?.port ?? null,
      node: m.node ?? f.node,
      instance: m.instance,
      profile: f.target?.profile ?? null,
    };
  };
  return {
    authorized(f, error) {
      metrics.tokenChecked(tokenResult(error));
      // A session that ended while its link was being checked was not refused.
      if (error === null || error.code === 'SESSION_ERR_SHUTDOWN') return;
      audit.write('token.refused', { sessionId: f.sessionId, ...client(f), tokenId: f.tokenId, node: f.node, code: error.code });
    },
    phase: (phase, seconds) => metrics.setupPhase(phase, seconds),
    started(f, info) {
      audit.write('session.started', {
        ...common(f),
        security: info.security,
        backendVersion: info.backendVersion,
        tls: info.tls ? { ...info.tls } : null,
        setupMs: info.setupMs,
        ...(info.reconnectOf !== undefined ? { reconnect: true, reconnectOf: info.reconnectOf } : {}),
        ...(info.policy !== undefined ? { policy: { ...info.policy } } : {}),
      });
    },
    ended(f, info) {
      metrics.sessionEnded(info);
      audit.write('session.ended', {
        ...common(f),
        started: info.piped,
        durationMs: info.durationMs,
        bytesToBrowser: info.bytesToBrowser,
        bytesToBackend: info.bytesToBackend,
        closedBy: info.closedBy,
        code: info.code,
        wsCloseCode: info.wsCloseCode,
        ...(info.shared ? { shared: { ...info.shared } } : {}),
        ...(info.dropped !== undefined ? { dropped: { ...info.dropped } } : {}),
      });
    },
  };
}
