import { pino } from 'pino';
import { VncgateError } from '../errors.js';

/** The audit event types (README "Audit events" documents each one's fields). */
export const AUDIT_EVENTS = ['token.issued', 'token.refused', 'session.started', 'session.ended', 'recording.ended', 'recording.failed', 'recording.playback'] as const;
export type AuditEventType = (typeof AUDIT_EVENTS)[number];

/** One event's fields besides `time` and `event`; values are JSON (no tokens, ever). */
export type AuditFields = Record<string, string | number | boolean | null | readonly string[] | Record<string, unknown>>;

/**
 * Audit events, one JSON line each, on a stream of their own: never the pino log (stderr).
 * Writes never wait: lines are queued in memory (at most `maxQueuedBytes`) and written by the
 * event loop's file I/O in the background; when the disk stalls and the queue is full, further
 * events are dropped and counted (`dropped`, and the `vncgate_audit_events_dropped_total`
 * metric) rather than slowing a console down.
 */
export interface AuditLog {
  readonly enabled: boolean;
  write(event: AuditEventType, fields: AuditFields): void;
  /** Events dropped so far (queue full or write errors). */
  readonly dropped: number;
  /** Reopens the file at its path (after logrotate moved it; SIGHUP). No-op for stdout/stderr. */
  reopen(): void;
  /** Writes what is queued (bounded wait) and closes the file. */
  close(): Promise<void>;
}

export const NO_AUDIT: AuditLog = {
  enabled: false,
  write: () => undefined,
  dropped: 0,
  reopen: () => undefined,
  close: () => Promise.resolve(),
};

export type AuditOptions = {
  /** Called for each dropped event (the metric). */
  onDrop?: () => void;
  /** Called (rate-limited by the caller if it wishes) with write errors. */
  onError?: (err: Error) => void;
  /** Default 8 MiB: tens of thousands of events. */
  maxQueuedBytes?: number;
  /** How long close() waits for the queue to be written. Default 2000 ms. */
  closeTimeoutMs?: number;
};

const DEFAULT_MAX_QUEUED_BYTES = 8 * 1024 * 1024;

/**
 * Opens the audit stream: `file` a path (appended to, created 0640 if missing), `"-"` or
 * `"stdout"` for standard output, `"stderr"` for standard error. Resolves once the file is open,
 * so a path that cannot be written is a start-up error (CONFIG_ERR_FILE), not a silent loss.
 */
export async function openAuditLog(file: string, opts: AuditOptions = {}): Promise<AuditLog> {
  const fd = file === '-' || file === 'stdout' ? 1 : file === 'stderr' ? 2 : null;
  const stream = pino.destination({
    dest: fd ?? file,
    sync: false,
    append: true,
    mkdir: false,
    mode: 0o640,
    maxLength: opts.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES,
    // A non-blocking stdout pipe whose reader is slow: retry later (sonic-boom's timer), never spin.
    retryEAGAIN: () => true,
  });
  if (fd === null) {
    await new Promise<void>((resolve, reject) => {
      stream.once('ready', () => {
        stream.off('error', reject);
        resolve();
      });
      stream.once('error', (err: Error) =>
        reject(new VncgateError('CONFIG_ERR_FILE', `cannot open the audit file ${file}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, { cause: err })),
      );
    });
  }
  let dropped = 0;
  const drop = (): void => {
    dropped++;
    opts.onDrop?.();
  };
  stream.on('drop', drop);
  stream.on('error', (err: Error) => {
    // The line being written is lost with it; what is queued is retried with the next write.
    drop();
    opts.onError?.(err);
  });
  let closed = false;
  return {
    enabled: true,
    write(event, fields) {
      if (closed) return;
      stream.write(`${JSON.stringify({ time: new Date().toISOString(), event, ...fields })}\n`);
    },
    get dropped() {
      return dropped;
    },
    reopen() {
      if (fd === null && !closed) stream.reopen();
    },
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      return new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, opts.closeTimeoutMs ?? 2_000);
        timer.unref();
        const done = (): void => {
          clearTimeout(timer);
          resolve();
        };
        // Writes what is queued, then closes the file (standard output/error stay open).
        stream.once('close', done);
        stream.end();
      });
    },
  };
}
