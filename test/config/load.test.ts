import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureDevCertificate } from '../../src/cli/dev-cert.js';
import { loadConfig, parseListen } from '../../src/config/index.js';
import { VncgateError } from '../../src/errors.js';

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
