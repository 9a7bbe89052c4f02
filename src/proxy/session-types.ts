import type { ClientInitMode } from './session-init.js';

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
