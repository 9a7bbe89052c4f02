import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  ApiTokenSource,
  LOAD_MODES,
  MemoryFloor,
  NoTokenSource,
  ProcSampler,
  ProgressLine,
  RedisTokenSource,
  formatProgress,
  formatReport,
  readOpenFileLimit,
  runLoadtest,
  startBackendThread,
  tcpConnector,
  clientTrust,
  tlsContext,
  wsConnector,
  type BackendHandle,
  type LoadMode,
  type TokenSource,
} from '../loadtest/index.js';
import type { SecurityChoice } from '../../src/rfb/index.js';
import { UsageError, parseHostPort, readSecretFile, type CliIo } from '../../src/cli/io.js';

export const LOADTEST_USAGE = `Usage: vncgate loadtest --url URL [options]

Drives console sessions through a running vncgate the way noVNC does (WebSocket, subprotocol
"binary", RFB 3.8, ClientInit, SetPixelFormat, SetEncodings, FramebufferUpdateRequests) against
the synthetic RFB server, checking every pixel byte, and reports setup rate and times, throughput,
round-trip latency, errors by reason, and vncgate's RSS and CPU per session. The result is one JSON
object on stdout; a progress bar and a table go to stderr. Exit status 0 when every session
succeeded, 1 when any failed.

Target:
  --url URL                 wss://host:port[/path] or ws://… of vncgate (path default /websockify;
                            the token goes in ?token=); tcp://host:port for plain RFB straight to a
                            VNC server; "direct" for plain RFB to the backend below (the baseline)
  --backend HOST:PORT       the synthetic RFB server the tokens name (default: start one in this process)
  --backend-security S      started backend: none (default) or vncauth
  --backend-password-file F vncauth password (the started backend's; also used by direct TCP)
  --update-bytes N          started backend, stream mode: Raw bytes per update (default 262144)
  --profile NAME            vncgate backend profile the tokens name (for a vncauth backend, say)

Load:
  --mode M                  stream (throughput), pingpong (round trips), idle (memory per session),
                            setup (session setup rate); default stream
  --sessions N              sessions in all (default 1)
  --concurrency C           sessions in flight at once (default: 1 for setup, N otherwise)
  --duration S              stream/pingpong: seconds each session is driven; idle: seconds all are
                            held open; setup: the longest the run keeps opening sessions
                            (default 10; setup 600)
  --updates K               setup: update round trips per session before it closes (default 0)
  --pipeline K              stream: update requests kept outstanding (default 1, as noVNC)
  --warmup N                first open, drive (10 round trips) and close N sessions one after
                            another, untimed and left out of every figure, so that the run
                            measures warm JIT-compiled code in the load tester and in vncgate
                            (default 0)
  --no-verify               do not check pixel bytes (checking is on by default)

Tokens (one fresh single-use token per session, minted before the clock starts):
  --jwt-secret-file F       mint through vncgate's POST /v1/console-tokens with an HS256 JWT…
  --jwt-issuer I, --jwt-audience A
  --token-api URL           …at this base URL (default: the --url origin, https for wss)
  --redis-url URL           …or write them straight into vncgate's Redis
  --redis-key-prefix P      (default vncgate:)
  --token-ttl S             token lifetime (default 900)
  --no-token                connect without a token (a relay that needs none, e.g. websockify)

TLS (wss):
  --ca F                    PEM CA to trust; a file holding one self-signed certificate (vncgate's
                            development certificate, say) is pinned: the server must present exactly it
  --insecure                do not verify vncgate's certificate
  --origin O                Origin header (default: the URL's own origin; "none" for none)
  --tls-resume              resume TLS sessions as a browser does (default: a full handshake each)

Measuring:
  --vncgate-pid PID         sample vncgate's RSS and CPU from /proc/PID
  --mem-floor-mib M         stop opening sessions while MemAvailable is below M MiB (default 2048)
  --setup-timeout MS        connect to ServerInit (default 15000)
  --update-timeout MS       longest wait for a requested update (default 10000)
  --json                    the JSON result only: no progress bar or table on stderr
`;

const DEFAULTS = {
  sessions: 1,
  durationS: 10,
  setupDurationS: 600,
  pipeline: 1,
  tokenTtlS: 900,
  memFloorMiB: 2048,
  setupTimeoutMs: 15_000,
  updateTimeoutMs: 10_000,
  updateBytes: 256 * 1024,
} as const;

function int(name: string, v: string | undefined, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return n;
}

function num(name: string, v: string | undefined, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be a number from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return n;
}

