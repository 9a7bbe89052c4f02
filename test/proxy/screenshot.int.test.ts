/**
 * Issue 18 item 5: screenshots and console checks through a real `vncgate serve`, against a real
 * TigerVNC Xvnc (a known pattern drawn into its root window with xsetroot; every pixel compared,
 * over VncAuth and over VeNCrypt X509Vnc) and a real QEMU (its SeaBIOS screen: right size, not
 * blank); the PNG decoded by real Chromium; Ironic nodes through the fake Ironic; a user's session through vncgate keeps receiving
 * updates while screenshots are taken of the same console; the CLI (`probe --node`, `screenshot`).
 */
import { SignJWT } from 'jose';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeIronic, type FakeIronic } from '../ironic/fake-ironic.js';
import { launchChromium } from '../support/browser.js';
import { runVncgate } from '../support/cli.js';
import { getTestPki, type TestPki } from '../support/pki.js';
import { decodePng, distinctColours, pngPixel, type DecodedPng } from '../support/png-decode.js';
import { runCommand, stopAll } from '../support/proc.js';
import { startQemuVnc, type QemuVncServer } from '../support/qemu.js';
import { startVncgateServe, type VncgateServe } from '../support/vncgate-process.js';
import { wsRfbConnect } from '../support/ws-rfb-client.js';
import { startXvnc, type XvncServer } from '../support/xvnc.js';

const SECRET = 'a-screenshot-test-secret-long-enough-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'vncgate-shots-int-'));
const FG: [number, number, number] = [0x12, 0xab, 0x34];
const BG: [number, number, number] = [0xfe, 0xdc, 0xba];
const WIDTH = 640;
const HEIGHT = 480;

/** The 16x16 XBM tiled over the root: foreground where x%16 < 8 and y%16 < 8 agree. */
function checkerXbm(): string {
  const rows: string[] = [];
  for (let y = 0; y < 16; y++) rows.push(y < 8 ? '0xff, 0x00' : '0x00, 0xff');
  return `#define checker_width 16\n#define checker_height 16\nstatic unsigned char checker_bits[] = {\n${rows.join(',\n')} };\n`;
}
const checkerAt = (x: number, y: number): [number, number, number] => ((x % 16 < 8) === (y % 16 < 8) ? FG : BG);

let pki: TestPki;
let xvnc: XvncServer;
let qemu: QemuVncServer;
let ironic: FakeIronic;
let vncgate: VncgateServe;
let bearer: string;
let configFile: string;
let cliEnv: Record<string, string>;
const figures: Record<string, number> = {};

async function xsetroot(args: string[]): Promise<void> {
  await runCommand('xsetroot', ['-display', `:${xvnc.display}`, ...args], { timeoutMs: 10_000 });
}

function api(path: string): Promise<Response> {
  return fetch(`${vncgate.origin}${path}`, { headers: { authorization: `Bearer ${bearer}` } });
}

async function screenshot(query: string): Promise<DecodedPng> {
  const t = performance.now();
  const r = await api(`/v1/screenshots?${query}`);
  if (r.status !== 200) throw new Error(`screenshot ${query}: ${r.status} ${await r.text()}`);
  expect(r.headers.get('content-type')).toBe('image/png');
  const png = decodePng(Buffer.from(await r.arrayBuffer()));
  figures[`screenshot ${query.split('&')[0]} ms`] = Math.round(performance.now() - t);
  return png;
}

/** The `console screenshot taken` log lines vncgate wrote for `target` (what the server chose to send). */
type ShotLog = { rectangles: Record<string, number>; frameMs: number; pngMs: number; bytes: number };
function shotLogs(target: string): ShotLog[] {
  return vncgate
    .logLines()
    .filter((l) => l.includes('"console screenshot taken"'))
    .map((l) => JSON.parse(l) as { target: string; rectangles: Record<string, number>; frameMs: number; pngMs: number; bytes: number })
    .filter((l) => l.target.startsWith(target));
}

