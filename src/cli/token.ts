import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.js';
import { VncgateError } from '../errors.js';
import { NO_AUDIT } from '../observe/index.js';
import { tokenIssuedEvent } from '../proxy/audit-events.js';
import { consoleUrl } from '../proxy/console-url.js';
import { createTokenStore, parseTarget, tokenIssuer, type ConsoleTarget } from '../tokens/index.js';
import { UsageError, parseHostPort, type CliIo } from './io.js';
import { openAudit } from './serve.js';

export const TOKEN_USAGE = `Usage: vncgate token create (--target HOST:PORT [--profile NAME] | --node UUID|NAME) [--ttl SECONDS] [--count N] [--config FILE]
       vncgate token revoke TOKEN [--config FILE]

create  mints single-use console tokens in the configured Redis and prints one JSON object
        {"token", "url", "expiresAt"} per line (N lines with --count).
revoke  deletes a token; prints {"revoked": true|false}.
`;

export async function tokenCommand(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    strict: true,
    options: {
      target: { type: 'string' },
      node: { type: 'string' },
      profile: { type: 'string' },
      ttl: { type: 'string' },
      count: { type: 'string' },
      config: { type: 'string' },
    },
  });
  if (sub !== 'create' && sub !== 'revoke') throw new UsageError('expected "token create" or "token revoke"');
  const config = loadConfig(values.config !== undefined ? { file: values.config } : {});
  if (config.raw.redis.url === null) {
    throw new VncgateError(
      'CONFIG_ERR_INVALID',
      'token commands need redis.url (VNCGATE_REDIS_URL): without Redis, tokens live inside one `vncgate serve` process; use POST /v1/console-tokens there',
    );
  }
  const tokens = createTokenStore({
    redisUrl: config.raw.redis.url,
    keyPrefix: config.raw.redis.keyPrefix,
    connectTimeoutMs: config.raw.redis.connectTimeoutMs,
    commandTimeoutMs: config.raw.redis.commandTimeoutMs,
    maxTtlSeconds: config.raw.tokens.maxTtlSeconds,
    logger: io.log,
  });
  // With audit.file "-" (standard output, where the tokens go), the CLI's events go to stderr.
  const auditFile = config.raw.audit.file === '-' || config.raw.audit.file === 'stdout' ? 'stderr' : config.raw.audit.file;
  let audit = NO_AUDIT;
  try {
    audit = await openAudit(config, io.log, undefined, auditFile);
    await tokens.ready();
    if (sub === 'revoke') {
      if (positionals.length !== 1) throw new UsageError('token revoke takes one TOKEN');
      io.out({ revoked: await tokens.revoke(positionals[0]!) });
      return 0;
    }
    if ((values.target === undefined) === (values.node === undefined)) throw new UsageError('give --target HOST:PORT or --node UUID|NAME');
    if (values.node !== undefined && values.profile !== undefined) throw new UsageError('--profile goes with --target; node profiles come from the ironic section of the config');
    if (values.node !== undefined && config.ironic === null) {
      throw new VncgateError('IRONIC_ERR_NOT_CONFIGURED', '--node needs Ironic to be configured (ironic.url / VNCGATE_IRONIC_URL) for the serving processes');
    }
    if (values.profile !== undefined && !config.profiles.has(values.profile)) {
      throw new UsageError(`unknown backend profile ${JSON.stringify(values.profile)} (configured: ${[...config.profiles.keys()].join(', ')})`);
    }
    const ttl = values.ttl === undefined ? config.raw.tokens.defaultTtlSeconds : Number(values.ttl);
    const count = values.count === undefined ? 1 : Number(values.count);
    if (!Number.isInteger(count) || count < 1) throw new UsageError('--count must be a positive integer');
    let target: ConsoleTarget;
    if (values.node !== undefined) {
      const parsed = parseTarget({ kind: 'node', node: values.node });
      if (!parsed.ok) throw new UsageError(`--node: ${parsed.problems.join('; ')}`);
      target = parsed.target;
    } else {
      const { host, port } = parseHostPort(values.target!);
      target = { kind: 'static', host, port, ...(values.profile !== undefined ? { profile: values.profile } : {}) };
    }
    const base = config.publicUrl ?? defaultBase(config.listen[0], config.tls !== null);
    const issuer = tokenIssuer('cli', { sub: osUser() });
    // Large counts go in batches the store accepts in one round trip.
    for (let left = count; left > 0; ) {
      const n = Math.min(left, 1000);
      const issued = await tokens.issueMany(target, ttl, n, issuer);
      audit.write('token.issued', tokenIssuedEvent(issuer, null, target, ttl, issued));
      for (const t of issued) io.out({ token: t.token, url: consoleUrl(base, t.token), expiresAt: t.expiresAt });
      left -= n;
    }
    return 0;
  } finally {
    await tokens.close();
    await audit.close();
  }
}

/** Who ran the command, for the audit event (the login name; null if the system has none for this uid). */
function osUser(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return undefined;
  }
}

function defaultBase(l: { host: string; port: number } | undefined, tls: boolean): string {
  const host = !l || l.host === '0.0.0.0' || l.host === '::' ? 'localhost' : l.host.includes(':') ? `[${l.host}]` : l.host;
  return `${tls ? 'https' : 'http'}://${host}:${l?.port ?? 6080}/`;
}
