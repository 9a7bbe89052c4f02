/**
 * Test PKI made at run time with the `openssl` CLI (no keys in the repo): EC P-256 keys, because
 * they are instant to generate and every peer here takes them (Node/OpenSSL, TigerVNC and QEMU via
 * GnuTLS).
 *
 *   ca                — trusted test CA
 *   server            — signed by ca; SAN IP:127.0.0.1, IP:::1, DNS:localhost
 *   wrongHost         — signed by ca; SAN DNS:wrong.example only (hostname-mismatch tests)
 *   otherCa           — an unrelated CA
 *   untrustedServer   — signed by otherCa; SAN as `server` (untrusted-CA tests)
 *   client            — signed by ca; EKU clientAuth (VeNCrypt X.509 client auth against QEMU)
 *
 * Leaf certificates carry keyUsage digitalSignature+keyEncipherment and the matching EKU because
 * QEMU's tls-creds-x509 sanity check (crypto/tlscredsx509.c) refuses a server certificate whose
 * critical keyUsage lacks either bit, even for EC keys.
 *
 * Generated once per test process and removed when it exits.
 */
import { mkdir, mkdtemp, readFile, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { removeTempDirAtExit, runCommand } from './proc.js';

export interface PemFile {
  path: string;
  pem: string;
}

export interface CertAndKey {
  cert: PemFile;
  key: PemFile;
}

/** Which server certificate a QEMU credentials directory should hold. */
export type ServerCertName = 'server' | 'wrongHost' | 'untrustedServer';

export interface TestPki {
  /** The temp directory everything lives in. */
  dir: string;
  ca: CertAndKey;
  server: CertAndKey;
  wrongHost: CertAndKey;
  otherCa: CertAndKey;
  untrustedServer: CertAndKey;
  client: CertAndKey;
  /**
   * A directory laid out as QEMU's `tls-creds-x509,dir=` wants it: `ca-cert.pem` (the issuer of
   * that server cert, which QEMU also uses to verify client certs), `server-cert.pem`,
   * `server-key.pem` and a ready-made `dh-params.pem` (otherwise QEMU generates DH parameters
   * itself at start-up). Made once per name.
   */
  qemuDir(which?: ServerCertName): Promise<string>;
}

const SERVER_SAN = 'IP:127.0.0.1,IP:::1,DNS:localhost';
const VALIDITY_DAYS = '7';

// On globalThis, not module state: vitest re-evaluates modules for every test file, and the PKI
// should be made once per worker process. The temp dir goes when the process exits (proc.ts).
const CACHE_KEY = Symbol.for('vncgate.test.support.pki');

/** The test PKI for this process, generated on first use (~0.4 s). */
export function getTestPki(): Promise<TestPki> {
  const g = globalThis as { [CACHE_KEY]?: Promise<TestPki> };
  g[CACHE_KEY] ??= generate().catch((err: unknown) => {
    delete g[CACHE_KEY];
    throw err;
  });
  return g[CACHE_KEY];
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  await runCommand('openssl', args, { cwd, timeoutMs: 20_000 });
}

async function pemFile(path: string): Promise<PemFile> {
  return { path, pem: await readFile(path, 'utf8') };
}

async function makeCa(dir: string, name: string, cn: string): Promise<CertAndKey> {
  const keyPath = join(dir, `${name}-key.pem`);
  const certPath = join(dir, `${name}-cert.pem`);
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyPath], dir);
  await openssl(
    [
      'req', '-x509', '-new', '-key', keyPath, '-out', certPath, '-days', VALIDITY_DAYS, '-sha256',
      '-subj', `/O=vncgate tests/CN=${cn}`,
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      '-addext', 'subjectKeyIdentifier=hash',
    ],
    dir,
  );
  return { cert: await pemFile(certPath), key: await pemFile(keyPath) };
}

async function makeLeaf(
  dir: string,
  name: string,
  issuer: CertAndKey,
  cn: string,
  extensions: readonly string[],
): Promise<CertAndKey> {
  const keyPath = join(dir, `${name}-key.pem`);
  const csrPath = join(dir, `${name}.csr`);
  const extPath = join(dir, `${name}.ext`);
  const certPath = join(dir, `${name}-cert.pem`);
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyPath], dir);
  await openssl(['req', '-new', '-key', keyPath, '-out', csrPath, '-subj', `/O=vncgate tests/CN=${cn}`], dir);
  await writeFile(
    extPath,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid',
      ...extensions,
      '',
    ].join('\n'),
  );
  await openssl(
    [
      'x509', '-req', '-in', csrPath, '-CA', issuer.cert.path, '-CAkey', issuer.key.path,
      '-set_serial', `0x${randomBytes(12).toString('hex')}`, '-days', VALIDITY_DAYS, '-sha256',
      '-extfile', extPath, '-out', certPath,
    ],
    dir,
  );
  return { cert: await pemFile(certPath), key: await pemFile(keyPath) };
}

async function generate(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'vncgate-pki-'));
  removeTempDirAtExit(dir);

  const ca = await makeCa(dir, 'ca', 'vncgate test CA');
  const otherCa = await makeCa(dir, 'other-ca', 'vncgate unrelated test CA');
  const serverExt = ['extendedKeyUsage=serverAuth'];
  const [server, wrongHost, untrustedServer, client] = await Promise.all([
    makeLeaf(dir, 'server', ca, 'localhost', [...serverExt, `subjectAltName=${SERVER_SAN}`]),
    makeLeaf(dir, 'wrong-host', ca, 'wrong.example', [...serverExt, 'subjectAltName=DNS:wrong.example']),
    makeLeaf(dir, 'untrusted-server', otherCa, 'localhost', [...serverExt, `subjectAltName=${SERVER_SAN}`]),
    makeLeaf(dir, 'client', ca, 'vncgate-test-client', ['extendedKeyUsage=clientAuth']),
  ]);

  // RFC 7919 ffdhe2048: a named group, so no prime search (QEMU would otherwise run
  // gnutls_dh_params_generate2 at every start).
  const dhPath = join(dir, 'dh-params.pem');
  await openssl(['genpkey', '-genparam', '-algorithm', 'DH', '-pkeyopt', 'group:ffdhe2048', '-out', dhPath], dir);

  const issuers: Record<ServerCertName, { leaf: CertAndKey; ca: CertAndKey }> = {
    server: { leaf: server, ca },
    wrongHost: { leaf: wrongHost, ca },
    untrustedServer: { leaf: untrustedServer, ca: otherCa },
  };
  const qemuDirs = new Map<ServerCertName, Promise<string>>();
  const qemuDir = (which: ServerCertName = 'server'): Promise<string> => {
    let p = qemuDirs.get(which);
    if (p === undefined) {
      p = (async () => {
        const { leaf, ca: issuer } = issuers[which];
        const d = join(dir, `qemu-${which}`);
        await mkdir(d, { mode: 0o700 });
        await copyFile(issuer.cert.path, join(d, 'ca-cert.pem'));
        await copyFile(leaf.cert.path, join(d, 'server-cert.pem'));
        await copyFile(leaf.key.path, join(d, 'server-key.pem'));
        await copyFile(dhPath, join(d, 'dh-params.pem'));
        return d;
      })();
      qemuDirs.set(which, p);
    }
    return p;
  };

  return { dir, ca, server, wrongHost, otherCa, untrustedServer, client, qemuDir };
}
