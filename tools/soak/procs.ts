import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';

/**
 * The soak's child processes (redis-server, redis-sentinel, haproxy, vncgate serve): spawned with
 * their PID kept, output read line by line, stopped by signalling that PID only. Every wait has a
 * deadline. Every child still running when the soak's process exits is SIGKILLed.
 */
export type ChildOptions = {
  name: string;
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Each line of stdout and stderr. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
};

const live = new Set<Child>();
let exitHook = false;

export class Child {
  readonly name: string;
  readonly #proc: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #running = true;
  /** The last lines, for error messages. */
  readonly #tail: string[] = [];

  private constructor(opts: ChildOptions) {
    this.name = opts.name;
    this.#proc = spawn(opts.command, [...opts.args], { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => {
      this.#proc.once('exit', (code, signal) => {
        this.#running = false;
        live.delete(this);
        resolve({ code, signal });
      });
      this.#proc.once('error', (err) => {
        this.#running = false;
        live.delete(this);
        this.#keep(`spawn error: ${err.message}`);
        resolve({ code: null, signal: null });
      });
    });
    for (const stream of ['stdout', 'stderr'] as const) {
      const rl = createInterface({ input: this.#proc[stream]! });
      rl.on('line', (line) => {
        this.#keep(line);
        opts.onLine?.(line, stream);
      });
    }
  }

  static start(opts: ChildOptions): Child {
    const c = new Child(opts);
    live.add(c);
    if (!exitHook) {
      exitHook = true;
      const killLive = (): void => {
        for (const p of live) p.signal('SIGKILL');
      };
      process.once('exit', killLive);
      // A process ended by a signal runs no 'exit' handlers: kill ours, then let the signal do
      // what it would have done (unless someone else handles it).
      for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
        process.once(sig, () => {
          killLive();
          if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
        });
      }
    }
    return c;
  }

  get running(): boolean {
    return this.#running;
  }

  get pid(): number {
    return this.#proc.pid ?? -1;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.#running) this.#proc.kill(sig);
  }

  /** SIGTERM, then SIGKILL after `termTimeoutMs`; resolves once it has exited. */
  async stop(termTimeoutMs = 5_000): Promise<void> {
    if (!this.#running) return;
    this.signal('SIGCONT');
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), termTimeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** SIGKILL (a crashed host); resolves once it has exited. */
  async kill(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited;
  }

  describe(): string {
    return `${this.name} (pid ${this.pid}${this.#running ? '' : ', exited'}):\n${this.#tail.join('\n')}`;
  }

  #keep(line: string): void {
    this.#tail.push(line.length > 2_000 ? `${line.slice(0, 2_000)}…` : line);
    if (this.#tail.length > 40) this.#tail.shift();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every `everyMs` until it answers true (throwing counts as false), up to `timeoutMs`. */
export async function waitUntil(what: string, timeoutMs: number, check: () => boolean | Promise<boolean>, everyMs = 100): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    let ok = false;
    try {
      ok = await check();
    } catch {
      ok = false;
    }
    if (ok) return;
    if (performance.now() >= deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

/** A port free on 127.0.0.1 right now (bound and released: a fixed port a restarted child can take again). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Runs a short command to completion; rejects on a non-zero exit or after `timeoutMs`. */
export async function run(command: string, args: readonly string[], timeoutMs = 20_000): Promise<void> {
  const c = Child.start({ name: command, command, args });
  const timer = setTimeout(() => c.signal('SIGKILL'), timeoutMs);
  const { code, signal } = await c.exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} failed (code ${code}, signal ${signal}): ${c.describe()}`);
}
