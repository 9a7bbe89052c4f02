/**
 * Real TigerVNC `Xvnc` servers for the integration tier (Debian 12: TigerVNC 1.12.0).
 *
 * What the server offers, measured against 1.12 (see harness.int.test.ts):
 * - Types < 256 (None, VncAuth) are RFB security types; Plain and the TLS and X509 names are
 *   VeNCrypt subtypes (rfbproto "VeNCrypt"). If any VeNCrypt subtype is enabled the RFB list starts
 *   with VeNCrypt(19), followed by the plain RFB types in -SecurityTypes order
 *   (common/rfb/Security.cxx GetEnabledSecTypes). The VeNCrypt subtype list then holds *every*
 *   enabled type in order, including 1 and 2: `-SecurityTypes TLSVnc,VncAuth` offers types [19, 2]
 *   and subtypes [258, 2].
 * - After the client picks a TLS/X509 subtype the server sends a U8 1 and starts TLS. After Plain
 *   (256, no TLS) there is **no** such byte: the client sends the Plain credentials at once.
 * - TLSNone/TLSVnc/TLSPlain are anonymous (GnuTLS ANON-(EC)DH): Node must use TLS ≤ 1.2 with
 *   `ciphers: 'aNULL:@SECLEVEL=0'`.
 * - Xvnc does not check that -X509Cert/-X509Key/-PasswordFile exist until a client picks that
 *   type, so `startXvnc` checks them itself.
 * - Xvnc cannot verify client certificates; X509 client auth is tested against QEMU (qemu.ts).
 *
 * Plain/TLSPlain/X509Plain ("Plain" below), how 1.12 checks the password:
 * - The username must be listed in `-PlainUsers` (comma-separated, `*` for anyone); default empty,
 *   i.e. nobody. Others are refused at once, before PAM.
 * - Then PAM: `pam_start(PAMService, user)` + `pam_authenticate` + `pam_acct_mgmt`, synchronously
 *   in Xvnc's event loop. `-PAMService` defaults to `vnc`; Debian ships /etc/pam.d/tigervnc but no
 *   `vnc`, so the default falls back to /etc/pam.d/other (common-auth → pam_unix).
 * - pam_unix reads /etc/shadow directly only when the caller is root. As any other user it asks the
 *   setgid helper `unix_chkpwd`, which only checks the *caller's own* password, so a non-root Xvnc
 *   can only authenticate the user it runs as. Hence: run Xvnc as root, with a dedicated user.
 * - We use our own service `/etc/pam.d/vncgate-test` (written by `ensurePlainUser`) holding only
 *   `pam_unix.so nodelay`: without `nodelay` every wrong password stalls Xvnc ~2 s (pam_unix's fail
 *   delay, measured 2.1–2.6 s), and site additions to common-auth (pam_faillock, sssd) could lock
 *   the test user out or slow it down. A successful check costs ~90 ms (yescrypt).
 */
import { access, mkdtemp, writeFile, readFile, rename, mkdir, rmdir, stat, constants as fsConstants, readdir, rm } from 'node:fs/promises';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomInt } from 'node:crypto';
import {
  ManagedProcess,
  atExitSync,
  defaultRegistry,
  removeTempDir,
  removeTempDirAtExit,
  runCommand,
  sleep,
  type ProcessRegistry,
  type Stoppable,
} from './proc.js';
import { freePort, waitForListening } from './ports.js';
import { getTestPki, type ServerCertName } from './pki.js';

// --- wire numbers (kept here so test support does not depend on src/) --------------------------

export const RFB_SECURITY_TYPE = {
  None: 1, // RFC 6143 §7.2.1
  VncAuth: 2, // RFC 6143 §7.2.2
  VeNCrypt: 19, // rfbproto "VeNCrypt"
} as const;

