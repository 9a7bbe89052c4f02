import { createServer } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VncgateError } from '../../src/errors.js';
import { ERROR_CODES, type ErrorCode } from '../../src/errors.js';
import { IronicClient, IronicNodeResolver, parseIronicConsoleUrl, secretEquals } from '../../src/ironic/index.js';
import { KeystoneSession } from '../../src/openstack/index.js';
import type { BackendSecurity } from '../../src/target.js';
import { APP_CRED, startFakeKeystone, type FakeKeystone } from '../openstack/fake-keystone.js';
import { startFakeIronic, type FakeIronic } from './fake-ironic.js';

const profiles = new Map<string, BackendSecurity>([
  ['none', { security: ['none'] }],
  ['bmc', { security: ['vncauth'], password: Buffer.from('x') }],
  ['redfish', { security: ['vencrypt-x509none'] }],
]);
const rules = { defaultProfile: 'none', byNode: {}, byConsoleInterface: {}, byDriver: {} };
const signal = new AbortController().signal;

async function codeOf(p: Promise<unknown>): Promise<VncgateError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(VncgateError);
    return err as VncgateError;
  }
  throw new Error('expected a rejection');
}

let ironic: FakeIronic;
beforeEach(async () => {
  ironic = await startFakeIronic();
});
afterEach(async () => ironic.close());

function client(extra: Partial<ConstructorParameters<typeof IronicClient>[0]> = {}): IronicClient {
  return new IronicClient({ url: ironic.url, auth: { type: 'none' }, timeoutMs: 2_000, retries: 2, ...extra });
}

