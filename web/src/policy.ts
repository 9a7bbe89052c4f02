/**
 * The session policy vncgate sends on the control channel (`{"type":"policy",…}`, see
 * src/proxy/control-channel.ts), and what the page makes of it. vncgate enforces the policy in
 * its relay whatever the page does; the page only shows it and does not offer what would be
 * dropped. Pure (no DOM), so test/web runs it under Node.
 */
import type { ControlMessage } from './control-channel.js';

export const CLIPBOARD_MODES = ['none', 'to-browser', 'to-remote', 'both'] as const;
export type ClipboardMode = (typeof CLIPBOARD_MODES)[number];

export interface PagePolicy {
  readonly viewOnly: boolean;
  readonly clipboard: ClipboardMode;
  readonly maxClipboardBytes: number;
}

/** A policy message as vncgate sends it, or null for anything malformed (then nothing changes). */
export function parsePolicy(message: ControlMessage): PagePolicy | null {
  const { viewOnly, clipboard, maxClipboardBytes } = message;
  if (typeof viewOnly !== 'boolean') return null;
  const mode = CLIPBOARD_MODES.find((m) => m === clipboard);
  if (mode === undefined) return null;
  if (typeof maxClipboardBytes !== 'number' || !Number.isInteger(maxClipboardBytes) || maxClipboardBytes < 0) return null;
  return { viewOnly, clipboard: mode, maxClipboardBytes };
}

/** What the toolbar and clipboard panel offer under a policy. */
export interface ClipboardView {
  /** The panel's Send button may be used (text to the remote machine). */
  readonly canSend: boolean;
  /** Text from the remote machine is shown in the panel. */
  readonly canReceive: boolean;
  /** A line for the panel saying what the console allows; '' when everything is. */
  readonly note: string;
}

export function clipboardView(policy: PagePolicy): ClipboardView {
  const canSend = !policy.viewOnly && (policy.clipboard === 'to-remote' || policy.clipboard === 'both');
  const canReceive = policy.clipboard === 'to-browser' || policy.clipboard === 'both';
  let note = '';
  if (!canSend && !canReceive) note = 'The clipboard is turned off for this console.';
  else if (!canSend) note = 'This console only copies text from the remote machine.';
  else if (!canReceive) note = 'This console only accepts text sent to the remote machine.';
  return { canSend, canReceive, note };
}

/** UTF-8 length of `text`, the most bytes noVNC may send for it. */
export function utf8Length(text: string): number {
  return new TextEncoder().encode(text).length;
}

/** Why `text` will not reach the remote machine under `policy`, or null if it may be sent. */
export function clipboardRefusal(policy: PagePolicy, text: string): string | null {
  if (!clipboardView(policy).canSend) return 'This console does not accept clipboard text.';
  const bytes = utf8Length(text);
  if (bytes > policy.maxClipboardBytes) return `The text is ${bytes} bytes; this console accepts at most ${policy.maxClipboardBytes}.`;
  return null;
}
