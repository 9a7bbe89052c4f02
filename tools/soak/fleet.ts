import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readMemAvailable } from '../loadtest/index.js';
import { startSoakBackend, type SoakBackend } from './backend.js';
import { Churn } from './churn.js';
import { TokenMinter } from './client.js';
import { startHaproxy, type HaproxyHandle } from './haproxy.js';
import { installPair, makeSoakPki } from './pki.js';
import { sleep, waitUntil } from './procs.js';
import { SENTINEL_NAME, startSentinelSet, type SentinelSet } from './redis-ha.js';
import { Replica } from './replica.js';
import { summarize, wholeAt, type SoakEvent } from './report.js';

/**
 * The fleet soak (issue 17): two built replicas behind a real HAProxy (TCP, send-proxy-v2), Redis
 * with Sentinel (a primary, two replicas, three Sentinels), console sessions churning through it
 * against the synthetic VNC server; during the churn the Redis primary is SIGKILLed, one replica is
 * drained (SIGTERM) and started again, and the TLS certificate files are replaced. After each
 * event the soak waits until new sessions open on both replicas again (up to `eventTimeoutMs`).
 */
export type FleetSoakOptions = {
  longLived: number;
  /** New short sessions per second. */
  rate: number;
  shortLifeMs: readonly [number, number];
  updateEveryMs: number;
  drainTimeoutMs: number;
  /** Churn before the first event, between events, and after the last. */
  settleMs: number;
  /** Longest wait for service to be whole again after an event (a correctness bound). */
  eventTimeoutMs: number;
  replayRate: number;
  /** At the end, accepted tokens presented again (at most this many). */
  finalReplays: number;
  maxSessions: number;
  sentinelDownAfterMs: number;
  /** Stop (throw) when MemAvailable falls below this. */
  memFloorBytes: number;
  log: (msg: string) => void;
};

export const FLEET_DEFAULTS: Omit<FleetSoakOptions, 'log'> = {
  longLived: 150,
  rate: 6,
  shortLifeMs: [2_000, 8_000],
  updateEveryMs: 1_000,
  drainTimeoutMs: 5_000,
  settleMs: 8_000,
  eventTimeoutMs: 30_000,
  replayRate: 2,
  finalReplays: 300,
  maxSessions: 2_000,
  sentinelDownAfterMs: 1_000,
  memFloorBytes: 4 * 1024 ** 3,
};

export type FleetSoakReport = ReturnType<typeof summarize> & {
  options: Omit<FleetSoakOptions, 'log'>;
  durationMs: number;
  tokens: ReturnType<typeof summarize>['tokens'] & { replaysDuringChurn: Churn['replays']; replaysAfterwards: Churn['finalReplays'] };
  redis: { primaryBefore: number; primaryAfter: number | null };
  haproxy: ReturnType<HaproxyHandle['stats']>;
  drains: Record<string, unknown>[];
  replicaErrorLines: string[];
};

