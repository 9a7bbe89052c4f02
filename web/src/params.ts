/**
 * Reads the console page's settings from its own URL, the way noVNC's pages do, and computes the
 * address-bar URL with every secret removed. Pure (no DOM), so test/web runs it under Node.
 *
 * Links in the wild:
 *   Ironic  /vnc_lite.html?path=websockify%3Fnode%3D<uuid>%26token%3D<token>  (ironic/common/vnc.py)
 *   Nova    /vnc_lite.html?path=%3Ftoken%3D<uuid>         (nova/objects/console_auth_token.py)
 *   old     /vnc_auto.html?token=<uuid>                   (noVNC 0.x top-level token)
 *
 * Parameters may also be given in the fragment, which wins over the query (noVNC `WebUtil`
 * behaviour); fragments never reach a server, so they are the safer place for a token.
 */

export const RESIZE_MODES = ['scale', 'remote', 'off'] as const;
export type ResizeMode = (typeof RESIZE_MODES)[number];

export interface ConsoleSettings {
  /** ws:/wss: URL of the console WebSocket, token included. */
  readonly url: string;
  readonly autoconnect: boolean;
  readonly resize: ResizeMode;
  readonly viewOnly: boolean;
  readonly shared: boolean;
  readonly reconnect: boolean;
  readonly reconnectDelayMs: number;
  readonly showDot: boolean;
}

/** The link itself is unusable; `message` is safe to show (it never contains the token). */
export class ConsoleLinkError extends Error {
  override readonly name = 'ConsoleLinkError';
}

const DEFAULT_PATH = 'websockify'; // noVNC's default `path`
const DEFAULT_RECONNECT_DELAY_MS = 5000; // noVNC's default `reconnect_delay`
const MIN_RECONNECT_DELAY_MS = 100;
const MAX_RECONNECT_DELAY_MS = 600_000;
/** Parameters that carry secrets and must leave the address bar. noVNC also accepts `password`. */
const SECRET_KEYS: ReadonlySet<string> = new Set(['token', 'password']);

interface Pair {
  readonly key: string;
  readonly value: string;
  /** The pair exactly as written, so untouched pairs keep their encoding when the URL is rebuilt. */
  readonly raw: string;
}

/**
 * Splits `a=1&b=2` like noVNC's `WebUtil.getQueryVar` does: `decodeURIComponent`, so `+` stays a
 * plus (tokens may contain one) rather than becoming a space as with URLSearchParams.
 */
function parsePairs(text: string): Pair[] {
  const pairs: Pair[] = [];
  for (const raw of text.split('&')) {
    if (raw === '') continue;
    const eq = raw.indexOf('=');
    const key = decode(eq === -1 ? raw : raw.slice(0, eq));
    const value = eq === -1 ? '' : decode(raw.slice(eq + 1));
    pairs.push({ key, value, raw });
  }
  return pairs;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text; // a stray `%` is kept literally rather than rejecting the whole link
  }
}

function splitUrl(url: URL): { readonly query: Pair[]; readonly fragment: Pair[] } {
  return { query: parsePairs(url.search.slice(1)), fragment: parsePairs(url.hash.slice(1)) };
}

function lookup(query: readonly Pair[], fragment: readonly Pair[], key: string): string | undefined {
  // First occurrence wins, fragment before query (noVNC).
  return (fragment.find((p) => p.key === key) ?? query.find((p) => p.key === key))?.value;
}

function parseBool(value: string | undefined, fallback: boolean): boolean {
  switch (value?.trim().toLowerCase()) {
    case '1':
    case 'true':
    case 'yes':
    case 'on':
      return true;
    case '0':
    case 'false':
    case 'no':
    case 'off':
      return false;
    default:
      return fallback;
  }
}

function parseResize(value: string | undefined): ResizeMode {
  const mode = RESIZE_MODES.find((m) => m === value);
  // A console is most useful fitted to its frame, so `scale` rather than noVNC's `off`.
  return mode ?? 'scale';
}

function parseDelay(value: string | undefined): number {
  if (value === undefined || !/^\d+$/.test(value.trim())) return DEFAULT_RECONNECT_DELAY_MS;
  return Math.min(MAX_RECONNECT_DELAY_MS, Math.max(MIN_RECONNECT_DELAY_MS, Number(value.trim())));
}

function parsePort(value: string): string {
  const port = value.trim();
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    throw new ConsoleLinkError('This console link has an invalid port.');
  }
  return String(Number(port));
}

