/**
 * Smoke test of the real-VNC-server harness: every configuration starts, listens on loopback only,
 * and offers exactly the RFB security types (and VeNCrypt subtypes) the harness says it does. A raw
 * socket does the minimum of RFB (RFC 6143 §7.1, rfbproto "VeNCrypt"); full authentication is the
 * client engine's tests' job. Start-up times are printed at the end.
 */
import net from 'node:net';
import tls from 'node:tls';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { ManagedProcess, ProcessRegistry, RingBuffer, defaultRegistry, runCommand, stopAll, waitUntilStopped } from './proc.js';
import { freePort, isLoopback, listeningSocketsOf, waitForListening, waitForPort } from './ports.js';
import { getTestPki } from './pki.js';
import { XVNC_CONFIGS, ensurePlainUser, startXvnc, startXvncConfig, xvncExpectedOffer, type XvncConfigName } from './xvnc.js';
import { startQemuVnc, type QemuVncOptions } from './qemu.js';
import { startX11vnc } from './x11vnc.js';

// Lets a test hand the starters a port that is already taken, to exercise their retry path.
const { portOverride } = vi.hoisted(() => ({ portOverride: [] as number[] }));
vi.mock('./ports.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('./ports.js')>();
  return { ...actual, freePort: async (host?: string) => portOverride.shift() ?? actual.freePort(host) };
});

const timings: { server: string; startupMs: number; attempts: number }[] = [];
const pids: number[] = [];
const tempDirs: string[] = [];

afterAll(async () => {
  await stopAll();
  for (const pid of pids) expect(listeningSocketsOf(pid), `pid ${pid} still listening`).toEqual([]);
  for (const dir of tempDirs) expect(existsSync(dir), `${dir} left behind`).toBe(false);
  const rows = timings.map((t) => `  ${t.server.padEnd(34)} ${t.startupMs.toFixed(0).padStart(6)} ms${t.attempts > 1 ? ` (${t.attempts} attempts)` : ''}`);
  console.log(`server start-up (spawn → listening):\n${rows.join('\n')}`);
});

function record(server: string, s: { startupMs: number; attempts: number; pid: number; tempDir: string }): void {
  timings.push({ server, startupMs: s.startupMs, attempts: s.attempts });
  pids.push(s.pid);
  tempDirs.push(s.tempDir);
}

// --- a minimal raw RFB reader ----------------------------------------------------------------

/** Reads exact byte counts from a socket, each read bounded by a deadline. */
class Reader {
  private buf = Buffer.alloc(0);
  private ended: string | undefined;
  private wake: (() => void) | undefined;

  constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    sock.on('close', () => {
      this.ended ??= 'closed by server';
      this.wake?.();
    });
    sock.on('error', (e) => {
      this.ended = e.message;
      this.wake?.();
    });
  }

  async read(n: number, timeoutMs = 5000): Promise<Buffer> {
    const deadline = performance.now() + timeoutMs;
    while (this.buf.length < n) {
      if (this.ended !== undefined) throw new Error(`wanted ${n} bytes, have ${this.buf.length}: ${this.ended}`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`wanted ${n} bytes, have ${this.buf.length} after ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
}

async function connect(host: string, port: number): Promise<Reader> {
  const sock = net.connect({ host, port });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('connect timeout')), 5000);
    sock.once('connect', () => {
      clearTimeout(t);
      resolve();
    });
    sock.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
  return new Reader(sock);
}

interface Offer {
  banner: string;
  types: number[];
  subtypes: number[] | null;
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

/** Version exchange and security negotiation up to the offer (§7.1.1, §7.1.2, VeNCrypt 0.2). */
async function readOffer(r: Reader): Promise<Offer> {
  const banner = (await r.read(12)).toString('latin1');
  expect(banner).toMatch(/^RFB 003\.00[378]\n$/);
  if (banner === 'RFB 003.003\n') {
    r.sock.write(banner);
    return { banner, types: [(await r.read(4)).readUInt32BE(0)], subtypes: null };
  }
  r.sock.write(banner === 'RFB 003.007\n' ? banner : 'RFB 003.008\n');
  const count = (await r.read(1))[0] ?? 0;
  if (count === 0) {
    const len = (await r.read(4)).readUInt32BE(0);
    throw new Error(`server refused: ${(await r.read(Math.min(len, 256))).toString('latin1')}`);
  }
  const types = [...(await r.read(count))];
  if (!types.includes(19)) return { banner, types, subtypes: null };
  r.sock.write(Buffer.from([19]));
  const [major, minor] = await r.read(2);
  expect([major, minor]).toEqual([0, 2]);
  r.sock.write(Buffer.from([0, 2]));
  expect((await r.read(1))[0]).toBe(0); // version accepted
  const n = (await r.read(1))[0] ?? 0;
  const raw = await r.read(4 * n);
  const subtypes = Array.from({ length: n }, (_, i) => raw.readUInt32BE(4 * i));
  return { banner, types, subtypes };
}

async function probe(host: string, port: number): Promise<Offer> {
  const r = await connect(host, port);
  try {
    return await readOffer(r);
  } finally {
    r.sock.destroy();
  }
}

/** With security None under 3.8: SecurityResult, ClientInit (shared), ServerInit (§7.3). */
async function serverInitViaNone(host: string, port: number): Promise<{ width: number; height: number; name: string }> {
  const r = await connect(host, port);
  try {
    const offer = await readOffer(r);
    expect(offer.banner).toBe('RFB 003.008\n');
    expect(offer.types).toContain(1);
    r.sock.write(Buffer.from([1]));
    expect((await r.read(4)).readUInt32BE(0)).toBe(0);
    r.sock.write(Buffer.from([1]));
    const head = await r.read(24);
    const nameLen = head.readUInt32BE(20);
    expect(nameLen).toBeLessThanOrEqual(256);
    return { width: head.readUInt16BE(0), height: head.readUInt16BE(2), name: (await r.read(nameLen)).toString('utf8') };
  } finally {
    r.sock.destroy();
  }
}

/** Plain (VeNCrypt 256, no TLS): credentials straight after the subtype, no accept byte. */
async function plainLogin(host: string, port: number, user: string, password: string): Promise<{ result: number; ms: number }> {
  const r = await connect(host, port);
  try {
    const offer = await readOffer(r);
    expect(offer.subtypes).toContain(256);
    const t0 = performance.now();
    const u = Buffer.from(user);
    const p = Buffer.from(password);
    r.sock.write(Buffer.concat([u32(256), u32(u.length), u32(p.length), u, p]));
    const result = (await r.read(4, 10_000)).readUInt32BE(0);
    return { result, ms: performance.now() - t0 };
  } finally {
    r.sock.destroy();
  }
}

/**
 * VeNCrypt up to TLS (subtype, accept byte, handshake), then the SecurityResult that the *None
 * subtypes send right away. Checks that the test PKI suits the server; no VNC auth here.
 */
async function vencryptTlsNone(host: string, port: number, subtype: 257 | 260, tlsOpts: tls.ConnectionOptions): Promise<{ protocol: string | null; result: number }> {
  const r = await connect(host, port);
  try {
    const offer = await readOffer(r);
    expect(offer.subtypes).toContain(subtype);
    r.sock.write(u32(subtype));
    expect((await r.read(1))[0]).toBe(1); // accepted: TLS follows
    r.sock.removeAllListeners('data');
    const secure = tls.connect({ socket: r.sock, ...tlsOpts });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    const tr = new Reader(secure);
    const result = (await tr.read(4)).readUInt32BE(0);
    const protocol = secure.getProtocol();
    secure.destroy();
    return { protocol, result };
  } finally {
    r.sock.destroy();
  }
}

const verifyAs127 = (ca: string): tls.ConnectionOptions => ({
  ca,
  checkServerIdentity: (_host, cert) => tls.checkServerIdentity('127.0.0.1', cert),
});

// --- process plumbing --------------------------------------------------------------------------

describe('proc', () => {
  it('keeps only the tail of the output', () => {
    const ring = new RingBuffer(10);
    ring.push(Buffer.from('0123456789'));
    ring.push(Buffer.from('abcdef'));
    expect(ring.toString()).toBe('[... 6 bytes dropped ...]\n6789abcdef');
  });

  it('escalates to SIGKILL when SIGTERM is ignored, and reports a failed start with its output', async () => {
    const stubborn = await ManagedProcess.start({
      name: 'stubborn',
      command: process.execPath,
      args: ['-e', "process.on('SIGTERM', () => console.log('ignoring TERM')); console.log('up'); setInterval(() => {}, 1000)"],
    });
    await expect.poll(() => stubborn.output(), { timeout: 5000 }).toContain('up');
    const t0 = performance.now();
    await stubborn.stop({ termTimeoutMs: 300 });
    expect(stubborn.exitInfo).toEqual({ code: null, signal: 'SIGKILL' });
    expect(stubborn.output()).toContain('ignoring TERM');
    expect(performance.now() - t0).toBeLessThan(3000);

    await expect(ManagedProcess.start({ name: 'missing', command: '/nonexistent/binary', args: [] })).rejects.toThrow(/cannot run/);
    await expect(runCommand('sh', ['-c', 'echo boom >&2; exit 3'])).rejects.toThrow(/code 3[\s\S]*boom/);
  });

  it('waitUntilStopped returns once every thread of a SIGSTOPped process is stopped, and gives up at its deadline', async () => {
    // A Node process has several threads (V8 platform workers, libuv), so all of them must stop.
    const p = await ManagedProcess.start({ name: 'stoppable', command: process.execPath, args: ['-e', "console.log('up'); setInterval(() => {}, 1000)"] });
    try {
      await expect.poll(() => p.output(), { timeout: 5000 }).toContain('up');
      expect(() => waitUntilStopped([p.pid], 50, 'running')).toThrow(/running: PIDs \d+ not stopped 50 ms after SIGSTOP/);
      process.kill(p.pid, 'SIGSTOP');
      waitUntilStopped([p.pid], 5000, 'stoppable');
      const states = readdirSync(`/proc/${p.pid}/task`).map((tid) => {
        const stat = readFileSync(`/proc/${p.pid}/task/${tid}/stat`, 'utf8');
        return stat.slice(stat.lastIndexOf(')') + 2)[0];
      });
      expect(states.length).toBeGreaterThan(1);
      expect(states.every((st) => st === 'T')).toBe(true);
      process.kill(p.pid, 'SIGCONT');
    } finally {
      await p.stop();
    }
  });

  it('waitForPort gives up at its deadline', async () => {
    const port = await freePort();
    const t0 = performance.now();
    await expect(waitForPort('127.0.0.1', port, 200)).rejects.toThrow(/not accepting/);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('waitForListening proves ownership and knows loopback from the rest', async () => {
    const listen = (host: string, port: number): Promise<ManagedProcess> =>
      ManagedProcess.start({
        name: `listener ${host}`,
        command: process.execPath,
        args: ['-e', `require('node:net').createServer().listen(${port}, '${host}')`],
      });
    const port = await freePort();
    const local = await listen('127.0.0.1', port);
    expect(await waitForListening(local, port, 5000)).toEqual([{ address: '127.0.0.1', port, family: 4 }]);
    // Somebody else's listener on that port is not ours:
    const other = await ManagedProcess.start({ name: 'idle', command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'] });
    await expect(waitForListening(other, port, 200)).rejects.toThrow(/not listening/);
    await Promise.all([local.stop(), other.stop()]);

    // The "beyond loopback" refusal rests on isLoopback; not exercised with a real 0.0.0.0 listener
    // because tests bind loopback only.
    expect(['127.0.0.1', '127.0.0.2', '::1'].map(isLoopback)).toEqual([true, true, true]);
    expect(['0.0.0.0', '::', '10.0.0.1', '::ffff:127.0.0.1'].map(isLoopback)).toEqual([false, false, false, false]);
  });

  it('a registry stops what it holds, newest first', async () => {
    const reg = new ProcessRegistry();
    const order: string[] = [];
    reg.add({ stop: async () => void order.push('a') });
    reg.add({ stop: async () => void order.push('b') });
    await reg.stopAll();
    expect(order).toEqual(['b', 'a']);
    expect(reg.size).toBe(0);
  });
});

describe('pki', () => {
  it('makes the certificates the TLS tests need, once per process', async () => {
    const pki = await getTestPki();
    expect(await getTestPki()).toBe(pki);
    const text = async (path: string): Promise<string> =>
      (await runCommand('openssl', ['x509', '-in', path, '-noout', '-ext', 'subjectAltName,extendedKeyUsage'])).stdout.toString();
    expect(await text(pki.server.cert.path)).toMatch(/IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1, DNS:localhost/);
    expect(await text(pki.wrongHost.cert.path)).toMatch(/DNS:wrong\.example\s*$/m);
    expect(await text(pki.client.cert.path)).toMatch(/TLS Web Client Authentication/);
    const verify = (ca: string, cert: string): Promise<unknown> => runCommand('openssl', ['verify', '-CAfile', ca, cert]);
    await verify(pki.ca.cert.path, pki.server.cert.path);
    await verify(pki.ca.cert.path, pki.wrongHost.cert.path);
    await verify(pki.ca.cert.path, pki.client.cert.path);
    await verify(pki.otherCa.cert.path, pki.untrustedServer.cert.path);
    await expect(verify(pki.ca.cert.path, pki.untrustedServer.cert.path)).rejects.toThrow();
    expect(pki.server.key.pem).toContain('PRIVATE KEY');
  });
});

// --- Xvnc --------------------------------------------------------------------------------------

describe('Xvnc', () => {
  for (const name of Object.keys(XVNC_CONFIGS) as XvncConfigName[]) {
    it(`${name}: offers ${JSON.stringify(XVNC_CONFIGS[name].expected)}`, async () => {
      const srv = await startXvncConfig(name);
      record(`Xvnc ${name}`, srv);
      const { type, subtype } = XVNC_CONFIGS[name].expected;
      const offer = await probe(srv.host, srv.port);
      expect(offer.banner).toBe('RFB 003.008\n');
      expect(offer.types).toEqual([type]);
      expect(offer.subtypes).toEqual(subtype === null ? null : [subtype]);
      expect(offer).toMatchObject(srv.expected);
      expect(listeningSocketsOf(srv.pid)).toEqual([{ address: '127.0.0.1', port: srv.port, family: 4 }]);
    });
  }

  it('none: ServerInit carries the desktop name and geometry', async () => {
    const srv = await startXvnc({ securityTypes: ['None'], desktopName: 'smoke desktop', geometry: '640x480' });
    expect(await serverInitViaNone(srv.host, srv.port)).toEqual({ width: 640, height: 480, name: 'smoke desktop' });
  });

  it('mixed lists: VeNCrypt first, and every enabled type again among the subtypes', async () => {
    for (const types of [['TLSVnc', 'VncAuth'], ['VncAuth', 'X509Plain', 'None']] as const) {
      const srv = await startXvnc({ securityTypes: types });
      const offer = await probe(srv.host, srv.port);
      expect(offer).toMatchObject(xvncExpectedOffer(types));
      await srv.stop();
    }
    expect(xvncExpectedOffer(['TLSVnc', 'VncAuth'])).toEqual({ types: [19, 2], subtypes: [258, 2] });
  });

  it('IPv6: listens on [::1] only', async () => {
    const srv = await startXvnc({ securityTypes: ['None'], ipv6: true, desktopName: 'v6' });
    record('Xvnc none [::1]', srv);
    expect(listeningSocketsOf(srv.pid)).toEqual([{ address: '::1', port: srv.port, family: 6 }]);
    expect((await serverInitViaNone('::1', srv.port)).name).toBe('v6');
  });

  it('X509 with the wrong-host and untrusted certificates starts and offers the same', async () => {
    for (const x509 of ['wrongHost', 'untrustedServer'] as const) {
      const srv = await startXvnc({ securityTypes: ['X509None'], x509 });
      expect(await probe(srv.host, srv.port)).toMatchObject({ types: [19], subtypes: [260] });
      expect(srv.caCertPem).toBe(x509 === 'wrongHost' ? (await getTestPki()).ca.cert.pem : (await getTestPki()).otherCa.cert.pem);
      await srv.stop();
    }
  });

  it('TLS: X509None verifies against the test CA for 127.0.0.1; TLSNone is anonymous TLS 1.2', async () => {
    const pki = await getTestPki();
    const x509 = await startXvncConfig('x509none');
    expect(await vencryptTlsNone(x509.host, x509.port, 260, verifyAs127(pki.ca.cert.pem))).toEqual({ protocol: 'TLSv1.3', result: 0 });
    const anon = await startXvncConfig('tlsnone');
    const anonOpts = { ciphers: 'aNULL:@SECLEVEL=0', maxVersion: 'TLSv1.2', rejectUnauthorized: false } as const;
    expect(await vencryptTlsNone(anon.host, anon.port, 257, anonOpts)).toEqual({ protocol: 'TLSv1.2', result: 0 });
  });

  it('refuses to start with a missing certificate instead of failing at handshake time', async () => {
    await expect(startXvnc({ securityTypes: ['X509None'], x509: { cert: '/nonexistent.pem', key: '/nonexistent.pem' } })).rejects.toThrow(/not readable/);
  });

  it('Plain: the PAM test user logs in, a wrong password fails at once', async () => {
    const user = await ensurePlainUser();
    expect(await ensurePlainUser()).toEqual(user);
    const srv = await startXvnc({ securityTypes: ['Plain'] });
    expect(srv.plainUser).toEqual(user);
    expect((await plainLogin(srv.host, srv.port, user.username, user.password)).result).toBe(0);
    const wrong = await plainLogin(srv.host, srv.port, user.username, `${user.password}x`);
    expect(wrong.result).toBe(1);
    expect(wrong.ms).toBeLessThan(1500); // pam_unix nodelay: no ~2 s fail delay
    expect((await plainLogin(srv.host, srv.port, 'root', 'whatever')).result).toBe(1); // not in -PlainUsers
  });

  it('stop() kills the server, frees its display and removes its temp files', async () => {
    const srv = await startXvncConfig('vncauth');
    const { display, pid } = srv;
    expect(existsSync(`/tmp/.X${display}-lock`)).toBe(true);
    await srv.stop();
    await srv.stop(); // idempotent
    expect(srv.process.running).toBe(false);
    expect(existsSync(srv.tempDir)).toBe(false);
    expect(existsSync(`/tmp/.X${display}-lock`)).toBe(false);
    expect(existsSync(`/tmp/.X11-unix/X${display}`)).toBe(false);
    expect(listeningSocketsOf(pid)).toEqual([]);
  });
});

// --- QEMU --------------------------------------------------------------------------------------

describe('QEMU', () => {
  const cases: [string, QemuVncOptions, { types: number[]; subtypes: number[] | null }][] = [
    ['none', {}, { types: [1], subtypes: null }],
    ['password', { password: 'qemupass' }, { types: [2], subtypes: null }],
    ['x509', { tls: { pki: 'server' } }, { types: [19], subtypes: [260] }],
    ['x509 + password', { tls: { pki: 'server' }, password: 'qemupass' }, { types: [19], subtypes: [261] }],
    ['x509 verify client', { tls: { pki: 'server' }, x509verifyClient: true }, { types: [19], subtypes: [260] }],
    ['x509 verify client + password', { tls: { pki: 'server' }, x509verifyClient: true, password: 'qemupass' }, { types: [19], subtypes: [261] }],
    ['anon tls', { tls: { anon: true } }, { types: [19], subtypes: [257] }],
    ['anon tls + password', { tls: { anon: true }, password: 'qemupass' }, { types: [19], subtypes: [258] }],
  ];
  for (const [label, opts, expected] of cases) {
    it(`${label}: offers ${JSON.stringify(expected)}`, async () => {
      const srv = await startQemuVnc(opts);
      record(`QEMU ${label}`, srv);
      const offer = await probe(srv.host, srv.port);
      expect(offer).toEqual({ banner: 'RFB 003.008\n', ...expected });
      expect(srv.expected).toEqual(expected);
      expect(listeningSocketsOf(srv.pid)).toEqual([{ address: '127.0.0.1', port: srv.port, family: 4 }]);
    });
  }

  it('x509 verify client: the test client certificate is accepted', async () => {
    const pki = await getTestPki();
    const srv = await startQemuVnc({ tls: { pki: 'server' }, x509verifyClient: true });
    const withClientCert = { ...verifyAs127(pki.ca.cert.pem), cert: pki.client.cert.pem, key: pki.client.key.pem };
    expect(await vencryptTlsNone(srv.host, srv.port, 260, withClientCert)).toEqual({ protocol: 'TLSv1.3', result: 0 });
    // Without one, TLS 1.3 completes on our side and then the server hangs up.
    await expect(vencryptTlsNone(srv.host, srv.port, 260, verifyAs127(pki.ca.cert.pem))).rejects.toThrow();
  });

  it('IPv6 and -name: ServerInit says "QEMU (name)"', async () => {
    const srv = await startQemuVnc({ ipv6: true, name: 'vncgate' });
    record('QEMU none [::1]', srv);
    expect(listeningSocketsOf(srv.pid)).toEqual([{ address: '::1', port: srv.port, family: 6 }]);
    expect((await serverInitViaNone('::1', srv.port)).name).toBe('QEMU (vncgate)');
  });
});

// --- x11vnc ------------------------------------------------------------------------------------

describe('x11vnc', () => {
  it('3.8 none: ServerInit carries the desktop name', async () => {
    const srv = await startX11vnc({ desktopName: 'x11 smoke' });
    record('x11vnc none (after its Xvnc)', srv);
    expect(await probe(srv.host, srv.port)).toEqual({ banner: 'RFB 003.008\n', types: [1], subtypes: null });
    expect((await serverInitViaNone(srv.host, srv.port)).name).toBe('x11 smoke');
    expect(listeningSocketsOf(srv.pid)).toEqual([{ address: '127.0.0.1', port: srv.port, family: 4 }]);
  });

  it('announces RFB 3.3 and 3.7 on request', async () => {
    const v33 = await startX11vnc({ rfbVersion: '3.3', password: 'x11pass1' });
    expect(await probe(v33.host, v33.port)).toEqual({ banner: 'RFB 003.003\n', types: [2], subtypes: null });
    const v37 = await startX11vnc({ rfbVersion: '3.7' });
    expect(await probe(v37.host, v37.port)).toEqual({ banner: 'RFB 003.007\n', types: [1], subtypes: null });
    const { xvnc } = v37;
    await v37.stop();
    expect(xvnc.process.running).toBe(false);
  });
});

describe('port races', () => {
  it('Xvnc and QEMU retry with another port when theirs was taken meanwhile', async () => {
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const addr = squatter.address();
    if (addr === null || typeof addr === 'string') throw new Error('no address');
    try {
      portOverride.push(addr.port);
      const xvnc = await startXvnc({ securityTypes: ['None'] });
      expect(xvnc.attempts).toBe(2);
      expect(xvnc.port).not.toBe(addr.port);
      portOverride.push(addr.port);
      const qemu = await startQemuVnc();
      expect(qemu.attempts).toBe(2);
      expect(qemu.port).not.toBe(addr.port);
      expect(await probe(qemu.host, qemu.port)).toMatchObject({ types: [1] });
    } finally {
      portOverride.length = 0;
      await new Promise((resolve) => squatter.close(resolve));
    }
  });
});

describe('registry', () => {
  it('holds every server still running, for afterAll', () => {
    expect(defaultRegistry.size).toBeGreaterThan(0);
  });
});
