import { setTimeout as sleep } from 'node:timers/promises';
import type { SecurityChoice } from '../../src/rfb/index.js';
import { readCpuIdle, type CpuIdle } from './cpuidle.js';
import { LoadError, toLoadError } from './load-error.js';
import { LoadSession } from './load-session.js';
import type { MemoryFloor } from './meminfo.js';
import type { ProcSample, ProcSampler } from './proc-sampler.js';
import { round, slope, summarize } from './stats.js';
import type { TokenSource } from './token-source.js';
import type { Connect } from './transport.js';

export const LOAD_MODES = ['setup', 'idle', 'stream', 'pingpong'] as const;
export type LoadMode = (typeof LOAD_MODES)[number];

export type LoadtestOptions = {
  mode: LoadMode;
  /** What the report calls the target ("wss://127.0.0.1:6080", "tcp://127.0.0.1:5900"). */
  label: string;
  /** A connector per session, given that session's token (null without a token source). */
  connect: (token: string | null) => Connect;
  tokens: TokenSource;
  /** Sessions to run in all. */
  sessions: number;
  /**
   * Sessions opened, given WARMUP_EXCHANGES round trips and closed one after another before the
   * clock starts, left out of every figure: they warm the JIT compilers of the load tester and of
   * vncgate, so that a run measures steady state rather than how soon V8 optimises. Default 0.
   */
  warmupSessions?: number;
  /** Sessions in flight at once. */
  concurrency: number;
  /**
   * stream/pingpong: how long each session is driven; idle: how long the sessions are held once
   * all are open; setup: the longest the run keeps opening sessions.
   */
  durationMs: number;
  /** setup: request/update exchanges per session before it closes (0: handshake only). */
  updatesPerSession: number;
  /** stream: update requests kept outstanding per session (1, as noVNC does). */
  pipeline: number;
  security: readonly SecurityChoice[];
  password?: Buffer | undefined;
  setupTimeoutMs: number;
  updateTimeoutMs: number;
  verify: boolean;
  memFloor: MemoryFloor;
  /** How this machine's idle CPUs wait, reported beside the figures (default: read from /sys). */
  cpuIdle?: (() => CpuIdle) | undefined;
  /** Samples vncgate's RSS and CPU when its PID is known. */
  sampler: ProcSampler | null;
  onProgress?: ((p: LoadProgress) => void) | undefined;
  /** Human notices for stderr ("memory floor reached…"). */
  onNotice?: ((line: string) => void) | undefined;
  signal?: AbortSignal | undefined;
};

export type LoadProgress = {
  phase: 'minting' | 'warming' | 'opening' | 'running' | 'holding' | 'closing';
  elapsedMs: number;
  target: number;
  started: number;
  established: number;
  failed: number;
  active: number;
  payloadBytes: number;
  memAvailableBytes: number | null;
};

export type StopReason = 'completed' | 'duration' | 'memory-floor' | 'aborted';

export type LoadtestResult = {
  mode: LoadMode;
  target: string;
  startedAt: string;
  wallSeconds: number | null;
  stoppedBy: StopReason;
  sessions: { requested: number; started: number; established: number; failed: number; peakConcurrent: number };
  /** Untimed sessions before the clock started (their errors are in `errors` as warmup-…). */
  warmup: { sessions: number; failed: number };
  setup: { perSecond: number | null; p50Ms: number | null; p90Ms: number | null; p99Ms: number | null; maxMs: number | null };
  throughput: { payloadBytes: number; seconds: number | null; megabytesPerSecond: number | null; updates: number } | null;
  rtt: { samples: number; p50Us: number | null; p90Us: number | null; p99Us: number | null; maxUs: number | null; meanUs: number | null } | null;
  errors: Record<string, number>;
  errorSamples: { reason: string; detail: string }[];
  tokens: { source: string; minted: number; mintSeconds: number | null; perSecond: number | null };
  vncgate: VncgateFigures | null;
  memory: { floorMiB: number; minAvailableMiB: number | null; floorHit: boolean };
  /** The machine's idle settings: round-trip figures depend on them (see cpuidle.ts). */
  machine: { cpuidle: CpuIdle };
};

