/**
 * What a console link resolves to, shared by every layer: the target a token names, where that
 * target actually is once resolved, how to authenticate to it, and the authorization step that
 * gets from one to the other. Types only (and one pure helper), at the bottom of the layout so
 * that proxy/, ironic/, nova/, tokens/ and config/ all import it from below.
 */
import type { ClientMessagePolicy, SecurityChoice } from './rfb/index.js';
import type { TargetPolicy } from './target-policy.js';

/** A fixed console endpoint, e.g. a BMC's VNC port, with an optional backend profile name. */
export interface StaticTarget {
  readonly kind: 'static';
  readonly host: string;
  readonly port: number;
  /** Name of a backend profile in the configuration (credentials, TLS policy); default profile if absent. */
  readonly profile?: string;
}

/** An Ironic node (UUID or logical name) whose console endpoint is looked up per connection. */
export interface NodeTarget {
  readonly kind: 'node';
  readonly node: string;
}

/** What a console token opens. Discriminated on `kind`. */
export type ConsoleTarget = StaticTarget | NodeTarget;

export type BackendSecurity = {
  /** Preference order; intersected with what the server offers. */
  security: readonly SecurityChoice[];
  password?: Uint8Array;
  username?: string;
  tls?: BackendTls;
};

export type BackendTls = {
  /** PEM CA bundle to trust; the system store when absent. */
  ca?: string | Buffer;
  /** PEM client certificate and key, presented for X509 subtypes when set. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Check the certificate names the host we dialled (DNS name or IP SAN). Default true. */
  verifyHostname?: boolean;
  /** Name to verify (and send as SNI) instead of the dialled host. */
  servername?: string;
  /** Permit the anonymous (unauthenticated Diffie-Hellman) TLSNone/TLSVnc/TLSPlain subtypes. */
  allowAnonymous?: boolean;
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
};

/** Where a token's target actually is, and how to authenticate to it. */
export type ResolvedTarget = {
  host: string;
  port: number;
  security: BackendSecurity;
  profile: string;
  label: string;
  /** Nova's internal_access_path: an HTTP CONNECT tunnel before RFB. */
  tunnelPath?: string | null;
  /** Close the session at this time (Nova's enforce_session_timeout). */
  expiresAtMs?: number;
  /** The Nova instance whose console this is (audit events). */
  instance?: string;
  /** Connect only where this allows, checked after DNS resolution (static targets; see backends.allowedTargets). */
  policy?: TargetPolicy;
};

export interface TargetResolver {
  resolve(target: ConsoleTarget, signal: AbortSignal): Promise<ResolvedTarget>;
}

/** Who minted a token: the token API on behalf of a JWT's `sub`/`iss`, or `vncgate token create`. */
export interface TokenIssuer {
  readonly via: 'api' | 'cli';
  /** The bearer JWT's `sub` (API only), at most MAX_ISSUER_CHARS. */
  readonly sub?: string;
  /** The bearer JWT's `iss` (API only), at most MAX_ISSUER_CHARS. */
  readonly iss?: string;
}

/**
 * What a reconnect grant minted for a session carries over (proxy/reconnect.ts): the link's
 * target, to be resolved again; reconnects so far; the end of the console's allowed lifetime;
 * the session this one reconnects (audit). Absent: the session gets no grant (Nova links).
 */
export type Reconnectable = {
  readonly target: ConsoleTarget;
  readonly reconnects: number;
  readonly notAfterMs: number | null;
  readonly reconnectOf?: string;
  /** The one-session lease the console holds (Ironic's `one-session` mode), taken again by a reconnect. */
  readonly lease?: string;
};

/**
 * What authorizing a session yields: where to connect, what to undo when it ends, who issued its
 * token (audit), what the browser may do (its profile's policy, narrowed by its token), whether
 * its token asked for a recording, and whether its viewer takes control of a shared console.
 */
export type Authorized = {
  target: ResolvedTarget;
  release?: () => void;
  issuedBy?: TokenIssuer | undefined;
  policy?: ClientMessagePolicy;
  /** What a reconnect grant may carry over; absent: the session gets none. */
  reconnectable?: Reconnectable;
  /** The token asks for the session to be recorded (on top of its profile's `record`, never instead). */
  record?: boolean;
  /** On a shared console, this viewer takes control on joining (token `control`). */
  takeControl?: boolean;
};

/**
 * Decides whether a session may proceed and where it goes (consume a vncgate token and resolve
 * its target, or check an Ironic console token). Built per request by the server.
 */
export type Authorize = (signal: AbortSignal, sessionId: string) => Promise<Authorized>;

/**
 * An authorization started before its session exists: the server starts it while it is still
 * answering the WebSocket upgrade, so the token store's round trip runs alongside that work. The
 * session it is handed to takes over its id and its abort controller.
 */
export type StartedAuthorization = { readonly sessionId: string; readonly abort: AbortController; readonly result: Promise<Authorized> };

/** Strips the brackets some providers put around IPv6 literals ("[fd00::1]"). */
export function normalizeHost(host: string): string {
  const m = /^\[(.*)\]$/.exec(host.trim());
  return m?.[1] ?? host.trim();
}
