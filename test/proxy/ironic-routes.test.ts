import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { createIronic } from '../../src/ironic/index.js';
import { createLogger } from '../../src/log.js';
import { buildServer, type VncgateServer } from '../../src/proxy/server.js';
import { MemoryTokenStore } from '../../src/tokens/index.js';
import { startFakeIronic, type FakeIronic } from '../ironic/fake-ironic.js';
import { startTinyVncServer } from '../support/tiny-vnc-server.js';
import { wsRfbConnect } from '../support/ws-rfb-client.js';

/** Node consoles through the proxy: vncgate {node} tokens and Ironic's own console URLs. */
let ironic: FakeIronic;
let vnc: Awaited<ReturnType<typeof startTinyVncServer>>;
const servers: VncgateServer[] = [];

async function proxy(ironicCfg: Record<string, unknown> = {}): Promise<{ srv: VncgateServer; tokens: MemoryTokenStore }> {
  const config = loadConfig({
    env: {},
    overrides: { listen: ['127.0.0.1:0'], tls: { plainHttp: true }, ironic: { url: ironic.url, timeoutMs: 2_000, ...ironicCfg }, log: { level: 'silent' } },
  });
  const tokens = new MemoryTokenStore();
  const srv = await buildServer({ config, tokens, log: createLogger({ level: 'silent' }), ironic: createIronic(config)!.resolver });
  servers.push(srv);
  return { srv, tokens };
}

/** The WebSocket URL noVNC opens for Ironic's console URL: the page's `path` parameter, as given. */
const ironicWs = (srv: VncgateServer, node: string, token: string) => `ws://${srv.addresses[0]}/websockify?node=${node}&token=${encodeURIComponent(token)}`;

beforeAll(async () => {
  ironic = await startFakeIronic();
  vnc = await startTinyVncServer({ name: 'node-desk' });
});
afterAll(async () => {
  for (const s of servers) await s.close();
  await ironic.close();
  await vnc.close();
});

describe('Ironic node consoles through vncgate', () => {
  it("opens Ironic's own console URL, reusable by default (as upstream)", async () => {
    const { srv } = await proxy();
    const node = ironic.addNode({ vncPort: vnc.port });
    for (let i = 0; i < 2; i++) {
      const r = await wsRfbConnect(ironicWs(srv, node.uuid, node.token));
      expect(r).toMatchObject({ ok: true, init: { name: 'node-desk' } });
      if (r.ok) r.ws.close();
    }
  });

  it('refuses a token from before a disable/re-enable, and a disabled console', async () => {
    const { srv } = await proxy();
    const node = ironic.addNode({ vncPort: vnc.port });
    const old = node.token;
    node.consoleEnabled = false;
    expect(await wsRfbConnect(ironicWs(srv, node.uuid, old))).toMatchObject({ ok: false, serverReason: 'This console link has expired - the console was disabled; request a new link' });
    node.consoleEnabled = true;
    node.token = 'N'.repeat(43);
    expect(await wsRfbConnect(ironicWs(srv, node.uuid, old))).toMatchObject({ ok: false, serverReason: 'This console link has expired or was replaced - request a new one' });
  });

  it('single-use mode: an Ironic token opens one session', async () => {
    const { srv } = await proxy({ ironicTokenReuse: 'single-use' });
    const node = ironic.addNode({ vncPort: vnc.port });
    const first = await wsRfbConnect(ironicWs(srv, node.uuid, node.token));
    expect(first.ok).toBe(true);
    if (first.ok) first.ws.close();
    expect(await wsRfbConnect(ironicWs(srv, node.uuid, node.token))).toMatchObject({ ok: false, code: 'RFB_ERR_AUTH_FAILED' });
  });

  it('one-session mode: a second live session on the node is refused until the first ends', async () => {
    const { srv } = await proxy({ ironicTokenReuse: 'one-session' });
    const node = ironic.addNode({ vncPort: vnc.port });
    const first = await wsRfbConnect(ironicWs(srv, node.uuid, node.token));
    expect(first.ok).toBe(true);
    expect(await wsRfbConnect(ironicWs(srv, node.uuid, node.token))).toMatchObject({
      ok: false,
      serverReason: 'Another console session is open for this machine - close it first',
    });
    if (first.ok) first.ws.close();
    for (let i = 0; i < 50 && srv.registry.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
    const third = await wsRfbConnect(ironicWs(srv, node.uuid, node.token));
    expect(third.ok).toBe(true);
    if (third.ok) third.ws.close();
  });

  it('vncgate {node} tokens: single use, resolved at connect time, readable refusals', async () => {
    const { srv, tokens } = await proxy();
    const node = ironic.addNode({ name: 'web-07', vncPort: vnc.port });
    const t = await tokens.issue({ kind: 'node', node: 'web-07' }, 60);
    const r = await wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${t.token}`);
    expect(r).toMatchObject({ ok: true, init: { name: 'node-desk' } });
    if (r.ok) r.ws.close();

    ironic.addNode({ name: 'serial-3', consoleInterface: 'ipmitool-socat', consoleType: 'socat' });
    const s = await tokens.issue({ kind: 'node', node: 'serial-3' }, 60);
    const rs = await wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${s.token}`);
    expect(rs.ok).toBe(false);
    if (!rs.ok) expect(rs.serverReason).toMatch(/^Node serial-3 has a socat console, not a graphical one/);

    const u = await tokens.issue({ kind: 'node', node: 'no-such-node' }, 60);
    expect(await wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${u.token}`)).toMatchObject({ ok: false, serverReason: 'This bare-metal node does not exist' });

    node.consoleEnabled = false;
    const d = await tokens.issue({ kind: 'node', node: 'web-07' }, 60);
    const rd = await wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${d.token}`);
    if (!rd.ok) expect(rd.serverReason).toContain('web-07 is not enabled');
    expect(rd.ok).toBe(false);
  });

  it('auto-enable: a {node} token enables a disabled console and connects', async () => {
    const { srv, tokens } = await proxy({ autoEnableConsole: true });
    const node = ironic.addNode({ consoleEnabled: false, vncPort: vnc.port });
    const t = await tokens.issue({ kind: 'node', node: node.uuid }, 60);
    const r = await wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${t.token}`);
    expect(r.ok).toBe(true);
    if (r.ok) r.ws.close();
    expect(node.consoleEnabled).toBe(true);
  });

  it('Ironic unreachable: the browser is told, other sessions are untouched', async () => {
    const { srv, tokens } = await proxy({ retries: 0 });
    const node = ironic.addNode({ vncPort: vnc.port });
    const live = await wsRfbConnect(ironicWs(srv, node.uuid, node.token));
    expect(live.ok).toBe(true);
    ironic.failNext(1, 503);
    const t = await tokens.issue({ kind: 'node', node: node.uuid }, 60);
    expect(await wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${t.token}`)).toMatchObject({
      ok: false,
      serverReason: 'The bare-metal service failed - try again shortly',
    });
    if (live.ok) {
      const echoed = new Promise<Buffer>((res) => live.ws.once('message', (d: Buffer) => res(d)));
      live.ws.send(Buffer.from('alive'));
      expect((await echoed).toString()).toBe('alive');
      live.ws.close();
    }
  });
});