export const VENCRYPT_SUBTYPE = {
  Plain: 256, // rfbproto "VeNCrypt": no TLS
  TLSNone: 257, // anonymous TLS
  TLSVnc: 258,
  TLSPlain: 259,
  X509None: 260, // TLS with server certificate
  X509Vnc: 261,
  X509Plain: 262,
} as const;

export type XvncSecurityType = keyof typeof RFB_SECURITY_TYPE | keyof typeof VENCRYPT_SUBTYPE;

/** The number Xvnc uses internally for each -SecurityTypes name. */
export const XVNC_TYPE_NUMBER: Readonly<Record<Exclude<XvncSecurityType, 'VeNCrypt'>, number>> = {
  None: RFB_SECURITY_TYPE.None,
  VncAuth: RFB_SECURITY_TYPE.VncAuth,
  ...VENCRYPT_SUBTYPE,
};

const NEEDS_PASSWORD = new Set<XvncSecurityType>(['VncAuth', 'TLSVnc', 'X509Vnc']);
const NEEDS_PLAIN_USER = new Set<XvncSecurityType>(['Plain', 'TLSPlain', 'X509Plain']);
const NEEDS_X509 = new Set<XvncSecurityType>(['X509None', 'X509Vnc', 'X509Plain']);

export interface ExpectedOffer {
  /** RFB 3.7/3.8 security-type list. */
  types: number[];
  /** VeNCrypt 0.2 subtype list, or null when VeNCrypt is not offered. */
  subtypes: number[] | null;
}

/** What Xvnc 1.12 offers for a -SecurityTypes list (Security.cxx, confirmed by the smoke test). */
export function xvncExpectedOffer(securityTypes: readonly Exclude<XvncSecurityType, 'VeNCrypt'>[]): ExpectedOffer {
  const numbers = securityTypes.map((t) => XVNC_TYPE_NUMBER[t]);
  const hasVencrypt = numbers.some((n) => n >= 256);
  return {
    types: [...(hasVencrypt ? [RFB_SECURITY_TYPE.VeNCrypt] : []), ...numbers.filter((n) => n < 256)],
    subtypes: hasVencrypt ? numbers : null,
  };
}

// --- the nine single-type configurations -------------------------------------------------------

export interface XvncConfig {
  securityTypes: readonly Exclude<XvncSecurityType, 'VeNCrypt'>[];
  /** Arguments fixed by the configuration. */
  args: readonly string[];
  /** Arguments `startXvnc` adds at run time, with placeholders for run-time paths/names. */
  runtimeArgs: readonly string[];
  expected: { type: number; subtype: number | null };
}

const PASSWORD_ARGS = ['-PasswordFile', '<tmp>/passwd (vncpasswd -f)'] as const;
const PLAIN_ARGS = ['-PlainUsers', '<ensurePlainUser().username>', '-PAMService', '<ensurePlainUser().pamService>'] as const;
const X509_ARGS = ['-X509Cert', '<pki server cert>', '-X509Key', '<pki server key>'] as const;

/** Per configuration: Xvnc arguments and the (security type, VeNCrypt subtype) it offers. */
export const XVNC_CONFIGS = {
  none: { securityTypes: ['None'], args: ['-SecurityTypes', 'None'], runtimeArgs: [], expected: { type: 1, subtype: null } },
  vncauth: { securityTypes: ['VncAuth'], args: ['-SecurityTypes', 'VncAuth'], runtimeArgs: PASSWORD_ARGS, expected: { type: 2, subtype: null } },
  plain: { securityTypes: ['Plain'], args: ['-SecurityTypes', 'Plain'], runtimeArgs: PLAIN_ARGS, expected: { type: 19, subtype: 256 } },
  tlsnone: { securityTypes: ['TLSNone'], args: ['-SecurityTypes', 'TLSNone'], runtimeArgs: [], expected: { type: 19, subtype: 257 } },
  tlsvnc: { securityTypes: ['TLSVnc'], args: ['-SecurityTypes', 'TLSVnc'], runtimeArgs: PASSWORD_ARGS, expected: { type: 19, subtype: 258 } },
  tlsplain: { securityTypes: ['TLSPlain'], args: ['-SecurityTypes', 'TLSPlain'], runtimeArgs: PLAIN_ARGS, expected: { type: 19, subtype: 259 } },
  x509none: { securityTypes: ['X509None'], args: ['-SecurityTypes', 'X509None'], runtimeArgs: X509_ARGS, expected: { type: 19, subtype: 260 } },
  x509vnc: { securityTypes: ['X509Vnc'], args: ['-SecurityTypes', 'X509Vnc'], runtimeArgs: [...X509_ARGS, ...PASSWORD_ARGS], expected: { type: 19, subtype: 261 } },
  x509plain: { securityTypes: ['X509Plain'], args: ['-SecurityTypes', 'X509Plain'], runtimeArgs: [...X509_ARGS, ...PLAIN_ARGS], expected: { type: 19, subtype: 262 } },
} as const satisfies Record<string, XvncConfig>;

