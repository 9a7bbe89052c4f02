import { createServer, type Server } from 'node:http';
import { VncgateError } from '../errors.js';
import type { Metrics } from './metrics.js';

/** Prometheus scrapes one connection at a time; a few more cover a second scraper and curl. */
const MAX_CONNECTIONS = 16;

export type MetricsListener = {
  /** The bound address, "host:port". */
  address: string;
  close(): Promise<void>;
};

/**
 * `GET /metrics` on a listener of its own (plain HTTP, meant for loopback or a private network;
 * never the console port, so the metrics are not on the internet-facing listener). Anything else
 * is 404. Bounded like the front end: few connections, short deadlines. `onError` hears what goes
 * wrong once it listens (a failed accept); the listener carries on.
 */
export async function listenMetrics(metrics: Metrics, host: string, port: number, onError: (err: Error) => void = () => undefined): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    metrics.render().then(
      ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(body),
      () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
    );
  });
  server.maxConnections = MAX_CONNECTIONS;
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new VncgateError('CONFIG_ERR_LISTEN', `cannot listen on metrics.listen ${host}:${port}: ${err.code ?? err.message}`, { cause: err })),
    );
    server.listen(port, host, () => {
      server.removeAllListeners('error');
      // A failed accept (ENFILE, …) is an 'error' event: unheard, it would end the whole process.
      server.on('error', onError);
      resolve();
    });
  });
  const a = server.address();
  const address = a && typeof a === 'object' ? (a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`) : `${host}:${port}`;
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
