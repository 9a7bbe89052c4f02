/**
 * Issue 17 item 5, in process over real loopback sockets (plain HTTP; TLS behind a real HAProxy is
 * test/proxy/proxy-protocol.int.test.ts): a `listenProxyProtocol` listener takes the client's
 * address from the PROXY header, only from `trustedProxies`; X-Forwarded-For and -Proto likewise.
 */
import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { VncgateError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { OriginPolicy } from '../../src/proxy/origin.js';
import { buildServer, type VncgateServer } from '../../src/proxy/server.js';
import { MemoryTokenStore } from '../../src/tokens/index.js';

const logLines: string[] = [];
const sink = new Writable({
  write(chunk, _enc, cb) {
    logLines.push(...String(chunk).split('\n').filter(Boolean));
    cb();
  },
});

const HEADER_TIMEOUT_MS = 400;
let srv: VncgateServer;
let plain: { host: string; port: number };
let proxied: { host: string; port: number };

function hostPort(a: string): { host: string; port: number } {
  const i = a.lastIndexOf(':');
  return { host: a.slice(0, i), port: Number(a.slice(i + 1)) };
}

function v1(client: string, port = 40_000): string {
  return `PROXY TCP4 ${client} 127.0.0.1 ${port} 6081\r\n`;
}

/** HAProxy's send-proxy-v2 LOCAL (its own health checks). */
const V2_LOCAL = Buffer.from('0d0a0d0a000d0a515549540a20000000', 'hex');

function v2(client: string, port: number): Buffer {
  const b = Buffer.alloc(28);
  Buffer.from('0d0a0d0a000d0a515549540a', 'hex').copy(b, 0); // signature
  b[12] = 0x21; // version 2, PROXY
  b[13] = 0x11; // AF_INET, STREAM
  b.writeUInt16BE(12, 14);
  client.split('.').forEach((o, i) => (b[16 + i] = Number(o)));
  [127, 0, 0, 1].forEach((o, i) => (b[20 + i] = o));
  b.writeUInt16BE(port, 24);
  b.writeUInt16BE(6081, 26);
  return b;
}

type Exchange = { text: string; closed: boolean; socket: Socket };

/**
 * Connects from `localAddress`, writes `bytes`, and collects what comes back until the server
 * closes, an HTTP response is complete (keepOpen: the socket stays open), or `waitMs` passes.
 */
function exchange(at: { host: string; port: number }, bytes: (string | Buffer)[], opts: { localAddress?: string; keepOpen?: boolean; waitMs?: number } = {}): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: at.host, port: at.port, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    let text = '';
    let closed = false;
    const done = (): void => {
      clearTimeout(timer);
      if (!opts.keepOpen) socket.destroy();
      resolve({ text, closed, socket });
    };
    const timer = setTimeout(done, opts.waitMs ?? 3_000);
    socket.on('connect', () => {
      for (const b of bytes) socket.write(b);
    });
    socket.on('data', (d) => {
      text += d.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const len = /content-length: (\d+)/i.exec(text);
      if (end !== -1 && len && text.length >= end + 4 + Number(len[1])) done();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      done();
    });
    socket.on('error', (err) => (err as NodeJS.ErrnoException).code === 'ECONNREFUSED' && reject(err));
  });
}

const whoami = (headers = ''): string => `GET /whoami HTTP/1.1\r\nHost: vncgate.test\r\n${headers}\r\n`;

function ipOf(e: Exchange): string | undefined {
  const body = e.text.slice(e.text.indexOf('\r\n\r\n') + 4);
  return body ? (JSON.parse(body) as { ip?: string }).ip : undefined;
}

beforeAll(async () => {
  const config = loadConfig({
    env: {},
    overrides: {
      listen: ['127.0.0.1:0'],
      listenProxyProtocol: ['127.0.0.1:0'],
      trustedProxies: ['127.0.0.1/32'],
      tls: { plainHttp: true },
      limits: { maxConnectionsPerClient: 1, tlsHandshakeTimeoutMs: HEADER_TIMEOUT_MS },
      log: { level: 'debug' },
    },
  });
  srv = await buildServer({
    config,
    tokens: new MemoryTokenStore(),
    log: createLogger({ level: 'debug', destination: sink }),
    plugins: [(app) => void app.get('/whoami', async (req) => ({ ip: req.ip }))],
  });
  plain = hostPort(srv.addresses[0]!);
  proxied = hostPort(srv.proxyProtocolAddresses[0]!);
});

