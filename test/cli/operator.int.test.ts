import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runVncgate } from '../support/cli.js';
import { startRedisServer } from '../support/redis.js';

/**
 * An operator's first minutes with the built command (issue 16): the version, and a busy port —
 * 6080 is nova-novncproxy's default, so everyone migrating meets it — reported as one line naming
 * the address and the option to change, exit status 1, nothing on stdout, no hang.
 */
const root = join(import.meta.dirname, '..', '..');
let busy: Server;
let busyAddr = '';

beforeAll(async () => {
  busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const a = busy.address();
  if (!a || typeof a !== 'object') throw new Error('no address');
  busyAddr = `127.0.0.1:${a.port}`;
});
afterAll(() => new Promise<void>((resolve) => busy.close(() => resolve())));

describe('vncgate --version', () => {
  it('prints the package version alone on stdout', async () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = await runVncgate([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`${pkg.version}\n`);
      expect(r.stderr).toBe('');
    }
  });
});

describe('a busy listen address', () => {
  it('serve: one line naming the address and the option, exit 1, no stack trace', async () => {
    const r = await runVncgate(['serve', '--listen', busyAddr], { env: { VNCGATE_PLAIN_HTTP: 'true', VNCGATE_LOG_LEVEL: 'error' }, timeoutMs: 20_000 });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('CONFIG_ERR_LISTEN');
    expect(lines[0]).toContain(busyAddr);
    expect(lines[0]).toMatch(/--listen|VNCGATE_LISTEN/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('serve with a second address busy gives the first one back and exits', async () => {
    const r = await runVncgate(['serve', '--listen', '127.0.0.1:0', '--listen', busyAddr], { env: { VNCGATE_PLAIN_HTTP: 'true', VNCGATE_LOG_LEVEL: 'error' }, timeoutMs: 20_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(busyAddr);
  });

  it('demo exits with the same line instead of hanging', async () => {
    const state = mkdtempSync(join(tmpdir(), 'vncgate-demo-busy-'));
    const r = await runVncgate(['demo', '--listen', busyAddr, '--state-dir', state], { timeoutMs: 20_000 });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('CONFIG_ERR_LISTEN');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('npm run -s demo (the README command) keeps npm and the build off stdout', async () => {
    const state = mkdtempSync(join(tmpdir(), 'vncgate-demo-npm-'));
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn('npm', ['run', '-s', 'demo', '--', '--listen', busyAddr, '--state-dir', state], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`npm run demo did not finish:\n${stderr}`));
      }, 120_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('CONFIG_ERR_LISTEN');
  }, 150_000);
});

describe('vncgate token create needs only what minting uses (issue 16)', () => {
  it('without TLS files it does not complain about TLS; it reports every problem at once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vncgate-token-cli-'));
    const cfg = join(dir, 'vncgate.yaml');
    writeFileSync(cfg, 'tls: {certFile: /nonexistent/tls.crt, keyFile: /nonexistent/tls.key}\nsesion: {}\n');
    const r = await runVncgate(['token', 'create', '--config', cfg, '--target', '10.0.0.5:5901', '--count', '0'], { env: { VNCGATE_REDIS_URL: '' }, timeoutMs: 20_000 });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('CONFIG_ERR_INVALID');
    expect(r.stderr).toContain('unknown option "sesion" (did you mean "session"?)');
    expect(r.stderr).toContain('redis.url');
    expect(r.stderr).toContain('--count must be a positive integer');
    expect(r.stderr).not.toContain('tls');
  });

  it('prints an https URL when the listener is TLS, even where the certificate is not readable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vncgate-token-cli-'));
    const cfg = join(dir, 'vncgate.yaml');
    writeFileSync(cfg, 'listen: ["127.0.0.1:6080"]\ntls: {certFile: /nonexistent/tls.crt, keyFile: /nonexistent/tls.key}\nbackends: {allowedTargets: ["10.0.0.0/8"]}\n');
    const redis = await startRedisServer();
    try {
      const r = await runVncgate(['token', 'create', '--config', cfg, '--target', '10.0.0.5:5901'], { env: { VNCGATE_REDIS_URL: redis.url }, timeoutMs: 20_000 });
      expect(r.code).toBe(0);
      const out = r.json[0] as { url: string };
      expect(out.url.startsWith('https://127.0.0.1:6080/')).toBe(true);
    } finally {
      await redis.dispose();
    }
  });
});

describe('installing from a packed tarball (README: Installing and running the command)', () => {
  it('npm pack carries the built command, which runs from the unpacked package', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vncgate-pack-'));
    // The build already ran (the integration tier's global setup); prepack would run it again.
    const packed = spawnSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir, '--json'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(packed.status).toBe(0);
    const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
    const paths = info!.files.map((f) => f.path);
    expect(paths).toContain('bin/vncgate.js');
    expect(paths).toContain('dist/src/cli/main.js');
    expect(paths).toContain('dist/public/vnc.html');
    expect(paths.some((p) => p.startsWith('src/') || p.startsWith('test/'))).toBe(false);
    expect(spawnSync('tar', ['-xzf', join(dir, info!.filename), '-C', dir]).status).toBe(0);
    // What `npm install -g` adds: the dependencies beside the package.
    symlinkSync(join(root, 'node_modules'), join(dir, 'package', 'node_modules'));
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    const r = spawnSync(process.execPath, [join(dir, 'package', 'bin', 'vncgate.js'), '--version'], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${pkg.version}\n`);
  }, 90_000);
});
