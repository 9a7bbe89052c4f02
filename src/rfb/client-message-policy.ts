import { PSEUDO_ENCODING } from './constants.js';

/** Which way clipboard text may travel. "to-browser" is from the console to the person's browser. */
export const CLIPBOARD_POLICIES = ['none', 'to-browser', 'to-remote', 'both'] as const;
export type ClipboardPolicy = (typeof CLIPBOARD_POLICIES)[number];

/** What a session's browser may do to the console, as a token grants it (issue 18). */
export type ClientMessagePolicy = {
  /** Drop everything that changes the console: keys, pointer, clipboard writes, resize, power. */
  viewOnly: boolean;
  clipboard: ClipboardPolicy;
  /** Largest clipboard payload forwarded to the console; a larger one is skipped, not buffered. */
  maxClipboardBytes: number;
  /** SetDesktopSize; default: allowed unless view-only. */
  allowResize?: boolean;
  /** xvp shutdown/reboot/reset; default: allowed unless view-only. */
  allowPower?: boolean;
};

/** The policy resolved into what the filter checks per message. */
export type ClientMessageRules = {
  readonly input: boolean;
  readonly clipboardToRemote: boolean;
  readonly clipboardToBrowser: boolean;
  readonly resize: boolean;
  readonly power: boolean;
  readonly maxClipboardBytes: number;
  /** Encodings removed from the browser's SetEncodings before the console sees it. */
  readonly removedEncodings: readonly number[];
  /** Nothing is dropped or rewritten: the output is the input, byte for byte. */
  readonly unrestricted: boolean;
};

/** A clipboard payload at least this long cannot occur (RFB lengths are 32-bit). */
const NO_CLIPBOARD_LIMIT = 2 ** 32;

/**
 * Resolves a policy. A malformed policy is our own bug (the token layer validates), so it throws.
 *
 * Two pseudo-encodings are removed from SetEncodings, because a proxy that only sees the browser's
 * side cannot tell whether the console accepted them, and both change how messages are framed:
 * - Extended Clipboard, when the console may not send clipboard to the browser: without it the
 *   console cannot use the Extended Clipboard's request/provide exchange (which is also how it would
 *   ask for the browser's clipboard). Plain ServerCutText (§7.6.4) still reaches the browser: see
 *   README "View-only and clipboard" for that limitation.
 * - ExtendedMouseButtons, whenever anything is restricted: a PointerEvent with bit 7 set is 7 bytes
 *   long only if the console announced the extension. If the filter forwarded one as 7 bytes to a
 *   console that reads 6, the seventh byte would start a message the filter never looked at (an
 *   xvp reboot, a ClientCutText), smuggled past the policy. Removed, no console announces it, and
 *   every PointerEvent is the §7.5.5 6 bytes on both sides. Only mouse buttons 8 and up are lost.
 */
export function resolveClientMessagePolicy(policy: ClientMessagePolicy): ClientMessageRules {
  if (!CLIPBOARD_POLICIES.includes(policy.clipboard)) throw new TypeError(`unknown clipboard policy ${String(policy.clipboard)}`);
  const max = policy.maxClipboardBytes;
  if (!(max >= 0) || (!Number.isInteger(max) && max !== Infinity)) throw new TypeError(`maxClipboardBytes must be a whole number >= 0, not ${max}`);
  const input = !policy.viewOnly;
  const clipboardToRemote = input && (policy.clipboard === 'to-remote' || policy.clipboard === 'both');
  const clipboardToBrowser = policy.clipboard === 'to-browser' || policy.clipboard === 'both';
  const resize = input && (policy.allowResize ?? true);
  const power = input && (policy.allowPower ?? true);
  const unrestricted = input && clipboardToRemote && clipboardToBrowser && resize && power && max >= NO_CLIPBOARD_LIMIT;
  const removedEncodings: number[] = [];
  if (!clipboardToBrowser) removedEncodings.push(PSEUDO_ENCODING.extendedClipboard);
  if (!unrestricted) removedEncodings.push(PSEUDO_ENCODING.extendedMouseButtons);
  return { input, clipboardToRemote, clipboardToBrowser, resize, power, maxClipboardBytes: max, removedEncodings, unrestricted };
}

