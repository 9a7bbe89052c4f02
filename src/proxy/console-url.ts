/**
 * The console URL handed out with a token: the console page, with noVNC's `path` parameter
 * pointing the WebSocket at `websockify?token=…` — the form noVNC, websockify's token plugins and
 * the upstream proxies all understand.
 */
export function consoleUrl(base: string, token: string): string {
  const u = new URL(base);
  const dir = u.pathname.endsWith('/') ? u.pathname : `${u.pathname}/`;
  u.pathname = `${dir}vnc.html`;
  u.search = `?path=${encodeURIComponent(`websockify?token=${token}`)}`;
  u.hash = '';
  return u.toString();
}
