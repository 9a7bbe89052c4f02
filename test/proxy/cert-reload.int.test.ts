/**
 * Issue 17 item 4: certificate reload without a restart, on the real built `vncgate serve` over
 * TLS, with a real redis-server for tokens and the synthetic VNC server in `pingpong` mode (a
 * session keeps asking for FramebufferUpdates and reading them back, so "still relaying" means
 * data flows both ways). The files are replaced by rename, as renewal tools do. Figures printed.
 *
 * Four pairs from the test PKI: A (served first, trusted by the test CA), B (another CA, same
 * names), C and D. Fingerprints are read from fresh handshakes that do not verify the chain.
 */
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSyntheticServer, type SyntheticServer } from '../../tools/synthetic/index.js';
import { RedisTokenStore } from '../../src/tokens/index.js';
import { runVncgate } from '../support/cli.js';
import { getTestPki, type CertAndKey, type TestPki } from '../support/pki.js';
import { sleep, stopAll } from '../support/proc.js';
import { startRedisServer, type RedisServer } from '../support/redis.js';
import { startVncgateServe, type VncgateServe } from '../support/vncgate-process.js';
import { pumpUpdates, type PumpedConsole } from '../support/pumped-console.js';
import { wsRfbConnect } from '../support/ws-rfb-client.js';

let pki: TestPki;
let redis: RedisServer;
let vnc: SyntheticServer;
let tokens: RedisTokenStore;
let dir: string;
let configFile: string;
let A: CertAndKey, B: CertAndKey, C: CertAndKey, D: CertAndKey;

beforeAll(async () => {
  pki = await getTestPki();
  [A, B, C, D] = [pki.server, pki.untrustedServer, pki.wrongHost, pki.client];
  dir = await mkdtemp(join(tmpdir(), 'vncgate-cert-reload-'));
  configFile = join(dir, 'vncgate.yaml');
  await writeFile(configFile, ['backends:', '  allowedTargets: ["127.0.0.0/8", "::1/128"]', ''].join('\n'));
  redis = await startRedisServer();
  vnc = await startSyntheticServer({ mode: 'pingpong', width: 64, height: 64 });
  tokens = new RedisTokenStore({ url: redis.url });
  await tokens.ready();
});