export type XvncConfigName = keyof typeof XVNC_CONFIGS;

// --- the Plain test user -----------------------------------------------------------------------

export interface PlainUser {
  username: string;
  password: string;
  /** PAM service to pass as `-PAMService`. */
  pamService: string;
}

export const PLAIN_TEST_USERNAME = 'vncgate-test';
export const PLAIN_PAM_SERVICE = 'vncgate-test';
const PAM_SERVICE_FILE = `/etc/pam.d/${PLAIN_PAM_SERVICE}`;
const PAM_SERVICE_TEXT = `# vncgate integration tests (test/support/xvnc.ts): Xvnc -PAMService ${PLAIN_PAM_SERVICE}.
# pam_unix only, "nodelay": a wrong password must fail at once instead of stalling Xvnc's
# event loop for pam_unix's ~2 s fail delay, and no site policy (faillock, sssd) applies.
auth     required  pam_unix.so nodelay
account  required  pam_unix.so
`;
/** Root-only state so that concurrent test processes share one password instead of resetting it. */
const STATE_DIR = '/var/lib/vncgate-test';
const CREDS_FILE = join(STATE_DIR, 'plain-user.json');
const LOCK_DIR = join(STATE_DIR, 'lock');

let plainUserPromise: Promise<PlainUser> | undefined;

/**
 * Idempotently provides the local user that Plain/TLSPlain/X509Plain tests log in as, and the
 * PAM service Xvnc must use: creates the system user `vncgate-test` (no home, no login shell) with
 * a random password on first use, and installs /etc/pam.d/vncgate-test. The password is kept in
 * /var/lib/vncgate-test/plain-user.json (0600) so parallel test processes agree on it.
 *
 * Needs root (useradd, chpasswd, and see the module comment on pam_unix); throws otherwise, so
 * Plain tests fail loudly instead of passing vacuously.
 */
export function ensurePlainUser(): Promise<PlainUser> {
  plainUserPromise ??= createPlainUser().catch((err: unknown) => {
    plainUserPromise = undefined;
    throw err;
  });
  return plainUserPromise;
}

