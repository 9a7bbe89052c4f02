import type { LookupAddress } from 'node:dns';
import { isIP, Socket, connect as netConnect, type LookupFunction } from 'node:net';
import { VncgateError, type ErrorCode } from '../errors.js';
import type { ReadBuffer } from './read-buffer.js';
import type { ResolvedAddress } from './target-check.js';

/** The error code of a socket-level failure toward a console endpoint. */
export function socketErrorCode(err: NodeJS.ErrnoException): ErrorCode {
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

/**
 * A TCP connection to `host:port` within `timeoutMs`, reading into `reads`. With `pinned`, a name
 * is dialled only at those addresses (already checked against the target policy).
 */
export function tcpConnect(
  host: string,
  port: number,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  reads: ReadBuffer,
  pinned: readonly ResolvedAddress[] | null,
): Promise<Socket> {
  // An AbortSignal that has already fired fires no 'abort' event for a listener added now.
  if (signal?.aborted) return Promise.reject(new VncgateError('SESSION_ERR_SHUTDOWN', 'connect aborted'));
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