export type VncgateFigures = {
  pid: number;
  rssBeforeKiB: number | null;
  /** idle: with every session open (end of the hold); otherwise the last sample of the run. */
  rssLoadedKiB: number | null;
  rssAfterKiB: number | null;
  rssPeakKiB: number | null;
  /** (loaded − before) / sessions open at that moment; idle mode only. */
  rssPerSessionKiB: number | null;
  /**
   * Least-squares slope of RSS over open sessions while they were being opened (idle mode): the
   * cost of one more session, independent of where the baseline happened to be.
   */
  rssMarginalPerSessionKiB: number | null;
  cpuSeconds: number | null;
  cpuMsPerSession: number | null;
  cpuMsPerMB: number | null;
  /** RSS change over the second half of the run, per minute (a leak shows as a steady climb). */
  rssSlopeKiBPerMinute: number | null;
  /** Up to 120 evenly spread samples: [seconds since start, RSS KiB]. */
  rssTimeline: [number, number][];
  error: string | null;
};

const MAX_ERROR_SAMPLES = 10;
/** Update round trips in each warm-up session: enough to run the relay path, not a load of its own. */
export const WARMUP_EXCHANGES = 10;
const KiB = 1024;
const MiB = 1024 * 1024;

/**
 * Runs one load test. Sessions are opened by `concurrency` workers until `sessions` have run
 * (setup, stream, pingpong: each worker opens, drives and closes one session after another) or
 * are open (idle: then all are held for the duration and closed together). Opening stops early
 * when the duration is over (setup), when the machine's MemAvailable is below the floor, or on
 * abort — and the report says which.
 */
