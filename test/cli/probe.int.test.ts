import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runVncgate } from '../support/cli.js';
import { getTestPki, type TestPki } from '../support/pki.js';
import { stopAll } from '../support/proc.js';
import { startQemuVnc } from '../support/qemu.js';
import { ensurePlainUser, startXvnc, startXvncConfig, type XvncConfigName, type XvncServer } from '../support/xvnc.js';

/**
 * `vncgate probe` against real VNC servers the test starts: TigerVNC Xvnc with every security type
 * vncgate claims, QEMU's VNC server with a password and with X.509 TLS, and every failure case
 * provoked for real. The probe timings are collected and printed at the end (for the notes).
 */

type ProbeOk = {
  ok: true;
  rfb: { serverVersion: string; version: string };
  security: { choice: string; type: string; subtype: string | null; offeredTypes: string[]; offeredSubtypes: string[] | null };
  tls: { protocol: string; anonymous: boolean; peerSubject: string | null; hostnameVerified: boolean } | null;
  framebuffer: { width: number; height: number };
  desktopName: string;
  timings: { connectMs: number; tlsMs: number | null; handshakeMs: number; serverInitMs: number; totalMs: number };
};
type ProbeFail = { ok: false; error: { code: string; message: string; hint?: string; details?: Record<string, unknown> } };

const dir = mkdtempSync(join(tmpdir(), 'vncgate-probe-'));
let fileNo = 0;
function secretFile(text: string): string {
  const p = join(dir, `secret-${fileNo++}`);
  writeFileSync(p, `${text}\n`, { mode: 0o600 });
  return p;
}

const timings: { name: string; t: ProbeOk['timings'] }[] = [];

async function probe(args: string[], name: string): Promise<ProbeOk | ProbeFail> {
  const r = await runVncgate(['probe', ...args], { timeoutMs: 30_000 });
  expect(r.json, `stdout must be exactly one JSON object:\n${r.stdout}\n${r.stderr}`).toHaveLength(1);
  const out = r.json[0] as ProbeOk | ProbeFail;
  if (out.ok) {
    expect(r.code).toBe(0);
    timings.push({ name, t: out.timings });
  } else {
    expect(r.code).toBe(1);
    // A person-readable line on stderr naming the code.
    expect(r.stderr).toContain(out.error.code);
  }
  return out;
}

function target(s: { host: string; port: number }): string {
  return s.host.includes(':') ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
}

let pki: TestPki;
beforeAll(async () => {
  pki = await getTestPki();
});
afterAll(async () => {
  await stopAll();
  if (timings.length > 0) {
    const rows = timings.map(({ name, t }) => `${name.padEnd(28)} connect ${t.connectMs.toFixed(2).padStart(6)} ms  tls ${(t.tlsMs ?? 0).toFixed(2).padStart(6)} ms  handshake ${t.handshakeMs.toFixed(2).padStart(6)} ms  serverInit ${t.serverInitMs.toFixed(2).padStart(6)} ms  total ${t.totalMs.toFixed(2).padStart(7)} ms`);
    process.stderr.write(`\nvncgate probe timings (ms, one run each):\n${rows.join('\n')}\n`);
  }
});

