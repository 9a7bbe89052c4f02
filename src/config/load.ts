import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { VncgateError } from '../errors.js';
import type { BackendSecurity } from '../proxy/backend-connector.js';
import type { SecurityChoice } from '../rfb/index.js';
import { parseCellDbUrl } from '../nova/resolvers.js';
import { CONFIG_SCHEMA, ENV_OVERRIDES } from './schema.js';

/** The file and environment form, after defaults (mirrors CONFIG_SCHEMA). */
export type RawConfig = {
  listen: string[];
  publicUrl: string | null;
  tls: { certFile: string | null; keyFile: string | null; minVersion: 'TLSv1.2' | 'TLSv1.3'; ciphers: string | null; plainHttp: boolean };
  redis: { url: string | null; keyPrefix: string; connectTimeoutMs: number; commandTimeoutMs: number };
  tokens: { defaultTtlSeconds: number; maxTtlSeconds: number };
  api: {
    jwt: {
      hs256SecretFile: string | null;
      jwksFile: string | null;
      jwksUrl: string | null;
      issuer: string | null;
      audience: string | null;
      clockToleranceSeconds: number;
      maxLifetimeSeconds: number;
    };
  };
  origins: { check: boolean; allowed: string[]; requireOrigin: boolean; trustForwardedHeaders: boolean };
  console: { frameAncestors: string[] };
  session: {
    connectTimeoutMs: number;
    handshakeTimeoutMs: number;
    idleTimeoutMs: number;
    maxLifetimeMs: number;
    heartbeatIntervalMs: number;
    highWaterMarkBytes: number;
    maxMessageBytes: number;
    maxSessions: number;
    clientInit: 'shared' | 'exclusive' | 'browser';
  };
  limits: {
    maxConnections: number;
    maxConnectionsPerClient: number;
    tlsHandshakeTimeoutMs: number;
    requestTimeoutMs: number;
    keepAliveTimeoutMs: number;
    sessionsPerTarget: number;
    invalidTokensPerMinute: number;
    invalidTokenCooldownSeconds: number;
    leaseTtlSeconds: number;
  };
  shutdown: { drainTimeoutMs: number };
  backends: {
    allowedTargets: string[];
    defaultProfile: string;
    profiles: Record<
      string,
      {
        security: SecurityChoice[];
        passwordFile?: string;
        username?: string;
        caFile?: string;
        certFile?: string;
        keyFile?: string;
        verifyHostname: boolean;
        servername?: string;
        allowAnonymousTls: boolean;
        sessionsPerTarget?: number;
      }
    >;
  };
  keystone: {
    authUrl: string | null;
    username: string | null;
    passwordFile: string | null;
    userDomainName: string;
    projectName: string | null;
    projectDomainName: string;
    applicationCredentialId: string | null;
    applicationCredentialSecretFile: string | null;
    interface: 'public' | 'internal' | 'admin';
    region: string | null;
  };
  nova: {
    enabled: boolean;
    resolver: 'auto' | 'api' | 'db';
    url: string | null;
    auth: 'keystone' | 'noauth';
    serviceType: string;
    dbUrls: string[];
    dbUrlsFile: string | null;
    caFile: string | null;
    timeoutMs: number;
    retries: number;
    tokenReuse: 'reusable' | 'single-use' | 'one-session';
    enforceSessionTimeout: boolean;
    profile: string;
    acceptCookie: boolean;
  };
  ironic: {
    url: string | null;
    auth: 'none' | 'http_basic' | 'keystone';
    username: string | null;
    passwordFile: string | null;
    serviceType: string;
    caFile: string | null;
    timeoutMs: number;
    retries: number;
    autoEnableConsole: boolean;
    enableTimeoutMs: number;
    defaultProfile: string;
    profilesByNode: Record<string, string>;
    profilesByConsoleInterface: Record<string, string>;
    profilesByDriver: Record<string, string>;
    acceptIronicUrls: boolean;
    ironicTokenReuse: 'reusable' | 'single-use' | 'one-session';
    ironicTokenTtlSeconds: number;
  };
  metrics: { listen: string | null };
  audit: { file: string | null; includeClientAddress: boolean };
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent' };
};

/** Keystone v3 credentials with secrets read. */
export type KeystoneSettings = { authUrl: string; interface: 'public' | 'internal' | 'admin'; region: string | null } & (
  | { method: 'password'; username: string; password: string; userDomainName: string; projectName: string; projectDomainName: string }
  | { method: 'application_credential'; applicationCredentialId: string; applicationCredentialSecret: string }
);

