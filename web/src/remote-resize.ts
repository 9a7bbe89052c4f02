/**
 * Whether the console endpoint can change its resolution, for the "Resize remote" display mode.
 *
 * noVNC 1.7 only sends SetDesktopSize once the server has sent an ExtendedDesktopSize rectangle
 * (rfbproto "ExtendedDesktopSize Pseudo-encoding"), and it keeps both that and the server's
 * answer to a SetDesktopSize to itself: `RFB._supportsSetDesktopSize` is private, and a refusal
 * is only logged (core/rfb.js `_handleExtendedDesktopSize`). Without this module "Resize remote"
 * on an endpoint that cannot resize does nothing and says nothing.
 *
 * So this wraps two methods of the one RFB instance (never the prototype), to observe, not to
 * change, what noVNC does:
 * - `_framebufferUpdate`: when the first FramebufferUpdate is complete, the server has answered
 *   noVNC's first, non-incremental request. rfbproto: a server that supports the pseudo-encoding
 *   "must send an ExtendedDesktopSize rectangle in response to a FramebufferUpdateRequest with
 *   incremental set to zero", so by then `_supportsSetDesktopSize` is final.
 * - `_handleExtendedDesktopSize`: a rectangle with x = 1 ("this client requested the change")
 *   and y ≠ 0 is the server refusing our SetDesktopSize, y being the status code.
 *
 * Pure (no DOM), so test/web runs it under Node. Pinned to noVNC 1.7 (package-lock.json); if an
 * upgrade renames these members, `watchRemoteResize` returns false and the page keeps noVNC's
 * silent behaviour rather than failing (test/web/console-page.int.test.ts catches the rename).
 */

/** ExtendedDesktopSize status codes (rfbproto "ExtendedDesktopSize Pseudo-encoding"). */
export const RESIZE_STATUS = {
  1: 'resizing is administratively prohibited',
  2: 'out of resources',
  3: 'invalid screen layout',
} as const satisfies Readonly<Record<number, string>>;

export interface RemoteResizeEvents {
  /** Once per connection, after the first complete FramebufferUpdate. */
  supportKnown(supported: boolean): void;
  /** The server refused a SetDesktopSize the page's RFB sent, with this status code (≠ 0). */
  refused(status: number): void;
}

/** The noVNC 1.7 internals used; each checked at run time. */
interface NovncInternals {
  _supportsSetDesktopSize?: unknown;
  _FBU?: { x?: unknown; y?: unknown };
  _framebufferUpdate?: unknown;
  _handleExtendedDesktopSize?: unknown;
}

type Method = (this: unknown, ...args: unknown[]) => unknown;

/** noVNC's own view: the server has sent an ExtendedDesktopSize rectangle, so it may be asked to resize. */
export function serverSupportsResize(rfb: object): boolean {
  return (rfb as NovncInternals)._supportsSetDesktopSize === true;
}

/**
 * Starts observing `rfb` (a noVNC 1.7 RFB, before it connects). Returns false when this noVNC
 * lacks the members used, in which case no event will come.
 */
export function watchRemoteResize(rfb: object, events: RemoteResizeEvents): boolean {
  const inner = rfb as NovncInternals;
  const update = inner._framebufferUpdate;
  const extended = inner._handleExtendedDesktopSize;
  if (typeof update !== 'function' || typeof extended !== 'function' || typeof inner._FBU !== 'object') return false;

  let known = false;
  inner._framebufferUpdate = function (this: unknown, ...args: unknown[]): unknown {
    const done = (update as Method).apply(this, args);
    // `false` means "wait for more bytes"; noVNC calls again with the same message.
    if (done === true && !known) {
      known = true;
      events.supportKnown(serverSupportsResize(rfb));
    }
    return done;
  };
  inner._handleExtendedDesktopSize = function (this: unknown, ...args: unknown[]): unknown {
    // The rectangle header is parsed before the handler runs, which reads the screens after it.
    const { x, y } = inner._FBU ?? {};
    const done = (extended as Method).apply(this, args);
    if (done === true && x === 1 && typeof y === 'number' && y !== 0) events.refused(y);
    return done;
  };
  return true;
}

/** The notice shown when "Resize remote" falls back to scaling. */
export function resizeFallbackText(reason: { readonly kind: 'unsupported' } | { readonly kind: 'view-only' } | { readonly kind: 'refused'; readonly status: number }): string {
  const base = 'This console cannot change its resolution; showing it scaled instead.';
  switch (reason.kind) {
    case 'unsupported':
      return base;
    case 'view-only':
      return 'A view-only console cannot change its resolution; showing it scaled instead.';
    case 'refused': {
      const why = (RESIZE_STATUS as Readonly<Record<number, string>>)[reason.status] ?? `status ${reason.status}`;
      return `${base} (The console refused: ${why}.)`;
    }
  }
}