describe('vncgate probe succeeds against TigerVNC Xvnc with every security type', () => {
  const cases: { config: XvncConfigName; security: string; subtype: string | null; tls: 'x509' | 'anon' | null }[] = [
    { config: 'none', security: 'none', subtype: null, tls: null },
    { config: 'vncauth', security: 'vncauth', subtype: null, tls: null },
    { config: 'plain', security: 'vencrypt-plain', subtype: 'Plain', tls: null },
    { config: 'tlsnone', security: 'vencrypt-tlsnone', subtype: 'TLSNone', tls: 'anon' },
    { config: 'tlsvnc', security: 'vencrypt-tlsvnc', subtype: 'TLSVnc', tls: 'anon' },
    { config: 'tlsplain', security: 'vencrypt-tlsplain', subtype: 'TLSPlain', tls: 'anon' },
    { config: 'x509none', security: 'vencrypt-x509none', subtype: 'X509None', tls: 'x509' },
    { config: 'x509vnc', security: 'vencrypt-x509vnc', subtype: 'X509Vnc', tls: 'x509' },
    { config: 'x509plain', security: 'vencrypt-x509plain', subtype: 'X509Plain', tls: 'x509' },
  ];
  for (const c of cases) {
    it(`Xvnc ${c.config}`, async () => {
      const xvnc = await startXvncConfig(c.config, { desktopName: `probe-${c.config}` });
      try {
        const args = [target(xvnc), '--security', c.security, '--timeout', '10000'];
        if (xvnc.password !== undefined) args.push('--password-file', secretFile(xvnc.password));
        if (xvnc.plainUser) args.push('--username', xvnc.plainUser.username, '--password-file', secretFile(xvnc.plainUser.password));
        if (c.tls === 'x509') args.push('--ca', pki.ca.cert.path);
        if (c.tls === 'anon') args.push('--allow-anonymous-tls');
        const out = await probe(args, `Xvnc ${c.config}`);
        expect(out.ok, JSON.stringify(out)).toBe(true);
        if (!out.ok) return;
        expect(out.desktopName).toBe(`probe-${c.config}`);
        expect(out.framebuffer).toEqual({ width: 1024, height: 768 });
        expect(out.rfb.version).toBe('3.8');
        expect(out.security.choice).toBe(c.security);
        expect(out.security.subtype).toBe(c.subtype);
        if (c.tls === null) expect(out.tls).toBeNull();
        else {
          expect(out.tls?.anonymous).toBe(c.tls === 'anon');
          expect(out.tls?.protocol).toMatch(/^TLSv1\.[23]$/);
          if (c.tls === 'x509') {
            expect(out.tls?.hostnameVerified).toBe(true);
            expect(out.tls?.peerSubject).toContain('CN=');
          }
        }
      } finally {
        await xvnc.stop();
      }
    });
  }

  it('Xvnc over IPv6 ([::1])', async () => {
    const xvnc = await startXvnc({ securityTypes: ['None'], ipv6: true, desktopName: 'probe-v6' });
    try {
      expect(xvnc.host).toBe('::1');
      const out = await probe([target(xvnc), '--security', 'none'], 'Xvnc none [::1]');
      expect(out).toMatchObject({ ok: true, desktopName: 'probe-v6' });
    } finally {
      await xvnc.stop();
    }
  });

  it('preference order is the operator’s, intersected with the offer', async () => {
    const xvnc = await startXvnc({ securityTypes: ['X509None', 'VncAuth', 'None'], desktopName: 'probe-pref' });
    try {
      const pw = secretFile(xvnc.password ?? '');
      const first = await probe([target(xvnc), '--security', 'vncauth,vencrypt-x509none,none', '--password-file', pw, '--ca', pki.ca.cert.path], 'Xvnc pref vncauth');
      expect(first).toMatchObject({ ok: true, security: { choice: 'vncauth', offeredTypes: ['VeNCrypt', 'VncAuth', 'None'] } });
      const second = await probe([target(xvnc), '--security', 'vencrypt-x509none,vncauth', '--password-file', pw, '--ca', pki.ca.cert.path], 'Xvnc pref x509none');
      expect(second).toMatchObject({ ok: true, security: { choice: 'vencrypt-x509none' } });
    } finally {
      await xvnc.stop();
    }
  });
});

