import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { VncgateError } from '../errors.js';
import { RfbClientHandshake, SECURITY_CHOICES, type ClientHandshakeInfo } from '../rfb/index.js';
import type { TargetPolicy } from '../target-policy.js';
import { normalizeHost, type BackendSecurity, type ResolvedTarget } from '../target.js';
import { runHandshake } from './backend-handshake.js';
import { tcpConnect } from './backend-tcp.js';
import type { TlsSummary } from './backend-tls.js';
import { ReadBuffer } from './read-buffer.js';
import { allowedAddresses, type LookupAll } from './target-check.js';

export { exchangeInit } from './backend-handshake.js';
export type { TlsSummary } from './backend-tls.js';

/** How vncgate authenticates to one console endpoint (a named profile in the config). */
export type ConnectOptions = {
  host: string;
  port: number;
  security: BackendSecurity;
  /** TCP connect deadline. */
  connectTimeoutMs: number;
  /** Deadline for the RFB handshake (including TLS), from the TCP connection. */
  handshakeTimeoutMs: number;
  signal?: AbortSignal;
  log?: Pick<Logger, 'warn' | 'debug'>;
  /** Called once the TCP connection is up, before the RFB handshake. */
  onConnected?: () => void;
  /**
   * Nova's `internal_access_path`: send `CONNECT <path> HTTP/1.1` and require a 200 before RFB
   * (a hypervisor-side console tunnel). Null or absent for direct VNC.
   */
  tunnelPath?: string | null;
  /**
   * Static targets: resolve the name here, within the connect deadline, refuse (TARGET_ERR_FORBIDDEN)
   * unless the policy allows every address, then dial only those addresses, so the name cannot
   * be re-pointed between the check and the connection. TLS still verifies the original name.
   * Null or absent: no check (Ironic and Nova endpoints come from the control plane).
   */
  policy?: TargetPolicy | null;
  /** Name resolution for the policy check; the system resolver by default (tests inject their own). */
  lookup?: LookupAll;
};

export type BackendConnection = {
  /** The (possibly TLS-wrapped) socket, paused, positioned at ClientInit. */
  socket: Socket;
  info: ClientHandshakeInfo;
  tls: TlsSummary | null;
  /** Server bytes that arrived after SecurityResult (normally none). */
  trailing: Buffer;
  /**
   * The reused receive buffer of a plain-TCP connection (null once TLS took the connection over):
   * whoever consumes `data` calls `reclaim()` when it kept no reference to the chunk.
   */
  reads: ReadBuffer | null;
  remote: { address: string; port: number; family: string };
  timings: { connectMs: number; tlsMs: number | null; handshakeMs: number };
};

/**
 * Opens a connection to a console endpoint and performs the RFB handshake as its client, up to
 * and excluding ClientInit. Every step has a deadline; every failure is a VncgateError with a
 * BACKEND_ERR_* or RFB_ERR_* code. The caller owns the returned socket.
 */
export async function connectBackend(opts: ConnectOptions): Promise<BackendConnection> {
  const host = normalizeHost(opts.host);
  const sec = opts.security;
  // Refuse impossible configurations before touching the network.
  const engine = new RfbClientHandshake({
    security: sec.security,
    ...(sec.password !== undefined ? { password: sec.password } : {}),
    ...(sec.username !== undefined ? { username: sec.username } : {}),
  });
  const anonymousAllowed = sec.tls?.allowAnonymous === true;
  if (!anonymousAllowed && sec.security.some((s) => SECURITY_CHOICES[s].transport === 'tls-anon')) {
    throw new VncgateError(
      'BACKEND_ERR_ANON_TLS_FORBIDDEN',
      'anonymous TLS subtypes are listed but not allowed (set allowAnonymous to accept unauthenticated TLS)',
    );
  }
  if (opts.signal?.aborted) throw new VncgateError('SESSION_ERR_SHUTDOWN', 'aborted before connecting');

  const t0 = performance.now();
  const pinned = opts.policy
    ? await allowedAddresses(host, opts.port, { policy: opts.policy, timeoutMs: opts.connectTimeoutMs, signal: opts.signal, lookup: opts.lookup })
    : null;
  const remainingMs = Math.max(1, Math.round(opts.connectTimeoutMs - (performance.now() - t0)));
  const reads = new ReadBuffer();
  const socket = await tcpConnect(host, opts.port, remainingMs, opts.signal, reads, pinned);
  const connectMs = performance.now() - t0;
  opts.onConnected?.();
  const remote = { address: socket.remoteAddress ?? host, port: socket.remotePort ?? opts.port, family: socket.remoteFamily ?? '' };

  try {
    const t1 = performance.now();
    const hs = await runHandshake(socket, engine, host, opts);
    return {
      socket: hs.socket,
      info: hs.info,
      tls: hs.tls,
      trailing: hs.trailing,
      reads: hs.socket === socket ? reads : null,
      remote,
      timings: { connectMs, tlsMs: hs.tlsMs, handshakeMs: performance.now() - t1 },
    };
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

/** The connection options for an authorized target: where, how to authenticate, what to check first. */
export function targetConnectOptions(target: ResolvedTarget): Pick<ConnectOptions, 'host' | 'port' | 'security' | 'tunnelPath' | 'policy'> {
  return { host: target.host, port: target.port, security: target.security, tunnelPath: target.tunnelPath ?? null, policy: target.policy ?? null };
}

/** connectBackend for an authorized target within the session deadlines (sessions and shared consoles). */
export function connectTarget(
  target: ResolvedTarget,
  limits: { connectTimeoutMs: number; handshakeTimeoutMs: number },
  opts: Pick<ConnectOptions, 'log' | 'onConnected'> & { signal?: AbortSignal | undefined },
): Promise<BackendConnection> {
  return connectBackend({
    ...targetConnectOptions(target),
    connectTimeoutMs: limits.connectTimeoutMs,
    handshakeTimeoutMs: limits.handshakeTimeoutMs,
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.log ? { log: opts.log } : {}),
    ...(opts.onConnected ? { onConnected: opts.onConnected } : {}),
  });
}
