import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSyntheticServer, type SyntheticServer } from '../../../tools/synthetic/index.js';

/** `vncgate loadtest` as scripts and the bench run it: the built command in a process of its own. */
const BIN = resolve(import.meta.dirname, '../../../bin/vncgate.js');

let server: SyntheticServer;
beforeAll(async () => {
  server = await startSyntheticServer({ mode: 'pingpong' });
});
afterAll(async () => {
  await server.close();
});

describe('vncgate loadtest, the process', () => {
  it('exits as soon as it has printed its result', async () => {
    // (Not spawnSync: the synthetic server it talks to runs in this process's event loop.)
    const t0 = performance.now();
    const child = spawn(process.execPath, [BIN, 'loadtest', '--url', 'direct', '--backend', `127.0.0.1:${server.port}`, '--mode', 'setup', '--sessions', '3', '--json'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const status = await new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
    clearTimeout(killer);
    const seconds = (performance.now() - t0) / 1000;
    expect(status).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ mode: 'setup', sessions: { established: 3, failed: 0 } });
    // Three sessions take well under a second; a 10-second close-wait timer kept it alive before.
    expect(seconds).toBeLessThan(8);
  });
});
