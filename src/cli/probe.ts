import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { VncgateError, toVncgateError, type ErrorCode } from '../errors.js';
import { connectBackend, exchangeInit} from '../proxy/backend-connector.js';
import type { ResolvedNode } from '../ironic/index.js';
import type { BackendSecurity } from '../target.js';
import { loadConsoleConfig, resolveNode } from './console-target.js';
import { SECURITY_CHOICES, SECURITY_TYPE_NAMES, VENCRYPT_SUBTYPE_NAMES, isSecurityChoice, type SecurityChoice } from '../rfb/index.js';
import { UsageError, parseHostPort, readSecretFile, type CliIo } from './io.js';
import { PROBE_DEFAULT_PREFERENCE, credentialsMissingHint, noCommonSecurityHint, type ProbeCredentials } from './probe-hint.js';

export const PROBE_USAGE = `Usage: vncgate probe HOST:PORT [options]
       vncgate probe --node UUID|NAME [--config FILE] [--timeout MS]

Connects to a VNC console endpoint, performs the RFB handshake as vncgate would, sends ClientInit
(shared) and reads ServerInit. Prints one JSON object on stdout; exits 0 on success, 1 on failure.
With --node, the endpoint and its backend profile come from Ironic and the configuration (FILE,
or $VNCGATE_CONFIG, and VNCGATE_* variables), exactly as \`serve\` resolves a node for a session.

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
  --node UUID|NAME       the Ironic node whose console to probe (instead of HOST:PORT)
  --config FILE          configuration for --node (Ironic, profiles)
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

/** `--node`: where and how come from Ironic and the configuration. */
type NodeProbe = { node: string; config: string | undefined; timeoutMs: number };

const SECURITY_FLAGS = ['security', 'password-file', 'username', 'ca', 'cert', 'key', 'servername', 'no-verify-hostname', 'allow-anonymous-tls'] as const;

function parseTimeout(value: string | undefined): number {
  const timeoutMs = value === undefined ? 10_000 : Number(value);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0 || timeoutMs > 600_000) throw new UsageError('--timeout must be 1..600000 ms');
  return timeoutMs;
}

function parseProbeArgs(argv: string[]): ProbeOptions | NodeProbe {
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
      node: { type: 'string' },
      config: { type: 'string' },
    },
  });
  if (values.node !== undefined) {
    if (positionals.length > 0) throw new UsageError('give either HOST:PORT or --node, not both');
    const given = SECURITY_FLAGS.filter((f) => values[f] !== undefined);
    if (given.length > 0) throw new UsageError(`--node takes its security from the backend profile Ironic's rules choose; drop --${given.join(', --')}`);
    return { node: values.node, config: values.config, timeoutMs: parseTimeout(values.timeout) };
  }
  if (values.config !== undefined) throw new UsageError('--config goes with --node');
  if (positionals.length !== 1) throw new UsageError('probe takes exactly one HOST:PORT (or --node)');
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
  const timeoutMs = parseTimeout(values.timeout);
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
  const parsed = parseProbeArgs(argv);
  if ('node' in parsed) return probeNode(parsed, io);
  return probe(parsed, io, {}, performance.now());
}

/** Resolves the node through Ironic (as a session would), then probes its endpoint with the profile chosen. */
async function probeNode(opts: NodeProbe, io: CliIo): Promise<number> {
  const config = loadConsoleConfig(opts.config);
  const started = performance.now();
  let resolved: ResolvedNode;
  try {
    resolved = await resolveNode(config, opts.node, opts.timeoutMs);
  } catch (err) {
    const e = toVncgateError(err);
    io.out({ ok: false, node: opts.node, error: { code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) } });
    io.err(`vncgate probe --node ${opts.node}: ${e.code}: ${e.message}`);
    return 1;
  }
  const sec = resolved.security;
  const given: ProbeCredentials = {
    explicitSecurity: sec.security,
    password: sec.password !== undefined,
    username: sec.username !== undefined,
    allowAnonymousTls: sec.tls?.allowAnonymous === true,
  };
  const probeOpts: ProbeOptions = { host: resolved.host, port: resolved.port, security: sec, timeoutMs: opts.timeoutMs, given };
  return probe(probeOpts, io, { node: opts.node, uuid: resolved.uuid, profile: resolved.profile }, started);
}

async function probe(opts: ProbeOptions, io: CliIo, extra: Record<string, string>, started: number): Promise<number> {
  const target = `${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${opts.port}`;
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
        ...extra,
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
    // With --node the credentials come from a backend profile, not from probe's options.
    const hint = extra['node'] === undefined ? hintFor(e, opts.given) : e.code.startsWith('RFB_ERR_') ? `check backend profile ${extra['profile']} (backends.profiles, ironic.profilesBy*)` : HINTS[e.code];
    io.out({ ok: false, ...extra, target, error: { code: e.code, message: e.message, ...(hint ? { hint } : {}), ...(e.details ? { details: e.details } : {}) } });
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
