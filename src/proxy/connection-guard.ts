import type { Server as NetServer, Socket } from 'node:net';
import type { Logger } from 'pino';
import { clientKey } from '../client-key.js';
import type { Config } from '../config/index.js';

export type ConnectionLimits = Pick<Config['raw']['limits'], 'maxConnections' | 'maxConnectionsPerClient'> & Partial<Pick<Config['raw']['limits'], 'tcpKeepaliveMs'>>;

/** At most one warning line per this long, however many connections are refused. */
export const GUARD_REPORT_INTERVAL_MS = 10_000;
/** Distinct client addresses remembered per report for naming the busiest; the rest only count. */
const MAX_REPORTED_CLIENTS = 1_024;

/** What a report counts, since the last line. */
export type GuardCounters = {
  /** Closed at accept: `limits.maxConnections` open in this process. */
  refusedProcessCap: number;
  /** Closed at accept: `limits.maxConnectionsPerClient` open from that address. */
  refusedClientCap: number;
  /** Closed by `limits.tlsHandshakeTimeoutMs`. */
  tlsHandshakeTimeouts: number;
  /** Closed by `limits.requestTimeoutMs` (no complete request in time; slow upgrades included). */
  requestTimeouts: number;
  /** Closed at accept on a `listenProxyProtocol` listener: the peer is not in `trustedProxies`. */
  refusedUntrustedProxy: number;
  /** Closed on a `listenProxyProtocol` listener: no valid PROXY header within `limits.tlsHandshakeTimeoutMs`. */
  proxyHeaderErrors: number;
};

/**
 * The client a cap counts against (`clientKey`): IPv4 by address, an IPv4-mapped IPv6 address (a
 * dual-stack `[::]` listener shows IPv4 clients so) as the IPv4 client it stands for, other IPv6
 * by its /64. null: the socket has no peer any more (reset before it was accepted).
 */
export function clientAddress(remoteAddress: string | undefined): string | null {
  if (remoteAddress === undefined || remoteAddress === '') return null;
  return clientKey(remoteAddress);
}

/** The 4-tuple naming one TCP connection, the same for the raw socket and the TLS socket over it. */
function tupleOf(s: Pick<Socket, 'remoteAddress' | 'remotePort' | 'localAddress' | 'localPort'>): string | null {
  if (s.remoteAddress === undefined || s.remotePort === undefined) return null;
  return `${s.remoteAddress} ${s.remotePort} ${s.localAddress ?? ''} ${s.localPort ?? ''}`;
}

/** `tuple`: undefined while the 4-tuple index is not kept (see `upgraded`). */
type Tracked = { client: string; tuple: string | null | undefined; upgraded: boolean };

/**
 * The TCP socket under a TLS socket: Node keeps it as `_parent`, a property it does not document,
 * so its absence is handled (the 4-tuple index below).
 */
function parentOf(front: Socket): Socket | undefined {
  const parent = (front as { _parent?: unknown })._parent;
  return typeof parent === 'object' && parent !== null ? (parent as Socket) : undefined;
}

/**
 * Every client connection, from TCP accept on: counted per process and per client address,
 * refused at once (before TLS, before a byte is read) past `limits.maxConnections` or
 * `limits.maxConnectionsPerClient`, and closed on shutdown unless it carries a console session.
 * Refusals and deadline closes are reported in one rate-limited warning, never a line per
 * connection: a flood must not turn into a log flood.
 */
export class ConnectionGuard {
  readonly #limits: ConnectionLimits;
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #open = new Map<Socket, Tracked>();
  /**
   * Raw sockets by 4-tuple: how a TLS socket (what HTTP and `ws` see) finds the TCP socket under
   * it when `parentOf` cannot. Kept only from the first such miss on: reading every connection's
   * local and remote address for it cost more than the rest of the bookkeeping together.
   */
  readonly #byTuple = new Map<string, Socket>();
  #indexTuples = false;
  readonly #perClient = new Map<string, number>();
  #counters: GuardCounters = zeroCounters();
  /** Client-cap refusals per address since the last report (bounded), to name the busiest. */
  #refusedBy = new Map<string, number>();
  #lastReportAt = -Infinity;
  #timer: NodeJS.Timeout | null = null;
  #closing = false;

  /** Told of each refusal and deadline close as it happens (the metric). */
  readonly #onNote: ((what: keyof GuardCounters) => void) | null;

  constructor(limits: ConnectionLimits, log: Logger, opts: { reportIntervalMs?: number; onNote?: (what: keyof GuardCounters) => void } = {}) {
    this.#limits = limits;
    this.#log = log;
    this.#intervalMs = opts.reportIntervalMs ?? GUARD_REPORT_INTERVAL_MS;
    this.#onNote = opts.onNote ?? null;
  }

  /** Open client connections in this process. */
  get size(): number {
    return this.#open.size;
  }

  /** Open connections from one client address (normalised as the cap counts it). */
  openFrom(remoteAddress: string): number {
    const client = clientAddress(remoteAddress);
    return client === null ? 0 : (this.#perClient.get(client) ?? 0);
  }

  /**
   * Guards a server: its 'connection' event (fastify's own listener, and the extra listen
   * addresses that hand their sockets to it) is seen here first, so a refused socket is destroyed
   * before TLS starts; its 'clientError' events count the deadline closes.
   */
  attach(server: NetServer): void {
    server.prependListener('connection', (socket: Socket) => {
      this.admit(socket);
    });
    // https.Server re-emits a TLS handshake timeout ('tlsClientError') as 'clientError': counting
    // only the latter counts each once, for TLS and plain HTTP alike.
    server.on('clientError', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') this.#note('tlsHandshakeTimeouts');
      else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') this.#note('requestTimeouts');
    });
  }

