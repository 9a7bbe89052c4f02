import { connect as netConnect, type Socket } from 'node:net';
import { LoadError } from './load-error.js';

/** How a connection ended: an orderly close (with the WebSocket close code, if any) or an error. */
export type ConnEnd = { kind: 'closed'; code: number | null; reason: string } | { kind: 'error'; error: LoadError };

export type ConnHandlers = {
  /** Bytes of the RFB stream, in order; the buffer may be reused after the call returns only if copied. */
  data(chunk: Buffer): void;
  /** Called once. */
  end(how: ConnEnd): void;
};

/** A byte stream to an RFB peer: direct TCP to a VNC server, or a WebSocket through a proxy. */
export interface Conn {
  /** Sends one RFB message (or several). */
  write(bytes: Buffer): void;
  /** Orderly close: a WebSocket close handshake (1000) or a FIN; `end` follows. */
  close(): void;
  /** Immediate teardown; `end` follows. */
  destroy(): void;
}

export type Connect = (handlers: ConnHandlers) => Promise<Conn>;

/** The error code of a socket error ("ECONNREFUSED"), for grouping. */
export function socketErrorCode(err: Error): string {
  return (err as NodeJS.ErrnoException).code ?? err.message;
}

/** Plain TCP straight to the VNC server: the baseline every proxied path is compared with. */
export function tcpConnector(host: string, port: number, opts: { timeoutMs: number }): Connect {
  return (handlers) =>
    new Promise<Conn>((resolve, reject) => {
      const socket: Socket = netConnect({ host, port, noDelay: true });
      let connected = false;
      let ended = false;
      const end = (how: ConnEnd): void => {
        if (ended) return;
        ended = true;
        handlers.end(how);
      };
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new LoadError('timeout-connect', `no TCP connection to ${host}:${port} within ${opts.timeoutMs} ms`));
      }, opts.timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        connected = true;
        resolve({
          write: (b) => void socket.write(b),
          close: () => socket.end(),
          destroy: () => socket.destroy(),
        });
      });
      socket.on('data', (chunk: Buffer) => handlers.data(chunk));
      socket.on('error', (err) => {
        if (!connected) {
          clearTimeout(timer);
          reject(new LoadError(`connect-${socketErrorCode(err)}`, err.message));
        } else end({ kind: 'error', error: new LoadError(`socket-${socketErrorCode(err)}`, err.message) });
      });
      socket.on('close', () => end({ kind: 'closed', code: null, reason: '' }));
    });
}