afterAll(async () => {
  await srv.close();
});

describe('listenProxyProtocol (issue 17)', () => {
  it('a v1 header from a trusted proxy makes its client the request address', async () => {
    const r = await exchange(proxied, [v1('127.0.0.5'), whoami('Connection: close\r\n')]);
    expect(r.text).toMatch(/^HTTP\/1.1 200/);
    expect(ipOf(r)).toBe('127.0.0.5');
  });

  it('a v2 header, sent in its own packet before the request, does too', async () => {
    const r = await exchange(proxied, [v2('127.0.0.6', 41_000)], { keepOpen: true, waitMs: 100 });
    r.socket.write(whoami('Connection: close\r\n'));
    const text = await new Promise<string>((resolve) => {
      let t = '';
      r.socket.on('data', (d) => (t += d.toString('latin1')));
      r.socket.on('close', () => resolve(t));
    });
    expect(ipOf({ ...r, text })).toBe('127.0.0.6');
  });

  it('a v2 LOCAL header (a health check) keeps the proxy’s own address', async () => {
    const r = await exchange(proxied, [Buffer.concat([V2_LOCAL, Buffer.from(whoami('Connection: close\r\n'))])]);
    expect(ipOf(r)).toBe('127.0.0.1');
  });

  it('a peer outside trustedProxies is closed at once, with no answer', async () => {
    const r = await exchange(proxied, [v1('127.0.0.5'), whoami('Connection: close\r\n')], { localAddress: '127.0.0.9' });
    expect(r.closed).toBe(true);
    expect(r.text).toBe('');
  });

  it('a connection without a PROXY header is closed, with no answer', async () => {
    const r = await exchange(proxied, [whoami('Connection: close\r\n')]);
    expect(r.closed).toBe(true);
    expect(r.text).toBe('');
  });

  it('a header not complete within limits.tlsHandshakeTimeoutMs is closed', async () => {
    const t0 = performance.now();
    const r = await exchange(proxied, ['PROXY TCP4 127.0.0.5 '], { waitMs: 10_000 });
    expect(r.closed).toBe(true);
    expect(r.text).toBe('');
    console.log(`header deadline ${HEADER_TIMEOUT_MS} ms: closed after ${Math.round(performance.now() - t0)} ms`);
  });

  it('per-client caps count the real client: with maxConnectionsPerClient 1, two clients through one proxy both get in, a second from one of them does not', async () => {
    const a = await exchange(proxied, [v1('127.0.0.5', 40_001), whoami()], { keepOpen: true });
    const b = await exchange(proxied, [v1('127.0.0.6', 40_002), whoami()], { keepOpen: true });
    try {
      expect(ipOf(a)).toBe('127.0.0.5');
      expect(ipOf(b)).toBe('127.0.0.6');
      const again = await exchange(proxied, [v1('127.0.0.5', 40_003), whoami('Connection: close\r\n')]);
      expect(again.closed).toBe(true);
      expect(again.text).toBe('');
    } finally {
      a.socket.destroy();
      b.socket.destroy();
    }
  });

  it('the refusals are counted in the guard’s one rate-limited warning', async () => {
    await new Promise((r) => setTimeout(r, 50));
    const report = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'client connections refused at a cap or closed by a deadline');
    expect(report).toMatchObject({ refusedUntrustedProxy: 1, busiestClient: '127.0.0.9' });
  });
});

describe('X-Forwarded-For only from trustedProxies (issue 17)', () => {
  it('from a trusted proxy, the nearest address it did not add itself is the client', async () => {
    expect(ipOf(await exchange(plain, [whoami('X-Forwarded-For: 10.1.2.3\r\nConnection: close\r\n')]))).toBe('10.1.2.3');
    // The client wrote 6.6.6.6 itself; the proxy appended what it saw.
    expect(ipOf(await exchange(plain, [whoami('X-Forwarded-For: 6.6.6.6, 10.1.2.3\r\nConnection: close\r\n')]))).toBe('10.1.2.3');
  });

  it('from anyone else, ignored', async () => {
    const r = await exchange(plain, [whoami('X-Forwarded-For: 10.1.2.3\r\nConnection: close\r\n')], { localAddress: '127.0.0.9' });
    expect(ipOf(r)).toBe('127.0.0.9');
  });

  it('through a PROXY listener, the header’s client is the peer whose X-Forwarded-For is judged', async () => {
    // 127.0.0.5 is not a trusted proxy: what it claims is ignored.
    expect(ipOf(await exchange(proxied, [v1('127.0.0.5'), whoami('X-Forwarded-For: 10.1.2.3\r\nConnection: close\r\n')]))).toBe('127.0.0.5');
  });
});

