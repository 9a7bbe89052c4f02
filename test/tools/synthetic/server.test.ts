import { afterEach, describe, expect, it } from 'vitest';
import type { PixelFormat } from '../../../src/rfb/index.js';
import { DemoScreen } from '../../../tools/synthetic/demo-screen.js';
import {
  MESSAGE_LIMITS,
  SERVER_PIXEL_FORMAT,
  startSyntheticServer,
  streamPayloadSeq,
  verifyStreamPayload,
  type SyntheticServer,
  type SyntheticServerOptions,
} from '../../../tools/synthetic/index.js';
import { rejectionCode } from '../../tokens/expect-code.js';
import { Framebuffer, TestRfbClient, captureLogger, sleep, until } from './rfb-test-client.js';

const RGB565: PixelFormat = {
  bitsPerPixel: 16,
  depth: 16,
  bigEndian: false,
  trueColour: true,
  redMax: 31,
  greenMax: 63,
  blueMax: 31,
  redShift: 11,
  greenShift: 5,
  blueShift: 0,
};

// What noVNC sends (core/rfb.js _sendSetPixelFormat): 32 bpp, depth 24, little-endian, shifts 0/8/16.
const NOVNC_PIXEL_FORMAT: PixelFormat = { ...SERVER_PIXEL_FORMAT };

const servers: SyntheticServer[] = [];
const clients: TestRfbClient[] = [];

async function start(opts: SyntheticServerOptions): Promise<SyntheticServer> {
  const s = await startSyntheticServer(opts);
  servers.push(s);
  return s;
}

async function client(port: number, opts: Parameters<typeof TestRfbClient.connect>[1] = {}): Promise<TestRfbClient> {
  const c = await TestRfbClient.connect(port, opts);
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** Sends incremental requests and applies updates until `done()` or the deadline. */
async function pollUntil(c: TestRfbClient, fb: Framebuffer, done: () => boolean, timeoutMs = 3_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    c.request(true);
    fb.apply(await c.nextUpdate(deadline - Date.now()));
    if (done()) return true;
  }
  return false;
}

describe('synthetic server: handshake and ServerInit', () => {
  it('serves security None and sends the ServerInit fields', async () => {
    const s = await start({ mode: 'demo', width: 640, height: 480, desktopName: 'test desk' });
    expect(s.host).toBe('127.0.0.1');
    expect(s.address()).toMatchObject({ address: '127.0.0.1', port: s.port });
    const c = await client(s.port);
    expect(c.init).toEqual({ width: 640, height: 480, name: 'test desk', pixelFormat: SERVER_PIXEL_FORMAT });
  });

  it('uses the default size and name', async () => {
    const s = await start({ mode: 'demo' });
    const c = await client(s.port);
    expect(c.init).toMatchObject({ width: 1024, height: 768, name: 'vncgate demo console' });
  });

  it('serves VncAuth with the right password', async () => {
    const s = await start({ mode: 'demo', width: 64, height: 64, security: ['vncauth'], password: 'sekrit' });
    const c = await client(s.port, { security: ['vncauth'], password: 'sekrit' });
    c.request(false);
    const rects = await c.nextUpdate();
    expect(rects).toHaveLength(1);
  });

  it('answers a wrong VncAuth password with a SecurityResult failure', async () => {
    const { logger, lines } = captureLogger();
    const s = await start({ mode: 'demo', width: 64, height: 64, security: ['vncauth'], password: 'sekrit', logger });
    expect(await rejectionCode(TestRfbClient.connect(s.port, { security: ['vncauth'], password: 'wrong' }))).toBe('RFB_ERR_AUTH_FAILED');
    expect(await until(() => s.stats().clientsConnected === 0)).toBe(true);
    expect(lines).toContainEqual(expect.objectContaining({ level: 'warn', obj: expect.objectContaining({ code: 'RFB_ERR_CLIENT_AUTH' }) }));
  });

  it('rejects bad options with CONFIG_ERR_INVALID, listing every problem', async () => {
    const err = await startSyntheticServer({ mode: 'demo', width: 0, security: ['vncauth'], port: 70_000 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CONFIG_ERR_INVALID' });
    expect((err as { details: { errors: string[] } }).details.errors).toHaveLength(3);
  });

  it('closes a client that does not finish the handshake in time', async () => {
    const s = await start({ mode: 'demo', width: 64, height: 64, handshakeTimeoutMs: 100 });
    const { connect } = await import('node:net');
    const sock = connect({ host: '127.0.0.1', port: s.port });
    sock.on('error', () => {});
    sock.resume();
    const closed = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 2_000);
      sock.once('close', () => (clearTimeout(t), resolve(true)));
    });
    sock.destroy();
    expect(closed).toBe(true);
    expect(await until(() => s.stats().clientsConnected === 0)).toBe(true);
  });
});

