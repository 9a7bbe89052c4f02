/**
 * Child processes for the integration tier: spawn with the PID tracked and output kept in a bounded
 * ring buffer, readiness checks with deadlines, and a stop that signals only that PID.
 *
 * Why so careful: the machine is shared with other engineers running their own Xvnc/QEMU, and the
 * container's PID 1 does not reap orphans, so a leaked server lingers as a zombie or, worse, keeps a
 * port. Hence: every wait has a deadline, `stop()` only ever signals the PID we spawned (never a
 * name or a group), and a process-exit hook SIGKILLs whatever a crashed test file left running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { statFieldsAfterComm } from '../../tools/loadtest/proc-sampler.js';

/** Anything a test file started and must stop in `afterAll`. */
export interface Stoppable {
  stop(): Promise<void>;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Keeps the last `limitBytes` of a stream: enough context for an error message, bounded memory. */
export class RingBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  private dropped = 0;

  constructor(private readonly limitBytes = 64 * 1024) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.limitBytes) {
      const head = this.chunks[0];
      if (head === undefined) break;
      const excess = this.size - this.limitBytes;
      if (head.length <= excess) {
        this.chunks.shift();
        this.size -= head.length;
        this.dropped += head.length;
      } else {
        this.chunks[0] = head.subarray(excess);
        this.size -= excess;
        this.dropped += excess;
      }
    }
  }

  /** Bytes discarded so far because the buffer was full. */
  get droppedBytes(): number {
    return this.dropped;
  }

  toString(): string {
    const text = Buffer.concat(this.chunks).toString('utf8');
    return this.dropped > 0 ? `[... ${this.dropped} bytes dropped ...]\n${text}` : text;
  }
}

// --- process-exit safety net ------------------------------------------------------------------
// Shared through globalThis because vitest re-evaluates this module for every test file in the same
// worker; one set and one set of hooks per worker process, not one per evaluation.
//
// vitest ends its fork workers with SIGTERM, and a process killed by a signal runs no 'exit'
// handlers: without the signal hooks below every leftover server and temp dir would leak. After
// cleaning up, the hook re-raises the signal if nobody else handles it, so the default action
// (termination) still happens (the signal-exit pattern).

interface SafetyNet {
  live: Set<ManagedProcess>;
  tempDirs: Set<string>;
  hooks: Set<() => void>;
}
const SAFETY_NET_KEY = Symbol.for('vncgate.test.support.proc.safetyNet');
const FATAL_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

function safetyNet(): SafetyNet {
  const g = globalThis as { [SAFETY_NET_KEY]?: SafetyNet };
  const existing = g[SAFETY_NET_KEY];
  if (existing !== undefined) return existing;
  const created: SafetyNet = { live: new Set(), tempDirs: new Set(), hooks: new Set() };
  g[SAFETY_NET_KEY] = created;
  const cleanUp = (): void => {
    // Synchronous only: exit and signal handlers cannot await. SIGKILL our own children by PID.
    for (const p of created.live) p.killNow();
    created.live.clear();
    for (const hook of created.hooks) {
      try {
        hook();
      } catch {
        // best effort: keep cleaning
      }
    }
    created.hooks.clear();
    for (const dir of created.tempDirs) rmSync(dir, { recursive: true, force: true });
    created.tempDirs.clear();
  };
  process.on('exit', cleanUp);
  for (const sig of FATAL_SIGNALS) {
    const onSignal = (): void => {
      cleanUp();
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, onSignal);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSignal);
  }
  return created;
}

/**
 * Runs `hook` (synchronously, after our children were SIGKILLed) if the test process exits or is
 * killed by SIGTERM/SIGINT/SIGHUP. Returns the function that unregisters it.
 */
export function atExitSync(hook: () => void): () => void {
  const hooks = safetyNet().hooks;
  hooks.add(hook);
  return () => hooks.delete(hook);
}

