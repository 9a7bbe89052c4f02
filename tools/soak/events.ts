import type { Churn } from './churn.js';
import type { Fleet } from './fleet-setup.js';
import { installPair } from './pki.js';
import { waitUntil } from './procs.js';
import type { SoakEvent } from './report.js';

/** The three things that happen to the fleet during the soak; each returns its event, stamped when it was done. */

/** SIGKILL to the Redis primary: no goodbye to its replicas or the Sentinels (a crashed host). */
export async function killRedisPrimary(fleet: Fleet, log: (msg: string) => void): Promise<SoakEvent> {
  const primaryBefore = await fleet.redis.primaryPort();
  const victim = fleet.redis.nodes.find((n) => n.port === primaryBefore);
  if (victim === undefined) throw new Error(`the Sentinels name primary ${primaryBefore}, which is none of ours`);
  log(`SIGKILL to the Redis primary :${primaryBefore} (pid ${victim.child.pid})`);
  const ev: SoakEvent = { name: 'redis-primary-killed', at: performance.now(), detail: { primaryBefore } };
  await victim.child.kill();
  return ev;
}

/** Which primary the Sentinels name now (null if they still name the old one after 15 s). */
export async function newPrimary(fleet: Fleet, before: number): Promise<number | null> {
  let port: number | null = null;
  await waitUntil('Sentinels name a new primary', 15_000, async () => (port = await fleet.redis.primaryPort()) !== before).catch(() => undefined);
  return port !== before ? port : null;
}

/** SIGTERM to one replica (its drain runs), and once it has exited, the same replica started again on the same port. */
export async function drainAndRestart(fleet: Fleet, churn: Churn, drainTimeoutMs: number, log: (msg: string) => void): Promise<SoakEvent> {
  const r = fleet.replicas[1]!;
  log(`SIGTERM to ${r.name} (pid ${r.pid}), drain ${drainTimeoutMs} ms, with ${churn.openCount()} sessions open fleet-wide`);
  const ev: SoakEvent = { name: 'replica-drained', at: performance.now(), drained: { replica: r.name, drainTimeoutMs }, detail: { replica: r.name, drainTimeoutMs } };
  await r.drainAndExit(drainTimeoutMs + 15_000);
  ev.detail.exitedAfterMs = Math.round(performance.now() - ev.at);
  await r.start();
  ev.detail.restartedAfterMs = Math.round(performance.now() - ev.at);
  log(`${r.name} exited after ${String(ev.detail.exitedAfterMs)} ms and listens again`);
  return ev;
}

/** The certificate files renamed over with the new pair; the replicas watch their directory. */
export async function rotateCertificate(fleet: Fleet, log: (msg: string) => void): Promise<SoakEvent> {
  log('replacing the TLS certificate files');
  const ev: SoakEvent = { name: 'certificate-rotated', at: performance.now(), wantCert: fleet.pki.after.fingerprint256, detail: {} };
  await installPair(fleet.certFile, fleet.keyFile, fleet.pki.after);
  return ev;
}
