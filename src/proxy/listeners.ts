import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { ListenAddress } from '../config/index.js';
import { VncgateError } from '../errors.js';
import type { ProxyProtocolListen } from './proxy-listener.js';

export type Listeners = {
  /** Actual bound addresses, "host:port". */
  addresses: string[];
  /** Actual bound `listenProxyProtocol` addresses, "host:port". */
  proxyProtocolAddresses: string[];
  close(): Promise<void>;
};

function fmt(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Binds every listen address: the first is fastify's own server; further ones (IPv6 beside IPv4,
 * say) hand their connections to the same server, and so do the `listenProxyProtocol` ones once
 * their PROXY header is read.
 */
export async function listen(app: FastifyInstance, listenOn: readonly ListenAddress[], proxy: ProxyProtocolListen | null = null): Promise<Listeners> {
  const [first, ...rest] = listenOn;
  if (!first) throw new VncgateError('CONFIG_ERR_INVALID', 'no listen address');
  await app.listen({ host: first.host, port: first.port }).catch((err: unknown) => {
    throw listenError(err, first);
  });
  keepServing(app.server, app);
  const addresses: string[] = [];
  const a = app.server.address();
  addresses.push(a && typeof a === 'object' ? fmt(a.address, a.port) : fmt(first.host, first.port));
  const extra: NetServer[] = [];
  const closeExtra = (): Promise<unknown> => Promise.all(extra.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  const bind = async (l: ListenAddress, onConnection: (sock: Socket) => void, option: string): Promise<string> => {
    const srv = createNetServer(onConnection);
    await new Promise<void>((resolve, reject) => {
      srv.once('error', (err) => reject(listenError(err, l, option)));
      srv.listen(l.port, l.host, () => resolve());
    }).catch(async (err: unknown) => {
      await closeExtra();
      throw err;
    });
    srv.removeAllListeners('error');
    keepServing(srv, app);
    extra.push(srv);
    const ea = srv.address();
    return ea && typeof ea === 'object' ? fmt(ea.address, ea.port) : fmt(l.host, l.port);
  };
  for (const l of rest) addresses.push(await bind(l, (sock) => app.server.emit('connection', sock), 'listen'));
  const proxyProtocolAddresses: string[] = [];
  for (const l of proxy?.on ?? []) proxyProtocolAddresses.push(await bind(l, proxy!.acceptor.accept, 'listenProxyProtocol'));
  return {
    addresses,
    proxyProtocolAddresses,
    close: async () => {
      proxy?.acceptor.close();
      await closeExtra();
    },
  };
}

/**
 * A listening server reports a failed accept (ENFILE, ENOBUFS, …) as an 'error' event, and an
 * 'error' nobody listens to is an uncaught exception: one failed accept would end the process and
 * every console session in it. The listener goes on accepting, so a warning is all it takes.
 */
function keepServing(server: NetServer, app: FastifyInstance): void {
  server.on('error', (err: NodeJS.ErrnoException) => {
    app.log.warn({ code: err.code, syscall: err.syscall, err: err.message }, 'a listener could not accept a connection');
  });
}

const LISTEN_PROBLEMS: Record<string, string> = {
  EADDRINUSE: 'the address is already in use (nova-novncproxy and ironic-novncproxy default to port 6080)',
  EACCES: 'permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)',
  EADDRNOTAVAIL: 'the address is not on this host',
};

/** A failed bind as one line naming the address and the option to change; anything else as is. */
function listenError(err: unknown, at: ListenAddress, option = 'listen'): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const problem = code !== undefined ? LISTEN_PROBLEMS[code] : undefined;
  if (problem === undefined) return err;
  return new VncgateError('CONFIG_ERR_LISTEN', option === 'listen' ? `cannot listen on ${fmt(at.host, at.port)}: ${problem}; change listen (--listen HOST:PORT or VNCGATE_LISTEN)` : `cannot listen on ${fmt(at.host, at.port)}: ${problem}; change ${option}`, {
    cause: err,
    details: { address: fmt(at.host, at.port), errno: code },
  });
}

/** Base URL for console links: publicUrl, else the first bound address (a wildcard shown as localhost). */
export function baseUrlFor(publicUrl: string | null, scheme: 'http' | 'https', firstAddr: string): string {
  const baseHost = /^(0\.0\.0\.0|\[::\]):/.test(firstAddr) ? firstAddr.replace(/^(0\.0\.0\.0|\[::\])/, 'localhost') : firstAddr;
  return publicUrl ?? `${scheme}://${baseHost}/`;
}
