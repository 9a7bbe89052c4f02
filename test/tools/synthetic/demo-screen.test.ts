import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEMO_TYPED_CHARS, DemoScreen } from '../../../tools/synthetic/demo-screen.js';
import { keysymChar, keysymName } from '../../../tools/synthetic/keysym.js';
import type { Rect } from '../../../tools/synthetic/rect.js';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

function screen(width = 1024, height = 768): DemoScreen {
  return new DemoScreen({ width, height, desktopName: 'test', now: T0 });
}

/** Every pixel that differs between two snapshots lies inside one of `rects`. */
function changesCovered(before: Uint8Array, after: Uint8Array, width: number, rects: readonly Rect[]): { changed: number; uncovered: number } {
  let changed = 0;
  let uncovered = 0;
  for (let i = 0; i < after.length; i += 4) {
    if (before[i] === after[i] && before[i + 1] === after[i + 1] && before[i + 2] === after[i + 2]) continue;
    changed++;
    const x = (i / 4) % width;
    const y = Math.floor(i / 4 / width);
    if (!rects.some((r) => x >= r.x && y >= r.y && x < r.x + r.width && y < r.y + r.height)) uncovered++;
  }
  return { changed, uncovered };
}

type Event = { kind: 'tick' } | { kind: 'key'; down: boolean; keysym: number } | { kind: 'pointer'; x: number; y: number; buttons: number } | { kind: 'clients'; n: number };

const arbEvent: fc.Arbitrary<Event> = fc.oneof(
  fc.constant({ kind: 'tick' as const }),
  fc.record({ kind: fc.constant('key' as const), down: fc.boolean(), keysym: fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.constantFrom(0xff08, 0xff0d, 0xff09, 0xffe1, 0x010020ac, 0xffbe)) }),
  fc.record({ kind: fc.constant('pointer' as const), x: fc.integer({ min: 0, max: 400 }), y: fc.integer({ min: 0, max: 300 }), buttons: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('clients' as const), n: fc.integer({ min: 0, max: 12 }) }),
);

describe('DemoScreen', () => {
  it('draws the colour bars, the title band and the panel', () => {
    const s = screen();
    const { bars } = s.layout;
    expect(s.canvas.rgbAt(64, bars.height / 2)).toBe(0xffffff);
    expect(s.canvas.rgbAt(64 + 128, bars.height / 2)).toBe(0xffff00);
    expect(s.canvas.rgbAt(64 + 6 * 128, bars.height / 2)).toBe(0x0000ff);
    expect(s.canvas.rgbAt(0, 400)).toBe(0xffffff); // the border
  });

  it('moves the box every tick and reports only small rectangles', () => {
    const s = screen();
    const box0 = s.boxRect;
    const rects = s.tick(T0 + 100);
    expect(s.boxRect.x).not.toBe(box0.x);
    const pixels = rects.reduce((n, r) => n + r.width * r.height, 0);
    expect(pixels).toBeLessThan(4_000);
    // The box bounces at the edges and never leaves the screen.
    for (let i = 0; i < 500; i++) s.tick(T0 + i * 100);
    expect(s.boxRect.x).toBeGreaterThanOrEqual(0);
    expect(s.boxRect.x + s.boxRect.width).toBeLessThanOrEqual(1024);
  });

  it('keeps the last characters typed: printable keys, Return as a symbol, BackSpace deletes', () => {
    const s = screen();
    for (const ch of 'hi') s.key(true, ch.charCodeAt(0));
    s.key(false, 0x6a); // key up types nothing
    s.key(true, 0xffe1); // Shift types nothing
    expect(s.typed).toBe('hi');
    s.key(true, 0xff0d);
    s.key(true, 0x78);
    s.key(true, 0xff08);
    expect(s.typed).toBe('hi\u23ce');
    for (let i = 0; i < 100; i++) s.key(true, 0x30 + (i % 10));
    expect(s.typed).toHaveLength(DEMO_TYPED_CHARS);
    expect(s.typed.endsWith('6789')).toBe(true);
  });

  it('property: every pixel a change touches lies in the rectangles it reports', () => {
    fc.assert(
      fc.property(fc.array(arbEvent, { minLength: 1, maxLength: 25 }), (events) => {
        const s = screen(400, 300);
        let t = T0;
        for (const e of events) {
          const before = Uint8Array.from(s.canvas.pixels);
          let rects: Rect[];
          if (e.kind === 'tick') rects = s.tick((t += 100));
          else if (e.kind === 'key') rects = s.key(e.down, e.keysym);
          else if (e.kind === 'pointer') rects = s.pointer(e.x, e.y, e.buttons);
          else rects = s.setClients(e.n);
          expect(changesCovered(before, s.canvas.pixels, 400, rects).uncovered).toBe(0);
          for (const r of rects) expect(r.x >= 0 && r.y >= 0 && r.x + r.width <= 400 && r.y + r.height <= 300).toBe(true);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('repaints consistently: a region repainted after changes equals a fresh render of the same state', () => {
    const a = screen(400, 300);
    a.pointer(100, 250, 0);
    a.pointer(120, 260, 1);
    a.key(true, 0x41);
    const b = screen(400, 300);
    b.pointer(120, 260, 1);
    b.key(true, 0x41);
    expect(Buffer.from(a.canvas.pixels).equals(Buffer.from(b.canvas.pixels))).toBe(true);
  });

  it('works at tiny sizes (everything clipped)', () => {
    const s = screen(1, 1);
    expect(s.tick(T0).every((r) => r.x === 0 && r.y === 0 && r.width === 1 && r.height === 1)).toBe(true);
    s.key(true, 0x61);
    expect(s.typed).toBe('a');
    // A pointer far off the screen changes only the (clipped) text line.
    expect(s.pointer(5000, 5000, 1).every((r) => r.width === 1 && r.height === 1)).toBe(true);
  });
});

describe('keysyms', () => {
  it('maps printable keysyms to characters and names the rest', () => {
    expect(keysymChar(0x41)).toBe('A');
    expect(keysymChar(0xe9)).toBe('é');
    expect(keysymChar(0x010020ac)).toBe('€');
    expect(keysymChar(0xffb7)).toBe('7'); // KP_7
    expect(keysymChar(0xff0d)).toBeNull();
    expect(keysymChar(0x0100d800)).toBeNull(); // a lone surrogate is not a character
    expect(keysymName(0xff0d)).toBe('Return');
    expect(keysymName(0xffc9)).toBe('F12');
    expect(keysymName(0x61)).toBe("'a'");
    expect(keysymName(0x1234)).toBe('0x1234');
  });
});
