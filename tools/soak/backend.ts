import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/package-root.js';
import { Child, waitUntil } from './procs.js';

/**
 * The VNC backend every soak session ends at: the synthetic RFB server (stream mode: each
 * FramebufferUpdateRequest answered with checkable Raw pixels) from the build, in a process of its
 * own, so the soak's clients and the server do not share an event loop (and it runs the same under
 * tsx and vitest, which a worker thread from source does not).
 */
export type SoakBackend = { readonly host: string; readonly port: number; stop(): Promise<void> };

export async function startSoakBackend(opts: { updateBytes: number; maxClients: number }): Promise<SoakBackend> {
  const entry = join(PACKAGE_ROOT, 'dist', 'tools', 'synthetic', 'index.js');
  let port = 0;
  const child = Child.start({
    name: 'synthetic VNC backend',
    command: process.execPath,
    args: [
      '--input-type=module',
      '-e',
      `import { startSyntheticServer } from ${JSON.stringify(entry)};
       const s = await startSyntheticServer({ mode: 'stream', width: 128, height: 64, streamUpdateBytes: ${opts.updateBytes}, maxClients: ${opts.maxClients} });
       console.log(JSON.stringify({ port: s.port }));
       process.on('SIGTERM', () => void s.close().then(() => process.exit(0)));`,
    ],
    cwd: PACKAGE_ROOT,
    onLine: (line, stream) => {
      if (stream === 'stdout' && line.startsWith('{"port"')) port = (JSON.parse(line) as { port: number }).port;
    },
  });
  await waitUntil('synthetic backend listening', 15_000, () => {
    if (!child.running) throw new Error(child.describe());
    return port > 0;
  }, 20).catch((err: unknown) => {
    throw new Error(`${String(err)} (is the build there? npm run build)\n${child.describe()}`);
  });
  return { host: '127.0.0.1', port, stop: () => child.stop() };
}
