/**
 * The recordings directory (src/record/recordings.ts): which sessions are recorded (profile, or a
 * token that asks; a token can never turn a profile's recording off), the list, and retention:
 * by age, then by total size oldest first, never a recording still being written.
 */
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeEnd, encodeHeader, readInfo, RECORDING_FORMAT, Recordings, type RecordingHeader, type RecordingsConfig } from '../../src/record/index.js';

const log = pino({ level: 'silent' });

/** Waits (bounded) until `cond` holds. */
async function until(cond: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await cond()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('condition not met in 5 s');
}
let dir: string;
let audit: { event: string; fields: Record<string, unknown> }[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vncgate-recordings-'));
  audit = [];
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const cfg = (over: Partial<RecordingsConfig> = {}): RecordingsConfig => ({
  dir,
  maxAgeHours: 24,
  maxBytesPerRecording: 1 << 20,
  maxTotalBytes: 1 << 30,
  queueBytes: 1 << 20,
  closeTimeoutMs: 5_000,
  pruneIntervalSeconds: 3_600,
  playbackLinkTtlSeconds: 300,
  ...over,
});

const profiles = {
  audited: { security: ['none' as const], verifyHostname: true, allowAnonymousTls: false, viewOnly: false, clipboard: 'both' as const, maxClipboardBytes: null, sharing: false, record: true, recordKeys: false },
  plain: { security: ['none' as const], verifyHostname: true, allowAnonymousTls: false, viewOnly: false, clipboard: 'both' as const, maxClipboardBytes: null, sharing: false, record: false, recordKeys: true },
};

function recordings(over: Partial<RecordingsConfig> = {}): Recordings {
  return new Recordings(cfg(over), profiles, log, { write: (event, fields) => audit.push({ event, fields }) });
}

/** A finished (or, without `complete`, cut-short) recording file of about `bytes`, `ageHours` old. */
async function fakeRecording(id: string, bytes: number, ageHours: number, complete = true): Promise<void> {
  const h: RecordingHeader = {
    format: RECORDING_FORMAT,
    version: 1,
    id,
    sessionId: id.slice(-12),
    startedAt: new Date().toISOString(),
    target: 't',
    profile: 'audited',
    width: 1,
    height: 1,
    desktopName: '',
    recordKeys: false,
    reason: 'profile',
  };
  const end = complete ? encodeEnd(0, { endedAt: h.startedAt, durationMs: 0, truncated: false, reason: null, dataBytes: 0, events: 0, keyEventsOmitted: 0 }) : Buffer.alloc(0);
  const head = encodeHeader(h);
  const file = join(dir, `${id}.vncrec`);
  await writeFile(file, Buffer.concat([head, Buffer.alloc(Math.max(0, bytes - head.length - end.length)), end]));
  const t = (Date.now() - ageHours * 3_600_000) / 1000;
  await utimes(file, t, t);
}

const id = (i: number): string => `2026010${i}T000000Z-00000000000${i}`;

describe('Recordings', () => {
  it('records when the profile says so, or the token asks; reports the reason; otherwise not at all', async () => {
    const r = recordings();
    const init = { width: 4, height: 3, name: 'desk' };
    expect(r.open('aaaaaaaaaaaa', { label: 'x', profile: 'plain' }, init, false, log)).toBeNull();
    expect(r.open('aaaaaaaaaaaa', null, init, true, log)).toBeNull();
    const byProfile = r.open('bbbbbbbbbbbb', { label: 'x', profile: 'audited' }, init, false, log);
    const byToken = r.open('cccccccccccc', { label: 'x', profile: 'plain' }, init, true, log);
    expect(byProfile).not.toBeNull();
    expect(byToken).not.toBeNull();
    byProfile!.finish();
    byToken!.finish();
    await until(() => audit.filter((a) => a.event === 'recording.ended').length === 2);
    const list = await r.list();
    expect(list.map((x) => [x.sessionId, x.active, x.truncated])).toEqual(
      expect.arrayContaining([
        ['bbbbbbbbbbbb', false, false],
        ['cccccccccccc', false, false],
      ]),
    );
    expect(audit.filter((a) => a.event === 'recording.ended')).toHaveLength(2);
    // Keys are kept only where the profile says recordKeys (plain does, audited does not).
    const files = await readdir(dir);
    expect(files.every((f) => /^\d{8}T\d{6}Z-[0-9a-f]{12}\.vncrec$/.test(f))).toBe(true);
    const headers = await Promise.all(list.map((x) => readInfo(join(dir, `${x.id}.vncrec`), x.bytes)));
    expect(Object.fromEntries(headers.map((h) => [h.header.sessionId, [h.header.reason, h.header.recordKeys]]))).toEqual({ bbbbbbbbbbbb: ['profile', false], cccccccccccc: ['token', true] });
  });

  it('lists newest first; a file without its end record is truncated', async () => {
    await fakeRecording(id(1), 1000, 1);
    await fakeRecording(id(2), 1000, 1, false);
    await writeFile(join(dir, 'not-a-recording.txt'), 'x');
    const list = await recordings().list();
    expect(list.map((x) => [x.id, x.truncated, x.trailer === null])).toEqual([
      [id(2), true, true],
      [id(1), false, false],
    ]);
  });

  it('prunes by age', async () => {
    await fakeRecording(id(1), 1000, 48);
    await fakeRecording(id(2), 1000, 25);
    await fakeRecording(id(3), 1000, 1);
    expect(await recordings({ maxAgeHours: 24 }).prune()).toBe(2);
    expect(await readdir(dir)).toEqual([`${id(3)}.vncrec`]);
  });

  it('prunes the oldest until the total fits, never one being written', async () => {
    for (let i = 1; i <= 5; i++) await fakeRecording(id(i), 40_000, 1);
    const r = recordings({ maxTotalBytes: 100_000 });
    expect(await r.prune()).toBe(3);
    expect((await readdir(dir)).sort()).toEqual([`${id(4)}.vncrec`, `${id(5)}.vncrec`]);

    // An active recording (opened now) is the newest; over the cap, older finished ones go, it stays.
    const rec = r.open('dddddddddddd', { label: 'x', profile: 'audited' }, { width: 1, height: 1, name: '' }, false, log)!;
    rec.toBrowser(Buffer.alloc(90_000, 1));
    await until(async () => (await r.list()).some((x) => x.active && x.bytes > 90_000));
    await r.prune();
    const left = await readdir(dir);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/-dddddddddddd\.vncrec$/);
    rec.finish();
  });

  it('file() accepts only recording ids (no path tricks)', () => {
    const r = recordings();
    expect(r.file(id(1))).toBe(join(dir, `${id(1)}.vncrec`));
    for (const bad of ['../etc/passwd', `${id(1)}/../x`, '', 'x'.repeat(200)]) expect(r.file(bad)).toBeNull();
  });
});
