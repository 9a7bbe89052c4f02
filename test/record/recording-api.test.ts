/**
 * The recordings API's access rules (src/proxy/recording-api.ts), in process: the list and the
 * playback links need the JWT; the data needs a ticket, once, in a header; ids are checked.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import { buildServer, type VncgateServer } from '../../src/proxy/server.js';
import { encodeEnd, encodeHeader, RECORDING_FORMAT, type RecordingHeader } from '../../src/record/index.js';
import { MemoryTokenStore } from '../../src/tokens/index.js';

const SECRET = 'recording-api-secret-of-at-least-32-bytes';
const ID = '20260101T000000Z-0123456789ab';
let dir: string;
let srv: VncgateServer;
let fileBytes: Buffer;

const jwt = (secret = SECRET): Promise<string> =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer('https://iss.test').setAudience('vncgate').setSubject('op').setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode(secret));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vncgate-recapi-'));
  await writeFile(join(dir, 'jwt.secret'), SECRET);
  const recDir = join(dir, 'rec');
  const config = loadConfig({
    env: {},
    overrides: {
      listen: ['127.0.0.1:0'],
      tls: { plainHttp: true },
      api: { jwt: { hs256SecretFile: join(dir, 'jwt.secret'), issuer: 'https://iss.test', audience: 'vncgate' } },
      recordings: { dir: recDir },
    },
  });
  srv = await buildServer({ config, tokens: new MemoryTokenStore(), log: createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) }) });
  const h: RecordingHeader = { format: RECORDING_FORMAT, version: 1, id: ID, sessionId: '0123456789ab', startedAt: new Date().toISOString(), target: 't', profile: 'p', width: 1, height: 1, desktopName: '', recordKeys: false, reason: 'profile' };
  fileBytes = Buffer.concat([encodeHeader(h), encodeEnd(5, { endedAt: h.startedAt, durationMs: 5, truncated: false, reason: null, dataBytes: 0, events: 0, keyEventsOmitted: 0 })]);
  await writeFile(join(recDir, `${ID}.vncrec`), fileBytes);
});

afterAll(async () => {
  await srv?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('recordings API', () => {
  it('lists only for a valid JWT', async () => {
    expect((await srv.app.inject({ url: '/v1/recordings' })).json().error.code).toBe('HTTP_ERR_UNAUTHORIZED');
    expect((await srv.app.inject({ url: '/v1/recordings', headers: { authorization: `Bearer ${await jwt('another-secret-of-at-least-32-bytes!!')}` } })).statusCode).toBe(401);
    const r = await srv.app.inject({ url: '/v1/recordings', headers: { authorization: `Bearer ${await jwt()}` } });
    expect(r.statusCode).toBe(200);
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.json().recordings).toEqual([expect.objectContaining({ id: ID, truncated: false, active: false })]);
  });

  it('mints single-use playback links; the data needs the ticket in its header, once', async () => {
    expect((await srv.app.inject({ method: 'POST', url: `/v1/recordings/${ID}/playback` })).statusCode).toBe(401);
    const auth = { authorization: `Bearer ${await jwt()}` };
    expect((await srv.app.inject({ method: 'POST', url: '/v1/recordings/..%2F..%2Fetc%2Fpasswd/playback', headers: auth })).json().error.code).toBe('RECORDING_ERR_NOT_FOUND');
    expect((await srv.app.inject({ method: 'POST', url: '/v1/recordings/20260101T000000Z-ffffffffffff/playback', headers: auth })).json().error.code).toBe('RECORDING_ERR_NOT_FOUND');
    const link = await srv.app.inject({ method: 'POST', url: `/v1/recordings/${ID}/playback`, headers: auth });
    expect(link.statusCode).toBe(201);
    const url = new URL(link.json().url as string);
    expect(url.pathname).toBe('/playback.html');
    const ticket = new URLSearchParams(url.hash.slice(1)).get('ticket')!;
    expect(ticket).toMatch(/^[A-Za-z0-9_-]{32}$/);

    expect((await srv.app.inject({ url: '/v1/recordings/playback-data' })).json().error.code).toBe('RECORDING_ERR_LINK_INVALID');
    expect((await srv.app.inject({ url: `/v1/recordings/playback-data?ticket=${ticket}` })).json().error.code).toBe('RECORDING_ERR_LINK_INVALID');
    const data = await srv.app.inject({ url: '/v1/recordings/playback-data', headers: { 'x-playback-ticket': ticket } });
    expect(data.statusCode).toBe(200);
    expect(data.rawPayload.equals(fileBytes)).toBe(true);
    const again = await srv.app.inject({ url: '/v1/recordings/playback-data', headers: { 'x-playback-ticket': ticket } });
    expect(again.statusCode).toBe(401);
    expect(again.json().error.code).toBe('RECORDING_ERR_LINK_INVALID');
  });
});
