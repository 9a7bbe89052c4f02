/**
 * The console page in real Chromium against a real Xvnc, through a minimal test-only WebSocket
 * relay (the production proxy lives in src/proxy). Also plays a tiny RFB 3.8 server that refuses
 * the connection with a SecurityResult reason, as vncgate does for a used single-use token.
 * "Resize remote" (issue 16) meets a resizable Xvnc, one that refuses SetDesktopSize, and the
 * synthetic server, which has no ExtendedDesktopSize at all.
 *
 * Set VNCGATE_SCREENSHOT_DIR to keep screenshots of the connected and the refused page.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import websocket from '@fastify/websocket';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSyntheticServer, type SyntheticServer } from '../../tools/synthetic/index.js';
import { registerConsolePage } from '../../src/web/index.js';
import { launchChromium } from '../support/browser.js';
import { startXvnc } from '../support/xvnc.js';
import type { XvncServer } from '../support/xvnc.js';

const DESKTOP_NAME = 'vncgate-test-desktop';
const USED_TOKEN_REASON = 'This console link has expired or was already used — request a new one';
const UI_TIMEOUT_MS = 15_000;

const root = path.resolve(import.meta.dirname, '../..');

function tokenOf(url: string): string {
  return new URL(url, 'http://x').searchParams.get('token') ?? '';
}

interface Relayed {
  readonly socket: WebSocket;
  /** First byte of each browser message: the RFB client message type once past the handshake. */
  readonly clientMessageTypes: number[];
  /** Connections relayed for this token so far. */
  readonly count: number;
}

/** Test-only relay: WebSocket ⇄ TCP to Xvnc, nothing else. */
function relayTo(port: number, sessions: Map<string, Relayed>): (socket: WebSocket, url: string) => void {
  return (socket, url) => {
    const clientMessageTypes: number[] = [];
    const token = tokenOf(url);
    sessions.set(token, { socket, clientMessageTypes, count: (sessions.get(token)?.count ?? 0) + 1 });
    const tcp = net.connect(port, '127.0.0.1');
    socket.on('message', (data: Buffer) => {
      clientMessageTypes.push(data[0] ?? -1);
      tcp.write(data);
    });
    tcp.on('data', (data) => socket.send(data));
    tcp.on('close', () => socket.close());
    tcp.on('error', () => socket.terminate());
    socket.on('close', () => tcp.destroy());
  };
}

/**
 * RFB 3.8 server that offers security type None and then answers with a failed SecurityResult
 * and a reason (RFC 6143 §7.1.1–7.1.3), like vncgate for a used token.
 */
function refuseWithReason(socket: WebSocket, reason: string, seen: string[]): void {
  let buffered = Buffer.alloc(0);
  let stage: 'version' | 'security' | 'done' = 'version';
  socket.send(Buffer.from('RFB 003.008\n'));
  socket.on('message', (data: Buffer) => {
    buffered = Buffer.concat([buffered, data]);
    if (stage === 'version' && buffered.length >= 12) {
      seen.push(buffered.subarray(0, 12).toString('latin1'));
      buffered = buffered.subarray(12);
      stage = 'security';
      socket.send(Buffer.from([1, 1])); // one security type: None
    }
    if (stage === 'security' && buffered.length >= 1) {
      stage = 'done';
      const text = Buffer.from(reason, 'utf8');
      const head = Buffer.alloc(8);
      head.writeUInt32BE(1, 0); // SecurityResult: failed
      head.writeUInt32BE(text.length, 4);
      socket.send(Buffer.concat([head, text]));
      socket.close();
    }
  });
}

/** Polls `condition` every 50 ms until it holds or `timeoutMs` passes. */
async function eventually(condition: () => boolean, timeoutMs = UI_TIMEOUT_MS): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

// Client message types: KeyEvent and ClientCutText (RFC 6143 §7.5.4, §7.5.6), and the QEMU client
// message (rfbproto "QEMU Client Message", 255) that carries keys as QEMU Extended Key Events
// when the server advertises them, as Xvnc does.
const KEY_EVENT = 4;
// SetDesktopSize (rfbproto "SetDesktopSize"), what noVNC sends to resize the remote.
const SET_DESKTOP_SIZE = 251;
const QEMU_CLIENT_MESSAGE = 255;
const CLIENT_CUT_TEXT = 6;

