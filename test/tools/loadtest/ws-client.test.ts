import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { LoadError } from '../../../tools/loadtest/load-error.js';
import type { ConnEnd } from '../../../tools/loadtest/transport.js';
import { ensureDevCertificate } from '../../../tools/cli/dev-cert.js';
import { connectWebSocket, encodeClientFrame, pinnableCertificate, tlsContext, WS_OPCODE, WsFrameReader } from '../../../tools/loadtest/ws-client.js';
import { chunkings } from '../../rfb/chunkings.js';

/** An unmasked server frame (RFC 6455 §5.2). */
function serverFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0, len]) : len < 65_536 ? Buffer.from([0, 126, len >> 8, len & 255]) : Buffer.alloc(10);
  if (len >= 65_536) {
    head[1] = 127;
    head.writeUInt32BE(len, 6);
  }
  head[0] = (fin ? 0x80 : 0) | opcode;
  return Buffer.concat([head, payload]);
}

function unmask(frame: Buffer): { opcode: number; payload: Buffer } {
  const len7 = frame[1]! & 0x7f;
  const at = len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
  const len = len7 === 126 ? frame.readUInt16BE(2) : len7 === 127 ? frame.readUInt32BE(6) : len7;
  expect(frame[1]! & 0x80).toBe(0x80); // §5.3: every client frame is masked
  const key = frame.subarray(at, at + 4);
  const payload = Buffer.from(frame.subarray(at + 4, at + 4 + len));
  for (let i = 0; i < payload.length; i++) payload[i]! ^= key[i % 4]!;
  return { opcode: frame[0]! & 0x0f, payload };
}

type Seen = { data: Buffer[]; control: { opcode: number; payload: string }[]; failed: LoadError[] };
function reader(): { r: WsFrameReader; seen: Seen } {
  const seen: Seen = { data: [], control: [], failed: [] };
  const r = new WsFrameReader({
    data: (b) => seen.data.push(Buffer.from(b)),
    control: (opcode, payload) => seen.control.push({ opcode, payload: payload.toString('latin1') }),
    fail: (e) => seen.failed.push(e),
  });
  return { r, seen };
}

describe('client frames', () => {
  it('are masked, and unmask to the payload, at every length encoding', () => {
    for (const len of [0, 1, 5, 125, 126, 1000, 65_535, 65_536, 70_000]) {
      const payload = Buffer.from(Buffer.alloc(len, 0).map((_, i) => i * 7));
      const f = unmask(encodeClientFrame(WS_OPCODE.binary, payload));
      expect(f.opcode).toBe(WS_OPCODE.binary);
      expect(f.payload.equals(payload)).toBe(true);
    }
  });
});

describe('WsFrameReader', () => {
  const stream = Buffer.concat([
    serverFrame(WS_OPCODE.binary, Buffer.from('hello')),
    serverFrame(WS_OPCODE.ping, Buffer.from('p')),
    serverFrame(WS_OPCODE.binary, Buffer.from('ab'), false),
    serverFrame(WS_OPCODE.pong, Buffer.alloc(0)),
    serverFrame(WS_OPCODE.continuation, Buffer.from('cd')),
    serverFrame(WS_OPCODE.binary, Buffer.alloc(0)),
    serverFrame(WS_OPCODE.binary, Buffer.alloc(200, 0x41)),
    serverFrame(WS_OPCODE.close, Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('bye')])),
  ]);

  it('streams binary payload across frames and collects control frames, in any chunking', () => {
    for (const { name, chunks } of chunkings(stream)) {
      const { r, seen } = reader();
      for (const c of chunks) r.receive(c);
      expect(seen.failed, name).toEqual([]);
      expect(Buffer.concat(seen.data).toString('latin1'), name).toBe(`helloabcd${'A'.repeat(200)}`);
      expect(seen.control, name).toEqual([
        { opcode: WS_OPCODE.ping, payload: 'p' },
        { opcode: WS_OPCODE.pong, payload: '' },
        { opcode: WS_OPCODE.close, payload: '\x03\xe8bye' },
      ]);
    }
  });

  it('reads 64-bit lengths', () => {
    const big = Buffer.from(Buffer.alloc(70_000).map((_, i) => i));
    const frame = serverFrame(WS_OPCODE.binary, big);
    for (const chunks of [[frame], [frame.subarray(0, 5), frame.subarray(5, 40_000), frame.subarray(40_000)]]) {
      const { r, seen } = reader();
      for (const c of chunks) r.receive(c);
      expect(Buffer.concat(seen.data).equals(big)).toBe(true);
    }
  });

  it('fails on what a server must not send', () => {
    const masked = serverFrame(WS_OPCODE.binary, Buffer.from('x'));
    masked[1]! |= 0x80;
    const rsv = serverFrame(WS_OPCODE.binary, Buffer.from('x'));
    rsv[0]! |= 0x40;
    for (const bad of [
      masked,
      rsv,
      serverFrame(WS_OPCODE.text, Buffer.from('x')),
      serverFrame(WS_OPCODE.ping, Buffer.from('x'), false),
      serverFrame(WS_OPCODE.ping, Buffer.alloc(126)),
      serverFrame(WS_OPCODE.continuation, Buffer.from('x')),
      Buffer.concat([serverFrame(WS_OPCODE.binary, Buffer.from('x'), false), serverFrame(WS_OPCODE.binary, Buffer.from('y'))]),
      serverFrame(0x3, Buffer.from('x')),
    ]) {
      const { r, seen } = reader();
      r.receive(bad);
      expect(seen.failed).toHaveLength(1);
      expect(seen.failed[0]!.reason).toBe('ws-protocol');
    }
  });
});

