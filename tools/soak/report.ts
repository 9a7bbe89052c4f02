import type { SessionRecord } from './churn.js';

/**
 * What the soak concludes from its records (pure: records in, figures out). Which replica served a
 * session comes from the replicas' own "session started" lines (`served`: replica → client
 * addresses); a session that never opened was served by nobody.
 */
/** `baseline`: the check before anything happens, never reported as an event. */
export type EventName = 'baseline' | 'redis-primary-killed' | 'replica-drained' | 'certificate-rotated';

export type SoakEvent = {
  readonly name: EventName;
  /** performance.now() when it was done. */
  readonly at: number;
  /** The drained replica and its drain window, for replica-drained. */
  readonly drained?: { replica: string; drainTimeoutMs: number };
  /** The certificate new sessions must be shown before service counts as whole (certificate-rotated). */
  readonly wantCert?: string;
  detail: Record<string, unknown>;
};

export type Served = ReadonlyMap<string, ReadonlyMap<string, number>>;

export function replicaOf(rec: SessionRecord, served: Served): string | null {
  for (const [name, addrs] of served) if (addrs.has(rec.addr)) return name;
  return null;
}

/**
 * When service was whole again after `ev`: the first moment every replica had opened a session
 * that began after the event (showing `ev.wantCert`, if set); null while some replica has not.
 */
export function wholeAt(ev: SoakEvent, records: readonly SessionRecord[], served: Served): number | null {
  let latest = ev.at;
  for (const [, addrs] of served) {
    let first = Number.POSITIVE_INFINITY;
    for (const r of records) {
      if (r.startedAt < ev.at || r.openedAt === null || !addrs.has(r.addr)) continue;
      if (ev.wantCert !== undefined && r.cert !== ev.wantCert) continue;
      if (r.openedAt < first) first = r.openedAt;
    }
    if (first === Number.POSITIVE_INFINITY) return null;
    latest = Math.max(latest, first);
  }
  return latest;
}

/**
 * A lost session the drain explains: on the drained replica, its connection begun before the drain
 * (a session still in its handshake then is one the drain lets finish and then holds), ended at
 * or after the drain's deadline.
 */
function lostToDrain(rec: SessionRecord, replica: string | null, events: readonly SoakEvent[]): boolean {
  return events.some(
    (e) =>
      e.drained !== undefined &&
      e.drained.replica === replica &&
      rec.connectAt !== null &&
      rec.connectAt < e.at &&
      rec.endedAt !== null &&
      rec.endedAt >= e.at + e.drained.drainTimeoutMs - 250,
  );
}

function count(into: Record<string, number>, key: string): void {
  into[key] = (into[key] ?? 0) + 1;
}

const round = (ms: number): number => Math.round(ms);

export type SoakFigures = ReturnType<typeof summarize>;

export function summarize(input: {
  t0: number;
  records: readonly SessionRecord[];
  served: Served;
  events: readonly SoakEvent[];
  accepted: ReadonlyMap<string, number>;
  certs: { before: string; after: string };
}) {
  const { t0, records, served, events } = input;
  const byReplica: Record<string, number> = {};
  const lostOther: { id: number; kind: string; replica: string | null; error: string | null; atMs: number }[] = [];
  let lostExpected = 0;
  for (const r of records) {
    const replica = replicaOf(r, served);
    if (r.openedAt !== null) count(byReplica, replica ?? 'unknown');
    if (r.state !== 'lost') continue;
    if (lostToDrain(r, replica, events)) lostExpected++;
    else lostOther.push({ id: r.id, kind: r.kind, replica, error: r.lostError, atMs: round((r.endedAt ?? 0) - t0) });
  }
  // Each event's window runs from it until service was whole again (or, if never, the next event).
  const windows = events.map((e, i) => {
    const whole = wholeAt(e, records, served);
    const next = events[i + 1]?.at ?? Number.POSITIVE_INFINITY;
    return { e, whole, end: whole ?? next };
  });
  const failures: Record<string, number> = {};
  const outside: Record<string, number> = {};
  const perEvent = windows.map(() => ({} as Record<string, number>));
  for (const r of records) {
    if (r.state !== 'failed' || r.error === null) continue;
    count(failures, r.error);
    // By when it failed: an attempt begun just before an event can fail because of it.
    const at = r.endedAt ?? r.startedAt;
    const w = windows.findIndex((x) => at >= x.e.at && at <= x.end);
    if (w >= 0) count(perEvent[w]!, r.error);
    else count(outside, r.error);
  }
  const rotation = events.find((e) => e.name === 'certificate-rotated');
  const rotationWhole = rotation ? windows.find((w) => w.e === rotation)?.whole ?? null : null;
  const afterRotation = rotationWhole === null ? [] : records.filter((r) => r.startedAt > rotationWhole && r.openedAt !== null);
  const lastCertBy: Record<string, string> = {};
  for (const r of [...records].filter((x) => x.openedAt !== null).sort((a, b) => a.openedAt! - b.openedAt!)) {
    const replica = replicaOf(r, served);
    if (replica !== null && r.cert !== null) lastCertBy[replica] = r.cert === input.certs.after ? 'after' : r.cert === input.certs.before ? 'before' : 'other';
  }
  const opened = records.filter((r) => r.openedAt !== null);
  return {
    sessions: {
      attempted: records.length,
      opened: opened.length,
      longLived: records.filter((r) => r.kind === 'long').length,
      failedToOpen: records.filter((r) => r.state === 'failed').length,
      closedByClient: records.filter((r) => r.state === 'closed').length,
      servedBy: byReplica,
      framebufferUpdates: records.reduce((n, r) => n + r.updates, 0),
    },
    lost: { total: lostExpected + lostOther.length, onDrainedReplicaPastWindow: lostExpected, other: lostOther.length, otherSessions: lostOther.slice(0, 20) },
    errors: { newSessionsFailed: failures, duringEvents: Object.fromEntries(windows.map((w, i) => [w.e.name, perEvent[i]!])), outsideEvents: outside },
    tokens: {
      accepted: input.accepted.size,
      acceptedTwice: [...input.accepted.values()].filter((n) => n > 1).length,
    },
    events: windows.map((w) => ({
      event: w.e.name,
      atMs: round(w.e.at - t0),
      wholeAgainAfterMs: w.whole === null ? null : round(w.whole - w.e.at),
      newSessionsFailed: Object.values(perEvent[windows.indexOf(w)]!).reduce((a, b) => a + b, 0),
      ...w.e.detail,
    })),
    certificate: {
      before: input.certs.before,
      after: input.certs.after,
      lastPresentedBy: lastCertBy,
      sessionsAfterRotationWhole: afterRotation.length,
      oldCertificateAfterRotationWhole: afterRotation.filter((r) => r.cert !== input.certs.after).length,
    },
  };
}
