import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { ERROR_CODES, VncgateError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { NovaApiLookup, createNova, isNovaToken, novaTokenHash, parseCellDbUrl, plainDbUrl } from '../../src/nova/index.js';
import { KeystoneSession } from '../../src/openstack/index.js';
import { buildServer, type VncgateServer } from '../../src/proxy/server.js';
import { MemoryTokenStore } from '../../src/tokens/index.js';
import { startTinyVncServer } from '../support/tiny-vnc-server.js';
import { wsRfbConnect } from '../support/ws-rfb-client.js';
import { APP_CRED, startFakeKeystone, type FakeKeystone } from '../openstack/fake-keystone.js';

/**
 * An in-process Nova API answering `GET /v2.1/os-console-auth-tokens/{token}` the way real Nova 31
 * does (real-openstack.md): 2.31–2.100 accepted, 2.30 → 400, 2.101 → 406; 200 with
 * {"console": {instance_uuid, host, port, internal_access_path}}; 404 "Token not found" for unknown
 * and expired tokens; noauth2 admin is `X-Auth-Token: admin:admin`, or a token from the fake
 * Keystone (whose catalog lists this API as `compute`); others get 403.
 */
type Entry = { host: string; port: number; instance: string; path: string | null };
const valid = new Map<string, Entry>();
const seen: { url: string; version: string | undefined; token: string | undefined }[] = [];
let nova: Server;
let novaUrl: string;
let vnc: Awaited<ReturnType<typeof startTinyVncServer>>;
let keystone: FakeKeystone;
const servers: VncgateServer[] = [];

function minor(v: string | undefined): number {
  const m = /^2\.(\d+)$/.exec(v ?? '');
  return m ? Number(m[1]) : 1;
}

beforeAll(async () => {
  nova = createServer((req, res) => {
    const version = req.headers['x-openstack-nova-api-version'] as string | undefined;
    seen.push({ url: req.url ?? '', version, token: req.headers['x-auth-token'] as string | undefined });
    const m = /^\/v2\.1\/os-console-auth-tokens\/([^/?]+)$/.exec(req.url ?? '');
    const send = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (!m) return send(404, { itemNotFound: { code: 404, message: 'Not found' } });
    if (minor(version) < 31) return send(400, { badRequest: { code: 400, message: 'The requested console type details are not accessible' } });
    if (minor(version) > 100) return send(406, { computeFault: { code: 406, message: 'Version not supported' } });
    const authToken = req.headers['x-auth-token'];
    if (typeof authToken === 'string' && authToken.startsWith('tok-') && !keystone.isValid(authToken)) return send(401, { error: { code: 401, title: 'Unauthorized' } });
    if (authToken !== 'admin:admin' && !keystone.isValid(authToken)) return send(403, { forbidden: { code: 403, message: 'Policy does not allow' } });
    const e = valid.get(decodeURIComponent(m[1]!));
    if (!e) return send(404, { itemNotFound: { code: 404, message: 'Token not found' } });
    return send(200, { console: { instance_uuid: e.instance, host: e.host, port: e.port, internal_access_path: e.path } });
  });
  await new Promise<void>((r) => nova.listen(0, '127.0.0.1', r));
  novaUrl = `http://127.0.0.1:${(nova.address() as { port: number }).port}/v2.1`;
  keystone = await startFakeKeystone([{ type: 'compute', endpoints: [{ interface: 'internal', region: 'R1', url: novaUrl }] }]);
  vnc = await startTinyVncServer({ name: 'instance-desk' });
});

afterAll(async () => {
  for (const s of servers) await s.close();
  await new Promise<void>((r) => nova.close(() => r()));
  await keystone.close();
  await vnc.close();
});

function token(entry: Partial<Entry> = {}): string {
  const t = randomUUID();
  valid.set(t, { host: '127.0.0.1', port: vnc.port, instance: randomUUID(), path: null, ...entry });
  return t;
}

const proxyTokens = new MemoryTokenStore();

async function proxy(nova: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<VncgateServer> {
  const config = loadConfig({
    env: {},
    overrides: {
      listen: ['127.0.0.1:0'],
      tls: { plainHttp: true },
      backends: { allowedTargets: ['127.0.0.0/8', '::1/128'] },
      nova: { url: novaUrl, auth: 'noauth', timeoutMs: 2_000, ...nova },
      log: { level: 'silent' },
      ...extra,
    },
  });
  const srv = await buildServer({ config, tokens: proxyTokens, log: createLogger({ level: 'silent' }), nova: createNova(config) });
  servers.push(srv);
  return srv;
}

describe('Nova API token lookup', () => {
  it('resolves a token at microversion 2.31 as admin (noauth2)', async () => {
    const t = token({ path: null });
    const lookup = new NovaApiLookup({ url: novaUrl, auth: { type: 'noauth' }, timeoutMs: 2_000, retries: 0 });
    const c = await lookup.lookup(t, new AbortController().signal);
    expect(c).toMatchObject({ host: '127.0.0.1', port: vnc.port, consoleType: null, internalAccessPath: null });
    const req = seen.at(-1)!;
    expect(req.version).toBe('2.31');
    expect(req.token).toBe('admin:admin');
  });

  it('unknown tokens are TOKEN_ERR_INVALID; known ones resolve through any base URL form', async () => {
    const lookup = new NovaApiLookup({ url: novaUrl, auth: { type: 'noauth' }, timeoutMs: 2_000, retries: 0 });
    await expect(lookup.lookup(randomUUID(), new AbortController().signal)).rejects.toMatchObject({ code: 'TOKEN_ERR_INVALID' });
    const t = token();
    const keystoneless = new NovaApiLookup({ url: novaUrl.replace('127.0.0.1', 'localhost'), auth: { type: 'noauth' }, timeoutMs: 2_000, retries: 0 });
    expect((await keystoneless.lookup(t, new AbortController().signal)).port).toBe(vnc.port);
  });

  it('token format and hash are Nova’s', () => {
    expect(isNovaToken('b60bcfc3-5fd4-4d21-986c-e83379107819')).toBe(true);
    expect(isNovaToken('b60bcfc35fd44d21986ce83379107819')).toBe(false);
    // sha256("abc") as Nova's get_sha256_str computes it.
    expect(novaTokenHash('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it("parses Nova's [database] connection URLs, keeping sockets and TLS options", () => {
    expect(parseCellDbUrl('mysql+pymysql://nova:p%40ss@db.example:3306/nova_cell1?charset=utf8&ssl_ca=/etc/ssl/ca.pem')).toEqual({
      kind: 'mysql',
      host: 'db.example',
      port: 3306,
      user: 'nova',
      password: 'p@ss',
      database: 'nova_cell1',
      socket: null,
      tls: { ca: '/etc/ssl/ca.pem', cert: null, key: null, required: true },
    });
    expect(parseCellDbUrl('mysql+pymysql://nova:pw@/nova?unix_socket=/run/mysqld/mysqld.sock')).toMatchObject({ host: null, socket: '/run/mysqld/mysqld.sock' });
    expect(parseCellDbUrl('postgresql+psycopg2://nova:pw@/nova?host=/var/run/postgresql')).toMatchObject({ kind: 'postgres', socket: '/var/run/postgresql' });
    expect(parseCellDbUrl('postgresql://nova@[fd00::5]:5433/nova?sslmode=require')).toMatchObject({ host: 'fd00::5', port: 5433, tls: { required: true } });
    expect(parseCellDbUrl('MYSQL://nova@db/nova').kind).toBe('mysql');
  });

  it('SQLAlchemy database URLs become driver URLs', () => {
    expect(plainDbUrl('mysql+pymysql://nova:pw@db.example:3306/nova_cell1?charset=utf8')).toEqual({ kind: 'mysql', url: 'mysql://nova:pw@db.example:3306/nova_cell1' });
    expect(plainDbUrl('postgresql+psycopg2://nova@db/nova').kind).toBe('postgres');
    expect(() => plainDbUrl('sqlite:///nova.db')).toThrow(VncgateError);
  });
});

describe("Nova's console URLs through vncgate", () => {
  it('opens /?token=<uuid> (what noVNC makes of vnc_lite.html?path=%3Ftoken%3D…), reusable like Nova', async () => {
    const srv = await proxy();
    const t = token();
    for (let i = 0; i < 2; i++) {
      const r = await wsRfbConnect(`ws://${srv.addresses[0]}/?token=${t}`);
      expect(r).toMatchObject({ ok: true, init: { name: 'instance-desk' } });
      if (r.ok) r.ws.close();
    }
  });

  it('takes the token from a cookie when the URL has none', async () => {
    const srv = await proxy();
    const t = token();
    const r = await wsRfbConnect(`ws://${srv.addresses[0]}/websockify`, { headers: { cookie: `lang=en; token=${t}` } });
    expect(r).toMatchObject({ ok: true, init: { name: 'instance-desk' } });
    if (r.ok) r.ws.close();
  });

  it('refuses unknown and expired tokens with the readable reason', async () => {
    const srv = await proxy();
    const t = token();
    valid.delete(t); // expired: Nova answers 404
    expect(await wsRfbConnect(`ws://${srv.addresses[0]}/?token=${t}`)).toMatchObject({
      ok: false,
      serverReason: 'This console link has expired or was already used - request a new one',
    });
  });

  it('single-use mode lets a Nova token open one session', async () => {
    const srv = await proxy({ tokenReuse: 'single-use' });
    const t = token();
    const first = await wsRfbConnect(`ws://${srv.addresses[0]}/?token=${t}`);
    expect(first.ok).toBe(true);
    if (first.ok) first.ws.close();
    expect((await wsRfbConnect(`ws://${srv.addresses[0]}/?token=${t}`)).ok).toBe(false);
  });

  it('an internal_access_path is opened as an HTTP CONNECT tunnel before RFB', async () => {
    const tunnelSeen: string[] = [];
    const { createServer: createTcp, connect } = await import('node:net');
    const tunnel = createTcp((sock) => {
      sock.once('data', (d: Buffer) => {
        tunnelSeen.push(d.toString('latin1'));
        const up = connect(vnc.port, '127.0.0.1', () => {
          sock.write('HTTP/1.1 200 OK\r\n\r\n');
          sock.pipe(up).pipe(sock);
        });
      });
    });
    await new Promise<void>((r) => tunnel.listen(0, '127.0.0.1', r));
    try {
      const srv = await proxy();
      const t = token({ port: (tunnel.address() as { port: number }).port, path: '51af38c3-555e-4884-a314-6c8cdde37444' });
      const r = await wsRfbConnect(`ws://${srv.addresses[0]}/?token=${t}`);
      expect(r).toMatchObject({ ok: true, init: { name: 'instance-desk' } });
      expect(tunnelSeen[0]).toBe('CONNECT 51af38c3-555e-4884-a314-6c8cdde37444 HTTP/1.1\r\n\r\n');
      if (r.ok) r.ws.close();
    } finally {
      tunnel.close();
    }
  });

  it('vncgate tokens still work beside Nova tokens (43 base64url characters are never a UUID)', async () => {
    const srv = await proxy();
    const t = await proxyTokens.issue({ kind: 'static', host: '127.0.0.1', port: vnc.port }, 60);
    expect(isNovaToken(t.token)).toBe(false);
    const before = seen.length;
    const r = await wsRfbConnect(`ws://${srv.addresses[0]}/?token=${t.token}`);
    expect(r).toMatchObject({ ok: true, init: { name: 'instance-desk' } });
    expect(seen.length).toBe(before); // Nova was not asked
    if (r.ok) r.ws.close();
  });
});

describe('Nova API token lookup through Keystone', () => {
  const session = (secret: string, authUrl = keystone.authUrl): KeystoneSession =>
    new KeystoneSession({
      authUrl,
      interface: 'internal',
      region: 'R1',
      serviceType: 'compute',
      timeoutMs: 2_000,
      method: 'application_credential',
      applicationCredentialId: APP_CRED.id,
      applicationCredentialSecret: secret,
    });

  it('finds the compute endpoint in the catalog and sends the Keystone token', async () => {
    const lookup = new NovaApiLookup({ url: null, auth: { type: 'keystone', session: session(APP_CRED.secret) }, timeoutMs: 2_000, retries: 0 });
    expect((await lookup.lookup(token(), new AbortController().signal)).port).toBe(vnc.port);
    expect(keystone.isValid(seen.at(-1)!.token)).toBe(true);
    // A revoked token: Nova answers 401, the lookup gets a fresh token once, even with no retries.
    keystone.revokeAll();
    const issued = keystone.issued;
    expect((await lookup.lookup(token(), new AbortController().signal)).port).toBe(vnc.port);
    expect(keystone.issued).toBe(issued + 1);
  });

  it('issue 16: a Keystone failure on the Nova path names Keystone, not the bare-metal service', async () => {
    const signal = new AbortController().signal;
    const before = keystone.requests;
    const refused = new NovaApiLookup({ url: null, auth: { type: 'keystone', session: session('wrong') }, timeoutMs: 2_000, retries: 2 });
    const e = await refused.lookup(token(), signal).then(
      () => null,
      (err: unknown) => err as VncgateError,
    );
    expect(e?.code).toBe('KEYSTONE_ERR_AUTH');
    expect(e?.publicReason).not.toBe(ERROR_CODES.IRONIC_ERR_AUTH.reason);
    expect(keystone.requests - before).toBe(1); // refused credentials are not retried

    // Keystone down: retried like the compute API itself, then reported as Keystone's.
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const down = new NovaApiLookup({ url: null, auth: { type: 'keystone', session: session(APP_CRED.secret, `http://127.0.0.1:${port}/v3`) }, timeoutMs: 2_000, retries: 1 });
    await expect(down.lookup(token(), signal)).rejects.toMatchObject({ code: 'KEYSTONE_ERR_UNREACHABLE' });
  });

  it('issue 16: the person at the console sees the Keystone reason, and the right secret works', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vncgate-keystone-'));
    try {
      const secretFile = join(dir, 'app-secret');
      const ks = (file: string) => ({ keystone: { authUrl: keystone.authUrl, region: 'R1', applicationCredentialId: APP_CRED.id, applicationCredentialSecretFile: file } });
      writeFileSync(secretFile, 'wrong\n');
      const bad = await proxy({ enabled: true, url: null, auth: 'keystone' }, ks(secretFile));
      expect(await wsRfbConnect(`ws://${bad.addresses[0]}/?token=${token()}`)).toMatchObject({ ok: false, serverReason: ERROR_CODES.KEYSTONE_ERR_AUTH.reason });
      writeFileSync(secretFile, `${APP_CRED.secret}\n`);
      const good = await proxy({ enabled: true, url: null, auth: 'keystone' }, ks(secretFile));
      const r = await wsRfbConnect(`ws://${good.addresses[0]}/?token=${token()}`);
      expect(r).toMatchObject({ ok: true, init: { name: 'instance-desk' } });
      if (r.ok) r.ws.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
