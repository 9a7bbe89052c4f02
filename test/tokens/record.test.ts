import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeRecord, encodeRecord, tokenIssuer, type ConsoleTarget, type TokenRecord } from '../../src/tokens/index.js';
import { MAX_ISSUER_CHARS, newRecord } from '../../src/tokens/record.js';

const target: ConsoleTarget = { kind: 'static', host: 'bmc.example', port: 5900 };

describe('token records', () => {
  it('round-trips through JSON', () => {
    const record = newRecord(target, Date.UTC(2025, 0, 1), 600_000);
    expect(record).toEqual({
      version: 1,
      target,
      issuedAt: '2025-01-01T00:00:00.000Z',
      expiresAt: '2025-01-01T00:10:00.000Z',
    });
    expect(decodeRecord(encodeRecord(record))).toEqual({ ok: true, record });
  });

  const good = JSON.parse(encodeRecord(newRecord(target, 0, 1000))) as Record<string, unknown>;

  it.each<[string, string]>([
    ['empty', ''],
    ['not JSON', 'not json'],
    ['truncated', encodeRecord(newRecord(target, 0, 1000)).slice(0, 20)],
    ['JSON null', 'null'],
    ['an array', '[]'],
    ['a string', '"x"'],
    ['another version', JSON.stringify({ ...good, version: 2 })],
    ['no version', JSON.stringify({ ...good, version: undefined })],
    ['bad issuedAt', JSON.stringify({ ...good, issuedAt: 'yesterday' })],
    ['non-ISO expiresAt', JSON.stringify({ ...good, expiresAt: 1000 })],
    ['bad target', JSON.stringify({ ...good, target: { kind: 'static', host: 'h', port: 0 } })],
    ['missing target', JSON.stringify({ ...good, target: undefined })],
    ['oversized', JSON.stringify({ ...good, pad: 'x'.repeat(5000) })],
  ])('refuses %s without throwing', (_name, json) => {
    expect(decodeRecord(json).ok).toBe(false);
  });

  it('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify({ ...good, target: v }))), (json) => {
        expect(typeof decodeRecord(json).ok).toBe('boolean');
      }),
    );
  });

  it('round-trips any valid static target', () => {
    const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
    const staticTarget = fc.record(
      {
        kind: fc.constant('static' as const),
        host: fc.array(label, { minLength: 1, maxLength: 4 }).map((ls) => ls.join('.')),
        port: fc.integer({ min: 1, max: 65535 }),
        profile: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$/),
      },
      { requiredKeys: ['kind', 'host', 'port'] },
    );
    fc.assert(
      fc.property(staticTarget, fc.integer({ min: 0, max: 4e12 }), (t, at) => {
        const record: TokenRecord = newRecord(t, at, 1000);
        expect(decodeRecord(encodeRecord(record))).toEqual({ ok: true, record });
      }),
    );
  });
});

describe('issue 17: token records remember who issued them', () => {
  it('round-trips the issuer, cut to its bound', () => {
    const issuedBy = tokenIssuer('api', { sub: 'x'.repeat(300), iss: 'https://portal.example', aud: 'ignored' } as { sub: string; iss: string });
    const record = newRecord(target, 0, 1000, { issuedBy });
    expect(record.issuedBy).toEqual({ via: 'api', sub: 'x'.repeat(MAX_ISSUER_CHARS), iss: 'https://portal.example' });
    expect(decodeRecord(encodeRecord(record))).toEqual({ ok: true, record });
  });

  it('decodes records written before the field existed, and ignores a malformed one', () => {
    const old = { version: 1, target, issuedAt: '2025-01-01T00:00:00.000Z', expiresAt: '2025-01-01T00:10:00.000Z' };
    expect(decodeRecord(JSON.stringify(old))).toEqual({ ok: true, record: old });
    for (const issuedBy of [null, 'alice', { via: 'mail' }, { via: 'api', sub: 5 }, { via: 'cli', iss: 'y'.repeat(MAX_ISSUER_CHARS + 1) }]) {
      expect(decodeRecord(JSON.stringify({ ...old, issuedBy }))).toEqual({ ok: true, record: old });
    }
  });
});
