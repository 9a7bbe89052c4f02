/**
 * Issue 17 (items 2 and 3): Prometheus metrics and audit events, end to end.
 *
 * The real built `vncgate serve` over TLS with Redis tokens, metrics on their own loopback
 * listener and an audit file; a console link minted through the token API (JWT), a real console
 * session against the tiny VNC server (which echoes what the client sends), and a refused link.
 * Then a real Prometheus (Debian's `prometheus`) scrapes vncgate every second, and the values are
 * read back over its HTTP API; the audit file is parsed and every field of every event checked.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateToken, tokenLogId } from '../../src/tokens/index.js';
import { getTestPki, type TestPki } from '../support/pki.js';
import { freePort } from '../support/ports.js';
import { ManagedProcess, sleep, stopAll } from '../support/proc.js';
import { startRedisServer, type RedisServer } from '../support/redis.js';
import { startTinyVncServer } from '../support/tiny-vnc-server.js';
import { startVncgateServe, type VncgateServe } from '../support/vncgate-process.js';
import { wsRfbConnect } from '../support/ws-rfb-client.js';

const JWT_SECRET = 'observe-test-secret-of-at-least-32-bytes!!';
const ISSUER = 'https://portal.example.test';
const SUBJECT = 'alice@example.test';
/** ServerInit of the tiny server: 24 bytes + its name "tiny". */
const SERVER_INIT_BYTES = 24 + 4;
/** What the client sends once the console is open, in these message sizes. */
const SENT = [1000, 70_000, 5];
const SENT_TOTAL = SENT.reduce((a, b) => a + b, 0);

let pki: TestPki;
let dir: string;
let redis: RedisServer;
let vnc: Awaited<ReturnType<typeof startTinyVncServer>>;
let gate: VncgateServe;
let metricsAddress: string;
let auditFile: string;
let prometheus: ManagedProcess | undefined;

type Event = Record<string, unknown> & { event: string; time: string };

/** What the test did, for comparing with what vncgate reports. */
const did = {
  token: '',
  refusedToken: generateToken(),
  sessionWallMs: 0,
  receivedBytes: 0,
  testStartedAt: 0,
};

beforeAll(async () => {
  did.testStartedAt = Date.now();
  pki = await getTestPki();
  dir = await mkdtemp(join(tmpdir(), 'vncgate-observe-'));
  redis = await startRedisServer();
  vnc = await startTinyVncServer();
  await writeFile(join(dir, 'jwt.secret'), JWT_SECRET);
  auditFile = join(dir, 'audit.jsonl');
  await writeFile(
    join(dir, 'vncgate.yaml'),
    [
      'backends:',
      '  allowedTargets: ["127.0.0.0/8", "::1/128"]',
      'metrics:',
      '  listen: "127.0.0.1:0"',
      'audit:',
      `  file: ${JSON.stringify(auditFile)}`,
      'api:',
      `  jwt: {hs256SecretFile: ${JSON.stringify(join(dir, 'jwt.secret'))}, issuer: ${JSON.stringify(ISSUER)}, audience: vncgate}`,
      '',
    ].join('\n'),
  );
  gate = await startVncgateServe({
    name: 'vncgate (observe)',
    args: ['--config', join(dir, 'vncgate.yaml')],
    env: { VNCGATE_TLS_CERT_FILE: pki.server.cert.path, VNCGATE_TLS_KEY_FILE: pki.server.key.path, VNCGATE_REDIS_URL: redis.url, VNCGATE_LOG_LEVEL: 'info' },
  });
  const line = gate.logLines().find((l) => l.startsWith('{"listening"'))!;
  metricsAddress = (JSON.parse(line) as { metrics: string }).metrics;
}, 30_000);

afterAll(async () => {
  await prometheus?.stop();
  await stopAll();
  await vnc?.close();
  await redis?.dispose();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

async function mintThroughApi(): Promise<string> {
  const jwt = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(SUBJECT)
    .setIssuer(ISSUER)
    .setAudience('vncgate')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(JWT_SECRET));
  const body = JSON.stringify({ target: `127.0.0.1:${vnc.port}`, ttlSeconds: 120 });
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      `${gate.origin}/v1/console-tokens`,
      { method: 'POST', ca: pki.ca.cert.pem, headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' }, timeout: 5_000 },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => (res.statusCode === 201 ? resolve((JSON.parse(text) as { token: string }).token) : reject(new Error(`token API answered ${res.statusCode}: ${text}`))));
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('token API timed out')));
    req.end(body);
  });
}