describe('X-Forwarded-Proto and -Host for the origin check (issue 17)', () => {
  const config = loadConfig({ env: {}, overrides: { listen: ['127.0.0.1:0'], tls: { plainHttp: true }, trustedProxies: ['10.0.0.0/8'], log: { level: 'silent' } } });
  const policy = new OriginPolicy(config);
  const req = (peer: string, headers: Record<string, string>): FastifyRequest =>
    ({ headers: { host: 'vncgate.internal:6080', ...headers }, raw: { socket: { remoteAddress: peer } } }) as unknown as FastifyRequest;
  const forwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'console.example.com' };

  it('from a trusted proxy they decide the own origin (the last entry: the one that proxy wrote)', () => {
    expect(policy.ownOrigin(req('10.0.0.7', forwarded))).toBe('https://console.example.com');
    expect(policy.ownOrigin(req('10.0.0.7', { 'x-forwarded-proto': 'http, https' }))).toBe('https://vncgate.internal:6080');
  });

  it('from anyone else the request’s own Host and scheme stand', () => {
    expect(policy.ownOrigin(req('192.0.2.1', forwarded))).toBe('http://vncgate.internal:6080');
  });

  it('the deprecated origins.trustForwardedHeaders still trusts them from any address', () => {
    const old = new OriginPolicy(loadConfig({ env: {}, overrides: { tls: { plainHttp: true }, origins: { trustForwardedHeaders: true }, log: { level: 'silent' } } }));
    expect(old.ownOrigin(req('192.0.2.1', forwarded))).toBe('https://console.example.com');
  });
});

describe('configuration (issue 17)', () => {
  const problems = (overrides: Record<string, unknown>): string[] => {
    try {
      loadConfig({ env: {}, overrides: { tls: { plainHttp: true }, ...overrides } });
      return [];
    } catch (err) {
      expect(err).toBeInstanceOf(VncgateError);
      expect((err as VncgateError).code).toBe('CONFIG_ERR_INVALID');
      return ((err as VncgateError).details as { problems: string[] }).problems;
    }
  };

  it('listenProxyProtocol needs trustedProxies', () => {
    expect(problems({ listenProxyProtocol: ['127.0.0.1:6081'] }).join('\n')).toMatch(/^listenProxyProtocol:.*trustedProxies/m);
  });

  it('a listener is either a PROXY listener or a plain one', () => {
    expect(problems({ listen: ['127.0.0.1:6080'], listenProxyProtocol: ['127.0.0.1:6080'], trustedProxies: ['127.0.0.1'] }).join('\n')).toMatch(/also in listen/);
  });

  it('trustedProxies entries are CIDRs or addresses; every bad one is reported', () => {
    const p = problems({ trustedProxies: ['10.0.0.0/8', 'haproxy.example.com', '10.0.0.1/8', '::1/129'] });
    expect(p.filter((x) => x.startsWith('trustedProxies['))).toHaveLength(3);
  });

  it('the deprecated origins.trustForwardedHeaders cannot be combined with trustedProxies', () => {
    expect(problems({ trustedProxies: ['10.0.0.0/8'], origins: { trustForwardedHeaders: true } }).join('\n')).toMatch(/^origins.trustForwardedHeaders/m);
  });

  it('VNCGATE_TRUSTED_PROXIES and VNCGATE_LISTEN_PROXY_PROTOCOL set them', () => {
    const c = loadConfig({ env: { VNCGATE_TRUSTED_PROXIES: '10.0.0.0/8, ::1', VNCGATE_LISTEN_PROXY_PROTOCOL: '127.0.0.1:6081', VNCGATE_PLAIN_HTTP: 'true' } });
    expect(c.listenProxyProtocol).toEqual([{ host: '127.0.0.1', port: 6081 }]);
    expect(c.trustedProxies.has('10.20.30.40')).toBe(true);
    expect(c.trustedProxies.has('::ffff:10.0.0.1')).toBe(true);
    expect(c.trustedProxies.has('::1')).toBe(true);
    expect(c.trustedProxies.has('192.0.2.1')).toBe(false);
  });
});
