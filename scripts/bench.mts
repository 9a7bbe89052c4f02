/**
 * `npm run bench`: vncgate against the direct-TCP baseline on the same synthetic RFB backends —
 * and websockify when it is installed, minimal Node ws, wss and TCP relays, and socat as a plain
 * TCP relay (the cost of one extra process hop, nothing else) — interleaved in one run,
 * medians over rounds, ratios against the baseline measured in the same run; the targets are
 * judged against rows of the same run (`scripts/bench-targets.mts`). Every measurement is
 * the shipped `vncgate loadtest` in its own process, beside the backends, vncgate and the relays
 * in theirs, so nothing shares an event loop with what it measures.
 *
 *   npm run bench -- [--rounds 5] [--warmup-rounds 1] [--seconds 3] [--setup-sessions 1000] [--setup-warmup 200] [--idle-sessions N]
 *                    [--soak-seconds 0] [--update-bytes 262144] [--gc-flag FLAG] [--no-idle]
 *                    [--no-websockify] [--no-socat] [--only tcp,ws,wss,...] [--cpu-prof DIR]
 *                    [--mem-floor-mib 3072] [--observe off|on|both]
 *
 * Rows: direct TCP (the baseline), vncgate ws and wss as shipped (`node bin/vncgate.js serve`),
 * optionally the same with V8 flags (`--gc-flag "--initial-old-space-size=64"`, say: rows left out
 * by default), a minimal Node ws relay and the same behind TLS with vncgate's certificate (the
 * floors of vncgate's ws and wss targets), a minimal Node TCP relay (TCP in, TCP out: what one more
 * Node process on the path costs), websockify ws and wss, socat (TCP in, TCP out: no WebSocket,
 * no TLS, no token; the floor any relay process adds on this machine).
 *
 * `--observe`: the vncgate rows with Prometheus metrics (`metrics.listen`) and the audit stream
 * (`audit.file`) on (`on`), off as by default (`off`), or both side by side in one run (`both`:
 * rows `ws+observe`, `wss+observe` beside `ws`, `wss`, judged on the same targets).
 *
 * The table goes to stdout (and, as Markdown, to .cache/bench/bench-<time>.md); progress to
 * stderr; every raw result to .cache/bench/bench-<time>.json. Measurements are skipped while
 * MemAvailable is below the floor, and the load tester itself stops opening sessions below it;
 * websockify and socat (a process per connection) never get more than 200 sessions.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { ensureDevCertificate } from '../tools/cli/dev-cert.js';
import { describeCpuIdle, median, readCpuIdle, readMemAvailable, readOpenFileLimit, type LoadtestResult } from '../tools/loadtest/index.js';
import { compare, describeTarget, formatTargets, judge, targetsFor, type Figure, type Metric } from './bench-targets.mjs';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    'setup-sessions': { type: 'string' },
    'setup-warmup': { type: 'string' },
    'idle-sessions': { type: 'string' },
    'soak-seconds': { type: 'string' },
    'warmup-rounds': { type: 'string' },
    'update-bytes': { type: 'string' },
    'mem-floor-mib': { type: 'string' },
    'gc-flag': { type: 'string' },
    'no-idle': { type: 'boolean' },
    'no-websockify': { type: 'boolean' },
    'no-socat': { type: 'boolean' },
    'cpu-prof': { type: 'string' },
    only: { type: 'string' },
    observe: { type: 'string' },
    help: { type: 'boolean' },
  },
});
if (args.help) {
  // The comment at the top of this file is the usage.
  const doc = /\/\*\*([\s\S]*?)\*\//.exec(readFileSync(new URL(import.meta.url), 'utf8'))?.[1] ?? '';
  process.stdout.write(`${doc.replace(/^ \* ?/gm, '').trim()}\n`);
  process.exit(0);
}
const OBSERVE = args.observe ?? 'off';
if (!['off', 'on', 'both'].includes(OBSERVE)) throw new Error(`--observe ${OBSERVE}: off, on or both`);
const ROUNDS = Number(args.rounds ?? 5);
const SECONDS = Number(args.seconds ?? 3);
const SETUP_SESSIONS = Number(args['setup-sessions'] ?? 1000);
/**
 * Each setup run first opens and closes this many sessions untimed (`vncgate loadtest --warmup`):
 * the load tester is a fresh process per run, and without them its first few hundred sessions run
 * before V8 has optimised its handshake code.
 */
