/**
 * One-session figures: throughput and round-trip latency of a single console session through
 * vncgate (ws and wss) against direct TCP to the same synthetic backend, interleaved in one run.
 *
 *   npx tsx scripts/bench-session.mts [--seconds 3] [--rounds 3]
 *
 * Throughput: `stream` backend, the client asks for the next update as soon as one is complete
 * (256 KiB Raw updates), so the figure is what one noVNC-like client can pull. Latency: `pingpong`
 * backend, one 1×1 update per request, round trip measured per request. Medians over rounds.
 * Prints a table on stdout; progress on stderr.
 */
import { performance } from 'node:perf_hooks';
import { connect as netConnect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/index.js';
import { createLogger } from '../src/log.js';
import { buildServer } from '../src/proxy/server.js';
import { RfbClientHandshake, ServerInitReader, clientInit } from '../src/rfb/index.js';
import { startSyntheticServer } from '../src/synthetic/index.js';
import { MemoryTokenStore } from '../src/tokens/index.js';
import { ensureDevCertificate } from '../src/cli/dev-cert.js';

const { values } = parseArgs({ options: { seconds: { type: 'string' }, rounds: { type: 'string' } } });
const SECONDS = Number(values.seconds ?? 3);
const ROUNDS = Number(values.rounds ?? 3);

type Transport = { write(b: Buffer): void; onData(f: (b: Buffer) => void): void; close(): void };

function tcpTransport(port: number): Promise<Transport> {
  return new Promise((resolve, reject) => {
    const s: Socket = netConnect({ host: '127.0.0.1', port, noDelay: true }, () =>
      resolve({ write: (b) => s.write(b), onData: (f) => s.on('data', f), close: () => s.destroy() }),
    );
    s.once('error', reject);
  });
}

function wsTransport(url: string): Promise<Transport> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['binary'], { perMessageDeflate: false, rejectUnauthorized: false });
    const early: Buffer[] = [];
    let sink: ((b: Buffer) => void) | null = null;
    ws.on('message', (d: Buffer) => (sink ? sink(d) : early.push(d)));
    ws.once('open', () =>
      resolve({
        write: (b) => ws.send(b),
        onData: (f) => {
          sink = f;
          for (const b of early.splice(0)) f(b);
        },
        close: () => ws.terminate(),
      }),
    );
    ws.once('error', reject);
  });
}

/** Handshake (None), ClientInit, ServerInit; then `run` gets a reader of the update stream. */
async function session(t: Transport): Promise<{ bpp: number; width: number; next: (n: number) => Promise<void> }> {
  const engine = new RfbClientHandshake({ security: ['none'] });
  let reader: ServerInitReader | null = null;
  let buffered: Buffer[] = [];
  let have = 0;
  let want = 0;
  let wake: (() => void) | null = null;
  let init: { bpp: number; width: number } | null = null;
  let initDone: (() => void) | null = null;
  const initP = new Promise<void>((r) => (initDone = r));
  t.onData((chunk) => {
    if (!init) {
      if (!reader) {
        for (const a of engine.receive(chunk)) {
          if (a.type === 'send') t.write(a.bytes);
          else if (a.type === 'failed') throw a.error;
          else if (a.type === 'established') {
            reader = new ServerInitReader();
            t.write(clientInit(true));
          }
        }
        return;
      }
      const r = reader.receive(chunk);
      if (r.type === 'done') {
        init = { bpp: r.init.pixelFormat.bitsPerPixel / 8, width: r.init.width };
        initDone!();
      }
      return;
    }
    buffered.push(chunk);
    have += chunk.length;
    if (want > 0 && have >= want && wake) {
      const w = wake;
      wake = null;
      w();
    }
  });
  await initP;
  // Reads exactly n bytes of the stream (discarding them).
  const consume = (n: number): Promise<Buffer> =>
    new Promise((resolve) => {
      const finish = (): void => {
        const all = Buffer.concat(buffered);
        buffered = all.length > n ? [all.subarray(n)] : [];
        have = all.length - n;
        want = 0;
        resolve(all.subarray(0, n));
      };
      if (have >= n) finish();
      else {
        want = n;
        wake = finish;
      }
    });
  return {
    bpp: init!.bpp,
    width: init!.width,
    // One FramebufferUpdateRequest (§7.5.3) and its one-rectangle Raw answer (§7.6.1).
    next: async () => {
      const req = Buffer.alloc(10);
      req.writeUInt8(3, 0);
      req.writeUInt8(1, 1);
      req.writeUInt16BE(1, 6);
      req.writeUInt16BE(1, 8);
      t.write(req);
      const head = await consume(4 + 12);
      const w = head.readUInt16BE(8);
      const h = head.readUInt16BE(10);
      await consume(w * h * init!.bpp);
    },
  };
}

