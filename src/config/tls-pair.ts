import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { createSecureContext, type SecureContextOptions } from 'node:tls';

/** The listener's TLS settings that a certificate is served with. */
export type TlsListenerSettings = { minVersion: 'TLSv1.2' | 'TLSv1.3'; ciphers: string | null };

/** What the log may say about a certificate. Public facts only: never key material. */
export type CertificateSummary = {
  subject: string;
  issuer: string;
  fingerprint256: string;
  notBefore: string;
  /** ISO 8601. */
  notAfter: string;
  /** Whole days until notAfter (negative once expired). */
  daysLeft: number;
};

export type TlsPairCheck =
  | { ok: true; certificate: CertificateSummary; contextOptions: SecureContextOptions }
  /** `option`: the tls.* option at fault; `mismatch`: both parse, but the key is another certificate's. */
  | { ok: false; option: 'certFile' | 'keyFile' | 'ciphers'; problem: string; mismatch?: true };

const DAY_MS = 86_400_000;

/**
 * Checks that `cert` (a PEM chain, leaf first) and `key` (a PEM private key) form a pair the
 * listener can serve: both parse, the key is the certificate's, and OpenSSL builds a context from
 * them with the listener's own settings (so a key its security level refuses is caught here, not
 * at the first handshake). Never throws: every problem comes back as a result.
 *
 * Without this, a mismatched pair at start-up fails inside the HTTPS server's constructor with
 * OpenSSL's bare "key values mismatch", reported as an internal error.
 */
export function checkTlsPair(cert: Buffer, key: Buffer, settings: TlsListenerSettings, now = Date.now()): TlsPairCheck {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    return { ok: false, option: 'certFile', problem: `not a PEM certificate (${reason(err)})` };
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    // OpenSSL 3 reports a missing passphrase as "interrupted or cancelled"; the PEM says it plainly.
    const encrypted = (err as NodeJS.ErrnoException).code === 'ERR_MISSING_PASSPHRASE' || /^-----BEGIN ENCRYPTED PRIVATE KEY-----|^Proc-Type: 4,ENCRYPTED/m.test(key.toString('latin1'));
    return { ok: false, option: 'keyFile', problem: encrypted ? 'the key is encrypted; vncgate needs it unencrypted' : `not a PEM private key (${reason(err)})` };
  }
  if (!x509.checkPrivateKey(privateKey)) {
    return { ok: false, option: 'keyFile', problem: `the key does not belong to the certificate (subject ${oneLine(x509.subject)}, SHA-256 ${x509.fingerprint256})`, mismatch: true };
  }
  const contextOptions: SecureContextOptions = { cert, key, minVersion: settings.minVersion, ...(settings.ciphers !== null ? { ciphers: settings.ciphers } : {}) };
  try {
    createSecureContext(contextOptions);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_SSL_NO_CIPHER_MATCH') return { ok: false, option: 'ciphers', problem: 'no cipher in the list is known to OpenSSL' };
    return { ok: false, option: 'certFile', problem: `OpenSSL refuses the pair (${reason(err)})` };
  }
  const notAfter = Date.parse(x509.validTo);
  return {
    ok: true,
    certificate: {
      subject: oneLine(x509.subject),
      issuer: oneLine(x509.issuer),
      fingerprint256: x509.fingerprint256,
      notBefore: new Date(Date.parse(x509.validFrom)).toISOString(),
      notAfter: new Date(notAfter).toISOString(),
      daysLeft: Math.floor((notAfter - now) / DAY_MS),
    },
    contextOptions,
  };
}

/** X509Certificate.subject is one `KEY=value` per line. */
function oneLine(dn: string): string {
  return dn.trim().split('\n').join(', ');
}

/** OpenSSL's reason, bounded; it names the failure, never the key's bytes. */
function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { reason?: string };
  const text = e.reason ?? e.message ?? String(err);
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
}
