import { contains, intersect, isEmpty, subtract, union, type Rect } from './rect.js';

/**
 * The part of the framebuffer one client has not seen yet, as a short list of rectangles. Memory
 * stays bounded: past `maxRects` the list collapses to its bounding box, which only ever sends a
 * little more than needed (always correct: any superset of the changed area is).
 */
export class DirtyRegion {
  readonly #bounds: Rect;
  readonly #maxRects: number;
  #rects: Rect[] = [];

  constructor(bounds: Rect, maxRects = 16) {
    if (maxRects < 1) throw new RangeError('maxRects must be at least 1');
    this.#bounds = bounds;
    this.#maxRects = maxRects;
  }

  get isEmpty(): boolean {
    return this.#rects.length === 0;
  }

  get rects(): readonly Rect[] {
    return this.#rects;
  }

  add(r: Rect): void {
    const clipped = intersect(r, this.#bounds);
    if (isEmpty(clipped)) return;
    if (this.#rects.some((existing) => contains(existing, clipped))) return;
    this.#rects = this.#rects.filter((existing) => !contains(clipped, existing));
    this.#rects.push(clipped);
    this.#bound();
  }

  /** Removes and returns the dirty parts inside `area`; what lies outside it stays dirty. */
  take(area: Rect): Rect[] {
    const out: Rect[] = [];
    const keep: Rect[] = [];
    for (const r of this.#rects) {
      const inside = intersect(r, area);
      if (isEmpty(inside)) {
        keep.push(r);
        continue;
      }
      out.push(inside);
      keep.push(...subtract(r, area));
    }
    this.#rects = keep;
    this.#bound();
    return out;
  }

  clear(): void {
    this.#rects = [];
  }

  #bound(): void {
    if (this.#rects.length <= this.#maxRects) return;
    let box: Rect = { x: 0, y: 0, width: 0, height: 0 };
    for (const r of this.#rects) box = union(box, r);
    this.#rects = [box];
  }
}
