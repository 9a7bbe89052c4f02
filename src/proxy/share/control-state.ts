/** What a page may ask of a shared console's control (`{"type":"control","action":…}`). */
export type ControlAction = 'request' | 'release' | 'grant';

export function isControlAction(v: unknown): v is ControlAction {
  return v === 'request' || v === 'release' || v === 'grant';
}

/**
 * Who has control of a shared console (sends input), and who asked for it. Plain state, no I/O:
 * the hub applies each change and tells every viewer. Rules:
 * - the first viewer that may control gets control; a viewer whose token says `control` takes it
 *   on joining;
 * - `request`: control at once when nobody has it, else queued (the controller sees the count);
 * - `grant` (controller only): control passes to the longest-waiting requester;
 * - `release` (controller only): control passes to the longest-waiting requester, or to nobody;
 * - the controller leaving: control passes to the longest-waiting requester, else to the
 *   longest-connected viewer that may control, so a console is never left without one by accident.
 */
export class ControlState<V> {
  #controller: V | null = null;
  readonly #requests: V[] = [];
  /** Viewers in joining order, with whether each may ever control (not view-only). */
  readonly #viewers = new Map<V, boolean>();
  /** Changes of control so far (audit). */
  handovers = 0;

  get controller(): V | null {
    return this.#controller;
  }

  get viewers(): number {
    return this.#viewers.size;
  }

  /** Viewers waiting for control, in order. */
  get requests(): readonly V[] {
    return this.#requests;
  }

  /** Returns whether control changed hands. */
  add(v: V, canControl: boolean, takeControl: boolean): boolean {
    this.#viewers.set(v, canControl);
    if (!canControl) return false;
    if (this.#controller === null || takeControl) return this.#give(v);
    return false;
  }

  remove(v: V): boolean {
    if (!this.#viewers.delete(v)) return false;
    this.#dequeue(v);
    if (this.#controller !== v) return false;
    this.#controller = null;
    const next = this.#requests.shift() ?? [...this.#viewers].find(([, can]) => can)?.[0] ?? null;
    if (next === null) return true;
    return this.#give(next) || true;
  }

  /** Applies `action` from `v`; returns whether anything a viewer is shown changed. */
  apply(v: V, action: ControlAction): boolean {
    if (!this.#viewers.get(v)) return false;
    switch (action) {
      case 'request':
        if (this.#controller === null) return this.#give(v);
        if (this.#controller === v || this.#requests.includes(v)) return false;
        this.#requests.push(v);
        return true;
      case 'grant': {
        if (this.#controller !== v) return false;
        const next = this.#requests.shift();
        return next === undefined ? false : this.#give(next);
      }
      case 'release': {
        if (this.#controller !== v) return this.#dequeue(v);
        const next = this.#requests.shift();
        if (next !== undefined) return this.#give(next);
        this.#controller = null;
        this.handovers++;
        return true;
      }
    }
  }

  #give(v: V): boolean {
    if (this.#controller === v) return false;
    this.#dequeue(v);
    this.#controller = v;
    this.handovers++;
    return true;
  }

  #dequeue(v: V): boolean {
    const i = this.#requests.indexOf(v);
    if (i < 0) return false;
    this.#requests.splice(i, 1);
    return true;
  }
}
