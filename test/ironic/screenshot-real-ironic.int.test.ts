import { SignJWT } from 'jose';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runVncgate } from '../support/cli.js';
import { startRealIronic, type RealIronic } from '../support/ironic.js';
import { decodePng, pngPixel } from '../support/png-decode.js';
import { runCommand, stopAll } from '../support/proc.js';
import { startVncgateServe, type VncgateServe } from '../support/vncgate-process.js';
import { startXvnc, type XvncServer } from '../support/xvnc.js';

/**
 * Issue 18 item 5 against real Ironic 29 (2025.1): a node whose graphical console points at a real
 * Xvnc; GET /v1/screenshots?node= and /v1/console-checks?node= through a real `vncgate serve`,
 * and `vncgate probe --node`. The node is named, so Ironic resolves the name as it does for a
 * session; a node with its console disabled is reported with Ironic's code.
 */
const SECRET = 'a-real-ironic-screenshot-secret-0123456789abcdef';
const dir = mkdtempSync(join(tmpdir(), 'vncgate-shots-ironic-'));
let xvnc: XvncServer;
let ironic: RealIronic;
let vncgate: VncgateServe;
let bearer: string;
let env: Record<string, string>;

beforeAll(async () => {
  xvnc = await startXvnc({ securityTypes: ['None'], geometry: '320x240', desktopName: 'real-ironic-desk' });
  await runCommand('xsetroot', ['-display', `:${xvnc.display}`, '-solid', '#a05010'], { timeoutMs: 10_000 });
  ironic = await startRealIronic({ tokenTimeoutS: 600 });
  writeFileSync(join(dir, 'jwt'), `${SECRET}\n`);
  env = { VNCGATE_PLAIN_HTTP: 'true', VNCGATE_IRONIC_URL: ironic.url, VNCGATE_IRONIC_AUTH: 'none', VNCGATE_API_JWT_SECRET_FILE: join(dir, 'jwt'), VNCGATE_API_JWT_ISSUER: 'https://keystone.test', VNCGATE_API_JWT_AUDIENCE: 'vncgate' };
  vncgate = await startVncgateServe({ env });
  bearer = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer('https://keystone.test').setAudience('vncgate').setSubject('shots').setIssuedAt().setExpirationTime('10m').sign(Buffer.from(SECRET));
}, 25 * 60_000);

afterAll(async () => {
  await stopAll();
}, 60_000);

function api(path: string): Promise<Response> {
  return fetch(`${vncgate.origin}${path}`, { headers: { authorization: `Bearer ${bearer}` } });
}

describe('screenshots of a real Ironic node', () => {
  it('GET /v1/screenshots?node= shows the node console; the console check reports it', async () => {
    const node = await ironic.createVncNode({ name: 'shot-node-1', vncHost: xvnc.host, vncPort: xvnc.port });
    expect((await ironic.baremetal(['node', 'console', 'enable', node])).exitCode).toBe(0);
    await ironic.waitForConsole(node, true);
    const r = await api('/v1/screenshots?node=shot-node-1');
    expect(r.status, await r.clone().text()).toBe(200);
    const png = decodePng(Buffer.from(await r.arrayBuffer()));
    expect([png.width, png.height]).toEqual([320, 240]);
    for (const [x, y] of [[0, 0], [319, 239], [160, 120]] as const) expect(pngPixel(png, x, y)).toEqual([0xa0, 0x50, 0x10]);
    const check = await (await api(`/v1/console-checks?node=${node}`)).json();
    expect(check).toMatchObject({ ok: true, security: { choice: 'none' }, desktopName: 'real-ironic-desk', width: 320, height: 240 });
    const probe = await runVncgate(['probe', '--node', 'shot-node-1'], { env, timeoutMs: 30_000 });
    expect(probe.code, probe.stderr).toBe(0);
    expect(probe.json[0]).toMatchObject({ ok: true, node: 'shot-node-1', uuid: node, desktopName: 'real-ironic-desk' });
  });

  it("a node whose console is disabled answers the check with Ironic's code", async () => {
    const node = await ironic.createVncNode({ name: 'shot-node-2', vncHost: xvnc.host, vncPort: xvnc.port });
    const check = await (await api(`/v1/console-checks?node=${node}`)).json();
    expect(check).toMatchObject({ ok: false, error: { code: 'IRONIC_ERR_CONSOLE_DISABLED' } });
    const shot = await api(`/v1/screenshots?node=${node}`);
    expect([shot.status, ((await shot.json()) as { error: { code: string } }).error.code]).toEqual([409, 'IRONIC_ERR_CONSOLE_DISABLED']);
  });
});