async function createPlainUser(): Promise<PlainUser> {
  if (process.getuid?.() !== 0) {
    throw new Error(
      `ensurePlainUser: Plain/TLSPlain/X509Plain tests must run as root (uid is ${String(process.getuid?.())}). ` +
        'Xvnc checks Plain credentials through PAM pam_unix, which can read /etc/shadow for another user only as root ' +
        '(a non-root Xvnc can authenticate only its own user via unix_chkpwd), and creating the test user needs useradd/chpasswd.',
    );
  }
  await installPamService();
  await mkdir(STATE_DIR, { recursive: true, mode: 0o700 });

  const existing = await readCreds();
  if (existing !== undefined && (await userExists(existing.username))) return existing;

  await withLock(async () => {
    const again = await readCreds();
    if (again !== undefined && (await userExists(again.username))) return;
    if (!(await userExists(PLAIN_TEST_USERNAME))) {
      await runCommand('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', '--comment', 'vncgate integration tests', PLAIN_TEST_USERNAME]);
    }
    const password = randomPassword(16);
    await runCommand('chpasswd', [], { input: `${PLAIN_TEST_USERNAME}:${password}\n` });
    const tmp = `${CREDS_FILE}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify({ username: PLAIN_TEST_USERNAME, password }), { mode: 0o600 });
    await rename(tmp, CREDS_FILE);
  });
  const created = await readCreds();
  if (created === undefined) throw new Error(`ensurePlainUser: ${CREDS_FILE} missing after creation`);
  return created;
}

async function installPamService(): Promise<void> {
  const current = await readFile(PAM_SERVICE_FILE, 'utf8').catch(() => undefined);
  if (current === PAM_SERVICE_TEXT) return;
  const tmp = `${PAM_SERVICE_FILE}.${process.pid}.tmp`;
  await writeFile(tmp, PAM_SERVICE_TEXT, { mode: 0o644 });
  await rename(tmp, PAM_SERVICE_FILE);
}

async function readCreds(): Promise<PlainUser | undefined> {
  try {
    const parsed = JSON.parse(await readFile(CREDS_FILE, 'utf8')) as { username?: unknown; password?: unknown };
    if (typeof parsed.username === 'string' && typeof parsed.password === 'string') {
      return { username: parsed.username, password: parsed.password, pamService: PLAIN_PAM_SERVICE };
    }
  } catch {
    // missing or torn: (re)create
  }
  return undefined;
}

async function userExists(name: string): Promise<boolean> {
  try {
    await runCommand('getent', ['passwd', name], { timeoutMs: 5000 });
    return true;
  } catch {
    return false;
  }
}

/** mkdir-based lock between test processes; a lock older than 60 s is taken as abandoned. */
async function withLock(fn: () => Promise<void>): Promise<void> {
  const deadline = performance.now() + 30_000;
  for (;;) {
    try {
      await mkdir(LOCK_DIR);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = await stat(LOCK_DIR).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > 60_000) await rmdir(LOCK_DIR).catch(() => {});
      if (performance.now() > deadline) throw new Error(`ensurePlainUser: ${LOCK_DIR} held for more than 30 s`);
      await sleep(50);
    }
  }
  try {
    await fn();
  } finally {
    await rmdir(LOCK_DIR).catch(() => {});
  }
}

export function randomPassword(length: number): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
  return Array.from(randomBytes(length), (b) => alphabet[b % alphabet.length]).join('');
}

// --- starting Xvnc -----------------------------------------------------------------------------

export interface XvncOptions {
  securityTypes: readonly Exclude<XvncSecurityType, 'VeNCrypt'>[];
  /** For VncAuth/TLSVnc/X509Vnc. Default: random, 8 characters (VNC auth uses only the first 8). */
  password?: string;
  /** `-PlainUsers`. Default when a Plain type is enabled: the `ensurePlainUser()` user. */
  plainUsers?: readonly string[];
  /** `-PAMService`. Default when a Plain type is enabled: `vncgate-test` (see module comment). */
  pamService?: string;
  /**
   * Server certificate for X509*: a test-PKI name, or file paths. Default `'server'` (SAN
   * 127.0.0.1, ::1, localhost, signed by `getTestPki().ca`).
   */
  x509?: ServerCertName | { cert: string; key: string };
  /** `-desktop`, returned in ServerInit. Default `vncgate-test-<display>`. */
  desktopName?: string;
  /** Default `1024x768`. */
  geometry?: string;
  /** Default 24. */
  depth?: number;
  /** Listen on [::1] instead of 127.0.0.1 (`-interface ::1`). */
  ipv6?: boolean;
  extraArgs?: readonly string[];
  registry?: ProcessRegistry;
  /** Per attempt. Default 10 s. */
  startTimeoutMs?: number;
}

export interface XvncServer extends Stoppable {
  host: string;
  port: number;
  display: number;
  desktopName: string;
  pid: number;
  securityTypes: readonly string[];
  expected: ExpectedOffer;
  /** Set when a VncAuth-family type is enabled. */
  password: string | undefined;
  /** Set when a Plain type is enabled and the default user is used. */
  plainUser: PlainUser | undefined;
  /** PEM of the CA that issued the X509 server certificate, when one is in use and known. */
  caCertPem: string | undefined;
  process: ManagedProcess;
  /** Password files and the like; removed by stop(). */
  tempDir: string;
  /** Spawn until listening, of the successful attempt. */
  startupMs: number;
  attempts: number;
  stop(): Promise<void>;
}

const MAX_ATTEMPTS = 6;
/** Xvnc errors that mean "someone else has this display or port": retry with new ones. */
const RETRYABLE = /already active for display|failed to bind socket|Address already in use|Cannot establish any listening sockets/;

/** A display number with no lock file and no socket (path or abstract). Random to avoid peers. */
function pickDisplay(): number {
  let abstract = '';
  try {
    abstract = readFileSync('/proc/net/unix', 'utf8');
  } catch {
    // not Linux: the retry loop still covers collisions
  }
  for (let i = 0; i < 100; i++) {
    const d = randomInt(200, 30_000);
    if (existsSync(`/tmp/.X${d}-lock`) || existsSync(`/tmp/.X11-unix/X${d}`)) continue;
    if (abstract.includes(`@/tmp/.X11-unix/X${d}\n`)) continue;
    return d;
  }
  throw new Error('no free X display number found in 100 tries');
}

async function checkReadable(path: string, what: string): Promise<void> {
  try {
    await access(path, fsConstants.R_OK);
  } catch {
    throw new Error(`startXvnc: ${what} ${path} is not readable (Xvnc would only notice at handshake time)`);
  }
}

export async function startXvnc(opts: XvncOptions): Promise<XvncServer> {
  if (opts.securityTypes.length === 0) throw new Error('startXvnc: securityTypes is empty');
  const registry = opts.registry ?? defaultRegistry;
  const types = new Set(opts.securityTypes);
  const host = opts.ipv6 === true ? '::1' : '127.0.0.1';
  const dir = await mkdtemp(join(tmpdir(), 'vncgate-xvnc-'));
  removeTempDirAtExit(dir);

  try {
    const args: string[] = ['-SecurityTypes', opts.securityTypes.join(',')];
    let password: string | undefined;
    if ([...types].some((t) => NEEDS_PASSWORD.has(t))) {
      password = opts.password ?? randomPassword(8);
      const passwdFile = join(dir, 'passwd');
      const { stdout } = await runCommand('vncpasswd', ['-f'], { input: `${password}\n` });
      await writeFile(passwdFile, stdout, { mode: 0o600 });
      args.push('-PasswordFile', passwdFile);
    }
    let plainUser: PlainUser | undefined;
    if ([...types].some((t) => NEEDS_PLAIN_USER.has(t))) {
      let users = opts.plainUsers;
      if (users === undefined) {
        plainUser = await ensurePlainUser();
        users = [plainUser.username];
      }
      args.push('-PlainUsers', users.join(','), '-PAMService', opts.pamService ?? PLAIN_PAM_SERVICE);
    }
    let caCertPem: string | undefined;
    if ([...types].some((t) => NEEDS_X509.has(t))) {
      let cert: string;
      let key: string;
      if (typeof opts.x509 === 'object') {
        ({ cert, key } = opts.x509);
      } else {
        const pki = await getTestPki();
        const which = opts.x509 ?? 'server';
        cert = pki[which].cert.path;
        key = pki[which].key.path;
        caCertPem = which === 'untrustedServer' ? pki.otherCa.cert.pem : pki.ca.cert.pem;
      }
      await checkReadable(cert, 'X509 certificate');
      await checkReadable(key, 'X509 key');
      args.push('-X509Cert', cert, '-X509Key', key);
    }

    const failures: string[] = [];
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const display = pickDisplay();
      const port = await freePort(host);
      const desktopName = opts.desktopName ?? `vncgate-test-${display}`;
      const proc = await ManagedProcess.start({
        name: `Xvnc :${display}`,
        command: 'Xvnc',
        args: [
          `:${display}`,
          '-rfbport', String(port),
          '-interface', host,
          '-nolisten', 'tcp',
          '-BlacklistThreshold', '100000',
          '-geometry', opts.geometry ?? '1024x768',
          '-depth', String(opts.depth ?? 24),
          '-desktop', desktopName,
          ...args,
          ...(opts.extraArgs ?? []),
        ],
      });
      // A SIGKILLed Xvnc (the exit-time safety net) leaves its lock and socket behind.
      const unhook = atExitSync(() => cleanStaleDisplaySync(display, proc.pid));
      try {
        await waitForListening(proc, port, opts.startTimeoutMs ?? 10_000);
      } catch (err) {
        unhook();
        await proc.stop();
        await cleanStaleDisplay(display, proc.pid);
        if (RETRYABLE.test(proc.output())) {
          failures.push(`attempt ${attempt} (:${display}, port ${port}): ${lastLines(proc.output())}`);
          continue;
        }
        throw err;
      }
      const startupMs = performance.now() - proc.startedAt;
      let stopped: Promise<void> | undefined;
      const server: XvncServer = {
        host,
        port,
        display,
        desktopName,
        pid: proc.pid,
        securityTypes: opts.securityTypes,
        expected: xvncExpectedOffer(opts.securityTypes),
        password,
        plainUser,
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
              await cleanStaleDisplay(display, proc.pid);
              unhook();
            } finally {
              removeTempDir(dir);
            }
          })();
          return stopped;
        },
      };
      return registry.add(server);
    }
    throw new Error(`startXvnc: no free display/port after ${MAX_ATTEMPTS} attempts:\n${failures.join('\n')}`);
  } catch (err) {
    removeTempDir(dir);
    throw err;
  }
}

/** Starts one of the nine named configurations with test defaults (see XVNC_CONFIGS). */
export function startXvncConfig(name: XvncConfigName, overrides: Omit<XvncOptions, 'securityTypes'> = {}): Promise<XvncServer> {
  return startXvnc({ ...overrides, securityTypes: XVNC_CONFIGS[name].securityTypes });
}

/**
 * After SIGTERM Xvnc removes its lock file and socket itself; after a SIGKILL it cannot. Remove
 * them only if the lock still names our PID, so another server's display is never touched.
 */
async function cleanStaleDisplay(display: number, pid: number): Promise<void> {
  const lock = `/tmp/.X${display}-lock`;
  const owner = await readFile(lock, 'utf8').then((t) => Number.parseInt(t.trim(), 10), () => undefined);
  if (owner !== pid) return;
  await rm(lock, { force: true });
  await rm(`/tmp/.X11-unix/X${display}`, { force: true });
}

function cleanStaleDisplaySync(display: number, pid: number): void {
  const lock = `/tmp/.X${display}-lock`;
  let owner: number | undefined;
  try {
    owner = Number.parseInt(readFileSync(lock, 'utf8').trim(), 10);
  } catch {
    return;
  }
  if (owner !== pid) return;
  rmSync(lock, { force: true });
  rmSync(`/tmp/.X11-unix/X${display}`, { force: true });
}

function lastLines(text: string, n = 3): string {
  return text.trim().split('\n').slice(-n).join(' | ');
}

/** X displays currently held by lock files (diagnostics for leak checks in tests). */
export async function activeXDisplays(): Promise<number[]> {
  const names = await readdir('/tmp').catch(() => [] as string[]);
  return names.flatMap((n) => {
    const m = /^\.X(\d+)-lock$/.exec(n);
    return m?.[1] !== undefined ? [Number(m[1])] : [];
  });
}
