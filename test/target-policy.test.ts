import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileTargetPolicy, parseIpAddress, parseTargetPolicyEntry, type TargetPolicy } from '../src/target-policy.js';

function policy(...entries: string[]): TargetPolicy {
  const r = compileTargetPolicy(entries);
  if (!r.ok) throw new Error(r.problems.join('\n'));
  return r.policy;
}

const allowed = (p: TargetPolicy, address: string, port: number): boolean => p.check(address, port).allowed;

describe('parseIpAddress', () => {
  it.each<[string, 4 | 6, bigint]>([
    ['0.0.0.0', 4, 0n],
    ['255.255.255.255', 4, 0xffff_ffffn],
    ['10.1.2.3', 4, 0x0a01_0203n],
    ['::', 6, 0n],
    ['::1', 6, 1n],
    ['fe80::1%eth0', 6, (0xfe80n << 112n) | 1n],
    ['2001:db8::8:800:200c:417a', 6, 0x2001_0db8_0000_0000_0008_0800_200c_417an],
    ['1:2:3:4:5:6:7:8', 6, 0x0001_0002_0003_0004_0005_0006_0007_0008n],
    ['::1.2.3.4', 6, 0x0102_0304n],
    // IPv4-mapped addresses reach the IPv4 address: they are that address.
    ['::ffff:127.0.0.1', 4, 0x7f00_0001n],
    ['::ffff:7f00:1', 4, 0x7f00_0001n],
    ['0:0:0:0:0:ffff:a9fe:a9fe', 4, 0xa9fe_a9fen],
  ])('%s', (text, family, value) => {
    expect(parseIpAddress(text)).toEqual({ family, value });
  });

  it.each(['', 'localhost', '127.1', '2130706433', '0x7f.0.0.1', '1.2.3.4.5', '256.0.0.1', '01.2.3.4', ':::', '1::2::3', '[::1]', '1.2.3.4/32'])(
    'refuses %j',
    (text) => {
      expect(parseIpAddress(text)).toBeNull();
    },
  );
});

describe('parseTargetPolicyEntry', () => {
  it.each<[string, { family: 4 | 6; prefix: number; portLo: number; portHi: number }]>([
    ['10.0.0.0/8', { family: 4, prefix: 8, portLo: 1, portHi: 65535 }],
    ['10.0.0.0/8:5900', { family: 4, prefix: 8, portLo: 5900, portHi: 5900 }],
    ['10.0.0.0/8:5900-5999', { family: 4, prefix: 8, portLo: 5900, portHi: 5999 }],
    ['10.0.0.7', { family: 4, prefix: 32, portLo: 1, portHi: 65535 }],
    ['10.0.0.7:443', { family: 4, prefix: 32, portLo: 443, portHi: 443 }],
    ['0.0.0.0/0', { family: 4, prefix: 0, portLo: 1, portHi: 65535 }],
    ['::/0', { family: 6, prefix: 0, portLo: 1, portHi: 65535 }],
    ['fd00::/8', { family: 6, prefix: 8, portLo: 1, portHi: 65535 }],
    ['fd00::7', { family: 6, prefix: 128, portLo: 1, portHi: 65535 }],
    ['[fd00::/8]', { family: 6, prefix: 8, portLo: 1, portHi: 65535 }],
    ['[fd00::/8]:5900', { family: 6, prefix: 8, portLo: 5900, portHi: 5900 }],
    ['[fd00::7]:1-1024', { family: 6, prefix: 128, portLo: 1, portHi: 1024 }],
    [' 10.0.0.0/8 ', { family: 4, prefix: 8, portLo: 1, portHi: 65535 }],
  ])('accepts %j', (text, expected) => {
    expect(parseTargetPolicyEntry(text)).toMatchObject(expected);
  });

  it.each([
    ['not an address', 'bmc.example.org'],
    ['v4 prefix too long', '10.0.0.0/33'],
    ['v6 prefix too long', 'fd00::/129'],
    ['signed prefix', '10.0.0.0/+8'],
    ['host bits set', '10.0.0.1/8'],
    ['v6 host bits set', 'fd00::1/8'],
    ['port 0', '10.0.0.0/8:0'],
    ['port too big', '10.0.0.0/8:65536'],
    ['range backwards', '10.0.0.0/8:6000-5900'],
    ['junk port', '10.0.0.0/8:http'],
    ['v4 in brackets', '[10.0.0.0/8]:5900'],
    ['empty', ''],
    ['zone', 'fe80::1%eth0'],
    ['mapped range', '::ffff:10.0.0.0/104'],
    ['open-ended range', '10.0.0.0/8:5900-'],
  ])('refuses %s (%j)', (_name, text) => {
    expect(typeof parseTargetPolicyEntry(text)).toBe('string');
  });

  it('suggests the network for host bits set', () => {
    expect(parseTargetPolicyEntry('10.1.2.3/16')).toMatch(/10\.1\.0\.0\/16/);
    expect(parseTargetPolicyEntry('fd00:0:0:0:1::1/64')).toMatch(/fd00::\/64/);
  });
});

