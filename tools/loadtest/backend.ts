import { Worker } from 'node:worker_threads';
import type { SyntheticServerOptions, SyntheticStats } from '../synthetic/index.js';

export type BackendHandle = {
  readonly host: string;
  readonly port: number;
  stats(): Promise<SyntheticStats>;
  close(): Promise<void>;
};

type WorkerMessage = { listening: { host: string; port: number } } | { stats: SyntheticStats } | { closed: true };

/**
 * Starts the synthetic RFB server (stream, pingpong, or demo) in a worker thread of this process,
 * for a load test that names no `--backend`. Options as startSyntheticServer's, minus the logger.
 */
export async function startBackendThread(opts: Omit<SyntheticServerOptions, 'logger'>, startTimeoutMs = 10_000): Promise<BackendHandle> {
  // Built code runs backend-worker.js; from TypeScript sources (tsx), the worker needs the same loader.
  const fromSource = import.meta.url.endsWith('.ts');
  const worker = new Worker(new URL(fromSource ? './backend-worker.ts' : './backend-worker.js', import.meta.url), {
    workerData: opts,
    ...(fromSource ? { execArgv: [...process.execArgv, '--import', 'tsx'] } : {}),
  });
  const waiters: ((m: WorkerMessage) => void)[] = [];
  worker.on('message', (m: WorkerMessage) => waiters.shift()?.(m));
  const next = (timeoutMs: number): Promise<WorkerMessage> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`synthetic backend thread did not answer within ${timeoutMs} ms`)), timeoutMs);
      const onError = (err: Error): void => {
        clearTimeout(timer);
        reject(err);
      };
      worker.once('error', onError);
      waiters.push((m) => {
        clearTimeout(timer);
        worker.off('error', onError);
        resolve(m);
      });
    });
  let first: WorkerMessage;
  try {
    first = await next(startTimeoutMs);
  } catch (err) {
    await worker.terminate();
    throw err;
  }
  if (!('listening' in first)) throw new Error('synthetic backend thread: unexpected first message');
  const { host, port } = first.listening;
  let closing: Promise<void> | null = null;
  return {
    host,
    port,
    async stats() {
      const m = next(5_000);
      worker.postMessage('stats');
      const r = await m;
      if (!('stats' in r)) throw new Error('synthetic backend thread: unexpected answer');
      return r.stats;
    },
    close() {
      closing ??= (async () => {
        const m = next(5_000).catch(() => null);
        worker.postMessage('close');
        await m;
        await worker.terminate();
      })();
      return closing;
    },
  };
}
