import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseStaticTargetText, parseTarget, type ConsoleTarget } from '../../src/tokens/index.js';

describe('parseTarget', () => {
  it.each<[string, ConsoleTarget]>([
    ['static by name', { kind: 'static', host: 'bmc-12.example.org', port: 5900 }],
    ['static by IPv4 with profile', { kind: 'static', host: '10.0.0.7', port: 443, profile: 'idrac-9' }],
    ['static by IPv6', { kind: 'static', host: 'fd00::7', port: 5901 }],
    ['node by UUID', { kind: 'node', node: '1be26c0b-03f2-4d2e-ae87-c02d7f33c123' }],
    ['node by name', { kind: 'node', node: 'rack4.node_17~b' }],
  ])('accepts %s', (_name, target) => {
    expect(parseTarget(target)).toEqual({ ok: true, target });
  });

  it('drops unknown fields', () => {
    const parsed = parseTarget({ kind: 'static', host: 'h', port: 1, password: 'x' });
    expect(parsed).toEqual({ ok: true, target: { kind: 'static', host: 'h', port: 1 } });
  });

  it.each<[string, unknown]>([
    ['null', null],
    ['array', [{ kind: 'static', host: 'h', port: 1 }]],
    ['no kind', { host: 'h', port: 1 }],
    ['unknown kind', { kind: 'ssh', host: 'h', port: 22 }],
    ['empty host', { kind: 'static', host: '', port: 1 }],
    ['host with space', { kind: 'static', host: 'a b', port: 1 }],
    ['host with URL parts', { kind: 'static', host: 'evil/x?y', port: 1 }],
    ['host label too long', { kind: 'static', host: `${'a'.repeat(64)}.org`, port: 1 }],
    ['port 0', { kind: 'static', host: 'h', port: 0 }],
    ['port 65536', { kind: 'static', host: 'h', port: 65536 }],
    ['port as string', { kind: 'static', host: 'h', port: '5900' }],
    ['fractional port', { kind: 'static', host: 'h', port: 5900.5 }],
    ['empty profile', { kind: 'static', host: 'h', port: 1, profile: '' }],
    ['profile with slash', { kind: 'static', host: 'h', port: 1, profile: '../x' }],
    ['empty node', { kind: 'node', node: '' }],
    ['node with slash', { kind: 'node', node: 'a/b' }],
  ])('rejects %s', (_name, value) => {
    expect(parseTarget(value).ok).toBe(false);
  });

  it('reports every problem at once', () => {
    const parsed = parseTarget({ kind: 'static', host: '', port: -1, profile: '!' });
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.problems).toHaveLength(3);
  });

  it('never throws, whatever it is given', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        const parsed = parseTarget(value);
        expect(typeof parsed.ok).toBe('boolean');
      }),
    );
  });
});

describe('parseStaticTargetText', () => {
  it('reads host:port and [ipv6]:port, with a profile', () => {
    expect(parseStaticTargetText('bmc-7.example.org:5900')).toEqual({ ok: true, target: { kind: 'static', host: 'bmc-7.example.org', port: 5900 } });
    expect(parseStaticTargetText('[fd00::7]:5901', 'idrac')).toEqual({ ok: true, target: { kind: 'static', host: 'fd00::7', port: 5901, profile: 'idrac' } });
  });

  it.each(['fd00::7:5900', '10.0.0.7', '10.0.0.7:', ':5900', '10.0.0.7:0', '10.0.0.7:123456', 'a b:1', '[10.0.0.7:5900', `${'a'.repeat(300)}:1`])('refuses %j', (text) => {
    expect(parseStaticTargetText(text).ok).toBe(false);
  });
});
