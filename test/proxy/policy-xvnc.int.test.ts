/**
 * Issue 18 end to end, nothing stubbed: real Chromium opens console links minted by the real
 * `vncgate token create` (a Redis-backed `vncgate serve` child process) onto a real TigerVNC Xvnc.
 * What reaches the X server is read on the X server itself:
 * - input: an `xev` window covers the top-left of the desktop and prints every KeyPress and
 *   ButtonPress it receives (without a window manager, keyboard focus follows the pointer);
 * - clipboard: `xclip -o` reads the X server's CLIPBOARD selection, which Xvnc sets from the
 *   browser's clipboard text.
 *
 * To show the relay enforces the policy whatever the page does, the input and clipboard steps run
 * in a page that never lets the console page see vncgate's text frames (an init script stops them
 * before the page's own listener), so noVNC sends keys, clicks and clipboard text as if no policy
 * existed: a user who edits the page gains nothing. The untampered page is checked separately for
 * what it shows (the view-only badge, the clipboard panel).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/browser.js';
import { runVncgate } from '../support/cli.js';
import { ManagedProcess, runCommand, stopAll } from '../support/proc.js';
import { startRedisServer, type RedisServer } from '../support/redis.js';
import { startVncgateServe, type VncgateServe } from '../support/vncgate-process.js';
import { startXvnc, type XvncServer } from '../support/xvnc.js';

const DESKTOP = 'policy-e2e';
const UI_TIMEOUT_MS = 15_000;

/** Swallows text frames before the console page's own listener sees them (a page that ignores the policy). */
const IGNORE_POLICY_SCRIPT = `(() => {
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      this.addEventListener('message', (e) => { if (typeof e.data === 'string') e.stopImmediatePropagation(); });
    }
  };
})();`;

