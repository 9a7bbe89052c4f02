/**
 * Issue 6's interop tier: vncgate in front of a real Nova 31 (2025.1, Debian trixie packages in
 * the tier's chroot, test/support/nova.ts).
 *
 * - Schemas by the real `nova-manage` (api_db sync, map_cell0, create_cell, db sync) in a real
 *   MariaDB; an instance row by Nova's `Instance.create()`; console tokens by Nova's own
 *   `ConsoleAuthToken.authorize()` for a real Xvnc: a `novnc` token, one that has expired (ttl 1 s)
 *   and a `spice-html5` one; the real `nova-api` (uwsgi, noauth2) on a loopback port.
 * - A real `vncgate serve` with the **api** resolver (VNCGATE_NOVA_URL, noauth) and another with
 *   the **db** resolver (VNCGATE_NOVA_DB_URLS = the cell0 and cell1 URLs as nova.conf has them):
 *   the URL Nova hands out (`access_url`, host:port swapped for vncgate's) opens the Xvnc desktop
 *   in Chromium and through a protocol client; expired and unknown tokens are refused; the
 *   wrong-type token is refused by the db resolver — and, since the API does not say a token's
 *   console type, *relayed* by the api resolver (pinned below); the `token` cookie works.
 * - `vncgate config import` on the nova.conf this tier runs Nova with, and on the ironic.conf the
 *   Ironic harness writes; both results pass `vncgate config check`, and, adjusted as the
 *   importer's warnings say, serve a console.
 *
 * Fixtures: each run compares Nova's answers (and the console_auth_tokens schema and row Nova
 * wrote) with test/nova/fixtures/, run-specific values replaced by placeholders. Re-record with
 *   VNCGATE_NOVA_RECORD_FIXTURES=1 npx vitest run --project integration test/nova/real-nova.int.test.ts
 *
 * Never skips: no root, no chroot (debootstrap/mirror), no MariaDB or no Chromium fail the file.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { launchChromium, viewConsole } from '../support/browser.js';
import { runVncgate, type CliResult } from '../support/cli.js';
import { startRealIronic, type RealIronic } from '../support/ironic.js';
import { NOVA_TOKEN_MICROVERSION, startRealNova, type AuthorizedToken, type NovaResponse, type RealNova } from '../support/nova.js';
import { getTestPki, type TestPki } from '../support/pki.js';
import { removeTempDir, removeTempDirAtExit, stopAll } from '../support/proc.js';
import { startVncgateServe, type VncgateServe } from '../support/vncgate-process.js';
import { wsRfbConnect, type WsRfbResult } from '../support/ws-rfb-client.js';
import { startXvnc, type XvncServer } from '../support/xvnc.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const RECORD = process.env['VNCGATE_NOVA_RECORD_FIXTURES'] === '1';
const DESKTOP = 'nova-instance-desktop';
/** A UUID4 no token of this run has (tokens are uuidutils.generate_uuid()). */
const UNKNOWN_TOKEN = '00000000-0000-4000-8000-000000000000';
const NO_SUCH_INSTANCE = '00000000-0000-4000-8000-0000000000ff';
const EXPIRED_REASON = 'This console link has expired or was already used - request a new one';
const WRONG_TYPE_REASON = 'This console link is not for a noVNC console';

let pki: TestPki;
let xvnc: XvncServer;
let nova: RealNova;
let instance: string;
let novnc: AuthorizedToken;
let expired: AuthorizedToken;
let spice: AuthorizedToken;
let viaApi: VncgateServe;
let viaDb: VncgateServe;
let browser: Browser;
let work: string;
const timings: Record<string, number> = {};
const suiteStarted = performance.now();


/** The variables vncgate reads, blanked: loadConfig ignores empty values, so the parent's cannot leak in. */
function noInheritedVncgateEnv(): Record<string, string> {
  return Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('VNCGATE_')).map((k) => [k, '']));
}

