/**
 * Smoke test of the real-Ironic harness (test/support/ironic.ts): a real Ironic 29 (2025.1) in a
 * trixie chroot, pointed by our console container provider at a real Xvnc, driven through its
 * REST API and the real `baremetal` CLI. It also pins what real Ironic returns, as fixtures in
 * test/ironic/fixtures/ that unit tests of vncgate's Ironic client replay (see the README there).
 *
 * Fixtures: each run compares what Ironic returns with the committed file, after replacing the
 * run-specific values (node UUIDs, tokens, ports, request ids) by placeholders. To re-record them:
 *   VNCGATE_IRONIC_RECORD_FIXTURES=1 npx vitest run --project integration test/ironic/real-ironic.int.test.ts
 *
 * The first run on a machine builds the chroot (~2 min); the hook timeout allows for that.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IRONIC_MICROVERSION, startRealIronic, type ConsoleState, type IronicResponse, type RealIronic } from '../support/ironic.js';
import { stopAll } from '../support/proc.js';
import { wsRfbConnect } from '../support/ws-rfb-client.js';
import { startXvnc, type XvncServer } from '../support/xvnc.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const RECORD = process.env['VNCGATE_IRONIC_RECORD_FIXTURES'] === '1';
const TOKEN = /^[A-Za-z0-9_-]{43}$/;
const UNKNOWN_UUID = '00000000-0000-4000-8000-000000000000';

let xvnc: XvncServer;
let ironic: RealIronic;
const timings: Record<string, number> = {};
const suiteStarted = performance.now();

beforeAll(async () => {
  let t = performance.now();
  xvnc = await startXvnc({ securityTypes: ['None'], desktopName: 'vncgate-ironic-smoke' });
  timings['xvncStartMs'] = performance.now() - t;
  t = performance.now();
  ironic = await startRealIronic({ tokenTimeoutS: 600 });
  timings['startRealIronicMs'] = performance.now() - t;
  timings['chrootMs'] = ironic.chroot.buildMs;
  timings['dbsyncMs'] = ironic.dbsyncMs;
  timings['ironicStartupMs'] = ironic.startupMs;
}, 25 * 60_000);

afterAll(async () => {
  const t = performance.now();
  await stopAll();
  timings['stopMs'] = performance.now() - t;
  timings['totalMs'] = performance.now() - suiteStarted;
  const rounded = Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v)]));
  process.stderr.write(`[real-ironic] timings ${JSON.stringify(rounded)}\n`);
}, 60_000);

// --- fixtures ----------------------------------------------------------------------------------

/** Response headers worth replaying; Date and Content-Length vary with the run. */
const FIXTURE_HEADERS = [
  'content-type',
  'location',
  'openstack-request-id',
  'x-openstack-ironic-api-minimum-version',
  'x-openstack-ironic-api-maximum-version',
  'x-openstack-ironic-api-version',
] as const;

interface Fixture {
  description: string;
  ironic: string;
  request: { method: string; path: string; microversion: string | null; body?: unknown };
  response: { status: number; headers: Record<string, string>; body: unknown };
  /** Placeholder → the run-specific value it stands for in this file. */
  placeholders: Record<string, string | number>;
}

