import { parentPort, workerData } from 'node:worker_threads';
import { startSyntheticServer, type SyntheticServerOptions } from '../synthetic/index.js';

/**
 * The synthetic RFB server on its own thread, so the load tester's clients and the server they
 * measure do not share one event loop. Messages: the parent sends "stats" or "close"; we answer
 * {stats} or {closed}.
 */
const port = parentPort;
if (!port) throw new Error('backend-worker runs as a worker thread');
const server = await startSyntheticServer(workerData as SyntheticServerOptions);
port.postMessage({ listening: { host: server.host, port: server.port } });
port.on('message', (m: unknown) => {
  if (m === 'stats') port.postMessage({ stats: server.stats() });
  else if (m === 'close') void server.close().then(() => port.postMessage({ closed: true }));
});
