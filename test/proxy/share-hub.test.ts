import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { VncgateError } from '../../src/errors.js';
import type { BackendConnection } from '../../src/proxy/backend-connector.js';
import { ShareHub, type ControlView, type HubViewer } from '../../src/proxy/share/hub.js';
import { ControlState } from '../../src/proxy/share/control-state.js';
import { encodeServerInit, type ServerInit } from '../../src/rfb/index.js';
import { SHARED_ENCODINGS } from '../../src/rfb/server-message-framing.js';
import { messageBytes, stream } from '../rfb/server-message-vectors.js';

class FakeBackend extends EventEmitter {
  written: Buffer[] = [];
  paused = true;
  destroyed = false;
  write(b: Buffer): boolean {
    this.written.push(Buffer.from(b));
    return true;
  }
  pause(): this {
    this.paused = true;
    return this;
  }
  resume(): this {
    this.paused = false;
    return this;
  }
  destroy(): this {
    if (!this.destroyed) {
      this.destroyed = true;
      this.emit('close');
    }
    return this;
  }
  /** Client messages written since the last call, by type byte. */
  take(): Buffer[] {
    const w = this.written;
    this.written = [];
    return w;
  }
}

class FakeViewer implements HubViewer {
  received: Buffer[] = [];
  queuedBytes = 0;
  ended: VncgateError | null = null;
  view: ControlView | null = null;
  drains: (() => void)[] = [];
  constructor(
    readonly canControl = true,
    readonly takeControl = false,
  ) {}
  send(bytes: Buffer, drained?: () => void): void {
    this.received.push(Buffer.from(bytes));
    if (drained) this.drains.push(drained);
  }
  end(error: VncgateError): void {
    this.ended = error;
  }
  controlChanged(view: ControlView): void {
    this.view = view;
  }
  get bytes(): Buffer {
    return Buffer.concat(this.received);
  }
}

const PF32 = { bitsPerPixel: 32, depth: 24, bigEndian: false, trueColour: true, redMax: 255, greenMax: 255, blueMax: 255, redShift: 16, greenShift: 8, blueShift: 0 };
const INIT: ServerInit = { width: 64, height: 48, pixelFormat: PF32, name: 'hub-test' };
const NOVNC_PF = Buffer.from([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0]);

function makeHub(opts: { viewerQueueBytes?: number; highWaterMarkBytes?: number } = {}): { hub: ShareHub; backend: FakeBackend; closed: ShareHub[] } {
  const backend = new FakeBackend();
  const closed: ShareHub[] = [];
  const conn = { socket: backend as unknown as Socket } as BackendConnection;
  const hub = new ShareHub(conn, INIT, Buffer.alloc(0), {
    log: pino({ level: 'silent' }),
    highWaterMarkBytes: opts.highWaterMarkBytes ?? 1_000_000,
    viewerQueueBytes: opts.viewerQueueBytes ?? 10_000_000,
    onClosed: (h) => closed.push(h),
  });
  return { hub, backend, closed };
}

function join(hub: ShareHub, v: FakeViewer): FakeViewer {
  hub.addMember();
  hub.attach(v);
  return v;
}

