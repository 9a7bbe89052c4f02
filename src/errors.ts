/**
 * Every failure vncgate reports carries one of these stable codes. The code alone decides what a
 * browser, an HTTP client or a script sees (`reason`, `httpStatus`, `wsClose`); the detailed
 * message and the underlying `cause` go to the log only. Tests assert codes, never message text.
 *
 * `reason` is what noVNC shows the person at the console (sent as an RFB 3.8 SecurityResult failure
 * reason), so it is short, plain and free of internals. It is ASCII only: noVNC decodes RFB reason
 * strings as Latin-1 (core/websock.js rQshiftStr), so anything else would show as mojibake. README "Error codes" documents each code
 * with what the operator does about it.
 */
export const ERROR_CODES = {
  // RFB peer behaviour (src/rfb). "Backend" is the console endpoint, "browser" the noVNC client.
  RFB_ERR_NOT_RFB: { httpStatus: 502, wsClose: 1011, reason: 'The console endpoint did not answer as a VNC server' },
  RFB_ERR_UNSUPPORTED_VERSION: { httpStatus: 502, wsClose: 1011, reason: 'The console endpoint speaks an unsupported VNC protocol version' },
  RFB_ERR_PROTOCOL: { httpStatus: 502, wsClose: 1011, reason: 'The console endpoint sent a malformed VNC message' },
  RFB_ERR_LIMIT: { httpStatus: 502, wsClose: 1011, reason: 'The console endpoint sent an oversized VNC message' },
  RFB_ERR_SERVER_REFUSED: { httpStatus: 502, wsClose: 1011, reason: 'The console endpoint refused the connection' },
  RFB_ERR_NO_COMMON_SECURITY: { httpStatus: 502, wsClose: 1011, reason: 'The console endpoint offers no security type this proxy is configured for' },
  RFB_ERR_AUTH_FAILED: { httpStatus: 502, wsClose: 1011, reason: 'The console endpoint refused authentication' },
  RFB_ERR_VENCRYPT_VERSION: { httpStatus: 502, wsClose: 1011, reason: 'The console endpoint speaks an unsupported VeNCrypt version' },
  RFB_ERR_VENCRYPT_REJECTED: { httpStatus: 502, wsClose: 1011, reason: 'The console endpoint rejected the requested VeNCrypt security type' },
  RFB_ERR_CREDENTIALS_MISSING: { httpStatus: 500, wsClose: 1011, reason: 'The console endpoint needs credentials that are not configured' },
  RFB_ERR_CLIENT_PROTOCOL: { httpStatus: 400, wsClose: 1002, reason: 'The VNC client sent a malformed or unsupported VNC message' },
  RFB_ERR_CLIENT_AUTH: { httpStatus: 401, wsClose: 4401, reason: 'Authentication failed' },

  // Reaching the console endpoint (src/proxy/backend-connector).
  BACKEND_ERR_DNS: { httpStatus: 502, wsClose: 1011, reason: 'The console endpoint address could not be resolved' },
  BACKEND_ERR_REFUSED: { httpStatus: 502, wsClose: 1011, reason: 'The console endpoint is unreachable' },
  BACKEND_ERR_UNREACHABLE: { httpStatus: 502, wsClose: 1011, reason: 'The console endpoint is unreachable' },
  BACKEND_ERR_TIMEOUT: { httpStatus: 504, wsClose: 1011, reason: 'The console endpoint did not answer in time' },
  BACKEND_ERR_CLOSED: { httpStatus: 502, wsClose: 1011, reason: 'The console endpoint closed the connection' },
  BACKEND_ERR_TLS_UNTRUSTED: { httpStatus: 502, wsClose: 1011, reason: 'The console endpoint presented an untrusted certificate' },
  BACKEND_ERR_TLS_HOSTNAME: { httpStatus: 502, wsClose: 1011, reason: 'The console endpoint certificate does not match its address' },
  BACKEND_ERR_TLS: { httpStatus: 502, wsClose: 1011, reason: 'Secure connection to the console endpoint failed' },
  BACKEND_ERR_ANON_TLS_FORBIDDEN: { httpStatus: 502, wsClose: 1011, reason: 'The console endpoint only offers unauthenticated TLS, which is not allowed' },

  // The target policy (backends.allowedTargets, src/target-policy), at issue and at connect time.
  TARGET_ERR_FORBIDDEN: { httpStatus: 403, wsClose: 4403, reason: "This console address is not allowed by the console service's policy" },

  // Keystone (src/openstack), when it issues the token for Ironic or Nova. The code and the reason
  // name Keystone whichever console was being opened: it is the service that failed, and what the
  // user repeats to support should point there. Ironic's or Nova's own 401/403 stay *_ERR_AUTH.
  KEYSTONE_ERR_AUTH: { httpStatus: 502, wsClose: 1011, reason: 'The console service could not authenticate to the identity service (Keystone)' },
  KEYSTONE_ERR_UNREACHABLE: { httpStatus: 502, wsClose: 1011, reason: 'The identity service (Keystone) is unreachable - try again shortly' },
  KEYSTONE_ERR_TIMEOUT: { httpStatus: 504, wsClose: 1011, reason: 'The identity service (Keystone) did not answer in time - try again shortly' },
  KEYSTONE_ERR_SERVER: { httpStatus: 502, wsClose: 1011, reason: 'The identity service (Keystone) failed - try again shortly' },
  KEYSTONE_ERR_BAD_RESPONSE: { httpStatus: 502, wsClose: 1011, reason: 'The identity service (Keystone) sent an unexpected answer' },
  KEYSTONE_ERR_NO_ENDPOINT: { httpStatus: 502, wsClose: 1011, reason: 'The identity service (Keystone) lists no address for the service this console needs' },

  // The Ironic API (src/ironic). Reasons name no node; the resolver adds the node to the reason.
  IRONIC_ERR_NOT_CONFIGURED: { httpStatus: 500, wsClose: 1011, reason: 'Bare-metal consoles are not configured on this service' },
  IRONIC_ERR_UNREACHABLE: { httpStatus: 502, wsClose: 1011, reason: 'The bare-metal service is unreachable - try again shortly' },
  IRONIC_ERR_TIMEOUT: { httpStatus: 504, wsClose: 1011, reason: 'The bare-metal service did not answer in time - try again shortly' },
  IRONIC_ERR_SERVER: { httpStatus: 502, wsClose: 1011, reason: 'The bare-metal service failed - try again shortly' },
  IRONIC_ERR_BAD_RESPONSE: { httpStatus: 502, wsClose: 1011, reason: 'The bare-metal service sent an unexpected answer' },
  IRONIC_ERR_AUTH: { httpStatus: 502, wsClose: 1011, reason: 'The console service could not authenticate to the bare-metal service' },
  IRONIC_ERR_NODE_NOT_FOUND: { httpStatus: 404, wsClose: 4404, reason: 'This bare-metal node does not exist' },
  IRONIC_ERR_CONSOLE_DISABLED: { httpStatus: 409, wsClose: 4409, reason: "This node's console is not enabled" },
  IRONIC_ERR_CONSOLE_TYPE: { httpStatus: 409, wsClose: 4409, reason: "This node's console is not a graphical (VNC) console" },
  IRONIC_ERR_ENABLE_FAILED: { httpStatus: 504, wsClose: 1011, reason: "This node's console could not be enabled" },
  IRONIC_ERR_NO_ENDPOINT: { httpStatus: 502, wsClose: 1011, reason: "This node's console has no VNC address yet - try again shortly" },

  // Nova console tokens (src/nova).
  NOVA_ERR_UNREACHABLE: { httpStatus: 502, wsClose: 1011, reason: 'The compute service is unreachable - try again shortly' },
  NOVA_ERR_TIMEOUT: { httpStatus: 504, wsClose: 1011, reason: 'The compute service did not answer in time - try again shortly' },
  NOVA_ERR_SERVER: { httpStatus: 502, wsClose: 1011, reason: 'The compute service failed - try again shortly' },
  NOVA_ERR_BAD_RESPONSE: { httpStatus: 502, wsClose: 1011, reason: 'The compute service sent an unexpected answer' },
  NOVA_ERR_AUTH: { httpStatus: 502, wsClose: 1011, reason: 'The console service could not authenticate to the compute service' },
  NOVA_ERR_DB: { httpStatus: 503, wsClose: 1013, reason: 'The console service cannot check this link right now - try again shortly' },
  NOVA_ERR_CONSOLE_TYPE: { httpStatus: 409, wsClose: 4409, reason: 'This console link is not for a noVNC console' },
  BACKEND_ERR_TUNNEL: { httpStatus: 502, wsClose: 1011, reason: 'The console endpoint refused the tunnel to the console' },

  // Console tokens (src/tokens).
  TOKEN_ERR_MISSING: { httpStatus: 401, wsClose: 4401, reason: 'This console link has no token - request a new one' },
  TOKEN_ERR_INVALID: { httpStatus: 403, wsClose: 4403, reason: 'This console link has expired or was already used - request a new one' },
  TOKEN_ERR_STORE_UNAVAILABLE: { httpStatus: 503, wsClose: 1013, reason: 'The console service is temporarily unavailable - try again shortly' },
  TOKEN_ERR_RATE_LIMITED: { httpStatus: 429, wsClose: 4429, reason: 'Too many invalid console links from your address - wait a minute and try again' },

  // Requests to vncgate itself.
  HTTP_ERR_ORIGIN: { httpStatus: 403, wsClose: 4403, reason: 'This console cannot be opened from this page' },
  HTTP_ERR_UNAUTHORIZED: { httpStatus: 401, wsClose: 4401, reason: 'Authentication required' },
  HTTP_ERR_BAD_REQUEST: { httpStatus: 400, wsClose: 1008, reason: 'Bad request' },
  HTTP_ERR_NOT_FOUND: { httpStatus: 404, wsClose: 1008, reason: 'Not found' },
  HTTP_ERR_METHOD_NOT_ALLOWED: { httpStatus: 405, wsClose: 1008, reason: 'Method not allowed' },
  HTTP_ERR_TOO_LARGE: { httpStatus: 413, wsClose: 1009, reason: 'Request too large' },
  HTTP_ERR_HEADERS_TOO_LARGE: { httpStatus: 431, wsClose: 1009, reason: 'Request headers too large' },
  HTTP_ERR_TIMEOUT: { httpStatus: 408, wsClose: 1008, reason: 'Request not completed in time' },
  HTTP_ERR_UNSUPPORTED_MEDIA_TYPE: { httpStatus: 415, wsClose: 1008, reason: 'Unsupported media type' },

  // Session lifecycle (src/proxy/session).
  SESSION_ERR_HANDSHAKE_TIMEOUT: { httpStatus: 504, wsClose: 1011, reason: 'The console endpoint did not complete the VNC handshake in time' },
  SESSION_ERR_BROWSER_TIMEOUT: { httpStatus: 408, wsClose: 4408, reason: 'The VNC client did not complete the handshake in time' },
  SESSION_ERR_IDLE_TIMEOUT: { httpStatus: 408, wsClose: 4000, reason: 'The console was idle for too long' },
  SESSION_ERR_MAX_LIFETIME: { httpStatus: 408, wsClose: 4001, reason: 'The console session reached its maximum duration' },
  SESSION_ERR_HEARTBEAT: { httpStatus: 408, wsClose: 1001, reason: 'The browser stopped answering' },
  SESSION_ERR_CAPACITY: { httpStatus: 503, wsClose: 1013, reason: 'The console service is at capacity - try again shortly' },
  SESSION_ERR_BACKEND_CLOSED: { httpStatus: 502, wsClose: 1000, reason: 'The console endpoint closed the connection' },
  SESSION_ERR_BROWSER_PROTOCOL: { httpStatus: 400, wsClose: 1003, reason: 'The browser sent data the console cannot accept' },
  SESSION_ERR_BROWSER_TOO_LARGE: { httpStatus: 413, wsClose: 1009, reason: 'The browser sent a message larger than this console accepts' },
  SESSION_ERR_BROWSER_FLOOD: { httpStatus: 429, wsClose: 1008, reason: 'The browser sent pings faster than it read the answers' },
  SESSION_ERR_TARGET_UNSUPPORTED: { httpStatus: 500, wsClose: 1011, reason: 'This kind of console is not configured on this service' },
  SESSION_ERR_BUSY: { httpStatus: 409, wsClose: 4409, reason: 'Another console session is open for this machine - close it first' },
  SESSION_ERR_TARGET_BUSY: { httpStatus: 409, wsClose: 4409, reason: 'This console already has the maximum number of viewers - try again later' },
  SESSION_ERR_SHUTDOWN: { httpStatus: 503, wsClose: 1001, reason: 'The console service is restarting' },
  // Shared consoles (src/proxy/share).
  SESSION_ERR_SHARED_SLOW: { httpStatus: 429, wsClose: 4002, reason: 'This browser could not keep up with the shared console' },
  SESSION_ERR_SHARED_PIXEL_FORMAT: { httpStatus: 400, wsClose: 4003, reason: 'This viewer asked for a pixel format other than the shared console uses' },

  // Reconnect grants (src/proxy/reconnect.ts).
  RECONNECT_ERR_INVALID: { httpStatus: 403, wsClose: 4403, reason: 'This console cannot be reopened automatically - open it again from your cloud' },
  SESSION_ERR_RECONNECTED: { httpStatus: 409, wsClose: 4409, reason: 'This console was reopened by a reconnect of the same page' },
  // Recordings (src/record, src/proxy/recording-api.ts).
  RECORDING_ERR_DISABLED: { httpStatus: 404, wsClose: 1008, reason: 'Recordings are not enabled on this service' },
  RECORDING_ERR_NOT_FOUND: { httpStatus: 404, wsClose: 1008, reason: 'No such recording' },
  RECORDING_ERR_LINK_INVALID: { httpStatus: 401, wsClose: 4401, reason: 'This playback link has expired or was already used - request a new one' },
  RECORDING_ERR_TOO_MANY_LINKS: { httpStatus: 429, wsClose: 1008, reason: 'Too many playback links outstanding - try again later' },
  // A recording stopped early (disk error, full queue, stalled disk); the session went on. Log and audit only.
  RECORDING_ERR_FAILED: { httpStatus: 500, wsClose: 1011, reason: 'The recording failed' },

  // Configuration (src/config).
  CONFIG_ERR_INVALID: { httpStatus: 500, wsClose: 1011, reason: 'The console service is misconfigured' },
  CONFIG_ERR_FILE: { httpStatus: 500, wsClose: 1011, reason: 'The console service is misconfigured' },
  CONFIG_ERR_LISTEN: { httpStatus: 500, wsClose: 1011, reason: 'The console service is misconfigured' },
  // A certificate reload (SIGHUP, file change) refused; the previous certificate stays. Log only.
  CONFIG_ERR_TLS_RELOAD: { httpStatus: 500, wsClose: 1011, reason: 'The console service is misconfigured' },

  INTERNAL_ERR: { httpStatus: 500, wsClose: 1011, reason: 'Internal error in the console service' },
} as const satisfies Record<string, { httpStatus: number; wsClose: number; reason: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class VncgateError extends Error {
  override readonly name = 'VncgateError';
  readonly code: ErrorCode;
  /** Extra machine-readable facts for logs and the probe's JSON (never secrets). */
  readonly details: Readonly<Record<string, unknown>> | undefined;
  readonly #publicReason: string | undefined;

  /**
   * `publicReason` replaces the code's reason when our own code knows a more helpful one (naming
   * the node, say). It is made printable ASCII and bounded here; it must never carry secrets.
   */
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown>; publicReason?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options?.details;
    this.#publicReason = options?.publicReason === undefined ? undefined : toAsciiReason(options.publicReason);
  }

  /** The short text a browser user may see. */
  get publicReason(): string {
    return this.#publicReason ?? ERROR_CODES[this.code].reason;
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code].httpStatus;
  }

  get wsClose(): number {
    return ERROR_CODES[this.code].wsClose;
  }
}

/** Printable ASCII, at most 200 characters: what a reason string may carry to noVNC. */
export function toAsciiReason(s: string): string {
  const ascii = s.replace(/[\u2013\u2014]/g, '-').replace(/[^\x20-\x7e]/g, '?');
  return ascii.length > 200 ? `${ascii.slice(0, 197)}...` : ascii;
}

export function isVncgateError(value: unknown): value is VncgateError {
  return value instanceof VncgateError;
}

/** Wraps anything thrown into a VncgateError, keeping the original as `cause`. */
export function toVncgateError(value: unknown, fallback: ErrorCode = 'INTERNAL_ERR'): VncgateError {
  if (value instanceof VncgateError) return value;
  const message = value instanceof Error ? value.message : String(value);
  return new VncgateError(fallback, message, { cause: value });
}
