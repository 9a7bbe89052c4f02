import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { ensureDevCertificate } from '../../tools/cli/dev-cert.js';
import { loadConfig, parseListen } from '../../src/config/index.js';
import { VncgateError } from '../../src/errors.js';
import { createJwtVerifier } from '../../src/proxy/api-auth.js';

const dir = mkdtempSync(join(tmpdir(), 'vncgate-config-'));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
// A real pair: loadConfig checks that the key belongs to the certificate.
const { certFile: cert, keyFile: key } = ensureDevCertificate(dir);

function problemsOf(f: () => unknown): string[] {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(VncgateError);
    const e = err as VncgateError;
    expect(e.code).toBe('CONFIG_ERR_INVALID');
    return e.details?.problems as string[];
  }
  throw new Error('expected a configuration error');
}

describe('configuration', () => {
  it('fills every default and freezes the result', () => {
    const c = loadConfig({ env: {}, overrides: { tls: { plainHttp: true } } });
    expect(c.listen).toEqual([{ host: '127.0.0.1', port: 6080 }]);
    expect(c.raw.session.handshakeTimeoutMs).toBe(15_000);
    expect(c.raw.tls.minVersion).toBe('TLSv1.2');
    expect(c.raw.origins.check).toBe(true);
    expect(c.profiles.get('none')).toEqual({ security: ['none'] });
    expect(Object.isFrozen(c.raw.session)).toBe(true);
    expect(() => {
      (c.raw.session as { idleTimeoutMs: number }).idleTimeoutMs = 1;
    }).toThrow(TypeError);
  });

  it('takes the documented environment variables', () => {
    const c = loadConfig({
      env: {
        VNCGATE_LISTEN: '[::1]:7443,127.0.0.1:7443',
        VNCGATE_TLS_CERT_FILE: cert,
        VNCGATE_TLS_KEY_FILE: key,
        VNCGATE_REDIS_URL: 'redis://127.0.0.1:6390/2',
        VNCGATE_PUBLIC_URL: 'https://console.example.com:7443/',
      },
    });
    expect(c.listen).toEqual([
      { host: '::1', port: 7443 },
      { host: '127.0.0.1', port: 7443 },
    ]);
    expect(c.tls?.cert).toEqual(readFileSync(cert));
    expect(c.tls).toMatchObject({ certFile: cert, keyFile: key, watchFiles: true });
    expect(c.raw.redis.url).toBe('redis://127.0.0.1:6390/2');
    expect(c.publicUrl).toBe('https://console.example.com:7443/');
  });

  it('reads VNCGATE_CONFIG, and the environment overrides the file', () => {
    const f = file('a.yaml', `listen: 127.0.0.1:9000\ntls: {plainHttp: true}\nsession: {idleTimeoutMs: 5000}\n`);
    const c = loadConfig({ env: { VNCGATE_CONFIG: f, VNCGATE_LISTEN: '127.0.0.1:9001' } });
    expect(c.source).toBe(f);
    expect(c.listen).toEqual([{ host: '127.0.0.1', port: 9001 }]);
    expect(c.raw.session.idleTimeoutMs).toBe(5000);
  });

  it('reports every problem at once', () => {
    const f = file(
      'bad.yaml',
      [
        'listen: [nonsense]',
        'tls: {minVersion: TLSv1.0}',
        'session: {handshakeTimeoutMs: -5, bogus: 1}',
        'backends:',
        '  profiles:',
        '    bmc: {security: [vncauth]}',
        '    anon: {security: [vencrypt-tlsnone]}',
        '    typo: {security: [vencrypt-x509foo]}',
      ].join('\n'),
    );
    const problems = problemsOf(() => loadConfig({ env: { VNCGATE_CONFIG: f } }));
    const text = problems.join('\n');
    expect(text).toMatch(/tls\.minVersion/);
    expect(text).toMatch(/session\.handshakeTimeoutMs/);
    expect(text).toMatch(/bogus/);
    expect(text).toMatch(/vencrypt-x509foo|profiles\.typo/);
    expect(problems.length).toBeGreaterThanOrEqual(4);
  });

  it('reports semantic problems together too', () => {
    const problems = problemsOf(() =>
      loadConfig({
        env: {},
        overrides: {
          listen: ['nonsense'],
          backends: {
            defaultProfile: 'missing',
            profiles: { bmc: { security: ['vncauth'] }, anon: { security: ['vencrypt-tlsnone'] }, pw: { security: ['vncauth'], passwordFile: '/nonexistent' } },
          },
        },
      }),
    );
    const text = problems.join('\n');
    expect(text).toMatch(/certFile and keyFile are required/);
    expect(text).toMatch(/listen: "nonsense"/);
    expect(text).toMatch(/bmc: security vncauth needs passwordFile/);
    expect(text).toMatch(/anon: .*allowAnonymousTls/);
    expect(text).toMatch(/pw\.passwordFile: cannot read/);
    expect(text).toMatch(/defaultProfile/);
  });

  it('issue 15: compiles backends.allowedTargets, and reports bad entries with the other problems', () => {
    const c = loadConfig({ env: { VNCGATE_ALLOWED_TARGETS: '10.20.0.0/16:5900-5999, [fd00::/8]:5900' }, overrides: { tls: { plainHttp: true } } });
    expect(c.raw.backends.allowedTargets).toEqual(['10.20.0.0/16:5900-5999', '[fd00::/8]:5900']);
    expect(c.targetPolicy.check('10.20.3.4', 5901).allowed).toBe(true);
    expect(c.targetPolicy.check('10.20.3.4', 22).allowed).toBe(false);
    expect(loadConfig({ env: {}, overrides: { tls: { plainHttp: true } } }).targetPolicy.check('127.0.0.1', 5900).allowed).toBe(false);

    const problems = problemsOf(() =>
      loadConfig({ env: {}, overrides: { listen: ['nonsense'], backends: { allowedTargets: ['10.0.0.1/8', '10.0.0.0/8:0', 'bmc.example.org', '::/0'] } } }),
    );
    const text = problems.join('\n');
    expect(text).toMatch(/listen: "nonsense"/);
    expect(text).toMatch(/allowedTargets\[0\].*did you mean 10\.0\.0\.0\/8/);
    expect(text).toMatch(/allowedTargets\[1\]/);
    expect(text).toMatch(/allowedTargets\[2\]/);
    expect(text).not.toMatch(/allowedTargets\[3\]/);
  });

  it('loads profile secrets from files, first line only', () => {
    const pw = file('pw', 'hunter2\nignored\n');
    const c = loadConfig({ env: {}, overrides: { tls: { plainHttp: true }, backends: { profiles: { bmc: { security: ['vncauth'], passwordFile: pw, verifyHostname: false } } } } });
    expect(Buffer.from(c.profiles.get('bmc')!.password!).toString()).toBe('hunter2');
    expect(c.hostnameCheckDisabled).toEqual(['bmc']);
  });

  it('parses listen addresses', () => {
    expect(parseListen('[::]:6080')).toEqual({ host: '::', port: 6080 });
    expect(parseListen(':6080')).toEqual({ host: '0.0.0.0', port: 6080 });
    expect(parseListen('::1:6080')).toBeNull();
    expect(parseListen('host:99999')).toBeNull();
  });
});

