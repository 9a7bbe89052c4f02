/**
 * Instructions vncgate executes per sequential session setup, counted with
 * `valgrind --tool=callgrind`, for judging changes worth a few per cent that timings cannot.
 * Compare only runs made side by side (two `--root`s in one call, or two calls at once): the
 * same commit gave 5.51 M and 4.89 M per setup in runs at different times, likely because work
 * done per second of wall time (timers) is spread over fewer setups when the machine is busier.
 *
 *   npx tsx scripts/bench-instructions.mts [--root DIR]... [--setups 300] [--warmup 600]
 *                                          [--ws] [--observe] [--keep DIR]
 *
 * For each `--root` (a built vncgate checkout, e.g. a `git worktree` of an older commit; default
 * this one) it starts `redis-server`, the synthetic backend (pingpong) and `vncgate serve` under
 * callgrind with instrumentation off; runs `--warmup` wss setups through it (the root's own
 * `vncgate loadtest`, which also mints its tokens into Redis in the root's own format), switches
 * instrumentation on (`callgrind_control -i on`), runs `--setups` more, switches it off and dumps.
 * Threads are counted apart (`--separate-threads=yes`): the main thread is what a setup costs on
 * the event loop; V8's compiler threads are warm-up that valgrind's slowness stretches out, and
 * are printed beside it. `--ws` measures plain ws instead of wss; `--observe` turns on
 * `metrics.listen` and `audit.file` where the root's configuration knows them. `--keep DIR`
 * keeps the callgrind files (for `callgrind_annotate`); with `--perf-map` also V8's map of its
 * generated code (`--perf-basic-prof --interpreted-frames-native-stack`, perf-<pid>.map beside
 * them), which names the JavaScript functions callgrind can only show as addresses. One JSON line per root on stdout, a
 * table on stderr.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { ensureDevCertificate } from '../tools/cli/dev-cert.js';

const { values: args } = parseArgs({
  options: {
    root: { type: 'string', multiple: true },
    setups: { type: 'string' },
    warmup: { type: 'string' },
    ws: { type: 'boolean' },
    observe: { type: 'boolean' },
    keep: { type: 'string' },
    'perf-map': { type: 'boolean' },
  },
});
const HERE = resolve(import.meta.dirname, '..');
const ROOTS = (args.root ?? [HERE]).map((r) => resolve(r));
const SETUPS = Number(args.setups ?? 300);
const WARMUP = Number(args.warmup ?? 600);
const TLS = !args.ws;
const log = (line: string): void => void process.stderr.write(`bench-instructions: ${line}\n`);

const children = new Set<ChildProcess>();
const cleanup = (): void => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
};
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

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

/** Spawns a long-running child and resolves with its first stdout line (within `timeoutMs`). */
async function start(name: string, cmd: string, argv: string[], cwd: string, timeoutMs: number): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(cmd, argv, { cwd, env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VNCGATE_'))), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let tail = '';
  child.stderr!.on('data', (d: Buffer) => (tail = (tail + d.toString('utf8')).slice(-3000)));
  const line = await new Promise<string>((res, rej) => {
    const t = setTimeout(() => rej(new Error(`${name}: no output within ${timeoutMs} ms: ${tail}`)), timeoutMs);
    createInterface({ input: child.stdout! }).once('line', (l) => {
      clearTimeout(t);
      res(l);
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      rej(new Error(`${name} exited with ${code}: ${tail}`));
    });
  });
  return { child, line };
}

function stop(child: ChildProcess, timeoutMs = 60_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((res) => {
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(t);
      children.delete(child);
      res();
    });
    child.kill('SIGTERM');
  });
}

type Run = { sessions: { failed: number; established: number }; errors: Record<string, number>; setup: { perSecond: number | null } };

