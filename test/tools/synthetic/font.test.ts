import { describe, expect, it } from 'vitest';
import { GLYPH_HEIGHT, GLYPH_WIDTH, RETURN_SYMBOL, glyph, hasGlyph } from '../../../tools/synthetic/font.js';

describe('font', () => {
  const ascii = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i));

  it('has a glyph for every printable ASCII character and the Return symbol', () => {
    for (const ch of [...ascii, RETURN_SYMBOL]) expect(hasGlyph(ch), ch).toBe(true);
  });

  it('keeps every glyph inside its 5×8 box, and only space is blank', () => {
    for (const ch of ascii) {
      const rows = glyph(ch);
      expect(rows).toHaveLength(GLYPH_HEIGHT);
      for (const r of rows) expect(r).toBeLessThan(1 << GLYPH_WIDTH);
      expect(rows.some((r) => r !== 0), ch).toBe(ch !== ' ');
    }
  });

  it('draws no two characters alike', () => {
    const seen = new Map<string, string>();
    for (const ch of ascii) {
      const key = Buffer.from(glyph(ch)).toString('hex');
      expect(seen.get(key), `${ch} looks like ${seen.get(key) ?? ''}`).toBeUndefined();
      seen.set(key, ch);
    }
  });

  it('draws unknown characters as a box', () => {
    expect(hasGlyph('\u00e9')).toBe(false);
    expect(glyph('\u00e9').some((r) => r !== 0)).toBe(true);
  });
});
