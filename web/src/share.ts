/**
 * A shared console's control state as vncgate sends it on the control channel
 * (`{"type":"control","shared":true,"hasControl":…,"viewers":…,"requests":…,"requested":…,"controlled":…}`,
 * src/proxy/share/hub.ts) and what the toolbar makes of it: a badge and one button whose action
 * goes back as `{"type":"control","action":"request"|"release"|"grant"}`. Pure (no DOM), so
 * test/web runs it under Node; share-ui.ts puts it on the page.
 */
import type { ControlMessage } from './control-channel.js';

export interface ShareState {
  readonly hasControl: boolean;
  /** False for a view-only link: it can never have control. */
  readonly canControl: boolean;
  readonly viewers: number;
  /** Viewers waiting for control (shown to the one who has it). */
  readonly requests: number;
  /** This viewer has asked for control and is waiting. */
  readonly requested: boolean;
  /** Somebody has control. */
  readonly controlled: boolean;
}

export type ShareAction = 'request' | 'release' | 'grant';

/** A control message, or null for anything malformed (then nothing changes). */
export function parseShareState(m: ControlMessage): ShareState | null {
  const { hasControl, viewers, requests, requested, controlled } = m;
  const canControl = m['canControl'] !== false;
  if (typeof hasControl !== 'boolean' || typeof requested !== 'boolean' || typeof controlled !== 'boolean') return null;
  if (typeof viewers !== 'number' || !Number.isInteger(viewers) || viewers < 0) return null;
  if (typeof requests !== 'number' || !Number.isInteger(requests) || requests < 0) return null;
  return { hasControl, canControl, viewers, requests, requested, controlled };
}

export interface ShareView {
  readonly badge: string;
  /** The button's label, and what it asks for (null: shown disabled). */
  readonly button: string;
  readonly action: ShareAction | null;
  /** The page sends no input: another viewer has control. */
  readonly watching: boolean;
}

export function shareView(s: ShareState): ShareView {
  const badge = `Shared: ${s.viewers} viewer${s.viewers === 1 ? '' : 's'}${s.hasControl ? ', you have control' : s.controlled ? ', watching' : ', nobody has control'}`;
  if (s.hasControl) {
    if (s.requests > 0) return { badge, button: `Give control (${s.requests} waiting)`, action: 'grant', watching: false };
    return { badge, button: 'Release control', action: 'release', watching: false };
  }
  if (!s.canControl) return { badge, button: 'View only', action: null, watching: true };
  if (s.requested) return { badge, button: 'Control requested…', action: 'release', watching: true };
  return { badge, button: s.controlled ? 'Request control' : 'Take control', action: 'request', watching: true };
}
