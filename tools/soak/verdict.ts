import type { FleetSoakReport } from './fleet.js';

/** How many of `tally` carry the error code `code` (keys are "CODE (close N)", "CODE (http N)" or a load-test reason). */
export function withCode(tally: Readonly<Record<string, number>>, code: string): number {
  return Object.entries(tally).reduce((n, [k, v]) => n + (k.split(' ')[0] === code ? v : 0), 0);
}

/** The soak's goals, checked against its report: each failed one named. */
export function verdict(r: FleetSoakReport): { ok: boolean; failed: string[] } {
  const failed: string[] = [];
  const replayed = r.tokens.replaysDuringChurn.accepted + r.tokens.replaysAfterwards.accepted;
  if (r.tokens.acceptedTwice > 0 || replayed > 0) failed.push(`tokens accepted twice: ${r.tokens.acceptedTwice} (replays accepted ${replayed})`);
  const after = r.tokens.replaysAfterwards;
  if (withCode(after.refused, 'TOKEN_ERR_INVALID') !== after.tried) failed.push(`replays after the churn: ${JSON.stringify(after.refused)} of ${after.tried}, not all TOKEN_ERR_INVALID`);
  if (r.lost.other > 0) failed.push(`${r.lost.other} sessions lost other than on the drained replica past its window`);
  for (const e of r.events) if (e.wholeAgainAfterMs === null) failed.push(`${e.event}: new sessions did not succeed on both replicas within ${r.options.eventTimeoutMs} ms`);
  if (r.events.length !== 3) failed.push(`${r.events.length} of 3 events happened`);
  if (r.certificate.sessionsAfterRotationWhole === 0) failed.push('no session opened after the rotation to show the new certificate');
  if (r.certificate.oldCertificateAfterRotationWhole > 0) failed.push(`${r.certificate.oldCertificateAfterRotationWhole} sessions were shown the old certificate after the rotation`);
  return { ok: failed.length === 0, failed };
}
