import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** One reading of a process from /proc: resident memory and CPU time used so far. */
export type ProcSample = { atMs: number; rssBytes: number; cpuSeconds: number };

let clockTicks: number | null = null;

/** USER_HZ for /proc/PID/stat times; 100 on every Linux we know of, asked once to be sure. */
function ticksPerSecond(): number {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'latin1', timeout: 2_000 }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/**
 * The fields of a /proc/PID/stat (or /proc/PID/task/TID/stat) line after the parenthesised comm,
 * which may itself hold spaces and parentheses: [0] is field 3 (state), [1] field 4 (ppid), ….
 */
export function statFieldsAfterComm(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** utime + stime (fields 14 and 15) of /proc/PID/stat, in ticks. */
export function parseStatCpuTicks(stat: string): number {
  const rest = statFieldsAfterComm(stat);
  return Number(rest[11]) + Number(rest[12]);
}

/** VmRSS of /proc/PID/status, in bytes. */
export function parseStatusRss(status: string): number {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!m) throw new Error('no VmRSS line');
  return Number(m[1]) * 1024;
}

/** Reads `pid` now; throws if the process is gone. */
export function readProc(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  return { atMs: performance.now(), rssBytes: parseStatusRss(status), cpuSeconds: parseStatCpuTicks(stat) / ticksPerSecond() };
}

/**
 * Samples a process (vncgate under load) every `intervalMs` into a timeline, for RSS and CPU per
 * session. The timeline is bounded: past `maxSamples` every other sample is dropped and the
 * interval doubles, so a long soak keeps an even spread at a fixed cost.
 */
export class ProcSampler {
  readonly pid: number;
  readonly #read: (pid: number) => ProcSample;
  readonly #maxSamples: number;
  #intervalMs: number;
  #timer: NodeJS.Timeout | null = null;
  #samples: ProcSample[] = [];
  #peakRss = 0;
  #error: string | null = null;

  constructor(pid: number, opts: { intervalMs?: number; maxSamples?: number; read?: (pid: number) => ProcSample } = {}) {
    this.pid = pid;
    this.#intervalMs = opts.intervalMs ?? 500;
    this.#maxSamples = opts.maxSamples ?? 4_000;
    this.#read = opts.read ?? readProc;
  }

  /** Takes one sample now (null once the process cannot be read). */
  sample(): ProcSample | null {
    if (this.#error !== null) return null;
    try {
      const s = this.#read(this.pid);
      this.#peakRss = Math.max(this.#peakRss, s.rssBytes);
      this.#samples.push(s);
      if (this.#samples.length > this.#maxSamples) {
        this.#samples = this.#samples.filter((_, i) => i % 2 === 0);
        this.#intervalMs *= 2;
        if (this.#timer) this.#restart();
      }
      return s;
    } catch (err) {
      this.#error = `cannot read /proc/${this.pid}: ${(err as Error).message}`;
      this.stop();
      return null;
    }
  }

  start(): void {
    this.sample();
    this.#restart();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  get samples(): readonly ProcSample[] {
    return this.#samples;
  }

  get peakRssBytes(): number {
    return this.#peakRss;
  }

  get error(): string | null {
    return this.#error;
  }

  #restart(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = setInterval(() => this.sample(), this.#intervalMs);
    this.#timer.unref();
  }
}

/** The soft "Max open files" limit of a process (`self` or a PID), or null if unreadable. */
export function readOpenFileLimit(pid: number | 'self' = 'self'): number | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(readFileSync(`/proc/${pid}/limits`, 'latin1'));
    if (!m) return null;
    return m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
  } catch {
    return null;
  }
}
