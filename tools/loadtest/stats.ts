/**
 * Plain statistics over sample arrays: samples are sorted once and read by rank, so percentiles
 * are exact (no histogram buckets) and cost O(n log n) per report.
 */

/** The value at quantile `p` (0…1) of an ascending array: nearest rank, so always a real sample. */
export function quantile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil(p * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))]!;
}

export type Summary = { count: number; mean: number; p50: number; p90: number; p99: number; max: number; min: number };

/** Sorts `samples` in place and summarises them; NaN figures when there are none. */
export function summarize(samples: number[]): Summary {
  samples.sort((a, b) => a - b);
  let sum = 0;
  for (const s of samples) sum += s;
  const n = samples.length;
  return {
    count: n,
    mean: n === 0 ? Number.NaN : sum / n,
    p50: quantile(samples, 0.5),
    p90: quantile(samples, 0.9),
    p99: quantile(samples, 0.99),
    max: n === 0 ? Number.NaN : samples[n - 1]!,
    min: n === 0 ? Number.NaN : samples[0]!,
  };
}

export function median(values: readonly number[]): number {
  return quantile([...values].sort((a, b) => a - b), 0.5);
}

/** Least-squares slope of y over x (units of y per unit of x); NaN with fewer than two points. */
export function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  let sx = 0;
  let sy = 0;
  for (const p of points) {
    sx += p.x;
    sy += p.y;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

/** Rounds for reports: `digits` decimals, NaN and ±Infinity become null (JSON has no NaN). */
export function round(v: number, digits = 0): number | null {
  if (!Number.isFinite(v)) return null;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