describe('ShareHub (fake sockets)', () => {
  it('asks the endpoint only for encodings a joiner can join: no Zlib, Tight or ZRLE', () => {
    const { backend } = makeHub();
    const [setEncodings] = backend.take();
    expect(setEncodings![0]).toBe(2);
    const n = setEncodings!.readUInt16BE(2);
    const list = Array.from({ length: n }, (_, i) => setEncodings!.readInt32BE(4 + 4 * i));
    expect(list).toEqual(SHARED_ENCODINGS);
    for (const stateful of [6, 7, 16, -260]) expect(list).not.toContain(stateful);
    expect(backend.paused).toBe(false);
  });

  it('a joiner between messages gets ServerInit at once; one in mid-message from the next boundary, with the size and cursor as of then', () => {
    const { hub, backend } = makeHub();
    const a = join(hub, new FakeViewer());
    expect(a.bytes.equals(encodeServerInit(INIT))).toBe(true);
    const s = stream([
      { kind: 'update', rects: [{ kind: 'cursor', w: 2, h: 2 }, { kind: 'desktopSize', w: 80, h: 60 }] },
      { kind: 'update', rects: [{ kind: 'raw', w: 3, h: 3 }] },
    ]);
    const cut = s.ends[0]!.end - 5;
    backend.emit('data', s.bytes.subarray(0, cut));
    const b = join(hub, new FakeViewer());
    expect(b.received).toEqual([]);
    backend.emit('data', s.bytes.subarray(cut));
    const cursorRect = messageBytes({ kind: 'update', rects: [{ kind: 'cursor', w: 2, h: 2 }] }).subarray(4);
    const expected = Buffer.concat([encodeServerInit({ ...INIT, width: 80, height: 60 }), Buffer.from([0, 0, 0, 1]), cursorRect, s.bytes.subarray(s.ends[0]!.end)]);
    expect(b.bytes.equals(expected)).toBe(true);
    expect(a.bytes.equals(Buffer.concat([encodeServerInit(INIT), s.bytes]))).toBe(true);
    expect(hub.init).toMatchObject({ width: 80, height: 60 });
  });

  it('merges update requests: one incremental outstanding, the next once the update ends; non-incremental at once', () => {
    const { hub, backend } = makeHub();
    join(hub, new FakeViewer());
    backend.take();
    hub.updateRequest(true);
    hub.updateRequest(true);
    hub.updateRequest(true);
    expect(backend.take().map((b) => [b[0], b[1]])).toEqual([[3, 1]]);
    backend.emit('data', messageBytes({ kind: 'update', rects: [{ kind: 'raw', w: 1, h: 1 }] }));
    const next = backend.take();
    expect(next.map((b) => [b[0], b[1]])).toEqual([[3, 1]]);
    expect(next[0]!.readUInt16BE(6)).toBe(64);
    // Nothing more was asked for: the next update brings no request.
    backend.emit('data', messageBytes({ kind: 'update', rects: [] }));
    expect(backend.take()).toEqual([]);
    // A joiner's full-frame request does not wait for the outstanding one; it answers the waiting ones too.
    hub.updateRequest(true);
    hub.updateRequest(true);
    hub.updateRequest(false);
    expect(backend.take().map((b) => [b[0], b[1]])).toEqual([[3, 1], [3, 0]]);
    backend.emit('data', messageBytes({ kind: 'update', rects: [] }));
    expect(backend.take()).toEqual([]);
  });

  it('input reaches the endpoint from the viewer with control only; control moves by request and grant', () => {
    const { hub, backend } = makeHub();
    const a = join(hub, new FakeViewer());
    const b = join(hub, new FakeViewer());
    const ro = join(hub, new FakeViewer(false));
    backend.take();
    const key = Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x61]);
    expect(hub.input(b, key)).toBe(false);
    expect(hub.input(ro, key)).toBe(false);
    expect(hub.input(a, key)).toBe(true);
    expect(backend.take()).toEqual([key]);
    expect(a.view).toMatchObject({ hasControl: true, viewers: 3, requests: 0 });
    hub.controlAction(ro, 'request');
    expect(a.view?.requests).toBe(0);
    hub.controlAction(b, 'request');
    expect(a.view).toMatchObject({ hasControl: true, requests: 1 });
    expect(b.view).toMatchObject({ hasControl: false, requested: true });
    hub.controlAction(a, 'grant');
    expect(b.view).toMatchObject({ hasControl: true, requests: 0 });
    expect(hub.input(a, key)).toBe(false);
    expect(hub.input(b, key)).toBe(true);
    // The controller leaves: the longest-connected viewer that may control takes over.
    hub.removeMember(b);
    expect(a.view).toMatchObject({ hasControl: true, viewers: 2 });
  });

  it('ends a viewer that falls viewerQueueBytes behind, not the others; pauses the endpoint only while every viewer is behind', () => {
    const { hub, backend } = makeHub({ viewerQueueBytes: 1000, highWaterMarkBytes: 100 });
    const fast = join(hub, new FakeViewer());
    const slow = join(hub, new FakeViewer());
    slow.queuedBytes = 990;
    const msg = messageBytes({ kind: 'update', rects: [{ kind: 'raw', w: 2, h: 2 }] });
    backend.emit('data', msg);
    expect(slow.ended?.code).toBe('SESSION_ERR_SHARED_SLOW');
    expect(fast.ended).toBeNull();
    expect(fast.view?.viewers).toBe(1);
    expect(backend.paused).toBe(false);
    fast.queuedBytes = 500;
    backend.emit('data', msg);
    expect(backend.paused).toBe(true);
    fast.queuedBytes = 0;
    for (const d of fast.drains) d();
    expect(backend.paused).toBe(false);
  });

  it('pixel format: the first becomes the connection\'s (sent to the endpoint), a different one is refused, the same accepted', () => {
    const { hub, backend } = makeHub();
    backend.take();
    expect(hub.pixelFormat(NOVNC_PF)).toBe(true);
    expect(backend.take()).toEqual([Buffer.concat([Buffer.from([0, 0, 0, 0]), NOVNC_PF])]);
    expect(hub.pixelFormat(Buffer.from(NOVNC_PF))).toBe(true);
    const low = Buffer.from(NOVNC_PF);
    low[0] = 8;
    expect(hub.pixelFormat(low)).toBe(false);
    expect(hub.init.pixelFormat).toMatchObject({ bitsPerPixel: 32, redShift: 0, blueShift: 16 });
  });

  it('the last member leaving closes the endpoint connection; the endpoint closing ends every viewer', () => {
    const one = makeHub();
    const a = join(one.hub, new FakeViewer());
    const b = join(one.hub, new FakeViewer());
    one.hub.removeMember(a);
    expect(one.backend.destroyed).toBe(false);
    one.hub.removeMember(b);
    expect(one.backend.destroyed).toBe(true);
    expect(one.closed).toEqual([one.hub]);
    expect(a.ended).toBeNull();

    const two = makeHub();
    const c = join(two.hub, new FakeViewer());
    two.backend.emit('close');
    expect(c.ended?.code).toBe('SESSION_ERR_BACKEND_CLOSED');
    expect(two.hub.closed).toBe(true);
    expect(two.hub.addMember()).toBe(false);
  });

  it('an encoding it did not ask for ends the connection and every viewer (RFB_ERR_PROTOCOL)', () => {
    const { hub, backend } = makeHub();
    const a = join(hub, new FakeViewer());
    const zrle = Buffer.from([0, 0, 0, 1, 0, 0, 0, 0, 0, 16, 0, 16, 0, 0, 0, 16]);
    backend.emit('data', zrle);
    expect(a.ended?.code).toBe('RFB_ERR_PROTOCOL');
    expect(backend.destroyed).toBe(true);
  });
});

describe('ControlState', () => {
  it('first viewer that may control has it; a `control` token takes it; release passes to the first requester or nobody', () => {
    const c = new ControlState<string>();
    expect(c.add('ro', false, false)).toBe(false);
    expect(c.controller).toBeNull();
    c.add('a', true, false);
    c.add('b', true, false);
    expect(c.controller).toBe('a');
    c.add('boss', true, true);
    expect(c.controller).toBe('boss');
    expect(c.apply('a', 'grant')).toBe(false);
    c.apply('a', 'request');
    c.apply('b', 'request');
    expect(c.requests).toEqual(['a', 'b']);
    c.apply('boss', 'release');
    expect(c.controller).toBe('a');
    c.apply('b', 'release');
    expect(c.requests).toEqual([]);
    c.apply('a', 'release');
    expect(c.controller).toBeNull();
    expect(c.apply('ro', 'request')).toBe(false);
    c.apply('b', 'request');
    expect(c.controller).toBe('b');
    c.remove('b');
    expect(c.controller).toBe('a');
    expect(c.viewers).toBe(3);
  });
});