/** The largest clipboard limit that means anything: RFB's clipboard lengths are signed 32-bit. */
export const MAX_CLIPBOARD_LIMIT = 2 ** 31;

/**
 * What a token may add to its profile's policy (issue 18). Every field only ever narrows: the
 * session gets the narrowest of the two (narrowPolicy), so a token cannot open what its profile
 * closes.
 */
export type PolicyNarrowing = {
  readonly viewOnly?: true;
  readonly clipboard?: ClipboardPolicy;
  readonly maxClipboardBytes?: number;
};

const toRemote = (c: ClipboardPolicy): boolean => c === 'to-remote' || c === 'both';
const toBrowser = (c: ClipboardPolicy): boolean => c === 'to-browser' || c === 'both';

/** The narrowest of a profile's policy and a token's narrowing. */
export function narrowPolicy(base: ClientMessagePolicy, narrowing: PolicyNarrowing | undefined): ClientMessagePolicy {
  if (narrowing === undefined) return base;
  const c = narrowing.clipboard ?? base.clipboard;
  const remote = toRemote(base.clipboard) && toRemote(c);
  const browser = toBrowser(base.clipboard) && toBrowser(c);
  return {
    ...base,
    viewOnly: base.viewOnly || narrowing.viewOnly === true,
    clipboard: remote ? (browser ? 'both' : 'to-remote') : browser ? 'to-browser' : 'none',
    maxClipboardBytes: Math.min(base.maxClipboardBytes, narrowing.maxClipboardBytes ?? Infinity),
  };
}

export type NarrowingParse = { readonly ok: true; readonly narrowing: PolicyNarrowing | undefined } | { readonly ok: false; readonly problems: string[] };

/**
 * A narrowing from untrusted JSON (a token API body, a stored record), strictly: only the three
 * fields, each of its type; `viewOnly: false` narrows nothing and is dropped. Empty: undefined.
 */
export function parsePolicyNarrowing(value: Readonly<Record<string, unknown>>): NarrowingParse {
  const problems: string[] = [];
  for (const key of Object.keys(value)) if (key !== 'viewOnly' && key !== 'clipboard' && key !== 'maxClipboardBytes') problems.push(`unknown field ${JSON.stringify(key.slice(0, 40))}`);
  const { viewOnly, clipboard, maxClipboardBytes } = value;
  if (viewOnly !== undefined && typeof viewOnly !== 'boolean') problems.push('viewOnly must be true or false');
  if (clipboard !== undefined && !CLIPBOARD_POLICIES.includes(clipboard as ClipboardPolicy)) problems.push(`clipboard must be one of ${CLIPBOARD_POLICIES.join(', ')}`);
  const maxOk = typeof maxClipboardBytes === 'number' && Number.isInteger(maxClipboardBytes) && maxClipboardBytes >= 0 && maxClipboardBytes <= MAX_CLIPBOARD_LIMIT;
  if (maxClipboardBytes !== undefined && !maxOk) problems.push(`maxClipboardBytes must be a whole number from 0 to ${MAX_CLIPBOARD_LIMIT}`);
  if (problems.length > 0) return { ok: false, problems };
  const narrowing: PolicyNarrowing = {
    ...(viewOnly === true ? { viewOnly: true as const } : {}),
    ...(clipboard !== undefined ? { clipboard: clipboard as ClipboardPolicy } : {}),
    ...(maxClipboardBytes !== undefined ? { maxClipboardBytes: maxClipboardBytes as number } : {}),
  };
  return { ok: true, narrowing: Object.keys(narrowing).length > 0 ? narrowing : undefined };
}