  /**
   * Whether `pending` more connections (accepted, not yet handed to the server: a PROXY listener's
   * awaiting their header) still fit under `limits.maxConnections`.
   */
  hasRoomFor(pending: number): boolean {
    return !this.#closing && this.#open.size + pending < this.#limits.maxConnections;
  }

  /**
   * A connection refused before it reached the server (a PROXY listener's: an untrusted peer, a
   * bad or late header, no room): counted in the next report, never logged on its own.
   */
  refusedEarly(what: 'refusedUntrustedProxy' | 'proxyHeaderErrors' | 'refusedProcessCap', remoteAddress: string | undefined): void {
    if (this.#closing) return;
    this.#note(what, clientAddress(remoteAddress) ?? undefined);
  }

  /** Counts a newly accepted socket, or destroys it at once; false: refused. */
  admit(socket: Socket): boolean {
    const client = clientAddress(socket.remoteAddress);
    if (client === null || this.#closing) {
      socket.destroy();
      return false;
    }
    if (this.#open.size >= this.#limits.maxConnections) {
      socket.destroy();
      this.#note('refusedProcessCap');
      return false;
    }
    const fromClient = this.#perClient.get(client) ?? 0;
    if (this.#limits.maxConnectionsPerClient > 0 && fromClient >= this.#limits.maxConnectionsPerClient) {
      socket.destroy();
      this.#note('refusedClientCap', client);
      return false;
    }
    const tracked: Tracked = { client, tuple: undefined, upgraded: false };
    this.#open.set(socket, tracked);
    if (this.#indexTuples) this.#index(socket, tracked);
    this.#perClient.set(client, fromClient + 1);
    socket.once('close', () => this.#release(socket));
    // A peer that vanished without a FIN is found by the kernel's keepalive probes, also while
    // vncgate is not reading from it (backpressure) and no heartbeat runs (issue 15, finding 6).
    const keepalive = this.#limits.tcpKeepaliveMs ?? 0;
    if (keepalive > 0) socket.setKeepAlive(true, keepalive);
    return true;
  }

  /**
   * This connection now carries a console session (its WebSocket upgrade completed): shutdown
   * leaves it to the session's own close. `front` is the socket HTTP saw: the TLS socket, or the
   * TCP socket itself for plain HTTP.
   */
  upgraded(front: Socket): void {
    const parent = parentOf(front);
    const tracked = this.#open.get(front) ?? (parent === undefined ? undefined : this.#open.get(parent)) ?? this.#byTupleOf(front);
    if (tracked) tracked.upgraded = true;
  }

  /** The tracked connection with `front`'s 4-tuple; the first call starts keeping the index. */
  #byTupleOf(front: Socket): Tracked | undefined {
    const tuple = tupleOf(front);
    if (tuple === null) return undefined;
    if (!this.#indexTuples) {
      this.#indexTuples = true;
      for (const [socket, tracked] of this.#open) this.#index(socket, tracked);
    }
    const raw = this.#byTuple.get(tuple);
    return raw === undefined ? undefined : this.#open.get(raw);
  }

  #index(socket: Socket, tracked: Tracked): void {
    tracked.tuple = tupleOf(socket);
    if (tracked.tuple !== null) this.#byTuple.set(tracked.tuple, socket);
  }

  /**
   * Shutdown: refuses every new connection and destroys every open one that carries no console
   * session (mid-TLS-handshake, mid-request, kept-alive), so none of them holds the process.
   */
  close(): void {
    this.#closing = true;
    for (const [socket, tracked] of this.#open) if (!tracked.upgraded) socket.destroy();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#report();
  }

  #release(socket: Socket): void {
    const tracked = this.#open.get(socket);
    if (!tracked) return;
    this.#open.delete(socket);
    if (typeof tracked.tuple === 'string' && this.#byTuple.get(tracked.tuple) === socket) this.#byTuple.delete(tracked.tuple);
    const n = (this.#perClient.get(tracked.client) ?? 1) - 1;
    if (n > 0) this.#perClient.set(tracked.client, n);
    else this.#perClient.delete(tracked.client);
  }

  #note(what: keyof GuardCounters, client?: string): void {
    this.#counters[what]++;
    this.#onNote?.(what);
    if (client !== undefined && (this.#refusedBy.has(client) || this.#refusedBy.size < MAX_REPORTED_CLIENTS)) {
      this.#refusedBy.set(client, (this.#refusedBy.get(client) ?? 0) + 1);
    }
    if (this.#timer || this.#closing) return;
    const wait = this.#lastReportAt + this.#intervalMs - Date.now();
    if (wait <= 0) this.#report();
    else {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#report();
      }, wait);
      this.#timer.unref();
    }
  }

  /** One line for everything refused or closed by a deadline since the last one. */
  #report(): void {
    const c = this.#counters;
    if (Object.values(c).every((n) => n === 0)) return;
    let busiest: [string, number] | null = null;
    for (const entry of this.#refusedBy) if (busiest === null || entry[1] > busiest[1]) busiest = entry;
    this.#log.warn(
      {
        ...c,
        ...(busiest ? { busiestClient: busiest[0], busiestClientRefused: busiest[1] } : {}),
        connections: this.#open.size,
        maxConnections: this.#limits.maxConnections,
        maxConnectionsPerClient: this.#limits.maxConnectionsPerClient,
      },
      'client connections refused at a cap or closed by a deadline',
    );
    this.#counters = zeroCounters();
    this.#refusedBy = new Map();
    this.#lastReportAt = Date.now();
  }
}

function zeroCounters(): GuardCounters {
  return { refusedProcessCap: 0, refusedClientCap: 0, tlsHandshakeTimeouts: 0, requestTimeouts: 0, refusedUntrustedProxy: 0, proxyHeaderErrors: 0 };
}
