import { mkdirSync } from 'node:fs';
import { open, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { RawConfig } from '../config/index.js';
import { FOOTER_BYTES, MAX_HEADER_BYTES, RECORDING_EXTENSION, RECORDING_FORMAT, RECORDING_VERSION, parseHeader, parseTail, type RecordingHeader, type RecordingTrailer } from './format.js';
import { Recorder } from './recorder.js';

export type RecordingsConfig = RawConfig['recordings'];
type Profiles = RawConfig['backends']['profiles'];

/** What the audit stream hears about recordings (observe/ AuditLog, narrowed). */
export type RecordingAudit = { write(event: 'recording.failed' | 'recording.ended', fields: Record<string, string | number | boolean | null>): void };

/** A recording as the list shows it. */
export type RecordingInfo = {
  id: string;
  sessionId: string;
  startedAt: string;
  target: string;
  profile: string;
  bytes: number;
  /** Still being written by this process. */
  active: boolean;
  /** Null while active or when cut short (no end record). */
  trailer: RecordingTrailer | null;
  truncated: boolean;
};

/** What a session knows when it starts piping: its target (null: none resolved) and ServerInit. */
export type RecordedTarget = { label: string; profile: string } | null;
export type RecordedInit = { width: number; height: number; name: string };

/** `<startedAt>-<sessionId>`: sorts by time, names no token. */
const ID = /^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{12}$/;

/** A burst of sessions starting prunes once, not once each. */
const PRUNE_ON_OPEN_MS = 10_000;

export function isRecordingId(id: string): boolean {
  return ID.test(id);
}

/**
 * The recordings directory (README "Recordings"): decides which sessions are recorded (the
 * profile's `record`, or a token's), opens one Recorder per such session, lists the files, and
 * prunes them by age and total size, oldest first, never one still being written.
 */
export class Recordings {
  readonly dir: string;
  readonly #cfg: RecordingsConfig;
  readonly #profiles: Profiles;
  readonly #log: Logger;
  readonly #audit: RecordingAudit;
  readonly #active = new Set<string>();
  /** Recordings not yet closed: shutdown waits for their end records (bounded). */
  readonly #pending = new Map<string, Promise<void>>();
  #timer: NodeJS.Timeout | null = null;
  #pruning: Promise<number> | null = null;
  /** When a recording's start last triggered a prune (at most one every PRUNE_ON_OPEN_MS). */
  #prunedOnOpenAt = 0;

  constructor(cfg: RecordingsConfig, profiles: Profiles, log: Logger, audit: RecordingAudit) {
    if (cfg.dir === null) throw new Error('recordings.dir is not set');
    this.dir = cfg.dir;
    this.#cfg = cfg;
    this.#profiles = profiles;
    this.#log = log;
    this.#audit = audit;
  }

  /**
   * Creates the directory (0700) if missing and starts the periodic prune. A directory that cannot
   * be made is logged, not fatal: consoles still open, and each recording's failure is reported.
   */
  start(): void {
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      this.#log.warn({ err: { message: (err as Error).message, code: (err as NodeJS.ErrnoException).code }, dir: this.dir }, 'recordings directory cannot be created');
    }
    void this.prune();
    this.#timer = setInterval(() => void this.prune(), this.#cfg.pruneIntervalSeconds * 1000);
    this.#timer.unref();
  }

  /**
   * Stops pruning and waits, at most closeTimeoutMs, for recordings still being closed (their
   * sessions were just ended by the shutdown) to get their end records onto the disk.
   */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#pending.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#cfg.closeTimeoutMs)));
    await Promise.race([Promise.all(this.#pending.values()), deadline]);
    clearTimeout(timer);
  }

  /** The recorder for a session, or null when neither its profile nor its token asks for one. */
  open(sessionId: string, target: RecordedTarget, init: RecordedInit, tokenRecord: boolean, log: Logger): Recorder | null {
    if (target === null) return null;
    const profile = this.#profiles[target.profile];
    const byProfile = profile?.record === true;
    if (!byProfile && !tokenRecord) return null;
    const req = { sessionId, target, width: init.width, height: init.height, desktopName: init.name };
    const startedAt = new Date();
    const id = `${startedAt.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${req.sessionId}`;
    const header: RecordingHeader = {
      format: RECORDING_FORMAT,
      version: RECORDING_VERSION,
      id,
      sessionId: req.sessionId,
      startedAt: startedAt.toISOString(),
      target: req.target.label,
      profile: req.target.profile,
      width: req.width,
      height: req.height,
      desktopName: req.desktopName.slice(0, 256),
      recordKeys: profile?.recordKeys === true,
      reason: byProfile ? 'profile' : 'token',
    };
    const fields = { sessionId: req.sessionId, recording: id, target: req.target.label, profile: req.target.profile };
    this.#active.add(id);
    let closed!: () => void;
    this.#pending.set(id, new Promise<void>((resolve) => (closed = resolve)));
    log.info({ recording: id, reason: header.reason, recordKeys: header.recordKeys }, 'session recorded');
    if (Date.now() - this.#prunedOnOpenAt >= PRUNE_ON_OPEN_MS) {
      this.#prunedOnOpenAt = Date.now();
      void this.prune();
    }
    return new Recorder({
      file: join(this.dir, `${id}${RECORDING_EXTENSION}`),
      header,
      maxBytes: this.#cfg.maxBytesPerRecording,
      queueBytes: this.#cfg.queueBytes,
      closeTimeoutMs: this.#cfg.closeTimeoutMs,
      onFailed: (reason, err) => {
        const code = err?.code ?? null;
        log.warn({ recording: id, code: 'RECORDING_ERR_FAILED', reason, errno: code, err: err ? { message: err.message, code } : undefined }, 'recording failed; the session goes on');
        this.#audit.write('recording.failed', { ...fields, code: 'RECORDING_ERR_FAILED', reason, errno: code });
      },
      onEnded: (t) => {
        this.#active.delete(id);
        this.#pending.delete(id);
        closed();
        log.info({ recording: id, truncated: t.truncated, reason: t.reason, dataBytes: t.dataBytes, events: t.events }, 'recording ended');
        this.#audit.write('recording.ended', { ...fields, truncated: t.truncated, reason: t.reason, dataBytes: t.dataBytes, events: t.events, durationMs: t.durationMs });
      },
    });
  }

  /** Where a recording's file is, for a well-formed id (the caller checks it exists). */
  file(id: string): string | null {
    return isRecordingId(id) ? join(this.dir, `${id}${RECORDING_EXTENSION}`) : null;
  }

  /** Every recording in the directory, newest first, with what its header and end record say. */
  async list(): Promise<RecordingInfo[]> {
    const out: RecordingInfo[] = [];
    for (const { id, path, size } of await this.#files()) {
      const info = await readInfo(path, size).catch(() => null);
      if (info === null) continue;
      const active = this.#active.has(id);
      out.push({ id, sessionId: info.header.sessionId, startedAt: info.header.startedAt, target: info.header.target, profile: info.header.profile, bytes: size, active, trailer: info.trailer, truncated: !active && (info.trailer === null || info.trailer.truncated) });
    }
    return out.reverse();
  }

  /**
   * Deletes recordings older than maxAgeHours, then the oldest until the directory holds at most
   * maxTotalBytes; a recording being written is never deleted. Returns how many went. One at a time.
   */
  prune(): Promise<number> {
    this.#pruning ??= this.#prune()
      .catch((err: NodeJS.ErrnoException) => {
        this.#log.warn({ err: { message: err.message, code: err.code }, dir: this.dir }, 'pruning recordings failed');
        return 0;
      })
      .finally(() => {
        this.#pruning = null;
      });
    return this.#pruning;
  }

  async #prune(): Promise<number> {
    const files = await this.#files();
    const cutoff = Date.now() - this.#cfg.maxAgeHours * 3_600_000;
    let total = files.reduce((n, f) => n + f.size, 0);
    let removed = 0;
    for (const f of files) {
      if (this.#active.has(f.id)) continue;
      if (f.mtimeMs >= cutoff && total <= this.#cfg.maxTotalBytes) continue;
      await unlink(f.path).catch(() => undefined);
      total -= f.size;
      removed++;
    }
    if (removed > 0) this.#log.info({ removed, dir: this.dir }, 'recordings pruned');
    return removed;
  }

  /** The recording files, oldest first (ids sort by start time). */
  async #files(): Promise<{ id: string; path: string; size: number; mtimeMs: number }[]> {
    const names = (await readdir(this.dir)).filter((n) => n.endsWith(RECORDING_EXTENSION)).sort();
    const out: { id: string; path: string; size: number; mtimeMs: number }[] = [];
    for (const name of names) {
      const id = name.slice(0, -RECORDING_EXTENSION.length);
      if (!isRecordingId(id)) continue;
      const path = join(this.dir, name);
      const s = await stat(path).catch(() => null);
      if (s?.isFile()) out.push({ id, path, size: s.size, mtimeMs: s.mtimeMs });
    }
    return out;
  }
}

/** A recording's header and end record, from its first and last bytes only. */
export async function readInfo(path: string, size: number): Promise<{ header: RecordingHeader; trailer: RecordingTrailer | null }> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(Math.min(size, MAX_HEADER_BYTES));
    await fh.read(head, 0, head.length, 0);
    const { header } = parseHeader(head);
    const tailLength = Math.min(size, FOOTER_BYTES + 9 + 4096);
    const tail = Buffer.alloc(tailLength);
    await fh.read(tail, 0, tailLength, size - tailLength);
    return { header, trailer: parseTail(tail) };
  } finally {
    await fh.close();
  }
}
