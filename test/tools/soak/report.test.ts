import { describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../../tools/soak/churn.js';
import { summarize, wholeAt, type SoakEvent } from '../../../tools/soak/report.js';
import { withCode } from '../../../tools/soak/verdict.js';

/** The fleet soak's conclusions from its records (tools/soak/report.ts), on hand-made records. */
let nextId = 0;
function rec(p: Partial<SessionRecord> & { addr: string; startedAt: number }): SessionRecord {
  return { id: nextId++, kind: 'short', connectAt: p.startedAt, openedAt: null, endedAt: null, state: 'closed', error: null, lostError: null, cert: null, updates: 0, token: null, ...p };
}

const served = new Map([
  ['a', new Map([['10.0.0.1', 0], ['10.0.0.3', 0], ['10.0.0.5', 0]])],
  ['b', new Map([['10.0.0.2', 0], ['10.0.0.4', 0], ['10.0.0.6', 0]])],
]);

describe('fleet soak report', () => {
  it('service is whole again when every replica has opened a session begun after the event', () => {
    const ev: SoakEvent = { name: 'redis-primary-killed', at: 100, detail: {} };
    const records = [
      rec({ addr: '10.0.0.1', startedAt: 50, openedAt: 120 }), // begun before: does not count
      rec({ addr: '10.0.0.3', startedAt: 110, openedAt: 300 }),
    ];
    expect(wholeAt(ev, records, served)).toBeNull();
    records.push(rec({ addr: '10.0.0.2', startedAt: 150, openedAt: 450 }));
    expect(wholeAt(ev, records, served)).toBe(450);
  });

  it('after a rotation, only sessions shown the new certificate count', () => {
    const ev: SoakEvent = { name: 'certificate-rotated', at: 0, wantCert: 'NEW', detail: {} };
    const records = [rec({ addr: '10.0.0.1', startedAt: 1, openedAt: 5, cert: 'NEW' }), rec({ addr: '10.0.0.2', startedAt: 1, openedAt: 6, cert: 'OLD' })];
    expect(wholeAt(ev, records, served)).toBeNull();
    records.push(rec({ addr: '10.0.0.4', startedAt: 2, openedAt: 9, cert: 'NEW' }));
    expect(wholeAt(ev, records, served)).toBe(9);
  });

  it('a lost session is the drain\'s only if it was on the drained replica, begun before the drain and ended past its window', () => {
    const drain: SoakEvent = { name: 'replica-drained', at: 1_000, drained: { replica: 'b', drainTimeoutMs: 5_000 }, detail: {} };
    const lost = (addr: string, connectAt: number, endedAt: number): SessionRecord =>
      rec({ addr, startedAt: connectAt - 10, connectAt, openedAt: connectAt + 5, endedAt, state: 'lost', lostError: 'closed-by-peer-1001' });
    const records = [
      lost('10.0.0.2', 500, 6_100), // expected
      lost('10.0.0.4', 900, 3_000), // on b, but before the window ran out
      lost('10.0.0.6', 1_200, 6_100), // on b, but its connection began after the drain had
      lost('10.0.0.1', 500, 6_100), // on a
    ];
    const f = summarize({ t0: 0, records, served, events: [drain], accepted: new Map(), certs: { before: 'OLD', after: 'NEW' } });
    expect(f.lost.onDrainedReplicaPastWindow).toBe(1);
    expect(f.lost.otherSessions.map((s) => s.replica).sort()).toEqual(['a', 'b', 'b']);
  });

  it('counts failures by when they happened: in an event\'s window, or outside every window', () => {
    const ev: SoakEvent = { name: 'redis-primary-killed', at: 100, detail: {} };
    const records = [
      rec({ addr: '10.0.0.1', startedAt: 90, endedAt: 105, state: 'failed', error: 'TOKEN_ERR_STORE_UNAVAILABLE (close 1013)' }),
      rec({ addr: '10.0.0.3', startedAt: 110, openedAt: 200 }),
      rec({ addr: '10.0.0.2', startedAt: 110, openedAt: 250 }),
      rec({ addr: '10.0.0.5', startedAt: 300, endedAt: 310, state: 'failed', error: 'connect-ECONNRESET' }),
    ];
    const f = summarize({ t0: 0, records, served, events: [ev], accepted: new Map([['t1', 1], ['t2', 2]]), certs: { before: 'OLD', after: 'NEW' } });
    expect(f.events[0]).toMatchObject({ event: 'redis-primary-killed', wholeAgainAfterMs: 150, newSessionsFailed: 1 });
    expect(f.errors.outsideEvents).toEqual({ 'connect-ECONNRESET': 1 });
    expect(f.tokens).toEqual({ accepted: 2, acceptedTwice: 1 });
  });

  it('withCode groups keys by their error code, whatever close code or status follows', () => {
    expect(withCode({ 'TOKEN_ERR_INVALID (close 4403)': 3, TOKEN_ERR_INVALID: 1, 'TOKEN_ERR_INVALIDATED': 5, 'mint-TOKEN_ERR_INVALID (http 403)': 7 }, 'TOKEN_ERR_INVALID')).toBe(4);
  });
});