/** The last such line, waiting (at most 5 s) for the child's log to reach us. */
async function lastShotLog(target: string): Promise<ShotLog> {
  for (let i = 0; i < 100; i++) {
    const found = shotLogs(target).at(-1);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no "console screenshot taken" log line for ${target}`);
}

function expectEvery(png: DecodedPng, colour: (x: number, y: number) => [number, number, number]): void {
  let wrong = 0;
  let first = '';
  for (let y = 0; y < png.height; y++) {
    for (let x = 0; x < png.width; x++) {
      const got = pngPixel(png, x, y);
      const want = colour(x, y);
      if (got[0] !== want[0] || got[1] !== want[1] || got[2] !== want[2]) {
        if (wrong++ === 0) first = `(${x},${y}) is ${got.join(',')}, expected ${want.join(',')}`;
      }
    }
  }
  expect(wrong, `${wrong} pixels differ; first ${first}`).toBe(0);
}

beforeAll(async () => {
  pki = await getTestPki();
  xvnc = await startXvnc({ securityTypes: ['VncAuth', 'X509Vnc'], geometry: `${WIDTH}x${HEIGHT}`, desktopName: 'shots-desk' });
  writeFileSync(join(dir, 'checker.xbm'), checkerXbm());
  await xsetroot(['-bitmap', join(dir, 'checker.xbm'), '-fg', '#12ab34', '-bg', '#fedcba']);
  qemu = await startQemuVnc({ name: 'shots' });
  ironic = await startFakeIronic();
  ironic.addNode({ name: 'rack1-node7', vncHost: xvnc.host, vncPort: xvnc.port });
  writeFileSync(join(dir, 'jwt'), `${SECRET}\n`);
  writeFileSync(join(dir, 'vncpw'), `${xvnc.password}\n`, { mode: 0o600 });
  configFile = join(dir, 'vncgate.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({
      api: { jwt: { hs256SecretFile: join(dir, 'jwt'), issuer: 'https://keystone.test', audience: 'vncgate' } },
      backends: {
        allowedTargets: ['127.0.0.1/32'],
        profiles: {
          vnc: { security: ['vncauth'], passwordFile: join(dir, 'vncpw') },
          x509: { security: ['vencrypt-x509vnc'], passwordFile: join(dir, 'vncpw'), caFile: pki.ca.cert.path },
        },
      },
      ironic: { url: ironic.url, auth: 'none', defaultProfile: 'vnc' },
    }),
  );
  cliEnv = { VNCGATE_CONFIG: configFile };
  vncgate = await startVncgateServe({ env: { VNCGATE_PLAIN_HTTP: 'true' }, args: ['--config', configFile] });
  bearer = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer('https://keystone.test').setAudience('vncgate').setSubject('shots').setIssuedAt().setExpirationTime('10m').sign(Buffer.from(SECRET));
}, 120_000);

afterAll(async () => {
  await stopAll();
  await ironic?.close();
  process.stderr.write(`\n[screenshot.int] ${JSON.stringify(figures)}\n`);
});

describe('screenshots of a real Xvnc', () => {
  it('returns every pixel of the pattern drawn into the root window (VncAuth profile)', async () => {
    const png = await screenshot(`target=127.0.0.1:${xvnc.port}&profile=vnc`);
    expect([png.width, png.height]).toEqual([WIDTH, HEIGHT]);
    expectEvery(png, checkerAt);
    // Xvnc answers in Hextile, the encoding vncgate prefers after CopyRect: decoded pixel-exact above.
    const log = await lastShotLog(`127.0.0.1:${xvnc.port}`);
    expect(log.rectangles.hextile).toBeGreaterThan(0);
    figures['xvnc 640x480 frameMs'] = log.frameMs;
    figures['xvnc 640x480 pngMs'] = log.pngMs;
  });

  it('a browser (real Chromium) fetches the screenshot with its bearer token and draws the same pixels', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(`${vncgate.origin}/healthz`);
      // Page code as a string: this project's tsconfig has no DOM library. The browser decodes the PNG itself.
      const points = [[0, 0], [8, 0], [0, 8], [8, 8], [100, 37], [639, 479], [321, 250]];
      const args = { url: `/v1/screenshots?target=127.0.0.1:${xvnc.port}&profile=vnc`, bearer, points };
      const drawn = await page.evaluate<{ status: number; type: string | null; width: number; height: number; pixels: number[][] }>(
        `(async ({ url, bearer, points }) => {
          const r = await fetch(url, { headers: { authorization: 'Bearer ' + bearer } });
          const bitmap = await createImageBitmap(await r.blob());
          const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
          const ctx = canvas.getContext('2d');
          ctx.drawImage(bitmap, 0, 0);
          const pixels = points.map(([x, y]) => Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3)));
          return { status: r.status, type: r.headers.get('content-type'), width: bitmap.width, height: bitmap.height, pixels };
        })(${JSON.stringify(args)})`,
      );
      expect(drawn.status).toBe(200);
      expect(drawn.type).toBe('image/png');
      expect([drawn.width, drawn.height]).toEqual([WIDTH, HEIGHT]);
      expect(drawn.pixels).toEqual(points.map(([x, y]) => checkerAt(x!, y!)));
    } finally {
      await browser.close();
    }
  });

  it('the same over VeNCrypt X509Vnc, as the x509 profile says', async () => {
    expectEvery(await screenshot(`target=127.0.0.1:${xvnc.port}&profile=x509`), checkerAt);
  });

  it('shows what the console shows now, not an earlier frame', async () => {
    await xsetroot(['-solid', '#3366cc']);
    expectEvery(await screenshot(`target=127.0.0.1:${xvnc.port}&profile=vnc`), () => [0x33, 0x66, 0xcc]);
    await xsetroot(['-bitmap', join(dir, 'checker.xbm'), '-fg', '#12ab34', '-bg', '#fedcba']);
  });

  it("leaves a user's session through vncgate working: it keeps receiving updates", async () => {
    const t = await fetch(`${vncgate.origin}/v1/console-tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
      body: JSON.stringify({ target: `127.0.0.1:${xvnc.port}`, profile: 'vnc' }),
    });
    expect(t.status).toBe(201);
    const { token } = (await t.json()) as { token: string };
    const session = await wsRfbConnect(`${vncgate.wsBase}/websockify?token=${token}`, { origin: vncgate.origin });
    if (!session.ok) throw new Error(`session failed: ${JSON.stringify(session)}`);
    const ws: WebSocket = session.ws;
    const { width, height } = session.init;
    /** Asks for an update and resolves with the first FramebufferUpdate message's rectangle count. */
    const update = (incremental: boolean): Promise<number> =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no FramebufferUpdate within 10 s')), 10_000);
        const onMessage = (data: Buffer): void => {
          if (data[0] !== 0) return;
          clearTimeout(timer);
          ws.off('message', onMessage);
          resolve(data.readUInt16BE(2));
        };
        ws.on('message', onMessage);
        const req = Buffer.from([3, incremental ? 1 : 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        req.writeUInt16BE(width, 6);
        req.writeUInt16BE(height, 8);
        ws.send(req);
      });
    try {
      expect(await update(false)).toBeGreaterThan(0);
      // Two screenshots of the same console while the session is open.
      expectEvery(await screenshot(`target=127.0.0.1:${xvnc.port}&profile=vnc`), checkerAt);
      expectEvery(await screenshot(`node=rack1-node7`), checkerAt);
      // The session still gets the change that follows.
      const next = update(true);
      await xsetroot(['-solid', '#3366cc']);
      expect(await next).toBeGreaterThan(0);
      expect(ws.readyState).toBe(ws.OPEN);
    } finally {
      ws.close();
      await xsetroot(['-bitmap', join(dir, 'checker.xbm'), '-fg', '#12ab34', '-bg', '#fedcba']);
    }
  });
});

