import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { ClientConnection, type ConnectionContext } from './client-connection.js';
import { DemoScreen } from './demo-screen.js';
import { resolveOptions, type ResolvedOptions, type SyntheticServerOptions } from './options.js';
import type { Rect } from './rect.js';

export type SyntheticStats = {
  /** Sockets open now, in any phase. */
  clientsConnected: number;
  /** Of those, clients past ClientInit. */
  clientsActive: number;
  connectionsAccepted: number;
  /** Closed at once because maxClients were connected. */
  connectionsRefused: number;
  /** FramebufferUpdate messages sent. */
  updatesSent: number;
  /** All bytes written to clients (handshake included). */
  bytesSent: number;
  bytesReceived: number;
};

export type SyntheticServer = {
  readonly host: string;
  readonly port: number;
  /** The bound address (still answers after close()). */
  address(): AddressInfo;
  /** Stops listening, closes every client and the demo clock. Idempotent. */
  close(): Promise<void>;
  stats(): SyntheticStats;
};

/**
 * Starts an RFB server that needs no desktop: `demo` shows a live test screen for people, `stream`
 * answers each FramebufferUpdateRequest with about `streamUpdateBytes` of checkable Raw pixels, and
 * `pingpong` answers each with a 1×1 update. Rejects with CONFIG_ERR_INVALID for bad options, or with
 * the listen error.
 */
export async function startSyntheticServer(opts: SyntheticServerOptions): Promise<SyntheticServer> {
  const server = new SyntheticRfbServer(resolveOptions(opts));
  await server.listen();
  return server;
}

class SyntheticRfbServer implements SyntheticServer {
  readonly #opts: ResolvedOptions;
  readonly #net: Server;
  readonly #screen: DemoScreen | null;
  readonly #connections = new Set<ClientConnection>();
  readonly #active = new Set<ClientConnection>();
  readonly #counters = { updatesSent: 0, bytesSent: 0, bytesReceived: 0, accepted: 0, refused: 0 };
  readonly #ctx: ConnectionContext;
  #address: AddressInfo | null = null;
  #ticker: NodeJS.Timeout | null = null;
  #nextId = 1;
  #closing: Promise<void> | null = null;

  constructor(opts: ResolvedOptions) {
    this.#opts = opts;
    this.#screen =
      opts.mode === 'demo' ? new DemoScreen({ width: opts.width, height: opts.height, desktopName: opts.desktopName, now: Date.now() }) : null;
    this.#ctx = {
      options: opts,
      screen: this.#screen,
      counters: this.#counters,
      started: (c) => this.#started(c),
      closed: (c) => this.#closed(c),
      screenChanged: (rects) => this.#broadcast(rects),
    };
    this.#net = createServer({ noDelay: true }, (socket) => this.#accept(socket));
  }

  get host(): string {
    return this.address().address;
  }

  get port(): number {
    return this.address().port;
  }

  address(): AddressInfo {
    if (!this.#address) throw new Error('synthetic server is not listening');
    return this.#address;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.#net.once('error', onError);
      this.#net.listen({ host: this.#opts.host, port: this.#opts.port }, () => {
        this.#net.off('error', onError);
        this.#net.on('error', (err) => this.#opts.logger.error({ err: err.message }, 'synthetic server socket error'));
        this.#address = this.#net.address() as AddressInfo;
        this.#opts.logger.info({ ...this.#address, mode: this.#opts.mode }, 'synthetic RFB server listening');
        resolve();
      });
    });
  }

  stats(): SyntheticStats {
    const c = this.#counters;
    return {
      clientsConnected: this.#connections.size,
      clientsActive: this.#active.size,
      connectionsAccepted: c.accepted,
      connectionsRefused: c.refused,
      updatesSent: c.updatesSent,
      bytesSent: c.bytesSent,
      bytesReceived: c.bytesReceived,
    };
  }

  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#stopTicker();
      this.#net.close(() => resolve());
      for (const c of this.#connections) c.destroy('server closing');
    });
    return this.#closing;
  }

  #accept(socket: Socket): void {
    if (this.#closing || this.#connections.size >= this.#opts.maxClients) {
      this.#counters.refused++;
      this.#opts.logger.warn(
        { remote: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`, maxClients: this.#opts.maxClients },
        this.#closing ? 'refusing a client: server closing' : 'refusing a client: maxClients connected',
      );
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    this.#counters.accepted++;
    const client = new ClientConnection(socket, this.#ctx, this.#nextId++);
    this.#connections.add(client);
    client.start();
  }

  #started(c: ClientConnection): void {
    this.#active.add(c);
    if (this.#screen) {
      this.#broadcast(this.#screen.setClients(this.#active.size));
      this.#startTicker();
    }
  }

  #closed(c: ClientConnection): void {
    this.#connections.delete(c);
    if (!this.#active.delete(c) || !this.#screen) return;
    this.#broadcast(this.#screen.setClients(this.#active.size));
    if (this.#active.size === 0) this.#stopTicker();
  }

  #broadcast(rects: readonly Rect[]): void {
    if (rects.length === 0) return;
    for (const c of this.#active) c.screenChanged(rects);
  }

  /** The demo clock runs only while someone watches. */
  #startTicker(): void {
    const screen = this.#screen;
    if (this.#ticker || !screen || this.#closing) return;
    this.#ticker = setInterval(() => {
      try {
        this.#broadcast(screen.tick(Date.now()));
      } catch (err) {
        this.#opts.logger.error({ err: err instanceof Error ? err.stack : String(err) }, 'synthetic demo tick failed');
      }
    }, this.#opts.tickIntervalMs);
  }

  #stopTicker(): void {
    if (this.#ticker) clearInterval(this.#ticker);
    this.#ticker = null;
  }
}
