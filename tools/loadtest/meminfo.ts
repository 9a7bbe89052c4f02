import { readFileSync } from 'node:fs';

/** `MemAvailable` from the text of /proc/meminfo, in bytes; null if the line is missing. */
export function parseMemAvailable(meminfo: string): number | null {
  const m = /^MemAvailable:\s+(\d+)\s+kB$/m.exec(meminfo);
  return m ? Number(m[1]) * 1024 : null;
}

/** The machine's available memory now (Linux /proc/meminfo), or null where there is none. */
export function readMemAvailable(): number | null {
  try {
    return parseMemAvailable(readFileSync('/proc/meminfo', 'latin1'));
  } catch {
    return null;
  }
}

export type MemoryFloorState = {
  floorBytes: number;
  /** Lowest MemAvailable seen (null: never readable). */
  minAvailableBytes: number | null;
  /** Set once a check found MemAvailable below the floor. */
  hit: boolean;
};

/**
 * "Stop opening sessions while the machine is short of memory": `ok()` is false while
 * MemAvailable is below the floor. /proc/meminfo is read at most every `intervalMs`, so calling
 * `ok()` before every session costs nothing. Where MemAvailable cannot be read, the floor cannot
 * protect anything, and `ok()` says yes (the report shows `minAvailableBytes: null`).
 */
export class MemoryFloor {
  readonly floorBytes: number;
  readonly #read: () => number | null;
  readonly #intervalMs: number;
  #lastReadAt = -Infinity;
  #last: number | null = null;
  #min: number | null = null;
  #hit = false;

  constructor(floorBytes: number, opts: { read?: () => number | null; intervalMs?: number } = {}) {
    this.floorBytes = floorBytes;
    this.#read = opts.read ?? readMemAvailable;
    this.#intervalMs = opts.intervalMs ?? 250;
  }

  /** The latest reading, refreshed if older than the interval. */
  available(now = performance.now()): number | null {
    if (now - this.#lastReadAt >= this.#intervalMs) {
      this.#lastReadAt = now;
      this.#last = this.#read();
      if (this.#last !== null) this.#min = this.#min === null ? this.#last : Math.min(this.#min, this.#last);
    }
    return this.#last;
  }

  ok(now = performance.now()): boolean {
    const a = this.available(now);
    if (a === null || a >= this.floorBytes) return true;
    this.#hit = true;
    return false;
  }

  state(): MemoryFloorState {
    return { floorBytes: this.floorBytes, minAvailableBytes: this.#min, hit: this.#hit };
  }
}