/** The root's `vncgate loadtest --json` (its exit status is 1 when any session failed: reported, not thrown). */
function loadtest(root: string, argv: string[]): Run {
  let out: string;
  try {
    out = execFileSync(process.execPath, [join(root, 'bin', 'vncgate.js'), 'loadtest', '--json', ...argv], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20, timeout: 3_600_000 });
  } catch (err) {
    out = String((err as { stdout?: unknown }).stdout ?? '');
  }
  const r = JSON.parse(out) as Run;
  if (r.sessions.failed > 0) log(`${r.sessions.failed} of ${r.sessions.failed + r.sessions.established} sessions failed: ${JSON.stringify(r.errors)}`);
  return r;
}

/** The `summary:`/`totals:` Ir of one callgrind output file. */
function irOf(file: string): number {
  const text = readFileSync(file, 'latin1');
  const m = /^totals:\s*(\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

type Result = { root: string; commit: string; setups: number; failed: number; tls: boolean; observe: boolean; perSetup: { main: number; all: number }; threads: { thread: string; ir: number }[]; setupsPerSecondUnderValgrind: number | null };

async function measure(root: string): Promise<Result> {
  const commit = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  const schema = readFileSync(join(root, 'src', 'config', 'schema.ts'), 'utf8');
  const state = mkdtempSync(join(tmpdir(), 'vncgate-instr-'));
  const { certFile, keyFile } = ensureDevCertificate(state);
  const secret = join(state, 'jwt-secret');
  writeFileSync(secret, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });

  const redisPort = await freePort();
  const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', state, '--loglevel', 'warning'], { stdio: 'ignore' });
  children.add(redis);
  await waitForPort(redisPort);
  const redisUrl = `redis://127.0.0.1:${redisPort}/0`;

  const backend = await start(
    'synthetic backend',
    process.execPath,
    ['--input-type=module', '-e', `import { startSyntheticServer } from './dist/tools/synthetic/index.js'; const s = await startSyntheticServer({ mode: 'pingpong', maxClients: 1000 }); console.log(s.port); process.on('SIGTERM', () => process.exit(0));`],
    HERE,
    20_000,
  );
  const backendPort = Number(backend.line);

  const observe = Boolean(args.observe) && schema.includes('metrics') && schema.includes('audit');
  const config = join(state, 'vncgate.yaml');
  writeFileSync(
    config,
    [
      'listen: ["127.0.0.1:0"]',
      TLS ? `tls: {certFile: ${JSON.stringify(certFile)}, keyFile: ${JSON.stringify(keyFile)}}` : 'tls: {plainHttp: true}',
      // Under valgrind everything runs tens of times slower: deadlines long enough not to fire.
      `redis: {url: ${JSON.stringify(redisUrl)}, commandTimeoutMs: 30000, connectTimeoutMs: 30000}`,
      `api: {jwt: {hs256SecretFile: ${JSON.stringify(secret)}, issuer: bench, audience: vncgate}}`,
      'session: {maxSessions: 100000, connectTimeoutMs: 120000, handshakeTimeoutMs: 120000}',
      // Options older commits do not have are left out there (they had no such checks).
      ...(schema.includes('maxConnectionsPerClient') ? ['limits: {maxConnections: 100000, maxConnectionsPerClient: 0, tlsHandshakeTimeoutMs: 120000, requestTimeoutMs: 120000}'] : []),
      ...(schema.includes('allowedTargets') ? ['backends: {allowedTargets: ["127.0.0.0/8"]}'] : []),
      ...(observe ? [`metrics: {listen: "127.0.0.1:0"}`, `audit: {file: ${JSON.stringify(join(state, 'audit.jsonl'))}}`] : []),
      'log: {level: info}',
      '',
    ].join('\n'),
  );
  const cgDir = join(state, 'cg');
  mkdirSync(cgDir);
  const vncgate = await start(
    'vncgate under callgrind',
    'valgrind',
    ['--tool=callgrind', '--instr-atstart=no', '--separate-threads=yes', `--callgrind-out-file=${join(cgDir, 'callgrind.out.%p')}`, process.execPath, ...(args['perf-map'] ? ['--perf-basic-prof', '--interpreted-frames-native-stack'] : []), join(root, 'bin', 'vncgate.js'), 'serve', '--config', config],
    root,
    180_000,
  );
  const { listening } = JSON.parse(vncgate.line) as { listening: string[] };
  const url = `${TLS ? 'wss' : 'ws'}://${listening[0]}/websockify`;
  const common = ['--url', url, '--backend', `127.0.0.1:${backendPort}`, '--redis-url', redisUrl, ...(TLS ? ['--ca', certFile] : []), '--mode', 'setup', '--concurrency', '1', '--duration', '3000', '--setup-timeout', '60000'];
  log(`${commit}: ${WARMUP} warm-up setups (instrumentation off)`);
  loadtest(root, [...common, '--sessions', String(WARMUP)]);
  const pid = String(vncgate.child.pid);
  execFileSync('callgrind_control', ['-z', pid], { stdio: 'ignore' });
  execFileSync('callgrind_control', ['-i', 'on', pid], { stdio: 'ignore' });
  log(`${commit}: ${SETUPS} counted setups`);
  const r = loadtest(root, [...common, '--sessions', String(SETUPS)]);
  execFileSync('callgrind_control', ['-i', 'off', pid], { stdio: 'ignore' });
  execFileSync('callgrind_control', ['-d', pid], { stdio: 'ignore' });
  await stop(vncgate.child);
  await stop(backend.child);
  await stop(redis);

  // With --separate-threads, one file per thread and dump: callgrind.out.<pid>.<dump>-<thread>.
  const files = readdirSync(cgDir).filter((f) => /-\d+$/.test(f));
  if (files.length === 0) log(`no per-thread callgrind files in ${cgDir}: ${readdirSync(cgDir).join(", ")}`);
  const threads = files
    .map((f) => ({ thread: /-(\d+)$/.exec(f)![1]!, file: f, ir: irOf(join(cgDir, f)) }))
    .filter((t) => t.ir > 0)
    .sort((a, b) => b.ir - a.ir);
  const main = threads.filter((t) => Number(t.thread) === 1).reduce((a, t) => a + t.ir, 0);
  const all = threads.reduce((a, t) => a + t.ir, 0);
  if (args.keep) {
    const keep = join(resolve(args.keep), commit + (TLS ? '-wss' : '-ws') + (observe ? '-observe' : ''));
    mkdirSync(keep, { recursive: true });
    for (const t of threads) renameSync(join(cgDir, t.file), join(keep, t.file));
    const map = `/tmp/perf-${pid}.map`;
    if (args['perf-map'] && existsSync(map)) renameSync(map, join(keep, `perf-${pid}.map`));
  }
  if (!process.env.KEEP_STATE) rmSync(state, { recursive: true, force: true });
  else log(`state kept in ${state}`);
  return {
    root,
    commit,
    setups: SETUPS,
    failed: r.sessions.failed,
    tls: TLS,
    observe,
    perSetup: { main: Math.round(main / SETUPS), all: Math.round(all / SETUPS) },
    threads: threads.map((t) => ({ thread: t.thread, ir: t.ir })),
    setupsPerSecondUnderValgrind: r.setup.perSecond,
  };
}

if (!execFileSync('sh', ['-c', 'command -v valgrind || true'], { encoding: 'utf8' }).trim()) throw new Error('valgrind is not installed');
const results: Result[] = [];
for (const root of ROOTS) {
  const r = await measure(root);
  results.push(r);
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
const base = results[0]!;
const fmt = (n: number): string => (n / 1e6).toFixed(3);
log(`instructions per ${TLS ? 'wss' : 'ws'} setup (M), ${SETUPS} setups after ${WARMUP} untimed:`);
for (const r of results) {
  log(
    `  ${r.commit.padEnd(9)} ${r.observe ? 'observe ' : ''}main thread ${fmt(r.perSetup.main)} (${((r.perSetup.main / base.perSetup.main - 1) * 100).toFixed(1)} %)  all threads ${fmt(r.perSetup.all)}  ${r.root}`,
  );
}
