import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import { buildServer, type VncgateServer } from '../../src/proxy/server.js';
import { ReadBuffer } from '../../src/proxy/read-buffer.js';
import { MemoryTokenStore } from '../../src/tokens/index.js';
import { streamWithStalls } from '../support/relay-integrity.js';
import { startTinyVncServer } from '../support/tiny-vnc-server.js';
import { wsRfbConnect } from '../support/ws-rfb-client.js';

/**
 * A deliberately slow consumer on either side must not make vncgate buffer without bound: the
 * fast side is paused (TCP or WebSocket backpressure) while the slow side's queue is above the
 * high-water mark, and resumed when it drains.
 */
const HWM = 256 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let srv: VncgateServer;
const tokens = new MemoryTokenStore();

beforeAll(async () => {
  const config = loadConfig({
    env: {},
    overrides: { listen: ['127.0.0.1:0'], tls: { plainHttp: true }, session: { highWaterMarkBytes: HWM }, backends: { allowedTargets: ['127.0.0.0/8', '::1/128'] }, log: { level: 'silent' } },
  });
  srv = await buildServer({ config, tokens, log: createLogger({ level: 'silent' }) });
});
afterAll(async () => srv.close());

describe('backpressure', () => {
  it('a browser that stops reading pauses the console endpoint; memory stays bounded', async () => {
    const backend = await startTinyVncServer({ after: 'flood' });
    try {
      const t = await tokens.issue({ kind: 'static', host: '127.0.0.1', port: backend.port }, 60);
      const r = await wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${t.token}`);
      if (!r.ok) throw new Error(`session failed: ${r.code}`);
      r.ws.pause(); // the slow consumer: stop reading from the socket altogether
      await sleep(1500);
      const [session] = srv.registry.list();
      expect(session?.status).toBe('piping');
      const floodedA = backend.flooded();
      const queuedA = session!.queuedToBrowserBytes;
      await sleep(1500);
      const floodedB = backend.flooded();
      // The producer has been stopped by TCP backpressure: nothing more gets through.
      expect(floodedB - floodedA).toBeLessThanOrEqual(128 * 1024);
      // What vncgate holds in user space is bounded by the high-water mark plus one read.
      expect(queuedA).toBeLessThanOrEqual(HWM + ReadBuffer.MAX + 64 * 1024);
      expect(session!.queuedToBrowserBytes).toBeLessThanOrEqual(HWM + ReadBuffer.MAX + 64 * 1024);
      // Everything that left the producer sits in kernel socket buffers (a few MiB at most).
      expect(floodedB).toBeLessThan(48 * 1024 * 1024);

      // Resuming the consumer resumes the flow.
      let received = 0;
      r.ws.on('message', (d: Buffer) => (received += d.length));
      r.ws.resume();
      await sleep(1000);
      expect(received).toBeGreaterThan(1024 * 1024);
      expect(backend.flooded()).toBeGreaterThan(floodedB + 1024 * 1024);
      r.ws.terminate();
    } finally {
      await backend.close();
    }
  });

  it('every byte arrives intact while the receive buffer is reused and while the browser stalls', async () => {
    // The backend's receive buffer is reused only when nothing references the last chunk; a
    // browser that keeps stalling leaves writes pending, which must get fresh buffers instead.
    const r = await streamWithStalls(srv, tokens, { scheme: 'ws' });
    expect(r.mismatchAt).toBe(-1);
    expect(r.checked).toBeGreaterThan(8 * 1024 * 1024);
    expect(r.sawQueue).toBe(true);
    // Both paths were taken: buffers reused after writes that went through, fresh ones after stalls.
    expect(r.reads?.reused).toBeGreaterThan(10);
    expect(r.reads?.allocated).toBeGreaterThan(1);
  });

  it('a console endpoint that stops reading pauses the browser; memory stays bounded', async () => {
    const backend = await startTinyVncServer({ after: 'stall' });
    try {
      const t = await tokens.issue({ kind: 'static', host: '127.0.0.1', port: backend.port }, 60);
      const r = await wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${t.token}`);
      if (!r.ok) throw new Error(`session failed: ${r.code}`);
      const msg = Buffer.alloc(64 * 1024, 1);
      // The browser keeps sending for two seconds, as fast as its own buffer allows.
      const until = Date.now() + 2000;
      while (Date.now() < until) {
        if (r.ws.bufferedAmount < 8 * 1024 * 1024) r.ws.send(msg);
        await sleep(5);
      }
      const [session] = srv.registry.list();
      expect(session?.status).toBe('piping');
      // vncgate stopped reading the WebSocket once the endpoint's socket was full, so the excess
      // piles up in the sender's own buffer, not in vncgate.
      expect(r.ws.bufferedAmount).toBeGreaterThan(1024 * 1024);
      // At most the socket buffer plus the one message that arrived as it filled.
      expect(session!.queuedToBackendBytes).toBeLessThanOrEqual(256 * 1024);
      r.ws.terminate();
    } finally {
      await backend.close();
    }
  });
  it('messages that arrive after the endpoint filled up add no drain listener each (one resumes them all)', async () => {
    const backend = await startTinyVncServer({ after: 'stall' });
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const t = await tokens.issue({ kind: 'static', host: '127.0.0.1', port: backend.port }, 60);
      const r = await wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${t.token}`);
      if (!r.ok) throw new Error(`session failed: ${r.code}`);
      // Each round: a large message, then many small ones in the same burst, so that they reach
      // vncgate in the same reads as the message that fills the endpoint's socket; ws hands over
      // every message it has already read, paused or not.
      const big = Buffer.alloc(64 * 1024, 1);
      const key = Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x61]);
      const until = Date.now() + 3000;
      while (Date.now() < until && r.ws.bufferedAmount < 4 * 1024 * 1024) {
        r.ws.send(big);
        for (let i = 0; i < 200; i++) r.ws.send(key);
        await sleep(5);
      }
      await sleep(500);
      expect(srv.registry.list()[0]?.status).toBe('piping');
      expect(warnings).not.toContain('MaxListenersExceededWarning');
      r.ws.terminate();
    } finally {
      process.off('warning', onWarning);
      await backend.close();
    }
  });
});