describe('screenshots of a real QEMU', () => {
  it("returns its firmware screen: QEMU's size, and not blank", async () => {
    let png: DecodedPng | null = null;
    // SeaBIOS draws its text shortly after start; at most 30 s.
    for (let i = 0; i < 60; i++) {
      png = await screenshot(`target=127.0.0.1:${qemu.port}`);
      if (distinctColours(png) > 1) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(png).not.toBeNull();
    expect([png!.width, png!.height]).toEqual([720, 400]);
    expect(distinctColours(png!)).toBeGreaterThan(1);
    const log = await lastShotLog(`127.0.0.1:${qemu.port}`);
    figures['qemu 720x400 frameMs'] = log.frameMs;
    figures['qemu 720x400 pngMs'] = log.pngMs;
    expect(log.rectangles.hextile).toBeGreaterThan(0);
  });

  it('console check reports None security, the desktop name and the size', async () => {
    const r = await api(`/v1/console-checks?target=127.0.0.1:${qemu.port}`);
    expect(await r.json()).toMatchObject({ ok: true, security: { choice: 'none' }, desktopName: 'QEMU (shots)', width: 720, height: 400 });
  });
});

describe('Ironic nodes (fake Ironic)', () => {
  it('a screenshot by node resolves its console through Ironic and its profile', async () => {
    const png = await screenshot('node=rack1-node7');
    expectEvery(png, checkerAt);
    expect(ironic.requests.some((r) => r.url.includes('rack1-node7'))).toBe(true);
  });

  it('console check by node: ok with the security used, or the Ironic code for a missing node', async () => {
    const ok = await (await api('/v1/console-checks?node=rack1-node7')).json();
    expect(ok).toMatchObject({ ok: true, security: { choice: 'vncauth', type: 'VncAuth' }, desktopName: 'shots-desk', width: WIDTH, height: HEIGHT });
    const missing = await (await api('/v1/console-checks?node=no-such-node')).json();
    expect(missing).toMatchObject({ ok: false, error: { code: 'IRONIC_ERR_NODE_NOT_FOUND', status: 404 } });
  });

  it('`vncgate probe --node` resolves the node with the configuration and probes it (JSON)', async () => {
    const r = await runVncgate(['probe', '--node', 'rack1-node7', '--config', configFile], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json[0]).toMatchObject({ ok: true, node: 'rack1-node7', profile: 'vnc', target: `127.0.0.1:${xvnc.port}`, desktopName: 'shots-desk', security: { choice: 'vncauth' } });
    const bad = await runVncgate(['probe', '--node', 'no-such-node'], { env: cliEnv, timeoutMs: 30_000 });
    expect(bad.code).toBe(1);
    expect(bad.json[0]).toMatchObject({ ok: false, node: 'no-such-node', error: { code: 'IRONIC_ERR_NODE_NOT_FOUND' } });
  });

  it('`vncgate screenshot` writes the same PNG for a node and for HOST:PORT', async () => {
    const out = join(dir, 'node.png');
    const r = await runVncgate(['screenshot', '--node', 'rack1-node7', '-o', out], { env: cliEnv, timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json[0]).toMatchObject({ ok: true, node: 'rack1-node7', width: WIDTH, height: HEIGHT, file: out });
    expectEvery(decodePng(readFileSync(out)), checkerAt);
    const out2 = join(dir, 'target.png');
    const r2 = await runVncgate(['screenshot', `127.0.0.1:${xvnc.port}`, '--profile', 'x509', '-o', out2], { env: cliEnv, timeoutMs: 30_000 });
    expect(r2.code, r2.stderr).toBe(0);
    expectEvery(decodePng(readFileSync(out2)), checkerAt);
  });

  it('the CLI refuses mixed or missing targets (exit 2), and a target the policy forbids (exit 1, TARGET_ERR_FORBIDDEN)', async () => {
    for (const args of [
      ['probe', '--node', 'rack1-node7', `127.0.0.1:${xvnc.port}`],
      ['probe', '--node', 'rack1-node7', '--security', 'none'],
      ['probe', `127.0.0.1:${xvnc.port}`, '--config', configFile],
      ['screenshot', '--node', 'rack1-node7'],
      ['screenshot', '--node', 'rack1-node7', `127.0.0.1:${xvnc.port}`, '-o', join(dir, 'x.png')],
    ]) {
      const r = await runVncgate(args, { env: cliEnv, timeoutMs: 30_000 });
      expect([args.join(' '), r.code]).toEqual([args.join(' '), 2]);
    }
    const r = await runVncgate(['screenshot', '127.0.0.2:5900', '-o', join(dir, 'forbidden.png')], { env: cliEnv, timeoutMs: 30_000 });
    expect(r.code).toBe(1);
    expect(r.json[0]).toMatchObject({ ok: false, error: { code: 'TARGET_ERR_FORBIDDEN' } });
  });
});
