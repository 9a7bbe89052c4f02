/**
 * Issue 17 item 5, behind a real HAProxy (Debian `haproxy`, TCP mode, `send-proxy-v2`): two built
 * `vncgate serve` replicas sharing one real redis-server, each with a PROXY listener, TLS, and an
 * audit file. A client bound to 127.0.0.5 opens real console sessions (the tiny VNC server behind)
 * through HAProxy on 127.0.0.1; the audit and the log must name 127.0.0.5, not HAProxy, on
 * whichever replica served it. A peer outside trustedProxies is refused at once; per-client caps
 * count the real client.
 */
import { readFile, mkdtemp, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import type WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runVncgate } from '../support/cli.js';
import { getTestPki, type TestPki } from '../support/pki.js';
import { freePort, waitForListening } from '../support/ports.js';
import { ManagedProcess, removeTempDirAtExit, sleep, stopAll } from '../support/proc.js';
import { startRedisServer, type RedisServer } from '../support/redis.js';
import { startTinyVncServer } from '../support/tiny-vnc-server.js';
import { startVncgateServe, type VncgateServe } from '../support/vncgate-process.js';
import { wsRfbConnect, type WsRfbResult } from '../support/ws-rfb-client.js';

const CLIENT = '127.0.0.5';
const OTHER_CLIENT = '127.0.0.6';
const UNTRUSTED = '127.0.0.9';

type Replica = { serve: VncgateServe; auditFile: string; proxyPort: number };
type Minted = { token: string; url: string; expiresAt: string };
type AuditEvent = { event: string; client: string | null; sessionId: string | null };

let pki: TestPki;
let redis: RedisServer;
let backend: Awaited<ReturnType<typeof startTinyVncServer>>;
let dir: string;
const replicas: Replica[] = [];
let haproxy: ManagedProcess;
/** Balances over both replicas. */
let lbPort: number;
/** Sends everything to the first replica (the per-client cap test needs both clients on one). */
let lbOnePort: number;

function portOf(addr: string): number {
  return Number(addr.slice(addr.lastIndexOf(':') + 1));
}

async function startReplica(name: string): Promise<Replica> {
  const auditFile = join(dir, `${name}-audit.jsonl`);
  const configFile = join(dir, `${name}.yaml`);
  await writeFile(
    configFile,
    [
      'listen: ["127.0.0.1:0"]',
      'listenProxyProtocol: ["127.0.0.1:0"]',
      'trustedProxies: ["127.0.0.1/32"]',
      `tls: {certFile: ${JSON.stringify(pki.server.cert.path)}, keyFile: ${JSON.stringify(pki.server.key.path)}}`,
      `redis: {url: ${JSON.stringify(redis.url)}}`,
      'backends: {allowedTargets: ["127.0.0.0/8", "::1/128"]}',
      'limits: {maxConnectionsPerClient: 1}',
      `audit: {file: ${JSON.stringify(auditFile)}}`,
      '',
    ].join('\n'),
  );
  const serve = await startVncgateServe({ name, env: { VNCGATE_CONFIG: configFile } });
  const proxied = serve.listeningProxyProtocol[0];
  if (proxied === undefined) throw new Error(`${name} printed no listeningProxyProtocol: ${serve.logText()}`);
  return { serve, auditFile, proxyPort: portOf(proxied) };
}

async function mint(count: number): Promise<Minted[]> {
  const r = await runVncgate(['token', 'create', '--target', `127.0.0.1:${backend.port}`, '--count', String(count)], {
    env: { VNCGATE_REDIS_URL: redis.url, VNCGATE_ALLOWED_TARGETS: '127.0.0.0/8', VNCGATE_PUBLIC_URL: `https://127.0.0.1:${lbPort}/`, VNCGATE_LOG_LEVEL: 'warn' },
    timeoutMs: 20_000,
  });
  expect(r.code, r.stderr).toBe(0);
  return r.json as Minted[];
}

/** A console session through HAProxy (`port`) from `localAddress`, as a browser on the load-balanced origin. */
function open(port: number, token: string, localAddress: string): Promise<WsRfbResult> {
  return wsRfbConnect(`wss://127.0.0.1:${port}/websockify?token=${encodeURIComponent(token)}`, {
    origin: `https://127.0.0.1:${port}`,
    ca: pki.ca.cert.pem,
    localAddress,
    timeoutMs: 15_000,
  });
}

