import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { RfbServerHandshake, type ServerAction } from '../rfb/index.js';
import { ClientEventReader } from './client-events.js';
import type { ClientEvent } from './format.js';
import { END_RESERVE_BYTES, RECORD_TYPE, encodeEnd, encodeHeader, encodeRecord, type RecordingHeader, type RecordingTrailer, type TruncatedReason } from './format.js';

/** What the relay calls, when a session is recorded: each side's bytes, as they pass. */
export interface RelayTap {
  /** Bytes about to be sent to the browser. Copied at once: the relay reuses its buffers. */
  toBrowser(chunk: Buffer): void;
  /** Bytes about to be written to the console (the browser's messages). */
  toBackend(chunk: Buffer): void;
  /** The session is ending: nothing more comes. */
  finish(): void;
}

export type RecorderOptions = {
  file: string;
  header: RecordingHeader;
  /** The file may grow to this (header, records, end); then recording stops, marked truncated. */
  maxBytes: number;
  /** Bytes queued for the disk at most; past it recording stops (truncated), the session goes on. */
  queueBytes: number;
  /** A write pending this long after the session ended counts as a stalled disk. */
  closeTimeoutMs: number;
  /** The recording stopped because of the disk (error, overflow, stall): log and audit it. */
  onFailed(reason: TruncatedReason, err: NodeJS.ErrnoException | null): void;
  /** The file is closed (or given up on), with what it holds. */
  onEnded(trailer: RecordingTrailer): void;
  /** Opens the file (tests put a stalled disk here). Default: created 0600, never over an existing file. */
  openStream?: (file: string) => Writable;
};

/**
 * The bytes vncgate's browser side sends before ServerInit, as the RFB engine makes them for a
 * browser that speaks 3.8 and picks None (what noVNC does): ProtocolVersion, the security list,
 * SecurityResult OK. A recording starts with them, so it replays from the first byte.
 */
export function browserHandshakeBytes(): Buffer {
  const rfb = new RfbServerHandshake({ security: ['none'] });
  const sent: Uint8Array[] = [];
  const take = (actions: ServerAction[]): void => {
    for (const a of actions) if (a.type === 'send') sent.push(a.bytes);
  };
  take(rfb.start());
  take(rfb.receive(Buffer.from('RFB 003.008\n', 'ascii')));
  take(rfb.receive(Buffer.from([1])));
  take(rfb.accept());
  return Buffer.concat(sent);
}

/** 'wx': never over an existing file; 0600: recordings show what was on a console. */
function openRecordingFile(file: string): Writable {
  return createWriteStream(file, { flags: 'wx', mode: 0o600 });
}

/**
 * One session's recording (format.ts). Never slows or breaks the session: every record is copied
 * into one buffer and handed to a write stream at once, with at most `queueBytes` waiting for the
 * disk; a full queue, the size cap or a disk error stops the recording (truncated) and nothing
 * else. Nothing is ever dropped from the middle: the stream's zlib and Tight state make a gap
 * unplayable, so a recording is always a playable prefix of the session.
 */
export class Recorder implements RelayTap {
  readonly #opts: RecorderOptions;
  readonly #stream: Writable;
  readonly #t0 = performance.now();
  readonly #startedAtMs = Date.now();
  readonly #events: ClientEventReader;
  /** Bytes handed to the stream so far. */
  #bytes = 0;
  #dataBytes = 0;
  #eventCount = 0;
  /** Set once recording stops (truncated, failed, or the session ended). */
  #stopped = false;
  #truncated: TruncatedReason | null = null;
  #failed = false;
  #ended = false;

  constructor(opts: RecorderOptions) {
    this.#opts = opts;
    this.#events = new ClientEventReader(opts.header.recordKeys);
    this.#stream = (opts.openStream ?? openRecordingFile)(opts.file);
    this.#stream.on('error', (err: NodeJS.ErrnoException) => this.#fail('error', err));
    this.#write(encodeHeader(opts.header));
    this.toBrowser(browserHandshakeBytes());
  }

  get bytes(): number {
    return this.#bytes;
  }

  get truncated(): TruncatedReason | null {
    return this.#truncated;
  }

  // Both taps run on the relay's path: whatever goes wrong in here ends the recording, never the session.
  readonly toBrowser = (chunk: Buffer): void => {
    if (this.#stopped || chunk.length === 0) return;
    try {
      if (this.#append(RECORD_TYPE.data, chunk)) this.#dataBytes += chunk.length;
    } catch (err) {
      this.#fail('error', err as NodeJS.ErrnoException);
    }
  };

  readonly toBackend = (chunk: Buffer): void => {
    if (this.#stopped) return;
    try {
      this.#events.receive(chunk, this.#onEvent);
    } catch (err) {
      this.#fail('error', err as NodeJS.ErrnoException);
    }
  };

  readonly #onEvent = (e: ClientEvent): void => {
    if (!this.#stopped && this.#append(RECORD_TYPE.event, Buffer.from(JSON.stringify(e), 'utf8'))) this.#eventCount++;
  };

  #append(type: typeof RECORD_TYPE.data | typeof RECORD_TYPE.event, payload: Buffer): boolean {
    const size = 9 + payload.length;
    if (this.#bytes + size + END_RESERVE_BYTES > this.#opts.maxBytes) {
      this.#truncate('size');
      return false;
    }
    if (this.#stream.writableLength + size > this.#opts.queueBytes) {
      this.#truncate('overflow');
      this.#opts.onFailed('overflow', null);
      return false;
    }
    this.#write(encodeRecord(type, performance.now() - this.#t0, payload));
    return true;
  }

  #write(b: Buffer): void {
    this.#bytes += b.length;
    this.#stream.write(b);
  }

  #truncate(reason: TruncatedReason): void {
    if (this.#truncated === null) this.#truncated = reason;
    this.#stopped = true;
  }

  #fail(reason: TruncatedReason, err: NodeJS.ErrnoException | null): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#truncate(reason);
    if (!this.#stream.destroyed) this.#stream.destroy();
    this.#opts.onFailed(reason, err);
    this.#end();
  }

  #trailer(): RecordingTrailer {
    return {
      endedAt: new Date().toISOString(),
      durationMs: Date.now() - this.#startedAtMs,
      truncated: this.#truncated !== null,
      reason: this.#truncated,
      dataBytes: this.#dataBytes,
      events: this.#eventCount,
      keyEventsOmitted: this.#events.keyEventsOmitted,
    };
  }

  /** The session ended: the end record and footer go last; a disk that does not take them in time is stalled. */
  finish(): void {
    if (this.#ended) return;
    this.#stopped = true;
    if (this.#failed) return;
    const trailer = this.#trailer();
    this.#stream.end(encodeEnd(performance.now() - this.#t0, trailer));
    const timer = setTimeout(() => this.#fail('stalled', null), this.#opts.closeTimeoutMs);
    timer.unref();
    this.#stream.once('close', () => {
      clearTimeout(timer);
      if (!this.#failed) {
        this.#ended = true;
        this.#opts.onEnded(trailer);
      }
    });
  }

  /** Reported once, after a failure: what the file holds is a prefix without its end record. */
  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#opts.onEnded(this.#trailer());
  }
}
