import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSoakBackend, type SoakBackend } from './backend.js';
import { startHaproxy, type HaproxyHandle } from './haproxy.js';
import { installPair, makeSoakPki, type SoakPki } from './pki.js';
import { SENTINEL_NAME, startSentinelSet, type SentinelSet } from './redis-ha.js';
import { Replica } from './replica.js';

/**
 * The fleet the soak runs against, started in a temp dir (removed by `stop()`): the PKI and the
 * certificate files every replica reads, the API's JWT secret, Redis with Sentinel, the synthetic
 * VNC server, two replicas and HAProxy in front of them.
 */
export type Fleet = {
  readonly pki: SoakPki;
  readonly certFile: string;
  readonly keyFile: string;
  /** The HS256 secret the token API's bearer tokens are signed with. */
  readonly jwtSecret: Uint8Array;
  readonly redis: SentinelSet;
  readonly backend: SoakBackend;
  readonly replicas: readonly Replica[];
  readonly haproxy: HaproxyHandle;
  stop(): Promise<void>;
};

export async function startFleet(opts: { sentinelDownAfterMs: number; drainTimeoutMs: number }, log: (msg: string) => void): Promise<Fleet> {
  const dir = await mkdtemp(join(tmpdir(), 'vncgate-fleet-soak-'));
  const parts: { redis?: SentinelSet; backend?: SoakBackend; haproxy?: HaproxyHandle; replicas: Replica[] } = { replicas: [] };
  const stop = async (): Promise<void> => {
    await parts.haproxy?.stop();
    await Promise.allSettled(parts.replicas.map((r) => r.stop()));
    await parts.redis?.stop();
    await parts.backend?.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const pki = await makeSoakPki(dir);
    const tlsDir = join(dir, 'tls');
    await mkdir(tlsDir);
    const certFile = join(tlsDir, 'tls.crt');
    const keyFile = join(tlsDir, 'tls.key');
    await installPair(certFile, keyFile, pki.before);
    const secret = randomBytes(32).toString('base64url');
    const jwtSecretFile = join(dir, 'jwt-secret');
    await writeFile(jwtSecretFile, `${secret}\n`, { mode: 0o600 });
    log('starting Redis: a primary, 2 replicas, 3 Sentinels');
    const redis = (parts.redis = await startSentinelSet(dir, { replicas: 2, downAfterMs: opts.sentinelDownAfterMs, failoverTimeoutMs: 3_000 }));
    const backend = (parts.backend = await startSoakBackend({ updateBytes: 8_192, maxClients: 4_096 }));
    const settings = { dir, certFile, keyFile, sentinels: redis.sentinelAddresses, sentinelName: SENTINEL_NAME, jwtSecretFile, drainTimeoutMs: opts.drainTimeoutMs, waitReplicas: 1 };
    parts.replicas.push(await Replica.create('replica-a', settings), await Replica.create('replica-b', settings));
    await Promise.all(parts.replicas.map((r) => r.start()));
    const haproxy = (parts.haproxy = await startHaproxy(dir, parts.replicas.map((r) => ({ name: r.name, port: r.proxyPort }))));
    log(`replicas on PROXY ports ${parts.replicas.map((r) => r.proxyPort).join(', ')}; HAProxy on ${haproxy.port}`);
    return { pki, certFile, keyFile, jwtSecret: new TextEncoder().encode(secret), redis, backend, replicas: parts.replicas, haproxy, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
