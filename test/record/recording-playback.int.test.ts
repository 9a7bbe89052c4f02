/**
 * Issue 18 item 4, end to end: a console session through the real built `vncgate serve` to a real
 * TigerVNC Xvnc, viewed by noVNC in real Chromium, is recorded (its profile says `record: true`)
 * while the X display is drawn on (xsetroot) and the person moves the pointer and types. Then the
 * API lists the recording and mints a playback link; the playback page in Chromium replays it and
 * its final canvas equals the live session's final canvas, pixel for pixel. The file holds pointer
 * events and no keystrokes; the link works once.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRecording, RECORD_TYPE } from '../../src/record/index.js';
import { launchChromium } from '../support/browser.js';
import { runCommand, sleep, stopAll } from '../support/proc.js';
import { startVncgateServe, type VncgateServe } from '../support/vncgate-process.js';
import { startXvnc, type XvncServer } from '../support/xvnc.js';

const JWT_SECRET = 'recording-test-secret-of-at-least-32-bytes';
const UI_TIMEOUT_MS = 20_000;
const DESKTOP = 'vncgate-recording-desktop';
const ISSUER = 'https://portal.example.test';

/** The framebuffer canvas: size and a SHA-256 of its RGBA pixels (page code as a string: no DOM lib here). */
const CANVAS = `(async () => {
  const c = document.querySelector('#screen canvas');
  if (!c || !c.width) return null;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const h = await crypto.subtle.digest('SHA-256', d);
  return { width: c.width, height: c.height, hash: [...new Uint8Array(h)].map((b) => b.toString(16).padStart(2, '0')).join('') };
})()`;
type Canvas = { width: number; height: number; hash: string } | null;
/** RGBA bytes of the canvas, base64, for counting differing pixels when hashes differ. */
const CANVAS_BYTES = `(() => {
  const c = document.querySelector('#screen canvas');
  if (!c) return '';
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let s = '';
  for (let i = 0; i < d.length; i += 8192) s += String.fromCharCode(...d.subarray(i, i + 8192));
  return btoa(s);
})()`;

let dir: string;
let recDir: string;
let auditFile: string;
let xvnc: XvncServer;
let gate: VncgateServe;
let browser: Browser;
let token = '';