describe('synthetic server: demo mode', () => {
  it('answers a non-incremental request with the full frame', async () => {
    const s = await start({ mode: 'demo' });
    const c = await client(s.port);
    c.setPixelFormat(NOVNC_PIXEL_FORMAT);
    c.setEncodings([0, -223]);
    c.request(false);
    const rects = await c.nextUpdate();
    expect(rects.map(({ pixels, ...r }) => r)).toEqual([{ x: 0, y: 0, width: 1024, height: 768, encoding: 0 }]);
    expect(rects[0]!.pixels.length).toBe(1024 * 768 * 4);
    const fb = new Framebuffer(1024, 768);
    fb.apply(rects);
    // Colour bars, in the R, G, B, 0 byte order noVNC asked for.
    expect(fb.rgbAt(64, 100)).toBe(0xffffff);
    expect(fb.rgbAt(64 + 128, 100)).toBe(0xffff00);
    expect(fb.rgbAt(64 + 256, 100)).toBe(0x00ffff);
    expect(fb.rgbAt(64 + 5 * 128, 100)).toBe(0xff0000);
    expect(fb.pixels[(100 * 1024 + 64) * 4 + 3]).toBe(0);
  });

  it('sends an incremental update only when something changed, and only the changed part', async () => {
    const s = await start({ mode: 'demo', tickIntervalMs: 20 });
    const c = await client(s.port);
    c.request(false);
    await c.nextUpdate();
    c.request(true);
    const rects = await c.nextUpdate();
    const pixels = rects.reduce((n, r) => n + r.width * r.height, 0);
    expect(pixels).toBeGreaterThan(0);
    expect(pixels).toBeLessThan((1024 * 768) / 20);
  });

  it('shows typed keys: after "h", "i" the keys line holds them', async () => {
    const s = await start({ mode: 'demo' });
    const c = await client(s.port);
    const fb = new Framebuffer(1024, 768);
    c.request(false);
    fb.apply(await c.nextUpdate());

    // The reference: the same screen rendered in memory with the same keys typed.
    const ref = new DemoScreen({ width: 1024, height: 768, desktopName: 'x', now: 0 });
    ref.key(true, 0x68);
    ref.key(true, 0x69);
    const { keys, cell } = ref.layout;
    // Columns 6 and 7 of the keys line ("keys> " is 6 wide); the cursor has moved past them.
    const typedCells = { x: keys.x + 6 * cell.width, y: keys.y, width: 2 * cell.width, height: cell.height };
    const expected = Buffer.from(ref.canvas.pixels.buffer).subarray(0);
    const refFb = new Framebuffer(1024, 768);
    expected.copy(refFb.pixels);
    const before = fb.region(typedCells);
    expect(before.equals(refFb.region(typedCells))).toBe(false);

    c.type('hi');
    expect(await pollUntil(c, fb, () => fb.region(typedCells).equals(refFb.region(typedCells)))).toBe(true);
    expect(fb.region(typedCells).equals(before)).toBe(false);
  });

  it('moves the animated box over time', async () => {
    const s = await start({ mode: 'demo', width: 640, height: 480 });
    const c = await client(s.port);
    const fb = new Framebuffer(640, 480);
    c.request(false);
    fb.apply(await c.nextUpdate());
    const { track } = new DemoScreen({ width: 640, height: 480, desktopName: 'x', now: 0 }).layout;
    const first = fb.region(track);
    // The default tick is 100 ms; within a second the box must have moved.
    expect(await pollUntil(c, fb, () => !fb.region(track).equals(first), 1_500)).toBe(true);
  });

  it('shows the pointer position', async () => {
    const s = await start({ mode: 'demo', width: 640, height: 480 });
    const c = await client(s.port);
    const fb = new Framebuffer(640, 480);
    c.request(false);
    fb.apply(await c.nextUpdate());
    const at = { x: 300, y: 400 };
    const before = fb.rgbAt(at.x, at.y);
    c.pointer(at.x, at.y, 0);
    expect(await pollUntil(c, fb, () => fb.rgbAt(at.x, at.y) !== before)).toBe(true);
    expect(fb.rgbAt(at.x, at.y)).toBe(0xffffff);
  });

  it('honours SetPixelFormat 16 bpp (RGB565)', async () => {
    const s = await start({ mode: 'demo', width: 320, height: 200 });
    const c = await client(s.port);
    c.setPixelFormat(RGB565);
    c.request(false);
    const [r] = await c.nextUpdate();
    expect(r).toMatchObject({ x: 0, y: 0, width: 320, height: 200 });
    expect(r!.pixels.length).toBe(320 * 200 * 2);
    // First bar white, second yellow (r=31, g=63, b=0).
    const px = (x: number, y: number): number => r!.pixels.readUInt16LE((y * 320 + x) * 2);
    expect(px(20, 30)).toBe(0xffff);
    expect(px(60, 30)).toBe(0xffe0);
  });

  it('closes a client that asks for a colour-map pixel format, with a log line', async () => {
    const { logger, lines } = captureLogger();
    const s = await start({ mode: 'demo', width: 64, height: 64, logger });
    const c = await client(s.port);
    c.setPixelFormat({ ...RGB565, bitsPerPixel: 8, depth: 8, trueColour: false });
    expect(await c.waitClosed()).toBe(true);
    expect(lines.some((l) => l.level === 'warn' && /pixel format/.test(l.msg))).toBe(true);
  });

  it('shares one desktop: keys typed by one client reach another', async () => {
    const s = await start({ mode: 'demo', width: 640, height: 480 });
    const a = await client(s.port);
    const b = await client(s.port);
    const fb = new Framebuffer(640, 480);
    b.request(false);
    fb.apply(await b.nextUpdate());
    const { keys, cell } = new DemoScreen({ width: 640, height: 480, desktopName: 'x', now: 0 }).layout;
    const col7 = { x: keys.x + 7 * cell.width, y: keys.y, width: cell.width, height: cell.height };
    const before = fb.region(col7);
    a.type('xy');
    expect(await pollUntil(b, fb, () => !fb.region(col7).equals(before))).toBe(true);
  });
});

