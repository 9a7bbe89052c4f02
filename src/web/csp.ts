import { VncgateError } from '../errors.js';

/**
 * Content-Security-Policy for the console page. Each source is one the page was seen to need in
 * Chromium (test/web/console-page.int.test.ts fails on any violation):
 *
 * - `script-src 'self'`, `style-src 'self'`: the bundle and stylesheet are files; noVNC sets
 *   styles only through CSSOM (`element.style.x = …`), which style-src does not govern.
 * - `img-src 'self' data:`: 'self' for the favicon; `data:` because noVNC draws the remote cursor
 *   as a CSS `cursor: url(data:image/png…)` (core/util/cursor.js) and decodes Tight JPEG
 *   rectangles through `new Image()` with a data: URL (core/display.js). noVNC makes no blob: URLs.
 * - `connect-src 'self'`: the console WebSocket goes back to the server that served the page
 *   ('self' matches ws:/wss: on the same host and port, CSP Level 3). Not `ws: wss:`: a crafted
 *   link's `host=` would otherwise send the victim's keystrokes to any server. Deployments that
 *   serve the page and the WebSocket from different origins list the latter in `connectSources`.
 * - `frame-ancestors`: who may embed the console (Horizon); `base-uri`/`form-action 'none'`
 *   because the page needs neither and both are not covered by default-src.
 */
export function buildConsoleCsp(options: {
  readonly frameAncestors: readonly string[];
  readonly connectSources: readonly string[];
}): string {
  const errors = [
    ...sourceListErrors('frameAncestors', options.frameAncestors, true),
    ...sourceListErrors('connectSources', options.connectSources, false),
  ];
  if (errors.length > 0) {
    throw new VncgateError('CONFIG_ERR_INVALID', `console page CSP: ${errors.join('; ')}`, { details: { errors } });
  }
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src ${["'self'", ...options.connectSources].join(' ')}`,
    `frame-ancestors ${options.frameAncestors.join(' ')}`,
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
}

// CSP Level 3 §2.3.1 source expressions, narrowed to what these two directives can use. Anything
// else (whitespace, `;`, `,`, quotes) could end the directive and inject another one.
const SCHEME_SOURCE = /^[a-z][a-z0-9+.-]*:$/i;
const HOST_SOURCE =
  /^(?:[a-z][a-z0-9+.-]*:\/\/)?(?:\*|(?:\*\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::(?:\d{1,5}|\*))?(?:\/[A-Za-z0-9\-._~!$&'()*+=:@%/]*)?$/i;

function sourceListErrors(option: string, sources: readonly string[], allowKeywords: boolean): string[] {
  const errors: string[] = [];
  if (allowKeywords && sources.length === 0) {
    errors.push(`${option} is empty; use ["'none'"] to forbid embedding`);
  }
  if (allowKeywords && sources.includes("'none'") && sources.length > 1) {
    errors.push(`${option}: 'none' cannot be combined with other sources`);
  }
  for (const source of sources) {
    const keyword = allowKeywords && (source === "'self'" || source === "'none'");
    if (!keyword && !SCHEME_SOURCE.test(source) && !HOST_SOURCE.test(source)) {
      errors.push(`${option}: ${JSON.stringify(source)} is not a CSP source (e.g. 'self', https:, https://horizon.example.org)`);
    }
  }
  return errors;
}
