/**
 * Recording decisions and failures on real sessions (vncgate in process, a real WebSocket client
 * playing noVNC's part, the echoing test VNC server):
 * - who records: the profile's `record`, or a token's `record: true`; a token cannot switch a
 *   profile's recording off; a token asking on a service without recordings.dir is refused;
 * - a disk that fills up (a real 256 KiB tmpfs: ENOSPC) stops the recording, which is logged and
 *   audited (`recording.failed`), while the session carries on byte for byte.
 * Needs root (mount), as the integration tier does.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { SignJWT } from 'jose';
import type WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import type { AuditLog } from '../../src/observe/index.js';
import { buildServer, type VncgateServer } from '../../src/proxy/server.js';
import { parseRecording, RECORD_TYPE } from '../../src/record/index.js';
import { MemoryTokenStore } from '../../src/tokens/index.js';
import { runCommand } from '../support/proc.js';
import { startTinyVncServer } from '../support/tiny-vnc-server.js';
import { wsRfbConnect } from '../support/ws-rfb-client.js';

const SECRET = 'recording-sessions-secret-of-32-bytes-or-more';
let dir: string;
let full: string;
let mounted = false;
let backend: Awaited<ReturnType<typeof startTinyVncServer>>;
const servers: VncgateServer[] = [];
const audit: { event: string; [k: string]: unknown }[] = [];
const auditLog: AuditLog = { enabled: true, dropped: 0, write: (event, fields) => void audit.push({ event, ...fields }), reopen: () => undefined, close: () => Promise.resolve() };

async function jwt(): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer('https://iss.test').setAudience('vncgate').setSubject('op').setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode(SECRET));
}

async function serve(recordingsDir: string | null): Promise<VncgateServer> {
  const config = loadConfig({
    env: {},
    overrides: {
      listen: ['127.0.0.1:0'],
      tls: { plainHttp: true },
      api: { jwt: { hs256SecretFile: join(dir, 'jwt.secret'), issuer: 'https://iss.test', audience: 'vncgate' } },
      backends: {
        allowedTargets: ['127.0.0.0/8'],
        profiles: { audited: { security: ['none'], record: recordingsDir !== null }, plain: { security: ['none'] } },
      },
      recordings: { dir: recordingsDir, maxBytesPerRecording: 16 * 1024 * 1024 },
    },
  });
  const log = createLogger({ level: 'info', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const srv = await buildServer({ config, tokens: new MemoryTokenStore(), log, audit: auditLog });
  servers.push(srv);
  return srv;
}

async function mint(srv: VncgateServer, body: Record<string, unknown>): Promise<{ status: number; json: any }> {
  const r = await fetch(`http://${srv.addresses[0]}/v1/console-tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await jwt()}`, 'content-type': 'application/json' },
    body: JSON.stringify({ target: `127.0.0.1:${backend.port}`, ...body }),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: r.status, json: await r.json() };
}

/** Opens a session, sends `messages`, waits for their echo (bounded), closes. */
async function session(srv: VncgateServer, token: string, messages: Buffer[] = []): Promise<Buffer> {
  const r = await wsRfbConnect(`ws://${srv.addresses[0]}/?token=${token}`);
  if (!r.ok) throw new Error(`session refused: ${r.code}`);
  const ws: WebSocket = r.ws;
  const want = messages.reduce((n, m) => n + m.length, 0);
  const got: Buffer[] = [];
  let n = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`echo: ${n} of ${want} bytes`)), 15_000);
    ws.on('message', (d: Buffer) => {
      got.push(d);
      n += d.length;
      if (n >= want) {
        clearTimeout(timer);
        resolve();
      }
    });
    for (const m of messages) ws.send(m);
    if (want === 0) {
      clearTimeout(timer);
      resolve();
    }
  });
  expect(ws.readyState).toBe(ws.OPEN);
  ws.close();
  await new Promise((resolve) => ws.once('close', resolve));
  return Buffer.concat(got);
}

async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await cond()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A ClientCutText of n bytes (§7.5.6): the echo server sends it back, so vncgate records n bytes toward the browser. */
function cutText(n: number, fill: number): Buffer {
  const b = Buffer.alloc(8 + n, fill);
  b.writeUInt32BE(0x0600_0000, 0);
  b.writeUInt32BE(n, 4);
  return b;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vncgate-recsess-'));
  await writeFile(join(dir, 'jwt.secret'), SECRET);
  full = join(dir, 'full');
  await runCommand('mkdir', ['-p', full]);
  await runCommand('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', full]);
  mounted = true;
  backend = await startTinyVncServer({ name: 'tiny-desk' });
});