export async function runLoadtest(o: LoadtestOptions): Promise<LoadtestResult> {
  const startedAt = new Date().toISOString();
  const errors = new Map<string, number>();
  const errorSamples: { reason: string; detail: string }[] = [];
  const setupMs: number[] = [];
  const rttUs: number[] = [];
  const c = { started: 0, established: 0, failed: 0, active: 0, peak: 0, payloadBytes: 0, updates: 0 };
  let stoppedBy: StopReason = 'completed';
  let phase: LoadProgress['phase'] = 'minting';
  const t0 = performance.now();

  const record = (err: unknown): void => {
    const e = toLoadError(err);
    errors.set(e.reason, (errors.get(e.reason) ?? 0) + 1);
    if (errorSamples.length < MAX_ERROR_SAMPLES) errorSamples.push({ reason: e.reason, detail: e.message.slice(0, 500) });
  };
  const progress = (): void =>
    o.onProgress?.({
      phase,
      elapsedMs: performance.now() - t0,
      target: o.sessions,
      started: c.started,
      established: c.established,
      failed: c.failed,
      active: c.active,
      payloadBytes: c.payloadBytes + [...live].reduce((sum, s) => sum + s.pixelBytes, 0),
      memAvailableBytes: o.memFloor.available(),
    });
  const ticker = setInterval(progress, 250);
  ticker.unref();

  // Tokens are minted before the clock starts: setup figures are about consuming, not minting.
  const warmupSessions = Math.max(0, o.warmupSessions ?? 0);
  const prefill = o.tokens.kind === 'none' ? 0 : Math.min(o.sessions + warmupSessions, 20_000);
  o.tokens.plan(o.sessions + warmupSessions);
  try {
    await o.tokens.prefill(prefill);
  } catch (err) {
    record(err);
  }

  /** May another session be opened now? Records why not, once. */
  const mayOpen = (deadline: number): boolean => {
    if (stoppedBy !== 'completed') return false;
    if (o.signal?.aborted) {
      stoppedBy = 'aborted';
      return false;
    }
    if (c.started >= o.sessions) return false;
    if (performance.now() >= deadline) {
      stoppedBy = 'duration';
      return false;
    }
    if (!o.memFloor.ok()) {
      stoppedBy = 'memory-floor';
      const avail = o.memFloor.available();
      o.onNotice?.(
        `MemAvailable ${avail === null ? '?' : Math.round(avail / MiB)} MiB is below the floor of ${Math.round(o.memFloor.floorBytes / MiB)} MiB: stopped opening sessions after ${c.started}`,
      );
      return false;
    }
    return true;
  };

  const newSession = (token: string | null): LoadSession =>
    new LoadSession({
      connect: o.connect(token),
      security: o.security,
      password: o.password,
      setupTimeoutMs: o.setupTimeoutMs,
      updateTimeoutMs: o.updateTimeoutMs,
      verify: o.verify,
    });

  // Warm-up: every wait inside is bounded by the session's own setup and update deadlines.
  const warm = { sessions: 0, failed: 0 };
  phase = 'warming';
  for (let i = 0; i < warmupSessions && !o.signal?.aborted && o.memFloor.ok(); i++) {
    warm.sessions++;
    let s: LoadSession | null = null;
    try {
      s = newSession(await o.tokens.take());
      await s.open();
      await s.pingpong(Number.POSITIVE_INFINITY, [], WARMUP_EXCHANGES);
      await s.close();
    } catch (err) {
      warm.failed++;
      const e = toLoadError(err);
      record(new LoadError(`warmup-${e.reason}`, e.message));
      s?.destroy();
    }
  }

  /** Opens one session; null if it failed (recorded). */
  const openOne = async (): Promise<LoadSession | null> => {
    c.started++;
    let token: string | null;
    try {
      token = await o.tokens.take();
    } catch (err) {
      c.failed++;
      record(err);
      return null;
    }
    const s = newSession(token);
    c.active++;
    c.peak = Math.max(c.peak, c.active);
    try {
      setupMs.push(await s.open());
      c.established++;
      return s;
    } catch (err) {
      c.active--;
      c.failed++;
      record(err);
      s.destroy();
      return null;
    }
  };

  const closing = new Set<Promise<void>>();
  const closeLater = (s: LoadSession): void => {
    const p = s.close().finally(() => closing.delete(p));
    closing.add(p);
  };

  const sampler = o.sampler;
  const s0 = sampler?.sample() ?? null;
  sampler?.start();
  let phaseStart = performance.now();
  let phaseEnd = phaseStart;
  let loaded: ProcSample | null = null;
  let openAtLoad = 0;
  const growth: { x: number; y: number }[] = [];
  const live = new Set<LoadSession>();

  if (o.mode === 'idle') {
    phase = 'opening';
    const open: LoadSession[] = [];
    const openDeadline = phaseStart + Math.max(60_000, o.sessions * 50); // 20 sessions/s at worst
    const step = Math.max(1, Math.floor(o.sessions / 20));
    let nextSample = step;
    const worker = async (): Promise<void> => {
      while (mayOpen(openDeadline)) {
        const s = await openOne();
        if (!s) continue;
        if (c.active >= nextSample && sampler) {
          nextSample += step;
          const smp = sampler.sample();
          if (smp) growth.push({ x: c.active, y: smp.rssBytes / KiB });
        }
        s.onUnexpectedEnd = (err) => {
          c.active--;
          c.failed++;
          record(new LoadError(`dropped-while-idle: ${err.reason}`, err.message));
        };
        open.push(s);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, o.concurrency) }, worker));
    phase = 'holding';
    phaseStart = performance.now();
    await sleepUnless(o.durationMs, o.signal);
    loaded = sampler?.sample() ?? null;
    openAtLoad = open.filter((s) => !s.ended).length;
    phaseEnd = performance.now();
    phase = 'closing';
    for (const s of open) {
      s.onUnexpectedEnd = null;
      if (!s.ended) c.active--;
      closeLater(s);
    }
  } else {
    phase = 'running';
    // setup: the duration bounds the whole run. stream/pingpong: it is each session's length;
    // with more sessions than workers they run in waves, bounded by the session count.
    const openDeadline = o.mode === 'setup' ? phaseStart + o.durationMs : Number.POSITIVE_INFINITY;
    const worker = async (): Promise<void> => {
      while (mayOpen(openDeadline)) {
        const s = await openOne();
        if (!s) continue;
        live.add(s);
        try {
          if (o.mode === 'stream') c.updates += await s.stream(performance.now() + o.durationMs, o.pipeline);
          else if (o.mode === 'pingpong') c.updates += await s.pingpong(performance.now() + o.durationMs, rttUs);
          else if (o.updatesPerSession > 0) c.updates += await s.pingpong(Number.POSITIVE_INFINITY, rttUs, o.updatesPerSession);
        } catch (err) {
          c.failed++;
          record(err);
        } finally {
          live.delete(s);
          c.payloadBytes += s.pixelBytes;
          c.active--;
          closeLater(s);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, o.concurrency) }, worker));
    phaseEnd = performance.now();
    phase = 'closing';
  }

  // Closes still pending after 10 s are given up on. The timer is cancelled once they are all
  // done: left running, it kept a finished run's process alive for those 10 s.
  const closed = new AbortController();
  await Promise.race([
    Promise.all([...closing]).finally(() => closed.abort()),
    sleep(10_000, undefined, { signal: closed.signal }).catch(() => undefined),
  ]);
  const end = sampler?.sample() ?? null;
  if (o.mode === 'idle' && sampler) {
    // Let vncgate finish tearing down before the "after" reading.
    await sleep(1_000);
  }
  const after = o.mode === 'idle' ? (sampler?.sample() ?? null) : end;
  sampler?.stop();
  clearInterval(ticker);
  progress();
  await o.tokens.close();

  const phaseSeconds = (phaseEnd - phaseStart) / 1000;
  const setup = summarize(setupMs);
  const rtt = summarize(rttUs);
  const tokenStats = o.tokens.stats();
  return {
    mode: o.mode,
    target: o.label,
    startedAt,
    wallSeconds: round((performance.now() - t0) / 1000, 3),
    stoppedBy,
    sessions: { requested: o.sessions, started: c.started, established: c.established, failed: c.failed, peakConcurrent: c.peak },
    warmup: warm,
    setup: {
      perSecond: o.mode === 'setup' ? round(c.established / phaseSeconds, 1) : null,
      p50Ms: round(setup.p50, 3),
      p90Ms: round(setup.p90, 3),
      p99Ms: round(setup.p99, 3),
      maxMs: round(setup.max, 3),
    },
    throughput:
      o.mode === 'stream'
        ? { payloadBytes: c.payloadBytes, seconds: round(phaseSeconds, 3), megabytesPerSecond: round(c.payloadBytes / 1e6 / phaseSeconds, 1), updates: c.updates }
        : null,
    rtt:
      rtt.count > 0
        ? { samples: rtt.count, p50Us: round(rtt.p50, 1), p90Us: round(rtt.p90, 1), p99Us: round(rtt.p99, 1), maxUs: round(rtt.max, 1), meanUs: round(rtt.mean, 1) }
        : null,
    errors: Object.fromEntries([...errors].sort((a, b) => b[1] - a[1])),
    errorSamples,
    tokens: {
      source: o.tokens.kind,
      minted: tokenStats.minted,
      mintSeconds: round(tokenStats.mintMs / 1000, 3),
      perSecond: tokenStats.mintMs > 0 ? round(tokenStats.minted / (tokenStats.mintMs / 1000), 0) : null,
    },
    vncgate: sampler ? vncgateFigures(o, sampler, s0, loaded ?? end, after, openAtLoad, c.established, c.payloadBytes, growth) : null,
    memory: {
      floorMiB: Math.round(o.memFloor.floorBytes / MiB),
      minAvailableMiB: o.memFloor.state().minAvailableBytes === null ? null : Math.round(o.memFloor.state().minAvailableBytes! / MiB),
      floorHit: o.memFloor.state().hit,
    },
    machine: { cpuidle: (o.cpuIdle ?? readCpuIdle)() },
  };
}

