/**
 * The bench's targets, each judged against a row measured in the same run: absolute rates moved
 * by 1.7× between two machines of the same kind, while ratios between rows of one run, interleaved
 * round by round, hold. Pure: figures in, verdicts and text out; `scripts/bench.mts` measures and
 * prints.
 *
 * Two measures, as before: the ratio (or difference) of the two rows' medians over the rounds,
 * and the median over rounds of the per-round ratio (or difference), each round's figure against
 * the floor measured in the same round. A target is met when both are; the verdict says which
 * one missed otherwise.
 *
 * Latency is judged as "added p50 over direct TCP at most the floor relay's added p50 + limit".
 * Direct TCP cancels out of that comparison ((v − tcp) − (floor − tcp) = v − floor, for medians
 * and round by round alike), so the excess is computed from the two rows alone.
 */
import { median } from '../tools/loadtest/index.js';

/** The per-round figures the targets read, as `vncgate loadtest` reports them. */
export const METRICS = {
  tp: 'MB/s', // stream: throughput of pixel payload
  p50: 'us', // pingpong: round-trip p50
  setupRate: 'setups/s', // setup: sequential sessions per second, full TLS handshakes
  setupRateResumed: 'resumed setups/s', // setup with the TLS session resumed (wss rows)
} as const;
export type Metric = keyof typeof METRICS;

/** One figure of one counted round of one variant (a run with a failed session gives none). */
export type Figure = { variant: string; round: number; metric: Metric; value: number };

export const RULES = ['ratio-at-least', 'excess-at-most', 'for-information'] as const;
export type Rule = (typeof RULES)[number];

export type Target = {
  /** The row judged. */
  variant: string;
  /** The row it is judged against, measured in the same run. */
  floor: string;
  metric: Metric;
  /** `ratio-at-least`: variant / floor ≥ limit; `excess-at-most`: variant − floor ≤ limit; `for-information`: the ratio, not judged. */
  rule: Rule;
  limit: number;
};

/** The rows the targets name: the bench's variant keys. */
export const FLOORS = { tcp: 'tcp', nodeWs: 'node-ws', nodeWss: 'node-wss' } as const;

/**
 * The targets of issue 5, restated against same-run rows (issue 16), for each vncgate row
 * present: `ws`/`wss` as shipped, `ws-tuned`/`wss-tuned` and `ws+observe`/`wss+observe` (metrics
 * and audit on) when the bench runs them.
 */
export function targetsFor(variants: readonly string[]): Target[] {
  const ws = variants.filter((k) => k === 'ws' || k === 'ws-tuned' || k === 'ws+observe');
  const wss = variants.filter((k) => k === 'wss' || k === 'wss-tuned' || k === 'wss+observe');
  return [
    ...ws.map((v): Target => ({ variant: v, floor: FLOORS.tcp, metric: 'tp', rule: 'ratio-at-least', limit: 0.7 })),
    ...wss.map((v): Target => ({ variant: v, floor: FLOORS.tcp, metric: 'tp', rule: 'ratio-at-least', limit: 0.5 })),
    ...ws.map((v): Target => ({ variant: v, floor: FLOORS.nodeWs, metric: 'p50', rule: 'excess-at-most', limit: 15 })),
    ...wss.map((v): Target => ({ variant: v, floor: FLOORS.nodeWss, metric: 'p50', rule: 'excess-at-most', limit: 15 })),
    ...ws.map((v): Target => ({ variant: v, floor: FLOORS.nodeWs, metric: 'setupRate', rule: 'ratio-at-least', limit: 0.6 })),
    ...wss.map((v): Target => ({ variant: v, floor: FLOORS.nodeWss, metric: 'setupRate', rule: 'ratio-at-least', limit: 0.6 })),
    // A browser that loaded noVNC's page from the same origin resumes that TLS session for the
    // WebSocket; the target stays on full handshakes, this is shown beside it.
    ...wss.map((v): Target => ({ variant: v, floor: FLOORS.nodeWss, metric: 'setupRateResumed', rule: 'for-information', limit: Number.NaN })),
  ];
}

export type Verdict = 'met' | 'MISSED' | 'met on medians, MISSED per round' | 'met per round, MISSED on medians' | 'not measured' | 'for information';

/**
 * A target with its figures: both rows' medians over the counted rounds, the ratio (or
 * difference) of those medians, the median of the per-round ratios (or differences) and how many
 * rounds that paired, and the verdict.
 */
export type Judged = Target & Comparison & { verdict: Verdict };

