import type { Server as NetServer, Socket } from 'node:net';
import type { Config, ListenAddress } from '../config/index.js';
import { ProxyHeaderParser } from '../proxy-protocol.js';
import type { AddressSet } from '../target-policy.js';
import type { ConnectionGuard } from './connection-guard.js';
import { ProxiedPeers } from './proxied-peer.js';

/** `listenProxyProtocol` and the accept path its connections take. */
export type ProxyProtocolListen = { on: readonly ListenAddress[]; acceptor: ProxyProtocolAcceptor };

/** The PROXY listeners of this configuration, handing their connections to `server`; null: none. */
export function proxyProtocolListen(config: Config, server: NetServer, guard: ConnectionGuard): ProxyProtocolListen | null {
  if (config.listenProxyProtocol.length === 0) return null;
  const peers = new ProxiedPeers();
  if (config.tls) peers.attach(server);
  const acceptor = new ProxyProtocolAcceptor({
    trusted: config.trustedProxies,
    headerTimeoutMs: config.raw.limits.tlsHandshakeTimeoutMs,
    guard,
    peers,
    deliver: (socket) => server.emit('connection', socket),
    resumeAfterDeliver: config.tls === null,
  });
  return { on: config.listenProxyProtocol, acceptor };
}

export type ProxyAcceptorOptions = {
  /** trustedProxies: the only peers that may connect to a PROXY listener at all. */
  trusted: AddressSet;
  /** From accept to a complete header (`limits.tlsHandshakeTimeoutMs`). */
  headerTimeoutMs: number;
  guard: ConnectionGuard;
  peers: ProxiedPeers;
  /** Hands the socket on, positioned after the header, as a plain listener's connection would be. */
  deliver(socket: Socket): void;
  /**
   * Resume the socket after `deliver`: Node's HTTP server leaves a socket paused by its previous
   * reader paused (TLS reads what is buffered itself and takes the TCP handle over).
   */
  resumeAfterDeliver: boolean;
};

/**
 * The accept path of a `listenProxyProtocol` listener. A peer outside `trustedProxies` is
 * destroyed at once, before a byte is read; a trusted one must send a complete PROXY v1 or v2
 * header within the deadline (bounded by the parser), else it is destroyed. Then the client it
 * names becomes the socket's address (LOCAL and UNKNOWN keep the proxy's own: health checks), the
 * bytes after the header are put back, and the socket goes to the server — where the connection
 * guard counts it against the real client's cap, before TLS. Refusals are counted in the guard's
 * rate-limited warning, never logged one by one.
 */
export class ProxyProtocolAcceptor {
  readonly #opts: ProxyAcceptorOptions;
  /** Accepted, header not yet complete; counted against limits.maxConnections, closed on shutdown. */
  readonly #pending = new Set<Socket>();

  constructor(opts: ProxyAcceptorOptions) {
    this.#opts = opts;
  }

  get pending(): number {
    return this.#pending.size;
  }

  readonly accept = (socket: Socket): void => {
    const { guard } = this.#opts;
    const peer = socket.remoteAddress;
    // Reset before it was accepted (HAProxy ends its health checks with a reset): nobody to refuse.
    if (peer === undefined) {
      socket.destroy();
      return;
    }
    if (!this.#opts.trusted.has(peer)) {
      socket.destroy();
      guard.refusedEarly('refusedUntrustedProxy', peer);
      return;
    }
    if (!guard.hasRoomFor(this.#pending.size)) {
      socket.destroy();
      guard.refusedEarly('refusedProcessCap', peer);
      return;
    }
    this.#pending.add(socket);
    const parser = new ProxyHeaderParser();
    const finish = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      this.#pending.delete(socket);
    };
    const refuse = (): void => {
      finish();
      socket.destroy();
      guard.refusedEarly('proxyHeaderErrors', peer);
    };
    const onData = (chunk: Buffer): void => {
      const r = parser.receive(chunk);
      if (r.state === 'incomplete') return;
      if (r.state === 'failed') return refuse();
      finish();
      socket.pause();
      if (r.rest.length > 0) socket.unshift(r.rest);
      if (r.header.source !== null) this.#opts.peers.assign(socket, r.header.source);
      this.#opts.deliver(socket);
      if (this.#opts.resumeAfterDeliver && !socket.destroyed) socket.resume();
    };
    // A reset while waiting is no error of ours: the socket just closes.
    const onError = (): void => {};
    const onClose = (): void => finish();
    const timer = setTimeout(refuse, this.#opts.headerTimeoutMs);
    socket.on('data', onData);
    socket.on('error', onError);
    socket.once('close', onClose);
  };

  /** Shutdown: connections still awaiting their header are closed. */
  close(): void {
    for (const socket of this.#pending) socket.destroy();
    this.#pending.clear();
  }
}