async function jwt(): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('auditor@example.test').setIssuer(ISSUER).setAudience('vncgate').setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode(JWT_SECRET));
}

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const r = await fetch(new URL(path, gate.baseUrl), {
    method,
    headers: { authorization: `Bearer ${await jwt()}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: r.status, json: await r.json() };
}

/** Polls the canvas until it has held still for `quietMs` (and differs from `unlike`, if given). */
async function settledCanvas(page: Page, quietMs: number, unlike?: string): Promise<NonNullable<Canvas>> {
  const deadline = Date.now() + UI_TIMEOUT_MS;
  let last: Canvas = null;
  let since = Date.now();
  while (Date.now() < deadline) {
    const c = await page.evaluate<Canvas>(CANVAS);
    if (c === null || c.hash !== last?.hash) since = Date.now();
    last = c;
    if (c !== null && c.hash !== unlike && Date.now() - since >= quietMs) return c;
    await sleep(100);
  }
  throw new Error(`canvas did not settle: ${JSON.stringify(last)}`);
}

async function xsetroot(...args: string[]): Promise<void> {
  await runCommand('xsetroot', ['-display', `:${xvnc.display}`, ...args], { timeoutMs: 10_000 });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vncgate-rec-'));
  recDir = join(dir, 'recordings');
  auditFile = join(dir, 'audit.jsonl');
  xvnc = await startXvnc({ securityTypes: ['None'], desktopName: DESKTOP, geometry: '800x600', extraArgs: ['-retro'] });
  await writeFile(join(dir, 'jwt.secret'), JWT_SECRET);
  await writeFile(
    join(dir, 'vncgate.yaml'),
    [
      'backends:',
      '  allowedTargets: ["127.0.0.0/8"]',
      '  profiles:',
      '    audited: {security: [none], record: true}',
      'recordings:',
      `  dir: ${JSON.stringify(recDir)}`,
      'audit:',
      `  file: ${JSON.stringify(auditFile)}`,
      'api:',
      `  jwt: {hs256SecretFile: ${JSON.stringify(join(dir, 'jwt.secret'))}, issuer: ${ISSUER}, audience: vncgate}`,
      '',
    ].join('\n'),
  );
  gate = await startVncgateServe({ name: 'vncgate (recordings)', args: ['--config', join(dir, 'vncgate.yaml')], env: { VNCGATE_PLAIN_HTTP: 'true', VNCGATE_LOG_LEVEL: 'info' } });
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await stopAll();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('recordings (issue 18): live session vs playback in Chromium, real Xvnc', () => {
  let live: NonNullable<Canvas>;
  let liveBytes: string;

  it('records a live session while the display is drawn on', async () => {
    const minted = await api('POST', '/v1/console-tokens', { target: `127.0.0.1:${xvnc.port}`, profile: 'audited' });
    expect(minted.status, JSON.stringify(minted.json)).toBe(201);
    token = minted.json.token as string;
    const page = await browser.newPage({ viewport: { width: 1000, height: 760 } });
    try {
      await page.goto(minted.json.url as string);
      await page.locator('#status-text').filter({ hasText: `Connected to ${DESKTOP}` }).waitFor({ timeout: UI_TIMEOUT_MS });
      const first = await settledCanvas(page, 500);
      await xsetroot('-solid', '#2a6fdb');
      const blue = await settledCanvas(page, 500, first.hash);
      const box = await page.locator('#screen canvas').boundingBox();
      if (box === null) throw new Error('no canvas box');
      for (let i = 0; i < 10; i++) await page.mouse.move(box.x + 20 + i * 30, box.y + 40 + i * 20);
      await page.mouse.click(box.x + 200, box.y + 200);
      await page.keyboard.type('hunter2');
      await xsetroot('-mod', '7', '5', '-fg', '#ff8800', '-bg', '#113355');
      live = await settledCanvas(page, 1_500, blue.hash);
      liveBytes = await page.evaluate<string>(CANVAS_BYTES);
      expect(live).toMatchObject({ width: 800, height: 600 });
    } finally {
      await page.close();
    }
    // The session ends with the page; its recording is closed and audited.
    const deadline = Date.now() + UI_TIMEOUT_MS;
    let events: { event: string; [k: string]: unknown }[] = [];
    while (Date.now() < deadline) {
      events = (await readFile(auditFile, 'utf8').catch(() => '')).split('\n').filter(Boolean).map((l) => JSON.parse(l));
      if (events.some((e) => e.event === 'recording.ended')) break;
      await sleep(100);
    }
    const ended = events.find((e) => e.event === 'recording.ended');
    expect(ended).toMatchObject({ truncated: false, reason: null, profile: 'audited' });
    expect(events.some((e) => e.event === 'recording.failed')).toBe(false);
  }, 90_000);

  it('the file holds the stream, pointer events, and no keystrokes; its name has no token', async () => {
    const names = await readdir(recDir);
    expect(names).toHaveLength(1);
    expect(names[0]).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{12}\.vncrec$/);
    const rec = parseRecording(await readFile(join(recDir, names[0]!)));
    expect(rec.header).toMatchObject({ version: 1, width: 800, height: 600, desktopName: DESKTOP, recordKeys: false, reason: 'profile' });
    expect(rec.trailer).toMatchObject({ truncated: false, reason: null });
    const data = rec.records.filter((r) => r.type === RECORD_TYPE.data);
    expect(data[0]!.payload.subarray(0, 12).toString('latin1')).toBe('RFB 003.008\n');
    const events = rec.records.filter((r) => r.type === RECORD_TYPE.event).map((r) => JSON.parse(r.payload.toString('utf8')) as { k: string; buttons?: number });
    expect(events.filter((e) => e.k === 'pointerEvent').length).toBeGreaterThanOrEqual(10);
    expect(events.some((e) => e.k === 'pointerEvent' && e.buttons === 1)).toBe(true);
    expect(events.filter((e) => e.k === 'keyEvent' || e.k === 'qemuExtendedKeyEvent')).toEqual([]);
    expect(rec.trailer!.keyEventsOmitted).toBeGreaterThanOrEqual(14); // 7 keys, down and up
    // Time stamps run forwards.
    for (let i = 1; i < rec.records.length; i++) expect(rec.records[i]!.tMs).toBeGreaterThanOrEqual(rec.records[i - 1]!.tMs);
  });

  it('the playback page replays it to the same final picture, pixel for pixel', async () => {
    const list = await api('GET', '/v1/recordings');
    expect(list.status).toBe(200);
    expect(list.json.recordings).toHaveLength(1);
    const r = list.json.recordings[0];
    expect(r).toMatchObject({ active: false, truncated: false, profile: 'audited' });
    const link = await api('POST', `/v1/recordings/${r.id}/playback`);
    expect(link.status, JSON.stringify(link.json)).toBe(201);
    expect(link.json.url).toMatch(/\/playback\.html#ticket=[A-Za-z0-9_-]+$/);

    const page = await browser.newPage({ viewport: { width: 1000, height: 760 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      await page.goto(link.json.url as string);
      await page.locator('#status-text').filter({ hasText: /Playing|Played/ }).waitFor({ timeout: UI_TIMEOUT_MS });
      expect(new URL(page.url()).hash).toBe(''); // the ticket left the address bar
      await page.selectOption('#speed', '4');
      await page.locator('#status-text').filter({ hasText: /Played/ }).waitFor({ timeout: 60_000 });
      let played: Canvas = null;
      const deadline = Date.now() + UI_TIMEOUT_MS;
      while (Date.now() < deadline) {
        played = await page.evaluate<Canvas>(CANVAS);
        if (played?.hash === live.hash) break;
        await sleep(200);
      }
      if (played?.hash !== live.hash) {
        const a = Buffer.from(liveBytes, 'base64');
        const b = Buffer.from(await page.evaluate<string>(CANVAS_BYTES), 'base64');
        let differing = 0;
        for (let i = 0; i < Math.min(a.length, b.length); i += 4) if (a.readUInt32BE(i) !== b.readUInt32BE(i)) differing++;
        throw new Error(`playback differs from the live canvas in ${differing} pixels (${JSON.stringify(played)} vs ${JSON.stringify(live)})`);
      }
      expect(played).toEqual(live);
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }

    // The link was single use.
    const again = await browser.newPage();
    try {
      await again.goto(link.json.url as string);
      await again.locator('#notice-text').filter({ hasText: /expired or already used/ }).waitFor({ timeout: UI_TIMEOUT_MS });
    } finally {
      await again.close();
    }
    // A second link, played with "Skip to end": the same final picture at once.
    const link2 = await api('POST', `/v1/recordings/${r.id}/playback`);
    const skip = await browser.newPage({ viewport: { width: 1000, height: 760 } });
    try {
      await skip.goto(link2.json.url as string);
      await skip.locator('#status-text').filter({ hasText: /Playing|Played/ }).waitFor({ timeout: UI_TIMEOUT_MS });
      await skip.click('#btn-end');
      await skip.locator('#status-text').filter({ hasText: /Played/ }).waitFor({ timeout: UI_TIMEOUT_MS });
      let c = null as Canvas;
      const deadline = Date.now() + UI_TIMEOUT_MS;
      while (Date.now() < deadline && c?.hash !== live.hash) {
        c = await skip.evaluate<Canvas>(CANVAS);
        if (c?.hash !== live.hash) await sleep(200);
      }
      expect(c).toEqual(live);
    } finally {
      await skip.close();
    }

    const audit = (await readFile(auditFile, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event: string; sub?: string });
    expect(audit.filter((e) => e.event === 'recording.playback')).toEqual([
      expect.objectContaining({ recording: r.id, sub: 'auditor@example.test' }),
      expect.objectContaining({ recording: r.id, sub: 'auditor@example.test' }),
    ]);
    // No token in any log line or in the file (the header names the target, never the link).
    expect(gate.logText()).not.toContain(token);
    expect((await readFile(join(recDir, `${r.id}.vncrec`))).includes(Buffer.from(token))).toBe(false);
  }, 120_000);
});