describe('issue 18: view-only and clipboard policy against a real Xvnc, in Chromium, through vncgate serve', () => {
  let dir: string;
  let redis: RedisServer;
  let xvnc: XvncServer;
  let vncgate: VncgateServe;
  let env: Record<string, string>;
  let browser: Browser;
  let context: BrowserContext;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vncgate-policy-'));
    redis = await startRedisServer();
    xvnc = await startXvnc({ securityTypes: ['None'], desktopName: DESKTOP, geometry: '800x600' });
    const configFile = join(dir, 'vncgate.yaml');
    await writeFile(configFile, ['backends:', '  allowedTargets: ["127.0.0.0/8", "::1/128"]', '  profiles:', '    xvnc:', '      security: [none]', ''].join('\n'));
    env = { VNCGATE_CONFIG: configFile, VNCGATE_PLAIN_HTTP: 'true', VNCGATE_REDIS_URL: redis.url, VNCGATE_LOG_LEVEL: 'info' };
    vncgate = await startVncgateServe({ env });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1000, height: 760 } });
    context.setDefaultTimeout(UI_TIMEOUT_MS);
  });

  afterAll(async () => {
    await browser?.close();
    await stopAll();
    await redis?.dispose();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** A link from the real CLI, with its policy options. */
  async function mint(...policy: string[]): Promise<string> {
    const r = await runVncgate(['token', 'create', '--target', `127.0.0.1:${xvnc.port}`, '--profile', 'xvnc', ...policy], {
      env: { ...env, VNCGATE_PUBLIC_URL: vncgate.baseUrl, VNCGATE_LOG_LEVEL: 'warn' },
      timeoutMs: 20_000,
    });
    expect(r.code, r.stderr).toBe(0);
    return (r.json[0] as { url: string }).url;
  }

  /** An xev window over the desktop's top-left; resolves once it is up. */
  async function startXev(): Promise<ManagedProcess> {
    const xev = await ManagedProcess.start({
      name: 'xev',
      command: 'xev',
      args: ['-display', `:${xvnc.display}`, '-geometry', '500x400+0+0', '-event', 'keyboard', '-event', 'button'],
      outputLimitBytes: 1024 * 1024,
    });
    await expect.poll(() => xev.output(), { timeout: UI_TIMEOUT_MS }).toMatch(/Outer window is/);
    return xev;
  }

  const count = (xev: ManagedProcess, what: string): number => xev.output().split(`${what} event`).length - 1;

  /** The X server's CLIPBOARD text, or null when nothing owns it. */
  async function xClipboard(): Promise<string | null> {
    try {
      const { stdout } = await runCommand('xclip', ['-display', `:${xvnc.display}`, '-selection', 'clipboard', '-o'], { timeoutMs: 5_000 });
      return stdout.toString('utf8');
    } catch {
      return null;
    }
  }

  async function openConsole(url: string, ignorePolicy: boolean): Promise<Page> {
    const page = await context.newPage();
    if (ignorePolicy) await page.addInitScript(IGNORE_POLICY_SCRIPT);
    await page.goto(url);
    await page.locator('#status-text', { hasText: `Connected to ${DESKTOP}` }).waitFor();
    return page;
  }

  /** Clicks twice and types into the console over the xev window, then pastes `text` through the clipboard panel. */
  async function useConsole(page: Page, text: string): Promise<void> {
    const box = await page.locator('#screen canvas').boundingBox();
    if (box === null) throw new Error('no canvas');
    // The canvas is scaled to the window: (60, 60) on screen is well inside xev's 500x400 window.
    await page.mouse.click(box.x + 60, box.y + 60);
    await page.mouse.click(box.x + 80, box.y + 70);
    await page.keyboard.type('xyz');
    await page.locator('#btn-clipboard').click();
    await page.locator('#clipboard-text').fill(text);
    await page.locator('#clipboard-send').click();
    await page.waitForTimeout(1_000);
  }

  it('full control: clicks, keys and clipboard text reach the X server', async () => {
    const xev = await startXev();
    const page = await openConsole(await mint(), true);
    expect(await page.locator('#view-only-badge').isHidden()).toBe(true);
    await useConsole(page, 'full-control-paste');
    await expect.poll(() => count(xev, 'KeyPress'), { timeout: UI_TIMEOUT_MS }).toBeGreaterThanOrEqual(3);
    expect(count(xev, 'ButtonPress')).toBeGreaterThanOrEqual(2);
    await expect.poll(() => xClipboard(), { timeout: UI_TIMEOUT_MS }).toBe('full-control-paste');
    await page.close();
    await xev.stop();
  });

  it('token create --view-only --clipboard none: the same steps change nothing on the X server; drops are logged', async () => {
    const xev = await startXev();
    const before = vncgate.logLines().length;
    const page = await openConsole(await mint('--view-only', '--clipboard', 'none'), true);
    await useConsole(page, 'view-only-paste');
    // The same steps registered above within this wait; the clipboard still holds the earlier text.
    expect(count(xev, 'KeyPress')).toBe(0);
    expect(count(xev, 'ButtonPress')).toBe(0);
    expect(await xClipboard()).not.toBe('view-only-paste');
    await page.close();
    await xev.stop();
    await expect
      .poll(() => vncgate.logLines().slice(before).find((l) => l.includes('"msg":"session ended"')), { timeout: UI_TIMEOUT_MS })
      .toBeDefined();
    const ended = JSON.parse(vncgate.logLines().slice(before).find((l) => l.includes('"msg":"session ended"'))!) as { dropped?: { input: number; clipboard: number } };
    expect(ended.dropped?.input).toBeGreaterThanOrEqual(5);
    expect(ended.dropped?.clipboard).toBeGreaterThanOrEqual(1);
  });

  it('clipboard both vs none with full input: text reaches the selection only when allowed', async () => {
    const page = await openConsole(await mint('--clipboard', 'none'), true);
    await useConsole(page, 'clipboard-none-paste');
    expect(await xClipboard()).not.toBe('clipboard-none-paste');
    await page.close();
    const both = await openConsole(await mint('--clipboard', 'both'), true);
    await useConsole(both, 'clipboard-both-paste');
    await expect.poll(() => xClipboard(), { timeout: UI_TIMEOUT_MS }).toBe('clipboard-both-paste');
    await both.close();
  });

  it('the console page shows the policy vncgate sent, not the link: badge, no input controls, clipboard off; view_only=0 changes nothing', async () => {
    const url = new URL(await mint('--view-only', '--clipboard', 'none'));
    url.searchParams.set('view_only', '0');
    const page = await openConsole(url.toString(), false);
    expect(await page.locator('#view-only-badge').isVisible()).toBe(true);
    expect(await page.locator('#btn-cad').isDisabled()).toBe(true);
    expect(await page.locator('#clipboard-send').isDisabled()).toBe(true);
    await page.locator('#btn-clipboard').click();
    expect(await page.locator('#clipboard-note').textContent()).toBe('The clipboard is turned off for this console.');
    await page.close();
  });
});
