import { describeCpuIdle } from './cpuidle.js';
import type { LoadProgress, LoadtestResult } from './runner.js';

const n0 = (v: number | null | undefined, digits = 0): string =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const mib = (kib: number | null): string => (kib === null ? '–' : `${n0(kib / 1024, 1)} MiB`);

/** The human summary of a result, for stderr. */
export function formatReport(r: LoadtestResult): string {
  const rows: [string, string][] = [];
  const s = r.sessions;
  rows.push(['sessions', `${n0(s.started)} started, ${n0(s.established)} established, ${n0(s.failed)} failed (peak ${n0(s.peakConcurrent)} at once)`]);
  if (r.setup.p50Ms !== null) {
    rows.push([
      'setup',
      `${r.setup.perSecond !== null ? `${n0(r.setup.perSecond, 1)} sessions/s, ` : ''}p50 ${n0(r.setup.p50Ms, 2)} ms, p90 ${n0(r.setup.p90Ms, 2)} ms, p99 ${n0(r.setup.p99Ms, 2)} ms, max ${n0(r.setup.maxMs, 2)} ms`,
    ]);
  }
  if (r.throughput) {
    const t = r.throughput;
    rows.push(['throughput', `${n0(t.megabytesPerSecond, 1)} MB/s (${n0(t.payloadBytes / 1e6)} MB of pixels in ${n0(t.seconds, 1)} s, ${n0(t.updates)} updates, every byte checked)`]);
  }
  if (r.rtt) {
    const q = r.rtt;
    rows.push(['round trip', `p50 ${n0(q.p50Us)} µs, p90 ${n0(q.p90Us)} µs, p99 ${n0(q.p99Us)} µs, max ${n0(q.maxUs)} µs (${n0(q.samples)} updates)`]);
  }
  const errs = Object.entries(r.errors);
  rows.push(['errors', errs.length === 0 ? 'none' : errs.map(([k, v]) => `${v} × ${k}`).join('; ')]);
  for (const e of r.errorSamples.slice(0, 3)) rows.push(['', `e.g. ${e.reason}: ${e.detail.split('\n')[0]}`]);
  const v = r.vncgate;
  if (v) {
    const parts = [`RSS ${mib(v.rssBeforeKiB)} → ${mib(v.rssLoadedKiB)} (peak ${mib(v.rssPeakKiB)}, after ${mib(v.rssAfterKiB)})`];
    if (v.rssPerSessionKiB !== null) parts.push(`${n0(v.rssPerSessionKiB, 1)} KiB per open session`);
    if (v.rssMarginalPerSessionKiB !== null) parts.push(`${n0(v.rssMarginalPerSessionKiB, 1)} KiB per added session (slope)`);
    rows.push(['vncgate', parts.join(', ')]);
    const cpu = [`CPU ${n0(v.cpuSeconds, 2)} s`];
    if (v.cpuMsPerSession !== null && r.mode !== 'stream') cpu.push(`${n0(v.cpuMsPerSession, 3)} ms per session`);
    if (v.cpuMsPerMB !== null) cpu.push(`${n0(v.cpuMsPerMB, 3)} ms per MB`);
    if (v.rssSlopeKiBPerMinute !== null) cpu.push(`RSS slope ${n0(v.rssSlopeKiBPerMinute, 1)} KiB/min over the second half`);
    rows.push(['', cpu.join(', ')]);
    if (v.error) rows.push(['', v.error]);
  }
  if (r.warmup.sessions > 0) {
    rows.push(['warm-up', `${n0(r.warmup.sessions)} session(s) before the clock started${r.warmup.failed > 0 ? `, ${n0(r.warmup.failed)} FAILED` : ''}`]);
  }
  if (r.tokens.source !== 'none') {
    rows.push(['tokens', `${r.tokens.source}: ${n0(r.tokens.minted)} minted in ${n0(r.tokens.mintSeconds, 2)} s${r.tokens.perSecond !== null ? ` (${n0(r.tokens.perSecond)}/s)` : ''}, before the clock started`]);
  }
  rows.push([
    'memory',
    `MemAvailable at least ${r.memory.minAvailableMiB === null ? '?' : `${n0(r.memory.minAvailableMiB / 1024, 1)} GiB`} (floor ${n0(r.memory.floorMiB)} MiB${r.memory.floorHit ? ', REACHED: stopped opening sessions' : ''})`,
  ]);
  rows.push(['idle CPUs', describeCpuIdle(r.machine.cpuidle)]);
  const width = Math.max(...rows.map(([k]) => k.length));
  const head = `vncgate loadtest: ${r.mode}, ${n0(r.sessions.requested)} session(s) via ${r.target}, ${n0(r.wallSeconds, 1)} s, ${r.stoppedBy}`;
  return [head, ...rows.map(([k, val]) => `  ${k.padEnd(width)}  ${val}`)].join('\n');
}

/** One progress line (no newline): a bar, counts, rate and the machine's available memory. */
export function formatProgress(p: LoadProgress, mode: string): string {
  const frac = p.target > 0 ? Math.min(1, p.started / p.target) : 0;
  const width = 20;
  const filled = Math.round(frac * width);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
  const secs = p.elapsedMs / 1000;
  const extra = mode === 'stream' ? ` ${n0(p.payloadBytes / 1e6)} MB` : '';
  const mem = p.memAvailableBytes === null ? '' : ` MemAvailable ${n0(p.memAvailableBytes / 2 ** 30, 1)} GiB`;
  return `${bar} ${p.phase} ${n0(p.started)}/${n0(p.target)} ok ${n0(p.established)} failed ${n0(p.failed)} active ${n0(p.active)}${extra} ${n0(secs, 1)} s${mem}`;
}

/**
 * Writes progress to a stream: redrawn in place on a terminal, one line every `everyMs` otherwise
 * (a log file should not fill with bars).
 */
export class ProgressLine {
  readonly #out: NodeJS.WriteStream;
  readonly #tty: boolean;
  readonly #everyMs: number;
  #lastAt = -Infinity;
  #drawn = false;

  constructor(out: NodeJS.WriteStream, everyMs = 5_000) {
    this.#out = out;
    this.#tty = out.isTTY === true;
    this.#everyMs = everyMs;
  }

  update(line: string): void {
    if (this.#tty) {
      this.#out.write(`\r${line}\x1b[K`);
      this.#drawn = true;
      return;
    }
    const now = performance.now();
    if (now - this.#lastAt < this.#everyMs) return;
    this.#lastAt = now;
    this.#out.write(`${line}\n`);
  }

  /** Ends the in-place line so what follows starts on a fresh one. */
  done(): void {
    if (this.#tty && this.#drawn) this.#out.write('\n');
    this.#drawn = false;
  }
}
