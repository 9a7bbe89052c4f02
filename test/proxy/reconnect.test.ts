import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/index.js';
import { VncgateError } from '../../src/errors.js';
import { authorizeRequest, TargetResolvers } from '../../src/proxy/authorization/index.js';
import { authorizeGrant, grantPolicy } from '../../src/proxy/reconnect-authorize.js';
import { leavesGrant, pageKeyFrom, ReconnectGrants, SessionGrant } from '../../src/proxy/reconnect.js';
import { tokenResult } from '../../src/proxy/session-events.js';
import type { ClientMessagePolicy } from '../../src/rfb/index.js';
import type { Authorized } from '../../src/target.js';
import { generateGrant, MemoryTokenStore } from '../../src/tokens/index.js';
import { rejectionCode } from '../tokens/expect-code.js';

/** Reconnect grants from the authorization to the next session, with the memory store (issue 18 item 3). */
const log = pino({ level: 'silent' });
const TARGET = { kind: 'static', host: '10.0.0.5', port: 5900 } as const;

function setup(overrides: Record<string, unknown> = {}) {
  const config: Config = loadConfig({
    env: {},
    overrides: { listen: ['127.0.0.1:0'], tls: { plainHttp: true }, log: { level: 'silent' }, limits: { invalidTokensPerMinute: 2 }, ...overrides },
  });
  const tokens = new MemoryTokenStore();
  const resolvers = new TargetResolvers(config, null);
  const grants = ReconnectGrants.for(config, tokens.grants)!;
  const deps = { config, tokens, resolvers, nova: null, reconnect: grants };
  let n = 0;
  const signal = new AbortController().signal;

  /** A session of `authorized` on a page with `key` at `remote`: the grant it is sent (once minted), its end, and whether it was ended by a reconnect. */
  async function run(authorized: Authorized, page: { key: string | null; remote?: string; negotiated?: boolean }) {
    const id = `session-${++n}`;
    let sent: (g: string) => void = () => undefined;
    const grant = new Promise<string>((resolve) => (sent = resolve));
    const ends: VncgateError[] = [];
    const sg = new SessionGrant(grants, { key: page.key, remote: page.remote ?? '192.0.2.1' });
    sg.attach(id, (e) => ends.push(e), {
      negotiated: page.negotiated ?? true,
      send: (m) => {
        sent(String(m['grant']));
        return true;
      },
    });
    sg.authorized(authorized, log);
    return { id, grant, ends, end: (error: VncgateError | null, by: 'browser' | 'backend' | 'vncgate', code?: number) => sg.ended(error, by, code), reconnectOf: sg.reconnectOf };
  }

  const open = async (remote = '192.0.2.1') => {
    const issued = await tokens.issue(TARGET, 60);
    return authorizeRequest(new URLSearchParams(`token=${issued.token}`), undefined, deps, remote)(signal, `session-${++n}`);
  };
  const reconnect = (grant: string, key: string | null, remote = '192.0.2.1') => authorizeGrant(grant, key, remote, deps, grants)(signal, `session-${++n}`);
  return { config, tokens, grants, run, open, reconnect };
}

/** Lets the store's promise callbacks run (the memory store answers within a tick or two). */
const settle = () => new Promise((r) => setImmediate(r));
const drop = () => new VncgateError('SESSION_ERR_HEARTBEAT', 'browser missed a pong');

describe('which ends leave a grant', () => {
  it('drops do; policy ends and deliberate closes do not', () => {
    expect(leavesGrant(null, 'browser', 1006)).toBe(true);
    expect(leavesGrant(new VncgateError('SESSION_ERR_HEARTBEAT', 'x'), 'vncgate', undefined)).toBe(true);
    expect(leavesGrant(new VncgateError('SESSION_ERR_SHUTDOWN', 'x'), 'vncgate', undefined)).toBe(true);
    expect(leavesGrant(new VncgateError('SESSION_ERR_BACKEND_CLOSED', 'x'), 'backend', undefined)).toBe(true);
    // The endpoint restarting: refused or silent before piping.
    expect(leavesGrant(new VncgateError('BACKEND_ERR_REFUSED', 'x'), 'vncgate', undefined)).toBe(true);
    expect(leavesGrant(new VncgateError('SESSION_ERR_HANDSHAKE_TIMEOUT', 'x'), 'vncgate', undefined)).toBe(true);
    expect(leavesGrant(new VncgateError('RFB_ERR_AUTH_FAILED', 'x'), 'vncgate', undefined)).toBe(false);
    for (const code of ['SESSION_ERR_IDLE_TIMEOUT', 'SESSION_ERR_MAX_LIFETIME', 'SESSION_ERR_BROWSER_PROTOCOL', 'SESSION_ERR_BROWSER_FLOOD', 'RFB_ERR_CLIENT_PROTOCOL', 'HTTP_ERR_ORIGIN', 'SESSION_ERR_RECONNECTED'] as const) {
      expect(leavesGrant(new VncgateError(code, 'x'), 'vncgate', undefined)).toBe(false);
    }
    expect(leavesGrant(null, 'browser', 1000)).toBe(false);
    expect(leavesGrant(null, 'browser', 1001)).toBe(false);
  });

  it('a refused grant is an invalid link to the token-check metric', () => {
    expect(tokenResult(new VncgateError('RECONNECT_ERR_INVALID', 'x'))).toBe('invalid');
  });

  it('the page key comes from its subprotocol offer, well formed only', () => {
    const k = generateGrant();
    expect(pageKeyFrom(`vncgate.v1, binary, vncgate.key.${k}`)).toBe(k);
    expect(pageKeyFrom('vncgate.v1, binary')).toBeNull();
    expect(pageKeyFrom('vncgate.key.short')).toBeNull();
    expect(pageKeyFrom(undefined)).toBeNull();
  });
});

