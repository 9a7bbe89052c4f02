import { expect } from 'vitest';
import type { VncgateServer } from '../../src/proxy/server.js';
import type { TokenStore } from '../../src/tokens/index.js';
import { SEQUENCE_PATTERN, startTinyVncServer } from './tiny-vnc-server.js';
import { wsRfbConnect } from './ws-rfb-client.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Streams SEQUENCE_PATTERN from a backend through `srv` to a client that alternately reads and
 * stalls every 40 ms for `ms`, checks every byte it received, and returns what the session's
 * receive buffer did. The stalls leave vncgate's writes queued, so both the reused-buffer and the
 * fresh-buffer paths are taken.
 */
export async function streamWithStalls(
  srv: VncgateServer,
  tokens: TokenStore,
  opts: { scheme: 'ws' | 'wss'; ca?: string | Buffer; ms?: number },
): Promise<{ checked: number; mismatchAt: number; sawQueue: boolean; reads: { reused: number; allocated: number } | null }> {
  const backend = await startTinyVncServer({ after: 'sequence' });
  try {
    const t = await tokens.issue({ kind: 'static', host: '127.0.0.1', port: backend.port }, 60);
    const r = await wsRfbConnect(`${opts.scheme}://${srv.addresses[0]}/websockify?token=${t.token}`, opts.ca !== undefined ? { ca: opts.ca } : {});
    if (!r.ok) throw new Error(`session failed: ${r.code}`);
    const [session] = srv.registry.list();
    // Bytes that arrived with ServerInit went to wsRfbConnect; find where in the pattern the
    // first message we see starts (16 random bytes place it unambiguously), then check on.
    const twice = Buffer.concat([SEQUENCE_PATTERN, SEQUENCE_PATTERN]);
    let at = -1;
    let checked = 0;
    let mismatchAt = -1;
    r.ws.on('message', (d: Buffer) => {
      if (mismatchAt >= 0) return;
      if (at < 0) {
        at = twice.indexOf(d.subarray(0, 16));
        expect(at).toBeGreaterThanOrEqual(0);
      }
      for (let i = 0; i < d.length; i++) {
        if (d[i] !== SEQUENCE_PATTERN[(at + i) % SEQUENCE_PATTERN.length]) {
          mismatchAt = checked + i;
          return;
        }
      }
      at += d.length;
      checked += d.length;
    });
    let sawQueue = false;
    const until = Date.now() + (opts.ms ?? 3000);
    for (let round = 0; Date.now() < until && mismatchAt < 0 && round < 1000; round++) {
      r.ws.resume();
      await sleep(40);
      r.ws.pause();
      await sleep(40);
      if ((session?.queuedToBrowserBytes ?? 0) > 0) sawQueue = true;
    }
    r.ws.resume();
    const reads = session?.backendReads ?? null;
    r.ws.terminate();
    return { checked, mismatchAt, sawQueue, reads };
  } finally {
    await backend.close();
  }
}
