import { RgbCanvas, textSize } from './canvas.js';
import { CELL_HEIGHT, CELL_WIDTH, RETURN_SYMBOL } from './font.js';
import { KEYSYM, keysymChar, keysymName } from './keysym.js';
import { intersect, isEmpty, rect, union, type Rect } from './rect.js';

export const DEMO_TITLE = 'vncgate demo console';
/** Characters kept in the typed-keys line. */
export const DEMO_TYPED_CHARS = 60;

const COLOUR = {
  background: 0x000000,
  grid: 0x303030,
  border: 0xffffff,
  title: 0xffffff,
  subtitle: 0xa0a0a0,
  track: 0x202040,
  panel: 0x102030,
  text: 0xe0e0e0,
  keys: 0x80ff80,
  hint: 0x8090a0,
  pointer: 0xffffff,
  pointerPressed: 0xffff00,
  pointerOutline: 0x000000,
  // The classic colour-bar order: white, yellow, cyan, green, magenta, red, blue, black.
  bars: [0xffffff, 0xffff00, 0x00ffff, 0x00ff00, 0xff00ff, 0xff0000, 0x0000ff, 0x000000],
} as const;

/** One line of text whose changes report only the columns that differ, so a ticking counter costs a few glyphs. */
class TextField {
  readonly #x: number;
  readonly #y: number;
  readonly #scale: number;
  readonly #rgb: number;
  #chars: string[] = [];

  constructor(x: number, y: number, scale: number, rgb: number) {
    this.#x = x;
    this.#y = y;
    this.#scale = scale;
    this.#rgb = rgb;
  }

  get text(): string {
    return this.#chars.join('');
  }

