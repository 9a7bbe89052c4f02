import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';

/** Descriptors beside the client and backend sockets: listeners, Redis, Ironic/Nova clients, stdio, epoll. */
export const FD_RESERVE = 128;

/**
 * The soft "Max open files" limit from `/proc/self/limits` (Node raises the soft limit to the hard
 * one at start, so this is what the process really has). null: unlimited or not found.
 */
export function openFilesLimit(procLimits: string): number | null {
  const m = /^Max open files\s+(\S+)/m.exec(procLimits);
  if (!m || m[1] === 'unlimited') return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : null;
}

/** Descriptors vncgate needs at full load: one per client connection, one more per session (its backend), a reserve. */
export function fdsAtFullLoad(maxConnections: number, maxSessions: number): number {
  return maxConnections + Math.min(maxSessions, maxConnections) + FD_RESERVE;
}

/**
 * Warns once at start when the open-file limit is below what the configured caps allow: past it,
 * accept() fails with EMFILE before any cap is reached, and new consoles and /healthz fail with
 * nothing but that in the log. vncgate cannot raise the limit itself; the operator can (systemd
 * LimitNOFILE=, `ulimit -n`, the container runtime's nofile), or lower the caps.
 */
export function checkOpenFilesLimit(
  caps: { maxConnections: number; maxSessions: number },
  log: Logger,
  readLimits: () => string = () => readFileSync('/proc/self/limits', 'utf8'),
): void {
  let limit: number | null;
  try {
    limit = openFilesLimit(readLimits());
  } catch {
    return; // no /proc (not Linux): nothing to compare against
  }
  const needed = fdsAtFullLoad(caps.maxConnections, caps.maxSessions);
  if (limit !== null && limit < needed) {
    log.warn(
      { openFilesLimit: limit, fdsAtFullLoad: needed, maxConnections: caps.maxConnections, maxSessions: caps.maxSessions },
      'the open-file limit is below what limits.maxConnections and session.maxSessions allow: raise it (LimitNOFILE=, ulimit -n) or lower the caps',
    );
  }
}
