/**
 * Issue 17: the TLS reloader against a real TLS server in this process, with the files in a temp
 * directory replaced the way renewal tools do it (rename over, Kubernetes' `..data` symlink swap).
 * The real `vncgate serve` with SIGHUP and a console session is test/proxy/cert-reload.int.test.ts.
 */
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import { MISMATCH_RETRY_MS, TlsReloader, WATCH_DEBOUNCE_MS } from '../../src/proxy/tls-reload.js';
import { getTestPki, type CertAndKey, type TestPki } from '../support/pki.js';
import { sleep } from '../support/proc.js';

let pki: TestPki;
/** Four different pairs: A is served first. */
let A: CertAndKey, B: CertAndKey, C: CertAndKey, D: CertAndKey;
const cleanup: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  pki = await getTestPki();
  [A, B, C, D] = [pki.server, pki.untrustedServer, pki.wrongHost, pki.client];
});
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

type Line = Record<string, unknown>;

/** Writes `cert`/`key` next to their final names and renames them over (each file atomically). */
async function install(dir: string, cert: string, key: string): Promise<void> {
  await writeFile(join(dir, '.tls.crt.tmp'), cert);
  await writeFile(join(dir, '.tls.key.tmp'), key);
  await rename(join(dir, '.tls.crt.tmp'), join(dir, 'tls.crt'));
  await rename(join(dir, '.tls.key.tmp'), join(dir, 'tls.key'));
}

/** A TLS echo server serving the pair in `dir` (or the given files), with its reloader and log. */
async function setup(opts: { watchFiles: boolean; certFile?: string; keyFile?: string; dir?: string; mismatchRetryMs?: number }): Promise<{
  dir: string;
  port: number;
  reloader: TlsReloader;
  /** The log so far, parsed. */
  lines: () => Line[];
  logText: () => string;
}> {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'vncgate-tls-reload-')));
  if (opts.certFile === undefined) await install(dir, A.cert.pem, A.key.pem);
  const config = loadConfig({
    env: {},
    overrides: { tls: { certFile: opts.certFile ?? join(dir, 'tls.crt'), keyFile: opts.keyFile ?? join(dir, 'tls.key'), watchFiles: opts.watchFiles } },
  });
  const tls = config.tls!;
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      raw.push(String(chunk));
      cb();
    },
  });
  const log = createLogger({ level: 'debug', destination: sink });
  const server: Server = createServer({ cert: tls.cert, key: tls.key, minVersion: tls.minVersion, ...(tls.ciphers ? { ciphers: tls.ciphers } : {}) }, (s) => s.pipe(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const reloader = new TlsReloader(server, tls, log, opts.mismatchRetryMs !== undefined ? { mismatchRetryMs: opts.mismatchRetryMs } : {});
  reloader.start();
  cleanup.push(async () => {
    reloader.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });
  const logText = (): string => raw.join('');
  return {
    dir,
    port: (server.address() as AddressInfo).port,
    reloader,
    lines: () => logText().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line),
    logText,
  };
}

/** Opens a TLS connection (certificate not verified: several test pairs are not for 127.0.0.1). */
function open(port: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
    s.setTimeout(5_000, () => s.destroy(new Error('TLS connection timed out')));
  });
}

/** The SHA-256 fingerprint a new handshake sees. */
async function served(port: number): Promise<string> {
  const s = await open(port);
  const fp = s.getPeerX509Certificate()!.fingerprint256;
  s.destroy();
  return fp;
}

const fp = (p: CertAndKey): string => new X509Certificate(p.cert.pem).fingerprint256;

/** Sends `text` on an open connection and waits for the echo. */
function echo(s: TLSSocket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const on = (d: Buffer): void => {
      got += d.toString();
      if (got.length >= text.length) {
        s.off('data', on);
        resolve(got);
      }
    };
    s.on('data', on);
    s.once('error', reject);
    s.write(text);
  });
}

