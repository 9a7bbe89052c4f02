import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { connect as netConnect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import { createNova } from '../../src/nova/index.js';
import { buildServer, type VncgateServer } from '../../src/proxy/server.js';
import { MemoryTokenStore } from '../../src/tokens/index.js';
import { RfbClientHandshake } from '../../src/rfb/index.js';
import { runHandshake } from '../../src/proxy/backend-handshake.js';
import { tcpConnect } from '../../src/proxy/backend-tcp.js';
import { ReadBuffer } from '../../src/proxy/read-buffer.js';
import { getTestPki, type TestPki } from '../support/pki.js';
import { stopAll } from '../support/proc.js';
import { wsRfbConnect } from '../support/ws-rfb-client.js';
import { startXvnc, type XvncServer } from '../support/xvnc.js';

/**
 * The compute-side handshake through the proxy against a real Xvnc speaking VeNCrypt X509None —
 * what Nova's `[vnc] auth_schemes = vencrypt` with `vencrypt_ca_certs`/`vencrypt_client_*` does —
 * for a Nova token and for a vncgate token, and the readable refusals when the trust is wrong.
 */
let pki: TestPki;
let good: XvncServer;
let wrongName: XvncServer;
let nova: Server;
let novaUrl: string;
const novaTokens = new Map<string, number>();
const servers: VncgateServer[] = [];
const tokens = new MemoryTokenStore();

async function proxy(profile: Record<string, unknown>): Promise<VncgateServer> {
  const config = loadConfig({
    env: {},
    overrides: {
      listen: ['127.0.0.1:0'],
      tls: { plainHttp: true },
      backends: { allowedTargets: ['127.0.0.0/8', '::1/128'], profiles: { 'nova-vencrypt': profile } },
      nova: { url: novaUrl, auth: 'noauth', profile: 'nova-vencrypt' },
      log: { level: 'silent' },
    },
  });
  const srv = await buildServer({ config, tokens, log: createLogger({ level: 'silent' }), nova: createNova(config) });
  servers.push(srv);
  return srv;
}

/** How many 'close' listeners a TLSSocket over a connected TCP socket has before any code of ours touches it. */
async function nodeOwnCloseListeners(): Promise<number> {
  const idle = createNetServer((s) => s.destroy());
  await new Promise<void>((r) => idle.listen(0, '127.0.0.1', r));
  const tcp = netConnect((idle.address() as AddressInfo).port, '127.0.0.1');
  await once(tcp, 'connect');
  const t = tlsConnect({ socket: tcp, rejectUnauthorized: false });
  t.on('error', () => undefined);
  const n = t.listenerCount('close');
  t.destroy();
  await new Promise<void>((r) => idle.close(() => r()));
  return n;
}

function novaToken(port: number): string {
  const t = randomUUID();
  novaTokens.set(t, port);
  return t;
}

beforeAll(async () => {
  pki = await getTestPki();
  good = await startXvnc({ securityTypes: ['X509None'], x509: 'server', desktopName: 'compute-x509' });
  wrongName = await startXvnc({ securityTypes: ['X509None'], x509: 'wrongHost', desktopName: 'compute-wrong-name' });
  nova = createServer((req, res) => {
    const m = /\/os-console-auth-tokens\/([^/?]+)$/.exec(req.url ?? '');
    const port = m ? novaTokens.get(m[1]!) : undefined;
    if (port === undefined) return void res.writeHead(404).end('{"itemNotFound":{"code":404,"message":"Token not found"}}');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ console: { instance_uuid: randomUUID(), host: '127.0.0.1', port, internal_access_path: null } }));
  });
  await new Promise<void>((r) => nova.listen(0, '127.0.0.1', r));
  novaUrl = `http://127.0.0.1:${(nova.address() as { port: number }).port}/v2.1`;
});

afterAll(async () => {
  for (const s of servers) await s.close();
  await new Promise<void>((r) => nova.close(() => r()));
  await stopAll();
});

describe('VeNCrypt X509None toward the console endpoint, through the proxy', () => {
  it('a Nova token and a vncgate token open the X509None console with the CA and a client certificate', async () => {
    const srv = await proxy({ security: ['vencrypt-x509none', 'none'], caFile: pki.ca.cert.path, certFile: pki.client.cert.path, keyFile: pki.client.key.path });
    const viaNova = await wsRfbConnect(`ws://${srv.addresses[0]}/?token=${novaToken(good.port)}`);
    expect(viaNova).toMatchObject({ ok: true, init: { name: 'compute-x509' } });
    if (viaNova.ok) viaNova.ws.close();
    const t = await tokens.issue({ kind: 'static', host: '127.0.0.1', port: good.port, profile: 'nova-vencrypt' }, 60);
    const viaToken = await wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${t.token}`);
    expect(viaToken).toMatchObject({ ok: true, init: { name: 'compute-x509' } });
    if (viaToken.ok) viaToken.ws.close();
  });

  it('once TLS is up, the upgrade leaves no close listener on the TLS socket (it would keep the engine, and its password, alive for the whole session)', async () => {
    const security = { security: ['vencrypt-x509none'] as const, tls: { ca: pki.ca.cert.pem, cert: pki.client.cert.pem, key: pki.client.key.pem } };
    const raw = await tcpConnect('127.0.0.1', good.port, 5_000, undefined, new ReadBuffer(), null);
    const engine = new RfbClientHandshake(security);
    const out = await runHandshake(raw, engine, '127.0.0.1', { port: good.port, security, handshakeTimeoutMs: 5_000 });
    try {
      expect(out.tls).not.toBeNull();
      expect(out.socket).not.toBe(raw);
      // What Node's TLSSocket itself listens with, wrapping a connected socket; anything beyond is ours.
      expect(out.socket.listenerCount('close')).toBe(await nodeOwnCloseListeners());
    } finally {
      out.socket.destroy();
    }
  });

  it('without the CA the user is told the certificate is untrusted (no crash, other sessions fine)', async () => {
    const srv = await proxy({ security: ['vencrypt-x509none'] });
    expect(await wsRfbConnect(`ws://${srv.addresses[0]}/?token=${novaToken(good.port)}`)).toMatchObject({
      ok: false,
      serverReason: 'The console endpoint presented an untrusted certificate',
    });
  });

  it('a certificate for another name is refused, unless hostname verification is turned off for the profile', async () => {
    const strict = await proxy({ security: ['vencrypt-x509none'], caFile: pki.ca.cert.path });
    expect(await wsRfbConnect(`ws://${strict.addresses[0]}/?token=${novaToken(wrongName.port)}`)).toMatchObject({
      ok: false,
      serverReason: 'The console endpoint certificate does not match its address',
    });
    const lax = await proxy({ security: ['vencrypt-x509none'], caFile: pki.ca.cert.path, verifyHostname: false });
    const r = await wsRfbConnect(`ws://${lax.addresses[0]}/?token=${novaToken(wrongName.port)}`);
    expect(r).toMatchObject({ ok: true, init: { name: 'compute-wrong-name' } });
    if (r.ok) r.ws.close();
  });

  it('a profile that lists X509 with a missing certificate file is a start-up error naming it, not a crash', () => {
    expect(() =>
      loadConfig({
        env: {},
        overrides: { tls: { plainHttp: true }, backends: { profiles: { x: { security: ['vencrypt-x509none'], certFile: '/nonexistent/client.crt', keyFile: '/nonexistent/client.key' } } } },
      }),
    ).toThrow(/backends\.profiles\.x\.certFile: cannot read \/nonexistent\/client\.crt/);
  });
});