function closeWs(ws: WebSocket): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      ws.terminate();
      resolve();
    }, 3_000);
    ws.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    ws.close(1000);
  });
}

/** The guard's rate-limited warning lines of a replica that match `want` (polled: at most one line per 10 s). */
async function guardReport(r: Replica, want: (l: Record<string, unknown>) => boolean, timeoutMs = 15_000): Promise<Record<string, unknown>> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const hit = r.serve
      .logLines()
      .filter((l) => l.startsWith('{"level"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'client connections refused at a cap or closed by a deadline' && want(l));
    if (hit) return hit;
    if (performance.now() > deadline) throw new Error(`${r.serve.name} logged no matching guard report`);
    await sleep(100);
  }
}

async function auditEvents(r: Replica): Promise<AuditEvent[]> {
  const text = await readFile(r.auditFile, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditEvent);
}

/** Polls until `ended` session.ended events are on disk across the replicas (audit lines are written in the background). */
async function waitForEnded(ended: number, timeoutMs = 10_000): Promise<AuditEvent[][]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const all = await Promise.all(replicas.map(auditEvents));
    if (all.flat().filter((e) => e.event === 'session.ended').length >= ended) return all;
    if (performance.now() > deadline) throw new Error(`audit files never showed ${ended} session.ended: ${JSON.stringify(all)}`);
    await sleep(50);
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vncgate-proxyproto-'));
  removeTempDirAtExit(dir);
  pki = await getTestPki();
  redis = await startRedisServer();
  backend = await startTinyVncServer({ name: 'behind-haproxy' });
  replicas.push(await startReplica('replica-a'), await startReplica('replica-b'));
  lbPort = await freePort();
  lbOnePort = await freePort();
  const cfg = join(dir, 'haproxy.cfg');
  await writeFile(
    cfg,
    [
      'global',
      '  maxconn 256',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 60s',
      '  timeout server 60s',
      'frontend both',
      `  bind 127.0.0.1:${lbPort}`,
      '  default_backend replicas',
      'frontend one',
      `  bind 127.0.0.1:${lbOnePort}`,
      '  default_backend first',
      'backend replicas',
      '  balance roundrobin',
      // r1's health checks carry a PROXY v2 LOCAL header (check-send-proxy): if r1 refused them
      // it would be marked down and the first test would find no session on it. r0 is not
      // checked: a LOCAL header keeps HAProxy's address, and the cap test needs r0's
      // maxConnectionsPerClient 1 for its clients alone.
      `  server r0 127.0.0.1:${replicas[0]!.proxyPort} send-proxy-v2`,
      `  server r1 127.0.0.1:${replicas[1]!.proxyPort} send-proxy-v2 check check-send-proxy inter 500`,
      'backend first',
      `  server r0 127.0.0.1:${replicas[0]!.proxyPort} send-proxy-v2`,
      '',
    ].join('\n'),
  );
  haproxy = await ManagedProcess.start({ name: 'haproxy', command: 'haproxy', args: ['-db', '-f', cfg] });
  // From /proc, not by connecting: a probe through HAProxy would reach a replica as a client
  // (127.0.0.1) of its own and use up that address's maxConnectionsPerClient 1.
  await waitForListening(haproxy, lbPort, 10_000);
  await waitForListening(haproxy, lbOnePort, 10_000);
  // Let a few health checks pass (servers start UP; failing checks would mark them down).
  await sleep(1_600);
});

afterAll(async () => {
  await haproxy?.stop();
  await stopAll();
  await backend?.close();
  await redis?.dispose();
});

