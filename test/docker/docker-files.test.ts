import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config/index.js';
import { VncgateError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { buildServer, type VncgateServer } from '../../src/proxy/server.js';
import { MemoryTokenStore } from '../../src/tokens/index.js';

/**
 * The container files, checked as far as a machine without a container engine allows (issue 16):
 * the image sets no option that would override a mounted config, runs as a fixed non-root user,
 * its health check asks /readyz, compose can mint tokens and waits for a healthy Redis, and the
 * build context leaves keys, the demo's state and node_modules behind.
 */
const root = new URL('../../', import.meta.url);
const read = (p: string): string => readFileSync(new URL(p, root), 'utf8');
const dockerfile = read('docker/Dockerfile');
const compose = parseYaml(read('docker/compose.yaml')) as { services: Record<string, Record<string, unknown>> };

/** Dockerfile instructions of the final stage, continuation lines joined. */
function finalStage(text: string): { op: string; args: string }[] {
  const joined = text.replace(/\\\n/g, ' ');
  const lines = joined.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const out: { op: string; args: string }[] = [];
  for (const l of lines) {
    const m = /^(\w+)\s+(.*)$/.exec(l);
    if (!m) continue;
    if (m[1]!.toUpperCase() === 'FROM') out.length = 0;
    out.push({ op: m[1]!.toUpperCase(), args: m[2]! });
  }
  return out;
}

/** Docker's .dockerignore rules: patterns in order, the last match wins, `!` re-includes. */
function dockerIgnored(patterns: string[], path: string): boolean {
  let ignored = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const p = (negate ? raw.slice(1) : raw).replace(/^\/+|\/+$/g, '');
    const re = new RegExp(
      `^${p
        .split('/')
        .map((seg) => (seg === '**' ? '(?:.*)' : seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')))
        .join('/')
        .replace(/\(\?:\.\*\)\//g, '(?:.*/)?')}(?:/.*)?$`,
    );
    if (re.test(path)) ignored = !negate;
  }
  return ignored;
}

const ignorePatterns = read('.dockerignore')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));

