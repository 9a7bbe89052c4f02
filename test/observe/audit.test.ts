import { mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAuditLog } from '../../src/observe/index.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vncgate-audit-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const lines = async (file: string): Promise<Record<string, unknown>[]> =>
  (await readFile(file, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('issue 17: the audit stream', () => {
  it('appends one JSON line per event, with time and event first', async () => {
    const file = join(dir, 'a.jsonl');
    const audit = await openAuditLog(file);
    audit.write('session.started', { sessionId: 'abc', port: 5900, issuedBy: { via: 'cli' } });
    audit.write('session.ended', { sessionId: 'abc', code: null });
    await audit.close();
    const got = await lines(file);
    expect(got).toEqual([
      { time: expect.any(String), event: 'session.started', sessionId: 'abc', port: 5900, issuedBy: { via: 'cli' } },
      { time: expect.any(String), event: 'session.ended', sessionId: 'abc', code: null },
    ]);
    expect(Object.keys(got[0]!).slice(0, 2)).toEqual(['time', 'event']);
    audit.write('session.ended', { late: true }); // after close: ignored, not thrown
  });

  it('reopen() follows logrotate: events after it go to a new file at the path', async () => {
    const file = join(dir, 'rot.jsonl');
    const audit = await openAuditLog(file);
    audit.write('token.issued', { n: 1 });
    await new Promise((r) => setTimeout(r, 50));
    await rename(file, `${file}.1`);
    audit.reopen();
    audit.write('token.issued', { n: 2 });
    await audit.close();
    expect((await lines(`${file}.1`)).map((e) => e.n)).toEqual([1]);
    expect((await lines(file)).map((e) => e.n)).toEqual([2]);
  });

  it('never waits: past its queue bound it drops events and counts them', async () => {
    const file = join(dir, 'drop.jsonl');
    let told = 0;
    const audit = await openAuditLog(file, { maxQueuedBytes: 2_000, onDrop: () => told++ });
    // One synchronous burst: nothing can be written meanwhile, so the queue bound decides.
    for (let i = 0; i < 500; i++) audit.write('session.ended', { i, pad: 'x'.repeat(50) });
    expect(audit.dropped).toBeGreaterThan(0);
    expect(told).toBe(audit.dropped);
    await audit.close();
    const written = await lines(file);
    expect(written.length + audit.dropped).toBe(500);
  });

  it('a path that cannot be opened is a start-up error', async () => {
    await expect(openAuditLog(join(dir, 'missing-dir', 'x.jsonl'))).rejects.toMatchObject({ code: 'CONFIG_ERR_FILE' });
  });
});
