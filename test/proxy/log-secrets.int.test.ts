import { SignJWT } from 'jose';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateToken } from '../../src/tokens/index.js';
import { getTestPki, type TestPki } from '../support/pki.js';
import { stopAll } from '../support/proc.js';
import { startTinyVncServer } from '../support/tiny-vnc-server.js';
import { startVncgateServe, type VncgateServe } from '../support/vncgate-process.js';
import { wsRfbConnect } from '../support/ws-rfb-client.js';

/**
 * Issue 15: nothing secret in any log field. A real built `vncgate serve` over TLS at log level
 * trace (every line it can write) is sent a token-shaped secret in every place a client controls —
 * query parameters (`node=` and others), the path of unknown routes and of an upgrade, the Origin
 * (path, query and host), Referer, User-Agent, X-Forwarded-For / -Host (trusted here, so they reach
 * `remote` and the origin check), Sec-WebSocket-Protocol, cookies, a malformed request's raw bytes,
 * a bearer JWT — alongside sessions that succeed and sessions that are refused. Then every line of
 * its output is searched for the secret, the tokens issued, the JWTs, in every form they could take.
 */
const API_SECRET = 'log-secrets-test-hs256-secret-0123456789abcdef';
const SECRET = generateToken();

let pki: TestPki;
let dir: string;
let backend: Awaited<ReturnType<typeof startTinyVncServer>>;
let vncgate: VncgateServe;
let goodJwt: string;
let badJwt: string;
const issued: string[] = [];

async function sign(secret: string, claims: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('https://keystone.test')
    .setAudience('vncgate')
    .setSubject('operator')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(secret));
}

