/**
 * Shared consoles (issue 18, item 2) end to end: the built `vncgate serve`, tokens in a real
 * redis-server, a real TigerVNC Xvnc whose profile has `sharing: true`. Several viewers (each with
 * its own single-use link) share one backend connection: Xvnc sees exactly one client; a late
 * joiner's decoded framebuffer equals the first viewer's; keys from a watcher do not reach the X
 * server (Caps Lock's LED, read with `xset q`) while the controller's do; control is handed over
 * through the control channel; a viewer leaving leaves the others working; the last one leaving
 * closes the backend connection.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runVncgate } from '../support/cli.js';
import { runCommand, sleep, stopAll } from '../support/proc.js';
import { startRedisServer, type RedisServer } from '../support/redis.js';
import { TestViewer, keyEvent } from '../support/rfb-viewer.js';
import { startVncgateServe, type VncgateServe } from '../support/vncgate-process.js';
import { startXvnc, type XvncServer } from '../support/xvnc.js';

const CAPS_LOCK = 0xffe5;
const CONTROL = ['vncgate.v1', 'binary'];

/** Established TCP connections to Xvnc's RFB port, counted on the server's side. */
async function xvncClients(xvnc: XvncServer): Promise<number> {
  const r = await runCommand('ss', ['-tnH', 'state', 'established', `( sport = :${xvnc.port} )`]);
  return r.stdout.toString().split('\n').filter((l) => l.trim() !== '').length;
}

async function capsLock(xvnc: XvncServer): Promise<boolean> {
  const r = await runCommand('xset', ['q'], { env: { ...process.env, DISPLAY: `:${xvnc.display}` } });
  const m = /Caps Lock:\s+(on|off)/.exec(r.stdout.toString());
  if (!m) throw new Error(`xset q: no Caps Lock state in ${r.stdout}`);
  return m[1] === 'on';
}

async function until(what: string, pred: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await pred()) return;
    await sleep(100);
  }
  throw new Error(`${what} not within ${timeoutMs} ms`);
}