export async function runFleetSoak(opts: FleetSoakOptions): Promise<FleetSoakReport> {
  const t0 = performance.now();
  const log = (msg: string): void => opts.log(`[soak +${((performance.now() - t0) / 1000).toFixed(1)}s] ${msg}`);
  const memCheck = (): void => {
    const avail = readMemAvailable();
    if (avail !== null && avail < opts.memFloorBytes) throw new Error(`MemAvailable ${Math.round(avail / 2 ** 20)} MiB is below the floor: stopping the soak`);
  };
  memCheck();
  const dir = await mkdtemp(join(tmpdir(), 'vncgate-fleet-soak-'));
  let redis: SentinelSet | null = null;
  let backend: SoakBackend | null = null;
  let haproxy: HaproxyHandle | null = null;
  const replicas: Replica[] = [];
  let churn: Churn | null = null;
  let progress: NodeJS.Timeout | null = null;
  try {
    const pki = await makeSoakPki(dir);
    const tlsDir = join(dir, 'tls');
    await mkdir(tlsDir);
    const certFile = join(tlsDir, 'tls.crt');
    const keyFile = join(tlsDir, 'tls.key');
    await installPair(certFile, keyFile, pki.before);
    const secret = randomBytes(32);
    const jwtSecretFile = join(dir, 'jwt-secret');
    await writeFile(jwtSecretFile, `${secret.toString('base64url')}\n`, { mode: 0o600 });
    log('starting Redis: a primary, 2 replicas, 3 Sentinels');
    redis = await startSentinelSet(dir, { replicas: 2, downAfterMs: opts.sentinelDownAfterMs, failoverTimeoutMs: 3_000 });
    backend = await startSoakBackend({ updateBytes: 8_192, maxClients: 4_096 });
    const settings = { dir, certFile, keyFile, sentinels: redis.sentinelAddresses, sentinelName: SENTINEL_NAME, jwtSecretFile, drainTimeoutMs: opts.drainTimeoutMs, waitReplicas: 1 };
    replicas.push(await Replica.create('replica-a', settings), await Replica.create('replica-b', settings));
    await Promise.all(replicas.map((r) => r.start()));
    haproxy = await startHaproxy(dir, replicas.map((r) => ({ name: r.name, port: r.proxyPort })));
    log(`replicas on PROXY ports ${replicas.map((r) => r.proxyPort).join(', ')}; HAProxy on ${haproxy.port}`);
    const base = `127.0.0.1:${haproxy.port}`;
    const minter = new TokenMinter({ baseUrl: `https://${base}`, ca: pki.caPem, secret: new TextEncoder().encode(secret.toString('base64url')), target: { host: backend.host, port: backend.port }, timeoutMs: 5_000 });
    const c = new Churn({
      wsUrl: `wss://${base}/websockify`,
      ca: pki.caPem,
      minter,
      longLived: opts.longLived,
      rate: opts.rate,
      shortLifeMs: opts.shortLifeMs,
      updateEveryMs: opts.updateEveryMs,
      openTimeoutMs: 15_000,
      replayRate: opts.replayRate,
      maxSessions: opts.maxSessions,
      log,
    });
    churn = c;
    const served = new Map(replicas.map((r) => [r.name, r.started] as const));
    const events: SoakEvent[] = [];
    // HAProxy starts both servers up; the first health checks confirm it.
    await sleep(1_500);
    log(`opening ${opts.longLived} long-lived sessions`);
    await c.start();
    progress = setInterval(() => {
      const failed = c.records.filter((r) => r.state === 'failed').length;
      const lost = c.records.filter((r) => r.state === 'lost').length;
      log(`sessions: ${c.records.length} begun, ${c.openCount()} open (${c.openCount('long')} long-lived), ${failed} failed, ${lost} lost; replays ${c.replays.tried}`);
    }, 5_000);
    const waitWhole = async (ev: SoakEvent): Promise<void> => {
      const ok = await waitUntil(`${ev.name}: new sessions on both replicas`, opts.eventTimeoutMs, () => {
        memCheck();
        return wholeAt(ev, c.records, served) !== null;
      }, 100).then(
        () => true,
        () => false,
      );
      const at = wholeAt(ev, c.records, served);
      log(ok && at !== null ? `${ev.name}: service whole again after ${Math.round(at - ev.at)} ms` : `${ev.name}: service NOT whole again within ${opts.eventTimeoutMs} ms`);
    };
    await waitWhole({ name: 'baseline', at: t0, detail: {} }); // both replicas serve before anything happens
    await sleep(opts.settleMs);

    // 1. The Redis primary dies (SIGKILL: no goodbye to replicas or Sentinels).
    const primaryBefore = await redis.primaryPort();
    const victim = redis.nodes.find((n) => n.port === primaryBefore);
    if (victim === undefined) throw new Error(`the Sentinels name primary ${primaryBefore}, which is none of ours`);
    log(`SIGKILL to the Redis primary :${primaryBefore} (pid ${victim.child.pid})`);
    const killed: SoakEvent = { name: 'redis-primary-killed', at: performance.now(), detail: { primaryBefore } };
    await victim.child.kill();
    events.push(killed);
    await waitWhole(killed);
    let primaryAfter: number | null = null;
    await waitUntil('Sentinels name a new primary', 15_000, async () => (primaryAfter = await redis!.primaryPort()) !== primaryBefore).catch(() => undefined);
    killed.detail.primaryAfter = primaryAfter;
    await sleep(opts.settleMs);

    // 2. One replica is drained (SIGTERM) and started again on the same port.
    const drained = replicas[1]!;
    log(`SIGTERM to ${drained.name} (pid ${drained.pid}), drain ${opts.drainTimeoutMs} ms, with ${c.openCount()} sessions open fleet-wide`);
    const drain: SoakEvent = { name: 'replica-drained', at: performance.now(), drained: { replica: drained.name, drainTimeoutMs: opts.drainTimeoutMs }, detail: { replica: drained.name, drainTimeoutMs: opts.drainTimeoutMs } };
    events.push(drain);
    await drained.drainAndExit(opts.drainTimeoutMs + 15_000);
    drain.detail.exitedAfterMs = Math.round(performance.now() - drain.at);
    await drained.start();
    drain.detail.restartedAfterMs = Math.round(performance.now() - drain.at);
    log(`${drained.name} exited after ${String(drain.detail.exitedAfterMs)} ms and listens again`);
    await waitWhole(drain);
    await sleep(opts.settleMs);

    // 3. The certificate files are replaced (renamed over, as renewal tools do); the replicas watch them.
    log('replacing the TLS certificate files');
    const rotated: SoakEvent = { name: 'certificate-rotated', at: performance.now(), wantCert: pki.after.fingerprint256, detail: {} };
    events.push(rotated);
    await installPair(certFile, keyFile, pki.after);
    await waitWhole(rotated);
    await sleep(opts.settleMs);

    log('stopping the churn: closing every session');
    await c.stop();
    clearInterval(progress);
    progress = null;
    const used = [...c.accepted.keys()].slice(0, opts.finalReplays);
    log(`presenting ${used.length} accepted tokens again`);
    for (let i = 0; i < used.length; i += 8) await Promise.all(used.slice(i, i + 8).map((t) => c.replay(t, c.finalReplays)));

    const figures = summarize({ t0, records: c.records, served, events, accepted: c.accepted, certs: { before: pki.before.fingerprint256, after: pki.after.fingerprint256 } });
    const { log: _log, ...options } = opts;
    return {
      options,
      durationMs: Math.round(performance.now() - t0),
      ...figures,
      tokens: { ...figures.tokens, replaysDuringChurn: c.replays, replaysAfterwards: c.finalReplays },
      redis: { primaryBefore, primaryAfter },
      haproxy: haproxy.stats(),
      drains: drained.drains.map((d) => ({ replica: drained.name, ...d })),
      replicaErrorLines: replicas.flatMap((r) => r.problems.map((p) => `${r.name}: ${p}`)),
    };
  } finally {
    if (progress) clearInterval(progress);
    if (churn) await Promise.race([churn.stop(), sleep(20_000)]);
    await haproxy?.stop();
    await Promise.allSettled(replicas.map((r) => r.stop()));
    await redis?.stop();
    await backend?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