  /** Sets the text and returns the rectangle whose pixels may have changed (null if none). */
  set(text: string): Rect | null {
    const before = this.#chars;
    const after = Array.from(text);
    const n = Math.max(before.length, after.length);
    let first = 0;
    while (first < n && before[first] === after[first]) first++;
    if (first === n) return null;
    let last = n - 1;
    while (last > first && before[last] === after[last]) last--;
    this.#chars = after;
    const cellW = CELL_WIDTH * this.#scale;
    return rect(this.#x + first * cellW, this.#y, (last - first + 1) * cellW, CELL_HEIGHT * this.#scale);
  }

  paint(canvas: RgbCanvas): void {
    canvas.drawText(this.#x, this.#y, this.text, this.#rgb, this.#scale);
  }
}

type Pointer = { x: number; y: number; buttons: number };

/** Where things are on the demo screen (a function of its size only), for tests and tools. */
export type DemoLayout = {
  /** Pixels per font pixel of ordinary text. */
  unit: number;
  cell: { width: number; height: number };
  bars: Rect;
  ramp: Rect;
  /** The band the moving box travels along. */
  track: Rect;
  panel: Rect;
  /** Text lines in the panel, each one cell high, from the first character to the panel edge. */
  status: Rect;
  keys: Rect;
  lastKey: Rect;
  pointer: Rect;
};

/**
 * The demo desktop: colour bars, a title, a grey ramp, a box that moves every tick, a clock and
 * frame counter, the last characters typed, the last key event and a pointer marker. One instance
 * is shared by every client of a server, like a real desktop.
 *
 * Pure: time comes in as an argument. Every change repaints only the rectangles it touched (each
 * repaint redraws all layers clipped to that rectangle) and returns them, so clients re-send only
 * those.
 */
export class DemoScreen {
  readonly canvas: RgbCanvas;
  readonly layout: DemoLayout;
  readonly #desktopName: string;
  readonly #s: number;
  readonly #bars: Rect;
  readonly #ramp: Rect;
  readonly #track: Rect;
  readonly #panel: Rect;
  readonly #titleY: number;
  readonly #subtitleY: number;
  readonly #hintY: number;
  readonly #textX: number;
  readonly #boxSize: number;
  readonly #boxStep: number;
  readonly #clock: TextField;
  readonly #frameField: TextField;
  readonly #clientsField: TextField;
  readonly #keysField: TextField;
  readonly #lastKeyField: TextField;
  readonly #pointerField: TextField;
  #frame = 0;
  #boxX = 0;
  #boxDirection = 1;
  #typed: string[] = [];
  #pointer: Pointer | null = null;
  #clients = 0;

  constructor(opts: { width: number; height: number; desktopName: string; now: number }) {
    const { width: w, height: h } = opts;
    this.canvas = new RgbCanvas(w, h);
    this.#desktopName = opts.desktopName;
    // Unit size: 2 at 1024×768, 1 at 640×480 and below.
    const s = Math.max(1, Math.floor(Math.min(w / 512, h / 384)));
    this.#s = s;
    const lineH = 10 * s;
    this.#bars = rect(0, 0, w, Math.round(h * 0.3));
    this.#titleY = this.#bars.height + 6 * s;
    this.#subtitleY = this.#titleY + CELL_HEIGHT * 2 * s + 2 * s;
    this.#ramp = rect(4 * s, this.#subtitleY + CELL_HEIGHT * s + 4 * s, w - 8 * s, 10 * s);
    this.#track = rect(0, this.#ramp.y + this.#ramp.height + 6 * s, w, 20 * s);
    this.#boxSize = 16 * s;
    this.#boxStep = 4 * s;
    this.#panel = rect(4 * s, this.#track.y + this.#track.height + 6 * s, w - 8 * s, 5 * lineH + 4 * s);
    this.#textX = this.#panel.x + 4 * s;
    const row = (i: number): number => this.#panel.y + 3 * s + i * lineH;
    const col = (i: number): number => this.#textX + i * CELL_WIDTH * s;
    this.#clock = new TextField(col(0), row(0), s, COLOUR.text);
    this.#frameField = new TextField(col(16), row(0), s, COLOUR.text);
    this.#clientsField = new TextField(col(34), row(0), s, COLOUR.text);
    this.#keysField = new TextField(col(0), row(1), s, COLOUR.keys);
    this.#lastKeyField = new TextField(col(0), row(2), s, COLOUR.text);
    this.#pointerField = new TextField(col(0), row(3), s, COLOUR.text);
    this.#hintY = row(4);
    const line = (i: number): Rect => rect(this.#textX, row(i), this.#panel.x + this.#panel.width - this.#textX, CELL_HEIGHT * s);
    this.layout = {
      unit: s,
      cell: { width: CELL_WIDTH * s, height: CELL_HEIGHT * s },
      bars: this.#bars,
      ramp: this.#ramp,
      track: this.#track,
      panel: this.#panel,
      status: line(0),
      keys: line(1),
      lastKey: line(2),
      pointer: line(3),
    };

    this.#clock.set(clockText(opts.now));
    this.#frameField.set(this.#frameText());
    this.#clientsField.set(this.#clientsText());
    this.#keysField.set(this.#keysText());
    this.#lastKeyField.set('last key: (none yet)');
    this.#pointerField.set('pointer: (not seen yet)');
    this.#paint(this.canvas.bounds);
  }

  get frame(): number {
    return this.#frame;
  }

  /** The characters typed so far (at most DEMO_TYPED_CHARS). */
  get typed(): string {
    return this.#typed.join('');
  }

  /** Where the moving box is now. */
  get boxRect(): Rect {
    return this.#boxRectAt(this.#boxX);
  }

  /** Advances the animation by one frame at time `now` (epoch ms). */
  tick(now: number): Rect[] {
    this.#frame++;
    const before = this.boxRect;
    const span = Math.max(0, this.canvas.width - this.#boxSize);
    let x = this.#boxX + this.#boxDirection * this.#boxStep;
    if (x > span || x < 0) {
      this.#boxDirection = -this.#boxDirection;
      x = Math.min(span, Math.max(0, x));
    }
    this.#boxX = x;
    return this.#repaint([
      union(before, this.boxRect),
      this.#clock.set(clockText(now)),
      this.#frameField.set(this.#frameText()),
      this.#keysField.set(this.#keysText()),
    ]);
  }

  /** A KeyEvent (§7.5.4): down events type into the keys line; every event shows on the last-key line. */
  key(down: boolean, keysym: number): Rect[] {
    const dirty: (Rect | null)[] = [];
    const hex = keysym.toString(16).padStart(4, '0');
    dirty.push(this.#lastKeyField.set(`last key: ${keysymName(keysym)} (0x${hex}) ${down ? 'down' : 'up'}`));
    if (down) {
      if (keysym === KEYSYM.BackSpace) this.#typed.pop();
      else if (keysym === KEYSYM.Return || keysym === KEYSYM.KP_Enter) this.#typed.push(RETURN_SYMBOL);
      else if (keysym === KEYSYM.Tab) this.#typed.push(' ');
      else {
        const ch = keysymChar(keysym);
        if (ch !== null) this.#typed.push(ch);
      }
      if (this.#typed.length > DEMO_TYPED_CHARS) this.#typed.splice(0, this.#typed.length - DEMO_TYPED_CHARS);
      dirty.push(this.#keysField.set(this.#keysText()));
    }
    return this.#repaint(dirty);
  }

  /** A PointerEvent (§7.5.5): moves the marker and updates the pointer line. */
  pointer(x: number, y: number, buttons: number): Rect[] {
    const dirty: (Rect | null)[] = [];
    if (this.#pointer) dirty.push(this.#markerRect(this.#pointer));
    this.#pointer = { x, y, buttons };
    dirty.push(this.#markerRect(this.#pointer));
    const pressed = [0, 1, 2, 3, 4, 5, 6, 7].filter((b) => buttons & (1 << b)).map((b) => b + 1);
    dirty.push(this.#pointerField.set(`pointer: ${x},${y}  buttons: ${pressed.length ? pressed.join(' ') : 'none'}`));
    return this.#repaint(dirty);
  }

  setClients(n: number): Rect[] {
    this.#clients = n;
    return this.#repaint([this.#clientsField.set(this.#clientsText())]);
  }

  #frameText(): string {
    return `frame ${this.#frame}`;
  }

  #clientsText(): string {
    return `clients ${this.#clients}`;
  }

  #keysText(): string {
    // A cursor blinking at about 1 Hz with the default 100 ms tick.
    const cursor = this.#frame % 10 < 5 ? '_' : ' ';
    return `keys> ${this.#typed.join('')}${cursor}`;
  }

  #boxRectAt(x: number): Rect {
    return rect(x, this.#track.y + 2 * this.#s, this.#boxSize, this.#boxSize);
  }

  #markerRect(p: Pointer): Rect {
    const m = 5 * this.#s;
    return rect(p.x - m - 1, p.y - m - 1, 2 * m + 3, 2 * m + 3);
  }

  #repaint(dirty: readonly (Rect | null)[]): Rect[] {
    const out: Rect[] = [];
    for (const r of dirty) {
      if (r === null) continue;
      const clipped = intersect(r, this.canvas.bounds);
      if (isEmpty(clipped)) continue;
      this.#paint(clipped);
      out.push(clipped);
    }
    return out;
  }

  /** Redraws every layer, bottom to top, inside `clip`. */
  #paint(clip: Rect): void {
    const c = this.canvas;
    const s = this.#s;
    const { width: w, height: h } = c;
    c.setClip(clip);
    c.fillRect(clip.x, clip.y, clip.width, clip.height, COLOUR.background);

    const gridStep = 32 * s;
    for (let x = 0; x < w; x += gridStep) c.fillRect(x, 0, 1, h, COLOUR.grid);
    for (let y = 0; y < h; y += gridStep) c.fillRect(0, y, w, 1, COLOUR.grid);

    const bars = this.#bars;
    COLOUR.bars.forEach((rgb, i, all) => {
      const x0 = Math.round((i * bars.width) / all.length);
      const x1 = Math.round(((i + 1) * bars.width) / all.length);
      c.fillRect(x0, bars.y, x1 - x0, bars.height, rgb);
    });

    const titleScale = 2 * s;
    const title = textSize(DEMO_TITLE.length, titleScale);
    c.drawText(Math.floor((w - title.width) / 2), this.#titleY, DEMO_TITLE, COLOUR.title, titleScale);
    const subtitle = `"${this.#desktopName}"  ${w}x${h}`;
    const sub = textSize(Array.from(subtitle).length, s);
    c.drawText(Math.floor((w - sub.width) / 2), this.#subtitleY, subtitle, COLOUR.subtitle, s);

    const ramp = this.#ramp;
    const steps = 16;
    for (let i = 0; i < steps; i++) {
      const x0 = ramp.x + Math.round((i * ramp.width) / steps);
      const x1 = ramp.x + Math.round(((i + 1) * ramp.width) / steps);
      const v = Math.round((i * 255) / (steps - 1));
      c.fillRect(x0, ramp.y, x1 - x0, ramp.height, (v << 16) | (v << 8) | v);
    }

    const track = this.#track;
    c.fillRect(track.x, track.y, track.width, track.height, COLOUR.track);
    const box = this.boxRect;
    c.fillRect(box.x, box.y, box.width, box.height, hueColour((this.#frame * 7) % 360));

    const panel = this.#panel;
    c.fillRect(panel.x, panel.y, panel.width, panel.height, COLOUR.panel);
    for (const field of [this.#clock, this.#frameField, this.#clientsField, this.#keysField, this.#lastKeyField, this.#pointerField]) {
      field.paint(c);
    }
    c.drawText(this.#textX, this.#hintY, 'Type here: keys appear above. Move the pointer to see the marker.', COLOUR.hint, s);

    c.strokeRect(0, 0, w, h, s, COLOUR.border);

    const p = this.#pointer;
    if (p) {
      const m = 5 * s;
      const half = Math.floor(s / 2);
      c.fillRect(p.x - m - 1, p.y - half - 1, 2 * m + 3, s + 2, COLOUR.pointerOutline);
      c.fillRect(p.x - half - 1, p.y - m - 1, s + 2, 2 * m + 3, COLOUR.pointerOutline);
      const rgb = p.buttons === 0 ? COLOUR.pointer : COLOUR.pointerPressed;
      c.fillRect(p.x - m, p.y - half, 2 * m + 1, s, rgb);
      c.fillRect(p.x - half, p.y - m, s, 2 * m + 1, rgb);
    }
    c.setClip(c.bounds);
  }
}

function clockText(now: number): string {
  const d = new Date(now);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `time ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** A fully saturated colour for a hue in degrees. */
function hueColour(hue: number): number {
  const x = Math.round(255 * (1 - Math.abs(((hue / 60) % 2) - 1)));
  const sectors: readonly (readonly [number, number, number])[] = [
    [255, x, 0],
    [x, 255, 0],
    [0, 255, x],
    [0, x, 255],
    [x, 0, 255],
    [255, 0, x],
  ];
  const [r, g, b] = sectors[Math.floor(hue / 60) % 6] ?? [255, 255, 255];
  return (r << 16) | (g << 8) | b;
}