const byRound = (figures: readonly Figure[], variant: string, metric: Metric): Map<number, number> => {
  const m = new Map<number, number>();
  for (const f of figures) if (f.variant === variant && f.metric === metric && Number.isFinite(f.value)) m.set(f.round, f.value);
  return m;
};

export type Comparison = { variantMedian: number; floorMedian: number; onMedians: number; perRound: number; rounds: number };

/**
 * One row against another on one metric, both measures: `ratio` divides, `difference` subtracts.
 * The per-round measure pairs only rounds in which both rows gave a figure.
 */
export function compare(figures: readonly Figure[], variant: string, floor: string, metric: Metric, how: 'ratio' | 'difference'): Comparison {
  const v = byRound(figures, variant, metric);
  const f = byRound(figures, floor, metric);
  const combine = how === 'difference' ? (a: number, b: number) => a - b : (a: number, b: number) => a / b;
  const paired: number[] = [];
  for (const [round, value] of v) {
    const b = f.get(round);
    if (b !== undefined) paired.push(combine(value, b));
  }
  const variantMedian = median([...v.values()]);
  const floorMedian = median([...f.values()]);
  return { variantMedian, floorMedian, onMedians: combine(variantMedian, floorMedian), perRound: median(paired), rounds: paired.length };
}

/** Judges each target on both measures. A target whose rows were not measured is `not measured`. */
export function judge(figures: readonly Figure[], targets: readonly Target[]): Judged[] {
  return targets.map((t) => {
    const c = compare(figures, t.variant, t.floor, t.metric, t.rule === 'excess-at-most' ? 'difference' : 'ratio');
    const ok = (x: number): boolean => (t.rule === 'excess-at-most' ? x <= t.limit : x >= t.limit);
    const verdict: Verdict =
      t.rule === 'for-information'
        ? 'for information'
        : !Number.isFinite(c.onMedians) || !Number.isFinite(c.perRound)
          ? 'not measured'
          : ok(c.onMedians) && ok(c.perRound)
            ? 'met'
            : ok(c.onMedians)
              ? 'met on medians, MISSED per round'
              : ok(c.perRound)
                ? 'met per round, MISSED on medians'
                : 'MISSED';
    return { ...t, ...c, verdict };
  });
}

const fmt = (v: number, digits = 0): string => (Number.isFinite(v) ? v.toFixed(digits) : '–');
const signed = (v: number): string => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${v.toFixed(0)}` : '–');

/** The target in words, e.g. "added p50 round trip, vncgate ws <= minimal Node ws relay's + 15 us". */
export function describeTarget(t: Target, label: (key: string) => string): string {
  const quantity = { tp: 'throughput', p50: 'added p50 round trip', setupRate: 'sequential setups/s', setupRateResumed: 'setups/s, TLS resumed' }[t.metric];
  const floor = label(t.floor);
  if (t.rule === 'excess-at-most') return `${quantity}, ${label(t.variant)} <= ${floor}'s + ${t.limit} us`;
  if (t.rule === 'ratio-at-least') return `${quantity}, ${label(t.variant)} >= ${t.limit.toFixed(2)} x ${floor}${t.floor === FLOORS.tcp ? '' : "'s"}`;
  return `${quantity}, ${label(t.variant)} against ${floor}'s`;
}

/** The judged figure as printed: a ratio ("0.86x") or the µs beyond the floor's ("+3 us"). */
const value = (j: Judged, x: number): string => (j.rule === 'excess-at-most' ? `${signed(x)} us` : `${fmt(x, 2)}x`);

/** What the floor measured (and, for latency, what it and the variant add over direct TCP). */
function against(j: Judged, label: (key: string) => string, tcpP50: number): string {
  const unit = METRICS[j.metric];
  const floor = `${label(j.floor)}: ${fmt(j.floorMedian)} ${unit}`;
  if (j.metric !== 'p50' || !Number.isFinite(tcpP50)) return floor;
  return `${floor} (${signed(j.floorMedian - tcpP50)} over direct TCP; ${label(j.variant)} ${signed(j.variantMedian - tcpP50)})`;
}

/**
 * The targets as a text table: target, the judged value on medians and per round, the row it is
 * judged against with that row's median, the verdict. `tcpP50` (direct TCP's median round trip)
 * adds each latency row's added p50 for reading; it does not enter the verdict.
 */
export function formatTargets(judged: readonly Judged[], label: (key: string) => string, tcpP50 = Number.NaN): string[] {
  const rows = [
    ['target', 'medians', 'per round', 'judged against (its median)', 'verdict'],
    ...judged.map((j) => [describeTarget(j, label), value(j, j.onMedians), value(j, j.perRound), against(j, label, tcpP50), j.verdict]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === 1 || i === 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd());
}