describe('grant lifecycle', () => {
  it('a dropped session leaves a grant that reopens the console once, from the same page and address', async () => {
    const { run, open, reconnect } = setup();
    const key = generateGrant();
    const first = await run(await open(), { key });
    const grant = await first.grant;
    first.end(null, 'browser', 1006);
    await settle();
    expect(await rejectionCode(reconnect(grant, generateGrant()))).toBe('RECONNECT_ERR_INVALID');
    expect(await rejectionCode(reconnect(grant, key, '198.51.100.9'))).toBe('RECONNECT_ERR_INVALID');
    const again = await reconnect(grant, key);
    expect(again.target.host).toBe('10.0.0.5');
    expect(again.reconnectable).toMatchObject({ reconnects: 1, reconnectOf: first.id });
    expect(await rejectionCode(reconnect(grant, key))).toBe('RECONNECT_ERR_INVALID');
    // The reconnected session gets a fresh grant of its own, and says whose reconnect it is.
    const second = await run(again, { key });
    expect(second.reconnectOf).toBe(first.id);
    const next = await second.grant;
    expect(next).not.toBe(grant);
    second.end(drop(), 'vncgate');
    await settle();
    await expect(reconnect(next, key)).resolves.toMatchObject({ reconnectable: { reconnects: 2 } });
  });

  it('the first session\'s view-only and clipboard policy comes back with the reconnect, never wider', async () => {
    const { run, open, reconnect } = setup();
    const key = generateGrant();
    const policy = { viewOnly: true, clipboard: 'to-browser', maxClipboardBytes: Infinity };
    const s = await run({ ...(await open()), policy: policy as ClientMessagePolicy }, { key });
    const grant = await s.grant;
    s.end(drop(), 'vncgate');
    await settle();
    const again = await reconnect(grant, key);
    expect(again.policy).toMatchObject({ viewOnly: true, clipboard: 'to-browser' });
  });

  it('a grant\'s policy is the profile\'s narrowed by the stored one; unreadable parts narrow', () => {
    const { config } = setup();
    const target = { host: '10.0.0.5', port: 5900, security: { security: ['none' as const] }, profile: 'none', label: 'x' };
    const profile = grantPolicy(config, target, undefined);
    expect(grantPolicy(config, target, { viewOnly: false, clipboard: 'both', maxClipboardBytes: Infinity })).toEqual(profile);
    expect(grantPolicy(config, target, { viewOnly: 'yes', clipboard: 'everything', maxClipboardBytes: -5 })).toMatchObject({ viewOnly: true, clipboard: 'none', maxClipboardBytes: 0 });
    expect(grantPolicy(config, target, { viewOnly: false, clipboard: 'to-remote', maxClipboardBytes: 100 })).toMatchObject({ viewOnly: false, clipboard: 'to-remote', maxClipboardBytes: 100 });
  });

  it('a policy end leaves no grant', async () => {
    const { run, open, reconnect } = setup();
    const key = generateGrant();
    for (const end of [new VncgateError('SESSION_ERR_IDLE_TIMEOUT', 'x'), new VncgateError('SESSION_ERR_BROWSER_PROTOCOL', 'x'), null]) {
      const s = await run(await open(), { key });
      const grant = await s.grant;
      s.end(end, end === null ? 'browser' : 'vncgate', end === null ? 1000 : undefined);
      await settle();
      expect(await rejectionCode(reconnect(grant, key))).toBe('RECONNECT_ERR_INVALID');
    }
  });

  it('bound to the key only (reconnect.bindTo key), a new address with the key works', async () => {
    const { run, open, reconnect } = setup({ reconnect: { bindTo: 'key' } });
    const key = generateGrant();
    const s = await run(await open(), { key });
    const grant = await s.grant;
    s.end(drop(), 'vncgate');
    await settle();
    await expect(reconnect(grant, key, '198.51.100.9')).resolves.toMatchObject({ reconnectable: { reconnects: 1 } });
  });

  it('no grant without the channel or the page key (stock noVNC), none when off', async () => {
    const { run, open, grants } = setup();
    for (const page of [{ key: null }, { key: generateGrant(), negotiated: false }]) {
      const s = await run(await open(), page);
      await settle();
      expect(await Promise.race([s.grant, settle().then(() => 'none')])).toBe('none');
    }
    expect(grants).not.toBeNull();
    const off = loadConfig({ env: {}, overrides: { listen: ['127.0.0.1:0'], tls: { plainHttp: true }, reconnect: { enabled: false } } });
    expect(ReconnectGrants.for(off, new MemoryTokenStore().grants)).toBeNull();
  });

  it('throttled: past reconnect.maxReconnects a session gets no grant', async () => {
    const { run, open, reconnect } = setup({ reconnect: { maxReconnects: 2 } });
    const key = generateGrant();
    let a = await open();
    for (let i = 0; i < 2; i++) {
      const s = await run(a, { key });
      const grant = await s.grant;
      s.end(drop(), 'vncgate');
      await settle();
      a = await reconnect(grant, key);
    }
    const last = await run(a, { key });
    expect(await Promise.race([last.grant, settle().then(() => 'none')])).toBe('none');
  });

  it('a reconnect never outlives the first session: session.maxLifetimeMs counts from the first start', async () => {
    const { run, open, reconnect } = setup({ session: { maxLifetimeMs: 3_600_000 } });
    const key = generateGrant();
    const before = Date.now();
    const s = await run(await open(), { key });
    const grant = await s.grant;
    s.end(drop(), 'vncgate');
    await settle();
    const again = await reconnect(grant, key);
    expect(again.target.expiresAtMs).toBeGreaterThanOrEqual(before + 3_600_000);
    expect(again.target.expiresAtMs).toBeLessThanOrEqual(Date.now() + 3_600_000);
    expect(again.reconnectable?.notAfterMs).toBe(again.target.expiresAtMs);
  });

  it('a grant past its console\'s lifetime is refused', async () => {
    const { grants, reconnect } = setup();
    const key = generateGrant();
    const grant = generateGrant();
    const binding = grants.binding('192.0.2.1', key);
    await grants.store.mint(grant, { version: 1, sessionId: 'old', target: TARGET, notAfterMs: Date.now() - 1, reconnects: 0 }, binding, 60_000);
    expect(await rejectionCode(reconnect(grant, key))).toBe('RECONNECT_ERR_INVALID');
  });

  it('a reconnect while the old session still runs here ends that session (its socket died unnoticed)', async () => {
    const { run, open, reconnect } = setup();
    const key = generateGrant();
    const s = await run(await open(), { key });
    const grant = await s.grant;
    await reconnect(grant, key);
    expect(s.ends.map((e) => e.code)).toEqual(['SESSION_ERR_RECONNECTED']);
  });

  it('a reconnect on another replica ends the old session at its next grant renewal', async () => {
    const { config, tokens, run, open } = setup({ limits: { invalidTokensPerMinute: 2, leaseTtlSeconds: 2 } });
    const key = generateGrant();
    const s = await run(await open(), { key });
    const grant = await s.grant;
    // Another replica: its own ReconnectGrants (no local session to end), the same store.
    const other = ReconnectGrants.for(config, tokens.grants)!;
    const deps = { config, tokens, resolvers: new TargetResolvers(config, null), nova: null, reconnect: other };
    await authorizeGrant(grant, key, '192.0.2.1', deps, other)(new AbortController().signal, 'session-elsewhere');
    expect(s.ends).toEqual([]);
    await expect.poll(() => s.ends.map((e) => e.code), { timeout: 10_000 }).toEqual(['SESSION_ERR_RECONNECTED']);
  });

  it('a one-session lease (Ironic one-session mode) is taken again by the reconnect, waiting briefly for the old holder', async () => {
    const { grants, tokens, reconnect } = setup({ limits: { invalidTokensPerMinute: 2, leaseTtlSeconds: 2 } });
    const key = generateGrant();
    const grant = generateGrant();
    const lease = 'ironic-node:5a1e';
    await grants.store.mint(grant, { version: 1, sessionId: 'old', target: TARGET, notAfterMs: null, reconnects: 0, lease }, grants.binding('192.0.2.1', key), 60_000);
    // Someone else holds the lease throughout: refused, and the grant is put back.
    expect(await tokens.acquireLease(lease, 'someone-else', 60_000)).toBe(true);
    expect(await rejectionCode(reconnect(grant, key))).toBe('SESSION_ERR_BUSY');
    // The old holder lets go while the reconnect waits: it gets the lease.
    const waiting = reconnect(grant, key);
    setTimeout(() => void tokens.releaseLease(lease, 'someone-else'), 300);
    const a = await waiting;
    expect(await tokens.acquireLease(lease, 'third', 60_000)).toBe(false);
    a.release?.();
    await expect.poll(() => tokens.acquireLease(lease, 'third', 60_000)).toBe(true);
  });

  it('bad grants count towards the invalid-link cool-down', async () => {
    const { reconnect } = setup();
    const key = generateGrant();
    for (let i = 0; i < 3; i++) expect(await rejectionCode(reconnect(generateGrant(), key))).toBe('RECONNECT_ERR_INVALID');
    expect(await rejectionCode(reconnect(generateGrant(), key))).toBe('TOKEN_ERR_RATE_LIMITED');
    expect(await rejectionCode(reconnect('not-a-grant', null, '192.0.2.50'))).toBe('RECONNECT_ERR_INVALID');
  });
});
