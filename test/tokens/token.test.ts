import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateToken, hashToken, isWellFormedToken, TOKEN_BYTES, TOKEN_LENGTH, tokenLogId } from '../../src/tokens/index.js';

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Reference definition: exactly the canonical unpadded base64url spellings of 32 bytes. */
function isCanonical32ByteBase64url(s: string): boolean {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) return false; // Buffer.from skips junk characters; we must not
  const bytes = Buffer.from(s, 'base64url');
  return bytes.length === TOKEN_BYTES && bytes.toString('base64url') === s;
}

describe('generateToken', () => {
  it('is 43 base64url characters encoding 32 bytes', () => {
    for (let i = 0; i < 200; i++) {
      const token = generateToken();
      expect(token).toHaveLength(TOKEN_LENGTH);
      expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(token, 'base64url')).toHaveLength(32);
      expect(isWellFormedToken(token)).toBe(true);
    }
  });

  it('does not repeat', () => {
    const seen = new Set(Array.from({ length: 10_000 }, generateToken));
    expect(seen.size).toBe(10_000);
  });
});

describe('isWellFormedToken', () => {
  const good = Buffer.alloc(32, 0xab).toString('base64url');

  it.each([
    ['empty', ''],
    ['one short', good.slice(1)],
    ['one long', `${good}A`],
    ['padded', `${good}=`],
    ['standard base64 alphabet', `+/${good.slice(2)}`],
    ['non-canonical last character', `${good.slice(0, 42)}B`],
    ['whitespace', ` ${good.slice(1)}`],
    ['non-ASCII', `é${good.slice(1)}`],
  ])('rejects %s', (_name, value) => {
    expect(isWellFormedToken(value)).toBe(false);
  });

  it.each([undefined, null, 42, {}, [good], Buffer.from(good)])('rejects non-string %#', (value) => {
    expect(isWellFormedToken(value)).toBe(false);
  });

  it('accepts the canonical encoding of any 32 bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => {
        expect(isWellFormedToken(Buffer.from(bytes).toString('base64url'))).toBe(true);
      }),
    );
  });

  it('agrees with the reference definition on near-miss strings', () => {
    const unit = fc.constantFrom(...`${BASE64URL}+/=. \u00e9`);
    const nearMiss = fc.string({ unit, minLength: 41, maxLength: 45 });
    // A real token with one character replaced: about a quarter of these stay canonical.
    const mutated = fc
      .tuple(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.nat({ max: 42 }), unit)
      .map(([bytes, at, c]) => {
        const s = Buffer.from(bytes).toString('base64url');
        return s.slice(0, at) + c + s.slice(at + 1);
      });
    fc.assert(
      fc.property(fc.oneof(mutated, nearMiss, fc.string()), (s) => {
        expect(isWellFormedToken(s)).toBe(isCanonical32ByteBase64url(s));
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('hashToken', () => {
  it('is SHA-256 in lowercase hex (FIPS 180-2 "abc" vector)', () => {
    expect(hashToken('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('gives 64 hex characters that do not contain the token', () => {
    const token = generateToken();
    expect(hashToken(token)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashToken(token)).not.toContain(token);
  });

  it('tokenLogId is a 12-character prefix of the hash', () => {
    const token = generateToken();
    expect(tokenLogId(token)).toBe(hashToken(token).slice(0, 12));
  });
});
