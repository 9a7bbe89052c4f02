/**
 * The demo screen in real noVNC (the @novnc/novnc package) in real Chromium, through a minimal
 * test-only WebSocket⇄TCP relay: what a person sees with `npm run demo`. Reads noVNC's canvas back
 * and compares it with the same screen rendered in memory.
 *
 * Needs /usr/bin/chromium; without it the suite fails (it does not skip).
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { WebSocketServer } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DemoScreen } from '../../../tools/synthetic/demo-screen.js';
import { startSyntheticServer, type SyntheticServer } from '../../../tools/synthetic/index.js';
import { launchChromium } from '../../support/browser.js';

const UI_TIMEOUT_MS = 15_000;
const NOVNC_ROOT = path.resolve(import.meta.dirname, '../../../node_modules/@novnc/novnc');
const W = 800;
const H = 600;

const PAGE = `<!doctype html><html><body style="margin:0"><div id="screen" style="width:${W}px;height:${H}px"></div>
<script type="module">
import RFB from '/novnc/core/rfb.js';
const params = new URLSearchParams(location.search);
window.events = [];
const rfb = new RFB(document.getElementById('screen'), 'ws://' + location.host + '/ws/' + params.get('target'),
  { credentials: { password: params.get('password') ?? '' } });
rfb.addEventListener('connect', () => window.events.push('connect'));
rfb.addEventListener('disconnect', (e) => window.events.push('disconnect'));
rfb.addEventListener('securityfailure', (e) => window.events.push('securityfailure'));
rfb.addEventListener('desktopname', (e) => window.events.push('name:' + e.detail.name));
</script></body></html>`;

type Region = { x: number; y: number; width: number; height: number };

describe('synthetic demo in noVNC (Chromium)', () => {
  let plain: SyntheticServer;
  let withPassword: SyntheticServer;
  let http: Server;
  let wss: WebSocketServer;
  let browser: Browser;
  let base = '';

  beforeAll(async () => {
    plain = await startSyntheticServer({ mode: 'demo', width: W, height: H, desktopName: 'noVNC demo test' });
    withPassword = await startSyntheticServer({ mode: 'demo', width: W, height: H, security: ['vncauth'], password: 'sesame' });
    const targets: Record<string, number> = { plain: plain.port, password: withPassword.port };
    http = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname === '/') {
        res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
        return;
      }
      const rel = path.normalize(url.pathname.replace(/^\/novnc\//, ''));
      if (!url.pathname.startsWith('/novnc/') || rel.startsWith('..')) {
        res.writeHead(404).end();
        return;
      }
      readFile(path.join(NOVNC_ROOT, rel)).then(
        (body) => res.writeHead(200, { 'content-type': 'text/javascript' }).end(body),
        () => res.writeHead(404).end(),
      );
    });
    wss = new WebSocketServer({ server: http });
    wss.on('connection', (ws, req) => {
      const port = targets[(req.url ?? '').replace(/^\/ws\//, '')];
      if (port === undefined) return ws.close();
      const tcp = connect({ host: '127.0.0.1', port });
      tcp.on('data', (d) => ws.send(d));
      tcp.on('error', () => ws.close());
      tcp.on('close', () => ws.close());
      ws.on('message', (d: Buffer) => tcp.write(d));
      ws.on('close', () => tcp.destroy());
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const addr = http.address();
    if (addr === null || typeof addr === 'string') throw new Error('no address');
    base = `http://127.0.0.1:${addr.port}`;
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    for (const c of wss?.clients ?? []) c.terminate();
    wss?.close();
    await new Promise<void>((resolve) => (http ? http.close(() => resolve()) : resolve()));
    await plain?.close();
    await withPassword?.close();
  });

  async function open(query: string): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: W, height: H } });
    page.setDefaultTimeout(UI_TIMEOUT_MS);
    await page.goto(`${base}/?${query}`);
    // The page's module script defines window.events; until it has run the predicate must wait, not throw.
    await page.waitForFunction("Array.isArray(window.events) && window.events.includes('connect')");
    return page;
  }

  /** RGBA bytes of a region of noVNC's canvas. */
  async function canvasRegion(page: Page, r: Region): Promise<number[]> {
    // A string, as this file is compiled without the DOM library.
    return page.evaluate<number[]>(
      `Array.from(document.querySelector('#screen canvas').getContext('2d').getImageData(${r.x}, ${r.y}, ${r.width}, ${r.height}).data)`,
    );
  }

  async function events(page: Page): Promise<string[]> {
    return page.evaluate<string[]>('window.events');
  }

  /** The same region of an in-memory DemoScreen, as RGBA. */
  function referenceRegion(screen: DemoScreen, r: Region): number[] {
    const out: number[] = [];
    for (let y = r.y; y < r.y + r.height; y++) {
      for (let x = r.x; x < r.x + r.width; x++) {
        const rgb = screen.canvas.rgbAt(x, y);
        out.push((rgb >> 16) & 0xff, (rgb >> 8) & 0xff, rgb & 0xff, 255);
      }
    }
    return out;
  }

  it('shows the test screen, moving, with the typed keys', async () => {
    const page = await open('target=plain');
    try {
      expect(await events(page)).toContain('name:noVNC demo test');
      const ref = new DemoScreen({ width: W, height: H, desktopName: 'noVNC demo test', now: 0 });
      const { bars, track, keys, cell } = ref.layout;
      // The colour bars arrive exactly (noVNC asked for 32 bpp true colour; we honoured it).
      const barsSample = { x: 0, y: 10, width: W, height: 1 };
      const wantBars = referenceRegion(ref, barsSample).join();
      await expect.poll(async () => (await canvasRegion(page, barsSample)).join() === wantBars, { timeout: 5_000 }).toBe(true);
      expect(bars.height).toBeGreaterThan(10);

      // The box moves.
      const first = await canvasRegion(page, track);
      await expect.poll(async () => (await canvasRegion(page, track)).join() !== first.join(), { timeout: 3_000 }).toBe(true);

      // Typed keys appear ("keys> " is six cells; "hi" fills the next two).
      await page.locator('#screen canvas').click({ position: { x: 10, y: H - 10 } });
      await page.keyboard.type('hi');
      ref.key(true, 0x68);
      ref.key(true, 0x69);
      const typed = { x: keys.x + 6 * cell.width, y: keys.y, width: 2 * cell.width, height: cell.height };
      const want = referenceRegion(ref, typed).join();
      await expect.poll(async () => (await canvasRegion(page, typed)).join() === want, { timeout: 5_000 }).toBe(true);
    } finally {
      await page.close();
    }
  });

  it('connects with VNC authentication', async () => {
    const page = await open('target=password&password=sesame');
    try {
      expect(await events(page)).toContain('name:vncgate demo console');
    } finally {
      await page.close();
    }
  });
});
