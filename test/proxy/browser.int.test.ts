/**
 * End to end, nothing stubbed: headless Chromium opens a console link minted by the real
 * `vncgate token create`, loads the console page from a real `vncgate serve` child process over
 * TLS, and vncgate authenticates to a real Xvnc with the VNC password from its backend profile
 * while the browser is offered security None. Tokens live in a real redis-server.
 *
 * Then the same link a second time: the single-use token is spent, and the page says so with the
 * proxy's SecurityResult reason. Last, every line vncgate logged is searched for the token.
 *
 * Screenshots of both pages go to /tmp/vncgate-e2e/ (override with VNCGATE_E2E_SCREENSHOT_DIR).
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/browser.js';
import { runVncgate } from '../support/cli.js';
import { getTestPki, type TestPki } from '../support/pki.js';
import { stopAll } from '../support/proc.js';
import { startRedisServer, type RedisServer } from '../support/redis.js';
import { startVncgateServe, type VncgateServe } from '../support/vncgate-process.js';
import { startXvnc, type XvncServer } from '../support/xvnc.js';

const DESKTOP_NAME = 'vncgate-e2e-desktop';
/** src/errors.ts TOKEN_ERR_INVALID, as the person at the console must read it. */
const USED_LINK_REASON = 'This console link has expired or was already used - request a new one';
const UI_TIMEOUT_MS = 15_000;
const SCREENSHOT_DIR = process.env['VNCGATE_E2E_SCREENSHOT_DIR'] ?? '/tmp/vncgate-e2e';

type Minted = { token: string; url: string; expiresAt: string };

/** README "Logs": sessions are correlated by the first 12 hex digits of the token's SHA-256. */
function tokenLogId(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex').slice(0, 12);
}

type CanvasStats = { width: number; height: number; pixels: number; distinctColours: number; dominantShare: number };

/** Reads the framebuffer canvas back: its size, how many colours it holds, the commonest one's share. */
const CANVAS_STATS = `(() => {
  const canvas = document.querySelector('#screen canvas');
  if (!canvas || canvas.width === 0 || canvas.height === 0) return null;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const counts = new Map();
  for (let i = 0; i < data.length; i += 4) {
    const key = (data[i] << 24 | data[i + 1] << 16 | data[i + 2] << 8 | data[i + 3]) >>> 0;
    counts.set(key, (counts.get(key) || 0) + 1);
  }
  const pixels = data.length / 4;
  return { width: canvas.width, height: canvas.height, pixels, distinctColours: counts.size,
           dominantShare: Math.max(...counts.values()) / pixels };
})()`;

/** Not blank: at least two colours, and the commonest covers at most 90 % (Xvnc -retro: stipple). */
function looksDrawn(s: CanvasStats | null): boolean {
  return s !== null && s.distinctColours >= 2 && s.dominantShare <= 0.9;
}