describe('IronicClient', () => {
  it('reads the console state with microversion 1.5 and node fields with 1.31', async () => {
    const node = ironic.addNode({ name: 'rack1-node7', vncPort: 5907 });
    const c = client();
    const state = await c.getConsole('rack1-node7');
    expect(state.enabled).toBe(true);
    expect(state.info?.type).toBe('vnc');
    expect(parseIronicConsoleUrl(state.info!.url!)).toEqual({ node: node.uuid, token: node.token });
    const f = await c.getNodeConsoleFields(node.uuid);
    expect(f).toMatchObject({ uuid: node.uuid, name: 'rack1-node7', vncHost: '127.0.0.1', vncPort: 5907, consoleInterface: 'fake-graphical' });
    expect(ironic.requests[0]!.headers['x-openstack-ironic-api-version']).toBe('1.5');
    expect(ironic.requests[1]!.headers['x-openstack-ironic-api-version']).toBe('1.31');
    expect(ironic.requests[1]!.url).toContain('fields=');
  });

  it('maps 404 to IRONIC_ERR_NODE_NOT_FOUND and refuses malformed idents without a request', async () => {
    expect((await codeOf(client().getConsole('no-such-node'))).code).toBe('IRONIC_ERR_NODE_NOT_FOUND');
    const n = ironic.requests.length;
    expect((await codeOf(client().getConsole('../../etc/passwd'))).code).toBe('IRONIC_ERR_NODE_NOT_FOUND');
    expect(ironic.requests.length).toBe(n);
  });

  it('retries GETs after a 5xx, not PUTs', async () => {
    const node = ironic.addNode({});
    ironic.failNext(2, 503);
    expect((await client().getConsole(node.uuid)).enabled).toBe(true);
    expect(ironic.requests).toHaveLength(3);
    ironic.failNext(3, 500);
    expect((await codeOf(client().getConsole(node.uuid))).code).toBe('IRONIC_ERR_SERVER');
    ironic.failNext(1, 500);
    expect((await codeOf(client().setConsole(node.uuid, false))).code).toBe('IRONIC_ERR_SERVER');
  });

  it('bounds every call: a hung API gives IRONIC_ERR_TIMEOUT, a closed port IRONIC_ERR_UNREACHABLE', async () => {
    const node = ironic.addNode({});
    ironic.failNext(10, 'hang');
    const t0 = Date.now();
    expect((await codeOf(client({ timeoutMs: 200, retries: 1 }).getConsole(node.uuid))).code).toBe('IRONIC_ERR_TIMEOUT');
    expect(Date.now() - t0).toBeLessThan(3_000);
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    expect((await codeOf(new IronicClient({ url: `http://127.0.0.1:${port}`, auth: { type: 'none' }, timeoutMs: 500, retries: 0 }).getConsole('x'))).code).toBe(
      'IRONIC_ERR_UNREACHABLE',
    );
  });

  it('sends HTTP basic credentials', async () => {
    await ironic.close();
    ironic = await startFakeIronic({ requireAuth: (h) => h.authorization === `Basic ${Buffer.from('vncgate:s3cret').toString('base64')}` });
    const node = ironic.addNode({});
    expect((await client({ auth: { type: 'http_basic', username: 'vncgate', password: 's3cret' } }).getConsole(node.uuid)).enabled).toBe(true);
    expect((await codeOf(client({ auth: { type: 'http_basic', username: 'vncgate', password: 'wrong' } }).getConsole(node.uuid))).code).toBe('IRONIC_ERR_AUTH');
  });

  it('uses a Keystone token and the catalog endpoint, caches it, and re-authenticates after a 401', async () => {
    const keystone = await startFakeKeystone([]);
    await ironic.close();
    ironic = await startFakeIronic({ requireAuth: (h) => keystone.isValid(h['x-auth-token']) });
    const node = ironic.addNode({});
    keystone.catalog.push(
      { type: 'compute', endpoints: [{ interface: 'internal', region: 'R1', url: 'http://nova.invalid' }] },
      {
        type: 'baremetal',
        endpoints: [
          { interface: 'public', region: 'R1', url: 'http://public.invalid' },
          { interface: 'internal', region: 'R2', url: 'http://other-region.invalid' },
          { interface: 'internal', region: 'R1', url: `${ironic.url}/` },
        ],
      },
    );
    try {
      const c = keystoneClient(keystone, APP_CRED.secret, 1);
      await c.getConsole(node.uuid);
      await c.getConsole(node.uuid);
      expect(keystone.issued).toBe(1);
      keystone.revokeAll(); // the next call gets a 401 from Ironic, re-authenticates once
      await c.getConsole(node.uuid);
      expect(keystone.issued).toBe(2);
      // Even without retries, and for a PUT: a 401 means nothing was done, so it is sent again.
      const once = keystoneClient(keystone, APP_CRED.secret, 0);
      await once.getConsole(node.uuid);
      keystone.revokeAll();
      await once.setConsole(node.uuid, true);
      expect(keystone.issued).toBe(4);
      expect(ironic.requests.filter((q) => q.method === 'PUT').map((q) => keystone.isValid(q.headers['x-auth-token']))).toEqual([false, true]);
    } finally {
      await keystone.close();
    }
  });

  it('issue 16: a Keystone failure on the Ironic path names Keystone, not the bare-metal service', async () => {
    const keystone = await startFakeKeystone([{ type: 'baremetal', endpoints: [{ interface: 'internal', region: 'R1', url: ironic.url }] }]);
    let ironicRefuses = false; // as when vncgate's user lacks the role: Keystone is fine, Ironic says 401
    await ironic.close();
    ironic = await startFakeIronic({ requireAuth: (h) => !ironicRefuses && keystone.isValid(h['x-auth-token']) });
    keystone.catalog[0]!.endpoints[0]!.url = ironic.url;
    const node = ironic.addNode({});
    const reasonOf = (code: ErrorCode): string => ERROR_CODES[code].reason;
    try {
      const refused = await codeOf(keystoneClient(keystone, 'wrong', 2).getConsole(node.uuid));
      expect(refused.code).toBe('KEYSTONE_ERR_AUTH');
      expect(refused.publicReason).toBe(reasonOf('KEYSTONE_ERR_AUTH'));
      expect(refused.publicReason).not.toBe(reasonOf('IRONIC_ERR_AUTH'));
      expect(keystone.requests).toBe(1); // refused credentials are not retried
      // A Keystone hiccup (5xx, no answer) is retried like Ironic's own; past the retries it names Keystone.
      keystone.failNext(1, 503);
      expect((await keystoneClient(keystone, APP_CRED.secret, 1).getConsole(node.uuid)).enabled).toBe(true);
      keystone.failNext(2, 503);
      expect((await codeOf(keystoneClient(keystone, APP_CRED.secret, 1).getConsole(node.uuid))).code).toBe('KEYSTONE_ERR_SERVER');
      keystone.catalog.length = 0;
      expect((await codeOf(keystoneClient(keystone, APP_CRED.secret, 0).getConsole(node.uuid))).code).toBe('KEYSTONE_ERR_NO_ENDPOINT');
      // Ironic's own refusal of a valid Keystone token is still Ironic's.
      keystone.catalog.push({ type: 'baremetal', endpoints: [{ interface: 'internal', region: 'R1', url: ironic.url }] });
      ironicRefuses = true;
      expect((await codeOf(keystoneClient(keystone, APP_CRED.secret, 1).getConsole(node.uuid))).code).toBe('IRONIC_ERR_AUTH');
    } finally {
      await keystone.close();
    }
  });
});

