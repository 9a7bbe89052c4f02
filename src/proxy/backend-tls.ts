import { isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { VncgateError, type ErrorCode } from '../errors.js';
import type { BackendTls } from '../target.js';

export type TlsSummary = {
  protocol: string | null;
  cipher: string;
  anonymous: boolean;
  peerSubject: string | null;
  peerIssuer: string | null;
  peerValidTo: string | null;
  hostnameVerified: boolean;
};

const TLS_UNTRUSTED_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'INVALID_CA',
]);

function tlsErrorCode(err: NodeJS.ErrnoException): ErrorCode {
  if (err.code === 'ERR_TLS_CERT_ALTNAME_INVALID') return 'BACKEND_ERR_TLS_HOSTNAME';
  if (err.code && TLS_UNTRUSTED_CODES.has(err.code)) return 'BACKEND_ERR_TLS_UNTRUSTED';
  return 'BACKEND_ERR_TLS';
}

function formatDn(dn: PeerCertificate['subject'] | undefined): string | null {
  if (!dn) return null;
  const parts = Object.entries(dn).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`);
  return parts.length > 0 ? parts.join(', ') : null;
}

export type TlsHooks = {
  /** TLS is up: the RFB handshake goes on over the returned socket. */
  secure(summary: TlsSummary, ms: number): void;
  fail(error: VncgateError): void;
};

/**
 * Starts TLS over `raw` where the RFB handshake asks for it (VeNCrypt's TLS or X509 subtypes):
 * verified against `cfg` (CA, hostname, client certificate), or anonymous when the subtype is and
 * the profile allows it. Returns the TLS socket, or null when it could not even be set up
 * (`hooks.fail` has been called).
 */
export function startBackendTls(
  raw: Socket,
  transport: 'tls-anon' | 'tls-x509',
  host: string,
  port: number,
  cfg: BackendTls,
  log: Pick<Logger, 'warn'> | undefined,
  hooks: TlsHooks,
): TLSSocket | null {
  const t = performance.now();
  const anonymous = transport === 'tls-anon';
  const verifyHostname = !anonymous && cfg.verifyHostname !== false;
  if (!anonymous && cfg.verifyHostname === false) {
    log?.warn({ backend: `${host}:${port}` }, 'TLS hostname verification disabled for this backend by configuration');
  }
  const name = cfg.servername ?? host;
  let tlsSocket: TLSSocket;
  try {
    tlsSocket = tlsConnect({
      socket: raw,
      host: name,
      // SNI must be a DNS name, never an IP literal (RFC 6066 §3).
      ...(isIP(name) === 0 ? { servername: name } : {}),
      minVersion: cfg.minVersion ?? 'TLSv1.2',
      ...(anonymous
        ? {
            // Anonymous DH/ECDH suites exist only up to TLS 1.2 and only at OpenSSL security
            // level 0; there is no certificate to verify. Only reached when explicitly allowed.
            ciphers: 'aNULL:!eNULL:@SECLEVEL=0',
            maxVersion: 'TLSv1.2' as const,
            rejectUnauthorized: false,
          }
        : {
            rejectUnauthorized: true,
            ...(cfg.ca !== undefined ? { ca: cfg.ca } : {}),
            ...(cfg.cert !== undefined && cfg.key !== undefined ? { cert: cfg.cert, key: cfg.key } : {}),
            ...(verifyHostname ? {} : { checkServerIdentity: () => undefined }),
          }),
    });
  } catch (err) {
    hooks.fail(new VncgateError('BACKEND_ERR_TLS', `TLS setup failed: ${(err as Error).message}`, { cause: err }));
    return null;
  }
  const onClose = (): void => hooks.fail(new VncgateError('BACKEND_ERR_CLOSED', 'console endpoint closed the connection during TLS'));
  const onTlsError = (err: NodeJS.ErrnoException): void => {
    tlsSocket.off('secureConnect', onSecure);
    tlsSocket.off('close', onClose);
    const code = tlsErrorCode(err);
    hooks.fail(new VncgateError(code, `TLS with the console endpoint failed: ${err.code ?? ''} ${err.message}`.trim(), { cause: err }));
  };
  const onSecure = (): void => {
    tlsSocket.off('error', onTlsError);
    // The caller watches the TLS socket from here on; left in place, this listener would keep the
    // hooks (and through them the RFB engine, which holds the VNC password) alive all session.
    tlsSocket.off('close', onClose);
    const peer = anonymous ? null : tlsSocket.getPeerCertificate();
    const summary: TlsSummary = {
      protocol: tlsSocket.getProtocol(),
      cipher: tlsSocket.getCipher()?.name ?? 'unknown',
      anonymous,
      peerSubject: peer ? formatDn(peer.subject) : null,
      peerIssuer: peer ? formatDn(peer.issuer) : null,
      peerValidTo: peer?.valid_to ?? null,
      hostnameVerified: verifyHostname,
    };
    hooks.secure(summary, performance.now() - t);
  };
  tlsSocket.once('error', onTlsError);
  tlsSocket.once('secureConnect', onSecure);
  tlsSocket.once('close', onClose);
  return tlsSocket;
}
