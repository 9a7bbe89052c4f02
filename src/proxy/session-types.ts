import type { Logger } from 'pino';
import type { Recordings } from '../record/index.js';
import type { Authorize, StartedAuthorization } from '../target.js';
import type { SessionGrant } from './reconnect.js';
import type { ShareRegistry } from './share/registry.js';
import type { SessionEvents } from './session-events.js';
import type { ClientInitMode } from './session-init.js';
import type { ConsoleSession } from './session.js';

/** A console session's states, in order (session.ts changes them through one setter that logs each). */
export type SessionStatus = 'authorizing' | 'connecting' | 'handshaking' | 'piping' | 'closing' | 'closed';

export type SessionLimits = {
  connectTimeoutMs: number;
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
  maxLifetimeMs: number;
  heartbeatIntervalMs: number;
  highWaterMarkBytes: number;
  /** ClientInit toward the endpoint: vncgate's own (shared/exclusive, sent at once) or the browser's. */
  clientInit: ClientInitMode;
  /** Bytes queued toward one viewer of a shared console above which it is ended. */
  sharedViewerQueueBytes?: number;
};

/** What a console session is built with (session.ts). */
export type SessionDeps = {
  /** How to authorize the session, or an authorization already under way for it. */
  authorize: Authorize | StartedAuthorization;
  limits: SessionLimits;
  log: Logger;
  /** Called once when the session is closed (registry bookkeeping). */
  onClosed: (s: ConsoleSession) => void;
  /** The browser's connection is TLS (wss): see Relay for what that changes. */
  browserTls?: boolean;
  /** Metrics and audit events: told at authorization, each set-up phase, start and end. */
  events?: SessionEvents;
  /** Its reconnect grant (reconnect.ts), told by its report; absent when off. */
  grant?: SessionGrant | null;
  /** Opens the recorder of a session its profile or token says to record (record/). */
  recordings?: Recordings | null;
  /** Shared consoles (profiles with `sharing: true`); absent: every session has its own connection. */
  share?: ShareRegistry;
};
