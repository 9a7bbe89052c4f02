import { Worker } from 'node:worker_threads';
import { mergeStats, type Role, type RoleStats } from './stats.js';
import type { FuzzJob } from './worker.js';

export type FuzzOptions = {
  /** Inputs per role. */
  inputs: number;
  seed: number;
  /** Worker threads; each runs an equal slice of every role. */
  workers: number;
  roles?: readonly Role[];
};

export type FuzzFigures = {
  seed: number;
  inputsPerRole: number;
  workers: number;
  wallMs: number;
  /** Per role, summed over the workers: CPU-ish time is the sum of their run times. */
  roles: (RoleStats & { workerMs: number[] })[];
  /** Each worker's heap after its whole run: a leak across inputs would show here. */
  workerHeapUsedBytes: number[];
};

type WorkerReply = { results: { stats: RoleStats; ms: number }[]; heapUsedBytes: number };

/**
 * The fuzz run behind test/rfb/fuzz-million.test.ts and scripts/fuzz-rfb.mts: every role's inputs
 * split evenly over worker threads (the engines are pure, so a slice is reproducible alone).
 */
export async function runFuzz(opts: FuzzOptions): Promise<FuzzFigures> {
  const roles = opts.roles ?? (['client', 'server', 'serverInit', 'clientFilter', 'serverFramer'] as const);
  const t0 = performance.now();
  const replies = await Promise.all(
    Array.from({ length: opts.workers }, (_, w) => {
      const start = Math.floor((opts.inputs * w) / opts.workers);
      const end = Math.floor((opts.inputs * (w + 1)) / opts.workers);
      const jobs: FuzzJob[] = roles.map((role) => ({ role, seed: opts.seed, start, count: end - start }));
      return runWorker(jobs);
    }),
  );
  return {
    seed: opts.seed,
    inputsPerRole: opts.inputs,
    workers: opts.workers,
    wallMs: Math.round(performance.now() - t0),
    roles: roles.map((_, i) => {
      const parts = replies.map((r) => r.results[i]!);
      const merged = parts.map((p) => p.stats).reduce((a, b) => mergeStats(a, b));
      return { ...merged, workerMs: parts.map((p) => Math.round(p.ms)) };
    }),
    workerHeapUsedBytes: replies.map((r) => r.heapUsedBytes),
  };
}

function runWorker(jobs: FuzzJob[]): Promise<WorkerReply> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./worker-entry.mjs', import.meta.url), { workerData: jobs });
    let reply: WorkerReply | null = null;
    worker.once('message', (m: WorkerReply) => (reply = m));
    worker.once('error', reject);
    worker.once('exit', (code) => (reply ? resolve(reply) : reject(new Error(`fuzz worker exited with code ${code} and no result`))));
  });
}
