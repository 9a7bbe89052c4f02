import type { LookupAddress } from 'node:dns';
import { isIP, Socket, connect as netConnect, type LookupFunction } from 'node:net';
import { connect as tlsConnect, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { VncgateError, toVncgateError, type ErrorCode } from '../errors.js';
import {
  RfbClientHandshake,
  SECURITY_CHOICES,
  ServerInitReader,
  clientInit,
  type ClientAction,
  type ClientHandshakeInfo,
  type SecurityChoice,
  type ServerInit,
} from '../rfb/index.js';
import type { TargetPolicy } from '../target-policy.js';
import { normalizeHost, type BackendSecurity } from '../target.js';
import { ReadBuffer } from './read-buffer.js';
import { allowedAddresses, type LookupAll, type ResolvedAddress } from './target-check.js';

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

const MAX_TUNNEL_RESPONSE = 4096;

export type TlsSummary = {
  protocol: string | null;
  cipher: string;
  anonymous: boolean;
  peerSubject: string | null;
  peerIssuer: string | null;
  peerValidTo: string | null;
  hostnameVerified: boolean;
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


const TLS_UNTRUSTED_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'INVALID_CA',
]);

function socketErrorCode(err: NodeJS.ErrnoException): ErrorCode {
  switch (err.code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAI_NONAME':
      return 'BACKEND_ERR_DNS';
    case 'ECONNREFUSED':
      return 'BACKEND_ERR_REFUSED';
    case 'ETIMEDOUT':
      return 'BACKEND_ERR_TIMEOUT';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'BACKEND_ERR_CLOSED';
    default:
      return 'BACKEND_ERR_UNREACHABLE';
  }
}

function tlsErrorCode(err: NodeJS.ErrnoException): ErrorCode {
  if (err.code === 'ERR_TLS_CERT_ALTNAME_INVALID') return 'BACKEND_ERR_TLS_HOSTNAME';
  if (err.code && TLS_UNTRUSTED_CODES.has(err.code)) return 'BACKEND_ERR_TLS_UNTRUSTED';
  return 'BACKEND_ERR_TLS';
}

