import { readMemAvailable } from '../loadtest/index.js';
import { Churn } from './churn.js';
import { TokenMinter } from './client.js';
import { drainAndRestart, killRedisPrimary, newPrimary, rotateCertificate } from './events.js';
import { startFleet, type Fleet } from './fleet-setup.js';
import type { HaproxyStats } from './haproxy.js';
import { sleep, waitUntil } from './procs.js';
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
  haproxy: HaproxyStats;
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
  const fleet = await startFleet(opts, log);
  const churn = newChurn(fleet, opts, log);
  const progress = setInterval(() => {
    const failed = churn.records.filter((r) => r.state === 'failed').length;
    const lost = churn.records.filter((r) => r.state === 'lost').length;
    log(`sessions: ${churn.records.length} begun, ${churn.openCount()} open (${churn.openCount('long')} long-lived), ${failed} failed, ${lost} lost; replays ${churn.replays.tried}`);
  }, 5_000);
  try {
    const served = new Map(fleet.replicas.map((r) => [r.name, r.started] as const));
    const events: SoakEvent[] = [];
    /** Waits (up to eventTimeoutMs) until new sessions open on both replicas after `ev`, then lets the churn run on. */
    const settle = async (ev: SoakEvent): Promise<void> => {
      const ok = await waitUntil(`${ev.name}: new sessions on both replicas`, opts.eventTimeoutMs, () => {
        memCheck();
        return wholeAt(ev, churn.records, served) !== null;
      }).then(() => true, () => false);
      const at = wholeAt(ev, churn.records, served);
      log(ok && at !== null ? `${ev.name}: service whole again after ${Math.round(at - ev.at)} ms` : `${ev.name}: service NOT whole again within ${opts.eventTimeoutMs} ms`);
      await sleep(opts.settleMs);
    };
    // HAProxy starts both servers up; the first health checks confirm it.
    await sleep(1_500);
    log(`opening ${opts.longLived} long-lived sessions`);
    await churn.start();
    await settle({ name: 'baseline', at: t0, detail: {} }); // both replicas serve before anything happens

    const killed = await killRedisPrimary(fleet, log);
    events.push(killed);
    await settle(killed);
    const primaryBefore = Number(killed.detail.primaryBefore);
    const primaryAfter = await newPrimary(fleet, primaryBefore);
    killed.detail.primaryAfter = primaryAfter;

    const drain = await drainAndRestart(fleet, churn, opts.drainTimeoutMs, log);
    events.push(drain);
    await settle(drain);

    const rotated = await rotateCertificate(fleet, log);
    events.push(rotated);
    await settle(rotated);

    log('stopping the churn: closing every session');
    await churn.stop();
    clearInterval(progress);
    const used = [...churn.accepted.keys()].slice(0, opts.finalReplays);
    log(`presenting ${used.length} accepted tokens again`);
    for (let i = 0; i < used.length; i += 8) await Promise.all(used.slice(i, i + 8).map((t) => churn.replay(t, churn.finalReplays)));

    const { pki } = fleet;
    const figures = summarize({ t0, records: churn.records, served, events, accepted: churn.accepted, certs: { before: pki.before.fingerprint256, after: pki.after.fingerprint256 } });
    const { log: _log, ...options } = opts;
    const drained = fleet.replicas[1]!;
    return {
      options,
      durationMs: Math.round(performance.now() - t0),
      ...figures,
      tokens: { ...figures.tokens, replaysDuringChurn: churn.replays, replaysAfterwards: churn.finalReplays },
      redis: { primaryBefore, primaryAfter },
      haproxy: fleet.haproxy.stats(),
      drains: drained.drains.map((d) => ({ replica: drained.name, ...d })),
      replicaErrorLines: fleet.replicas.flatMap((r) => r.problems.map((p) => `${r.name}: ${p}`)),
    };
  } finally {
    clearInterval(progress);
    await Promise.race([churn.stop(), sleep(20_000)]);
    await fleet.stop();
  }
}

/** The traffic through the fleet's HAProxy: tokens minted through its token API, sessions to its synthetic backend. */
function newChurn(fleet: Fleet, opts: FleetSoakOptions, log: (msg: string) => void): Churn {
  const base = `127.0.0.1:${fleet.haproxy.port}`;
  const target = { host: fleet.backend.host, port: fleet.backend.port };
  return new Churn({
    wsUrl: `wss://${base}/websockify`,
    ca: fleet.pki.caPem,
    minter: new TokenMinter({ baseUrl: `https://${base}`, ca: fleet.pki.caPem, secret: fleet.jwtSecret, target, timeoutMs: 5_000 }),
    longLived: opts.longLived,
    rate: opts.rate,
    shortLifeMs: opts.shortLifeMs,
    updateEveryMs: opts.updateEveryMs,
    openTimeoutMs: 15_000,
    replayRate: opts.replayRate,
    maxSessions: opts.maxSessions,
    log,
  });
}