afterAll(async () => {
  for (const s of servers) await s.close();
  await backend?.close();
  if (mounted) await runCommand('umount', [full]);
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('who is recorded', () => {
  it('the profile, or a token that asks; a token cannot turn the profile off', async () => {
    const recDir = join(dir, 'rec');
    const srv = await serve(recDir);
    const cases = [
      { profile: 'plain', record: undefined, expected: null },
      { profile: 'plain', record: true, expected: 'token' },
      { profile: 'audited', record: false, expected: 'profile' },
    ];
    for (const c of cases) {
      const before = new Set(await readdir(recDir));
      const m = await mint(srv, { profile: c.profile, ...(c.record !== undefined ? { record: c.record } : {}) });
      expect(m.status, JSON.stringify(m.json)).toBe(201);
      const endedBefore = audit.filter((a) => a.event === 'recording.ended').length;
      const sessionsBefore = audit.filter((a) => a.event === 'session.ended').length;
      await session(srv, m.json.token as string, [Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x61]), Buffer.from([5, 0, 0, 9, 0, 7])]);
      if (c.expected === null) {
        // The session has ended (and with it, any recording it had would have begun and ended).
        await until(() => audit.filter((a) => a.event === 'session.ended').length > sessionsBefore, 'session.ended');
        expect(new Set(await readdir(recDir))).toEqual(before);
        expect(audit.filter((a) => a.event === 'recording.ended')).toHaveLength(endedBefore);
        continue;
      }
      await until(() => audit.filter((a) => a.event === 'recording.ended').length > endedBefore, 'recording.ended');
      const added = (await readdir(recDir)).filter((f) => !before.has(f));
      expect(added).toHaveLength(1);
      const rec = parseRecording(await readFile(join(recDir, added[0]!)));
      expect(rec.header.reason).toBe(c.expected);
      expect(rec.trailer).toMatchObject({ truncated: false, keyEventsOmitted: 1 });
      expect(rec.records.filter((r) => r.type === RECORD_TYPE.event).map((r) => JSON.parse(r.payload.toString()))).toEqual([{ k: 'pointerEvent', buttons: 0, x: 9, y: 7 }]);
    }
  });

  it('a token asking for a recording where none can be made is refused', async () => {
    const srv = await serve(null);
    const m = await mint(srv, { profile: 'plain', record: true });
    expect(m.status).toBe(404);
    expect(m.json.error.code).toBe('RECORDING_ERR_DISABLED');
  });
});

describe('shutdown', () => {
  it('a session cut off by the server closing still gets its end record', async () => {
    const recDir = join(dir, 'rec-shutdown');
    const srv = await serve(recDir);
    const m = await mint(srv, { profile: 'audited' });
    const r = await wsRfbConnect(`ws://${srv.addresses[0]}/?token=${m.json.token as string}`);
    if (!r.ok) throw new Error(r.code);
    servers.splice(servers.indexOf(srv), 1);
    await srv.close();
    const files = await readdir(recDir);
    expect(files).toHaveLength(1);
    const rec = parseRecording(await readFile(join(recDir, files[0]!)));
    expect(rec.trailer).toMatchObject({ truncated: false, reason: null });
  });
});

describe('a full disk', () => {
  it('stops the recording (ENOSPC, audited), never the session', async () => {
    const srv = await serve(full);
    const m = await mint(srv, { profile: 'audited' });
    const sent = [cutText(200_000, 1), cutText(200_000, 2), cutText(200_000, 3)];
    const echoed = await session(srv, m.json.token as string, sent);
    // Every byte came back, in order, after the disk had filled up.
    expect(echoed.equals(Buffer.concat(sent))).toBe(true);
    await until(() => audit.some((a) => a.event === 'recording.failed'), 'recording.failed');
    expect(audit.find((a) => a.event === 'recording.failed')).toMatchObject({ code: 'RECORDING_ERR_FAILED', reason: 'error', errno: 'ENOSPC', profile: 'audited' });
    const files = await readdir(full);
    expect(files).toHaveLength(1);
    // What reached the disk is a readable prefix, without its end record: listed as truncated.
    const rec = parseRecording(await readFile(join(full, files[0]!)));
    expect(rec.trailer).toBeNull();
    expect(rec.records[0]!.payload.subarray(0, 12).toString('latin1')).toBe('RFB 003.008\n');
    const list = await fetch(`http://${srv.addresses[0]}/v1/recordings`, { headers: { authorization: `Bearer ${await jwt()}` } });
    expect(((await list.json()) as { recordings: unknown[] }).recordings).toEqual([expect.objectContaining({ truncated: true, active: false, trailer: null })]);
  });
});
