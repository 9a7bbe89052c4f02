import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkTlsPair, loadConfig } from '../../src/config/index.js';
import { VncgateError } from '../../src/errors.js';
import { getTestPki, type TestPki } from '../support/pki.js';
import { runCommand } from '../support/proc.js';

const SETTINGS = { minVersion: 'TLSv1.2', ciphers: null } as const;
let pki: TestPki;
let cert: Buffer;
let key: Buffer;
let otherKey: Buffer;
let encryptedKey: Buffer;

beforeAll(async () => {
  pki = await getTestPki();
  cert = Buffer.from(pki.server.cert.pem);
  key = Buffer.from(pki.server.key.pem);
  otherKey = Buffer.from(pki.untrustedServer.key.pem);
  const out = join(await mkdtemp(join(tmpdir(), 'vncgate-tls-pair-')), 'enc.pem');
  await runCommand('openssl', ['pkey', '-in', pki.server.key.path, '-aes256', '-passout', 'pass:secret', '-out', out]);
  encryptedKey = await readFile(out);
});

/** The problem text must never carry key material (it goes to the log). */
function expectNoKeyMaterial(text: string): void {
  for (const pem of [pki.server.key.pem, pki.untrustedServer.key.pem]) {
    for (const line of pem.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'))) expect(text).not.toContain(line);
  }
}

describe('checkTlsPair (issue 17: certificate reload)', () => {
  it('accepts a matching pair and describes the certificate (public facts only)', () => {
    const r = checkTlsPair(cert, key, { minVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const x = new X509Certificate(cert);
    expect(r.certificate).toMatchObject({ fingerprint256: x.fingerprint256, subject: 'O=vncgate tests, CN=localhost', issuer: 'O=vncgate tests, CN=vncgate test CA' });
    expect(r.certificate.notAfter).toBe(new Date(x.validTo).toISOString());
    // The test PKI's certificates are valid for 7 days.
    expect(r.certificate.daysLeft).toBeGreaterThanOrEqual(6);
    expect(r.certificate.daysLeft).toBeLessThanOrEqual(7);
    expect(r.contextOptions).toMatchObject({ cert, key, minVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    expect(JSON.stringify(r.certificate)).not.toContain('PRIVATE');
  });

  it('accepts a chain (leaf first) and a file holding both key and certificate', () => {
    expect(checkTlsPair(Buffer.from(pki.server.cert.pem + pki.ca.cert.pem), key, SETTINGS).ok).toBe(true);
    const both = Buffer.from(pki.server.key.pem + pki.server.cert.pem);
    expect(checkTlsPair(both, both, SETTINGS).ok).toBe(true);
  });

  it.each([
    ['a key of another certificate', () => [cert, otherKey], 'keyFile'],
    ['a certificate where the key should be', () => [cert, cert], 'keyFile'],
    ['an encrypted key', () => [cert, encryptedKey], 'keyFile'],
    ['an empty key file', () => [cert, Buffer.alloc(0)], 'keyFile'],
    ['a key where the certificate should be', () => [key, key], 'certFile'],
    ['an empty certificate file', () => [Buffer.alloc(0), key], 'certFile'],
    ['a truncated certificate', () => [cert.subarray(0, cert.length - 40), key], 'certFile'],
  ] as const)('refuses %s, naming the option at fault', (_what, pair, option) => {
    const [c, k] = pair() as [Buffer, Buffer];
    const r = checkTlsPair(c, k, SETTINGS);
    expect(r).toMatchObject({ ok: false, option });
    if (!r.ok) expectNoKeyMaterial(r.problem);
  });

  it('refuses a cipher list OpenSSL knows nothing of, naming tls.ciphers', () => {
    expect(checkTlsPair(cert, key, { minVersion: 'TLSv1.2', ciphers: 'NO-SUCH-CIPHER' })).toMatchObject({ ok: false, option: 'ciphers' });
  });
});

describe('loadConfig checks the pair at start-up (issue 17)', () => {
  it('refuses a key that is not the certificate\'s with CONFIG_ERR_INVALID naming tls.keyFile (was an obscure OpenSSL error)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vncgate-tls-pair-'));
    const keyFile = join(dir, 'other.key');
    await writeFile(keyFile, otherKey);
    let error: unknown;
    try {
      loadConfig({ env: {}, overrides: { tls: { certFile: pki.server.cert.path, keyFile } } });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(VncgateError);
    expect((error as VncgateError).code).toBe('CONFIG_ERR_INVALID');
    const problems = (error as VncgateError).details?.problems as string[];
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^tls\\.keyFile: ${keyFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: `));
    expectNoKeyMaterial(problems.join('\n'));
  });

  it('takes tls.watchFiles from VNCGATE_TLS_WATCH_FILES (default on)', () => {
    const env = { VNCGATE_TLS_CERT_FILE: pki.server.cert.path, VNCGATE_TLS_KEY_FILE: pki.server.key.path };
    expect(loadConfig({ env }).tls?.watchFiles).toBe(true);
    expect(loadConfig({ env: { ...env, VNCGATE_TLS_WATCH_FILES: 'false' } }).tls?.watchFiles).toBe(false);
  });
});
