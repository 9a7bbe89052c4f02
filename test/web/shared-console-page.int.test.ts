/**
 * A shared console in real Chromium: two pages of vncgate's own console page (real noVNC) with
 * two links to one Xvnc whose profile shares, through the built `vncgate serve` (tokens in a real
 * redis-server). Xvnc sees one client; both canvases hold the same picture, before and after the
 * screen changes; the first page has control and the second watches (badge, noVNC view-only);
 * the second asks for control with its button, the first gives it with its own, and the badges
 * follow.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/browser.js';
import { runVncgate } from '../support/cli.js';
import { runCommand, sleep, stopAll } from '../support/proc.js';
import { startRedisServer, type RedisServer } from '../support/redis.js';
import { startVncgateServe, type VncgateServe } from '../support/vncgate-process.js';
import { startXvnc, type XvncServer } from '../support/xvnc.js';

const UI_TIMEOUT_MS = 15_000;
const DESKTOP = 'shared-desktop';

/** A digest of the screen canvas's pixels (FNV-1a over RGBA), and its size. */
const CANVAS_DIGEST = `(() => {
  const c = document.querySelector('#screen canvas');
  if (!c || !c.width) return null;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let h = 0x811c9dc5;
  for (let i = 0; i < d.length; i++) h = Math.imul(h ^ d[i], 16777619) >>> 0;
  return c.width + 'x' + c.height + ':' + h.toString(16) + ':' + d[0] + ',' + d[1] + ',' + d[2];
})()`;

describe('shared console in Chromium: two pages, one Xvnc connection', () => {
  let redis: RedisServer;
  let xvnc: XvncServer;
  let vncgate: VncgateServe;
  let dir: string;
  let env: Record<string, string>;
  let browser: Browser;
  let context: BrowserContext;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vncgate-shared-page-'));
    redis = await startRedisServer();
    xvnc = await startXvnc({ securityTypes: ['None'], desktopName: DESKTOP, geometry: '640x480', extraArgs: ['-retro'] });
    const configFile = join(dir, 'vncgate.yaml');
    await writeFile(configFile, ['backends:', '  allowedTargets: ["127.0.0.0/8"]', '  profiles:', '    shared:', '      security: [none]', '      sharing: true', ''].join('\n'));
    env = { VNCGATE_CONFIG: configFile, VNCGATE_PLAIN_HTTP: 'true', VNCGATE_REDIS_URL: redis.url };
    vncgate = await startVncgateServe({ env });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 900, height: 700 } });
    context.setDefaultTimeout(UI_TIMEOUT_MS);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await stopAll();
    await redis?.dispose();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  async function open(): Promise<Page> {
    const r = await runVncgate(['token', 'create', '--target', `127.0.0.1:${xvnc.port}`, '--profile', 'shared'], {
      env: { ...env, VNCGATE_PUBLIC_URL: vncgate.baseUrl, VNCGATE_LOG_LEVEL: 'warn' },
      timeoutMs: 20_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const page = await context.newPage();
    await page.goto((r.json[0] as { url: string }).url);
    await page.locator('#status-text', { hasText: `Connected to ${DESKTOP}` }).waitFor();
    return page;
  }

  async function sameCanvas(a: Page, b: Page, colour: string): Promise<string> {
    const end = Date.now() + UI_TIMEOUT_MS;
    let last: [string | null, string | null] = [null, null];
    while (Date.now() < end) {
      last = [await a.evaluate<string | null>(CANVAS_DIGEST), await b.evaluate<string | null>(CANVAS_DIGEST)];
      if (last[0] !== null && last[0] === last[1] && last[0].endsWith(colour)) return last[0];
      await sleep(200);
    }
    throw new Error(`canvases differ: ${last[0]} / ${last[1]} (want colour ${colour})`);
  }

  it('both pages show the same picture; control moves by the buttons', async () => {
    const first = await open();
    await first.locator('#share-badge', { hasText: 'you have control' }).waitFor();
    const second = await open();
    await second.locator('#share-badge', { hasText: 'Shared: 2 viewers, watching' }).waitFor();
    await first.locator('#share-badge', { hasText: 'Shared: 2 viewers, you have control' }).waitFor();
    expect(await second.evaluate<string | undefined>('document.body.dataset.viewOnly')).toBe('true');
    expect(await first.evaluate<string | undefined>('document.body.dataset.viewOnly')).toBe('false');

    const ss = await runCommand('ss', ['-tnH', 'state', 'established', `( sport = :${xvnc.port} )`]);
    expect(ss.stdout.toString().split('\n').filter((l) => l.trim() !== '')).toHaveLength(1);

    await runCommand('xsetroot', ['-solid', '#204080'], { env: { ...process.env, DISPLAY: `:${xvnc.display}` } });
    expect(await sameCanvas(first, second, ':32,64,128')).toMatch(/^640x480:/);

    await second.locator('#btn-control', { hasText: 'Request control' }).click();
    await first.locator('#btn-control', { hasText: 'Give control (1 waiting)' }).click();
    await second.locator('#share-badge', { hasText: 'you have control' }).waitFor();
    await first.locator('#share-badge', { hasText: 'watching' }).waitFor();
    expect(await second.evaluate<string | undefined>('document.body.dataset.viewOnly')).toBe('false');
    expect(await first.evaluate<string | undefined>('document.body.dataset.viewOnly')).toBe('true');

    await runCommand('xsetroot', ['-solid', '#806040'], { env: { ...process.env, DISPLAY: `:${xvnc.display}` } });
    await sameCanvas(first, second, ':128,96,64');
    await first.close();
    await second.locator('#share-badge', { hasText: 'Shared: 1 viewer, you have control' }).waitFor();
    await second.close();
  }, 120_000);
});