beforeAll(async () => {
  let t = performance.now();
  pki = await getTestPki();
  xvnc = await startXvnc({ securityTypes: ['None'], desktopName: DESKTOP, extraArgs: ['-retro'] });
  nova = await startRealNova();
  timings['startRealNovaMs'] = performance.now() - t;
  for (const [k, v] of Object.entries(nova.timings)) timings[`nova.${k}`] = v;
  timings['chrootMs'] = nova.chroot.buildMs;

  t = performance.now();
  instance = await nova.createInstance({ displayName: 'vncgate-nova-tier' });
  timings['createInstanceMs'] = performance.now() - t;
  t = performance.now();
  [novnc, expired, spice] = (await nova.authorize([
    { instanceUuid: instance, host: xvnc.host, port: xvnc.port },
    { instanceUuid: instance, host: xvnc.host, port: xvnc.port, ttl: 1 },
    // A SPICE token of the same instance. It points at the Xvnc so that what a resolver does with
    // it is visible: relaying it is the failure mode (a SPICE port would just fail the handshake).
    { instanceUuid: instance, host: xvnc.host, port: xvnc.port, consoleType: 'spice-html5' },
  ])) as [AuthorizedToken, AuthorizedToken, AuthorizedToken];
  timings['authorizeMs'] = performance.now() - t;

  t = performance.now();
  const tls = { VNCGATE_TLS_CERT_FILE: pki.server.cert.path, VNCGATE_TLS_KEY_FILE: pki.server.key.path };
  [viaApi, viaDb] = await Promise.all([
    startVncgateServe({
      name: 'vncgate serve (nova api)',
      env: { ...tls, VNCGATE_NOVA_RESOLVER: 'api', VNCGATE_NOVA_URL: nova.computeUrl, VNCGATE_NOVA_AUTH: 'noauth' },
    }),
    startVncgateServe({
      name: 'vncgate serve (nova db)',
      // Every cell, as the importer's warning asks; cell0 (never holds instances) is empty.
      env: { ...tls, VNCGATE_NOVA_RESOLVER: 'db', VNCGATE_NOVA_DB_URLS: `${nova.dbUrls.cell0},${nova.dbUrls.cell1}` },
    }),
  ]);
  browser = await launchChromium(pki.server.cert.pem);
  timings['vncgateAndBrowserMs'] = performance.now() - t;
  work = mkdtempSync(join(tmpdir(), 'vncgate-nova-import-'));
  removeTempDirAtExit(work);
}, 25 * 60_000);

afterAll(async () => {
  await browser?.close();
  const t = performance.now();
  await stopAll();
  timings['stopMs'] = performance.now() - t;
  if (work) removeTempDir(work);
  timings['totalMs'] = performance.now() - suiteStarted;
  const rounded = Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v)]));
  process.stderr.write(
    `[real-nova] nova-api ${nova?.chroot.novaApiVersion} uwsgi ${nova?.chroot.uwsgiVersion} microversions ${nova?.minMicroversion}-${nova?.maxMicroversion}; timings ${JSON.stringify(rounded)}\n`,
  );
}, 90_000);

// --- fixtures ----------------------------------------------------------------------------------

const FIXTURE_HEADERS = ['content-type', 'openstack-api-version', 'x-openstack-nova-api-version', 'vary', 'x-openstack-request-id', 'x-compute-request-id', 'x-auth-token', 'x-server-management-url'] as const;

interface Fixture {
  description: string;
  nova: string;
  request?: { method: string; path: string; microversion: string | null; authToken: string | null };
  response?: { status: number; headers: Record<string, string>; body: unknown };
  /** For database fixtures: what the query returned. */
  rows?: unknown;
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
    if (typeof v === 'number') return Object.entries(placeholders).find(([, actual]) => actual === v)?.[0] ?? v;
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(value);
}

