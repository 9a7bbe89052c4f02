/**
 * One-session figures: throughput and round-trip latency of a single console session through
 * vncgate (ws and wss) against direct TCP to the same synthetic backend, interleaved in one run.
 *
 *   npx tsx scripts/bench-session.mts [--seconds 3] [--rounds 3]
 *
 * Throughput: `stream` backend, the client asks for the next update as soon as one is complete
 * (256 KiB Raw updates), so the figure is what one noVNC-like client can pull. Latency: `pingpong`
 * backend, one 1×1 update per request, round trip measured per request. Medians over rounds.
 * vncgate is the built binary in its own process (run `npm run build` first). Prints a table on
 * stdout; progress on stderr.
 */
import { performance } from 'node:perf_hooks';
import { connect as netConnect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { SignJWT } from 'jose';
import { RfbClientHandshake, ServerInitReader, clientInit } from '../src/rfb/index.js';
import { ensureDevCertificate } from '../tools/cli/dev-cert.js';

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

/**
 * Handshake (None), ClientInit, ServerInit; then `next()` sends one FramebufferUpdateRequest
 * (§7.5.3) and resolves when its one-rectangle Raw answer (§7.6.1) has fully arrived. The update
 * stream is parsed in place (a 16-byte header, then a byte count to skip): the client must not be
 * the bottleneck it measures.
 */
async function session(t: Transport): Promise<{ next: () => Promise<void> }> {
  const engine = new RfbClientHandshake({ security: ['none'] });
  let reader: ServerInitReader | null = null;
  let bpp = 4;
  let ready: (() => void) | null = null;
  const initP = new Promise<void>((r) => (ready = r));
  let piping = false;
  const header = Buffer.alloc(16);
  let headerHave = 0;
  let skip = 0;
  let done: (() => void) | null = null;
  const onStream = (chunk: Buffer): void => {
    let i = 0;
    while (i < chunk.length) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - i);
        skip -= n;
        i += n;
        if (skip === 0) {
          const d = done;
          done = null;
          d?.();
        }
        continue;
      }
      const n = Math.min(16 - headerHave, chunk.length - i);
      chunk.copy(header, headerHave, i, i + n);
      headerHave += n;
      i += n;
      if (headerHave === 16) {
        headerHave = 0;
        skip = header.readUInt16BE(8) * header.readUInt16BE(10) * bpp;
      }
    }
  };
  t.onData((chunk) => {
    if (piping) return onStream(chunk);
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
      bpp = r.init.pixelFormat.bitsPerPixel / 8;
      piping = true;
      ready!();
    }
  });
  await initP;
  const req = Buffer.from([3, 1, 0, 0, 0, 0, 0, 1, 0, 1]);
  return {
    next: () =>
      new Promise<void>((resolve) => {
        done = resolve;
        t.write(req);
      }),
  };
}

async function throughput(t: Transport): Promise<number> {
  const s = await session(t);
  let bytes = 0;
  const until = performance.now() + SECONDS * 1000;
  const start = performance.now();
  while (performance.now() < until) {
    await s.next();
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
    await s.next();
    samples.push((performance.now() - t0) * 1000);
  }
  t.close();
  return samples.sort((a, b) => a - b);
}

const q = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
const median = (xs: number[]): number => q([...xs].sort((a, b) => a - b), 0.5);

// Client, synthetic backends and vncgate each run in their own process, as in production, so the
// direct-TCP baseline pays the same cross-process wake-ups as the proxied paths.
const backends = spawn(
  process.execPath,
  [
    '--input-type=module',
    '-e',
    `import { startSyntheticServer } from './dist/tools/synthetic/index.js';
     const s = await startSyntheticServer({ mode: 'stream' });
     const p = await startSyntheticServer({ mode: 'pingpong' });
     console.log(JSON.stringify({ stream: s.port, ping: p.port }));
     process.on('SIGTERM', () => process.exit(0));`,
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
const ports = JSON.parse(await new Promise<string>((res) => createInterface({ input: backends.stdout! }).once('line', res))) as { stream: number; ping: number };
const stream = { port: ports.stream };
const ping = { port: ports.ping };
const state = resolve('.cache/bench');
mkdirSync(state, { recursive: true });
const { certFile, keyFile } = ensureDevCertificate(state);
const secret = randomBytes(32).toString('hex');
writeFileSync(join(state, 'jwt-secret'), `${secret}\n`, { mode: 0o600 });

async function startVncgate(tls: boolean): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, ['bin/vncgate.js', 'serve'], {
    env: {
      ...process.env,
      VNCGATE_LISTEN: '127.0.0.1:0',
      VNCGATE_LOG_LEVEL: 'warn',
      VNCGATE_API_JWT_SECRET_FILE: join(state, 'jwt-secret'),
      VNCGATE_API_JWT_ISSUER: 'bench',
      VNCGATE_API_JWT_AUDIENCE: 'vncgate',
      // The backends listen on loopback, which the target policy refuses unless named.
      VNCGATE_ALLOWED_TARGETS: '127.0.0.0/8,::1/128',
      ...(tls ? { VNCGATE_TLS_CERT_FILE: certFile, VNCGATE_TLS_KEY_FILE: keyFile } : { VNCGATE_PLAIN_HTTP: 'true' }),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((res, rej) => {
    createInterface({ input: child.stdout! }).once('line', res);
    child.once('exit', (c) => rej(new Error(`vncgate serve exited with ${c}`)));
  });
  const { listening } = JSON.parse(line) as { listening: string[] };
  return { child, address: listening[0]! };
}
const plain = await startVncgate(false);
const tls = await startVncgate(true);
const bearer = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer('bench').setAudience('vncgate').setExpirationTime('1h').sign(Buffer.from(secret));

const naiveChild = spawn(process.execPath, ['scripts/naive-relay.mjs'], { stdio: ['ignore', 'pipe', 'inherit'] });
const naivePort = (JSON.parse(await new Promise<string>((res) => createInterface({ input: naiveChild.stdout! }).once('line', res))) as { port: number }).port;
async function via(kind: 'tcp' | 'ws' | 'wss' | 'naive', port: number): Promise<Transport> {
  if (kind === 'tcp') return tcpTransport(port);
  if (kind === 'naive') return wsTransport(`ws://127.0.0.1:${naivePort}/?port=${port}`);
  const srv = kind === 'ws' ? plain : tls;
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // our own development certificate, loopback only
  const res = await fetch(`${kind === 'ws' ? 'http' : 'https'}://${srv.address}/v1/console-tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: JSON.stringify({ target: `127.0.0.1:${port}`, ttlSeconds: 60 }),
  });
  const { token } = (await res.json()) as { token: string };
  return wsTransport(`${kind}://${srv.address}/websockify?token=${token}`);
}

const kinds = ['tcp', 'naive', 'ws', 'wss'] as const;
const tp: Record<string, number[]> = { tcp: [], naive: [], ws: [], wss: [] };
const rtt: Record<string, { p50: number[]; p99: number[] }> = { tcp: { p50: [], p99: [] }, naive: { p50: [], p99: [] }, ws: { p50: [], p99: [] }, wss: { p50: [], p99: [] } };
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
plain.child.kill('SIGTERM');
tls.child.kill('SIGTERM');
backends.kill('SIGTERM');
naiveChild.kill('SIGTERM');