describe('compileTargetPolicy', () => {
  it('reports every bad entry at once, with its index', () => {
    const r = compileTargetPolicy(['10.0.0.0/8', 'nope', '10.0.0.0/8:0', '::/0']);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.problems).toHaveLength(2);
      expect(r.problems[0]).toContain('allowedTargets[1]');
      expect(r.problems[1]).toContain('allowedTargets[2]');
    }
  });

  it('an empty list allows nothing', () => {
    expect(allowed(policy(), '10.0.0.1', 5900)).toBe(false);
  });
});

describe('TargetPolicy.check', () => {
  const dflt = policy('0.0.0.0/0', '::/0');

  it('the default allows ordinary addresses, any port', () => {
    for (const a of ['10.0.0.1', '192.168.1.20', '8.8.8.8', '100.64.0.1', 'fd00::7', '2001:db8::1', '223.255.255.255']) {
      expect(allowed(dflt, a, 5900), a).toBe(true);
      expect(allowed(dflt, a, 1), a).toBe(true);
      expect(allowed(dflt, a, 65535), a).toBe(true);
    }
  });

  it.each([
    '127.0.0.1',
    '127.255.255.254',
    '0.0.0.0',
    '0.1.2.3',
    '169.254.169.254',
    '169.254.0.1',
    '224.0.0.1',
    '239.255.255.255',
    '240.0.0.1',
    '255.255.255.255',
    '::',
    '::1',
    '::127.0.0.1',
    'fe80::1',
    'fe80::1%eth0',
    'febf:ffff::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:169.254.169.254',
    '::ffff:a9fe:a9fe',
  ])('the default refuses the special address %s', (a) => {
    const v = dflt.check(a, 80);
    expect(v.allowed).toBe(false);
  });

  it('range edges next to the special ranges stay ordinary', () => {
    for (const a of ['1.0.0.0', '126.255.255.255', '128.0.0.0', '169.253.255.255', '169.255.0.0', '223.255.255.255', '::2:0:0', 'fe7f::1', 'fe00::1', 'fec0::1']) {
      expect(allowed(dflt, a, 80), a).toBe(true);
    }
  });

  it('an entry inside a special range names it', () => {
    const p = policy('0.0.0.0/0', '127.0.0.0/8', '::1/128', '169.254.169.254/32:80');
    expect(allowed(p, '127.0.0.1', 5900)).toBe(true);
    expect(allowed(p, '::ffff:127.0.0.1', 5900)).toBe(true);
    expect(allowed(p, '::1', 5900)).toBe(true);
    expect(allowed(p, '169.254.169.254', 80)).toBe(true);
    expect(allowed(p, '169.254.169.254', 443)).toBe(false);
    expect(allowed(p, '169.254.169.253', 80)).toBe(false);
    expect(allowed(p, 'fe80::1', 80)).toBe(false);
  });

  it('a CIDR that merely contains a special range does not name it', () => {
    const p = policy('96.0.0.0/3', '160.0.0.0/5', '224.0.0.0/3', '::/1');
    expect(allowed(p, '100.0.0.1', 80)).toBe(true);
    expect(allowed(p, '127.0.0.1', 80)).toBe(false);
    expect(allowed(p, '169.254.1.1', 80)).toBe(false);
    expect(allowed(p, '224.0.0.1', 80)).toBe(false);
    expect(allowed(p, '::1', 80)).toBe(false);
  });

  it('IPv6 prefixes that carry an IPv4 address (NAT64, 6to4, Teredo) are refused unless named: a gateway would reach the metadata service', () => {
    for (const a of ['64:ff9b::a9fe:a9fe', '64:ff9b::7f00:1', '64:ff9b:1::a9fe:a9fe', '2002:a9fe:a9fe::1', '2001:0:4136:e378:8000:63bf:3fff:fdd2']) {
      expect(allowed(dflt, a, 80), a).toBe(false);
    }
    expect(allowed(policy('::/0', '64:ff9b::/96'), '64:ff9b::a00:1', 5900)).toBe(true);
    for (const a of ['64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff', '64:ff9b:0:0:0:1::', '2003::1', '2001:1::1']) expect(allowed(dflt, a, 80), a).toBe(true);
  });

  it('the BMC network only, VNC ports only', () => {
    const p = policy('10.20.0.0/16:5900-5999', '[fd00:20::/32]:5900');
    expect(allowed(p, '10.20.0.0', 5900)).toBe(true);
    expect(allowed(p, '10.20.255.255', 5999)).toBe(true);
    expect(allowed(p, '10.20.1.1', 5899)).toBe(false);
    expect(allowed(p, '10.20.1.1', 6000)).toBe(false);
    expect(allowed(p, '10.21.0.0', 5900)).toBe(false);
    expect(allowed(p, '10.19.255.255', 5900)).toBe(false);
    expect(allowed(p, 'fd00:20:ffff::1', 5900)).toBe(true);
    expect(allowed(p, 'fd00:21::1', 5900)).toBe(false);
    expect(allowed(p, 'fd00:20::1', 5901)).toBe(false);
    // An IPv4 entry never matches IPv6 and vice versa, except mapped addresses, which are IPv4.
    expect(allowed(p, '::ffff:10.20.0.1', 5900)).toBe(true);
    expect(allowed(p, '::10.20.0.1', 5900)).toBe(false);
  });

  it('/0 and /32 and /128 edges', () => {
    expect(allowed(policy('0.0.0.0/0'), 'fd00::1', 80)).toBe(false);
    expect(allowed(policy('::/0'), '10.0.0.1', 80)).toBe(false);
    expect(allowed(policy('::/0'), '::ffff:10.0.0.1', 80)).toBe(false);
    expect(allowed(policy('10.0.0.1'), '10.0.0.1', 80)).toBe(true);
    expect(allowed(policy('10.0.0.1'), '10.0.0.2', 80)).toBe(false);
    expect(allowed(policy('fd00::1'), 'fd00::1', 80)).toBe(true);
    expect(allowed(policy('fd00::1'), 'fd00::2', 80)).toBe(false);
  });

  it('refuses what is not an IP address, and says why', () => {
    expect(dflt.check('localhost', 80)).toMatchObject({ allowed: false, why: expect.stringContaining('not an IP address') });
    expect(dflt.check('127.0.0.1', 80)).toMatchObject({ allowed: false, why: expect.stringContaining('loopback') });
    expect(policy('10.0.0.0/8').check('11.0.0.1', 80)).toMatchObject({ allowed: false, why: expect.stringContaining('not covered') });
  });

  it('never throws and never allows a loopback address under the default, whatever the input', () => {
    fc.assert(
      fc.property(fc.string(), fc.integer(), (s, port) => {
        expect(typeof dflt.check(s, port).allowed).toBe('boolean');
      }),
    );
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 1, max: 65535 }), (a, port) => {
        const special = /^(0|127|169\.254|22[4-9]|2[3-5]\d)\./.test(a);
        expect(dflt.check(a, port).allowed).toBe(!special);
        expect(dflt.check(`::ffff:${a}`, port).allowed).toBe(!special);
      }),
    );
  });

  it('decides a dotted IPv4 address (its 32-bit path) as it decides the same address IPv4-mapped (the general path)', () => {
    const policies = [
      policy('0.0.0.0/0'),
      policy('127.0.0.0/8', '::1/128'),
      policy('127.0.0.1/32:5900-5999', '10.0.0.0/8:5900', '169.254.169.0/24'),
      policy('0.0.0.0/1', '128.0.0.0/1', '224.0.0.0/3:1-1024'),
      policy('192.168.0.0/16:5900-5910', '255.255.255.255/32', '0.0.0.0/8'),
      policy('2001:db8::/32', '10.1.2.3'),
    ];
    const address = fc.oneof(
      fc.ipV4(),
      fc.constantFrom('0.0.0.0', '127.0.0.1', '127.255.255.255', '169.254.169.254', '224.0.0.1', '255.255.255.255', '10.1.2.3', '192.168.255.255'),
    );
    fc.assert(
      fc.property(address, fc.integer({ min: 1, max: 65535 }), fc.constantFrom(...policies), (a, port, p) => {
        expect(p.check(a, port).allowed).toBe(p.check(`::ffff:${a}`, port).allowed);
      }),
      { numRuns: 2000 },
    );
  });
});