/** Ironic settings with secrets read, or null when Ironic is not configured. */
export type IronicSettings = Readonly<{
  url: string | null;
  auth:
    | { type: 'none' }
    | { type: 'http_basic'; username: string; password: string }
    | ({ type: 'keystone'; serviceType: string } & KeystoneSettings);
  ca: Buffer | null;
}>;

/** Nova settings with secrets read, or null when Nova is not configured. */
export type NovaSettings = Readonly<{
  resolver: 'api' | 'db';
  url: string | null;
  auth: { type: 'noauth' } | ({ type: 'keystone'; serviceType: string } & KeystoneSettings);
  dbUrls: readonly string[];
  ca: Buffer | null;
}>;

export type ListenAddress = { host: string; port: number };

/** The validated, resolved, frozen configuration handed to the rest of the program. */
export type Config = Readonly<{
  raw: RawConfig;
  /** Where the file came from, if any (for messages). */
  source: string | null;
  listen: readonly ListenAddress[];
  /** Where GET /metrics listens, or null (metrics off). */
  metricsListen: ListenAddress | null;
  /** PEM material for the front end, or null when serving plain HTTP. */
  tls: Readonly<{ cert: Buffer; key: Buffer; minVersion: 'TLSv1.2' | 'TLSv1.3'; ciphers: string | null }> | null;
  publicUrl: string | null;
  profiles: ReadonlyMap<string, BackendSecurity>;
  /** Backend profiles that turn hostname verification off (logged at start-up). */
  hostnameCheckDisabled: readonly string[];
  ironic: IronicSettings | null;
  nova: NovaSettings | null;
  jwt: Readonly<{
    hs256Secret: Buffer | null;
    jwks: unknown | null;
    jwksUrl: string | null;
    issuer: string | null;
    audience: string | null;
    clockToleranceSeconds: number;
  }> | null;
}>;

export type LoadOptions = {
  /** Config file; otherwise VNCGATE_CONFIG; otherwise none (defaults + environment). */
  file?: string;
  env?: Readonly<Record<string, string | undefined>>;
  /** Applied last, e.g. from command-line flags: { listen: [...] }. */
  overrides?: Record<string, unknown>;
};

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
const validate = ajv.compile(CONFIG_SCHEMA as unknown as object);

function setPath(obj: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let cur = obj;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = value;
}

function deepMerge(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(source)) {
    const t = target[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && t && typeof t === 'object' && !Array.isArray(t)) {
      deepMerge(t as Record<string, unknown>, v as Record<string, unknown>);
    } else {
      target[k] = v;
    }
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value) && !Buffer.isBuffer(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

/** The log level for commands that load no configuration (probe, token): VNCGATE_LOG_LEVEL or warn. */
export function cliLogLevel(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const v = env.VNCGATE_LOG_LEVEL;
  return v !== undefined && /^(trace|debug|info|warn|error|fatal|silent)$/.test(v) ? v : 'warn';
}

/** Parses "host:port", "[v6]:port" or ":port" (all interfaces). */
export function parseListen(s: string): ListenAddress | null {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:[\]]*):(\d{1,5})$/.exec(s);
  if (!m || m[2] === undefined) return null;
  const port = Number(m[2]);
  if (port < 0 || port > 65535) return null;
  return { host: m[1] === '' || m[1] === undefined ? '0.0.0.0' : m[1], port };
}

/**
 * Loads the configuration: file (YAML), then environment overrides, then explicit overrides;
 * validates everything and reports every problem at once (CONFIG_ERR_INVALID, details.problems).
 */