describe('connectWebSocket', () => {
  let http: Server | null = null;
  let wss: WebSocketServer | null = null;
  afterEach(async () => {
    wss?.close();
    if (http) await new Promise<void>((r) => http!.close(() => r()));
    http = null;
    wss = null;
  });

  async function serve(onConnection: (ws: WebSocket, headers: Record<string, string | string[] | undefined>) => void): Promise<string> {
    http = createServer();
    wss = new WebSocketServer({ server: http, perMessageDeflate: false, handleProtocols: (p) => (p.has('binary') ? 'binary' : false) });
    wss.on('connection', (ws, req) => onConnection(ws, req.headers));
    await new Promise<void>((r) => http!.listen(0, '127.0.0.1', () => r()));
    return `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
  }

  function collect(): { data: Buffer[]; ended: Promise<ConnEnd>; handlers: { data: (b: Buffer) => void; end: (e: ConnEnd) => void } } {
    const data: Buffer[] = [];
    let end!: (e: ConnEnd) => void;
    const ended = new Promise<ConnEnd>((r) => (end = r));
    return { data, ended, handlers: { data: (b) => data.push(Buffer.from(b)), end } };
  }

  it('speaks to a real WebSocket server as a browser does: binary subprotocol, Origin, echo, pong, close', async () => {
    let headers: Record<string, string | string[] | undefined> = {};
    const pongs: string[] = [];
    const base = await serve((ws, h) => {
      headers = h;
      ws.on('message', (d: Buffer) => ws.send(Buffer.concat([Buffer.from('echo:'), d])));
      ws.on('pong', (d: Buffer) => {
        pongs.push(d.toString());
        ws.close(4000, 'bye');
      });
    });
    const c = collect();
    const conn = await connectWebSocket({ url: `${base}/websockify?token=abc`, timeoutMs: 5_000 }, c.handlers);
    expect(headers['sec-websocket-protocol']).toBe('binary');
    expect(headers.origin).toBe(base.replace('ws:', 'http:'));
    conn.write(Buffer.from('one'));
    conn.write(Buffer.alloc(70_000, 1));
    await new Promise((r) => setTimeout(r, 100));
    expect(Buffer.concat(c.data).subarray(0, 8).toString()).toBe('echo:one');
    expect(Buffer.concat(c.data).length).toBe(8 + 5 + 70_000);
    [...wss!.clients][0]!.ping('hi');
    expect(await c.ended).toEqual({ kind: 'closed', code: 4000, reason: 'bye' });
    expect(pongs).toEqual(['hi']);
  });

  it('closes politely: the server sees 1000', async () => {
    let closed: Promise<number> = Promise.resolve(0);
    const base = await serve((ws) => {
      closed = new Promise((r) => ws.on('close', (code) => r(code)));
    });
    const c = collect();
    const conn = await connectWebSocket({ url: `${base}/`, timeoutMs: 5_000 }, c.handlers);
    conn.close();
    expect(await c.ended).toMatchObject({ kind: 'closed', code: 1000 });
    expect(await closed).toBe(1000);
  });

  it('names refusals: HTTP status with the error code from the body, and connection refused', async () => {
    http = createServer((_req, res) => {
      res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'HTTP_ERR_ORIGIN', message: 'no' } }));
    });
    http.on('upgrade', (req, socket) => {
      const body = JSON.stringify({ error: { code: 'HTTP_ERR_ORIGIN', message: 'no' } });
      socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
      void req;
    });
    await new Promise<void>((r) => http!.listen(0, '127.0.0.1', () => r()));
    const port = (http.address() as AddressInfo).port;
    await expect(connectWebSocket({ url: `ws://127.0.0.1:${port}/`, timeoutMs: 5_000 }, collect().handlers)).rejects.toMatchObject({
      reason: 'http-403 HTTP_ERR_ORIGIN',
    });
    await new Promise<void>((r) => http!.close(() => r()));
    http = null;
    await expect(connectWebSocket({ url: `ws://127.0.0.1:${port}/`, timeoutMs: 5_000 }, collect().handlers)).rejects.toMatchObject({
      reason: 'connect-ECONNREFUSED',
    });
  });
});

