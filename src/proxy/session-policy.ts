import { ClientMessageFilter, MAX_CLIPBOARD_LIMIT, resolveClientMessagePolicy, type ClientMessagePolicy } from '../rfb/index.js';
import type { ControlChannel } from './control-channel.js';

/** A restricting policy as logs and audit events show it (no limit: null). */
export type ReportedPolicy = { viewOnly: boolean; clipboard: ClientMessagePolicy['clipboard']; maxClipboardBytes: number | null };

/** The policy for the session's started line and event; null when it restricts nothing. */
export function reportedPolicy(policy: ClientMessagePolicy | undefined): ReportedPolicy | null {
  if (policy === undefined || resolveClientMessagePolicy(policy).unrestricted) return null;
  const max = policy.maxClipboardBytes;
  return { viewOnly: policy.viewOnly, clipboard: policy.clipboard, maxClipboardBytes: Number.isFinite(max) ? max : null };
}

/** Messages a session's filter dropped, by what they would have done; never their content. */
export type DroppedMessages = { input: number; clipboard: number; other: number };

/**
 * A session's view-only and clipboard policy (issue 18), once its authorization has said what it
 * is: told to vncgate's own page on the control channel (which shows it and sets noVNC's own
 * view-only flag), and enforced in the relay by a ClientMessageFilter on the browser's messages.
 * A policy that restricts nothing gets no filter: the relay path stays exactly as without one.
 */
export class SessionPolicy {
  #filter: ClientMessageFilter | null = null;
  /** The policy as authorized (a shared console's viewer enforces it itself); undefined until then or without one. */
  policy: ClientMessagePolicy | undefined;

  /** Sets the policy (once, after authorization) and tells the page. */
  apply(policy: ClientMessagePolicy | undefined, control: ControlChannel): void {
    if (policy === undefined) return;
    this.policy = policy;
    const rules = resolveClientMessagePolicy(policy);
    this.#filter = rules.unrestricted ? null : new ClientMessageFilter(policy);
    control.send({
      type: 'policy',
      viewOnly: policy.viewOnly,
      clipboard: policy.clipboard,
      // No limit (Infinity) is not JSON: the largest a console could be sent says the same.
      maxClipboardBytes: Math.min(policy.maxClipboardBytes, MAX_CLIPBOARD_LIMIT),
    });
  }

  /** The relay's filter for browser → console, or null when nothing is restricted. */
  get filter(): ClientMessageFilter | null {
    return this.#filter;
  }

  /** What the filter dropped, for the session's end line and audit event; undefined without a filter. */
  dropped(): DroppedMessages | undefined {
    const f = this.#filter;
    if (f === null) return undefined;
    const d = f.stats().dropped;
    const input = d.keyEvent + d.pointerEvent + d.qemuExtendedKeyEvent;
    const clipboard = d.clientCutText + d.clipboardCaps + d.clipboardRequest + d.clipboardPeek + d.clipboardNotify + d.clipboardProvide + d.clipboardOther;
    return { input, clipboard, other: f.droppedMessages - input - clipboard };
  }
}
