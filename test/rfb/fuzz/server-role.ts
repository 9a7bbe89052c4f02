import { VncgateError } from '../../../src/errors.js';
import { LIMITS, RfbServerHandshake, type ServerAction } from '../../../src/rfb/index.js';
import { browserCase, type BrowserCase } from './browser-transcripts.js';
import { variant } from './client-role.js';
import { forEachChunk } from './mutate.js';
import type { Rng } from './rng.js';
import { check, checkBuffered, checkOutcome, count, emptyStats, expected, guarded, inputRng, type Outcome, type RoleStats } from './stats.js';

/** What each state may hold: whole messages are at most 16 bytes until the verdict wait. */
const STATE_BOUND: Record<string, number> = {
  version: 11,
  choice: 0,
  vncResponse: 15,
  preVerdict: LIMITS.maxHandshakeBufferBytes,
  verdict: LIMITS.maxHandshakeBufferBytes,
  established: 0,
  failed: 0,
};

/** Fuzzes RfbServerHandshake (what a browser sends) with inputs [start, start+count). */
export function fuzzServerRole(seed: number, start: number, count_: number): RoleStats {
  const stats = emptyStats('server');
  for (let index = start; index < start + count_; index++) {
    let input: Buffer = Buffer.alloc(0);
    guarded(stats, seed, index, () => input, () => {
      const rng = inputRng(seed, index);
      const c = browserCase(rng);
      c.transcript = variant(rng, c.transcript);
      input = c.transcript.bytes;
      const end = rng.chance(0.15) ? rng.int(input.length + 1) : input.length;
      runOne(stats, rng, c, end);
    });
  }
  return stats;
}

function runOne(stats: RoleStats, rng: Rng, c: BrowserCase, end: number): void {
  const engine = new RfbServerHandshake(c.options);
  const allowed = new Set<string>(['RFB_ERR_CLIENT_PROTOCOL', 'RFB_ERR_CLIENT_AUTH', ...(c.verdict.ok ? [] : [c.verdict.error.code])]);
  let terminal: ServerAction | null = null;
  let verdictGiven = false;
  const post: Buffer[] = [];
  const take = (actions: ServerAction[], where: string): void => {
    for (const a of actions) {
      check(terminal === null, () => `${where}: an action after ${terminal?.type}`);
      if (a.type === 'send') check(a.bytes.length > 0 && a.bytes.length <= 8 + LIMITS.maxReasonBytes, () => `${where}: send of ${a.bytes.length} bytes`);
      if (a.type === 'failed') check(a.error instanceof VncgateError && allowed.has(a.error.code), () => `failed with ${a.error.code}`);
      if (a.type === 'established' || a.type === 'failed') terminal = a;
    }
    check(engine.established === (terminal?.type === 'established'), () => `${where}: state ${engine.state} after ${terminal?.type ?? 'no'} terminal action`);
    checkBuffered(stats, engine.bufferedBytes, STATE_BOUND[engine.state] ?? 0, () => `${where} in ${engine.state}`);
  };
  const verdict = (): void => {
    verdictGiven = true;
    take(c.verdict.ok ? engine.accept() : engine.reject(c.verdict.error), 'verdict');
  };
  const started = engine.start();
  check(started.length === 1 && started[0]?.type === 'send' && started[0].bytes.toString('latin1') === 'RFB 003.008\n', 'start() is not ProtocolVersion 3.8');
  if (c.timing === 'early') verdict();
  forEachChunk(rng, c.transcript.bytes.subarray(0, end), (chunk) => {
    stats.bytesFed += chunk.length;
    if (terminal) return void post.push(chunk);
    if (c.timing === 'between' && !verdictGiven && rng.chance(0.3)) verdict();
    if (terminal) return void post.push(chunk);
    take(engine.receive(chunk), 'receive');
  });
  if (!verdictGiven) verdict();
  if (terminal !== null) check(engine.receive(Buffer.of(0)).length === 0, 'receive() after settling returned actions');

  const done = terminal as ServerAction | null;
  const got: Outcome =
    done?.type === 'established' ? { outcome: 'established', code: null } : done?.type === 'failed' ? { outcome: 'failed', code: done.error.code } : { outcome: 'pending', code: null };
  count(stats, got);
  const want = oracle(c, end);
  if (want) checkOutcome(stats, got, want);
  if (done?.type !== 'established' || c.transcript.decision === null || c.securityEnd === null) return;
  // The browser's ClientInit and anything pipelined after it are handed over whole and in order.
  check(Buffer.concat([done.trailing, ...post]).equals(c.transcript.bytes.subarray(c.securityEnd, end)), 'ClientInit or pipelined bytes lost or reordered');
}

/**
 * What an unmutated transcript must lead to. With the verdict given first, the recorded decision;
 * given last, the bytes held while waiting for it count against the buffer limit first.
 */
function oracle(c: BrowserCase, end: number): Outcome | null {
  const d = c.transcript.decision;
  if (d === null || c.timing === 'between') return null;
  if (c.timing === 'early' || c.waitStart === null || end < c.waitStart) return expected(d, end);
  if (end - c.waitStart > LIMITS.maxHandshakeBufferBytes) return { outcome: 'failed', code: 'RFB_ERR_CLIENT_PROTOCOL' };
  return expected(d, end);
}
