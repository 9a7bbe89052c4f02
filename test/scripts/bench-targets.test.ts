import { describe, expect, it } from 'vitest';
import { formatTargets, judge, targetsFor, type Figure, type Judged, type Metric } from '../../scripts/bench-targets.mjs';

/** Figures of one variant and metric, one per round from round 1. */
const rounds = (variant: string, metric: Metric, values: readonly number[]): Figure[] => values.map((value, i) => ({ variant, round: i + 1, metric, value }));

const ALL = ['tcp', 'ws', 'wss', 'node-ws', 'node-wss', 'node-tcp', 'socat'];

/** A run in which every target is met with a margin: the latest full run's shape (BENCHMARKS.md). */
const healthy = (): Figure[] => [
  ...rounds('tcp', 'tp', [500, 520, 510]),
  ...rounds('ws', 'tp', [440, 430, 450]),
  ...rounds('wss', 'tp', [300, 310, 305]),
  ...rounds('tcp', 'p50', [28, 30, 29]),
  ...rounds('node-ws', 'p50', [59, 60, 58]),
  ...rounds('node-wss', 'p50', [70, 72, 71]),
  ...rounds('ws', 'p50', [62, 63, 64]),
  ...rounds('wss', 'p50', [80, 82, 81]),
  ...rounds('node-ws', 'setupRate', [840, 800, 820]),
  ...rounds('node-wss', 'setupRate', [400, 420, 410]),
  ...rounds('ws', 'setupRate', [507, 520, 510]),
  ...rounds('wss', 'setupRate', [262, 270, 265]),
  ...rounds('node-wss', 'setupRateResumed', [450, 460, 455]),
  ...rounds('wss', 'setupRateResumed', [270, 280, 275]),
];

const find = (judged: readonly Judged[], variant: string, metric: Metric): Judged => {
  const j = judged.find((x) => x.variant === variant && x.metric === metric);
  if (!j) throw new Error(`no target for ${variant} ${metric}`);
  return j;
};

/** Replaces one variant's figures of one metric. */
const withRounds = (figures: readonly Figure[], variant: string, metric: Metric, values: readonly number[]): Figure[] => [
  ...figures.filter((f) => !(f.variant === variant && f.metric === metric)),
  ...rounds(variant, metric, values),
];

