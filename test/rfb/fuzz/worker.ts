import { parentPort, workerData } from 'node:worker_threads';
import { fuzzClientFilter } from './client-filter-role.js';
import { fuzzClientRole } from './client-role.js';
import { fuzzServerInit } from './server-init-role.js';
import { fuzzServerFramer } from './server-framer-role.js';
import { fuzzServerRole } from './server-role.js';
import type { Role, RoleStats } from './stats.js';

/** One slice of a fuzz run, in a worker thread: `{ role, seed, start, count }` in, RoleStats out. */
export type FuzzJob = { role: Role; seed: number; start: number; count: number };

const RUNNERS: Record<Role, (seed: number, start: number, count: number) => RoleStats> = {
  client: fuzzClientRole,
  server: fuzzServerRole,
  serverInit: fuzzServerInit,
  clientFilter: fuzzClientFilter,
  serverFramer: fuzzServerFramer,
};

// Engine errors are created by the hundred thousand; their stack traces are never read here, and
// capturing them was a tenth of the time. This isolate is the fuzzer's alone.
Error.stackTraceLimit = 0;

const jobs = workerData as FuzzJob[];
const results = jobs.map((job) => {
  const t0 = performance.now();
  const stats = RUNNERS[job.role](job.seed, job.start, job.count);
  return { stats, ms: performance.now() - t0 };
});
parentPort!.postMessage({ results, heapUsedBytes: process.memoryUsage().heapUsed });