/** No line of the log may carry a line of any private key. */
function expectNoKeyMaterial(text: string): void {
  for (const p of [A, B, C, D]) {
    for (const line of p.key.pem.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'))) expect(text).not.toContain(line);
  }
  expect(text).not.toContain('PRIVATE KEY');
}

const messages = (lines: Line[], msg: RegExp): Line[] => lines.filter((l) => msg.test(String(l.msg)));

// The polls below have 10 s deadlines; a test's own limit must exceed them.
const WATCH_TEST_MS = 30_000;

describe('issue 17: TLS certificate reload', () => {
  it('serves a new pair to new handshakes; an open connection keeps its session and keeps relaying', async () => {
    const t = await setup({ watchFiles: false });
    expect(await served(t.port)).toBe(fp(A));
    const old = await open(t.port);
    cleanup.push(() => void old.destroy());

    await install(t.dir, B.cert.pem, B.key.pem);
    const r = await t.reloader.reload('SIGHUP');
    expect(r).toMatchObject({ ok: true, changed: true, certificate: { fingerprint256: fp(B) } });
    expect(await served(t.port)).toBe(fp(B));
    expect(await echo(old, 'still here')).toBe('still here');
    expect(old.getPeerX509Certificate()!.fingerprint256).toBe(fp(A));

    const info = messages(t.lines(), /^TLS certificate reloaded/);
    expect(info).toHaveLength(1);
    expect(info[0]).toMatchObject({ level: 30, trigger: 'SIGHUP', changed: true, fingerprint256: fp(B), subject: 'O=vncgate tests, CN=localhost' });
    expect(info[0]!.notAfter).toMatch(/^\d{4}-\d\d-\d\dT/);
    // The same files again: reloaded, reported as unchanged.
    expect(await t.reloader.reload('SIGHUP')).toMatchObject({ ok: true, changed: false });
    expectNoKeyMaterial(t.logText());
  });

  it("the new context keeps the listener's minVersion and ciphers (not Node's defaults)", async () => {
    const t = await setup({ watchFiles: false });
    const attempt = (opts: { maxVersion?: 'TLSv1.2'; ciphers?: string }): Promise<string> =>
      new Promise((resolve) => {
        const s = connect({ host: '127.0.0.1', port: t.port, rejectUnauthorized: false, ...opts });
        s.setTimeout(5_000, () => s.destroy(new Error('timeout')));
        s.once('secureConnect', () => {
          resolve(`${s.getProtocol()} ${s.getCipher().name}`);
          s.destroy();
        });
        s.once('error', () => resolve('refused'));
      });
    // Node's default list has this CBC suite; vncgate's ECDHE + AEAD list does not.
    const cbc = { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA' } as const;
    expect(await attempt(cbc)).toBe('refused');
    await install(t.dir, B.cert.pem, B.key.pem);
    await t.reloader.reload('SIGHUP');
    expect(await served(t.port)).toBe(fp(B));
    expect(await attempt(cbc)).toBe('refused');
    expect(await attempt({ maxVersion: 'TLSv1.2' })).toMatch(/^TLSv1\.2 ECDHE-ECDSA-AES\d+-GCM-SHA\d+$/);
  });

  it('a TLS session from before the reload is not resumed: the client does a full handshake and sees the new certificate', async () => {
    const t = await setup({ watchFiles: false });
    const ticket = async (): Promise<Buffer> => {
      const s = connect({ host: '127.0.0.1', port: t.port, rejectUnauthorized: false });
      s.setTimeout(5_000, () => s.destroy(new Error('no session ticket within 5 s')));
      // TLS 1.3 hands out its tickets after the handshake, read like any data.
      s.resume();
      const session = await new Promise<Buffer>((resolve, reject) => {
        s.once('session', resolve);
        s.once('error', reject);
      });
      s.destroy();
      return session;
    };
    // A resumed TLS 1.3 session carries no certificate: null.
    const resume = (session: Buffer): Promise<{ reused: boolean; fingerprint: string | null }> =>
      new Promise((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port: t.port, rejectUnauthorized: false, session });
        s.setTimeout(5_000, () => s.destroy(new Error('no TLS handshake within 5 s')));
        s.once('secureConnect', () => {
          resolve({ reused: s.isSessionReused(), fingerprint: s.getPeerX509Certificate()?.fingerprint256 ?? null });
          s.destroy();
        });
        s.once('error', reject);
      });
    // Resumption works at all (else the check below proves nothing).
    expect(await resume(await ticket())).toMatchObject({ reused: true });
    const before = await ticket();
    await install(t.dir, B.cert.pem, B.key.pem);
    await t.reloader.reload('SIGHUP');
    expect(await resume(before)).toEqual({ reused: false, fingerprint: fp(B) });
  });

  it('refuses a bad pair with CONFIG_ERR_TLS_RELOAD, naming the file, and keeps serving the previous one', async () => {
    const t = await setup({ watchFiles: false });
    await install(t.dir, C.cert.pem, B.key.pem);
    const r = await t.reloader.reload('SIGHUP');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('CONFIG_ERR_TLS_RELOAD');
    expect(r.error.details).toMatchObject({ option: 'tls.keyFile', file: join(t.dir, 'tls.key') });
    expect(await served(t.port)).toBe(fp(A));
    const errors = t.lines().filter((l) => l.level === 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'CONFIG_ERR_TLS_RELOAD', trigger: 'SIGHUP', option: 'tls.keyFile', file: join(t.dir, 'tls.key'), serving: fp(A) });
    // SIGHUP means "the files are ready now": a mismatch is an error at once, with no second look.
    expect(t.lines().filter((l) => l.level === 40 && l.code === 'CONFIG_ERR_TLS_RELOAD')).toEqual([]);

    // A file that is gone: refused the same way.
    await unlink(join(t.dir, 'tls.key'));
    expect(await t.reloader.reload('SIGHUP')).toMatchObject({ ok: false, error: { code: 'CONFIG_ERR_TLS_RELOAD', details: { option: 'tls.keyFile' } } });
    expect(await served(t.port)).toBe(fp(A));
    expectNoKeyMaterial(t.logText());
  });

  it('warns when the certificate expires within 14 days (the test certificates live 7)', async () => {
    const t = await setup({ watchFiles: false });
    expect(messages(t.lines(), /expires in less than 14 days/)).toMatchObject([{ level: 40, fingerprint256: fp(A), daysLeft: expect.any(Number) }]);
  });

  it('watching: a pair renamed into place is served without a signal; unrelated changes log nothing', { timeout: WATCH_TEST_MS }, async () => {
    const t = await setup({ watchFiles: true });
    const t0 = performance.now();
    await install(t.dir, B.cert.pem, B.key.pem);
    await expect.poll(() => served(t.port), { timeout: 10_000, interval: 100 }).toBe(fp(B));
    console.log(`[issue 17] in-process: renamed pair served ${(performance.now() - t0).toFixed(0)} ms after the rename (debounce ${WATCH_DEBOUNCE_MS} ms)`);
    expect(messages(t.lines(), /^TLS certificate reloaded/)).toMatchObject([{ trigger: 'file change', changed: true, fingerprint256: fp(B) }]);

    await writeFile(join(t.dir, 'unrelated.txt'), 'x');
    await sleep(WATCH_DEBOUNCE_MS * 3);
    expect(messages(t.lines(), /^TLS certificate reload/)).toHaveLength(1);
  });

  it('watching: a bad pair is logged once, and the good pair that follows is served', { timeout: WATCH_TEST_MS }, async () => {
    const t = await setup({ watchFiles: true, mismatchRetryMs: 300 });
    const refusals = (): Line[] => t.lines().filter((l) => l.code === 'CONFIG_ERR_TLS_RELOAD');
    await install(t.dir, C.cert.pem, B.key.pem);
    // A mismatch seen by the watch: a warning, one more look, then the error.
    await expect.poll(() => refusals().length, { timeout: 10_000, interval: 100 }).toBe(2);
    expect(refusals()).toMatchObject([
      { level: 40, trigger: 'file change', option: 'tls.keyFile', retryInMs: 300 },
      { level: 50, trigger: 'file change', option: 'tls.keyFile', serving: fp(A) },
    ]);
    await writeFile(join(t.dir, 'unrelated.txt'), 'x');
    await sleep(WATCH_DEBOUNCE_MS * 3);
    expect(refusals()).toHaveLength(2);
    expect(await served(t.port)).toBe(fp(A));

    await install(t.dir, C.cert.pem, C.key.pem);
    await expect.poll(() => served(t.port), { timeout: 10_000, interval: 100 }).toBe(fp(C));
  });

  it('watching: certificate and key renamed more than the debounce apart log a warning, no error, and the new pair is served', { timeout: WATCH_TEST_MS }, async () => {
    const t = await setup({ watchFiles: true });
    await writeFile(join(t.dir, '.tls.crt.tmp'), B.cert.pem);
    await writeFile(join(t.dir, '.tls.key.tmp'), B.key.pem);
    const t0 = performance.now();
    await rename(join(t.dir, '.tls.crt.tmp'), join(t.dir, 'tls.crt'));
    // The watch reads the new certificate with the old key: a transient mismatch.
    await expect.poll(() => t.lines().filter((l) => l.code === 'CONFIG_ERR_TLS_RELOAD').length, { timeout: 10_000, interval: 50 }).toBe(1);
    await rename(join(t.dir, '.tls.key.tmp'), join(t.dir, 'tls.key'));
    const gapMs = performance.now() - t0;
    await expect.poll(() => served(t.port), { timeout: 10_000, interval: 100 }).toBe(fp(B));
    // Past the second look: it finds the pair already served and says nothing.
    await sleep(MISMATCH_RETRY_MS + WATCH_DEBOUNCE_MS);
    expect(t.lines().filter((l) => l.code === 'CONFIG_ERR_TLS_RELOAD')).toMatchObject([{ level: 40, trigger: 'file change', option: 'tls.keyFile' }]);
    expect(t.lines().filter((l) => Number(l.level) >= 50)).toEqual([]);
    expect(messages(t.lines(), /^TLS certificate reloaded/)).toMatchObject([{ trigger: 'file change', changed: true, fingerprint256: fp(B) }]);
    console.log(`[fleet soak] split renames ${gapMs.toFixed(0)} ms apart (debounce ${WATCH_DEBOUNCE_MS} ms): one warning, no error, new pair served`);
  });

  it('watching: a mismatch still there at the second look is an error, once', { timeout: WATCH_TEST_MS }, async () => {
    const t = await setup({ watchFiles: true, mismatchRetryMs: 200 });
    await writeFile(join(t.dir, '.tls.crt.tmp'), D.cert.pem);
    await rename(join(t.dir, '.tls.crt.tmp'), join(t.dir, 'tls.crt'));
    await expect.poll(() => t.lines().filter((l) => l.level === 50).length, { timeout: 10_000, interval: 50 }).toBe(1);
    await sleep(WATCH_DEBOUNCE_MS * 2);
    expect(t.lines().filter((l) => l.code === 'CONFIG_ERR_TLS_RELOAD')).toMatchObject([
      { level: 40, option: 'tls.keyFile' },
      { level: 50, option: 'tls.keyFile', trigger: 'file change', serving: fp(A) },
    ]);
    expect(await served(t.port)).toBe(fp(A));
    expectNoKeyMaterial(t.logText());
  });

  it("watching: Kubernetes' ..data symlink swap (projected Secret volume) is picked up", { timeout: WATCH_TEST_MS }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vncgate-tls-reload-k8s-'));
    // The kubelet's layout: timestamped directory, ..data -> it, each key a symlink through ..data.
    await mkdir(join(dir, '..v1'));
    await writeFile(join(dir, '..v1', 'tls.crt'), A.cert.pem);
    await writeFile(join(dir, '..v1', 'tls.key'), A.key.pem);
    await symlink('..v1', join(dir, '..data'));
    await symlink('..data/tls.crt', join(dir, 'tls.crt'));
    await symlink('..data/tls.key', join(dir, 'tls.key'));
    const t = await setup({ watchFiles: true, dir, certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') });
    expect(await served(t.port)).toBe(fp(A));

    // The update: a new timestamped directory, ..data_tmp -> it, renamed over ..data, the old one removed.
    await mkdir(join(dir, '..v2'));
    await writeFile(join(dir, '..v2', 'tls.crt'), D.cert.pem);
    await writeFile(join(dir, '..v2', 'tls.key'), D.key.pem);
    await symlink('..v2', join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    await rm(join(dir, '..v1'), { recursive: true });
    await expect.poll(() => served(t.port), { timeout: 10_000, interval: 100 }).toBe(fp(D));
  });

  it('watchFiles false: a change on disk is only served after reload()', { timeout: WATCH_TEST_MS }, async () => {
    const t = await setup({ watchFiles: false });
    await install(t.dir, B.cert.pem, B.key.pem);
    await sleep(WATCH_DEBOUNCE_MS * 3);
    expect(await served(t.port)).toBe(fp(A));
    await t.reloader.reload('SIGHUP');
    expect(await served(t.port)).toBe(fp(B));
  });
});
