import { X509Certificate, randomBytes } from 'node:crypto';
import { renameSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './procs.js';

/**
 * The soak's PKI, made with the openssl CLI at run time: a CA the clients trust and two server
 * certificates it signed (EC P-256, SAN 127.0.0.1 and localhost), "before" and "after" the
 * rotation. Both are valid: the rotation is told apart by fingerprint, not by a failed handshake.
 */
export type ServerPair = { certPem: string; keyPem: string; fingerprint256: string };
export type SoakPki = { caPem: string; before: ServerPair; after: ServerPair };

async function openssl(dir: string, args: readonly string[]): Promise<void> {
  await run('openssl', args.map((a) => a.replaceAll('{dir}', dir)));
}

async function leaf(dir: string, name: string): Promise<ServerPair> {
  const key = join(dir, `${name}-key.pem`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  const cert = join(dir, `${name}-cert.pem`);
  await openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
  await openssl(dir, ['req', '-new', '-key', key, '-out', csr, '-subj', `/O=vncgate soak/CN=localhost ${name}`]);
  await writeFile(ext, ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth', 'subjectAltName=IP:127.0.0.1,DNS:localhost', ''].join('\n'));
  await openssl(dir, [
    'x509', '-req', '-in', csr, '-CA', '{dir}/ca-cert.pem', '-CAkey', '{dir}/ca-key.pem',
    '-set_serial', `0x${randomBytes(12).toString('hex')}`, '-days', '2', '-sha256', '-extfile', ext, '-out', cert,
  ]);
  const certPem = await readFile(cert, 'utf8');
  return { certPem, keyPem: await readFile(key, 'utf8'), fingerprint256: new X509Certificate(certPem).fingerprint256 };
}

export async function makeSoakPki(dir: string): Promise<SoakPki> {
  await openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', '{dir}/ca-key.pem']);
  await openssl(dir, [
    'req', '-x509', '-new', '-key', '{dir}/ca-key.pem', '-out', '{dir}/ca-cert.pem', '-days', '2', '-sha256',
    '-subj', '/O=vncgate soak/CN=vncgate soak CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign',
  ]);
  const [before, after] = await Promise.all([leaf(dir, 'before'), leaf(dir, 'after')]);
  return { caPem: await readFile(join(dir, 'ca-cert.pem'), 'utf8'), before, after };
}

/**
 * Writes the pair beside its final names and renames each over, as renewal tools do: the two
 * renames back to back (synchronous, so a busy event loop here cannot hold the directory in a
 * mixed state for longer than vncgate's 500 ms quiet time; that would be the soak's fault).
 */
export async function installPair(certFile: string, keyFile: string, pair: ServerPair): Promise<void> {
  await writeFile(`${keyFile}.new`, pair.keyPem, { mode: 0o600 });
  await writeFile(`${certFile}.new`, pair.certPem);
  renameSync(`${keyFile}.new`, keyFile);
  renameSync(`${certFile}.new`, certFile);
}
