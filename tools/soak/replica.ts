import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/package-root.js';
import { Child, freePort, waitUntil } from './procs.js';

/**
 * One vncgate replica as an operator runs it: `node bin/vncgate.js serve` (the build) with a YAML
 * file, TLS, a PROXY-protocol listener on a fixed port (HAProxy's server line names it, so the
 * replica comes back on it after a restart), Redis through the Sentinels. Its JSON log lines are
 * read as they come: "session started" tells which replica served which client address (each
 * soak connection comes from an address of its own), "drain finished" what the drain closed.
 */
export type ReplicaSettings = {
  dir: string;
  certFile: string;
  keyFile: string;
  sentinels: readonly string[];
  sentinelName: string;
  jwtSecretFile: string;
  drainTimeoutMs: number;
  /** Passed as is (`redis.waitReplicas`). */
  waitReplicas: number;
};

export type DrainSummary = { sessions: number; ended: number; closed: number; durationMs: number };

export const JWT_ISSUER = 'vncgate-soak';
export const JWT_AUDIENCE = 'vncgate';

export class Replica {
  readonly name: string;
  readonly proxyPort: number;
  readonly #settings: ReplicaSettings;
  readonly #configFile: string;
  #child: Child | null = null;
  #listening = false;
  /** Client address → when this replica logged the session as started (ms, performance clock). */
  readonly started = new Map<string, number>();
  readonly drains: DrainSummary[] = [];
  /** Log lines at warn or error that are not about one peer's session (for the report). */
  readonly problems: string[] = [];
  starts = 0;

  private constructor(name: string, proxyPort: number, settings: ReplicaSettings) {
    this.name = name;
    this.proxyPort = proxyPort;
    this.#settings = settings;
    this.#configFile = join(settings.dir, `${name}.yaml`);
  }

  static async create(name: string, settings: ReplicaSettings): Promise<Replica> {
    const r = new Replica(name, await freePort(), settings);
    await writeFile(r.#configFile, r.#yaml());
    return r;
  }

  get running(): boolean {
    return this.#child?.running ?? false;
  }

  get pid(): number {
    return this.#child?.pid ?? -1;
  }

  #yaml(): string {
    const s = this.#settings;
    const q = (v: string): string => JSON.stringify(v);
    return [
      'listen: ["127.0.0.1:0"]',
      `listenProxyProtocol: ["127.0.0.1:${this.proxyPort}"]`,
      'trustedProxies: ["127.0.0.1/32"]',
      `tls: {certFile: ${q(s.certFile)}, keyFile: ${q(s.keyFile)}, watchFiles: true}`,
      `redis: {sentinels: [${s.sentinels.map(q).join(', ')}], sentinelName: ${q(s.sentinelName)}, waitReplicas: ${s.waitReplicas}}`,
      `api: {jwt: {hs256SecretFile: ${q(s.jwtSecretFile)}, issuer: ${q(JWT_ISSUER)}, audience: ${q(JWT_AUDIENCE)}}}`,
      'backends: {allowedTargets: ["127.0.0.0/8"]}',
      `shutdown: {drainTimeoutMs: ${s.drainTimeoutMs}}`,
      'log: {level: info}',
      '',
    ].join('\n');
  }

  /** Starts the process and waits for its listening line. */
  async start(timeoutMs = 20_000): Promise<void> {
    if (this.running) throw new Error(`${this.name} is running`);
    this.#listening = false;
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VNCGATE_')));
    const child = Child.start({
      name: this.name,
      command: process.execPath,
      args: [join(PACKAGE_ROOT, 'bin', 'vncgate.js'), 'serve', '--config', this.#configFile],
      env,
      cwd: PACKAGE_ROOT,
      onLine: (line, stream) => this.#line(line, stream),
    });
    this.#child = child;
    this.starts++;
    await waitUntil(`${this.name} listening`, timeoutMs, () => {
      if (!child.running) throw new Error(child.describe());
      return this.#listening;
    }, 20).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${child.describe()}`);
    });
  }

  /** SIGTERM: the drain begins; resolves when the process has exited (SIGKILL after `killAfterMs`). */
  async drainAndExit(killAfterMs: number): Promise<void> {
    await this.#child?.stop(killAfterMs);
  }

  async stop(): Promise<void> {
    await this.#child?.stop(5_000);
  }

  describe(): string {
    return this.#child?.describe() ?? `${this.name}: not started`;
  }

  #line(line: string, stream: 'stdout' | 'stderr'): void {
    if (stream === 'stdout') {
      if (line.startsWith('{"listening"')) this.#listening = true;
      return;
    }
    if (!line.startsWith('{')) return;
    let l: { level?: number; msg?: string; remote?: string; sessionId?: string } & Partial<DrainSummary>;
    try {
      l = JSON.parse(line) as typeof l;
    } catch {
      return;
    }
    if (l.msg === 'session started' && typeof l.remote === 'string') this.started.set(l.remote, performance.now());
    else if (l.msg === 'drain finished') this.drains.push({ sessions: l.sessions ?? 0, ended: l.ended ?? 0, closed: l.closed ?? 0, durationMs: l.durationMs ?? 0 });
    else if ((l.level ?? 0) >= 50 && this.problems.length < 20) this.problems.push(line.slice(0, 500));
  }
}
