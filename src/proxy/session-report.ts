import type { Logger } from 'pino';
import { toVncgateError, type ErrorCode, type VncgateError } from '../errors.js';
import type { SetupPhase } from '../observe/index.js';
import type { Recordings, RelayTap } from '../record/index.js';
import type { ServerInit } from '../rfb/index.js';
import { tokenLogId } from '../tokens/index.js';
import type { Authorized, ResolvedTarget, TokenIssuer } from '../target.js';
import type { BackendConnection } from './backend-connector.js';
import type { SessionEvents, SessionFacts } from './session-events.js';
import { isOrdinaryEnd } from './session-faults.js';
import type { SessionGrant } from './reconnect.js';
import type { Initialised } from './session-init.js';
import type { ShareSummary } from './share/registry.js';
import { reportedPolicy, type DroppedMessages, type ReportedPolicy } from './session-policy.js';

export type SessionEnd = {
  error: VncgateError | null;
  /** Who ended the session (the log line's `closedBy`). */
  closedBy: 'browser' | 'backend' | 'vncgate';
  /** The browser's close code, when it closed. */
  browserCode: number | undefined;
  bytesToBrowser: number;
  bytesToBackend: number;
  /** It reached piping. */
  piped: boolean;
  /** A viewer of a shared console: how many watched when it joined, whether it had control. */
  shared?: ShareSummary;
};

/**
 * What one session tells the world: its child logger (bound to safe ids, never the token: a
 * short hash correlates log lines with the issuing side), the one `info` line when it starts and
 * the one when it ends, and its events (metrics, audit) with the facts they carry.
 */
export class SessionReport {
  readonly log: Logger;
  /** The authorized target, once known. */
  target: ResolvedTarget | null = null;
  /** The session's reconnect grant (reconnect.ts), told of authorization and end; null when off. */
  grant: SessionGrant | null = null;
  readonly startedAt = Date.now();
  readonly #sessionId: string;
  readonly #events: SessionEvents | null;
  readonly #remote: string;
  readonly #tokenId: string | null;
  readonly #node: string | null;
  #issuedBy: TokenIssuer | null = null;
  /** The session's view-only/clipboard policy, when it restricts anything (for its started line and event). */
  #policy: ReportedPolicy | null = null;
  readonly #recordings: Recordings | null;
  /** The token asked for the session to be recorded. */
  #recordRequested = false;
  /** Set-up phases are timed from here (monotonic clock). */
  readonly #t0 = performance.now();

  constructor(sessionId: string, token: string | null, remote: string, log: Logger, events: SessionEvents | null, logFields: Record<string, string>, recordings: Recordings | null = null) {
    this.#recordings = recordings;
    this.#sessionId = sessionId;
    this.#events = events;
    this.#remote = remote;
    this.#tokenId = token ? tokenLogId(token) : null;
    this.#node = logFields.node ?? null;
    this.log = log.child({ sessionId, remote, ...(this.#tokenId !== null ? { tokenId: this.#tokenId } : {}), ...logFields });
  }

  /** Who and what this session is, for its events. */
  #facts(): SessionFacts {
    return { sessionId: this.#sessionId, remote: this.#remote, tokenId: this.#tokenId, node: this.#node, issuedBy: this.#issuedBy, target: this.target };
  }

  phase(phase: SetupPhase): void {
    this.#events?.phase(phase, (performance.now() - this.#t0) / 1000);
  }

  /** The authorization's outcome, reported once (metrics, audit), then handed on as is. */
  async authorized(p: Promise<Authorized>): Promise<Authorized> {
    try {
      const a = await p;
      this.#issuedBy = a.issuedBy ?? null;
      this.#policy = reportedPolicy(a.policy);
      this.target = a.target;
      this.grant?.authorized(a, this.log);
      this.#recordRequested = a.record === true;
      this.phase('authorize');
      this.#events?.authorized(this.#facts(), null);
      return a;
    } catch (err) {
      this.#events?.authorized(this.#facts(), toVncgateError(err));
      throw err;
    }
  }

  /** The session's recorder, if its profile or token says to record it (a failure to start one is logged, never fatal). */
  recorder(init: ServerInit): RelayTap | null {
    if (this.#recordings === null || this.target === null) return null;
    try {
      return this.#recordings.open(this.#sessionId, this.target, init, this.#recordRequested, this.log);
    } catch (err) {
      this.log.warn({ err }, 'recording could not start; the session goes on');
      return null;
    }
  }

  /** Piping has begun (ServerInit is on its way, so the line's write is not in the time to a first frame). */
  started(conn: BackendConnection, init: Initialised): void {
    const started = {
      target: this.target?.label,
      profile: this.target?.profile,
      backendVersion: conn.info.serverVersion,
      security: conn.info.security,
      tls: conn.tls ? { protocol: conn.tls.protocol, cipher: conn.tls.cipher } : null,
      framebuffer: `${init.init.width}x${init.init.height}`,
      shared: init.shared,
      setupMs: Date.now() - this.startedAt,
      ...(this.grant?.reconnectOf !== undefined ? { reconnectOf: this.grant.reconnectOf } : {}),
      ...(this.#policy !== null ? { policy: this.#policy } : {}),
    };
    this.log.info(started, 'session started');
    this.phase('total');
    this.#events?.started(this.#facts(), started);
  }

  /**
   * The one line (and event) at the end of every session: peer faults warn, ordinary ends are
   * info. `dropped`: what the view-only/clipboard filter dropped, if the session had one.
   */
  ended(end: SessionEnd, dropped?: DroppedMessages): void {
    const e = end.error;
    this.grant?.ended(e, end.closedBy, end.browserCode);
    const code: ErrorCode | null = e?.code ?? null;
    const line = {
      durationMs: Date.now() - this.startedAt,
      bytesToBrowser: end.bytesToBrowser,
      bytesToBackend: end.bytesToBackend,
      closedBy: end.closedBy,
      code,
      ...(end.browserCode !== undefined ? { browserCloseCode: end.browserCode } : {}),
      ...(e && end.closedBy !== 'browser' ? { reason: e.message } : {}),
      ...(this.target ? { target: this.target.label } : {}),
      ...(end.shared ? { shared: end.shared } : {}),
      ...(dropped !== undefined ? { dropped } : {}),
    };
    const ordinary = isOrdinaryEnd(code);
    if (ordinary) this.log.info(line, 'session ended');
    else this.log.warn(line, 'session ended');
    this.#events?.ended(this.#facts(), { ...line, ordinary, piped: end.piped, wsCloseCode: end.browserCode ?? e?.wsClose ?? 1000 });
  }
}
