import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

/**
 * Lets go of what the HTTP upgrade left attached to a WebSocket for its whole life: the socket's
 * `_httpMessage` (the ServerResponse @fastify/websocket made, holding the request with its headers
 * and query string, and fastify's request and reply) and @fastify/websocket's own 'error' listener,
 * whose closure holds the same request and reply: about 4 KiB per idle session, measured with heap
 * snapshots of idle sessions. The caller's 'error' listener, added right after, handles errors — as
 * a peer fault (warn) rather than the plugin's error-level log line.
 */
export function releaseUpgradeRequest(ws: WebSocket): void {
  ws.removeAllListeners('error');
  const raw = rawSocketOf(ws) as (Socket & { _httpMessage?: { detachSocket?: (s: Socket) => void } | null }) | undefined;
  const res = raw?._httpMessage;
  if (raw && res && typeof res.detachSocket === 'function') res.detachSocket(raw);
}

/** The socket `ws` writes to (a TLS socket over wss). */
export function rawSocketOf(ws: WebSocket): Socket | undefined {
  return (ws as unknown as { _socket?: Socket })._socket;
}

/**
 * Closes the browser's WebSocket with the code and reason of `error` (1000 when none), unless it
 * is already closing; a browser that does not complete the closing handshake is cut off after 5 s.
 */
export function closeBrowser(ws: WebSocket, error: { wsClose: number; publicReason: string } | null): void {
  if (ws.readyState !== ws.OPEN && ws.readyState !== ws.CONNECTING) return;
  // Close frames carry at most 123 bytes of reason; ours are short ASCII.
  if (error) ws.close(error.wsClose, error.publicReason.slice(0, 120));
  else ws.close(1000);
  setTimeout(() => ws.terminate(), 5_000).unref();
}