export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.VNCGATE_CONFIG ?? null;
  const problems: string[] = [];

  let doc: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new VncgateError('CONFIG_ERR_FILE', `cannot read config file ${file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const parsed: unknown = parseYaml(text);
      if (parsed !== null && parsed !== undefined) {
        if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('top level must be a mapping');
        doc = parsed as Record<string, unknown>;
      }
    } catch (err) {
      throw new VncgateError('CONFIG_ERR_FILE', `config file ${file} is not valid YAML: ${(err as Error).message}`, { cause: err });
    }
  }
  // A single listen string in the file is accepted for convenience.
  if (typeof doc.listen === 'string') doc.listen = [doc.listen];

  for (const [name, spec] of Object.entries(ENV_OVERRIDES)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    if (spec.parse === 'list') setPath(doc, spec.path, value.split(',').map((s) => s.trim()).filter(Boolean));
    else if (spec.parse === 'boolean') {
      if (!/^(1|0|true|false|yes|no)$/i.test(value)) problems.push(`${name}: expected true or false, got ${JSON.stringify(value)}`);
      else setPath(doc, spec.path, /^(1|true|yes)$/i.test(value));
    } else if (spec.parse === 'integer') {
      if (!/^\d{1,15}$/.test(value)) problems.push(`${name}: expected a whole number, got ${JSON.stringify(value)}`);
      else setPath(doc, spec.path, Number(value));
    } else setPath(doc, spec.path, value);
  }
  if (opts.overrides) deepMerge(doc, structuredClone(opts.overrides));

  if (!validate(doc)) {
    for (const e of validate.errors ?? []) {
      const where = e.instancePath === '' ? '(top level)' : e.instancePath.slice(1).replace(/\//g, '.');
      const extra = e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})` : '';
      const allowed = e.keyword === 'enum' ? ` (one of ${(e.params as { allowedValues?: unknown[] }).allowedValues?.join(', ')})` : '';
      problems.push(`${where}: ${e.message ?? 'invalid'}${extra}${allowed}`);
    }
    throw configError(file, problems);
  }
  const raw = doc as unknown as RawConfig;

  const listen: ListenAddress[] = [];
  for (const l of raw.listen) {
    const a = parseListen(l);
    if (a) listen.push(a);
    else problems.push(`listen: ${JSON.stringify(l)} is not host:port or [ipv6]:port`);
  }
  let metricsListen: ListenAddress | null = null;
  if (raw.metrics.listen !== null) {
    metricsListen = parseListen(raw.metrics.listen);
    if (!metricsListen) problems.push(`metrics.listen: ${JSON.stringify(raw.metrics.listen)} is not host:port or [ipv6]:port`);
  }

  const readFile = (what: string, path: string): Buffer | null => {
    try {
      return readFileSync(path);
    } catch (err) {
      problems.push(`${what}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      return null;
    }
  };

  let tls: Config['tls'] = null;
  if (!raw.tls.plainHttp) {
    if (!raw.tls.certFile || !raw.tls.keyFile) {
      problems.push('tls: certFile and keyFile are required (or set tls.plainHttp: true behind a TLS-terminating proxy)');
    } else {
      const cert = readFile('tls.certFile', raw.tls.certFile);
      const key = readFile('tls.keyFile', raw.tls.keyFile);
      if (cert && key) tls = { cert, key, minVersion: raw.tls.minVersion, ciphers: raw.tls.ciphers };
    }
  }

  if (raw.publicUrl !== null) {
    try {
      const u = new URL(raw.publicUrl);
      if (u.protocol !== 'https:' && u.protocol !== 'http:') problems.push('publicUrl: must be an http(s) URL');
    } catch {
      problems.push(`publicUrl: ${JSON.stringify(raw.publicUrl)} is not a URL`);
    }
  }
  if (raw.redis.url !== null) {
    try {
      const u = new URL(raw.redis.url);
      if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') problems.push('redis.url: must start with redis:// or rediss://');
    } catch {
      problems.push('redis.url: not a URL');
    }
  }
  if (raw.tokens.defaultTtlSeconds > raw.tokens.maxTtlSeconds) problems.push('tokens.defaultTtlSeconds: exceeds tokens.maxTtlSeconds');
  for (const o of raw.origins.allowed) {
    try {
      const u = new URL(o);
      if (u.origin !== o.replace(/\/$/, '')) problems.push(`origins.allowed: ${JSON.stringify(o)} must be a bare origin like https://host[:port]`);
    } catch {
      problems.push(`origins.allowed: ${JSON.stringify(o)} is not an origin`);
    }
  }

  const profiles = new Map<string, BackendSecurity>();
  const hostnameCheckDisabled: string[] = [];
  if (!Object.hasOwn(raw.backends.profiles, 'none')) profiles.set('none', { security: ['none'] });
  for (const [name, p] of Object.entries(raw.backends.profiles)) {
    const where = `backends.profiles.${name}`;
    const password = p.passwordFile !== undefined ? readFile(`${where}.passwordFile`, p.passwordFile) : null;
    const needsPassword = p.security.some((s) => s !== 'none' && !s.endsWith('none'));
    const needsUser = p.security.some((s) => s.endsWith('plain'));
    if (needsPassword && p.passwordFile === undefined) problems.push(`${where}: security ${p.security.join(',')} needs passwordFile`);
    if (needsUser && p.username === undefined) problems.push(`${where}: Plain security types need username`);
    if ((p.certFile === undefined) !== (p.keyFile === undefined)) problems.push(`${where}: certFile and keyFile go together`);
    const anon = p.security.filter((s) => s.startsWith('vencrypt-tls'));
    if (anon.length > 0 && !p.allowAnonymousTls) problems.push(`${where}: ${anon.join(',')} need allowAnonymousTls: true (unauthenticated TLS)`);
    const ca = p.caFile !== undefined ? readFile(`${where}.caFile`, p.caFile) : null;
    const cert = p.certFile !== undefined ? readFile(`${where}.certFile`, p.certFile) : null;
    const key = p.keyFile !== undefined ? readFile(`${where}.keyFile`, p.keyFile) : null;
    if (!p.verifyHostname) hostnameCheckDisabled.push(name);
    profiles.set(name, {
      security: p.security,
      ...(password ? { password: firstLine(password) } : {}),
      ...(p.username !== undefined ? { username: p.username } : {}),
      tls: {
        ...(ca ? { ca } : {}),
        ...(cert ? { cert } : {}),
        ...(key ? { key } : {}),
        verifyHostname: p.verifyHostname,
        ...(p.servername !== undefined ? { servername: p.servername } : {}),
        allowAnonymous: p.allowAnonymousTls,
      },
    });
  }
  if (!profiles.has(raw.backends.defaultProfile)) problems.push(`backends.defaultProfile: no profile named ${JSON.stringify(raw.backends.defaultProfile)}`);

  let jwt: Config['jwt'] = null;
  const j = raw.api.jwt;
  if (j.hs256SecretFile !== null || j.jwksFile !== null || j.jwksUrl !== null) {
    const secret = j.hs256SecretFile !== null ? readFile('api.jwt.hs256SecretFile', j.hs256SecretFile) : null;
    if (secret && firstLine(secret).length < 32) problems.push('api.jwt.hs256SecretFile: the secret must be at least 32 bytes');
    let jwks: unknown = null;
    if (j.jwksFile !== null) {
      const text = readFile('api.jwt.jwksFile', j.jwksFile);
      if (text) {
        try {
          jwks = JSON.parse(text.toString('utf8'));
          if (!jwks || typeof jwks !== 'object' || !Array.isArray((jwks as { keys?: unknown }).keys)) throw new Error('no "keys" array');
        } catch (err) {
          problems.push(`api.jwt.jwksFile: not a JWK set (${(err as Error).message})`);
        }
      }
    }
    if (j.jwksUrl !== null && !/^https?:\/\//.test(j.jwksUrl)) problems.push('api.jwt.jwksUrl: must be an http(s) URL');
    if (j.issuer === null) problems.push('api.jwt.issuer: required when the token API is enabled');
    if (j.audience === null) problems.push('api.jwt.audience: required when the token API is enabled');
    jwt = {
      hs256Secret: secret ? firstLine(secret) : null,
      jwks,
      jwksUrl: j.jwksUrl,
      issuer: j.issuer,
      audience: j.audience,
      clockToleranceSeconds: j.clockToleranceSeconds,
    };
  }

  let keystone: KeystoneSettings | null | undefined;
  const getKeystone = (): KeystoneSettings | null => (keystone ??= resolveKeystone(raw.keystone, readFile, problems));
  const ironic = resolveIronic(raw.ironic, profiles, readFile, problems, getKeystone);
  const nova = resolveNova(raw.nova, profiles, readFile, problems, getKeystone);

  if (problems.length > 0) throw configError(file, problems);
  return deepFreeze({ raw, source: file, listen, metricsListen, tls, publicUrl: raw.publicUrl, profiles, hostnameCheckDisabled, ironic, nova, jwt }) as Config;
}

type ReadFile = (what: string, path: string) => Buffer | null;

function readSecret(readFile: ReadFile, problems: string[], what: string, path: string | null): string | null {
  if (path === null) {
    problems.push(`${what}: required`);
    return null;
  }
  const b = readFile(what, path);
  return b ? firstLine(b).toString('utf8') : null;
}

function resolveKeystone(k: RawConfig['keystone'], readFile: ReadFile, problems: string[]): KeystoneSettings | null {
  if (k.authUrl === null) {
    problems.push('keystone.authUrl: required for keystone auth');
    return null;
  }
  if (!/^https?:\/\//.test(k.authUrl)) problems.push('keystone.authUrl: must be an http(s) URL');
  const common = { authUrl: k.authUrl, interface: k.interface, region: k.region };
  if (k.applicationCredentialId !== null) {
    const secret = readSecret(readFile, problems, 'keystone.applicationCredentialSecretFile', k.applicationCredentialSecretFile);
    return { ...common, method: 'application_credential', applicationCredentialId: k.applicationCredentialId, applicationCredentialSecret: secret ?? '' };
  }
  if (k.username === null) problems.push('keystone: username (with passwordFile and projectName) or applicationCredentialId is required');
  if (k.projectName === null) problems.push('keystone.projectName: required with a username');
  const password = readSecret(readFile, problems, 'keystone.passwordFile', k.passwordFile);
  return {
    ...common,
    method: 'password',
    username: k.username ?? '',
    password: password ?? '',
    userDomainName: k.userDomainName,
    projectName: k.projectName ?? '',
    projectDomainName: k.projectDomainName,
  };
}

function resolveNova(
  r: RawConfig['nova'],
  profiles: ReadonlyMap<string, unknown>,
  readFile: ReadFile,
  problems: string[],
  getKeystone: () => KeystoneSettings | null,
): NovaSettings | null {
  if (!profiles.has(r.profile)) problems.push(`nova.profile: no backend profile named ${JSON.stringify(r.profile)}`);
  const dbUrls = [...r.dbUrls];
  if (r.dbUrlsFile !== null) {
    const text = readFile('nova.dbUrlsFile', r.dbUrlsFile);
    if (text) dbUrls.push(...text.toString('utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#')));
  }
  for (const u of dbUrls) {
    try {
      parseCellDbUrl(u);
    } catch {
      problems.push(`nova.dbUrls: ${redactUrl(u)} is not a mysql:// or postgres:// URL`);
    }
  }
  if (!r.enabled && r.url === null && dbUrls.length === 0) return null;
  const resolver = r.resolver === 'auto' ? (dbUrls.length > 0 ? 'db' : 'api') : r.resolver;
  if (resolver === 'db' && dbUrls.length === 0) problems.push('nova.dbUrls: required with resolver db');
  if (resolver === 'api' && r.url === null && r.auth !== 'keystone') problems.push('nova.url: required with auth noauth');
  if (r.url !== null && !/^https?:\/\//.test(r.url)) problems.push('nova.url: must be an http(s) URL');
  const ca = r.caFile !== null ? readFile('nova.caFile', r.caFile) : null;
  if (resolver === 'db' || r.auth === 'noauth') return { resolver, url: r.url, auth: { type: 'noauth' }, dbUrls: dbUrls, ca };
  const k = getKeystone();
  return { resolver, url: r.url, auth: k ? { type: 'keystone', serviceType: r.serviceType, ...k } : { type: 'noauth' }, dbUrls: dbUrls, ca };
}

/** A database URL without its password, for messages. */
export function redactUrl(u: string): string {
  return u.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}

function resolveIronic(
  r: RawConfig['ironic'],
  profiles: ReadonlyMap<string, unknown>,
  readFile: ReadFile,
  problems: string[],
  getKeystone: () => KeystoneSettings | null,
): IronicSettings | null {
  for (const [where, map] of [
    ['ironic.profilesByNode', r.profilesByNode],
    ['ironic.profilesByConsoleInterface', r.profilesByConsoleInterface],
    ['ironic.profilesByDriver', r.profilesByDriver],
  ] as const) {
    for (const [k, v] of Object.entries(map)) if (!profiles.has(v)) problems.push(`${where}.${k}: no backend profile named ${JSON.stringify(v)}`);
  }
  if (!profiles.has(r.defaultProfile)) problems.push(`ironic.defaultProfile: no backend profile named ${JSON.stringify(r.defaultProfile)}`);
  if (r.url === null && r.auth !== 'keystone') return null;
  if (r.url !== null && !/^https?:\/\//.test(r.url)) problems.push('ironic.url: must be an http(s) URL');
  const ca = r.caFile !== null ? readFile('ironic.caFile', r.caFile) : null;
  if (r.auth === 'none') return { url: r.url, auth: { type: 'none' }, ca };
  if (r.auth === 'http_basic') {
    if (r.username === null) problems.push('ironic.username: required for http_basic');
    const password = readSecret(readFile, problems, 'ironic.passwordFile', r.passwordFile);
    return { url: r.url, auth: { type: 'http_basic', username: r.username ?? '', password: password ?? '' }, ca };
  }
  const k = getKeystone();
  return k ? { url: r.url, auth: { type: 'keystone', serviceType: r.serviceType, ...k }, ca } : null;
}

function firstLine(b: Buffer): Buffer {
  const nl = b.indexOf(0x0a);
  const line = nl === -1 ? b : b.subarray(0, nl);
  return line.length > 0 && line[line.length - 1] === 0x0d ? line.subarray(0, -1) : line;
}

function configError(file: string | null, problems: string[]): VncgateError {
  const where = file ? ` (${file})` : '';
  return new VncgateError('CONFIG_ERR_INVALID', `invalid configuration${where}:\n  - ${problems.join('\n  - ')}`, { details: { problems } });
}
