/**
 * The console page's control channel (web/src/control-channel.ts) in real Chromium with the real
 * noVNC, against a real Xvnc, through a test-only relay that speaks vncgate.v1: it selects the
 * subprotocol, sends a policy text frame first and then a text frame between every pair of RFB
 * frames. noVNC must only ever see the binary frames (the desktop is drawn), and the page must
 * show the policy it was sent: the view-only badge, noVNC's own view-only flag (no key or pointer
 * message leaves the page), the clipboard panel's state. The production server side is tested in
 * test/proxy/control-channel.test.ts and, end to end, test/proxy/policy-xvnc.int.test.ts.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerConsolePage } from '../../src/web/index.js';
import { launchChromium } from '../support/browser.js';
import { startXvnc, type XvncServer } from '../support/xvnc.js';

const UI_TIMEOUT_MS = 15_000;
const root = path.resolve(import.meta.dirname, '../..');
// RFC 6143 §7.5.4-7.5.6: the messages a view-only page must not send.
const KEY_EVENT = 4;
const POINTER_EVENT = 5;
const CLIENT_CUT_TEXT = 6;
const QEMU_CLIENT_MESSAGE = 255;

/** Marks a ClientCutText that is no clipboard text: an Extended Clipboard caps/request/peek. */
const CLIPBOARD_OTHER = -6;

/**
 * ClientCutText carrying text toward the console: plain (§7.5.6, length ≥ 0), or the Extended
 * Clipboard's notify/provide (negative length, action in the flags' top byte; a caps message sets
 * the caps bit and every action it supports). noVNC answers
 * Xvnc's Extended Clipboard caps with its own caps even when view-only; that writes nothing.
 */
function isClipboardWrite(m: Buffer): boolean {
  if (m.length < 8 || m.readInt32BE(4) >= 0) return true;
  const action = m.length >= 12 ? m.readUInt32BE(8) >>> 24 : 0;
  // Caps (bit 0) lists every action the sender supports; otherwise one action is set.
  return (action & 0x01) === 0 && (action & (0x08 | 0x10)) !== 0;
}

type Policy = { viewOnly: boolean; clipboard: string; maxClipboardBytes: number };
type Relayed = { protocol: string; textFromPage: string[]; types: number[] };

