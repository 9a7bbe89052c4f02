import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import { ConnectionGuard, clientAddress } from '../../src/proxy/connection-guard.js';
import { createHttpApp, httpDeadlines } from '../../src/proxy/http-app.js';
import { checkOpenFilesLimit, fdsAtFullLoad, openFilesLimit } from '../../src/proxy/open-files.js';

/** A stand-in for an accepted TCP socket: the fields the guard reads, destroy() emitting 'close'. */
class FakeSocket extends EventEmitter {
  destroyed = false;
  static nextPort = 40_000;
  constructor(
    public remoteAddress: string | undefined,
    public remotePort: number | undefined = FakeSocket.nextPort++,
    public localAddress = '127.0.0.1',
    public localPort = 6080,
  ) {
    super();
  }
  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    queueMicrotask(() => this.emit('close'));
    return this;
  }
}
const sock = (addr: string | undefined): Socket & FakeSocket => new FakeSocket(addr) as unknown as Socket & FakeSocket;

function capture(): { lines: Record<string, unknown>[]; log: ReturnType<typeof createLogger> } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, log: createLogger({ level: 'debug', destination: sink }) };
}
const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('clientAddress', () => {
  it('counts an IPv4-mapped IPv6 peer as its IPv4 address, and IPv6 by its /64 (clientKey)', () => {
    expect(clientAddress('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(clientAddress('::FFFF:192.0.2.7')).toBe('192.0.2.7');
    expect(clientAddress('192.0.2.7')).toBe('192.0.2.7');
    expect(clientAddress('2001:DB8::1')).toBe('2001:db8::/64');
    expect(clientAddress('::ffff:c000:207')).toBe('192.0.2.7');
    expect(clientAddress(undefined)).toBeNull();
  });
});

describe('ConnectionGuard (issue 15)', () => {
  beforeEach(() => {
    // Only the report's clock and timer: socket 'close' events still arrive on their own.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('refuses past the per-client cap, counting IPv4-mapped and plain IPv4 as one client', async () => {
    const { log } = capture();
    const g = new ConnectionGuard({ maxConnections: 100, maxConnectionsPerClient: 2 }, log);
    const a = sock('10.0.0.1');
    const b = sock('::ffff:10.0.0.1');
    const c = sock('10.0.0.1');
    expect(g.admit(a)).toBe(true);
    expect(g.admit(b)).toBe(true);
    expect(g.admit(c)).toBe(false);
    expect(c.destroyed).toBe(true);
    expect(g.admit(sock('10.0.0.2'))).toBe(true);
    expect(g.openFrom('10.0.0.1')).toBe(2);
    // A closed connection frees its slot.
    a.destroy();
    await flush();
    expect(g.openFrom('::ffff:10.0.0.1')).toBe(1);
    expect(g.admit(sock('10.0.0.1'))).toBe(true);
    expect(g.size).toBe(3);
  });

  it('counts two IPv6 addresses of one /64 as one client (a host cannot step around the cap by changing address); another /64 is another client', async () => {
    const { lines, log } = capture();
    const g = new ConnectionGuard({ maxConnections: 100, maxConnectionsPerClient: 1 }, log);
    expect(g.admit(sock('2001:db8:1:2::1'))).toBe(true);
    const sameNet = sock('2001:db8:1:2:dead:beef:0:2');
    expect(g.admit(sameNet)).toBe(false);
    expect(sameNet.destroyed).toBe(true);
    expect(g.openFrom('2001:db8:1:2::99')).toBe(1);
    expect(g.admit(sock('2001:db8:1:3::1'))).toBe(true);
    await flush();
    expect(lines.find((l) => l.level === 40)).toMatchObject({ refusedClientCap: 1, busiestClient: '2001:db8:1:2::/64' });
  });

  it('refuses past the process cap whatever the address; per-client 0 means no per-client cap', () => {
    const { log } = capture();
    const g = new ConnectionGuard({ maxConnections: 3, maxConnectionsPerClient: 0 }, log);
    for (let i = 0; i < 3; i++) expect(g.admit(sock('10.0.0.1'))).toBe(true);
    const late = sock('10.0.0.9');
    expect(g.admit(late)).toBe(false);
    expect(late.destroyed).toBe(true);
  });

  it('destroys a socket that has lost its peer before it was seen, without counting it', () => {
    const { log } = capture();
    const g = new ConnectionGuard({ maxConnections: 3, maxConnectionsPerClient: 1 }, log);
    const gone = sock(undefined);
    expect(g.admit(gone)).toBe(false);
    expect(gone.destroyed).toBe(true);
    expect(g.size).toBe(0);
  });

  it('logs one warning per interval with the counts since the last, never one per connection', async () => {
    const { lines, log } = capture();
    const g = new ConnectionGuard({ maxConnections: 1_000, maxConnectionsPerClient: 1 }, log, { reportIntervalMs: 10_000 });
    g.admit(sock('10.0.0.1'));
    for (let i = 0; i < 500; i++) g.admit(sock('10.0.0.1'));
    g.admit(sock('10.0.0.2'));
    g.admit(sock('10.0.0.2'));
    await flush();
    const warns = (): Record<string, unknown>[] => lines.filter((l) => l.level === 40);
    // The first refusal is reported at once; the rest wait for the interval.
    expect(warns()).toHaveLength(1);
    expect(warns()[0]).toMatchObject({ refusedClientCap: 1, busiestClient: '10.0.0.1' });
    vi.advanceTimersByTime(9_999);
    expect(warns()).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(warns()).toHaveLength(2);
    expect(warns()[1]).toMatchObject({ refusedClientCap: 500, refusedProcessCap: 0, busiestClient: '10.0.0.1', busiestClientRefused: 499, connections: 2 });
    // Nothing new: no line.
    vi.advanceTimersByTime(60_000);
    expect(warns()).toHaveLength(2);
  });

  it('counts deadline closes from the server it guards', () => {
    const { lines, log } = capture();
    const g = new ConnectionGuard({ maxConnections: 10, maxConnectionsPerClient: 10 }, log);
    const server = new EventEmitter();
    g.attach(server as never);
    const timeout = (code: string): Error => Object.assign(new Error(code), { code });
    server.emit('clientError', timeout('ERR_TLS_HANDSHAKE_TIMEOUT'), sock('10.0.0.1'));
    server.emit('clientError', timeout('ERR_HTTP_REQUEST_TIMEOUT'), sock('10.0.0.1'));
    server.emit('clientError', timeout('ECONNRESET'), sock('10.0.0.1'));
    vi.advanceTimersByTime(10_000);
    const warns = lines.filter((l) => l.level === 40);
    expect(warns).toHaveLength(2);
    expect(warns[0]).toMatchObject({ tlsHandshakeTimeouts: 1, requestTimeouts: 0 });
    expect(warns[1]).toMatchObject({ tlsHandshakeTimeouts: 0, requestTimeouts: 1 });
  });

  it('on close destroys every connection but upgraded ones (found by 4-tuple from the TLS socket) and refuses new ones', () => {
    const { log } = capture();
    const g = new ConnectionGuard({ maxConnections: 10, maxConnectionsPerClient: 10 }, log);
    const handshaking = sock('10.0.0.1');
    const session = sock('10.0.0.1');
    const plainSession = sock('10.0.0.2');
    for (const s of [handshaking, session, plainSession]) g.admit(s);
    // What HTTP and ws see over TLS: another socket object with the same 4-tuple.
    g.upgraded(new FakeSocket(session.remoteAddress, session.remotePort, session.localAddress, session.localPort) as unknown as Socket);
    g.upgraded(plainSession);
    g.close();
    expect(handshaking.destroyed).toBe(true);
    expect(session.destroyed).toBe(false);
    expect(plainSession.destroyed).toBe(false);
    const late = sock('10.0.0.3');
    expect(g.admit(late)).toBe(false);
    expect(late.destroyed).toBe(true);
  });
});

describe('deadline defaults (issue 15)', () => {
  it('are on without configuration and reach the HTTPS server', async () => {
    const config = loadConfig({ env: {}, overrides: { tls: { plainHttp: true }, log: { level: 'silent' } } });
    expect(config.raw.limits).toMatchObject({
      maxConnections: 20_000,
      maxConnectionsPerClient: 256,
      tlsHandshakeTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      keepAliveTimeoutMs: 5_000,
    });
    expect(httpDeadlines(config.raw.limits)).toEqual({ requestTimeout: 30_000, headersTimeout: 30_000, keepAliveTimeout: 5_000, connectionsCheckingInterval: 1_000 });
    const app = createHttpApp(config, createLogger({ level: 'silent' }));
    expect(app.server).toMatchObject({ requestTimeout: 30_000, headersTimeout: 30_000, keepAliveTimeout: 5_000, connectionsCheckingInterval: 1_000 });
    await app.close();
  });

  it('a short request deadline is checked often enough to hold', () => {
    const limits = loadConfig({ env: {}, overrides: { tls: { plainHttp: true }, limits: { requestTimeoutMs: 1_000 } } }).raw.limits;
    expect(httpDeadlines(limits).connectionsCheckingInterval).toBe(250);
  });
});

describe('open-file limit (issue 15)', () => {
  const PROC = `Limit                     Soft Limit           Hard Limit           Units
Max processes             63541                63541                processes
Max open files            20000                20000                files
Max locked memory         8388608              8388608              bytes
`;

  it('reads the soft limit from /proc/self/limits', () => {
    expect(openFilesLimit(PROC)).toBe(20_000);
    expect(openFilesLimit(PROC.replace(/20000 {16}20000/, 'unlimited            unlimited'))).toBeNull();
    expect(openFilesLimit('')).toBeNull();
  });

  it('warns once when the caps need more descriptors than the limit, and not otherwise', () => {
    expect(fdsAtFullLoad(20_000, 20_000)).toBe(40_128);
    expect(fdsAtFullLoad(1_000, 50)).toBe(1_178);
    const low = capture();
    checkOpenFilesLimit({ maxConnections: 20_000, maxSessions: 20_000 }, low.log, () => PROC);
    expect(low.lines).toEqual([expect.objectContaining({ level: 40, openFilesLimit: 20_000, fdsAtFullLoad: 40_128 })]);
    const ok = capture();
    checkOpenFilesLimit({ maxConnections: 5_000, maxSessions: 5_000 }, ok.log, () => PROC);
    checkOpenFilesLimit({ maxConnections: 5_000, maxSessions: 5_000 }, ok.log, () => {
      throw new Error('ENOENT');
    });
    expect(ok.lines).toEqual([]);
  });
});
