import { describe, expect, it } from 'vitest';
import { median, quantile, round, slope, summarize } from '../../../tools/loadtest/stats.js';

describe('stats', () => {
  it('quantiles are nearest-rank, so always a real sample', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
    expect(quantile(xs, 0.5)).toBe(50);
    expect(quantile(xs, 0.9)).toBe(90);
    expect(quantile(xs, 0.99)).toBe(99);
    expect(quantile(xs, 1)).toBe(100);
    expect(quantile(xs, 0)).toBe(1);
    expect(quantile([7], 0.99)).toBe(7);
    expect(quantile([], 0.5)).toBeNaN();
  });

  it('summarize sorts in place and reports count, mean, p50/p90/p99, min and max', () => {
    const xs = [5, 1, 4, 2, 3];
    expect(summarize(xs)).toEqual({ count: 5, mean: 3, p50: 3, p90: 5, p99: 5, max: 5, min: 1 });
    expect(xs).toEqual([1, 2, 3, 4, 5]);
    expect(summarize([]).count).toBe(0);
    expect(summarize([]).p50).toBeNaN();
  });

  it('median does not reorder its input', () => {
    const xs = [3, 1, 2];
    expect(median(xs)).toBe(2);
    expect(xs).toEqual([3, 1, 2]);
  });

  it('slope is the least-squares gradient', () => {
    expect(slope([{ x: 0, y: 1 }, { x: 1, y: 3 }, { x: 2, y: 5 }])).toBeCloseTo(2);
    expect(slope([{ x: 0, y: 5 }, { x: 10, y: 5 }])).toBe(0);
    expect(slope([{ x: 1, y: 1 }])).toBeNaN();
    expect(slope([{ x: 1, y: 1 }, { x: 1, y: 2 }])).toBeNaN();
  });

  it('round turns what JSON cannot hold into null', () => {
    expect(round(1.23456, 2)).toBe(1.23);
    expect(round(Number.NaN)).toBeNull();
    expect(round(Number.POSITIVE_INFINITY)).toBeNull();
  });
});