/** Removes `dir` when the test process exits, unless `forgetTempDir` ran first. */
export function removeTempDirAtExit(dir: string): void {
  safetyNet().tempDirs.add(dir);
}

export function forgetTempDir(dir: string): void {
  safetyNet().tempDirs.delete(dir);
}

/** Removes a temp dir now (and stops tracking it for the exit hook). */
export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  forgetTempDir(dir);
}

// --- registry --------------------------------------------------------------------------------

/**
 * What a test file started. `afterAll(() => registry.stopAll())` stops everything, newest first,
 * and reports every failure rather than the first.
 */
export class ProcessRegistry {
  private readonly items = new Set<Stoppable>();

  add<T extends Stoppable>(item: T): T {
    this.items.add(item);
    return item;
  }

  delete(item: Stoppable): void {
    this.items.delete(item);
  }

  get size(): number {
    return this.items.size;
  }

  async stopAll(): Promise<void> {
    const all = [...this.items].reverse();
    this.items.clear();
    const results = await Promise.allSettled(all.map((i) => i.stop()));
    const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    if (errors.length > 0) throw new AggregateError(errors, `${errors.length} of ${all.length} test servers failed to stop`);
  }
}

/**
 * The registry the `start*` helpers use unless given another. Module state, so per test file under
 * vitest's default isolation: `afterAll(stopAll)` in each file.
 */
export const defaultRegistry = new ProcessRegistry();

export function stopAll(): Promise<void> {
  return defaultRegistry.stopAll();
}

// --- managed child process -------------------------------------------------------------------

export interface StartProcessOptions {
  /** Short label for messages, e.g. `Xvnc :123`. */
  name: string;
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Combined stdout+stderr tail kept for error messages. Default 64 KiB. */
  outputLimitBytes?: number;
  /** How long the spawn itself (exec) may take. Default 5 s. */
  spawnTimeoutMs?: number;
}

export interface StopOptions {
  /** Grace after SIGTERM before SIGKILL. Default 3 s. */
  termTimeoutMs?: number;
  /** How long to wait for the exit after SIGKILL. Default 3 s. */
  killTimeoutMs?: number;
}

export class ManagedProcess implements Stoppable {
  readonly pid: number;
  readonly startedAt = performance.now();
  /** Settles when the process has exited and been reaped. */
  readonly exited: Promise<ExitInfo>;
  private readonly out: RingBuffer;
  private exit: ExitInfo | undefined;