function vncgateFigures(
  o: LoadtestOptions,
  sampler: ProcSampler,
  before: ProcSample | null,
  loaded: ProcSample | null,
  after: ProcSample | null,
  openAtLoad: number,
  established: number,
  payloadBytes: number,
  growth: readonly { x: number; y: number }[],
): VncgateFigures {
  const kib = (b: number | undefined): number | null => (b === undefined ? null : Math.round(b / KiB));
  const cpu = before && after ? after.cpuSeconds - before.cpuSeconds : Number.NaN;
  const samples = sampler.samples;
  const first = samples[0];
  const half = samples.filter((s) => first && s.atMs >= (first.atMs + (samples.at(-1)?.atMs ?? first.atMs)) / 2);
  const step = Math.max(1, Math.ceil(samples.length / 120));
  return {
    pid: sampler.pid,
    rssBeforeKiB: kib(before?.rssBytes),
    rssLoadedKiB: kib(loaded?.rssBytes),
    rssAfterKiB: kib(after?.rssBytes),
    rssPeakKiB: kib(sampler.peakRssBytes || undefined),
    rssPerSessionKiB:
      o.mode === 'idle' && before && loaded && openAtLoad > 0 ? round((loaded.rssBytes - before.rssBytes) / KiB / openAtLoad, 1) : null,
    rssMarginalPerSessionKiB: growth.length >= 5 ? round(slope(growth), 1) : null,
    cpuSeconds: round(cpu, 2),
    cpuMsPerSession: established > 0 ? round((cpu * 1000) / established, 3) : null,
    cpuMsPerMB: payloadBytes > 0 ? round((cpu * 1000) / (payloadBytes / 1e6), 3) : null,
    rssSlopeKiBPerMinute: half.length >= 10 ? round(slope(half.map((s) => ({ x: s.atMs / 60_000, y: s.rssBytes / KiB }))), 1) : null,
    rssTimeline: samples.filter((_, i) => i % step === 0).map((s) => [round((s.atMs - (first?.atMs ?? 0)) / 1000, 1) ?? 0, Math.round(s.rssBytes / KiB)]),
    error: sampler.error,
  };
}

async function sleepUnless(ms: number, signal: AbortSignal | undefined): Promise<void> {
  const until = performance.now() + ms;
  while (!signal?.aborted && performance.now() < until) await sleep(Math.min(250, until - performance.now()));
}
