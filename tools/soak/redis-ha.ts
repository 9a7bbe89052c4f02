import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Child, freePort, waitUntil } from './procs.js';

/**
 * Redis with Sentinel for the soak: a primary, `replicas` replicas and three `redis-sentinel`
 * processes (quorum 2), all on 127.0.0.1, no persistence, in `dir`.
 */
export const SENTINEL_NAME = 'vncgate-soak';
const HOST = '127.0.0.1';

export type RedisNode = { readonly port: number; readonly child: Child };

export type SentinelSet = {
  readonly nodes: readonly RedisNode[];
  readonly sentinels: readonly RedisNode[];
  /** "127.0.0.1:port" of each Sentinel, as vncgate's `redis.sentinels` takes them. */
  readonly sentinelAddresses: readonly string[];
  /** The primary's port as the Sentinels name it now. */
  primaryPort(): Promise<number>;
  /** Replicas of the primary on `port` that are online and have acknowledged (WAIT can count them). */
  ackingReplicas(port: number): Promise<number>;
  stop(): Promise<void>;
};

/** One short admin connection to 127.0.0.1:`port`. */
export async function withAdmin<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({ host: HOST, port, lazyConnect: true, connectTimeout: 1_000, commandTimeout: 2_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

async function startNode(name: string, command: string, args: readonly string[], port: number, cwd: string): Promise<RedisNode> {
  const child = Child.start({ name, command, args, cwd });
  await waitUntil(`${name} answers PING`, 10_000, async () => {
    if (!child.running) throw new Error(child.describe());
    return (await withAdmin(port, (r) => r.ping())) === 'PONG';
  }).catch((err: unknown) => {
    throw new Error(`${String(err)}\n${child.describe()}`);
  });
  return { port, child };
}

export async function startSentinelSet(dir: string, opts: { replicas: number; downAfterMs: number; failoverTimeoutMs: number }): Promise<SentinelSet> {
  const all: RedisNode[] = [];
  const stop = async (): Promise<void> => {
    await Promise.allSettled(all.map((n) => n.child.stop()));
  };
  try {
    const nodes: RedisNode[] = [];
    let primary = 0;
    for (let i = 0; i <= opts.replicas; i++) {
      const d = join(dir, `redis${i}`);
      await mkdir(d, { recursive: true });
      const port = await freePort();
      if (i === 0) primary = port;
      const args = ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', d, '--daemonize', 'no'];
      args.push('--repl-diskless-sync-delay', '0', '--repl-ping-replica-period', '1');
      if (i > 0) args.push('--replicaof', HOST, String(primary));
      const node = await startNode(`redis ${i === 0 ? 'primary' : `replica ${i}`} :${port}`, 'redis-server', args, port, d);
      nodes.push(node);
      all.push(node);
    }
    const set: Omit<SentinelSet, 'sentinels' | 'sentinelAddresses'> = {
      nodes,
      primaryPort: async () => 0,
      ackingReplicas: (port) =>
        withAdmin(port, async (r) => {
          const info = await r.info('replication');
          return (info.match(/^slave\d+:.*state=online,offset=[1-9]/gm) ?? []).length;
        }),
      stop,
    };
    await waitUntil('replicas in sync', 20_000, async () => (await set.ackingReplicas(primary)) === opts.replicas);
    const sentinels: RedisNode[] = [];
    for (let i = 0; i < 3; i++) {
      const d = join(dir, `sentinel${i}`);
      await mkdir(d, { recursive: true });
      const port = await freePort();
      const conf = join(d, 'sentinel.conf');
      await writeFile(
        conf,
        [
          `port ${port}`,
          `bind ${HOST}`,
          `dir ${d}`,
          `sentinel monitor ${SENTINEL_NAME} ${HOST} ${primary} 2`,
          `sentinel down-after-milliseconds ${SENTINEL_NAME} ${opts.downAfterMs}`,
          `sentinel failover-timeout ${SENTINEL_NAME} ${opts.failoverTimeoutMs}`,
          `sentinel parallel-syncs ${SENTINEL_NAME} 1`,
          '',
        ].join('\n'),
      );
      const s = await startNode(`redis-sentinel :${port}`, 'redis-sentinel', [conf], port, d);
      sentinels.push(s);
      all.push(s);
    }
    // A failover needs every Sentinel to know the others and the replicas.
    await waitUntil('Sentinels see each other and the replicas', 30_000, async () => {
      for (const s of sentinels) {
        const ok = await withAdmin(s.port, async (r) => {
          const m = (await r.call('SENTINEL', 'MASTER', SENTINEL_NAME)) as string[];
          const field = (k: string): number => Number(m[m.indexOf(k) + 1]);
          return field('num-other-sentinels') === 2 && field('num-slaves') === opts.replicas;
        });
        if (!ok) return false;
      }
      return true;
    });
    const live = (): RedisNode => sentinels.find((s) => s.child.running) ?? sentinels[0]!;
    return {
      ...set,
      sentinels,
      sentinelAddresses: sentinels.map((s) => `${HOST}:${s.port}`),
      primaryPort: () => withAdmin(live().port, async (r) => Number(((await r.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_NAME)) as string[])[1])),
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
