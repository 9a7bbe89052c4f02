import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createMetrics, NO_METRICS } from '../../src/observe/index.js';

/** Every series name vncgate's registry exposes (histograms as _bucket/_sum/_count). */
async function exportedNames(): Promise<Set<string>> {
  const m = createMetrics();
  const names = new Set<string>();
  for (const metric of await m.registry.getMetricsAsJSON()) {
    names.add(metric.name);
    if (String(metric.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(metric.name + s);
  }
  return names;
}

/** PromQL functions, aggregations and keywords the dashboard uses (not metric names). */
const PROMQL_WORDS = new Set(['sum', 'rate', 'increase', 'histogram_quantile', 'by', 'without', 'avg', 'max', 'min', 'irate', 'count']);

/** The metric names a PromQL expression reads: what is left once strings, matchers, ranges, groupings and numbers are gone. */
function metricNamesIn(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without)\s*\([^)]*\)/g, '');
  return (bare.match(/[A-Za-z_:][A-Za-z0-9_:]*/g) ?? []).filter((w) => !PROMQL_WORDS.has(w));
}

describe('issue 17: metrics', () => {
  it('the Grafana dashboard queries only metrics vncgate exports', async () => {
    const names = await exportedNames();
    const dash = JSON.parse(readFileSync(new URL('../../deploy/grafana/vncgate-dashboard.json', import.meta.url), 'utf8')) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    expect(dash.panels.length).toBeGreaterThan(5);
    const used = new Set<string>();
    for (const panel of dash.panels) {
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      for (const { expr } of panel.targets) {
        const inExpr = metricNamesIn(expr);
        expect(inExpr.length, expr).toBeGreaterThan(0);
        for (const n of inExpr) {
          expect(names.has(n), `${panel.title}: ${n} in ${expr}`).toBe(true);
          used.add(n);
        }
      }
    }
    // Every vncgate metric has a panel (a histogram through any of its series).
    const base = (await createMetrics().registry.getMetricsAsJSON()).map((m) => m.name).filter((n) => n.startsWith('vncgate_'));
    for (const n of base) expect([n, `${n}_bucket`, `${n}_count`, `${n}_sum`].some((s) => used.has(s)), n).toBe(true);
  });

  it('counts bytes of ended sessions plus the live ones at scrape time, never going back', async () => {
    const m = createMetrics();
    const live = [{ bytesToBrowser: 100, bytesToBackend: 10 }];
    m.watchSessions(() => live);
    const bytes = async (): Promise<Record<string, number>> => {
      const metric = await m.registry.getSingleMetric('vncgate_bytes_total')!.get();
      return Object.fromEntries(metric.values.map((v) => [String(v.labels.direction), v.value]));
    };
    expect(await bytes()).toEqual({ to_browser: 100, to_backend: 10 });
    live[0] = { bytesToBrowser: 150, bytesToBackend: 12 };
    expect(await bytes()).toEqual({ to_browser: 150, to_backend: 12 });
    // The session ends: its bytes move to the ended total in the same step.
    m.sessionEnded({ code: null, ordinary: true, closedBy: 'browser', bytesToBrowser: 150, bytesToBackend: 12 });
    live.pop();
    expect(await bytes()).toEqual({ to_browser: 150, to_backend: 12 });
    const text = (await m.render()).body;
    expect(text).toContain('vncgate_sessions_total{outcome="ok",code="none",closed_by="browser"} 1');
    expect(text).toContain('vncgate_sessions_active 0');
  });

  it('counts endpoint-side failures by code, and not the browser’s', async () => {
    const m = createMetrics();
    m.sessionEnded({ code: 'BACKEND_ERR_REFUSED', ordinary: false, closedBy: 'vncgate', bytesToBrowser: 0, bytesToBackend: 0 });
    m.sessionEnded({ code: 'RFB_ERR_AUTH_FAILED', ordinary: false, closedBy: 'vncgate', bytesToBrowser: 0, bytesToBackend: 0 });
    m.sessionEnded({ code: 'RFB_ERR_CLIENT_PROTOCOL', ordinary: false, closedBy: 'browser', bytesToBrowser: 0, bytesToBackend: 0 });
    m.sessionEnded({ code: 'TOKEN_ERR_INVALID', ordinary: false, closedBy: 'vncgate', bytesToBrowser: 0, bytesToBackend: 0 });
    const text = (await m.render()).body;
    expect(text).toContain('vncgate_backend_errors_total{code="BACKEND_ERR_REFUSED"} 1');
    expect(text).toContain('vncgate_backend_errors_total{code="RFB_ERR_AUTH_FAILED"} 1');
    expect(text).not.toContain('vncgate_backend_errors_total{code="RFB_ERR_CLIENT_PROTOCOL"}');
    expect(text).not.toContain('vncgate_backend_errors_total{code="TOKEN_ERR_INVALID"}');
  });

  it('each registry is private: two instances do not share values, and the global one stays empty', async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.tokenChecked('invalid');
    expect((await a.render()).body).toContain('vncgate_token_consume_total{result="invalid"} 1');
    expect((await b.render()).body).toContain('vncgate_token_consume_total{result="invalid"} 0');
    const { register } = await import('prom-client');
    expect(await register.metrics()).not.toContain('vncgate_');
  });

  it('metrics off: a no-op with no upstream observer', () => {
    expect(NO_METRICS.enabled).toBe(false);
    expect(NO_METRICS.upstream).toBeUndefined();
    expect(() => NO_METRICS.sessionEnded({ code: null, ordinary: true, closedBy: 'browser', bytesToBrowser: 1, bytesToBackend: 1 })).not.toThrow();
  });
});