/**
 * `host` may be a name, an IPv4 address or an IPv6 literal with or without brackets; returns the
 * URL hostname (IPv6 bracketed). Anything that would smuggle in a path, credentials or a port is
 * refused rather than silently reinterpreted.
 */
function parseHost(value: string): string {
  const host = value.trim();
  const bracketed = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  let parsed: URL | undefined;
  if (!/[/?#@\\\s]/.test(host)) {
    try {
      parsed = new URL(`http://${bracketed}/`);
    } catch {
      parsed = undefined;
    }
  }
  if (parsed === undefined || parsed.port !== '') {
    throw new ConsoleLinkError('This console link has an invalid host.');
  }
  return parsed.hostname;
}

function hasKey(search: string, key: string): boolean {
  return parsePairs(search.replace(/^\?/, '')).some((p) => p.key === key);
}

/**
 * The console's settings from the page URL `href`. Throws ConsoleLinkError for a link that cannot
 * work (bad host or port, or a `path` that points at another server).
 */
export function readConsoleSettings(href: string): ConsoleSettings {
  const page = new URL(href);
  const { query, fragment } = splitUrl(page);
  const get = (key: string): string | undefined => lookup(query, fragment, key);

  const path = get('path') ?? DEFAULT_PATH;
  const host = get('host');
  const port = get('port');

  let target: URL;
  if (host !== undefined && host.trim() !== '') {
    // noVNC app/ui.js: with an explicit host, `path` is relative to that host's root ("./" keeps a
    // path starting with "//" from being read as another authority).
    target = new URL(`./${path}`, `http://${parseHost(host)}/`);
  } else {
    // Relative to the page, as noVNC's vnc.html does: `?token=…` stays on this page's path and
    // `websockify?…` lands next to it.
    target = new URL(path, page);
    if (target.host !== page.host || !/^(https?|wss?):$/.test(target.protocol)) {
      throw new ConsoleLinkError('This console link points at another server.');
    }
  }
  if (port !== undefined && port.trim() !== '') target.port = parsePort(port);
  target.protocol = parseBool(get('encrypt'), page.protocol === 'https:') ? 'wss:' : 'ws:';
  target.hash = '';

  // noVNC 0.x links carried the token as its own parameter; such a token joins the WebSocket
  // query unless `path` already brought one.
  const token = get('token');
  if (token !== undefined && token !== '' && !hasKey(target.search, 'token')) {
    const sep = target.search.length > 1 ? '&' : '';
    target.search = `${target.search.replace(/^\?/, '')}${sep}token=${encodeURIComponent(token)}`;
  }

  return {
    url: target.href,
    autoconnect: parseBool(get('autoconnect'), true),
    resize: parseResize(get('resize')),
    viewOnly: parseBool(get('view_only'), false),
    shared: parseBool(get('shared'), true),
    reconnect: parseBool(get('reconnect'), false),
    reconnectDelayMs: parseDelay(get('reconnect_delay')),
    showDot: parseBool(get('show_dot'), false),
  };
}

/** `websockify?node=n&token=t` → `websockify?node=n`. */
function stripSecretsFromPath(path: string): string {
  const q = path.indexOf('?');
  if (q === -1) return path;
  const kept = parsePairs(path.slice(q + 1)).filter((p) => !SECRET_KEYS.has(p.key));
  return kept.length === 0 ? path.slice(0, q) : `${path.slice(0, q)}?${kept.map((p) => p.raw).join('&')}`;
}

function scrubPairs(pairs: readonly Pair[]): string {
  const out: string[] = [];
  for (const pair of pairs) {
    if (SECRET_KEYS.has(pair.key)) continue;
    if (pair.key === 'path') {
      const stripped = stripSecretsFromPath(pair.value);
      if (stripped === pair.value) out.push(pair.raw);
      else if (stripped !== '') out.push(`path=${encodeURIComponent(stripped)}`);
      continue;
    }
    out.push(pair.raw);
  }
  return out.join('&');
}

/**
 * `href` without its secrets: `token` and `password` parameters are dropped from query and
 * fragment, and from the query embedded in `path`. Everything else keeps its exact spelling.
 * Returns `href` unchanged when there was nothing to remove.
 */
export function scrubConsoleUrl(href: string): string {
  const url = new URL(href);
  const { query, fragment } = splitUrl(url);
  const search = scrubPairs(query);
  const hash = scrubPairs(fragment);
  if (search === url.search.slice(1) && hash === url.hash.slice(1)) return href;
  return `${url.origin}${url.pathname}${search === '' ? '' : `?${search}`}${hash === '' ? '' : `#${hash}`}`;
}