function httpGetJson(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { timeout: 3_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(text));
        } catch {
          reject(new Error(`not JSON from ${url}: ${text.slice(0, 200)}`));
        }
      });
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${url} timed out`)));
    req.end();
  });
}

async function readAudit(): Promise<Event[]> {
  const text = await readFile(auditFile, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Event);
}

async function waitForAudit(pred: (events: Event[]) => boolean, what: string): Promise<Event[]> {
  const deadline = performance.now() + 10_000;
  for (;;) {
    const events = await readAudit();
    if (pred(events)) return events;
    if (performance.now() > deadline) throw new Error(`audit file never showed ${what}: ${JSON.stringify(events)}`);
    await sleep(50);
  }
}

describe('issue 17: metrics and audit events of a real session', () => {
  it('runs a console session and a refused link', async () => {
    did.token = await mintThroughApi();
    const t0 = performance.now();
    const r = await wsRfbConnect(`${gate.wsBase}/websockify?token=${did.token}`, { ca: pki.ca.cert.pem, timeoutMs: 10_000 });
    if (!r.ok) throw new Error(`session refused: ${r.code}`);
    // The ServerInit came through; now bytes both ways, echoed by the tiny server.
    let received = 0;
    const echoed = new Promise<void>((resolve) => {
      r.ws.on('message', (d: Buffer) => {
        received += d.length;
        if (received >= SENT_TOTAL) resolve();
      });
    });
    for (const n of SENT) r.ws.send(Buffer.alloc(n, 0x41));
    await echoed;
    const closed = new Promise<void>((resolve) => r.ws.once('close', () => resolve()));
    r.ws.close(1000);
    await closed;
    did.sessionWallMs = performance.now() - t0;
    did.receivedBytes = SERVER_INIT_BYTES + received;
    expect(received).toBe(SENT_TOTAL);

    const refused = await wsRfbConnect(`${gate.wsBase}/websockify?token=${did.refusedToken}`, { ca: pki.ca.cert.pem, timeoutMs: 10_000 });
    expect(refused.ok).toBe(false);
    // The reason arrives as an RFB SecurityResult failure, which the client engine reports so.
    if (!refused.ok) expect(refused.code).toBe('RFB_ERR_AUTH_FAILED');
    await waitForAudit((e) => e.filter((x) => x.event === 'session.ended').length === 2, 'two session.ended events');
  }, 30_000);

  it('writes every field of token.issued, session.started, session.ended and token.refused', async () => {
    const events = await readAudit();
    expect(events.map((e) => e.event)).toEqual(['token.issued', 'session.started', 'session.ended', 'token.refused', 'session.ended']);
    for (const e of events) {
      expect(Date.parse(e.time)).toBeGreaterThanOrEqual(did.testStartedAt - 1_000);
      expect(Date.parse(e.time)).toBeLessThanOrEqual(Date.now());
    }
    const [issued, started, ended, refused, refusedEnded] = events as [Event, Event, Event, Event, Event];
    const target = `127.0.0.1:${vnc.port}`;
    expect(issued).toEqual({
      time: issued.time,
      event: 'token.issued',
      via: 'api',
      sub: SUBJECT,
      iss: ISSUER,
      client: '127.0.0.1',
      target,
      node: null,
      profile: null,
      count: 1,
      ttlSeconds: 120,
      expiresAt: expect.any(String),
      tokenIds: [tokenLogId(did.token)],
      record: false,
    });
    expect(Date.parse(issued.expiresAt as string) - Date.parse(issued.time)).toBeGreaterThan(115_000);

    const common = {
      sessionId: expect.stringMatching(/^[0-9a-f]{12}$/),
      client: '127.0.0.1',
      tokenId: tokenLogId(did.token),
      issuedBy: { via: 'api', sub: SUBJECT, iss: ISSUER },
      target,
      host: '127.0.0.1',
      port: vnc.port,
      node: null,
      instance: null,
      profile: 'none',
    };
    expect(started).toEqual({ time: started.time, event: 'session.started', ...common, security: 'none', backendVersion: '003.008', tls: null, setupMs: expect.any(Number) });
    expect(started.setupMs as number).toBeGreaterThanOrEqual(0);
    expect(started.setupMs as number).toBeLessThanOrEqual(did.sessionWallMs + 50);
    expect(ended).toEqual({
      time: ended.time,
      event: 'session.ended',
      ...common,
      sessionId: started.sessionId,
      started: true,
      durationMs: expect.any(Number),
      bytesToBrowser: did.receivedBytes,
      bytesToBackend: SENT_TOTAL,
      closedBy: 'browser',
      code: null,
      wsCloseCode: 1000,
    });
    // Measured by vncgate from the upgrade to the close; the client's own clock spans a little more.
    expect(ended.durationMs as number).toBeGreaterThan(started.setupMs as number);
    expect(ended.durationMs as number).toBeLessThanOrEqual(did.sessionWallMs + 50);

    expect(refused).toEqual({
      time: refused.time,
      event: 'token.refused',
      sessionId: expect.stringMatching(/^[0-9a-f]{12}$/),
      client: '127.0.0.1',
      tokenId: tokenLogId(did.refusedToken),
      node: null,
      code: 'TOKEN_ERR_INVALID',
    });
    expect(refusedEnded).toEqual({
      time: refusedEnded.time,
      event: 'session.ended',
      sessionId: refused.sessionId,
      client: '127.0.0.1',
      tokenId: tokenLogId(did.refusedToken),
      issuedBy: null,
      target: null,
      host: null,
      port: null,
      node: null,
      instance: null,
      profile: null,
      started: false,
      durationMs: expect.any(Number),
      bytesToBrowser: 0,
      bytesToBackend: 0,
      closedBy: 'vncgate',
      code: 'TOKEN_ERR_INVALID',
      wsCloseCode: 4403,
    });

    // Audit events never reach the log, and no token reaches either.
    const log = gate.logText();
    expect(log).not.toContain('"event":"session.started"');
    expect(log).not.toContain('"event":"token.issued"');
    const auditText = await readFile(auditFile, 'utf8');
    expect(auditText).not.toContain(did.token);
    expect(auditText).not.toContain(did.refusedToken);
  });

  it('a real Prometheus scrapes the values the test produced', async () => {
    const port = await freePort();
    await writeFile(
      join(dir, 'prometheus.yml'),
      ['global:', '  scrape_interval: 1s', '  scrape_timeout: 900ms', 'scrape_configs:', '  - job_name: vncgate', '    static_configs:', `      - targets: [${JSON.stringify(metricsAddress)}]`, ''].join('\n'),
    );
    const t0 = performance.now();
    prometheus = await ManagedProcess.start({
      name: 'prometheus',
      command: 'prometheus',
      args: [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    });
    const query = async (q: string): Promise<Map<string, number>> => {
      const r = (await httpGetJson(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`)) as {
        status: string;
        data?: { result: { metric: Record<string, string>; value: [number, string] }[] };
      };
      const out = new Map<string, number>();
      for (const s of r.data?.result ?? []) {
        const { __name__: _name, job: _job, instance: _instance, ...labels } = s.metric;
        out.set(JSON.stringify(labels), Number(s.value[1]));
      }
      return out;
    };
    const expected: [string, Record<string, string>, number][] = [
      ['vncgate_sessions_total', { closed_by: 'browser', code: 'none', outcome: 'ok' }, 1],
      ['vncgate_sessions_total', { closed_by: 'vncgate', code: 'TOKEN_ERR_INVALID', outcome: 'error' }, 1],
      ['vncgate_token_consume_total', { result: 'ok' }, 1],
      ['vncgate_token_consume_total', { result: 'invalid' }, 1],
      ['vncgate_token_consume_total', { result: 'missing' }, 0],
      ['vncgate_bytes_total', { direction: 'to_backend' }, SENT_TOTAL],
      ['vncgate_bytes_total', { direction: 'to_browser' }, did.receivedBytes],
      ['vncgate_sessions_active', {}, 0],
      ['vncgate_session_setup_seconds_count', { phase: 'total' }, 1],
      ['vncgate_session_setup_seconds_count', { phase: 'authorize' }, 1],
      ['vncgate_session_setup_seconds_count', { phase: 'connect' }, 1],
      ['vncgate_session_setup_seconds_count', { phase: 'backend_handshake' }, 1],
      ['vncgate_audit_events_dropped_total', {}, 0],
      ['up', {}, 1],
    ];
    const deadline = performance.now() + 25_000;
    let mismatches: string[] = [];
    for (;;) {
      mismatches = [];
      try {
        for (const [name, labels, value] of expected) {
          // Labels sorted as Prometheus returns them (alphabetically), for the map key.
          const key = JSON.stringify(Object.fromEntries(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b))));
          const got = (await query(name)).get(key);
          if (got !== value) mismatches.push(`${name}${key} = ${got} (expected ${value})`);
        }
      } catch (err) {
        mismatches.push(String(err));
      }
      if (mismatches.length === 0) break;
      if (!prometheus.running || performance.now() > deadline) break;
      await sleep(250);
    }
    expect(mismatches).toEqual([]);
    // Redis answered the token API and the consume: its requests were timed.
    const redisOk = await query('sum(vncgate_upstream_request_seconds_count{service="redis",outcome="ok"})');
    expect(redisOk.get('{}')).toBeGreaterThanOrEqual(2);
    const setup = await query('vncgate_session_setup_seconds_sum{phase="total"}');
    expect(setup.get('{"phase":"total"}')).toBeLessThan(did.sessionWallMs / 1000 + 0.05);
    // Node's default process metrics come along.
    expect((await query('process_resident_memory_bytes')).get('{}')).toBeGreaterThan(0);
    console.log(`[observe] Prometheus started, scraped and agreed within ${Math.round(performance.now() - t0)} ms`);
  }, 40_000);
});