  private constructor(
    readonly name: string,
    readonly command: string,
    readonly args: readonly string[],
    private readonly child: ChildProcess,
    outputLimitBytes: number,
  ) {
    if (child.pid === undefined) throw new Error(`${name}: spawn returned no pid`);
    this.pid = child.pid;
    this.out = new RingBuffer(outputLimitBytes);
    // Always drain both pipes: a full pipe would block the server mid-handshake.
    child.stdout?.on('data', (d: Buffer) => this.out.push(d));
    child.stderr?.on('data', (d: Buffer) => this.out.push(d));
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        safetyNet().live.delete(this);
        resolve(this.exit);
      });
    });
    safetyNet().live.add(this);
  }

  static async start(opts: StartProcessOptions): Promise<ManagedProcess> {
    const child = spawn(opts.command, [...opts.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    });
    const timeoutMs = opts.spawnTimeoutMs ?? 5000;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${opts.name}: spawn of ${opts.command} did not complete within ${timeoutMs} ms`));
      }, timeoutMs);
      child.once('spawn', () => {
        clearTimeout(timer);
        resolve();
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`${opts.name}: cannot run ${opts.command}: ${err.message}`, { cause: err }));
      });
    });
    return new ManagedProcess(opts.name, opts.command, opts.args, child, opts.outputLimitBytes ?? 64 * 1024);
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  get exitInfo(): ExitInfo | undefined {
    return this.exit;
  }

  /** Tail of combined stdout+stderr. */
  output(): string {
    return this.out.toString();
  }

  /** One line of state plus the output tail, for error messages. */
  describe(): string {
    const state =
      this.exit === undefined
        ? 'still running'
        : this.exit.signal !== null
          ? `killed by ${this.exit.signal}`
          : `exited with code ${String(this.exit.code)}`;
    return `${this.name} (pid ${this.pid}) ${state}; command: ${this.command} ${this.args.join(' ')}\n--- output tail ---\n${this.output()}`;
  }

  /**
   * SIGTERM, then SIGKILL after `termTimeoutMs`, then await the exit. `ChildProcess.kill` signals
   * exactly this PID and refuses once the child is reaped, so a recycled PID is never hit.
   */
  async stop(opts: StopOptions = {}): Promise<void> {
    if (this.exit !== undefined) return;
    this.child.kill('SIGTERM');
    if (await settlesWithin(this.exited, opts.termTimeoutMs ?? 3000)) return;
    this.child.kill('SIGKILL');
    if (await settlesWithin(this.exited, opts.killTimeoutMs ?? 3000)) return;
    throw new Error(`${this.name} (pid ${this.pid}) did not exit after SIGKILL`);
  }

  /** Sends `signal` to this very process; nothing once it has exited (its PID may be someone else's by then). */
  signal(signal: NodeJS.Signals): void {
    if (this.exit === undefined) this.child.kill(signal);
  }

  /** Synchronous SIGKILL for the process-exit hook. */
  killNow(): void {
    if (this.exit === undefined) this.child.kill('SIGKILL');
  }
}

async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// --- one-shot commands -----------------------------------------------------------------------

export interface RunCommandOptions {
  input?: string | Buffer;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface RunCommandResult {
  stdout: Buffer;
  stderr: string;
}

/**
 * Runs a short command to completion (openssl, vncpasswd, useradd). Rejects on a non-zero exit or
 * after `timeoutMs` (default 20 s), with stderr in the message.
 */
export async function runCommand(command: string, args: readonly string[], opts: RunCommandOptions = {}): Promise<RunCommandResult> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const child = spawn(command, [...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: opts.env ?? process.env,
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
  });
  const stdout: Buffer[] = [];
  const stderr = new RingBuffer(16 * 1024);
  child.stdout.on('data', (d: Buffer) => stdout.push(d));
  child.stderr.on('data', (d: Buffer) => stderr.push(d));
  child.stdin.on('error', () => {}); // EPIPE if the command exits without reading; the exit code tells.
  child.stdin.end(opts.input ?? '');
  const what = `${command} ${args.join(' ')}`;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what}: no exit within ${timeoutMs} ms\n${stderr.toString()}`));
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${command}: ${err.message}`, { cause: err }));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout: Buffer.concat(stdout), stderr: stderr.toString() });
      else reject(new Error(`${what}: exited with ${signal ?? `code ${String(code)}`}\n${stderr.toString()}`));
    });
  });
}

/** States of every thread of `pid` ('T' stopped, 'S' sleeping, …); empty once it has exited. */
function threadStates(pid: number): string[] {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const states: string[] = [];
  for (const tid of tids) {
    try {
      states.push(statFieldsAfterComm(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1'))[0] ?? '?');
    } catch {
      // the thread exited meanwhile
    }
  }
  return states;
}

/**
 * Blocks (1 ms steps, at most `timeoutMs`) until every thread of every PID is stopped by a signal.
 * SIGSTOP is delivered asynchronously: a test that sends a request right after `kill(pid, 'SIGSTOP')`
 * can otherwise still be answered.
 */
export function waitUntilStopped(pids: readonly number[], timeoutMs: number, label: string): void {
  const tick = new Int32Array(new SharedArrayBuffer(4));
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const running = pids.filter((pid) => threadStates(pid).some((st) => !'TtZX'.includes(st)));
    if (running.length === 0) return;
    if (performance.now() > deadline) throw new Error(`${label}: PIDs ${running.join(', ')} not stopped ${timeoutMs} ms after SIGSTOP`);
    Atomics.wait(tick, 0, 0, 1);
  }
}