interface Watched {
  readonly page: Page;
  /** CSP violations seen by the page (event) or reported on the console. */
  readonly cspViolations: string[];
  readonly pageErrors: string[];
}

describe('console page in Chromium', () => {
  let webRoot: string;
  let xvnc: XvncServer;
  /** Issue 16: an Xvnc that may be resized, one that refuses (status 1), and the synthetic server (no ExtendedDesktopSize). */
  let resizable: XvncServer;
  let prohibited: XvncServer;
  let fixed: SyntheticServer;
  let app: FastifyInstance;
  let base: string;
  let browser: Browser;
  let context: BrowserContext;
  const relayed = new Map<string, Relayed>();
  const relayUrls: string[] = [];
  const relayProtocols: string[] = [];
  const refusals = new Map<string, number>();
  const clientVersions: string[] = [];

  beforeAll(async () => {
    webRoot = await mkdtemp(path.join(os.tmpdir(), 'vncgate-web-'));
    await promisify(execFile)(process.execPath, [path.join(root, 'scripts/build-web.mjs'), '--outdir', webRoot]);
    // `-retro` gives the classic stipple root and X cursor: without it the root is plain black
    // (nothing to assert) and no cursor shape is sent, so the CSP would never meet noVNC's
    // data: cursor URL.
    xvnc = await startXvnc({ securityTypes: ['None'], desktopName: DESKTOP_NAME, geometry: '800x600', extraArgs: ['-retro'] });
    resizable = await startXvnc({ securityTypes: ['None'], desktopName: 'resizable', geometry: '800x600' });
    prohibited = await startXvnc({ securityTypes: ['None'], desktopName: 'prohibited', geometry: '800x600', extraArgs: ['-AcceptSetDesktopSize=0'] });
    fixed = await startSyntheticServer({ mode: 'demo', width: 1280, height: 960, desktopName: 'fixed-size' });

    // Laid out like src/proxy/server.ts: a catch-all route takes WebSocket upgrades on any path
    // (here: an RFB server that refuses, as for a used token), a specific one relays to Xvnc,
    // and the console page is registered last.
    app = Fastify({ forceCloseConnections: true });
    await app.register(websocket);
    app.route({
      method: 'GET',
      url: '/*',
      handler: (_request, reply) => reply.code(404).send(),
      wsHandler: (socket, request) => {
        const token = tokenOf(request.url);
        refusals.set(token, (refusals.get(token) ?? 0) + 1);
        refuseWithReason(socket, USED_TOKEN_REASON, clientVersions);
      },
    });
    const relay = relayTo(xvnc.port, relayed);
    app.get('/websockify', { websocket: true }, (socket, request) => {
      relayUrls.push(request.url);
      relayProtocols.push(socket.protocol);
      relay(socket, request.url);
    });
    for (const [url, port] of [['/resizable', resizable.port], ['/prohibited', prohibited.port], ['/fixed', fixed.port]] as const) {
      app.get(url, { websocket: true }, (socket, request) => relayTo(port, relayed)(socket, request.url));
    }
    registerConsolePage(app, { webRoot });
    base = await app.listen({ host: '127.0.0.1', port: 0 });

    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1024, height: 720 } });
    // Every Playwright wait, navigation included, fails well inside the test timeout.
    context.setDefaultTimeout(UI_TIMEOUT_MS);
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await xvnc?.stop();
    await resizable?.stop();
    await prohibited?.stop();
    await fixed?.close();
    if (webRoot !== undefined) await rm(webRoot, { recursive: true, force: true });
  });

  async function open(pathAndQuery: string): Promise<Watched & { status: number | undefined; csp: string | undefined }> {
    const page = await context.newPage();
    const cspViolations: string[] = [];
    const pageErrors: string[] = [];
    await page.exposeFunction('reportCspViolation', (text: string) => cspViolations.push(text));
    // Page-side listener, installed before any page script (init scripts are not subject to CSP).
    await page.addInitScript(`document.addEventListener('securitypolicyviolation', (e) =>
      window.reportCspViolation(e.violatedDirective + ' ' + e.blockedURI));`);
    page.on('console', (message) => {
      if (/content security policy/i.test(message.text())) cspViolations.push(message.text());
    });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    const response = await page.goto(`${base}${pathAndQuery}`);
    return { page, cspViolations, pageErrors, status: response?.status(), csp: response?.headers()['content-security-policy'] };
  }

  async function screenshot(page: Page, name: string): Promise<void> {
    const dir = process.env['VNCGATE_SCREENSHOT_DIR'];
    if (dir !== undefined && dir !== '') await page.screenshot({ path: path.join(dir, name) });
  }

  it('shows the remote desktop from Xvnc, names it, and scrubs the token from the address bar', async () => {
    const { page, cspViolations, pageErrors, status, csp } = await open(
      '/vnc_lite.html?path=websockify%3Fnode%3Dn-1%26token%3Dtok-connected&resize=scale',
    );
    expect(status).toBe(200);
    expect(csp).toContain("script-src 'self'");

    await page.locator('#status-text', { hasText: `Connected to ${DESKTOP_NAME}` }).waitFor({ timeout: UI_TIMEOUT_MS });

    // Pixels arrive right after ServerInit; poll briefly for a drawn framebuffer.
    const probe = `(() => {
      const canvas = document.querySelector('#screen canvas');
      if (!canvas) return null;
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let lit = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i + 3] !== 0 && (data[i] | data[i + 1] | data[i + 2]) !== 0) lit += 1;
      return { width: canvas.width, height: canvas.height, lit };
    })()`;
    let pixels: { width: number; height: number; lit: number } | null = null;
    const deadline = Date.now() + UI_TIMEOUT_MS;
    while (Date.now() < deadline) {
      pixels = await page.evaluate<{ width: number; height: number; lit: number } | null>(probe);
      if (pixels !== null && pixels.lit > 0) break;
      await page.waitForTimeout(100);
    }
    expect(pixels).toMatchObject({ width: 800, height: 600 });
    expect(pixels?.lit).toBeGreaterThan(1000);

    expect(relayUrls).toContain('/websockify?node=n-1&token=tok-connected');
    // The page offers vncgate.v1 first (its control channel); this stand-in relay takes the first offered.
    expect(relayProtocols).toEqual(['vncgate.v1']);
    expect(page.url()).toBe(`${base}/vnc_lite.html?path=websockify%3Fnode%3Dn-1&resize=scale`);
    expect(await page.title()).toBe(`${DESKTOP_NAME} – Console`);
    expect(await page.locator('#btn-cad').isEnabled()).toBe(true);
    expect(await page.locator('#notice').isHidden()).toBe(true);

    // The remote cursor is a CSS `cursor: url(data:…)` that Chromium only loads (and checks
    // against img-src) once the pointer is over the canvas.
    const box = await page.locator('#screen canvas').boundingBox();
    expect(box).not.toBeNull();
    await page.mouse.move((box?.x ?? 0) + 100, (box?.y ?? 0) + 100);
    // Xvnc sends its cursor shape in an update of its own, which may trail the first frame.
    await expect
      .poll(() => page.evaluate<string>(`getComputedStyle(document.querySelector('#screen canvas')).cursor`), { timeout: UI_TIMEOUT_MS, interval: 100 })
      .toMatch(/^url\("data:image\/png/);
    await page.waitForTimeout(300); // let a violation report arrive, if there is one

    await screenshot(page, 'vncgate-console-connected.png');
    expect(cspViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
    await page.close();
  });

  it('shows the proxy\'s SecurityResult reason for a used token, with no CSP violation', async () => {
    // Nova's link shape: the WebSocket goes to the page's own path, /vnc.html?token=tok-used.
    const { page, cspViolations, pageErrors } = await open('/vnc.html?path=%3Ftoken%3Dtok-used');

    const notice = page.locator('#notice-text');
    await notice.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
    expect(await notice.textContent()).toBe(USED_TOKEN_REASON);
    expect(await page.locator('#notice-title').textContent()).toBe('Console unavailable');
    expect(await page.locator('#status-text').textContent()).toBe('Not connected');
    expect(await page.locator('#notice-retry').isHidden()).toBe(true);
    expect(refusals.get('tok-used')).toBe(1);
    expect(clientVersions).toContain('RFB 003.008\n');
    expect(page.url()).toBe(`${base}/vnc.html`);

    await screenshot(page, 'vncgate-console-refused.png');
    expect(cspViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
    await page.close();
  });

  it('does not reconnect after a security failure even with reconnect=true', async () => {
    const { page } = await open('/vnc_auto.html?path=%3Ftoken%3Dtok-loop&reconnect=true&reconnect_delay=100');
    await page.locator('#notice-text', { hasText: USED_TOKEN_REASON }).waitFor({ timeout: UI_TIMEOUT_MS });
    // Ten reconnect delays: a looping page would have come back several times by now.
    await page.waitForTimeout(1_000);
    expect(refusals.get('tok-loop')).toBe(1);
    await page.close();
  });

  it('sends Ctrl-Alt-Del and clipboard text from the toolbar', async () => {
    const { page } = await open('/vnc.html?path=websockify%3Ftoken%3Dtok-tools');
    await page.locator('#status-text', { hasText: 'Connected to' }).waitFor({ timeout: UI_TIMEOUT_MS });
    const types = (): number[] => relayed.get('tok-tools')?.clientMessageTypes ?? [];

    const before = types().length;
    await page.locator('#btn-cad').click();
    // Ctrl, Alt, Delete: three presses and three releases.
    expect(await eventually(() => types().slice(before).filter((t) => t === KEY_EVENT || t === QEMU_CLIENT_MESSAGE).length >= 6)).toBe(true);

    await page.locator('#btn-clipboard').click();
    expect(await page.locator('#btn-clipboard').getAttribute('aria-expanded')).toBe('true');
    await page.locator('#clipboard-text').fill('hello from the clipboard');
    await page.locator('#clipboard-send').click();
    expect(await eventually(() => types().includes(CLIENT_CUT_TEXT))).toBe(true);
    expect(await page.locator('#clipboard-note').textContent()).toBe('Sent to the remote machine.');
    await screenshot(page, 'vncgate-console-clipboard.png');
    await page.close();
  });

  it('marks a view-only console and disables input controls', async () => {
    const { page } = await open('/vnc.html?path=websockify%3Ftoken%3Dtok-view&view_only=1');
    await page.locator('#status-text', { hasText: 'Connected to' }).waitFor({ timeout: UI_TIMEOUT_MS });
    expect(await page.locator('#view-only-badge').isVisible()).toBe(true);
    expect(await page.locator('#btn-cad').isDisabled()).toBe(true);
    expect(await page.locator('#clipboard-send').isDisabled()).toBe(true);
    await page.close();
  });

  it('waits for the Connect button with autoconnect=false', async () => {
    const { page } = await open('/vnc.html?path=websockify%3Ftoken%3Dtok-manual&autoconnect=false');
    await page.locator('#btn-connect').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
    expect(await page.locator('#status-text').textContent()).toBe('Not connected');
    expect(relayed.has('tok-manual')).toBe(false);
    await page.locator('#btn-connect').click();
    await page.locator('#status-text', { hasText: `Connected to ${DESKTOP_NAME}` }).waitFor({ timeout: UI_TIMEOUT_MS });
    await page.close();
  });

  it('runs framed by an allowed origin (Horizon) and refuses to be framed by others', async () => {
    const parents = [Fastify({ forceCloseConnections: true }), Fastify({ forceCloseConnections: true })];
    const frameHtml = (src: string): string =>
      `<!doctype html><title>dashboard</title><iframe id="console" src="${src}" width="900" height="500"></iframe>`;
    const [allowed, other] = await Promise.all(
      parents.map(async (parent) => {
        parent.get('/', async (_request, reply) => reply.type('text/html').send(frameHtml(`${framed}/vnc.html?autoconnect=0`)));
        return parent.listen({ host: '127.0.0.1', port: 0 });
      }),
    );
    const consoleApp = Fastify({ forceCloseConnections: true });
    registerConsolePage(consoleApp, { webRoot, frameAncestors: [String(allowed)] });
    const framed: string = await consoleApp.listen({ host: '127.0.0.1', port: 0 });
    try {
      const page = await context.newPage();
      await page.goto(String(allowed));
      const frame = page.frameLocator('#console');
      await frame.locator('#status-text', { hasText: 'Not connected' }).waitFor({ timeout: UI_TIMEOUT_MS });
      // No allow="fullscreen" on the iframe: the Fullscreen API is off, so is the button.
      expect(await frame.locator('#btn-fullscreen').isHidden()).toBe(true);
      expect(await frame.locator('#btn-connect').isVisible()).toBe(true);

      const refused = page.waitForEvent('console', { predicate: (m) => m.text().includes('frame-ancestors'), timeout: UI_TIMEOUT_MS });
      await page.goto(String(other));
      expect((await refused).text()).toContain('frame-ancestors');
      expect(await page.frameLocator('#console').locator('#status-text').count()).toBe(0);
      await page.close();
    } finally {
      await Promise.all([consoleApp.close(), ...parents.map((parent) => parent.close())]);
    }
  });

  it('says "Connection lost" when the connection drops', async () => {
    const { page } = await open('/vnc.html?path=websockify%3Ftoken%3Dtok-lost');
    await page.locator('#status-text', { hasText: 'Connected to' }).waitFor({ timeout: UI_TIMEOUT_MS });
    relayed.get('tok-lost')?.socket.terminate();
    await page.locator('#status-text', { hasText: 'Connection lost' }).waitFor({ timeout: UI_TIMEOUT_MS });
    expect(await page.locator('#notice-title').textContent()).toBe('Connection lost');
    expect(await page.locator('#notice-retry').isVisible()).toBe(true);
    expect(await page.locator('#btn-cad').isDisabled()).toBe(true);
    await screenshot(page, 'vncgate-console-lost.png');
    await page.close();
  });

  it('reconnects after a lost connection when reconnect=true', async () => {
    const { page } = await open('/vnc.html?path=websockify%3Ftoken%3Dtok-again&reconnect=true&reconnect_delay=200');
    await page.locator('#status-text', { hasText: 'Connected to' }).waitFor({ timeout: UI_TIMEOUT_MS });
    relayed.get('tok-again')?.socket.terminate();
    expect(await eventually(() => relayed.get('tok-again')?.count === 2)).toBe(true);
    await page.locator('#status-text', { hasText: `Connected to ${DESKTOP_NAME}` }).waitFor({ timeout: UI_TIMEOUT_MS });
    expect(await page.locator('#notice').isHidden()).toBe(true);
    await page.close();
  });
  /** The canvas's framebuffer size and the size it is drawn at. */
  const canvasSize = (page: Page) =>
    page.evaluate<{ width: number; height: number; shownWidth: number }>(`(() => {
      const c = document.querySelector('#screen canvas');
      return { width: c.width, height: c.height, shownWidth: c.getBoundingClientRect().width };
    })()`);

  it('issue 16: "Resize remote" against an endpoint without ExtendedDesktopSize says so and scales instead', async () => {
    const { page, cspViolations, pageErrors } = await open('/vnc.html?path=fixed%3Ftoken%3Dtok-fixed&resize=remote');
    await page.locator('#status-text', { hasText: 'Connected to fixed-size' }).waitFor();
    const toast = page.locator('#toast-text');
    await toast.waitFor({ state: 'visible' });
    expect(await toast.textContent()).toBe('This console cannot change its resolution; showing it scaled instead.');
    expect(await page.locator('#resize-mode').inputValue()).toBe('scale');
    // Scaled: the 1280-pixel framebuffer is drawn narrower, to fit the 1024-pixel window.
    await expect.poll(() => canvasSize(page), { timeout: UI_TIMEOUT_MS }).toMatchObject({ width: 1280, height: 960, shownWidth: expect.any(Number) });
    expect((await canvasSize(page)).shownWidth).toBeLessThan(1024);
    // Non-blocking: the failure notice stays hidden and the console keeps taking input.
    expect(await page.locator('#notice').isHidden()).toBe(true);
    expect(await page.locator('#btn-cad').isEnabled()).toBe(true);
    expect(relayed.get('tok-fixed')?.clientMessageTypes).not.toContain(SET_DESKTOP_SIZE);
    await screenshot(page, 'vncgate-console-resize-unsupported.png');

    // Picking "Resize remote" again says it again, at once.
    await page.locator('#toast-close').click();
    expect(await page.locator('#toast').isHidden()).toBe(true);
    await page.locator('#resize-mode').selectOption('remote');
    await toast.waitFor({ state: 'visible' });
    expect(await page.locator('#resize-mode').inputValue()).toBe('scale');
    expect(cspViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
    await page.close();
  });

  it('issue 16: a SetDesktopSize the endpoint refuses (Xvnc -AcceptSetDesktopSize=0) is reported with its reason, and the page scales', async () => {
    const { page, pageErrors } = await open('/vnc.html?path=prohibited%3Ftoken%3Dtok-prohibited&resize=remote');
    await page.locator('#status-text', { hasText: 'Connected to prohibited' }).waitFor();
    const toast = page.locator('#toast-text');
    await toast.waitFor({ state: 'visible' });
    expect(await toast.textContent()).toBe(
      'This console cannot change its resolution; showing it scaled instead. (The console refused: resizing is administratively prohibited.)',
    );
    expect(relayed.get('tok-prohibited')?.clientMessageTypes).toContain(SET_DESKTOP_SIZE);
    expect(await page.locator('#resize-mode').inputValue()).toBe('scale');
    expect(await canvasSize(page)).toMatchObject({ width: 800, height: 600 });
    expect(pageErrors).toEqual([]);
    await page.close();
  });

  it('issue 16: "Resize remote" against Xvnc resizes the remote to the window, with no notice', async () => {
    const { page, pageErrors } = await open('/vnc.html?path=resizable%3Ftoken%3Dtok-resizable&resize=remote');
    await page.locator('#status-text', { hasText: 'Connected to resizable' }).waitFor();
    await expect.poll(async () => (await canvasSize(page)).width, { timeout: UI_TIMEOUT_MS }).toBe(1024);
    const size = await canvasSize(page);
    process.stderr.write(`issue 16: Xvnc resized from 800x600 to ${size.width}x${size.height} for a 1024x720 window\n`);
    expect(size.shownWidth).toBe(1024);
    expect(relayed.get('tok-resizable')?.clientMessageTypes).toContain(SET_DESKTOP_SIZE);
    expect(await page.locator('#toast').isHidden()).toBe(true);
    expect(await page.locator('#resize-mode').inputValue()).toBe('remote');
    expect(pageErrors).toEqual([]);
    await page.close();
  });

  it('issue 16: a view-only console asked to "Resize remote" says it cannot and scales (noVNC never resizes from view-only)', async () => {
    const { page } = await open('/vnc.html?path=resizable%3Ftoken%3Dtok-resize-view&resize=remote&view_only=1');
    await page.locator('#status-text', { hasText: 'Connected to resizable' }).waitFor();
    await page.locator('#toast-text', { hasText: 'A view-only console cannot change its resolution; showing it scaled instead.' }).waitFor();
    expect(await page.locator('#resize-mode').inputValue()).toBe('scale');
    expect(relayed.get('tok-resize-view')?.clientMessageTypes).not.toContain(SET_DESKTOP_SIZE);
    await page.close();
  });

  it('issue 16: GET / is a static page saying where console links come from, under the CSP, naming no version', async () => {
    const { page, cspViolations, pageErrors, status, csp } = await open('/');
    expect(status).toBe(200);
    expect(csp).toContain("default-src 'none'");
    expect(await page.locator('#landing-text').textContent()).toContain('Open a console link from your cloud dashboard.');
    expect(await page.title()).toBe('Console proxy');
    const { version } = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { version: string };
    expect(await page.content()).not.toContain(version);
    await page.waitForTimeout(300); // let a violation report arrive, if there is one
    await screenshot(page, 'vncgate-landing.png');
    expect(cspViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
    await page.close();
  });
});
