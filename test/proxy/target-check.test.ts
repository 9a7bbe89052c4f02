import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBackend } from '../../src/proxy/backend-connector.js';
import { allowedAddresses, type LookupAll, type ResolvedAddress } from '../../src/proxy/target-check.js';
import { compileTargetPolicy, type TargetPolicy } from '../../src/target-policy.js';
import { rejectionCode } from '../tokens/expect-code.js';
import { startTinyVncServer } from '../support/tiny-vnc-server.js';

function policy(...entries: string[]): TargetPolicy {
  const r = compileTargetPolicy(entries);
  if (!r.ok) throw new Error(r.problems.join('\n'));
  return r.policy;
}

/** A resolver that answers from a table and counts its calls; names not in it do not exist. */
function fakeDns(table: Record<string, readonly string[] | (() => readonly string[])>): LookupAll & { calls: string[] } {
  const calls: string[] = [];
  const lookup = async (host: string): Promise<readonly ResolvedAddress[]> => {
    calls.push(host);
    const entry = table[host];
    if (entry === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    const list = typeof entry === 'function' ? entry() : entry;
    return list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return Object.assign(lookup, { calls });
}

const never: LookupAll = () => new Promise(() => undefined);

describe('allowedAddresses', () => {
  const dflt = policy('0.0.0.0/0', '::/0');
  const opts = (lookup: LookupAll, p = dflt) => ({ policy: p, timeoutMs: 5_000, lookup });

  it('checks a literal without resolving it', async () => {
    const dns = fakeDns({});
    expect(await allowedAddresses('10.0.0.7', 5900, opts(dns))).toEqual([{ address: '10.0.0.7', family: 4 }]);
    expect(await rejectionCode(allowedAddresses('127.0.0.1', 5900, opts(dns)))).toBe('TARGET_ERR_FORBIDDEN');
    expect(await rejectionCode(allowedAddresses('::ffff:169.254.169.254', 80, opts(dns)))).toBe('TARGET_ERR_FORBIDDEN');
    expect(dns.calls).toEqual([]);
  });

  it('resolves a name and returns every address when all are allowed', async () => {
    const dns = fakeDns({ 'bmc.test': ['10.0.0.7', 'fd00::7'] });
    expect(await allowedAddresses('bmc.test', 5900, opts(dns))).toHaveLength(2);
  });

  it('refuses a name when any one of its addresses is refused', async () => {
    const dns = fakeDns({ 'two-faced.test': ['10.0.0.7', '169.254.169.254'] });
    expect(await rejectionCode(allowedAddresses('two-faced.test', 80, opts(dns)))).toBe('TARGET_ERR_FORBIDDEN');
  });

  it('refuses numeric spellings of loopback that only the resolver understands', async () => {
    // getaddrinfo reads "127.1" and "2130706433" as 127.0.0.1; parseTarget lets them through as names.
    const real = await allowedAddresses('localhost', 80, { policy: policy('127.0.0.0/8'), timeoutMs: 5_000 });
    expect(real.map((a) => a.address)).toContain('127.0.0.1');
    for (const name of ['127.1', '2130706433', 'localhost']) {
      expect(await rejectionCode(allowedAddresses(name, 80, { policy: dflt, timeoutMs: 5_000 })), name).toBe('TARGET_ERR_FORBIDDEN');
    }
  });

  it('a name that does not resolve, or resolves to nothing, is BACKEND_ERR_DNS', async () => {
    expect(await rejectionCode(allowedAddresses('nx.test', 80, opts(fakeDns({}))))).toBe('BACKEND_ERR_DNS');
    expect(await rejectionCode(allowedAddresses('empty.test', 80, opts(fakeDns({ 'empty.test': [] }))))).toBe('BACKEND_ERR_DNS');
  });

  it('the lookup has a deadline and follows the abort signal', async () => {
    expect(await rejectionCode(allowedAddresses('slow.test', 80, { policy: dflt, timeoutMs: 50, lookup: never }))).toBe('BACKEND_ERR_TIMEOUT');
    const abort = new AbortController();
    const pending = allowedAddresses('slow.test', 80, { policy: dflt, timeoutMs: 60_000, lookup: never, signal: abort.signal });
    abort.abort();
    expect(await rejectionCode(pending)).toBe('SESSION_ERR_SHUTDOWN');
  });
});

describe('connectBackend with a target policy', () => {
  let backend: Awaited<ReturnType<typeof startTinyVncServer>>;
  let accepted = 0;
  beforeAll(async () => {
    backend = await startTinyVncServer({ name: 'policy-desk' });
    backend.server.on('connection', () => (accepted += 1));
  });
  afterAll(async () => {
    await backend.close();
  });

  const connect = (host: string, p: TargetPolicy | null, lookup?: LookupAll) =>
    connectBackend({
      host,
      port: backend.port,
      security: { security: ['none'] },
      connectTimeoutMs: 5_000,
      handshakeTimeoutMs: 5_000,
      policy: p,
      ...(lookup ? { lookup } : {}),
    });

  it('dials exactly the addresses it checked (the name itself exists in no DNS)', async () => {
    const dns = fakeDns({ 'console.test': ['127.0.0.1'] });
    const conn = await connect('console.test', policy('127.0.0.0/8'), dns);
    expect(conn.remote.address).toBe('127.0.0.1');
    expect(dns.calls).toEqual(['console.test']);
    conn.socket.destroy();
  });

  it('issue 15: a name re-pointed at loopback after the token was issued is refused at connect time', async () => {
    // Issue time: the name resolves into the BMC network. Connect time: to loopback (DNS rebinding).
    let answer = ['10.20.0.7'];
    const dns = fakeDns({ 'bmc.test': () => answer });
    const bmcOnly = policy('10.20.0.0/16');
    expect(await allowedAddresses('bmc.test', backend.port, { policy: bmcOnly, timeoutMs: 5_000, lookup: dns })).toHaveLength(1);
    answer = ['127.0.0.1'];
    const before = accepted;
    expect(await rejectionCode(connect('bmc.test', bmcOnly, dns))).toBe('TARGET_ERR_FORBIDDEN');
    // Refused before any connection: the backend never saw one.
    await new Promise((r) => setTimeout(r, 50));
    expect(accepted).toBe(before);
  });

  it('literals are checked too, mapped forms included', async () => {
    for (const host of ['127.0.0.1', '::ffff:127.0.0.1', '[::ffff:127.0.0.1]']) {
      expect(await rejectionCode(connect(host, policy('0.0.0.0/0', '::/0'))), host).toBe('TARGET_ERR_FORBIDDEN');
    }
  });

  it('without a policy (Ironic and Nova endpoints) nothing changes', async () => {
    const conn = await connect('localhost', null);
    expect(conn.info.version).toBeDefined();
    conn.socket.destroy();
  });
});
