import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitUntilStopped } from './proc.js';

/**
 * A throw-away `redis-server` for integration tests: loopback only, a free port, a temp dir, no
 * persistence (`--save '' --appendonly no`). It is controlled by PID only — this helper never
 * signals a process it did not start — and every wait has a deadline.
 */
export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly dir: string;
  /** PID of the running server, `undefined` while stopped. */
  readonly pid: number | undefined;
  /** Starts it again on the same port and dir (after `stop`). Data is gone: there is no persistence. */
  start(): Promise<void>;
  /** SIGTERM, then SIGKILL if it has not exited in time. */
  stop(): Promise<void>;
  /** SIGSTOP: the socket stays open but nothing answers, like a hung server. */
  pause(): void;
  /** SIGCONT after `pause`. */
  resume(): void;
  /** `stop` and remove the temp dir. */
  dispose(): Promise<void>;
}

export interface StartRedisOptions {
  /** Default `redis-server` from PATH. */
  bin?: string;
  /** Deadline for the server to answer PING. Default 10 s. */
  startTimeoutMs?: number;
  /** Deadline for the server to exit after a signal. Default 5 s. */
  stopTimeoutMs?: number;
}

const LOOPBACK = '127.0.0.1';
const OUTPUT_TAIL_CHARS = 4096;

/** Every server this process started and has not seen exit, so a crashed test run still cleans up. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) if (child.pid !== undefined) killQuietly(child.pid, 'SIGKILL');
});

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** A loopback port nothing listens on right now (it may be taken by the time it is used). */
export async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

/** One PING over a raw socket; true on `+PONG`. Bounded by `timeoutMs`. */
function pingOnce(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: LOOPBACK, port });
    let reply = '';
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.once('error', () => done(false));
  });
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

export async function startRedisServer(options: StartRedisOptions = {}): Promise<RedisServer> {
  const bin = options.bin ?? 'redis-server';
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  const stopTimeoutMs = options.stopTimeoutMs ?? 5_000;
  const dir = await mkdtemp(join(tmpdir(), 'vncgate-redis-'));
  let port = 0;
  let child: ChildProcess | undefined;
  let paused = false;
  let output = '';

  const launch = async (): Promise<void> => {
    output = '';
    const proc = spawn(
      bin,
      ['--port', String(port), '--bind', LOOPBACK, '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
    };
    proc.stdout?.on('data', collect);
    proc.stderr?.on('data', collect);
    proc.once('exit', () => live.delete(proc));
    let spawnError: Error | undefined;
    proc.once('error', (error) => {
      spawnError = error;
    });
    if (proc.pid !== undefined) live.add(proc);
    child = proc;
    paused = false;
    const deadline = Date.now() + startTimeoutMs;
    while (Date.now() < deadline) {
      if (spawnError !== undefined) throw spawnError;
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`redis-server exited during start-up (${proc.exitCode ?? proc.signalCode}):\n${output}`);
      }
      if (await pingOnce(port, 500)) return;
      await sleep(50);
    }
    await stop();
    throw new Error(`redis-server did not answer PING within ${startTimeoutMs} ms:\n${output}`);
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (proc?.pid === undefined) return;
    const pid = proc.pid;
    killQuietly(pid, 'SIGTERM');
    // A stopped process only acts on SIGTERM once it runs again.
    if (paused) killQuietly(pid, 'SIGCONT');
    paused = false;
    if (await waitForExit(proc, stopTimeoutMs)) return;
    killQuietly(pid, 'SIGKILL');
    if (!(await waitForExit(proc, stopTimeoutMs))) throw new Error(`redis-server pid ${pid} did not exit`);
  };

  // The free port may be taken between probing and binding; retry a bounded number of times.
  for (let attempt = 1; ; attempt++) {
    port = await freeLoopbackPort();
    try {
      await launch();
      break;
    } catch (error) {
      await stop();
      if (attempt >= 3) {
        await rm(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }

  return {
    port,
    url: `redis://${LOOPBACK}:${port}`,
    dir,
    get pid() {
      return child?.pid;
    },
    start: async () => {
      if (child !== undefined) throw new Error('redis-server is already running');
      await launch();
    },
    stop,
    pause: () => {
      if (child?.pid === undefined) throw new Error('redis-server is not running');
      killQuietly(child.pid, 'SIGSTOP');
      paused = true;
      waitUntilStopped([child.pid], 5_000, 'redis-server');
    },
    resume: () => {
      if (child?.pid === undefined) throw new Error('redis-server is not running');
      killQuietly(child.pid, 'SIGCONT');
      paused = false;
    },
    dispose: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