describe('synthetic server: misbehaving clients', () => {
  it('closes a client sending an unknown message type; another client keeps working', async () => {
    const { logger, lines } = captureLogger();
    const s = await start({ mode: 'demo', width: 64, height: 64, logger });
    const bad = await client(s.port);
    const good = await client(s.port);
    bad.send(Buffer.from([0x99, 1, 2, 3]));
    expect(await bad.waitClosed()).toBe(true);
    expect(lines).toContainEqual(expect.objectContaining({ level: 'warn', obj: expect.objectContaining({ messageType: 0x99 }) }));
    good.request(false);
    expect(await good.nextUpdate()).toHaveLength(1);
    expect(good.closed).toBe(false);
  });

  it('skips cut text within the limit and closes a client over it', async () => {
    const s = await start({ mode: 'demo', width: 64, height: 64 });
    const ok = await client(s.port);
    const text = Buffer.alloc(100_000, 0x61);
    const header = Buffer.from([6, 0, 0, 0, 0, 0, 0, 0]);
    header.writeUInt32BE(text.length, 4);
    ok.send(Buffer.concat([header, text]));
    ok.request(false);
    expect(await ok.nextUpdate()).toHaveLength(1);

    const tooLong = await client(s.port);
    header.writeUInt32BE(MESSAGE_LIMITS.maxCutTextBytes + 1, 4);
    tooLong.send(header);
    expect(await tooLong.waitClosed()).toBe(true);
    expect(ok.closed).toBe(false);
  });

  it('closes a client announcing too many encodings', async () => {
    const s = await start({ mode: 'demo', width: 64, height: 64 });
    const c = await client(s.port);
    c.send(Buffer.from([2, 0, 0xff, 0xff]));
    expect(await c.waitClosed()).toBe(true);
  });

  it('refuses connections past maxClients', async () => {
    const { logger, lines } = captureLogger();
    const s = await start({ mode: 'demo', width: 64, height: 64, maxClients: 1, logger });
    await client(s.port);
    expect(await rejectionCode(TestRfbClient.connect(s.port))).toBe('BACKEND_ERR_CLOSED');
    expect(s.stats()).toMatchObject({ connectionsRefused: 1, clientsConnected: 1 });
    expect(lines.some((l) => l.level === 'warn' && /maxClients/.test(l.msg))).toBe(true);
  });
});

