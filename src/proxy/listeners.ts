import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { ListenAddress } from '../config/index.js';
import { VncgateError } from '../errors.js';

export type Listeners = {
  /** Actual bound addresses, "host:port". */
  addresses: string[];
  close(): Promise<void>;
};

function fmt(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Binds every listen address: the first is fastify's own server; further ones (IPv6 beside IPv4,
 * say) hand their connections to the same server.
 */
export async function listen(app: FastifyInstance, listenOn: readonly ListenAddress[]): Promise<Listeners> {
  const [first, ...rest] = listenOn;
  if (!first) throw new VncgateError('CONFIG_ERR_INVALID', 'no listen address');
  await app.listen({ host: first.host, port: first.port }).catch((err: unknown) => {
    throw listenError(err, first);
  });
  const addresses: string[] = [];
  const a = app.server.address();
  addresses.push(a && typeof a === 'object' ? fmt(a.address, a.port) : fmt(first.host, first.port));
  const extra: NetServer[] = [];
  for (const l of rest) {
    const srv = createNetServer((sock) => app.server.emit('connection', sock));
    await new Promise<void>((resolve, reject) => {
      srv.once('error', (err) => reject(listenError(err, l)));
      srv.listen(l.port, l.host, () => resolve());
    }).catch(async (err: unknown) => {
      await Promise.all(extra.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
      throw err;
    });
    const ea = srv.address();
    if (ea && typeof ea === 'object') addresses.push(fmt(ea.address, ea.port));
    extra.push(srv);
  }
  return {
    addresses,
    close: async () => {
      await Promise.all(extra.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}

const LISTEN_PROBLEMS: Record<string, string> = {
  EADDRINUSE: 'the address is already in use (nova-novncproxy and ironic-novncproxy default to port 6080)',
  EACCES: 'permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)',
  EADDRNOTAVAIL: 'the address is not on this host',
};

/** A failed bind as one line naming the address and the option to change; anything else as is. */
function listenError(err: unknown, at: ListenAddress): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const problem = code !== undefined ? LISTEN_PROBLEMS[code] : undefined;
  if (problem === undefined) return err;
  return new VncgateError('CONFIG_ERR_LISTEN', `cannot listen on ${fmt(at.host, at.port)}: ${problem}; change listen (--listen HOST:PORT or VNCGATE_LISTEN)`, {
    cause: err,
    details: { address: fmt(at.host, at.port), errno: code },
  });
}

/** Base URL for console links: publicUrl, else the first bound address (a wildcard shown as localhost). */
export function baseUrlFor(publicUrl: string | null, scheme: 'http' | 'https', firstAddr: string): string {
  const baseHost = /^(0\.0\.0\.0|\[::\]):/.test(firstAddr) ? firstAddr.replace(/^(0\.0\.0\.0|\[::\])/, 'localhost') : firstAddr;
  return publicUrl ?? `${scheme}://${baseHost}/`;
}