function record(name: string, observed: Fixture): void {
  const file = join(FIXTURES, `${name}.json`);
  if (RECORD) {
    mkdirSync(FIXTURES, { recursive: true });
    writeFileSync(file, `${JSON.stringify(observed, null, 2)}\n`);
    return;
  }
  if (!existsSync(file)) throw new Error(`fixture ${file} missing: re-record with VNCGATE_NOVA_RECORD_FIXTURES=1`);
  const recorded = JSON.parse(readFileSync(file, 'utf8')) as Fixture;
  const strip = (f: Fixture, p: Record<string, string | number>): unknown => replaceIn({ request: f.request, response: f.response, rows: f.rows }, p);
  expect(strip(observed, observed.placeholders), `fixture ${name}`).toEqual(strip(recorded, recorded.placeholders));
}

function apiFixture(name: string, description: string, request: NonNullable<Fixture['request']>, res: NovaResponse, placeholders: Record<string, string | number>): void {
  const headers = Object.fromEntries(FIXTURE_HEADERS.flatMap((h) => (res.headers[h] !== undefined ? [[h, res.headers[h]]] : [])));
  record(name, {
    description,
    nova: `nova-api ${nova.chroot.novaApiVersion}`,
    request,
    response: { status: res.status, headers, body: res.json ?? res.text },
    placeholders: { '<api-url>': nova.url, ...placeholders },
  });
}

async function tokenLookup(token: string, microversion: string | null, authToken: string | null = 'admin:admin'): Promise<{ req: NonNullable<Fixture['request']>; res: NovaResponse }> {
  const path = `/v2.1/os-console-auth-tokens/${token}`;
  return { req: { method: 'GET', path, microversion, authToken }, res: await nova.api('GET', path, { microversion, authToken }) };
}

// --- helpers -----------------------------------------------------------------------------------

/** Nova's access_url with only scheme, host and port replaced by vncgate's. */
function throughVncgate(novaUrl: string, gate: VncgateServe): string {
  const u = new URL(novaUrl);
  const v = new URL(gate.origin);
  u.protocol = v.protocol;
  u.host = v.host;
  return u.toString();
}

/** The WebSocket noVNC opens for such a page: its `path` parameter resolved against the site root. */
function wsOf(pageUrl: string, gate: VncgateServe): string {
  const path = new URL(pageUrl).searchParams.get('path');
  if (path === null) throw new Error(`no path= in ${pageUrl}`);
  return new URL(path, `${gate.wsBase}/`).toString();
}

const inChromium = (url: string) => viewConsole(browser, url);

async function connect(url: string, opts: Parameters<typeof wsRfbConnect>[1] = {}): Promise<WsRfbResult> {
  const r = await wsRfbConnect(url, { ca: pki.ca.cert.pem, timeoutMs: 20_000, ...opts });
  if (r.ok) r.ws.close();
  return r;
}

