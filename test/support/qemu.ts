/**
 * QEMU's built-in VNC server (Debian 12: QEMU 7.2) as a second, independent RFB implementation.
 * A diskless VM boots SeaBIOS: a real firmware screen (720×400), desktop name "QEMU".
 *
 * What QEMU 7.2 offers (RFB 3.8, measured by harness.int.test.ts):
 *   no password, no TLS              → types [1]  (None)
 *   password                         → types [2]  (VncAuth)
 *   tls-creds-x509                   → types [19], VeNCrypt subtypes [260] (X509None)
 *   tls-creds-x509 + password        → types [19], subtypes [261] (X509Vnc)
 *   tls-creds-anon                   → types [19], subtypes [257] (TLSNone)
 *   tls-creds-anon + password        → types [19], subtypes [258] (TLSVnc)
 * Exactly one type/subtype each time, never a choice. `verify-peer=on` (x509verifyClient) does not
 * change the offer: the TLS handshake then demands a client certificate issued by `ca-cert.pem`
 * in the creds dir (with TLS 1.3 a missing one shows up only after the client's handshake
 * "succeeded", as the server closing the connection).
 *
 * Password: `password-secret=ID` names a `-object secret` (QEMU ≥ 7.0); we pass the secret through
 * a file so it is neither in argv nor subject to QEMU's comma escaping. The older `password=on`
 * also offers VncAuth but with no password set, so every attempt fails until one is set through
 * the monitor: not useful here. VNC auth uses only the first 8 characters.
 *
 * Other quirks: the VNC listen backlog is 1 (Xvnc's is 5), so a burst of simultaneous connects
 * can see SYN retransmits (~1 s); the display number is port − 5900, so we pick the port first.
 */
import { mkdtemp, writeFile, access, constants as fsConstants } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ManagedProcess,
  defaultRegistry,
  removeTempDir,
  removeTempDirAtExit,
  type ProcessRegistry,
  type Stoppable,
} from './proc.js';
import { freePort, waitForListening } from './ports.js';
import { getTestPki, type ServerCertName } from './pki.js';
import { RFB_SECURITY_TYPE, VENCRYPT_SUBTYPE, randomPassword, type ExpectedOffer } from './xvnc.js';

export type QemuTls =
  /** A directory with ca-cert.pem, server-cert.pem, server-key.pem (and optionally dh-params.pem). */
  | { dir: string }
  /** A directory made from the test PKI (`getTestPki().qemuDir(name)`). */
  | { pki: ServerCertName }
  /** Anonymous TLS (tls-creds-anon): TLSNone/TLSVnc. */
  | { anon: true };

export interface QemuVncOptions {
  /** Enables VncAuth (or X509Vnc/TLSVnc with `tls`). */
  password?: string;
  tls?: QemuTls;
  /** tls-creds-x509 `verify-peer=on`: clients must present a certificate issued by ca-cert.pem. */
  x509verifyClient?: boolean;
  /** Listen on [::1] instead of 127.0.0.1. */
  ipv6?: boolean;
  /** `-name`; the desktop name becomes `QEMU (<name>)`. */
  name?: string;
  extraArgs?: readonly string[];
  registry?: ProcessRegistry;
  /** Per attempt. Default 15 s. */
  startTimeoutMs?: number;
}

export interface QemuVncServer extends Stoppable {
  host: string;
  port: number;
  /** VNC display number: port − 5900. */
  display: number;
  desktopName: string;
  pid: number;
  password: string | undefined;
  expected: ExpectedOffer;
  /** PEM of the CA in the creds dir (x509 only). */
  caCertPem: string | undefined;
  process: ManagedProcess;
  /** Password files and the like; removed by stop(). */
  tempDir: string;
  startupMs: number;
  attempts: number;
  stop(): Promise<void>;
}

const MAX_ATTEMPTS = 6;
const RETRYABLE = /Failed to find an available port|Address already in use/;
/** The lowest port QEMU can express as a display number. */
const VNC_BASE_PORT = 5900;

/** What QEMU 7.2 offers for these options (see module comment). */
export function qemuExpectedOffer(opts: Pick<QemuVncOptions, 'password' | 'tls'>): ExpectedOffer {
  const pw = opts.password !== undefined;
  if (opts.tls === undefined) return { types: [pw ? RFB_SECURITY_TYPE.VncAuth : RFB_SECURITY_TYPE.None], subtypes: null };
  const anon = 'anon' in opts.tls;
  const subtype = anon ? (pw ? VENCRYPT_SUBTYPE.TLSVnc : VENCRYPT_SUBTYPE.TLSNone) : pw ? VENCRYPT_SUBTYPE.X509Vnc : VENCRYPT_SUBTYPE.X509None;
  return { types: [RFB_SECURITY_TYPE.VeNCrypt], subtypes: [subtype] };
}

