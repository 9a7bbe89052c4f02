import { createServer } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VncgateError } from '../../src/errors.js';
import { KeystoneSession, findEndpoint, isKeystoneTransient, type KeystoneCredentials } from '../../src/openstack/index.js';
import { APP_CRED, startFakeKeystone, type FakeKeystone } from './fake-keystone.js';

let keystone: FakeKeystone;
beforeEach(async () => {
  keystone = await startFakeKeystone([
    { type: 'compute', endpoints: [{ interface: 'internal', region: 'R1', url: 'http://nova.invalid/v2.1/' }] },
    { type: 'baremetal', endpoints: [{ interface: 'internal', region: 'R1', url: 'http://ironic.invalid' }] },
  ]);
});
afterEach(async () => keystone.close());

function session(extra: Partial<KeystoneCredentials> = {}): KeystoneSession {
  return new KeystoneSession({
    authUrl: keystone.authUrl,
    interface: 'internal',
    region: 'R1',
    serviceType: 'compute',
    timeoutMs: 2_000,
    method: 'application_credential',
    applicationCredentialId: APP_CRED.id,
    applicationCredentialSecret: APP_CRED.secret,
    ...extra,
  } as KeystoneCredentials);
}

async function failure(p: Promise<unknown>): Promise<VncgateError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VncgateError);
  return err as VncgateError;
}

describe('KeystoneSession', () => {
  it('issues one token for concurrent callers, reuses it, and takes the endpoint from the catalog', async () => {
    const s = session();
    const [a, b] = await Promise.all([s.get(), s.get()]);
    expect(a).toEqual(b);
    expect(a.endpoint).toBe('http://nova.invalid/v2.1');
    await s.get();
    expect(keystone.issued).toBe(1);
    s.invalidate();
    expect((await s.get()).token).toBe('tok-2');
  });

  it('reports the time of each token request under the keystone label', async () => {
    const seen: [string, boolean][] = [];
    await session({ observe: (service, _s, ok) => seen.push([service, ok]) }).get();
    expect(seen).toEqual([['keystone', true]]);
  });

  // issue 16: every Keystone failure carries a KEYSTONE_ERR_* code, whichever service wanted the token.
  it('issue 16: its failures name Keystone, for the compute and the bare-metal service alike', async () => {
    for (const serviceType of ['compute', 'baremetal']) {
      expect((await failure(session({ serviceType, applicationCredentialSecret: 'wrong' }).get())).code).toBe('KEYSTONE_ERR_AUTH');
      keystone.failNext(1, 503);
      const e = await failure(session({ serviceType }).get());
      expect(e.code).toBe('KEYSTONE_ERR_SERVER');
      expect(isKeystoneTransient(e)).toBe(true);
      keystone.failNext(1, 'no-token');
      expect((await failure(session({ serviceType }).get())).code).toBe('KEYSTONE_ERR_BAD_RESPONSE');
      expect((await failure(session({ serviceType, region: 'R9' }).get())).code).toBe('KEYSTONE_ERR_NO_ENDPOINT');
      keystone.failNext(1, 'hang');
      const t = await failure(session({ serviceType, timeoutMs: 300 }).get());
      expect(t.code).toBe('KEYSTONE_ERR_TIMEOUT');
      expect(isKeystoneTransient(t)).toBe(true);
    }
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const u = await failure(session({ authUrl: `http://127.0.0.1:${port}/v3` }).get());
    expect(u.code).toBe('KEYSTONE_ERR_UNREACHABLE');
    expect(isKeystoneTransient(u)).toBe(true);
    expect(isKeystoneTransient(new VncgateError('KEYSTONE_ERR_AUTH', 'x'))).toBe(false);
  });

  it('a failed token request is not cached: the next call asks again', async () => {
    const s = session();
    keystone.failNext(1, 500);
    await failure(s.get());
    expect((await s.get()).endpoint).toBe('http://nova.invalid/v2.1');
    expect(keystone.requests).toBe(2);
  });
});

describe('findEndpoint', () => {
  const catalog = [
    { type: 'compute', endpoints: [{ interface: 'internal', region: 'R1', url: 'http://nova.invalid' }] },
    {
      type: 'baremetal',
      endpoints: [
        { interface: 'public', region: 'R1', url: 'http://public.invalid' },
        { interface: 'internal', region_id: 'R2', url: 'http://other-region.invalid' },
        { interface: 'internal', region: 'R1', url: 'http://ironic.invalid//' },
      ],
    },
  ];

  it('matches type, interface and region (or region_id), trailing slashes dropped', () => {
    expect(findEndpoint(catalog, 'baremetal', 'internal', 'R1')).toBe('http://ironic.invalid');
    expect(findEndpoint(catalog, 'baremetal', 'internal', 'R2')).toBe('http://other-region.invalid');
    expect(findEndpoint(catalog, 'baremetal', 'internal', null)).toBe('http://other-region.invalid');
    expect(findEndpoint(catalog, 'baremetal', 'admin', null)).toBeNull();
    expect(findEndpoint(catalog, 'image', 'internal', null)).toBeNull();
  });
});
