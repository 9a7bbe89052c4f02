import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { VncgateError, toVncgateError } from '../errors.js';
import { RfbClientHandshake, ServerInitReader, clientInit, type ClientAction, type ClientHandshakeInfo, type ServerInit } from '../rfb/index.js';
import type { BackendSecurity } from '../target.js';
import { socketErrorCode } from './backend-tcp.js';
import { startBackendTls, type TlsSummary } from './backend-tls.js';

/** What the RFB handshake with a console endpoint needs, once its TCP connection is up. */
export type HandshakeOptions = {
  port: number;
  security: BackendSecurity;
  /** Deadline for the RFB handshake (including TLS), from the TCP connection. */
  handshakeTimeoutMs: number;
  signal?: AbortSignal | undefined;
  log?: Pick<Logger, 'warn' | 'debug'> | undefined;
  /** Nova's `internal_access_path`: an HTTP CONNECT tunnel before RFB (see ConnectOptions). */
  tunnelPath?: string | null | undefined;
};

export type HandshakeOutcome = {
  socket: Socket;
  info: ClientHandshakeInfo;
  tls: TlsSummary | null;
  trailing: Buffer;
  tlsMs: number | null;
};

const MAX_TUNNEL_RESPONSE = 4096;

/**
 * The tunnel's HTTP response so far: 'more' until its blank line, then the RFB bytes after it, or
 * the refusal. Bounded to MAX_TUNNEL_RESPONSE bytes.
 */
function readTunnelResponse(buf: Buffer): { state: 'more' } | { state: 'open'; rest: Buffer } | { state: 'failed'; error: VncgateError } {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1) {
    return buf.length > MAX_TUNNEL_RESPONSE ? { state: 'failed', error: new VncgateError('BACKEND_ERR_TUNNEL', 'tunnel response headers too long') } : { state: 'more' };
  }
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(buf.subarray(0, end).toString('latin1'));
  if (!status || status[1] !== '200') {
    return { state: 'failed', error: new VncgateError('BACKEND_ERR_TUNNEL', `tunnel refused: ${buf.subarray(0, Math.min(end, 80)).toString('latin1').split('\r\n')[0]}`) };
  }
  return { state: 'open', rest: buf.subarray(end + 4) };
}

/**
 * Drives `engine` (the sans-I/O RFB client) over `raw` up to and excluding ClientInit: the tunnel
 * first when there is one, TLS when the engine asks for it, every step within the handshake
 * deadline. Resolves with the socket to go on with (the TLS one after an upgrade), paused.
 */
export function runHandshake(raw: Socket, engine: RfbClientHandshake, host: string, opts: HandshakeOptions): Promise<HandshakeOutcome> {
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
      const r = readTunnelResponse(tunnel);
      if (r.state === 'more') return;
      if (r.state === 'failed') {
        fail(r.error);
        return;
      }
      tunnel = null;
      if (r.rest.length > 0) apply(engine.receive(r.rest));
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
      const tlsSocket = startBackendTls(raw, transport, host, opts.port, opts.security.tls ?? {}, opts.log, {
        fail,
        secure: (summary, ms) => {
          tlsSummary = summary;
          tlsMs = ms;
          attach(current);
          try {
            apply(engine.tlsEstablished());
          } catch (err) {
            fail(toVncgateError(err));
          }
        },
      });
      if (tlsSocket !== null) current = tlsSocket;
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
  conn: { socket: Socket; trailing: Buffer },
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