function replaceIn(value: unknown, placeholders: Record<string, string | number>): unknown {
  const strings = Object.entries(placeholders)
    .filter((e): e is [string, string] => typeof e[1] === 'string')
    .sort((a, b) => b[1].length - a[1].length);
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') {
      let s = v.replace(/req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<request-id>');
      for (const [ph, actual] of strings) s = s.split(actual).join(ph);
      return s;
    }
    if (typeof v === 'number') {
      const hit = Object.entries(placeholders).find(([, actual]) => actual === v);
      return hit?.[0] ?? v;
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(value);
}

/**
 * Records (VNCGATE_IRONIC_RECORD_FIXTURES=1) or checks one request/response pair. The file keeps
 * the real values; the check compares both sides with run-specific values replaced.
 */
function fixture(
  name: string,
  description: string,
  request: Fixture['request'],
  res: IronicResponse,
  placeholders: Record<string, string | number>,
): void {
  const headers = Object.fromEntries(FIXTURE_HEADERS.flatMap((h) => (res.headers[h] !== undefined ? [[h, res.headers[h]]] : [])));
  const observed: Fixture = {
    description,
    ironic: `ironic-common ${ironic.chroot.ironicVersion}`,
    request,
    response: { status: res.status, headers, body: res.json ?? res.text },
    placeholders,
  };
  const file = join(FIXTURES, `${name}.json`);
  if (RECORD) {
    mkdirSync(FIXTURES, { recursive: true });
    writeFileSync(file, `${JSON.stringify(observed, null, 2)}\n`);
    return;
  }
  if (!existsSync(file)) throw new Error(`fixture ${file} missing: re-record with VNCGATE_IRONIC_RECORD_FIXTURES=1`);
  const recorded = JSON.parse(readFileSync(file, 'utf8')) as Fixture;
  expect(replaceIn({ request: observed.request, response: observed.response }, placeholders), `fixture ${name}`).toEqual(
    replaceIn({ request: recorded.request, response: recorded.response }, recorded.placeholders),
  );
}

// --- helpers -----------------------------------------------------------------------------------

const base = (): Record<string, string> => ({ '<api-url>': ironic.url, '<vnc-public-url>': ironic.vncPublicUrl });

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The token in a console URL, after checking the URL's exact form. */
function tokenOf(state: ConsoleState, uuid: string): string {
  const info = state.console_info as { type?: string; url?: string } | null;
  expect(info?.type).toBe('vnc');
  const m = new RegExp(`^${escapeRegExp(ironic.vncPublicUrl)}\\?path=websockify%3Fnode%3D${uuid}%26token%3D([A-Za-z0-9_-]+)$`).exec(info?.url ?? '');
  expect(m, `console URL ${info?.url ?? ''}`).not.toBeNull();
  const token = m?.[1] ?? '';
  expect(token).toMatch(TOKEN);
  return token;
}

async function put(uuid: string, enabled: unknown, microversion: string | null = IRONIC_MICROVERSION): Promise<IronicResponse> {
  return ironic.api('PUT', `/v1/nodes/${uuid}/states/console`, { enabled }, { microversion });
}

// --- tests -------------------------------------------------------------------------------------

describe('real Ironic 29 (2025.1) harness', () => {
  let vncNode = '';
  let firstToken = '';

  it('serves its API on loopback with microversions 1.1 to 1.96', async () => {
    expect(ironic.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(ironic.chroot.ironicVersion).toMatch(/^1:29\./);
    expect(ironic.minMicroversion).toBe('1.1');
    expect(ironic.maxMicroversion).toBe(IRONIC_MICROVERSION);

    const v1 = await ironic.api('GET', '/v1', undefined, { microversion: null });
    expect(v1.status).toBe(200);
    expect(v1.headers['x-openstack-ironic-api-version']).toBe('1.1');
    fixture('versions-v1-no-header', 'GET /v1 without a microversion header: the server uses the minimum, 1.1', { method: 'GET', path: '/v1', microversion: null }, v1, base());

    const tooNew = await ironic.api('GET', '/v1/nodes', undefined, { microversion: '1.97' });
    expect(tooNew.status).toBe(406);
    expect(tooNew.headers['x-openstack-ironic-api-version']).toBeUndefined();
    fixture('error-406-microversion-too-new', 'A microversion above the maximum: 406, and a different error body shape', { method: 'GET', path: '/v1/nodes', microversion: '1.97' }, tooNew, base());
  });

  it('enables a fake-graphical console with the real baremetal CLI and issues a noVNC URL for our Xvnc', async () => {
    vncNode = await ironic.createVncNode({ name: 'smoke-vnc', vncHost: xvnc.host, vncPort: xvnc.port });
    const before = await ironic.api('GET', `/v1/nodes/${vncNode}/states/console`);
    expect(before.json).toEqual({ console_enabled: false, console_info: null });
    fixture('console-get-disabled', 'GET states/console of a graphical node whose console is off', { method: 'GET', path: `/v1/nodes/${vncNode}/states/console`, microversion: IRONIC_MICROVERSION }, before, { ...base(), '<node-uuid>': vncNode });

    const t = performance.now();
    const cli = await ironic.baremetal(['node', 'console', 'enable', vncNode]);
    timings['cliEnableMs'] = performance.now() - t;
    expect(cli.exitCode, cli.stderr).toBe(0);
    const state = await ironic.waitForConsole(vncNode, true);
    timings['enableToEnabledMs'] = performance.now() - t;
    expect(state.console_enabled).toBe(true);
    firstToken = tokenOf(state, vncNode);

    const got = await ironic.api('GET', `/v1/nodes/${vncNode}/states/console`);
    fixture('console-get-enabled-vnc', 'GET states/console of an enabled fake-graphical console', { method: 'GET', path: `/v1/nodes/${vncNode}/states/console`, microversion: IRONIC_MICROVERSION }, got, { ...base(), '<node-uuid>': vncNode, '<token>': firstToken });

    const node = await ironic.api('GET', `/v1/nodes/${vncNode}?fields=driver_internal_info,console_enabled,console_interface`);
    expect(node.status).toBe(200);
    expect(node.json).toMatchObject({
      console_enabled: true,
      console_interface: 'fake-graphical',
      // The token is masked even for an admin (default show_password policy): the console URL is
      // the only place it appears.
      driver_internal_info: { vnc_host: xvnc.host, vnc_port: xvnc.port, novnc_secret_token: '******', novnc_secret_token_created: '******' },
    });
    fixture('node-fields-console-enabled', 'GET node ?fields=driver_internal_info,console_enabled,console_interface while the console is on', { method: 'GET', path: `/v1/nodes/${vncNode}?fields=driver_internal_info,console_enabled,console_interface`, microversion: IRONIC_MICROVERSION }, node, { ...base(), '<node-uuid>': vncNode, '<vnc-port>': xvnc.port });

    const noHeader = await ironic.api('GET', `/v1/nodes/${vncNode}/states/console`, undefined, { microversion: null });
    expect(noHeader.json).toEqual(got.json);
    fixture('console-get-enabled-vnc-no-header', 'GET states/console without a microversion header (1.1): same body', { method: 'GET', path: `/v1/nodes/${vncNode}/states/console`, microversion: null }, noHeader, { ...base(), '<node-uuid>': vncNode, '<token>': firstToken });

    const byName = await ironic.api('GET', '/v1/nodes/smoke-vnc/states/console');
    expect(byName.json).toEqual(got.json);

    const show = await ironic.baremetal(['node', 'console', 'show', vncNode, '-f', 'json']);
    expect(show.exitCode, show.stderr).toBe(0);
    expect(JSON.parse(show.stdout)).toEqual(got.json);

    const calls = await ironic.providerCalls();
    expect(calls.filter((c) => c.event === 'start')).toEqual([expect.objectContaining({ node: vncNode, app_name: 'fake', host: xvnc.host, port: xvnc.port })]);
  });

  it("Ironic's own noVNC proxy relays the issued token to our Xvnc", async () => {
    const url = `ws://127.0.0.1:${ironic.novncPort}/websockify?node=${vncNode}&token=${firstToken}`;
    const r = await wsRfbConnect(url, { timeoutMs: 10_000 });
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.init.name).toBe(xvnc.desktopName);
      r.ws.close();
    }
  });

  it('PUT answers 202 with a Location; disable clears the endpoint; re-enable issues a new token', async () => {
    const path = `/v1/nodes/${vncNode}/states/console`;
    const again = await put(vncNode, true);
    expect(again.status).toBe(202);
    // Enabling an enabled console is a no-op: same token.
    expect(tokenOf(await ironic.waitForConsole(vncNode, true), vncNode)).toBe(firstToken);

    const off = await put(vncNode, false);
    expect(off.status).toBe(202);
    expect(off.text).toBe('');
    expect(off.headers['location']).toBe(`${ironic.url}${path}`);
    fixture('console-put-disable-202', 'PUT states/console {"enabled": false}: 202, empty body, Location; the change is asynchronous', { method: 'PUT', path, microversion: IRONIC_MICROVERSION, body: { enabled: false } }, off, { ...base(), '<node-uuid>': vncNode });
    expect(await ironic.waitForConsole(vncNode, false)).toEqual({ console_enabled: false, console_info: null });

    const node = await ironic.api('GET', `/v1/nodes/${vncNode}?fields=driver_internal_info,console_enabled,console_interface`);
    expect(node.json).toMatchObject({ console_enabled: false, driver_internal_info: {} });
    fixture('node-fields-console-disabled', 'GET node ?fields=driver_internal_info,... after disable: vnc_* and token keys are gone', { method: 'GET', path: `/v1/nodes/${vncNode}?fields=driver_internal_info,console_enabled,console_interface`, microversion: IRONIC_MICROVERSION }, node, { ...base(), '<node-uuid>': vncNode });

    const on = await put(vncNode, true);
    expect(on.status).toBe(202);
    fixture('console-put-enable-202', 'PUT states/console {"enabled": true}: 202, empty body, Location', { method: 'PUT', path, microversion: IRONIC_MICROVERSION, body: { enabled: true } }, on, { ...base(), '<node-uuid>': vncNode });
    const secondToken = tokenOf(await ironic.waitForConsole(vncNode, true), vncNode);
    expect(secondToken).not.toBe(firstToken);

    // The old token no longer opens the console at Ironic's proxy; the new one does.
    const stale = await wsRfbConnect(`ws://127.0.0.1:${ironic.novncPort}/websockify?node=${vncNode}&token=${firstToken}`, { timeoutMs: 10_000 }).catch((e: unknown) => ({ ok: false as const, error: e }));
    expect(stale.ok).toBe(false);
    const fresh = await wsRfbConnect(`ws://127.0.0.1:${ironic.novncPort}/websockify?node=${vncNode}&token=${secondToken}`, { timeoutMs: 10_000 });
    expect(fresh.ok).toBe(true);
    if (fresh.ok) fresh.ws.close();

    const calls = (await ironic.providerCalls()).filter((c) => c.node === vncNode).map((c) => c.event);
    expect(calls).toEqual(['start', 'stop', 'start']);

    const bad = await put(vncNode, 'maybe');
    expect(bad.status).toBe(400);
    fixture('error-400-enabled-not-boolean', 'PUT states/console with a non-boolean "enabled"', { method: 'PUT', path, microversion: IRONIC_MICROVERSION, body: { enabled: 'maybe' } }, bad, { ...base(), '<node-uuid>': vncNode });
  });

  it('an unknown node is 404 on GET and PUT, by UUID and by name', async () => {
    const get = await ironic.api('GET', `/v1/nodes/${UNKNOWN_UUID}/states/console`);
    expect(get.status).toBe(404);
    fixture('error-404-unknown-node-get', 'GET states/console of a UUID no node has', { method: 'GET', path: `/v1/nodes/${UNKNOWN_UUID}/states/console`, microversion: IRONIC_MICROVERSION }, get, base());
    const putRes = await put(UNKNOWN_UUID, true);
    expect(putRes.status).toBe(404);
    fixture('error-404-unknown-node-put', 'PUT states/console of a UUID no node has', { method: 'PUT', path: `/v1/nodes/${UNKNOWN_UUID}/states/console`, microversion: IRONIC_MICROVERSION, body: { enabled: true } }, putRes, base());
    const byName = await ironic.api('GET', '/v1/nodes/no-such-node/states/console');
    expect(byName.status).toBe(404);
    fixture('error-404-unknown-node-name', 'GET states/console of an unknown node name (names need >= 1.5)', { method: 'GET', path: '/v1/nodes/no-such-node/states/console', microversion: IRONIC_MICROVERSION }, byName, base());
    const cli = await ironic.baremetal(['node', 'console', 'show', UNKNOWN_UUID]);
    expect(cli.exitCode).not.toBe(0);
    expect(cli.stderr).toContain('could not be found');
  });

  it('a no-console node: GET says disabled (200), PUT is refused (400)', async () => {
    const uuid = await ironic.createSerialNode({ consoleInterface: 'no-console' });
    const get = await ironic.api('GET', `/v1/nodes/${uuid}/states/console`);
    expect(get.status).toBe(200);
    expect(get.json).toEqual({ console_enabled: false, console_info: null });
    fixture('console-get-no-console', 'GET states/console of a node with console_interface=no-console: 200, not an error', { method: 'GET', path: `/v1/nodes/${uuid}/states/console`, microversion: IRONIC_MICROVERSION }, get, { ...base(), '<node-uuid>': uuid });
    const putRes = await put(uuid, true);
    expect(putRes.status).toBe(400);
    fixture('error-400-no-console-put', 'PUT states/console {"enabled": true} on a no-console node', { method: 'PUT', path: `/v1/nodes/${uuid}/states/console`, microversion: IRONIC_MICROVERSION, body: { enabled: true } }, putRes, { ...base(), '<node-uuid>': uuid });
    const cli = await ironic.baremetal(['node', 'console', 'enable', uuid]);
    expect(cli.exitCode).not.toBe(0);
    expect(cli.stderr).toContain('does not support console');
  });

  it('a fake (non-graphical) console enables with console_info {}', async () => {
    const uuid = await ironic.createSerialNode({ consoleInterface: 'fake' });
    expect((await put(uuid, true)).status).toBe(202);
    const state = await ironic.waitForConsole(uuid, true);
    expect(state).toEqual({ console_enabled: true, console_info: {} });
    const got = await ironic.api('GET', `/v1/nodes/${uuid}/states/console`);
    fixture('console-get-enabled-fake', 'GET states/console of an enabled `fake` console: console_info is {} (no type, no url)', { method: 'GET', path: `/v1/nodes/${uuid}/states/console`, microversion: IRONIC_MICROVERSION }, got, { ...base(), '<node-uuid>': uuid });
  });

  it('an ipmitool-socat serial console reports type socat with a tcp:// URL', async () => {
    const uuid = await ironic.createSerialNode({ consoleInterface: 'ipmitool-socat' });
    const t = performance.now();
    expect((await put(uuid, true)).status).toBe(202);
    const state = await ironic.waitForConsole(uuid, true, { timeoutMs: 45_000, intervalMs: 250 });
    timings['socatEnableMs'] = performance.now() - t;
    const info = state.console_info as { type?: string; url?: string };
    expect(info.type).toBe('socat');
    expect(info.url).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    const got = await ironic.api('GET', `/v1/nodes/${uuid}/states/console`);
    fixture('console-get-enabled-socat', 'GET states/console of an enabled ipmitool-socat (serial) console', { method: 'GET', path: `/v1/nodes/${uuid}/states/console`, microversion: IRONIC_MICROVERSION }, got, { ...base(), '<node-uuid>': uuid, '<socat-url>': info.url ?? '' });
    expect((await put(uuid, false)).status).toBe(202);
    await ironic.waitForConsole(uuid, false, { timeoutMs: 45_000, intervalMs: 250 });
  }, 120_000);

  it('a redfish-graphical console also relays to our Xvnc, without contacting the BMC', async () => {
    const uuid = await ironic.createVncNode({ vncHost: xvnc.host, vncPort: xvnc.port, consoleInterface: 'redfish-graphical' });
    expect((await put(uuid, true)).status).toBe(202);
    const state = await ironic.waitForConsole(uuid, true);
    const token = tokenOf(state, uuid);
    const calls = (await ironic.providerCalls()).filter((c) => c.node === uuid);
    expect(calls).toEqual([expect.objectContaining({ event: 'start', app_name: 'redfish-graphical', port: xvnc.port })]);
    const r = await wsRfbConnect(`ws://127.0.0.1:${ironic.novncPort}/websockify?node=${uuid}&token=${token}`, { timeoutMs: 10_000 });
    expect(r.ok).toBe(true);
    if (r.ok) r.ws.close();
  });

  it('the provider refuses an off-loopback VNC host, and Ironic records it as last_error', async () => {
    const uuid = await ironic.createVncNode({ vncHost: '192.0.2.1', vncPort: 5900 });
    expect((await put(uuid, true)).status).toBe(202);
    const deadline = performance.now() + 15_000;
    let lastError: unknown = null;
    while (performance.now() < deadline) {
      const node = await ironic.api('GET', `/v1/nodes/${uuid}?fields=last_error,console_enabled`);
      lastError = (node.json as { last_error?: unknown }).last_error;
      if (lastError !== null && lastError !== undefined) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(String(lastError)).toContain('not a loopback address');
    expect((await ironic.api('GET', `/v1/nodes/${uuid}/states/console`)).json).toEqual({ console_enabled: false, console_info: null });
  });
});
