/**
 * `vncgate serve` as a real child process (`node bin/vncgate.js serve`), the way an operator runs
 * it: configuration through VNCGATE_* variables and a YAML file, readiness from the one JSON line
 * it prints on stdout, shutdown by SIGTERM to its own PID.
 *
 * Listens on 127.0.0.1:0 unless told otherwise, so no free-port race: the real port comes from
 * the `{"listening": [...]}` line, and /proc then proves the listener is this child's and on
 * loopback only (ports.ts). Everything the process writes is kept (not just a tail), because the
 * tests grep all of its log lines for leaked tokens; `logText()` refuses to answer if anything was
 * dropped, so such a check can never pass on a truncated log.
 */
import { ManagedProcess, defaultRegistry, type ProcessRegistry, type Stoppable } from './proc.js';
import { isLoopback, listeningSocketsOf } from './ports.js';
import { VNCGATE_BIN } from './cli.js';

export interface VncgateServeOptions {
  /**
   * VNCGATE_* variables for this process. The parent's own VNCGATE_* variables are not inherited,
   * so a developer's shell cannot change what a test runs. Defaults: `VNCGATE_LISTEN=127.0.0.1:0`,
   * `VNCGATE_LOG_LEVEL=debug` (the most log lines, the strictest leak check),
   * `VNCGATE_DRAIN_TIMEOUT_MS=0` (`stop()` closes open sessions at once instead of draining them;
   * the drain tests set their own).
   */
  env: Readonly<Record<string, string>>;
  /**
   * Whether it serves plain HTTP, for `origin` and `wsBase`. Default: from `VNCGATE_PLAIN_HTTP`
   * in `env` (a config file's `tls.plainHttp` is not read here).
   */
  plainHttp?: boolean;
  /** Extra `serve` arguments, e.g. `['--config', file]`. */
  args?: readonly string[];
  /** Label in messages. Default `vncgate serve`. */
  name?: string;
  /** Spawn until the listening line. Default 15 s. */
  startTimeoutMs?: number;
  /** Output kept; more is a test failure (see `logText`). Default 64 MiB. */
  outputLimitBytes?: number;
  registry?: ProcessRegistry;
}

export interface VncgateServe extends Stoppable {
  readonly name: string;
  readonly process: ManagedProcess;
  readonly pid: number;
  /** As printed: `["127.0.0.1:43123"]`. */
  readonly listening: readonly string[];
  /** The `listenProxyProtocol` listeners, as printed (empty without any). */
  readonly listeningProxyProtocol: readonly string[];
  /** As printed, e.g. `https://127.0.0.1:43123/` (publicUrl when configured). */
  readonly baseUrl: string;
  /** Scheme, host and port of the first listen address, as a browser on it would send `Origin`. */
  readonly origin: string;
  /** `ws://…` or `wss://…` of the first listen address, no path. */
  readonly wsBase: string;
  /**
   * Everything written to stdout and stderr so far (the one stdout line plus pino's JSON lines on
   * stderr). Throws if the output limit was exceeded, so a leak check cannot pass on a tail.
   */
  logText(): string;
  /** `logText()` split into non-empty lines. */
  logLines(): string[];
  /** SIGTERM (graceful: sessions are told the service is restarting), SIGKILL after 5 s. */
  stop(): Promise<void>;
}

const DROPPED_MARKER = /^\[\.\.\. (\d+) bytes dropped \.\.\.\]\n/;

export async function startVncgateServe(opts: VncgateServeOptions): Promise<VncgateServe> {
  const registry = opts.registry ?? defaultRegistry;
  const name = opts.name ?? 'vncgate serve';
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VNCGATE_')));
  const env: Record<string, string | undefined> = { ...inherited, VNCGATE_LISTEN: '127.0.0.1:0', VNCGATE_LOG_LEVEL: 'debug', VNCGATE_DRAIN_TIMEOUT_MS: '0', ...opts.env };
  const proc = await ManagedProcess.start({
    name,
    command: process.execPath,
    args: [VNCGATE_BIN, 'serve', ...(opts.args ?? [])],
    env,
    outputLimitBytes: opts.outputLimitBytes ?? 64 * 1024 * 1024,
  });

  try {
    const ready = await waitForListeningLine(proc, opts.startTimeoutMs ?? 15_000);
    const first = ready.listening[0];
    const m = first === undefined ? null : /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(first);
    if (m === null || m[3] === undefined) throw new Error(`${name}: unexpected listening line ${JSON.stringify(ready)}`);
    const host = m[1] ?? m[2] ?? '';
    const port = Number(m[3]);
    // The printed address must be a socket this very process holds, on loopback only.
    const sockets = listeningSocketsOf(proc.pid);
    if (!sockets.some((s) => s.port === port)) throw new Error(`${name}: pid ${proc.pid} does not hold port ${port}: ${proc.describe()}`);
    const exposed = sockets.filter((s) => !isLoopback(s.address));
    if (exposed.length > 0) throw new Error(`${name} listens beyond loopback: ${exposed.map((s) => `${s.address}:${s.port}`).join(', ')}`);

    const tls = !(opts.plainHttp ?? /^(1|true|yes)$/i.test(env.VNCGATE_PLAIN_HTTP ?? ''));
    const hostPart = host.includes(':') ? `[${host}]` : host;
    const logText = (): string => {
      const text = proc.output();
      const dropped = DROPPED_MARKER.exec(text);
      if (dropped !== null) throw new Error(`${name}: ${dropped[1]} bytes of output were dropped; raise outputLimitBytes`);
      return text;
    };
    let stopped: Promise<void> | undefined;
    const server: VncgateServe = {
      name,
      process: proc,
      pid: proc.pid,
      listening: ready.listening,
      listeningProxyProtocol: ready.listeningProxyProtocol,
      baseUrl: ready.baseUrl,
      origin: `${tls ? 'https' : 'http'}://${hostPart}:${port}`,
      wsBase: `${tls ? 'wss' : 'ws'}://${hostPart}:${port}`,
      logText,
      logLines: () => logText().split('\n').filter((l) => l.trim() !== ''),
      stop: () => {
        stopped ??= (async () => {
          registry.delete(server);
          await proc.stop({ termTimeoutMs: 5_000 });
        })();
        return stopped;
      },
    };
    return registry.add(server);
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

/** Polls the output for `{"listening": [...], "baseUrl": ...}`, failing fast if the process exits. */
async function waitForListeningLine(proc: ManagedProcess, timeoutMs: number): Promise<{ listening: string[]; listeningProxyProtocol: string[]; baseUrl: string }> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    for (const line of proc.output().split('\n')) {
      if (!line.startsWith('{"listening"')) continue;
      try {
        const parsed = JSON.parse(line) as { listening?: unknown; listeningProxyProtocol?: unknown; baseUrl?: unknown };
        if (Array.isArray(parsed.listening) && typeof parsed.baseUrl === 'string') {
          const proxied = Array.isArray(parsed.listeningProxyProtocol) ? parsed.listeningProxyProtocol.map(String) : [];
          return { listening: parsed.listening.map(String), listeningProxyProtocol: proxied, baseUrl: parsed.baseUrl };
        }
      } catch {
        // a partial line: the rest is still in the pipe
      }
    }
    if (!proc.running) throw new Error(`${proc.name} exited before listening: ${proc.describe()}`);
    if (performance.now() >= deadline) throw new Error(`${proc.name} printed no listening line within ${timeoutMs} ms: ${proc.describe()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
