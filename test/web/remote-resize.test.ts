import { describe, expect, it } from 'vitest';
import { resizeFallbackText, watchRemoteResize } from '../../web/src/remote-resize.js';

/** The shape of noVNC 1.7's RFB internals that remote-resize.ts observes (core/rfb.js). */
class FakeNovnc {
  _supportsSetDesktopSize = false;
  _FBU = { x: 0, y: 0 };
  /** Each call: `true` once the update is complete, `false` while bytes are missing. */
  _framebufferUpdate(): boolean {
    return this.pendingUpdates.shift() ?? true;
  }
  _handleExtendedDesktopSize(): boolean {
    this._supportsSetDesktopSize = true;
    return true;
  }
  pendingUpdates: boolean[] = [];
}

function watched(): { rfb: FakeNovnc; support: boolean[]; refused: number[] } {
  const rfb = new FakeNovnc();
  const support: boolean[] = [];
  const refused: number[] = [];
  expect(watchRemoteResize(rfb, { supportKnown: (s) => support.push(s), refused: (s) => refused.push(s) })).toBe(true);
  return { rfb, support, refused };
}

describe('issue 16: watchRemoteResize', () => {
  it('reports "cannot resize" once the first framebuffer update completes without ExtendedDesktopSize', () => {
    const { rfb, support } = watched();
    rfb.pendingUpdates = [false, false];
    rfb._framebufferUpdate();
    rfb._framebufferUpdate();
    expect(support).toEqual([]); // still waiting for the rest of the first update
    rfb._framebufferUpdate();
    rfb._framebufferUpdate();
    expect(support).toEqual([false]); // once per connection
  });

  it('reports "can resize" when the first update carried ExtendedDesktopSize', () => {
    const { rfb, support } = watched();
    rfb._handleExtendedDesktopSize();
    rfb._framebufferUpdate();
    expect(support).toEqual([true]);
  });

  it('reports a refused SetDesktopSize (x = 1, y = status ≠ 0), not the server\'s own changes or an accepted one', () => {
    const { rfb, refused } = watched();
    for (const [x, y] of [[0, 0], [1, 0], [2, 0], [1, 1], [1, 3]] as const) {
      rfb._FBU = { x, y };
      rfb._handleExtendedDesktopSize();
    }
    expect(refused).toEqual([1, 3]);
  });

  it('returns false, and never calls back, for an RFB without these internals (a noVNC upgrade)', () => {
    expect(watchRemoteResize({}, { supportKnown: () => undefined, refused: () => undefined })).toBe(false);
  });

  it('says what happened, with the refusal reason', () => {
    expect(resizeFallbackText({ kind: 'unsupported' })).toBe('This console cannot change its resolution; showing it scaled instead.');
    expect(resizeFallbackText({ kind: 'refused', status: 1 })).toBe(
      'This console cannot change its resolution; showing it scaled instead. (The console refused: resizing is administratively prohibited.)',
    );
    expect(resizeFallbackText({ kind: 'refused', status: 9 })).toContain('status 9');
  });
});