describe('one pass, with suggestions (issue 16)', () => {
  it('reports schema problems and the checks after them together', () => {
    const problems = problemsOf(() =>
      loadConfig({
        env: {},
        overrides: {
          tls: { certFile: join(dir, 'missing.crt'), keyFile: key },
          session: { idelTimeoutMs: 5, maxSessions: 'many' },
          backends: { defaultProfile: 'nope' },
        },
      }),
    );
    expect(problems.some((p) => p.includes('session: unknown option "idelTimeoutMs" (did you mean "idleTimeoutMs"?)'))).toBe(true);
    expect(problems.some((p) => p.startsWith('session.maxSessions:'))).toBe(true);
    expect(problems.some((p) => p.startsWith('tls.certFile: cannot read'))).toBe(true);
    expect(problems.some((p) => p.startsWith('backends.defaultProfile: no profile named "nope"'))).toBe(true);
  });

  it('refuses a profile that is both shared and recorded (a shared console is not recorded)', () => {
    const profiles = { kvm: { security: ['none'], sharing: true, record: true } };
    const problems = problemsOf(() => loadConfig({ env: {}, overrides: { tls: { plainHttp: true }, recordings: { dir: dir }, backends: { profiles } } }));
    expect(problems).toEqual([expect.stringContaining('record and sharing cannot both be on')]);
  });

  it('suggests nothing for a key that resembles no option', () => {
    const problems = problemsOf(() => loadConfig({ env: {}, overrides: { tls: { plainHttp: true }, zzzzqqqq: 1 } }));
    expect(problems).toEqual(['(top level): unknown option "zzzzqqqq"']);
  });

  it("purpose 'tokens' reads no listener, JWT or OpenStack files", () => {
    const c = loadConfig({
      env: {},
      purpose: 'tokens',
      overrides: {
        tls: { certFile: join(dir, 'absent.crt'), keyFile: join(dir, 'absent.key') },
        api: { jwt: { hs256SecretFile: join(dir, 'absent.secret') } },
        ironic: { url: 'http://ironic.test:6385', auth: 'http_basic', username: 'u', passwordFile: join(dir, 'absent.pw') },
        backends: { profiles: { bmc: { security: ['vncauth'], passwordFile: join(dir, 'absent.vnc') } } },
      },
    });
    expect(c.tls).toBeNull();
    expect(c.profiles.has('bmc')).toBe(true);
    // The same configuration fails for serving, naming each file.
    const problems = problemsOf(() => loadConfig({ env: {}, overrides: { tls: { certFile: join(dir, 'absent.crt'), keyFile: join(dir, 'absent.key') }, api: { jwt: { hs256SecretFile: join(dir, 'absent.secret') } } } }));
    expect(problems.filter((p) => p.includes('cannot read')).length).toBeGreaterThanOrEqual(3);
  });
});

