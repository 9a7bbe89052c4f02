/**
 * The session recorder (src/record/recorder.ts) on real files: what it writes and how both
 * readers (src/record/format.ts, and the playback page's web/src/playback-format.ts) read it back;
 * the size cap, a full in-memory queue and a stalled disk (truncated, never an exception into the
 * relay); a directory it may not write in; keys kept out unless the profile says otherwise.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserHandshakeBytes, parseRecording, Recorder, RECORD_TYPE, RECORDING_FORMAT, type RecorderOptions, type RecordingHeader, type RecordingTrailer, type TruncatedReason } from '../../src/record/index.js';
import { readPlayback } from '../../web/src/playback-format.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vncgate-recorder-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const header = (recordKeys = false): RecordingHeader => ({
  format: RECORDING_FORMAT,
  version: 1,
  id: '20260101T000000Z-0123456789ab',
  sessionId: '0123456789ab',
  startedAt: '2026-01-01T00:00:00.000Z',
  target: '127.0.0.1:5900',
  profile: 'p',
  width: 640,
  height: 480,
  desktopName: 'd',
  recordKeys,
  reason: 'profile',
});

type Run = { recorder: Recorder; failed: { reason: TruncatedReason; code: string | null }[]; ended: Promise<RecordingTrailer>; file: string };

let n = 0;
function record(opts: Partial<RecorderOptions> & { recordKeys?: boolean } = {}): Run {
  const failed: Run['failed'] = [];
  let done!: (t: RecordingTrailer) => void;
  const ended = new Promise<RecordingTrailer>((r) => (done = r));
  const file = opts.file ?? join(dir, `r${n++}.vncrec`);
  const recorder = new Recorder({
    header: header(opts.recordKeys),
    maxBytes: 64 * 1024 * 1024,
    queueBytes: 8 * 1024 * 1024,
    closeTimeoutMs: 5_000,
    ...opts,
    file,
    onFailed: (reason, err) => failed.push({ reason, code: err?.code ?? null }),
    onEnded: done,
  });
  return { recorder, failed, ended, file };
}

const pointer = (x: number, y: number, buttons: number): Buffer => Buffer.from([5, buttons, x >> 8, x & 255, y >> 8, y & 255]);
const key = (down: boolean, keysym: number): Buffer => {
  const b = Buffer.alloc(8);
  b[0] = 4;
  b[1] = down ? 1 : 0;
  b.writeUInt32BE(keysym, 4);
  return b;
};
const fbur = Buffer.from([3, 1, 0, 0, 0, 0, 2, 128, 1, 224]);

describe('Recorder', () => {
  it('writes the handshake, each chunk as sent (copied before the relay reuses its buffer), and events; both readers agree', async () => {
    const run = record();
    const reused = Buffer.alloc(300);
    const sent: Buffer[] = [];
    for (let i = 0; i < 5; i++) {
      reused.fill(i + 1);
      const chunk = reused.subarray(0, 100 + i * 40);
      sent.push(Buffer.from(chunk));
      run.recorder.toBrowser(chunk);
    }
    reused.fill(0xee); // the relay's next read: must not show in the recording
    const clientBytes = Buffer.concat([fbur, pointer(10, 20, 0), pointer(300, 400, 1), key(true, 0x61), key(false, 0x61), fbur]);
    // Split at every offset: framing must not depend on chunking.
    for (let cut = 0; cut <= clientBytes.length; cut++) {
      run.recorder.toBackend(clientBytes.subarray(0, cut));
      run.recorder.toBackend(clientBytes.subarray(cut));
    }
    run.recorder.finish();
    const trailer = await run.ended;
    expect(run.failed).toEqual([]);
    expect(trailer).toMatchObject({ truncated: false, reason: null, events: 2 * (clientBytes.length + 1), keyEventsOmitted: 2 * (clientBytes.length + 1) });

    const bytes = await readFile(run.file);
    expect((await stat(run.file)).mode & 0o777).toBe(0o600);
    const rec = parseRecording(bytes);
    expect(rec.header).toEqual(header());
    expect(rec.trailer).toEqual(trailer);
    const data = rec.records.filter((r) => r.type === RECORD_TYPE.data).map((r) => r.payload);
    expect(data).toEqual([browserHandshakeBytes(), ...sent]);
    expect(browserHandshakeBytes()).toEqual(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1, 1]), Buffer.from([0, 0, 0, 0])]));
    const events = rec.records.filter((r) => r.type === RECORD_TYPE.event).map((r) => JSON.parse(r.payload.toString('utf8')));
    expect(events.slice(0, 2)).toEqual([
      { k: 'pointerEvent', buttons: 0, x: 10, y: 20 },
      { k: 'pointerEvent', buttons: 1, x: 300, y: 400 },
    ]);
    expect(events.every((e) => e.k === 'pointerEvent')).toBe(true);

    const web = readPlayback(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer);
    expect(web.header.id).toBe(rec.header.id);
    expect(web.trailer).toMatchObject({ truncated: false });
    expect(web.records.map((r) => [r.type, r.tMs, Buffer.from(r.bytes)])).toEqual(rec.records.filter((r) => r.type !== RECORD_TYPE.end).map((r) => [r.type, r.tMs, r.payload]));
  });

  it('keeps keystrokes when the profile says recordKeys', async () => {
    const run = record({ recordKeys: true });
    run.recorder.toBackend(Buffer.concat([key(true, 0x41), key(false, 0x41)]));
    run.recorder.finish();
    const trailer = await run.ended;
    expect(trailer.keyEventsOmitted).toBe(0);
    const events = parseRecording(await readFile(run.file)).records.filter((r) => r.type === RECORD_TYPE.event).map((r) => JSON.parse(r.payload.toString('utf8')));
    expect(events).toEqual([
      { k: 'keyEvent', down: true, keysym: 0x41 },
      { k: 'keyEvent', down: false, keysym: 0x41 },
    ]);
  });

  it('stops at maxBytes: a playable prefix, marked truncated (size), not a failure', async () => {
    const run = record({ maxBytes: 65_536 });
    const chunk = Buffer.alloc(10_000, 7);
    for (let i = 0; i < 20; i++) run.recorder.toBrowser(chunk);
    run.recorder.finish();
    const trailer = await run.ended;
    expect(run.failed).toEqual([]);
    expect(trailer).toMatchObject({ truncated: true, reason: 'size' });
    const size = (await stat(run.file)).size;
    expect(size).toBeLessThanOrEqual(65_536);
    const rec = parseRecording(await readFile(run.file));
    expect(rec.records.filter((r) => r.type === RECORD_TYPE.data)).toHaveLength(1 + 6); // handshake + 6 whole chunks fit
    expect(rec.trailer).toMatchObject({ truncated: true, reason: 'size', dataBytes: 12 + 2 + 4 + 60_000 });
  });

  it('a disk that stalls: the queue fills, recording stops (overflow), the relay is never blocked, and the end is reported stalled', async () => {
    const pending: (() => void)[] = [];
    const stalled = () =>
      new Writable({
        highWaterMark: 1024,
        write(_chunk, _enc, cb) {
          pending.push(cb); // never completes
        },
      });
    const run = record({ queueBytes: 100_000, closeTimeoutMs: 200, openStream: stalled });
    const chunk = Buffer.alloc(30_000, 1);
    for (let i = 0; i < 50; i++) run.recorder.toBrowser(chunk);
    expect(run.recorder.truncated).toBe('overflow');
    expect(run.recorder.bytes).toBeLessThanOrEqual(100_000 + 4_096);
    run.recorder.finish();
    const trailer = await run.ended;
    expect(run.failed.map((f) => f.reason)).toEqual(['overflow', 'stalled']);
    expect(trailer).toMatchObject({ truncated: true, reason: 'overflow' });
  });

  it('a directory it may not write in: the failure is reported once (EACCES), and later chunks are ignored without throwing', async () => {
    // /sys refuses new files even to root: a real "permission denied".
    const run = record({ file: '/sys/kernel/vncgate-test.vncrec' });
    const trailer = await run.ended;
    expect(run.failed).toEqual([{ reason: 'error', code: 'EACCES' }]);
    expect(trailer).toMatchObject({ truncated: true, reason: 'error' });
    expect(() => {
      run.recorder.toBrowser(Buffer.alloc(10));
      run.recorder.toBackend(pointer(1, 2, 0));
      run.recorder.finish();
    }).not.toThrow();
    expect(run.failed).toHaveLength(1);
  });

  it('a path through a regular file (ENOTDIR) fails the same way', async () => {
    const notDir = join(dir, 'plain-file');
    await writeFile(notDir, 'x');
    const run = record({ file: join(notDir, 'r.vncrec') });
    await run.ended;
    expect(run.failed).toEqual([{ reason: 'error', code: 'ENOTDIR' }]);
  });

  it('never writes over an existing file', async () => {
    const existing = join(dir, 'existing.vncrec');
    await writeFile(existing, 'keep');
    const run = record({ file: existing });
    await run.ended;
    expect(run.failed).toEqual([{ reason: 'error', code: 'EEXIST' }]);
    expect(await readFile(existing, 'utf8')).toBe('keep');
  });
});
