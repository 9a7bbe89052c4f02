import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { loadConfigWithProblems, type Config } from '../config/index.js';
import { VncgateError } from '../errors.js';
import { NO_AUDIT } from '../observe/index.js';
import { tokenIssuedEvent } from '../proxy/audit-events.js';
import { consoleUrl } from '../proxy/console-url.js';
import { allowedAddresses } from '../proxy/target-check.js';
import { parsePolicyNarrowing, type PolicyNarrowing } from '../rfb/index.js';
import { createTokenStore, parseStaticTargetText, parseTarget, tokenIssuer, type ConsoleTarget } from '../tokens/index.js';
import { UsageError, type CliIo } from './io.js';
import { tokenStoreConfig } from './token-store-config.js';
import { openAudit } from './serve.js';

export const TOKEN_USAGE = `Usage: vncgate token create (--target HOST:PORT [--profile NAME] | --node UUID|NAME) [--ttl SECONDS] [--count N]
                            [--view-only] [--clipboard none|to-browser|to-remote|both] [--max-clipboard-bytes N] [--record] [--control] [--config FILE]
       vncgate token revoke TOKEN [--config FILE]

create  mints single-use console tokens in the configured Redis and prints one JSON object
        {"token", "url", "expiresAt"} per line (N lines with --count). A --target must be
        allowed by backends.allowedTargets (a name is resolved and every address checked).
        --view-only, --clipboard and --max-clipboard-bytes narrow the profile's policy (never widen it).
        --control: on a shared console (profile sharing: true), this link's viewer takes control on joining.
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
      'view-only': { type: 'boolean' },
      clipboard: { type: 'string' },
      'max-clipboard-bytes': { type: 'string' },
      record: { type: 'boolean' },
      control: { type: 'boolean' },
      config: { type: 'string' },
    },
  });
  if (sub !== 'create' && sub !== 'revoke') throw new UsageError('expected "token create" or "token revoke"');
  // Every problem at once: the configuration's (only what minting reads: Redis, public URL,
  // profiles, the target policy) and the command line's.
  const loaded = loadConfigWithProblems({ purpose: 'tokens', ...(values.config !== undefined ? { file: values.config } : {}) });
  const config: Config | null = loaded.config;
  const configProblems = [...loaded.problems];
  if (config && config.redis === null) {
    configProblems.push('redis.url, redis.sentinels or redis.cluster (VNCGATE_REDIS_URL…): token commands write to Redis; without it, tokens live inside one `vncgate serve` process (use POST /v1/console-tokens there)');
  }
  const usage: string[] = [];
  const request = sub === 'create' ? createRequest(values, config, usage, configProblems) : null;
  if (sub === 'revoke' && positionals.length !== 1) usage.push('token revoke takes one TOKEN');
  if (configProblems.length > 0) {
    throw new VncgateError('CONFIG_ERR_INVALID', [...configProblems, ...usage].join('\n  - ').replace(/^/, '\n  - '), {
      details: { problems: [...configProblems, ...usage] },
    });
  }
  if (values.record === true && config && config.raw.recordings.dir === null) usage.push('--record needs recordings.dir in the configuration (the serving processes record)');
  if (usage.length > 0) throw new UsageError(usage.join('; '));
  if (!config || !config.redis) throw new Error('unreachable: problems were reported above');
  const tokens = createTokenStore({ ...tokenStoreConfig(config), logger: io.log });
  // With audit.file "-" (standard output, where the tokens go), the CLI's events go to stderr.
  const auditFile = config.raw.audit.file === '-' || config.raw.audit.file === 'stdout' ? 'stderr' : config.raw.audit.file;
  let audit = NO_AUDIT;
  try {
    audit = await openAudit(config, io.log, undefined, auditFile);
    await tokens.ready();
    if (sub === 'revoke') {
      io.out({ revoked: await tokens.revoke(positionals[0]!) });
      return 0;
    }
    if (!request) throw new Error('unreachable: create without a request');
    const { target, ttl, count, policy } = request;
    const control = values.control === true;
    // The same check as the token API's (the serving processes check again at connect time).
    if (target.kind === 'static') {
      await allowedAddresses(target.host, target.port, { policy: config.targetPolicy, timeoutMs: config.raw.session.connectTimeoutMs });
    }
    // Without publicUrl: the first listen address, https unless the listener is plain HTTP.
    const base = config.publicUrl ?? defaultBase(config.listen[0], !config.raw.tls.plainHttp);
    const issuer = tokenIssuer('cli', { sub: osUser() });
    // Large counts go in batches the store accepts in one round trip.
    for (let left = count; left > 0; ) {
      const n = Math.min(left, 1000);
      const issued = await tokens.issueMany(target, ttl, n, { issuedBy: issuer, policy, record: values.record === true, control });
      audit.write('token.issued', { ...tokenIssuedEvent(issuer, null, target, ttl, issued), record: values.record === true });
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

type CreateValues = {
  target?: string | undefined;
  node?: string | undefined;
  profile?: string | undefined;
  ttl?: string | undefined;
  count?: string | undefined;
  'view-only'?: boolean | undefined;
  clipboard?: string | undefined;
  'max-clipboard-bytes'?: string | undefined;
};

/** The policy options: what the token narrows, checked as the token API checks its body. */
function policyNarrowing(values: CreateValues, usage: string[]): PolicyNarrowing | undefined {
  const max = values['max-clipboard-bytes'];
  const parsed = parsePolicyNarrowing({
    viewOnly: values['view-only'],
    clipboard: values.clipboard,
    maxClipboardBytes: max === undefined ? undefined : /^\d+$/.test(max) ? Number(max) : max,
  });
  if (parsed.ok) return parsed.narrowing;
  usage.push(...parsed.problems.map((p) => `--${p.replace(/^viewOnly/, 'view-only').replace(/^maxClipboardBytes/, 'max-clipboard-bytes')}`));
  return undefined;
}

/** `token create`'s request from its options, every problem recorded (usage, or configuration). */
function createRequest(
  values: CreateValues,
  config: Config | null,
  usage: string[],
  configProblems: string[],
): { target: ConsoleTarget; ttl: number; count: number; policy: PolicyNarrowing | undefined } | null {
  if ((values.target === undefined) === (values.node === undefined)) usage.push('give --target HOST:PORT or --node UUID|NAME');
  if (values.node !== undefined && values.profile !== undefined) usage.push('--profile goes with --target; node profiles come from the ironic section of the config');
  const ironic = config?.raw.ironic;
  if (values.node !== undefined && ironic && ironic.url === null && ironic.auth !== 'keystone') {
    configProblems.push('--node needs Ironic to be configured (ironic.url / VNCGATE_IRONIC_URL) for the serving processes');
  }
  if (values.profile !== undefined && config && !config.profiles.has(values.profile)) {
    usage.push(`unknown backend profile ${JSON.stringify(values.profile)} (configured: ${[...config.profiles.keys()].join(', ')})`);
  }
  const ttl = values.ttl === undefined ? (config?.raw.tokens.defaultTtlSeconds ?? 300) : Number(values.ttl);
  if (!Number.isInteger(ttl) || ttl < 1) usage.push('--ttl must be a positive integer (seconds)');
  const count = values.count === undefined ? 1 : Number(values.count);
  if (!Number.isInteger(count) || count < 1) usage.push('--count must be a positive integer');
  let target: ConsoleTarget | null = null;
  if (values.node !== undefined && values.target === undefined) {
    const parsed = parseTarget({ kind: 'node', node: values.node });
    if (parsed.ok) target = parsed.target;
    else usage.push(`--node: ${parsed.problems.join('; ')}`);
  } else if (values.target !== undefined && values.node === undefined) {
    const parsed = parseStaticTargetText(values.target, values.profile);
    if (parsed.ok) target = parsed.target;
    else usage.push(`--target: ${parsed.problems.join('; ')}`);
  }
  const policy = policyNarrowing(values, usage);
  return target ? { target, ttl, count, policy } : null;
}
