import { Redis } from 'ioredis';
import type { TokenStoreLogger } from './token-store.js';

const CHANNEL = '+switch-master';
const KIND = 'redis' as const;

export interface SwitchWatchOptions {
  sentinels: readonly { host: string; port: number }[];
  /** The monitored primary's name: messages about other names are ignored. */
  name: string;
  sentinelPassword?: string | undefined;
  connectTimeoutMs: number;
  /** Reconnect pacing of the subscriptions (for ever; a Sentinel may be down for long). */
  retryStrategy: (attempt: number) => number;
}

/**
 * Drops the token store's connection when the Sentinels announce that the primary moved to an
 * address other than the one it is connected to; the reconnect then asks them for the new one.
 * This matters when the old primary is still reachable (a partition, a manual failover): its
 * connection never breaks by itself.
 *
 * Instead of ioredis' own `failoverDetector`, which (ioredis 6) drops the connection on every
 * `+switch-master` whatever it names and whatever the connection is doing:
 * - each Sentinel announces the switch, the followers up to seconds after the leader (when they
 *   hear of the new configuration), so a connection already made to the new primary was cut
 *   again — requests in flight at that moment fail after they may have run (a consume then
 *   counts, but its user was told to try again);
 * - a drop that lands while a reconnect is asking a Sentinel for the primary makes ioredis end
 *   the client for good (redis-link.ts, #onEnd). Here a connection that is not established
 *   (`connecting`, `reconnecting`) is left alone: its attempt asks the Sentinels anyway.
 * Its subscriptions also have error listeners (ioredis' print stray lines on stderr).
 */
export class SwitchWatch {
  readonly #client: Redis;
  readonly #name: string;
  readonly #logger: TokenStoreLogger;
  readonly #subscribers: Redis[];

  constructor(client: Redis, options: SwitchWatchOptions, logger: TokenStoreLogger) {
    this.#client = client;
    this.#name = options.name;
    this.#logger = logger;
    this.#subscribers = options.sentinels.map(({ host, port }) => {
      const sub = new Redis({
        host,
        port,
        ...(options.sentinelPassword !== undefined ? { password: options.sentinelPassword } : {}),
        connectTimeout: options.connectTimeoutMs,
        retryStrategy: options.retryStrategy,
        maxRetriesPerRequest: null,
        autoResubscribe: true,
        lazyConnect: true,
        connectionName: 'vncgate-switch-watch',
      });
      sub.on('error', (error: Error) => {
        this.#logger.debug({ store: KIND, sentinel: `${host}:${port}`, err: error.message }, 'Sentinel subscription error');
      });
      sub.on('message', (channel: string, message: string) => {
        if (channel === CHANNEL) this.#onSwitch(message);
      });
      // Queued until connected; re-sent after every reconnect (autoResubscribe).
      sub.subscribe(CHANNEL).catch(() => undefined);
      return sub;
    });
  }

  /** `<name> <old-ip> <old-port> <new-ip> <new-port>` (Redis Sentinel's +switch-master). */
  #onSwitch(message: string): void {
    const [name, , , newHost, newPort] = message.split(' ');
    if (name !== this.#name || newHost === undefined || newPort === undefined) return;
    const status = this.#client.status;
    if (status !== 'ready' && status !== 'connect') return;
    const stream = this.#client.stream as { remoteAddress?: string; remotePort?: number } | undefined;
    if (stream?.remoteAddress === newHost && stream.remotePort === Number(newPort)) return;
    this.#logger.info({ store: KIND, primary: `${newHost}:${newPort}` }, 'Redis Sentinel switched the primary; reconnecting');
    this.#client.disconnect(true);
  }

  close(): void {
    for (const sub of this.#subscribers) sub.disconnect();
  }
}
