import { execFileSync } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VncgateError } from '../../src/errors.js';
import { EXPIRY_WARNING_DAYS } from '../../src/proxy/tls-reload.js';

/**
 * A self-signed development certificate for localhost/127.0.0.1/::1, made with the openssl CLI and
 * kept in `dir` until it comes within a day of vncgate's expiry warning (so the demo never logs
 * one). For the demo only: browsers will warn.
 */
export function ensureDevCertificate(dir: string): { certFile: string; keyFile: string; fingerprint256: string } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const certFile = join(dir, 'dev-cert.pem');
  const keyFile = join(dir, 'dev-key.pem');
  if (existsSync(certFile) && existsSync(keyFile)) {
    try {
      const cert = new X509Certificate(readFileSync(certFile));
      if (Date.parse(cert.validTo) - Date.now() > (EXPIRY_WARNING_DAYS + 1) * 86_400_000) return { certFile, keyFile, fingerprint256: cert.fingerprint256 };
    } catch {
      // unreadable: make a new one
    }
  }
  try {
    execFileSync(
      'openssl',
      [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30',
        '-subj', '/CN=vncgate development certificate',
        '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
        '-set_serial', `0x${randomBytes(8).toString('hex')}`,
        '-keyout', keyFile, '-out', certFile,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } catch (err) {
    throw new VncgateError('CONFIG_ERR_FILE', `could not generate a development certificate with openssl (is it installed?): ${(err as Error).message}`, { cause: err });
  }
  const cert = new X509Certificate(readFileSync(certFile));
  return { certFile, keyFile, fingerprint256: cert.fingerprint256 };
}

/** Writes a random secret to `path` (mode 0600) unless it exists; returns it. */
export function ensureSecretFile(path: string, bytes = 12): string {
  if (existsSync(path)) return readFileSync(path, 'utf8').split('\n')[0] ?? '';
  const secret = randomBytes(bytes).toString('base64url').slice(0, 8);
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  return secret;
}
