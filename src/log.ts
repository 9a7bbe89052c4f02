import { isIP } from 'node:net';
import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * Paths pino blanks out wherever they appear. Session loggers never receive tokens in the first
 * place; this, and the line scrubber below, are further lines of defence.
 */
export const REDACT_PATHS = [
  'token',
  '*.token',
  'grant',
  '*.grant',
  'password',
  '*.password',
  'secret',
  '*.secret',
  'authorization',
  '*.authorization',
  'cookie',
  '*.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["sec-websocket-protocol"]',
  'headers.authorization',
  'headers.cookie',
];

const REDACTED = '[redacted]';
const INVALID = '[invalid]';

/** A URL's path without its query string or fragment: query strings carry tokens (?token=…). */
export function pathOnly(url: string | undefined): string {
  if (!url) return '';
  const cut = url.search(/[?#]/);
  return cut === -1 ? url : url.slice(0, cut);
}

/**
 * What a secret looks like after a key, wherever it stands in a log line (one regex, literal
 * prefixes, so a clean line costs one fast scan); each keeps its prefix (group 1 or 2):
 * - the value after `token=`, also percent-encoded once or twice (`token%3D` inside noVNC's
 *   `path=` parameter): vncgate, Ironic and Nova tokens (UUIDs) alike, in URLs and cookies, and
 *   the same after `grant=` (reconnect grants, proxy/reconnect.ts);
 * - the last segment of Nova's lookup URL, `/os-console-auth-tokens/<token>`;
 * - a JWT, whose header always begins `{"` (base64url `eyJ`).
 * A value stops at a JSON string's end (`"`, or the `\` of an escape), so the line stays valid JSON.
 */
const KEYED_SECRET = /((?:token|grant)(?:=|%3D|%253D))[^&\s"'<>;#\\]+|(os-console-auth-tokens\/)[^/?#\s"\\]+|eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*)?/gi;

/** The same pattern, for a first look: a line without a match (nearly every one) is not run through `replace`. */
const ANY_KEYED_SECRET = new RegExp(KEYED_SECRET.source, 'i');

function redactKeyed(_match: string, tokenKey?: string, novaPath?: string): string {
  return `${tokenKey ?? novaPath ?? ''}${REDACTED}`;
}

/** Per UTF-16 code unit: 1 = base64url character, |2 = upper case, |4 = lower case. */
const B64URL_CLASS = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  if (/[0-9_-]/.test(ch)) B64URL_CLASS[c] = 1;
  else if (/[A-Z]/.test(ch)) B64URL_CLASS[c] = 3;
  else if (/[a-z]/.test(ch)) B64URL_CLASS[c] = 5;
}
const RUN_MIN = 43;

/** The class of the code unit at `i` (0 if not base64url). */
function classAt(text: string, i: number): number {
  const c = text.charCodeAt(i);
  return c < 128 ? B64URL_CLASS[c]! : 0;
}

/**
 * Blanks every run of 43 or more base64url characters with both cases in it, wherever it stands: a
 * vncgate token is 32 random bytes, 43 characters, and lacks one of the cases with probability
 * about 2·(38/64)^43 < 10⁻⁹; glued to neighbours (a percent-escape, more characters) the run only
 * grows. Runs in one case only are kept: hex digests, UUIDs and lower-case Ironic node names are
 * ids operators need. UUIDs are not blanked either, although Nova tokens are UUIDs: outside a
 * token position a UUID names a node or an instance.
 *
 * This runs on every line, so it probes one character in 43: 43 consecutive positions always hold
 * a probe, so every long run is hit, and only the runs hit are measured, by extending both ways.
 * (A `[A-Za-z0-9_-]{43,}` regex retries at every position: several times slower.)
 */
function redactRuns(text: string): string {
  let out: string | null = null;
  let copied = 0;
  const n = text.length;
  // Invariant: every run that starts before p - RUN_MIN + 1 has been dealt with.
  let p = RUN_MIN - 1;
  while (p < n) {
    let cls = classAt(text, p);
    if (cls === 0) {
      p += RUN_MIN;
      continue;
    }
    let start = p;
    let end = p + 1;
    let k: number;
    while (start > 0 && (k = classAt(text, start - 1)) !== 0) {
      start--;
      cls |= k;
    }
    while (end < n && (k = classAt(text, end)) !== 0) {
      end++;
      cls |= k;
    }
    if (end - start >= RUN_MIN && cls === 7) {
      out = `${out ?? ''}${text.slice(copied, start)}${REDACTED}`;
      copied = end;
    }
    p = end + RUN_MIN;
  }
  return out === null ? text : out + text.slice(copied);
}