describe('synthetic server: stream mode', () => {
  it('answers each request with one checkable update of about streamUpdateBytes', async () => {
    const s = await start({ mode: 'stream' });
    const c = await client(s.port);
    c.setPixelFormat(NOVNC_PIXEL_FORMAT);
    for (let seq = 0; seq < 3; seq++) {
      c.request(seq > 0);
      const rects = await c.nextUpdate();
      expect(rects).toHaveLength(1);
      const [r] = rects;
      expect(r!.pixels.length).toBe(256 * 1024);
      expect(streamPayloadSeq(r!.pixels)).toBe(seq);
      expect(verifyStreamPayload(seq, r!.pixels)).toEqual({ ok: true });
      // A different seq's payload does not verify.
      expect(verifyStreamPayload(seq + 1, r!.pixels).ok).toBe(false);
      if (seq === 2) {
        r!.pixels.writeUInt8(r!.pixels.readUInt8(100_000) ^ 0x01, 100_000);
        expect(verifyStreamPayload(seq, r!.pixels)).toMatchObject({ ok: false, offset: 100_000 });
      }
    }
    expect(s.stats()).toMatchObject({ updatesSent: 3, clientsActive: 1 });
    expect(s.stats().bytesSent).toBeGreaterThan(3 * 256 * 1024);
  });

  it('sizes updates for the client pixel format (16 bpp)', async () => {
    const s = await start({ mode: 'stream', streamUpdateBytes: 100_000 });
    const c = await client(s.port);
    c.setPixelFormat(RGB565);
    c.request(false);
    const [r] = await c.nextUpdate();
    // Whole rows of 1024 × 2 bytes, as many as fit in 100 000 bytes.
    expect(r).toMatchObject({ x: 0, width: 1024, height: 48 });
    expect(r!.pixels.length).toBe(1024 * 48 * 2);
    expect(verifyStreamPayload(0, r!.pixels)).toEqual({ ok: true });
  });

  it('answers pipelined requests in order and holds back while the client does not read', async () => {
    const s = await start({ mode: 'stream', streamUpdateBytes: 1024 * 1024 });
    const c = await client(s.port);
    c.socket.pause();
    for (let i = 0; i < 64; i++) c.request(true);
    await sleep(300);
    // 64 MiB were asked for; backpressure keeps what the server pushed to a few socket buffers.
    expect(s.stats().bytesSent).toBeLessThan(24 * 1024 * 1024);
    c.socket.resume();
    for (let seq = 0; seq < 64; seq++) {
      const [r] = await c.nextUpdate(5_000);
      expect(verifyStreamPayload(seq, r!.pixels)).toEqual({ ok: true });
    }
    expect(s.stats().updatesSent).toBe(64);
  });
});

describe('synthetic server: pingpong mode', () => {
  it('answers each request with a 1×1 update carrying its sequence number', async () => {
    const s = await start({ mode: 'pingpong' });
    const c = await client(s.port);
    for (let seq = 0; seq < 20; seq++) {
      c.request(true);
      const rects = await c.nextUpdate();
      expect(rects.map(({ pixels, ...r }) => r)).toEqual([{ x: 0, y: 0, width: 1, height: 1, encoding: 0 }]);
      expect(rects[0]!.pixels.readUInt32LE(0)).toBe(seq);
    }
    // Pipelined requests get one answer each.
    for (let i = 0; i < 100; i++) c.request(true);
    for (let seq = 20; seq < 120; seq++) expect((await c.nextUpdate())[0]!.pixels.readUInt32LE(0)).toBe(seq);
    await sleep(50);
    expect(c.buffered).toBe(0);
    expect(s.stats().updatesSent).toBe(120);
  });
});

describe('synthetic server: lifecycle', () => {
  it('close() ends every client and stops listening', async () => {
    const s = await startSyntheticServer({ mode: 'demo', width: 64, height: 64 });
    const c = await client(s.port);
    expect(s.stats().clientsConnected).toBe(1);
    await s.close();
    expect(await c.waitClosed()).toBe(true);
    expect(await rejectionCode(TestRfbClient.connect(s.port, { timeoutMs: 1_000 }))).not.toBe('RESOLVED');
    await s.close();
  });
});
