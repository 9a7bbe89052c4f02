import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, viewConsole } from '../support/browser.js';
import { runVncgate } from '../support/cli.js';
import { startRealIronic, type RealIronic } from '../support/ironic.js';
import { getTestPki, type TestPki } from '../support/pki.js';
import { stopAll } from '../support/proc.js';
import { startRedisServer } from '../support/redis.js';
import { startVncgateServe, type VncgateServe } from '../support/vncgate-process.js';
import { wsRfbConnect } from '../support/ws-rfb-client.js';
import { startXvnc, type XvncServer } from '../support/xvnc.js';

/**
 * Issue 4's interop tier: real Ironic 29 (2025.1, all-in-one, noauth, sqlite) whose console
 * container provider points nodes at a real Xvnc, and a real `vncgate serve` in front.
 *
 * - An Ironic-issued console URL, with only its scheme/host/port swapped for vncgate's, shows the
 *   Xvnc desktop in Chromium and through a protocol client.
 * - `vncgate token create --node` works.
 * - A re-enabled console's old URL is refused with a readable reason; the new one works.
 * - A serial (socat) node and a no-console node are refused with reasons naming the node.
 */
let xvnc: XvncServer;
let ironic: RealIronic;
let vncgate: VncgateServe;
let redis: Awaited<ReturnType<typeof startRedisServer>>;
let pki: TestPki;
let browser: Browser;
let env: Record<string, string>;
const timings: Record<string, number> = {};
const started = performance.now();

/** Ironic's URL with only scheme, host and port replaced by vncgate's (what an operator's public_url change does). */
function throughVncgate(ironicUrl: string): string {
  const u = new URL(ironicUrl);
  const v = new URL(vncgate.baseUrl);
  u.protocol = v.protocol;
  u.host = v.host;
  return u.toString();
}

/** The WebSocket noVNC opens for such a page: its `path` parameter, relative to the page. */
function wsOf(pageUrl: string): string {
  const u = new URL(pageUrl);
  return new URL(u.searchParams.get('path')!, vncgate.wsBase.replace(/\/?$/, '/')).toString();
}

async function consoleUrl(uuid: string): Promise<string> {
  const state = await ironic.waitForConsole(uuid, true);
  const url = state.console_info?.url;
  if (typeof url !== 'string') throw new Error(`no console URL for ${uuid}`);
  return url;
}

const inChromium = (url: string) => viewConsole(browser, url);

beforeAll(async () => {
  let t = performance.now();
  pki = await getTestPki();
  xvnc = await startXvnc({ securityTypes: ['None'], desktopName: 'ironic-node-desktop', extraArgs: ['-retro'] });
  redis = await startRedisServer();
  ironic = await startRealIronic({ tokenTimeoutS: 600 });
  timings.ironicMs = performance.now() - t;
  t = performance.now();
  env = {
    VNCGATE_TLS_CERT_FILE: pki.server.cert.path,
    VNCGATE_TLS_KEY_FILE: pki.server.key.path,
    VNCGATE_REDIS_URL: redis.url,
    VNCGATE_IRONIC_URL: ironic.url,
    VNCGATE_IRONIC_AUTH: 'none',
  };
  vncgate = await startVncgateServe({ env });
  browser = await launchChromium(pki.server.cert.pem);
  timings.vncgateAndBrowserMs = performance.now() - t;
}, 25 * 60_000);

afterAll(async () => {
  await browser?.close();
  await stopAll();
  await redis?.dispose();
  timings.totalMs = performance.now() - started;
  process.stderr.write(`[vncgate-ironic] Ironic ${ironic?.chroot.ironicVersion} microversions ${ironic?.minMicroversion}-${ironic?.maxMicroversion}; timings ${JSON.stringify(Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v)])))}\n`);
}, 60_000);