describe('issue 16: api.jwt.hs256SecretFile holds the secret on its first line only', () => {
  const secretLine = 's3cret-for-the-token-api-0123456789abcdef';
  const load = (text: string) =>
    loadConfig({
      env: {},
      overrides: { tls: { plainHttp: true }, api: { jwt: { hs256SecretFile: file(`jwt-${text.length}`, text), issuer: 'ops', audience: 'vncgate' } } },
    });
  const sign = (key: string | Uint8Array) =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('ops')
      .setAudience('vncgate')
      .setExpirationTime('2m')
      .sign(typeof key === 'string' ? new TextEncoder().encode(key) : key);

  it('uses the bytes before the first LF (a trailing CR dropped); later lines are ignored', () => {
    for (const text of [`${secretLine}\n`, `${secretLine}\r\n`, `${secretLine}\nsecond line\n`, secretLine]) {
      expect(Buffer.from(load(text).jwt!.hs256Secret!).toString('utf8')).toBe(secretLine);
    }
  });

  it('a JWT signed with the first line is accepted; one signed with the whole file, newline included, gets 401', async () => {
    const text = `${secretLine}\n`;
    const verify = createJwtVerifier(load(text).jwt!);
    await expect(verify(`Bearer ${await sign(secretLine)}`)).resolves.toMatchObject({ iss: 'ops' });
    await expect(verify(`Bearer ${await sign(text)}`)).rejects.toMatchObject({ code: 'HTTP_ERR_UNAUTHORIZED', httpStatus: 401 });
  });

  it('the 32-byte minimum applies to the first line, not to the file', () => {
    const problems = problemsOf(() => load(`short\n${'x'.repeat(64)}\n`));
    expect(problems.some((p) => p.startsWith('api.jwt.hs256SecretFile'))).toBe(true);
  });
});
