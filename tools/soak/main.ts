/**
 * `npm run soak:fleet -- [options]`: the fleet soak (tools/soak/fleet.ts). The JSON report goes
 * to stdout, progress to stderr; the exit code is 0 when the goals held (no token accepted twice,
 * no session lost but those on the drained replica past its window, service whole again after
 * every event, the new certificate presented afterwards), 1 otherwise.
 *
 *   --long-lived 150 --rate 6 --short-life-ms 2000-8000 --update-every-ms 1000 --drain-ms 5000
 *   --settle-ms 8000 --event-timeout-ms 30000 --replay-rate 2 --final-replays 300 --max-sessions 2000
 */
import { parseArgs } from 'node:util';
import { FLEET_DEFAULTS, runFleetSoak } from './fleet.js';
import { verdict } from './verdict.js';

const { values: a } = parseArgs({
  options: {
    'long-lived': { type: 'string' },
    rate: { type: 'string' },
    'short-life-ms': { type: 'string' },
    'update-every-ms': { type: 'string' },
    'drain-ms': { type: 'string' },
    'settle-ms': { type: 'string' },
    'event-timeout-ms': { type: 'string' },
    'replay-rate': { type: 'string' },
    'final-replays': { type: 'string' },
    'max-sessions': { type: 'string' },
  },
});

function num(v: string | undefined, dflt: number, name: string): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number ≥ 0, got ${JSON.stringify(v)}`);
  return n;
}

const d = FLEET_DEFAULTS;
const life = (a['short-life-ms'] ?? `${d.shortLifeMs[0]}-${d.shortLifeMs[1]}`).split('-').map(Number);
if (life.length !== 2 || life.some((n) => !Number.isFinite(n) || n < 0) || life[0]! > life[1]!) throw new Error('--short-life-ms takes MIN-MAX');
const report = await runFleetSoak({
  ...d,
  longLived: num(a['long-lived'], d.longLived, 'long-lived'),
  rate: num(a.rate, d.rate, 'rate'),
  shortLifeMs: [life[0]!, life[1]!],
  updateEveryMs: num(a['update-every-ms'], d.updateEveryMs, 'update-every-ms'),
  drainTimeoutMs: num(a['drain-ms'], d.drainTimeoutMs, 'drain-ms'),
  settleMs: num(a['settle-ms'], d.settleMs, 'settle-ms'),
  eventTimeoutMs: num(a['event-timeout-ms'], d.eventTimeoutMs, 'event-timeout-ms'),
  replayRate: num(a['replay-rate'], d.replayRate, 'replay-rate'),
  finalReplays: num(a['final-replays'], d.finalReplays, 'final-replays'),
  maxSessions: num(a['max-sessions'], d.maxSessions, 'max-sessions'),
  log: (msg) => process.stderr.write(`${msg}\n`),
});
const v = verdict(report);
process.stdout.write(`${JSON.stringify({ ...report, verdict: v }, null, 2)}\n`);
process.exitCode = v.ok ? 0 : 1;
