/**
 * Replicated Redis for the failover tests (issue 17): a Sentinel set (one primary, replicas, three
 * `redis-sentinel` processes) and a Redis Cluster (`redis-cli --cluster create`). Everything on
 * 127.0.0.1, free ports, temp dirs, no persistence; processes are ManagedProcesses, signalled by
 * their own PID only, and every wait has a deadline.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ManagedProcess, runCommand, sleep } from './proc.js';
import { freeLoopbackPort } from './redis.js';

const LOOPBACK = '127.0.0.1';

export interface RedisProcess {
  readonly name: string;
  readonly port: number;
  readonly dir: string;
  readonly running: boolean;
  /** SIGKILL: no shutdown, no goodbye to replicas or Sentinels (a crashed host). */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT to this very process (a frozen host). */
  signal(signal: 'SIGSTOP' | 'SIGCONT'): void;
  /** Starts it again on the same port and dir. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** One short-lived admin connection; `fn`'s result, or the error. */
export async function withAdmin<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({ host: LOOPBACK, port, lazyConnect: true, connectTimeout: 1_000, commandTimeout: 2_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

/** Polls `check` every 100 ms until it answers true (errors count as false), up to `timeoutMs`. */
export async function eventually(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (performance.now() >= deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function startProcess(name: string, bin: string, args: (port: number, dir: string) => string[], dir: string, port: number): Promise<RedisProcess> {
  let proc: ManagedProcess | undefined;
  const start = async (): Promise<void> => {
    const p = await ManagedProcess.start({ name, command: bin, args: args(port, dir), cwd: dir });
    proc = p;
    await eventually(`${name} answers PING`, 10_000, async () => {
      if (!p.running) throw new Error(p.describe());
      return (await withAdmin(port, (r) => r.ping())) === 'PONG';
    }).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${p.describe()}`);
    });
  };
  await start();
  return {
    name,
    port,
    dir,
    get running() {
      return proc?.running ?? false;
    },
    kill: async () => {
      const p = proc;
      if (p === undefined || !p.running) return;
      p.signal('SIGKILL');
      await p.exited;
    },
    signal: (signal) => proc?.signal(signal),
    start,
    stop: async () => {
      proc?.signal('SIGCONT');
      await proc?.stop();
    },
  };
}

function serverArgs(extra: string[]): (port: number, dir: string) => string[] {
  // No 5 s wait before a full sync (the default delay waits for more replicas to share it).
  return (port, dir) => ['--port', String(port), '--bind', LOOPBACK, '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--repl-diskless-sync-delay', '0', ...extra];
}

/** Replicas of the primary on `port` that have finished their sync (`state=online`). */
export async function onlineReplicas(port: number): Promise<number> {
  const info = await withAdmin(port, (r) => r.info('replication'));
  return (info.match(/^slave\d+:.*state=online/gm) ?? []).length;
}

export interface SentinelSet {
  readonly name: string;
  /** The data nodes; `nodes[0]` started as primary. */
  readonly nodes: readonly RedisProcess[];
  readonly sentinels: readonly RedisProcess[];
  readonly sentinelEndpoints: readonly { host: string; port: number }[];
  /** The primary the Sentinels name now. */
  primaryPort(): Promise<number>;
  dispose(): Promise<void>;
}

export interface SentinelSetOptions {
  replicas: number;
  downAfterMs?: number;
  failoverTimeoutMs?: number;
}

/** A primary, `replicas` replicas and three Sentinels (quorum 2), all synced before it returns. */
export async function startSentinelSet(opts: SentinelSetOptions): Promise<SentinelSet> {
  const name = 'vncgate-ha';
  const root = await mkdtemp(join(tmpdir(), 'vncgate-sentinel-'));
  const all: RedisProcess[] = [];
  const dispose = async (): Promise<void> => {
    await Promise.allSettled(all.map((p) => p.stop()));
    await rm(root, { recursive: true, force: true });
  };
  try {
    const nodes: RedisProcess[] = [];
    const primaryPort = await freeLoopbackPort();
    for (let i = 0; i <= opts.replicas; i++) {
      const dir = join(root, `node${i}`);
      await mkdirp(dir);
      const port = i === 0 ? primaryPort : await freeLoopbackPort();
      const extra = i === 0 ? [] : ['--replicaof', LOOPBACK, String(primaryPort)];
      const node = await startProcess(`redis ${i === 0 ? 'primary' : `replica ${i}`} :${port}`, 'redis-server', serverArgs(['--repl-ping-replica-period', '1', ...extra]), dir, port);
      nodes.push(node);
      all.push(node);
    }
    await eventually('replicas in sync', 15_000, async () => (await onlineReplicas(primaryPort)) === opts.replicas);
    const sentinels: RedisProcess[] = [];
    for (let i = 0; i < 3; i++) {
      const dir = join(root, `sentinel${i}`);
      await mkdirp(dir);
      const port = await freeLoopbackPort();
      const conf = join(dir, 'sentinel.conf');
      await writeFile(
        conf,
        [
          `port ${port}`,
          `bind ${LOOPBACK}`,
          `dir ${dir}`,
          `sentinel monitor ${name} ${LOOPBACK} ${primaryPort} 2`,
          `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 1_000}`,
          `sentinel failover-timeout ${name} ${opts.failoverTimeoutMs ?? 3_000}`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      const s = await startProcess(`redis-sentinel :${port}`, 'redis-sentinel', () => [conf], dir, port);
      sentinels.push(s);
      all.push(s);
    }
    // Every Sentinel must know the others and the replicas before a failover can be agreed.
    await eventually('Sentinels see each other and the replicas', 20_000, async () => {
      for (const s of sentinels) {
        const ok = await withAdmin(s.port, async (r) => {
          const master = (await r.call('SENTINEL', 'MASTER', name)) as string[];
          const field = (k: string): number => Number(master[master.indexOf(k) + 1]);
          return field('num-other-sentinels') === 2 && field('num-slaves') === opts.replicas;
        });
        if (!ok) return false;
      }
      return true;
    });
    return {
      name,
      nodes,
      sentinels,
      sentinelEndpoints: sentinels.map((s) => ({ host: LOOPBACK, port: s.port })),
      primaryPort: () => withAdmin(sentinels[0]!.port, async (r) => Number(((await r.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)) as string[])[1])),
      dispose,
    };
  } catch (err) {
    await dispose();
    throw err;
  }
}

export interface RedisClusterSet {
  readonly nodes: readonly RedisProcess[];
  readonly seeds: readonly { host: string; port: number }[];
  /** Port of the primary serving `key`'s slot, asked of a live node. */
  primaryPortFor(key: string): Promise<number>;
  /** Every node that runs agrees the cluster is ok and every primary has `replicas` replicas. */
  waitHealthy(timeoutMs: number, replicas: number): Promise<void>;
  dispose(): Promise<void>;
}

/** `primaries` primaries with `replicasPerPrimary` replicas each, created with `redis-cli --cluster create`. */
export async function startRedisCluster(opts: { primaries: number; replicasPerPrimary: number; nodeTimeoutMs?: number }): Promise<RedisClusterSet> {
  const root = await mkdtemp(join(tmpdir(), 'vncgate-cluster-'));
  const nodes: RedisProcess[] = [];
  const dispose = async (): Promise<void> => {
    await Promise.allSettled(nodes.map((p) => p.stop()));
    await rm(root, { recursive: true, force: true });
  };
  try {
    const count = opts.primaries * (1 + opts.replicasPerPrimary);
    for (let i = 0; i < count; i++) {
      const dir = join(root, `node${i}`);
      await mkdirp(dir);
      const port = await freeLoopbackPort();
      nodes.push(
        await startProcess(
          `redis cluster node :${port}`,
          'redis-server',
          serverArgs([
            '--cluster-enabled', 'yes',
            '--cluster-config-file', 'nodes.conf',
            '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 1_000),
            // Other shards keep answering while one has no primary (see README).
            '--cluster-require-full-coverage', 'no',
            '--repl-ping-replica-period', '1',
          ]),
          dir,
          port,
        ),
      );
    }
    await runCommand('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `${LOOPBACK}:${n.port}`), '--cluster-replicas', String(opts.replicasPerPrimary), '--cluster-yes'], {
      timeoutMs: 30_000,
    });
    const set: RedisClusterSet = {
      nodes,
      seeds: nodes.slice(0, 3).map((n) => ({ host: LOOPBACK, port: n.port })),
      // Asks the running nodes in turn: one killed a moment ago may still count as running
      // until its exit is seen, and answers only "Connection is closed".
      primaryPortFor: async (key) => {
        let last: unknown;
        for (const node of nodes.filter((n) => n.running)) {
          try {
            return await withAdmin(node.port, async (r) => {
              const slot = (await r.call('CLUSTER', 'KEYSLOT', key)) as number;
              const ranges = (await r.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
              const range = ranges.find(([from, to]) => slot >= from && slot <= to);
              if (range === undefined) throw new Error(`slot ${slot} is not served`);
              return range[2][1];
            });
          } catch (err) {
            if ((err as Error).message.startsWith('slot ')) throw err;
            last = err;
          }
        }
        throw last ?? new Error('no cluster node is running');
      },
      waitHealthy: (timeoutMs, replicas) =>
        eventually('cluster healthy', timeoutMs, async () => {
          for (const n of nodes.filter((x) => x.running)) {
            const ok = await withAdmin(n.port, async (r) => {
              if (!/cluster_state:ok/.test((await r.call('CLUSTER', 'INFO')) as string)) return false;
              const info = await r.info('replication');
              // Online and acknowledging: a replica that has not sent its first ACK fails WAIT.
              return !/role:master/.test(info) || (info.match(/^slave\d+:.*state=online,offset=[1-9]/gm) ?? []).length >= replicas;
            });
            if (!ok) return false;
          }
          return true;
        }),
      dispose,
    };
    await set.waitHealthy(30_000, opts.replicasPerPrimary);
    return set;
  } catch (err) {
    await dispose();
    throw err;
  }
}

async function mkdirp(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
}