describe('console page control channel in Chromium (vncgate.v1 against Xvnc)', () => {
  let webRoot: string;
  let xvnc: XvncServer;
  let app: FastifyInstance;
  let base: string;
  let browser: Browser;
  let context: BrowserContext;
  const policies = new Map<string, Policy>();
  const sessions = new Map<string, Relayed>();

  beforeAll(async () => {
    webRoot = await mkdtemp(path.join(os.tmpdir(), 'vncgate-web-ctl-'));
    await promisify(execFile)(process.execPath, [path.join(root, 'scripts/build-web.mjs'), '--outdir', webRoot]);
    xvnc = await startXvnc({ securityTypes: ['None'], desktopName: 'ctl-desktop', geometry: '640x480', extraArgs: ['-retro'] });
    app = Fastify({ forceCloseConnections: true });
    await app.register(websocket, { options: { handleProtocols: (p: Set<string>) => (p.has('vncgate.v1') ? 'vncgate.v1' : false) } });
    app.get('/websockify', { websocket: true }, (socket: WebSocket, request) => {
      const token = new URL(request.url, 'http://x').searchParams.get('token') ?? '';
      const relayed: Relayed = { protocol: socket.protocol, textFromPage: [], types: [] };
      sessions.set(token, relayed);
      const policy = policies.get(token);
      if (policy !== undefined) socket.send(JSON.stringify({ type: 'policy', ...policy }));
      const tcp = net.connect(xvnc.port, '127.0.0.1');
      socket.on('message', (data: Buffer, isBinary: boolean) => {
        if (!isBinary) {
          relayed.textFromPage.push(data.toString());
          return;
        }
        relayed.types.push(data[0] === CLIENT_CUT_TEXT && !isClipboardWrite(data) ? CLIPBOARD_OTHER : (data[0] ?? -1));
        tcp.write(data);
      });
      tcp.on('data', (data) => {
        socket.send(data);
        // A control message of a type the page does not know, between every two RFB frames.
        socket.send(JSON.stringify({ type: 'unknown-to-the-page', n: data.length }));
      });
      tcp.on('close', () => socket.close());
      tcp.on('error', () => socket.terminate());
      socket.on('close', () => tcp.destroy());
    });
    registerConsolePage(app, { webRoot });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 900, height: 700 } });
    context.setDefaultTimeout(UI_TIMEOUT_MS);
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await xvnc?.stop();
    if (webRoot !== undefined) await rm(webRoot, { recursive: true, force: true });
  });

  async function open(token: string, extra = ''): Promise<{ page: Page; errors: string[] }> {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${base}/vnc.html?path=websockify%3Ftoken%3D${token}${extra}`);
    await page.locator('#status-text', { hasText: 'Connected to ctl-desktop' }).waitFor();
    return { page, errors };
  }

  /** Bright pixels in the canvas: the -retro stipple once noVNC has drawn the desktop. */
  async function lit(page: Page): Promise<number> {
    return page.evaluate<number>(`(() => {
      const c = document.querySelector('#screen canvas');
      if (!c || !c.width) return 0;
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 60) n++;
      return n;
    })()`);
  }

  /** Types into the console, clicks it and sends Ctrl-Alt-Del if the button lets it. */
  async function tryInput(page: Page): Promise<void> {
    const box = await page.locator('#screen canvas').boundingBox();
    if (box === null) throw new Error('no canvas');
    await page.mouse.click(box.x + 50, box.y + 50);
    await page.keyboard.type('abc');
    await page.mouse.move(box.x + 120, box.y + 90);
    await page.waitForTimeout(500);
  }

  it('view-only policy: badge shown, noVNC sends no input even with view_only=0 in the link, desktop drawn', async () => {
    policies.set('ctl-view', { viewOnly: true, clipboard: 'none', maxClipboardBytes: 0 });
    const { page, errors } = await open('ctl-view', '&view_only=0');
    const relayed = sessions.get('ctl-view');
    expect(relayed?.protocol).toBe('vncgate.v1');
    await expect.poll(() => lit(page), { timeout: UI_TIMEOUT_MS }).toBeGreaterThan(1000);
    expect(await page.locator('#view-only-badge').isVisible()).toBe(true);
    expect(await page.locator('#btn-cad').isDisabled()).toBe(true);
    expect(await page.locator('#clipboard-send').isDisabled()).toBe(true);
    expect(await page.evaluate<string | undefined>(`document.body.dataset.clipboard`)).toBe('none');
    await page.locator('#btn-clipboard').click();
    expect(await page.locator('#clipboard-note').textContent()).toBe('The clipboard is turned off for this console.');
    await tryInput(page);
    const input = relayed?.types.filter((t) => [KEY_EVENT, POINTER_EVENT, CLIENT_CUT_TEXT, QEMU_CLIENT_MESSAGE].includes(t)) ?? [];
    expect(input).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('full policy: no badge, the same steps send key and pointer events; clipboard text over the limit is not sent', async () => {
    policies.set('ctl-full', { viewOnly: false, clipboard: 'to-remote', maxClipboardBytes: 8 });
    const { page, errors } = await open('ctl-full');
    await expect.poll(() => lit(page), { timeout: UI_TIMEOUT_MS }).toBeGreaterThan(1000);
    expect(await page.locator('#view-only-badge').isHidden()).toBe(true);
    expect(await page.locator('#btn-cad').isEnabled()).toBe(true);
    await tryInput(page);
    const types = sessions.get('ctl-full')?.types ?? [];
    expect(types.filter((t) => t === POINTER_EVENT).length).toBeGreaterThan(0);
    expect(types.filter((t) => t === KEY_EVENT || t === QEMU_CLIENT_MESSAGE).length).toBeGreaterThan(0);
    // The size limit is checked before sending: 9 bytes are refused, 8 go.
    await page.locator('#btn-clipboard').click();
    await page.locator('#clipboard-text').fill('123456789');
    await page.locator('#clipboard-send').click();
    expect(await page.locator('#clipboard-note').textContent()).toMatch(/at most 8/);
    expect(types).not.toContain(CLIENT_CUT_TEXT);
    await page.locator('#clipboard-text').fill('12345678');
    await page.locator('#clipboard-send').click();
    await expect.poll(() => types.includes(CLIENT_CUT_TEXT), { timeout: UI_TIMEOUT_MS }).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('no policy message (a server without the channel\'s policy): the page behaves as before', async () => {
    const { page, errors } = await open('ctl-none');
    await expect.poll(() => lit(page), { timeout: UI_TIMEOUT_MS }).toBeGreaterThan(1000);
    expect(await page.locator('#view-only-badge').isHidden()).toBe(true);
    expect(await page.locator('#btn-cad').isEnabled()).toBe(true);
    expect(sessions.get('ctl-none')?.textFromPage).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  });
});
