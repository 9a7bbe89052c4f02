import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DirtyRegion } from '../../../tools/synthetic/dirty-region.js';
import { area, rect, subtract, type Rect } from '../../../tools/synthetic/rect.js';

const bounds = rect(0, 0, 64, 48);

function covered(rects: readonly Rect[], x: number, y: number): boolean {
  return rects.some((r) => x >= r.x && y >= r.y && x < r.x + r.width && y < r.y + r.height);
}

const arbRect = fc
  .tuple(fc.integer({ min: -10, max: 70 }), fc.integer({ min: -10, max: 55 }), fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 40 }))
  .map(([x, y, w, h]) => rect(x, y, w, h));

describe('rect subtract', () => {
  it('leaves the parts outside the cut, disjoint', () => {
    const pieces = subtract(rect(0, 0, 10, 10), rect(2, 3, 4, 5));
    expect(pieces.reduce((n, r) => n + area(r), 0)).toBe(100 - 20);
    expect(subtract(rect(0, 0, 10, 10), rect(20, 20, 1, 1))).toEqual([rect(0, 0, 10, 10)]);
    expect(subtract(rect(0, 0, 10, 10), rect(-1, -1, 20, 20))).toEqual([]);
  });
});

describe('DirtyRegion', () => {
  it('clips to the framebuffer and drops rectangles already covered', () => {
    const d = new DirtyRegion(bounds);
    d.add(rect(-5, -5, 10, 10));
    d.add(rect(1, 1, 2, 2));
    expect(d.rects).toEqual([rect(0, 0, 5, 5)]);
    d.add(rect(0, 0, 64, 48));
    expect(d.rects).toEqual([bounds]);
  });

  it('keeps what lies outside the requested area', () => {
    const d = new DirtyRegion(bounds);
    d.add(rect(0, 0, 20, 10));
    expect(d.take(rect(0, 0, 10, 48))).toEqual([rect(0, 0, 10, 10)]);
    expect(d.rects).toEqual([rect(10, 0, 10, 10)]);
    expect(d.take(bounds)).toEqual([rect(10, 0, 10, 10)]);
    expect(d.isEmpty).toBe(true);
  });

  it('collapses to a bounding box past its rectangle limit', () => {
    const d = new DirtyRegion(bounds, 4);
    for (let i = 0; i < 5; i++) d.add(rect(i * 10, i * 5, 2, 2));
    expect(d.rects).toEqual([rect(0, 0, 42, 22)]);
  });

  it('property: every pixel added is either taken or still dirty, and the list stays bounded', () => {
    fc.assert(
      fc.property(fc.array(arbRect, { maxLength: 30 }), arbRect, (added, area) => {
        const d = new DirtyRegion(bounds, 8);
        for (const r of added) d.add(r);
        expect(d.rects.length).toBeLessThanOrEqual(8);
        const taken = d.take(area);
        expect(d.rects.length).toBeLessThanOrEqual(8);
        for (let y = 0; y < bounds.height; y += 3) {
          for (let x = 0; x < bounds.width; x += 3) {
            if (!covered(added, x, y)) continue;
            const inArea = covered([area], x, y);
            expect(inArea ? covered(taken, x, y) : covered(d.rects, x, y)).toBe(true);
          }
        }
        for (const t of taken) expect(covered([area], t.x, t.y)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});