afterAll(async () => {
  await stopAll();
  await tokens?.close();
  await vnc?.close();
  await redis?.dispose();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

const fp = (p: CertAndKey): string => new X509Certificate(p.cert.pem).fingerprint256;

/** Writes the pair beside its final names and renames each over (what certbot and cert-manager do per file). */
async function install(tlsDir: string, cert: string, key: string): Promise<void> {
  await writeFile(join(tlsDir, '.tls.crt.new'), cert);
  await writeFile(join(tlsDir, '.tls.key.new'), key);
  await rename(join(tlsDir, '.tls.crt.new'), join(tlsDir, 'tls.crt'));
  await rename(join(tlsDir, '.tls.key.new'), join(tlsDir, 'tls.key'));
}

async function serve(name: string, env: Record<string, string> = {}): Promise<{ server: VncgateServe; tlsDir: string }> {
  const tlsDir = await mkdtemp(join(dir, 'tls-'));
  await copyFile(A.cert.path, join(tlsDir, 'tls.crt'));
  await copyFile(A.key.path, join(tlsDir, 'tls.key'));
  const server = await startVncgateServe({
    name,
    args: ['--config', configFile],
    env: {
      VNCGATE_TLS_CERT_FILE: join(tlsDir, 'tls.crt'),
      VNCGATE_TLS_KEY_FILE: join(tlsDir, 'tls.key'),
      VNCGATE_REDIS_URL: redis.url,
      VNCGATE_LOG_LEVEL: 'info',
      ...env,
    },
  });
  return { server, tlsDir };
}

/** The SHA-256 fingerprint a new TLS connection to vncgate is shown (chain not verified: B, C, D are not all for 127.0.0.1). */
function served(server: VncgateServe): Promise<string> {
  const m = /^(.*):(\d+)$/.exec(server.listening[0]!)!;
  return new Promise((resolve, reject) => {
    const s = connect({ host: m[1], port: Number(m[2]), rejectUnauthorized: false, servername: 'localhost' });
    s.setTimeout(5_000, () => s.destroy(new Error('no TLS handshake within 5 s')));
    s.once('secureConnect', () => {
      resolve(s.getPeerX509Certificate()!.fingerprint256);
      s.destroy();
    });
    s.once('error', reject);
  });
}

/** Polls new handshakes until they show `expected`; how long that took. */
async function msUntilServed(server: VncgateServe, expected: string, since: number): Promise<number> {
  await expect.poll(() => served(server), { timeout: 15_000, interval: 100 }).toBe(expected);
  return performance.now() - since;
}

type Pumped = PumpedConsole;

async function openPumped(server: VncgateServe, ca: string): Promise<Pumped> {
  const token = (await tokens.issue({ kind: 'static', host: '127.0.0.1', port: vnc.port }, 120)).token;
  const r = await wsRfbConnect(`${server.wsBase}/websockify?token=${token}`, { ca, timeoutMs: 10_000 });
  if (!r.ok) throw new Error(`session refused: ${r.code} ${r.serverReason ?? ''}`);
  const pumped = pumpUpdates(r.ws, r.init);
  await expect.poll(() => pumped.updates(), { timeout: 10_000 }).toBeGreaterThan(3);
  return pumped;
}

/** The session is open and still exchanging updates. */
async function expectRelaying(s: Pumped, label: string): Promise<void> {
  const before = s.updates();
  await expect.poll(() => s.updates(), { timeout: 10_000, message: label }).toBeGreaterThan(before + 5);
  expect(s.ws.readyState, label).toBe(s.ws.OPEN);
}

function logged(server: VncgateServe, msg: RegExp): Record<string, unknown>[] {
  return server
    .logLines()
    .filter((l) => l.startsWith('{"level"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => msg.test(String(l.msg)));
}

function expectNoKeyMaterial(text: string): void {
  for (const p of [A, B, C, D]) {
    for (const line of p.key.pem.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'))) expect(text).not.toContain(line);
  }
  expect(text).not.toContain('PRIVATE KEY');
}

describe('issue 17: certificate reload without a restart (real vncgate process)', () => {
  it('SIGHUP: new handshakes get the new pair, the open session keeps relaying; a bad pair is refused with CONFIG_ERR_TLS_RELOAD and the previous one kept', async () => {
    // Watching off, so only the signal can have done it.
    const { server, tlsDir } = await serve('vncgate (reload on SIGHUP)', { VNCGATE_TLS_WATCH_FILES: 'false' });
    expect(await served(server)).toBe(fp(A));
    const session = await openPumped(server, pki.ca.cert.pem);

    await install(tlsDir, B.cert.pem, B.key.pem);
    await sleep(1_000);
    expect(await served(server)).toBe(fp(A));
    const t0 = performance.now();
    server.process.signal('SIGHUP');
    const hupMs = await msUntilServed(server, fp(B), t0);
    expect(server.process.running).toBe(true);
    expect(logged(server, /^TLS certificate reloaded/)).toMatchObject([{ trigger: 'SIGHUP', changed: true, fingerprint256: fp(B), subject: 'O=vncgate tests, CN=localhost' }]);
    await expectRelaying(session, 'the session opened under A, after the reload');
    // A new console, end to end under B (trusted through B's own CA).
    const fresh = await openPumped(server, pki.otherCa.cert.pem);

    // C's certificate with B's key: refused, B stays.
    await install(tlsDir, C.cert.pem, B.key.pem);
    server.process.signal('SIGHUP');
    await expect.poll(() => logged(server, /reload refused/).length, { timeout: 15_000 }).toBe(1);
    expect(logged(server, /reload refused/)[0]).toMatchObject({
      level: 50,
      code: 'CONFIG_ERR_TLS_RELOAD',
      trigger: 'SIGHUP',
      option: 'tls.keyFile',
      file: join(tlsDir, 'tls.key'),
      serving: fp(B),
    });
    expect(await served(server)).toBe(fp(B));
    expect(server.process.running).toBe(true);
    await expectRelaying(session, 'the session opened under A, after a refused reload');
    await expectRelaying(fresh, 'the session opened under B, after a refused reload');
    expectNoKeyMaterial(server.logText());
    console.log(`[issue 17] SIGHUP → new certificate on new handshakes after ${hupMs.toFixed(0)} ms (polled every 100 ms)`);
    session.ws.close();
    fresh.ws.close();
    await server.stop();
  });

  it('file watch: a pair renamed into place is served without any signal, the open session untouched', async () => {
    const { server, tlsDir } = await serve('vncgate (reload on file change)');
    const session = await openPumped(server, pki.ca.cert.pem);
    const t0 = performance.now();
    await install(tlsDir, D.cert.pem, D.key.pem);
    const watchMs = await msUntilServed(server, fp(D), t0);
    expect(logged(server, /^TLS certificate reloaded/)).toMatchObject([{ trigger: 'file change', changed: true, fingerprint256: fp(D) }]);
    await expectRelaying(session, 'the session opened under A, after the file change');
    expect(logged(server, /reload refused/)).toEqual([]);
    expectNoKeyMaterial(server.logText());
    console.log(`[issue 17] file watch → new certificate on new handshakes ${watchMs.toFixed(0)} ms after the rename (500 ms debounce; polled every 100 ms)`);
    session.ws.close();
    await server.stop();
  });

  it('start-up refuses a key that is not the certificate\'s: exit 1, CONFIG_ERR_INVALID naming tls.keyFile', async () => {
    const r = await runVncgate(['serve', '--config', configFile], {
      env: { VNCGATE_LISTEN: '127.0.0.1:0', VNCGATE_TLS_CERT_FILE: A.cert.path, VNCGATE_TLS_KEY_FILE: B.key.path, VNCGATE_REDIS_URL: redis.url },
      timeoutMs: 15_000,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('CONFIG_ERR_INVALID');
    expect(r.stderr).toContain(`tls.keyFile: ${B.key.path}:`);
    expectNoKeyMaterial(r.stderr);
  });
});
