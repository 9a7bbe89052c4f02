/**
 * An in-process vncgate (buildServer) with the token API on, for tests that drive the server
 * through `app.inject` or real sockets without spawning the built CLI: a JWT secret file, a bearer
 * signer for it, a config with the defaults those tests share, and a log sink that keeps lines.
 */
import { SignJWT } from 'jose';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig, type Config } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import { buildServer, type VncgateServer } from '../../src/proxy/server.js';
import { MemoryTokenStore, type TokenStore } from '../../src/tokens/index.js';

export const TEST_JWT_SECRET = 'a-test-secret-that-is-long-enough-0123456789';
export const TEST_JWT_ISSUER = 'https://keystone.test';
export const TEST_JWT_AUDIENCE = 'vncgate';

let secretFile: string | undefined;

/** A file holding TEST_JWT_SECRET (written once per test file's process). */
export function testJwtSecretFile(): string {
  if (secretFile === undefined) {
    secretFile = join(mkdtempSync(join(tmpdir(), 'vncgate-jwt-')), 'jwt');
    writeFileSync(secretFile, `${TEST_JWT_SECRET}\n`);
  }
  return secretFile;
}

export type TestJwtOptions = {
  sub?: string;
  iss?: string;
  aud?: string;
  /** As jose takes it ('5m', or seconds since the epoch); null leaves `exp` out. */
  exp?: string | number | null | undefined;
  /** Seconds since the epoch; null leaves `iat` out; absent means now. */
  iat?: number | null | undefined;
  secret?: string;
};

/** An HS256 bearer JWT the in-process server accepts (unless the options say otherwise). */
export async function signTestJwt(claims: Record<string, unknown> = {}, opts: TestJwtOptions = {}): Promise<string> {
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(opts.iss ?? TEST_JWT_ISSUER)
    .setAudience(opts.aud ?? TEST_JWT_AUDIENCE)
    .setSubject(opts.sub ?? 'operator');
  if (opts.iat !== null) {
    if (opts.iat === undefined) jwt.setIssuedAt();
    else jwt.setIssuedAt(opts.iat);
  }
  const exp = opts.exp === undefined ? '5m' : opts.exp;
  if (exp !== null) jwt.setExpirationTime(exp);
  return jwt.sign(new TextEncoder().encode(opts.secret ?? TEST_JWT_SECRET));
}

/** A pino destination that keeps every line, for tests that read the log. */
export function captureLog(): { lines: string[]; sink: Writable } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  return { lines, sink };
}

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `over` merged into `base`, objects key by key (arrays and scalars replace). */
function merged(base: Plain, over: Plain): Plain {
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isPlain(v) && isPlain(out[k]) ? merged(out[k] as Plain, v) : v;
  return out;
}

export type InProcessOptions = {
  /** Config overrides, merged over the shared defaults. */
  overrides?: Plain;
  /** Let sessions dial loopback (backends.allowedTargets); false keeps the default target policy. Default true. */
  allowLoopback?: boolean;
  /** Turn the token API on (api.jwt with TEST_JWT_SECRET). Default true. */
  tokenApi?: boolean;
  tokens?: TokenStore;
  /** Log level of the config and the logger; default 'silent'. */
  logLevel?: 'silent' | 'trace' | 'debug' | 'info' | 'warn' | 'error';
  /** Where log lines go (see captureLog); default the logger's own destination. */
  logSink?: Writable;
};

/** The config shared by the in-process tests: plain HTTP on a free loopback port, the token API with TEST_JWT_SECRET. */
export function inProcessConfig(opts: Pick<InProcessOptions, 'overrides' | 'allowLoopback' | 'tokenApi' | 'logLevel'> = {}): Config {
  const base: Plain = {
    listen: ['127.0.0.1:0'],
    tls: { plainHttp: true },
    ...(opts.tokenApi === false ? {} : { api: { jwt: { hs256SecretFile: testJwtSecretFile(), issuer: TEST_JWT_ISSUER, audience: TEST_JWT_AUDIENCE } } }),
    ...(opts.allowLoopback === false ? {} : { backends: { allowedTargets: ['127.0.0.0/8', '::1/128'] } }),
    log: { level: opts.logLevel ?? 'silent' },
  };
  return loadConfig({ env: {}, overrides: merged(base, opts.overrides ?? {}) });
}

/** buildServer over inProcessConfig; the caller closes it. */
export async function startInProcess(opts: InProcessOptions = {}): Promise<{ srv: VncgateServer; tokens: TokenStore; config: Config }> {
  const config = inProcessConfig(opts);
  const tokens = opts.tokens ?? new MemoryTokenStore();
  const level = opts.logLevel ?? 'silent';
  const log = opts.logSink ? createLogger({ level, destination: opts.logSink }) : createLogger({ level });
  const srv = await buildServer({ config, tokens, log });
  return { srv, tokens, config };
}
