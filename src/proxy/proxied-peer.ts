import type { Server as NetServer, Socket } from 'node:net';
import type { ProxyPeer } from '../proxy-protocol.js';

/**
 * The client a PROXY header named becomes the connection's own address: the raw socket's
 * `remoteAddress`, `remotePort` and `remoteFamily` are redefined on that one socket instance (and
 * on the TLS socket over it), before the HTTP server sees it. Everything downstream — fastify's
 * `req.ip` (and so the log's `remote`, audit `client`, the invalid-token cool-down), X-Forwarded-For
 * trust, the connection guard's per-client caps — reads those properties, so none of it needs to
 * know about the PROXY protocol. Chosen over a lookup table consulted by each reader: a reader that
 * forgot the table would silently count the load balancer as the client.
 *
 * A TLS socket reads its peer from the TCP handle, not from the socket under it, and Node gives no
 * public link from one to the other; so the proxied sockets are also kept by their true TCP 4-tuple
 * (taken before the override) until they close, and the TLS socket finds its client that way.
 */
export class ProxiedPeers {
  readonly #byTuple = new Map<string, ProxyPeer>();

  /** Open proxied connections (for tests). */
  get size(): number {
    return this.#byTuple.size;
  }

  /** Makes `peer` the socket's remote address, for as long as it lives. */
  assign(socket: Socket, peer: ProxyPeer): void {
    const tuple = tupleOf(socket);
    if (tuple !== null) {
      this.#byTuple.set(tuple, peer);
      socket.once('close', () => this.#byTuple.delete(tuple));
    }
    redefinePeer(socket, peer);
  }

  /** TLS sockets over proxied connections take on the proxied client, before HTTP sees them. */
  attach(server: NetServer): void {
    server.prependListener('secureConnection', (tlsSocket: Socket) => {
      const tuple = tupleOf(tlsSocket);
      const peer = tuple === null ? undefined : this.#byTuple.get(tuple);
      if (peer !== undefined) redefinePeer(tlsSocket, peer);
    });
  }
}

function tupleOf(s: Socket): string | null {
  if (s.remoteAddress === undefined || s.remotePort === undefined) return null;
  return `${s.remoteAddress} ${s.remotePort} ${s.localAddress ?? ''} ${s.localPort ?? ''}`;
}

function redefinePeer(socket: Socket, peer: ProxyPeer): void {
  Object.defineProperties(socket, {
    remoteAddress: { value: peer.address, configurable: true },
    remotePort: { value: peer.port, configurable: true },
    remoteFamily: { value: peer.family === 4 ? 'IPv4' : 'IPv6', configurable: true },
  });
}