describe('behind a real HAProxy with send-proxy-v2 (issue 17)', () => {
  it('the audit and the log name the client (127.0.0.5), not HAProxy, on whichever replica served it', async () => {
    const ROUNDS = 6;
    const tokens = await mint(ROUNDS);
    const t0 = performance.now();
    for (const t of tokens) {
      const r = await open(lbPort, t.token, CLIENT);
      expect(r.ok, JSON.stringify(r)).toBe(true);
      if (r.ok) await closeWs(r.ws);
    }
    console.log(`${ROUNDS} console sessions through HAProxy, opened and closed one after another: ${Math.round(performance.now() - t0)} ms`);
    const perReplica = await waitForEnded(ROUNDS);
    // Round robin: both replicas served some.
    for (const events of perReplica) expect(events.some((e) => e.event === 'session.started')).toBe(true);
    const sessions = perReplica.flat().filter((e) => e.event === 'session.started' || e.event === 'session.ended');
    expect(sessions.length).toBe(2 * ROUNDS);
    for (const e of sessions) expect(e.client).toBe(CLIENT);
    for (const r of replicas) {
      const lines = r.serve
        .logLines()
        .filter((l) => l.startsWith('{"level"'))
        .map((l) => JSON.parse(l) as { msg?: string; remote?: string });
      const sessionLines = lines.filter((l) => l.msg === 'session started' || l.msg === 'session ended');
      expect(sessionLines.length).toBeGreaterThan(0);
      for (const l of sessionLines) expect(l.remote).toBe(CLIENT);
    }
  });

  it('per-client caps count the real client: 127.0.0.5 and 127.0.0.6 each hold a session on one replica with maxConnectionsPerClient 1; a second from 127.0.0.5 is refused', async () => {
    const [a, b, c] = await mint(3);
    const first = await open(lbOnePort, a!.token, CLIENT);
    const second = await open(lbOnePort, b!.token, OTHER_CLIENT);
    try {
      expect(first.ok, JSON.stringify(first)).toBe(true);
      expect(second.ok, JSON.stringify(second)).toBe(true);
      // Refused at accept, before TLS: the client sees the connection end, not an HTTP answer.
      await expect(open(lbOnePort, c!.token, CLIENT)).rejects.toThrow();
    } finally {
      if (first.ok) await closeWs(first.ws);
      if (second.ok) await closeWs(second.ws);
    }
    // Counted against 127.0.0.5 itself, not against HAProxy's address.
    expect(await guardReport(replicas[0]!, (l) => Number(l.refusedClientCap) > 0)).toMatchObject({ refusedClientCap: 1, busiestClient: CLIENT, busiestClientRefused: 1 });
    // The refused attempt never reached authorization: its token is unused and works now.
    const later = await open(lbOnePort, c!.token, CLIENT);
    expect(later.ok, JSON.stringify(later)).toBe(true);
    if (later.ok) await closeWs(later.ws);
  });

  it('a direct connection to a PROXY listener from outside trustedProxies is closed at once, unanswered', async () => {
    // The replica the cap test did not touch: its first guard report comes at once.
    const r = replicas[1]!;
    const outcome = await new Promise<{ bytes: number; closed: boolean }>((resolve) => {
      const s = netConnect({ host: '127.0.0.1', port: r.proxyPort, localAddress: UNTRUSTED });
      let bytes = 0;
      const timer = setTimeout(() => {
        s.destroy();
        resolve({ bytes, closed: false });
      }, 5_000);
      s.on('connect', () => s.write(`PROXY TCP4 ${CLIENT} 127.0.0.1 40000 ${r.proxyPort}\r\n`));
      s.on('data', (d) => (bytes += d.length));
      s.on('error', () => {});
      s.on('close', () => {
        clearTimeout(timer);
        resolve({ bytes, closed: true });
      });
    });
    expect(outcome).toEqual({ bytes: 0, closed: true });
    expect(await guardReport(r, (l) => Number(l.refusedUntrustedProxy) > 0)).toMatchObject({ refusedUntrustedProxy: 1, busiestClient: UNTRUSTED });
  });

  it('a v1 header and the TLS ClientHello in one TCP segment: TLS gets its bytes unchanged', async () => {
    const r = replicas[1]!;
    const body = await new Promise<string>((resolve, reject) => {
      const raw = netConnect({ host: '127.0.0.1', port: r.proxyPort });
      raw.on('connect', () => {
        // Corked: the header and the ClientHello leave in one write.
        raw.cork();
        raw.write(`PROXY TCP4 ${CLIENT} 127.0.0.1 40000 ${r.proxyPort}\r\n`);
        const t = tlsConnect({ socket: raw, ca: pki.ca.cert.pem, servername: 'localhost' }, () => {
          t.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
        });
        process.nextTick(() => raw.uncork());
        let text = '';
        t.on('data', (d: Buffer) => (text += d.toString('utf8')));
        t.on('end', () => resolve(text));
        t.on('error', reject);
      });
      raw.on('error', reject);
    });
    expect(body).toMatch(/^HTTP\/1.1 200/);
  });
});