describe('vncgate in front of real Ironic 2025.1', () => {
  let node: string;
  let firstUrl: string;

  it("serves the console URL Ironic issues (host:port swapped), in Chromium and to a protocol client", async () => {
    node = await ironic.createVncNode({ name: 'rack1-node7', vncHost: xvnc.host, vncPort: xvnc.port });
    const enable = await ironic.baremetal(['node', 'console', 'enable', node]);
    expect(enable.exitCode, enable.stderr).toBe(0);
    firstUrl = await consoleUrl(node);
    expect(firstUrl).toMatch(/\/vnc_lite\.html\?path=websockify%3Fnode%3D[0-9a-f-]{36}%26token%3D[A-Za-z0-9_-]{43}$/);
    const url = throughVncgate(firstUrl);

    const seen = await inChromium(url);
    expect(seen.status).toBe('Connected to ironic-node-desktop');
    expect(seen.colours).toBeGreaterThan(1);

    // Ironic's tokens are reusable until they expire (the default policy), so the protocol client
    // opens the same URL again.
    const r = await wsRfbConnect(wsOf(url), { ca: pki.ca.cert.pem, origin: vncgate.origin });
    expect(r).toMatchObject({ ok: true, init: { name: 'ironic-node-desktop' } });
    if (r.ok) r.ws.close();
  });

  it('`vncgate token create --node` mints a single-use link resolved through Ironic', async () => {
    const r = await runVncgate(['token', 'create', '--node', 'rack1-node7'], { env: { ...env, VNCGATE_PUBLIC_URL: vncgate.baseUrl }, timeoutMs: 20_000 });
    expect(r.code, r.stderr).toBe(0);
    const { url } = r.json[0] as { url: string };
    const first = await inChromium(url);
    expect(first.status).toBe('Connected to ironic-node-desktop');
    const again = await inChromium(url);
    expect(again.notice).toBe('This console link has expired or was already used - request a new one');
  });

  it("a re-enabled console's old URL is refused with a reason; the new one works", async () => {
    expect((await ironic.baremetal(['node', 'console', 'disable', node])).exitCode).toBe(0);
    await ironic.waitForConsole(node, false);
    const whileDisabled = await wsRfbConnect(wsOf(throughVncgate(firstUrl)), { ca: pki.ca.cert.pem });
    expect(whileDisabled).toMatchObject({ ok: false, serverReason: 'This console link has expired - the console was disabled; request a new link' });
    expect((await ironic.baremetal(['node', 'console', 'enable', node])).exitCode).toBe(0);
    const secondUrl = await consoleUrl(node);
    expect(secondUrl).not.toBe(firstUrl);
    const old = await inChromium(throughVncgate(firstUrl));
    expect(old.notice).toBe('This console link has expired or was replaced - request a new one');
    const fresh = await inChromium(throughVncgate(secondUrl));
    expect(fresh.status).toBe('Connected to ironic-node-desktop');
  });

  it('a serial (ipmitool-socat) node is refused with a reason naming it and what to change', async () => {
    const serial = await ironic.createSerialNode({ name: 'serial-3', consoleInterface: 'ipmitool-socat' });
    expect((await ironic.baremetal(['node', 'console', 'enable', serial], { timeoutMs: 60_000 })).exitCode).toBe(0);
    await ironic.waitForConsole(serial, true, { timeoutMs: 45_000, intervalMs: 250 });
    const t = await runVncgate(['token', 'create', '--node', serial], { env: { ...env, VNCGATE_PUBLIC_URL: vncgate.baseUrl }, timeoutMs: 20_000 });
    const { url } = t.json[0] as { url: string };
    const r = await wsRfbConnect(wsOf(url), { ca: pki.ca.cert.pem, timeoutMs: 30_000 });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.serverReason).toBe(`Node ${serial} has a socat console, not a graphical one - the operator must set a graphical console_interface (e.g. redfish-graphical)`);
  }, 120_000);

  it('a no-console node is refused with a reason naming it', async () => {
    const none = await ironic.createSerialNode({ name: 'plain-7', consoleInterface: 'no-console' });
    const t = await runVncgate(['token', 'create', '--node', 'plain-7'], { env: { ...env, VNCGATE_PUBLIC_URL: vncgate.baseUrl }, timeoutMs: 20_000 });
    const { url } = t.json[0] as { url: string };
    const seen = await inChromium(url);
    expect(seen.notice).toBe('Node plain-7 has no console (console_interface no-console) - the operator must set a graphical console_interface (e.g. redfish-graphical)');
    expect(none).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('an unknown node and an unreachable Ironic give their reasons; no token reached the logs', async () => {
    const t = await runVncgate(['token', 'create', '--node', 'no-such-node'], { env: { ...env, VNCGATE_PUBLIC_URL: vncgate.baseUrl }, timeoutMs: 20_000 });
    const r = await wsRfbConnect(wsOf((t.json[0] as { url: string }).url), { ca: pki.ca.cert.pem });
    expect(r).toMatchObject({ ok: false, serverReason: 'This bare-metal node does not exist' });

    const log = vncgate.logText();
    const token = new URL(firstUrl).searchParams.get('path')!.split('token=')[1]!;
    expect(log).not.toContain(token);
    expect(log).not.toMatch(/token=/);

    await ironic.stop();
    const u = await runVncgate(['token', 'create', '--node', 'rack1-node7'], { env: { ...env, VNCGATE_PUBLIC_URL: vncgate.baseUrl }, timeoutMs: 20_000 });
    const down = await wsRfbConnect(wsOf((u.json[0] as { url: string }).url), { ca: pki.ca.cert.pem, timeoutMs: 30_000 });
    expect(down).toMatchObject({ ok: false, serverReason: 'The bare-metal service is unreachable - try again shortly' });
  }, 120_000);
});
