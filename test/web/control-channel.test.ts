import { describe, expect, it } from 'vitest';
import { CONTROL_PROTOCOL, ControlChannel, PAGE_PROTOCOLS, type ControlMessage, type SocketLike } from '../../web/src/control-channel.js';
import { clipboardRefusal, clipboardView, parsePolicy } from '../../web/src/policy.js';

type Listener = (ev: { readonly data?: unknown }) => void;

/** A browser WebSocket stand-in: the test fires its events and reads what was sent. */
class StandInSocket implements SocketLike {
  binaryType = 'blob';
  protocol = '';
  readyState = 0;
  readonly sent: unknown[] = [];
  closed: unknown[] | null = null;
  readonly #listeners = new Map<string, Listener[]>();
  send(data: unknown): void {
    this.sent.push(data);
  }
  close(...args: unknown[]): void {
    this.closed = args;
  }
  addEventListener(type: string, listener: Listener): void {
    this.#listeners.set(type, [...(this.#listeners.get(type) ?? []), listener]);
  }
  fire(type: string, ev: { data?: unknown } = {}): void {
    for (const l of this.#listeners.get(type) ?? []) l(ev);
  }
}

/** The property check noVNC 1.7 makes before it accepts a raw channel (core/websock.js `attach`). */
function novncAccepts(channel: object): boolean {
  const props = [...Object.keys(channel), ...Object.getOwnPropertyNames(Object.getPrototypeOf(channel))];
  return ['send', 'close', 'binaryType', 'onerror', 'onmessage', 'onopen', 'protocol', 'readyState'].every((p) => props.includes(p));
}

describe('page control channel (noVNC raw channel wrapper)', () => {
  it('offers vncgate.v1 before binary, and passes noVNC\'s raw-channel property check', () => {
    expect(PAGE_PROTOCOLS).toEqual([CONTROL_PROTOCOL, 'binary']);
    expect(novncAccepts(new ControlChannel(new StandInSocket()))).toBe(true);
  });

  it('gives noVNC only binary frames; text frames go to the listeners of their type', () => {
    const ws = new StandInSocket();
    const channel = new ControlChannel(ws);
    expect(ws.binaryType).toBe('arraybuffer');
    const binary: unknown[] = [];
    const policies: ControlMessage[] = [];
    const opened: unknown[] = [];
    channel.onmessage = (ev) => binary.push((ev as { data: unknown }).data);
    channel.onopen = (ev) => opened.push(ev);
    channel.on('policy', (m) => policies.push(m));
    ws.protocol = CONTROL_PROTOCOL;
    ws.readyState = 1;
    ws.fire('open');
    const frame = new ArrayBuffer(4);
    ws.fire('message', { data: frame });
    ws.fire('message', { data: '{"type":"policy","viewOnly":true}' });
    ws.fire('message', { data: '{"type":"other"}' });
    ws.fire('message', { data: 'not json' });
    ws.fire('message', { data: '["policy"]' });
    expect(opened).toHaveLength(1);
    expect(binary).toEqual([frame]);
    expect(policies).toEqual([{ type: 'policy', viewOnly: true }]);
    expect(channel.negotiated).toBe(true);
    expect(channel.protocol).toBe(CONTROL_PROTOCOL);
    expect(channel.readyState).toBe(1);
  });

  it('sends control requests only when negotiated; RFB bytes always', () => {
    const ws = new StandInSocket();
    const channel = new ControlChannel(ws);
    ws.protocol = 'binary';
    ws.readyState = 1;
    expect(channel.request({ type: 'handover' })).toBe(false);
    channel.send(new Uint8Array([1, 2]));
    expect(ws.sent).toEqual([new Uint8Array([1, 2])]);
    ws.protocol = CONTROL_PROTOCOL;
    expect(channel.request({ type: 'handover' })).toBe(true);
    expect(ws.sent[1]).toBe('{"type":"handover"}');
    channel.close();
    expect(ws.closed).toEqual([]);
  });
});

describe('page policy', () => {
  it('parses what vncgate sends and refuses anything else', () => {
    expect(parsePolicy({ type: 'policy', viewOnly: true, clipboard: 'none', maxClipboardBytes: 0 })).toEqual({ viewOnly: true, clipboard: 'none', maxClipboardBytes: 0 });
    expect(parsePolicy({ type: 'policy', viewOnly: 'yes', clipboard: 'none', maxClipboardBytes: 0 })).toBeNull();
    expect(parsePolicy({ type: 'policy', viewOnly: false, clipboard: 'all', maxClipboardBytes: 0 })).toBeNull();
    expect(parsePolicy({ type: 'policy', viewOnly: false, clipboard: 'both', maxClipboardBytes: -1 })).toBeNull();
    expect(parsePolicy({ type: 'policy', viewOnly: false, clipboard: 'both' })).toBeNull();
  });

  it('offers sending and receiving clipboard text only where the policy allows it', () => {
    const p = (viewOnly: boolean, clipboard: 'none' | 'to-browser' | 'to-remote' | 'both') => ({ viewOnly, clipboard, maxClipboardBytes: 4 });
    expect(clipboardView(p(false, 'both'))).toEqual({ canSend: true, canReceive: true, note: '' });
    expect(clipboardView(p(false, 'to-browser'))).toMatchObject({ canSend: false, canReceive: true });
    expect(clipboardView(p(false, 'to-remote'))).toMatchObject({ canSend: true, canReceive: false });
    expect(clipboardView(p(false, 'none'))).toMatchObject({ canSend: false, canReceive: false });
    expect(clipboardView(p(true, 'both'))).toMatchObject({ canSend: false, canReceive: true });
    expect(clipboardRefusal(p(false, 'both'), 'abcd')).toBeNull();
    expect(clipboardRefusal(p(false, 'both'), 'abcdé')).toMatch(/6 bytes/);
    expect(clipboardRefusal(p(false, 'to-browser'), 'a')).not.toBeNull();
  });
});