function formatDn(dn: PeerCertificate['subject'] | undefined): string | null {
  if (!dn) return null;
  const parts = Object.entries(dn).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`);
  return parts.length > 0 ? parts.join(', ') : null;
}

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

/** A `lookup` for net.connect that answers with addresses already resolved and checked. */
function pinnedLookup(addresses: readonly ResolvedAddress[]): LookupFunction {
  return (hostname, options, callback) => {
    const list = addresses.filter((a) => !options.family || a.family === options.family);
    const first = list[0];
    if (first === undefined) {
      const err: NodeJS.ErrnoException = Object.assign(new Error(`no checked address of ${hostname} in family ${options.family}`), { code: 'ENOTFOUND' });
      callback(err, '', 0);
    } else if (options.all) {
      (callback as unknown as (err: null, addresses: LookupAddress[]) => void)(null, list.map((a) => ({ address: a.address, family: a.family })));
    } else {
      callback(null, first.address, first.family);
    }
  };
}

function tcpConnect(
  host: string,
  port: number,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  reads: ReadBuffer,
  pinned: readonly ResolvedAddress[] | null,
): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    // autoSelectFamily: try every resolved address (IPv6 and IPv4) instead of only the first.
    // onread: reads land in `reads` (see read-buffer.ts) and are re-emitted as ordinary `data`
    // events, each chunk lent to its listener. pause()/resume() stop and start reading as usual.
    const socket: Socket = netConnect({
      host,
      port,
      noDelay: true,
      autoSelectFamily: isIP(host) === 0,
      ...(pinned !== null && isIP(host) === 0 ? { lookup: pinnedLookup(pinned) } : {}),
      onread: {
        buffer: () => reads.next(),
        callback: (n: number, buf: Uint8Array): boolean => {
          reads.lend(n);
          socket.emit('data', (buf as Buffer).subarray(0, n));
          return true; // keep reading unless a listener paused the socket (pause() stops reads itself)
        },
      },
    });
    const done = (err: VncgateError | null): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('connect', onConnect);
      socket.off('error', onError);
      if (err) {
        socket.destroy();
        reject(err);
      } else {
        resolve(socket);
      }
    };
    const onConnect = (): void => done(null);
    const onError = (err: NodeJS.ErrnoException): void =>
      done(new VncgateError(socketErrorCode(err), `connect to ${host}:${port} failed: ${err.code ?? err.message}`, { cause: err }));
    const onAbort = (): void => done(new VncgateError('SESSION_ERR_SHUTDOWN', 'connect aborted'));
    const timer = setTimeout(
      () => done(new VncgateError('BACKEND_ERR_TIMEOUT', `connect to ${host}:${port} timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.once('connect', onConnect);
    socket.once('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

type HandshakeOutcome = {
  socket: Socket;
  info: ClientHandshakeInfo;
  tls: TlsSummary | null;
  trailing: Buffer;
  tlsMs: number | null;
};

function runHandshake(raw: Socket, engine: RfbClientHandshake, host: string, opts: ConnectOptions): Promise<HandshakeOutcome> {
  return new Promise<HandshakeOutcome>((resolve, reject) => {
    let current: Socket = raw;
    let tlsSummary: TlsSummary | null = null;
    let tlsMs: number | null = null;
    let settled = false;

    const cleanup = (): void => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      detach(current);
    };
    const fail = (err: VncgateError): void => {
      if (settled) return;
      settled = true;
      cleanup();
      current.destroy();
      if (current !== raw) raw.destroy();
      reject(err);
    };
    let tunnel: Buffer | null = opts.tunnelPath ? Buffer.alloc(0) : null;
    const onData = (chunk: Buffer): void => {
      if (tunnel === null) {
        apply(engine.receive(chunk));
        return;
      }
      // Waiting for the tunnel's HTTP response; everything after its blank line is RFB.
      tunnel = Buffer.concat([tunnel, chunk]);
      const end = tunnel.indexOf('\r\n\r\n');
      if (end === -1) {
        if (tunnel.length > MAX_TUNNEL_RESPONSE) fail(new VncgateError('BACKEND_ERR_TUNNEL', 'tunnel response headers too long'));
        return;
      }
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(tunnel.subarray(0, end).toString('latin1'));
      if (!status || status[1] !== '200') {
        fail(new VncgateError('BACKEND_ERR_TUNNEL', `tunnel refused: ${tunnel.subarray(0, Math.min(end, 80)).toString('latin1').split('\r\n')[0]}`));
        return;
      }
      const rest = tunnel.subarray(end + 4);
      tunnel = null;
      if (rest.length > 0) apply(engine.receive(rest));
    };
    const onError = (err: NodeJS.ErrnoException): void =>
      fail(new VncgateError(socketErrorCode(err), `console endpoint connection error: ${err.code ?? err.message}`, { cause: err }));
    const onClose = (): void =>
      fail(new VncgateError('BACKEND_ERR_CLOSED', `console endpoint closed the connection during the handshake (state ${engine.state})`));
    const onAbort = (): void => fail(new VncgateError('SESSION_ERR_SHUTDOWN', 'handshake aborted'));
    const attach = (s: Socket): void => {
      s.on('data', onData);
      s.on('error', onError);
      s.on('close', onClose);
    };
    function detach(s: Socket): void {
      s.off('data', onData);
      s.off('error', onError);
      s.off('close', onClose);
    }

    const apply = (actions: ClientAction[]): void => {
      for (const a of actions) {
        if (settled) return;
        switch (a.type) {
          case 'send':
            current.write(a.bytes);
            break;
          case 'failed':
            fail(a.error);
            return;
          case 'startTls':
            upgrade(a.transport);
            return;
          case 'established':
            settled = true;
            cleanup();
            current.pause();
            resolve({ socket: current, info: a.info, tls: tlsSummary, trailing: a.trailing, tlsMs });
            return;
        }
      }
    };

    const upgrade = (transport: 'tls-anon' | 'tls-x509'): void => {
      detach(raw);
      const t = performance.now();
      const cfg = opts.security.tls ?? {};
      const anonymous = transport === 'tls-anon';
      const verifyHostname = !anonymous && cfg.verifyHostname !== false;
      if (!anonymous && cfg.verifyHostname === false) {
        opts.log?.warn({ backend: `${host}:${opts.port}` }, 'TLS hostname verification disabled for this backend by configuration');
      }
      const name = cfg.servername ?? host;
      let tlsSocket: TLSSocket;
      try {
        tlsSocket = tlsConnect({
          socket: raw,
          host: name,
          // SNI must be a DNS name, never an IP literal (RFC 6066 §3).
          ...(isIP(name) === 0 ? { servername: name } : {}),
          minVersion: cfg.minVersion ?? 'TLSv1.2',
          ...(anonymous
            ? {
                // Anonymous DH/ECDH suites exist only up to TLS 1.2 and only at OpenSSL security
                // level 0; there is no certificate to verify. Only reached when explicitly allowed.
                ciphers: 'aNULL:!eNULL:@SECLEVEL=0',
                maxVersion: 'TLSv1.2' as const,
                rejectUnauthorized: false,
              }
            : {
                rejectUnauthorized: true,
                ...(cfg.ca !== undefined ? { ca: cfg.ca } : {}),
                ...(cfg.cert !== undefined && cfg.key !== undefined ? { cert: cfg.cert, key: cfg.key } : {}),
                ...(verifyHostname ? {} : { checkServerIdentity: () => undefined }),
              }),
        });
      } catch (err) {
        fail(new VncgateError('BACKEND_ERR_TLS', `TLS setup failed: ${(err as Error).message}`, { cause: err }));
        return;
      }
      current = tlsSocket;
      const onTlsError = (err: NodeJS.ErrnoException): void => {
        tlsSocket.off('secureConnect', onSecure);
        const code = tlsErrorCode(err);
        fail(new VncgateError(code, `TLS with the console endpoint failed: ${err.code ?? ''} ${err.message}`.trim(), { cause: err }));
      };
      const onSecure = (): void => {
        tlsSocket.off('error', onTlsError);
        tlsMs = performance.now() - t;
        const peer = anonymous ? null : tlsSocket.getPeerCertificate();
        tlsSummary = {
          protocol: tlsSocket.getProtocol(),
          cipher: tlsSocket.getCipher()?.name ?? 'unknown',
          anonymous,
          peerSubject: peer ? formatDn(peer.subject) : null,
          peerIssuer: peer ? formatDn(peer.issuer) : null,
          peerValidTo: peer?.valid_to ?? null,
          hostnameVerified: verifyHostname,
        };
        attach(tlsSocket);
        try {
          apply(engine.tlsEstablished());
        } catch (err) {
          fail(toVncgateError(err));
        }
      };
      tlsSocket.once('error', onTlsError);
      tlsSocket.once('secureConnect', onSecure);
      tlsSocket.on('close', () => fail(new VncgateError('BACKEND_ERR_CLOSED', 'console endpoint closed the connection during TLS')));
    };

    const timer = setTimeout(
      () => fail(new VncgateError('BACKEND_ERR_TIMEOUT', `RFB handshake not finished after ${opts.handshakeTimeoutMs} ms (state ${engine.state})`)),
      opts.handshakeTimeoutMs,
    );
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    attach(raw);
    if (opts.tunnelPath) {
      if (/[\r\n ]/.test(opts.tunnelPath)) {
        fail(new VncgateError('BACKEND_ERR_TUNNEL', 'tunnel path contains whitespace or line breaks'));
        return;
      }
      raw.write(`CONNECT ${opts.tunnelPath} HTTP/1.1\r\n\r\n`);
    }
  });
}

/**
 * Sends ClientInit (unless `shared` is null: the caller forwards the browser's) and reads
 * ServerInit on an established connection, within a deadline; leaves the socket paused. Used by
 * `vncgate probe` and by every session.
 */
export function exchangeInit(
  conn: BackendConnection,
  shared: boolean | null,
  timeoutMs: number,
): Promise<{ init: ServerInit; raw: Buffer; trailing: Buffer; ms: number }> {
  const { socket } = conn;
  const reader = new ServerInitReader();
  const t = performance.now();
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (err: VncgateError | null, result?: { init: ServerInit; raw: Buffer; trailing: Buffer }): void => {
      done = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onError);
      socket.pause();
      if (err) reject(err);
      else resolve({ ...result!, ms: performance.now() - t });
    };
    const handle = (chunk: Buffer): void => {
      const r = reader.receive(chunk);
      if (r.type === 'done') finish(null, { init: r.init, raw: r.raw, trailing: r.trailing });
      else if (r.type === 'failed') finish(r.error);
    };
    const onData = (chunk: Buffer): void => handle(chunk);
    const onClose = (): void => finish(new VncgateError('BACKEND_ERR_CLOSED', 'console endpoint closed the connection before ServerInit'));
    const onError = (err: NodeJS.ErrnoException): void =>
      finish(new VncgateError(socketErrorCode(err), `console endpoint connection error: ${err.code ?? err.message}`, { cause: err }));
    const timer = setTimeout(() => finish(new VncgateError('BACKEND_ERR_TIMEOUT', `no ServerInit within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', onError);
    if (shared !== null) socket.write(clientInit(shared));
    if (conn.trailing.length > 0) handle(conn.trailing);
    if (!done) socket.resume();
  });
}
