/**
 * Issue 18 item 5: GET /v1/screenshots and GET /v1/console-checks in process, against scripted RFB
 * servers that misbehave on purpose (a 65535x65535 framebuffer, a server that never sends a frame,
 * one that is not allowed by the target policy). Real Xvnc and QEMU are in screenshot.int.test.ts.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VncgateServer } from '../../src/proxy/server.js';
import { signTestJwt, startInProcess } from '../support/in-process.js';
import { decodePng, pngPixel } from '../support/png-decode.js';

type Behaviour = 'frame' | 'stall';

/**
 * RFB 3.8 with security None, then a ServerInit of `width`x`height`; on each FramebufferUpdateRequest
 * either a Raw frame of the requested size painted by (x, y) -> [x*40, y*40, 200] ('frame') or
 * nothing ('stall'). Counts connections and what each ClientInit said.
 */
async function scriptedServer(width: number, height: number, behaviour: Behaviour): Promise<{ port: number; server: Server; accepted: () => number; sharedFlags: number[]; close: () => Promise<void> }> {
  let accepted = 0;
  const sharedFlags: number[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    accepted += 1;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    let stage = 0;
    let buf = Buffer.alloc(0);
    sock.write('RFB 003.008\n');
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (stage === 0 && buf.length >= 12) {
          buf = buf.subarray(12);
          sock.write(Buffer.from([1, 1]));
          stage = 1;
        } else if (stage === 1 && buf.length >= 1) {
          buf = buf.subarray(1);
          sock.write(Buffer.from([0, 0, 0, 0]));
          stage = 2;
        } else if (stage === 2 && buf.length >= 1) {
          sharedFlags.push(buf[0]!);
          buf = buf.subarray(1);
          const init = Buffer.alloc(24 + 4);
          init.writeUInt16BE(width, 0);
          init.writeUInt16BE(height, 2);
          Buffer.from([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0]).copy(init, 4);
          init.writeUInt32BE(4, 20);
          init.write('desk', 24, 'latin1');
          sock.write(init);
          stage = 3;
        } else if (stage === 3 && buf.length >= 1) {
          const type = buf[0]!;
          const len = type === 0 ? 20 : type === 2 ? 4 + 4 * buf.readUInt16BE(2) : type === 3 ? 10 : 1;
          if (type === 2 && buf.length < 4) return;
          if (buf.length < len) return;
          if (type === 3 && behaviour === 'frame') {
            const [x, y, w, h] = [buf.readUInt16BE(2), buf.readUInt16BE(4), buf.readUInt16BE(6), buf.readUInt16BE(8)];
            const msg = Buffer.alloc(4 + 12 + 4 * w * h);
            msg.writeUInt16BE(1, 2);
            msg.writeUInt16BE(x, 4);
            msg.writeUInt16BE(y, 6);
            msg.writeUInt16BE(w, 8);
            msg.writeUInt16BE(h, 10);
            for (let j = 0; j < h; j++) for (let i = 0; i < w; i++) msg.set([200, ((y + j) * 40) & 255, ((x + i) * 40) & 255, 0], 16 + 4 * (j * w + i));
            sock.write(msg);
          }
          buf = buf.subarray(len);
        } else return;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    server,
    accepted: () => accepted,
    sharedFlags,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let srv: VncgateServer;
let base: string;
let bearer: string;
let good: Awaited<ReturnType<typeof scriptedServer>>;
let huge: Awaited<ReturnType<typeof scriptedServer>>;
let stall: Awaited<ReturnType<typeof scriptedServer>>;
let outside: Awaited<ReturnType<typeof scriptedServer>>;

beforeAll(async () => {
  good = await scriptedServer(6, 4, 'frame');
  huge = await scriptedServer(65_535, 65_535, 'frame');
  stall = await scriptedServer(8, 8, 'stall');
  outside = await scriptedServer(8, 8, 'frame');
  ({ srv } = await startInProcess({
    overrides: {
      api: { screenshots: { timeoutMs: 1_000, maxConcurrent: 1 } },
      // Only these ports: `outside` is on loopback too, and must be refused.
      backends: { allowedTargets: [`127.0.0.1/32:${good.port}`, `127.0.0.1/32:${huge.port}`, `127.0.0.1/32:${stall.port}`] },
    },
  }));
  base = srv.baseUrl.replace(/\/$/, '');
  bearer = await signTestJwt({}, { sub: 'screenshot-test' });
});

afterAll(async () => {
  await srv?.close();
  for (const s of [huge, stall, outside]) await s?.close();
});

function get(path: string, auth = true): Promise<Response> {
  return fetch(`${base}${path}`, { headers: auth ? { authorization: `Bearer ${bearer}` } : {} });
}

async function errorCode(r: Response): Promise<string> {
  return ((await r.json()) as { error: { code: string } }).error.code;
}

describe('GET /v1/screenshots', () => {
  it('returns the frame as image/png, over a shared connection', async () => {
    const r = await get(`/v1/screenshots?target=127.0.0.1:${good.port}`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('image/png');
    expect(r.headers.get('cache-control')).toBe('no-store');
    const png = decodePng(Buffer.from(await r.arrayBuffer()));
    expect([png.width, png.height]).toEqual([6, 4]);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 6; x++) expect(pngPixel(png, x, y)).toEqual([x * 40, y * 40, 200]);
    expect(good.sharedFlags.at(-1)).toBe(1);
  });

  it('needs a valid bearer JWT (401 HTTP_ERR_UNAUTHORIZED)', async () => {
    const r = await get(`/v1/screenshots?target=127.0.0.1:${good.port}`, false);
    expect([r.status, await errorCode(r)]).toEqual([401, 'HTTP_ERR_UNAUTHORIZED']);
  });

  it('refuses malformed queries (400 HTTP_ERR_BAD_REQUEST)', async () => {
    for (const q of ['', '?target=nowhere', '?target=127.0.0.1:1&node=n', '?target=127.0.0.1:1&target=127.0.0.1:2', '?target=127.0.0.1:1&ttlSeconds=5', '?target=127.0.0.1:1&profile=nope', '?node=n']) {
      const r = await get(`/v1/screenshots${q}`);
      expect([q, r.status, await errorCode(r)]).toEqual([q, 400, 'HTTP_ERR_BAD_REQUEST']);
    }
  });

  it('refuses a target outside backends.allowedTargets without connecting (403 TARGET_ERR_FORBIDDEN)', async () => {
    const r = await get(`/v1/screenshots?target=127.0.0.1:${outside.port}`);
    const body = (await r.json()) as { error: { code: string; message: string } };
    expect([r.status, body.error.code]).toEqual([403, 'TARGET_ERR_FORBIDDEN']);
    expect(body.error.message).not.toContain('refused by the target policy:');
    expect(outside.accepted()).toBe(0);
  });

  it('refuses a 65535x65535 framebuffer before allocating it (502 RFB_ERR_LIMIT)', async () => {
    const r = await get(`/v1/screenshots?target=127.0.0.1:${huge.port}`);
    expect([r.status, await errorCode(r)]).toEqual([502, 'RFB_ERR_LIMIT']);
  });

  it('gives up at api.screenshots.timeoutMs on a server that never sends a frame (504 BACKEND_ERR_TIMEOUT)', async () => {
    const r = await get(`/v1/screenshots?target=127.0.0.1:${stall.port}`);
    expect([r.status, await errorCode(r)]).toEqual([504, 'BACKEND_ERR_TIMEOUT']);
  });

  it('refuses more than api.screenshots.maxConcurrent at once (503 SESSION_ERR_CAPACITY), then serves again', async () => {
    const first = get(`/v1/screenshots?target=127.0.0.1:${stall.port}`);
    // The first holds the only slot once the stalled server has its connection.
    const before = stall.accepted();
    for (let i = 0; i < 100 && stall.accepted() === before; i++) await new Promise((r) => setTimeout(r, 20));
    const second = await get(`/v1/screenshots?target=127.0.0.1:${good.port}`);
    expect([second.status, await errorCode(second)]).toEqual([503, 'SESSION_ERR_CAPACITY']);
    expect((await first).status).toBe(504);
    expect((await get(`/v1/screenshots?target=127.0.0.1:${good.port}`)).status).toBe(200);
  });
});

describe('GET /v1/console-checks', () => {
  it('reports security, desktop name, size and elapsed time', async () => {
    const r = await get(`/v1/console-checks?target=127.0.0.1:${huge.port}`);
    expect(r.status).toBe(200);
    const body = (await r.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ ok: true, security: { choice: 'none', type: 'None', subtype: null }, desktopName: 'desk', width: 65_535, height: 65_535 });
    expect(typeof body.elapsedMs).toBe('number');
  });

  it('answers request errors as errors, not as failed checks', async () => {
    const r = await get(`/v1/console-checks?target=127.0.0.1:${outside.port}`);
    expect([r.status, await errorCode(r)]).toEqual([403, 'TARGET_ERR_FORBIDDEN']);
  });

  it('reports a console that does not answer as ok: false with the code and a hint (last: it closes the good server)', async () => {
    await good.close();
    const r = await get(`/v1/console-checks?target=127.0.0.1:${good.port}`);
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ ok: false, error: { code: 'BACKEND_ERR_REFUSED', status: 502, hint: expect.stringContaining('nothing listens') } });
  });
});