/**
 * Blanks whatever looks like a secret in text. Applied to every serialized log line just before it
 * is written, so it reaches every field — child bindings, serializer output, the message — whoever
 * built it: fastify, for one, puts request URLs in some of its messages.
 */
export function scrubSecrets(text: string): string {
  return redactRuns(ANY_KEYED_SECRET.test(text) ? text.replace(KEYED_SECRET, redactKeyed) : text);
}

// ---- Known-safe shapes for values that come from a request (the first line of defence). ----

/** Ironic node names and UUIDs: RFC 3986 unreserved characters, at most 255 (as src/tokens/target.ts checks). */
const NODE = /^[A-Za-z0-9._~-]{1,255}$/;

/** A node from a URL as it may be logged: a well-formed Ironic name or UUID that does not look like a secret, else `[invalid]`. */
export function logSafeNode(node: string): string {
  return NODE.test(node) && scrubSecrets(node) === node ? node : INVALID;
}

/**
 * A client address as it may be logged: an IP address, else `[invalid]`. Behind a trusted proxy
 * the address comes from `X-Forwarded-For`, whose leftmost entries a client can fill with
 * anything (and with the deprecated `origins.trustForwardedHeaders`, from anyone's).
 */
export function logSafeAddress(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  return isIP(address) !== 0 ? address : INVALID;
}

/** Any run of 43+ base64url characters, whatever its case: host names are lower-cased by URL parsing. */
const LONG_RUN = /[A-Za-z0-9_-]{43,}/;

/**
 * An Origin header as it may be logged: `scheme://host[:port]` without path or query, `null` for
 * an opaque origin, `[invalid]` if it does not parse, `[redacted]` if the host holds a run long
 * enough to be a token (a lower-cased one: parsing folds the host's case).
 */
export function logSafeOrigin(origin: string): string {
  let o: string;
  try {
    o = new URL(origin).origin;
  } catch {
    return INVALID;
  }
  return LONG_RUN.test(o) ? REDACTED : o;
}

/** Request paths logged as themselves: fixed, and carrying nothing but their name. */
const KNOWN_PATHS: ReadonlySet<string> = new Set(['/', '/websockify', '/healthz', '/readyz', '/v1/console-tokens', '/vnc.html', '/vnc_lite.html', '/vnc_auto.html']);

/**
 * A request's path as it may be logged. Any path can carry a token (noVNC's `path` may be
 * `/<token>`), so only known paths are logged as they are; any other is logged as the pattern of
 * the route that took it (`/*`, `/assets/:name`), or `(no route)`. Never truncated: a prefix of a
 * token is most of a token.
 */
export function logSafePath(url: string | undefined, routePattern: string | undefined): string {
  const path = pathOnly(url);
  if (KNOWN_PATHS.has(path)) return path;
  return routePattern ?? '(no route)';
}

function scrubbedError(err: unknown): unknown {
  const out = pino.stdSerializers.err(err as Error) as unknown as Record<string, unknown>;
  if (out && typeof out === 'object') {
    // Node's HTTP parser errors carry the raw request as `rawPacket`: its bytes (tokens, cookies)
    // would be logged as an array of numbers, past any text scrubbing.
    for (const [k, v] of Object.entries(out)) if (Buffer.isBuffer(v) || ArrayBuffer.isView(v)) out[k] = `[${(v as ArrayBufferView).byteLength} bytes]`;
  }
  return out;
}

export type LogOptions = { level: string; destination?: DestinationStream };

export function createLogger(opts: LogOptions): Logger {
  return pino(
    {
      level: opts.level,
      base: { service: 'vncgate' },
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      serializers: {
        // Requests are logged by a safe path only, never with their query string or credentials.
        req: (req: { method?: string; url?: string; ip?: string; socket?: { remoteAddress?: string }; routeOptions?: { url?: string } }) => ({
          method: req.method,
          path: logSafePath(req.url, req.routeOptions?.url),
          remote: logSafeAddress(req.ip ?? req.socket?.remoteAddress),
        }),
        err: scrubbedError,
      },
      hooks: {
        // The last line of defence, on the serialized line: every field, whoever built it.
        streamWrite: scrubSecrets,
      },
    },
    opts.destination ?? pino.destination(2),
  );
}