describe('vncgate probe succeeds against QEMU', () => {
  it('QEMU with a VNC password', async () => {
    const qemu = await startQemuVnc({ password: 'qemupw12' });
    try {
      const out = await probe([target(qemu), '--security', 'vncauth', '--password-file', secretFile('qemupw12')], 'QEMU vncauth');
      expect(out).toMatchObject({ ok: true, framebuffer: { width: 720, height: 400 }, security: { choice: 'vncauth' } });
      if (out.ok) expect(out.desktopName).toMatch(/^QEMU/);
    } finally {
      await qemu.stop();
    }
  });

  it('QEMU with tls-creds-x509 (X509None)', async () => {
    const qemu = await startQemuVnc({ tls: { pki: 'server' } });
    try {
      const out = await probe([target(qemu), '--security', 'vencrypt-x509none', '--ca', pki.ca.cert.path], 'QEMU x509none');
      expect(out).toMatchObject({ ok: true, security: { choice: 'vencrypt-x509none', subtype: 'X509None' }, tls: { anonymous: false, hostnameVerified: true } });
    } finally {
      await qemu.stop();
    }
  });

  it('QEMU with tls-creds-x509, a password and a required client certificate (X509Vnc)', async () => {
    const qemu = await startQemuVnc({ tls: { pki: 'server' }, password: 'qemupw34', x509verifyClient: true });
    try {
      const base = [target(qemu), '--security', 'vencrypt-x509vnc', '--ca', pki.ca.cert.path, '--password-file', secretFile('qemupw34')];
      const out = await probe([...base, '--cert', pki.client.cert.path, '--key', pki.client.key.path], 'QEMU x509vnc+client cert');
      expect(out).toMatchObject({ ok: true, security: { choice: 'vencrypt-x509vnc' } });
      // Without the client certificate QEMU ends the TLS handshake.
      const without = await probe(base, 'QEMU no client cert');
      expect(without.ok).toBe(false);
      if (!without.ok) expect(without.error.code).toMatch(/^BACKEND_ERR_(TLS|CLOSED)$/);
    } finally {
      await qemu.stop();
    }
  });
});

