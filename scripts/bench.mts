/**
 * `npm run bench`: vncgate against the direct-TCP baseline — and websockify when it is installed,
 * and a minimal Node ws relay — on the same synthetic backends, interleaved in one run, medians
 * over rounds, ratios against the baseline measured in the same run. Every measurement is the
 * shipped `vncgate loadtest` in its own process, next to the backends, vncgate and the relays in
 * theirs (2-core machines: nobody shares an event loop with what it measures).
 *
 *   npm run bench -- [--rounds 5] [--seconds 3] [--setup-sessions 1000] [--idle-sessions 9950]
 *                    [--soak-seconds 0] [--update-bytes 262144] [--no-idle] [--no-websockify]
 *                    [--cpu-prof DIR] [--only tcp,ws,wss]
 *
 * The table goes to stdout; progress to stderr; every raw result to .cache/bench/bench-<time>.json.
 * It stops starting measurements while MemAvailable is below --mem-floor-mib (default 3072) and
 * says so; websockify (a process per connection) is never given more than 200 sessions.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync, createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { ensureDevCertificate } from '../src/cli/dev-cert.js';
import { median, readMemAvailable, readOpenFileLimit, type LoadtestResult } from '../src/loadtest/index.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    'setup-sessions': { type: 'string' },
    'idle-sessions': { type: 'string' },
    'soak-seconds': { type: 'string' },
    'update-bytes': { type: 'string' },
    'mem-floor-mib': { type: 'string' },
    'no-idle': { type: 'boolean' },
    'no-websockify': { type: 'boolean' },
    'cpu-prof': { type: 'string' },
    only: { type: 'string' },
  },
});
const ROUNDS = Number(args.rounds ?? 5);
const SECONDS = Number(args.seconds ?? 3);
const SETUP_SESSIONS = Number(args['setup-sessions'] ?? 1000);
const SOAK_SECONDS = Number(args['soak-seconds'] ?? 0);
const UPDATE_BYTES = Number(args['update-bytes'] ?? 256 * 1024);
const MEM_FLOOR_MIB = Number(args['mem-floor-mib'] ?? 3072);
const WEBSOCKIFY_MAX_SESSIONS = 200;
const ROOT = resolve(import.meta.dirname, '..');
const STATE = join(ROOT, '.cache', 'bench');
const BIN = join(ROOT, 'bin', 'vncgate.js');

const log = (line: string): void => void process.stderr.write(`bench: ${line}\n`);

// ---------------------------------------------------------------- processes

const children = new Set<ChildProcess>();
function cleanup(): void {
  for (const c of children) if (c.exitCode === null && c.pid !== undefined) c.kill('SIGTERM');
}
process.on('exit', cleanup);
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});

/** Spawns a long-running helper; resolves with it and its first stdout line (within `timeoutMs`). */
async function startChild(name: string, cmd: string, argv: string[], opts: { env?: NodeJS.ProcessEnv; logFile?: string; timeoutMs?: number } = {}) {
  const child = spawn(cmd, argv, { cwd: ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const errOut = opts.logFile ? createWriteStream(opts.logFile) : null;
  let tail = '';
  child.stderr!.on('data', (d: Buffer) => {
    errOut?.write(d);
    tail = (tail + d.toString('utf8')).slice(-2000);
  });
  const line = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`${name}: no output within ${opts.timeoutMs ?? 20_000} ms; stderr: ${tail}`)), opts.timeoutMs ?? 20_000);
    createInterface({ input: child.stdout! }).once('line', (l) => {
      clearTimeout(timer);
      res(l);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`${name} exited with ${code}: ${tail}`));
    });
  });
  return { child, line, stop: () => stopChild(child) };
}

function stopChild(child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((res) => {
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(t);
      res();
    });
    child.kill('SIGTERM');
  });
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? res(a.port) : rej(new Error('no port'))));
    });
  });
}

function which(cmd: string): string | null {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- the pieces

mkdirSync(STATE, { recursive: true });
const { certFile, keyFile } = ensureDevCertificate(STATE);
const jwtSecretFile = join(STATE, 'jwt-secret');
writeFileSync(jwtSecretFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });

log('building');
execFileSync('npm', ['run', '-s', 'build'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });

// Redis: the single-use consume is part of every session's setup, as in production.
let redisUrl: string | null = null;
let redis: Awaited<ReturnType<typeof startChild>> | null = null;
if (which('redis-server')) {
  const port = await freePort();
  const dir = join(STATE, 'redis');
  mkdirSync(dir, { recursive: true });
  redis = await startChild('redis-server', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'], {});
  redisUrl = `redis://127.0.0.1:${port}/0`;
  await waitForPort(port);
} else log('redis-server not found: tokens live in vncgate (memory store); setup figures then exclude Redis');

async function waitForPort(port: number): Promise<void> {
  const { connect } = await import('node:net');
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((res) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        res(true);
      });
      s.once('error', () => res(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

// Synthetic backends in their own process: stream (throughput), pingpong (latency, setup, idle).
const backends = await startChild('synthetic backends', process.execPath, [
  '--input-type=module',
  '-e',
  `import { startSyntheticServer } from './dist/synthetic/index.js';
   const stream = await startSyntheticServer({ mode: 'stream', streamUpdateBytes: ${UPDATE_BYTES}, maxClients: 100 });
   const ping = await startSyntheticServer({ mode: 'pingpong', maxClients: 30000 });
   console.log(JSON.stringify({ stream: stream.port, ping: ping.port }));
   process.on('SIGTERM', () => process.exit(0));`,
]);
const ports = JSON.parse(backends.line) as { stream: number; ping: number };

type Served = { name: string; pid: number; address: string; stop: () => Promise<void> };

async function startVncgate(name: string, tls: boolean, opts: { cpuProf?: string } = {}): Promise<Served> {
  const config = join(STATE, `${name}.yaml`);
  writeFileSync(
    config,
    [
      'listen: ["127.0.0.1:0"]',
      tls ? `tls: {certFile: ${JSON.stringify(certFile)}, keyFile: ${JSON.stringify(keyFile)}}` : 'tls: {plainHttp: true}',
      ...(redisUrl ? [`redis: {url: ${JSON.stringify(redisUrl)}}`] : []),
      `api: {jwt: {hs256SecretFile: ${JSON.stringify(jwtSecretFile)}, issuer: bench, audience: vncgate}}`,
      'session: {maxSessions: 100000}',
      // The production default: one line per session start and end.
      'log: {level: info}',
      '',
    ].join('\n'),
  );
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VNCGATE_')));
  const nodeArgs = opts.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', opts.cpuProf] : [];
  const s = await startChild(name, process.execPath, [...nodeArgs, BIN, 'serve', '--config', config], { env, logFile: join(STATE, `${name}.log`) });
  const { listening } = JSON.parse(s.line) as { listening: string[] };
  return { name, pid: s.child.pid!, address: listening[0]!, stop: s.stop };
}

const cpuProf = args['cpu-prof'] ? resolve(args['cpu-prof']) : undefined;
const vgWs = await startVncgate('vncgate-ws', false, cpuProf ? { cpuProf } : {});
const vgWss = await startVncgate('vncgate-wss', true, cpuProf ? { cpuProf } : {});

// The minimal relay: what any Node ws+net relay costs, without tokens, handshake or backpressure.
const naive = await startChild('naive relay', process.execPath, [join(ROOT, 'scripts', 'naive-relay.mjs')]);
const naivePort = (JSON.parse(naive.line) as { port: number }).port;

// websockify, when installed: one instance per backend (it has no tokens here), ws and wss.
type Wsfy = { stream: number; ping: number; tls: boolean };
const websockify: Wsfy[] = [];
const websockifyBin = args['no-websockify'] ? null : which('websockify');
if (websockifyBin) {
  for (const tls of [false, true]) {
    const p = { stream: await freePort(), ping: await freePort(), tls };
    for (const [listen, target] of [
      [p.stream, ports.stream],
      [p.ping, ports.ping],
    ] as const) {
      const child = spawn(websockifyBin, [...(tls ? ['--cert', certFile, '--key', keyFile, '--ssl-only'] : []), `127.0.0.1:${listen}`, `127.0.0.1:${target}`], {
        stdio: ['ignore', 'ignore', 'ignore'],
      });
      children.add(child);
      await waitForPort(listen);
    }
    websockify.push(p);
  }
} else log(args['no-websockify'] ? 'websockify skipped' : 'websockify not installed (apt-get install websockify): its rows are left out');

// ---------------------------------------------------------------- measuring

type LoadMode = 'stream' | 'pingpong' | 'setup' | 'idle';
type Variant = { key: string; label: string; loadArgs: (mode: LoadMode) => string[]; proxyPid?: number };
const backendFor = (mode: string): number => (mode === 'stream' ? ports.stream : ports.ping);
const tokenArgs = redisUrl ? ['--redis-url', redisUrl] : ['--jwt-secret-file', jwtSecretFile, '--jwt-issuer', 'bench', '--jwt-audience', 'vncgate'];
const variants: Variant[] = ([
  { key: 'tcp', label: 'direct TCP (baseline)', loadArgs: (m) => ['--url', `tcp://127.0.0.1:${backendFor(m)}`] },
  {
    key: 'ws',
    label: 'vncgate ws',
    proxyPid: vgWs.pid,
    loadArgs: (m) => ['--url', `ws://${vgWs.address}/websockify`, '--backend', `127.0.0.1:${backendFor(m)}`, ...tokenArgs, '--vncgate-pid', String(vgWs.pid)],
  },
  {
    key: 'wss',
    label: 'vncgate wss',
    proxyPid: vgWss.pid,
    loadArgs: (m) => ['--url', `wss://${vgWss.address}/websockify`, '--backend', `127.0.0.1:${backendFor(m)}`, ...tokenArgs, '--ca', certFile, '--vncgate-pid', String(vgWss.pid)],
  },
  {
    key: 'node-ws',
    label: 'minimal Node ws relay',
    loadArgs: (m) => ['--url', `ws://127.0.0.1:${naivePort}/?port=${backendFor(m)}`, '--no-token'],
  },
  ...websockify.map(
    (w): Variant => ({
      key: w.tls ? 'websockify-wss' : 'websockify-ws',
      label: `websockify ${w.tls ? 'wss' : 'ws'}`,
      loadArgs: (m) => ['--url', `${w.tls ? 'wss' : 'ws'}://127.0.0.1:${m === 'stream' ? w.stream : w.ping}/`, '--no-token', ...(w.tls ? ['--ca', certFile] : [])],
    }),
  ),
] as Variant[]).filter((v) => !args.only || args.only.split(',').includes(v.key));

/** Runs `vncgate loadtest … --json` and returns its result (null, logged, if it produced none). */
async function loadtest(argv: string[]): Promise<LoadtestResult | null> {
  const avail = readMemAvailable();
  if (avail !== null && avail < MEM_FLOOR_MIB * 2 ** 20) {
    log(`MemAvailable ${Math.round(avail / 2 ** 20)} MiB is below the floor of ${MEM_FLOOR_MIB} MiB: measurement skipped`);
    return null;
  }
  const child = spawn(process.execPath, [BIN, 'loadtest', '--json', '--mem-floor-mib', String(MEM_FLOOR_MIB), ...argv], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString('utf8');
    process.stderr.write(d);
  });
  const code = await new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
  children.delete(child);
  try {
    return JSON.parse(out) as LoadtestResult;
  } catch {
    log(`loadtest ${argv.join(' ')} exited ${code} without a result: ${err.slice(-500)}`);
    return null;
  }
}

type Row = { tp: number[]; p50: number[]; p99: number[]; setupRate: number[]; setupP50: number[]; setupP99: number[]; cpuPerMB: number[]; errors: Record<string, number> };
const rows = new Map<string, Row>(variants.map((v) => [v.key, { tp: [], p50: [], p99: [], setupRate: [], setupP50: [], setupP99: [], cpuPerMB: [], errors: {} }]));
const raw: { variant: string; round: number; kind: string; result: LoadtestResult | null }[] = [];
const addErrors = (row: Row, r: LoadtestResult | null): void => {
  for (const [k, n] of Object.entries(r?.errors ?? {})) row.errors[k] = (row.errors[k] ?? 0) + n;
};

for (let round = 1; round <= ROUNDS; round++) {
  // Rotate the order every round, so no variant always runs first (or right after another).
  const order = variants.map((_, i) => variants[(i + round - 1) % variants.length]!);
  for (const v of order) {
    const row = rows.get(v.key)!;
    log(`round ${round}/${ROUNDS}: ${v.label}`);
    const tp = await loadtest([...v.loadArgs('stream'), '--mode', 'stream', '--duration', String(SECONDS)]);
    raw.push({ variant: v.key, round, kind: 'stream', result: tp });
    addErrors(row, tp);
    if (tp?.throughput?.megabytesPerSecond != null && tp.sessions.failed === 0) row.tp.push(tp.throughput.megabytesPerSecond);
    if (tp?.vncgate?.cpuMsPerMB != null) row.cpuPerMB.push(tp.vncgate.cpuMsPerMB);
    const pp = await loadtest([...v.loadArgs('pingpong'), '--mode', 'pingpong', '--duration', String(SECONDS)]);
    raw.push({ variant: v.key, round, kind: 'pingpong', result: pp });
    addErrors(row, pp);
    if (pp?.rtt?.p50Us != null && pp.sessions.failed === 0) {
      row.p50.push(pp.rtt.p50Us);
      row.p99.push(pp.rtt.p99Us ?? Number.NaN);
    }
    const setupN = v.key.startsWith('websockify') ? Math.min(SETUP_SESSIONS, WEBSOCKIFY_MAX_SESSIONS) : SETUP_SESSIONS;
    const su = await loadtest([...v.loadArgs('setup'), '--mode', 'setup', '--sessions', String(setupN), '--concurrency', '1', '--duration', '120']);
    raw.push({ variant: v.key, round, kind: 'setup', result: su });
    addErrors(row, su);
    if (su?.setup.perSecond != null) {
      row.setupRate.push(su.setup.perSecond);
      row.setupP50.push(su.setup.p50Ms ?? Number.NaN);
      row.setupP99.push(su.setup.p99Ms ?? Number.NaN);
    }
  }
}

// ---------------------------------------------------------------- idle sessions and the soak

/** How many sessions a vncgate process can hold: two descriptors each, under its open-file limit. */
function idleCapacity(pid: number): number {
  const limit = readOpenFileLimit(pid) ?? 1024;
  return Math.max(1, Math.min(10_000, Math.floor((limit - 64) / 2)));
}

const idle: { variant: string; result: LoadtestResult | null; capacity: number }[] = [];
if (!args['no-idle']) {
  for (const tls of [true, false]) {
    const name = tls ? 'vncgate-idle-wss' : 'vncgate-idle-ws';
    const vg = await startVncgate(name, tls);
    const capacity = idleCapacity(vg.pid);
    const n = Number(args['idle-sessions'] ?? capacity);
    if (n < 10_000) log(`${name}: its open-file limit (${readOpenFileLimit(vg.pid)}) holds ${capacity} sessions (two descriptors each); running ${n}`);
    log(`idle: ${n} concurrent ${tls ? 'wss' : 'ws'} sessions`);
    const r = await loadtest([
      '--url', `${tls ? 'wss' : 'ws'}://${vg.address}/websockify`, '--backend', `127.0.0.1:${ports.ping}`, ...tokenArgs,
      ...(tls ? ['--ca', certFile] : []), '--vncgate-pid', String(vg.pid),
      '--mode', 'idle', '--sessions', String(n), '--concurrency', '64', '--duration', '10',
    ]);
    idle.push({ variant: tls ? 'wss' : 'ws', result: r, capacity });
    raw.push({ variant: name, round: 0, kind: 'idle', result: r });
    await vg.stop();
  }
}

let soak: LoadtestResult | null = null;
if (SOAK_SECONDS > 0) {
  const vg = await startVncgate('vncgate-soak-wss', true);
  log(`soak: ${SOAK_SECONDS} s of churn (8 sessions at a time, 20 round trips each) through wss`);
  soak = await loadtest([
    '--url', `wss://${vg.address}/websockify`, '--backend', `127.0.0.1:${ports.ping}`, ...tokenArgs, '--ca', certFile,
    '--vncgate-pid', String(vg.pid), '--mode', 'setup', '--sessions', '100000000', '--concurrency', '8', '--updates', '20',
    '--duration', String(SOAK_SECONDS),
  ]);
  raw.push({ variant: 'vncgate-soak-wss', round: 0, kind: 'soak', result: soak });
  await vg.stop();
}

// ---------------------------------------------------------------- report

await Promise.all([vgWs.stop(), vgWss.stop(), naive.stop(), backends.stop(), redis?.stop()]);
cleanup();

const fmt = (v: number, d = 0): string => (Number.isFinite(v) ? v.toFixed(d) : '–');
const base = rows.get('tcp');
const baseTp = base ? median(base.tp) : Number.NaN;
const baseP50 = base ? median(base.p50) : Number.NaN;
const cpuModel = cpus()[0]?.model ?? '?';
const header = [
  `vncgate bench, ${new Date().toISOString()}: node ${process.version}, ${cpus().length} CPUs (${cpuModel}), ${fmt(totalmem() / 2 ** 30, 1)} GiB RAM, open-file limit ${readOpenFileLimit() ?? '?'}`,
  `${ROUNDS} interleaved rounds, medians. stream: 1 session, ${UPDATE_BYTES} B Raw updates, one request outstanding (noVNC), ${SECONDS} s;`,
  `pingpong: 1 session, 1x1 updates, ${SECONDS} s; setup: ${SETUP_SESSIONS} sequential sessions (${redisUrl ? 'Redis tokens' : 'memory tokens'}; websockify: ${WEBSOCKIFY_MAX_SESSIONS}, no tokens)`,
  '',
];
const cols = ['variant', 'MB/s', 'x TCP', 'RTT p50 us', '+p50 us', 'RTT p99 us', 'setups/s', 'setup p50 ms', 'setup p99 ms', 'proxy CPU ms/MB', 'errors'];
const table: string[][] = [cols];
for (const v of variants) {
  const r = rows.get(v.key)!;
  const tp = median(r.tp);
  const p50 = median(r.p50);
  const errs = Object.values(r.errors).reduce((a, b) => a + b, 0);
  table.push([
    v.label,
    fmt(tp),
    fmt(tp / baseTp, 2),
    fmt(p50),
    v.key === 'tcp' ? '0' : fmt(p50 - baseP50),
    fmt(median(r.p99)),
    fmt(median(r.setupRate)),
    fmt(median(r.setupP50), 2),
    fmt(median(r.setupP99), 2),
    fmt(median(r.cpuPerMB), 2),
    String(errs),
  ]);
}
const widths = cols.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
const lines = table.map((row) => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));

const verdict = (ok: boolean | null): string => (ok === null ? 'not measured' : ok ? 'met' : 'MISSED');
const ratio = (k: string): number => median(rows.get(k)?.tp ?? []) / baseTp;
const added = (k: string): number => median(rows.get(k)?.p50 ?? []) - baseP50;
const wssSetup = median(rows.get('wss')?.setupRate ?? []);
const targets: string[] = ['', 'targets (issue 5)'];
const has = (k: string): boolean => rows.has(k) && rows.has('tcp');
targets.push(`  throughput ws  >= 0.70 x direct TCP   ${has('ws') ? fmt(ratio('ws'), 2) : '–'}   ${verdict(has('ws') ? ratio('ws') >= 0.7 : null)}`);
targets.push(`  throughput wss >= 0.50 x direct TCP   ${has('wss') ? fmt(ratio('wss'), 2) : '–'}   ${verdict(has('wss') ? ratio('wss') >= 0.5 : null)}`);
targets.push(`  added p50 RTT ws  <= 50 us            ${has('ws') ? fmt(added('ws')) : '–'}   ${verdict(has('ws') ? added('ws') <= 50 : null)}`);
targets.push(`  added p50 RTT wss <= 80 us            ${has('wss') ? fmt(added('wss')) : '–'}   ${verdict(has('wss') ? added('wss') <= 80 : null)}`);
targets.push(`  sequential wss sessions/s >= 250      ${fmt(wssSetup)}   ${verdict(rows.has('wss') ? wssSetup >= 250 : null)}`);
for (const i of idle) {
  const r = i.result;
  const per = r?.vncgate?.rssPerSessionKiB ?? Number.NaN;
  const open = r ? r.sessions.established - r.sessions.failed : 0;
  targets.push(
    `  idle ${i.variant.padEnd(3)}: ${open} sessions in one process, ${fmt(per, 1)} KiB RSS each (target: 10000 wss at <= 40 KiB)   ` +
      (i.variant === 'wss' ? verdict(r ? open >= 10_000 && per <= 40 : null) + (open < 10_000 && r ? ` (count: open-file limit allows ${i.capacity})` : '') : ''),
  );
}
if (soak) {
  const tl = soak.vncgate?.rssTimeline ?? [];
  const atMinute = tl.find(([t]) => t >= 60)?.[1] ?? Number.NaN;
  const last = tl.at(-1)?.[1] ?? Number.NaN;
  targets.push(
    `  soak ${SOAK_SECONDS} s: ${soak.sessions.established} sessions, RSS ${fmt(atMinute / 1024, 1)} MiB at 1 min -> ${fmt(last / 1024, 1)} MiB at the end, slope ${fmt(soak.vncgate?.rssSlopeKiBPerMinute ?? Number.NaN, 1)} KiB/min over the second half, ${Object.values(soak.errors).reduce((a, b) => a + b, 0)} errors`,
  );
} else targets.push('  soak: not run (--soak-seconds 600 for the 10-minute churn)');

const out = [...header, ...lines, ...targets].join('\n');
process.stdout.write(`${out}\n`);
const file = join(STATE, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify({ args, machine: { node: process.version, cpus: cpus().length, cpuModel, totalMem: totalmem() }, rows: Object.fromEntries(rows), idle, soak, raw }, null, 1));
log(`raw results: ${file}`);