const SETUP_WARMUP = Number(args['setup-warmup'] ?? 200);
/**
 * Rounds run first and left out of every figure. vncgate, the relays and Redis are started once
 * and then serve every round, as a proxy in service runs for days; without a warm-up round the
 * first counted round also pays for V8 compiling vncgate's code (in three of the four runs before
 * this option, vncgate's CPU per wss setup was the highest of the seven in the first round).
 */
const WARMUP_ROUNDS = Number(args['warmup-rounds'] ?? 1);
const SOAK_SECONDS = Number(args['soak-seconds'] ?? 0);
const UPDATE_BYTES = Number(args['update-bytes'] ?? 256 * 1024);
const MEM_FLOOR_MIB = Number(args['mem-floor-mib'] ?? 3072);
const GC_FLAG = args['gc-flag'] ?? '';
const FORKING_RELAY_MAX_SESSIONS = 200;
const ROOT = resolve(import.meta.dirname, '..');
const STATE = join(ROOT, '.cache', 'bench');
const BIN = join(ROOT, 'bin', 'vncgate.js');
const STAMP = new Date().toISOString().replace(/[:.]/g, '-');

const log = (line: string): void => void process.stderr.write(`bench: ${line}\n`);
const loadavg = (): string => readFileSync('/proc/loadavg', 'latin1').split(' ').slice(0, 3).join(' ');

// ---------------------------------------------------------------- processes

const children = new Set<ChildProcess>();
function cleanup(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
}
process.on('exit', cleanup);
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});

type Started = { child: ChildProcess; line: string; stop: () => Promise<void> };

/** Spawns a long-running helper; resolves with it and its first stdout line (within `timeoutMs`). */
async function startChild(name: string, cmd: string, argv: string[], opts: { env?: NodeJS.ProcessEnv; logFile?: string; timeoutMs?: number } = {}): Promise<Started> {
  const child = spawn(cmd, argv, { cwd: ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const errOut = opts.logFile ? createWriteStream(opts.logFile) : null;
  let tail = '';
  child.stderr!.on('data', (d: Buffer) => {
    errOut?.write(d);
    tail = (tail + d.toString('utf8')).slice(-2000);
  });
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const line = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`${name}: no output within ${timeoutMs} ms; stderr: ${tail}`)), timeoutMs);
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

