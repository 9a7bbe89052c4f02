/** An axis-aligned rectangle in framebuffer pixels; `width`/`height` of 0 make it empty. */
export type Rect = { x: number; y: number; width: number; height: number };

export function rect(x: number, y: number, width: number, height: number): Rect {
  return { x, y, width: Math.max(0, width), height: Math.max(0, height) };
}

export function isEmpty(r: Rect): boolean {
  return r.width <= 0 || r.height <= 0;
}

export function area(r: Rect): number {
  return isEmpty(r) ? 0 : r.width * r.height;
}

export function intersect(a: Rect, b: Rect): Rect {
  const x = Math.max(a.x, b.x);
  const y = Math.max(a.y, b.y);
  return rect(x, y, Math.min(a.x + a.width, b.x + b.width) - x, Math.min(a.y + a.height, b.y + b.height) - y);
}

export function intersects(a: Rect, b: Rect): boolean {
  return !isEmpty(intersect(a, b));
}

/** Smallest rectangle covering both (an empty input is ignored). */
export function union(a: Rect, b: Rect): Rect {
  if (isEmpty(a)) return b;
  if (isEmpty(b)) return a;
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  return rect(x, y, Math.max(a.x + a.width, b.x + b.width) - x, Math.max(a.y + a.height, b.y + b.height) - y);
}

/** Does `outer` cover all of `inner`? */
export function contains(outer: Rect, inner: Rect): boolean {
  return (
    inner.x >= outer.x &&
    inner.y >= outer.y &&
    inner.x + inner.width <= outer.x + outer.width &&
    inner.y + inner.height <= outer.y + outer.height
  );
}

/** `r` minus `cut`, as at most four disjoint rectangles (bands above and below, then left and right). */
export function subtract(r: Rect, cut: Rect): Rect[] {
  const i = intersect(r, cut);
  if (isEmpty(i)) return [r];
  const out: Rect[] = [];
  const top = rect(r.x, r.y, r.width, i.y - r.y);
  const bottom = rect(r.x, i.y + i.height, r.width, r.y + r.height - (i.y + i.height));
  const left = rect(r.x, i.y, i.x - r.x, i.height);
  const right = rect(i.x + i.width, i.y, r.x + r.width - (i.x + i.width), i.height);
  for (const piece of [top, bottom, left, right]) if (!isEmpty(piece)) out.push(piece);
  return out;
}