function readFileOrUsage(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${(err as Error).message}`);
  }
}

export async function loadtestCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      url: { type: 'string' },
      backend: { type: 'string' },
      'backend-security': { type: 'string' },
      'backend-password-file': { type: 'string' },
      'update-bytes': { type: 'string' },
      profile: { type: 'string' },
      mode: { type: 'string' },
      sessions: { type: 'string' },
      concurrency: { type: 'string' },
      duration: { type: 'string' },
      updates: { type: 'string' },
      warmup: { type: 'string' },
      pipeline: { type: 'string' },
      'no-verify': { type: 'boolean' },
      'jwt-secret-file': { type: 'string' },
      'jwt-issuer': { type: 'string' },
      'jwt-audience': { type: 'string' },
      'token-api': { type: 'string' },
      'redis-url': { type: 'string' },
      'redis-key-prefix': { type: 'string' },
      'token-ttl': { type: 'string' },
      'no-token': { type: 'boolean' },
      ca: { type: 'string' },
      insecure: { type: 'boolean' },
      origin: { type: 'string' },
      'tls-resume': { type: 'boolean' },
      'vncgate-pid': { type: 'string' },
      'mem-floor-mib': { type: 'string' },
      'setup-timeout': { type: 'string' },
      'update-timeout': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify((positionals as string[])[0])}`);
  if (values.url === undefined) throw new UsageError('--url is required');
  const mode = (values.mode ?? 'stream') as LoadMode;
  if (!LOAD_MODES.includes(mode)) throw new UsageError(`--mode must be one of ${LOAD_MODES.join(', ')}`);
  const sessions = int('sessions', values.sessions, DEFAULTS.sessions, 1, 10_000_000);
  const warmup = int('warmup', values.warmup, 0, 0, 1_000_000);
  const concurrency = int('concurrency', values.concurrency, mode === 'setup' ? 1 : Math.min(sessions, 100_000), 1, 100_000);
  const durationMs = num('duration', values.duration, mode === 'setup' ? DEFAULTS.setupDurationS : DEFAULTS.durationS, 0, 86_400) * 1000;
  const backendSecurity = values['backend-security'] ?? 'none';
  if (backendSecurity !== 'none' && backendSecurity !== 'vncauth') throw new UsageError('--backend-security must be none or vncauth');
  const password = values['backend-password-file'] !== undefined ? readSecretFile(values['backend-password-file']) : undefined;
  if (backendSecurity === 'vncauth' && password === undefined) throw new UsageError('--backend-security vncauth needs --backend-password-file');

  // Where sessions go.
  const url = values.url;
  const direct = url === 'direct' || url.startsWith('tcp://');
  let wsUrl: URL | null = null;
  if (!direct) {
    try {
      wsUrl = new URL(url);
    } catch {
      throw new UsageError(`--url: not a URL: ${JSON.stringify(url)}`);
    }
    if (wsUrl.protocol !== 'ws:' && wsUrl.protocol !== 'wss:') throw new UsageError('--url must be ws://, wss://, tcp:// or "direct"');
    if ((wsUrl.pathname === '/' || wsUrl.pathname === '') && wsUrl.search === '' && values['no-token'] !== true) wsUrl.pathname = '/websockify';
  }
  const hasApi = values['jwt-secret-file'] !== undefined;
  const hasRedis = values['redis-url'] !== undefined;
  const noToken = values['no-token'] === true;
  if (noToken && (hasApi || hasRedis)) throw new UsageError('--no-token excludes --jwt-secret-file and --redis-url');
  if (!direct && !noToken && hasApi === hasRedis) throw new UsageError('a ws(s) target needs tokens: give --jwt-secret-file (token API) or --redis-url (or --no-token)');
  if (hasApi && (values['jwt-issuer'] === undefined || values['jwt-audience'] === undefined)) throw new UsageError('--jwt-secret-file needs --jwt-issuer and --jwt-audience');
  const ca = values.ca !== undefined ? readFileOrUsage(values.ca) : undefined;
  const vncgatePid = values['vncgate-pid'] !== undefined ? int('vncgate-pid', values['vncgate-pid'], 0, 1, 2 ** 22) : null;
  const memFloor = new MemoryFloor(int('mem-floor-mib', values['mem-floor-mib'], DEFAULTS.memFloorMiB, 0, 16 * 1024 * 1024) * 1024 * 1024);

  // File descriptors: say up front when the limits cannot hold the sessions asked for.
  const concurrentSessions = mode === 'idle' || mode === 'stream' || mode === 'pingpong' ? Math.min(sessions, concurrency) : concurrency;
  const ownLimit = readOpenFileLimit();
  if (ownLimit !== null && concurrentSessions + 64 > ownLimit) {
    io.err(`vncgate loadtest: warning: this process may open ${ownLimit} files; ${concurrentSessions} sessions at once need about ${concurrentSessions + 64} (raise ulimit -n)`);
  }
  if (vncgatePid !== null && !direct) {
    const theirs = readOpenFileLimit(vncgatePid);
    if (theirs !== null && 2 * concurrentSessions + 64 > theirs) {
      io.err(`vncgate loadtest: warning: vncgate (pid ${vncgatePid}) may open ${theirs} files; ${concurrentSessions} sessions need about ${2 * concurrentSessions + 64} (two per session)`);
    }
  }

  let backend: BackendHandle | null = null;
  let target: { host: string; port: number };
  if (values.backend !== undefined) target = parseHostPort(values.backend);
  else if (url.startsWith('tcp://')) target = parseHostPort(url.slice('tcp://'.length));
  else {
    backend = await startBackendThread({
      mode: mode === 'stream' ? 'stream' : 'pingpong',
      security: [backendSecurity],
      ...(password ? { password: password.toString('utf8') } : {}),
      streamUpdateBytes: int('update-bytes', values['update-bytes'], DEFAULTS.updateBytes, 1, 64 * 1024 * 1024),
      maxClients: Math.min(100_000, concurrentSessions + 1024),
    });
    target = { host: backend.host, port: backend.port };
  }

  const ttlSeconds = int('token-ttl', values['token-ttl'], DEFAULTS.tokenTtlS, 1, 86_400);
  const tokenTarget = { host: target.host, port: target.port, profile: values.profile };
  let tokens: TokenSource;
  if (direct || noToken) tokens = new NoTokenSource();
  else if (hasRedis) tokens = new RedisTokenSource({ redisUrl: values['redis-url']!, keyPrefix: values['redis-key-prefix'], target: tokenTarget, ttlSeconds });
  else {
    const apiBase = values['token-api'] ?? `${wsUrl!.protocol === 'wss:' ? 'https' : 'http'}://${wsUrl!.host}/`;
    tokens = new ApiTokenSource({
      apiUrl: apiBase,
      jwtSecret: readSecretFile(values['jwt-secret-file']!),
      issuer: values['jwt-issuer']!,
      audience: values['jwt-audience']!,
      target: tokenTarget,
      ttlSeconds,
      ca,
      rejectUnauthorized: values.insecure !== true,
    });
  }

  const setupTimeoutMs = int('setup-timeout', values['setup-timeout'], DEFAULTS.setupTimeoutMs, 100, 600_000);
  let tlsSession: Buffer | undefined;
  // A development certificate (one self-signed certificate) is pinned rather than verified as a
  // chain; --insecure still means no check at all.
  const trust = wsUrl?.protocol !== 'wss:' ? null : values.insecure === true ? { secureContext: tlsContext(ca) } : clientTrust(ca);
  const connect = (token: string | null) => {
    if (direct) return tcpConnector(target.host, target.port, { timeoutMs: setupTimeoutMs });
    const u = new URL(wsUrl!);
    if (token !== null) u.searchParams.set('token', token);
    return wsConnector({
      url: u.toString(),
      timeoutMs: setupTimeoutMs,
      ...(values.origin !== undefined ? { origin: values.origin === 'none' ? null : values.origin } : {}),
      ...trust,
      rejectUnauthorized: values.insecure !== true,
      ...(values['tls-resume'] ? { ...(tlsSession ? { tlsSession } : {}), onTlsSession: (s: Buffer) => void (tlsSession = s) } : {}),
    });
  };

  const quiet = values.json === true;
  const bar = new ProgressLine(process.stderr);
  const abort = new AbortController();
  const onSigint = (): void => {
    io.err('\nvncgate loadtest: interrupted: no more sessions are opened; finishing');
    abort.abort();
  };
  process.once('SIGINT', onSigint);
  try {
    const result = await runLoadtest({
      mode,
      label: direct ? `tcp://${target.host}:${target.port}` : `${wsUrl!.protocol}//${wsUrl!.host}`,
      connect,
      tokens,
      sessions,
      warmupSessions: warmup,
      concurrency,
      durationMs,
      updatesPerSession: int('updates', values.updates, 0, 0, 1_000_000),
      pipeline: int('pipeline', values.pipeline, DEFAULTS.pipeline, 1, 64),
      security: direct ? ([backendSecurity] as SecurityChoice[]) : ['none'],
      password: direct ? password : undefined,
      setupTimeoutMs,
      updateTimeoutMs: int('update-timeout', values['update-timeout'], DEFAULTS.updateTimeoutMs, 100, 600_000),
      verify: values['no-verify'] !== true,
      memFloor,
      sampler: vncgatePid !== null ? new ProcSampler(vncgatePid) : null,
      onProgress: quiet ? undefined : (p) => bar.update(formatProgress(p, mode)),
      onNotice: (line) => {
        bar.done();
        io.err(`vncgate loadtest: ${line}`);
      },
      signal: abort.signal,
    });
    bar.done();
    if (!quiet) io.err(formatReport(result));
    io.out(result);
    return result.sessions.failed === 0 && result.sessions.established > 0 ? 0 : 1;
  } finally {
    process.off('SIGINT', onSigint);
    await backend?.close();
  }
}
