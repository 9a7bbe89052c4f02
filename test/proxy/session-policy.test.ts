/**
 * Issue 18: the policy enforced in the relay, over real sockets through the real server: an
 * echoing RFB server returns exactly what vncgate forwarded, so what the filter dropped is missing
 * from the echo. Also: what the page is told on the control channel, the dropped counts in the
 * session-ended line, a browser that breaks framing, and a permissive policy left as a raw pipe.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { loadConfig } from '../../src/config/index.js';
import { ERROR_CODES } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { buildServer, type VncgateServer } from '../../src/proxy/server.js';
import type { PolicyNarrowing } from '../../src/rfb/index.js';
import { MemoryTokenStore } from '../../src/tokens/index.js';
import { startTinyVncServer } from '../support/tiny-vnc-server.js';
import { wsRfbConnect } from '../support/ws-rfb-client.js';

// RFC 6143 §7.5: one of each message a browser sends.
const KEY = Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x61]);
const POINTER = Buffer.from([5, 1, 0, 10, 0, 10]);
const CUT = Buffer.concat([Buffer.from([6, 0, 0, 0, 0, 0, 0, 5]), Buffer.from('hello')]);
const fbur = (x: number): Buffer => Buffer.from([3, 1, 0, x, 0, 0, 0, 16, 0, 16]);

const lines: string[] = [];
let srv: VncgateServer;
let tokens: MemoryTokenStore;
let backend: Awaited<ReturnType<typeof startTinyVncServer>>;

beforeAll(async () => {
  backend = await startTinyVncServer({ name: 'policy' });
  const config = loadConfig({
    env: {},
    overrides: {
      listen: ['127.0.0.1:0'],
      tls: { plainHttp: true },
      backends: {
        allowedTargets: ['127.0.0.0/8', '::1/128'],
        profiles: {
          open: { security: ['none'] },
          view: { security: ['none'], viewOnly: true },
          noclip: { security: ['none'], clipboard: 'none' },
          small: { security: ['none'], maxClipboardBytes: 4 },
        },
      },
      log: { level: 'info' },
    } as never,
  });
  tokens = new MemoryTokenStore();
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  srv = await buildServer({ config, tokens, log: createLogger({ level: 'info', destination: sink }) });
});

afterAll(async () => {
  await srv.close();
  await backend.close();
});

type Opened = { ws: WebSocket; texts: string[]; sessionId: () => string };

async function open(profile: string, policy?: PolicyNarrowing, protocols = ['vncgate.v1', 'binary']): Promise<Opened> {
  const t = await tokens.issue({ kind: 'static', host: '127.0.0.1', port: backend.port, profile }, 60, policy ? { policy } : {});
  const texts: string[] = [];
  const since = lines.length;
  const r = await wsRfbConnect(`ws://${srv.addresses[0]}/websockify?token=${t.token}`, { protocols, onText: (text) => texts.push(text) });
  if (!r.ok) throw new Error(`session not established: ${r.code}`);
  const sessionId = (): string => {
    const started = lines.slice(since).find((l) => l.includes('"msg":"session started"'));
    return (JSON.parse(started ?? '{}') as { sessionId?: string }).sessionId ?? '';
  };
  return { ws: r.ws, texts, sessionId };
}

/** Sends `bytes` then a marker; resolves with everything echoed up to and including the marker. */
function sendAndEcho(ws: WebSocket, bytes: Buffer): Promise<Buffer> {
  const marker = fbur(0x77);
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error(`no marker echoed; got ${Buffer.concat(got).toString('hex')}`)), 10_000);
    const onMessage = (d: Buffer, isBinary: boolean): void => {
      if (!isBinary) return;
      got.push(d);
      const all = Buffer.concat(got);
      if (all.length >= marker.length && all.subarray(all.length - marker.length).equals(marker)) {
        clearTimeout(timer);
        ws.off('message', onMessage);
        resolve(all.subarray(0, all.length - marker.length));
      }
    };
    ws.on('message', onMessage);
    ws.send(Buffer.concat([bytes, marker]));
  });
}