describe('console in Chromium through the real vncgate (TLS, Redis, Xvnc VncAuth)', () => {
  let pki: TestPki;
  let redis: RedisServer;
  let xvnc: XvncServer;
  let vncgate: VncgateServe;
  let dir: string;
  let env: Record<string, string>;
  let browser: Browser;
  let context: BrowserContext;
  let minted: Minted;
  let connectedPage: Page | undefined;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    pki = await getTestPki();
    dir = await mkdtemp(join(tmpdir(), 'vncgate-e2e-'));
    await mkdir(SCREENSHOT_DIR, { recursive: true });
    redis = await startRedisServer();
    // -retro: the classic stipple root, so a drawn screen is not plain black.
    xvnc = await startXvnc({ securityTypes: ['VncAuth'], desktopName: DESKTOP_NAME, geometry: '1024x768', extraArgs: ['-retro'] });
    if (xvnc.password === undefined) throw new Error('Xvnc VncAuth without a password');

    const passwordFile = join(dir, 'xvnc.pw');
    await writeFile(passwordFile, `${xvnc.password}\n`, { mode: 0o600 });
    const configFile = join(dir, 'vncgate.yaml');
    await writeFile(
      configFile,
      ['backends:', '  allowedTargets: ["127.0.0.0/8", "::1/128"]', '  profiles:', '    xvnc:', '      security: [vncauth]', `      passwordFile: ${JSON.stringify(passwordFile)}`, ''].join('\n'),
    );
    env = {
      VNCGATE_CONFIG: configFile,
      VNCGATE_TLS_CERT_FILE: pki.server.cert.path,
      VNCGATE_TLS_KEY_FILE: pki.server.key.path,
      VNCGATE_REDIS_URL: redis.url,
    };
    vncgate = await startVncgateServe({ env });
    expect(vncgate.baseUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);

    // The real CLI, as an operator (or Ironic) would mint a link; it writes to the same Redis.
    const r = await runVncgate(['token', 'create', '--target', `127.0.0.1:${xvnc.port}`, '--profile', 'xvnc'], {
      env: { ...env, VNCGATE_PUBLIC_URL: vncgate.baseUrl, VNCGATE_LOG_LEVEL: 'warn' },
      timeoutMs: 20_000,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toHaveLength(1);
    minted = r.json[0] as Minted;
    expect(minted.url.startsWith(`${vncgate.baseUrl}vnc.html?`)).toBe(true);

    // Trust exactly vncgate's test certificate (by its public key), not every certificate as
    // ignoreHTTPSErrors would: Chromium takes no CA file, and an NSS database needs certutil.
    // Without this pin, or with another key's, the page load fails ERR_CERT_AUTHORITY_INVALID.
    browser = await launchChromium(pki.server.cert.pem);
    context = await browser.newContext({ viewport: { width: 1100, height: 860 } });
    context.setDefaultTimeout(UI_TIMEOUT_MS);
  });

  afterAll(async () => {
    await browser?.close();
    await stopAll();
    await redis?.dispose();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  async function openConsole(url: string): Promise<Page> {
    const page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    const response = await page.goto(url);
    // Served over TLS that Chromium verified against the pinned key (no interstitial, a 200).
    expect(response?.status()).toBe(200);
    expect(response?.url().startsWith('https://127.0.0.1:')).toBe(true);
    return page;
  }

  it('shows the Xvnc desktop: status names it, the canvas is drawn, the token leaves the address bar', async () => {
    const page = await openConsole(minted.url);
    const status = page.locator('#status-text');
    await status.filter({ hasText: `Connected to ${DESKTOP_NAME}` }).waitFor();
    expect(await status.textContent()).toBe(`Connected to ${DESKTOP_NAME}`);
    expect(await page.locator('#notice').isHidden()).toBe(true);

    // Framebuffer updates follow ServerInit; poll the canvas until it holds a picture.
    let stats: CanvasStats | null = null;
    const deadline = Date.now() + UI_TIMEOUT_MS;
    while (Date.now() < deadline) {
      stats = await page.evaluate<CanvasStats | null>(CANVAS_STATS);
      if (looksDrawn(stats)) break;
      await page.waitForTimeout(100);
    }
    expect(stats).toMatchObject({ width: 1024, height: 768 });
    expect(stats?.distinctColours, JSON.stringify(stats)).toBeGreaterThanOrEqual(2);
    expect(stats?.dominantShare, JSON.stringify(stats)).toBeLessThanOrEqual(0.9);

    // The page removed the token (and only the token) from the address bar and history entry.
    expect(page.url()).not.toContain(minted.token);
    expect(page.url()).not.toContain(encodeURIComponent(minted.token));
    expect(page.url()).not.toMatch(/token/i);
    expect(page.url()).toBe(`${vncgate.baseUrl}vnc.html?path=websockify`);

    await page.screenshot({ path: join(SCREENSHOT_DIR, 'connected.png') });
    // Stays open while the link is tried again: the running session is not what refuses it.
    connectedPage = page;
  });

  it('refuses the same link a second time with the used-link reason', async () => {
    const page = await openConsole(minted.url);
    const notice = page.locator('#notice-text');
    await notice.waitFor({ state: 'visible' });
    expect(await notice.textContent()).toBe(USED_LINK_REASON);
    expect(await page.locator('#notice-title').textContent()).toBe('Console unavailable');
    expect(await page.locator('#status-text').textContent()).toBe('Not connected');
    // A spent token cannot come back: no Reconnect button.
    expect(await page.locator('#notice-retry').isHidden()).toBe(true);
    expect(page.url()).toBe(`${vncgate.baseUrl}vnc.html?path=websockify`);
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'used-link.png') });

    // The first page is still connected to the desktop.
    expect(await connectedPage?.locator('#status-text').textContent()).toBe(`Connected to ${DESKTOP_NAME}`);
    expect(pageErrors).toEqual([]);
  });

  it('never logs the token, in any form', async () => {
    // Closing Chromium also drops its idle and pre-connected sockets, which would otherwise keep
    // vncgate from exiting on SIGTERM (its server close waits for connections that never sent a
    // request).
    await browser.close();
    const id = tokenLogId(minted.token);
    // Both sessions have ended (the second one long ago) once two "session ended" lines carry the id.
    const ended = (): number =>
      vncgate.logLines().filter((l) => l.includes('"session ended"') && l.includes(`"tokenId":"${id}"`)).length;
    await expect.poll(ended, { timeout: 10_000, interval: 50 }).toBe(2);
    await vncgate.stop(); // everything flushed: the process has exited
    expect(vncgate.process.exitInfo).toEqual({ code: 0, signal: null });

    const lines = vncgate.logLines();
    // The check below means something only if the sessions were logged at all.
    expect(lines.some((l) => l.includes('"session started"') && l.includes(`"tokenId":"${id}"`))).toBe(true);
    const forms = [minted.token, encodeURIComponent(minted.token), encodeURIComponent(encodeURIComponent(minted.token))];
    const leaks = lines.filter((l) => forms.some((f) => l.includes(f)) || l.includes('token=') || /token%3d/i.test(l));
    expect(leaks).toEqual([]);
  });
});