describe('wss with a pinned certificate', () => {
  const dirs: string[] = [];
  let server: HttpsServer | null = null;
  afterEach(async () => {
    if (server) await new Promise<void>((r) => server!.close(() => r()));
    server = null;
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  function devCert(): { cert: Buffer; key: Buffer } {
    const dir = mkdtempSync(join(tmpdir(), 'vncgate-pin-'));
    dirs.push(dir);
    const { certFile, keyFile } = ensureDevCertificate(dir);
    return { cert: readFileSync(certFile), key: readFileSync(keyFile) };
  }

  /** A TLS WebSocket server; `requests` counts the HTTP requests it received (each carries the token). */
  async function serveTls(id: { cert: Buffer; key: Buffer }): Promise<{ url: string; requests: () => number }> {
    let requests = 0;
    server = createHttpsServer({ cert: id.cert, key: id.key });
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, handleProtocols: () => 'binary' });
    server.on('upgrade', (req, socket, head) => {
      requests++;
      wss.handleUpgrade(req, socket, head, (ws) => ws.send(Buffer.from('hello')));
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    return { url: `wss://127.0.0.1:${(server.address() as AddressInfo).port}/websockify?token=secret`, requests: () => requests };
  }

  it('pins a lone self-signed certificate, and nothing else', () => {
    const a = devCert();
    const der = pinnableCertificate(a.cert);
    expect(der).not.toBeNull();
    expect(der!.equals(new X509Certificate(a.cert).raw)).toBe(true);
    // Two certificates (a chain or a bundle), and what is not a certificate, are left to normal verification.
    expect(pinnableCertificate(Buffer.concat([a.cert, devCert().cert]))).toBeNull();
    expect(pinnableCertificate('not a certificate')).toBeNull();
    expect(pinnableCertificate(a.key)).toBeNull();
  });

  it('connects when the server presents the pinned certificate', async () => {
    const id = devCert();
    const s = await serveTls(id);
    let data = Buffer.alloc(0);
    let end!: () => void;
    const got = new Promise<void>((r) => (end = r));
    const conn = await connectWebSocket(
      { url: s.url, timeoutMs: 5_000, secureContext: tlsContext(), pinnedCert: pinnableCertificate(id.cert)! },
      { data: (b) => ((data = Buffer.concat([data, b])), data.length >= 5 && end()), end: () => {} },
    );
    await got;
    expect(data.toString()).toBe('hello');
    expect(s.requests()).toBe(1);
    conn.destroy();
  });

  it('resumes a TLS session with a pinned certificate (a resumed handshake presents none), as --tls-resume does', async () => {
    const id = devCert();
    const s = await serveTls(id);
    const reused: boolean[] = [];
    server!.on('secureConnection', (t: TLSSocket) => reused.push(t.isSessionReused()));
    const pin = { secureContext: tlsContext(), pinnedCert: pinnableCertificate(id.cert)! };
    const hello = async (tlsSession?: Buffer): Promise<Buffer | undefined> => {
      let offered: Buffer | undefined;
      let data = Buffer.alloc(0);
      let end!: () => void;
      const got = new Promise<void>((r) => (end = r));
      const conn = await connectWebSocket(
        { url: s.url, timeoutMs: 5_000, ...pin, ...(tlsSession ? { tlsSession } : {}), onTlsSession: (t) => (offered = t) },
        { data: (b) => ((data = Buffer.concat([data, b])), data.length >= 5 && end()), end: () => {} },
      );
      await got;
      expect(data.toString()).toBe('hello');
      conn.destroy();
      return offered;
    };
    const first = await hello();
    expect(first).toBeInstanceOf(Buffer);
    await hello(first);
    expect(reused).toEqual([false, true]);
    expect(s.requests()).toBe(2);
  });

  it('refuses any other certificate before the request (and its token) is sent', async () => {
    const s = await serveTls(devCert());
    const other = pinnableCertificate(devCert().cert)!;
    let offered = 0;
    await expect(
      connectWebSocket(
        { url: s.url, timeoutMs: 5_000, secureContext: tlsContext(), pinnedCert: other, onTlsSession: () => offered++ },
        { data: () => {}, end: () => {} },
      ),
    ).rejects.toMatchObject({ reason: 'tls-pin' });
    await new Promise((r) => setTimeout(r, 50));
    expect(s.requests()).toBe(0);
    // Nor is a session from that server kept for resumption.
    expect(offered).toBe(0);
  });
});