async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (performance.now() < until) {
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
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

function which(cmd: string): string | null {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- machine facts

const facts = {
  date: new Date().toISOString(),
  node: process.version,
  nproc: cpus().length,
  cpu: cpus()[0]?.model ?? '?',
  memTotalGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
  memAvailableGiB: Math.round(((readMemAvailable() ?? 0) / 2 ** 30) * 10) / 10,
  kernel: readFileSync('/proc/sys/kernel/osrelease', 'latin1').trim(),
  openFileLimit: readOpenFileLimit(),
  cpuidle: readCpuIdle(),
  loadavgStart: loadavg(),
  loadavgEnd: '',
};
log(`node ${facts.node}, ${facts.nproc} CPUs (${facts.cpu}), ${facts.memTotalGiB} GiB, ${describeCpuIdle(facts.cpuidle)}, load average ${facts.loadavgStart}`);
if (facts.cpuidle.haltPollNs === 0) log('note: guest halt polling is off, so every relay\'s added round-trip latency includes hypervisor exits (BENCHMARKS.md, "Tuning")');
if (Number(facts.loadavgStart.split(' ')[0]) > 0.5) log('warning: the machine is busy (load average above 0.5); figures will be noisy');

// ---------------------------------------------------------------- the pieces

mkdirSync(STATE, { recursive: true });
const { certFile, keyFile } = ensureDevCertificate(STATE);
const jwtSecretFile = join(STATE, 'jwt-secret');
writeFileSync(jwtSecretFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });

log('building');
execFileSync('npm', ['run', '-s', 'build'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });

// Redis: each session's single-use consume (GETDEL) is part of its setup, as in production.
let redisUrl: string | null = null;
let redis: Started | null = null;
if (which('redis-server')) {
  const port = await freePort();
  const dir = join(STATE, 'redis');
  mkdirSync(dir, { recursive: true });
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.add(child);
  await waitForPort(port);
  redis = { child, line: '', stop: () => stopChild(child) };
  redisUrl = `redis://127.0.0.1:${port}/0`;
} else log('redis-server not found: tokens live in vncgate (memory store); setup figures then exclude Redis');

// Synthetic backends in their own process: stream (throughput), pingpong (latency, setup, idle).
const backends = await startChild('synthetic backends', process.execPath, [
  '--input-type=module',
  '-e',
  `import { startSyntheticServer } from './dist/tools/synthetic/index.js';
   const stream = await startSyntheticServer({ mode: 'stream', streamUpdateBytes: ${UPDATE_BYTES}, maxClients: 100 });
   const ping = await startSyntheticServer({ mode: 'pingpong', maxClients: 30000 });
   console.log(JSON.stringify({ stream: stream.port, ping: ping.port }));
   process.on('SIGTERM', () => process.exit(0));`,
]);
const ports = JSON.parse(backends.line) as { stream: number; ping: number };

type Served = { name: string; pid: number; address: string; stop: () => Promise<void>; metrics: string | null; auditFile: string | null };

/** `observe`: with Prometheus metrics on a listener of their own and audit events to a file. */
async function startVncgate(name: string, tls: boolean, nodeArgs: readonly string[] = [], observe = false): Promise<Served> {
  const config = join(STATE, `${name}.yaml`);
  const auditFile = observe ? join(STATE, `${name}-audit.jsonl`) : null;
  if (auditFile) writeFileSync(auditFile, '');
  writeFileSync(
    config,
    [
      'listen: ["127.0.0.1:0"]',
      tls ? `tls: {certFile: ${JSON.stringify(certFile)}, keyFile: ${JSON.stringify(keyFile)}}` : 'tls: {plainHttp: true}',
      ...(redisUrl ? [`redis: {url: ${JSON.stringify(redisUrl)}}`] : []),
      `api: {jwt: {hs256SecretFile: ${JSON.stringify(jwtSecretFile)}, issuer: bench, audience: vncgate}}`,
      'session: {maxSessions: 100000}',
      // Every session comes from this one machine's address: no per-client cap, no process cap below the sessions.
      'limits: {maxConnections: 100000, maxConnectionsPerClient: 0}',
      // The synthetic backends listen on loopback, which the target policy refuses unless named.
      'backends: {allowedTargets: ["127.0.0.0/8", "::1/128"]}',
      // The production default: one line per session start and one per end.
      'log: {level: info}',
      ...(auditFile ? ['metrics: {listen: "127.0.0.1:0"}', `audit: {file: ${JSON.stringify(auditFile)}}`] : []),
      '',
    ].join('\n'),
  );
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VNCGATE_')));
  const prof = args['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', resolve(args['cpu-prof'])] : [];
  const s = await startChild(name, process.execPath, [...prof, ...nodeArgs, BIN, 'serve', '--config', config], { env, logFile: join(STATE, `${name}.log`) });
  const { listening, metrics } = JSON.parse(s.line) as { listening: string[]; metrics?: string };
  return { name, pid: s.child.pid!, address: listening[0]!, stop: s.stop, metrics: metrics ?? null, auditFile };
}

const gcArgs = GC_FLAG === '' ? null : GC_FLAG.split(/\s+/);
const vg = {
  ws: await startVncgate('vncgate-ws', false, [], OBSERVE === 'on'),
  wss: await startVncgate('vncgate-wss', true, [], OBSERVE === 'on'),
  wsObserve: OBSERVE === 'both' ? await startVncgate('vncgate-ws-observe', false, [], true) : null,
  wssObserve: OBSERVE === 'both' ? await startVncgate('vncgate-wss-observe', true, [], true) : null,
  wsTuned: gcArgs ? await startVncgate('vncgate-ws-tuned', false, gcArgs) : null,
  wssTuned: gcArgs ? await startVncgate('vncgate-wss-tuned', true, gcArgs) : null,
};

// The minimal relays: what any Node ws+net relay costs, without tokens, handshake or backpressure,
// and what one more Node process costs with no WebSocket at all (TCP in, TCP out, per backend).
// The wss one, in a process of its own as vncgate wss is, serves the certificate vncgate serves.
const naive = await startChild('minimal relays', process.execPath, [join(ROOT, 'scripts', 'naive-relay.mjs'), String(ports.stream), String(ports.ping)]);
const naiveInfo = JSON.parse(naive.line) as { port: number; tcp: Record<string, number> };
const naivePort = naiveInfo.port;
const naiveTls = await startChild('minimal wss relay', process.execPath, [join(ROOT, 'scripts', 'naive-relay.mjs'), '--cert', certFile, '--key', keyFile]);
const naiveTlsPort = (JSON.parse(naiveTls.line) as { port: number }).port;
const naiveTcpFor = (target: number): number => {
  const p = naiveInfo.tcp[String(target)];
  if (p === undefined) throw new Error(`minimal TCP relay has no listener for port ${target}`);
  return p;
};

/**
 * One relay process (websockify, socat) in front of each backend, stream and ping: spawns
 * `argv(listen, target)` twice and resolves with the two listening ports.
 */
async function relayPerBackend(bin: string, argv: (listen: number, target: number) => string[]): Promise<{ stream: number; ping: number }> {
  const p = { stream: await freePort(), ping: await freePort() };
  for (const [listen, target] of [
    [p.stream, ports.stream],
    [p.ping, ports.ping],
  ] as const) {
    const child = spawn(bin, argv(listen, target), { stdio: ['ignore', 'ignore', 'ignore'] });
    children.add(child);
    await waitForPort(listen);
  }
  return p;
}

// websockify, when installed: one instance per backend (it has no tokens here), ws and wss.
type Wsfy = { stream: number; ping: number; tls: boolean };
const websockify: Wsfy[] = [];
const websockifyBin = args['no-websockify'] ? null : which('websockify');
if (websockifyBin) {
  for (const tls of [false, true]) {
    const p = await relayPerBackend(websockifyBin, (listen, target) => [
      ...(tls ? ['--cert', certFile, '--key', keyFile, '--ssl-only'] : []),
      `127.0.0.1:${listen}`,
      `127.0.0.1:${target}`,
    ]);
    websockify.push({ ...p, tls });
  }
} else log(args['no-websockify'] ? 'websockify skipped' : 'websockify not installed (apt-get install websockify): its rows are left out');

// socat, when installed: a relay written in C that only copies bytes (TCP to TCP), one per backend.
const socatBin = args['no-socat'] ? null : which('socat');
const socat = socatBin
  ? await relayPerBackend(socatBin, (listen, target) => ['-b', '262144', `TCP-LISTEN:${listen},bind=127.0.0.1,reuseaddr,fork,nodelay`, `TCP:127.0.0.1:${target},nodelay`])
  : null;
if (!socatBin) log(args['no-socat'] ? 'socat skipped' : 'socat not installed (apt-get install socat): its row is left out');

// ---------------------------------------------------------------- measuring

type Mode = 'stream' | 'pingpong' | 'setup' | 'idle';
/** `tls`: the browser side is wss, so setups are also measured with TLS sessions resumed. */
/** `base`: `--only` naming it selects this row too (`wss` also selects `wss+observe`). */
type Variant = { key: string; label: string; loadArgs: (mode: Mode) => string[]; maxSessions?: number; tls?: boolean; base?: string };
const OBSERVED = ', metrics+audit';
const backendFor = (mode: Mode): number => (mode === 'stream' ? ports.stream : ports.ping);
const tokenArgs = redisUrl ? ['--redis-url', redisUrl] : ['--jwt-secret-file', jwtSecretFile, '--jwt-issuer', 'bench', '--jwt-audience', 'vncgate'];
const viaVncgate = (s: Served, tls: boolean) => (m: Mode) => [
  '--url',
  `${tls ? 'wss' : 'ws'}://${s.address}/websockify`,
  '--backend',
  `127.0.0.1:${backendFor(m)}`,
  ...tokenArgs,
  ...(tls ? ['--ca', certFile] : []),
  '--vncgate-pid',
  String(s.pid),
];
const allVariants: Variant[] = [
  { key: 'tcp', label: 'direct TCP (baseline)', loadArgs: (m) => ['--url', `tcp://127.0.0.1:${backendFor(m)}`] },
  { key: 'ws', label: `vncgate ws${OBSERVE === 'on' ? OBSERVED : ''}`, loadArgs: viaVncgate(vg.ws, false) },
  { key: 'wss', label: `vncgate wss${OBSERVE === 'on' ? OBSERVED : ''}`, loadArgs: viaVncgate(vg.wss, true), tls: true },
  ...(vg.wsObserve ? [{ key: 'ws+observe', base: 'ws', label: `vncgate ws${OBSERVED}`, loadArgs: viaVncgate(vg.wsObserve, false) }] : []),
  ...(vg.wssObserve ? [{ key: 'wss+observe', base: 'wss', label: `vncgate wss${OBSERVED}`, loadArgs: viaVncgate(vg.wssObserve, true), tls: true }] : []),
  ...(vg.wsTuned ? [{ key: 'ws-tuned', label: `vncgate ws, node ${GC_FLAG}`, loadArgs: viaVncgate(vg.wsTuned, false) }] : []),
  ...(vg.wssTuned ? [{ key: 'wss-tuned', label: `vncgate wss, node ${GC_FLAG}`, loadArgs: viaVncgate(vg.wssTuned, true), tls: true }] : []),
  { key: 'node-ws', label: 'minimal Node ws relay', loadArgs: (m) => ['--url', `ws://127.0.0.1:${naivePort}/?port=${backendFor(m)}`, '--no-token'] },
  // Pinned like vncgate's wss row (--ca names the one self-signed certificate), so the load
  // tester's TLS client does the same work against both.
  {
    key: 'node-wss',
    label: 'minimal Node wss relay',
    tls: true,
    loadArgs: (m) => ['--url', `wss://127.0.0.1:${naiveTlsPort}/?port=${backendFor(m)}`, '--no-token', '--ca', certFile],
  },
  { key: 'node-tcp', label: 'minimal Node TCP relay', loadArgs: (m) => ['--url', `tcp://127.0.0.1:${naiveTcpFor(backendFor(m))}`] },
  ...(socat
    ? [
        {
          key: 'socat',
          label: 'socat TCP relay (floor)',
          maxSessions: FORKING_RELAY_MAX_SESSIONS,
          loadArgs: (m: Mode) => ['--url', `tcp://127.0.0.1:${m === 'stream' ? socat.stream : socat.ping}`],
        },
      ]
    : []),
  ...websockify.map(
    (w): Variant => ({
      key: w.tls ? 'websockify-wss' : 'websockify-ws',
      label: `websockify ${w.tls ? 'wss' : 'ws'}`,
      maxSessions: FORKING_RELAY_MAX_SESSIONS,
      tls: w.tls,
      loadArgs: (m) => ['--url', `${w.tls ? 'wss' : 'ws'}://127.0.0.1:${m === 'stream' ? w.stream : w.ping}/`, '--no-token', ...(w.tls ? ['--ca', certFile] : [])],
    }),
  ),
];
const only = args.only?.split(',') ?? null;
const variants = allVariants.filter((v) => !only || only.includes(v.key) || (v.base !== undefined && only.includes(v.base)));

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

type Row = {
  tp: number[];
  cpuPerMB: number[];
  p50: number[];
  p90: number[];
  p99: number[];
  setupRate: number[];
  setupP50: number[];
  setupP99: number[];
  cpuPerSetup: number[];
  /** wss only: the same setups with the TLS session resumed (`loadtest --tls-resume`). */
  setupRateResumed: number[];
  errors: Record<string, number>;
};
const emptyRow = (): Row => ({ tp: [], cpuPerMB: [], p50: [], p90: [], p99: [], setupRate: [], setupP50: [], setupP99: [], cpuPerSetup: [], setupRateResumed: [], errors: {} });
const rows = new Map<string, Row>(variants.map((v) => [v.key, emptyRow()]));
const raw: { variant: string; round: number; kind: string; result: LoadtestResult | null }[] = [];
/** The counted rounds' figures the targets are judged on, round by round. */
const figures: Figure[] = [];
const push = (xs: number[], v: number | null | undefined): void => {
  if (v !== null && v !== undefined && Number.isFinite(v)) xs.push(v);
};

// Rounds before the first (round <= 0) are warm-up: run like any other, then dropped, errors aside.
for (let round = 1 - WARMUP_ROUNDS; round <= ROUNDS; round++) {
  const counted = round >= 1;
  // Rotate the order every round, so no variant always runs first or right after another.
  const order = variants.map((_, i) => variants[(((i + round - 1) % variants.length) + variants.length) % variants.length]!);
  for (const v of order) {
    const kept = rows.get(v.key)!;
    // A warm-up round fills a row nobody reads; only its errors are carried over.
    const row = counted ? kept : { ...emptyRow(), errors: kept.errors };
    const figure = (metric: Metric, value: number | null | undefined): void => {
      if (counted && value !== null && value !== undefined && Number.isFinite(value)) figures.push({ variant: v.key, round, metric, value });
    };
    log(`${counted ? `round ${round}/${ROUNDS}` : 'warm-up round (not counted)'}: ${v.label} (load average ${loadavg()})`);
    const run = async (kind: Mode, extra: string[], label: string = kind): Promise<LoadtestResult | null> => {
      const r = await loadtest([...v.loadArgs(kind), '--mode', kind, ...extra]);
      raw.push({ variant: v.key, round, kind: counted ? label : `warmup-${label}`, result: r });
      for (const [k, n] of Object.entries(r?.errors ?? {})) row.errors[k] = (row.errors[k] ?? 0) + n;
      return r && r.sessions.failed === 0 ? r : null;
    };
    const tp = await run('stream', ['--duration', String(SECONDS)]);
    push(row.tp, tp?.throughput?.megabytesPerSecond);
    figure('tp', tp?.throughput?.megabytesPerSecond);
    push(row.cpuPerMB, tp?.vncgate?.cpuMsPerMB);
    const pp = await run('pingpong', ['--duration', String(SECONDS)]);
    push(row.p50, pp?.rtt?.p50Us);
    figure('p50', pp?.rtt?.p50Us);
    push(row.p90, pp?.rtt?.p90Us);
    push(row.p99, pp?.rtt?.p99Us);
    const n = Math.min(SETUP_SESSIONS, v.maxSessions ?? Number.POSITIVE_INFINITY);
    const setupArgs = ['--sessions', String(n), '--warmup', String(Math.min(SETUP_WARMUP, n)), '--concurrency', '1', '--duration', '300'];
    const su = await run('setup', setupArgs);
    push(row.setupRate, su?.setup.perSecond);
    figure('setupRate', su?.setup.perSecond);
    push(row.setupP50, su?.setup.p50Ms);
    push(row.setupP99, su?.setup.p99Ms);
    push(row.cpuPerSetup, su?.vncgate?.cpuMsPerSession);
    // A browser that loaded noVNC's page from the same origin resumes that TLS session for the
    // WebSocket; the full handshake above stays the headline figure.
    if (v.tls) {
      const resumed = (await run('setup', [...setupArgs, '--tls-resume'], 'setup-resumed'))?.setup.perSecond;
      push(row.setupRateResumed, resumed);
      figure('setupRateResumed', resumed);
    }
  }
}

// ---------------------------------------------------------------- idle sessions and the soak

type IdleRun = { label: string; tls: boolean; result: LoadtestResult | null; capacity: number; fdLimit: number | null };
const idle: IdleRun[] = [];
if (!args['no-idle']) {
  const runs: { label: string; tls: boolean; nodeArgs: string[] }[] = [
    { label: 'vncgate wss', tls: true, nodeArgs: [] },
    ...(gcArgs ? [{ label: `vncgate wss, node ${GC_FLAG}`, tls: true, nodeArgs: gcArgs }] : []),
    { label: 'vncgate ws', tls: false, nodeArgs: [] },
  ];
  for (const run of runs) {
    // A fresh process each time, so the baseline RSS is the idle process and nothing else.
    const s = await startVncgate(`vncgate-idle-${run.tls ? 'wss' : 'ws'}`, run.tls, run.nodeArgs);
    const fdLimit = readOpenFileLimit(s.pid);
    // Two descriptors per session (browser and console endpoint) plus the process's own.
    const capacity = Math.max(1, Math.min(10_000, Math.floor(((fdLimit ?? 1024) - 64) / 2)));
    const n = Number(args['idle-sessions'] ?? capacity);
    if (n < 10_000) log(`${run.label}: its open-file limit (${fdLimit}) holds ${capacity} sessions at two descriptors each; running ${n}`);
    log(`idle: ${n} concurrent sessions through ${run.label} (load average ${loadavg()})`);
    const r = await loadtest([...viaVncgate(s, run.tls)('idle'), '--mode', 'idle', '--sessions', String(n), '--concurrency', '64', '--duration', '10']);
    idle.push({ label: run.label, tls: run.tls, result: r, capacity, fdLimit });
    raw.push({ variant: s.name, round: 0, kind: 'idle', result: r });
    await s.stop();
  }
}

let soak: LoadtestResult | null = null;
if (SOAK_SECONDS > 0) {
  const s = await startVncgate('vncgate-soak-wss', true);
  log(`soak: ${SOAK_SECONDS} s of churn through vncgate wss: 8 sessions at a time, each 20 round trips, then closed`);
  soak = await loadtest([
    ...viaVncgate(s, true)('setup'),
    '--mode',
    'setup',
    '--sessions',
    '10000000',
    '--concurrency',
    '8',
    '--updates',
    '20',
    '--duration',
    String(SOAK_SECONDS),
  ]);
  raw.push({ variant: s.name, round: 0, kind: 'soak', result: soak });
  await s.stop();
}

// ---------------------------------------------------------------- report

// The observed rows really were observed: audit lines written, metrics served.
for (const s of [vg.ws, vg.wss, vg.wsObserve, vg.wssObserve]) {
  if (!s?.auditFile) continue;
  const lines = readFileSync(s.auditFile, 'utf8').split('\n').filter((l) => l !== '').length;
  const metricsText = s.metrics ? await fetch(`http://${s.metrics}/metrics`).then((r) => r.text(), (e: unknown) => `unreachable: ${String(e)}`) : 'off';
  log(`${s.name}: ${lines} audit lines in ${s.auditFile}; /metrics ${metricsText.length} bytes`);
}
await Promise.all([vg.ws.stop(), vg.wss.stop(), vg.wsObserve?.stop(), vg.wssObserve?.stop(), vg.wsTuned?.stop(), vg.wssTuned?.stop(), naive.stop(), naiveTls.stop(), backends.stop(), redis?.stop()]);
cleanup();
facts.loadavgEnd = loadavg();

const fmt = (v: number, d = 0): string => (Number.isFinite(v) ? v.toFixed(d) : '–');
const base = rows.get('tcp') ?? emptyRow();
const baseTp = median(base.tp);
const baseP50 = median(base.p50);
const cols = ['variant', 'MB/s', 'x TCP', 'CPU ms/MB', 'RTT p50 us', '+p50 us', 'p90 us', 'p99 us', 'setups/s', 'setup p50 ms', 'p99 ms', 'CPU ms/setup', 'resumed setups/s', 'errors'];
const table: string[][] = [cols];
for (const v of variants) {
  const r = rows.get(v.key)!;
  const tp = median(r.tp);
  const p50 = median(r.p50);
  table.push([
    v.label,
    fmt(tp),
    fmt(tp / baseTp, 2),
    fmt(median(r.cpuPerMB), 2),
    fmt(p50),
    v.key === 'tcp' ? '0' : fmt(p50 - baseP50),
    fmt(median(r.p90)),
    fmt(median(r.p99)),
    fmt(median(r.setupRate)),
    fmt(median(r.setupP50), 2),
    fmt(median(r.setupP99), 2),
    fmt(median(r.cpuPerSetup), 2),
    v.tls ? fmt(median(r.setupRateResumed)) : '–',
    String(Object.values(r.errors).reduce((a, b) => a + b, 0)),
  ]);
}
const widths = cols.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
const textTable = table.map((row) => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
const mdTable = [
  `| ${cols.join(' | ')} |`,
  `|${cols.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
  ...table.slice(1).map((row) => `| ${row.join(' | ')} |`),
];

const verdict = (ok: boolean | null): string => (ok === null ? 'not measured' : ok ? 'met' : 'MISSED');
const labelOf = (key: string): string => variants.find((v) => v.key === key)?.label ?? key;

// Rates and latencies: each against a row of this run (scripts/bench-targets.mts).
const judged = judge(figures, targetsFor(variants.map((v) => v.key)));
const targets: string[] = formatTargets(judged, labelOf, baseP50);
const floors = ['node-tcp', 'node-ws', 'node-wss', 'socat'].filter((k) => rows.has(k));
if (floors.length > 0 && rows.has('tcp')) {
  targets.push(
    `for comparison, per round: ${floors
      .map((k) => `${labelOf(k)} ${fmt(compare(figures, k, 'tcp', 'tp', 'ratio').perRound, 2)} x TCP, +${fmt(compare(figures, k, 'tcp', 'p50', 'difference').perRound)} us`)
      .join('; ')}`,
  );
}
// Memory is judged in absolute terms: it is not a rate, and does not move with the machine's speed.
const absolute: { target: string; floor: null; measured: string; verdict: string }[] = [];
for (const i of idle) {
  const r = i.result;
  const open = r ? r.sessions.established - r.sessions.failed : 0;
  const per = r?.vncgate?.rssPerSessionKiB ?? Number.NaN;
  const slope = r?.vncgate?.rssMarginalPerSessionKiB ?? Number.NaN;
  const idleVerdict = open >= 10_000 ? verdict(per <= 40) : `${verdict(per <= 40)} per session; count limited to ${i.capacity} by the open-file limit ${i.fdLimit}`;
  if (i.tls) absolute.push({ target: `10000 idle sessions, ${i.label}, <= 40 KiB RSS each`, floor: null, measured: `${open} sessions, ${fmt(per, 1)} KiB each`, verdict: idleVerdict });
  targets.push(
    `idle ${i.label}: ${open} sessions in one process, ${fmt(per, 1)} KiB RSS each ((loaded - idle process) / sessions), ${fmt(slope, 1)} KiB marginal` +
      (i.tls ? `   target 10000 at <= 40 KiB (absolute): ${idleVerdict}` : ''),
  );
}
if (soak) {
  const tl = soak.vncgate?.rssTimeline ?? [];
  const at = (sec: number): number => tl.find(([t]) => t >= sec)?.[1] ?? Number.NaN;
  const last = tl.at(-1)?.[1] ?? Number.NaN;
  targets.push(
    `soak ${SOAK_SECONDS} s: ${soak.sessions.established} sessions, RSS ${fmt(at(60) / 1024, 1)} MiB at 1 min, ${fmt(at(SOAK_SECONDS / 2) / 1024, 1)} MiB at half time, ${fmt(last / 1024, 1)} MiB at the end; ` +
      `slope over the second half ${fmt(soak.vncgate?.rssSlopeKiBPerMinute ?? Number.NaN, 1)} KiB/min; ${Object.values(soak.errors).reduce((a, b) => a + b, 0)} errors`,
  );
} else targets.push('soak: not run (--soak-seconds 600 for the 10-minute churn)');

const header = [
  `vncgate bench ${facts.date}: node ${facts.node}, ${facts.nproc} CPUs (${facts.cpu}), ${facts.memTotalGiB} GiB RAM, kernel ${facts.kernel}, open-file limit ${facts.openFileLimit}, load average ${facts.loadavgStart} -> ${facts.loadavgEnd}`,
  `idle CPUs: ${describeCpuIdle(facts.cpuidle)}`,
  `${ROUNDS} interleaved rounds after ${WARMUP_ROUNDS} warm-up round(s) left out, medians. stream: 1 session, ${UPDATE_BYTES} B Raw updates, one request outstanding (as noVNC), ${SECONDS} s, every byte checked;`,
  `pingpong: 1 session, 1x1 updates, ${SECONDS} s; setup: ${SETUP_SESSIONS} sessions one after another after ${SETUP_WARMUP} untimed (${redisUrl ? 'Redis tokens' : 'memory tokens'}; websockify and socat: ${FORKING_RELAY_MAX_SESSIONS}, no tokens),`,
  `each with a full TLS handshake; wss rows again with the TLS session resumed (loadtest --tls-resume). CPU: the proxy process, from /proc.`,
  `vncgate rows: metrics and audit ${OBSERVE === 'off' ? 'off' : OBSERVE === 'on' ? 'on (metrics.listen, audit.file)' : 'off, and on in the rows marked "metrics+audit" (metrics.listen, audit.file)'}.`,
];
const targetsTitle = 'targets (issue 5, restated in issue 16 against rows of this run)';
process.stdout.write(`${[...header, '', ...textTable, '', targetsTitle, ...targets.map((t) => `  ${t}`)].join('\n')}\n`);
const md = [...header.map((h) => `${h}  `), '', ...mdTable, '', '```', ...targets, '```', ''].join('\n');
writeFileSync(join(STATE, `bench-${STAMP}.md`), md);
writeFileSync(
  join(STATE, `bench-${STAMP}.json`),
  JSON.stringify(
    {
      args,
      facts,
      gcFlag: GC_FLAG,
      rows: Object.fromEntries(rows),
      targets: [...judged.map((j) => ({ target: describeTarget(j, labelOf), floorLabel: labelOf(j.floor), ...j })), ...absolute],
      figures,
      idle,
      soak,
      raw,
    },
    null,
    1,
  ),
);
log(`raw results: ${join(STATE, `bench-${STAMP}.json`)}; Markdown table: ${join(STATE, `bench-${STAMP}.md`)}`);