/** The session-ended line of `sessionId`, once logged. */
async function endedLine(sessionId: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const line = lines.find((l) => l.includes('"msg":"session ended"') && l.includes(`"sessionId":"${sessionId}"`));
    if (line) return JSON.parse(line) as Record<string, unknown>;
    if (Date.now() > deadline) throw new Error(`no session ended line for ${sessionId}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function closeAndEnd(o: Opened): Promise<Record<string, unknown>> {
  const id = o.sessionId();
  o.ws.close();
  return endedLine(id);
}

describe('issue 18: view-only and clipboard policy enforced in the relay', () => {
  it('a view-only profile: keys, pointer and clipboard never reach the console; the page is told; drops are counted', async () => {
    const o = await open('view');
    expect(o.texts.map((t) => JSON.parse(t) as unknown)).toEqual([{ type: 'policy', viewOnly: true, clipboard: 'both', maxClipboardBytes: 2 ** 31 }]);
    const echoed = await sendAndEcho(o.ws, Buffer.concat([KEY, fbur(1), POINTER, CUT, KEY]));
    expect(echoed.toString('hex')).toBe(fbur(1).toString('hex'));
    const ended = await closeAndEnd(o);
    expect(ended['dropped']).toEqual({ input: 3, clipboard: 1, other: 0 });
    expect(JSON.stringify(ended)).not.toContain('hello');
  });

  it('stock noVNC (binary only) gets no text frame, and the policy holds all the same', async () => {
    const o = await open('view', undefined, ['binary']);
    expect(o.ws.protocol).toBe('binary');
    expect(await sendAndEcho(o.ws, Buffer.concat([KEY, POINTER]))).toHaveLength(0);
    expect(o.texts).toEqual([]);
    await closeAndEnd(o);
  });

  it('a token narrows an open profile: clipboard none drops ClientCutText only', async () => {
    const o = await open('open', { clipboard: 'none' });
    expect(JSON.parse(o.texts[0] ?? '{}')).toMatchObject({ viewOnly: false, clipboard: 'none' });
    const echoed = await sendAndEcho(o.ws, Buffer.concat([KEY, CUT, POINTER]));
    expect(echoed.equals(Buffer.concat([KEY, POINTER]))).toBe(true);
    expect((await closeAndEnd(o))['dropped']).toEqual({ input: 0, clipboard: 1, other: 0 });
  });

  it('a token cannot widen: clipboard both on a clipboard-none profile stays none', async () => {
    const o = await open('noclip', { clipboard: 'both', maxClipboardBytes: 1000 });
    expect(JSON.parse(o.texts[0] ?? '{}')).toMatchObject({ clipboard: 'none', maxClipboardBytes: 1000 });
    expect((await sendAndEcho(o.ws, Buffer.concat([CUT, KEY]))).equals(KEY)).toBe(true);
    await closeAndEnd(o);
  });

  it('the size limit: a paste over maxClipboardBytes is skipped, a small one passes', async () => {
    const o = await open('small');
    const small = Buffer.concat([Buffer.from([6, 0, 0, 0, 0, 0, 0, 3]), Buffer.from('abc')]);
    expect((await sendAndEcho(o.ws, Buffer.concat([CUT, small]))).equals(small)).toBe(true);
    await closeAndEnd(o);
  });

  it('a permissive policy is a raw pipe: bytes no VNC client would send still pass, nothing is counted', async () => {
    const o = await open('open');
    expect(JSON.parse(o.texts[0] ?? '{}')).toEqual({ type: 'policy', viewOnly: false, clipboard: 'both', maxClipboardBytes: 2 ** 31 });
    const junk = Buffer.from('not an RFB message at all');
    expect((await sendAndEcho(o.ws, junk)).equals(junk)).toBe(true);
    const ended = await closeAndEnd(o);
    expect(ended).not.toHaveProperty('dropped');
  });

  it('a browser that breaks RFB framing under a policy ends its session: RFB_ERR_CLIENT_PROTOCOL, with the reason noVNC shows', async () => {
    const o = await open('view');
    const id = o.sessionId();
    const closed = new Promise<{ code: number; reason: string }>((resolve) => o.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    o.ws.send(Buffer.from([0x70, 0x69, 0x6e, 0x67]));
    expect(await closed).toEqual({ code: ERROR_CODES.RFB_ERR_CLIENT_PROTOCOL.wsClose, reason: ERROR_CODES.RFB_ERR_CLIENT_PROTOCOL.reason });
    expect(await endedLine(id)).toMatchObject({ code: 'RFB_ERR_CLIENT_PROTOCOL' });
  });
});
