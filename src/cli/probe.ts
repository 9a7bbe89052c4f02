import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { VncgateError, toVncgateError, type ErrorCode } from '../errors.js';
import { connectBackend, exchangeInit} from '../proxy/backend-connector.js';
import type { BackendSecurity } from '../target.js';
import { SECURITY_CHOICES, SECURITY_TYPE_NAMES, VENCRYPT_SUBTYPE_NAMES, isSecurityChoice, type SecurityChoice } from '../rfb/index.js';
import { UsageError, parseHostPort, readSecretFile, type CliIo } from './io.js';
import { PROBE_DEFAULT_PREFERENCE, credentialsMissingHint, noCommonSecurityHint, type ProbeCredentials } from './probe-hint.js';

export const PROBE_USAGE = `Usage: vncgate probe HOST:PORT [options]

Connects to a VNC console endpoint, performs the RFB handshake as vncgate would, sends ClientInit
(shared) and reads ServerInit. Prints one JSON object on stdout; exits 0 on success, 1 on failure.

Options:
  --security LIST        security preference, most preferred first, comma-separated, from:
                         ${Object.keys(SECURITY_CHOICES).join(', ')}
                         (default: every X509 subtype and vncauth that the given credentials allow, then none)
  --password-file F      VNC or Plain password (first line of F)
  --username U           username for the Plain subtypes
  --ca F                 PEM CA bundle to verify the endpoint's certificate (default: system CAs)
  --cert F, --key F      PEM client certificate and key for the X509 subtypes
  --servername NAME      verify the certificate against NAME instead of HOST
  --no-verify-hostname   verify the certificate chain but not its name (BMCs with IP-less certificates)
  --allow-anonymous-tls  permit the unauthenticated TLSNone/TLSVnc/TLSPlain subtypes
  --timeout MS           deadline for each of connect, handshake and ServerInit (default 10000)
`;

/** What a person should check, per failure code, for the probe's stderr line. */
const HINTS: Partial<Record<ErrorCode, string>> = {
  RFB_ERR_AUTH_FAILED: 'wrong password or username? check --password-file / --username',
  // Used when the endpoint offers nothing vncgate speaks; otherwise probe-hint.ts names the options.
  RFB_ERR_NO_COMMON_SECURITY: 'adjust --security to one of the types the server offers',
  RFB_ERR_NOT_RFB: 'is HOST:PORT a VNC port (5900+display)?',
  RFB_ERR_SERVER_REFUSED: 'the server refused before authentication (too many failures, or busy)',
  BACKEND_ERR_REFUSED: 'nothing listens there, or a firewall rejects the connection',
  BACKEND_ERR_TIMEOUT: 'the endpoint did not answer in time (routing, firewall dropping packets, or a stuck server)',
  BACKEND_ERR_DNS: 'check the host name',
  BACKEND_ERR_TLS_UNTRUSTED: 'pass the CA that signed the endpoint certificate with --ca',
  BACKEND_ERR_TLS_HOSTNAME: 'the certificate does not name HOST; use --servername, or --no-verify-hostname for IP-less BMC certificates',
  BACKEND_ERR_ANON_TLS_FORBIDDEN: 'add --allow-anonymous-tls to accept unauthenticated TLS',
  RFB_ERR_CREDENTIALS_MISSING: 'the chosen security types need --password-file (and --username for Plain)',
  RFB_ERR_VENCRYPT_REJECTED: 'the server refused the subtype; check its TLS configuration',
};

type ProbeOptions = {
  host: string;
  port: number;
  security: BackendSecurity;
  timeoutMs: number;
  given: ProbeCredentials;
};