describe('bench targets against same-run rows (issue 16)', () => {
  it('names each target and the row it is judged against', () => {
    const t = targetsFor(ALL);
    expect(t.map((x) => [x.variant, x.metric, x.floor, x.rule, x.limit])).toEqual([
      ['ws', 'tp', 'tcp', 'ratio-at-least', 0.7],
      ['wss', 'tp', 'tcp', 'ratio-at-least', 0.5],
      ['ws', 'p50', 'node-ws', 'excess-at-most', 15],
      ['wss', 'p50', 'node-wss', 'excess-at-most', 15],
      ['ws', 'setupRate', 'node-ws', 'ratio-at-least', 0.6],
      ['wss', 'setupRate', 'node-wss', 'ratio-at-least', 0.6],
      ['wss', 'setupRateResumed', 'node-wss', 'for-information', Number.NaN],
    ]);
    expect(targetsFor([...ALL, 'ws-tuned', 'wss-tuned']).filter((x) => x.variant.endsWith('-tuned'))).toHaveLength(7);
    // Issue 17: the rows with metrics and audit on are judged on the same targets as the rows without.
    const observed = targetsFor([...ALL, 'ws+observe', 'wss+observe']).filter((x) => x.variant.endsWith('+observe'));
    expect(observed.map((x) => [x.variant.replace('+observe', ''), x.metric, x.floor])).toEqual(t.map((x) => [x.variant, x.metric, x.floor]));
  });

  it('meets every target in a healthy run, on both measures', () => {
    const judged = judge(healthy(), targetsFor(ALL));
    for (const j of judged.filter((x) => x.rule !== 'for-information')) expect([j.variant, j.metric, j.verdict]).toEqual([j.variant, j.metric, 'met']);
    expect(find(judged, 'ws', 'p50')).toMatchObject({ onMedians: 4, perRound: 3, rounds: 3 });
    expect(find(judged, 'ws', 'setupRate').onMedians).toBeCloseTo(510 / 820);
    expect(find(judged, 'wss', 'setupRateResumed')).toMatchObject({ verdict: 'for information' });
  });

  it('misses wss setups below 0.6x the minimal wss relay, however fast they are in absolute terms', () => {
    // 400/s would have met the old absolute line of 250/s; against a relay at 800/s it is 0.5x.
    let f = withRounds(healthy(), 'node-wss', 'setupRate', [790, 800, 810]);
    f = withRounds(f, 'wss', 'setupRate', [390, 400, 410]);
    expect(find(judge(f, targetsFor(ALL)), 'wss', 'setupRate').verdict).toBe('MISSED');
  });

  it('meets wss setups on a slow machine where the absolute line would have been missed', () => {
    let f = withRounds(healthy(), 'node-wss', 'setupRate', [300, 310, 320]);
    f = withRounds(f, 'wss', 'setupRate', [200, 205, 210]);
    expect(find(judge(f, targetsFor(ALL)), 'wss', 'setupRate').verdict).toBe('met');
  });

  it('judges added latency against the floor relay plus 15 us, not against an absolute line', () => {
    // vncgate ws adds +45 us over direct TCP, the minimal ws relay +25: 20 us beyond it.
    let f = withRounds(healthy(), 'tcp', 'p50', [30, 30, 30]);
    f = withRounds(f, 'node-ws', 'p50', [55, 55, 55]);
    f = withRounds(f, 'ws', 'p50', [75, 75, 75]);
    expect(find(judge(f, targetsFor(ALL)), 'ws', 'p50')).toMatchObject({ onMedians: 20, perRound: 20, verdict: 'MISSED' });
    // Polling off: everything slower, vncgate +90 over TCP but only +10 beyond the relay's +80.
    f = withRounds(f, 'tcp', 'p50', [110, 115, 120]);
    f = withRounds(f, 'node-wss', 'p50', [190, 195, 200]);
    f = withRounds(f, 'wss', 'p50', [200, 205, 210]);
    expect(find(judge(f, targetsFor(ALL)), 'wss', 'p50')).toMatchObject({ onMedians: 10, verdict: 'met' });
  });

  it('tells which measure missed when the ratio of medians and the per-round ratios disagree', () => {
    // Per round 0.75, 0.67, 0.66 (median 0.67); medians 450 / 600 = 0.75.
    let f = withRounds(healthy(), 'tcp', 'tp', [600, 450, 750]);
    f = withRounds(f, 'ws', 'tp', [450, 300, 495]);
    expect(find(judge(f, targetsFor(ALL)), 'ws', 'tp')).toMatchObject({ verdict: 'met on medians, MISSED per round' });
    expect(find(judge(f, targetsFor(ALL)), 'ws', 'tp').perRound).toBeCloseTo(2 / 3);
    // Per round 0.72, 0.72, 0.5 (median 0.72); medians 360 / 600 = 0.6.
    f = withRounds(healthy(), 'tcp', 'tp', [500, 600, 700]);
    f = withRounds(f, 'ws', 'tp', [360, 432, 350]);
    expect(find(judge(f, targetsFor(ALL)), 'ws', 'tp')).toMatchObject({ verdict: 'met per round, MISSED on medians' });
  });

  it('pairs rounds only where both rows were measured', () => {
    // Round 2 of the relay failed (no figure): the per-round measure pairs rounds 1 and 3.
    const f = [...withRounds(healthy(), 'node-ws', 'setupRate', []), ...rounds('node-ws', 'setupRate', [800]), { variant: 'node-ws', round: 3, metric: 'setupRate' as const, value: 800 }];
    expect(find(judge(f, targetsFor(ALL)), 'ws', 'setupRate')).toMatchObject({ rounds: 2, verdict: 'met' });
  });

  it('reports a target whose floor row was not run as not measured, not as met', () => {
    const f = healthy().filter((x) => x.variant !== 'node-wss');
    const judged = judge(f, targetsFor(['tcp', 'ws', 'wss']));
    expect(find(judged, 'wss', 'p50').verdict).toBe('not measured');
    expect(find(judged, 'wss', 'setupRate').verdict).toBe('not measured');
    expect(find(judged, 'wss', 'tp').verdict).toBe('met');
  });

  it('prints each target with its value on both measures, the floor row and the verdict', () => {
    const labels: Record<string, string> = { tcp: 'direct TCP', ws: 'vncgate ws', wss: 'vncgate wss', 'node-ws': 'minimal Node ws relay', 'node-wss': 'minimal Node wss relay' };
    const lines = formatTargets(judge(healthy(), targetsFor(ALL)), (k) => labels[k] ?? k, 29);
    expect(lines[0]).toMatch(/^target +medians +per round +judged against \(its median\) +verdict$/);
    const latency = lines.find((l) => l.startsWith('added p50 round trip, vncgate ws <='));
    expect(latency).toMatch(/minimal Node ws relay's \+ 15 us +\+4 us +\+3 us +minimal Node ws relay: 59 us \(\+30 over direct TCP; vncgate ws \+34\) +met$/);
    expect(lines.find((l) => l.startsWith('sequential setups/s, vncgate wss'))).toMatch(/>= 0\.60 x minimal Node wss relay's +0\.65x +0\.65x +minimal Node wss relay: 410 setups\/s +met$/);
  });
});
