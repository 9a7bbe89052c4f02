import { describe, expect, it } from 'vitest';
import { parseShareState, shareView } from '../../web/src/share.js';

const base = { type: 'control', shared: true, hasControl: false, viewers: 2, requests: 0, requested: false, controlled: true };

describe('shared console toolbar (web/src/share.ts)', () => {
  it('reads the control message, refusing malformed ones', () => {
    expect(parseShareState(base)).toEqual({ hasControl: false, canControl: true, viewers: 2, requests: 0, requested: false, controlled: true });
    expect(parseShareState({ ...base, viewers: -1 })).toBeNull();
    expect(parseShareState({ ...base, viewers: 1.5 })).toBeNull();
    expect(parseShareState({ ...base, hasControl: 'yes' })).toBeNull();
    expect(parseShareState({ type: 'control' })).toBeNull();
  });

  it('watcher: request; waiting: cancel; controller: release, or give when someone waits', () => {
    expect(shareView(parseShareState(base)!)).toEqual({ badge: 'Shared: 2 viewers, watching', button: 'Request control', action: 'request', watching: true });
    expect(shareView(parseShareState({ ...base, controlled: false })!)).toMatchObject({ badge: 'Shared: 2 viewers, nobody has control', button: 'Take control', action: 'request' });
    expect(shareView(parseShareState({ ...base, requested: true })!)).toMatchObject({ button: 'Control requested…', action: 'release', watching: true });
    expect(shareView(parseShareState({ ...base, hasControl: true })!)).toMatchObject({ badge: 'Shared: 2 viewers, you have control', action: 'release', watching: false });
    expect(shareView(parseShareState({ ...base, hasControl: true, requests: 2 })!)).toMatchObject({ button: 'Give control (2 waiting)', action: 'grant' });
    expect(shareView(parseShareState({ ...base, canControl: false })!)).toMatchObject({ button: 'View only', action: null, watching: true });
    expect(shareView(parseShareState({ ...base, hasControl: true, viewers: 1 })!).badge).toBe('Shared: 1 viewer, you have control');
  });
});
