/**
 * vncgate recording playback: fetches one recording with the single-use ticket from the link's
 * fragment and feeds it, record by record at its recorded times, to noVNC's RFB through a channel
 * object that stands in for the WebSocket (noVNC 1.7 accepts one instead of a URL). The recording
 * holds exactly the bytes the live viewer received, handshake included, so this noVNC decodes the
 * same stream (zlib and Tight state and all) and draws the same picture. What it sends goes nowhere.
 */
import RFB, { type RawChannel } from '@novnc/novnc';
import { readPlayback, RECORD_DATA, RECORD_EVENT, type Playback, type PlaybackRecord } from './playback-format.js';

type State = 'connecting' | 'connected' | 'disconnected' | 'failed';

function byId<T extends HTMLElement>(id: string, type: { new (): T; prototype: T }): T {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`playback page: #${id} is missing`);
  return element;
}

const ui = {
  statusText: byId('status-text', HTMLSpanElement),
  truncated: byId('truncated-badge', HTMLSpanElement),
  position: byId('position', HTMLSpanElement),
  pointer: byId('pointer', HTMLSpanElement),
  speed: byId('speed', HTMLSelectElement),
  pause: byId('btn-pause', HTMLButtonElement),
  end: byId('btn-end', HTMLButtonElement),
  screen: byId('screen', HTMLDivElement),
  notice: byId('notice', HTMLDivElement),
  noticeText: byId('notice-text', HTMLParagraphElement),
};

/** The WebSocket-like object noVNC reads from (its Websock checks these properties exist). */
class ReplayChannel {
  binaryType = 'arraybuffer';
  protocol = '';
  readyState = 'connecting';
  onopen: ((e: Event) => void) | null = null;
  onmessage: ((e: { data: ArrayBuffer }) => void) | null = null;
  onclose: ((e: CloseEvent) => void) | null = null;
  onerror: ((e: Event) => void) | null = null;

  send(): void {
    // The viewer's messages (its version, ClientInit, update requests) have no one to go to.
  }

  close(): void {
    this.readyState = 'closed';
  }

  open(): void {
    this.readyState = 'open';
    this.onopen?.(new Event('open'));
  }

  deliver(bytes: Uint8Array): void {
    if (this.readyState !== 'open') return;
    // A copy: noVNC keeps the ArrayBuffer it is given.
    this.onmessage?.({ data: bytes.slice().buffer });
  }
}

function setState(state: State, text: string): void {
  document.body.dataset['state'] = state;
  ui.statusText.textContent = text;
}

function fail(text: string): void {
  setState('failed', 'Playback failed');
  ui.noticeText.textContent = text;
  ui.notice.hidden = false;
}

function clock(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** Plays records at their times, scaled by the speed; pause and skip-to-end. */
class Player {
  readonly #records: PlaybackRecord[];
  readonly #channel: ReplayChannel;
  readonly #totalMs: number;
  readonly #onEnd: () => void;
  #next = 0;
  /** Recording time at #wallStart. */
  #base = 0;
  #wallStart = performance.now();
  #speed = 1;
  #paused = false;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(p: Playback, channel: ReplayChannel, onEnd: () => void) {
    this.#records = p.records;
    this.#channel = channel;
    this.#totalMs = Math.max(p.trailer?.durationMs ?? 0, p.records.at(-1)?.tMs ?? 0);
    this.#onEnd = onEnd;
  }

  get position(): number {
    return this.#paused ? this.#base : this.#base + (performance.now() - this.#wallStart) * this.#speed;
  }

  setSpeed(speed: number): void {
    this.#base = this.position;
    this.#wallStart = performance.now();
    this.#speed = speed;
    this.#schedule();
  }

  togglePause(): boolean {
    this.#base = this.position;
    this.#wallStart = performance.now();
    this.#paused = !this.#paused;
    this.#schedule();
    return this.#paused;
  }

  skipToEnd(): void {
    this.#base = Infinity;
    this.#step();
  }

  start(): void {
    this.#step();
  }

  #step = (): void => {
    const now = this.position;
    while (this.#next < this.#records.length && this.#records[this.#next]!.tMs <= now) this.#play(this.#records[this.#next++]!);
    ui.position.textContent = `${clock(Math.min(now, this.#totalMs))} / ${clock(this.#totalMs)}`;
    if (this.#next >= this.#records.length) {
      clearTimeout(this.#timer);
      this.#onEnd();
      return;
    }
    this.#schedule();
  };

  #schedule(): void {
    clearTimeout(this.#timer);
    if (this.#paused || this.#next >= this.#records.length) return;
    const wait = (this.#records[this.#next]!.tMs - this.position) / this.#speed;
    // At least every 250 ms, for the clock.
    this.#timer = setTimeout(this.#step, Math.max(0, Math.min(250, wait)));
  }

  #play(r: PlaybackRecord): void {
    if (r.type === RECORD_DATA) this.#channel.deliver(r.bytes);
    else if (r.type === RECORD_EVENT) showEvent(r.bytes);
  }
}

function showEvent(bytes: Uint8Array): void {
  try {
    const e = JSON.parse(new TextDecoder().decode(bytes)) as { k?: string; x?: number; y?: number; buttons?: number };
    if (e.k === 'pointerEvent') ui.pointer.textContent = `Pointer ${e.x ?? 0},${e.y ?? 0}${e.buttons ? ` (buttons ${e.buttons})` : ''}`;
  } catch {
    // Metadata only: a bad event changes nothing on screen.
  }
}

async function load(): Promise<void> {
  const ticket = new URLSearchParams(location.hash.slice(1)).get('ticket');
  // The ticket is single use; it still leaves the address bar and the history at once.
  history.replaceState(null, '', location.pathname);
  if (!ticket) {
    fail('This playback link is incomplete. Request a new one.');
    return;
  }
  let response: Response;
  try {
    response = await fetch('v1/recordings/playback-data', { headers: { 'X-Playback-Ticket': ticket }, cache: 'no-store' });
  } catch {
    fail('The recording could not be fetched.');
    return;
  }
  if (!response.ok) {
    const body = (await response.json().catch(() => null)) as { error?: { message?: string } } | null;
    fail(body?.error?.message ?? `The recording could not be fetched (HTTP ${response.status}).`);
    return;
  }
  let playback: Playback;
  try {
    playback = readPlayback(await response.arrayBuffer());
  } catch (err) {
    fail((err as Error).message);
    return;
  }
  const h = playback.header;
  document.title = `Recording: ${h.desktopName || h.target}`;
  ui.truncated.hidden = playback.trailer !== null && !playback.trailer.truncated;
  if (playback.trailer === null) ui.truncated.textContent = 'Incomplete';
  const channel = new ReplayChannel();
  const rfb = new RFB(ui.screen, channel as unknown as RawChannel, { shared: true });
  rfb.viewOnly = true;
  rfb.scaleViewport = true;
  rfb.addEventListener('disconnect', () => {
    if (document.body.dataset['state'] !== 'disconnected') setState('failed', 'The recording could not be decoded');
  });
  const label = `${h.desktopName || h.target}, ${new Date(h.startedAt).toLocaleString()}`;
  setState('connected', `Playing ${label}`);
  const player = new Player(playback, channel, () => setState('disconnected', `Played ${label}`));
  ui.speed.addEventListener('change', () => player.setSpeed(Number(ui.speed.value) || 1));
  ui.pause.addEventListener('click', () => {
    ui.pause.textContent = player.togglePause() ? 'Play' : 'Pause';
  });
  ui.end.addEventListener('click', () => player.skipToEnd());
  channel.open();
  player.start();
}

void load();