describe('docker/Dockerfile', () => {
  const stage = finalStage(dockerfile);

  it('sets no VNCGATE_* option in the image, so a mounted config is not silently overridden', () => {
    const env = stage.filter((i) => i.op === 'ENV').map((i) => i.args).join(' ');
    const names = [...env.matchAll(/(VNCGATE_\w+)=/g)].map((m) => m[1]);
    expect(names).toEqual(['VNCGATE_CONFIG']);
  });

  it('ships a default config that listens on all interfaces and validates', () => {
    const file = /VNCGATE_CONFIG=(\S+)/.exec(dockerfile)?.[1];
    expect(file).toBe('/etc/vncgate/vncgate.yaml');
    expect(stage.some((i) => i.op === 'COPY' && i.args === `docker/vncgate.yaml ${file}`)).toBe(true);
    const doc = parseYaml(read('docker/vncgate.yaml')) as { listen: string[]; tls: { certFile: string; keyFile: string } };
    expect(doc.listen).toEqual(['0.0.0.0:6080']);
    // The image's default config is a valid vncgate config (with the certificate paths it names).
    const cfg = loadConfig({ env: {}, overrides: { ...doc, tls: { plainHttp: true } } });
    expect(cfg.listen[0]).toEqual({ host: '0.0.0.0', port: 6080 });
  });

  it('runs as a fixed non-root uid:gid', () => {
    const users = stage.filter((i) => i.op === 'USER').map((i) => i.args);
    expect(users).toHaveLength(1);
    expect(users[0]).toMatch(/^[1-9]\d*:[1-9]\d*$/);
  });

  it('health-checks GET /readyz with the shipped script', () => {
    const hc = stage.find((i) => i.op === 'HEALTHCHECK');
    expect(hc?.args).toContain('/opt/vncgate/healthcheck.mjs');
    expect(stage.some((i) => i.op === 'COPY' && i.args === 'docker/healthcheck.mjs /opt/vncgate/healthcheck.mjs')).toBe(true);
    expect(read('docker/healthcheck.mjs')).toContain("'https://127.0.0.1:6080/readyz'");
  });

  it('copies only files the build context keeps', () => {
    const sources = finalStage(dockerfile.split(/^FROM .* AS build$/m)[1]!.split(/^FROM /m)[0]!)
      .concat(stage)
      .filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    expect(sources.length).toBeGreaterThan(5);
    for (const s of sources) expect(dockerIgnored(ignorePatterns, s.replace(/^\.\//, '').replace(/\/$/, '')), s).toBe(false);
  });
});

describe('.dockerignore', () => {
  it('keeps keys, certificates, the demo state, builds and node_modules out of the build context', () => {
    for (const p of ['node_modules/ws/index.js', 'web/node_modules/x/y.js', '.cache/demo/dev-key.pem', 'certs/tls.key', 'certs/tls.crt', 'dist/src/cli/main.js', 'tools/loadtest/runner.ts', 'tools/cli/demo.ts', '.git/config', 'src/some.key', 'test/proxy/server.test.ts']) {
      expect(dockerIgnored(ignorePatterns, p), p).toBe(true);
    }
    for (const p of ['package.json', 'src/cli/main.ts', 'web/src/main.ts', 'bin/vncgate.js']) expect(dockerIgnored(ignorePatterns, p), p).toBe(false);
  });

  it('leaves tools/ out, so the image ships the proxy alone and compiles no tool', () => {
    // bin/vncgate.js then stands in for demo and loadtest (test/cli/entry-point.int.test.ts).
    expect(dockerIgnored(ignorePatterns, 'tools'), 'tools/').toBe(true);
    expect(dockerfile).not.toMatch(/^COPY\s+(\.\/)?tools\b/m);
  });

  it('keeps every key file git would ignore out', () => {
    // Whatever a developer has lying around under certs/ or .cache/ now.
    const untracked = execFileSync('git', ['ls-files', '--others', '--ignored', '--exclude-standard', '--directory'], { cwd: root, encoding: 'utf8' })
      .split('\n')
      .filter((p) => /\.(key|pem)$|^certs\/|^\.cache\//.test(p));
    for (const p of untracked) expect(dockerIgnored(ignorePatterns, p.replace(/\/$/, '')), p).toBe(true);
  });
});

describe('docker/compose.yaml', () => {
  const redis = compose.services.redis!;
  const vncgate = compose.services.vncgate!;

  it('health-checks Redis and starts vncgate once it is healthy', () => {
    expect((redis.healthcheck as { test: string[] }).test).toEqual(['CMD', 'redis-cli', 'ping']);
    expect(vncgate.depends_on).toEqual({ redis: { condition: 'service_healthy' } });
  });

  it('configures the token API so tokens can be minted, and runs as the key owner', () => {
    const env = vncgate.environment as Record<string, string>;
    expect(env.VNCGATE_API_JWT_SECRET_FILE).toMatch(/^\/run\/secrets\//);
    expect(env.VNCGATE_API_JWT_ISSUER).toBeTruthy();
    expect(env.VNCGATE_API_JWT_AUDIENCE).toBeTruthy();
    expect(env.VNCGATE_LISTEN).toBeUndefined();
    expect(vncgate.user).toBe('${VNCGATE_UID:-1000}:${VNCGATE_GID:-1000}');
    expect(vncgate.volumes).toContain('../certs:/run/secrets:ro');
  });

  it('gives the container longer to stop than vncgate drains', () => {
    const grace = Number(/^(\d+)s$/.exec(String(vncgate.stop_grace_period))?.[1]);
    const { readinessGraceMs, drainTimeoutMs } = loadConfig({ env: {}, overrides: { tls: { plainHttp: true } } }).raw.shutdown;
    expect(grace * 1000).toBeGreaterThan(readinessGraceMs + drainTimeoutMs);
  });
});

describe('docker/healthcheck.mjs against a running vncgate', () => {
  let srv: VncgateServer;
  let ready = true;
  beforeAll(async () => {
    const config = loadConfig({ env: {}, overrides: { listen: ['127.0.0.1:0'], tls: { plainHttp: true }, log: { level: 'silent' } } });
    const tokens = new MemoryTokenStore();
    // A token store whose readiness the test switches, as Redis coming and going would.
    const switchable = Object.assign(Object.create(tokens) as MemoryTokenStore, {
      ready: async () => {
        if (!ready) throw new VncgateError('TOKEN_ERR_STORE_UNAVAILABLE', 'token store down');
      },
    });
    srv = await buildServer({ config, tokens: switchable, log: createLogger({ level: 'silent' }) });
  });
  afterAll(async () => srv.close());

  const run = (): Promise<number | null> =>
    new Promise((resolve) => {
      const p = spawn(process.execPath, [new URL('docker/healthcheck.mjs', root).pathname], {
        env: { ...process.env, VNCGATE_HEALTHCHECK_URL: `http://${srv.addresses[0]}/readyz` },
        stdio: 'ignore',
      });
      p.on('exit', (code) => resolve(code));
    });

  it('exits 0 while /readyz answers 200 (a token store outage too, by default) and 1 once it answers 503 (draining)', async () => {
    ready = true;
    expect(await run()).toBe(0);
    // health.readinessChecksTokenStore is off: a Redis outage does not mark every container unhealthy.
    ready = false;
    expect(await run()).toBe(0);
    void srv.drain(60_000);
    expect(await run()).toBe(1);
  });
});
