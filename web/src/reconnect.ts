/**
 * The page's side of reconnect grants (src/proxy/reconnect.ts). The page makes up a key when it
 * loads (32 random bytes, kept in memory only) and offers it on every connection as the
 * subprotocol `vncgate.key.<key>`; vncgate sends a grant on the control channel
 * (`{"type":"reconnect","grant":…,"ttlSeconds":…}`), bound to that key and, by default, to the
 * page's address. When the console drops, the next connection presents the grant (`?grant=`
 * instead of the used token) with the same key, and gets a fresh grant of its own. A grant is
 * kept until a newer one arrives or its window (counted from the drop) has passed: a try that
 * vncgate refused before looking at it (a draining replica) leaves it usable.
 *
 * Pure (no DOM), so test/web runs it under Node.
 */

export const KEY_PROTOCOL_PREFIX = 'vncgate.key.';

/** How soon a console that dropped is tried again with a grant when the link did not ask for noVNC's own reconnect. */
export const GRANT_RETRY_DELAY_MS = 1000;

function base64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** 32 bytes from the browser's CSPRNG, base64url: the format vncgate checks (43 characters). */
export function newPageKey(): string {
  const bytes = new Uint8Array(32);
  crypto.getRandomValues(bytes);
  return base64url(bytes);
}

const GRANT = /^[A-Za-z0-9_-]{43}$/;

/** The console WebSocket URL with the grant instead of the link's token. */
export function grantUrl(linkUrl: string, grant: string): string {
  const u = new URL(linkUrl);
  u.searchParams.delete('token');
  u.searchParams.set('grant', grant);
  return u.toString();
}

export class PageGrant {
  readonly key: string;
  #grant: string | null = null;
  #ttlMs = 0;
  #droppedAt: number | null = null;

  constructor(key: string = newPageKey()) {
    this.key = key;
  }

  /** The subprotocol to offer alongside the control channel's. */
  get protocol(): string {
    return KEY_PROTOCOL_PREFIX + this.key;
  }

  /** A `reconnect` control message: the grant to use next time (replaces any older one). */
  accept(message: Readonly<Record<string, unknown>>): boolean {
    const grant = message['grant'];
    const ttl = message['ttlSeconds'];
    if (typeof grant !== 'string' || !GRANT.test(grant) || typeof ttl !== 'number' || !(ttl > 0) || ttl > 3600) return false;
    this.#grant = grant;
    this.#ttlMs = ttl * 1000;
    this.#droppedAt = null;
    return true;
  }

  /** The connection that got the grant has closed: its window starts now (the first close counts). */
  dropped(now = Date.now()): void {
    if (this.#grant !== null && this.#droppedAt === null) this.#droppedAt = now;
  }

  /** Whether a grant is held and still inside its window. */
  usable(now = Date.now()): boolean {
    if (this.#grant === null) return false;
    if (this.#droppedAt !== null && now >= this.#droppedAt + this.#ttlMs) {
      this.#grant = null;
      return false;
    }
    return true;
  }

  /** Where the next connection goes: with the grant when one is usable, else the link as given. */
  next(linkUrl: string, now = Date.now()): string {
    return this.usable(now) ? grantUrl(linkUrl, this.#grant!) : linkUrl;
  }

  /** vncgate refused the grant (or the link): nothing to try again with. */
  forget(): void {
    this.#grant = null;
  }
}