/** One HTTPS request to vncgate; resolves with the status (bodies are not needed). */
function https(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; body: string }> {
  const u = new URL(vncgate.origin);
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: u.hostname, port: Number(u.port), method, path, headers, ca: pki.ca.cert.pem, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function mint(): Promise<string> {
  const r = await https('POST', '/v1/console-tokens', { authorization: `Bearer ${goodJwt}`, 'content-type': 'application/json' }, JSON.stringify({ target: `127.0.0.1:${backend.port}`, ttlSeconds: 60 }));
  expect(r.status, r.body).toBe(201);
  const token = (JSON.parse(r.body) as { token: string }).token;
  issued.push(token);
  return token;
}

/** Headers a browser (or an attacker) controls, each carrying the secret. */
const SECRET_HEADERS = {
  referer: `https://horizon.test/vnc.html?path=websockify%3Ftoken%3D${SECRET}&x=${SECRET}`,
  'user-agent': `Mozilla/5.0 ${SECRET}`,
  'x-forwarded-for': SECRET,
  cookie: `token=${SECRET}; sid=${SECRET}`,
  'x-request-id': SECRET,
};

beforeAll(async () => {
  pki = await getTestPki();
  dir = await mkdtemp(join(tmpdir(), 'vncgate-log-secrets-'));
  backend = await startTinyVncServer({ name: 'log-secrets' });
  const secretFile = join(dir, 'jwt');
  await writeFile(secretFile, `${API_SECRET}\n`, { mode: 0o600 });
  const configFile = join(dir, 'vncgate.yaml');
  await writeFile(
    configFile,
    [
      'api:',
      '  jwt:',
      `    hs256SecretFile: ${JSON.stringify(secretFile)}`,
      '    issuer: https://keystone.test',
      '    audience: vncgate',
      'origins:',
      '  trustForwardedHeaders: true',
      '  allowed: ["https://horizon.test"]',
      'backends:',
      '  allowedTargets: ["127.0.0.0/8", "::1/128"]',
      '',
    ].join('\n'),
  );
  vncgate = await startVncgateServe({
    env: { VNCGATE_CONFIG: configFile, VNCGATE_TLS_CERT_FILE: pki.server.cert.path, VNCGATE_TLS_KEY_FILE: pki.server.key.path, VNCGATE_LOG_LEVEL: 'trace' },
  });
  goodJwt = await sign(API_SECRET, { note: SECRET });
  badJwt = await sign('another-secret-that-is-long-enough-0123456789', { note: SECRET });
});

afterAll(async () => {
  await stopAll();
  await backend?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('issue 15: nothing secret in any log field (real vncgate serve, log level trace)', () => {
  it('logs neither the secret nor any token or JWT, wherever a client put them', async () => {
    const wss = vncgate.wsBase;
    const common = { ca: pki.ca.cert.pem, timeoutMs: 15_000 };

    // A session that succeeds: the secret as node=, as another parameter, in every header, as an offered subprotocol.
    const t1 = await mint();
    const ok = await wsRfbConnect(`${wss}/websockify?node=${SECRET}&token=${t1}&x=${SECRET}`, {
      ...common,
      origin: vncgate.origin,
      protocols: ['binary', SECRET],
      headers: SECRET_HEADERS,
    });
    expect(ok.ok).toBe(true);
    if (ok.ok) {
      const echoed = new Promise<Buffer>((resolve) => ok.ws.once('message', (d: Buffer) => resolve(d)));
      ok.ws.send(Buffer.from(SECRET));
      expect((await echoed).toString()).toBe(SECRET);
      ok.ws.close();
    }

    // An upgrade whose path is a token (noVNC's path may be anything): a session on the catch-all.
    const t2 = await mint();
    const onPath = await wsRfbConnect(`${wss}/${SECRET}/${t2}?token=${t2}`, { ...common, origin: vncgate.origin });
    expect(onPath.ok).toBe(true);
    if (onPath.ok) onPath.ws.close();

    // Refused sessions: a used token, the secret as the token, a secret node with no token.
    for (const url of [`/websockify?token=${t1}&node=${SECRET}`, `/websockify?token=${SECRET}`, `/?node=${SECRET}`]) {
      const r = await wsRfbConnect(`${wss}${url}`, { ...common, origin: vncgate.origin, headers: SECRET_HEADERS });
      expect(r.ok, url).toBe(false);
    }

    // Refused origins (logged at warn): the secret in the Origin's query, path and host, and in X-Forwarded-Host.
    const t3 = await mint();
    for (const headers of [
      { origin: `https://evil.test/${SECRET}?token=${SECRET}` },
      { origin: `https://${SECRET}.evil.test` },
      { origin: vncgate.origin, 'x-forwarded-host': SECRET },
    ]) {
      expect(await wsRfbConnect(`${wss}/websockify?token=${t3}`, { ...common, headers })).toMatchObject({ ok: false, code: 'HTTP_403' });
    }

    // Plain HTTP: unknown routes, known ones with the secret in the query, the API with bad and good JWTs.
    expect((await https('GET', `/${SECRET}`, SECRET_HEADERS)).status).toBe(404);
    expect((await https('POST', `/${SECRET}/x?y=${SECRET}`, SECRET_HEADERS, SECRET)).status).toBe(404);
    expect((await https('GET', `/healthz?token=${SECRET}&node=${SECRET}`, SECRET_HEADERS)).status).toBe(200);
    expect((await https('GET', `/vnc.html?path=websockify%3Ftoken%3D${SECRET}`, SECRET_HEADERS)).status).toBe(200);
    expect((await https('GET', `/assets/${SECRET}.js`, SECRET_HEADERS)).status).toBe(404);
    expect((await https('DELETE', `/v1/console-tokens?token=${SECRET}`, SECRET_HEADERS)).status).toBe(405);
    const bad = await https('POST', '/v1/console-tokens', { authorization: `Bearer ${badJwt}`, 'content-type': 'application/json' }, JSON.stringify({ target: SECRET }));
    expect(bad.status).toBe(401);
    const badBody = await https('POST', `/v1/console-tokens?${SECRET}`, { authorization: `Bearer ${goodJwt}`, 'content-type': 'application/json' }, `{"target": "${SECRET}`);
    expect(badBody.status).toBe(400);
    const badTarget = await https('POST', '/v1/console-tokens', { authorization: `Bearer ${goodJwt}`, 'content-type': 'application/json' }, JSON.stringify({ target: `${SECRET}:5900`, profile: SECRET }));
    expect(badTarget.status).toBe(400);

    // A malformed request: Node's parser error carries the raw bytes (logged by fastify at trace).
    // (vncgate answers 400 and drops the connection, a reset being as good as a close here.)
    await new Promise<void>((resolve) => {
      const u = new URL(vncgate.origin);
      const s = tlsConnect({ host: u.hostname, port: Number(u.port), ca: pki.ca.cert.pem }, () => {
        s.write(`GET /?token=${SECRET} HTTP/1.1\r\nHost: x\r\nX-Secret: ${SECRET}\r\nbroken header line\r\n\r\n`);
      });
      s.setTimeout(10_000, () => s.destroy(new Error('no answer to a malformed request')));
      s.on('data', () => s.end());
      s.on('close', () => resolve());
      s.on('error', () => resolve());
    });

    // Graceful stop: everything is written before the process exits.
    await vncgate.stop();
    const lines = vncgate.logLines();

    // The log is not vacuous: the sessions, refusals and requests above are all in it, at every level.
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const msgs = parsed.map((p) => p['msg']);
    expect(msgs.filter((m) => m === 'session started').length).toBe(2);
    expect(msgs.filter((m) => m === 'session ended').length).toBeGreaterThanOrEqual(5);
    expect(msgs).toContain('WebSocket request from a foreign origin refused');
    expect(parsed.some((p) => p['level'] === 10)).toBe(true);
    expect(parsed.some((p) => p['msg'] === 'request' && p['path'] === '(no route)')).toBe(true);
    expect(parsed.some((p) => p['node'] === '[invalid]')).toBe(true);
    expect(parsed.some((p) => p['remote'] === '[invalid]')).toBe(true);
    expect(parsed.some((p) => typeof p['tokenId'] === 'string' && /^[0-9a-f]{12}$/.test(p['tokenId']))).toBe(true);
    console.log(`${lines.length} log lines searched; levels: ${JSON.stringify(countBy(parsed.map((p) => String(p['level']))))}`);

    const forbidden = new Set<string>();
    for (const s of [SECRET, ...issued, goodJwt, badJwt, API_SECRET]) {
      forbidden.add(s);
      forbidden.add(encodeURIComponent(s));
      forbidden.add(s.toLowerCase());
    }
    // The JWTs' signatures on their own, and the raw request's bytes as pino would print a Buffer.
    for (const j of [goodJwt, badJwt]) forbidden.add(j.split('.')[2]!);
    forbidden.add([...Buffer.from(SECRET.slice(0, 8))].join(','));
    const hits: string[] = [];
    for (const line of lines) for (const f of forbidden) if (line.includes(f)) hits.push(`${f.slice(0, 8)}… in ${line}`);
    expect(hits).toEqual([]);
  });
});

function countBy(xs: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}