export async function startQemuVnc(opts: QemuVncOptions = {}): Promise<QemuVncServer> {
  const registry = opts.registry ?? defaultRegistry;
  const host = opts.ipv6 === true ? '::1' : '127.0.0.1';
  const dir = await mkdtemp(join(tmpdir(), 'vncgate-qemu-'));
  removeTempDirAtExit(dir);
  try {
    const objects: string[] = [];
    const vncOpts: string[] = [];
    if (opts.password !== undefined) {
      const secretFile = join(dir, 'vnc-password');
      await writeFile(secretFile, opts.password, { mode: 0o600 });
      objects.push('-object', `secret,id=vncpw,file=${secretFile}`);
      vncOpts.push('password-secret=vncpw');
    }
    let caCertPem: string | undefined;
    if (opts.tls !== undefined) {
      if ('anon' in opts.tls) {
        if (opts.x509verifyClient === true) throw new Error('startQemuVnc: x509verifyClient needs x509 TLS, not anon');
        // dir= only supplies dh-params.pem; without it QEMU spends ~1 s generating DH parameters.
        const pki = await getTestPki();
        objects.push('-object', `tls-creds-anon,id=tls0,endpoint=server,dir=${await pki.qemuDir('server')}`);
      } else {
        let credsDir: string;
        if ('pki' in opts.tls) {
          const pki = await getTestPki();
          credsDir = await pki.qemuDir(opts.tls.pki);
          caCertPem = opts.tls.pki === 'untrustedServer' ? pki.otherCa.cert.pem : pki.ca.cert.pem;
        } else {
          credsDir = opts.tls.dir;
        }
        for (const f of ['ca-cert.pem', 'server-cert.pem', 'server-key.pem']) {
          await access(join(credsDir, f), fsConstants.R_OK).catch(() => {
            throw new Error(`startQemuVnc: ${join(credsDir, f)} is not readable`);
          });
        }
        const verify = opts.x509verifyClient === true ? 'on' : 'off';
        objects.push('-object', `tls-creds-x509,id=tls0,dir=${credsDir},endpoint=server,verify-peer=${verify}`);
      }
      vncOpts.push('tls-creds=tls0');
    } else if (opts.x509verifyClient === true) {
      throw new Error('startQemuVnc: x509verifyClient needs tls');
    }

    const failures: string[] = [];
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const port = await freePort(host);
      if (port < VNC_BASE_PORT) continue;
      const display = port - VNC_BASE_PORT;
      const listen = opts.ipv6 === true ? `[::1]:${display}` : `127.0.0.1:${display}`;
      const proc = await ManagedProcess.start({
        name: `qemu vnc :${display}`,
        command: 'qemu-system-x86_64',
        args: [
          '-display', 'none', '-nodefaults', '-vga', 'std', '-machine', 'accel=tcg', '-m', '64', '-no-reboot',
          ...(opts.name !== undefined ? ['-name', opts.name] : []),
          ...objects,
          '-vnc', [listen, ...vncOpts].join(','),
          ...(opts.extraArgs ?? []),
        ],
      });
      try {
        await waitForListening(proc, port, opts.startTimeoutMs ?? 15_000);
      } catch (err) {
        await proc.stop();
        if (RETRYABLE.test(proc.output())) {
          failures.push(`attempt ${attempt} (port ${port}): ${proc.output().trim()}`);
          continue;
        }
        throw err;
      }
      const startupMs = performance.now() - proc.startedAt;
      let stopped: Promise<void> | undefined;
      const server: QemuVncServer = {
        host,
        port,
        display,
        desktopName: opts.name !== undefined ? `QEMU (${opts.name})` : 'QEMU',
        pid: proc.pid,
        password: opts.password,
        expected: qemuExpectedOffer(opts),
        caCertPem,
        process: proc,
        tempDir: dir,
        startupMs,
        attempts: attempt,
        stop: () => {
          stopped ??= (async () => {
            registry.delete(server);
            try {
              await proc.stop();
            } finally {
              removeTempDir(dir);
            }
          })();
          return stopped;
        },
      };
      return registry.add(server);
    }
    throw new Error(`startQemuVnc: no free port after ${MAX_ATTEMPTS} attempts:\n${failures.join('\n')}`);
  } catch (err) {
    removeTempDir(dir);
    throw err;
  }
}

/** A random 8-character VNC password (the most VNC auth uses). */
export function randomVncPassword(): string {
  return randomPassword(8);
}