function keystoneClient(keystone: FakeKeystone, secret: string, retries: number): IronicClient {
  const session = new KeystoneSession({
    authUrl: keystone.authUrl,
    interface: 'internal',
    region: 'R1',
    serviceType: 'baremetal',
    timeoutMs: 2_000,
    method: 'application_credential',
    applicationCredentialId: APP_CRED.id,
    applicationCredentialSecret: secret,
  });
  return new IronicClient({ url: null, auth: { type: 'keystone', session }, timeoutMs: 2_000, retries });
}

describe('IronicNodeResolver', () => {
  const resolver = (autoEnable = false, extraRules = {}) =>
    new IronicNodeResolver(client(), { autoEnable, enableTimeoutMs: 2_000, rules: { ...rules, ...extraRules }, profiles });

  it('resolves an enabled graphical console to vnc_host/vnc_port, brackets stripped', async () => {
    const node = ironic.addNode({ vncHost: '[fd00::17]', vncPort: 5917 });
    const r = await resolver().resolve(node.uuid, signal);
    expect(r).toMatchObject({ host: 'fd00::17', port: 5917, profile: 'none', uuid: node.uuid, label: `node ${node.uuid} ([fd00::17]:5917)` });
  });

  it('picks the profile by node, then console interface, then driver, then default', async () => {
    const a = ironic.addNode({ name: 'special', consoleInterface: 'redfish-graphical', driver: 'redfish' });
    const b = ironic.addNode({ consoleInterface: 'redfish-graphical', driver: 'redfish' });
    const c = ironic.addNode({ driver: 'redfish' });
    const d = ironic.addNode({});
    const r = resolver(false, { byNode: { special: 'bmc' }, byConsoleInterface: { 'redfish-graphical': 'redfish' }, byDriver: { redfish: 'bmc' } });
    expect((await r.resolve(a.uuid, signal)).profile).toBe('bmc');
    expect((await r.resolve(b.uuid, signal)).profile).toBe('redfish');
    expect((await r.resolve(c.uuid, signal)).profile).toBe('bmc');
    expect((await r.resolve(d.uuid, signal)).profile).toBe('none');
  });

  it('a disabled console is refused with a reason naming the node, or enabled when configured', async () => {
    const node = ironic.addNode({ name: 'n1', consoleEnabled: false });
    const e = await codeOf(resolver().resolve('n1', signal));
    expect(e.code).toBe('IRONIC_ERR_CONSOLE_DISABLED');
    expect(e.publicReason).toContain('n1');
    const r = await resolver(true).resolve('n1', signal);
    expect(r.uuid).toBe(node.uuid);
    expect(ironic.requests.some((q) => q.method === 'PUT' && q.body === '{"enabled":true}')).toBe(true);
  });

  it('an enable that never completes fails within the deadline', async () => {
    await ironic.close();
    ironic = await startFakeIronic({ enableDelayMs: 60_000 });
    ironic.addNode({ name: 'slow', consoleEnabled: false });
    const r = new IronicNodeResolver(client(), { autoEnable: true, enableTimeoutMs: 1_000, rules, profiles });
    const t0 = Date.now();
    expect((await codeOf(r.resolve('slow', signal))).code).toBe('IRONIC_ERR_ENABLE_FAILED');
    expect(Date.now() - t0).toBeLessThan(3_000);
  });

  it('a serial (socat) console or no-console gets a reason naming the node and what to change', async () => {
    ironic.addNode({ name: 'serial1', consoleInterface: 'ipmitool-socat', consoleType: 'socat' });
    const e = await codeOf(resolver().resolve('serial1', signal));
    expect(e.code).toBe('IRONIC_ERR_CONSOLE_TYPE');
    expect(e.publicReason).toMatch(/serial1.*socat.*graphical console_interface/);
    ironic.addNode({ name: 'none1', consoleInterface: 'no-console', consoleType: null, consoleEnabled: false });
    for (const auto of [false, true]) {
      const e2 = await codeOf(resolver(auto).resolve('none1', signal));
      expect(e2.code).toBe('IRONIC_ERR_CONSOLE_TYPE');
      expect(e2.publicReason).toMatch(/none1 has no console \(console_interface no-console\)/);
    }
  });

  it('an enabled console without vnc_host yet is IRONIC_ERR_NO_ENDPOINT', async () => {
    const node = ironic.addNode({ vncHost: null, vncPort: null });
    expect((await codeOf(resolver().resolve(node.uuid, signal))).code).toBe('IRONIC_ERR_NO_ENDPOINT');
  });

  it("Ironic's own token: the current one is accepted, a stale or wrong one refused", async () => {
    const node = ironic.addNode({});
    const r = resolver();
    expect((await r.resolveWithIronicToken(node.uuid, node.token, signal)).port).toBe(5901);
    const old = node.token;
    await client().setConsole(node.uuid, false);
    await new Promise((res) => setTimeout(res, 100));
    expect((await codeOf(r.resolveWithIronicToken(node.uuid, old, signal))).code).toBe('TOKEN_ERR_INVALID');
    await client().setConsole(node.uuid, true);
    await new Promise((res) => setTimeout(res, 100));
    expect(node.token).not.toBe(old);
    expect((await codeOf(r.resolveWithIronicToken(node.uuid, old, signal))).code).toBe('TOKEN_ERR_INVALID');
    expect((await r.resolveWithIronicToken(node.uuid, node.token, signal)).uuid).toBe(node.uuid);
    expect((await codeOf(r.resolveWithIronicToken(node.uuid, `${node.token}x`, signal))).code).toBe('TOKEN_ERR_INVALID');
  });
});

describe('helpers', () => {
  it('parses Ironic console URLs', () => {
    expect(parseIronicConsoleUrl('http://h:6090/vnc_lite.html?path=websockify%3Fnode%3Dabc%26token%3Dxyz')).toEqual({ node: 'abc', token: 'xyz' });
    expect(parseIronicConsoleUrl('http://h/vnc.html')).toBeNull();
    expect(parseIronicConsoleUrl('not a url')).toBeNull();
  });

  it('compares secrets exactly', () => {
    expect(secretEquals('abc', 'abc')).toBe(true);
    expect(secretEquals('abc', 'abd')).toBe(false);
    expect(secretEquals('abc', 'abcd')).toBe(false);
  });
});
