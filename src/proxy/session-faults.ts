import { VncgateError, type ErrorCode } from '../errors.js';
import type { RfbServerHandshake } from '../rfb/index.js';

/**
 * Which error ends a console session, by what happened: pure functions of the session's state, so
 * the session (session.ts) only decides when.
 */

/**
 * The handshake deadline passed: whose turn was it? The browser owes its ProtocolVersion and
 * security choice from the start, and its ClientInit once told SecurityResult OK; the rest is the
 * endpoint's part (or the token store's, or Ironic's).
 */
export function deadlineError(rfb: RfbServerHandshake['state'], browserClientInitSeen: boolean, status: string, ms: number): VncgateError {
  const browserLate = rfb === 'version' || rfb === 'choice' || rfb === 'vncResponse' || (rfb === 'established' && !browserClientInitSeen);
  return browserLate
    ? new VncgateError('SESSION_ERR_BROWSER_TIMEOUT', `browser did not complete its VNC handshake within ${ms} ms (waiting for its ${rfb === 'established' ? 'ClientInit' : rfb})`)
    : new VncgateError('SESSION_ERR_HANDSHAKE_TIMEOUT', `session not established after ${ms} ms (${status})`);
}

/** The handshake deadline's errors: they end a session even while the browser is still owed a reason. */
export function isDeadline(e: VncgateError): boolean {
  return e.code === 'SESSION_ERR_HANDSHAKE_TIMEOUT' || e.code === 'SESSION_ERR_BROWSER_TIMEOUT';
}

/** `ws` refused a frame (closing with 1002, or 1009 for one past session.maxMessageBytes). */
export function browserWebSocketError(err: Error): VncgateError {
  const wsCode = (err as { code?: unknown }).code;
  const code = wsCode === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'SESSION_ERR_BROWSER_TOO_LARGE' : 'SESSION_ERR_BROWSER_PROTOCOL';
  return new VncgateError(code, `browser WebSocket error: ${err.message}`, { cause: err });
}

/**
 * `ws` answers pings itself, and terminates a connection whose browser sends them faster than it
 * reads the pongs, without an 'error' event: the close that follows would read as an ordinary
 * browser leaving. It emits the ping after terminating, so a ping on a connection no longer open
 * that vncgate is not closing is that flood.
 */
export function browserPingFlood(): VncgateError {
  return new VncgateError('SESSION_ERR_BROWSER_FLOOD', 'browser sent pings faster than it read the pongs; ws cut the connection');
}

export function backendSocketError(err: NodeJS.ErrnoException): VncgateError {
  return new VncgateError('SESSION_ERR_BACKEND_CLOSED', `console endpoint error: ${err.code ?? err.message}`, { cause: err });
}

/** Before piping the endpoint owed us ServerInit: that is a failed handshake, not an ordinary end. */
export function backendClosed(piping: boolean): VncgateError {
  return piping
    ? new VncgateError('SESSION_ERR_BACKEND_CLOSED', 'console endpoint closed the connection')
    : new VncgateError('BACKEND_ERR_CLOSED', 'console endpoint closed the connection before ServerInit');
}

/** Ordinary ends (browser left, endpoint closed after piping, idle, lifetime) are logged at info; peer faults warn. */
export function isOrdinaryEnd(code: ErrorCode | null): boolean {
  return code === null || code === 'SESSION_ERR_BACKEND_CLOSED' || code === 'SESSION_ERR_IDLE_TIMEOUT' || code === 'SESSION_ERR_MAX_LIFETIME';
}