describe('shared console through the real vncgate and Xvnc', () => {
  let redis: RedisServer;
  let xvnc: XvncServer;
  let vncgate: VncgateServe;
  let dir: string;
  let env: Record<string, string>;
  const viewers: TestViewer[] = [];

  async function link(extra: string[] = []): Promise<string> {
    const r = await runVncgate(['token', 'create', '--target', `127.0.0.1:${xvnc.port}`, '--profile', 'shared', ...extra], {
      env: { ...env, VNCGATE_PUBLIC_URL: vncgate.baseUrl, VNCGATE_LOG_LEVEL: 'warn' },
      timeoutMs: 20_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const token = (r.json[0] as { token: string }).token;
    return `${vncgate.wsBase}/websockify?token=${encodeURIComponent(token)}`;
  }

  async function viewer(opts: { protocols?: string[] } = {}): Promise<TestViewer> {
    const v = await TestViewer.connect(await link(), { protocols: opts.protocols ?? CONTROL });
    viewers.push(v);
    return v;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vncgate-shared-'));
    redis = await startRedisServer();
    xvnc = await startXvnc({ securityTypes: ['None'], geometry: '640x480', extraArgs: ['-retro'] });
    const configFile = join(dir, 'vncgate.yaml');
    await writeFile(configFile, ['backends:', '  allowedTargets: ["127.0.0.0/8"]', '  profiles:', '    shared:', '      security: [none]', '      sharing: true', ''].join('\n'));
    env = { VNCGATE_CONFIG: configFile, VNCGATE_PLAIN_HTTP: 'true', VNCGATE_REDIS_URL: redis.url };
    vncgate = await startVncgateServe({ env });
  }, 60_000);

  afterAll(async () => {
    await Promise.all(viewers.map((v) => v.close()));
    await stopAll();
    await redis?.dispose();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('N viewers, one backend connection; a late joiner sees the same picture; control and input; leaving', async () => {
    const first = await viewer();
    await first.waitFor('a first full frame', () => first.updates >= 1);
    await first.waitFor('control state', () => first.control?.hasControl === true);
    expect(first.control).toMatchObject({ hasControl: true, viewers: 1, controlled: true });

    const more = await Promise.all([viewer(), viewer(), viewer({ protocols: ['binary'] })]);
    for (const v of more) await v.waitFor('a full frame', () => v.updates >= 1);
    expect(await xvncClients(xvnc)).toBe(1);
    await first.waitFor('four viewers', () => first.control?.viewers === 4);

    // Change the screen; every viewer's decoded framebuffer converges on the same picture.
    await runCommand('xsetroot', ['-solid', '#336699'], { env: { ...process.env, DISPLAY: `:${xvnc.display}` } });
    const all = [first, ...more];
    const painted = (v: TestViewer): boolean => v.fb[0] === 0x33 && v.fb[1] === 0x66 && v.fb[2] === 0x99;
    for (const v of all) await v.waitFor('the new root colour', () => painted(v));

    // A late joiner after the change: its first frame is the whole current picture.
    const late = await viewer();
    await late.waitFor('a full frame', () => late.updates >= 1 && painted(late));
    await sleep(300);
    expect(late.width).toBe(first.width);
    expect(late.fb.equals(first.fb)).toBe(true);
    expect(await xvncClients(xvnc)).toBe(1);

    // Input: a watcher's Caps Lock is dropped, the controller's reaches the X server.
    const before = await capsLock(xvnc);
    more[0]!.ws.send(Buffer.concat([keyEvent(true, CAPS_LOCK), keyEvent(false, CAPS_LOCK)]));
    await sleep(500);
    expect(await capsLock(xvnc)).toBe(before);
    first.ws.send(Buffer.concat([keyEvent(true, CAPS_LOCK), keyEvent(false, CAPS_LOCK)]));
    await until('Caps Lock toggled by the controller', async () => (await capsLock(xvnc)) !== before);

    // Handover: a watcher asks, the controller grants; now the watcher's keys count, the old controller's not.
    const asker = more[1]!;
    asker.sendControl('request');
    await first.waitFor('a pending request', () => first.control?.requests === 1);
    first.sendControl('grant');
    await asker.waitFor('control', () => asker.control?.hasControl === true);
    await first.waitFor('control gone', () => first.control?.hasControl === false);
    const now = await capsLock(xvnc);
    first.ws.send(Buffer.concat([keyEvent(true, CAPS_LOCK), keyEvent(false, CAPS_LOCK)]));
    await sleep(500);
    expect(await capsLock(xvnc)).toBe(now);
    asker.ws.send(Buffer.concat([keyEvent(true, CAPS_LOCK), keyEvent(false, CAPS_LOCK)]));
    await until('Caps Lock toggled by the new controller', async () => (await capsLock(xvnc)) !== now);

    // The controller leaves: control passes on; the others keep getting updates.
    await asker.close();
    await first.waitFor('control back to the longest-connected viewer', () => first.control?.hasControl === true);
    const counts = all.filter((v) => v !== asker).map((v) => v.updates);
    await runCommand('xsetroot', ['-solid', '#993366'], { env: { ...process.env, DISPLAY: `:${xvnc.display}` } });
    const others = all.filter((v) => v !== asker);
    for (const [i, v] of others.entries()) await v.waitFor('updates after a viewer left', () => v.updates > counts[i]! && v.fb[0] === 0x99);
    expect(await xvncClients(xvnc)).toBe(1);

    // The last viewer leaving closes the backend connection; the next one opens a new one.
    await Promise.all([...others, late].map((v) => v.close()));
    await until('Xvnc has no client', async () => (await xvncClients(xvnc)) === 0);
    const again = await viewer();
    await again.waitFor('a full frame', () => again.updates >= 1 && again.fb[0] === 0x99);
    expect(await xvncClients(xvnc)).toBe(1);
    await again.close();
  }, 120_000);

  it('a view-only token watches: first or not, asking or not, it never gets control and its keys never reach the X server; a --control token takes it', async () => {
    const ro = await TestViewer.connect(await link(['--view-only']), { protocols: CONTROL });
    viewers.push(ro);
    await ro.waitFor('a frame and control state', () => ro.updates >= 1 && ro.control !== null);
    expect(ro.control).toMatchObject({ hasControl: false, canControl: false, viewers: 1, controlled: false });
    ro.sendControl('request');
    const before = await capsLock(xvnc);
    ro.ws.send(Buffer.concat([keyEvent(true, CAPS_LOCK), keyEvent(false, CAPS_LOCK)]));
    const full = await viewer();
    await full.waitFor('control', () => full.control?.hasControl === true);
    await ro.waitFor('two viewers', () => ro.control?.viewers === 2);
    expect(ro.control?.hasControl).toBe(false);
    expect(await capsLock(xvnc)).toBe(before);
    // A link minted with --control takes control on joining.
    const boss = await TestViewer.connect(await link(['--control']), { protocols: CONTROL });
    viewers.push(boss);
    await boss.waitFor('control on joining', () => boss.control?.hasControl === true);
    await full.waitFor('control taken', () => full.control?.hasControl === false);
    await Promise.all([ro.close(), full.close(), boss.close()]);
  }, 60_000);

  it('a viewer asking for another pixel format is refused with SESSION_ERR_SHARED_PIXEL_FORMAT; the others go on', async () => {
    const a = await viewer();
    await a.waitFor('a frame', () => a.updates >= 1);
    const low = Buffer.from([0, 0, 0, 0, 8, 8, 0, 1, 0, 7, 0, 7, 0, 3, 0, 3, 6, 0, 0, 0]);
    const b = await TestViewer.connect(await link(), { protocols: CONTROL, pixelFormat: low });
    viewers.push(b);
    await b.waitFor('closed', () => b.closeCode !== null);
    expect(b.closeCode).toBe(4003);
    const n = a.updates;
    await runCommand('xsetroot', ['-solid', '#112233'], { env: { ...process.env, DISPLAY: `:${xvnc.display}` } });
    await a.waitFor('an update', () => a.updates > n && a.fb[0] === 0x11);
    await a.close();
    // The session's end was logged with the code, and audit-style fields say it was shared.
    await until('the refusal logged', async () => vncgate.logText().includes('SESSION_ERR_SHARED_PIXEL_FORMAT'));
    const ended = vncgate.logLines().filter((l) => l.includes('"session ended"') && l.includes('"shared"'));
    expect(ended.length).toBeGreaterThan(0);
    expect(ended.some((l) => /"hadControl":true/.test(l))).toBe(true);
  }, 60_000);
});
