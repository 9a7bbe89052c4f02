import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, viewConsole } from '../../support/browser.js';
import { VNCGATE_BIN, type CliResult } from '../../support/cli.js';

/**
 * `vncgate demo` (what `npm run demo` runs after building): prints a console URL that shows the
 * demo console in Chromium; the link works once; /demo hands out fresh ones; SIGTERM stops it.
 */
let demo: ChildProcess;
let stderr = '';
let url = '';
let browser: Browser;

beforeAll(async () => {
  // A space and a quote in the path: the printed probe command must still paste into a shell.
  const state = mkdtempSync(join(tmpdir(), "vncgate demo's-"));
  demo = spawn(process.execPath, [VNCGATE_BIN, 'demo', '--listen', '127.0.0.1:0', '--state-dir', state], { stdio: ['ignore', 'pipe', 'pipe'] });
  demo.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL within 20 s:\n${stderr}`)), 20_000);
    createInterface({ input: demo.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      resolve(line);
    });
    demo.once('exit', (code) => reject(new Error(`demo exited with ${code}:\n${stderr}`)));
  });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  if (demo && demo.exitCode === null) demo.kill('SIGKILL');
});

/** Demo's page runs on the self-signed development certificate: accept it for these pages only. */
const openConsole = (target: string) => viewConsole(browser, target, { ignoreHTTPSErrors: true, timeoutMs: 15_000 });

describe('vncgate demo', () => {
  it('prints exactly one https console URL on stdout', () => {
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/vnc\.html\?path=websockify%3Ftoken%3D[A-Za-z0-9_-]{43}$/);
  });

  it('the URL shows the moving demo console in Chromium', async () => {
    const r = await openConsole(url);
    expect(r.status).toBe('Connected to vncgate demo console');
    expect(r.lit).toBeGreaterThan(500);
  });

  it('the same link a second time shows why it no longer works', async () => {
    const r = await openConsole(url);
    expect(r.notice).toBe('This console link has expired or was already used - request a new one');
  });

  it('/demo hands out a fresh working link', async () => {
    const r = await openConsole(new URL('/demo', url).toString());
    expect(r.status).toBe('Connected to vncgate demo console');
  });

  it('issue 16: GET / on the running server shows the landing page, not a 404', async () => {
    const page = await browser.newPage({ ignoreHTTPSErrors: true });
    try {
      const response = await page.goto(new URL('/', url).toString());
      expect(response?.status()).toBe(200);
      expect(response?.headers()['content-security-policy']).toContain("default-src 'none'");
      expect(await page.locator('#landing-text').textContent()).toContain('Open a console link from your cloud dashboard.');
    } finally {
      await page.close();
    }
  });

  it('issue 16: names the demo backend and its password file, and the probe command it prints works as printed', async () => {
    const line = /^\s*(vncgate probe 127\.0\.0\.1:(\d+) --security vncauth --password-file .+)$/m.exec(stderr);
    expect(line, stderr).not.toBeNull();
    expect(stderr).toContain(`on 127.0.0.1:${line![2]}; its password is in `);
    // Run exactly the printed text through a shell, with `vncgate` being the built binary.
    const script = `vncgate() { "${process.execPath}" "${VNCGATE_BIN}" "$@"; }\n${line![1]}`;
    const r = await new Promise<Pick<CliResult, 'code' | 'stdout' | 'stderr'>>((resolve) => {
      execFile('/bin/sh', ['-c', script], { timeout: 30_000 }, (error, stdout, err) =>
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr: err }),
      );
    });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, security: { choice: 'vncauth' }, desktopName: 'vncgate demo console' });
  });

  it('stops cleanly on SIGTERM and never logged a token', async () => {
    const token = decodeURIComponent(new URL(url).searchParams.get('path')!).split('token=')[1]!;
    const exited = new Promise<number | null>((resolve) => demo.once('exit', resolve));
    demo.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 10_000))]);
    expect(code).toBe(0);
    expect(stderr).not.toContain(token);
    expect(stderr).not.toMatch(/token=/);
  });
});
