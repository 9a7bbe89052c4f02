import { describe, expect, it } from 'vitest';
import { clientKey } from '../src/client-key.js';

describe('clientKey: what per-client limits count an address as', () => {
  it('IPv4 as itself; IPv4-mapped IPv6 (dotted or hex, any case) as the IPv4 address', () => {
    expect(clientKey('192.0.2.7')).toBe('192.0.2.7');
    expect(clientKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(clientKey('::FFFF:192.0.2.7')).toBe('192.0.2.7');
    expect(clientKey('::ffff:c000:207')).toBe('192.0.2.7');
  });

  it('IPv6 by its /64: every address of one /64 is one client, the next /64 another', () => {
    const k = clientKey('2001:db8:1:2::1');
    expect(k).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8:1:2:ffff:ffff:ffff:ffff')).toBe(k);
    expect(clientKey('2001:DB8:1:2:a:b:c:d')).toBe(k);
    expect(clientKey('2001:0db8:0001:0002:0000:0000:0000:0009')).toBe(k);
    expect(clientKey('fe80::1%eth0')).toBe('fe80::/64');
    expect(clientKey('2001:db8:1:3::1')).not.toBe(k);
    expect(clientKey('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64');
    expect(clientKey('::1')).toBe('::/64');
  });

  it('anything that is not an IP address is kept (lower-cased)', () => {
    expect(clientKey('Unknown')).toBe('unknown');
    expect(clientKey('')).toBe('');
  });
});