describe('vncgate probe fails with the right code and a readable reason', () => {
  let xvncPw: XvncServer;
  beforeAll(async () => {
    xvncPw = await startXvnc({ securityTypes: ['VncAuth'], desktopName: 'probe-fail' });
  });
  afterAll(async () => {
    await xvncPw?.stop();
  });

  it('wrong VNC password (Xvnc)', async () => {
    const out = await probe([target(xvncPw), '--security', 'vncauth', '--password-file', secretFile('wrong-pw')], 'fail');
    expect(out).toMatchObject({ ok: false, error: { code: 'RFB_ERR_AUTH_FAILED', hint: expect.stringMatching(/password/) } });
  });

  it('wrong VNC password (QEMU)', async () => {
    const qemu = await startQemuVnc({ password: 'rightpw1' });
    try {
      const out = await probe([target(qemu), '--security', 'vncauth', '--password-file', secretFile('wrongpw1')], 'fail');
      expect(out).toMatchObject({ ok: false, error: { code: 'RFB_ERR_AUTH_FAILED' } });
    } finally {
      await qemu.stop();
    }
  });

  it('wrong Plain password (Xvnc X509Plain via PAM)', async () => {
    const user = await ensurePlainUser();
    const xvnc = await startXvncConfig('x509plain');
    try {
      const out = await probe([target(xvnc), '--security', 'vencrypt-x509plain', '--ca', pki.ca.cert.path, '--username', user.username, '--password-file', secretFile('not-the-password')], 'fail');
      expect(out).toMatchObject({ ok: false, error: { code: 'RFB_ERR_AUTH_FAILED' } });
    } finally {
      await xvnc.stop();
    }
  });

  it('no common security type lists what the server offered', async () => {
    const out = await probe([target(xvncPw), '--security', 'none'], 'fail');
    expect(out).toMatchObject({ ok: false, error: { code: 'RFB_ERR_NO_COMMON_SECURITY', details: { offeredTypes: ['VncAuth'] } } });
    if (!out.ok) expect(out.error.message).toContain('VncAuth');
  });

  it('issue 16: a VncAuth endpoint probed without a password says to pass --password-file, not to change --security', async () => {
    const out = await probe([target(xvncPw)], 'fail');
    expect(out).toMatchObject({ ok: false, error: { code: 'RFB_ERR_NO_COMMON_SECURITY', details: { offeredTypes: ['VncAuth'] } } });
    if (!out.ok) expect(out.error.hint).toBe('the endpoint asks for a VNC password: pass --password-file FILE');
    const explicit = await probe([target(xvncPw), '--security', 'vncauth'], 'fail');
    expect(explicit).toMatchObject({ ok: false, error: { code: 'RFB_ERR_CREDENTIALS_MISSING' } });
    if (!explicit.ok) expect(explicit.error.hint).toBe('--security vncauth needs a VNC password: pass --password-file FILE');
  });

  it('untrusted CA', async () => {
    const xvnc = await startXvnc({ securityTypes: ['X509None'], x509: 'untrustedServer' });
    try {
      const out = await probe([target(xvnc), '--security', 'vencrypt-x509none', '--ca', pki.ca.cert.path], 'fail');
      expect(out).toMatchObject({ ok: false, error: { code: 'BACKEND_ERR_TLS_UNTRUSTED', hint: expect.stringMatching(/--ca/) } });
    } finally {
      await xvnc.stop();
    }
  });

  it('hostname mismatch, and the explicit opt-out', async () => {
    const xvnc = await startXvnc({ securityTypes: ['X509None'], x509: 'wrongHost', desktopName: 'probe-wronghost' });
    try {
      const base = [target(xvnc), '--security', 'vencrypt-x509none', '--ca', pki.ca.cert.path];
      const out = await probe(base, 'fail');
      expect(out).toMatchObject({ ok: false, error: { code: 'BACKEND_ERR_TLS_HOSTNAME' } });
      const optOut = await probe([...base, '--no-verify-hostname'], 'Xvnc x509none no-verify-hostname');
      expect(optOut).toMatchObject({ ok: true, desktopName: 'probe-wronghost', tls: { hostnameVerified: false } });
      const named = await probe([...base, '--servername', 'wrong.example'], 'Xvnc x509none servername');
      expect(named).toMatchObject({ ok: true, tls: { hostnameVerified: true } });
    } finally {
      await xvnc.stop();
    }
  });

  it('anonymous TLS only when explicitly allowed', async () => {
    const out = await probe([target(xvncPw), '--security', 'vencrypt-tlsnone'], 'fail');
    expect(out).toMatchObject({ ok: false, error: { code: 'BACKEND_ERR_ANON_TLS_FORBIDDEN' } });
  });

  describe('not an RFB server, refused, timed out', () => {
    let banner: Server;
    let silent: Server;
    const ports = { banner: 0, silent: 0, closed: 0 };
    beforeAll(async () => {
      // A real service that speaks first but is not VNC (like sshd), and one that never speaks.
      banner = createServer((s) => s.end('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n'));
      silent = createServer(() => undefined);
      const closed = createServer();
      for (const [name, srv] of [['banner', banner], ['silent', silent], ['closed', closed]] as const) {
        await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
        ports[name] = (srv.address() as { port: number }).port;
      }
      await new Promise<void>((r) => closed.close(() => r()));
    });
    afterAll(async () => {
      await new Promise<void>((r) => banner.close(() => r()));
      silent.close();
    });

    it('not an RFB server', async () => {
      const out = await probe([`127.0.0.1:${ports.banner}`, '--security', 'none'], 'fail');
      expect(out).toMatchObject({ ok: false, error: { code: 'RFB_ERR_NOT_RFB' } });
    });

    it('connection refused', async () => {
      const out = await probe([`127.0.0.1:${ports.closed}`, '--security', 'none'], 'fail');
      expect(out).toMatchObject({ ok: false, error: { code: 'BACKEND_ERR_REFUSED' } });
    });

    it('timed out (accepts, never speaks)', async () => {
      const t0 = Date.now();
      const out = await probe([`127.0.0.1:${ports.silent}`, '--security', 'none', '--timeout', '700'], 'fail');
      expect(out).toMatchObject({ ok: false, error: { code: 'BACKEND_ERR_TIMEOUT' } });
      expect(Date.now() - t0).toBeLessThan(15_000);
    });
  });

  it('bad usage exits 2 with the usage on stderr and nothing on stdout', async () => {
    const r = await runVncgate(['probe', 'no-port-here']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/Usage: vncgate probe/);
  });
});