function parseProbeArgs(argv: string[]): ProbeOptions {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      security: { type: 'string' },
      'password-file': { type: 'string' },
      username: { type: 'string' },
      ca: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      servername: { type: 'string' },
      'no-verify-hostname': { type: 'boolean' },
      'allow-anonymous-tls': { type: 'boolean' },
      timeout: { type: 'string' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('probe takes exactly one HOST:PORT');
  const { host, port } = parseHostPort(positionals[0]!);
  const password = values['password-file'] !== undefined ? readSecretFile(values['password-file']) : undefined;
  const username = values.username;
  let security: SecurityChoice[];
  const explicit = values.security !== undefined;
  if (values.security !== undefined) {
    const names = values.security.split(',').map((s) => s.trim()).filter(Boolean);
    const bad = names.filter((n) => !isSecurityChoice(n));
    if (bad.length > 0 || names.length === 0) throw new UsageError(`unknown security type(s): ${bad.join(', ') || '(empty list)'}`);
    security = names as SecurityChoice[];
  } else {
    security = PROBE_DEFAULT_PREFERENCE.filter((s) => {
      const inner = SECURITY_CHOICES[s].inner;
      return inner === 'none' || (inner === 'vnc' && password !== undefined) || (inner === 'plain' && password !== undefined && username !== undefined);
    });
  }
  if ((values.cert === undefined) !== (values.key === undefined)) throw new UsageError('--cert and --key go together');
  const timeoutMs = values.timeout === undefined ? 10_000 : Number(values.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0 || timeoutMs > 600_000) throw new UsageError('--timeout must be 1..600000 ms');
  const readPem = (f: string | undefined): Buffer | undefined => {
    if (f === undefined) return undefined;
    try {
      return readFileSync(f);
    } catch (err) {
      throw new UsageError(`cannot read ${f}: ${(err as Error).message}`);
    }
  };
  const ca = readPem(values.ca);
  const cert = readPem(values.cert);
  const key = readPem(values.key);
  return {
    host,
    port,
    timeoutMs,
    given: {
      explicitSecurity: explicit ? security : null,
      password: password !== undefined,
      username: username !== undefined,
      allowAnonymousTls: values['allow-anonymous-tls'] === true,
    },
    security: {
      security,
      ...(password !== undefined ? { password } : {}),
      ...(username !== undefined ? { username } : {}),
      tls: {
        ...(ca ? { ca } : {}),
        ...(cert ? { cert } : {}),
        ...(key ? { key } : {}),
        ...(values.servername !== undefined ? { servername: values.servername } : {}),
        verifyHostname: values['no-verify-hostname'] !== true,
        allowAnonymous: values['allow-anonymous-tls'] === true,
      },
    },
  };
}

export async function probeCommand(argv: string[], io: CliIo): Promise<number> {
  const opts = parseProbeArgs(argv);
  const target = `${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${opts.port}`;
  const started = performance.now();
  try {
    const conn = await connectBackend({
      host: opts.host,
      port: opts.port,
      security: opts.security,
      connectTimeoutMs: opts.timeoutMs,
      handshakeTimeoutMs: opts.timeoutMs,
      log: io.log,
    });
    try {
      const { init, ms: initMs } = await exchangeInit(conn, true, opts.timeoutMs);
      const choice = SECURITY_CHOICES[conn.info.security];
      io.out({
        ok: true,
        target,
        remote: conn.remote,
        rfb: { serverVersion: conn.info.serverVersion, version: conn.info.version },
        security: {
          choice: conn.info.security,
          type: SECURITY_TYPE_NAMES[choice.type] ?? String(choice.type),
          subtype: choice.subtype === null ? null : (VENCRYPT_SUBTYPE_NAMES[choice.subtype] ?? String(choice.subtype)),
          offeredTypes: conn.info.offeredTypes.map((t) => SECURITY_TYPE_NAMES[t] ?? `unknown(${t})`),
          offeredSubtypes: conn.info.offeredSubtypes?.map((t) => VENCRYPT_SUBTYPE_NAMES[t] ?? `unknown(${t})`) ?? null,
        },
        tls: conn.tls,
        framebuffer: { width: init.width, height: init.height },
        pixelFormat: init.pixelFormat,
        desktopName: init.name,
        timings: {
          connectMs: round(conn.timings.connectMs),
          tlsMs: conn.timings.tlsMs === null ? null : round(conn.timings.tlsMs),
          handshakeMs: round(conn.timings.handshakeMs),
          serverInitMs: round(initMs),
          totalMs: round(performance.now() - started),
        },
      });
      return 0;
    } finally {
      conn.socket.destroy();
    }
  } catch (err) {
    const e = err instanceof VncgateError ? err : toVncgateError(err);
    const hint = hintFor(e, opts.given);
    io.out({ ok: false, target, error: { code: e.code, message: e.message, ...(hint ? { hint } : {}), ...(e.details ? { details: e.details } : {}) } });
    io.err(`vncgate probe ${target}: ${e.code}: ${e.message}${hint ? ` (${hint})` : ''}`);
    return 1;
  }
}

function hintFor(e: VncgateError, given: ProbeCredentials): string | undefined {
  if (e.code === 'RFB_ERR_NO_COMMON_SECURITY') return noCommonSecurityHint(e.details, given) ?? HINTS[e.code];
  if (e.code === 'RFB_ERR_CREDENTIALS_MISSING') return credentialsMissingHint(given) ?? HINTS[e.code];
  return HINTS[e.code];
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