/** Nova's validity test is `expires > now` in whole seconds; wait until that is false. */
async function untilExpired(t: AuthorizedToken): Promise<void> {
  const wait = t.expires * 1000 + 50 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

const gates = (): [string, VncgateServe][] => [
  ['api', viaApi],
  ['db', viaDb],
];

// --- tests -------------------------------------------------------------------------------------

describe('real Nova 31 (2025.1): what it writes and answers', () => {
  it('Nova 31.0.0 from trixie, microversions 2.1-2.100, on loopback', () => {
    expect(nova.chroot.novaVersion).toMatch(/^2:31\./);
    expect(nova.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect([nova.minMicroversion, nova.maxMicroversion]).toEqual(['2.1', '2.100']);
  });

  it('authorize() built the URL from [vnc] novncproxy_base_url as noVNC >= 1.1 needs it', () => {
    expect(nova.novncproxyBaseUrl).toBe('http://127.0.0.1:6080/vnc_lite.html');
    for (const t of [novnc, expired]) {
      expect(t.token).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(t.access_url).toBe(`http://127.0.0.1:6080/vnc_lite.html?path=%3Ftoken%3D${t.token}`);
    }
    expect(spice.access_url).toBe(`http://127.0.0.1:6082/spice_auto.html?token=${spice.token}`);
    // expires = utcnow_ts() + ttl, both from one Python run (at most a second apart).
    expect(novnc.expires - expired.expires).toBeGreaterThanOrEqual(nova.tokenTtlS - 1 - 1);
    expect(novnc.expires - expired.expires).toBeLessThanOrEqual(nova.tokenTtlS - 1);
  });

  it('authorize() refuses an instance the cell does not have (why the tier creates one)', async () => {
    await expect(nova.authorize([{ instanceUuid: NO_SUCH_INSTANCE, host: xvnc.host, port: xvnc.port }])).rejects.toThrow(/InstanceNotFound/);
  });

  it('the console_auth_tokens schema from `nova-manage db sync` and the rows authorize() wrote', async () => {
    const cell1 = nova.databases.cell1;
    const tables = await nova.mariadb.query<{ n: number }>('SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?', [cell1]);
    const columns = await nova.mariadb.query(
      'SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
      [cell1, 'console_auth_tokens'],
    );
    // Sorted: the secondary indexes come out in varying order between syncs.
    const indexes = await nova.mariadb.query(
      'SELECT INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY INDEX_NAME, SEQ_IN_INDEX',
      [cell1, 'console_auth_tokens'],
    );
    const table = await nova.mariadb.query('SELECT ENGINE, TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [cell1, 'console_auth_tokens']);
    expect(tables[0]?.n).toBeGreaterThan(100);
    record('cell-console-auth-tokens-schema', {
      description: 'console_auth_tokens in a cell database built by `nova-manage db sync` on MariaDB (columns, indexes sorted by name, engine/collation) and the table count',
      nova: `nova-common ${nova.chroot.novaVersion}`,
      rows: { tableCount: Number(tables[0]?.n), table, columns, indexes },
      placeholders: {},
    });

    const rows = await nova.mariadb.query<Record<string, unknown>>(
      'SELECT id, token_hash, console_type, host, port, tls_port, internal_access_path, instance_uuid, expires, access_url_base, created_at IS NOT NULL AS has_created_at, updated_at FROM console_auth_tokens ORDER BY id',
      [],
      cell1,
    );
    const tokens = [novnc, expired, spice];
    expect(rows.map((r) => r['token_hash'])).toEqual(tokens.map((t) => createHash('sha256').update(t.token).digest('hex')));
    expect(rows.map((r) => r['expires'])).toEqual(tokens.map((t) => t.expires));
    record('cell-console-auth-tokens-rows', {
      description:
        'The rows ConsoleAuthToken.authorize() wrote: novnc (ttl 600), novnc (ttl 1), spice-html5 (ttl 600); token_hash = sha256(token) hex, ' +
        'the raw token is not stored; expires (epoch seconds, = utcnow_ts() + ttl) is what authorize() returned',
      nova: `nova-common ${nova.chroot.novaVersion}`,
      // expires differs per run and two tokens may share a second: shown symbolically.
      rows: rows.map((r, i) => ({ ...r, expires: `<expires of token ${i + 1}>` })),
      placeholders: {
        '<instance-uuid>': instance,
        '<hash-novnc>': rows[0]!['token_hash'] as string,
        '<hash-expired>': rows[1]!['token_hash'] as string,
        '<hash-spice>': rows[2]!['token_hash'] as string,
        '<xvnc-port>': xvnc.port,
      },
    });
    // Nothing in the cell database holds the raw token.
    const raw = await nova.mariadb.query<{ n: number }>('SELECT COUNT(*) AS n FROM console_auth_tokens WHERE token_hash = ? OR access_url_base LIKE ?', [novnc.token, `%${novnc.token}%`], cell1);
    expect(Number(raw[0]?.n)).toBe(0);
  });

  it('GET /os-console-auth-tokens/{token}: 200 at 2.31-2.100 without console_type or expiry; 400 at 2.30; 406 at 2.101', async () => {
    const ph = { '<token>': novnc.token, '<instance-uuid>': instance, '<xvnc-port>': xvnc.port };
    const console = { instance_uuid: instance, host: '127.0.0.1', port: xvnc.port, internal_access_path: null };
    for (const mv of ['2.31', '2.99', '2.100']) {
      const { req, res } = await tokenLookup(novnc.token, mv);
      expect(res.status).toBe(200);
      // No tls_port for novnc even at >= 2.99 (spice-direct only).
      expect(res.json).toEqual({ console });
      apiFixture(`token-${mv}-200-novnc`, `A valid novnc token at ${mv}`, req, res, ph);
    }
    const old = await tokenLookup(novnc.token, '2.30');
    expect(old.res.status).toBe(400);
    apiFixture('token-2.30-400', 'Up to 2.30 the route only served rdp-html5 tokens (gone since Nova 29): always 400', old.req, old.res, ph);
    const tooNew = await tokenLookup(novnc.token, '2.101');
    expect(tooNew.res.status).toBe(406);
    apiFixture('token-2.101-406', 'A microversion above the maximum', tooNew.req, tooNew.res, ph);
    const none = await tokenLookup(novnc.token, null);
    expect(none.res.status).toBe(400);
    apiFixture('token-no-microversion-400', 'No microversion header: served at 2.1, so 400 like 2.30', none.req, none.res, ph);
  });

  it('a spice-html5 token is 200 with the same body shape: the API cannot tell a resolver the console type', async () => {
    const { req, res } = await tokenLookup(spice.token, NOVA_TOKEN_MICROVERSION);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ console: { instance_uuid: instance, host: '127.0.0.1', port: xvnc.port, internal_access_path: null } });
    apiFixture('token-2.31-200-spice-html5', 'A valid spice-html5 token at 2.31: indistinguishable from a novnc one', req, res, { '<token>': spice.token, '<instance-uuid>': instance, '<xvnc-port>': xvnc.port });
  });

  it('unknown and expired tokens are the same 404; a non-admin gets 403; no X-Auth-Token gets noauth2\'s own 204', async () => {
    const unknown = await tokenLookup(UNKNOWN_TOKEN, NOVA_TOKEN_MICROVERSION);
    expect(unknown.res.status).toBe(404);
    apiFixture('token-2.31-404-unknown', 'A token Nova never issued', unknown.req, unknown.res, {});
    await untilExpired(expired);
    const gone = await tokenLookup(expired.token, NOVA_TOKEN_MICROVERSION);
    expect(gone.res.status).toBe(404);
    expect(gone.res.json).toEqual(unknown.res.json);
    apiFixture('token-2.31-404-expired', 'A token past its expires (authorize(ttl=1), then wait): same 404 as unknown', gone.req, gone.res, { '<token>': expired.token });
    const user = await tokenLookup(novnc.token, NOVA_TOKEN_MICROVERSION, 'demo:demo');
    expect(user.res.status).toBe(403);
    apiFixture('token-2.31-403-non-admin', 'noauth2 user demo in project demo: not admin', user.req, user.res, { '<token>': novnc.token });
    const anon = await tokenLookup(novnc.token, NOVA_TOKEN_MICROVERSION, null);
    expect(anon.res.status).toBe(204);
    apiFixture('token-no-auth-token-204', 'No X-Auth-Token: the noauth2 middleware answers 204 itself (a "fake token"), not the API', anon.req, anon.res, { '<token>': novnc.token });
  });

  it('the version documents', async () => {
    const root = await nova.api('GET', '/', { microversion: null, authToken: null });
    expect(root.status).toBe(200);
    apiFixture('versions-root', 'GET / (no auth): the API versions', { method: 'GET', path: '/', microversion: null, authToken: null }, root, {});
    const v21 = await nova.api('GET', '/v2.1/', { microversion: null });
    expect((v21.json as { version: { version: string; min_version: string } }).version).toMatchObject({ min_version: '2.1', version: '2.100' });
    apiFixture('versions-v2.1', 'GET /v2.1/ as admin:admin: min_version and version (the maximum microversion)', { method: 'GET', path: '/v2.1/', microversion: null, authToken: 'admin:admin' }, v21, {});
  });
});

describe('vncgate serve in front of real Nova 31', () => {
  it("the URL Nova hands out (host:port swapped) opens the instance's desktop, api and db resolvers, protocol client and Chromium", async () => {
    for (const [name, gate] of gates()) {
      const page = throughVncgate(novnc.access_url, gate);
      expect(page).toBe(`${gate.origin}/vnc_lite.html?path=%3Ftoken%3D${novnc.token}`);
      expect(wsOf(page, gate)).toBe(`${gate.wsBase}/?token=${novnc.token}`);
      const r = await connect(wsOf(page, gate), { origin: gate.origin });
      expect(r, name).toMatchObject({ ok: true, init: { name: DESKTOP } });
      const seen = await inChromium(page);
      expect(seen.status, name).toBe(`Connected to ${DESKTOP}`);
      expect(seen.colours, name).toBeGreaterThan(1);
    }
  });

  it('Nova tokens stay reusable until they expire (as in Nova): the same link opens again', async () => {
    for (const [name, gate] of gates()) {
      for (let i = 0; i < 2; i++) expect(await connect(`${gate.wsBase}/?token=${novnc.token}`), name).toMatchObject({ ok: true });
    }
  });

  it('expired and unknown tokens are refused with the "expired" reason, both resolvers', async () => {
    await untilExpired(expired);
    for (const [name, gate] of gates()) {
      for (const token of [expired.token, UNKNOWN_TOKEN]) {
        const r = await connect(`${gate.wsBase}/?token=${token}`);
        expect(r, `${name} ${token}`).toMatchObject({ ok: false, serverReason: EXPIRED_REASON });
      }
    }
    const seen = await inChromium(throughVncgate(expired.access_url, viaApi));
    expect(seen.notice).toBe(EXPIRED_REASON);
    const seenDb = await inChromium(throughVncgate(expired.access_url, viaDb));
    expect(seenDb.notice).toBe(EXPIRED_REASON);
  });

  it('a spice-html5 token: the db resolver refuses it; the api resolver cannot tell and relays it (as nova-novncproxy would)', async () => {
    const ws = (gate: VncgateServe): string => `${gate.wsBase}/?token=${spice.token}`;
    expect(await connect(ws(viaDb))).toMatchObject({ ok: false, serverReason: WRONG_TYPE_REASON });
    // GET /os-console-auth-tokens returns no console_type (fixture token-2.31-200-spice-html5), so
    // the api resolver opens whatever host:port the token names — here the Xvnc.
    expect(await connect(ws(viaApi))).toMatchObject({ ok: true, init: { name: DESKTOP } });
  });

  it('the token in a `token` cookie (noVNC 0.x pages) works when the URL has none', async () => {
    for (const [name, gate] of gates()) {
      const r = await connect(`${gate.wsBase}/`, { origin: gate.origin, headers: { cookie: `lang=en; token=${novnc.token}` } });
      expect(r, name).toMatchObject({ ok: true, init: { name: DESKTOP } });
    }
  });

  it("no token in vncgate's logs; nova-api's own request log does carry them (the api resolver's cost)", () => {
    for (const [name, gate] of gates()) {
      const log = gate.logText();
      for (const t of [novnc, expired, spice]) expect(log, name).not.toContain(t.token);
      expect(log, name).not.toMatch(/token=/);
    }
    // Recorded, not endorsed: Nova logs every request path, and the path is the token.
    expect(nova.output()).toContain(`GET /v2.1/os-console-auth-tokens/${novnc.token}`);
  });
});

describe('vncgate config import on the real configs', () => {
  function writeYaml(name: string, r: CliResult): { file: string; doc: Record<string, unknown>; warnings: string[] } {
    expect(r.code, r.stderr).toBe(0);
    const text = r.stdout;
    const file = join(work, name);
    writeFileSync(file, text);
    const warnings = r.stderr.split('\n').filter((l) => l.startsWith('warning: ')).map((l) => l.slice('warning: '.length));
    return { file, doc: parseYaml(text) as Record<string, unknown>, warnings };
  }

  async function check(file: string): Promise<CliResult> {
    return runVncgate(['config', 'check', '--config', file], { env: noInheritedVncgateEnv(), timeoutMs: 20_000 });
  }

  it("the nova.conf this tier runs Nova with: imports, checks, and serves the instance's console once adjusted", async () => {
    const r = await runVncgate(['config', 'import', '--nova-conf', nova.confPath], { env: noInheritedVncgateEnv(), timeoutMs: 20_000 });
    const { file, doc, warnings } = writeYaml('from-nova.yaml', r);
    expect(doc).toMatchObject({
      listen: ['127.0.0.1:6080'],
      publicUrl: 'http://127.0.0.1:6080/',
      tls: { plainHttp: true },
      nova: { resolver: 'db', dbUrlsFile: '/etc/vncgate/nova-db-urls' },
    });
    // The cell database's password is not in the YAML; the warning says where it goes, masked.
    expect(r.stdout).not.toContain(new URL(nova.dbUrls.cell1.replace(/^mysql\+pymysql/, 'mysql')).password);
    expect(warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\[DEFAULT\] ssl_only\/cert: nova-novncproxy served plain HTTP/),
        expect.stringMatching(/^\[database\] connection: put this URL \(it holds a password\) on a line of \/etc\/vncgate\/nova-db-urls/),
        expect.stringMatching(/^\[database\] connection: only this cell was imported/),
        expect.stringMatching(/^\[consoleauth\] token_ttl: no vncgate equivalent/),
      ]),
    );
    // As the warnings say: the cell URL into a file (first this cell only, then every cell).
    const urlsFile = join(work, 'nova-db-urls');
    writeFileSync(urlsFile, `${nova.dbUrls.cell1}\n`, { mode: 0o600 });
    const asImported = structuredClone(doc) as { nova: { dbUrlsFile: string } };
    asImported.nova.dbUrlsFile = urlsFile;
    writeFileSync(file, stringifyYaml(asImported));
    const checked = await check(file);
    expect(checked.code, checked.stderr).toBe(0);
    expect(checked.json[0]).toMatchObject({ ok: true, nova: true, tls: false, ironic: false });

    // TLS instead of plain HTTP; every cell. And a free port instead of 6080.
    writeFileSync(urlsFile, `${nova.dbUrls.cell0}\n${nova.dbUrls.cell1}\n`, { mode: 0o600 });
    const adjusted = structuredClone(asImported) as unknown as { listen: string[]; tls: Record<string, unknown>; publicUrl?: string };
    adjusted.listen = ['127.0.0.1:0'];
    // publicUrl is vncgate's own origin for the Origin check: it must be where the page is served.
    delete adjusted.publicUrl;
    adjusted.tls = { certFile: pki.server.cert.path, keyFile: pki.server.key.path };
    const adjustedFile = join(work, 'from-nova-adjusted.yaml');
    writeFileSync(adjustedFile, stringifyYaml(adjusted));
    const checked2 = await check(adjustedFile);
    expect(checked2.code, checked2.stderr).toBe(0);
    expect(checked2.json[0]).toMatchObject({ ok: true, nova: true, tls: true });
    const gate = await startVncgateServe({ name: 'vncgate serve (imported nova.conf)', env: {}, args: ['--config', adjustedFile] });
    try {
      const page = throughVncgate(novnc.access_url, gate);
      expect(await connect(wsOf(page, gate), { origin: gate.origin })).toMatchObject({ ok: true, init: { name: DESKTOP } });
      expect(await connect(`${gate.wsBase}/?token=${spice.token}`)).toMatchObject({ ok: false, serverReason: WRONG_TYPE_REASON });
    } finally {
      await gate.stop();
    }
  });

  it('the ironic.conf the Ironic harness writes: imports, checks, and serves an Ironic console URL once adjusted', async () => {
    let ironic: RealIronic | undefined;
    try {
      const t = performance.now();
      ironic = await startRealIronic({ tokenTimeoutS: 600 });
      timings['startRealIronicMs'] = performance.now() - t;
      const confFile = join(work, 'ironic.conf');
      writeFileSync(confFile, ironic.config);
      const r = await runVncgate(['config', 'import', '--ironic-conf', confFile], { env: noInheritedVncgateEnv(), timeoutMs: 20_000 });
      const { file, doc, warnings } = writeYaml('from-ironic.yaml', r);
      expect(doc).toMatchObject({
        listen: [`127.0.0.1:${ironic.novncPort}`],
        publicUrl: `http://127.0.0.1:${ironic.novncPort}/`,
        tls: { plainHttp: true },
        ironic: { url: ironic.url, auth: 'none', ironicTokenTtlSeconds: 600 },
      });
      expect(warnings).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^\[vnc\] enable_ssl = False/),
          expect.stringMatching(/^\[vnc\] novnc_web: no vncgate equivalent/),
        ]),
      );
      const checked = await check(file);
      expect(checked.code, checked.stderr).toBe(0);
      expect(checked.json[0]).toMatchObject({ ok: true, ironic: true, nova: false, tls: false });

      const adjusted = structuredClone(doc) as { listen: string[]; tls: Record<string, unknown>; publicUrl?: string };
      adjusted.listen = ['127.0.0.1:0'];
      // publicUrl is vncgate's own origin for the Origin check: it must be where the page is served.
      delete adjusted.publicUrl;
      adjusted.tls = { certFile: pki.server.cert.path, keyFile: pki.server.key.path };
      const adjustedFile = join(work, 'from-ironic-adjusted.yaml');
      writeFileSync(adjustedFile, stringifyYaml(adjusted));
      expect((await check(adjustedFile)).code).toBe(0);
      const gate = await startVncgateServe({ name: 'vncgate serve (imported ironic.conf)', env: {}, args: ['--config', adjustedFile] });
      try {
        const node = await ironic.createVncNode({ name: 'imported-conf-node', vncHost: xvnc.host, vncPort: xvnc.port });
        const enable = await ironic.api('PUT', `/v1/nodes/${node}/states/console`, { enabled: true });
        expect(enable.status, enable.text).toBe(202);
        const url = (await ironic.waitForConsole(node, true)).console_info as { url: string };
        const r2 = await connect(wsOf(throughVncgate(url.url, gate), gate), { origin: gate.origin });
        expect(r2).toMatchObject({ ok: true, init: { name: DESKTOP } });
      } finally {
        await gate.stop();
      }
    } finally {
      await ironic?.stop();
    }
  }, 180_000);
});

describe('when Nova is down', () => {
  it('the api resolver says the compute service is unreachable; the db resolver that it cannot check links', async () => {
    // Stops uwsgi (nova-api) and the MariaDB holding the API and cell databases.
    await nova.stop();
    expect(await connect(`${viaApi.wsBase}/?token=${novnc.token}`, { timeoutMs: 60_000 })).toMatchObject({
      ok: false,
      serverReason: 'The compute service is unreachable - try again shortly',
    });
    expect(await connect(`${viaDb.wsBase}/?token=${novnc.token}`, { timeoutMs: 60_000 })).toMatchObject({
      ok: false,
      serverReason: 'The console service cannot check this link right now - try again shortly',
    });
  }, 120_000);
});