async function throughput(t: Transport): Promise<number> {
  const s = await session(t);
  let bytes = 0;
  const until = performance.now() + SECONDS * 1000;
  const start = performance.now();
  // Keep two requests in flight, as noVNC effectively does while drawing.
  while (performance.now() < until) {
    await s.next(0);
    bytes += 256 * 1024;
  }
  const secs = (performance.now() - start) / 1000;
  t.close();
  return bytes / secs / 1e6;
}

async function latency(t: Transport): Promise<number[]> {
  const s = await session(t);
  const samples: number[] = [];
  const until = performance.now() + SECONDS * 1000;
  while (performance.now() < until) {
    const t0 = performance.now();
    await s.next(0);
    samples.push((performance.now() - t0) * 1000);
  }
  t.close();
  return samples.sort((a, b) => a - b);
}

const q = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
const median = (xs: number[]): number => q([...xs].sort((a, b) => a - b), 0.5);

const stream = await startSyntheticServer({ mode: 'stream' });
const ping = await startSyntheticServer({ mode: 'pingpong' });
const tokens = new MemoryTokenStore();
const { certFile, keyFile } = ensureDevCertificate('.cache/bench');
const log = createLogger({ level: 'silent' });
const plain = await buildServer({ config: loadConfig({ env: {}, overrides: { listen: ['127.0.0.1:0'], tls: { plainHttp: true }, log: { level: 'silent' } } }), tokens, log });
const tls = await buildServer({ config: loadConfig({ env: {}, overrides: { listen: ['127.0.0.1:0'], tls: { certFile, keyFile }, log: { level: 'silent' } } }), tokens, log });

async function via(kind: 'tcp' | 'ws' | 'wss', port: number): Promise<Transport> {
  if (kind === 'tcp') return tcpTransport(port);
  const t = await tokens.issue({ kind: 'static', host: '127.0.0.1', port }, 60);
  const srv = kind === 'ws' ? plain : tls;
  return wsTransport(`${kind}://${srv.addresses[0]}/websockify?token=${t.token}`);
}

const kinds = ['tcp', 'ws', 'wss'] as const;
const tp: Record<string, number[]> = { tcp: [], ws: [], wss: [] };
const rtt: Record<string, { p50: number[]; p99: number[] }> = { tcp: { p50: [], p99: [] }, ws: { p50: [], p99: [] }, wss: { p50: [], p99: [] } };
for (let round = 1; round <= ROUNDS; round++) {
  for (const k of kinds) {
    process.stderr.write(`round ${round}/${ROUNDS}: ${k} throughput… `);
    tp[k]!.push(await throughput(await via(k, stream.port)));
    process.stderr.write(`${tp[k]!.at(-1)!.toFixed(0)} MB/s; latency… `);
    const s = await latency(await via(k, ping.port));
    rtt[k]!.p50.push(q(s, 0.5));
    rtt[k]!.p99.push(q(s, 0.99));
    process.stderr.write(`p50 ${q(s, 0.5).toFixed(0)} µs\n`);
  }
}
const base = median(tp.tcp!);
const baseRtt = median(rtt.tcp!.p50);
const lines = [
  `one session, ${ROUNDS} interleaved rounds of ${SECONDS} s, medians; node ${process.version}`,
  'path   throughput MB/s   ×direct   RTT p50 µs   +p50 µs   RTT p99 µs',
  ...kinds.map((k) => {
    const t = median(tp[k]!);
    const p50 = median(rtt[k]!.p50);
    return `${k.padEnd(6)} ${t.toFixed(0).padStart(15)}   ${(t / base).toFixed(2).padStart(7)}   ${p50.toFixed(0).padStart(10)}   ${(p50 - baseRtt).toFixed(0).padStart(7)}   ${median(rtt[k]!.p99).toFixed(0).padStart(10)}`;
  }),
];
process.stdout.write(`${lines.join('\n')}\n`);
await plain.close();
await tls.close();
await stream.close();
await ping.close();
